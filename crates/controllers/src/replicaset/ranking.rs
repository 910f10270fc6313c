//! Which pods go first when a ReplicaSet has too many (upstream's
//! `ActivePodsWithRanks` and `getPodsToDelete`): the ones whose loss hurts least.
//!
//! In order: unscheduled before scheduled; Pending before Unknown before Running; not
//! ready before ready; lower `pod-deletion-cost` first; pods on nodes crowded with
//! pods of the same owner (the ReplicaSet and its siblings under one Deployment)
//! first; then the more recently ready, the more often restarted, the more recently
//! created. Times compare on a logarithmic scale (upstream's LogarithmicScaleDown): two
//! pods ready for 40 and 50 minutes count as equally old, so a scale-down does not
//! always hit the very newest pods.
//!
//! One deliberate difference: upstream breaks a tie between two different times in
//! the same power-of-two bucket by UID at once, but compares equal times by the later
//! criteria; that comparison is not transitive, and Rust's sort wants a total order.
//! Here a bucket tie always goes on to the later criteria, and the UID comes last.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::pods;

/// A time on the logarithmic scale: a missing time first (upstream treats the zero
/// time as "newest"), then ages by power-of-two bucket, youngest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    Unknown,
    Bucket(i32),
}

impl Age {
    fn of(time: Option<Timestamp>, now: Timestamp) -> Age {
        let Some(time) = time else {
            return Age::Unknown;
        };
        let nanos = time.duration_until(now).as_nanos();
        // Upstream: int(log2(age in ns)), and -1 for times not in the past.
        let bucket = u128::try_from(nanos)
            .ok()
            .filter(|n| *n > 0)
            .map_or(-1, |n| n.ilog2() as i32);
        Age::Bucket(bucket)
    }
}

/// A pod's place in the deletion order; smaller goes first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DeletionKey {
    assigned: bool,
    phase: u8,
    ready: bool,
    cost: i32,
    /// Active pods of the same owner on the pod's node.
    colocated: Reverse<usize>,
    /// Only set for ready pods; not-ready ones only meet each other here.
    ready_age: Age,
    /// (regular, sidecar) restarts: more restarts first.
    restarts: Reverse<(i32, i32)>,
    created_age: Age,
    uid: String,
    name: String,
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn deletion_key(pod: &Pod, colocated: usize, now: Timestamp) -> DeletionKey {
    let ready = pods::is_ready(pod);
    DeletionKey {
        assigned: !node_name(pod).is_empty(),
        phase: pods::phase_ordinal(pod),
        ready,
        cost: pods::deletion_cost(pod),
        colocated: Reverse(colocated),
        ready_age: if ready {
            Age::of(pods::ready_since(pod), now)
        } else {
            Age::Unknown
        },
        restarts: Reverse(pods::max_restarts(pod)),
        created_age: Age::of(pod.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
    }
}

/// The `count` pods of `candidates` to delete first. `related` are the active and
/// inactive pods of the ReplicaSet and of its siblings (same controller); the active
/// ones say how crowded each node is.
pub fn pods_to_delete(
    candidates: &[Arc<Pod>],
    related: &[Arc<Pod>],
    count: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| pods::is_active(p)) {
        *per_node.entry(node_name(pod)).or_default() += 1;
    }
    let mut keyed: Vec<(DeletionKey, &Arc<Pod>)> = candidates
        .iter()
        .map(|pod| {
            let colocated = per_node.get(node_name(pod)).copied().unwrap_or(0);
            (deletion_key(pod, colocated, now), pod)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed
        .into_iter()
        .take(count)
        .map(|(_, pod)| pod.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::pods::test_support::{ago, now, pod, ready_for};
    use serde_json::{Value, json};

    fn on(node: &str, extra: Value) -> Value {
        let mut v = extra;
        v["spec"] = json!({"containers": [{"name": "c", "image": "nginx"}], "nodeName": node});
        v
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    /// Each case: two pods; the first must be deleted before the second.
    #[test]
    fn each_criterion_orders_a_pair() {
        let running = json!({"status": {"phase": "Running"}});
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "unscheduled before scheduled",
                json!({}),
                on("n1", json!({})),
            ),
            (
                "pending before unknown",
                on("n1", json!({"status": {"phase": "Pending"}})),
                on("n1", json!({"status": {"phase": "Unknown"}})),
            ),
            (
                "unknown before running",
                on("n1", json!({"status": {"phase": "Unknown"}})),
                on("n1", running.clone()),
            ),
            (
                "not ready before ready",
                on("n1", running.clone()),
                on("n1", ready_for(100)),
            ),
            (
                "lower deletion cost first",
                on(
                    "n1",
                    json!({"metadata": {"annotations": {pods::DELETION_COST: "-1"}}}),
                ),
                on("n1", json!({})),
            ),
            (
                "ready recently before ready long ago (other bucket)",
                on("n1", ready_for(10)),
                on("n1", ready_for(1000)),
            ),
            (
                "ready without a time before ready since a time",
                on(
                    "n1",
                    json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
                ),
                on("n1", ready_for(1000)),
            ),
            (
                "more restarts first",
                on(
                    "n1",
                    json!({"status": {"containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 5}]}}),
                ),
                on("n1", json!({})),
            ),
            (
                "created recently before created long ago",
                on("n1", json!({"metadata": {"creationTimestamp": ago(10)}})),
                on(
                    "n1",
                    json!({"metadata": {"creationTimestamp": ago(10_000)}}),
                ),
            ),
            (
                // Upstream would pick by UID here (the times differ).
                "a bucket tie goes on to restarts",
                on(
                    "n1",
                    json!({"status": {
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ago(1001)}],
                        "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": true, "restartCount": 1}],
                    }}),
                ),
                on("n1", ready_for(1000)),
            ),
        ];
        for (what, first, second) in cases {
            // Names sort against the expected order, so only the criterion decides.
            let a = Arc::new(pod("z-first", first));
            let b = Arc::new(pod("a-second", second));
            let picked = pods_to_delete(&[b.clone(), a.clone()], &[], 1, now());
            assert_eq!(names(&picked), vec!["z-first"], "{what}");
            let picked = pods_to_delete(&[a, b], &[], 1, now());
            assert_eq!(
                names(&picked),
                vec!["z-first"],
                "{what} (other input order)"
            );
        }
    }

    #[test]
    fn pods_on_crowded_nodes_go_first() {
        let lonely = Arc::new(pod("lonely", on("n1", ready_for(100))));
        let crowded = Arc::new(pod("crowded", on("n2", ready_for(100))));
        // A sibling's pods count too; inactive ones do not.
        let sibling = Arc::new(pod("sibling", on("n2", json!({}))));
        let finished = Arc::new(pod(
            "finished",
            on("n1", json!({"status": {"phase": "Failed"}})),
        ));
        let finished2 = Arc::new(pod(
            "finished2",
            on("n1", json!({"status": {"phase": "Failed"}})),
        ));
        let related = [
            lonely.clone(),
            crowded.clone(),
            sibling,
            finished,
            finished2,
        ];
        let picked = pods_to_delete(&[lonely, crowded], &related, 1, now());
        assert_eq!(names(&picked), vec!["crowded"]);
    }

    #[test]
    fn a_full_scale_down_order() {
        let pods: Vec<Arc<Pod>> = [
            ("ready-old", on("n1", ready_for(100_000))),
            ("pending", on("n1", json!({"status": {"phase": "Pending"}}))),
            ("ready-new", on("n1", ready_for(5))),
            ("unscheduled", json!({"status": {"phase": "Pending"}})),
            (
                "running-not-ready",
                on("n1", json!({"status": {"phase": "Running"}})),
            ),
        ]
        .into_iter()
        .map(|(name, extra)| Arc::new(pod(name, extra)))
        .collect();
        let picked = pods_to_delete(&pods, &pods, pods.len(), now());
        assert_eq!(
            names(&picked),
            vec![
                "unscheduled",
                "pending",
                "running-not-ready",
                "ready-new",
                "ready-old"
            ]
        );
        assert_eq!(pods_to_delete(&pods, &pods, 2, now()).len(), 2);
        assert_eq!(pods_to_delete(&pods, &pods, 10, now()).len(), 5);
    }

    #[test]
    fn ages_fall_in_power_of_two_buckets() {
        let at = |secs: i64| Some(now() - k8s_openapi::jiff::SignedDuration::from_secs(secs));
        assert_eq!(Age::of(None, now()), Age::Unknown);
        assert_eq!(Age::of(Some(now()), now()), Age::Bucket(-1));
        assert_eq!(Age::of(at(-5), now()), Age::Bucket(-1), "a future time");
        // 1 s = 1e9 ns: 2^29 < 1e9 < 2^30.
        assert_eq!(Age::of(at(1), now()), Age::Bucket(29));
        assert_eq!(Age::of(at(40 * 60), now()), Age::of(at(50 * 60), now()));
        assert!(Age::of(at(10), now()) < Age::of(at(1000), now()));
    }
}
