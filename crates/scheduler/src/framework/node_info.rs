//! What the scheduler knows about one node: the Node object, the pods placed on it
//! (bound or assumed), their summed requests and the host ports they hold.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::resource::{Resource, pod_requests};

/// A pod with what every cycle needs computed once: its requests and host ports.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod.
    pub pod: Pod,
    /// Requests as the fit filter counts them.
    pub requests: Resource,
    /// Requests with upstream's defaults for unset cpu/memory, as scoring counts them.
    pub non_zero_requests: Resource,
    /// Host ports the pod's containers ask for (hostPort > 0 only).
    pub host_ports: Vec<HostPort>,
}

/// One requested host port, normalised as upstream does (empty IP is `0.0.0.0`,
/// empty protocol is `TCP`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// The host IP; `0.0.0.0` means every address.
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

/// The wildcard host IP.
pub const DEFAULT_BIND_ALL_HOST_IP: &str = "0.0.0.0";

impl HostPort {
    /// Normalises the empty IP and protocol.
    pub fn new(ip: &str, protocol: &str, port: i32) -> Self {
        Self {
            ip: if ip.is_empty() {
                DEFAULT_BIND_ALL_HOST_IP.to_string()
            } else {
                ip.to_string()
            },
            protocol: if protocol.is_empty() {
                "TCP".to_string()
            } else {
                protocol.to_string()
            },
            port,
        }
    }
}

impl PodInfo {
    /// Computes the derived fields of a pod.
    pub fn new(pod: Pod) -> Self {
        let requests = pod_requests(&pod, false);
        let non_zero_requests = pod_requests(&pod, true);
        let host_ports = pod_host_ports(&pod);
        Self {
            pod,
            requests,
            non_zero_requests,
            host_ports,
        }
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The pod's name.
    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or("")
    }

    /// The pod's UID (empty if it has none).
    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or("")
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
}

/// Host ports of the regular containers and of sidecar init containers (which keep
/// running), as upstream's `GetContainerPorts`.
fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| {
            HostPort::new(
                p.host_ip.as_deref().unwrap_or(""),
                p.protocol.as_deref().unwrap_or(""),
                p.host_port.unwrap_or(0),
            )
        })
        .collect()
}

/// Host ports in use on a node: IP → set of (protocol, port), as upstream's
/// `HostPortInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPortInfo {
    by_ip: BTreeMap<String, BTreeSet<(String, i32)>>,
}

impl HostPortInfo {
    /// Records a port in use; ports ≤ 0 are ignored.
    pub fn add(&mut self, hp: &HostPort) {
        if hp.port <= 0 {
            return;
        }
        self.by_ip
            .entry(hp.ip.clone())
            .or_default()
            .insert((hp.protocol.clone(), hp.port));
    }

    /// Forgets a port.
    pub fn remove(&mut self, hp: &HostPort) {
        if let Some(set) = self.by_ip.get_mut(&hp.ip) {
            set.remove(&(hp.protocol.clone(), hp.port));
            if set.is_empty() {
                self.by_ip.remove(&hp.ip);
            }
        }
    }

    /// Whether `hp` collides with a port in use: the same protocol and port on the same
    /// IP, or on `0.0.0.0`; a wanted `0.0.0.0` collides with the port on any IP.
    pub fn conflicts(&self, hp: &HostPort) -> bool {
        if hp.port <= 0 {
            return false;
        }
        let pp = (hp.protocol.clone(), hp.port);
        if hp.ip == DEFAULT_BIND_ALL_HOST_IP {
            return self.by_ip.values().any(|set| set.contains(&pp));
        }
        [hp.ip.as_str(), DEFAULT_BIND_ALL_HOST_IP]
            .iter()
            .any(|ip| self.by_ip.get(*ip).is_some_and(|set| set.contains(&pp)))
    }

    /// How many (ip, protocol, port) entries are recorded.
    pub fn len(&self) -> usize {
        self.by_ip.values().map(BTreeSet::len).sum()
    }

    /// Whether no port is in use.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

/// A node and the pods placed on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    node: Node,
    pods: Vec<Arc<PodInfo>>,
    requested: Resource,
    non_zero_requested: Resource,
    allocatable: Resource,
    used_ports: HostPortInfo,
}

impl NodeInfo {
    /// A node with no pods yet.
    pub fn new(node: Node) -> Self {
        let allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        Self {
            node,
            pods: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable,
            used_ports: HostPortInfo::default(),
        }
    }

    /// A node with the given pods on it.
    pub fn with_pods(node: Node, pods: impl IntoIterator<Item = Arc<PodInfo>>) -> Self {
        let mut info = Self::new(node);
        for p in pods {
            info.add_pod(p);
        }
        info
    }

    /// Replaces the Node object (after an update), keeping the pods.
    pub fn set_node(&mut self, node: Node) {
        let pods = std::mem::take(&mut self.pods);
        *self = Self::with_pods(node, pods);
    }

    /// Counts a pod on this node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        for hp in &pod.host_ports {
            self.used_ports.add(hp);
        }
        self.pods.push(pod);
    }

    /// Stops counting the pod with this UID (or, if it has none, namespace and name);
    /// returns whether it was there.
    pub fn remove_pod(&mut self, pod: &PodInfo) -> bool {
        let same = |p: &Arc<PodInfo>| {
            if pod.uid().is_empty() {
                p.namespace() == pod.namespace() && p.name() == pod.name()
            } else {
                p.uid() == pod.uid()
            }
        };
        let Some(i) = self.pods.iter().position(same) else {
            return false;
        };
        let removed = self.pods.swap_remove(i);
        self.requested.sub(&removed.requests);
        self.non_zero_requested.sub(&removed.non_zero_requests);
        for hp in &removed.host_ports {
            self.used_ports.remove(hp);
        }
        // Another pod may hold the same port (it should not, but the cache must not
        // forget it if it does).
        for p in &self.pods {
            for hp in &p.host_ports {
                self.used_ports.add(hp);
            }
        }
        true
    }

    /// The Node object.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// The node's labels (empty if none).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// The pods on the node.
    pub fn pods(&self) -> &[Arc<PodInfo>] {
        &self.pods
    }

    /// Summed requests of the pods, as the fit filter counts them.
    pub fn requested(&self) -> &Resource {
        &self.requested
    }

    /// Summed requests with upstream's scoring defaults.
    pub fn non_zero_requested(&self) -> &Resource {
        &self.non_zero_requested
    }

    /// The node's allocatable resources.
    pub fn allocatable(&self) -> &Resource {
        &self.allocatable
    }

    /// Host ports in use.
    pub fn used_ports(&self) -> &HostPortInfo {
        &self.used_ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, container};

    #[test]
    fn sums_pods_and_ports() {
        let a = Arc::new(PodInfo::new(
            PodBuilder::new("a")
                .uid("ua")
                .container(container("100m", "1Mi"))
                .host_port("", "", 80)
                .build(),
        ));
        let b = Arc::new(PodInfo::new(
            PodBuilder::new("b")
                .uid("ub")
                .container(container("200m", "2Mi"))
                .build(),
        ));
        let mut info = NodeInfo::with_pods(
            NodeBuilder::new("n").capacity("4", "8Gi", 110).build(),
            [a.clone(), b],
        );
        assert_eq!(info.requested().milli_cpu, 300);
        assert_eq!(info.requested().memory, 3 << 20);
        assert_eq!(info.allocatable().allowed_pod_number, 110);
        assert_eq!(info.used_ports().len(), 1);
        assert!(info.remove_pod(&a));
        assert!(!info.remove_pod(&a));
        assert_eq!(info.requested().milli_cpu, 200);
        assert!(info.used_ports().is_empty());
        assert_eq!(info.pods().len(), 1);
    }

    #[test]
    fn host_port_conflicts() {
        let mut used = HostPortInfo::default();
        used.add(&HostPort::new("127.0.0.1", "TCP", 80));
        used.add(&HostPort::new("", "UDP", 53));
        let cases = [
            (
                "same ip, protocol, port",
                HostPort::new("127.0.0.1", "", 80),
                true,
            ),
            ("other ip", HostPort::new("127.0.0.2", "TCP", 80), false),
            (
                "wildcard wants a port used on one ip",
                HostPort::new("", "TCP", 80),
                true,
            ),
            (
                "other protocol",
                HostPort::new("127.0.0.1", "UDP", 80),
                false,
            ),
            (
                "specific ip against used wildcard",
                HostPort::new("10.0.0.1", "UDP", 53),
                true,
            ),
            (
                "other protocol against wildcard",
                HostPort::new("10.0.0.1", "TCP", 53),
                false,
            ),
            ("port 0 never conflicts", HostPort::new("", "TCP", 0), false),
        ];
        for (name, hp, want) in cases {
            assert_eq!(used.conflicts(&hp), want, "{name}");
        }
    }
}
