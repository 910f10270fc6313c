//! Workload defaults, as upstream's apps/v1 `SetDefaults_Deployment` and
//! `SetDefaults_ReplicaSet`, plus the pod template defaults inside them.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, RollingUpdateDeployment};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{fill, pod_template};

/// Upstream's `SetDefaults_Deployment`.
pub fn deployment(d: &mut Deployment) {
    let spec = &mut d.spec;
    if spec.replicas.is_none() {
        spec.replicas = Some(1);
    }
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    fill(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        for field in [&mut rolling.max_unavailable, &mut rolling.max_surge] {
            if field.is_none() {
                *field = Some(IntOrString::String("25%".to_string()));
            }
        }
    }
    if spec.revision_history_limit.is_none() {
        spec.revision_history_limit = Some(10);
    }
    if spec.progress_deadline_seconds.is_none() {
        spec.progress_deadline_seconds = Some(600);
    }
    pod_template(&mut spec.template);
}

/// Upstream's `SetDefaults_ReplicaSet`.
pub fn replica_set(rs: &mut ReplicaSet) {
    let spec = &mut rs.spec;
    if spec.replicas.is_none() {
        spec.replicas = Some(1);
    }
    pod_template(spec.template.get_or_insert_with(Default::default));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deployment_defaults() {
        let mut d: Deployment = serde_json::from_value(json!({
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
            }
        }))
        .expect("deployment");
        deployment(&mut d);
        let out = serde_json::to_value(&d).expect("serialize");
        let expected = [
            ("/spec/replicas", json!(1)),
            (
                "/spec/strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            ),
            ("/spec/revisionHistoryLimit", json!(10)),
            ("/spec/progressDeadlineSeconds", json!(600)),
            ("/spec/template/spec/restartPolicy", json!("Always")),
            (
                "/spec/template/spec/containers/0/imagePullPolicy",
                json!("Always"),
            ),
        ];
        for (pointer, want) in expected {
            assert_eq!(out.pointer(pointer), Some(&want), "{pointer}");
        }
    }

    #[test]
    fn recreate_gets_no_rolling_update_and_values_are_kept() {
        let mut d: Deployment = serde_json::from_value(json!({
            "spec": {"replicas": 0, "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 2,
                     "selector": {}, "template": {}}
        }))
        .expect("deployment");
        deployment(&mut d);
        let out = serde_json::to_value(&d).expect("serialize");
        assert_eq!(
            out.pointer("/spec/strategy"),
            Some(&json!({"type": "Recreate"}))
        );
        assert_eq!(out.pointer("/spec/replicas"), Some(&json!(0)));
        assert_eq!(out.pointer("/spec/revisionHistoryLimit"), Some(&json!(2)));
    }

    #[test]
    fn replica_set_defaults() {
        let mut rs: ReplicaSet = serde_json::from_value(json!({
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}
        }))
        .expect("rs");
        replica_set(&mut rs);
        let out = serde_json::to_value(&rs).expect("serialize");
        assert_eq!(out.pointer("/spec/replicas"), Some(&json!(1)));
        assert_eq!(
            out.pointer("/spec/template/spec/containers/0/imagePullPolicy"),
            Some(&json!("IfNotPresent"))
        );
    }
}
