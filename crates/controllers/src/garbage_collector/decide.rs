//! The collector's decisions, free of I/O: what to do with an object given what its
//! owners are, and which owner references to keep.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// What an owner reference points at, as upstream classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// No such owner (404, another uid under that name, or a reference that cannot
    /// resolve, such as a namespaced owner of a cluster-scoped object).
    Dangling,
    /// The owner exists, is being deleted in the foreground and waits for its
    /// dependents.
    WaitingForDependents,
}

/// Upstream's propagation policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Background,
    Foreground,
    Orphan,
}

/// What to do with an object that has owner references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It has an owner that keeps it.
    Keep,
    /// It has an owner that keeps it, and references to owners that are gone or
    /// going: drop those references (by uid) and keep the object.
    DropOwners(Vec<String>),
    /// No owner keeps it: delete it with this policy.
    Delete(Policy),
}

/// The object's own finalizers that choose the policy it is deleted with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnFinalizers {
    pub orphan: bool,
    pub foreground: bool,
}

/// Upstream's `attemptToDeleteItem`, given each owner reference's state:
/// - a solid owner keeps the object; references to dangling or waiting owners are
///   dropped (the object stays with its solid owners);
/// - an object whose owner waits for it, and which has dependents of its own, is
///   deleted in the foreground, so that the owner also waits for those;
/// - otherwise the object is deleted, with the policy its own finalizers ask for
///   (orphan, foreground), else in the background.
pub fn attempt(
    owners: &[(OwnerReference, OwnerState)],
    own: OwnFinalizers,
    has_dependents: bool,
) -> Action {
    if owners.is_empty() {
        return Action::Keep;
    }
    let uids_in = |state: OwnerState| -> Vec<String> {
        owners
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(r, _)| r.uid.clone())
            .collect()
    };
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Solid);
    let waiting = uids_in(OwnerState::WaitingForDependents);
    if solid {
        let mut drop = uids_in(OwnerState::Dangling);
        drop.extend(waiting);
        return if drop.is_empty() {
            Action::Keep
        } else {
            Action::DropOwners(drop)
        };
    }
    if !waiting.is_empty() && has_dependents {
        return Action::Delete(Policy::Foreground);
    }
    let policy = if own.orphan {
        Policy::Orphan
    } else if own.foreground {
        Policy::Foreground
    } else {
        Policy::Background
    };
    Action::Delete(policy)
}

/// The references without those to `uids`; None if none of them is there (nothing to
/// change).
pub fn without_owners(refs: &[OwnerReference], uids: &[String]) -> Option<Vec<OwnerReference>> {
    let kept: Vec<OwnerReference> = refs
        .iter()
        .filter(|r| !uids.contains(&r.uid))
        .cloned()
        .collect();
    (kept.len() != refs.len()).then_some(kept)
}

/// The references with blockOwnerDeletion turned off on the one to `uid`; None if
/// it does not block (nothing to change).
pub fn unblocked(refs: &[OwnerReference], uid: &str) -> Option<Vec<OwnerReference>> {
    if !refs.iter().any(|r| r.uid == uid && blocks(r)) {
        return None;
    }
    Some(
        refs.iter()
            .cloned()
            .map(|mut r| {
                if r.uid == uid {
                    r.block_owner_deletion = Some(false);
                }
                r
            })
            .collect(),
    )
}

/// Whether the reference holds its owner's foreground deletion back.
pub fn blocks(r: &OwnerReference) -> bool {
    r.block_owner_deletion == Some(true)
}

/// The finalizers without `finalizer`; None if it is not there.
pub fn without_finalizer(finalizers: &[String], finalizer: &str) -> Option<Vec<String>> {
    finalizers.iter().any(|f| f == finalizer).then(|| {
        finalizers
            .iter()
            .filter(|f| *f != finalizer)
            .cloned()
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use OwnerState::{Dangling, Solid, WaitingForDependents as Waiting};

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("cm-{uid}"),
            uid: uid.into(),
            ..OwnerReference::default()
        }
    }

    #[test]
    fn attempt_follows_upstreams_table() {
        let none = OwnFinalizers::default();
        // (name, owners, own finalizers, has dependents, expected)
        type Case = (
            &'static str,
            Vec<(&'static str, OwnerState)>,
            OwnFinalizers,
            bool,
            Action,
        );
        let cases: Vec<Case> = vec![
            ("no owners", vec![], none, false, Action::Keep),
            (
                "one solid owner",
                vec![("a", Solid)],
                none,
                false,
                Action::Keep,
            ),
            (
                "the only owner is gone",
                vec![("a", Dangling)],
                none,
                false,
                Action::Delete(Policy::Background),
            ),
            (
                "all owners gone",
                vec![("a", Dangling), ("b", Dangling)],
                none,
                true,
                Action::Delete(Policy::Background),
            ),
            (
                "one of two owners gone: drop its reference",
                vec![("a", Dangling), ("b", Solid)],
                none,
                false,
                Action::DropOwners(vec!["a".into()]),
            ),
            (
                "a waiting owner next to a solid one: drop the reference",
                vec![("a", Waiting), ("b", Solid), ("c", Dangling)],
                none,
                false,
                Action::DropOwners(vec!["c".into(), "a".into()]),
            ),
            (
                "owner waits, no dependents of its own: background",
                vec![("a", Waiting)],
                none,
                false,
                Action::Delete(Policy::Background),
            ),
            (
                "owner waits and the object has dependents: foreground",
                vec![("a", Waiting), ("b", Dangling)],
                none,
                true,
                Action::Delete(Policy::Foreground),
            ),
            (
                "own orphan finalizer chooses orphan",
                vec![("a", Dangling)],
                OwnFinalizers {
                    orphan: true,
                    foreground: false,
                },
                true,
                Action::Delete(Policy::Orphan),
            ),
            (
                "own foreground finalizer chooses foreground",
                vec![("a", Dangling)],
                OwnFinalizers {
                    orphan: false,
                    foreground: true,
                },
                false,
                Action::Delete(Policy::Foreground),
            ),
        ];
        for (name, owners, own, has_dependents, want) in cases {
            let owners: Vec<(OwnerReference, OwnerState)> =
                owners.into_iter().map(|(u, s)| (owner(u), s)).collect();
            assert_eq!(attempt(&owners, own, has_dependents), want, "{name}");
        }
    }

    #[test]
    fn without_owners_drops_only_named_uids() {
        let refs = vec![owner("a"), owner("b")];
        let kept = without_owners(&refs, &["a".into()]).expect("a changes");
        assert_eq!(kept, vec![owner("b")]);
        assert_eq!(without_owners(&refs, &["z".into()]), None);
        assert_eq!(
            without_owners(&refs, &["a".into(), "b".into()]),
            Some(vec![])
        );
    }

    #[test]
    fn unblocked_turns_off_one_blocking_reference() {
        let mut blocking = owner("a");
        blocking.block_owner_deletion = Some(true);
        let refs = vec![blocking, owner("b")];
        let changed = unblocked(&refs, "a").expect("a blocks");
        assert!(!blocks(&changed[0]));
        assert_eq!(changed[1], owner("b"));
        assert_eq!(unblocked(&refs, "b"), None, "b does not block");
    }

    #[test]
    fn without_finalizer_removes_only_that_one() {
        let f = vec!["orphan".to_string(), "example.com/keep".to_string()];
        assert_eq!(
            without_finalizer(&f, "orphan"),
            Some(vec!["example.com/keep".to_string()])
        );
        assert_eq!(without_finalizer(&f, "foregroundDeletion"), None);
    }
}
