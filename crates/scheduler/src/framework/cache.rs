//! The scheduler's cache of nodes and the pods placed on them, as upstream's
//! `internal/cache`.
//!
//! Pods come from two sides. The watch delivers **bound** pods (`add_pod`,
//! `update_pod`, `remove_pod`). The scheduler itself **assumes** a pod onto the node it
//! chose ([`Cache::assume`]) so that the next cycle already counts it, before the
//! binding call has returned. Then either the binding fails ([`Cache::forget`]) or it
//! succeeds ([`Cache::finish_binding`] starts a TTL) and the watch delivers the bound pod,
//! which confirms the assumption. An assumed pod whose confirmation never comes is
//! dropped by [`Cache::cleanup_expired`] once the TTL has passed.
//!
//! Nodes are kept in a `BTreeMap` by name (a stable order for snapshots) as
//! `Arc<NodeInfo>`: [`Cache::snapshot`] clones only the `Arc`s, and a change to a node
//! that a snapshot still holds copies that one `NodeInfo` (`Arc::make_mut`).
//!
//! A pod bound to a node the cache does not know yet is kept and counted as soon as
//! the node appears; a removed node's pods are kept likewise until they are removed.
//!
//! Pods are keyed by [`pod_key`] (UID, or `namespace/name`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};

use super::node_info::{NodeInfo, PodInfo};
use super::queue::pod_key;

/// Upstream's `durationToExpireAssumedPod`: how long after its binding finished an
/// assumed pod waits for the watch to confirm it.
pub const ASSUMED_POD_TTL: Duration = Duration::from_secs(30);

/// What can go wrong in the cache; each is a bug in the caller or a race it must
/// tolerate, never a reason to stop.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    /// The pod is already in the cache (assumed or bound), so it cannot be assumed.
    #[error("pod {key} is already in the cache, so it cannot be assumed")]
    AlreadyInCache {
        /// The pod's key.
        key: String,
    },
    /// The pod is not assumed (unknown, or already confirmed by the watch).
    #[error("pod {key} is not assumed")]
    NotAssumed {
        /// The pod's key.
        key: String,
    },
}

/// One pod the cache counts.
#[derive(Debug, Clone)]
struct PodState {
    info: Arc<PodInfo>,
    node: String,
    /// Placed by the scheduler and not yet confirmed by the watch.
    assumed: bool,
    /// For an assumed pod whose binding finished: when it expires.
    deadline: Option<Instant>,
}

/// The cache; see the module documentation.
#[derive(Debug)]
pub struct Cache {
    nodes: BTreeMap<String, Arc<NodeInfo>>,
    pods: HashMap<String, PodState>,
    /// Node name → keys of the pods on it, including nodes the cache does not know.
    pods_on: HashMap<String, HashSet<String>>,
    ttl: Duration,
}

impl Default for Cache {
    fn default() -> Self {
        Self::new(ASSUMED_POD_TTL)
    }
}

/// Whether a pod no longer holds resources on its node (upstream's informer drops
/// terminated pods from the cache).
fn terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Cache {
    /// An empty cache whose assumed pods expire `ttl` after their binding finished.
    pub fn new(ttl: Duration) -> Self {
        Self {
            nodes: BTreeMap::new(),
            pods: HashMap::new(),
            pods_on: HashMap::new(),
            ttl,
        }
    }

    /// A node from the watch; an already known node is updated.
    pub fn add_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Some(info) = self.nodes.get_mut(&name) {
            Arc::make_mut(info).set_node(node);
            return;
        }
        let pods = self
            .pods_on
            .get(&name)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k))
            .map(|p| p.info.clone());
        let info = NodeInfo::with_pods(node, pods);
        self.nodes.insert(name, Arc::new(info));
    }

    /// A changed node from the watch (the same as `add_node`).
    pub fn update_node(&mut self, node: Node) {
        self.add_node(node);
    }

    /// A deleted node. Its pods stay in the cache (the watch removes them in turn) and
    /// count again if a node of that name comes back. Returns whether it was known.
    pub fn remove_node(&mut self, name: &str) -> bool {
        self.nodes.remove(name).is_some()
    }

    /// Counts `info` on `node` (if the node is known) and indexes it.
    fn place(&mut self, key: String, info: Arc<PodInfo>, node: String, assumed: bool) {
        if let Some(n) = self.nodes.get_mut(&node) {
            Arc::make_mut(n).add_pod(info.clone());
        }
        self.pods_on
            .entry(node.clone())
            .or_default()
            .insert(key.clone());
        self.pods.insert(
            key,
            PodState {
                info,
                node,
                assumed,
                deadline: None,
            },
        );
    }

    /// Stops counting the pod with this key anywhere; returns its state.
    fn unplace(&mut self, key: &str) -> Option<PodState> {
        let state = self.pods.remove(key)?;
        if let Some(n) = self.nodes.get_mut(&state.node) {
            Arc::make_mut(n).remove_pod(&state.info);
        }
        if let Some(keys) = self.pods_on.get_mut(&state.node) {
            keys.remove(key);
            if keys.is_empty() {
                self.pods_on.remove(&state.node);
            }
        }
        Some(state)
    }

    /// A bound pod from the watch, new or changed: counted on `spec.nodeName` (replacing
    /// an earlier version, and moving it if the node differs). If the scheduler had
    /// assumed it, this confirms the assumption. A pod without a node, or one that has
    /// terminated, is not counted (and removed if it was). Level-based: delivering the
    /// same pod twice is harmless.
    pub fn add_pod(&mut self, pod: Pod) {
        let key = pod_key(&pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let Some(node) = node.filter(|_| !terminated(&pod)) else {
            // Unassigned: the scheduler's own assumption (if any) stands until it is
            // confirmed, forgotten or expires.
            if terminated(&pod) || self.pods.get(&key).is_some_and(|s| !s.assumed) {
                self.unplace(&key);
            }
            return;
        };
        self.unplace(&key);
        self.place(key, Arc::new(PodInfo::new(pod)), node, false);
    }

    /// A changed pod from the watch (the same as `add_pod`).
    pub fn update_pod(&mut self, pod: Pod) {
        self.add_pod(pod);
    }

    /// A deleted pod (bound or assumed); returns whether it was counted.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        self.unplace(key).is_some()
    }

    /// Counts a pod the scheduler has chosen `node` for, before its binding returns.
    /// The caller sets `spec.nodeName` on the pod first if plugins should see it.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) -> Result<(), CacheError> {
        let key = pod_key(&pod.pod);
        if self.pods.contains_key(&key) {
            return Err(CacheError::AlreadyInCache { key });
        }
        self.place(key, pod, node.to_string(), true);
        Ok(())
    }

    /// The binding of an assumed pod succeeded: it now expires `ttl` after `now` unless
    /// the watch confirms it first.
    pub fn finish_binding(&mut self, key: &str, now: Instant) -> Result<(), CacheError> {
        match self.pods.get_mut(key) {
            Some(s) if s.assumed => {
                s.deadline = Some(now + self.ttl);
                Ok(())
            }
            _ => Err(CacheError::NotAssumed {
                key: key.to_string(),
            }),
        }
    }

    /// The binding of an assumed pod failed: stop counting it.
    pub fn forget(&mut self, key: &str) -> Result<(), CacheError> {
        match self.pods.get(key) {
            Some(s) if s.assumed => {
                self.unplace(key);
                Ok(())
            }
            _ => Err(CacheError::NotAssumed {
                key: key.to_string(),
            }),
        }
    }

    /// Drops assumed pods whose binding finished more than the TTL before `now`
    /// without the watch confirming them; returns their keys (sorted).
    pub fn cleanup_expired(&mut self, now: Instant) -> Vec<String> {
        let mut expired: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, s)| s.assumed && s.deadline.is_some_and(|d| d < now))
            .map(|(k, _)| k.clone())
            .collect();
        expired.sort();
        for key in &expired {
            self.unplace(key);
        }
        expired
    }

    /// Every known node, in name order; cheap (clones of `Arc`s).
    pub fn snapshot(&self) -> Vec<Arc<NodeInfo>> {
        self.nodes.values().cloned().collect()
    }

    /// One node.
    pub fn node(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.nodes.get(name)
    }

    /// How many nodes are known.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// How many pods are counted (bound and assumed, including those on unknown nodes).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The node a pod is counted on (bound or assumed).
    pub fn pod_node(&self, key: &str) -> Option<&str> {
        self.pods.get(key).map(|s| s.node.as_str())
    }

    /// Whether the pod is assumed and not yet confirmed.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|s| s.assumed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, container};

    fn node(name: &str) -> Node {
        NodeBuilder::new(name).capacity("4", "8Gi", 110).build()
    }

    fn bound(name: &str, node: &str, cpu: &str) -> Pod {
        PodBuilder::new(name)
            .uid(name)
            .container(container(cpu, ""))
            .node_name(node)
            .build()
    }

    fn info(name: &str, cpu: &str) -> Arc<PodInfo> {
        Arc::new(
            PodBuilder::new(name)
                .uid(name)
                .container(container(cpu, ""))
                .info(),
        )
    }

    /// (node, pod names sorted, requested milli-cpu) for every node in the snapshot.
    fn view(c: &Cache) -> Vec<(String, Vec<String>, i64)> {
        c.snapshot()
            .iter()
            .map(|n| {
                let mut pods: Vec<String> = n.pods().iter().map(|p| p.name().into()).collect();
                pods.sort();
                (n.name().to_string(), pods, n.requested().milli_cpu)
            })
            .collect()
    }

    fn v(node: &str, pods: &[&str], milli_cpu: i64) -> (String, Vec<String>, i64) {
        (
            node.to_string(),
            pods.iter().map(|p| p.to_string()).collect(),
            milli_cpu,
        )
    }

    #[test]
    fn nodes_in_name_order_and_pods_for_unknown_nodes() {
        let mut c = Cache::default();
        c.add_node(node("b"));
        // Bound to a node the cache has not seen yet: kept, counted when it appears.
        c.add_pod(bound("p1", "a", "1"));
        assert_eq!(view(&c), vec![v("b", &[], 0)]);
        assert_eq!(c.pod_node("p1"), Some("a"));
        c.add_node(node("a"));
        assert_eq!(view(&c), vec![v("a", &["p1"], 1000), v("b", &[], 0)]);
        // Removing the node keeps the pod; it counts again if the node comes back.
        assert!(c.remove_node("a"));
        assert_eq!(view(&c), vec![v("b", &[], 0)]);
        assert_eq!(c.pod_count(), 1);
        c.add_node(node("a"));
        assert_eq!(view(&c)[0], v("a", &["p1"], 1000));
    }

    #[test]
    fn pod_events() {
        let mut c = Cache::default();
        c.add_node(node("a"));
        c.add_node(node("b"));
        c.add_pod(bound("p", "a", "1"));
        // Delivered twice: counted once.
        c.add_pod(bound("p", "a", "1"));
        assert_eq!(view(&c)[0], v("a", &["p"], 1000));
        // Updated requests replace the old ones.
        c.update_pod(bound("p", "a", "2"));
        assert_eq!(view(&c)[0], v("a", &["p"], 2000));
        // Terminated pods no longer count.
        let mut done = bound("p", "a", "2");
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        c.update_pod(done);
        assert_eq!(view(&c)[0], v("a", &[], 0));
        assert_eq!(c.pod_count(), 0);
        c.add_pod(bound("q", "b", "500m"));
        assert!(c.remove_pod("q"));
        assert!(!c.remove_pod("q"));
        assert_eq!(view(&c), vec![v("a", &[], 0), v("b", &[], 0)]);
    }

    #[test]
    fn update_node_keeps_pods() {
        let mut c = Cache::default();
        c.add_node(node("a"));
        c.add_pod(bound("p", "a", "1"));
        c.update_node(NodeBuilder::new("a").capacity("8", "8Gi", 110).build());
        let n = c.node("a").expect("node");
        assert_eq!(n.allocatable().milli_cpu, 8000);
        assert_eq!(n.requested().milli_cpu, 1000);
    }

    #[test]
    fn assumed_pod_lifecycle() {
        #[derive(Debug, Clone, Copy)]
        enum Step {
            Assume,
            FinishBinding(u64),
            Confirm(&'static str),
            Forget,
            Cleanup(u64),
        }
        use Step::*;
        let t0 = Instant::now();
        // (name, steps, milli-cpu requested on "a" and on "b", still assumed)
        let cases: [(&str, Vec<Step>, i64, i64, bool); 7] = [
            ("assumed counts at once", vec![Assume], 1000, 0, true),
            ("forget", vec![Assume, Forget], 0, 0, false),
            (
                "confirmed",
                vec![Assume, FinishBinding(0), Confirm("a")],
                1000,
                0,
                false,
            ),
            (
                "confirmed on another node",
                vec![Assume, FinishBinding(0), Confirm("b")],
                0,
                1000,
                false,
            ),
            (
                "expires after the ttl",
                vec![Assume, FinishBinding(0), Cleanup(31)],
                0,
                0,
                false,
            ),
            (
                "not before",
                vec![Assume, FinishBinding(0), Cleanup(30)],
                1000,
                0,
                true,
            ),
            (
                "never expires while binding",
                vec![Assume, Cleanup(3600)],
                1000,
                0,
                true,
            ),
        ];
        for (name, steps, cpu_a, cpu_b, assumed) in cases {
            let mut c = Cache::default();
            c.add_node(node("a"));
            c.add_node(node("b"));
            for step in steps {
                match step {
                    Assume => c.assume(info("p", "1"), "a").expect(name),
                    FinishBinding(s) => c
                        .finish_binding("p", t0 + Duration::from_secs(s))
                        .expect(name),
                    Confirm(n) => c.add_pod(bound("p", n, "1")),
                    Forget => c.forget("p").expect(name),
                    Cleanup(s) => {
                        c.cleanup_expired(t0 + Duration::from_secs(s));
                    }
                }
            }
            let got: Vec<i64> = view(&c).iter().map(|(_, _, cpu)| *cpu).collect();
            assert_eq!(got, vec![cpu_a, cpu_b], "{name}");
            assert_eq!(c.is_assumed("p"), assumed, "{name}");
        }
    }

    #[test]
    fn confirmed_pods_never_expire() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        c.add_node(node("a"));
        c.assume(info("p", "1"), "a").expect("assume");
        c.finish_binding("p", t0).expect("finish");
        c.add_pod(bound("p", "a", "1"));
        assert!(c.cleanup_expired(t0 + Duration::from_secs(3600)).is_empty());
        assert_eq!(view(&c), vec![v("a", &["p"], 1000)]);
    }

    #[test]
    fn unbound_update_keeps_assumption() {
        let mut c = Cache::default();
        c.add_node(node("a"));
        c.assume(info("p", "1"), "a").expect("assume");
        // The pending pod's own update (no nodeName yet) races the binding.
        c.add_pod(PodBuilder::new("p").uid("p").build());
        assert!(c.is_assumed("p"));
        assert_eq!(view(&c), vec![v("a", &["p"], 1000)]);
    }

    #[test]
    fn errors() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        c.add_node(node("a"));
        c.add_pod(bound("bound", "a", "1"));
        c.assume(info("p", "1"), "a").expect("assume");
        let already = |k: &str| CacheError::AlreadyInCache { key: k.into() };
        let not = |k: &str| CacheError::NotAssumed { key: k.into() };
        assert_eq!(c.assume(info("p", "1"), "a"), Err(already("p")));
        assert_eq!(c.assume(info("bound", "1"), "a"), Err(already("bound")));
        assert_eq!(c.forget("bound"), Err(not("bound")));
        assert_eq!(c.forget("nope"), Err(not("nope")));
        assert_eq!(c.finish_binding("bound", t0), Err(not("bound")));
        assert_eq!(
            not("x").to_string(),
            "pod x is not assumed",
            "message lowercase with context"
        );
        // Nothing changed on the node.
        assert_eq!(view(&c), vec![v("a", &["bound", "p"], 2000)]);
    }

    #[test]
    fn snapshot_is_copy_on_write() {
        let mut c = Cache::default();
        c.add_node(node("a"));
        c.add_node(node("b"));
        let before = c.snapshot();
        c.add_pod(bound("p", "a", "1"));
        let after = c.snapshot();
        // The held snapshot is unchanged; the untouched node is shared, not copied.
        assert_eq!(before[0].requested().milli_cpu, 0);
        assert_eq!(after[0].requested().milli_cpu, 1000);
        assert!(Arc::ptr_eq(&before[1], &after[1]));
        assert!(!Arc::ptr_eq(&before[0], &after[0]));
    }
}
