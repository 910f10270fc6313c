//! Revisions and the annotations a Deployment keeps on its ReplicaSets.
//!
//! Every pod template a Deployment has run is a ReplicaSet whose
//! `deployment.kubernetes.io/revision` numbers it; the current one has the highest
//! number, and the Deployment's own annotation mirrors it. `kubectl rollout history`
//! and `kubectl rollout undo` (client-side since kubectl 1.2x) read exactly these, so
//! an old template that becomes current again takes the next number and remembers its
//! former ones in `revision-history`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

/// The revision of a ReplicaSet, and of the Deployment (its newest ReplicaSet's).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Former revisions of a ReplicaSet that became current again (comma-separated).
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when it last scaled this ReplicaSet.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` then: what proportional scaling divides by.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// The longest `revision-history` value kept (upstream's limit).
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Deployment annotations that are not copied to its ReplicaSets: the controller's own
/// bookkeeping, and kubectl's record of the last applied Deployment.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// The revision of `rs`; 0 when it has none or an unreadable one.
pub fn of(rs: &ReplicaSet) -> i64 {
    annotation(rs.metadata.annotations.as_ref(), REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among `rss` (0 for none).
pub fn max<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().map(of).max().unwrap_or(0)
}

/// An integer annotation of a ReplicaSet (desired or max replicas).
pub fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(rs.metadata.annotations.as_ref(), key)?
        .parse()
        .ok()
}

fn annotation<'a>(annotations: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations?.get(key).map(String::as_str)
}

/// Brings the annotations of the Deployment's new ReplicaSet up to date: copied
/// Deployment annotations, the revision `new_revision` (when higher than its own, which
/// then goes to the history), and for a ReplicaSet about to be created (`exists` false)
/// the replica annotations. Returns whether anything changed (upstream's
/// `SetNewReplicaSetAnnotations`).
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    desired: i32,
    max_replicas: i32,
) -> bool {
    let mut changed = copy_deployment_annotations(d, rs);
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = annotations.get(REVISION).cloned();
    let old_revision = match old.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            // Upstream leaves a ReplicaSet with an unreadable revision alone.
            Err(_) => return changed,
        },
    };
    if old_revision < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            record_history(annotations, &old);
        }
    }
    if !exists && set_replicas_annotations(rs, desired, max_replicas) {
        changed = true;
    }
    changed
}

/// Appends a former revision to `revision-history`, dropping the oldest entries to stay
/// within the length limit.
fn record_history(annotations: &mut BTreeMap<String, String>, old: &str) {
    let history = annotations
        .get(REVISION_HISTORY)
        .cloned()
        .unwrap_or_default();
    if history.is_empty() {
        annotations.insert(REVISION_HISTORY.into(), old.to_string());
        return;
    }
    let mut entries: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + old.len() + 1;
    let mut start = 0;
    while total > MAX_REVISION_HISTORY_CHARS && start < entries.len() {
        total -= entries[start].len() + 1;
        start += 1;
    }
    if total <= MAX_REVISION_HISTORY_CHARS {
        entries.drain(..start);
        entries.push(old);
        annotations.insert(REVISION_HISTORY.into(), entries.join(","));
    }
}

/// Copies the Deployment's annotations (all but `NOT_COPIED`) onto the ReplicaSet;
/// whether any changed. Annotations the Deployment dropped stay, as upstream.
pub fn copy_deployment_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&key.as_str()) || annotations.get(key) == Some(value) {
            continue;
        }
        annotations.insert(key.clone(), value.clone());
        changed = true;
    }
    changed
}

/// Records the Deployment's size and maximum size on a ReplicaSet it scales; whether
/// they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max_replicas: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max_replicas)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.into(), value);
            changed = true;
        }
    }
    changed
}

/// Mirrors the new ReplicaSet's revision on the Deployment; whether it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let annotations = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if annotations.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    annotations.insert(REVISION.into(), revision.to_string());
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deployment::replicas::test_support::{rolling, rs, rs_rev};

    fn annotations(rs: &ReplicaSet) -> BTreeMap<String, String> {
        rs.metadata.annotations.clone().unwrap_or_default()
    }

    #[test]
    fn max_revision_skips_missing_and_unreadable() {
        let mut bad = rs("bad", 1, 1, 4);
        bad.metadata.annotations = Some([(REVISION.to_string(), "x".to_string())].into());
        let cases: Vec<(Vec<ReplicaSet>, i64)> = vec![
            (vec![], 0),
            (vec![rs("a", 1, 1, 1)], 0),
            (
                vec![rs_rev("a", 1, 1, 1, 3), rs_rev("b", 1, 1, 2, 7), bad],
                7,
            ),
        ];
        for (rss, want) in cases {
            assert_eq!(max(&rss), want);
        }
    }

    #[test]
    fn new_replica_set_annotations() {
        struct Case {
            what: &'static str,
            current: Option<&'static str>,
            history: Option<&'static str>,
            new_revision: i64,
            exists: bool,
            want_changed: bool,
            want_revision: Option<&'static str>,
            want_history: Option<&'static str>,
        }
        let cases = [
            Case {
                what: "a new ReplicaSet takes the revision",
                current: None,
                history: None,
                new_revision: 1,
                exists: false,
                want_changed: true,
                want_revision: Some("1"),
                want_history: None,
            },
            Case {
                what: "the current ReplicaSet keeps its revision",
                current: Some("3"),
                history: None,
                new_revision: 3,
                exists: true,
                want_changed: false,
                want_revision: Some("3"),
                want_history: None,
            },
            Case {
                what: "a ReplicaSet current again moves up and remembers",
                current: Some("1"),
                history: None,
                new_revision: 4,
                exists: true,
                want_changed: true,
                want_revision: Some("4"),
                want_history: Some("1"),
            },
            Case {
                what: "history accumulates",
                current: Some("4"),
                history: Some("1"),
                new_revision: 6,
                exists: true,
                want_changed: true,
                want_revision: Some("6"),
                want_history: Some("1,4"),
            },
            Case {
                what: "an unreadable revision is left alone",
                current: Some("seven"),
                history: None,
                new_revision: 2,
                exists: true,
                want_changed: false,
                want_revision: Some("seven"),
                want_history: None,
            },
        ];
        let d = rolling(3, json!(1), json!(0));
        for case in cases {
            let mut set = rs("x", 0, 0, 1);
            let mut ann = BTreeMap::new();
            if let Some(c) = case.current {
                ann.insert(REVISION.to_string(), c.to_string());
            }
            if let Some(h) = case.history {
                ann.insert(REVISION_HISTORY.to_string(), h.to_string());
            }
            set.metadata.annotations = Some(ann);
            let changed =
                set_new_replica_set_annotations(&d, &mut set, case.new_revision, case.exists, 3, 4);
            let got = annotations(&set);
            assert_eq!(changed, case.want_changed, "{}", case.what);
            assert_eq!(
                got.get(REVISION).map(String::as_str),
                case.want_revision,
                "{}",
                case.what
            );
            assert_eq!(
                got.get(REVISION_HISTORY).map(String::as_str),
                case.want_history,
                "{}",
                case.what
            );
            let replicas_annotated = got.contains_key(DESIRED_REPLICAS);
            assert_eq!(replicas_annotated, !case.exists, "{}", case.what);
        }
    }

    #[test]
    fn history_stays_within_its_limit() {
        let mut ann = BTreeMap::new();
        let long: Vec<String> = (0..700).map(|i| i.to_string()).collect();
        ann.insert(REVISION_HISTORY.to_string(), long.join(","));
        record_history(&mut ann, "1000");
        let history = &ann[REVISION_HISTORY];
        assert!(
            history.len() <= MAX_REVISION_HISTORY_CHARS,
            "{}",
            history.len()
        );
        assert!(history.ends_with(",1000"));
        assert!(!history.starts_with("0,"), "the oldest entries go first");
    }

    #[test]
    fn copies_deployment_annotations_but_not_bookkeeping() {
        let mut d = rolling(1, json!(1), json!(0));
        d.metadata.annotations = Some(
            [
                ("team", "web"),
                (REVISION, "9"),
                ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let mut set = rs("x", 1, 1, 1);
        assert!(copy_deployment_annotations(&d, &mut set));
        let got = annotations(&set);
        assert_eq!(got.get("team").map(String::as_str), Some("web"));
        assert!(!got.contains_key(REVISION));
        assert!(!got.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(
            !copy_deployment_annotations(&d, &mut set),
            "nothing new the second time"
        );
    }

    #[test]
    fn replicas_and_deployment_revision_report_changes() {
        let mut set = rs("x", 1, 1, 1);
        assert!(set_replicas_annotations(&mut set, 3, 4));
        assert!(!set_replicas_annotations(&mut set, 3, 4));
        assert_eq!(int_annotation(&set, MAX_REPLICAS), Some(4));
        assert!(set_replicas_annotations(&mut set, 5, 7));
        let mut d = rolling(1, json!(1), json!(0));
        assert!(set_deployment_revision(&mut d, "2"));
        assert!(!set_deployment_revision(&mut d, "2"));
    }
}
