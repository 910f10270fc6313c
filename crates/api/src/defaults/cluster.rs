//! Namespace, Node and Secret defaults, as upstream's `SetDefaults_Namespace`,
//! `SetDefaults_NamespaceStatus`, `SetDefaults_NodeStatus` and `SetDefaults_Secret`. The
//! namespace strategy's `kubernetes` finalizer is not a default: the API server adds it
//! on create only, so that the namespace controller can clear it.

use k8s_openapi::api::core::v1::{Namespace, Node, Secret};

use super::pod::fill;

/// The label every namespace carries with its own name.
const METADATA_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespace defaults: phase Active and the `kubernetes.io/metadata.name` label.
pub fn namespace(ns: &mut Namespace) {
    let status = ns.status.get_or_insert_with(Default::default);
    fill(&mut status.phase, "Active");
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .entry(METADATA_NAME_LABEL.to_string())
            .or_insert(name);
    }
}

/// Upstream's `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub fn node(n: &mut Node) {
    if let Some(status) = n.status.as_mut()
        && status.allocatable.is_none()
    {
        status.allocatable.clone_from(&status.capacity);
    }
}

/// Upstream's `SetDefaults_Secret`.
pub fn secret(s: &mut Secret) {
    fill(&mut s.type_, "Opaque");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn namespace_defaults() {
        let mut ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
        namespace(&mut ns);
        let out = serde_json::to_value(&ns).expect("serialize");
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
                "status": {"phase": "Active"}
            })
        );
        let mut ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "kept"}},
            "spec": {"finalizers": ["example.com/x"]}, "status": {"phase": "Terminating"}
        }))
        .expect("ns");
        namespace(&mut ns);
        let out = serde_json::to_value(&ns).expect("serialize");
        assert_eq!(out["spec"]["finalizers"], json!(["example.com/x"]));
        assert_eq!(out["status"]["phase"], json!("Terminating"));
        assert_eq!(
            out["metadata"]["labels"]["kubernetes.io/metadata.name"],
            json!("kept")
        );
    }

    #[test]
    fn node_and_secret_defaults() {
        let mut n: Node =
            serde_json::from_value(json!({"status": {"capacity": {"cpu": "4"}}})).expect("node");
        node(&mut n);
        assert_eq!(
            serde_json::to_value(&n).expect("serialize")["status"]["allocatable"],
            json!({"cpu": "4"})
        );
        let mut n: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).expect("node");
        node(&mut n);
        assert!(
            serde_json::to_value(&n)
                .expect("serialize")
                .get("status")
                .is_none()
        );

        let mut s: Secret =
            serde_json::from_value(json!({"metadata": {"name": "s"}})).expect("secret");
        secret(&mut s);
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
    }
}
