//! Node lifecycle: notices nodes whose heartbeats stopped, marks them Unknown, taints
//! them, and evicts their pods once the pods' tolerations run out (upstream's node
//! lifecycle controller with taint-based eviction).
//!
//! A node's heartbeat is its Lease in `kube-node-lease` (renewed every 10 s by the
//! kubelet) or a change of its Ready condition's heartbeat. After
//! `node_monitor_grace_period` (40 s) without either, the kubelet's conditions turn
//! Unknown, the node's pods stop being Ready (so Services stop sending them traffic),
//! and the node gets `node.kubernetes.io/unreachable` taints (`not-ready` when the
//! kubelet itself reports Ready=False). Pods carry NoExecute tolerations for those
//! taints (300 s by default, added by the API server's admission): when one runs out
//! the pod is deleted, and its ReplicaSet replaces it on another node. Waiting is done
//! with delayed requeues, never by polling.

pub mod health;
pub mod taints;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;

use crate::context::{Context, NODE_LEASE_NAMESPACE};
use crate::events::EventType;
use crate::runtime::{Next, ObjectKey, Reconciler, WorkQueue};
use health::Heartbeats;
use taints::Eviction;

/// What the controller's queue holds: a node to check, or a pod to check for eviction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Node(String),
    Pod(ObjectKey),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Node(name) => write!(f, "node {name}"),
            Key::Pod(key) => write!(f, "pod {key}"),
        }
    }
}

#[derive(Debug)]
pub struct NodeLifecycleController {
    ctx: Arc<Context>,
    queue: WorkQueue<Key>,
    heartbeats: Heartbeats,
}

impl NodeLifecycleController {
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let controller = Arc::new(NodeLifecycleController {
            ctx: ctx.clone(),
            queue: WorkQueue::new(),
            heartbeats: Heartbeats::default(),
        });
        let queue = controller.queue.clone();
        let pods = ctx.pods.clone();
        ctx.nodes.on_change(Box::new(move |old, new| {
            let Some(node) = new.or(old) else { return };
            let name = node.metadata.name.clone().unwrap_or_default();
            queue.add(Key::Node(name.clone()));
            // New or changed NoExecute taints decide the fate of the node's pods.
            if no_execute(old.map(|n| n.as_ref())) != no_execute(new.map(|n| n.as_ref())) {
                for pod in pods.filter(|p| node_name(p) == Some(name.as_str())) {
                    queue.add(Key::Pod(ObjectKey::of(pod.as_ref())));
                }
            }
        }));
        let queue = controller.queue.clone();
        ctx.node_leases.on_change(Box::new(move |_, new| {
            if let Some(lease) = new {
                queue.add(Key::Node(lease.metadata.name.clone().unwrap_or_default()));
            }
        }));
        let queue = controller.queue.clone();
        let nodes = ctx.nodes.clone();
        ctx.pods.on_change(Box::new(move |_, new| {
            let Some(pod) = new else { return };
            let Some(node) = node_name(pod).and_then(|n| nodes.get(&ObjectKey::cluster(n))) else {
                return;
            };
            if !no_execute(Some(node.as_ref())).is_empty() {
                queue.add(Key::Pod(ObjectKey::of(pod.as_ref())));
            }
        }));
        controller
    }

    async fn reconcile_node(&self, name: &str) -> Result<Next, crate::Error> {
        let Some(node) = self.ctx.nodes.get(&ObjectKey::cluster(name)) else {
            self.heartbeats.forget(name);
            return Ok(Next::Idle);
        };
        if !self.ctx.node_leases.is_synced() {
            // A heartbeat not listed yet would look like silence.
            return Ok(Next::After(Duration::from_secs(1)));
        }
        let lease_renew = self
            .ctx
            .node_leases
            .get(&ObjectKey::new(NODE_LEASE_NAMESPACE, name))
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        let last = self.heartbeats.observe(
            name,
            lease_renew,
            health::ready_heartbeat(&node),
            Instant::now(),
        );
        let config = &self.ctx.config;
        let grace = if health::ever_reported(&node) {
            config.node_monitor_grace_period
        } else {
            config.node_startup_grace_period
        };
        let silent_for = last.elapsed();
        let now = Timestamp::now();
        let mut ready = taints::ready_status(&node).map(str::to_string);
        let next = if silent_for >= grace {
            if let Some(conditions) = health::unknown_conditions(&node, now) {
                self.mark_unknown(&node, conditions).await?;
                ready = Some("Unknown".into());
            }
            // A new heartbeat (lease or status) brings the node back here.
            Next::Idle
        } else {
            Next::After(grace - silent_for)
        };
        self.sync_taints(&node, ready.as_deref(), now).await?;
        Ok(next)
    }

    /// Writes the Unknown conditions and takes the node's pods out of service.
    async fn mark_unknown(
        &self,
        node: &Node,
        conditions: Vec<k8s_openapi::api::core::v1::NodeCondition>,
    ) -> Result<(), crate::Error> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        tracing::info!(node = %name, "node stopped posting status; marked Unknown");
        self.ctx.events.record(
            node,
            EventType::Normal,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        for pod in self
            .ctx
            .pods
            .filter(|p| node_name(p) == Some(name.as_str()) && pod_ready(p))
        {
            self.mark_pod_not_ready(&pod).await?;
        }
        Ok(())
    }

    /// Upstream's MarkPodsNotReady: the pod's Ready condition turns False.
    async fn mark_pod_not_ready(&self, pod: &Pod) -> Result<(), crate::Error> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let patch = json!({"status": {"conditions": [{
            "type": "Ready",
            "status": "False",
            "reason": "NodeNotReady",
            "lastTransitionTime": Timestamp::now().to_string(),
        }]}});
        let result = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await;
        crate::ignore_not_found(result)?;
        Ok(())
    }

    async fn sync_taints(
        &self,
        node: &Node,
        ready: Option<&str>,
        now: Timestamp,
    ) -> Result<(), crate::Error> {
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let wanted = taints::with_health_taints(&current, ready, now);
        if wanted == current {
            return Ok(());
        }
        let name = node.metadata.name.clone().unwrap_or_default();
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let taints = if wanted.is_empty() {
            serde_json::Value::Null
        } else {
            json!(wanted)
        };
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        tracing::info!(node = %name, ready = ?ready, "node health taints updated");
        Ok(())
    }

    async fn reconcile_pod(&self, key: &ObjectKey) -> Result<Next, crate::Error> {
        let Some(pod) = self.ctx.pods.get(key) else {
            return Ok(Next::Idle);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Idle);
        }
        let Some(node) = node_name(&pod).and_then(|n| self.ctx.nodes.get(&ObjectKey::cluster(n)))
        else {
            return Ok(Next::Idle);
        };
        let node_taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default();
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or_default();
        match taints::eviction(node_taints, tolerations, Timestamp::now()) {
            Eviction::Keep => Ok(Next::Idle),
            Eviction::After(delay) => Ok(Next::After(delay)),
            Eviction::Now => {
                self.evict(&pod).await?;
                Ok(Next::Idle)
            }
        }
    }

    async fn evict(&self, pod: &Pod) -> Result<(), crate::Error> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        tracing::info!(pod = %format!("{namespace}/{name}"), "evicting: a NoExecute taint is no longer tolerated");
        self.ctx.events.record(
            pod,
            EventType::Normal,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {namespace}/{name}"),
        );
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            // Gone, or replaced by a pod of the same name: nothing to evict.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Reconciler for NodeLifecycleController {
    type Key = Key;

    fn name(&self) -> &'static str {
        "nodelifecycle"
    }

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn resync(&self) {
        for key in self.ctx.nodes.keys() {
            self.queue.add(Key::Node(key.name));
        }
        for pod in self.ctx.pods.filter(|p| node_name(p).is_some()) {
            self.queue.add(Key::Pod(ObjectKey::of(pod.as_ref())));
        }
    }

    async fn reconcile(&self, key: &Key) -> Result<Next, crate::Error> {
        match key {
            Key::Node(name) => self.reconcile_node(name).await,
            Key::Pod(key) => self.reconcile_pod(key).await,
        }
    }
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node's NoExecute taints (what eviction depends on).
fn no_execute(node: Option<&Node>) -> Vec<Taint> {
    node.and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_ref())
        .map(|t| {
            t.iter()
                .filter(|t| t.effect == "NoExecute")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}
