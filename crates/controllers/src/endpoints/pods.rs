//! What the Endpoints and EndpointSlice controllers both ask of Services and Pods:
//! which pods a service selects, which of them are endpoints, on which port, and
//! which services a pod change concerns (upstream's `endpointsliceutil` and
//! `podutil.FindPort`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::runtime::{Informer, ObjectKey};

/// The label marking endpoints of a service without a cluster IP.
pub(crate) const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// An IP family, as services and EndpointSlices name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    /// Of an address; `None` when it is not an IP.
    pub(crate) fn of(ip: &str) -> Option<IpFamily> {
        match ip.parse::<IpAddr>().ok()? {
            IpAddr::V4(_) => Some(IpFamily::V4),
            IpAddr::V6(_) => Some(IpFamily::V6),
        }
    }

    /// Service `ipFamilies` entries and EndpointSlice `addressType`s.
    pub(crate) fn name(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<IpFamily> {
        match name {
            "IPv4" => Some(IpFamily::V4),
            "IPv6" => Some(IpFamily::V6),
            _ => None,
        }
    }
}

/// The selector the controllers act on: none for services without one (users manage
/// their endpoints) and for ExternalName services (they have no endpoints). An empty
/// selector counts as none, as it does upstream once it went through JSON.
pub(crate) fn managed_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Equality-based selection, as a Service selector works.
pub(crate) fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value))
}

/// The pods of the service's namespace that its selector matches.
pub(crate) fn selected_pods(
    pods: &Informer<Pod>,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<std::sync::Arc<Pod>> {
    let mut selected = pods.filter(|pod| {
        pod.metadata.namespace.as_deref() == Some(namespace) && selects(selector, pod)
    });
    // Stable order keeps the computed state (and so the writes) deterministic.
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    selected
}

/// Whether the service has no cluster IP (upstream's `!IsServiceIPSet`).
pub(crate) fn is_headless(service: &Service) -> bool {
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    ip.is_empty() || ip == "None"
}

/// The service's families: `ipFamilies`, else the cluster IP's, else IPv4 (mast is
/// IPv4-first; upstream assumes both for legacy headless services, which would add an
/// empty IPv6 slice to every service here).
pub(crate) fn service_families(service: &Service) -> Vec<IpFamily> {
    let spec = service.spec.as_ref();
    let mut families: Vec<IpFamily> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| IpFamily::from_name(f))
        .collect();
    families.dedup();
    if families.is_empty() {
        let by_cluster_ip = spec
            .and_then(|s| s.cluster_ip.as_deref())
            .and_then(IpFamily::of);
        families.push(by_cluster_ip.unwrap_or(IpFamily::V4));
    }
    families
}

/// Succeeded or Failed: the pod will never run again.
pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's Ready condition is True.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

pub(crate) fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Being deleted (graceful termination under way).
pub(crate) fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's IPs: `podIPs`, or `podIP` when the list is empty.
pub(crate) fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// The pod's first IP of `family`.
pub(crate) fn pod_ip_of(pod: &Pod, family: IpFamily) -> Option<&str> {
    pod_ips(pod)
        .into_iter()
        .find(|ip| IpFamily::of(ip) == Some(family))
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an IP, and not being deleted
/// unless terminating pods are wanted.
pub(crate) fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    !is_terminal(pod) && !pod_ips(pod).is_empty() && (include_terminating || !is_terminating(pod))
}

/// Upstream's `ShouldSetHostname`: the pod names a hostname and the service as its
/// subdomain.
pub(crate) fn hostname_for<'a>(pod: &'a Pod, service: &Service) -> Option<&'a str> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_namespace = pod.metadata.namespace == service.metadata.namespace;
    (same_namespace && spec.subdomain.is_some() && spec.subdomain == service.metadata.name)
        .then_some(hostname)
}

/// A service port's protocol, defaulted as the API server does.
pub(crate) fn protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().unwrap_or("TCP")
}

/// Upstream's `FindPort`: a numeric targetPort is the port; a named one is the
/// container port of that name and protocol (in a container or a sidecar init
/// container). `None` when the pod has no such port.
pub(crate) fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None | Some(IntOrString::Int(0)) => Some(port.port),
        Some(IntOrString::Int(number)) => Some(*number),
        Some(IntOrString::String(name)) if name.is_empty() => Some(port.port),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol(port)
                })
                .map(|p| p.container_port)
        }
    }
}

/// How an endpoint points at its pod.
pub(crate) fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// The services (keys) a pod change concerns, as upstream's
/// `GetServicesToUpdateOnPodChange`: those selecting the pod, before and after when
/// its labels changed; none when nothing an endpoint shows changed.
pub(crate) fn services_for_pod_change(
    services: &Informer<Service>,
    old: Option<&Pod>,
    new: Option<&Pod>,
) -> BTreeSet<ObjectKey> {
    let mut keys = BTreeSet::new();
    let mut add_selecting = |pod: &Pod| {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        for service in services.list_namespace(namespace) {
            if managed_selector(&service).is_some_and(|s| selects(s, pod)) {
                keys.insert(ObjectKey::of(service.as_ref()));
            }
        }
    };
    match (old, new) {
        (Some(old), Some(new)) => {
            if old.metadata.resource_version.is_some()
                && old.metadata.resource_version == new.metadata.resource_version
            {
                return keys;
            }
            let labels_changed = old.metadata.labels != new.metadata.labels
                || hostname_fields(old) != hostname_fields(new);
            if !labels_changed && !endpoint_fields_changed(old, new) {
                return keys;
            }
            add_selecting(new);
            if labels_changed {
                add_selecting(old);
            }
        }
        (None, Some(pod)) | (Some(pod), None) => add_selecting(pod),
        (None, None) => {}
    }
    keys
}

fn hostname_fields(pod: &Pod) -> (Option<&str>, Option<&str>) {
    let spec = pod.spec.as_ref();
    (
        spec.and_then(|s| s.hostname.as_deref()),
        spec.and_then(|s| s.subdomain.as_deref()),
    )
}

/// Whether anything an endpoint is computed from changed (upstream's
/// `podEndpointsChanged`, plus the phase, so a pod turning terminal leaves at once).
fn endpoint_fields_changed(old: &Pod, new: &Pod) -> bool {
    let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
    old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || is_ready(old) != is_ready(new)
        || is_terminal(old) != is_terminal(new)
        || pod_ips(old) != pod_ips(new)
        || node(old) != node(new)
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodIP, PodSpec, PodStatus, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    /// A pod in `ns` with labels app=web, a container port `http` 8080/TCP and
    /// `metrics` 9090/UDP, an IP, and the given readiness.
    pub(crate) fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                resource_version: Some("1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-a".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![
                        ContainerPort {
                            name: Some("http".into()),
                            container_port: 8080,
                            protocol: Some("TCP".into()),
                            ..ContainerPort::default()
                        },
                        ContainerPort {
                            name: Some("metrics".into()),
                            container_port: 9090,
                            protocol: Some("UDP".into()),
                            ..ContainerPort::default()
                        },
                    ]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: (!ip.is_empty()).then(|| ip.to_string()),
                pod_ips: (!ip.is_empty()).then(|| vec![PodIP { ip: ip.into() }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(
                        "2025-01-01T00:00:00Z".parse().unwrap_or_default(),
                    )),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    pub(crate) fn service_port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: (!name.is_empty()).then(|| name.to_string()),
            port,
            protocol: Some("TCP".into()),
            target_port: Some(target),
            ..ServicePort::default()
        }
    }

    /// Service `web` in `ns` selecting app=web, with the given ports.
    pub(crate) fn service(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("svc-uid".into()),
                labels: Some([("tier".to_string(), "front".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                cluster_ip: Some("10.43.0.10".into()),
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    #[test]
    fn target_ports_resolve_by_number_or_by_name_and_protocol() {
        let p = pod("a", "10.0.0.1", true);
        let cases = [
            (service_port("n", 80, IntOrString::Int(8443)), Some(8443)),
            (service_port("n", 80, IntOrString::Int(0)), Some(80)),
            (
                service_port("h", 80, IntOrString::String("http".into())),
                Some(8080),
            ),
            // The named port exists, but for UDP only.
            (
                service_port("m", 90, IntOrString::String("metrics".into())),
                None,
            ),
            (
                service_port("x", 80, IntOrString::String("nope".into())),
                None,
            ),
            (
                ServicePort {
                    protocol: Some("UDP".into()),
                    ..service_port("m", 90, IntOrString::String("metrics".into()))
                },
                Some(9090),
            ),
            (
                ServicePort {
                    target_port: None,
                    ..service_port("d", 81, IntOrString::Int(1))
                },
                Some(81),
            ),
        ];
        for (port, want) in cases {
            assert_eq!(find_port(&p, &port), want, "{port:?}");
        }
    }

    #[test]
    fn named_ports_of_sidecars_count_but_not_of_plain_init_containers() {
        let mut p = pod("a", "10.0.0.1", true);
        let init = |restart: Option<&str>| Container {
            name: "init".into(),
            restart_policy: restart.map(str::to_string),
            ports: Some(vec![ContainerPort {
                name: Some("side".into()),
                container_port: 7000,
                ..ContainerPort::default()
            }]),
            ..Container::default()
        };
        let port = service_port("s", 70, IntOrString::String("side".into()));
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![init(None)]);
        }
        assert_eq!(find_port(&p, &port), None);
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![init(Some("Always"))]);
        }
        assert_eq!(find_port(&p, &port), Some(7000));
    }

    #[test]
    fn which_pods_are_endpoints() {
        let running = pod("a", "10.0.0.1", false);
        let mut no_ip = pod("b", "", true);
        let mut failed = pod("c", "10.0.0.3", true);
        let mut deleting = pod("d", "10.0.0.4", true);
        if let Some(s) = failed.status.as_mut() {
            s.phase = Some("Failed".into());
        }
        deleting.metadata.deletion_timestamp = Some(Time(Default::default()));
        if let Some(s) = no_ip.status.as_mut() {
            s.pod_ips = Some(vec![]);
        }
        assert!(should_be_in_endpoints(&running, false));
        assert!(!should_be_in_endpoints(&no_ip, true));
        assert!(!should_be_in_endpoints(&failed, true));
        assert!(!should_be_in_endpoints(&deleting, false));
        assert!(should_be_in_endpoints(&deleting, true));
    }

    #[test]
    fn hostname_needs_the_service_as_subdomain() {
        let svc = service(vec![]);
        let mut p = pod("a", "10.0.0.1", true);
        assert_eq!(hostname_for(&p, &svc), None);
        if let Some(spec) = p.spec.as_mut() {
            spec.hostname = Some("db-0".into());
            spec.subdomain = Some("other".into());
        }
        assert_eq!(hostname_for(&p, &svc), None);
        if let Some(spec) = p.spec.as_mut() {
            spec.subdomain = Some("web".into());
        }
        assert_eq!(hostname_for(&p, &svc), Some("db-0"));
    }

    #[test]
    fn families_come_from_ip_families_then_cluster_ip() {
        let mut svc = service(vec![]);
        assert_eq!(service_families(&svc), vec![IpFamily::V4]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.cluster_ip = Some("fd00::10".into());
        }
        assert_eq!(service_families(&svc), vec![IpFamily::V6]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
        }
        assert_eq!(service_families(&svc), vec![IpFamily::V4, IpFamily::V6]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.ip_families = None;
            spec.cluster_ip = Some("None".into());
        }
        assert_eq!(service_families(&svc), vec![IpFamily::V4]);
        assert!(is_headless(&svc));
    }

    #[tokio::test]
    async fn pod_changes_reach_the_services_selecting_it_before_or_after() {
        let services: Informer<Service> = Informer::default();
        services.insert_for_test(service(vec![]));
        let mut other = service(vec![]);
        other.metadata.name = Some("api".into());
        if let Some(spec) = other.spec.as_mut() {
            spec.selector = Some([("app".to_string(), "api".to_string())].into());
        }
        services.insert_for_test(other);
        let mut no_selector = service(vec![]);
        no_selector.metadata.name = Some("manual".into());
        if let Some(spec) = no_selector.spec.as_mut() {
            spec.selector = None;
        }
        services.insert_for_test(no_selector);

        let web = ObjectKey::new("ns", "web");
        let api = ObjectKey::new("ns", "api");
        let old = pod("a", "10.0.0.1", false);
        let keys = |o: Option<&Pod>, n: Option<&Pod>| {
            services_for_pod_change(&services, o, n)
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(None, Some(&old)), vec![web.clone()]);
        assert_eq!(keys(Some(&old), None), vec![web.clone()]);

        // An annotation change: nothing an endpoint shows.
        let mut annotated = old.clone();
        annotated.metadata.resource_version = Some("2".into());
        annotated.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
        assert!(keys(Some(&old), Some(&annotated)).is_empty());

        let mut ready = annotated.clone();
        ready.metadata.resource_version = Some("3".into());
        if let Some(c) = ready
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.status = "True".into();
        }
        assert_eq!(keys(Some(&annotated), Some(&ready)), vec![web.clone()]);

        let mut relabelled = ready.clone();
        relabelled.metadata.resource_version = Some("4".into());
        relabelled.metadata.labels = Some([("app".to_string(), "api".to_string())].into());
        assert_eq!(keys(Some(&ready), Some(&relabelled)), vec![api, web]);

        // The same version again (a relist): nothing.
        assert!(keys(Some(&ready), Some(&ready)).is_empty());
    }
}
