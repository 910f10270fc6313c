//! NodeResourcesBalancedAllocation: favours nodes whose cpu and memory would be used in
//! similar proportions after placing the pod.

use std::sync::Arc;

use super::node_resources_least_allocated::cpu_memory;
use crate::framework::{MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin};

/// Upstream's `balancedResourceScorer`: `(1 - std) * 100` over the fractions of each
/// resource in use (capped at 1); with two resources the deviation is half their
/// difference.
pub fn balanced_score(pairs: &[(i64, i64)]) -> i64 {
    let fractions: Vec<f64> = pairs
        .iter()
        .filter(|(_, alloc)| *alloc != 0)
        .map(|(req, alloc)| (*req as f64 / *alloc as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            let var = fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64;
            var.sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// The NodeResourcesBalancedAllocation plugin.
#[derive(Debug, Default, Clone)]
pub struct NodeResourcesBalancedAllocation;

impl NodeResourcesBalancedAllocation {
    /// The registered name.
    pub const NAME: &'static str = "NodeResourcesBalancedAllocation";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Upstream scores balance on the real requests, not the scoring defaults.
    fn score(&self, pod: &PodInfo, node: &NodeInfo, _all: &[Arc<NodeInfo>]) -> i64 {
        balanced_score(&cpu_memory(pod, node, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, container};

    #[test]
    fn score() {
        let cases = [
            (
                // cpu 3000/4000 = 0.75, memory 5000/10000 = 0.5: std 0.125 → 87.
                "upstream example",
                PodBuilder::new("p").container(container("3", "5000")),
                NodeBuilder::new("n").capacity("4", "10000", 110),
                vec![],
                87,
            ),
            (
                "perfectly balanced",
                PodBuilder::new("p").container(container("2", "5000")),
                NodeBuilder::new("n").capacity("4", "10000", 110),
                vec![],
                100,
            ),
            (
                "fractions are capped at 1",
                PodBuilder::new("p").container(container("8", "0")),
                NodeBuilder::new("n").capacity("4", "10000", 110),
                vec![],
                50,
            ),
            (
                "existing pods count",
                PodBuilder::new("p").container(container("1", "0")),
                NodeBuilder::new("n").capacity("4", "10000", 110),
                vec![
                    PodBuilder::new("e")
                        .container(container("1", "5000"))
                        .build(),
                ],
                100,
            ),
            (
                "no allocatable",
                PodBuilder::new("p").container(container("1", "1")),
                NodeBuilder::new("n"),
                vec![],
                100,
            ),
        ];
        for (name, pod, node, pods, want) in cases {
            let got =
                NodeResourcesBalancedAllocation.score(&pod.info(), &node.info_with(pods), &[]);
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(balanced_score(&[(1, 2), (1, 4), (3, 4)]), 79);
    }
}
