//! What the controller asks of a pod (upstream's `podutil` and `controller_utils`
//! helpers): is it active, ready, available, whose is it; and the pod a ReplicaSet
//! creates from its template.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;

/// The controller reference of an object: its one owner with `controller: true`.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Whether a controller reference names a ReplicaSet (of any `apps` version).
pub fn names_a_replica_set(reference: &OwnerReference) -> bool {
    reference.kind == "ReplicaSet" && reference.api_version.split('/').next() == Some("apps")
}

/// The controller reference a ReplicaSet puts on its pods (upstream's
/// `NewControllerRef`): the garbage collector deletes them with it, and a foreground
/// deletion of the ReplicaSet waits for them.
pub fn controller_ref(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: ReplicaSet::api_version(&()).into_owned(),
        kind: ReplicaSet::kind(&()).into_owned(),
        name: rs.metadata.name.clone().unwrap_or_default(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether the ReplicaSet (by UID) is the pod's controller.
pub fn is_owned_by(pod: &Pod, rs: &ReplicaSet) -> bool {
    match (controller_of(&pod.metadata), rs.metadata.uid.as_deref()) {
        (Some(owner), Some(uid)) => owner.uid == uid,
        _ => false,
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Upstream's `IsPodActive`: neither finished nor being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted but not finished (upstream's `FilterTerminatingPods`).
pub fn is_terminating(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_some()
}

/// Upstream's phase order for picking pods to delete: Pending, Unknown, Running (any
/// other phase counts as Pending, as a missing map entry does upstream).
pub fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some()
}

/// When the pod became ready (its True Ready condition's lastTransitionTime), if it is
/// ready and says when.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")
}

/// Upstream's `IsPodAvailable`: ready, and (with a minReadySeconds) ready since more
/// than that long ago.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    available_at(pod, min_ready_seconds).is_some_and(|at| at < now)
}

/// How long until a ready pod becomes available, if it is ready, not available yet,
/// and says since when it is ready (a pod that does not never becomes available, as
/// upstream).
pub fn available_in(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    if min_ready_seconds <= 0 || !is_ready(pod) {
        return None;
    }
    let at = available_at(pod, min_ready_seconds)?;
    if at < now {
        return None;
    }
    // Availability needs `now` strictly after `at`: wake a hair later.
    let wait = now
        .duration_until(at)
        .checked_add(SignedDuration::from_millis(1))?;
    Duration::try_from(wait).ok()
}

fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    ready_since(pod)?
        .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
        .ok()
}

/// The highest restart count among the pod's regular containers, and among its
/// sidecars (init containers that keep running, `restartPolicy: Always`).
pub fn max_restarts(pod: &Pod) -> (i32, i32) {
    let Some(status) = pod.status.as_ref() else {
        return (0, 0);
    };
    let regular = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    let sidecars: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .init_container_statuses
        .iter()
        .flatten()
        .filter(|c| sidecars.contains(&c.name.as_str()))
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    (regular, sidecar)
}

/// The annotation users set to say which pods to delete first (lower first).
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The pod's deletion cost; 0 when absent or not a plain int32 (upstream refuses a
/// leading `+` or zeros).
pub fn deletion_cost(pod: &Pod) -> i32 {
    let Some(value) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
    else {
        return 0;
    };
    let well_formed = matches!(value.as_bytes(), [b'-', ..] | [b'1'..=b'9', ..] | [b'0']);
    if !well_formed {
        return 0;
    }
    value.parse().unwrap_or(0)
}

/// The pod a ReplicaSet creates (upstream's `GetPodFromTemplate`): the template's
/// labels, annotations, finalizers and spec, named `<rs>-<random>` by the API server,
/// with the ReplicaSet as controller.
pub fn from_template(rs: &ReplicaSet) -> Result<Pod, String> {
    let template = rs
        .spec
        .template
        .as_ref()
        .ok_or("the ReplicaSet has no pod template")?;
    let template_meta = template.metadata.clone().unwrap_or_default();
    if template_meta.labels.as_ref().is_none_or(|l| l.is_empty()) {
        return Err("unable to create pods, no labels".into());
    }
    let name = rs.metadata.name.clone().unwrap_or_default();
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: rs.metadata.namespace.clone(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![controller_ref(rs)]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

#[cfg(test)]
pub mod test_support {
    //! Pods and ReplicaSets for the module's tests.

    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::{Value, json};

    /// A fixed "now" so that tests do not depend on the clock.
    pub fn now() -> Timestamp {
        "2025-01-01T12:00:00Z".parse().expect("a timestamp")
    }

    /// `now` minus `seconds`, as the API writes times.
    pub fn ago(seconds: i64) -> String {
        (now() - k8s_openapi::jiff::SignedDuration::from_secs(seconds)).to_string()
    }

    /// A ReplicaSet `web` (uid `rs-uid`) selecting `app=web`.
    pub fn replica_set(replicas: i32, min_ready_seconds: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid", "generation": 2},
            "spec": {
                "replicas": replicas,
                "minReadySeconds": min_ready_seconds,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "tier": "front"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        }))
        .expect("a replica set")
    }

    /// A pod named `name` with label app=web, owned by `web` (uid `rs-uid`), merged
    /// with `extra` (merged in deeply; null removes a key).
    pub fn pod(name: &str, extra: Value) -> Pod {
        let mut value = json!({
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": format!("uid-{name}"),
                "labels": {"app": "web", "tier": "front"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                    "uid": "rs-uid", "controller": true,
                }],
            },
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        });
        merge(&mut value, extra);
        serde_json::from_value(value).expect("a pod")
    }

    /// A Ready=True condition since `seconds` ago, with phase Running.
    pub fn ready_for(seconds: i64) -> Value {
        json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": ago(seconds)}
        ]}})
    }

    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    // null deletes, as in a merge patch.
                    if v.is_null() {
                        a.remove(&k);
                    } else {
                        merge(a.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
            (slot, v) => *slot = v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn activity_follows_phase_and_deletion() {
        let cases = [
            (json!({}), true, false),
            (json!({"status": {"phase": "Running"}}), true, false),
            (json!({"status": {"phase": "Succeeded"}}), false, false),
            (json!({"status": {"phase": "Failed"}}), false, false),
            (
                json!({"metadata": {"deletionTimestamp": ago(1)}}),
                false,
                true,
            ),
            (
                json!({"metadata": {"deletionTimestamp": ago(1)}, "status": {"phase": "Failed"}}),
                false,
                false,
            ),
        ];
        for (extra, active, terminating) in cases {
            let p = pod("p", extra.clone());
            assert_eq!(is_active(&p), active, "active: {extra}");
            assert_eq!(is_terminating(&p), terminating, "terminating: {extra}");
        }
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        // (ready since, minReadySeconds, available, wait)
        let cases = [
            (Some(0), 0, true, None),
            (Some(10), 5, true, None),
            (Some(2), 5, false, Some(Duration::from_millis(3001))),
            // Exactly at the boundary: not yet (upstream's strict Before).
            (Some(5), 5, false, Some(Duration::from_millis(1))),
            (None, 0, false, None),
        ];
        for (since, min_ready, available, wait) in cases {
            let p = match since {
                Some(s) => pod("p", ready_for(s)),
                None => pod("p", json!({"status": {"phase": "Running"}})),
            };
            assert_eq!(
                is_available(&p, min_ready, now()),
                available,
                "{since:?} {min_ready}"
            );
            assert_eq!(
                available_in(&p, min_ready, now()),
                wait,
                "{since:?} {min_ready}"
            );
        }
    }

    #[test]
    fn a_ready_pod_without_a_transition_time_is_never_available_with_min_ready() {
        let p = pod(
            "p",
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert!(is_available(&p, 0, now()));
        assert!(!is_available(&p, 5, now()));
        assert_eq!(available_in(&p, 5, now()), None);
    }

    #[test]
    fn deletion_cost_parses_like_upstream() {
        for (value, want) in [
            ("10", 10),
            ("-5", -5),
            ("0", 0),
            ("+10", 0),
            ("007", 0),
            ("x", 0),
            ("", 0),
            ("99999999999", 0),
        ] {
            let p = pod(
                "p",
                json!({"metadata": {"annotations": {DELETION_COST: value}}}),
            );
            assert_eq!(deletion_cost(&p), want, "{value:?}");
        }
    }

    #[test]
    fn restarts_count_sidecars_separately() {
        let p = pod(
            "p",
            json!({
                "spec": {"initContainers": [
                    {"name": "side", "image": "x", "restartPolicy": "Always"},
                    {"name": "init", "image": "x"},
                ]},
                "status": {
                    "containerStatuses": [
                        {"name": "a", "image": "x", "imageID": "", "ready": true, "restartCount": 2},
                        {"name": "b", "image": "x", "imageID": "", "ready": true, "restartCount": 7},
                    ],
                    "initContainerStatuses": [
                        {"name": "side", "image": "x", "imageID": "", "ready": true, "restartCount": 3},
                        {"name": "init", "image": "x", "imageID": "", "ready": true, "restartCount": 9},
                    ],
                },
            }),
        );
        assert_eq!(max_restarts(&p), (7, 3));
    }

    #[test]
    fn pods_from_the_template_are_owned_and_labelled() {
        let rs = replica_set(3, 0);
        let p = from_template(&rs).expect("a pod");
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("tier"))
                .map(String::as_str),
            Some("front")
        );
        let owner = controller_of(&p.metadata).expect("a controller ref");
        assert_eq!(owner.uid, "rs-uid");
        assert_eq!(owner.kind, "ReplicaSet");
        assert_eq!(owner.api_version, "apps/v1");
        assert_eq!(owner.block_owner_deletion, Some(true));
        assert!(p.spec.is_some());
    }

    #[test]
    fn a_template_without_labels_creates_nothing() {
        let mut rs = replica_set(3, 0);
        if let Some(t) = rs.spec.template.as_mut() {
            t.metadata = None;
        }
        assert_eq!(
            from_template(&rs).err().as_deref(),
            Some("unable to create pods, no labels")
        );
    }
}
