//! What a terminating namespace's status says about its deletion: upstream's five
//! condition types, each True with the failure or False with the all-clear, and
//! merged into the existing ones so that an unchanged condition keeps its
//! lastTransitionTime (and an unchanged status is not written at all).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GROUP_VERSION_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// What one pass of deleting a namespace's content found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContentReport {
    /// Discovery failed (nothing could be deleted).
    pub discovery_failure: Option<String>,
    /// Resources whose deletion or listing failed, with the error.
    pub failures: Vec<String>,
    /// Objects still there, by upstream's resource name (`pods.`, `leases.coordination.k8s.io`).
    pub remaining: BTreeMap<String, usize>,
    /// Finalizers on the objects still there, with how many objects carry each.
    pub finalizers: BTreeMap<String, usize>,
}

impl ContentReport {
    /// Everything is gone and nothing failed: the namespace can be finalized.
    pub fn is_empty(&self) -> bool {
        self.discovery_failure.is_none() && self.failures.is_empty() && self.remaining.is_empty()
    }

    /// The failure to retry on, if any.
    pub fn error(&self) -> Option<String> {
        if let Some(e) = &self.discovery_failure {
            return Some(format!("discovery failed: {e}"));
        }
        (!self.failures.is_empty()).then(|| self.failures.join(", "))
    }
}

/// One condition as it should be: (type, status, reason, message).
type Desired = (&'static str, &'static str, &'static str, String);

/// The five conditions for a report, in upstream's order.
pub fn desired(report: &ContentReport) -> Vec<Desired> {
    let discovery = match &report.discovery_failure {
        Some(e) => (
            DISCOVERY_FAILURE,
            "True",
            "DiscoveryFailed",
            format!("Discovery failed for some groups, 1 failing: {e}"),
        ),
        None => (
            DISCOVERY_FAILURE,
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
    };
    let parsing = (
        GROUP_VERSION_PARSING_FAILURE,
        "False",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed".into(),
    );
    let content = if report.failures.is_empty() {
        (
            CONTENT_FAILURE,
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        (
            CONTENT_FAILURE,
            "True",
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                report.failures.len(),
                report.failures.join(", ")
            ),
        )
    };
    let remaining = if report.remaining.is_empty() {
        (
            CONTENT_REMAINING,
            "False",
            "ContentRemoved",
            "All content successfully removed".into(),
        )
    } else {
        let parts: Vec<String> = report
            .remaining
            .iter()
            .map(|(resource, n)| format!("{resource} has {n} resource instances"))
            .collect();
        (
            CONTENT_REMAINING,
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", parts.join(", ")),
        )
    };
    let finalizers = if report.finalizers.is_empty() {
        (
            FINALIZERS_REMAINING,
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        let parts: Vec<String> = report
            .finalizers
            .iter()
            .map(|(finalizer, n)| format!("{finalizer} in {n} resource instances"))
            .collect();
        (
            FINALIZERS_REMAINING,
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                parts.join(", ")
            ),
        )
    };
    vec![discovery, parsing, content, remaining, finalizers]
}

/// The namespace's conditions with `desired` merged in, or None if nothing changes.
/// Conditions of other types are kept; a condition whose status flips gets `now` as
/// its lastTransitionTime.
pub fn merge(
    existing: &[NamespaceCondition],
    desired: Vec<Desired>,
    now: &Time,
) -> Option<Vec<NamespaceCondition>> {
    let mut conditions = existing.to_vec();
    let mut changed = false;
    for (type_, status, reason, message) in desired {
        let wanted = NamespaceCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(now.clone()),
        };
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conditions.push(wanted);
                changed = true;
            }
            Some(old) => {
                let same = old.status == wanted.status
                    && old.reason == wanted.reason
                    && old.message == wanted.message;
                if !same {
                    if old.status == wanted.status {
                        // Same status, new details: the transition time stays.
                        let since = old.last_transition_time.take();
                        *old = NamespaceCondition {
                            last_transition_time: since,
                            ..wanted
                        };
                    } else {
                        *old = wanted;
                    }
                    changed = true;
                }
            }
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).expect("a valid time"))
    }

    fn find<'a>(c: &'a [NamespaceCondition], t: &str) -> &'a NamespaceCondition {
        c.iter().find(|c| c.type_ == t).expect("condition present")
    }

    #[test]
    fn an_empty_report_is_all_clear() {
        let report = ContentReport::default();
        assert!(report.is_empty());
        assert_eq!(report.error(), None);
        let d = desired(&report);
        assert_eq!(d.len(), 5);
        assert!(d.iter().all(|(_, status, _, _)| *status == "False"));
    }

    #[test]
    fn remaining_content_and_finalizers_are_listed_as_upstream_words_them() {
        let report = ContentReport {
            remaining: [("pods.".to_string(), 2), ("configmaps.".to_string(), 1)].into(),
            finalizers: [("example.com/hold".to_string(), 1)].into(),
            ..ContentReport::default()
        };
        assert!(!report.is_empty());
        assert_eq!(report.error(), None, "remaining content is no failure");
        let merged = merge(&[], desired(&report), &time(10)).expect("new conditions");
        let remaining = find(&merged, CONTENT_REMAINING);
        assert_eq!(remaining.status, "True");
        assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            remaining.message.as_deref(),
            Some(
                "Some resources are remaining: configmaps. has 1 resource instances, pods. has 2 resource instances"
            )
        );
        let finalizers = find(&merged, FINALIZERS_REMAINING);
        assert_eq!(
            finalizers.message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            )
        );
        assert_eq!(find(&merged, CONTENT_FAILURE).status, "False");
    }

    #[test]
    fn failures_make_the_content_and_discovery_conditions_true() {
        let report = ContentReport {
            discovery_failure: Some("timeout".into()),
            failures: vec!["secrets.: forbidden".into()],
            ..ContentReport::default()
        };
        assert!(report.error().is_some_and(|e| e.contains("timeout")));
        let merged = merge(&[], desired(&report), &time(1)).expect("new conditions");
        assert_eq!(find(&merged, DISCOVERY_FAILURE).status, "True");
        let content = find(&merged, CONTENT_FAILURE);
        assert_eq!(content.status, "True");
        assert_eq!(content.reason.as_deref(), Some("ContentDeletionFailed"));
    }

    #[test]
    fn merging_keeps_transition_times_and_reports_no_change_when_equal() {
        let busy = ContentReport {
            remaining: [("pods.".to_string(), 2)].into(),
            ..ContentReport::default()
        };
        let first = merge(&[], desired(&busy), &time(10)).expect("new conditions");
        assert_eq!(
            merge(&first, desired(&busy), &time(20)),
            None,
            "nothing changed"
        );

        let fewer = ContentReport {
            remaining: [("pods.".to_string(), 1)].into(),
            ..ContentReport::default()
        };
        let second = merge(&first, desired(&fewer), &time(20)).expect("the message changed");
        assert_eq!(
            find(&second, CONTENT_REMAINING).last_transition_time,
            Some(time(10)),
            "same status: the transition time stays"
        );

        let done = merge(&second, desired(&ContentReport::default()), &time(30)).expect("cleared");
        let remaining = find(&done, CONTENT_REMAINING);
        assert_eq!(remaining.status, "False");
        assert_eq!(remaining.last_transition_time, Some(time(30)));
        assert_eq!(done.len(), 5);
    }

    #[test]
    fn conditions_of_other_types_are_kept() {
        let other = NamespaceCondition {
            type_: "Example".into(),
            status: "True".into(),
            ..NamespaceCondition::default()
        };
        let merged = merge(
            std::slice::from_ref(&other),
            desired(&ContentReport::default()),
            &time(1),
        )
        .expect("new conditions");
        assert_eq!(merged[0], other);
        assert_eq!(merged.len(), 6);
    }
}
