//! Deployments and ReplicaSets, as upstream's `printDeployment` and `printReplicaSet`.
//!
//! - Deployment: NAME READY UP-TO-DATE AVAILABLE AGE | CONTAINERS IMAGES SELECTOR,
//!   READY being `readyReplicas/spec.replicas`.
//! - ReplicaSet: NAME DESIRED CURRENT READY AGE | CONTAINERS IMAGES SELECTOR.
//!
//! The two print their selectors slightly differently upstream: a Deployment's is the
//! bare selector string ("" when empty, `<invalid>` when it does not convert), a
//! ReplicaSet's goes through `FormatLabelSelector` (`<none>`, `<error>`).

use serde_json::Value;

use super::format::{format_label_selector, selector_string};
use super::{
    CONTAINERS_DOC, Column, IMAGES_DOC, Printer, Row, age_cell, container_cells, int, name_cell,
};

pub(super) const DEPLOYMENT: Printer = Printer {
    columns: DEPLOYMENT_COLUMNS,
    row: deployment_row,
};

pub(super) const REPLICA_SET: Printer = Printer {
    columns: REPLICA_SET_COLUMNS,
    row: replica_set_row,
};

const DEPLOYMENT_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new(
        "Up-to-date",
        "string",
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
    ),
    Column::new(
        "Available",
        "string",
        "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DOC).wide(),
    Column::new("Images", "string", IMAGES_DOC).wide(),
    Column::new(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.",
    )
    .wide(),
];

const REPLICA_SET_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Desired",
        "integer",
        "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    ),
    Column::new(
        "Current",
        "integer",
        "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DOC).wide(),
    Column::new("Images", "string", IMAGES_DOC).wide(),
    Column::new(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    )
    .wide(),
];

fn deployment_row(deployment: &Value, now: i64) -> Row {
    // An absent spec.replicas converts to 0 upstream (defaulting has set it by then).
    let desired = int(deployment, "/spec/replicas");
    let ready = int(deployment, "/status/readyReplicas");
    let (containers, images) = container_cells(template_spec(deployment));
    let selector = selector_string(deployment.pointer("/spec/selector"))
        .unwrap_or_else(|| "<invalid>".to_string());
    Row::cells(vec![
        name_cell(deployment),
        Value::from(format!("{ready}/{desired}")),
        Value::from(int(deployment, "/status/updatedReplicas")),
        Value::from(int(deployment, "/status/availableReplicas")),
        age_cell(deployment, now),
        containers,
        images,
        Value::from(selector),
    ])
}

fn replica_set_row(rs: &Value, now: i64) -> Row {
    let (containers, images) = container_cells(template_spec(rs));
    Row::cells(vec![
        name_cell(rs),
        Value::from(int(rs, "/spec/replicas")),
        Value::from(int(rs, "/status/replicas")),
        Value::from(int(rs, "/status/readyReplicas")),
        age_cell(rs, now),
        containers,
        images,
        Value::from(format_label_selector(rs.pointer("/spec/selector"))),
    ])
}

fn template_spec(workload: &Value) -> &Value {
    workload
        .pointer("/spec/template/spec")
        .unwrap_or(&Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-01T10:00:00Z.
    const NOW: i64 = 1_714_557_600;

    fn spec(replicas: Value, selector: Value) -> Value {
        json!({
            "replicas": replicas,
            "selector": selector,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.27"},
                    {"name": "sidecar", "image": "busybox:1.36"},
                ]},
            },
        })
    }

    #[test]
    fn deployment_cases() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "mid-rollout",
                json!({
                    "metadata": {"name": "web", "creationTimestamp": "2024-04-29T07:00:00Z"},
                    "spec": spec(json!(3), json!({"matchLabels": {"app": "web"}})),
                    "status": {"replicas": 4, "updatedReplicas": 2, "readyReplicas": 3,
                               "availableReplicas": 3, "unavailableReplicas": 1},
                }),
                json!([
                    "web",
                    "3/3",
                    2,
                    3,
                    "2d3h",
                    "nginx,sidecar",
                    "nginx:1.27,busybox:1.36",
                    "app=web"
                ]),
            ),
            (
                "just created, no status",
                json!({
                    "metadata": {"name": "api", "creationTimestamp": "2024-05-01T09:59:58Z"},
                    "spec": spec(json!(2), json!({"matchLabels": {"app": "api", "tier": "backend"},
                        "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]})),
                }),
                json!([
                    "api",
                    "0/2",
                    0,
                    0,
                    "2s",
                    "nginx,sidecar",
                    "nginx:1.27,busybox:1.36",
                    "app=api,tier=backend,track notin (canary)"
                ]),
            ),
            (
                "scaled to zero, empty selector",
                json!({
                    "metadata": {"name": "idle", "creationTimestamp": "2024-05-01T09:00:00Z"},
                    "spec": spec(json!(0), json!({})),
                    "status": {},
                }),
                json!([
                    "idle",
                    "0/0",
                    0,
                    0,
                    "60m",
                    "nginx,sidecar",
                    "nginx:1.27,busybox:1.36",
                    ""
                ]),
            ),
            (
                "selector that does not convert",
                json!({
                    "metadata": {"name": "odd"},
                    "spec": spec(json!(1), json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})),
                }),
                json!([
                    "odd",
                    "0/1",
                    0,
                    0,
                    "<unknown>",
                    "nginx,sidecar",
                    "nginx:1.27,busybox:1.36",
                    "<invalid>"
                ]),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(
                Value::from(deployment_row(&input, NOW).cells),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn replica_set_cases() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "new replica set scaling up",
                json!({
                    "metadata": {"name": "web-7d4b9c", "creationTimestamp": "2024-05-01T09:57:00Z"},
                    "spec": spec(json!(3), json!({"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c"}})),
                    "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1},
                }),
                json!([
                    "web-7d4b9c",
                    3,
                    2,
                    1,
                    "3m",
                    "nginx,sidecar",
                    "nginx:1.27,busybox:1.36",
                    "app=web,pod-template-hash=7d4b9c"
                ]),
            ),
            (
                "old replica set scaled down",
                json!({
                    "metadata": {"name": "web-5f6a1b", "creationTimestamp": "2024-04-01T10:00:00Z"},
                    "spec": spec(json!(0), json!({})),
                    "status": {"replicas": 0},
                }),
                json!([
                    "web-5f6a1b",
                    0,
                    0,
                    0,
                    "30d",
                    "nginx,sidecar",
                    "nginx:1.27,busybox:1.36",
                    "<none>"
                ]),
            ),
            (
                "selector that does not convert",
                json!({
                    "metadata": {"name": "odd"},
                    "spec": spec(json!(1), json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})),
                }),
                json!([
                    "odd",
                    1,
                    0,
                    0,
                    "<unknown>",
                    "nginx,sidecar",
                    "nginx:1.27,busybox:1.36",
                    "<error>"
                ]),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(
                Value::from(replica_set_row(&input, NOW).cells),
                want,
                "{name}"
            );
        }
    }
}
