//! The informers' handlers: which ReplicaSets a change concerns (upstream's
//! `addPod`/`updatePod`/`deletePod` and the ReplicaSet ones). They only count off
//! expectations and enqueue keys; the reconcile reads everything else from the caches.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::expectations::Expectations;
use super::pods;
use crate::runtime::{Informer, ObjectKey, WorkQueue};
use crate::selector::Selector;

/// What the handlers share with the controller.
#[derive(Debug, Clone)]
pub struct Handlers {
    pub replica_sets: Informer<ReplicaSet>,
    pub expectations: Arc<Expectations>,
    pub queue: WorkQueue<ObjectKey>,
}

impl Handlers {
    /// A ReplicaSet was added, changed or deleted.
    pub fn replica_set_changed(&self, old: Option<&ReplicaSet>, new: Option<&ReplicaSet>) {
        match (old, new) {
            (Some(old), Some(new)) if old.metadata.uid != new.metadata.uid => {
                // Deleted and recreated under the same name between two events: the
                // old one's expectations mean nothing to the new one.
                self.expectations.forget(&ObjectKey::of(old));
                self.queue.add(ObjectKey::of(new));
            }
            (Some(old), None) => {
                let key = ObjectKey::of(old);
                self.expectations.forget(&key);
                self.queue.add(key);
            }
            (_, Some(new)) => self.queue.add(ObjectKey::of(new)),
            (None, None) => {}
        }
    }

    /// A pod was added, changed or deleted.
    pub fn pod_changed(&self, old: Option<&Pod>, new: Option<&Pod>) {
        match (old, new) {
            (None, Some(pod)) => self.pod_added(pod),
            (Some(old), Some(new)) => self.pod_updated(old, new),
            (Some(pod), None) => self.pod_deleted(pod),
            (None, None) => {}
        }
    }

    fn pod_added(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            // Seen for the first time already going (a relist, say): a deletion to
            // its owner, never a creation.
            return self.pod_deleted(pod);
        }
        if let Some(reference) = pods::controller_of(&pod.metadata) {
            if let Some(key) = self.resolve(pod, reference) {
                self.expectations.creation_observed(&key);
                self.queue.add(key);
            }
            return;
        }
        // An orphan: every ReplicaSet that could adopt it looks.
        for key in self.matching(pod) {
            self.queue.add(key);
        }
    }

    fn pod_updated(&self, old: &Pod, new: &Pod) {
        if old.metadata.resource_version.is_some()
            && old.metadata.resource_version == new.metadata.resource_version
        {
            // The same version again (a relist): nothing changed.
            return;
        }
        let labels_changed = old.metadata.labels != new.metadata.labels;
        if new.metadata.deletion_timestamp.is_some() {
            // Graceful deletion: the pod stops counting now, not when it is gone.
            self.pod_deleted(new);
            if labels_changed {
                // Its old labels may have belonged to another ReplicaSet's selector.
                self.pod_deleted(old);
            }
            return;
        }
        let old_ref = pods::controller_of(&old.metadata);
        let new_ref = pods::controller_of(&new.metadata);
        let ref_changed = old_ref != new_ref;
        if ref_changed && let Some(reference) = old_ref {
            // The old owner lost a pod.
            if let Some(key) = self.resolve(old, reference) {
                self.queue.add(key);
            }
        }
        if let Some(reference) = new_ref {
            if let Some(key) = self.resolve(new, reference) {
                self.queue.add(key);
            }
            return;
        }
        if labels_changed || ref_changed {
            // An orphan now, or with new labels: whoever matches may adopt it.
            for key in self.matching(new) {
                self.queue.add(key);
            }
        }
    }

    fn pod_deleted(&self, pod: &Pod) {
        // An orphan's deletion concerns nobody: no ReplicaSet counted it.
        let Some(reference) = pods::controller_of(&pod.metadata) else {
            return;
        };
        if let Some(key) = self.resolve(pod, reference) {
            self.expectations
                .deletion_observed(&key, &ObjectKey::of(pod));
            self.queue.add(key);
        }
    }

    /// The key of the ReplicaSet a controller reference names, if it is in the cache
    /// with that UID (a reference to a deleted namesake resolves to nothing).
    fn resolve(&self, pod: &Pod, reference: &OwnerReference) -> Option<ObjectKey> {
        if !pods::names_a_replica_set(reference) {
            return None;
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let key = ObjectKey::new(namespace, reference.name.clone());
        let rs = self.replica_sets.get(&key)?;
        (rs.metadata.uid.as_deref() == Some(reference.uid.as_str())).then_some(key)
    }

    /// The ReplicaSets of the pod's namespace whose selector matches its labels.
    fn matching(&self, pod: &Pod) -> Vec<ObjectKey> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let labels: Option<&BTreeMap<String, String>> = pod.metadata.labels.as_ref();
        self.replica_sets
            .list_namespace(namespace)
            .iter()
            .filter(|rs| Selector::new(&rs.spec.selector).is_ok_and(|s| s.matches(labels)))
            .map(|rs| ObjectKey::of(rs.as_ref()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::pods::test_support::{ago, pod, replica_set};
    use serde_json::json;

    fn handlers() -> Handlers {
        Handlers {
            replica_sets: Informer::default(),
            expectations: Arc::new(Expectations::default()),
            queue: WorkQueue::new(),
        }
    }

    /// The keys waiting in the queue, emptying it.
    async fn drain(queue: &WorkQueue<ObjectKey>) -> Vec<String> {
        let mut keys = Vec::new();
        while !queue.is_empty() {
            if let Some(key) = queue.next().await {
                keys.push(key.to_string());
                queue.done(&key);
            }
        }
        keys.sort();
        keys
    }

    fn named_rs(name: &str, uid: &str, app: &str) -> ReplicaSet {
        let mut rs = replica_set(1, 0);
        rs.metadata.name = Some(name.into());
        rs.metadata.uid = Some(uid.into());
        rs.spec.selector.match_labels = Some([("app".to_string(), app.to_string())].into());
        rs
    }

    fn orphan(name: &str, app: &str) -> Pod {
        pod(
            name,
            json!({"metadata": {"ownerReferences": null, "labels": {"app": app}, "resourceVersion": "1"}}),
        )
    }

    fn setup() -> Handlers {
        let h = handlers();
        h.replica_sets
            .insert_for_test(named_rs("web", "rs-uid", "web"));
        h.replica_sets
            .insert_for_test(named_rs("web2", "rs2-uid", "web"));
        h.replica_sets
            .insert_for_test(named_rs("db", "db-uid", "db"));
        h
    }

    #[tokio::test]
    async fn pod_changes_enqueue_the_concerned_replica_sets() {
        let owned = pod("p", json!({"metadata": {"resourceVersion": "1"}}));
        let stranger = pod(
            "s",
            json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "old-uid", "controller": true}]}}),
        );
        let job_owned = pod(
            "j",
            json!({"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "web", "uid": "rs-uid", "controller": true}]}}),
        );
        let mut relabeled = owned.clone();
        relabeled.metadata.resource_version = Some("2".into());
        relabeled.metadata.owner_references = None;
        relabeled.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
        let mut same_version = owned.clone();
        same_version.metadata.labels = None;

        // (what, old, new, keys enqueued)
        type Case = (&'static str, Option<Pod>, Option<Pod>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "an owned pod added",
                None,
                Some(owned.clone()),
                vec!["ns/web"],
            ),
            (
                "an owned pod deleted",
                Some(owned.clone()),
                None,
                vec!["ns/web"],
            ),
            (
                "an orphan added: every matching RS",
                None,
                Some(orphan("o", "web")),
                vec!["ns/web", "ns/web2"],
            ),
            (
                "an orphan matching nobody",
                None,
                Some(orphan("o", "cache")),
                vec![],
            ),
            ("an orphan deleted", Some(orphan("o", "web")), None, vec![]),
            ("a pod of a deleted namesake", None, Some(stranger), vec![]),
            ("a pod owned by a Job", None, Some(job_owned), vec![]),
            (
                "released and relabeled: old owner and new matches",
                Some(owned.clone()),
                Some(relabeled),
                vec!["ns/db", "ns/web"],
            ),
            (
                "the same version again",
                Some(owned.clone()),
                Some(same_version),
                vec![],
            ),
        ];
        for (what, old, new, want) in cases {
            let h = setup();
            h.pod_changed(old.as_ref(), new.as_ref());
            assert_eq!(drain(&h.queue).await, want, "{what}");
        }
    }

    #[tokio::test]
    async fn observations_count_off_expectations() {
        let h = setup();
        let key = ObjectKey::new("ns", "web");
        let p = pod("p", json!({"metadata": {"resourceVersion": "1"}}));

        h.expectations.expect_creations(&key, 1);
        h.pod_changed(None, Some(&p));
        assert_eq!(h.expectations.pending(&key), None, "an addition counts");

        h.expectations.expect_deletions(&key, [ObjectKey::of(&p)]);
        let mut going = p.clone();
        going.metadata.resource_version = Some("2".into());
        going.metadata.deletion_timestamp = serde_json::from_value(json!(ago(0))).ok();
        h.pod_changed(Some(&p), Some(&going));
        assert_eq!(
            h.expectations.pending(&key),
            None,
            "a deletionTimestamp counts"
        );

        h.expectations.expect_creations(&key, 1);
        h.pod_changed(None, Some(&going));
        assert!(
            h.expectations.pending(&key).is_some(),
            "a pod first seen while going is no creation"
        );
        assert_eq!(drain(&h.queue).await, vec!["ns/web"]);
    }

    #[tokio::test]
    async fn replica_set_changes_enqueue_it_and_deletion_forgets_expectations() {
        let h = setup();
        let rs = named_rs("web", "rs-uid", "web");
        let key = ObjectKey::of(&rs);
        h.replica_set_changed(None, Some(&rs));
        assert_eq!(drain(&h.queue).await, vec!["ns/web"]);

        h.expectations.expect_creations(&key, 3);
        let recreated = named_rs("web", "new-uid", "web");
        h.replica_set_changed(Some(&rs), Some(&recreated));
        assert_eq!(h.expectations.pending(&key), None);

        h.expectations.expect_creations(&key, 3);
        h.replica_set_changed(Some(&recreated), None);
        assert_eq!(h.expectations.pending(&key), None);
        assert_eq!(drain(&h.queue).await, vec!["ns/web"]);
    }
}
