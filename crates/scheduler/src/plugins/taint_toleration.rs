//! TaintToleration: a node's NoSchedule and NoExecute taints keep out pods that do not
//! tolerate them; PreferNoSchedule taints lower the node's score.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::framework::{
    FilterPlugin, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, ScorePlugin, Status,
    default_normalize_score,
};

pub use api::tolerations::tolerates;

/// Whether any toleration tolerates the taint.
pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The pod's tolerations (empty if none).
pub fn pod_tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// The node's taints (empty if none).
pub fn node_taints(node: &NodeInfo) -> &[Taint] {
    node.node()
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// Upstream's message for an untolerated taint: `{key: value}`.
pub fn untolerated_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

/// The TaintToleration plugin.
#[derive(Debug, Default, Clone)]
pub struct TaintToleration;

impl TaintToleration {
    /// The registered name.
    pub const NAME: &'static str = "TaintToleration";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for TaintToleration {
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

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tolerations = pod_tolerations(pod);
        let untolerated = node_taints(node)
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .find(|t| !tolerations_tolerate(tolerations, t));
        match untolerated {
            Some(taint) => Status::unresolvable(untolerated_reason(taint)),
            None => Status::success(),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// The number of PreferNoSchedule taints the pod does not tolerate; only
    /// tolerations with an empty or PreferNoSchedule effect count.
    fn score(&self, pod: &PodInfo, node: &NodeInfo, _all: &[Arc<NodeInfo>]) -> i64 {
        let tolerations: Vec<Toleration> = pod_tolerations(pod)
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .cloned()
            .collect();
        node_taints(node)
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| !tolerations_tolerate(&tolerations, t))
            .count() as i64
    }

    /// Fewer intolerable taints score higher.
    fn normalize(&self, scores: &mut [(String, i64)]) {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn toleration_matching() {
        let taint = |k: &str, v: &str, e: &str| Taint {
            key: k.into(),
            value: (!v.is_empty()).then(|| v.to_string()),
            effect: e.into(),
            ..Default::default()
        };
        let tol = |k: &str, op: &str, v: &str, e: &str| {
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            Toleration {
                key: opt(k),
                operator: opt(op),
                value: opt(v),
                effect: opt(e),
                ..Default::default()
            }
        };
        let cases = [
            (
                "equal key and value",
                tol("k", "Equal", "v", "NoSchedule"),
                taint("k", "v", "NoSchedule"),
                true,
            ),
            (
                "empty operator means Equal",
                tol("k", "", "v", ""),
                taint("k", "v", "NoSchedule"),
                true,
            ),
            (
                "value differs",
                tol("k", "Equal", "w", ""),
                taint("k", "v", "NoSchedule"),
                false,
            ),
            (
                "exists ignores value",
                tol("k", "Exists", "", ""),
                taint("k", "v", "NoExecute"),
                true,
            ),
            (
                "empty key with Exists tolerates everything",
                tol("", "Exists", "", ""),
                taint("x", "y", "NoSchedule"),
                true,
            ),
            (
                "effect differs",
                tol("k", "Exists", "", "NoExecute"),
                taint("k", "", "NoSchedule"),
                false,
            ),
            (
                "key differs",
                tol("j", "Exists", "", ""),
                taint("k", "", "NoSchedule"),
                false,
            ),
            (
                "unknown operator",
                tol("k", "Gte", "v", ""),
                taint("k", "v", "NoSchedule"),
                false,
            ),
        ];
        for (name, t, taint, want) in cases {
            assert_eq!(tolerates(&t, &taint), want, "{name}");
        }
    }

    #[test]
    fn filter() {
        let cases = [
            (
                "no taints",
                PodBuilder::new("p"),
                NodeBuilder::new("n"),
                None,
            ),
            (
                "untolerated NoSchedule",
                PodBuilder::new("p"),
                NodeBuilder::new("n").taint("dedicated", "gpu", "NoSchedule"),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "untolerated NoExecute without value",
                PodBuilder::new("p"),
                NodeBuilder::new("n").taint("k", "", "NoExecute"),
                Some("node(s) had untolerated taint {k: }"),
            ),
            (
                "PreferNoSchedule does not filter",
                PodBuilder::new("p"),
                NodeBuilder::new("n").taint("k", "v", "PreferNoSchedule"),
                None,
            ),
            (
                "tolerated",
                PodBuilder::new("p").toleration("dedicated", "Equal", "gpu", "NoSchedule"),
                NodeBuilder::new("n").taint("dedicated", "gpu", "NoSchedule"),
                None,
            ),
            (
                "first untolerated of several is reported",
                PodBuilder::new("p").toleration("a", "Exists", "", ""),
                NodeBuilder::new("n")
                    .taint("a", "1", "NoSchedule")
                    .taint("b", "2", "NoExecute")
                    .taint("c", "3", "NoSchedule"),
                Some("node(s) had untolerated taint {b: 2}"),
            ),
        ];
        for (name, pod, node, want) in cases {
            let status = FilterPlugin::filter(&TaintToleration, &pod.info(), &node.info());
            match want {
                None => assert!(status.is_success(), "{name}: {status:?}"),
                Some(msg) => {
                    assert_eq!(
                        status.code,
                        crate::framework::Code::UnschedulableAndUnresolvable,
                        "{name}"
                    );
                    assert_eq!(status.reasons, vec![msg.to_string()], "{name}");
                }
            }
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_taints() {
        let pod = PodBuilder::new("p")
            .toleration("a", "Exists", "", "PreferNoSchedule")
            // A NoSchedule toleration does not count for PreferNoSchedule taints.
            .toleration("b", "Exists", "", "NoSchedule")
            .info();
        let nodes = [
            NodeBuilder::new("clean").info(),
            NodeBuilder::new("tolerated")
                .taint("a", "", "PreferNoSchedule")
                .info(),
            NodeBuilder::new("one")
                .taint("b", "", "PreferNoSchedule")
                .info(),
            NodeBuilder::new("two")
                .taint("b", "", "PreferNoSchedule")
                .taint("c", "", "PreferNoSchedule")
                .info(),
        ];
        let mut scores: Vec<(String, i64)> = nodes
            .iter()
            .map(|n| {
                (
                    n.name().to_string(),
                    ScorePlugin::score(&TaintToleration, &pod, n, &[]),
                )
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![0, 0, 1, 2]
        );
        TaintToleration.normalize(&mut scores);
        assert_eq!(
            scores.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![100, 100, 50, 0]
        );
    }
}
