//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation (upstream's
//! `TriggerTimeTracker`): when the change that the next Endpoints (or EndpointSlice)
//! write reflects happened, so that latency from a pod turning ready to the proxies
//! can be measured. It is the earliest trigger (a pod's Ready transition, the
//! service's creation) that moved since the previous sync of the service; a service
//! seen for the first time reports its creation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;

use super::pods;
use crate::runtime::ObjectKey;

/// The annotation the time goes into.
pub(crate) const ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

#[derive(Debug, Default)]
struct Seen {
    pods: HashMap<String, Timestamp>,
    service: Option<Timestamp>,
}

/// Per service, the trigger times seen at its last sync. Entries go when the service
/// does ([`TriggerTimes::forget`]), so this holds at most one entry per service.
#[derive(Debug, Default)]
pub(crate) struct TriggerTimes {
    seen: Mutex<HashMap<ObjectKey, Seen>>,
}

impl TriggerTimes {
    /// The trigger time for this sync of `service` over its selected `pods`, and
    /// remembers the current triggers; `None` when nothing moved.
    pub(crate) fn compute(
        &self,
        key: &ObjectKey,
        service: &Service,
        selected: &[Arc<Pod>],
    ) -> Option<Timestamp> {
        let mut seen_all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let known = seen_all.contains_key(key);
        let seen = seen_all.entry(key.clone()).or_default();
        let mut earliest: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| earliest = Some(earliest.map_or(t, |e| e.min(t)));
        let mut now_pods = HashMap::new();
        for pod in selected {
            let Some(time) = pod_trigger(pod) else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if seen.pods.get(&name).is_none_or(|before| time > *before) {
                consider(time);
            }
            now_pods.insert(name, time);
        }
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(time) = created
            && seen.service.is_none_or(|before| time > before)
        {
            consider(time);
        }
        seen.pods = now_pods;
        seen.service = created;
        if known { earliest } else { created }
    }

    /// Drops what was seen of a deleted service.
    pub(crate) fn forget(&self, key: &ObjectKey) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// A pod's last endpoint-relevant change: its Ready condition's transition.
fn pod_trigger(pod: &Pod) -> Option<Timestamp> {
    pods::ready_condition(pod)?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// The annotation's value: RFC 3339 in UTC, as upstream writes it.
pub(crate) fn format(time: Timestamp) -> String {
    time.to_string()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::endpoints::pods::tests::{pod, service};

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn with_transition(mut p: Pod, time: &str) -> Arc<Pod> {
        if let Some(c) = p
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.last_transition_time = Some(Time(at(time)));
        }
        Arc::new(p)
    }

    #[test]
    fn first_sync_reports_creation_then_the_earliest_moved_trigger() {
        let tracker = TriggerTimes::default();
        let key = ObjectKey::new("ns", "web");
        let mut svc = service(vec![]);
        svc.metadata.creation_timestamp = Some(Time(at("2025-01-01T00:00:00Z")));
        let a = with_transition(pod("a", "10.0.0.1", true), "2025-01-01T00:01:00Z");
        let b = with_transition(pod("b", "10.0.0.2", true), "2025-01-01T00:02:00Z");
        assert_eq!(
            tracker.compute(&key, &svc, &[a.clone(), b.clone()]),
            Some(at("2025-01-01T00:00:00Z"))
        );
        assert_eq!(tracker.compute(&key, &svc, &[a.clone(), b.clone()]), None);
        let b2 = with_transition(pod("b", "10.0.0.2", false), "2025-01-01T00:05:00Z");
        let c = with_transition(pod("c", "10.0.0.3", true), "2025-01-01T00:04:00Z");
        assert_eq!(
            tracker.compute(&key, &svc, &[a, b2, c]),
            Some(at("2025-01-01T00:04:00Z"))
        );
        tracker.forget(&key);
        assert_eq!(
            tracker.compute(&key, &svc, &[]),
            Some(at("2025-01-01T00:00:00Z"))
        );
        assert_eq!(format(at("2025-01-01T00:04:00Z")), "2025-01-01T00:04:00Z");
    }
}
