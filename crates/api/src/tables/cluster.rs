//! Nodes, namespaces and leases, as upstream's `printNode`, `printNamespace` and
//! `printLease`.
//!
//! - Node: NAME STATUS ROLES AGE VERSION | INTERNAL-IP EXTERNAL-IP OS-IMAGE
//!   KERNEL-VERSION CONTAINER-RUNTIME. STATUS is `Ready`, `NotReady` or `Unknown`
//!   (from the Ready condition), with `,SchedulingDisabled` for a cordoned node; ROLES
//!   come from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels.
//! - Namespace: NAME STATUS AGE.
//! - Lease: NAME HOLDER AGE.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Column, Printer, Row, age_cell, flag, items, name_cell, text};

pub(super) const NODE: Printer = Printer {
    columns: NODE_COLUMNS,
    row: node_row,
};

pub(super) const NAMESPACE: Printer = Printer {
    columns: NAMESPACE_COLUMNS,
    row: namespace_row,
};

pub(super) const LEASE: Printer = Printer {
    columns: LEASE_COLUMNS,
    row: lease_row,
};

const ADDRESSES_DOC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";

const NODE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    Column::age(),
    Column::new("Version", "string", "Kubelet Version reported by the node."),
    Column::new("Internal-IP", "string", ADDRESSES_DOC).wide(),
    Column::new("External-IP", "string", ADDRESSES_DOC).wide(),
    Column::new(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    )
    .wide(),
    Column::new(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    )
    .wide(),
    Column::new(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    )
    .wide(),
];

const NAMESPACE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "The status of the namespace"),
    Column::age(),
];

const LEASE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    Column::age(),
];

/// Labels naming a node's roles: `node-role.kubernetes.io/<role>` (any value) and
/// `kubernetes.io/role=<role>`.
const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

fn node_row(node: &Value, now: i64) -> Row {
    // Only the Ready condition counts; the last one of that type wins, as in
    // upstream's map of conditions.
    let ready = items(node, "/status/conditions")
        .iter()
        .rfind(|c| text(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if text(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if flag(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    for (key, value) in node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(role) = key.strip_prefix(ROLE_LABEL_PREFIX) {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == ROLE_LABEL {
            let role = value.as_str().unwrap_or("");
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };

    let info = |field: &str| match text(node, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    Row::cells(vec![
        name_cell(node),
        Value::from(status.join(",")),
        Value::from(roles),
        age_cell(node, now),
        Value::from(text(node, "/status/nodeInfo/kubeletVersion")),
        Value::from(address(node, "InternalIP")),
        Value::from(address(node, "ExternalIP")),
        Value::from(info("osImage")),
        Value::from(info("kernelVersion")),
        Value::from(info("containerRuntimeVersion")),
    ])
}

/// The node's first address of this type, or `<none>`.
fn address<'a>(node: &'a Value, kind: &str) -> &'a str {
    items(node, "/status/addresses")
        .iter()
        .find(|a| text(a, "/type") == kind)
        .map_or("<none>", |a| text(a, "/address"))
}

fn namespace_row(namespace: &Value, now: i64) -> Row {
    Row::cells(vec![
        name_cell(namespace),
        Value::from(text(namespace, "/status/phase")),
        age_cell(namespace, now),
    ])
}

fn lease_row(lease: &Value, now: i64) -> Row {
    Row::cells(vec![
        name_cell(lease),
        Value::from(text(lease, "/spec/holderIdentity")),
        age_cell(lease, now),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-01T10:00:00Z.
    const NOW: i64 = 1_714_557_600;

    fn node(labels: Value, unschedulable: bool, conditions: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "labels": labels, "creationTimestamp": "2024-04-20T10:00:00Z"},
            "spec": {"unschedulable": unschedulable},
            "status": {
                "conditions": conditions,
                "addresses": [
                    {"type": "Hostname", "address": "node-1"},
                    {"type": "InternalIP", "address": "192.168.1.10"},
                    {"type": "InternalIP", "address": "fd00::10"},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.31.0-mast", "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13",
                },
            },
        })
    }

    #[test]
    fn node_cases() {
        let ready = json!([
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
        ]);
        let tail = |status: &str, roles: &str| {
            json!([
                "node-1",
                status,
                roles,
                "11d",
                "v1.31.0-mast",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "containerd://1.7.13"
            ])
        };
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "ready worker",
                node(
                    json!({"kubernetes.io/hostname": "node-1"}),
                    false,
                    ready.clone(),
                ),
                tail("Ready", "<none>"),
            ),
            (
                "cordoned",
                node(json!({}), true, ready.clone()),
                tail("Ready,SchedulingDisabled", "<none>"),
            ),
            (
                "not ready",
                node(
                    json!({}),
                    false,
                    json!([{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]),
                ),
                tail("NotReady", "<none>"),
            ),
            (
                "kubelet stopped reporting",
                node(
                    json!({}),
                    false,
                    json!([{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]),
                ),
                tail("NotReady", "<none>"),
            ),
            (
                "no conditions yet, cordoned",
                node(json!({}), true, json!([])),
                tail("Unknown,SchedulingDisabled", "<none>"),
            ),
            (
                "roles from labels",
                node(
                    json!({
                        "node-role.kubernetes.io/control-plane": "",
                        "node-role.kubernetes.io/worker": "true",
                        "node-role.kubernetes.io/": "",
                        "kubernetes.io/role": "etcd",
                    }),
                    false,
                    ready.clone(),
                ),
                tail("Ready", "control-plane,etcd,worker"),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(Value::from(node_row(&input, NOW).cells), want, "{name}");
        }

        let bare = json!({"metadata": {"name": "bare"}, "status": {"addresses": [
            {"type": "ExternalIP", "address": "203.0.113.7"}]}});
        assert_eq!(
            Value::from(node_row(&bare, NOW).cells),
            json!([
                "bare",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "203.0.113.7",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ])
        );
    }

    #[test]
    fn namespace_and_lease_cases() {
        let ns = json!({"metadata": {"name": "shop", "creationTimestamp": "2024-05-01T07:30:00Z"},
            "status": {"phase": "Active"}});
        assert_eq!(
            Value::from(namespace_row(&ns, NOW).cells),
            json!(["shop", "Active", "150m"])
        );
        let ns = json!({"metadata": {"name": "old", "creationTimestamp": "2024-05-01T07:30:00Z",
            "deletionTimestamp": "2024-05-01T09:59:00Z"}, "status": {"phase": "Terminating"}});
        assert_eq!(namespace_row(&ns, NOW).cells[1], "Terminating");

        let lease = json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease",
            "creationTimestamp": "2024-05-01T09:58:20Z"},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
        assert_eq!(
            Value::from(lease_row(&lease, NOW).cells),
            json!(["node-1", "node-1", "100s"])
        );
        let free = json!({"metadata": {"name": "mast-controller-manager"}, "spec": {}});
        assert_eq!(
            Value::from(lease_row(&free, NOW).cells),
            json!(["mast-controller-manager", "", "<unknown>"])
        );
    }
}
