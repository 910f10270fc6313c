//! NodeResourcesLeastAllocated: favours nodes with more of their cpu and memory left
//! after placing the pod (upstream's NodeResourcesFit `LeastAllocated` strategy, with
//! cpu and memory weighted 1 each).

use std::sync::Arc;

use crate::framework::{MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin};

/// (requested after placing the pod, allocatable) for cpu and memory, as upstream's
/// `calculateResourceAllocatableRequest`. With `use_requested`, the real requests;
/// otherwise those with the scoring defaults for unset cpu/memory.
pub(crate) fn cpu_memory(pod: &PodInfo, node: &NodeInfo, use_requested: bool) -> [(i64, i64); 2] {
    let (on_node, of_pod) = if use_requested {
        (node.requested(), &pod.requests)
    } else {
        (node.non_zero_requested(), &pod.non_zero_requests)
    };
    let alloc = node.allocatable();
    [
        (on_node.milli_cpu + of_pod.milli_cpu, alloc.milli_cpu),
        (on_node.memory + of_pod.memory, alloc.memory),
    ]
}

/// Upstream's `leastRequestedScore`: the unused share of capacity, scaled to 0..=100;
/// 0 when nothing is allocatable or the node would be over-committed.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// The NodeResourcesLeastAllocated plugin.
#[derive(Debug, Default, Clone)]
pub struct NodeResourcesLeastAllocated;

impl NodeResourcesLeastAllocated {
    /// The registered name.
    pub const NAME: &'static str = "NodeResourcesLeastAllocated";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for NodeResourcesLeastAllocated {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for NodeResourcesLeastAllocated {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// The weighted mean of per-resource scores over the resources the node has.
    fn score(&self, pod: &PodInfo, node: &NodeInfo, _all: &[Arc<NodeInfo>]) -> i64 {
        let mut total = 0;
        let mut weights = 0;
        for (requested, allocatable) in cpu_memory(pod, node, false) {
            if allocatable == 0 {
                continue;
            }
            total += least_requested_score(requested, allocatable);
            weights += 1;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, container};
    use k8s_openapi::api::core::v1::Container;

    #[test]
    fn score() {
        // Upstream's classic example: node 4000m/10000, pod 3000m/5000 on an empty node
        // gives cpu (4000-3000)*100/4000 = 25, memory (10000-5000)*100/10000 = 50.
        let cases = [
            (
                "upstream example",
                PodBuilder::new("p").container(container("3", "5000")),
                NodeBuilder::new("n").capacity("4", "10000", 110),
                vec![],
                37,
            ),
            (
                "existing pods count",
                PodBuilder::new("p").container(container("1", "2000")),
                NodeBuilder::new("n").capacity("4", "10000", 110),
                vec![
                    PodBuilder::new("e")
                        .container(container("1", "3000"))
                        .build(),
                ],
                50,
            ),
            (
                "best effort pod uses the defaults",
                PodBuilder::new("p").container(Container::default()),
                NodeBuilder::new("n").capacity("1", "400Mi", 110),
                vec![],
                // cpu (1000-100)*100/1000 = 90, memory (400-200)/400 = 50.
                70,
            ),
            (
                "over-committed resource scores 0",
                PodBuilder::new("p").container(container("5", "5000")),
                NodeBuilder::new("n").capacity("4", "10000", 110),
                vec![],
                25,
            ),
            (
                "no allocatable",
                PodBuilder::new("p").container(container("1", "1")),
                NodeBuilder::new("n"),
                vec![],
                0,
            ),
        ];
        for (name, pod, node, pods, want) in cases {
            let got = NodeResourcesLeastAllocated.score(&pod.info(), &node.info_with(pods), &[]);
            assert_eq!(got, want, "{name}");
        }
    }
}
