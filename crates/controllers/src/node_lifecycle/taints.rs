//! Taints from node health, and when a pod on a tainted node must go (upstream's
//! taint-based eviction), as pure functions.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// On a node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// On a node whose Ready condition is Unknown (heartbeats stopped).
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

const NO_EXECUTE: &str = "NoExecute";
const NO_SCHEDULE: &str = "NoSchedule";

/// The node's Ready condition status: "True", "False", "Unknown", or None.
pub fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// The node's taints with the health taints made to match `ready` (its Ready status):
/// NoExecute (which evicts) and NoSchedule (which keeps new pods away) for not-ready or
/// unreachable, none when Ready. Other taints are kept as they are; a health taint
/// already present keeps its timeAdded, which eviction deadlines count from.
pub fn with_health_taints(taints: &[Taint], ready: Option<&str>, now: Timestamp) -> Vec<Taint> {
    let wanted = match ready {
        Some("True") => None,
        Some("False") => Some(NOT_READY),
        // Unknown, or no Ready condition yet after the startup grace.
        _ => Some(UNREACHABLE),
    };
    let mut result: Vec<Taint> = taints
        .iter()
        .filter(|t| {
            let health = t.key == NOT_READY || t.key == UNREACHABLE;
            let managed = t.effect == NO_EXECUTE || t.effect == NO_SCHEDULE;
            !(health && managed) || Some(t.key.as_str()) == wanted
        })
        .cloned()
        .collect();
    if let Some(key) = wanted {
        for effect in [NO_SCHEDULE, NO_EXECUTE] {
            if !result.iter().any(|t| t.key == key && t.effect == effect) {
                result.push(Taint {
                    key: key.to_string(),
                    effect: effect.to_string(),
                    time_added: (effect == NO_EXECUTE).then_some(Time(now)),
                    value: None,
                });
            }
        }
    }
    result
}

pub use api::tolerations::tolerates;

/// What taint-based eviction does with a pod on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// No NoExecute taint applies, or the pod tolerates them for ever.
    Keep,
    /// Evict once this much more time has passed.
    After(Duration),
    /// Evict now: a taint is not tolerated, or the toleration ran out.
    Now,
}

/// Upstream's rule: any NoExecute taint the pod does not tolerate evicts it at once;
/// otherwise the shortest tolerationSeconds among the tolerations used, counted from
/// the taint's timeAdded, is how long it may stay.
pub fn eviction(taints: &[Taint], tolerations: &[Toleration], now: Timestamp) -> Eviction {
    let mut deadline: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Eviction::Now;
        }
        // The shortest limit wins; tolerated for ever only if none has a limit.
        let Some(seconds) = used.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue;
        };
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
        let until = added
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds.max(0)))
            .unwrap_or(Timestamp::MAX);
        deadline = Some(deadline.map_or(until, |d| d.min(until)));
    }
    match deadline {
        None => Eviction::Keep,
        Some(at) if at <= now => Eviction::Now,
        Some(at) => {
            let left = now.duration_until(at);
            Eviction::After(Duration::try_from(left).unwrap_or(Duration::ZERO))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str, added: Option<Timestamp>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: added.map(Time),
            value: None,
        }
    }

    fn toleration(key: &str, operator: &str, effect: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.to_string()),
            operator: Some(operator.into()),
            effect: (!effect.is_empty()).then(|| effect.to_string()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn health_taints_follow_the_ready_condition() {
        let other = taint("dedicated", NO_SCHEDULE, None);
        let unknown = with_health_taints(std::slice::from_ref(&other), Some("Unknown"), at(0));
        let keys: Vec<(&str, &str)> = unknown
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("dedicated", NO_SCHEDULE),
                (UNREACHABLE, NO_SCHEDULE),
                (UNREACHABLE, NO_EXECUTE)
            ]
        );
        assert_eq!(unknown[2].time_added, Some(Time(at(0))));

        // Still unknown later: the taint keeps its first timeAdded.
        let later = with_health_taints(&unknown, Some("Unknown"), at(50));
        assert_eq!(later, unknown);

        let not_ready = with_health_taints(&unknown, Some("False"), at(60));
        assert!(not_ready.iter().all(|t| t.key != UNREACHABLE));
        assert!(
            not_ready
                .iter()
                .any(|t| t.key == NOT_READY && t.effect == NO_EXECUTE)
        );

        let ready = with_health_taints(&not_ready, Some("True"), at(70));
        assert_eq!(ready, vec![other]);
    }

    #[test]
    fn toleration_matching_follows_upstream() {
        let t = taint(UNREACHABLE, NO_EXECUTE, None);
        assert!(tolerates(
            &toleration(UNREACHABLE, "Exists", NO_EXECUTE, None),
            &t
        ));
        assert!(tolerates(&toleration(UNREACHABLE, "Exists", "", None), &t));
        assert!(tolerates(&toleration("", "Exists", "", None), &t));
        assert!(!tolerates(
            &toleration(UNREACHABLE, "Exists", NO_SCHEDULE, None),
            &t
        ));
        assert!(!tolerates(
            &toleration(NOT_READY, "Exists", NO_EXECUTE, None),
            &t
        ));
        assert!(tolerates(
            &toleration(UNREACHABLE, "Equal", NO_EXECUTE, None),
            &t
        ));
        let mut valued = toleration(UNREACHABLE, "Equal", NO_EXECUTE, None);
        valued.value = Some("x".into());
        assert!(!tolerates(&valued, &t));
    }

    #[test]
    fn eviction_waits_for_the_shortest_toleration_from_the_taints_time() {
        let taints = [taint(UNREACHABLE, NO_EXECUTE, Some(at(0)))];
        let default = [toleration(UNREACHABLE, "Exists", NO_EXECUTE, Some(300))];
        assert_eq!(
            eviction(&taints, &default, at(100)),
            Eviction::After(Duration::from_secs(200))
        );
        assert_eq!(eviction(&taints, &default, at(300)), Eviction::Now);
        let shorter = [default[0].clone(), toleration("", "Exists", "", Some(5))];
        assert_eq!(
            eviction(&taints, &shorter, at(1)),
            Eviction::After(Duration::from_secs(4))
        );
    }

    #[test]
    fn untolerated_taints_evict_at_once_and_unlimited_tolerations_keep() {
        let taints = [taint(UNREACHABLE, NO_EXECUTE, Some(at(0)))];
        assert_eq!(eviction(&taints, &[], at(0)), Eviction::Now);
        let forever = [toleration(UNREACHABLE, "Exists", NO_EXECUTE, None)];
        assert_eq!(eviction(&taints, &forever, at(10_000)), Eviction::Keep);
        let mixed = [forever[0].clone(), toleration("", "Exists", "", Some(5))];
        assert_eq!(eviction(&taints, &mixed, at(10)), Eviction::Now);
        let no_schedule_only = [taint(UNREACHABLE, NO_SCHEDULE, None)];
        assert_eq!(eviction(&no_schedule_only, &[], at(0)), Eviction::Keep);
    }
}
