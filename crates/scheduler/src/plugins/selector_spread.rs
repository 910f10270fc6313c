//! SelectorSpread: spreads pods of the same controller (ReplicaSet, StatefulSet, …)
//! over nodes (hostname topology): a node with fewer of the controller's pods scores
//! higher, normalised as upstream's SelectorSpread.
//!
//! Upstream matched pods by the selectors of the Services and controllers selecting the
//! pod; here the pod's controller owner reference identifies its siblings, which needs
//! no Service or controller listers and agrees for the usual case of one controller.

use std::sync::Arc;

use crate::framework::{MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin};

/// The UID of the pod's controller, if it has one.
fn controller_uid(pod: &PodInfo) -> Option<&str> {
    pod.pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// The SelectorSpread plugin.
#[derive(Debug, Default, Clone)]
pub struct SelectorSpread;

impl SelectorSpread {
    /// The registered name.
    pub const NAME: &'static str = "SelectorSpread";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for SelectorSpread {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl ScorePlugin for SelectorSpread {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// How many pods on the node share the pod's namespace and controller, not
    /// counting pods being deleted; 0 for a pod without a controller.
    fn score(&self, pod: &PodInfo, node: &NodeInfo, _all: &[Arc<NodeInfo>]) -> i64 {
        let Some(owner) = controller_uid(pod) else {
            return 0;
        };
        node.pods()
            .iter()
            .filter(|p| p.namespace() == pod.namespace())
            .filter(|p| p.pod.metadata.deletion_timestamp.is_none())
            .filter(|p| controller_uid(p) == Some(owner))
            .count() as i64
    }

    /// `100 * (max - count) / max`; every node gets 100 when no node has a sibling.
    fn normalize(&self, scores: &mut [(String, i64)]) {
        let max = scores.iter().map(|(_, s)| *s).max().unwrap_or(0);
        for (_, s) in scores.iter_mut() {
            let f = if max > 0 {
                MAX_NODE_SCORE as f64 * ((max - *s) as f64 / max as f64)
            } else {
                MAX_NODE_SCORE as f64
            };
            *s = f as i64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn score_and_normalize() {
        let sibling = |n: &str| {
            PodBuilder::new(n)
                .uid(n)
                .owner("ReplicaSet", "rs-1")
                .build()
        };
        let other = |n: &str| {
            PodBuilder::new(n)
                .uid(n)
                .owner("ReplicaSet", "rs-2")
                .build()
        };
        let elsewhere = |n: &str| {
            PodBuilder::new(n)
                .uid(n)
                .namespace("other")
                .owner("ReplicaSet", "rs-1")
                .build()
        };
        let nodes = [
            NodeBuilder::new("empty").info_with(vec![]),
            NodeBuilder::new("one").info_with(vec![sibling("a"), other("b"), elsewhere("c")]),
            NodeBuilder::new("three").info_with(vec![sibling("d"), sibling("e"), sibling("f")]),
        ];
        let cases = [
            (
                "spreads siblings",
                PodBuilder::new("p").owner("ReplicaSet", "rs-1").info(),
                vec![0, 1, 3],
                vec![100, 66, 0],
            ),
            (
                "no siblings anywhere",
                PodBuilder::new("p").owner("ReplicaSet", "rs-9").info(),
                vec![0, 0, 0],
                vec![100, 100, 100],
            ),
            (
                "no controller",
                PodBuilder::new("p").info(),
                vec![0, 0, 0],
                vec![100, 100, 100],
            ),
        ];
        for (name, pod, raw, want) in cases {
            let mut scores: Vec<(String, i64)> = nodes
                .iter()
                .map(|n| (n.name().to_string(), SelectorSpread.score(&pod, n, &[])))
                .collect();
            assert_eq!(
                scores.iter().map(|s| s.1).collect::<Vec<_>>(),
                raw,
                "{name}"
            );
            SelectorSpread.normalize(&mut scores);
            assert_eq!(
                scores.iter().map(|s| s.1).collect::<Vec<_>>(),
                want,
                "{name}"
            );
        }
    }
}
