//! NodeReady: nodes whose Ready condition is not True take no new pods.
//!
//! Upstream leaves this to the node lifecycle controller, which taints such nodes with
//! `node.kubernetes.io/not-ready` (Ready False or missing) or
//! `node.kubernetes.io/unreachable` (Ready Unknown) with effect NoSchedule, and the
//! scheduler then rejects them through TaintToleration. This plugin applies the same
//! taint virtually, so the behaviour (and the message, and DaemonSet-style tolerations)
//! match upstream whether or not the taint has been written yet.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Taint;

use super::taint_toleration::{pod_tolerations, tolerations_tolerate, untolerated_reason};
use crate::framework::{FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

/// The taint for a node that is not ready.
pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint for a node whose readiness is unknown.
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// The NodeReady plugin.
#[derive(Debug, Default, Clone)]
pub struct NodeReady;

impl NodeReady {
    /// The registered name.
    pub const NAME: &'static str = "NodeReady";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

/// The taint key a node's Ready condition implies, if it is not True.
fn implied_taint(node: &NodeInfo) -> Option<&'static str> {
    let ready = node
        .node()
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    match ready {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_NODE_UNREACHABLE),
        _ => Some(TAINT_NODE_NOT_READY),
    }
}

impl Plugin for NodeReady {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeReady {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(key) = implied_taint(node) else {
            return Status::success();
        };
        let taint = Taint {
            key: key.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if tolerations_tolerate(pod_tolerations(pod), &taint) {
            Status::success()
        } else {
            Status::unresolvable(untolerated_reason(&taint))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn filter() {
        let cases = [
            ("ready", PodBuilder::new("p"), Some("True"), None),
            (
                "not ready",
                PodBuilder::new("p"),
                Some("False"),
                Some("node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
            ),
            (
                "no conditions yet",
                PodBuilder::new("p"),
                None,
                Some("node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
            ),
            (
                "unknown",
                PodBuilder::new("p"),
                Some("Unknown"),
                Some("node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
            ),
            (
                "tolerated like a DaemonSet pod",
                PodBuilder::new("p").toleration(TAINT_NODE_NOT_READY, "Exists", "", ""),
                Some("False"),
                None,
            ),
        ];
        for (name, pod, ready, want) in cases {
            let s = NodeReady.filter(&pod.info(), &NodeBuilder::new("n").ready(ready).info());
            match want {
                None => assert!(s.is_success(), "{name}"),
                Some(msg) => assert_eq!(s.reasons, vec![msg.to_string()], "{name}"),
            }
        }
    }
}
