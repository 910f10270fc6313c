//! NodePorts: a pod's host ports must be free on the node.

use std::sync::Arc;

use crate::framework::{FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

/// Upstream's `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The NodePorts plugin.
#[derive(Debug, Default, Clone)]
pub struct NodePorts;

impl NodePorts {
    /// The registered name.
    pub const NAME: &'static str = "NodePorts";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let used = node.used_ports();
        if pod.host_ports.iter().any(|hp| used.conflicts(hp)) {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
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
        let existing = |ip: &str, proto: &str, port: i32| {
            PodBuilder::new("existing")
                .uid("e")
                .host_port(ip, proto, port)
                .build()
        };
        let cases = [
            ("no ports", PodBuilder::new("p"), vec![], true),
            (
                "free port",
                PodBuilder::new("p").host_port("", "", 8080),
                vec![existing("", "", 80)],
                true,
            ),
            (
                "same port",
                PodBuilder::new("p").host_port("", "TCP", 80),
                vec![existing("", "", 80)],
                false,
            ),
            (
                "same port other protocol",
                PodBuilder::new("p").host_port("", "UDP", 80),
                vec![existing("", "TCP", 80)],
                true,
            ),
            (
                "specific ip against wildcard in use",
                PodBuilder::new("p").host_port("127.0.0.1", "TCP", 80),
                vec![existing("0.0.0.0", "TCP", 80)],
                false,
            ),
            (
                "wildcard against specific ip in use",
                PodBuilder::new("p").host_port("", "TCP", 80),
                vec![existing("127.0.0.1", "TCP", 80)],
                false,
            ),
            (
                "different specific ips",
                PodBuilder::new("p").host_port("127.0.0.2", "TCP", 80),
                vec![existing("127.0.0.1", "TCP", 80)],
                true,
            ),
        ];
        for (name, pod, pods, ok) in cases {
            let s = NodePorts.filter(&pod.info(), &NodeBuilder::new("n").info_with(pods));
            assert_eq!(s.is_success(), ok, "{name}");
            if !ok {
                assert_eq!(s.code, Code::Unschedulable, "{name}");
                assert_eq!(s.reasons, vec![ERR_REASON], "{name}");
            }
        }
    }
}
