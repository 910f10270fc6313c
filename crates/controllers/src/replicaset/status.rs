//! A ReplicaSet's status from the pods it owns (upstream's `calculateStatus`), and
//! whether it differs from what is stored.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::pods;

/// The condition a ReplicaSet carries while it fails to create or delete pods.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What a reconcile saw and did, as the status reports it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The active pods the ReplicaSet owns (after adopting and releasing).
    pub pods: &'a [Arc<Pod>],
    /// Its pods being deleted but not gone yet.
    pub terminating: usize,
    /// Why creating or deleting pods failed in this reconcile, if it did.
    pub failure: Option<&'a str>,
    pub now: Timestamp,
}

pub fn desired_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

pub fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec.min_ready_seconds.unwrap_or(0)
}

/// The status the ReplicaSet should have.
pub fn compute(rs: &ReplicaSet, observed: &Observed<'_>) -> ReplicaSetStatus {
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = min_ready_seconds(rs);
    let count = |keep: &dyn Fn(&Pod) -> bool| {
        let n = observed.pods.iter().filter(|p| keep(p)).count();
        i32::try_from(n).unwrap_or(i32::MAX)
    };
    let fully_labeled = count(&|p: &Pod| {
        let labels = p.metadata.labels.as_ref();
        template_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    });
    let previous = rs.status.clone().unwrap_or_default();
    ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(count(&pods::is_ready)),
        available_replicas: Some(count(&|p: &Pod| {
            pods::is_available(p, min_ready, observed.now)
        })),
        terminating_replicas: Some(i32::try_from(observed.terminating).unwrap_or(i32::MAX)),
        observed_generation: rs.metadata.generation,
        conditions: conditions(rs, previous.conditions, observed),
    }
}

/// Upstream: a failure adds ReplicaFailure (FailedCreate when short of pods,
/// FailedDelete when over) unless present; a reconcile without one removes it.
fn conditions(
    rs: &ReplicaSet,
    previous: Option<Vec<ReplicaSetCondition>>,
    observed: &Observed<'_>,
) -> Option<Vec<ReplicaSetCondition>> {
    let mut conditions = previous.unwrap_or_default();
    let present = conditions
        .iter()
        .any(|c| c.type_.as_deref() == Some(REPLICA_FAILURE));
    match observed.failure {
        Some(message) if !present => {
            let short = observed.pods.len() < usize::try_from(desired_replicas(rs)).unwrap_or(0);
            conditions.push(ReplicaSetCondition {
                type_: Some(REPLICA_FAILURE.into()),
                status: Some("True".into()),
                reason: Some(
                    if short {
                        "FailedCreate"
                    } else {
                        "FailedDelete"
                    }
                    .into(),
                ),
                message: Some(message.into()),
                last_transition_time: Some(Time(observed.now)),
            });
        }
        None if present => conditions.retain(|c| c.type_.as_deref() != Some(REPLICA_FAILURE)),
        _ => {}
    }
    (!conditions.is_empty()).then_some(conditions)
}

/// Whether `new` says something the stored status does not. Zero counts and empty
/// lists compare equal to missing ones (the API omits them).
pub fn differs(stored: Option<&ReplicaSetStatus>, new: &ReplicaSetStatus) -> bool {
    normalized(stored.cloned().unwrap_or_default()) != normalized(new.clone())
}

fn normalized(mut status: ReplicaSetStatus) -> ReplicaSetStatus {
    let zero_is_none = |v: Option<i32>| v.filter(|n| *n != 0);
    status.fully_labeled_replicas = zero_is_none(status.fully_labeled_replicas);
    status.ready_replicas = zero_is_none(status.ready_replicas);
    status.available_replicas = zero_is_none(status.available_replicas);
    status.terminating_replicas = zero_is_none(status.terminating_replicas);
    status.observed_generation = status.observed_generation.filter(|g| *g != 0);
    status.conditions = status.conditions.filter(|c| !c.is_empty());
    status
}

/// When the next ready pod becomes available (minReadySeconds after it became
/// ready), so that the reconcile can come back then instead of polling.
pub fn next_availability(rs: &ReplicaSet, pods: &[Arc<Pod>], now: Timestamp) -> Option<Duration> {
    let min_ready = min_ready_seconds(rs);
    pods.iter()
        .filter_map(|p| pods::available_in(p, min_ready, now))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::pods::test_support::{now, pod, ready_for, replica_set};
    use serde_json::json;

    fn status_of(
        rs: &ReplicaSet,
        pods: &[Arc<Pod>],
        terminating: usize,
        failure: Option<&str>,
    ) -> ReplicaSetStatus {
        compute(
            rs,
            &Observed {
                pods,
                terminating,
                failure,
                now: now(),
            },
        )
    }

    #[test]
    fn counts_follow_the_pods() {
        let partly_labeled = json!({"metadata": {"labels": {"app": "web", "tier": null}}});
        // (minReadySeconds, pods, (replicas, fully labeled, ready, available))
        let cases = [
            (0, vec![], (0, 0, 0, 0)),
            (0, vec![json!({}), json!({})], (2, 2, 0, 0)),
            (0, vec![ready_for(1), json!({})], (2, 2, 1, 1)),
            (10, vec![ready_for(1), ready_for(11)], (2, 2, 2, 1)),
            (0, vec![partly_labeled, ready_for(0)], (2, 1, 1, 1)),
        ];
        for (min_ready, extras, (replicas, fully, ready, available)) in cases {
            let rs = replica_set(3, min_ready);
            let pods: Vec<Arc<Pod>> = extras
                .iter()
                .enumerate()
                .map(|(i, e)| Arc::new(pod(&format!("p{i}"), e.clone())))
                .collect();
            let s = status_of(&rs, &pods, 0, None);
            let got = (
                s.replicas,
                s.fully_labeled_replicas.unwrap_or(0),
                s.ready_replicas.unwrap_or(0),
                s.available_replicas.unwrap_or(0),
            );
            assert_eq!(
                got,
                (replicas, fully, ready, available),
                "{extras:?}, minReady {min_ready}"
            );
            assert_eq!(s.observed_generation, Some(2));
            assert_eq!(s.terminating_replicas, Some(0));
        }
    }

    #[test]
    fn terminating_pods_are_reported() {
        let rs = replica_set(3, 0);
        assert_eq!(status_of(&rs, &[], 4, None).terminating_replicas, Some(4));
    }

    #[test]
    fn failures_set_and_clear_the_replica_failure_condition() {
        let rs = replica_set(3, 0);
        let one = [Arc::new(pod("p", json!({})))];
        let short = status_of(&rs, &one, 0, Some("quota exceeded"));
        let condition = short
            .conditions
            .as_ref()
            .and_then(|c| c.first())
            .expect("a condition");
        assert_eq!(condition.type_.as_deref(), Some(REPLICA_FAILURE));
        assert_eq!(condition.status.as_deref(), Some("True"));
        assert_eq!(condition.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(condition.message.as_deref(), Some("quota exceeded"));

        let over = replica_set(0, 0);
        let s = status_of(&over, &one, 0, Some("forbidden"));
        let reason = s
            .conditions
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.reason.clone());
        assert_eq!(reason.as_deref(), Some("FailedDelete"));

        // Present already: kept as it was (its time and message too).
        let mut failing = rs.clone();
        failing.status = Some(short.clone());
        let again = status_of(&failing, &one, 0, Some("another message"));
        assert_eq!(again.conditions, short.conditions);

        // A reconcile without failure removes it.
        let healed = status_of(&failing, &one, 0, None);
        assert_eq!(healed.conditions, None);
    }

    #[test]
    fn zero_and_missing_compare_equal() {
        let stored = ReplicaSetStatus {
            replicas: 0,
            observed_generation: Some(2),
            ..ReplicaSetStatus::default()
        };
        let rs = replica_set(0, 0);
        let fresh = status_of(&rs, &[], 0, None);
        assert!(!differs(Some(&stored), &fresh));
        assert!(differs(None, &fresh), "observedGeneration is new");
        let mut grown = fresh.clone();
        grown.replicas = 1;
        assert!(differs(Some(&stored), &grown));
    }

    #[test]
    fn the_next_availability_is_the_soonest() {
        let rs = replica_set(3, 10);
        let pods = [
            Arc::new(pod("a", ready_for(2))),
            Arc::new(pod("b", ready_for(7))),
            Arc::new(pod("c", ready_for(30))),
            Arc::new(pod("d", json!({}))),
        ];
        assert_eq!(
            next_availability(&rs, &pods, now()),
            Some(Duration::from_millis(3001))
        );
        let rs = replica_set(3, 0);
        assert_eq!(next_availability(&rs, &pods, now()), None);
    }
}
