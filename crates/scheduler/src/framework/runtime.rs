//! One scheduling cycle: filter nodes, score the feasible ones, pick the best.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::{Code, MAX_NODE_SCORE, MIN_NODE_SCORE, NodeInfo, Plugin, PodInfo, Status};

/// Upstream's `minFeasibleNodesToFind`: below this many nodes every node is checked.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream's `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// Why a cycle could not produce a decision at all (as opposed to finding no fit,
/// which is a [`Decision`] without a selected node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The snapshot holds no nodes (upstream's `ErrNoNodesAvailable`).
    #[error("no nodes available to schedule pods")]
    NoNodes,
    /// A filter plugin failed with an `Error` status.
    #[error("running {plugin:?} filter plugin: {message}")]
    Filter {
        /// The failing plugin.
        plugin: String,
        /// Its message.
        message: String,
    },
    /// A score plugin produced a score outside `0..=100` after normalising.
    #[error(
        "plugin {plugin:?} returns an invalid score {score}, it should in the range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing"
    )]
    InvalidScore {
        /// The plugin.
        plugin: String,
        /// The offending score.
        score: i64,
    },
}

/// Upstream's adaptive number of feasible nodes to look for before scoring: all nodes
/// below 100; otherwise `percentage` of them (when 0, `50 - nodes/125`, at least 5), but
/// never fewer than 100.
pub fn num_feasible_nodes_to_find(
    percentage_of_nodes_to_score: u32,
    num_all_nodes: usize,
) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND || percentage_of_nodes_to_score >= 100 {
        return num_all_nodes;
    }
    let mut percentage = percentage_of_nodes_to_score as usize;
    if percentage == 0 {
        percentage = 50usize.saturating_sub(num_all_nodes / 125);
        percentage = percentage.max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let num = num_all_nodes * percentage / 100;
    num.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// A small, seedable random number generator for tie breaking (SplitMix64); the
/// scheduler seeds it from the clock, tests from a constant.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What carries over from one cycle to the next: where the next node search starts
/// (so that sampling rotates through the cluster) and the tie-breaking generator.
#[derive(Debug, Clone)]
pub struct SchedulerState {
    /// Index in the snapshot where the next search starts.
    pub next_start_node_index: usize,
    /// Tie breaking among equally scored nodes.
    pub rng: SplitMix64,
}

impl SchedulerState {
    /// A state starting at node 0 with a seeded generator.
    pub fn new(seed: u64) -> Self {
        Self {
            next_start_node_index: 0,
            rng: SplitMix64::new(seed),
        }
    }
}

/// One node's filter verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeVerdict {
    /// The node.
    pub node: String,
    /// Success, or the first rejecting plugin's status.
    pub status: Status,
}

/// One plugin's score for one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginScore {
    /// The plugin.
    pub plugin: String,
    /// The score before normalising.
    pub raw: i64,
    /// The score after normalising (0..=100).
    pub normalized: i64,
    /// The plugin's weight in the profile.
    pub weight: i64,
}

/// All plugin scores of one feasible node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeScores {
    /// The node.
    pub node: String,
    /// Per plugin, in profile order.
    pub plugins: Vec<PluginScore>,
    /// Sum of normalised scores times weights.
    pub total: i64,
}

/// The outcome of one scheduling cycle, with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The chosen node, or `None` if no node fits.
    pub selected: Option<String>,
    /// Nodes in the snapshot.
    pub num_all_nodes: usize,
    /// Filter verdicts of the nodes evaluated, in evaluation order; when the cluster is
    /// large, the search stops once enough feasible nodes were found.
    pub verdicts: Vec<NodeVerdict>,
    /// Scores of the feasible nodes; empty when only one node was feasible (upstream
    /// skips scoring then).
    pub scores: Vec<NodeScores>,
}

impl Decision {
    /// How many nodes passed every filter.
    pub fn feasible(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|v| v.status.is_success())
            .count()
    }

    /// Upstream's FailedScheduling message when no node fits; `None` when one did.
    pub fn failure_message(&self) -> Option<String> {
        if self.selected.is_some() {
            return None;
        }
        Some(fit_error_message(
            self.num_all_nodes,
            self.verdicts.iter().map(|v| &v.status),
        ))
    }
}

/// Upstream's `FitError.Error()`: `0/N nodes are available: ` then each distinct reason
/// prefixed with how many nodes gave it, sorted as strings, joined by `, `, ending in
/// `.`.
pub fn fit_error_message<'a>(
    num_all_nodes: usize,
    statuses: impl IntoIterator<Item = &'a Status>,
) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for status in statuses {
        if status.is_success() {
            continue;
        }
        for reason in &status.reasons {
            *histogram.entry(reason.as_str()).or_default() += 1;
        }
    }
    let mut reasons: Vec<String> = histogram
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    reasons.sort();
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    if !reasons.is_empty() {
        msg.push_str(&format!(" {}.", reasons.join(", ")));
    }
    msg
}

/// A scheduling profile ready to run: its filter and score plugins in order, score
/// weights, and the share of nodes to score.
#[derive(Debug, Clone)]
pub struct Framework {
    scheduler_name: String,
    filters: Vec<Arc<dyn Plugin>>,
    scorers: Vec<(Arc<dyn Plugin>, i64)>,
    percentage_of_nodes_to_score: u32,
}

impl Framework {
    /// A framework from plugins; `filters` must implement the filter point and
    /// `scorers` the score point (others are ignored), each scorer with its weight.
    pub fn new(
        scheduler_name: impl Into<String>,
        filters: Vec<Arc<dyn Plugin>>,
        scorers: Vec<(Arc<dyn Plugin>, i64)>,
        percentage_of_nodes_to_score: u32,
    ) -> Self {
        Self {
            scheduler_name: scheduler_name.into(),
            filters: filters
                .into_iter()
                .filter(|p| p.as_filter().is_some())
                .collect(),
            scorers: scorers
                .into_iter()
                .filter(|(p, _)| p.as_score().is_some())
                .collect(),
            percentage_of_nodes_to_score,
        }
    }

    /// The `schedulerName` pods use to pick this profile.
    pub fn scheduler_name(&self) -> &str {
        &self.scheduler_name
    }

    /// Names of the filter plugins, in order.
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.filters.iter().map(|p| p.name()).collect()
    }

    /// Names and weights of the score plugins, in order.
    pub fn score_weights(&self) -> Vec<(&'static str, i64)> {
        self.scorers.iter().map(|(p, w)| (p.name(), *w)).collect()
    }

    /// Runs the filters in order on one node; the first rejection wins, as upstream.
    pub fn run_filters(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        for plugin in &self.filters {
            let Some(filter) = plugin.as_filter() else {
                continue;
            };
            let status = filter.filter(pod, node);
            if !status.is_success() {
                return status.with_plugin(plugin.name());
            }
        }
        Status::success()
    }

    /// One scheduling cycle for `pod` over `nodes`.
    pub fn schedule(
        &self,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        state: &mut SchedulerState,
    ) -> Result<Decision, ScheduleError> {
        let _span =
            tracing::debug_span!("schedule", pod = %pod.key(), nodes = nodes.len()).entered();
        if nodes.is_empty() {
            return Err(ScheduleError::NoNodes);
        }
        let (verdicts, feasible) = self.find_feasible(pod, nodes, state)?;
        let mut decision = Decision {
            pod: pod.key(),
            selected: None,
            num_all_nodes: nodes.len(),
            verdicts,
            scores: Vec::new(),
        };
        match feasible.as_slice() {
            [] => {}
            [only] => decision.selected = Some(only.name().to_string()),
            _ => {
                decision.scores = self.score(pod, &feasible, nodes)?;
                decision.selected = select_host(&decision.scores, &mut state.rng);
            }
        }
        tracing::debug!(selected = ?decision.selected, "scheduling cycle done");
        Ok(decision)
    }

    /// Filters nodes from the rotating start index until enough feasible ones are
    /// found (or every node was checked).
    fn find_feasible(
        &self,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        state: &mut SchedulerState,
    ) -> Result<(Vec<NodeVerdict>, Vec<Arc<NodeInfo>>), ScheduleError> {
        let n = nodes.len();
        let wanted = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, n);
        let start = state.next_start_node_index % n;
        let mut verdicts = Vec::new();
        let mut feasible = Vec::new();
        // Nodes are filtered a window at a time, in parallel within a window, and the
        // results are taken in order until enough feasible nodes are found: the same
        // verdicts as one node at a time, at most one window of extra work.
        let window = super::parallel::PARALLEL_THRESHOLD;
        let order: Vec<&Arc<NodeInfo>> = (0..n).map(|i| &nodes[(start + i) % n]).collect();
        'windows: for part in order.chunks(window) {
            let statuses = super::parallel::map(part, |node| self.run_filters(pod, node));
            for (node, status) in part.iter().zip(statuses) {
                if feasible.len() >= wanted {
                    break 'windows;
                }
                if status.code == Code::Error {
                    return Err(ScheduleError::Filter {
                        plugin: status.plugin.clone(),
                        message: status.message(),
                    });
                }
                if status.is_success() {
                    feasible.push((*node).clone());
                }
                verdicts.push(NodeVerdict {
                    node: node.name().to_string(),
                    status,
                });
            }
        }
        state.next_start_node_index = (start + verdicts.len()) % n;
        Ok((verdicts, feasible))
    }

    /// Runs every score plugin over the feasible nodes, normalises, checks the range
    /// and weights.
    fn score(
        &self,
        pod: &PodInfo,
        feasible: &[Arc<NodeInfo>],
        all: &[Arc<NodeInfo>],
    ) -> Result<Vec<NodeScores>, ScheduleError> {
        let mut result: Vec<NodeScores> = feasible
            .iter()
            .map(|n| NodeScores {
                node: n.name().to_string(),
                plugins: Vec::with_capacity(self.scorers.len()),
                total: 0,
            })
            .collect();
        for (plugin, weight) in &self.scorers {
            let Some(scorer) = plugin.as_score() else {
                continue;
            };
            let raw: Vec<i64> = super::parallel::map(feasible, |n| scorer.score(pod, n, all));
            let mut normalized: Vec<(String, i64)> = feasible
                .iter()
                .zip(&raw)
                .map(|(n, s)| (n.name().to_string(), *s))
                .collect();
            scorer.normalize(&mut normalized);
            for (i, (_, score)) in normalized.iter().enumerate() {
                if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(score) {
                    return Err(ScheduleError::InvalidScore {
                        plugin: plugin.name().to_string(),
                        score: *score,
                    });
                }
                let entry = &mut result[i];
                entry.total += score * weight;
                entry.plugins.push(PluginScore {
                    plugin: plugin.name().to_string(),
                    raw: raw[i],
                    normalized: *score,
                    weight: *weight,
                });
            }
        }
        if self.scorers.is_empty() {
            // Upstream gives every node a score of 1 when no scorer is configured.
            for entry in &mut result {
                entry.total = 1;
            }
        }
        Ok(result)
    }
}

/// Upstream's `selectHost`: the highest total wins; among equals each is equally
/// likely, chosen by reservoir sampling in one pass.
fn select_host(scores: &[NodeScores], rng: &mut SplitMix64) -> Option<String> {
    let first = scores.first()?;
    let mut best = first.total;
    let mut selected = &first.node;
    let mut ties: u64 = 1;
    for s in &scores[1..] {
        if s.total > best {
            best = s.total;
            selected = &s.node;
            ties = 1;
        } else if s.total == best {
            ties += 1;
            if rng.below(ties) == 0 {
                selected = &s.node;
            }
        }
    }
    Some(selected.clone())
}

#[cfg(test)]
mod tests;
