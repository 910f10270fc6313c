//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that
//! tolerate `node.kubernetes.io/unschedulable:NoSchedule`.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Taint;

use super::taint_toleration::{pod_tolerations, tolerations_tolerate};
use crate::framework::{FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

/// The taint key that stands for `spec.unschedulable`.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Upstream's `ErrReasonUnschedulable`.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";

/// The NodeUnschedulable plugin.
#[derive(Debug, Default, Clone)]
pub struct NodeUnschedulable;

impl NodeUnschedulable {
    /// The registered name.
    pub const NAME: &'static str = "NodeUnschedulable";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let cordoned = node
            .node()
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Status::success();
        }
        let taint = Taint {
            key: TAINT_NODE_UNSCHEDULABLE.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if tolerations_tolerate(pod_tolerations(pod), &taint) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn filter() {
        let cases = [
            (
                "schedulable node",
                PodBuilder::new("p"),
                NodeBuilder::new("n"),
                true,
            ),
            (
                "cordoned node",
                PodBuilder::new("p"),
                NodeBuilder::new("n").unschedulable(),
                false,
            ),
            (
                "tolerates the unschedulable taint",
                PodBuilder::new("p").toleration(
                    TAINT_NODE_UNSCHEDULABLE,
                    "Exists",
                    "",
                    "NoSchedule",
                ),
                NodeBuilder::new("n").unschedulable(),
                true,
            ),
            (
                "tolerates everything",
                PodBuilder::new("p").toleration("", "Exists", "", ""),
                NodeBuilder::new("n").unschedulable(),
                true,
            ),
            (
                "tolerates only NoExecute",
                PodBuilder::new("p").toleration(
                    TAINT_NODE_UNSCHEDULABLE,
                    "Exists",
                    "",
                    "NoExecute",
                ),
                NodeBuilder::new("n").unschedulable(),
                false,
            ),
        ];
        for (name, pod, node, ok) in cases {
            let s = NodeUnschedulable.filter(&pod.info(), &node.info());
            assert_eq!(s.is_success(), ok, "{name}");
            if !ok {
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                assert_eq!(s.reasons, vec![ERR_REASON_UNSCHEDULABLE], "{name}");
            }
        }
    }
}
