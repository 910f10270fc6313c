//! Deployments and ReplicaSets (`describeDeployment`, `describeReplicaSet`), and the
//! part of upstream's `deploymentutil` that `describe` and `rollout` share: a
//! Deployment's ReplicaSets, which one is new, and their revisions.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::text::{self, Out, rfc1123z};
use super::{events, pod};

/// The Deployment annotation and ReplicaSet annotation holding a revision number.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label the Deployment controller adds to each ReplicaSet's template.
pub const HASH_LABEL: &str = "pod-template-hash";

/// A Deployment's ReplicaSets: those its selector matches and it controls, oldest
/// first (upstream's `GetAllReplicaSets`), split into the old ones and the new one
/// (the first whose template equals the Deployment's, pod-template-hash aside).
pub struct Owned {
    pub old: Vec<ReplicaSet>,
    pub new: Option<ReplicaSet>,
}

impl Owned {
    /// Old ones then the new one.
    pub fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(self.new.iter()).collect()
    }
}

/// Lists and splits `deployment`'s ReplicaSets.
pub async fn owned_replicasets(
    client: &kube::Client,
    deployment: &Deployment,
) -> Result<Owned, kube::Error> {
    let namespace = deployment
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let selector = super::selector_string(&deployment.spec.selector);
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default().labels(&selector)).await?;
    let uid = deployment.metadata.uid.as_deref().unwrap_or("");
    let mut owned: Vec<ReplicaSet> = list
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .collect();
    // Upstream's ReplicaSetsByCreationTimestamp: oldest first, then by name.
    owned.sort_by(|a, b| {
        let time = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        time(a)
            .cmp(&time(b))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let template = &deployment.spec.template;
    let new_index = owned.iter().position(|rs| {
        rs.spec
            .template
            .as_ref()
            .is_some_and(|t| equal_ignore_hash(t, template))
    });
    let new = new_index.map(|i| owned.remove(i));
    Ok(Owned { old: owned, new })
}

/// Whether two pod templates are equal once the pod-template-hash label is dropped
/// (upstream's `EqualIgnoreHash`; empty and absent fields count as equal, as Go's
/// semantic equality treats nil and empty).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let normal = |t: &PodTemplateSpec| {
        let mut value = serde_json::to_value(t).unwrap_or(Value::Null);
        if let Some(labels) = value
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove(HASH_LABEL);
        }
        prune(&mut value);
        value
    };
    normal(a) == normal(b)
}

/// Drops nulls, empty objects and empty arrays, recursively.
fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                prune(v);
            }
            map.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The revision an object's annotation records, if it parses.
pub fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<i64> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
}

fn int_or_string(value: Option<&IntOrString>) -> String {
    match value {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => "<nil>".to_string(),
    }
}

/// `name (2/3 replicas created), …`, or `<none>`.
fn replicasets_line(sets: &[&ReplicaSet]) -> String {
    let parts: Vec<String> = sets
        .iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                rs.metadata.name.as_deref().unwrap_or(""),
                rs.status.as_ref().map_or(0, |s| s.replicas),
                rs.spec.replicas.unwrap_or(0)
            )
        })
        .collect();
    if parts.is_empty() {
        "<none>".to_string()
    } else {
        parts.join(", ")
    }
}

/// The whole `kubectl describe deployment` text.
pub fn describe_deployment(
    d: &Deployment,
    owned: Option<&Owned>,
    events: Option<Vec<Event>>,
) -> String {
    let mut out = Out::new();
    let meta = &d.metadata;
    let spec = d.spec.clone();
    let status = d.status.clone().unwrap_or_default();
    text::name_and_namespace(&mut out, meta);
    out.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(meta.creation_timestamp.as_ref())
        ),
    );
    text::labels_and_annotations(&mut out, meta);
    out.write(
        0,
        &format!("Selector:\t{}\n", super::selector_string(&spec.selector)),
    );
    out.write(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            spec.replicas.unwrap_or(0),
            status.updated_replicas.unwrap_or(0),
            status.replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
            status.unavailable_replicas.unwrap_or(0)
        ),
    );
    let strategy = spec.strategy.clone().unwrap_or_default();
    out.write(
        0,
        &format!(
            "StrategyType:\t{}\n",
            strategy.type_.as_deref().unwrap_or("")
        ),
    );
    out.write(
        0,
        &format!(
            "MinReadySeconds:\t{}\n",
            spec.min_ready_seconds.unwrap_or(0)
        ),
    );
    if let Some(ru) = &strategy.rolling_update {
        out.write(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(ru.max_unavailable.as_ref()),
                int_or_string(ru.max_surge.as_ref())
            ),
        );
    }
    pod::template(&mut out, Some(&spec.template));
    let conditions: Vec<_> = status.conditions.iter().flatten().collect();
    if !conditions.is_empty() {
        out.write(0, "Conditions:\n  Type\tStatus\tReason\n");
        out.write(1, "----\t------\t------\n");
        for c in conditions {
            out.write(
                1,
                &format!(
                    "{} \t{}\t{}\n",
                    c.type_.as_deref().unwrap_or(""),
                    c.status.as_deref().unwrap_or(""),
                    c.reason.as_deref().unwrap_or("")
                ),
            );
        }
    }
    if let Some(owned) = owned
        && (!owned.old.is_empty() || owned.new.is_some())
    {
        let old: Vec<&ReplicaSet> = owned.old.iter().collect();
        let new: Vec<&ReplicaSet> = owned.new.iter().collect();
        out.write(0, &format!("OldReplicaSets:\t{}\n", replicasets_line(&old)));
        out.write(0, &format!("NewReplicaSet:\t{}\n", replicasets_line(&new)));
    }
    events::section(&mut out, events);
    out.finish()
}

/// Pods by phase among those `rs` controls: running, waiting, succeeded, failed.
pub fn pod_phases(pods: &[Pod], uid: &str) -> [usize; 4] {
    let mut counts = [0; 4];
    for p in pods {
        let controlled = p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == uid);
        if !controlled {
            continue;
        }
        match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Running") => counts[0] += 1,
            Some("Pending") => counts[1] += 1,
            Some("Succeeded") => counts[2] += 1,
            Some("Failed") => counts[3] += 1,
            _ => {}
        }
    }
    counts
}

/// The whole `kubectl describe replicaset` text; `phases` is [`pod_phases`] or the
/// error listing the pods.
pub fn describe_replicaset(
    rs: &ReplicaSet,
    phases: Result<[usize; 4], String>,
    events: Option<Vec<Event>>,
) -> String {
    let mut out = Out::new();
    let meta = &rs.metadata;
    let spec = rs.spec.clone();
    let status = rs.status.clone().unwrap_or_default();
    text::name_and_namespace(&mut out, meta);
    out.write(
        0,
        &format!(
            "Selector:\t{}\n",
            super::format_label_selector(Some(&spec.selector))
        ),
    );
    text::labels_and_annotations(&mut out, meta);
    if let Some(controller) = pod::controller_of(meta) {
        out.write(0, &format!("Controlled By:\t{controller}\n"));
    }
    out.write(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            status.replicas,
            spec.replicas.unwrap_or(0)
        ),
    );
    out.write(0, "Pods Status:\t");
    match phases {
        Ok([running, waiting, succeeded, failed]) => out.write(
            0,
            &format!(
                "{running} Running / {waiting} Waiting / {succeeded} Succeeded / {failed} Failed\n"
            ),
        ),
        Err(e) => out.write(0, &format!("error in fetching pods: {e}\n")),
    }
    pod::template(&mut out, spec.template.as_ref());
    let conditions: Vec<_> = status.conditions.iter().flatten().collect();
    if !conditions.is_empty() {
        out.write(0, "Conditions:\n  Type\tStatus\tReason\n");
        out.write(1, "----\t------\t------\n");
        for c in conditions {
            out.write(
                1,
                &format!(
                    "{} \t{}\t{}\n",
                    c.type_.as_deref().unwrap_or(""),
                    c.status.as_deref().unwrap_or(""),
                    c.reason.as_deref().unwrap_or("")
                ),
            );
        }
    }
    events::section(&mut out, events);
    out.finish()
}
