//! The [`Runtime`] over CRI v1 (containerd + runc, CNI bridge), on the `cri` crate.
//!
//! - [`CriRuntime::start`]: our own containerd in `DATA_DIR/containerd` (stopped on
//!   exit; a containerd left by a killed kubelet is replaced, its shims and pods stay),
//!   or an existing endpoint; image archives in `DATA_DIR/agent/images` are imported;
//!   the host network is prepared ([`host`]).
//! - Pods are found by the labels `io.kubernetes.pod.uid` etc. on sandboxes and
//!   containers, so a restarted kubelet adopts what runs (no local state to lose).
//! - [`spec`] turns the kubelet's configs into CRI messages, [`status`] CRI statuses
//!   back, [`logs`] reads CRI log files, [`cgroups`] removes the pod cgroups runc leaves.

pub mod cgroups;
pub mod host;
pub mod logs;
pub mod spec;
pub mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use cri::proto;
use cri::{ContainerFilter, CriClient, RuntimeSource, SandboxFilter};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{
    ContainerConfig, ExecResult, LogOptions, LogStream, PodRef, PodStatus, PullPolicy, RelistEntry,
    Runtime, RuntimeError, RuntimeVersion, SandboxConfig,
};
use crate::config::KubeletConfig;

/// How long an existing endpoint gets to answer at start.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new CNI config gets to be picked up by the runtime.
const NETWORK_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Where CNI configs go for a runtime we do not run (the usual place).
const DEFAULT_CNI_CONF_DIR: &str = "/etc/cni/net.d";

/// The CRI runtime of one node.
pub struct CriRuntime {
    client: CriClient,
    version: RuntimeVersion,
    /// Our containerd (None for an existing endpoint, or once shut down).
    runtime: Mutex<Option<cri::Runtime>>,
    cni_conf_dir: PathBuf,
    /// host-local's allocations; for our containerd, inside its data dir.
    cni_ipam_dir: Option<PathBuf>,
    pod_cidr: Mutex<Option<String>>,
    cgroup_root: String,
    host_network: Option<host::HostNetwork>,
}

impl std::fmt::Debug for CriRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriRuntime")
            .field("socket", &self.client.socket())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn failed(operation: &str) -> impl Fn(cri::ClientError) -> RuntimeError + '_ {
    move |e| {
        if e.is_not_found() {
            RuntimeError::NotFound {
                what: e.to_string(),
            }
        } else {
            RuntimeError::Failed {
                operation: operation.to_string(),
                message: e.to_string(),
            }
        }
    }
}

/// A container id without its `containerd://` scheme.
fn bare_id(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, rest)| rest)
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    HashMap::from([(spec::LABEL_POD_UID.to_string(), uid.to_string())])
}

impl CriRuntime {
    /// Starts our containerd (`endpoint` None) or connects to `endpoint`, imports the
    /// image archives, and prepares the host network.
    pub async fn start(
        config: &KubeletConfig,
        endpoint: Option<&str>,
    ) -> Result<CriRuntime, RuntimeError> {
        let unavailable = |e: &dyn std::fmt::Display| RuntimeError::Unavailable(e.to_string());
        let source = match endpoint {
            Some(endpoint) => RuntimeSource::Endpoint(endpoint.to_string()),
            None => {
                let data_dir = std::path::absolute(config.data_dir.join("containerd"))
                    .map_err(|e| unavailable(&e))?;
                RuntimeSource::Embedded(cri::ContainerdConfig::new(data_dir))
            }
        };
        let runtime = cri::Runtime::start(source, ENDPOINT_TIMEOUT)
            .await
            .map_err(|e| unavailable(&e))?;
        let client = runtime.client();
        let version = client.version().await.map_err(|e| unavailable(&e))?;
        let (cni_conf_dir, cni_ipam_dir) = match runtime.containerd() {
            Some(c) => (
                c.layout().cni_conf_dir.clone(),
                Some(c.layout().cni_ipam_dir.clone()),
            ),
            None => (PathBuf::from(DEFAULT_CNI_CONF_DIR), None),
        };
        // Image archives dropped into the data dir (k3s's agent/images), for nodes
        // without a registry.
        let images = config.data_dir.join("agent").join("images");
        if images.is_dir() {
            match runtime.importer().import_dir(&images).await {
                Ok(report) => {
                    for image in &report.imported {
                        tracing::info!(image = %image.name, "image imported");
                    }
                    for failure in &report.failed {
                        tracing::warn!(error = %failure, "image archive not imported");
                    }
                }
                Err(e) => tracing::warn!(error = %e, dir = %images.display(), "importing images"),
            }
        }
        let host_network = if config.manage_host_network {
            let network = host::HostNetwork::new(&config.cluster_cidr, &config.service_cidr)
                .map_err(|e| unavailable(&e))?;
            network.apply().await.map_err(|e| unavailable(&e))?;
            Some(network)
        } else {
            None
        };
        tracing::info!(
            runtime = %version.runtime_name,
            version = %version.runtime_version,
            socket = %runtime.socket().display(),
            "CRI runtime ready"
        );
        Ok(CriRuntime {
            client,
            version: RuntimeVersion {
                name: version.runtime_name,
                version: version.runtime_version,
            },
            runtime: Mutex::new(Some(runtime)),
            cni_conf_dir,
            cni_ipam_dir,
            pod_cidr: Mutex::new(None),
            cgroup_root: config.cgroup_root.clone(),
            host_network,
        })
    }

    /// The CRI client (tests, `mast images import`).
    pub fn client(&self) -> &CriClient {
        &self.client
    }

    fn cgroup_parent(&self, uid: &str) -> String {
        cgroups::pod_parent(&self.cgroup_root, uid)
    }

    fn with_scheme(&self, id: &str) -> String {
        format!("{}://{id}", self.version.name)
    }

    async fn set_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError> {
        let failed = |message: String| RuntimeError::Failed {
            operation: "UpdateRuntimeConfig".into(),
            message,
        };
        let mut network = cri::BridgeNetwork::new(cidr).map_err(|e| failed(e.to_string()))?;
        network.ipam_data_dir = self.cni_ipam_dir.clone();
        network
            .write(&self.cni_conf_dir)
            .map_err(|e| failed(e.to_string()))?;
        // containerd reloads CNI configs on a file event; wait for it so the first
        // sandboxes do not fail on "cni config uninitialized".
        let deadline = tokio::time::Instant::now() + NETWORK_READY_TIMEOUT;
        loop {
            let ready = self.client.runtime_status().await.is_ok_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.r#type == "NetworkReady" && c.status)
            });
            if ready {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(failed(format!(
                    "the runtime's network is not ready {NETWORK_READY_TIMEOUT:?} after writing the CNI config"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *self.pod_cidr.lock().unwrap_or_else(|e| e.into_inner()) = Some(cidr.to_string());
        tracing::info!(cidr, conf_dir = %self.cni_conf_dir.display(), "pod network configured");
        Ok(())
    }

    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String, RuntimeError> {
        let has_cidr = self
            .pod_cidr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if !config.host_network && !has_cidr {
            return Err(RuntimeError::NetworkNotReady(
                "the node has no pod CIDR assigned yet".into(),
            ));
        }
        std::fs::create_dir_all(&config.log_directory).map_err(|e| RuntimeError::Failed {
            operation: "RunPodSandbox".into(),
            message: format!("creating {}: {e}", config.log_directory.display()),
        })?;
        let sandbox = spec::sandbox(config, &self.cgroup_parent(&config.uid));
        self.client
            .run_pod_sandbox(&sandbox, "")
            .await
            .map_err(failed("RunPodSandbox"))
    }

    /// The image reference to create the container from, pulling per the policy.
    async fn ensure_image(
        &self,
        container: &ContainerConfig,
        sandbox: &proto::PodSandboxConfig,
    ) -> Result<String, RuntimeError> {
        let image = container.image.as_str();
        let present = match container.pull_policy {
            PullPolicy::Always => None,
            _ => self
                .client
                .image_status(image)
                .await
                .map_err(failed("ImageStatus"))?,
        };
        if let Some(found) = present {
            return Ok(found.id);
        }
        if container.pull_policy == PullPolicy::Never {
            return Err(RuntimeError::ImageNeverPull {
                image: image.to_string(),
            });
        }
        self.client
            .pull_image(image, Some(sandbox))
            .await
            .map_err(|e| RuntimeError::ImagePull {
                image: image.to_string(),
                message: match e {
                    cri::ClientError::Rpc { status, .. } => status.message().to_string(),
                    other => other.to_string(),
                },
            })
    }

    /// Removes what earlier attempts of `container` left that is not needed: all but
    /// the latest dead one (its log is `--previous`), and a half-made one of this
    /// attempt (created, never started) whose name would collide.
    async fn collect_attempts(
        &self,
        uid: &str,
        container: &ContainerConfig,
    ) -> Result<(), RuntimeError> {
        let mut labels = uid_filter(uid);
        labels.insert(
            spec::LABEL_CONTAINER_NAME.to_string(),
            container.name.clone(),
        );
        let found = self
            .client
            .list_containers(&ContainerFilter {
                labels,
                ..ContainerFilter::default()
            })
            .await
            .map_err(failed("ListContainers"))?;
        for c in found {
            let attempt = c.metadata.as_ref().map_or(0, |m| m.attempt);
            let stale = attempt + 1 < container.attempt || attempt == container.attempt;
            let running = c.state == proto::ContainerState::ContainerRunning as i32;
            if stale && !running {
                match self.client.remove_container(&c.id).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => tracing::warn!(id = %c.id, error = %e, "removing an old container"),
                }
            }
        }
        Ok(())
    }

    async fn create_and_start(
        &self,
        sandbox_id: &str,
        sandbox: &SandboxConfig,
        container: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let sandbox_config = spec::sandbox(sandbox, &self.cgroup_parent(&sandbox.uid));
        let image_ref = self.ensure_image(container, &sandbox_config).await?;
        self.collect_attempts(&sandbox.uid, container).await?;
        let config = spec::container(sandbox, container, &image_ref);
        let id = self
            .client
            .create_container(sandbox_id, &config, &sandbox_config)
            .await
            .map_err(failed("CreateContainer"))?;
        self.client
            .start_container(&id)
            .await
            .map_err(failed("StartContainer"))?;
        Ok(self.with_scheme(&id))
    }

    async fn sandboxes(&self, uid: &str) -> Result<Vec<proto::PodSandbox>, RuntimeError> {
        self.client
            .list_pod_sandboxes(&SandboxFilter {
                labels: uid_filter(uid),
                ..SandboxFilter::default()
            })
            .await
            .map_err(failed("ListPodSandbox"))
    }

    async fn containers(&self, uid: &str) -> Result<Vec<proto::Container>, RuntimeError> {
        self.client
            .list_containers(&ContainerFilter {
                labels: uid_filter(uid),
                ..ContainerFilter::default()
            })
            .await
            .map_err(failed("ListContainers"))
    }

    async fn stop(&self, uid: &str, grace: Duration) -> Result<(), RuntimeError> {
        let running: Vec<proto::Container> = self
            .containers(uid)
            .await?
            .into_iter()
            .filter(|c| c.state == proto::ContainerState::ContainerRunning as i32)
            .collect();
        // All containers get the grace period at the same time, as upstream's
        // killContainersWithSyncResult does.
        let stops = running
            .iter()
            .map(|c| self.client.stop_container(&c.id, grace));
        for (c, result) in running.iter().zip(futures::future::join_all(stops).await) {
            match result {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(RuntimeError::Failed {
                        operation: "StopContainer".into(),
                        message: format!("{}: {e}", c.id),
                    });
                }
            }
        }
        for sandbox in self.sandboxes(uid).await? {
            if sandbox.state == proto::PodSandboxState::SandboxReady as i32 {
                match self.client.stop_pod_sandbox(&sandbox.id).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(failed("StopPodSandbox")(e)),
                }
            }
        }
        Ok(())
    }

    async fn remove(&self, uid: &str) -> Result<(), RuntimeError> {
        for c in self.containers(uid).await? {
            match self.client.remove_container(&c.id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(failed("RemoveContainer")(e)),
            }
        }
        for sandbox in self.sandboxes(uid).await? {
            // RemovePodSandbox wants it stopped (network torn down) first.
            for result in [
                self.client.stop_pod_sandbox(&sandbox.id).await,
                self.client.remove_pod_sandbox(&sandbox.id).await,
            ] {
                match result {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(failed("RemovePodSandbox")(e)),
                }
            }
        }
        cgroups::remove_pod(&self.cgroup_parent(uid));
        Ok(())
    }

    async fn status(&self, uid: &str) -> Result<Option<PodStatus>, RuntimeError> {
        let sandboxes = self.sandboxes(uid).await?;
        let Some(latest) = sandboxes
            .iter()
            .max_by_key(|s| (s.metadata.as_ref().map_or(0, |m| m.attempt), s.created_at))
        else {
            return Ok(None);
        };
        let sandbox_status = match self.client.pod_sandbox_status(&latest.id).await {
            Ok(s) => s,
            // Removed between the list and now.
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(failed("PodSandboxStatus")(e)),
        };
        let mut containers = Vec::new();
        for c in self.containers(uid).await? {
            match self.client.container_status(&c.id).await {
                Ok(s) => containers.push(status::container(&self.version.name, &s)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(failed("ContainerStatus")(e)),
            }
        }
        containers.sort_by_key(|c| c.attempt);
        Ok(Some(PodStatus {
            sandbox: status::sandbox(&sandbox_status),
            containers,
        }))
    }

    async fn list(&self) -> Result<Vec<PodRef>, RuntimeError> {
        let sandboxes = self
            .client
            .list_pod_sandboxes(&SandboxFilter::default())
            .await
            .map_err(failed("ListPodSandbox"))?;
        let mut seen = std::collections::HashSet::new();
        let mut pods = Vec::new();
        for s in sandboxes {
            // Only the kubelet's pods: sandboxes others made carry no pod UID label.
            let Some(uid) = s.labels.get(spec::LABEL_POD_UID) else {
                continue;
            };
            if !seen.insert(uid.clone()) {
                continue;
            }
            let label = |key: &str| s.labels.get(key).cloned().unwrap_or_default();
            pods.push(PodRef {
                uid: uid.clone(),
                namespace: label(spec::LABEL_POD_NAMESPACE),
                name: label(spec::LABEL_POD_NAME),
            });
        }
        Ok(pods)
    }

    async fn logs(
        &self,
        uid: &str,
        container: &str,
        options: &LogOptions,
    ) -> Result<LogStream, RuntimeError> {
        let mut labels = uid_filter(uid);
        labels.insert(
            spec::LABEL_CONTAINER_NAME.to_string(),
            container.to_string(),
        );
        let mut found = self
            .client
            .list_containers(&ContainerFilter {
                labels,
                ..ContainerFilter::default()
            })
            .await
            .map_err(failed("ListContainers"))?;
        found.sort_by_key(|c| c.metadata.as_ref().map_or(0, |m| m.attempt));
        let chosen = if options.previous {
            found.len().checked_sub(2).and_then(|i| found.get(i))
        } else {
            found.last()
        };
        let Some(chosen) = chosen else {
            return Err(if options.previous {
                RuntimeError::BadRequest(format!(
                    "previous terminated container \"{container}\" in pod with UID {uid} not found"
                ))
            } else {
                RuntimeError::NotFound {
                    what: format!("container \"{container}\" in pod with UID {uid}"),
                }
            });
        };
        let status = self
            .client
            .container_status(&chosen.id)
            .await
            .map_err(failed("ContainerStatus"))?;
        let path = PathBuf::from(&status.log_path);
        let running = status.state == proto::ContainerState::ContainerRunning as i32;
        let follow = (options.follow && running && !options.previous)
            .then(|| logs::Follow::new(self.client.clone(), chosen.id.clone()));
        logs::stream(path, options.clone(), follow).await
    }
}

impl Runtime for CriRuntime {
    fn version(&self) -> RuntimeVersion {
        self.version.clone()
    }

    fn update_pod_cidr<'a>(&'a self, cidr: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        self.set_pod_cidr(cidr).boxed()
    }

    fn run_pod_sandbox<'a>(
        &'a self,
        config: &'a SandboxConfig,
    ) -> BoxFuture<'a, Result<String, RuntimeError>> {
        self.run_sandbox(config).boxed()
    }

    fn start_container<'a>(
        &'a self,
        sandbox_id: &'a str,
        sandbox: &'a SandboxConfig,
        container: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<String, RuntimeError>> {
        self.create_and_start(sandbox_id, sandbox, container)
            .boxed()
    }

    fn stop_pod<'a>(
        &'a self,
        uid: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        self.stop(uid, grace).boxed()
    }

    fn remove_pod<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        self.remove(uid).boxed()
    }

    fn pod_status<'a>(
        &'a self,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<PodStatus>, RuntimeError>> {
        self.status(uid).boxed()
    }

    fn list_pods(&self) -> BoxFuture<'_, Result<Vec<PodRef>, RuntimeError>> {
        self.list().boxed()
    }

    fn container_logs<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, Result<LogStream, RuntimeError>> {
        self.logs(uid, container, options).boxed()
    }

    fn exec_sync<'a>(
        &'a self,
        container_id: &'a str,
        cmd: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecResult, RuntimeError>> {
        async move {
            let out = self
                .client
                .exec_sync(bare_id(container_id), cmd, timeout)
                .await
                .map_err(failed("ExecSync"))?;
            let mut output = out.stdout;
            output.extend_from_slice(&out.stderr);
            Ok(ExecResult {
                exit_code: out.exit_code,
                output,
            })
        }
        .boxed()
    }

    fn stop_container<'a>(
        &'a self,
        container_id: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        async move {
            self.client
                .stop_container(bare_id(container_id), grace)
                .await
                .map_err(failed("StopContainer"))
        }
        .boxed()
    }

    fn relist(&self) -> BoxFuture<'_, Result<Vec<RelistEntry>, RuntimeError>> {
        async move {
            let containers = self
                .client
                .list_containers(&ContainerFilter::default())
                .await
                .map_err(failed("ListContainers"))?;
            let sandboxes = self
                .client
                .list_pod_sandboxes(&SandboxFilter::default())
                .await
                .map_err(failed("ListPodSandbox"))?;
            // Sandboxes count too: a dead sandbox makes the worker recreate the pod.
            let entries = containers
                .into_iter()
                .map(|c| (c.labels, c.id, c.state))
                .chain(sandboxes.into_iter().map(|s| (s.labels, s.id, s.state)))
                .filter_map(|(labels, id, state)| {
                    let uid = labels.get(spec::LABEL_POD_UID)?.clone();
                    Some(RelistEntry { uid, id, state })
                })
                .collect();
            Ok(entries)
        }
        .boxed()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        async move {
            let runtime = self
                .runtime
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            // With no pod left (e.g. all removed on exit), the pods' bridge and its
            // route go too: nothing of ours stays on the host. CNI creates it again
            // for the next pod.
            let bridge_unused = runtime.is_some()
                && self.host_network.is_some()
                && self.list().await.is_ok_and(|pods| pods.is_empty());
            if let Some(runtime) = runtime {
                runtime.stop().await;
            }
            if let Some(network) = &self.host_network {
                network.remove().await;
                if bridge_unused {
                    host::remove_link(cri::cni::BRIDGE).await;
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_lose_their_scheme() {
        assert_eq!(bare_id("containerd://abc"), "abc");
        assert_eq!(bare_id("abc"), "abc");
    }
}
