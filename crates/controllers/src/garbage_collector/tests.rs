//! The collector end to end against a fake API server that, like a watch, feeds every
//! change it makes back into the graph.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::core::ApiResource;
use serde_json::Value;

use super::cluster::{Cluster, ResourceInfo, Resources, Target};
use super::collector::{Collector, State};
use super::decide::Policy;
use super::graph::{FOREGROUND_FINALIZER, Node, ORPHAN_FINALIZER, ObjectId};
use crate::error::Error;

/// (kind, namespace, name)
type Key = (String, String, String);

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Get(String),
    Delete {
        object: String,
        policy: Policy,
        with_rv: bool,
    },
    Patch(String),
}

#[derive(Debug, Default)]
struct World {
    objects: BTreeMap<Key, (String, ObjectMeta)>,
    calls: Vec<Call>,
    next_rv: u64,
    /// The next delete finds the object changed (409), as a busy object would.
    conflict_next_delete: bool,
}

/// A fake API server sharing its world with the test.
#[derive(Debug, Clone)]
struct Fake {
    world: Arc<Mutex<World>>,
    state: Arc<State>,
}

impl Fake {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("world lock")
    }

    fn key(target: &Target) -> Key {
        (
            target.resource.api.kind.clone(),
            target.namespace.clone(),
            target.name.clone(),
        )
    }

    /// Stores the object and tells the graph, as a watch event would.
    fn store(&self, api_version: &str, mut meta: ObjectMeta) {
        let kind = kind_of(&meta);
        let key = (
            kind.clone(),
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        );
        {
            let mut world = self.world();
            world.next_rv += 1;
            meta.resource_version = Some(world.next_rv.to_string());
            world
                .objects
                .insert(key, (api_version.to_string(), meta.clone()));
        }
        let node =
            Node::from_meta(api_version, &kind, 0, &strip_kind(meta)).expect("a valid object");
        self.state.upsert(node);
    }

    fn drop_object(&self, key: &Key) {
        let removed = self.world().objects.remove(key);
        if let Some((_, meta)) = removed {
            self.state.remove(meta.uid.as_deref().unwrap_or_default());
        }
    }

    fn get_meta(&self, kind: &str, ns: &str, name: &str) -> Option<ObjectMeta> {
        self.world()
            .objects
            .get(&(kind.into(), ns.into(), name.into()))
            .map(|(_, m)| m.clone())
    }

    fn calls(&self) -> Vec<Call> {
        self.world().calls.clone()
    }

    fn conflict(what: &str) -> Error {
        Error::Api(kube::Error::Api(
            kube::core::Status {
                code: 409,
                ..kube::core::Status::failure(what, "Conflict")
            }
            .boxed(),
        ))
    }
}

impl Cluster for Fake {
    async fn get(&self, target: &Target) -> Result<Option<ObjectMeta>, Error> {
        let mut world = self.world();
        world.calls.push(Call::Get(target.to_string()));
        Ok(world
            .objects
            .get(&Self::key(target))
            .map(|(_, m)| strip_kind(m.clone())))
    }

    async fn delete(
        &self,
        target: &Target,
        uid: &str,
        resource_version: Option<&str>,
        policy: Policy,
    ) -> Result<(), Error> {
        let key = Self::key(target);
        let (api_version, mut meta) = {
            let mut world = self.world();
            world.calls.push(Call::Delete {
                object: target.to_string(),
                policy,
                with_rv: resource_version.is_some(),
            });
            let Some(found) = world.objects.get(&key).cloned() else {
                return Ok(());
            };
            let stale =
                resource_version.is_some_and(|rv| Some(rv) != found.1.resource_version.as_deref());
            if found.1.uid.as_deref() != Some(uid)
                || stale
                || std::mem::take(&mut world.conflict_next_delete)
            {
                return Err(Self::conflict("precondition failed"));
            }
            found
        };
        let finalizer = match policy {
            Policy::Background => None,
            Policy::Foreground => Some(FOREGROUND_FINALIZER),
            Policy::Orphan => Some(ORPHAN_FINALIZER),
        };
        let mut finalizers = meta.finalizers.clone().unwrap_or_default();
        if let Some(f) = finalizer.filter(|f| !finalizers.iter().any(|x| x == f)) {
            finalizers.push(f.to_string());
        }
        if finalizers.is_empty() {
            self.drop_object(&key);
        } else {
            meta.finalizers = Some(finalizers);
            meta.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
            self.store(&api_version, meta);
        }
        Ok(())
    }

    async fn patch_metadata(&self, target: &Target, patch: Value) -> Result<(), Error> {
        let key = Self::key(target);
        let (api_version, mut meta) = {
            let mut world = self.world();
            world.calls.push(Call::Patch(target.to_string()));
            let Some(found) = world.objects.get(&key).cloned() else {
                return Ok(());
            };
            found
        };
        let m = &patch["metadata"];
        if let Some(rv) = m.get("resourceVersion").and_then(Value::as_str)
            && Some(rv) != meta.resource_version.as_deref()
        {
            return Err(Self::conflict("stale resourceVersion"));
        }
        if let Some(refs) = m.get("ownerReferences") {
            meta.owner_references = serde_json::from_value(refs.clone()).expect("owner references");
        }
        if let Some(f) = m.get("finalizers") {
            meta.finalizers = serde_json::from_value(f.clone()).expect("finalizers");
        }
        let finished =
            meta.deletion_timestamp.is_some() && meta.finalizers.as_ref().is_none_or(Vec::is_empty);
        if finished {
            self.drop_object(&key);
        } else {
            self.store(&api_version, meta);
        }
        Ok(())
    }
}

/// The fake keeps the kind in an annotation of the metadata (metadata has no kind).
const KIND: &str = "test/kind";

fn kind_of(meta: &ObjectMeta) -> String {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(KIND))
        .cloned()
        .unwrap_or_default()
}

fn strip_kind(mut meta: ObjectMeta) -> ObjectMeta {
    meta.annotations = None;
    meta
}

fn resource(kind: &str, plural: &str, namespaced: bool) -> ResourceInfo {
    ResourceInfo {
        api: ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        },
        namespaced,
    }
}

struct Fixture {
    fake: Fake,
    collector: Collector<Fake>,
}

impl Fixture {
    fn new() -> Self {
        let state = Arc::new(State::default());
        let mut resources = Resources::default();
        resources.insert(resource("ConfigMap", "configmaps", true));
        resources.insert(resource("Secret", "secrets", true));
        resources.insert(resource("Node", "nodes", false));
        state.set_resources(resources);
        let fake = Fake {
            world: Arc::default(),
            state: state.clone(),
        };
        Fixture {
            collector: Collector::new(fake.clone(), state),
            fake,
        }
    }

    /// Creates an object; owners are (kind, name, uid, blockOwnerDeletion).
    fn create(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        uid: &str,
        owners: &[(&str, &str, &str, bool)],
    ) {
        let refs: Vec<OwnerReference> = owners
            .iter()
            .map(|(kind, name, uid, block)| OwnerReference {
                api_version: "v1".into(),
                kind: (*kind).into(),
                name: (*name).into(),
                uid: (*uid).into(),
                block_owner_deletion: Some(*block),
                controller: None,
            })
            .collect();
        let meta = ObjectMeta {
            name: Some(name.into()),
            namespace: (!ns.is_empty()).then(|| ns.to_string()),
            uid: Some(uid.into()),
            owner_references: (!refs.is_empty()).then_some(refs),
            annotations: Some([(KIND.to_string(), kind.to_string())].into()),
            ..ObjectMeta::default()
        };
        self.fake.store("v1", meta);
    }

    /// Marks an object deleted with a finalizer-carrying policy.
    fn delete_with(&self, kind: &str, ns: &str, name: &str, policy: Policy) {
        let key = (kind.to_string(), ns.to_string(), name.to_string());
        let (_, meta) = self
            .fake
            .world()
            .objects
            .get(&key)
            .cloned()
            .expect("object exists");
        let mut meta = meta;
        meta.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let f = match policy {
            Policy::Foreground => FOREGROUND_FINALIZER,
            Policy::Orphan => ORPHAN_FINALIZER,
            Policy::Background => unreachable!("background deletes at once"),
        };
        meta.finalizers = Some(vec![f.to_string()]);
        self.fake.store("v1", meta);
    }

    /// Deletes an object outright (as the API server does without finalizers).
    fn delete_now(&self, kind: &str, ns: &str, name: &str) {
        self.fake
            .drop_object(&(kind.into(), ns.into(), name.into()));
    }

    fn exists(&self, kind: &str, ns: &str, name: &str) -> bool {
        self.fake.get_meta(kind, ns, name).is_some()
    }

    fn owner_uids(&self, kind: &str, ns: &str, name: &str) -> Vec<String> {
        self.fake
            .get_meta(kind, ns, name)
            .and_then(|m| m.owner_references)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.uid)
            .collect()
    }

    /// Runs the workers until the queue is empty (bounded, so a livelock fails).
    async fn settle(&self) {
        let queue = self.collector.state().queue().clone();
        for _ in 0..1000 {
            if queue.is_empty() {
                return;
            }
            let Some(key) = queue.next().await else {
                return;
            };
            self.collector
                .reconcile(&key)
                .await
                .expect("reconcile succeeds");
            queue.done(&key);
        }
        panic!("the collector did not settle");
    }

    async fn sync_and_settle(&self) {
        self.collector.state().mark_synced();
        self.settle().await;
    }

    fn deletes(&self) -> Vec<(String, Policy)> {
        self.fake
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Delete { object, policy, .. } => Some((object, policy)),
                _ => None,
            })
            .collect()
    }
}

fn id(ns: &str, name: &str, uid: &str) -> ObjectId {
    ObjectId {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: ns.into(),
        name: name.into(),
        uid: uid.into(),
    }
}

#[tokio::test]
async fn deleting_an_owner_deletes_dependents_and_releases_shared_ones() {
    let f = Fixture::new();
    f.create("ConfigMap", "ns", "owner", "o", &[]);
    f.create("ConfigMap", "ns", "other", "p", &[]);
    f.create(
        "ConfigMap",
        "ns",
        "a",
        "a",
        &[("ConfigMap", "owner", "o", false)],
    );
    f.create(
        "Secret",
        "ns",
        "s",
        "s",
        &[("ConfigMap", "owner", "o", true)],
    );
    f.create(
        "ConfigMap",
        "ns",
        "shared",
        "b",
        &[
            ("ConfigMap", "owner", "o", false),
            ("ConfigMap", "other", "p", false),
        ],
    );
    f.sync_and_settle().await;
    assert!(f.deletes().is_empty(), "every owner exists: nothing to do");
    assert!(
        f.fake.calls().is_empty(),
        "owners present in the graph need no API call: {:?}",
        f.fake.calls()
    );

    f.delete_now("ConfigMap", "ns", "owner");
    f.settle().await;
    assert!(!f.exists("ConfigMap", "ns", "a"));
    assert!(!f.exists("Secret", "ns", "s"));
    assert!(
        f.exists("ConfigMap", "ns", "shared"),
        "it still has an owner"
    );
    assert_eq!(f.owner_uids("ConfigMap", "ns", "shared"), ["p"]);
    let mut deletes = f.deletes();
    deletes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        deletes,
        [
            ("ConfigMap ns/a".to_string(), Policy::Background),
            ("Secret ns/s".to_string(), Policy::Background),
        ]
    );
    assert!(f.exists("ConfigMap", "ns", "other"));
}

#[tokio::test]
async fn a_dependent_of_an_owner_that_never_existed_is_collected() {
    let f = Fixture::new();
    f.create(
        "ConfigMap",
        "ns",
        "ghost-dep",
        "g",
        &[("ConfigMap", "ghost", "never", false)],
    );
    // An owner of that name exists, but it is another object (another uid).
    f.create("ConfigMap", "ns", "real", "r1", &[]);
    f.create(
        "ConfigMap",
        "ns",
        "impostor-dep",
        "i",
        &[("ConfigMap", "real", "r0", false)],
    );
    f.create(
        "ConfigMap",
        "ns",
        "kept",
        "k",
        &[("ConfigMap", "real", "r1", false)],
    );
    f.sync_and_settle().await;
    assert!(!f.exists("ConfigMap", "ns", "ghost-dep"));
    assert!(!f.exists("ConfigMap", "ns", "impostor-dep"));
    assert!(f.exists("ConfigMap", "ns", "kept"));
}

#[tokio::test]
async fn nothing_is_decided_before_the_graph_is_synced() {
    let f = Fixture::new();
    f.create(
        "ConfigMap",
        "ns",
        "dep",
        "d",
        &[("ConfigMap", "ghost", "never", false)],
    );
    f.collector
        .reconcile(&id("ns", "dep", "d"))
        .await
        .expect("reconcile");
    assert!(f.fake.calls().is_empty());
    assert!(
        f.collector.state().queue().is_empty(),
        "changes before sync enqueue nothing"
    );
    f.sync_and_settle().await;
    assert!(!f.exists("ConfigMap", "ns", "dep"), "synced: collected");
}

#[tokio::test]
async fn invalid_owner_references_resolve_to_nothing() {
    let f = Fixture::new();
    f.create("ConfigMap", "ns1", "owner", "o", &[]);
    // Another namespace's owner: looked up in the dependent's namespace, not found.
    f.create(
        "ConfigMap",
        "ns2",
        "cross",
        "x",
        &[("ConfigMap", "owner", "o", false)],
    );
    // A cluster-scoped object cannot have a namespaced owner.
    f.create(
        "Node",
        "",
        "node",
        "n",
        &[("ConfigMap", "owner", "o", false)],
    );
    // An owner of a kind nobody serves cannot be checked: the object stays.
    f.create(
        "ConfigMap",
        "ns1",
        "strange",
        "s",
        &[("Widget", "w", "w", false)],
    );
    // A cluster-scoped owner of a namespaced object is fine.
    f.create("Node", "", "host", "h", &[]);
    f.create(
        "ConfigMap",
        "ns1",
        "on-host",
        "oh",
        &[("Node", "host", "h", false)],
    );
    f.sync_and_settle().await;
    assert!(!f.exists("ConfigMap", "ns2", "cross"));
    assert!(!f.exists("Node", "", "node"));
    assert!(f.exists("ConfigMap", "ns1", "strange"));
    assert!(f.exists("ConfigMap", "ns1", "on-host"));
    f.delete_now("Node", "", "host");
    f.settle().await;
    assert!(
        !f.exists("ConfigMap", "ns1", "on-host"),
        "a deleted Node's objects go"
    );
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents_then_releases_the_owner() {
    let f = Fixture::new();
    f.create("ConfigMap", "ns", "owner", "o", &[]);
    f.create(
        "ConfigMap",
        "ns",
        "blocker",
        "a",
        &[("ConfigMap", "owner", "o", true)],
    );
    f.create(
        "ConfigMap",
        "ns",
        "plain",
        "b",
        &[("ConfigMap", "owner", "o", false)],
    );
    f.create(
        "ConfigMap",
        "ns",
        "parent",
        "c",
        &[("ConfigMap", "owner", "o", true)],
    );
    f.create(
        "ConfigMap",
        "ns",
        "grandchild",
        "d",
        &[("ConfigMap", "parent", "c", true)],
    );
    // A stand-in for a dependent the collector cannot delete at once (a pod waiting
    // for its kubelet): it holds a finalizer of its own.
    f.create(
        "Secret",
        "ns",
        "slow",
        "s",
        &[("ConfigMap", "owner", "o", true)],
    );
    {
        let mut world = f.fake.world();
        let key = ("Secret".to_string(), "ns".to_string(), "slow".to_string());
        if let Some((_, meta)) = world.objects.get_mut(&key) {
            meta.finalizers = Some(vec!["example.com/hold".into()]);
        }
    }
    f.sync_and_settle().await;

    f.delete_with("ConfigMap", "ns", "owner", Policy::Foreground);
    f.settle().await;
    assert!(!f.exists("ConfigMap", "ns", "blocker"));
    assert!(!f.exists("ConfigMap", "ns", "plain"));
    assert!(!f.exists("ConfigMap", "ns", "parent"));
    assert!(!f.exists("ConfigMap", "ns", "grandchild"));
    let parent_policy = f
        .deletes()
        .into_iter()
        .find(|(o, _)| o == "ConfigMap ns/parent")
        .map(|(_, p)| p);
    assert_eq!(
        parent_policy,
        Some(Policy::Foreground),
        "a dependent with dependents goes in the foreground"
    );
    assert!(
        f.exists("Secret", "ns", "slow"),
        "held by its own finalizer"
    );
    let owner = f
        .fake
        .get_meta("ConfigMap", "ns", "owner")
        .expect("the owner waits");
    assert_eq!(
        owner.finalizers.as_deref(),
        Some(&[FOREGROUND_FINALIZER.to_string()][..])
    );

    // The slow dependent finally goes: the owner is released and deleted.
    f.delete_now("Secret", "ns", "slow");
    f.settle().await;
    assert!(!f.exists("ConfigMap", "ns", "owner"));
}

#[tokio::test]
async fn foreground_owner_without_blocking_dependents_goes_at_once() {
    let f = Fixture::new();
    f.create("ConfigMap", "ns", "owner", "o", &[]);
    f.create(
        "ConfigMap",
        "ns",
        "free",
        "a",
        &[("ConfigMap", "owner", "o", false)],
    );
    f.create("ConfigMap", "ns", "elsewhere", "e", &[]);
    f.create(
        "ConfigMap",
        "ns",
        "shared",
        "b",
        &[
            ("ConfigMap", "owner", "o", true),
            ("ConfigMap", "elsewhere", "e", false),
        ],
    );
    f.sync_and_settle().await;
    f.delete_with("ConfigMap", "ns", "owner", Policy::Foreground);
    f.settle().await;
    assert!(!f.exists("ConfigMap", "ns", "owner"));
    assert!(!f.exists("ConfigMap", "ns", "free"));
    assert!(
        f.exists("ConfigMap", "ns", "shared"),
        "kept by its other owner"
    );
    assert_eq!(f.owner_uids("ConfigMap", "ns", "shared"), ["e"]);
}

#[tokio::test]
async fn orphaning_removes_the_reference_from_every_dependent_then_the_finalizer() {
    let f = Fixture::new();
    f.create("ConfigMap", "ns", "owner", "o", &[]);
    f.create("ConfigMap", "ns", "other", "p", &[]);
    f.create(
        "ConfigMap",
        "ns",
        "a",
        "a",
        &[("ConfigMap", "owner", "o", true)],
    );
    f.create(
        "Secret",
        "ns",
        "b",
        "b",
        &[
            ("ConfigMap", "owner", "o", false),
            ("ConfigMap", "other", "p", false),
        ],
    );
    f.sync_and_settle().await;
    f.delete_with("ConfigMap", "ns", "owner", Policy::Orphan);
    f.settle().await;
    assert!(
        !f.exists("ConfigMap", "ns", "owner"),
        "released once orphaning is done"
    );
    assert!(f.exists("ConfigMap", "ns", "a"));
    assert!(f.owner_uids("ConfigMap", "ns", "a").is_empty());
    assert_eq!(f.owner_uids("Secret", "ns", "b"), ["p"]);
    assert!(f.deletes().is_empty(), "orphaning deletes nothing");
}

#[tokio::test]
async fn a_busy_object_is_deleted_when_only_its_resource_version_moved() {
    let f = Fixture::new();
    f.create(
        "ConfigMap",
        "ns",
        "dep",
        "d",
        &[("ConfigMap", "gone", "g", false)],
    );
    f.fake.world().conflict_next_delete = true;
    f.sync_and_settle().await;
    assert!(!f.exists("ConfigMap", "ns", "dep"));
    let with_rv: Vec<bool> = f
        .fake
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Delete { with_rv, .. } => Some(with_rv),
            _ => None,
        })
        .collect();
    assert_eq!(with_rv, [true, false]);
}

#[tokio::test]
async fn dependents_waiting_on_an_object_deleted_in_the_foreground_are_unblocked() {
    let f = Fixture::new();
    f.create("ConfigMap", "ns", "owner", "o", &[]);
    // A cycle: middle and loop own each other, both blocking.
    f.create(
        "ConfigMap",
        "ns",
        "loop",
        "l",
        &[("ConfigMap", "middle", "m", true)],
    );
    f.create(
        "ConfigMap",
        "ns",
        "middle",
        "m",
        &[
            ("ConfigMap", "owner", "o", true),
            ("ConfigMap", "loop", "l", true),
        ],
    );
    f.sync_and_settle().await;
    f.delete_with("ConfigMap", "ns", "loop", Policy::Foreground);
    f.delete_with("ConfigMap", "ns", "owner", Policy::Foreground);
    f.settle().await;
    let patched_loop = f
        .fake
        .calls()
        .iter()
        .any(|c| *c == Call::Patch("ConfigMap ns/loop".into()));
    assert!(
        patched_loop,
        "the waiting dependent's reference was unblocked"
    );
    assert!(!f.exists("ConfigMap", "ns", "middle"));
    assert!(!f.exists("ConfigMap", "ns", "loop"), "no deadlock");
    assert!(!f.exists("ConfigMap", "ns", "owner"));
}
