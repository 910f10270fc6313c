//! The Node object: registration (create, or take over an existing one), the status
//! (capacity, allocatable, conditions, addresses, nodeInfo, the kubelet's port), and
//! the loops that keep it current:
//!
//! - the status loop recomputes each node's status every `node_status_update_frequency`
//!   and writes it through `nodes/status` when it changed or when
//!   `node_status_report_frequency` passed since the last write (upstream's rule since
//!   node leases carry the heartbeat); unregistered nodes are (re)registered there;
//! - the node watch follows the Nodes for their pod CIDR (the IPAM controller sets
//!   spec.podCIDR) and notices a Node deleted under the kubelet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

use crate::config::{self, KubeletConfig};
use crate::host::HostInfo;
use crate::metrics::Metrics;
use crate::state::{NodeState, Shared};

/// The version the Node reports.
pub const KUBELET_VERSION: &str = "v1.37.0-mast";

/// Upstream's default hard eviction threshold `memory.available<100Mi`, which
/// allocatable memory leaves out.
const EVICTION_MEMORY_BYTES: u128 = 100 << 20;
/// Upstream's `nodefs.available<10%`: allocatable ephemeral storage is 90 %.
const EVICTION_NODEFS_PERCENT: u64 = 10;

/// Requests in flight at once when registering or updating many nodes.
const CONCURRENCY: usize = 16;

/// Why a node could not be registered or updated.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node {node}: {source}")]
    Api {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("node {node}: {message}")]
    Invalid { node: String, message: String },
}

/// The labels the kubelet owns on its Node.
pub fn labels(node: &str, host: &HostInfo) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), node.to_string()),
        (
            "kubernetes.io/os".to_string(),
            host.operating_system.clone(),
        ),
        ("kubernetes.io/arch".to_string(), host.architecture.clone()),
        (
            "beta.kubernetes.io/os".to_string(),
            host.operating_system.clone(),
        ),
        (
            "beta.kubernetes.io/arch".to_string(),
            host.architecture.clone(),
        ),
    ])
}

/// Resource name to quantity, as in capacity and allocatable.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Capacity and allocatable: the host's (or the flags'), with upstream's default
/// eviction thresholds taken out of allocatable.
pub fn resources(
    config: &KubeletConfig,
    host: &HostInfo,
) -> Result<(ResourceList, ResourceList), config::ConfigError> {
    let cpu = match &config.cpu {
        Some(cpu) => {
            config::parse_millicores(cpu)?;
            cpu.trim().to_string()
        }
        None => host.cpus.to_string(),
    };
    let (memory, memory_bytes) = match &config.memory {
        Some(memory) => (memory.trim().to_string(), config::parse_bytes(memory)?),
        None => (
            format!("{}Ki", host.memory_kib),
            u128::from(host.memory_kib) * 1024,
        ),
    };
    let allocatable_memory = memory_bytes.saturating_sub(EVICTION_MEMORY_BYTES) / 1024;
    let pods = config.max_pods.to_string();
    let mut capacity = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.clone())),
        ("memory".to_string(), Quantity(memory)),
        ("pods".to_string(), Quantity(pods.clone())),
        ("hugepages-1Gi".to_string(), Quantity("0".into())),
        ("hugepages-2Mi".to_string(), Quantity("0".into())),
    ]);
    let mut allocatable = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu)),
        (
            "memory".to_string(),
            Quantity(format!("{allocatable_memory}Ki")),
        ),
        ("pods".to_string(), Quantity(pods)),
        ("hugepages-1Gi".to_string(), Quantity("0".into())),
        ("hugepages-2Mi".to_string(), Quantity("0".into())),
    ]);
    if let Some(bytes) = host.ephemeral_storage_bytes {
        capacity.insert(
            "ephemeral-storage".into(),
            Quantity(format!("{}Ki", bytes / 1024)),
        );
        let usable = bytes / 100 * (100 - EVICTION_NODEFS_PERCENT);
        allocatable.insert("ephemeral-storage".into(), Quantity(usable.to_string()));
    }
    Ok((capacity, allocatable))
}

/// The four conditions the kubelet owns, in upstream's order. Transition times carry
/// over from `existing` while a condition's status stays the same.
pub fn conditions(existing: Option<&[NodeCondition]>, now: &Time) -> Vec<NodeCondition> {
    let make = |type_: &str, status: &str, reason: &str, message: &str| {
        let transition = existing
            .into_iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(transition),
        }
    };
    vec![
        make(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        make(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        make(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        make(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
}

/// Node `node`'s full status.
pub fn status(
    shared: &Shared,
    node: &NodeState,
    existing: Option<&NodeStatus>,
    now: &Time,
) -> Result<NodeStatus, NodeError> {
    let (capacity, allocatable) =
        resources(&shared.config, &shared.host).map_err(|e| NodeError::Invalid {
            node: node.name.clone(),
            message: e.to_string(),
        })?;
    let host = &shared.host;
    let version = node.runtime.version();
    Ok(NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(conditions(
            existing.and_then(|s| s.conditions.as_deref()),
            now,
        )),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: shared.node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: node.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(shared.port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: host.architecture.clone(),
            boot_id: host.boot_id.clone(),
            container_runtime_version: format!("{}://{}", version.name, version.version),
            kernel_version: host.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: host.machine_id.clone(),
            operating_system: host.operating_system.clone(),
            os_image: host.os_image.clone(),
            system_uuid: host.system_uuid.clone(),
            ..NodeSystemInfo::default()
        }),
        ..NodeStatus::default()
    })
}

/// The Node the kubelet registers.
pub fn object(shared: &Shared, node: &NodeState, now: &Time) -> Result<Node, NodeError> {
    Ok(Node {
        metadata: ObjectMeta {
            name: Some(node.name.clone()),
            labels: Some(labels(&node.name, &shared.host)),
            annotations: Some(BTreeMap::from([(
                // Upstream's default: volumes attach through the controller.
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(status(shared, node, None, now)?),
    })
}

/// Two statuses equal but for the heartbeat times.
fn same_but_heartbeats(a: &NodeStatus, b: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        serde_json::to_value(s).ok()
    };
    strip(a) == strip(b)
}

/// Creates the Node, or takes over an existing one (its labels and status).
pub async fn register(shared: &Shared, node: &NodeState) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(shared.client.clone());
    let api_err = |source| NodeError::Api {
        node: node.name.clone(),
        source,
    };
    let now = crate::time::now();
    let desired = object(shared, node, &now)?;
    let created = match api.create(&PostParams::default(), &desired).await {
        Ok(created) => created,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api.get(&node.name).await.map_err(api_err)?;
            take_over(shared, node, &api, existing).await?
        }
        Err(e) => return Err(api_err(e)),
    };
    let mut registration = node.registration();
    registration.uid = created.metadata.uid.clone();
    registration.last_status = created.status.clone();
    registration.last_status_at = Some(Instant::now());
    Metrics::inc(&shared.metrics.node_registrations);
    tracing::debug!(node = %node.name, "node registered");
    Ok(())
}

/// An existing Node: our labels merged into its labels, our status written over it.
async fn take_over(
    shared: &Shared,
    node: &NodeState,
    api: &Api<Node>,
    existing: Node,
) -> Result<Node, NodeError> {
    let api_err = |source| NodeError::Api {
        node: node.name.clone(),
        source,
    };
    let ours = labels(&node.name, &shared.host);
    let current = existing.metadata.labels.clone().unwrap_or_default();
    if ours.iter().any(|(k, v)| current.get(k) != Some(v)) {
        let patch = serde_json::json!({"metadata": {"labels": ours}});
        api.patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(api_err)?;
    }
    let now = crate::time::now();
    let status = status(shared, node, existing.status.as_ref(), &now)?;
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        &node.name,
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map_err(api_err)
}

/// Writes the status if it changed or is due; re-registers a Node that is gone.
async fn update_status(shared: &Shared, node: &NodeState) -> Result<(), NodeError> {
    let (uid, last, last_at) = {
        let r = node.registration();
        (r.uid.clone(), r.last_status.clone(), r.last_status_at)
    };
    if uid.is_none() {
        return register(shared, node).await;
    }
    let now = crate::time::now();
    let desired = status(shared, node, last.as_ref(), &now)?;
    let unchanged = last
        .as_ref()
        .is_some_and(|last| same_but_heartbeats(last, &desired));
    let due = last_at.is_none_or(|at| at.elapsed() >= shared.config.node_status_report_frequency);
    if unchanged && !due {
        return Ok(());
    }
    let api: Api<Node> = Api::all(shared.client.clone());
    let patch = serde_json::json!({ "status": desired });
    match api
        .patch_status(
            &node.name,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        Ok(written) => {
            let mut r = node.registration();
            r.last_status = written.status;
            r.last_status_at = Some(Instant::now());
            Metrics::inc(&shared.metrics.node_status_updates);
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {
            tracing::warn!(node = %node.name, "node object is gone; registering again");
            node.registration().uid = None;
            register(shared, node).await
        }
        Err(e) => Err(NodeError::Api {
            node: node.name.clone(),
            source: e,
        }),
    }
}

/// Registers every node, then keeps their status current until the process ends.
pub async fn run_status_loop(shared: Arc<Shared>) {
    let started = Instant::now();
    loop {
        let any_unregistered = shared.nodes.iter().any(|n| n.registration().uid.is_none());
        // Registration goes as fast as the API allows; routine checks are spread.
        let period = if any_unregistered {
            Duration::ZERO
        } else {
            shared.config.node_status_update_frequency
        };
        crate::pace::round(&shared.nodes, period, CONCURRENCY, |node| {
            let shared = &shared;
            async move {
                if let Err(e) = update_status(shared, node).await {
                    Metrics::inc(&shared.metrics.node_status_errors);
                    tracing::warn!(error = %e, "node status");
                }
            }
        })
        .await;
        let still_unregistered = shared
            .nodes
            .iter()
            .filter(|n| n.registration().uid.is_none())
            .count();
        if still_unregistered > 0 {
            // Upstream retries registration with a short backoff.
            tracing::debug!(
                nodes = still_unregistered,
                elapsed = ?started.elapsed(),
                "nodes not registered yet"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        } else if any_unregistered {
            tracing::info!(
                nodes = shared.nodes.len(),
                elapsed = ?started.elapsed(),
                "nodes registered"
            );
        }
    }
}

/// Gives every node's runtime the `--pod-cidr` override, if there is one.
pub async fn apply_pod_cidr_flag(shared: &Shared) {
    let Some(cidr) = shared.config.pod_cidr.clone() else {
        return;
    };
    for node in &shared.nodes {
        set_pod_cidr(node, &cidr).await;
    }
}

async fn set_pod_cidr(node: &NodeState, cidr: &str) {
    if node.pod_cidr.borrow().as_deref() == Some(cidr) {
        return;
    }
    match node.runtime.update_pod_cidr(cidr).await {
        Ok(()) => {
            tracing::info!(node = %node.name, cidr, "pod CIDR");
            node.pod_cidr.send_replace(Some(cidr.to_string()));
        }
        Err(e) => tracing::warn!(node = %node.name, cidr, error = %e, "setting the pod CIDR"),
    }
}

/// Follows this process's Nodes: their pod CIDR, their UID, their deletion.
pub async fn watch_nodes(shared: Arc<Shared>) {
    let api: Api<Node> = Api::all(shared.client.clone());
    // One node: only its object. Hollow nodes: all Nodes, dispatched by name (one watch
    // instead of N).
    let config = match shared.nodes.as_slice() {
        [only] => watcher::Config::default().fields(&format!("metadata.name={}", only.name)),
        _ => watcher::Config::default(),
    };
    let mut stream = watcher(api, config).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "node watch");
                continue;
            }
        };
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                observe(&shared, &object).await;
            }
            watcher::Event::Delete(object) => {
                let name = object.metadata.name.as_deref().unwrap_or("");
                if let Some(node) = shared.by_name.get(name) {
                    let mut r = node.registration();
                    if r.uid == object.metadata.uid {
                        r.uid = None;
                        r.last_status = None;
                    }
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

async fn observe(shared: &Shared, object: &Node) {
    let name = object.metadata.name.as_deref().unwrap_or("");
    let Some(node) = shared.by_name.get(name) else {
        return;
    };
    if object.metadata.deletion_timestamp.is_none() {
        let mut r = node.registration();
        if r.uid.is_some() && r.uid != object.metadata.uid {
            // Deleted and created again by someone else: ours again from now on.
            r.uid = object.metadata.uid.clone();
        }
    }
    if shared.config.pod_cidr.is_some() {
        return;
    }
    let spec = object.spec.as_ref();
    let cidr = spec
        .and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| spec.and_then(|s| s.pod_cidrs.as_ref()?.first().cloned()));
    if let Some(cidr) = cidr {
        set_pod_cidr(node, &cidr).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostInfo {
        HostInfo {
            hostname: "box".into(),
            cpus: 8,
            memory_kib: 16 * 1024 * 1024,
            ephemeral_storage_bytes: Some(100 << 30),
            architecture: "amd64".into(),
            operating_system: "linux".into(),
            os_image: "Debian GNU/Linux 13 (trixie)".into(),
            kernel_version: "6.1.0".into(),
            machine_id: "m".into(),
            system_uuid: String::new(),
            boot_id: "b".into(),
            default_ip: "10.0.0.5".parse().expect("ip"),
        }
    }

    fn q(map: &ResourceList, key: &str) -> String {
        map.get(key).map(|q| q.0.clone()).unwrap_or_default()
    }

    #[test]
    fn resources_from_the_host() {
        let (capacity, allocatable) =
            resources(&KubeletConfig::default(), &host()).expect("resources");
        assert_eq!(q(&capacity, "cpu"), "8");
        assert_eq!(q(&capacity, "memory"), "16777216Ki");
        assert_eq!(q(&capacity, "pods"), "110");
        assert_eq!(q(&capacity, "ephemeral-storage"), "104857600Ki");
        assert_eq!(q(&allocatable, "cpu"), "8");
        // 100Mi held back for eviction.
        assert_eq!(q(&allocatable, "memory"), "16674816Ki");
        assert_eq!(q(&allocatable, "ephemeral-storage"), "96636764160");
        assert_eq!(q(&allocatable, "pods"), "110");
    }

    #[test]
    fn resources_from_flags() {
        let config = KubeletConfig {
            cpu: Some("4".into()),
            memory: Some("8Gi".into()),
            max_pods: 30,
            ..KubeletConfig::default()
        };
        let host = HostInfo {
            ephemeral_storage_bytes: None,
            ..host()
        };
        let (capacity, allocatable) = resources(&config, &host).expect("resources");
        assert_eq!(q(&capacity, "cpu"), "4");
        assert_eq!(q(&capacity, "memory"), "8Gi");
        assert_eq!(q(&capacity, "pods"), "30");
        assert!(!capacity.contains_key("ephemeral-storage"));
        assert_eq!(q(&allocatable, "memory"), "8286208Ki");
        let bad = KubeletConfig {
            memory: Some("lots".into()),
            ..KubeletConfig::default()
        };
        assert!(resources(&bad, &host).is_err());
        let tiny = KubeletConfig {
            memory: Some("1Mi".into()),
            ..KubeletConfig::default()
        };
        let (_, allocatable) = resources(&tiny, &host).expect("resources");
        assert_eq!(q(&allocatable, "memory"), "0Ki");
    }

    #[test]
    fn labels_name_the_node_and_platform() {
        let l = labels("n-1", &host());
        assert_eq!(l["kubernetes.io/hostname"], "n-1");
        assert_eq!(l["kubernetes.io/os"], "linux");
        assert_eq!(l["kubernetes.io/arch"], "amd64");
        assert_eq!(l["beta.kubernetes.io/os"], "linux");
        assert_eq!(l["beta.kubernetes.io/arch"], "amd64");
    }

    #[test]
    fn conditions_keep_transition_times() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).expect("t0"));
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).expect("t1"));
        let first = conditions(None, &t0);
        let types: Vec<&str> = first.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        let ready = &first[3];
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        let second = conditions(Some(&first), &t1);
        for c in &second {
            assert_eq!(c.last_transition_time.as_ref(), Some(&t0));
            assert_eq!(c.last_heartbeat_time.as_ref(), Some(&t1));
        }
        // A flipped condition transitions now.
        let mut flipped = first.clone();
        flipped[3].status = "False".into();
        let third = conditions(Some(&flipped), &t1);
        assert_eq!(third[3].last_transition_time.as_ref(), Some(&t1));
    }

    #[test]
    fn heartbeats_alone_are_no_change() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).expect("t0"));
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).expect("t1"));
        let a = NodeStatus {
            conditions: Some(conditions(None, &t0)),
            ..NodeStatus::default()
        };
        let b = NodeStatus {
            conditions: Some(conditions(Some(&conditions(None, &t0)), &t1)),
            ..NodeStatus::default()
        };
        assert!(same_but_heartbeats(&a, &b));
        let c = NodeStatus {
            daemon_endpoints: Some(NodeDaemonEndpoints::default()),
            ..b.clone()
        };
        assert!(!same_but_heartbeats(&a, &c));
    }
}
