//! The Endpoints controller (upstream's pkg/controller/endpoint): for every Service
//! with a selector, an Endpoints object of the same name listing the selected pods'
//! IPs, grouped by the ports they serve.
//!
//! - A pod counts when it has an IP, is not terminal, and is not being deleted (unless
//!   the service publishes not-ready addresses); ready pods go to `addresses`, the
//!   others to `notReadyAddresses`. Each service port's targetPort resolves per pod
//!   (a number, or a named container port); a pod without the named port does not
//!   serve that port.
//! - Subsets are repacked canonically (`subsets.rs`), so an unchanged service writes
//!   nothing; more than 1000 addresses are truncated and annotated as upstream.
//! - Services without a selector are left alone: their users manage the Endpoints.
//!   When a service goes, its Endpoints go (there is no ownerReference upstream). So
//!   do Endpoints this controller made for services deleted while it was down.
//!   Endpoints carrying a leader-election record are never touched.
//! - Service changes sync the service at once; pod changes are batched (`batch.rs`).
//!
//! The submodules besides `subsets` are shared with the EndpointSlice controller.

pub(crate) mod batch;
pub(crate) mod pods;
mod subsets;
pub(crate) mod trigger_time;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service, ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use self::batch::Batch;
use self::pods::IpFamily;
use self::trigger_time::TriggerTimes;
use crate::context::Context;
use crate::events::EventType;
use crate::runtime::{Next, ObjectKey, Reconciler, WorkQueue};

/// Marks Endpoints this controller made (upstream from 1.33), so that leftovers of
/// services deleted while it was down can be told from hand-made ones.
const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpoint-controller";
/// Leader election records once lived on Endpoints without a service.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Set when the addresses were cut to the capacity.
const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

#[derive(Debug)]
pub struct EndpointsController {
    ctx: Arc<Context>,
    queue: WorkQueue<ObjectKey>,
    batch: Arc<Batch>,
    trigger_times: TriggerTimes,
}

impl EndpointsController {
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let queue = WorkQueue::new();
        let batch = Arc::new(Batch::new(batch::PERIOD));
        register_handlers(&ctx, &queue, &batch);
        Arc::new(EndpointsController {
            ctx,
            queue,
            batch,
            trigger_times: TriggerTimes::default(),
        })
    }

    /// The service is gone: so are its Endpoints.
    async fn delete(&self, key: &ObjectKey) -> Result<Next, crate::Error> {
        if self
            .ctx
            .endpoints
            .get(key)
            .is_some_and(|e| is_leader_record(&e))
        {
            return Ok(Next::Idle);
        }
        // Not checking the cache first: an Endpoints just written may not be in it.
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        crate::ignore_not_found(api.delete(&key.name, &DeleteParams::default()).await)?;
        Ok(Next::Idle)
    }

    async fn write(
        &self,
        key: &ObjectKey,
        next: Endpoints,
        exists: bool,
    ) -> Result<Next, crate::Error> {
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let params = PostParams::default();
        let (result, reason) = if exists {
            (
                api.replace(&key.name, &params, &next).await,
                "FailedToUpdateEndpoint",
            )
        } else {
            (api.create(&params, &next).await, "FailedToCreateEndpoint")
        };
        match result {
            Ok(_) => Ok(Next::Idle),
            // Writes into a terminating namespace keep failing; the service goes soon.
            Err(e) if namespace_terminating(&e) => Ok(Next::Idle),
            Err(e) => {
                let error = crate::Error::from(e);
                if !error.is_conflict() {
                    self.ctx.events.record(
                        &next,
                        EventType::Warning,
                        reason,
                        format!(
                            "Failed to {} endpoint {key}: {error}",
                            if exists { "update" } else { "create" }
                        ),
                    );
                }
                Err(error)
            }
        }
    }
}

fn register_handlers(ctx: &Context, queue: &WorkQueue<ObjectKey>, batch: &Arc<Batch>) {
    let services_queue = queue.clone();
    ctx.services.on_change(Box::new(move |old, new| {
        if let Some(service) = new.or(old) {
            services_queue.add(ObjectKey::of(service.as_ref()));
        }
    }));
    let (pods_queue, batch, services) = (queue.clone(), batch.clone(), ctx.services.clone());
    ctx.pods.on_change(Box::new(move |old, new| {
        let keys = pods::services_for_pod_change(
            &services,
            old.map(|p| p.as_ref()),
            new.map(|p| p.as_ref()),
        );
        for key in keys {
            batch.add(&pods_queue, key);
        }
    }));
    // Someone deleted the Endpoints of a service: it gets them back. (Those deleted
    // because their service went need nothing more.)
    let (endpoints_queue, services) = (queue.clone(), ctx.services.clone());
    ctx.endpoints.on_change(Box::new(move |old, new| {
        if let (Some(old), None) = (old, new) {
            let key = ObjectKey::of(old.as_ref());
            if services.get(&key).is_some() {
                endpoints_queue.add(key);
            }
        }
    }));
}

impl Reconciler for EndpointsController {
    type Key = ObjectKey;

    fn name(&self) -> &'static str {
        "endpoints"
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    /// Every service, and, once the caches are full, Endpoints this controller made
    /// whose service is gone (upstream's `checkLeftoverEndpoints`).
    fn resync(&self) {
        let (ctx, queue) = (self.ctx.clone(), self.queue.clone());
        tokio::spawn(async move {
            ctx.services.wait_synced().await;
            ctx.endpoints.wait_synced().await;
            for key in ctx.services.keys() {
                queue.add(key);
            }
            let leftovers = ctx.endpoints.filter(|e| {
                is_managed(e)
                    && !is_leader_record(e)
                    && ctx.services.get(&ObjectKey::of(e)).is_none()
            });
            for endpoints in leftovers {
                queue.add(ObjectKey::of(endpoints.as_ref()));
            }
        });
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Next, crate::Error> {
        self.batch.started(key);
        let Some(service) = self.ctx.services.get(key) else {
            self.trigger_times.forget(key);
            return self.delete(key).await;
        };
        let Some(selector) = pods::managed_selector(&service) else {
            return Ok(Next::Idle);
        };
        let current = self.ctx.endpoints.get(key);
        if current.as_deref().is_some_and(is_leader_record) {
            return Ok(Next::Idle);
        }
        let selected = pods::selected_pods(&self.ctx.pods, &key.namespace, selector);
        let trigger = self.trigger_times.compute(key, &service, &selected);
        let subsets = desired_subsets(&service, &selected);
        match desired_endpoints(&service, current.as_deref(), subsets, trigger) {
            Some(next) => self.write(key, next, current.is_some()).await,
            None => Ok(Next::Idle),
        }
    }
}

fn is_leader_record(endpoints: &Endpoints) -> bool {
    endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION))
}

fn is_managed(endpoints: &Endpoints) -> bool {
    endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

/// A create refused because the namespace is being deleted (upstream's
/// `NamespaceTerminatingCause`).
pub(crate) fn namespace_terminating(error: &kube::Error) -> bool {
    let kube::Error::Api(status) = error else {
        return false;
    };
    let by_cause = status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"));
    status.code == 403 && (by_cause || status.message.contains("is being terminated"))
}

/// The subsets the service's selected pods make, canonically packed.
fn desired_subsets(service: &Service, selected: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = service.spec.as_ref();
    let publish_not_ready = spec
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let ports: &[ServicePort] = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let mut raw = Vec::new();
    for pod in selected {
        if !pods::should_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(address) = address_for(service, pod) else {
            continue;
        };
        let ready = publish_not_ready || pods::is_ready(pod);
        if ports.is_empty() {
            // Headless services may have no ports: the addresses alone.
            if pods::is_headless(service) {
                raw.push(one_subset(address, ready, None));
            }
            continue;
        }
        for port in ports {
            if let Some(number) = pods::find_port(pod, port) {
                raw.push(one_subset(
                    address.clone(),
                    ready,
                    Some(endpoint_port(port, number)),
                ));
            }
        }
    }
    subsets::repack(&raw)
}

fn one_subset(address: EndpointAddress, ready: bool, port: Option<EndpointPort>) -> EndpointSubset {
    let (addresses, not_ready) = if ready {
        (Some(vec![address]), None)
    } else {
        (None, Some(vec![address]))
    };
    EndpointSubset {
        addresses,
        not_ready_addresses: not_ready,
        ports: port.map(|p| vec![p]),
    }
}

/// The pod's address for the service: its IP of the service's family (the pod's
/// own first family when the service names none).
fn address_for(service: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let spec = service.spec.as_ref();
    let family = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .and_then(|f| match f.as_str() {
            "IPv6" => Some(IpFamily::V6),
            "IPv4" => Some(IpFamily::V4),
            _ => None,
        })
        .or_else(|| {
            spec.and_then(|s| s.cluster_ip.as_deref())
                .and_then(IpFamily::of)
        })
        .or_else(|| pods::pod_ips(pod).first().and_then(|ip| IpFamily::of(ip)))?;
    let ip = pods::pod_ip_of(pod, family)?;
    Some(EndpointAddress {
        ip: ip.to_string(),
        hostname: pods::hostname_for(pod, service).map(str::to_string),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target_ref: Some(pods::target_ref(pod)),
    })
}

fn endpoint_port(port: &ServicePort, number: i32) -> EndpointPort {
    EndpointPort {
        name: port.name.clone().filter(|n| !n.is_empty()),
        port: number,
        protocol: Some(pods::protocol(port).to_string()),
        app_protocol: port.app_protocol.clone(),
    }
}

/// The service's labels, marked headless or not, and as ours.
fn desired_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if pods::is_headless(service) {
        labels.insert(pods::HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(pods::HEADLESS_LABEL);
    }
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// The Endpoints to write, or `None` when `current` already says it all (the
/// trigger-time annotation alone never causes a write).
fn desired_endpoints(
    service: &Service,
    current: Option<&Endpoints>,
    mut subsets: Vec<EndpointSubset>,
    trigger: Option<Timestamp>,
) -> Option<Endpoints> {
    let truncated = subsets::truncate(&mut subsets);
    let labels = desired_labels(service);
    if let Some(current) = current {
        let marked = current
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(OVER_CAPACITY_ANNOTATION));
        if subsets::normalized(current.subsets.as_deref()) == subsets
            && current.metadata.labels.clone().unwrap_or_default() == labels
            && marked == truncated
        {
            return None;
        }
    }
    let mut next = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        ..Endpoints::default()
    });
    next.subsets = (!subsets.is_empty()).then_some(subsets);
    next.metadata.labels = Some(labels);
    let mut annotations = next.metadata.annotations.take().unwrap_or_default();
    match trigger {
        Some(time) => {
            annotations.insert(trigger_time::ANNOTATION.into(), trigger_time::format(time))
        }
        None => annotations.remove(trigger_time::ANNOTATION),
    };
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    next.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Some(next)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::pods::tests::{pod, service, service_port};
    use super::*;

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    fn two_port_service() -> Service {
        service(vec![
            service_port("web", 80, IntOrString::Int(8081)),
            service_port("http", 8000, IntOrString::String("http".into())),
        ])
    }

    #[test]
    fn ready_and_not_ready_pods_share_a_subset_with_both_ports() {
        let svc = two_port_service();
        let mut terminating = pod("c", "10.0.0.3", true);
        terminating.metadata.deletion_timestamp = Some(Time(Timestamp::default()));
        let selected = vec![
            Arc::new(pod("b", "10.0.0.2", true)),
            Arc::new(pod("a", "10.0.0.1", false)),
            Arc::new(terminating),
            Arc::new(pod("d", "", true)),
        ];
        let subsets = desired_subsets(&svc, &selected);
        assert_eq!(subsets.len(), 1, "{subsets:?}");
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.0.0.1"]);
        let ports: Vec<(Option<&str>, i32)> = subsets[0]
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.port))
            .collect();
        assert_eq!(ports, vec![(Some("http"), 8080), (Some("web"), 8081)]);
        let address = subsets[0].addresses.as_ref().map(|a| a[0].clone());
        let address = address.expect("one ready address");
        assert_eq!(address.node_name.as_deref(), Some("node-a"));
        let target = address.target_ref.expect("a target ref");
        assert_eq!(
            (
                target.kind.as_deref(),
                target.name.as_deref(),
                target.uid.as_deref()
            ),
            (Some("Pod"), Some("b"), Some("uid-b"))
        );
    }

    #[test]
    fn pods_without_the_named_port_serve_only_the_numeric_one() {
        let svc = two_port_service();
        let mut bare = pod("e", "10.0.0.5", true);
        if let Some(spec) = bare.spec.as_mut() {
            spec.containers[0].ports = None;
        }
        let selected = vec![Arc::new(pod("a", "10.0.0.1", true)), Arc::new(bare)];
        let subsets = desired_subsets(&svc, &selected);
        assert_eq!(subsets.len(), 2, "{subsets:?}");
        let with_ports: Vec<(usize, Vec<&str>)> = subsets
            .iter()
            .map(|s| (s.ports.as_ref().map_or(0, Vec::len), ips(&s.addresses)))
            .collect();
        // 8081 (numeric) is served by both; 8080 (`http`) by the pod declaring it.
        assert!(with_ports.contains(&(1, vec!["10.0.0.1", "10.0.0.5"])));
        assert!(with_ports.contains(&(1, vec!["10.0.0.1"])));
    }

    #[test]
    fn publish_not_ready_makes_every_pod_ready_even_terminating_ones() {
        let mut svc = two_port_service();
        if let Some(spec) = svc.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(true);
        }
        let mut terminating = pod("c", "10.0.0.3", false);
        terminating.metadata.deletion_timestamp = Some(Time(Timestamp::default()));
        let selected = vec![Arc::new(pod("a", "10.0.0.1", false)), Arc::new(terminating)];
        let subsets = desired_subsets(&svc, &selected);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.1", "10.0.0.3"]);
        assert_eq!(subsets[0].not_ready_addresses, None);
    }

    #[test]
    fn unchanged_state_writes_nothing_and_labels_follow_the_service() {
        let svc = two_port_service();
        let selected = vec![Arc::new(pod("a", "10.0.0.1", true))];
        let first = desired_endpoints(&svc, None, desired_subsets(&svc, &selected), None)
            .expect("a new Endpoints");
        assert_eq!(first.metadata.name.as_deref(), Some("web"));
        let labels = first.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("tier").map(String::as_str), Some("front"));
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(MANAGED_BY)
        );
        assert!(!labels.contains_key(pods::HEADLESS_LABEL));

        let trigger = Some(Timestamp::default());
        let again = desired_endpoints(
            &svc,
            Some(&first),
            desired_subsets(&svc, &selected),
            trigger,
        );
        assert!(again.is_none(), "same subsets and labels: no write");

        let mut relabelled = svc.clone();
        relabelled.metadata.labels = None;
        if let Some(spec) = relabelled.spec.as_mut() {
            spec.cluster_ip = Some("None".into());
        }
        let next = desired_endpoints(
            &relabelled,
            Some(&first),
            desired_subsets(&svc, &selected),
            trigger,
        )
        .expect("labels changed");
        let labels = next.metadata.labels.clone().unwrap_or_default();
        assert!(!labels.contains_key("tier"));
        assert!(labels.contains_key(pods::HEADLESS_LABEL));
        let annotations = next.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations
                .get(trigger_time::ANNOTATION)
                .map(String::as_str),
            Some("1970-01-01T00:00:00Z")
        );
    }

    #[test]
    fn hostname_is_set_for_pods_in_the_service_subdomain() {
        let svc = two_port_service();
        let mut p = pod("a", "10.0.0.1", true);
        if let Some(spec) = p.spec.as_mut() {
            spec.hostname = Some("a-0".into());
            spec.subdomain = Some("web".into());
        }
        let subsets = desired_subsets(&svc, &[Arc::new(p)]);
        let hostname = subsets[0]
            .addresses
            .as_ref()
            .and_then(|a| a[0].hostname.clone());
        assert_eq!(hostname.as_deref(), Some("a-0"));
    }

    #[test]
    fn the_terminating_namespace_refusal_is_recognised() {
        let refusal = |code: u16, message: &str| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: message.into(),
                ..kube::core::Status::default()
            }))
        };
        assert!(namespace_terminating(&refusal(
            403,
            "endpoints \"web\" is forbidden: unable to create new content in namespace ns because it is being terminated"
        )));
        assert!(!namespace_terminating(&refusal(403, "forbidden")));
        assert!(!namespace_terminating(&refusal(409, "is being terminated")));
    }
}
