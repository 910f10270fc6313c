//! The collector's reconcile: for one object, upstream's three jobs.
//! - An object with owner references (`attempt_to_delete`): if no owner keeps it, it
//!   is deleted; references to owners that are gone are dropped.
//! - An owner deleted in the foreground (`delete_dependents`): its dependents are
//!   deleted, and once none that blocks it is left, its `foregroundDeletion`
//!   finalizer is removed so the API server can delete it.
//! - An owner deleted with orphaning (`orphan_dependents`): its reference is removed
//!   from every dependent, then its `orphan` finalizer.
//!
//! The graph says whom to look at; decisions that delete or change something are
//! made on live reads (an owner absent from the graph is looked up by name and its uid
//! compared), and writes carry uid and resourceVersion preconditions, so a lagging
//! graph can delay the collector but never mislead it.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::json;

use super::cluster::{Cluster, Resources, Target};
use super::decide::{self, Action, OwnFinalizers, OwnerState, Policy};
use super::graph::{FOREGROUND_FINALIZER, Graph, Node, ORPHAN_FINALIZER, ObjectId, Source};
use crate::error::Error;
use crate::runtime::{Next, WorkQueue};

/// Owners found absent, remembered so that the dependents of one deleted owner do
/// not each look it up again (a uid never comes back, so this cannot go stale).
const ABSENT_OWNERS_REMEMBERED: usize = 1024;

/// What the watches and the workers share: the graph, the served resources, the
/// queue, and whether every watch has listed once.
#[derive(Debug)]
pub struct State {
    graph: Mutex<Graph>,
    resources: RwLock<Resources>,
    synced: AtomicBool,
    queue: WorkQueue<ObjectId>,
}

impl Default for State {
    fn default() -> Self {
        State {
            graph: Mutex::new(Graph::default()),
            resources: RwLock::new(Resources::default()),
            synced: AtomicBool::new(false),
            queue: WorkQueue::new(),
        }
    }
}

impl State {
    pub fn queue(&self) -> &WorkQueue<ObjectId> {
        &self.queue
    }

    pub fn set_resources(&self, resources: Resources) {
        *self.resources.write().unwrap_or_else(|e| e.into_inner()) = resources;
    }

    fn resources(&self) -> std::sync::RwLockReadGuard<'_, Resources> {
        self.resources.read().unwrap_or_else(|e| e.into_inner())
    }

    fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// An object was added or changed.
    pub fn upsert(&self, node: Node) {
        self.change(|g| g.upsert(node));
    }

    /// An object is gone.
    pub fn remove(&self, uid: &str) {
        self.change(|g| g.remove(uid));
    }

    /// One watch listed anew.
    pub fn replace_source(&self, source: Source, fresh: Vec<Node>) {
        self.change(|g| g.replace_source(source, fresh));
    }

    /// Applies a change and enqueues what it wakes. Until every watch has listed,
    /// nothing is enqueued: `mark_synced` then enqueues all that needs a look (which
    /// includes everything a change could have woken).
    fn change(&self, apply: impl FnOnce(&mut Graph) -> Vec<ObjectId>) {
        let (woken, synced) = {
            let mut graph = self.graph();
            (apply(&mut graph), self.is_synced())
        };
        if synced {
            for key in woken {
                self.queue.add(key);
            }
        }
    }

    /// Every watch has listed: the graph is whole, decisions can start.
    pub fn mark_synced(&self) {
        let keys = {
            let graph = self.graph();
            self.synced.store(true, Ordering::Release);
            graph.needing_attention()
        };
        tracing::info!(
            objects = self.graph().len(),
            "garbage collector graph synced"
        );
        for key in keys {
            self.queue.add(key);
        }
    }

    /// Enqueues everything that needs a look (when this instance starts leading).
    pub fn resync(&self) {
        if !self.is_synced() {
            return;
        }
        let keys = self.graph().needing_attention();
        for key in keys {
            self.queue.add(key);
        }
    }

    fn node(&self, uid: &str) -> Option<Node> {
        self.graph().node(uid).cloned()
    }

    fn target_of(&self, id: &ObjectId) -> Option<Target> {
        self.resources()
            .get(&id.api_version, &id.kind)
            .map(|r| Target::new(r, &id.namespace, &id.name))
    }
}

/// A small remembered set of absent owners, oldest forgotten first.
#[derive(Debug, Default)]
struct AbsentOwners {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl AbsentOwners {
    fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    fn insert(&mut self, key: String) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
        }
        while self.order.len() > ABSENT_OWNERS_REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

/// The reconcile, over any `Cluster`.
#[derive(Debug)]
pub struct Collector<C> {
    cluster: C,
    state: Arc<State>,
    absent: Mutex<AbsentOwners>,
}

impl<C: Cluster> Collector<C> {
    pub fn new(cluster: C, state: Arc<State>) -> Self {
        Collector {
            cluster,
            state,
            absent: Mutex::new(AbsentOwners::default()),
        }
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    pub async fn reconcile(&self, key: &ObjectId) -> Result<Next, Error> {
        if !self.state.is_synced() {
            // Enqueued again once the graph is whole.
            return Ok(Next::Idle);
        }
        let Some(node) = self.state.node(&key.uid) else {
            return Ok(Next::Idle);
        };
        if node.orphaning() {
            self.orphan_dependents(&node).await?;
        } else if node.deleting_dependents() {
            self.delete_dependents(&node).await?;
        } else if !node.deleting && !node.owners.is_empty() {
            self.attempt_to_delete(&node).await?;
        }
        Ok(Next::Idle)
    }

    /// An object with owners: delete it if none keeps it, drop references to owners
    /// that are gone or going.
    async fn attempt_to_delete(&self, node: &Node) -> Result<(), Error> {
        if self.owners_solid_in_graph(node) {
            return Ok(());
        }
        let Some(target) = self.state.target_of(&node.id) else {
            tracing::debug!(object = %node.id, "kind not served; cannot collect it");
            return Ok(());
        };
        let Some(latest) = self.live(&target, &node.id.uid).await? else {
            return Ok(());
        };
        if latest.deletion_timestamp.is_some() {
            // Already going; the watch brings its new state.
            return Ok(());
        }
        let refs = latest.owner_references.clone().unwrap_or_default();
        let mut owners = Vec::with_capacity(refs.len());
        for r in refs {
            let state = self.owner_state(&node.id, &r).await?;
            owners.push((r, state));
        }
        let own = OwnFinalizers {
            orphan: has_finalizer(&latest, ORPHAN_FINALIZER),
            foreground: has_finalizer(&latest, FOREGROUND_FINALIZER),
        };
        let has_dependents = self.state.graph().has_dependents(&node.id.uid);
        match decide::attempt(&owners, own, has_dependents) {
            Action::Keep => Ok(()),
            Action::DropOwners(uids) => {
                tracing::info!(object = %node.id, owners = ?uids, "removing references to owners that are gone or going");
                let refs = latest.owner_references.as_deref().unwrap_or_default();
                match decide::without_owners(refs, &uids) {
                    Some(kept) => self.patch_owner_refs(&target, &latest, kept).await,
                    None => Ok(()),
                }
            }
            Action::Delete(policy) => {
                let owner_waits = owners
                    .iter()
                    .any(|(_, s)| *s == OwnerState::WaitingForDependents);
                if policy == Policy::Foreground && owner_waits {
                    self.unblock_waiting_dependents(node).await?;
                }
                tracing::info!(object = %node.id, ?policy, "deleting an object whose owners are all gone or going");
                self.delete(&target, &latest, policy).await
            }
        }
    }

    /// Whether the graph alone shows an owner that keeps the object (the common case:
    /// no API call). Anything else is decided on live reads.
    fn owners_solid_in_graph(&self, node: &Node) -> bool {
        let resources = self.state.resources();
        let graph = self.state.graph();
        let absent = self.absent();
        node.owners.iter().all(|r| {
            let Some(resource) = resources.get(&r.api_version, &r.kind) else {
                return false;
            };
            if resource.namespaced && node.id.namespace.is_empty() {
                return false;
            }
            let target = Target::new(resource, &node.id.namespace, &r.name);
            if absent.contains(&absent_key(&target, &r.uid)) {
                return false;
            }
            graph
                .node(&r.uid)
                .is_some_and(|owner| is_at(owner, &target) && !owner.deleting_dependents())
        })
    }

    /// What the owner reference of `dependent` points at.
    async fn owner_state(
        &self,
        dependent: &ObjectId,
        r: &OwnerReference,
    ) -> Result<OwnerState, Error> {
        let resource = self.state.resources().get(&r.api_version, &r.kind).cloned();
        let Some(resource) = resource else {
            // Upstream retries an unknown kind; here nothing is served dynamically,
            // so it would never resolve. Never delete on what cannot be checked.
            tracing::debug!(object = %dependent, owner_kind = %r.kind, "owner kind not served; treating the owner as present");
            return Ok(OwnerState::Solid);
        };
        if resource.namespaced && dependent.namespace.is_empty() {
            // A cluster-scoped object cannot be owned by a namespaced one.
            tracing::info!(object = %dependent, owner = %r.name, "invalid owner reference: namespaced owner of a cluster-scoped object");
            return Ok(OwnerState::Dangling);
        }
        // A namespaced owner is looked up in the dependent's namespace: references
        // across namespaces are invalid and resolve to nothing, as upstream.
        let target = Target::new(&resource, &dependent.namespace, &r.name);
        let key = absent_key(&target, &r.uid);
        if self.absent().contains(&key) {
            return Ok(OwnerState::Dangling);
        }
        let cached = self
            .state
            .graph()
            .node(&r.uid)
            .filter(|o| is_at(o, &target))
            .cloned();
        if let Some(owner) = cached {
            return Ok(if owner.deleting_dependents() {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            });
        }
        match self.cluster.get(&target).await? {
            Some(meta) if meta.uid.as_deref() == Some(r.uid.as_str()) => {
                let waiting =
                    meta.deletion_timestamp.is_some() && has_finalizer(&meta, FOREGROUND_FINALIZER);
                Ok(if waiting {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                })
            }
            _ => {
                self.absent().insert(key);
                Ok(OwnerState::Dangling)
            }
        }
    }

    /// An owner being deleted in the foreground: its dependents go first; once none
    /// that blocks it is left, its finalizer goes.
    async fn delete_dependents(&self, owner: &Node) -> Result<(), Error> {
        let dependents = self.state.graph().dependents_of(&owner.id.uid);
        for dependent in dependents.iter().filter(|d| !d.deleting) {
            self.state.queue.add(dependent.id.clone());
        }
        let mut blocking = 0usize;
        for dependent in &dependents {
            let blocks = dependent
                .owner(&owner.id.uid)
                .is_some_and(|r| r.block_owner_deletion);
            if blocks && self.still_blocks(dependent, &owner.id.uid).await? {
                blocking += 1;
            }
        }
        if blocking > 0 {
            tracing::debug!(owner = %owner.id, blocking, "waiting for dependents to be deleted");
            return Ok(());
        }
        self.remove_finalizer(owner, FOREGROUND_FINALIZER).await
    }

    /// Whether the dependent, read live, still exists and still blocks the owner.
    async fn still_blocks(&self, dependent: &Node, owner_uid: &str) -> Result<bool, Error> {
        let Some(target) = self.state.target_of(&dependent.id) else {
            return Ok(false);
        };
        let Some(latest) = self.live(&target, &dependent.id.uid).await? else {
            return Ok(false);
        };
        Ok(latest
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == owner_uid && decide::blocks(r)))
    }

    /// An owner being deleted with orphaning: every dependent loses its reference,
    /// then the owner its finalizer.
    async fn orphan_dependents(&self, owner: &Node) -> Result<(), Error> {
        let dependents = self.state.graph().dependents_of(&owner.id.uid);
        let uids = [owner.id.uid.clone()];
        for dependent in dependents {
            let Some(target) = self.state.target_of(&dependent.id) else {
                continue;
            };
            let Some(latest) = self.live(&target, &dependent.id.uid).await? else {
                continue;
            };
            let refs = latest.owner_references.as_deref().unwrap_or_default();
            if let Some(kept) = decide::without_owners(refs, &uids) {
                tracing::info!(object = %dependent.id, owner = %owner.id, "orphaning dependent");
                self.patch_owner_refs(&target, &latest, kept).await?;
            }
        }
        self.remove_finalizer(owner, ORPHAN_FINALIZER).await
    }

    /// Before an object is deleted in the foreground because its owner waits for
    /// it: its own dependents that wait for it in turn would wait for ever (a cycle),
    /// so their references to it stop blocking, as upstream does.
    async fn unblock_waiting_dependents(&self, node: &Node) -> Result<(), Error> {
        let dependents = self.state.graph().dependents_of(&node.id.uid);
        for dependent in dependents.iter().filter(|d| d.deleting_dependents()) {
            let Some(target) = self.state.target_of(&dependent.id) else {
                continue;
            };
            let Some(latest) = self.live(&target, &dependent.id.uid).await? else {
                continue;
            };
            let refs = latest.owner_references.as_deref().unwrap_or_default();
            if let Some(changed) = decide::unblocked(refs, &node.id.uid) {
                self.patch_owner_refs(&target, &latest, changed).await?;
            }
        }
        Ok(())
    }

    /// Removes `finalizer` from the owner (read live; only while it is being deleted).
    async fn remove_finalizer(&self, owner: &Node, finalizer: &str) -> Result<(), Error> {
        let Some(target) = self.state.target_of(&owner.id) else {
            return Ok(());
        };
        let Some(latest) = self.live(&target, &owner.id.uid).await? else {
            return Ok(());
        };
        if latest.deletion_timestamp.is_none() {
            return Ok(());
        }
        let finalizers = latest.finalizers.as_deref().unwrap_or_default();
        let Some(kept) = decide::without_finalizer(finalizers, finalizer) else {
            return Ok(());
        };
        tracing::info!(object = %owner.id, finalizer, "removing finalizer");
        let patch = json!({"metadata": {
            "resourceVersion": latest.resource_version,
            "finalizers": kept,
        }});
        self.cluster.patch_metadata(&target, patch).await
    }

    /// Sets the object's owner references, if it has not changed since `latest`.
    async fn patch_owner_refs(
        &self,
        target: &Target,
        latest: &ObjectMeta,
        refs: Vec<OwnerReference>,
    ) -> Result<(), Error> {
        let refs = if refs.is_empty() {
            serde_json::Value::Null
        } else {
            json!(refs)
        };
        let patch = json!({"metadata": {
            "resourceVersion": latest.resource_version,
            "ownerReferences": refs,
        }});
        self.cluster.patch_metadata(target, patch).await
    }

    /// Deletes the object as read in `latest`. If it changed meanwhile but its owner
    /// references did not (a busy object: status updates), the delete is repeated
    /// without the resourceVersion precondition, as upstream does.
    async fn delete(
        &self,
        target: &Target,
        latest: &ObjectMeta,
        policy: Policy,
    ) -> Result<(), Error> {
        let uid = latest.uid.as_deref().unwrap_or_default();
        let first = self
            .cluster
            .delete(target, uid, latest.resource_version.as_deref(), policy)
            .await;
        match first {
            Err(e) if e.is_conflict() => {
                let Some(now) = self.live(target, uid).await? else {
                    return Ok(());
                };
                if now.owner_references == latest.owner_references {
                    self.cluster.delete(target, uid, None, policy).await
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// The object's metadata read live, if it still exists with this uid.
    async fn live(&self, target: &Target, uid: &str) -> Result<Option<ObjectMeta>, Error> {
        Ok(self
            .cluster
            .get(target)
            .await?
            .filter(|meta| meta.uid.as_deref() == Some(uid)))
    }

    fn absent(&self) -> MutexGuard<'_, AbsentOwners> {
        self.absent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// Whether the graph node is the object at `target` (same kind, namespace and name).
fn is_at(node: &Node, target: &Target) -> bool {
    node.id.group() == target.resource.api.group
        && node.id.kind == target.resource.api.kind
        && node.id.namespace == target.namespace
        && node.id.name == target.name
}

fn absent_key(target: &Target, uid: &str) -> String {
    format!(
        "{}/{}/{}/{}/{uid}",
        target.resource.api.group, target.resource.api.kind, target.namespace, target.name
    )
}
