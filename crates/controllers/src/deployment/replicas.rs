//! Reading ReplicaSets and Deployments the way upstream's `deploymentutil` does:
//! counts, orderings and filters the rollout logic is written in.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::revision;

/// `spec.replicas` of a Deployment (the API server defaults it to 1).
pub fn desired(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet (defaulted to 1 by the API server).
pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

/// `status.replicas`: pods the ReplicaSet has now.
pub fn actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

pub fn uid(rs: &ReplicaSet) -> &str {
    rs.metadata.uid.as_deref().unwrap_or("")
}

/// The sum of `spec.replicas` (upstream's `GetReplicaCountForReplicaSets`).
pub fn total_spec<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(spec_replicas).sum()
}

/// The sum of `status.replicas` (`GetActualReplicaCountForReplicaSets`).
pub fn total_actual<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(actual).sum()
}

pub fn total_available<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(available).sum()
}

pub fn total_ready<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(ready).sum()
}

/// Terminating pods of all ReplicaSets; unknown (None) when any ReplicaSet does not
/// report them, as upstream.
pub fn total_terminating<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> Option<i32> {
    rss.into_iter()
        .map(|rs| rs.status.as_ref().and_then(|s| s.terminating_replicas))
        .sum()
}

/// ReplicaSets that should have pods (`spec.replicas > 0`).
pub fn active<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> Vec<&'a ReplicaSet> {
    rss.into_iter().filter(|rs| spec_replicas(rs) > 0).collect()
}

/// Oldest first; equal times by name (`ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let time = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    time(a).cmp(&time(b)).then_with(|| name(a).cmp(name(b)))
}

/// Larger first; equal sizes newer first (`ReplicaSetsBySizeNewer`, for scaling up).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    spec_replicas(b)
        .cmp(&spec_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Larger first; equal sizes older first (`ReplicaSetsBySizeOlder`, for scaling down).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    spec_replicas(b)
        .cmp(&spec_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Lowest revision first; equal revisions oldest first (`ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision::of(a)
        .cmp(&revision::of(b))
        .then_with(|| by_creation(a, b))
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(owners: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    owners?.iter().find(|o| o.controller == Some(true))
}

/// Whether the strategy is RollingUpdate (the default when unset).
pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

pub fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

pub fn is_paused(d: &Deployment) -> bool {
    d.spec.paused.unwrap_or(false)
}

#[cfg(test)]
pub mod test_support {
    //! Builders for the rollout tests.

    use k8s_openapi::api::apps::v1::{ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    use super::*;

    /// A ReplicaSet with `spec` replicas of which `available` are available, created
    /// `age` seconds after the epoch (larger is newer).
    pub fn rs(name: &str, spec: i32, available: i32, age: i64) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Timestamp::from_second(age).ok().map(Time),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(spec),
                ..ReplicaSetSpec::default()
            },
            status: Some(ReplicaSetStatus {
                replicas: spec,
                available_replicas: Some(available),
                ready_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
        }
    }

    /// The same with a revision annotation.
    pub fn rs_rev(name: &str, spec: i32, available: i32, age: i64, rev: i64) -> ReplicaSet {
        let mut rs = rs(name, spec, available, age);
        rs.metadata.annotations = Some(
            [(revision::REVISION.to_string(), rev.to_string())]
                .into_iter()
                .collect(),
        );
        rs
    }

    /// A RollingUpdate Deployment of `replicas` with the given surge and unavailability.
    pub fn rolling(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
                "progressDeadlineSeconds": 600,
            }
        }))
        .expect("deployment")
    }

    /// Names and sizes, for comparing plans.
    pub fn sizes(plan: &[(String, i32)]) -> Vec<(&str, i32)> {
        plan.iter().map(|(n, s)| (n.as_str(), *s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    fn names(
        mut rss: Vec<ReplicaSet>,
        order: fn(&ReplicaSet, &ReplicaSet) -> Ordering,
    ) -> Vec<String> {
        rss.sort_by(order);
        rss.iter().map(|rs| name(rs).to_string()).collect()
    }

    #[test]
    fn orderings_follow_upstream() {
        let set = || {
            vec![
                rs("new-big", 5, 0, 30),
                rs("old-big", 5, 0, 10),
                rs("mid", 2, 0, 20),
                rs("b-same-time", 1, 0, 5),
                rs("a-same-time", 1, 0, 5),
            ]
        };
        assert_eq!(
            names(set(), by_creation),
            ["a-same-time", "b-same-time", "old-big", "mid", "new-big"]
        );
        assert_eq!(
            names(set(), by_size_newer),
            ["new-big", "old-big", "mid", "b-same-time", "a-same-time"]
        );
        assert_eq!(
            names(set(), by_size_older),
            ["old-big", "new-big", "mid", "a-same-time", "b-same-time"]
        );
    }

    #[test]
    fn terminating_is_unknown_unless_every_set_reports_it() {
        let mut a = rs("a", 1, 1, 1);
        let mut b = rs("b", 1, 1, 2);
        assert_eq!(total_terminating([&a, &b]), None);
        if let Some(s) = a.status.as_mut() {
            s.terminating_replicas = Some(2);
        }
        assert_eq!(total_terminating([&a, &b]), None);
        if let Some(s) = b.status.as_mut() {
            s.terminating_replicas = Some(1);
        }
        assert_eq!(total_terminating([&a, &b]), Some(3));
    }
}
