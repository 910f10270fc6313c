//! What a pod update may change, as upstream's `ValidatePodUpdate`: container images,
//! `activeDeadlineSeconds` (set, or lowered), tolerations (additions, and their
//! `tolerationSeconds`), scheduling gates (removals), and a negative grace period set to
//! 1. Anything else in `spec` is Forbidden, with a list of what differs.

use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use serde_json::Value;

use super::tolerations;
use crate::validation::errors::{BadValue, FieldError};
use crate::validation::formats;
use crate::validation::path::Path;

/// Upstream's list of updatable fields, quoted in the Forbidden message.
const UPDATABLE: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// The most differences listed in the Forbidden message.
const MAX_DIFF_LINES: usize = 20;

/// Upstream's `ValidateContainerUpdates`; true when the lists differ in length, which
/// ends the update checks.
fn container_updates(
    new: &[Container],
    old: &[Container],
    path: &Path,
    errs: &mut Vec<FieldError>,
) -> bool {
    if new.len() != old.len() {
        errs.push(FieldError::forbidden(
            path,
            "pod updates may not add or remove containers",
        ));
        return true;
    }
    for (i, c) in new.iter().enumerate() {
        let image = c.image.as_deref().unwrap_or("");
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
        if image.trim() != image {
            errs.push(FieldError::invalid(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    false
}

/// Whether two tolerations are the same apart from `tolerationSeconds`.
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    Toleration {
        toleration_seconds: b.toleration_seconds,
        ..a.clone()
    } == *b
}

/// Drops empty lists, maps and nulls, which upstream's semantic equality treats as
/// absent.
fn normalized(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalized(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalized).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Lists the paths where `old` and `new` differ, as `path: old -> new`.
fn diff(old: &Value, new: &Value, path: &Path, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFF_LINES || old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                diff(x, y, &path.child(k), out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, &path.index(i), out);
            }
        }
        _ => out.push(format!("  {path}: {old} -> {new}")),
    }
}

fn as_value(spec: &PodSpec) -> Value {
    normalized(serde_json::to_value(spec).unwrap_or(Value::Null))
}

/// The spec rules of upstream's `ValidatePodUpdate`.
pub fn spec_update(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let path = Path::new("spec");
    let mut errs = Vec::new();
    let (new_init, old_init) = (
        new.init_containers.as_deref().unwrap_or_default(),
        old.init_containers.as_deref().unwrap_or_default(),
    );
    if container_updates(
        &new.containers,
        &old.containers,
        &path.child("containers"),
        &mut errs,
    ) || container_updates(new_init, old_init, &path.child("initContainers"), &mut errs)
    {
        return errs;
    }
    let deadline_path = path.child("activeDeadlineSeconds");
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                &deadline_path,
                n,
                &formats::inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                &deadline_path,
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &deadline_path,
            BadValue::null(),
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let new_tolerations = new.tolerations.as_deref().unwrap_or_default();
    let kept = old
        .tolerations
        .iter()
        .flatten()
        .all(|o| new_tolerations.iter().any(|n| same_toleration(o, n)));
    if kept {
        errs.extend(tolerations(new_tolerations, &path.child("tolerations")));
    } else {
        errs.push(FieldError::forbidden(
            &path.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    let old_gates: Vec<&str> = old
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    for (i, gate) in new.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(&gate.name.as_str()) {
            errs.push(FieldError::forbidden(
                &path.child("schedulingGates").index(i).child("name"),
                &format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    gate.name
                ),
            ));
        }
    }
    let old_value = as_value(old);
    if as_value(new) == old_value {
        return errs;
    }
    // Put the old values back into what may change, then see what else differs.
    let mut munged = new.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    if let Some(init) = munged.init_containers.as_mut() {
        for (c, o) in init.iter_mut().zip(old_init) {
            c.image.clone_from(&o.image);
        }
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    munged.tolerations.clone_from(&old.tolerations);
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if !old_gates.is_empty() {
        // A gated pod may gain node selector entries, not change or lose them.
        let new_selector = munged.node_selector.clone().unwrap_or_default();
        let old_selector = old.node_selector.clone().unwrap_or_default();
        if old_selector
            .iter()
            .any(|(k, v)| new_selector.get(k) != Some(v))
        {
            errs.push(FieldError::invalid(
                &path.child("nodeSelector"),
                BadValue::json(&new_selector),
                "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
            ));
        }
        munged.node_selector.clone_from(&old.node_selector);
    }
    let munged_value = as_value(&munged);
    if munged_value != old_value {
        let mut lines = Vec::new();
        diff(&old_value, &munged_value, &path, &mut lines);
        errs.push(FieldError::forbidden(
            &path,
            &format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE.join(","),
                lines.join("\n")
            ),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> PodSpec {
        serde_json::from_value(v).expect("spec")
    }

    fn base() -> Value {
        json!({
            "containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}],
            "terminationGracePeriodSeconds": 30
        })
    }

    fn check(new: Value) -> Vec<String> {
        spec_update(&spec(new), &spec(base()))
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn update_cases() {
        let mut image = base();
        image["containers"][0]["image"] = json!("nginx:2");
        let mut added = base();
        added["tolerations"] = json!([
            {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 99},
            {"key": "new", "operator": "Exists"}
        ]);
        let mut removed = base();
        removed["tolerations"] = json!([]);
        let mut port = base();
        port["containers"][0]["ports"][0]["containerPort"] = json!(8080);
        let mut more = base();
        more["containers"] = json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]);
        let mut deadline = base();
        deadline["activeDeadlineSeconds"] = json!(100);
        let mut empty_lists = base();
        empty_lists["volumes"] = json!([]);

        let forbidden = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  spec.containers[0].ports[0].containerPort: 80 -> 8080";
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (base(), vec![]),
            (image, vec![]),
            (added, vec![]),
            (deadline, vec![]),
            (empty_lists, vec![]),
            (
                removed,
                vec![
                    "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
                ],
            ),
            (port, vec![forbidden]),
            (
                more,
                vec!["spec.containers: Forbidden: pod updates may not add or remove containers"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn deadline_may_only_shrink() {
        let mut old = base();
        old["activeDeadlineSeconds"] = json!(50);
        let mut new = base();
        new["activeDeadlineSeconds"] = json!(60);
        let got: Vec<String> = spec_update(&spec(new), &spec(old.clone()))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"
            ]
        );
        let got: Vec<String> = spec_update(&spec(base()), &spec(old))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ]
        );
    }
}
