//! Deployments and ReplicaSets, as upstream's apps validation: a non-empty selector that
//! matches the pod template's labels, a valid template whose pods restart Always, sane
//! replica and rollout settings, and (apps/v1) an immutable selector.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::errors::{BadValue, FieldError};
use super::formats;
use super::meta::{self, FIELD_IMMUTABLE, MetaRules, nonnegative};
use super::path::Path;
use super::pod;
use crate::selectors::LabelSelector;

/// How workload metadata is checked.
pub const WORKLOAD_META: MetaRules = MetaRules {
    name: formats::name_is_dns_subdomain,
    namespaced: Some(true),
    core_finalizers: true,
};

/// Upstream's `ValidateLabelSelector` (values must be label values too).
pub fn label_selector(selector: &ApiSelector, path: &Path) -> Vec<FieldError> {
    let mut errs = meta::labels(selector.match_labels.as_ref(), &path.child("matchLabels"));
    for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
        let idx = path.child("matchExpressions").index(i);
        let values = expr.values.as_deref().unwrap_or_default();
        match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                &idx.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                &idx.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                &idx.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errs.extend(meta::label_name(&expr.key, &idx.child("key")));
        for (j, v) in values.iter().enumerate() {
            for msg in formats::is_label_value(v) {
                errs.push(FieldError::invalid(&idx.child("values").index(j), v, &msg));
            }
        }
    }
    errs
}

/// The selector and template checks shared by Deployments and ReplicaSets. `raw_spec`
/// tells an absent selector from an empty one.
fn selector_and_template(
    selector: &ApiSelector,
    template: &PodTemplateSpec,
    raw_spec: Option<&Value>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let selector_path = path.child("selector");
    let present = raw_spec.and_then(|s| s.get("selector")).is_some();
    if !present {
        errs.push(FieldError::required(&selector_path, ""));
    } else {
        errs.extend(label_selector(selector, &selector_path));
        let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && selector
                .match_expressions
                .as_ref()
                .is_none_or(|e| e.is_empty());
        if empty {
            // Upstream says "deployment" for ReplicaSets too.
            errs.push(FieldError::invalid(
                &selector_path,
                BadValue::json(selector),
                "empty selector is invalid for deployment",
            ));
        }
    }
    let template_path = path.child("template");
    let parsed = if present {
        LabelSelector::from_api(selector).map(Some)
    } else {
        // Upstream turns an absent selector into one that matches nothing.
        Ok(None)
    };
    match parsed {
        Err(_) => errs.push(FieldError::invalid(
            &selector_path,
            BadValue::json(selector),
            "invalid label selector",
        )),
        Ok(parsed) => {
            let labels = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let matches = match &parsed {
                Some(s) => s.is_empty() || s.matches(&labels),
                None => false,
            };
            if !matches {
                errs.push(FieldError::invalid(
                    &template_path.child("metadata").child("labels"),
                    BadValue::json(&labels),
                    "`selector` does not match template `labels`",
                ));
            }
            let raw_template = raw_spec.and_then(|s| s.get("template"));
            errs.extend(pod::pod_template(template, raw_template, &template_path));
            let spec = template.spec.as_ref();
            let restart = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
            if restart != "Always" {
                errs.push(FieldError::not_supported(
                    &template_path.child("spec").child("restartPolicy"),
                    restart,
                    &["Always"],
                ));
            }
            if spec.and_then(|s| s.active_deadline_seconds).is_some() {
                errs.push(FieldError::forbidden(
                    &template_path.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicaSet is not Supported",
                ));
            }
        }
    }
    errs
}

/// The value of an int-or-percent, `None` for a malformed percent string.
fn percent(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::String(s) => formats::percent_value(s),
        IntOrString::Int(_) => None,
    }
}

/// Upstream's `getIntOrPercentValue`: malformed strings count as 0.
fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(s) => percent(v).unwrap_or_else(|| s.parse().unwrap_or(0)),
    }
}

/// How upstream prints an int-or-string: through its `String()`, unquoted.
fn int_or_string_value(v: &IntOrString) -> BadValue {
    match v {
        IntOrString::Int(n) => BadValue(n.to_string()),
        IntOrString::String(s) => BadValue(s.clone()),
    }
}

/// Upstream's `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: &IntOrString, path: &Path) -> Vec<FieldError> {
    match v {
        IntOrString::String(s) => formats::is_valid_percent(s)
            .into_iter()
            .map(|msg| FieldError::invalid(path, int_or_string_value(v), &msg))
            .collect(),
        IntOrString::Int(n) => nonnegative(i64::from(*n), path),
    }
}

/// Upstream's `ValidateDeploymentStrategy`.
fn strategy(strategy: Option<&DeploymentStrategy>, path: &Path) -> Vec<FieldError> {
    let empty = DeploymentStrategy::default();
    let strategy = strategy.unwrap_or(&empty);
    let mut errs = Vec::new();
    let rolling_path = path.child("rollingUpdate");
    match strategy.type_.as_deref().unwrap_or("") {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    &rolling_path,
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(
                &rolling_path,
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let zero = IntOrString::Int(0);
                let unavailable = ru.max_unavailable.as_ref().unwrap_or(&zero);
                let surge = ru.max_surge.as_ref().unwrap_or(&zero);
                let unavailable_path = rolling_path.child("maxUnavailable");
                errs.extend(positive_int_or_percent(unavailable, &unavailable_path));
                errs.extend(positive_int_or_percent(
                    surge,
                    &rolling_path.child("maxSurge"),
                ));
                if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
                    errs.push(FieldError::invalid(
                        &unavailable_path,
                        int_or_string_value(unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if percent(unavailable).is_some_and(|p| p > 100) {
                    errs.push(FieldError::invalid(
                        &unavailable_path,
                        int_or_string_value(unavailable),
                        "must not be greater than 100%",
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// Upstream's `ValidateDeployment`.
pub fn deployment(d: &Deployment, raw: &Value) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&d.metadata, &WORKLOAD_META);
    let path = Path::new("spec");
    let spec = &d.spec;
    errs.extend(nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
    ));
    errs.extend(selector_and_template(
        &spec.selector,
        &spec.template,
        raw.get("spec"),
        &path,
    ));
    errs.extend(strategy(spec.strategy.as_ref(), &path.child("strategy")));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(nonnegative(
        i64::from(min_ready),
        &path.child("minReadySeconds"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(nonnegative(
            i64::from(limit),
            &path.child("revisionHistoryLimit"),
        ));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let p = path.child("progressDeadlineSeconds");
        errs.extend(nonnegative(i64::from(deadline), &p));
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                &p,
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// Upstream's `ValidateReplicaSet`.
pub fn replica_set(rs: &ReplicaSet, raw: &Value) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&rs.metadata, &WORKLOAD_META);
    let path = Path::new("spec");
    let spec = &rs.spec;
    errs.extend(nonnegative(
        i64::from(spec.replicas.unwrap_or(0)),
        &path.child("replicas"),
    ));
    errs.extend(nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    ));
    let template = spec.template.clone().unwrap_or_default();
    errs.extend(selector_and_template(
        &spec.selector,
        &template,
        raw.get("spec"),
        &path,
    ));
    errs
}

/// apps/v1 forbids changing the selector.
pub fn selector_unchanged(new: &ApiSelector, old: &ApiSelector) -> Vec<FieldError> {
    let normal = |s: &ApiSelector| {
        let labels = s.match_labels.clone().unwrap_or_default();
        let exprs = s.match_expressions.clone().unwrap_or_default();
        (labels, exprs)
    };
    if normal(new) == normal(old) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            &Path::new("spec").child("selector"),
            BadValue::json(new),
            FIELD_IMMUTABLE,
        )]
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(labels: Value) -> Value {
        json!({
            "metadata": {"labels": labels},
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx",
                    "imagePullPolicy": "Always", "terminationMessagePolicy": "File"
                }],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "terminationGracePeriodSeconds": 30
            }
        })
    }

    fn deployment_json() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": template(json!({"app": "web"})),
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600
            }
        })
    }

    fn check(raw: Value) -> Vec<String> {
        let d: Deployment = serde_json::from_value(raw.clone()).expect("deployment");
        deployment(&d, &raw)
            .iter()
            .map(FieldError::message)
            .collect()
    }

    fn set(mut raw: Value, pointer: &str, value: Value) -> Value {
        if let Some(slot) = raw.pointer_mut(pointer) {
            *slot = value;
        }
        raw
    }

    #[test]
    fn deployment_cases() {
        let mut no_selector = deployment_json();
        if let Some(spec) = no_selector["spec"].as_object_mut() {
            spec.remove("selector");
        }
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (deployment_json(), vec![]),
            (
                set(
                    deployment_json(),
                    "/spec/selector/matchLabels/app",
                    json!("db"),
                ),
                vec![
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                no_selector,
                vec![
                    "spec.selector: Required value",
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                set(deployment_json(), "/spec/selector", json!({})),
                vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
            ),
            (
                set(deployment_json(), "/spec/replicas", json!(-1)),
                vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                set(
                    deployment_json(),
                    "/spec/template/spec/restartPolicy",
                    json!("Never"),
                ),
                vec![
                    "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                ],
            ),
            (
                set(deployment_json(), "/spec/strategy/type", json!("BlueGreen")),
                vec![
                    "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\"",
                ],
            ),
            (
                set(
                    deployment_json(),
                    "/spec/strategy/rollingUpdate",
                    json!({"maxSurge": 0, "maxUnavailable": "0%"}),
                ),
                vec![
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0",
                ],
            ),
            (
                set(
                    deployment_json(),
                    "/spec/strategy/rollingUpdate/maxUnavailable",
                    json!("150%"),
                ),
                vec![
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 150%: must not be greater than 100%",
                ],
            ),
            (
                set(
                    deployment_json(),
                    "/spec/strategy/rollingUpdate/maxSurge",
                    json!("lots"),
                ),
                vec![
                    "spec.strategy.rollingUpdate.maxSurge: Invalid value: lots: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ],
            ),
            (
                set(
                    deployment_json(),
                    "/spec/strategy",
                    json!({"type": "Recreate", "rollingUpdate": {}}),
                ),
                vec![
                    "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
                ],
            ),
            (
                set(deployment_json(), "/spec/progressDeadlineSeconds", json!(0)),
                vec![
                    "spec.progressDeadlineSeconds: Invalid value: 0: must be greater than minReadySeconds",
                ],
            ),
            (
                set(deployment_json(), "/spec/revisionHistoryLimit", json!(-2)),
                vec![
                    "spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0",
                ],
            ),
            (
                set(
                    deployment_json(),
                    "/spec/template/spec/containers/0/image",
                    json!(""),
                ),
                vec!["spec.template.spec.containers[0].image: Required value"],
            ),
            (
                set(
                    deployment_json(),
                    "/spec/selector",
                    json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
                ),
                vec![
                    "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                    "spec.selector: Invalid value: {\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\"}]}: invalid label selector",
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn replica_sets_share_the_rules() {
        let raw = json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template(json!({"app": "other"}))}
        });
        let rs: ReplicaSet = serde_json::from_value(raw.clone()).expect("rs");
        let got: Vec<String> = replica_set(&rs, &raw)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
            ]
        );
    }

    #[test]
    fn selector_is_immutable() {
        let a: ApiSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "a"}})).expect("a");
        let b: ApiSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "b"}})).expect("b");
        assert!(selector_unchanged(&a, &a.clone()).is_empty());
        let got: Vec<String> = selector_unchanged(&b, &a)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"b\"}}: field is immutable"
            ]
        );
    }
}
