//! The owner/dependent graph: every watched object's identity, owner references and
//! deletion state, indexed by uid, and which objects name each uid as an owner.
//!
//! Upstream's `GraphBuilder` in small. The graph only ever holds metadata (a few
//! strings per object), never whole objects. Each change returns the keys the
//! collector must look at, following upstream's rules:
//! - an object whose owner references changed (or that appeared with owners) is
//!   looked at, since an owner may not exist;
//! - an object that starts waiting for its dependents (foreground deletion) is looked
//!   at, and so are all its dependents, which must now go;
//! - an object that starts orphaning its dependents is looked at;
//! - when an object goes, its dependents are looked at (they may have no owner left)
//!   and so are its owners that wait for their dependents (one fewer to wait for);
//! - when an object drops an owner reference, that owner is looked at if it waits.
//!
//! The dependents index is kept apart from the nodes, so that an owner that is gone
//! (or was never seen) still knows its dependents.

use std::collections::{HashMap, HashSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The finalizer that makes an owner wait for its dependents (propagationPolicy
/// Foreground).
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer that makes an owner release its dependents (propagationPolicy Orphan).
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Who an object is; the collector's queue key. The uid alone identifies it; the rest
/// says where to find it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl ObjectId {
    /// The API group (empty for core), from apiVersion.
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {} ({})", self.kind, self.name, self.uid)
        } else {
            write!(
                f,
                "{} {}/{} ({})",
                self.kind, self.namespace, self.name, self.uid
            )
        }
    }
}

/// The API group of an apiVersion (`apps/v1` → `apps`, `v1` → core, empty).
pub fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// One owner reference, as much of it as the collector needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub block_owner_deletion: bool,
}

impl From<&OwnerReference> for OwnerRef {
    fn from(r: &OwnerReference) -> Self {
        OwnerRef {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            block_owner_deletion: r.block_owner_deletion.unwrap_or(false),
        }
    }
}

/// Which watch fed a node: a relist of one watch replaces only its own nodes.
pub type Source = u16;

/// One object in the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: ObjectId,
    pub source: Source,
    pub owners: Vec<OwnerRef>,
    /// metadata.deletionTimestamp is set.
    pub deleting: bool,
    /// The `foregroundDeletion` finalizer is present.
    pub foreground: bool,
    /// The `orphan` finalizer is present.
    pub orphan: bool,
}

impl Node {
    /// The node of an object's metadata; None for metadata without a name or uid
    /// (nothing a server would send).
    pub fn from_meta(
        api_version: &str,
        kind: &str,
        source: Source,
        meta: &ObjectMeta,
    ) -> Option<Node> {
        let has = |f: &str| {
            meta.finalizers
                .as_ref()
                .is_some_and(|all| all.iter().any(|x| x == f))
        };
        Some(Node {
            id: ObjectId {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().filter(|n| !n.is_empty())?,
                uid: meta.uid.clone().filter(|u| !u.is_empty())?,
            },
            source,
            owners: meta
                .owner_references
                .iter()
                .flatten()
                .map(OwnerRef::from)
                .collect(),
            deleting: meta.deletion_timestamp.is_some(),
            foreground: has(FOREGROUND_FINALIZER),
            orphan: has(ORPHAN_FINALIZER),
        })
    }

    /// Marked for deletion and waiting for its dependents to go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.foreground
    }

    /// Marked for deletion and waiting to release its dependents.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.orphan
    }

    /// Whether the collector has anything to check about this node.
    pub fn needs_attention(&self) -> bool {
        !self.owners.is_empty() || self.deleting_dependents() || self.orphaning()
    }

    /// Its reference to `owner_uid`, if it has one.
    pub fn owner(&self, owner_uid: &str) -> Option<&OwnerRef> {
        self.owners.iter().find(|o| o.uid == owner_uid)
    }
}

/// The graph. Not thread-safe by itself; the collector holds it behind a mutex and
/// never across an await.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid → uids of the nodes that name it as an owner.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The known nodes that name `owner_uid` as an owner.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<Node> {
        self.dependents
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter_map(|uid| self.nodes.get(uid))
            .cloned()
            .collect()
    }

    pub fn has_dependents(&self, owner_uid: &str) -> bool {
        self.dependents
            .get(owner_uid)
            .is_some_and(|d| d.iter().any(|uid| self.nodes.contains_key(uid)))
    }

    /// Every node the collector has something to check about (on start and when
    /// this instance starts leading).
    pub fn needing_attention(&self) -> Vec<ObjectId> {
        self.nodes
            .values()
            .filter(|n| n.needs_attention())
            .map(|n| n.id.clone())
            .collect()
    }

    /// Adds or updates a node; returns the keys to look at.
    pub fn upsert(&mut self, node: Node) -> Vec<ObjectId> {
        let mut wake = Keys::default();
        let old = self.nodes.get(&node.id.uid).cloned();
        match &old {
            None => {
                if !node.owners.is_empty() {
                    wake.add(&node.id);
                }
            }
            Some(old) => {
                if old.owners != node.owners {
                    wake.add(&node.id);
                    for gone in old.owners.iter().filter(|o| !still_blocks(o, &node)) {
                        self.wake_if_waiting(&gone.uid, &mut wake);
                    }
                }
            }
        }
        let was_deleting_dependents = old.as_ref().is_some_and(Node::deleting_dependents);
        if node.deleting_dependents() {
            wake.add(&node.id);
            if !was_deleting_dependents {
                // Every dependent must go (or drop its reference) now.
                for dependent in self.dependents_of(&node.id.uid) {
                    wake.add(&dependent.id);
                }
            }
        }
        if node.orphaning() {
            wake.add(&node.id);
        }
        if let Some(old) = &old {
            self.unlink(old);
        }
        self.link(&node);
        self.nodes.insert(node.id.uid.clone(), node);
        wake.into_vec()
    }

    /// Removes the node of `uid` (the object is gone); returns the keys to look at.
    pub fn remove(&mut self, uid: &str) -> Vec<ObjectId> {
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        self.unlink(&node);
        let mut wake = Keys::default();
        for dependent in self.dependents_of(uid) {
            wake.add(&dependent.id);
        }
        for owner in &node.owners {
            self.wake_if_waiting(&owner.uid, &mut wake);
        }
        wake.into_vec()
    }

    /// After a relist of one watch: `fresh` is everything it holds now; its nodes
    /// not in `fresh` are gone.
    pub fn replace_source(&mut self, source: Source, fresh: Vec<Node>) -> Vec<ObjectId> {
        let listed: HashSet<&str> = fresh.iter().map(|n| n.id.uid.as_str()).collect();
        let vanished: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.source == source && !listed.contains(n.id.uid.as_str()))
            .map(|n| n.id.uid.clone())
            .collect();
        let mut wake = Keys::default();
        for uid in vanished {
            wake.extend(self.remove(&uid));
        }
        for node in fresh {
            wake.extend(self.upsert(node));
        }
        wake.into_vec()
    }

    fn wake_if_waiting(&self, owner_uid: &str, wake: &mut Keys) {
        if let Some(owner) = self.nodes.get(owner_uid)
            && owner.deleting_dependents()
        {
            wake.add(&owner.id);
        }
    }

    fn link(&mut self, node: &Node) {
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(node.id.uid.clone());
        }
    }

    fn unlink(&mut self, node: &Node) {
        for owner in &node.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(&node.id.uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
    }
}

/// Whether `node` still holds a blocking reference like `old` (same owner, still
/// blocking, or never blocking): if not, the owner may have one fewer dependent to
/// wait for.
fn still_blocks(old: &OwnerRef, node: &Node) -> bool {
    match node.owner(&old.uid) {
        Some(new) => new.block_owner_deletion || !old.block_owner_deletion,
        None => false,
    }
}

/// Keys to wake, each once, in the order first seen.
#[derive(Default)]
struct Keys {
    seen: HashSet<String>,
    keys: Vec<ObjectId>,
}

impl Keys {
    fn add(&mut self, id: &ObjectId) {
        if self.seen.insert(id.uid.clone()) {
            self.keys.push(id.clone());
        }
    }

    fn extend(&mut self, ids: Vec<ObjectId>) {
        for id in &ids {
            self.add(id);
        }
    }

    fn into_vec(self) -> Vec<ObjectId> {
        self.keys
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ConfigMap node in `ns` with the given owners (uid, blockOwnerDeletion).
    pub(crate) fn node(ns: &str, name: &str, uid: &str, owners: &[(&str, bool)]) -> Node {
        Node {
            id: ObjectId {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: ns.into(),
                name: name.into(),
                uid: uid.into(),
            },
            source: 0,
            owners: owners
                .iter()
                .map(|(uid, block)| OwnerRef {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: format!("owner-{uid}"),
                    uid: (*uid).into(),
                    block_owner_deletion: *block,
                })
                .collect(),
            deleting: false,
            foreground: false,
            orphan: false,
        }
    }

    fn uids(keys: &[ObjectId]) -> Vec<&str> {
        let mut v: Vec<&str> = keys.iter().map(|k| k.uid.as_str()).collect();
        v.sort_unstable();
        v
    }

    fn foreground(mut n: Node) -> Node {
        n.deleting = true;
        n.foreground = true;
        n
    }

    #[test]
    fn a_new_object_with_owners_is_looked_at_one_without_is_not() {
        let mut g = Graph::default();
        assert!(g.upsert(node("ns", "owner", "o", &[])).is_empty());
        assert_eq!(
            uids(&g.upsert(node("ns", "dep", "d", &[("o", false)]))),
            ["d"]
        );
        // The same object again changes nothing.
        assert!(g.upsert(node("ns", "dep", "d", &[("o", false)])).is_empty());
        assert_eq!(uids(&g.needing_attention()), ["d"]);
    }

    #[test]
    fn an_owner_that_goes_wakes_its_dependents() {
        let mut g = Graph::default();
        g.upsert(node("ns", "owner", "o", &[]));
        g.upsert(node("ns", "a", "a", &[("o", false)]));
        g.upsert(node("ns", "b", "b", &[("o", true), ("other", false)]));
        g.upsert(node("ns", "c", "c", &[("other", false)]));
        assert_eq!(uids(&g.remove("o")), ["a", "b"]);
        // The dependents still know their (gone) owner.
        assert!(g.has_dependents("o"));
        assert!(g.node("o").is_none());
        assert!(g.remove("o").is_empty(), "removing twice is a no-op");
    }

    #[test]
    fn a_dependent_of_an_unseen_owner_is_indexed_under_that_uid() {
        let mut g = Graph::default();
        g.upsert(node("ns", "a", "a", &[("never", false)]));
        assert_eq!(
            uids(
                &g.dependents_of("never")
                    .iter()
                    .map(|n| n.id.clone())
                    .collect::<Vec<_>>()
            ),
            ["a"]
        );
    }

    #[test]
    fn starting_foreground_deletion_wakes_the_owner_and_all_dependents() {
        let mut g = Graph::default();
        g.upsert(node("ns", "owner", "o", &[]));
        g.upsert(node("ns", "a", "a", &[("o", true)]));
        g.upsert(node("ns", "b", "b", &[("o", false)]));
        let woken = g.upsert(foreground(node("ns", "owner", "o", &[])));
        assert_eq!(uids(&woken), ["a", "b", "o"]);
        // A later update of the waiting owner looks at the owner only.
        let mut again = foreground(node("ns", "owner", "o", &[]));
        again.source = 1;
        assert_eq!(uids(&g.upsert(again)), ["o"]);
    }

    #[test]
    fn a_dependent_that_goes_or_unblocks_wakes_its_waiting_owner() {
        let mut g = Graph::default();
        g.upsert(foreground(node("ns", "owner", "o", &[])));
        g.upsert(node("ns", "idle", "i", &[]));
        g.upsert(node("ns", "a", "a", &[("o", true), ("i", true)]));
        g.upsert(node("ns", "b", "b", &[("o", true)]));
        // a goes: its waiting owner is looked at, its other (not waiting) owner not.
        assert_eq!(uids(&g.remove("a")), ["o"]);
        // b turns blockOwnerDeletion off: itself and the owner.
        assert_eq!(
            uids(&g.upsert(node("ns", "b", "b", &[("o", false)]))),
            ["b", "o"]
        );
        // b drops the reference: itself and the owner.
        assert_eq!(uids(&g.upsert(node("ns", "b", "b", &[]))), ["b", "o"]);
        assert!(!g.has_dependents("o"));
    }

    #[test]
    fn orphaning_owner_is_looked_at() {
        let mut g = Graph::default();
        let mut owner = node("ns", "owner", "o", &[]);
        g.upsert(owner.clone());
        owner.deleting = true;
        owner.orphan = true;
        assert_eq!(uids(&g.upsert(owner)), ["o"]);
        assert_eq!(uids(&g.needing_attention()), ["o"]);
    }

    #[test]
    fn a_relist_removes_what_vanished_from_that_source_only() {
        let mut g = Graph::default();
        g.upsert(node("ns", "owner", "o", &[]));
        let mut other_source = node("ns", "x", "x", &[("o", false)]);
        other_source.source = 1;
        g.upsert(other_source);
        g.upsert(node("ns", "a", "a", &[("o", false)]));
        // Source 0 relists: the owner vanished, a is still there.
        let woken = g.replace_source(0, vec![node("ns", "a", "a", &[("o", false)])]);
        assert_eq!(uids(&woken), ["a", "x"]);
        assert!(g.node("o").is_none());
        assert!(g.node("x").is_some(), "source 1's node stays");
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn node_from_metadata_reads_owners_and_finalizers() {
        let meta = ObjectMeta {
            name: Some("n".into()),
            namespace: Some("ns".into()),
            uid: Some("u".into()),
            finalizers: Some(vec![FOREGROUND_FINALIZER.into()]),
            deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            )),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "rs".into(),
                uid: "r".into(),
                block_owner_deletion: Some(true),
                controller: Some(true),
            }]),
            ..ObjectMeta::default()
        };
        let n = Node::from_meta("v1", "Pod", 3, &meta).expect("a node");
        assert!(n.deleting_dependents());
        assert!(!n.orphaning());
        assert_eq!(n.owners[0].uid, "r");
        assert!(n.owners[0].block_owner_deletion);
        assert_eq!(n.source, 3);
        assert!(Node::from_meta("v1", "Pod", 0, &ObjectMeta::default()).is_none());
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
    }
}
