//! `rollout status`: a watch of the one Deployment, printing kubectl's status line for
//! every version of it seen, until the rollout is done, fails its progress deadline,
//! or `--timeout` runs out.

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use super::{StatusArgs, Target, emit};
use crate::ctl::Session;
use crate::ctl::describe::apps::revision;

/// The Progressing condition's reason once the progress deadline passed.
const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";

pub async fn run(session: &Session, targets: &[Target], args: &StatusArgs) -> anyhow::Result<()> {
    if args.revision < 0 {
        anyhow::bail!("revision must be a positive integer: {}", args.revision);
    }
    for target in targets {
        if !target.is_deployment() {
            anyhow::bail!(
                "no status viewer has been implemented for {}",
                target.group_kind()
            );
        }
        let follow = follow(session, target, args);
        if args.timeout.is_zero() {
            follow.await?;
        } else {
            tokio::time::timeout(args.timeout, follow)
                .await
                .map_err(|_| anyhow::anyhow!("timed out waiting for the condition"))??;
        }
    }
    Ok(())
}

/// Prints the status of each version of the Deployment until it is done (or once,
/// without `--watch`).
async fn follow(session: &Session, target: &Target, args: &StatusArgs) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::namespaced(session.client.clone(), &target.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.try_next().await? {
        match event {
            Event::Apply(d) | Event::InitApply(d) => {
                let (message, done) = status(&d, args.revision)?;
                emit(&message);
                if done || !args.watch {
                    return Ok(());
                }
            }
            Event::Delete(_) => anyhow::bail!("object has been deleted"),
            Event::Init | Event::InitDone => {}
        }
    }
    anyhow::bail!("the watch ended")
}

/// kubectl's `DeploymentStatusViewer.Status`: the line to print and whether the
/// rollout is complete; an error when the revision differs or the deadline passed.
pub fn status(d: &Deployment, want_revision: i64) -> anyhow::Result<(String, bool)> {
    let name = d.metadata.name.as_deref().unwrap_or("");
    if want_revision > 0 {
        let Some(current) = revision(&d.metadata) else {
            anyhow::bail!("cannot get the revision of deployment {name:?}");
        };
        if current != want_revision {
            anyhow::bail!(
                "desired revision ({want_revision}) is different from the running revision ({current})"
            );
        }
    }
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if generation > status.observed_generation.unwrap_or(0) {
        return Ok((
            "Waiting for deployment spec update to be observed...\n".to_string(),
            false,
        ));
    }
    let timed_out = status.conditions.iter().flatten().any(|c| {
        c.type_.as_deref() == Some("Progressing") && c.reason.as_deref() == Some(TIMED_OUT_REASON)
    });
    if timed_out {
        anyhow::bail!("deployment {name:?} exceeded its progress deadline");
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let waiting = |what: String| {
        Ok((
            format!("Waiting for deployment {name:?} rollout to finish: {what}...\n"),
            false,
        ))
    };
    if let Some(desired) = d.spec.replicas
        && updated < desired
    {
        return waiting(format!(
            "{updated} out of {desired} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Ok((
        format!("deployment {name:?} successfully rolled out\n"),
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": generation,
                         "annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("a deployment")
    }

    #[test]
    fn kubectl_messages() {
        let d = deployment(2, json!({"observedGeneration": 1}));
        assert_eq!(
            status(&d, 0).expect("status").0,
            "Waiting for deployment spec update to be observed...\n"
        );
        let d = deployment(
            1,
            json!({"observedGeneration": 1, "updatedReplicas": 1, "replicas": 3}),
        );
        assert_eq!(
            status(&d, 0).expect("status").0,
            "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...\n"
        );
        let d = deployment(
            1,
            json!({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 4}),
        );
        assert!(
            status(&d, 0)
                .expect("status")
                .0
                .contains("1 old replicas are pending termination")
        );
        let d = deployment(
            1,
            json!({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 1}),
        );
        assert_eq!(
            status(&d, 0).expect("status").0,
            "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...\n"
        );
        let d = deployment(
            1,
            json!({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(
            status(&d, 0).expect("status"),
            (
                "deployment \"web\" successfully rolled out\n".to_string(),
                true
            )
        );
        assert_eq!(
            status(&d, 1).expect_err("wrong revision").to_string(),
            "desired revision (1) is different from the running revision (2)"
        );
        let d = deployment(
            1,
            json!({"observedGeneration": 1, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            status(&d, 0).expect_err("deadline").to_string(),
            "deployment \"web\" exceeded its progress deadline"
        );
    }
}
