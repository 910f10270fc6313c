//! The Recreate strategy: all old pods go before any new one starts (upstream's
//! `rolloutRecreate`). Old ReplicaSets are scaled to zero; the new one is created and
//! scaled up only once no old pod is left running, which the pod informer tells (a
//! pod's deletion brings the Deployment back).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use super::DeploymentController;
use super::replicas::{self, controller_of, desired, uid};
use crate::Error;
use crate::runtime::Next;
use crate::selector;

/// Pods by the uid of the ReplicaSet (of `rss`) controlling them.
pub type PodMap = HashMap<String, Vec<Arc<Pod>>>;

/// Whether any old pod may still be running: an old ReplicaSet reports pods, or a pod
/// of one is neither Succeeded nor Failed (`oldPodsRunning`; a pod in Unknown may run).
pub fn old_pods_running(new_rs: Option<&ReplicaSet>, old: &[ReplicaSet], pods: &PodMap) -> bool {
    if replicas::total_actual(old) > 0 {
        return true;
    }
    let new_uid = new_rs.map(uid);
    pods.iter()
        .filter(|(rs_uid, _)| Some(rs_uid.as_str()) != new_uid)
        .flat_map(|(_, pods)| pods)
        .any(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded") | Some("Failed"))
        })
}

/// The pods of the Deployment's namespace its selector matches, grouped by the
/// ReplicaSet of `rss` that controls them (`getPodMapForDeployment`).
pub fn pod_map(d: &Deployment, rss: &[ReplicaSet], pods: &[Arc<Pod>]) -> Result<PodMap, Error> {
    let mut map: PodMap = rss
        .iter()
        .map(|rs| (uid(rs).to_string(), Vec::new()))
        .collect();
    let spec_selector = d.spec.selector.clone();
    for pod in pods {
        if !selector::matches(&spec_selector, pod.metadata.labels.as_ref())
            .map_err(Error::Invalid)?
        {
            continue;
        }
        let Some(owner) = controller_of(pod.metadata.owner_references.as_ref()) else {
            continue;
        };
        if let Some(list) = map.get_mut(&owner.uid) {
            list.push(pod.clone());
        }
    }
    Ok(map)
}

impl DeploymentController {
    /// One step of a Recreate rollout, then the status.
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> Result<Next, Error> {
        let (mut new_rs, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;

        // Old sets down first.
        let mut scaled_down = false;
        for rs in old.iter_mut().filter(|rs| replicas::spec_replicas(rs) > 0) {
            let (scaled, updated) = self.scale_replica_set_and_record_event(d, rs, 0).await?;
            scaled_down |= scaled;
            *rs = updated;
        }
        if scaled_down {
            return self.sync_rollout_status(d, &old, new_rs.as_ref()).await;
        }

        // Then wait until their pods are gone.
        let namespace = d.metadata.namespace.clone().unwrap_or_default();
        let pods = self.ctx.pods.list_namespace(&namespace);
        if old_pods_running(new_rs.as_ref(), &old, &pod_map(d, rs_list, &pods)?) {
            return self.sync_rollout_status(d, &old, new_rs.as_ref()).await;
        }

        if new_rs.is_none() {
            let (created, now_old) = self
                .get_all_replica_sets_and_sync_revision(d, rs_list, true)
                .await?;
            new_rs = created;
            old = now_old;
        }
        if let Some(rs) = new_rs.as_mut() {
            let (_, updated) = self
                .scale_replica_set_and_record_event(d, rs, desired(d))
                .await?;
            *rs = updated;
        }

        if super::progress::deployment_complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup_deployment(d, &old).await?;
        }
        self.sync_rollout_status(d, &old, new_rs.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deployment::replicas::test_support::{rolling, rs};

    fn pod(owner_uid: &str, phase: &str, labels: serde_json::Value) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {
                    "name": format!("p-{owner_uid}-{phase}"),
                    "labels": labels,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": owner_uid, "controller": true}],
                },
                "status": {"phase": phase},
            }))
            .expect("pod"),
        )
    }

    fn gone(mut set: ReplicaSet) -> ReplicaSet {
        if let Some(s) = set.status.as_mut() {
            s.replicas = 0;
        }
        set
    }

    #[test]
    fn recreate_waits_for_old_pods() {
        let d = rolling(2, json!(0), json!(1));
        let new = rs("new", 0, 0, 2);
        let old_scaled_down = gone(rs("old", 0, 0, 1));
        let old_still_reporting = rs("old", 2, 2, 1);
        let web = json!({"app": "web"});
        let cases = [
            (
                "old set still reports pods",
                old_still_reporting,
                vec![],
                true,
            ),
            ("no pods left", old_scaled_down.clone(), vec![], false),
            (
                "an old pod running",
                old_scaled_down.clone(),
                vec![pod("uid-old", "Running", web.clone())],
                true,
            ),
            (
                "an old pod pending",
                old_scaled_down.clone(),
                vec![pod("uid-old", "Pending", web.clone())],
                true,
            ),
            (
                "an old pod in Unknown",
                old_scaled_down.clone(),
                vec![pod("uid-old", "Unknown", web.clone())],
                true,
            ),
            (
                "old pods finished",
                old_scaled_down.clone(),
                vec![
                    pod("uid-old", "Succeeded", web.clone()),
                    pod("uid-old", "Failed", web.clone()),
                ],
                false,
            ),
            (
                "new pods do not count",
                old_scaled_down.clone(),
                vec![pod("uid-new", "Running", web.clone())],
                false,
            ),
            (
                "pods of others do not count",
                old_scaled_down.clone(),
                vec![pod("uid-other", "Running", web.clone())],
                false,
            ),
            (
                "pods outside the selector do not count",
                old_scaled_down.clone(),
                vec![pod("uid-old", "Running", json!({"app": "db"}))],
                false,
            ),
        ];
        for (what, old, pods, want) in cases {
            let rss = vec![old.clone(), new.clone()];
            let map = pod_map(&d, &rss, &pods).unwrap_or_default();
            assert_eq!(old_pods_running(Some(&new), &[old], &map), want, "{what}");
        }
    }
}
