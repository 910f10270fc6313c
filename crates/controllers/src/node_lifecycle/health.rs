//! When a node last showed signs of life, by this controller's own clock.
//!
//! Upstream measures heartbeats when it *observes* them (a Lease renewTime or a Ready
//! heartbeat that changed), not by the kubelet's timestamps, so clock skew between
//! machines cannot make a live node look dead or a dead one alive.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The conditions a kubelet owns; all turn Unknown when it goes silent.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    lease_renew: Option<Timestamp>,
    heartbeat: Option<Timestamp>,
    at: Instant,
}

/// Per node: the heartbeat values last seen and when they last changed.
#[derive(Debug, Default)]
pub struct Heartbeats {
    seen: Mutex<HashMap<String, Seen>>,
}

impl Heartbeats {
    /// Records the node's current Lease renewTime and Ready heartbeat; returns when
    /// either last changed (first sight counts as a change, so a controller that just
    /// started gives every node a full grace period).
    pub fn observe(
        &self,
        node: &str,
        lease_renew: Option<Timestamp>,
        heartbeat: Option<Timestamp>,
        now: Instant,
    ) -> Instant {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(node.to_string()).or_insert(Seen {
            lease_renew,
            heartbeat,
            at: now,
        });
        if entry.lease_renew != lease_renew || entry.heartbeat != heartbeat {
            *entry = Seen {
                lease_renew,
                heartbeat,
                at: now,
            };
        }
        entry.at
    }

    pub fn forget(&self, node: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
    }
}

/// The Ready condition's lastHeartbeatTime, if any.
pub fn ready_heartbeat(node: &Node) -> Option<Timestamp> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_heartbeat_time
        .as_ref()
        .map(|t| t.0)
}

/// Whether the kubelet ever posted a Ready condition (which picks the grace period).
pub fn ever_reported(node: &Node) -> bool {
    ready_heartbeat(node).is_some()
        || node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready"))
}

/// The node's conditions with the kubelet's ones set to Unknown, as upstream does when
/// the grace period passed; `None` when they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for condition in conditions.iter_mut() {
        if KUBELET_CONDITIONS.contains(&condition.type_.as_str()) && condition.status != "Unknown" {
            condition.status = "Unknown".into();
            condition.reason = Some("NodeStatusUnknown".into());
            condition.message = Some("Kubelet stopped posting node status.".into());
            condition.last_transition_time = Some(Time(now));
            changed = true;
        }
    }
    if !conditions.iter().any(|c| c.type_ == "Ready") {
        conditions.push(NodeCondition {
            type_: "Ready".into(),
            status: "Unknown".into(),
            reason: Some("NodeStatusNeverUpdated".into()),
            message: Some("Kubelet never posted node status.".into()),
            last_heartbeat_time: None,
            last_transition_time: Some(Time(now)),
        });
        changed = true;
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::NodeStatus;

    use super::*;

    fn node(conditions: Vec<(&str, &str)>) -> Node {
        Node {
            status: Some(NodeStatus {
                conditions: Some(
                    conditions
                        .into_iter()
                        .map(|(t, s)| NodeCondition {
                            type_: t.into(),
                            status: s.into(),
                            ..NodeCondition::default()
                        })
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn a_heartbeat_counts_when_it_changes_not_by_its_timestamp() {
        let beats = Heartbeats::default();
        let start = Instant::now();
        let t1 = Timestamp::from_second(1000).ok();
        let t2 = Timestamp::from_second(1010).ok();
        assert_eq!(beats.observe("n", t1, None, start), start);
        let later = start + Duration::from_secs(5);
        assert_eq!(
            beats.observe("n", t1, None, later),
            start,
            "unchanged: no new sign of life"
        );
        assert_eq!(beats.observe("n", t2, None, later), later);
        beats.forget("n");
        let again = later + Duration::from_secs(1);
        assert_eq!(beats.observe("n", t2, None, again), again);
    }

    #[test]
    fn kubelet_conditions_turn_unknown_once() {
        let now = Timestamp::from_second(2000).unwrap_or(Timestamp::UNIX_EPOCH);
        let n = node(vec![
            ("Ready", "True"),
            ("MemoryPressure", "False"),
            ("Custom", "True"),
        ]);
        let conditions = unknown_conditions(&n, now).unwrap_or_default();
        let statuses: Vec<(&str, &str)> = conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("Ready", "Unknown"),
                ("MemoryPressure", "Unknown"),
                ("Custom", "True")
            ]
        );
        assert_eq!(conditions[0].reason.as_deref(), Some("NodeStatusUnknown"));
        let updated = node(vec![("Ready", "Unknown"), ("MemoryPressure", "Unknown")]);
        assert_eq!(unknown_conditions(&updated, now), None);
    }

    #[test]
    fn a_node_that_never_reported_gets_an_unknown_ready_condition() {
        let now = Timestamp::from_second(2000).unwrap_or(Timestamp::UNIX_EPOCH);
        let conditions = unknown_conditions(&Node::default(), now).unwrap_or_default();
        assert_eq!(conditions.len(), 1);
        assert_eq!(
            conditions[0].reason.as_deref(),
            Some("NodeStatusNeverUpdated")
        );
        assert!(!ever_reported(&Node::default()));
    }
}
