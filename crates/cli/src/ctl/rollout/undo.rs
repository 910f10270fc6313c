//! `rollout undo`: kubectl's `DeploymentRollbacker`. The ReplicaSet of the wanted
//! revision (default: the one before the newest) holds the template to go back to;
//! one JSON patch replaces the Deployment's template and its annotations (the
//! ReplicaSet's, keeping the Deployment's own revision bookkeeping).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::Api;
use serde_json::json;

use super::{Target, emit};
use crate::ctl::Session;
use crate::ctl::describe::apps::{HASH_LABEL, equal_ignore_hash, owned_replicasets, revision};

/// Annotations that stay the Deployment's own rather than the ReplicaSet's.
const KEEP_FROM_DEPLOYMENT: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

pub async fn run(session: &Session, targets: &[Target], to_revision: i64) -> anyhow::Result<()> {
    for target in targets {
        if !target.is_deployment() {
            anyhow::bail!(
                "no rollbacker has been implemented for {:?}",
                target.group_kind()
            );
        }
        let result = rollback(session, target, to_revision).await?;
        emit(&format!("{} {result}\n", target.display()));
    }
    Ok(())
}

fn revision_not_found(revision: i64) -> anyhow::Error {
    anyhow::anyhow!("unable to find specified revision {revision} in history")
}

/// Rolls `target` back; kubectl's result word (`rolled back`, or why it was skipped).
async fn rollback(session: &Session, target: &Target, to_revision: i64) -> anyhow::Result<String> {
    if to_revision < 0 {
        return Err(revision_not_found(to_revision));
    }
    let api: Api<Deployment> = Api::namespaced(session.client.clone(), &target.namespace);
    let deployment = api.get(&target.name).await.map_err(|e| {
        anyhow::anyhow!(
            "failed to retrieve Deployment {}: {}",
            target.name,
            super::go_error(&e)
        )
    })?;
    let rs = replicaset_for(session, &deployment, to_revision).await?;
    if deployment.spec.paused == Some(true) {
        anyhow::bail!(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
        );
    }
    let mut template = rs.spec.template.clone().unwrap_or_default();
    if equal_ignore_hash(&template, &deployment.spec.template) {
        // kubectl names the revision asked for, 0 included.
        return Ok(format!(
            "skipped rollback (current template already matches revision {to_revision})"
        ));
    }
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in deployment.metadata.annotations.iter().flatten() {
        if KEEP_FROM_DEPLOYMENT.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !KEEP_FROM_DEPLOYMENT.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    let path = format!(
        "/apis/apps/v1/namespaces/{}/deployments/{}",
        target.namespace, target.name
    );
    let request = http::Request::patch(path)
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .header(http::header::ACCEPT, "application/json")
        .body(serde_json::to_vec(&patch)?)?;
    session
        .client
        .request::<Deployment>(request)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "failed restoring revision {to_revision}: {}",
                super::go_error(&e)
            )
        })?;
    Ok("rolled back".to_string())
}

/// The ReplicaSet of `to_revision`, or of the revision before the newest when 0
/// (kubectl's `deploymentRevision`).
async fn replicaset_for(
    session: &Session,
    deployment: &Deployment,
    to_revision: i64,
) -> anyhow::Result<ReplicaSet> {
    let name = deployment.metadata.name.as_deref().unwrap_or("");
    let owned = owned_replicasets(&session.client, deployment)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "failed to retrieve replica sets from deployment {name}: {}",
                super::go_error(&e)
            )
        })?;
    let mut latest: Option<(i64, &ReplicaSet)> = None;
    let mut previous: Option<(i64, &ReplicaSet)> = None;
    for rs in owned.all() {
        let Some(v) = revision(&rs.metadata) else {
            continue;
        };
        if to_revision == 0 {
            if latest.is_none_or(|(l, _)| l < v) {
                previous = latest;
                latest = Some((v, rs));
            } else if previous.is_none_or(|(p, _)| p < v) {
                previous = Some((v, rs));
            }
        } else if v == to_revision {
            return Ok(rs.clone());
        }
    }
    if to_revision > 0 {
        return Err(revision_not_found(to_revision));
    }
    previous
        .map(|(_, rs)| rs.clone())
        .ok_or_else(|| anyhow::anyhow!("no rollout history found for deployment {name:?}"))
}
