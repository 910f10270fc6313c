//! The RollingUpdate strategy: grow the new ReplicaSet while the total stays within
//! `replicas + maxSurge`, shrink old ones while availability stays at or above
//! `replicas - maxUnavailable` (upstream's `rolloutRolling`).
//!
//! The decisions are pure functions of the ReplicaSets (tested below); the controller
//! only carries them out, one step per reconcile, and the ReplicaSets' status changes
//! bring it back for the next step.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::DeploymentController;
use super::replicas::{self, available, by_creation, desired, name, spec_replicas, total_spec};
use crate::Error;
use crate::runtime::Next;

/// A step of a plan: scale the ReplicaSet of this name to this size.
pub type Step = (String, i32);

/// An int, or a percentage of `total` rounded up (surge) or down (unavailability)
/// (upstream's `GetScaledValueFromIntOrPercent`; unset counts as 0).
pub fn scaled_value(value: Option<&IntOrString>, total: i32, round_up: bool) -> Result<i32, Error> {
    let percent = match value {
        None => return Ok(0),
        Some(IntOrString::Int(n)) => return Ok(*n),
        Some(IntOrString::String(text)) => text
            .strip_suffix('%')
            .and_then(|n| n.parse::<i32>().ok())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "invalid value for IntOrString: {text:?} is not an int or a percentage"
                ))
            })?,
    };
    let exact = f64::from(percent) * f64::from(total) / 100.0;
    let rounded = if round_up {
        exact.ceil()
    } else {
        exact.floor()
    };
    // Within i32: |percent * total / 100| is at most |percent| * |total| / 100.
    Ok(rounded as i32)
}

/// maxSurge and maxUnavailable resolved against `desired`; both zero would never
/// move, so unavailability becomes 1 then (upstream's `ResolveFenceposts`).
pub fn resolve_fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), Error> {
    let surge = scaled_value(surge, desired, true)?;
    let unavailable = scaled_value(unavailable, desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> Result<(i32, i32), Error> {
    let rolling = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        rolling.and_then(|r| r.max_surge.as_ref()),
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        desired(d),
    )
}

/// Pods the Deployment may run above `replicas` (0 unless RollingUpdate).
pub fn max_surge(d: &Deployment) -> Result<i32, Error> {
    if !replicas::is_rolling_update(d) {
        return Ok(0);
    }
    Ok(fenceposts(d)?.0)
}

/// Pods that may be unavailable during a rollout, at most `replicas` (0 unless
/// RollingUpdate).
pub fn max_unavailable(d: &Deployment) -> Result<i32, Error> {
    if !replicas::is_rolling_update(d) || desired(d) == 0 {
        return Ok(0);
    }
    Ok(fenceposts(d)?.1.min(desired(d)))
}

/// The size the new ReplicaSet may grow to now (upstream's `NewRSNewReplicas`):
/// RollingUpdate stays within `replicas + maxSurge` in total; Recreate goes straight to
/// `replicas`.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, Error> {
    match replicas::strategy_type(d) {
        "RollingUpdate" => {
            let current = total_spec(all.iter().copied());
            let max_total = desired(d) + max_surge(d)?;
            let new_size = spec_replicas(new_rs);
            if current >= max_total {
                return Ok(new_size);
            }
            let up = (max_total - current).min(desired(d) - new_size);
            Ok(new_size + up)
        }
        "Recreate" => Ok(desired(d)),
        other => Err(Error::Invalid(format!(
            "deployment type {other:?} isn't supported"
        ))),
    }
}

/// What the new ReplicaSet should be scaled to now, if anything
/// (`reconcileNewReplicaSet`): down to `replicas` when above, else as far up as the
/// surge allows.
pub fn new_replica_set_target(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<Option<i32>, Error> {
    let size = spec_replicas(new_rs);
    let target = if size > desired(d) {
        desired(d)
    } else {
        new_rs_new_replicas(d, all, new_rs)?
    };
    Ok((target != size).then_some(target))
}

/// How old ReplicaSets shrink now (`reconcileOldReplicaSets`): `all` includes the new
/// ReplicaSet, `old` are the old ones with pods. Unhealthy old pods go first (they
/// count against nothing and would block the rollout), then available ones while
/// availability stays at `replicas - maxUnavailable`; both oldest ReplicaSet first.
pub fn old_replica_sets_plan(
    d: &Deployment,
    all: &[&ReplicaSet],
    old: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<Vec<Step>, Error> {
    if total_spec(old.iter().copied()) == 0 {
        return Ok(Vec::new());
    }
    let min_available = desired(d) - max_unavailable(d)?;
    let new_unavailable = spec_replicas(new_rs) - available(new_rs);
    let max_scaled_down = total_spec(all.iter().copied()) - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Ok(Vec::new());
    }
    let mut old: Vec<&ReplicaSet> = old.to_vec();
    old.sort_by(|a, b| by_creation(a, b));
    let mut sizes: Vec<i32> = old.iter().map(|rs| spec_replicas(rs)).collect();
    let mut plan = Vec::new();

    // Unhealthy replicas first.
    let mut cleaned = 0;
    for (rs, size) in old.iter().zip(sizes.iter_mut()) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = *size - available(rs);
        // Upstream errors when a ReplicaSet reports more available pods than it
        // wants (its status lags a scale-down); there is nothing unhealthy to take.
        if *size == 0 || unhealthy <= 0 {
            continue;
        }
        let count = (max_scaled_down - cleaned).min(unhealthy);
        *size -= count;
        cleaned += count;
        plan.push((name(rs).to_string(), *size));
    }

    // Then available replicas, down to the minimum availability.
    let available_now = replicas::total_available(all.iter().copied());
    if available_now > min_available {
        let to_scale_down = available_now - min_available;
        let mut scaled = 0;
        for (rs, size) in old.iter().zip(sizes.iter_mut()) {
            if scaled >= to_scale_down {
                break;
            }
            if *size == 0 {
                continue;
            }
            let count = (*size).min(to_scale_down - scaled);
            *size -= count;
            scaled += count;
            plan.push((name(rs).to_string(), *size));
        }
    }
    Ok(plan)
}

impl DeploymentController {
    /// One step of a rolling update, then the status.
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Next, Error> {
        let (new_rs, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, true)
            .await?;
        let Some(mut new_rs) = new_rs else {
            return Err(Error::Invalid(
                "no new replica set after creating one".into(),
            ));
        };

        let all: Vec<&ReplicaSet> = old.iter().chain([&new_rs]).collect();
        if let Some(target) = new_replica_set_target(d, &all, &new_rs)? {
            let (scaled, updated) = self
                .scale_replica_set_and_record_event(d, &new_rs, target)
                .await?;
            new_rs = updated;
            if scaled {
                return self.sync_rollout_status(d, &old, Some(&new_rs)).await;
            }
        }

        let all: Vec<&ReplicaSet> = old.iter().chain([&new_rs]).collect();
        let active_old = replicas::active(&old);
        let plan = old_replica_sets_plan(d, &all, &active_old, &new_rs)?;
        let scaled_down = !plan.is_empty();
        self.apply_plan(d, &mut old, plan).await?;
        if scaled_down {
            return self.sync_rollout_status(d, &old, Some(&new_rs)).await;
        }

        if super::progress::deployment_complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup_deployment(d, &old).await?;
        }
        self.sync_rollout_status(d, &old, Some(&new_rs)).await
    }

    /// Carries out scaling steps in order, keeping `rss` up to date.
    pub(super) async fn apply_plan(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        plan: Vec<Step>,
    ) -> Result<(), Error> {
        for (target, size) in plan {
            let Some(rs) = rss.iter_mut().find(|rs| name(rs) == target) else {
                continue;
            };
            let (_, updated) = self.scale_replica_set_and_record_event(d, rs, size).await?;
            *rs = updated;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deployment::replicas::test_support::{rolling, rs, sizes};

    #[test]
    fn fenceposts_resolve_as_upstream() {
        let int = |n| Some(IntOrString::Int(n));
        let pct = |s: &str| Some(IntOrString::String(s.into()));
        let cases = [
            (pct("25%"), pct("25%"), 10, (3, 2)),
            (pct("25%"), pct("25%"), 4, (1, 1)),
            (pct("25%"), pct("25%"), 1, (1, 0)),
            (int(1), int(0), 5, (1, 0)),
            (int(0), int(0), 5, (0, 1)),
            (pct("0%"), pct("0%"), 5, (0, 1)),
            (None, None, 3, (0, 1)),
            (pct("50%"), int(2), 3, (2, 2)),
            (pct("100%"), pct("100%"), 0, (0, 1)),
        ];
        for (surge, unavailable, desired, want) in cases {
            let got = resolve_fenceposts(surge.as_ref(), unavailable.as_ref(), desired);
            assert_eq!(
                got.ok(),
                Some(want),
                "{surge:?} {unavailable:?} of {desired}"
            );
        }
        for bad in ["25", "x%", "%"] {
            assert!(
                resolve_fenceposts(pct(bad).as_ref(), None, 4).is_err(),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn max_unavailable_is_capped_and_zero_for_recreate() {
        let d = rolling(2, json!(0), json!(5));
        assert_eq!(max_unavailable(&d).ok(), Some(2));
        let d = rolling(0, json!(1), json!(1));
        assert_eq!(max_unavailable(&d).ok(), Some(0));
        let mut d = rolling(3, json!(1), json!(1));
        if let Some(strategy) = d.spec.strategy.as_mut() {
            strategy.type_ = Some("Recreate".into());
        }
        assert_eq!(max_unavailable(&d).ok(), Some(0));
        assert_eq!(max_surge(&d).ok(), Some(0));
    }

    #[test]
    fn new_replica_set_scale_up_amounts() {
        /// (replicas, surge, unavailable, old sizes, new size, want target)
        type Case = (i32, i32, i32, Vec<i32>, i32, Option<i32>);
        let cases: Vec<Case> = vec![
            // Fresh rollout of 5 with surge 1: one pod above the total.
            (5, 1, 0, vec![5], 0, Some(1)),
            // Already at replicas + surge: wait.
            (5, 1, 0, vec![5], 1, None),
            // Old shrank to 4: grow to 2.
            (5, 1, 0, vec![4], 1, Some(2)),
            // Never beyond replicas.
            (5, 3, 0, vec![1], 4, Some(5)),
            // Above replicas (scaled down mid-rollout): back to replicas.
            (3, 1, 0, vec![], 5, Some(3)),
            // Surge 0 with unavailability: no growth until old pods go.
            (4, 0, 1, vec![4], 0, None),
            (4, 0, 1, vec![3], 0, Some(1)),
            // A first rollout: nothing old.
            (3, 1, 1, vec![], 0, Some(3)),
        ];
        for (replicas, surge, unavailable, old_sizes, new_size, want) in cases {
            let d = rolling(replicas, json!(surge), json!(unavailable));
            let old: Vec<ReplicaSet> = old_sizes
                .iter()
                .enumerate()
                .map(|(i, s)| rs(&format!("old{i}"), *s, *s, i as i64))
                .collect();
            let new_rs = rs("new", new_size, 0, 100);
            let all: Vec<&ReplicaSet> = old.iter().chain([&new_rs]).collect();
            let got = new_replica_set_target(&d, &all, &new_rs).ok().flatten();
            assert_eq!(
                got, want,
                "replicas {replicas} surge {surge} unavailable {unavailable} old {old_sizes:?} new {new_size}"
            );
        }
    }

    #[test]
    fn old_replica_sets_scale_down_amounts() {
        struct Case {
            what: &'static str,
            replicas: i32,
            surge: i32,
            unavailable: i32,
            /// (name, spec, available, age)
            old: Vec<(&'static str, i32, i32, i64)>,
            /// (spec, available)
            new: (i32, i32),
            want: Vec<(&'static str, i32)>,
        }
        let cases = [
            Case {
                what: "surge 1, unavailable 0: nothing until a new pod is available",
                replicas: 5,
                surge: 1,
                unavailable: 0,
                old: vec![("old", 5, 5, 1)],
                new: (1, 0),
                want: vec![],
            },
            Case {
                what: "one new pod available: one old pod goes",
                replicas: 5,
                surge: 1,
                unavailable: 0,
                old: vec![("old", 5, 5, 1)],
                new: (1, 1),
                want: vec![("old", 4)],
            },
            Case {
                what: "unavailable 2 lets two go at once",
                replicas: 4,
                surge: 0,
                unavailable: 2,
                old: vec![("old", 4, 4, 1)],
                new: (0, 0),
                want: vec![("old", 2)],
            },
            Case {
                what: "unhealthy old pods go first, oldest set first",
                replicas: 4,
                surge: 1,
                unavailable: 1,
                old: vec![("older", 2, 0, 1), ("newer", 3, 3, 2)],
                new: (0, 0),
                want: vec![("older", 0)],
            },
            Case {
                what: "an unhealthy pod, then an available one, of the same set",
                replicas: 4,
                surge: 1,
                unavailable: 1,
                old: vec![("older", 2, 1, 1), ("newer", 3, 3, 2)],
                new: (0, 0),
                want: vec![("older", 1), ("older", 0)],
            },
            Case {
                what: "available old pods go oldest set first",
                replicas: 4,
                surge: 1,
                unavailable: 0,
                old: vec![("b", 2, 2, 2), ("a", 1, 1, 1)],
                new: (2, 2),
                want: vec![("a", 0)],
            },
            Case {
                what: "nothing old: nothing to do",
                replicas: 3,
                surge: 1,
                unavailable: 0,
                old: vec![],
                new: (3, 3),
                want: vec![],
            },
            Case {
                what: "availability at the minimum blocks",
                replicas: 3,
                surge: 1,
                unavailable: 1,
                old: vec![("old", 2, 2, 1)],
                new: (2, 0),
                want: vec![],
            },
        ];
        for case in cases {
            let d = rolling(case.replicas, json!(case.surge), json!(case.unavailable));
            let old: Vec<ReplicaSet> = case
                .old
                .iter()
                .map(|(n, s, a, age)| rs(n, *s, *a, *age))
                .collect();
            let new_rs = rs("new", case.new.0, case.new.1, 100);
            let all: Vec<&ReplicaSet> = old.iter().chain([&new_rs]).collect();
            let old_refs: Vec<&ReplicaSet> = old.iter().collect();
            let plan = old_replica_sets_plan(&d, &all, &old_refs, &new_rs).unwrap_or_default();
            assert_eq!(sizes(&plan), case.want, "{}", case.what);
        }
    }
}
