//! What a service's EndpointSlices should hold: per address type, the selected pods'
//! endpoints grouped by the ports they resolve to (upstream's `podToEndpoint`,
//! `getEndpointPorts`, `setEndpointSliceLabels`, `newEndpointSlice`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::endpoints::pods::{self, IpFamily};

/// Who manages a slice; slices without our value are someone else's.
pub(crate) const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub(crate) const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The service a slice belongs to.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A port set's identity: every field of every port, sorted (upstream's
/// `PortMapKey`). Names and protocols as the API server defaults them.
pub(crate) type PortsKey = Vec<(String, i32, String, Option<String>)>;

pub(crate) fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut key: PortsKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone(),
            )
        })
        .collect();
    key.sort();
    key
}

/// An endpoint's identity within a port group (upstream's endpoint hash): its
/// addresses, hostname and pod; conditions, node and zone may change in place.
pub(crate) type EndpointKey = (Vec<String>, Option<String>, Option<String>, Option<String>);

pub(crate) fn endpoint_key(endpoint: &Endpoint) -> EndpointKey {
    let mut addresses = endpoint.addresses.clone();
    addresses.sort();
    let target = endpoint.target_ref.as_ref();
    (
        addresses,
        endpoint.hostname.clone(),
        target.and_then(|t| t.namespace.clone()),
        target.and_then(|t| t.name.clone()),
    )
}

/// The endpoints wanted with one set of ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Group {
    pub(crate) ports: Vec<EndpointPort>,
    pub(crate) endpoints: BTreeMap<EndpointKey, Endpoint>,
}

/// Port groups of one address type.
pub(crate) type Groups = BTreeMap<PortsKey, Group>;

#[derive(Debug, Default)]
pub(crate) struct Desired {
    /// One entry per address type the service supports (possibly without groups).
    pub(crate) by_family: BTreeMap<IpFamily, Groups>,
    /// Nodes that selected pods name but that do not exist: their pods are left out
    /// for now and the service is synced again (upstream does the same).
    pub(crate) missing_nodes: BTreeSet<String>,
}

/// The desired endpoints of `service` over its selected pods; `node` looks a node up.
pub(crate) fn desired(
    service: &Service,
    selected: &[Arc<Pod>],
    node: impl Fn(&str) -> Option<Arc<Node>>,
) -> Desired {
    let publish_not_ready = publish_not_ready(service);
    let mut desired = Desired::default();
    for family in pods::service_families(service) {
        let mut groups = Groups::new();
        for pod in selected {
            // Terminating pods stay, with their conditions telling.
            if !pods::should_be_in_endpoints(pod, true) {
                continue;
            }
            let ports = endpoint_ports(service, pod);
            let group = groups.entry(ports_key(&ports)).or_insert_with(|| Group {
                ports,
                endpoints: BTreeMap::new(),
            });
            let node_name = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or_default();
            let node = node(node_name);
            if node.is_none() && !publish_not_ready {
                desired.missing_nodes.insert(node_name.to_string());
                continue;
            }
            let endpoint = endpoint(pod, node.as_deref(), service, family);
            if !endpoint.addresses.is_empty() {
                group.endpoints.insert(endpoint_key(&endpoint), endpoint);
            }
        }
        desired.by_family.insert(family, groups);
    }
    desired
}

fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The service's ports as this pod serves them; ports it cannot resolve are left
/// out (upstream's `getEndpointPorts`).
pub(crate) fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_deref());
    ports
        .unwrap_or_default()
        .iter()
        .filter_map(|port| {
            let number = pods::find_port(pod, port)?;
            Some(EndpointPort {
                name: Some(port.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(pods::protocol(port).to_string()),
                app_protocol: port.app_protocol.clone(),
            })
        })
        .collect()
}

/// The conditions upstream gives an endpoint: serving is the pod's readiness;
/// ready is serving and not terminating (or always, when the service publishes
/// not-ready addresses).
pub(crate) fn conditions(pod: &Pod, publish_not_ready: bool) -> EndpointConditions {
    let serving = pods::is_ready(pod);
    let terminating = pods::is_terminating(pod);
    EndpointConditions {
        ready: Some(publish_not_ready || (serving && !terminating)),
        serving: Some(serving),
        terminating: Some(terminating),
    }
}

/// Upstream's `podToEndpoint`.
pub(crate) fn endpoint(
    pod: &Pod,
    node: Option<&Node>,
    service: &Service,
    family: IpFamily,
) -> Endpoint {
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(ZONE_LABEL))
        .filter(|z| !z.is_empty())
        .cloned();
    Endpoint {
        addresses: pods::pod_ip_of(pod, family)
            .map(str::to_string)
            .into_iter()
            .collect(),
        conditions: Some(conditions(pod, publish_not_ready(service))),
        hostname: pods::hostname_for(pod, service).map(str::to_string),
        node_name: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        target_ref: Some(pods::target_ref(pod)),
        zone,
        ..Endpoint::default()
    }
}

/// The labels of the service's slices: the service's own (but for the reserved
/// ones), headless or not, the service name and us as manager.
pub(crate) fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| *k != SERVICE_NAME_LABEL && *k != MANAGED_BY_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if pods::is_headless(service) {
        labels.insert(pods::HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(pods::HEADLESS_LABEL);
    }
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

/// The controller reference every slice carries, so the garbage collector removes
/// the slices with the service.
pub(crate) fn owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether the slice belongs to this service (and not to a deleted one of the same
/// name).
pub(crate) fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let uid = service.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| !uid.is_empty() && o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

/// A new, empty slice of the service (named by the API server from the prefix).
pub(crate) fn new_slice(
    service: &Service,
    family: IpFamily,
    ports: Vec<EndpointPort>,
) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels(service)),
            owner_references: Some(vec![owner_reference(service)]),
            ..ObjectMeta::default()
        },
        address_type: family.name().into(),
        endpoints: None,
        ports: (!ports.is_empty()).then_some(ports),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::endpoints::pods::tests::{pod, service, service_port};

    fn node(name: &str, zone: Option<&str>) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: zone.map(|z| [(ZONE_LABEL.to_string(), z.to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        })
    }

    #[test]
    fn conditions_follow_readiness_and_termination() {
        let deleting = |ready: bool| {
            let mut p = pod("a", "10.0.0.1", ready);
            p.metadata.deletion_timestamp = Some(Time(Timestamp::default()));
            p
        };
        // (pod, publishNotReadyAddresses) -> (ready, serving, terminating)
        let cases = [
            (pod("a", "10.0.0.1", true), false, (true, true, false)),
            (pod("a", "10.0.0.1", false), false, (false, false, false)),
            (deleting(true), false, (false, true, true)),
            (deleting(false), false, (false, false, true)),
            (pod("a", "10.0.0.1", false), true, (true, false, false)),
            (deleting(true), true, (true, true, true)),
        ];
        for (p, publish, (ready, serving, terminating)) in cases {
            let c = conditions(&p, publish);
            assert_eq!(
                (c.ready, c.serving, c.terminating),
                (Some(ready), Some(serving), Some(terminating)),
                "ready={} deleting={} publish={publish}",
                pods::is_ready(&p),
                pods::is_terminating(&p),
            );
        }
    }

    #[test]
    fn pods_group_by_resolved_ports_with_zone_and_missing_nodes() {
        let svc = service(vec![
            service_port("web", 80, IntOrString::Int(8081)),
            service_port("http", 8000, IntOrString::String("http".into())),
        ]);
        let mut bare = pod("b", "10.0.0.2", true);
        if let Some(spec) = bare.spec.as_mut() {
            spec.containers[0].ports = None;
        }
        let mut elsewhere = pod("c", "10.0.0.3", true);
        if let Some(spec) = elsewhere.spec.as_mut() {
            spec.node_name = Some("gone".into());
        }
        let mut finished = pod("d", "10.0.0.4", true);
        if let Some(s) = finished.status.as_mut() {
            s.phase = Some("Succeeded".into());
        }
        let selected: Vec<Arc<Pod>> = [pod("a", "10.0.0.1", false), bare, elsewhere, finished]
            .into_iter()
            .map(Arc::new)
            .collect();
        let lookup = |name: &str| (name == "node-a").then(|| node("node-a", Some("z1")));
        let desired = desired(&svc, &selected, lookup);
        assert_eq!(desired.missing_nodes, BTreeSet::from(["gone".to_string()]));
        let groups = &desired.by_family[&IpFamily::V4];
        assert_eq!(groups.len(), 2, "{groups:?}");
        let names = |g: &Group| -> Vec<String> {
            g.endpoints
                .values()
                .filter_map(|e| e.target_ref.as_ref().and_then(|t| t.name.clone()))
                .collect()
        };
        let both = groups
            .values()
            .find(|g| g.ports.len() == 2)
            .expect("a group with both ports");
        // `c` resolves both ports too but its node is missing.
        assert_eq!(names(both), vec!["a"]);
        let endpoint = both.endpoints.values().next().expect("pod a");
        assert_eq!(endpoint.zone.as_deref(), Some("z1"));
        assert_eq!(endpoint.node_name.as_deref(), Some("node-a"));
        assert_eq!(endpoint.addresses, vec!["10.0.0.1"]);
        let numeric = groups
            .values()
            .find(|g| g.ports.len() == 1)
            .expect("a group with the numeric port");
        assert_eq!(names(numeric), vec!["b"]);
        assert_eq!(numeric.ports[0].port, Some(8081));
        assert_eq!(numeric.ports[0].name.as_deref(), Some("web"));
    }

    #[test]
    fn labels_are_the_services_plus_the_reserved_ones() {
        let mut svc = service(vec![]);
        if let Some(l) = svc.metadata.labels.as_mut() {
            l.insert(MANAGED_BY_LABEL.into(), "someone".into());
        }
        let got = labels(&svc);
        assert_eq!(got.get("tier").map(String::as_str), Some("front"));
        assert_eq!(
            got.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert_eq!(got.get(SERVICE_NAME_LABEL).map(String::as_str), Some("web"));
        assert!(!got.contains_key(pods::HEADLESS_LABEL));
        let slice = new_slice(&svc, IpFamily::V4, vec![]);
        assert!(owned_by(&slice, &svc));
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(slice.address_type, "IPv4");
        let mut other = svc.clone();
        other.metadata.uid = Some("another".into());
        assert!(!owned_by(&slice, &other));
    }
}
