//! What the kubelet's tasks share: the client, the configuration, the host, and one
//! [`NodeState`] per node this process runs (one, or N hollow nodes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use tokio::sync::watch;

use crate::config::KubeletConfig;
use crate::host::HostInfo;
use crate::metrics::{Gauges, Metrics};
use crate::runtime::Runtime;

/// Shared by every task of the process.
pub struct Shared {
    pub client: Client,
    pub config: KubeletConfig,
    pub host: HostInfo,
    /// The InternalIP every node publishes (and the pods' hostIP).
    pub node_ip: IpAddr,
    /// The port the kubelet's HTTP server bound (published in daemonEndpoints).
    pub port: u16,
    /// The nodes, in the order they were given (leases and status go round in it).
    pub nodes: Vec<Arc<NodeState>>,
    pub by_name: HashMap<String, Arc<NodeState>>,
    pub metrics: Metrics,
    /// All Services, for pods' service environment variables.
    pub services: crate::pods::service_env::ServiceCache,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The kube client has no Debug.
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("node_ip", &self.node_ip)
            .field("port", &self.port)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(
        client: Client,
        config: KubeletConfig,
        host: HostInfo,
        port: u16,
        nodes: Vec<(String, Arc<dyn Runtime>)>,
    ) -> Self {
        let node_ip = config.node_ip.unwrap_or(host.default_ip);
        let nodes: Vec<Arc<NodeState>> = nodes
            .into_iter()
            .map(|(name, runtime)| Arc::new(NodeState::new(name, runtime)))
            .collect();
        let by_name = nodes.iter().map(|n| (n.name.clone(), n.clone())).collect();
        Shared {
            services: crate::pods::service_env::ServiceCache::new(client.clone()),
            client,
            config,
            host,
            node_ip,
            port,
            nodes,
            by_name,
            metrics: Metrics::default(),
        }
    }

    /// The live gauges for `/metrics`.
    pub fn gauges(&self) -> Gauges {
        let mut gauges = Gauges {
            nodes: self.nodes.len(),
            ..Gauges::default()
        };
        for node in &self.nodes {
            if node.registration().uid.is_some() {
                gauges.registered_nodes += 1;
            }
            for worker in node.workers().values() {
                gauges.pod_workers += 1;
                let pod = worker.borrow();
                let Some(status) = pod.as_ref().and_then(|p| p.status.as_ref()) else {
                    continue;
                };
                if status.phase.as_deref() == Some("Running") {
                    gauges.running_pods += 1;
                }
                gauges.running_containers += status
                    .container_statuses
                    .iter()
                    .flatten()
                    .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                    .count();
            }
        }
        gauges
    }

    /// Every pod some worker runs, as the API last showed it.
    pub fn pods(&self) -> Vec<Pod> {
        let mut pods = Vec::new();
        for node in &self.nodes {
            for worker in node.workers().values() {
                if let Some(pod) = worker.borrow().as_ref() {
                    pods.push((**pod).clone());
                }
            }
        }
        pods
    }

    /// The node running pod `namespace/name`, and the pod.
    pub fn find_pod(&self, namespace: &str, name: &str) -> Option<(Arc<NodeState>, Arc<Pod>)> {
        for node in &self.nodes {
            for worker in node.workers().values() {
                let found = worker.borrow().as_ref().and_then(|pod| {
                    (pod.metadata.namespace.as_deref() == Some(namespace)
                        && pod.metadata.name.as_deref() == Some(name))
                    .then(|| pod.clone())
                });
                if let Some(pod) = found {
                    return Some((node.clone(), pod));
                }
            }
        }
        None
    }
}

/// The latest API object of a pod, for its worker; None once it left the API.
pub type PodSender = watch::Sender<Option<Arc<Pod>>>;

/// One node of this process.
#[derive(Debug)]
pub struct NodeState {
    pub name: String,
    pub runtime: Arc<dyn Runtime>,
    /// The pod CIDR the runtime was given (the flag, or the Node's spec.podCIDR); pod
    /// workers waiting for the network wake when it changes.
    pub pod_cidr: watch::Sender<Option<String>>,
    registration: Mutex<Registration>,
    /// Pod workers by pod UID.
    workers: Mutex<HashMap<String, PodSender>>,
}

/// What the kubelet knows of its Node object.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Set once the Node exists (created or found); cleared when it is deleted.
    pub uid: Option<String>,
    /// The status last written, and when (for the report frequency).
    pub last_status: Option<k8s_openapi::api::core::v1::NodeStatus>,
    pub last_status_at: Option<std::time::Instant>,
}

impl NodeState {
    pub fn new(name: String, runtime: Arc<dyn Runtime>) -> Self {
        NodeState {
            name,
            runtime,
            pod_cidr: watch::channel(None).0,
            registration: Mutex::new(Registration::default()),
            workers: Mutex::new(HashMap::new()),
        }
    }

    /// The registration record. Held briefly, never across an await.
    pub fn registration(&self) -> MutexGuard<'_, Registration> {
        // Nothing panics while holding these locks; a poisoned one is still usable.
        self.registration.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pod workers. Held briefly, never across an await.
    pub fn workers(&self) -> MutexGuard<'_, HashMap<String, PodSender>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }
}
