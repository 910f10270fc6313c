//! Scaling without a rollout (a changed `spec.replicas`, or a paused Deployment), the
//! ReplicaSet writes every strategy uses, and the cleanup of old history (upstream's
//! `sync.go`).
//!
//! A Deployment scaled in the middle of a rollout spreads the change over its
//! ReplicaSets in proportion to their sizes, using the `max-replicas` annotation each
//! was last scaled with, so that a rollout of 10 → 15 replicas at 30% done stays about
//! 30% done.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{DeleteParams, PostParams};

use super::DeploymentController;
use super::replicas::{
    self, active, by_creation, by_revision, by_size_newer, by_size_older, desired, name,
    spec_replicas,
};
use super::revision::{self, DESIRED_REPLICAS, MAX_REPLICAS, set_replicas_annotations};
use super::rolling::{Step, max_surge};
use crate::Error;
use crate::events::EventType;
use crate::runtime::Next;

/// The only ReplicaSet with pods, or the newest when none has any; None when several
/// have pods (`FindActiveOrLatest`).
fn active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let mut old = old.to_vec();
    old.sort_by(|a, b| by_creation(b, a));
    let all: Vec<&ReplicaSet> = old.iter().copied().chain(new_rs).collect();
    let active = active(all);
    match active.len() {
        0 => new_rs.or_else(|| old.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// The new ReplicaSet runs all replicas, available, for this size (`IsSaturated`).
fn is_saturated(d: &Deployment, new_rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = new_rs else {
        return false;
    };
    let want = desired(d);
    revision::int_annotation(rs, DESIRED_REPLICAS) == Some(want)
        && spec_replicas(rs) == want
        && replicas::available(rs) == want
}

/// How many replicas of `to_add` (with `added` handed out already) `rs` takes: its
/// share of the new maximum relative to the maximum it was scaled for
/// (`GetProportion`).
fn proportion(rs: &ReplicaSet, d: &Deployment, surge: i32, to_add: i32, added: i32) -> i32 {
    let size = spec_replicas(rs);
    if size == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired(d) == 0 {
        -size
    } else {
        let new_max = desired(d) + surge;
        let old_max = revision::int_annotation(rs, MAX_REPLICAS)
            .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
        if old_max == 0 {
            // Nothing to scale relative to; the leftover goes to the largest set.
            0
        } else {
            let scaled = f64::from(size) * f64::from(new_max) / f64::from(old_max);
            // Go's math.Round: halves away from zero, as f64::round.
            scaled.round() as i32 - size
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// The sizes the ReplicaSets take for the Deployment's size (upstream's `scale`):
/// the one active (or latest) set takes it all; a saturated new set lets the old go;
/// during a rolling update the difference is spread proportionally, largest sets
/// first, the rounding leftover to the first. Every set listed gets its replica
/// annotations refreshed, even when its size stays.
pub fn scale_plan(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    old: &[&ReplicaSet],
) -> Result<Vec<Step>, Error> {
    if let Some(rs) = active_or_latest(new_rs, old) {
        return Ok(vec![(name(rs).to_string(), desired(d))]);
    }
    if is_saturated(d, new_rs) {
        return Ok(active(old.iter().copied())
            .into_iter()
            .map(|rs| (name(rs).to_string(), 0))
            .collect());
    }
    if !replicas::is_rolling_update(d) {
        // Recreate with several active sets (a strategy switched mid-rollout): sizes
        // stay for the rollout to settle, but the annotations are refreshed. Upstream
        // leaves them stale, so the next pass is a "scaling event" again and the
        // rollout never runs.
        return Ok(active(old.iter().copied().chain(new_rs))
            .into_iter()
            .map(|rs| (name(rs).to_string(), spec_replicas(rs)))
            .collect());
    }
    let surge = max_surge(d)?;
    let mut all = active(old.iter().copied().chain(new_rs));
    let total = replicas::total_spec(all.iter().copied());
    let allowed = if desired(d) > 0 {
        desired(d) + surge
    } else {
        0
    };
    let to_add = allowed - total;
    if to_add > 0 {
        all.sort_by(|a, b| by_size_newer(a, b));
    } else if to_add < 0 {
        all.sort_by(|a, b| by_size_older(a, b));
    }
    let mut added = 0;
    let mut plan: Vec<Step> = Vec::with_capacity(all.len());
    for rs in &all {
        let share = proportion(rs, d, surge, to_add, added);
        added += share;
        plan.push((name(rs).to_string(), spec_replicas(rs) + share));
    }
    if let Some(first) = plan.first_mut() {
        first.1 = (first.1 + to_add - added).max(0);
    }
    Ok(plan)
}

/// Whether `spec.replicas` changed since the active ReplicaSets were last scaled
/// (`isScalingEvent`): then the Deployment scales instead of rolling.
pub fn is_scaling_event(d: &Deployment, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> bool {
    active(old.iter().chain(new_rs)).into_iter().any(|rs| {
        revision::int_annotation(rs, DESIRED_REPLICAS).is_some_and(|want| want != desired(d))
    })
}

/// Old ReplicaSets beyond `revisionHistoryLimit` to delete, lowest revision first:
/// only those scaled to zero, fully observed and not already going
/// (`cleanupDeployment`).
pub fn history_to_delete(old: &[&ReplicaSet], limit: i32) -> Vec<String> {
    let mut cleanable: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let excess = i32::try_from(cleanable.len())
        .unwrap_or(i32::MAX)
        .saturating_sub(limit);
    if excess <= 0 {
        return Vec::new();
    }
    cleanable.sort_by(|a, b| by_revision(a, b));
    cleanable
        .into_iter()
        .take(usize::try_from(excess).unwrap_or(0))
        .filter(|rs| {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            replicas::actual(rs) == 0
                && spec_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed
        })
        .map(|rs| name(rs).to_string())
        .collect()
}

impl DeploymentController {
    /// Scales (and, when paused, cleans up), then writes the status: no rollout
    /// progress (upstream's `sync`).
    pub(super) async fn sync(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Next, Error> {
        let (new_rs, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let mut new_rs = new_rs;
        self.scale(d, &mut new_rs, &mut old).await?;
        if replicas::is_paused(d) {
            self.cleanup_deployment(d, &old).await?;
        }
        self.sync_deployment_status(d, &old, new_rs.as_ref())
            .await?;
        Ok(Next::Idle)
    }

    /// Status only: a Deployment being deleted, whose ReplicaSets the garbage
    /// collector takes care of (`syncStatusOnly`, without touching them).
    pub(super) async fn sync_status_only(
        &self,
        d: &mut Deployment,
        rs_list: &[ReplicaSet],
    ) -> Result<Next, Error> {
        let new_rs = super::new_replica_set::find_new(d, rs_list).cloned();
        let old: Vec<ReplicaSet> = super::new_replica_set::old(rs_list, new_rs.as_ref())
            .into_iter()
            .cloned()
            .collect();
        self.sync_deployment_status(d, &old, new_rs.as_ref())
            .await?;
        Ok(Next::Idle)
    }

    /// Whether this pass is a scaling event (syncing the new set's revision on the way,
    /// as upstream).
    pub(super) async fn check_scaling_event(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<bool, Error> {
        let (new_rs, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        Ok(is_scaling_event(d, new_rs.as_ref(), &old))
    }

    async fn scale(
        &self,
        d: &Deployment,
        new_rs: &mut Option<ReplicaSet>,
        old: &mut [ReplicaSet],
    ) -> Result<(), Error> {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let plan = scale_plan(d, new_rs.as_ref(), &old_refs)?;
        for (target, size) in plan {
            let slot = match new_rs.as_mut().filter(|rs| name(rs) == target) {
                Some(rs) => rs,
                None => match old.iter_mut().find(|rs| name(rs) == target) {
                    Some(rs) => rs,
                    None => continue,
                },
            };
            let operation = if size >= spec_replicas(slot) {
                "up"
            } else {
                "down"
            };
            let (_, updated) = self.scale_replica_set(d, slot, size, operation).await?;
            *slot = updated;
        }
        Ok(())
    }

    /// Scales `rs` when the size differs; whether it did, and the ReplicaSet after.
    pub(super) async fn scale_replica_set_and_record_event(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        size: i32,
    ) -> Result<(bool, ReplicaSet), Error> {
        let current = spec_replicas(rs);
        if current == size {
            return Ok((false, rs.clone()));
        }
        let operation = if current < size { "up" } else { "down" };
        self.scale_replica_set(d, rs, size, operation).await
    }

    /// Writes the size and the Deployment's replica annotations when either changed;
    /// a change of size is an event, as upstream's "Scaled up replica set …".
    pub(super) async fn scale_replica_set(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        size: i32,
        operation: &str,
    ) -> Result<(bool, ReplicaSet), Error> {
        let current = spec_replicas(rs);
        let mut copy = rs.clone();
        let want = desired(d);
        let annotations_changed = set_replicas_annotations(&mut copy, want, want + max_surge(d)?);
        if current == size && !annotations_changed {
            return Ok((false, rs.clone()));
        }
        copy.spec.replicas = Some(size);
        let written = self
            .replica_sets_api(d)
            .replace(name(&copy), &PostParams::default(), &copy)
            .await?;
        let scaled = current != size;
        if scaled {
            self.ctx.events.record(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled {operation} replica set {} from {current} to {size}",
                    name(rs)
                ),
            );
        }
        Ok((scaled, written))
    }

    /// Deletes old ReplicaSets beyond the revision history limit.
    pub(super) async fn cleanup_deployment(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
    ) -> Result<(), Error> {
        let Some(limit) = d.spec.revision_history_limit.filter(|l| *l != i32::MAX) else {
            return Ok(());
        };
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let api = self.replica_sets_api(d);
        for doomed in history_to_delete(&old_refs, limit) {
            tracing::debug!(replica_set = %doomed, "deleting old replica set beyond the history limit");
            crate::ignore_not_found(api.delete(&doomed, &DeleteParams::default()).await)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deployment::replicas::test_support::{rolling, rs, rs_rev, sizes};

    /// A ReplicaSet last scaled for `desired` replicas with maximum `max`.
    fn scaled_for(mut set: ReplicaSet, want: i32, max: i32) -> ReplicaSet {
        set_replicas_annotations(&mut set, want, max);
        set
    }

    #[test]
    fn scaling_one_active_set_or_the_latest() {
        let d = rolling(7, json!(1), json!(0));
        let only = scaled_for(rs("only", 5, 5, 1), 5, 6);
        let idle = rs("idle", 0, 0, 2);
        let plan = scale_plan(&d, Some(&only), &[&idle]).unwrap_or_default();
        assert_eq!(sizes(&plan), [("only", 7)]);

        // Nothing active and no new set: the newest old one.
        let older = rs("older", 0, 0, 1);
        let newer = rs("newer", 0, 0, 2);
        let plan = scale_plan(&d, None, &[&older, &newer]).unwrap_or_default();
        assert_eq!(sizes(&plan), [("newer", 7)]);
    }

    #[test]
    fn saturated_new_set_scales_old_ones_to_zero() {
        let d = rolling(3, json!(1), json!(0));
        let new = scaled_for(rs("new", 3, 3, 3), 3, 4);
        let old = rs("old", 1, 1, 1);
        let plan = scale_plan(&d, Some(&new), &[&old]).unwrap_or_default();
        assert_eq!(sizes(&plan), [("old", 0)]);
    }

    #[test]
    fn proportional_scaling_mid_rollout() {
        struct Case {
            what: &'static str,
            replicas: i32,
            surge: i32,
            /// (name, size, age, annotated max)
            sets: Vec<(&'static str, i32, i64, i32)>,
            want: Vec<(&'static str, i32)>,
        }
        let cases = [
            Case {
                what: "10 -> 15 with surge 3: both grow by half",
                replicas: 15,
                surge: 3,
                sets: vec![("new", 5, 2, 13), ("old", 8, 1, 13)],
                // new max 18; old 8*18/13 = 11.08 -> 11; new 5*18/13 = 6.9 -> 7.
                want: vec![("old", 11), ("new", 7)],
            },
            Case {
                what: "scale down from 10 to 5 with surge 0",
                replicas: 5,
                surge: 0,
                sets: vec![("new", 4, 2, 10), ("old", 6, 1, 10)],
                want: vec![("old", 3), ("new", 2)],
            },
            Case {
                what: "leftover goes to the first (largest, newest on ties)",
                replicas: 4,
                surge: 0,
                sets: vec![("a", 1, 1, 3), ("b", 1, 2, 3), ("c", 1, 3, 3)],
                // new max 4 vs 3: each 1.33 -> 1 (share 0); leftover 1 to the newest.
                want: vec![("c", 2), ("b", 1), ("a", 1)],
            },
            Case {
                what: "to zero",
                replicas: 0,
                surge: 1,
                sets: vec![("new", 2, 2, 4), ("old", 2, 1, 4)],
                want: vec![("old", 0), ("new", 0)],
            },
        ];
        for case in cases {
            let d = rolling(case.replicas, json!(case.surge), json!(1));
            let mut sets: Vec<ReplicaSet> = case
                .sets
                .iter()
                .map(|(n, size, age, max)| scaled_for(rs(n, *size, *size, *age), 0, *max))
                .collect();
            let new = sets.remove(0);
            let old: Vec<&ReplicaSet> = sets.iter().collect();
            let plan = scale_plan(&d, Some(&new), &old).unwrap_or_default();
            assert_eq!(sizes(&plan), case.want, "{}", case.what);
        }
    }

    #[test]
    fn recreate_with_several_active_sets_keeps_sizes() {
        let mut d = rolling(6, json!(1), json!(0));
        if let Some(strategy) = d.spec.strategy.as_mut() {
            strategy.type_ = Some("Recreate".into());
        }
        let new = scaled_for(rs("new", 2, 2, 2), 4, 5);
        let old = scaled_for(rs("old", 3, 3, 1), 4, 5);
        let plan = scale_plan(&d, Some(&new), &[&old]).unwrap_or_default();
        assert_eq!(sizes(&plan), [("old", 3), ("new", 2)]);
    }

    #[test]
    fn scaling_events_come_from_the_desired_annotation() {
        let d = rolling(3, json!(1), json!(0));
        let current = scaled_for(rs("a", 3, 3, 1), 3, 4);
        let stale = scaled_for(rs("b", 2, 2, 1), 5, 6);
        let stale_but_idle = scaled_for(rs("c", 0, 0, 1), 5, 6);
        assert!(!is_scaling_event(&d, Some(&current), &[]));
        assert!(is_scaling_event(&d, Some(&current), &[stale]));
        assert!(!is_scaling_event(&d, Some(&current), &[stale_but_idle]));
        assert!(!is_scaling_event(
            &d,
            Some(&rs("unannotated", 3, 3, 1)),
            &[]
        ));
    }

    #[test]
    fn history_cleanup_takes_the_lowest_revisions_that_are_empty() {
        let observed = |mut set: ReplicaSet| {
            set.metadata.generation = Some(2);
            if let Some(s) = set.status.as_mut() {
                s.observed_generation = Some(2);
            }
            set
        };
        let r1 = observed(rs_rev("r1", 0, 0, 1, 1));
        let r2 = observed(rs_rev("r2", 0, 0, 2, 2));
        let r3_running = observed(rs_rev("r3", 2, 2, 3, 3));
        let mut r4_unobserved = rs_rev("r4", 0, 0, 4, 4);
        r4_unobserved.metadata.generation = Some(3);
        let r5 = observed(rs_rev("r5", 0, 0, 5, 5));
        let all = [&r5, &r3_running, &r1, &r4_unobserved, &r2];
        let cases = [
            (10, vec![]),
            (5, vec![]),
            (3, vec!["r1", "r2"]),
            // Four over the limit, but r3 has pods and r4 is not observed yet.
            (1, vec!["r1", "r2"]),
            (0, vec!["r1", "r2", "r5"]),
        ];
        for (limit, want) in cases {
            assert_eq!(history_to_delete(&all, limit), want, "limit {limit}");
        }
    }
}
