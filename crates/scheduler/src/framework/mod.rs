//! The scheduler framework: plugins at extension points, run over a snapshot of nodes.
//!
//! A plugin is one value implementing [`Plugin`]; it takes part in the extension points
//! whose traits it also implements, which it reports through [`Plugin::as_filter`] and
//! [`Plugin::as_score`] (upstream does the same with interface assertions).

pub mod cache;
mod node_info;
pub mod parallel;
pub mod queue;
pub mod resource;
mod runtime;
mod status;

use std::fmt::Debug;
use std::sync::Arc;

pub use cache::{ASSUMED_POD_TTL, Cache, CacheError};
pub use node_info::{DEFAULT_BIND_ALL_HOST_IP, HostPort, HostPortInfo, NodeInfo, PodInfo};
pub use queue::{
    MAX_UNSCHEDULABLE_DURATION, QueueCounts, QueuedPod, SchedulingQueue, backoff_duration, pod_key,
};
pub use resource::Resource;
pub use runtime::{
    Decision, Framework, NodeScores, NodeVerdict, PluginScore, ScheduleError, SchedulerState,
    SplitMix64, fit_error_message, num_feasible_nodes_to_find,
};
pub use status::{Code, Status};

/// The highest score a node can get from one plugin after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;
/// The lowest.
pub const MIN_NODE_SCORE: i64 = 0;

/// A scheduler plugin.
pub trait Plugin: Send + Sync + Debug {
    /// The plugin's registered name (its `NAME` constant).
    fn name(&self) -> &'static str;

    /// The plugin as a filter, if it is one.
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }

    /// The plugin as a scorer, if it is one.
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
}

/// The Filter extension point: can the pod run on this node?
pub trait FilterPlugin: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &'static str;

    /// Success if the pod may run on the node; otherwise why not.
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// The Score extension point: how good is this feasible node for the pod?
pub trait ScorePlugin: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &'static str;

    /// A raw score for one feasible node; `all_nodes` is the whole snapshot, for
    /// plugins that need cluster-wide context.
    fn score(&self, pod: &PodInfo, node: &NodeInfo, all_nodes: &[Arc<NodeInfo>]) -> i64;

    /// Maps the raw scores of all feasible nodes (node name, score) into
    /// `MIN_NODE_SCORE..=MAX_NODE_SCORE`; the default keeps them as they are.
    fn normalize(&self, scores: &mut [(String, i64)]) {
        let _ = scores;
    }
}

/// Upstream's `DefaultNormalizeScore`: scales scores so the highest becomes
/// `max_priority`; with `reverse`, the highest becomes 0 and the lowest
/// `max_priority`. All zero stays zero (or all `max_priority` when reversed).
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [(String, i64)]) {
    let max = scores.iter().map(|(_, s)| *s).max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            for (_, s) in scores.iter_mut() {
                *s = max_priority;
            }
        }
        return;
    }
    for (_, s) in scores.iter_mut() {
        let scaled = max_priority * *s / max;
        *s = if reverse {
            max_priority - scaled
        } else {
            scaled
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalize() {
        let cases: [(&str, bool, Vec<i64>, Vec<i64>); 5] = [
            ("scale up", false, vec![1, 2, 4], vec![25, 50, 100]),
            ("reverse", true, vec![1, 2, 4], vec![75, 50, 0]),
            ("all zero", false, vec![0, 0], vec![0, 0]),
            ("all zero reversed", true, vec![0, 0], vec![100, 100]),
            ("empty", false, vec![], vec![]),
        ];
        for (name, reverse, input, want) in cases {
            let mut scores: Vec<(String, i64)> =
                input.iter().map(|s| (String::new(), *s)).collect();
            default_normalize_score(MAX_NODE_SCORE, reverse, &mut scores);
            let got: Vec<i64> = scores.iter().map(|(_, s)| *s).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
