//! The proxy's model: what every service port should send where. Built by a pure
//! function from the Services and EndpointSlices the watchers hold, so the data paths
//! (nftables, userspace) only ever see a checked, sorted, deduplicated picture.
//!
//! Semantics follow kube-proxy's:
//! - headless services (`clusterIP: None`), ExternalName services, services without an
//!   allocated IPv4 ClusterIP and services labelled `service.kubernetes.io/service-proxy-name`
//!   (meant for another proxy) are skipped;
//! - slices join their service through the `kubernetes.io/service-name` label; only
//!   IPv4 slices count, and an endpoint's first address is the one used;
//! - a port of the slice matches a service port by name and protocol;
//! - ready endpoints are used; when a port has none, serving-and-terminating ones are
//!   (upstream's ProxyTerminatingEndpoints), so draining pods still answer;
//! - `internalTrafficPolicy: Local` keeps only this node's endpoints for ClusterIP
//!   traffic, `externalTrafficPolicy: Local` only this node's for NodePort traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Service, ServicePort as ApiServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label joining an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Services carrying this label belong to another proxy.
pub const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";
/// Upstream's default session affinity timeout (three hours).
pub const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

/// A transport protocol a service port may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(text: Option<&str>) -> Option<Protocol> {
        match text.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// nftables' name (`meta l4proto tcp`).
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Names one port of one service: namespace, service, protocol and service port number
/// (unique within a service, and never empty, unlike the port's name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

impl fmt::Display for ServicePortName {
    /// `ns/name/tcp/80`: Kubernetes names hold no `/`, so this is unambiguous, and it
    /// is a valid nftables identifier tail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.namespace,
            self.name,
            self.protocol.nft(),
            self.port
        )
    }
}

/// A backend: the pod address and the target port resolved by the slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// One service port and where its traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub id: ServicePortName,
    pub cluster_ip: Ipv4Addr,
    /// The NodePort, for NodePort and LoadBalancer services that have one.
    pub node_port: Option<u16>,
    /// ClientIP session affinity's timeout in seconds; `None` without affinity.
    pub affinity_seconds: Option<u32>,
    /// Every usable endpoint (ready, or serving-and-terminating as a fallback), sorted.
    pub endpoints: Vec<Endpoint>,
    /// Endpoints for ClusterIP traffic: all of them, or this node's under
    /// `internalTrafficPolicy: Local`.
    pub cluster_endpoints: Vec<Endpoint>,
    /// Endpoints for NodePort traffic: all of them, or this node's under
    /// `externalTrafficPolicy: Local`.
    pub external_endpoints: Vec<Endpoint>,
    /// `externalTrafficPolicy: Local`: NodePort traffic keeps its source address.
    pub external_local: bool,
}

/// Every proxied service port, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub ports: Vec<ServicePort>,
}

impl Model {
    /// How many endpoints the model holds over all ports.
    pub fn endpoint_count(&self) -> usize {
        self.ports.iter().map(|p| p.endpoints.len()).sum()
    }
}

/// What `build` needs to know about the node it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeContext {
    /// The node's name (for traffic policies `Local`).
    pub node_name: String,
}

/// Builds the model from the watched objects. Never fails: an object it cannot use is
/// skipped (and the API server's validation makes that rare).
pub fn build<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node: &NodeContext,
) -> Model {
    // Slices by (namespace, service name).
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        by_service
            .entry((namespace, service.clone()))
            .or_default()
            .push(slice);
    }
    let mut ports = Vec::new();
    for service in services {
        let Some(base) = proxied(service) else {
            continue;
        };
        let key = (base.namespace.clone(), base.name.clone());
        let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let spec = service.spec.as_ref();
        for port in spec.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
            if let Some(p) = service_port(&base, port, slices, node) {
                ports.push(p);
            }
        }
    }
    ports.sort_by(|a, b| a.id.cmp(&b.id));
    ports.dedup_by(|a, b| a.id == b.id);
    Model { ports }
}

/// The parts of a service every one of its ports shares.
struct ServiceBase {
    namespace: String,
    name: String,
    cluster_ip: Ipv4Addr,
    node_ports: bool,
    affinity_seconds: Option<u32>,
    internal_local: bool,
    external_local: bool,
}

/// The service's shared facts, or `None` when the proxy leaves it alone.
fn proxied(service: &Service) -> Option<ServiceBase> {
    let meta = &service.metadata;
    if meta
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME_LABEL))
    {
        return None;
    }
    let spec = service.spec.as_ref()?;
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    if ty == "ExternalName" {
        return None;
    }
    // `None` (headless), empty (not allocated yet) and IPv6 all fail to parse.
    let cluster_ip: Ipv4Addr = spec.cluster_ip.as_deref()?.parse().ok()?;
    let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    Some(ServiceBase {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone()?,
        cluster_ip,
        node_ports: matches!(ty, "NodePort" | "LoadBalancer"),
        affinity_seconds,
        internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
        external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
    })
}

fn service_port(
    base: &ServiceBase,
    port: &ApiServicePort,
    slices: &[&EndpointSlice],
    node: &NodeContext,
) -> Option<ServicePort> {
    let protocol = Protocol::parse(port.protocol.as_deref())?;
    let number = u16::try_from(port.port).ok().filter(|p| *p != 0)?;
    let port_name = port.name.clone().unwrap_or_default();
    let (endpoints, nodes) = endpoints_for(slices, &port_name, protocol);
    let local = |all: &[Endpoint]| -> Vec<Endpoint> {
        all.iter()
            .copied()
            .filter(|e| nodes.get(e).is_some_and(|n| n == &node.node_name))
            .collect()
    };
    let cluster_endpoints = if base.internal_local {
        local(&endpoints)
    } else {
        endpoints.clone()
    };
    let external_endpoints = if base.external_local {
        local(&endpoints)
    } else {
        endpoints.clone()
    };
    let node_port = if base.node_ports {
        port.node_port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    } else {
        None
    };
    Some(ServicePort {
        id: ServicePortName {
            namespace: base.namespace.clone(),
            name: base.name.clone(),
            protocol,
            port: number,
        },
        cluster_ip: base.cluster_ip,
        node_port,
        affinity_seconds: base.affinity_seconds,
        endpoints,
        cluster_endpoints,
        external_endpoints,
        external_local: base.external_local,
    })
}

/// The usable endpoints of one service port over all its slices (sorted, without
/// duplicates), and the node each one runs on.
fn endpoints_for(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
) -> (Vec<Endpoint>, BTreeMap<Endpoint, String>) {
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    let mut nodes = BTreeMap::new();
    for slice in slices {
        let target = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(target) = target
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
        else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            let Some(ip) = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let conditions = endpoint.conditions.as_ref();
            // Unknown readiness reads as ready, as the API documents; serving
            // defaults to readiness; terminating to false.
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let is_terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let e = Endpoint { ip, port: target };
            if is_ready && !is_terminating {
                ready.insert(e);
            } else if serving && is_terminating {
                terminating.insert(e);
            } else {
                continue;
            }
            if let Some(node) = &endpoint.node_name {
                nodes.insert(e, node.clone());
            }
        }
    }
    let chosen = if ready.is_empty() { terminating } else { ready };
    (chosen.into_iter().collect(), nodes)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        ClientIPConfig, ServicePort as ApiPort, ServiceSpec, SessionAffinityConfig,
    };
    use k8s_openapi::api::discovery::v1::{
        Endpoint as SliceEndpoint, EndpointConditions, EndpointPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    pub fn service(name: &str, ip: &str, ports: &[(&str, i32)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                type_: Some("ClusterIP".into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p)| ApiPort {
                            name: Some((*n).into()),
                            port: *p,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// (ip, ready, serving, terminating, node)
    pub type Ep<'a> = (&'a str, bool, bool, bool, &'a str);

    pub fn slice(service: &str, suffix: &str, port: (&str, i32), eps: &[Ep]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{service}-{suffix}")),
                namespace: Some("default".into()),
                labels: Some(BTreeMap::from([(
                    SERVICE_NAME_LABEL.to_string(),
                    service.to_string(),
                )])),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            ports: Some(vec![EndpointPort {
                name: Some(port.0.into()),
                port: Some(port.1),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            endpoints: Some(
                eps.iter()
                    .map(|(ip, ready, serving, terminating, node)| SliceEndpoint {
                        addresses: vec![(*ip).into()],
                        conditions: Some(EndpointConditions {
                            ready: Some(*ready),
                            serving: Some(*serving),
                            terminating: Some(*terminating),
                        }),
                        node_name: Some((*node).into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }
    }

    fn ep(ip: &str, port: u16) -> Endpoint {
        Endpoint {
            ip: ip.parse().expect("ip"),
            port,
        }
    }

    fn node() -> NodeContext {
        NodeContext {
            node_name: "n1".into(),
        }
    }

    #[test]
    fn endpoints_by_condition() {
        // (name, endpoints, expected)
        let cases: Vec<(&str, Vec<Ep>, Vec<Endpoint>)> = vec![
            ("none", vec![], vec![]),
            (
                "ready only",
                vec![
                    ("10.42.0.3", true, true, false, "n1"),
                    ("10.42.0.2", true, true, false, "n2"),
                    ("10.42.0.4", false, false, false, "n1"),
                ],
                vec![ep("10.42.0.2", 8080), ep("10.42.0.3", 8080)],
            ),
            (
                "terminating ignored while ready exist",
                vec![
                    ("10.42.0.2", true, true, false, "n1"),
                    ("10.42.0.5", false, true, true, "n1"),
                ],
                vec![ep("10.42.0.2", 8080)],
            ),
            (
                "terminating fallback",
                vec![
                    ("10.42.0.5", false, true, true, "n1"),
                    ("10.42.0.6", false, false, true, "n1"),
                    ("10.42.0.7", false, false, false, "n1"),
                ],
                vec![ep("10.42.0.5", 8080)],
            ),
        ];
        for (name, eps, want) in cases {
            let svc = service("web", "10.43.0.10", &[("http", 80)]);
            let sl = slice("web", "a", ("http", 8080), &eps);
            let model = build([&svc], [&sl], &node());
            assert_eq!(model.ports.len(), 1, "{name}");
            assert_eq!(model.ports[0].endpoints, want, "{name}");
            assert_eq!(model.ports[0].cluster_endpoints, want, "{name}");
        }
    }

    #[test]
    fn skipped_services() {
        let mut headless = service("headless", "None", &[("http", 80)]);
        let unallocated = service("pending", "", &[("http", 80)]);
        let mut external = service("ext", "10.43.0.11", &[("http", 80)]);
        if let Some(spec) = external.spec.as_mut() {
            spec.type_ = Some("ExternalName".into());
        }
        let mut other = service("other", "10.43.0.12", &[("http", 80)]);
        other.metadata.labels = Some(BTreeMap::from([(
            SERVICE_PROXY_NAME_LABEL.to_string(),
            "x".to_string(),
        )]));
        let v6 = service("v6", "fd00::1", &[("http", 80)]);
        let kept = service("kept", "10.43.0.13", &[("http", 80)]);
        headless.metadata.labels = None;
        let model = build(
            [&headless, &unallocated, &external, &other, &v6, &kept],
            [],
            &node(),
        );
        let names: Vec<&str> = model.ports.iter().map(|p| p.id.name.as_str()).collect();
        assert_eq!(names, ["kept"]);
    }

    #[test]
    fn slices_join_by_label_port_name_and_namespace() {
        let svc = service("web", "10.43.0.10", &[("http", 80), ("metrics", 9090)]);
        let a = slice(
            "web",
            "a",
            ("http", 8080),
            &[("10.42.0.2", true, true, false, "n1")],
        );
        let b = slice(
            "web",
            "b",
            ("metrics", 9100),
            &[("10.42.0.2", true, true, false, "n1")],
        );
        // Same endpoint listed twice (a slice move in flight) counts once.
        let dup = slice(
            "web",
            "c",
            ("http", 8080),
            &[("10.42.0.2", true, true, false, "n1")],
        );
        let mut elsewhere = slice(
            "web",
            "d",
            ("http", 8080),
            &[("10.42.9.9", true, true, false, "n1")],
        );
        elsewhere.metadata.namespace = Some("other".into());
        let unrelated = slice(
            "api",
            "a",
            ("http", 8080),
            &[("10.42.8.8", true, true, false, "n1")],
        );
        let model = build([&svc], [&a, &b, &dup, &elsewhere, &unrelated], &node());
        assert_eq!(model.ports.len(), 2);
        assert_eq!(model.ports[0].id.to_string(), "default/web/tcp/80");
        assert_eq!(model.ports[0].endpoints, vec![ep("10.42.0.2", 8080)]);
        assert_eq!(model.ports[1].id.to_string(), "default/web/tcp/9090");
        assert_eq!(model.ports[1].endpoints, vec![ep("10.42.0.2", 9100)]);
    }

    #[test]
    fn node_ports_affinity_and_policies() {
        let mut svc = service("web", "10.43.0.10", &[("http", 80)]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.type_ = Some("NodePort".into());
            if let Some(p) = spec.ports.as_mut() {
                p[0].node_port = Some(30080);
            }
            spec.session_affinity = Some("ClientIP".into());
            spec.internal_traffic_policy = Some("Local".into());
            spec.external_traffic_policy = Some("Local".into());
        }
        let sl = slice(
            "web",
            "a",
            ("http", 8080),
            &[
                ("10.42.0.2", true, true, false, "n1"),
                ("10.42.1.2", true, true, false, "n2"),
            ],
        );
        let model = build([&svc], [&sl], &node());
        let port = &model.ports[0];
        assert_eq!(port.node_port, Some(30080));
        assert_eq!(port.affinity_seconds, Some(DEFAULT_AFFINITY_SECONDS));
        assert_eq!(port.endpoints.len(), 2);
        assert_eq!(port.cluster_endpoints, vec![ep("10.42.0.2", 8080)]);
        assert_eq!(port.external_endpoints, vec![ep("10.42.0.2", 8080)]);
        assert!(port.external_local);

        // A ClusterIP service never gets a node port, even if one is written.
        if let Some(spec) = svc.spec.as_mut() {
            spec.type_ = Some("ClusterIP".into());
            spec.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(60),
                }),
            });
        }
        let model = build([&svc], [&sl], &node());
        assert_eq!(model.ports[0].node_port, None);
        assert_eq!(model.ports[0].affinity_seconds, Some(60));
    }
}
