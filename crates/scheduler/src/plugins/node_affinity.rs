//! NodeAffinity: `nodeSelector` and required node affinity filter nodes; preferred node
//! affinity terms add their weights to a node's score.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::selectors::labels::{Operator, Requirement};
use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};

use crate::framework::{
    FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin, Status,
    default_normalize_score,
};

/// Upstream's `ErrReasonPod`.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

/// The only field a node selector term may match on.
const FIELD_METADATA_NAME: &str = "metadata.name";

/// Converts label requirements as upstream's `nodeSelectorRequirementsAsSelector`;
/// `None` if any is invalid.
fn label_requirements(reqs: &[NodeSelectorRequirement]) -> Option<Vec<Requirement>> {
    reqs.iter()
        .map(|r| {
            let op = match r.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                "Gt" => Operator::GreaterThan,
                "Lt" => Operator::LessThan,
                _ => return None,
            };
            Requirement::new(&r.key, op, r.values.clone().unwrap_or_default()).ok()
        })
        .collect()
}

/// Whether the node's fields satisfy match-field requirements, as upstream's
/// `nodeSelectorRequirementsAsFieldSelector`: only `metadata.name`, with `In` or `NotIn`
/// and exactly one value; `None` if any requirement is invalid.
fn fields_match(reqs: &[NodeSelectorRequirement], node_name: &str) -> Option<bool> {
    let mut all = true;
    for r in reqs {
        let [value] = r.values.as_deref().unwrap_or(&[]) else {
            return None;
        };
        if r.key != FIELD_METADATA_NAME {
            return None;
        }
        let ok = match r.operator.as_str() {
            "In" => node_name == value,
            "NotIn" => node_name != value,
            _ => return None,
        };
        all &= ok;
    }
    Some(all)
}

/// Whether one term matches: every expression and every field. An empty term matches
/// nothing, and so does a term that does not parse (upstream skips such terms).
pub fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let Some(reqs) = label_requirements(exprs) else {
        return false;
    };
    let Some(fields_ok) = fields_match(fields, node_name) else {
        return false;
    };
    fields_ok && reqs.iter().all(|r| r.matches(labels))
}

/// Whether the pod's `nodeSelector` and required node affinity (terms ORed) both
/// accept the node, as upstream's `RequiredNodeAffinity.Match`.
pub fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return true;
    };
    let labels = node.labels();
    if let Some(selector) = &spec.node_selector
        && selector.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(ns) => ns
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, node.name())),
    }
}

/// The NodeAffinity plugin.
#[derive(Debug, Default, Clone)]
pub struct NodeAffinity;

impl NodeAffinity {
    /// The registered name.
    pub const NAME: &'static str = "NodeAffinity";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// The summed weights of the preferred terms that match; terms with weight 0 or
    /// no requirements are ignored, as upstream.
    fn score(&self, pod: &PodInfo, node: &NodeInfo, _all: &[Arc<NodeInfo>]) -> i64 {
        let preferred = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        let Some(terms) = preferred else {
            return 0;
        };
        terms
            .iter()
            .filter(|t| t.weight != 0)
            .filter(|t| term_matches(&t.preference, node.labels(), node.name()))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize(&self, scores: &mut [(String, i64)]) {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::testing::{NodeBuilder, PodBuilder};
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity as ApiNodeAffinity, NodeSelector, PreferredSchedulingTerm,
    };

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn term(
        exprs: Vec<NodeSelectorRequirement>,
        fields: Vec<NodeSelectorRequirement>,
    ) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: (!exprs.is_empty()).then_some(exprs),
            match_fields: (!fields.is_empty()).then_some(fields),
        }
    }

    fn required(terms: Vec<NodeSelectorTerm>) -> Affinity {
        Affinity {
            node_affinity: Some(ApiNodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn preferred(terms: Vec<(i32, NodeSelectorTerm)>) -> Affinity {
        Affinity {
            node_affinity: Some(ApiNodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(
                    terms
                        .into_iter()
                        .map(|(weight, preference)| PreferredSchedulingTerm { weight, preference })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn filter() {
        let node = || {
            NodeBuilder::new("node-1")
                .label("zone", "a")
                .label("gpu", "true")
                .label("cores", "8")
        };
        let one = |r: NodeSelectorRequirement| required(vec![term(vec![r], vec![])]);
        let cases: Vec<(&str, PodBuilder, bool)> = vec![
            ("nothing required", PodBuilder::new("p"), true),
            (
                "nodeSelector matches",
                PodBuilder::new("p").node_selector("zone", "a"),
                true,
            ),
            (
                "nodeSelector value differs",
                PodBuilder::new("p").node_selector("zone", "b"),
                false,
            ),
            (
                "nodeSelector label missing",
                PodBuilder::new("p").node_selector("disk", "ssd"),
                false,
            ),
            (
                "In",
                PodBuilder::new("p").affinity(one(req("zone", "In", &["a", "b"]))),
                true,
            ),
            (
                "In misses",
                PodBuilder::new("p").affinity(one(req("zone", "In", &["b"]))),
                false,
            ),
            (
                "NotIn",
                PodBuilder::new("p").affinity(one(req("zone", "NotIn", &["b"]))),
                true,
            ),
            (
                "NotIn of a missing label",
                PodBuilder::new("p").affinity(one(req("disk", "NotIn", &["x"]))),
                true,
            ),
            (
                "NotIn misses",
                PodBuilder::new("p").affinity(one(req("zone", "NotIn", &["a"]))),
                false,
            ),
            (
                "Exists",
                PodBuilder::new("p").affinity(one(req("gpu", "Exists", &[]))),
                true,
            ),
            (
                "Exists misses",
                PodBuilder::new("p").affinity(one(req("disk", "Exists", &[]))),
                false,
            ),
            (
                "DoesNotExist",
                PodBuilder::new("p").affinity(one(req("disk", "DoesNotExist", &[]))),
                true,
            ),
            (
                "DoesNotExist misses",
                PodBuilder::new("p").affinity(one(req("gpu", "DoesNotExist", &[]))),
                false,
            ),
            (
                "Gt",
                PodBuilder::new("p").affinity(one(req("cores", "Gt", &["4"]))),
                true,
            ),
            (
                "Gt equal misses",
                PodBuilder::new("p").affinity(one(req("cores", "Gt", &["8"]))),
                false,
            ),
            (
                "Lt",
                PodBuilder::new("p").affinity(one(req("cores", "Lt", &["16"]))),
                true,
            ),
            (
                "Lt on a non-integer label misses",
                PodBuilder::new("p").affinity(one(req("zone", "Lt", &["16"]))),
                false,
            ),
            (
                "Gt with a non-integer value is invalid",
                PodBuilder::new("p").affinity(one(req("cores", "Gt", &["x"]))),
                false,
            ),
            (
                "unknown operator is invalid",
                PodBuilder::new("p").affinity(one(req("zone", "Equals", &["a"]))),
                false,
            ),
            (
                "expressions in a term are ANDed",
                PodBuilder::new("p").affinity(required(vec![term(
                    vec![req("zone", "In", &["a"]), req("gpu", "In", &["false"])],
                    vec![],
                )])),
                false,
            ),
            (
                "terms are ORed",
                PodBuilder::new("p").affinity(required(vec![
                    term(vec![req("zone", "In", &["b"])], vec![]),
                    term(vec![req("gpu", "Exists", &[])], vec![]),
                ])),
                true,
            ),
            (
                "an empty term matches nothing",
                PodBuilder::new("p").affinity(required(vec![term(vec![], vec![])])),
                false,
            ),
            (
                "an invalid term is skipped, a valid one still matches",
                PodBuilder::new("p").affinity(required(vec![
                    term(vec![req("zone", "Bogus", &[])], vec![]),
                    term(vec![req("zone", "In", &["a"])], vec![]),
                ])),
                true,
            ),
            (
                "matchFields metadata.name In",
                PodBuilder::new("p").affinity(required(vec![term(
                    vec![],
                    vec![req("metadata.name", "In", &["node-1"])],
                )])),
                true,
            ),
            (
                "matchFields metadata.name NotIn",
                PodBuilder::new("p").affinity(required(vec![term(
                    vec![],
                    vec![req("metadata.name", "NotIn", &["node-1"])],
                )])),
                false,
            ),
            (
                "matchFields with two values is invalid",
                PodBuilder::new("p").affinity(required(vec![term(
                    vec![],
                    vec![req("metadata.name", "In", &["node-1", "node-2"])],
                )])),
                false,
            ),
            (
                "matchFields on another field is invalid",
                PodBuilder::new("p").affinity(required(vec![term(
                    vec![],
                    vec![req("metadata.uid", "In", &["node-1"])],
                )])),
                false,
            ),
            (
                "fields and expressions are ANDed",
                PodBuilder::new("p").affinity(required(vec![term(
                    vec![req("zone", "In", &["a"])],
                    vec![req("metadata.name", "In", &["node-1"])],
                )])),
                true,
            ),
            (
                "nodeSelector and affinity must both match",
                PodBuilder::new("p")
                    .node_selector("zone", "b")
                    .affinity(one(req("gpu", "Exists", &[]))),
                false,
            ),
        ];
        for (name, pod, ok) in cases {
            let s = FilterPlugin::filter(&NodeAffinity, &pod.info(), &node().info());
            assert_eq!(s.is_success(), ok, "{name}");
            if !ok {
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                assert_eq!(s.reasons, vec![ERR_REASON_POD], "{name}");
            }
        }
    }

    #[test]
    fn score() {
        let pod = PodBuilder::new("p")
            .affinity(preferred(vec![
                (2, term(vec![req("zone", "In", &["a"])], vec![])),
                (5, term(vec![req("gpu", "Exists", &[])], vec![])),
                (0, term(vec![req("zone", "Exists", &[])], vec![])),
                (9, term(vec![], vec![])),
            ]))
            .info();
        let nodes = [
            NodeBuilder::new("none").info(),
            NodeBuilder::new("zone").label("zone", "a").info(),
            NodeBuilder::new("both")
                .label("zone", "a")
                .label("gpu", "1")
                .info(),
        ];
        let mut scores: Vec<(String, i64)> = nodes
            .iter()
            .map(|n| {
                (
                    n.name().to_string(),
                    ScorePlugin::score(&NodeAffinity, &pod, n, &[]),
                )
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![0, 2, 7]
        );
        NodeAffinity.normalize(&mut scores);
        assert_eq!(
            scores.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![0, 28, 100]
        );
    }
}
