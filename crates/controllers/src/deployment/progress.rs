//! The Deployment's conditions: `Progressing` (is the rollout moving, done, paused or
//! stuck past its deadline) and `Available` (minimum availability), as upstream's
//! `syncRolloutStatus` and `deploymentutil` keep them. `kubectl rollout status` reads
//! `Progressing` to report a deadline that passed.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::DeploymentController;
use super::replicas::{desired, is_paused, name};
use super::status::calculate_status;
use crate::Error;
use crate::runtime::Next;

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const MINIMUM_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// Now, to the second: the API's times have no fraction, so a condition written and
/// read back compares equal to the one computed.
pub fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

pub fn condition<'a>(status: &'a DeploymentStatus, kind: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(kind))
}

fn reason(condition: Option<&DeploymentCondition>) -> Option<&str> {
    condition.and_then(|c| c.reason.as_deref())
}

pub fn new_condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(kind.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets a condition; one with the same status and reason is kept as it is, and a
/// status that does not change keeps its transition time (`SetDeploymentCondition`).
pub fn set_condition(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    let kind = new.type_.clone().unwrap_or_default();
    if let Some(current) = condition(status, &kind) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &kind);
    status.conditions.get_or_insert_with(Vec::new).push(new);
}

pub fn remove_condition(status: &mut DeploymentStatus, kind: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_.as_deref() != Some(kind));
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// `progressDeadlineSeconds`, unless unset or "never" (MaxInt32).
fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.progress_deadline_seconds.filter(|s| *s != i32::MAX)
}

pub fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline(d).is_some()
}

/// All replicas updated and available, none old, and the latest spec seen
/// (`DeploymentComplete`; what `kubectl rollout status` waits for).
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = desired(d);
    status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the Deployment's recorded status: more updated,
/// ready or available replicas, or fewer old ones (`DeploymentProgressing`).
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let count = |v: Option<i32>| v.unwrap_or(0);
    let old_old = count(old.replicas) - count(old.updated_replicas);
    let new_old = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old < old_old
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

/// Whether the last progress is older than the deadline (`DeploymentTimedOut`).
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(progressing) = condition(status, PROGRESSING) else {
        return false;
    };
    // A finished rollout is not judged again until a new one starts.
    match progressing.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = progressing.last_update_time.as_ref() else {
        return false;
    };
    from.0
        .checked_add(SignedDuration::from_secs(i64::from(deadline)))
        .is_ok_and(|at| at < now)
}

/// Updates `Progressing` in `new` for a rollout in flight (the switch of upstream's
/// `syncRolloutStatus`): complete, progressing (refreshing its update time), or out of
/// time. A rollout already recorded as complete is left alone.
pub fn update_progressing(
    d: &Deployment,
    new: &mut DeploymentStatus,
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) {
    let current = d
        .status
        .as_ref()
        .and_then(|s| condition(s, PROGRESSING))
        .cloned();
    let settled =
        new.replicas == new.updated_replicas && reason(current.as_ref()) == Some(NEW_RS_AVAILABLE);
    if !has_progress_deadline(d) || settled {
        return;
    }
    let subject = match new_rs {
        Some(rs) => format!("ReplicaSet {:?}", name(rs)),
        None => format!("Deployment {:?}", d.metadata.name.as_deref().unwrap_or("")),
    };
    if deployment_complete(d, new) {
        let message = format!("{subject} has successfully progressed.");
        set_condition(
            new,
            new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now),
        );
    } else if deployment_progressing(d, new) {
        let message = format!("{subject} is progressing.");
        let mut progressing = new_condition(PROGRESSING, "True", RS_UPDATED, message, now);
        // Progress refreshes the update time even when the reason stays, which
        // `set_condition` would not do; the transition time stays while True.
        if let Some(current) = current {
            if current.status.as_deref() == Some("True") {
                progressing.last_transition_time = current.last_transition_time;
            }
            remove_condition(new, PROGRESSING);
        }
        set_condition(new, progressing);
    } else if deployment_timed_out(d, new, now) {
        let message = format!("{subject} has timed out progressing.");
        set_condition(
            new,
            new_condition(PROGRESSING, "False", TIMED_OUT, message, now),
        );
    }
}

/// The ReplicaFailure condition of the new ReplicaSet, else of any other
/// (`getReplicaFailures`): pods that could not be created show on the Deployment.
pub fn replica_failure(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_.as_deref() == Some(REPLICA_FAILURE))
            })
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
    };
    new_rs
        .and_then(failure)
        .or_else(|| all.iter().find_map(|rs| failure(rs)))
}

/// When to look again for a rollout that may get stuck: just after its deadline,
/// counted from the last progress (`requeueStuckDeployment`). None when there is no
/// deadline, the rollout is complete, or it already timed out.
pub fn requeue_after(d: &Deployment, now: Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let status = d.status.as_ref()?;
    let progressing = condition(status, PROGRESSING)?;
    // A timed-out or finished rollout is not judged against the deadline (see
    // `deployment_timed_out`), so there is nothing to look again for. (Upstream
    // requeues a finished rollout that lost availability at once, over and over.)
    let settled = matches!(
        progressing.reason.as_deref(),
        Some(TIMED_OUT | NEW_RS_AVAILABLE)
    );
    if deployment_complete(d, status) || settled {
        return None;
    }
    let from = progressing.last_update_time.as_ref()?.0;
    let at = from
        .checked_add(SignedDuration::from_secs(i64::from(deadline)))
        .ok()?;
    let left = at.duration_since(now);
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    // A second past the deadline, so the check then sees it passed.
    Some(left + Duration::from_secs(1))
}

/// Records pausing and resuming in `Progressing` (not over a timeout); whether the
/// status changed (`checkPausedConditions`).
pub fn record_pause(d: &mut Deployment, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let paused = is_paused(d);
    let status = d.status.get_or_insert_with(Default::default);
    let current = reason(condition(status, PROGRESSING)).map(str::to_string);
    if current.as_deref() == Some(TIMED_OUT) {
        return false;
    }
    let recorded_paused = current.as_deref() == Some(PAUSED);
    let (why, message) = match (paused, recorded_paused) {
        (true, false) => (PAUSED, "Deployment is paused"),
        (false, true) => (RESUMED, "Deployment is resumed"),
        _ => return false,
    };
    set_condition(
        status,
        new_condition(PROGRESSING, "Unknown", why, message.into(), now),
    );
    true
}

impl DeploymentController {
    /// Writes the status of a rollout in flight: counts, `Available`, `Progressing`
    /// and replica failures; asks to be back at the progress deadline.
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        old: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<Next, Error> {
        let now = now();
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let mut status = calculate_status(d, &all, new_rs, now)?;
        if !has_progress_deadline(d) {
            remove_condition(&mut status, PROGRESSING);
        }
        update_progressing(d, &mut status, new_rs, now);
        match replica_failure(&all, new_rs) {
            Some(failure) => set_condition(&mut status, failure),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        self.write_status_if_changed(d, status).await?;
        Ok(requeue_after(d, now).map_or(Next::Idle, Next::After))
    }

    /// Records pausing or resuming, if that changed.
    pub(super) async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<(), Error> {
        if record_pause(d, now()) {
            self.update_status(d).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deployment::replicas::test_support::{rolling, rs};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn status(
        replicas: i32,
        updated: i32,
        available: i32,
        progressing: Option<(&str, &str, i64)>,
    ) -> DeploymentStatus {
        let mut status = DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            ready_replicas: Some(available),
            available_replicas: Some(available),
            ..DeploymentStatus::default()
        };
        if let Some((state, why, when)) = progressing {
            set_condition(
                &mut status,
                new_condition(PROGRESSING, state, why, String::new(), at(when)),
            );
        }
        status
    }

    fn progressing(
        status: &DeploymentStatus,
    ) -> (Option<&str>, Option<&str>, Option<i64>, Option<i64>) {
        let c = condition(status, PROGRESSING);
        (
            c.and_then(|c| c.status.as_deref()),
            c.and_then(|c| c.reason.as_deref()),
            c.and_then(|c| c.last_update_time.as_ref())
                .map(|t| t.0.as_second()),
            c.and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0.as_second()),
        )
    }

    #[test]
    fn set_condition_keeps_same_and_transition_times() {
        let mut s = DeploymentStatus::default();
        set_condition(
            &mut s,
            new_condition(AVAILABLE, "True", MINIMUM_AVAILABLE, "a".into(), at(10)),
        );
        set_condition(
            &mut s,
            new_condition(AVAILABLE, "True", MINIMUM_AVAILABLE, "b".into(), at(20)),
        );
        let c = condition(&s, AVAILABLE).cloned().unwrap_or_default();
        assert_eq!(
            c.message.as_deref(),
            Some("a"),
            "same status and reason: untouched"
        );
        set_condition(
            &mut s,
            new_condition(AVAILABLE, "True", "Other", "c".into(), at(30)),
        );
        let c = condition(&s, AVAILABLE).cloned().unwrap_or_default();
        assert_eq!(c.last_transition_time.map(|t| t.0), Some(at(10)));
        assert_eq!(c.last_update_time.map(|t| t.0), Some(at(30)));
        set_condition(
            &mut s,
            new_condition(AVAILABLE, "False", MINIMUM_UNAVAILABLE, "d".into(), at(40)),
        );
        let c = condition(&s, AVAILABLE).cloned().unwrap_or_default();
        assert_eq!(c.last_transition_time.map(|t| t.0), Some(at(40)));
        assert_eq!(s.conditions.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn progressing_condition_steps() {
        struct Case {
            what: &'static str,
            old: DeploymentStatus,
            new: DeploymentStatus,
            now: i64,
            want: (
                Option<&'static str>,
                Option<&'static str>,
                Option<i64>,
                Option<i64>,
            ),
        }
        let cases = [
            Case {
                what: "complete",
                old: status(3, 2, 2, Some(("True", RS_UPDATED, 100))),
                new: status(3, 3, 3, None),
                now: 200,
                want: (Some("True"), Some(NEW_RS_AVAILABLE), Some(200), Some(100)),
            },
            Case {
                what: "progress refreshes the update time only",
                old: status(4, 1, 3, Some(("True", RS_UPDATED, 100))),
                new: status(4, 2, 3, None),
                now: 150,
                want: (Some("True"), Some(RS_UPDATED), Some(150), Some(100)),
            },
            Case {
                what: "progress after a timeout transitions back to True",
                old: status(4, 1, 3, Some(("False", TIMED_OUT, 100))),
                new: status(4, 2, 3, None),
                now: 900,
                want: (Some("True"), Some(RS_UPDATED), Some(900), Some(900)),
            },
            Case {
                what: "no progress within the deadline: unchanged",
                old: status(4, 1, 3, Some(("True", RS_UPDATED, 100))),
                new: status(4, 1, 3, None),
                now: 700,
                want: (Some("True"), Some(RS_UPDATED), Some(100), Some(100)),
            },
            Case {
                what: "no progress past the deadline: timed out",
                old: status(4, 1, 3, Some(("True", RS_UPDATED, 100))),
                new: status(4, 1, 3, None),
                now: 701,
                want: (Some("False"), Some(TIMED_OUT), Some(701), Some(701)),
            },
            Case {
                what: "a settled deployment is left alone",
                old: status(3, 3, 3, Some(("True", NEW_RS_AVAILABLE, 100))),
                new: status(3, 3, 2, None),
                now: 5000,
                want: (Some("True"), Some(NEW_RS_AVAILABLE), Some(100), Some(100)),
            },
        ];
        for case in cases {
            let mut d = rolling(case.new.replicas.unwrap_or(0), json!(1), json!(0));
            let mut new = case.new.clone();
            // `new` starts from the recorded conditions, as calculate_status makes it.
            new.conditions = case.old.conditions.clone();
            d.status = Some(case.old);
            update_progressing(&d, &mut new, Some(&rs("web-1", 3, 3, 1)), at(case.now));
            assert_eq!(progressing(&new), case.want, "{}", case.what);
        }
    }

    #[test]
    fn no_deadline_no_progress_condition() {
        let mut d = rolling(3, json!(1), json!(0));
        {
            let spec = &mut d.spec;
            spec.progress_deadline_seconds = Some(i32::MAX);
        }
        let mut new = status(3, 3, 3, None);
        update_progressing(&d, &mut new, None, at(10));
        assert_eq!(condition(&new, PROGRESSING), None);
        assert!(!record_pause(&mut d, at(10)));
        assert_eq!(requeue_after(&d, at(10)), None);
    }

    #[test]
    fn requeue_at_the_deadline() {
        let mut d = rolling(4, json!(1), json!(0));
        d.status = Some(status(4, 1, 3, Some(("True", RS_UPDATED, 100))));
        assert_eq!(requeue_after(&d, at(400)), Some(Duration::from_secs(301)));
        assert_eq!(requeue_after(&d, at(800)), Some(Duration::from_secs(1)));
        d.status = Some(status(4, 1, 3, Some(("False", TIMED_OUT, 100))));
        assert_eq!(requeue_after(&d, at(400)), None);
        d.status = Some(status(4, 4, 4, Some(("True", RS_UPDATED, 100))));
        assert_eq!(requeue_after(&d, at(400)), None, "complete");
        d.status = Some(status(4, 4, 3, Some(("True", NEW_RS_AVAILABLE, 100))));
        assert_eq!(
            requeue_after(&d, at(4000)),
            None,
            "finished, then lost a pod"
        );
    }

    #[test]
    fn pause_and_resume_are_recorded_once() {
        let mut d = rolling(2, json!(1), json!(0));
        d.status = Some(status(2, 2, 2, Some(("True", NEW_RS_AVAILABLE, 100))));
        assert!(
            !record_pause(&mut d, at(150)),
            "not paused: nothing to record"
        );
        {
            let spec = &mut d.spec;
            spec.paused = Some(true);
        }
        assert!(record_pause(&mut d, at(200)));
        assert!(!record_pause(&mut d, at(210)));
        let s = d.status.clone().unwrap_or_default();
        assert_eq!(
            progressing(&s),
            (Some("Unknown"), Some(PAUSED), Some(200), Some(200))
        );
        {
            let spec = &mut d.spec;
            spec.paused = Some(false);
        }
        assert!(record_pause(&mut d, at(300)));
        let s = d.status.clone().unwrap_or_default();
        assert_eq!(
            progressing(&s),
            (Some("Unknown"), Some(RESUMED), Some(300), Some(200))
        );
        d.status = Some(status(2, 1, 1, Some(("False", TIMED_OUT, 100))));
        {
            let spec = &mut d.spec;
            spec.paused = Some(true);
        }
        assert!(
            !record_pause(&mut d, at(400)),
            "a timeout is not overwritten"
        );
    }

    #[test]
    fn replica_failures_prefer_the_new_set() {
        let failing = |name: &str, message: &str| {
            let mut r = rs(name, 1, 0, 1);
            if let Some(s) = r.status.as_mut() {
                s.conditions = Some(vec![serde_json::from_value(json!({
                    "type": REPLICA_FAILURE, "status": "True", "reason": "FailedCreate", "message": message
                }))
                .expect("condition")]);
            }
            r
        };
        let old = failing("old", "old failed");
        let new = failing("new", "new failed");
        let healthy = rs("new", 1, 1, 2);
        let got = replica_failure(&[&old, &new], Some(&new)).and_then(|c| c.message);
        assert_eq!(got.as_deref(), Some("new failed"));
        let got = replica_failure(&[&old, &healthy], Some(&healthy)).and_then(|c| c.message);
        assert_eq!(got.as_deref(), Some("old failed"));
        assert_eq!(replica_failure(&[&healthy], Some(&healthy)), None);
    }
}
