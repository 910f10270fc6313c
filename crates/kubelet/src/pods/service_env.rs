//! Upstream's service environment variables (the Docker-links-style "service links"),
//! for every service with a cluster IP in the pod's namespace when
//! `enableServiceLinks` (default true), and always for `default/kubernetes`:
//!
//! ```text
//! {SVC}_SERVICE_HOST=10.43.0.20          {SVC}_SERVICE_PORT=80 (first port)
//! {SVC}_SERVICE_PORT_{PORTNAME}=80       {SVC}_PORT=tcp://10.43.0.20:80 (first port)
//! {SVC}_PORT_80_TCP=tcp://10.43.0.20:80  {SVC}_PORT_80_TCP_PROTO=tcp
//! {SVC}_PORT_80_TCP_PORT=80              {SVC}_PORT_80_TCP_ADDR=10.43.0.20
//! ```
//!
//! `{SVC}` is the name uppercased with `-` → `_`. The services come from a watch the
//! process starts on first use (upstream's service informer); containers wait (with
//! CreateContainerConfigError) until it has listed once, as upstream's kubelet does.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

/// How long a container start waits for the first list of services.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(2);
/// The services every pod gets variables for (upstream's `masterServices`).
const MASTER_SERVICES: &[&str] = &["kubernetes"];

/// The process's view of all Services, started on first use.
pub struct ServiceCache {
    client: Client,
    started: OnceLock<Started>,
}

struct Started {
    store: Store<Service>,
    listed: watch::Receiver<bool>,
    /// Aborts the watch task when the cache goes.
    _task: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for ServiceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCache")
            .field("started", &self.started.get().is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceCache {
    pub fn new(client: Client) -> ServiceCache {
        ServiceCache {
            client,
            started: OnceLock::new(),
        }
    }

    fn start(&self) -> &Started {
        self.started.get_or_init(|| {
            let (store, writer) = reflector::store();
            let (listed_tx, listed) = watch::channel(false);
            let api: Api<Service> = Api::all(self.client.clone());
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer);
            let task = tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(watcher::Event::InitDone) => {
                            listed_tx.send_replace(true);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "service watch"),
                    }
                }
            });
            Started {
                store,
                listed,
                _task: AbortOnDrop(task),
            }
        })
    }

    /// All services, once they have been listed (None if not within a short wait).
    pub async fn services(&self) -> Option<Vec<Arc<Service>>> {
        let started = self.start();
        let mut listed = started.listed.clone();
        let ready = tokio::time::timeout(FIRST_LIST_WAIT, listed.wait_for(|l| *l)).await;
        match ready {
            Ok(Ok(_)) => Some(started.store.state()),
            _ => None,
        }
    }
}

/// Upstream's message while the services have not been listed yet.
pub const NOT_LISTED: &str =
    "services have not yet been read at least once, cannot construct envvars";

/// The service environment of `pod`; None until the services have been listed.
pub async fn for_pod(cache: &ServiceCache, pod: &Pod) -> Option<Vec<(String, String)>> {
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let services = cache.services().await?;
    Some(service_env(&services, namespace, links))
}

/// Whether the service has a cluster IP (not headless, not ExternalName).
fn cluster_ip(service: &Service) -> Option<&str> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
}

/// `my-svc` → `MY_SVC` (upstream's `makeEnvVariableName`).
fn env_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// The services whose variables a pod in `namespace` gets: its namespace's (when
/// `links`), and `default/kubernetes` always; a same-named service of the pod's own
/// namespace wins.
fn selected<'a>(
    services: &'a [Arc<Service>],
    namespace: &str,
    links: bool,
) -> BTreeMap<&'a str, &'a Service> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for service in services {
        let (Some(ns), Some(name)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
        ) else {
            continue;
        };
        if cluster_ip(service).is_none() {
            continue;
        }
        if links && ns == namespace {
            chosen.insert(name, service);
        } else if ns == "default" && MASTER_SERVICES.contains(&name) {
            chosen.entry(name).or_insert(service);
        }
    }
    chosen
}

/// The service environment of a pod in `namespace`, sorted by service name.
pub fn service_env(
    services: &[Arc<Service>],
    namespace: &str,
    links: bool,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (name, service) in selected(services, namespace, links) {
        let Some(ip) = cluster_ip(service) else {
            continue;
        };
        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or_default();
        let prefix = env_name(name);
        env.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        if let Some(first) = ports.first() {
            env.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        }
        for port in ports {
            if let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                env.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(port_name)),
                    port.port.to_string(),
                ));
            }
        }
        // IPv6 cluster IPs go in brackets, as Go's net.JoinHostPort writes them.
        let host_port = |port: i32| {
            if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            }
        };
        for (i, port) in ports.iter().enumerate() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let lower = protocol.to_lowercase();
            let url = format!("{lower}://{}", host_port(port.port));
            if i == 0 {
                env.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            env.push((port_prefix.clone(), url));
            env.push((format!("{port_prefix}_PROTO"), lower));
            env.push((format!("{port_prefix}_PORT"), port.port.to_string()));
            env.push((format!("{port_prefix}_ADDR"), ip.to_string()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(value: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(value).expect("service"))
    }

    fn services() -> Vec<Arc<Service>> {
        vec![
            svc(serde_json::json!({
                "metadata": {"name": "kubernetes", "namespace": "default"},
                "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}
            })),
            svc(serde_json::json!({
                "metadata": {"name": "redis-master", "namespace": "prod"},
                "spec": {"clusterIP": "10.43.0.11", "ports": [
                    {"port": 6379, "protocol": "TCP"},
                    {"name": "metrics-udp", "port": 9121, "protocol": "UDP"}
                ]}
            })),
            svc(serde_json::json!({
                "metadata": {"name": "headless", "namespace": "prod"},
                "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
            })),
            svc(serde_json::json!({
                "metadata": {"name": "ext", "namespace": "prod"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}
            })),
            svc(serde_json::json!({
                "metadata": {"name": "elsewhere", "namespace": "other"},
                "spec": {"clusterIP": "10.43.0.12", "ports": [{"port": 80}]}
            })),
        ]
    }

    fn as_map(env: Vec<(String, String)>) -> BTreeMap<String, String> {
        env.into_iter().collect()
    }

    #[test]
    fn upstream_names_and_formats() {
        let env = as_map(service_env(&services(), "prod", true));
        let want: BTreeMap<String, String> = [
            ("KUBERNETES_SERVICE_HOST", "10.43.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.43.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.43.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.43.0.1"),
            ("REDIS_MASTER_SERVICE_HOST", "10.43.0.11"),
            ("REDIS_MASTER_SERVICE_PORT", "6379"),
            ("REDIS_MASTER_SERVICE_PORT_METRICS_UDP", "9121"),
            ("REDIS_MASTER_PORT", "tcp://10.43.0.11:6379"),
            ("REDIS_MASTER_PORT_6379_TCP", "tcp://10.43.0.11:6379"),
            ("REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"),
            ("REDIS_MASTER_PORT_6379_TCP_PORT", "6379"),
            ("REDIS_MASTER_PORT_6379_TCP_ADDR", "10.43.0.11"),
            ("REDIS_MASTER_PORT_9121_UDP", "udp://10.43.0.11:9121"),
            ("REDIS_MASTER_PORT_9121_UDP_PROTO", "udp"),
            ("REDIS_MASTER_PORT_9121_UDP_PORT", "9121"),
            ("REDIS_MASTER_PORT_9121_UDP_ADDR", "10.43.0.11"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, want);
    }

    #[test]
    fn links_off_keeps_only_the_master_service() {
        let env = service_env(&services(), "prod", false);
        assert!(env.iter().all(|(k, _)| k.starts_with("KUBERNETES_")));
        assert_eq!(env.len(), 8);
        // In another namespace: its own services and kubernetes.
        let other = as_map(service_env(&services(), "other", true));
        assert_eq!(
            other.get("ELSEWHERE_SERVICE_HOST").map(String::as_str),
            Some("10.43.0.12")
        );
        assert!(other.contains_key("KUBERNETES_SERVICE_HOST"));
        assert!(!other.contains_key("REDIS_MASTER_SERVICE_HOST"));
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let services = vec![svc(serde_json::json!({
            "metadata": {"name": "v6", "namespace": "prod"},
            "spec": {"clusterIP": "fd00::10", "ports": [{"port": 80}]}
        }))];
        let env = as_map(service_env(&services, "prod", true));
        assert_eq!(
            env.get("V6_PORT").map(String::as_str),
            Some("tcp://[fd00::10]:80")
        );
        assert_eq!(
            env.get("V6_PORT_80_TCP_ADDR").map(String::as_str),
            Some("fd00::10")
        );
    }
}
