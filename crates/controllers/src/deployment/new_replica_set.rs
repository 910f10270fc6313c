//! The new ReplicaSet (the one running the Deployment's current template) and the old
//! ones: finding it, keeping its revision and annotations current, and creating it
//! when the template is new (upstream's `getAllReplicaSetsAndSyncRevision` and
//! `getNewReplicaSet`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::PostParams;

use super::DeploymentController;
use super::hash::{POD_TEMPLATE_HASH_LABEL, compute_hash, equal_ignore_hash};
use super::progress::{
    FAILED_RS_CREATE, FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING, condition, has_progress_deadline,
    new_condition, now, set_condition,
};
use super::replicas::{by_creation, controller_of, desired, name, spec_replicas, uid};
use super::revision::{self, set_deployment_revision, set_new_replica_set_annotations};
use super::rolling::{max_surge, new_rs_new_replicas};
use crate::Error;
use crate::events::EventType;
use crate::selector;

/// The oldest ReplicaSet whose template is the Deployment's (`FindNewReplicaSet`).
pub fn find_new<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = &d.spec.template;
    let mut matching: Vec<&ReplicaSet> = rss
        .iter()
        .filter(|rs| {
            rs.spec
                .template
                .as_ref()
                .is_some_and(|t| equal_ignore_hash(t, template))
        })
        .collect();
    matching.sort_by(|a, b| by_creation(a, b));
    matching.first().copied()
}

/// Every ReplicaSet but the new one.
pub fn old<'a>(rss: &'a [ReplicaSet], new_rs: Option<&ReplicaSet>) -> Vec<&'a ReplicaSet> {
    let new_uid = new_rs.map(uid);
    rss.iter().filter(|rs| Some(uid(rs)) != new_uid).collect()
}

/// The ReplicaSet to create for the Deployment's template: named and labelled with the
/// template's hash, owned by the Deployment, sized by the strategy, annotated with
/// `revision`.
pub fn build(d: &Deployment, old: &[&ReplicaSet], revision: i64) -> Result<ReplicaSet, Error> {
    let spec = &d.spec;
    let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = compute_hash(&spec.template, collision_count);
    let mut template = spec.template.clone();
    let labels = {
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        labels.clone()
    };
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{hash}",
                d.metadata.name.as_deref().unwrap_or("")
            )),
            namespace: d.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref(d)]),
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector: selector::with_label(&spec.selector, POD_TEMPLATE_HASH_LABEL, &hash),
            template: Some(template),
        },
        status: None,
    };
    let all: Vec<&ReplicaSet> = old.iter().copied().chain([&rs]).collect();
    let replicas = new_rs_new_replicas(d, &all, &rs)?;
    rs.spec.replicas = Some(replicas);
    let want = desired(d);
    set_new_replica_set_annotations(d, &mut rs, revision, false, want, want + max_surge(d)?);
    Ok(rs)
}

/// The owner reference a Deployment puts on its ReplicaSets.
pub fn controller_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: d.metadata.name.clone().unwrap_or_default(),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

impl DeploymentController {
    /// The new ReplicaSet (created when `create` and missing) and the old ones, with
    /// revisions brought up to date; `rs_list` gets the written versions.
    pub(super) async fn get_all_replica_sets_and_sync_revision(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), Error> {
        let existing = find_new(d, rs_list).cloned();
        let old: Vec<ReplicaSet> = old(rs_list, existing.as_ref())
            .into_iter()
            .cloned()
            .collect();
        let new_revision = revision::max(&old) + 1;
        let new_rs = match existing {
            Some(existing) => Some(self.sync_existing_new(d, existing, new_revision).await?),
            None if create => Some(self.create_new(d, &old, new_revision).await?),
            None => None,
        };
        if let Some(new_rs) = &new_rs {
            match rs_list.iter_mut().find(|rs| uid(rs) == uid(new_rs)) {
                Some(slot) => *slot = new_rs.clone(),
                None => rs_list.push(new_rs.clone()),
            }
        }
        Ok((new_rs, old))
    }

    /// Brings an existing new ReplicaSet's annotations and minReadySeconds up to date,
    /// and the Deployment's revision to its.
    async fn sync_existing_new(
        &self,
        d: &mut Deployment,
        existing: ReplicaSet,
        new_revision: i64,
    ) -> Result<ReplicaSet, Error> {
        let mut copy = existing.clone();
        let want = desired(d);
        let annotations_changed = set_new_replica_set_annotations(
            d,
            &mut copy,
            new_revision,
            true,
            want,
            want + max_surge(d)?,
        );
        let min_ready = d.spec.min_ready_seconds;
        let min_ready_changed = copy.spec.min_ready_seconds != min_ready;
        if annotations_changed || min_ready_changed {
            copy.spec.min_ready_seconds = min_ready;
            // The Deployment's revision follows on the next pass, from the written
            // ReplicaSet (as upstream, which returns here too).
            let written = self
                .replica_sets_api(d)
                .replace(name(&copy), &PostParams::default(), &copy)
                .await?;
            return Ok(written);
        }

        let revision = copy
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(revision::REVISION))
            .cloned()
            .unwrap_or_default();
        let mut needs_update = set_deployment_revision(d, &revision);
        // A Deployment first seen mid-rollout gets a Progressing condition from now.
        let deadline = has_progress_deadline(d);
        let status = d.status.get_or_insert_with(Default::default);
        if deadline && condition(status, PROGRESSING).is_none() {
            let message = format!("Found new replica set {:?}", name(&copy));
            set_condition(
                status,
                new_condition(PROGRESSING, "True", FOUND_NEW_RS, message, now()),
            );
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(copy)
    }

    /// Creates the ReplicaSet for a template not run before. A ReplicaSet of that
    /// name that is not ours (a hash collision) bumps `collisionCount`, so the next
    /// pass picks another name.
    async fn create_new(
        &self,
        d: &mut Deployment,
        old: &[ReplicaSet],
        new_revision: i64,
    ) -> Result<ReplicaSet, Error> {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let rs = build(d, &old_refs, new_revision)?;
        let replicas = spec_replicas(&rs);
        let api = self.replica_sets_api(d);
        let (created, already_existed) = match api.create(&PostParams::default(), &rs).await {
            Ok(created) => (created, false),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let found = api.get(name(&rs)).await?;
                let ours = controller_of(found.metadata.owner_references.as_ref())
                    .is_some_and(|o| Some(&o.uid) == d.metadata.uid.as_ref());
                let same_template = found
                    .spec
                    .template
                    .as_ref()
                    .is_some_and(|t| equal_ignore_hash(t, &d.spec.template));
                if !(ours && same_template) {
                    self.record_collision(d).await?;
                    return Err(kube::Error::Api(status).into());
                }
                (found, true)
            }
            Err(e) => {
                if !namespace_terminating(&e) {
                    self.record_create_failure(d, name(&rs), &e).await?;
                }
                return Err(e.into());
            }
        };
        if !already_existed && replicas > 0 {
            self.ctx.events.record(
                &*d,
                EventType::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled up replica set {} from 0 to {replicas}",
                    name(&created)
                ),
            );
        }
        let mut needs_update = set_deployment_revision(d, &new_revision.to_string());
        if !already_existed && has_progress_deadline(d) {
            let message = format!("Created new replica set {:?}", name(&created));
            let status = d.status.get_or_insert_with(Default::default);
            set_condition(
                status,
                new_condition(PROGRESSING, "True", NEW_RS_CREATED, message, now()),
            );
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(created)
    }

    async fn record_collision(&self, d: &mut Deployment) -> Result<(), Error> {
        let status = d.status.get_or_insert_with(Default::default);
        let count = status.collision_count.unwrap_or(0);
        status.collision_count = Some(count.wrapping_add(1));
        self.update_status(d).await?;
        tracing::info!(
            deployment = %d.metadata.name.as_deref().unwrap_or(""),
            collision_count = count.wrapping_add(1),
            "found a hash collision; bumped collisionCount"
        );
        Ok(())
    }

    async fn record_create_failure(
        &self,
        d: &mut Deployment,
        rs_name: &str,
        e: &kube::Error,
    ) -> Result<(), Error> {
        let message = format!("Failed to create new replica set {rs_name:?}: {e}");
        if has_progress_deadline(d) {
            let status = d.status.get_or_insert_with(Default::default);
            set_condition(
                status,
                new_condition(
                    PROGRESSING,
                    "False",
                    FAILED_RS_CREATE,
                    message.clone(),
                    now(),
                ),
            );
            self.update_status(d).await?;
        }
        self.ctx
            .events
            .record(&*d, EventType::Warning, FAILED_RS_CREATE, message);
        Ok(())
    }
}

/// A create refused because the namespace is going away: not worth a condition.
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 403 && status.message.contains("being terminated"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deployment::replicas::test_support::{rolling, rs_rev};

    fn with_template(mut rs: ReplicaSet, d: &Deployment, hash: &str) -> ReplicaSet {
        let mut template = d.spec.template.clone();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.into());
        }
        rs.spec.template = Some(template);
        rs
    }

    #[test]
    fn the_new_replica_set_is_the_oldest_with_the_template() {
        let d = rolling(3, json!(1), json!(0));
        let mut other = d.clone();
        if let Some(spec) = other.spec.template.spec.as_mut() {
            spec.containers[0].image = Some("httpd".into());
        }
        let rss = vec![
            with_template(rs_rev("web-b", 0, 0, 20, 2), &d, "b"),
            with_template(rs_rev("web-a", 0, 0, 10, 1), &d, "a"),
            with_template(rs_rev("web-c", 3, 3, 5, 3), &other, "c"),
        ];
        let new_rs = find_new(&d, &rss);
        assert_eq!(new_rs.map(name), Some("web-a"));
        let old_names: Vec<&str> = old(&rss, new_rs).into_iter().map(name).collect();
        assert_eq!(old_names, ["web-b", "web-c"]);
        assert!(find_new(&d, &rss[2..]).is_none());
    }

    #[test]
    fn built_replica_set_carries_hash_owner_revision_and_size() {
        let mut d = rolling(5, json!(1), json!(0));
        d.metadata.uid = Some("uid-web".into());
        d.metadata.annotations = Some([("team".to_string(), "web".to_string())].into());
        let old = rs_rev("web-old", 5, 5, 1, 3);
        let built = build(&d, &[&old], 4).unwrap_or_default();
        let hash = compute_hash(&d.spec.template, None);
        assert_eq!(built.metadata.name, Some(format!("web-{hash}")));
        let labels = built.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        let spec = built.spec.clone();
        assert_eq!(
            spec.replicas,
            Some(1),
            "one above the total of 5 with surge 1"
        );
        assert_eq!(
            spec.selector
                .match_labels
                .unwrap_or_default()
                .get(POD_TEMPLATE_HASH_LABEL),
            Some(&hash)
        );
        let template_labels = spec
            .template
            .and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .unwrap_or_default();
        assert_eq!(template_labels, labels);
        let owner = controller_of(built.metadata.owner_references.as_ref())
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Deployment", "uid-web")
        );
        assert_eq!(owner.block_owner_deletion, Some(true));
        let annotations = built.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.get(revision::REVISION).map(String::as_str),
            Some("4")
        );
        assert_eq!(
            annotations
                .get(revision::DESIRED_REPLICAS)
                .map(String::as_str),
            Some("5")
        );
        assert_eq!(
            annotations.get(revision::MAX_REPLICAS).map(String::as_str),
            Some("6")
        );
        assert_eq!(annotations.get("team").map(String::as_str), Some("web"));

        // A collision count names it differently.
        d.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
            collision_count: Some(1),
            ..Default::default()
        });
        let bumped = build(&d, &[&old], 4).unwrap_or_default();
        assert_ne!(bumped.metadata.name, built.metadata.name);
    }
}
