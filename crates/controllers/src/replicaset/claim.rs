//! Which pods a ReplicaSet owns (upstream's `PodControllerRefManager.ClaimPods`):
//! it keeps its pods that still match its selector, adopts matching orphans, and
//! releases its pods whose labels no longer match. Ownership is the controller
//! reference on the pod, so two ReplicaSets with overlapping selectors never fight
//! over a pod: the first to adopt it has it.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::pods;
use crate::Error;
use crate::claim::Claim;
use crate::selector::Selector;

/// Upstream's `ClaimObject` for a pod of the ReplicaSet.
pub fn classify(rs: &ReplicaSet, selector: &Selector, pod: &Pod) -> Claim {
    let matches = selector.matches(pod.metadata.labels.as_ref());
    crate::claim::decide(&rs.metadata, &pod.metadata, matches)
}

/// The strategic-merge patch that makes the ReplicaSet the pod's controller. The
/// pod's UID in it makes the patch fail on a namesake created meanwhile.
pub fn adoption_patch(rs: &ReplicaSet, pod: &Pod) -> Value {
    json!({"metadata": {
        "ownerReferences": [pods::controller_ref(rs)],
        "uid": pod.metadata.uid,
    }})
}

/// The strategic-merge patch that removes the ReplicaSet's reference from the pod.
pub fn release_patch(rs: &ReplicaSet, pod: &Pod) -> Value {
    json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": rs.metadata.uid}],
        "uid": pod.metadata.uid,
    }})
}

/// Claims `candidates` (the namespace's active pods): adopts and releases through
/// the API, and returns the pods the ReplicaSet owns now. Every pod is tried; the
/// first error is returned after the others were handled.
pub async fn claim(
    client: &kube::Client,
    rs: &ReplicaSet,
    selector: &Selector,
    candidates: &[Arc<Pod>],
) -> Result<Vec<Arc<Pod>>, Error> {
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut owned = Vec::new();
    let mut first_error = None;
    // Checked once, and only if there is something to adopt.
    let mut may_adopt: Option<Result<(), String>> = None;
    for pod in candidates {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let result = match classify(rs, selector, pod) {
            Claim::Keep => {
                owned.push(pod.clone());
                Ok(())
            }
            Claim::Ignore => Ok(()),
            Claim::Release => {
                tracing::debug!(pod = %name, "releasing a pod whose labels no longer match");
                patch(&api, &name, release_patch(rs, pod))
                    .await
                    .or_else(|e| {
                        // Gone, or not ours any more (422): released either way.
                        if e.is_not_found() || is_invalid(&e) {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
            }
            Claim::Adopt => {
                if may_adopt.is_none() {
                    may_adopt = Some(check_may_adopt(client, rs).await);
                }
                match may_adopt.clone() {
                    Some(Err(why)) => Err(Error::Invalid(why)),
                    _ => {
                        tracing::debug!(pod = %name, "adopting an orphan");
                        match patch(&api, &name, adoption_patch(rs, pod)).await {
                            Ok(()) => {
                                owned.push(pod.clone());
                                Ok(())
                            }
                            Err(e) if e.is_not_found() => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                }
            }
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(owned),
    }
}

/// Upstream's `RecheckDeletionTimestamp`: the cache may not show yet that the
/// ReplicaSet is being deleted; adopting then would hand pods to a dying owner. So
/// ask the API server itself.
async fn check_may_adopt(client: &kube::Client, rs: &ReplicaSet) -> Result<(), String> {
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &namespace);
    let fresh = api
        .get(&name)
        .await
        .map_err(|e| format!("cannot recheck {namespace}/{name} before adopting: {e}"))?;
    if fresh.metadata.uid != rs.metadata.uid {
        return Err(format!(
            "original ReplicaSet {namespace}/{name} is gone: got uid {}, wanted {}",
            fresh.metadata.uid.unwrap_or_default(),
            rs.metadata.uid.clone().unwrap_or_default()
        ));
    }
    if let Some(when) = fresh.metadata.deletion_timestamp {
        return Err(format!(
            "{namespace}/{name} has just been deleted at {}",
            when.0
        ));
    }
    Ok(())
}

async fn patch(api: &Api<Pod>, name: &str, body: Value) -> Result<(), Error> {
    api.patch(name, &PatchParams::default(), &Patch::Strategic(body))
        .await
        .map(|_| ())
        .map_err(Error::from)
}

fn is_invalid(e: &Error) -> bool {
    matches!(e, Error::Api(kube::Error::Api(status)) if status.code == 422)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::pods::test_support::{ago, pod, replica_set};

    fn selector(rs: &ReplicaSet) -> Selector {
        Selector::new(&rs.spec.selector).expect("a selector")
    }

    #[test]
    fn claims_follow_upstream() {
        let live = replica_set(3, 0);
        let mut dying = replica_set(3, 0);
        dying.metadata.deletion_timestamp = serde_json::from_value(json!(ago(1))).ok();
        let orphan = json!({"metadata": {"ownerReferences": null}});
        let orphan_other_labels =
            json!({"metadata": {"ownerReferences": null, "labels": {"app": "db"}}});
        let ours_relabeled = json!({"metadata": {"labels": {"app": "db"}}});
        let someone_elses = json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "other", "controller": true}]}});
        let orphan_going =
            json!({"metadata": {"ownerReferences": null, "deletionTimestamp": ago(1)}});
        let orphan_elsewhere = json!({"metadata": {"ownerReferences": null, "namespace": "other"}});
        let cases = [
            ("ours and matching", &live, json!({}), Claim::Keep),
            (
                "ours and matching, RS dying",
                &dying,
                json!({}),
                Claim::Keep,
            ),
            ("matching orphan", &live, orphan.clone(), Claim::Adopt),
            ("matching orphan, RS dying", &dying, orphan, Claim::Ignore),
            (
                "orphan not matching",
                &live,
                orphan_other_labels,
                Claim::Ignore,
            ),
            (
                "ours, labels changed",
                &live,
                ours_relabeled.clone(),
                Claim::Release,
            ),
            (
                "ours, labels changed, RS dying",
                &dying,
                ours_relabeled,
                Claim::Ignore,
            ),
            ("someone else's", &live, someone_elses, Claim::Ignore),
            (
                "an orphan being deleted",
                &live,
                orphan_going,
                Claim::Ignore,
            ),
            (
                "an orphan in another namespace",
                &live,
                orphan_elsewhere,
                Claim::Ignore,
            ),
        ];
        for (what, rs, extra, want) in cases {
            let p = pod("p", extra);
            assert_eq!(classify(rs, &selector(rs), &p), want, "{what}");
        }
    }

    #[test]
    fn patches_name_the_pod_and_the_owner() {
        let rs = replica_set(3, 0);
        let p = pod("p", json!({}));
        let adopt = adoption_patch(&rs, &p);
        assert_eq!(adopt["metadata"]["uid"], "uid-p");
        let reference = &adopt["metadata"]["ownerReferences"][0];
        assert_eq!(reference["uid"], "rs-uid");
        assert_eq!(reference["controller"], true);
        assert_eq!(reference["blockOwnerDeletion"], true);
        assert_eq!(reference["kind"], "ReplicaSet");
        let release = release_patch(&rs, &p);
        assert_eq!(
            release["metadata"]["ownerReferences"],
            json!([{"$patch": "delete", "uid": "rs-uid"}])
        );
    }
}
