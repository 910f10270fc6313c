//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use std::sync::Arc;

use crate::framework::{FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

/// Upstream's `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// The NodeName plugin.
#[derive(Debug, Default, Clone)]
pub struct NodeName;

impl NodeName {
    /// The registered name.
    pub const NAME: &'static str = "NodeName";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let wanted = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if wanted.is_empty() || wanted == node.name() {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
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
            ("no node name", PodBuilder::new("p"), true),
            ("same node", PodBuilder::new("p").node_name("n1"), true),
            ("other node", PodBuilder::new("p").node_name("n2"), false),
        ];
        for (name, pod, ok) in cases {
            let s = NodeName.filter(&pod.info(), &NodeBuilder::new("n1").info());
            assert_eq!(s.is_success(), ok, "{name}");
            if !ok {
                assert_eq!(s.reasons, vec![ERR_REASON], "{name}");
            }
        }
    }
}
