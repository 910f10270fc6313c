//! `rollout restart`: a strategic merge patch setting the pod template's
//! `kubectl.kubernetes.io/restartedAt` to now, so the Deployment rolls out a new
//! ReplicaSet with the same spec.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{Target, emit};
use crate::ctl::Session;

/// The template annotation kubectl stamps.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// kubectl's field manager for this verb.
const FIELD_MANAGER: &str = "kubectl-rollout";

pub async fn run(session: &Session, targets: &[Target]) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for target in targets {
        if let Err(e) = restart(session, target).await {
            errors.push(e);
        }
    }
    // kubectl restarts what it can and reports the rest at the end.
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => {
            for e in &errors[..errors.len() - 1] {
                eprintln!("{}", crate::ctl::error_line(e));
            }
            Err(errors.remove(errors.len() - 1))
        }
    }
}

async fn restart(session: &Session, target: &Target) -> anyhow::Result<()> {
    let plural = target.resource.qualified_plural();
    if !target.is_deployment() {
        anyhow::bail!("{plural} {:?} restarting is not supported", target.name);
    }
    let api: Api<Deployment> = Api::namespaced(session.client.clone(), &target.namespace);
    let deployment = api.get(&target.name).await?;
    if deployment.spec.paused == Some(true) {
        anyhow::bail!(
            "{plural} {:?} can't restart paused deployment (run rollout resume first)",
            target.name
        );
    }
    // Go's time.RFC3339 in UTC: whole seconds and `Z`.
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let current = deployment
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT));
    if current == Some(&now) {
        anyhow::bail!(
            "failed to create patch for {}: if restart has already been triggered within the past second, please wait before attempting to trigger another",
            target.name
        );
    }
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
    api.patch(
        &target.name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        },
        &Patch::Strategic(&patch),
    )
    .await
    .map_err(|e| anyhow::anyhow!("failed to patch: {}", super::go_error(&e)))?;
    emit(&format!("{} restarted\n", target.display()));
    Ok(())
}
