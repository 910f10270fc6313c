//! `rollout history`: a Deployment's revisions are its ReplicaSets' revision
//! annotations; the change cause is each ReplicaSet's `kubernetes.io/change-cause`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::Api;

use super::{Target, emit};
use crate::ctl::Session;
use crate::ctl::describe::apps::{owned_replicasets, revision};
use crate::ctl::describe::tabwriter::align;
use crate::ctl::describe::{pod, text::Out};

/// The annotation `kubectl --record` and users set to explain a change.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

pub async fn run(session: &Session, targets: &[Target], want: i64) -> anyhow::Result<()> {
    for target in targets {
        if !target.is_deployment() {
            anyhow::bail!(
                "no history viewer has been implemented for {:?}",
                target.group_kind()
            );
        }
        let history = view(session, target, want).await?;
        let with_revision = if want > 0 {
            format!("with revision #{want}")
        } else {
            String::new()
        };
        emit(&format!(
            "{} {with_revision}\n{history}\n",
            target.display()
        ));
    }
    Ok(())
}

/// Each revision's pod template, its change cause in its annotations.
pub async fn revisions(
    session: &Session,
    target: &Target,
) -> anyhow::Result<BTreeMap<i64, PodTemplateSpec>> {
    let api: Api<Deployment> = Api::namespaced(session.client.clone(), &target.namespace);
    let deployment = api.get(&target.name).await.map_err(|e| {
        anyhow::anyhow!(
            "failed to retrieve deployment {}: {}",
            target.name,
            super::go_error(&e)
        )
    })?;
    let owned = owned_replicasets(&session.client, &deployment)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "failed to retrieve replica sets from deployment {}: {}",
                target.name,
                super::go_error(&e)
            )
        })?;
    let mut history = BTreeMap::new();
    for rs in owned.all() {
        let Some(number) = revision(&rs.metadata) else {
            continue;
        };
        let mut template = rs.spec.template.clone().unwrap_or_default();
        let cause = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CHANGE_CAUSE))
            .filter(|c| !c.is_empty());
        let meta = template.metadata.get_or_insert_with(Default::default);
        let annotations = meta.annotations.get_or_insert_with(Default::default);
        if let Some(cause) = cause {
            annotations.insert(CHANGE_CAUSE.to_string(), cause.clone());
        }
        history.insert(number, template);
    }
    Ok(history)
}

/// kubectl's `DeploymentHistoryViewer.ViewHistory`.
async fn view(session: &Session, target: &Target, want: i64) -> anyhow::Result<String> {
    let history = revisions(session, target).await?;
    if history.is_empty() {
        return Ok("No rollout history found.".to_string());
    }
    if want > 0 {
        let Some(template) = history.get(&want) else {
            anyhow::bail!("unable to find the specified revision");
        };
        // kubectl prints a revision's template without aligning it.
        let mut out = Out::raw();
        pod::template(&mut out, Some(template));
        return Ok(out.finish());
    }
    let mut table = String::from("REVISION\tCHANGE-CAUSE\n");
    for (number, template) in &history {
        let cause = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CHANGE_CAUSE))
            .filter(|c| !c.is_empty())
            .map_or("<none>", String::as_str);
        table.push_str(&format!("{number}\t{cause}\n"));
    }
    Ok(align(&table, 2))
}
