//! What brings a Deployment's key to the queue: changes to it, to its ReplicaSets
//! (found through their controller reference; orphans through the selectors that
//! might adopt them), and deletions of its pods (Recreate waits for them).
//! Handlers only compute keys from the caches; the reconcile does the work.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::replicas::{controller_of, strategy_type};
use crate::context::Context;
use crate::runtime::{Informer, ObjectKey, WorkQueue};
use crate::selector;

/// Registers the Deployment controller's handlers on the shared informers.
pub fn register(ctx: &Context, queue: &WorkQueue<ObjectKey>) {
    let q = queue.clone();
    ctx.deployments.on_change(Box::new(move |old, new| {
        if let Some(d) = new.or(old) {
            q.add(ObjectKey::of(d.as_ref()));
        }
    }));

    let q = queue.clone();
    let deployments = ctx.deployments.clone();
    ctx.replica_sets.on_change(Box::new(move |old, new| {
        for key in replica_set_keys(&deployments, old.map(Arc::as_ref), new.map(Arc::as_ref)) {
            q.add(key);
        }
    }));

    let q = queue.clone();
    let deployments = ctx.deployments.clone();
    let replica_sets = ctx.replica_sets.clone();
    ctx.pods.on_change(Box::new(move |old, new| {
        if let (Some(pod), None) = (old, new)
            && let Some(key) = recreate_deployment_of(&deployments, &replica_sets, pod)
        {
            q.add(key);
        }
    }));
}

/// The Deployment a controller reference points at, if it is in the cache with that
/// uid (`resolveControllerRef`).
fn resolve(
    deployments: &Informer<Deployment>,
    namespace: &str,
    owner: &OwnerReference,
) -> Option<Arc<Deployment>> {
    if owner.kind != "Deployment" {
        return None;
    }
    let d = deployments.get(&ObjectKey::new(namespace, &owner.name))?;
    (d.metadata.uid.as_deref() == Some(owner.uid.as_str())).then_some(d)
}

/// The Deployments whose selector matches an orphan's labels: candidates to adopt it.
fn adopters(deployments: &Informer<Deployment>, rs: &ReplicaSet) -> Vec<ObjectKey> {
    let Some(labels) = rs.metadata.labels.as_ref().filter(|l| !l.is_empty()) else {
        return Vec::new();
    };
    let namespace = rs.metadata.namespace.as_deref().unwrap_or("");
    deployments
        .list_namespace(namespace)
        .iter()
        .filter(|d| {
            let s = &d.spec.selector;
            !selector::is_empty(s) && selector::matches(s, Some(labels)).unwrap_or(false)
        })
        .map(|d| ObjectKey::of(d.as_ref()))
        .collect()
}

/// The Deployments to look at after a ReplicaSet change: its former and current
/// owners, or, for an orphan that was added or whose labels or owner changed, the
/// Deployments that may adopt it.
pub fn replica_set_keys(
    deployments: &Informer<Deployment>,
    old: Option<&ReplicaSet>,
    new: Option<&ReplicaSet>,
) -> Vec<ObjectKey> {
    let owner_key = |rs: &ReplicaSet| {
        let namespace = rs.metadata.namespace.as_deref().unwrap_or("");
        controller_of(rs.metadata.owner_references.as_ref())
            .and_then(|owner| resolve(deployments, namespace, owner))
            .map(|d| ObjectKey::of(d.as_ref()))
    };
    match (old, new) {
        (_, None) => old.and_then(owner_key).into_iter().collect(),
        (None, Some(rs)) => {
            if rs.metadata.deletion_timestamp.is_some()
                || controller_of(rs.metadata.owner_references.as_ref()).is_some()
            {
                return owner_key(rs).into_iter().collect();
            }
            adopters(deployments, rs)
        }
        (Some(before), Some(after)) => {
            if before.metadata.resource_version == after.metadata.resource_version {
                return Vec::new();
            }
            let before_owner = controller_of(before.metadata.owner_references.as_ref());
            let after_owner = controller_of(after.metadata.owner_references.as_ref());
            let owner_changed = before_owner != after_owner;
            let mut keys = Vec::new();
            if owner_changed {
                keys.extend(owner_key(before));
            }
            if after_owner.is_some() {
                keys.extend(owner_key(after));
                return keys;
            }
            if owner_changed || before.metadata.labels != after.metadata.labels {
                keys.extend(adopters(deployments, after));
            }
            keys
        }
    }
}

/// The Recreate Deployment that owns a deleted pod through its ReplicaSet.
fn recreate_deployment_of(
    deployments: &Informer<Deployment>,
    replica_sets: &Informer<ReplicaSet>,
    pod: &Pod,
) -> Option<ObjectKey> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let rs_ref =
        controller_of(pod.metadata.owner_references.as_ref()).filter(|o| o.kind == "ReplicaSet")?;
    let rs = replica_sets.get(&ObjectKey::new(namespace, &rs_ref.name))?;
    if rs.metadata.uid.as_deref() != Some(rs_ref.uid.as_str()) {
        return None;
    }
    let d = resolve(
        deployments,
        namespace,
        controller_of(rs.metadata.owner_references.as_ref())?,
    )?;
    (strategy_type(&d) == "Recreate").then(|| ObjectKey::of(d.as_ref()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(name: &str, uid: &str, app: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": uid},
            "spec": {
                "selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app}}},
                "strategy": {"type": "Recreate"},
            },
        }))
        .expect("deployment")
    }

    fn replica_set(rv: &str, labels: serde_json::Value, owner: Option<(&str, &str)>) -> ReplicaSet {
        let owners = owner.map(|(name, uid)| {
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true}])
        });
        serde_json::from_value(json!({
            "metadata": {"name": "rs", "namespace": "ns", "uid": "rs-uid", "resourceVersion": rv,
                         "labels": labels, "ownerReferences": owners},
        }))
        .expect("replica set")
    }

    fn informer() -> Informer<Deployment> {
        let deployments = Informer::default();
        deployments.insert_for_test(deployment("web", "web-uid", "web"));
        deployments.insert_for_test(deployment("web2", "web2-uid", "web"));
        deployments.insert_for_test(deployment("db", "db-uid", "db"));
        deployments
    }

    fn names(mut keys: Vec<ObjectKey>) -> Vec<String> {
        keys.sort();
        keys.into_iter().map(|k| k.name).collect()
    }

    #[test]
    fn replica_set_changes_map_to_deployments() {
        let deployments = informer();
        let owned = replica_set("1", json!({"app": "web"}), Some(("web", "web-uid")));
        let owned_by_stale_uid = replica_set("1", json!({"app": "web"}), Some(("web", "old-uid")));
        let orphan = replica_set("1", json!({"app": "web"}), None);
        let orphan_relabelled = replica_set("2", json!({"app": "db"}), None);
        let released = replica_set("2", json!({"app": "web"}), None);
        type Case<'a> = (
            &'a str,
            Option<&'a ReplicaSet>,
            Option<&'a ReplicaSet>,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            ("owned, added", None, Some(&owned), vec!["web"]),
            ("owned, deleted", Some(&owned), None, vec!["web"]),
            (
                "owner with another uid",
                None,
                Some(&owned_by_stale_uid),
                vec![],
            ),
            (
                "orphan added: every matching selector",
                None,
                Some(&orphan),
                vec!["web", "web2"],
            ),
            ("orphan deleted: nobody", Some(&orphan), None, vec![]),
            ("resync without change", Some(&owned), Some(&owned), vec![]),
            (
                "orphan relabelled",
                Some(&orphan),
                Some(&orphan_relabelled),
                vec!["db"],
            ),
            (
                "released: old owner and adopters",
                Some(&owned),
                Some(&released),
                vec!["web", "web", "web2"],
            ),
        ];
        for (what, old, new, want) in cases {
            assert_eq!(
                names(replica_set_keys(&deployments, old, new)),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn deleted_pods_of_recreate_deployments_requeue_them() {
        let deployments = informer();
        let replica_sets: Informer<ReplicaSet> = Informer::default();
        replica_sets.insert_for_test(replica_set(
            "1",
            json!({"app": "web"}),
            Some(("web", "web-uid")),
        ));
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": true}]},
        }))
        .expect("pod");
        assert_eq!(
            recreate_deployment_of(&deployments, &replica_sets, &pod).map(|k| k.name),
            Some("web".to_string())
        );
        let mut orphan_pod = pod.clone();
        orphan_pod.metadata.owner_references = None;
        assert_eq!(
            recreate_deployment_of(&deployments, &replica_sets, &orphan_pod),
            None
        );
    }
}
