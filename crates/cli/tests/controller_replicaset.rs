//! The ReplicaSet controller inside `mast server` (API server, scheduler, controllers),
//! against plain Node objects that nobody runs. The test plays the kubelet: it marks
//! bound pods Running and Ready through `pods/status`, and it finishes graceful
//! deletions, since the API server (`handlers/delete.rs`) leaves a deleted pod that is
//! bound to a node terminating (deletionTimestamp set) until its kubelet deletes it
//! with grace 0. "Active" below means what the controller counts: not terminating, not
//! finished.
//!
//! A watch on the namespace follows every pod change, so "never more than N pods at
//! once" is checked on every intermediate state, not just on samples.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, Server, unique_name};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

/// How long one step may take to converge.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// The ReplicaSets' minReadySeconds: availability must come without further events.
const MIN_READY_SECONDS: i32 = 2;

fn app_of(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get("app").map(String::as_str)
}

fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What the watch has seen of the namespace's pods.
#[derive(Debug, Default)]
struct Seen {
    synced: bool,
    pods: BTreeMap<String, Pod>,
    /// Per `app` label: every pod name ever seen with it.
    names: BTreeMap<String, BTreeSet<String>>,
    /// Per pod name: every controller UID it ever had.
    controllers: BTreeMap<String, BTreeSet<String>>,
    /// Per `app` label: the most active pods at once since the last reset.
    peak: BTreeMap<String, usize>,
}

impl Seen {
    fn active(&self, app: &str) -> usize {
        self.pods
            .values()
            .filter(|p| app_of(p) == Some(app) && is_active(p))
            .count()
    }

    fn apply(&mut self, pod: Pod) {
        let pod_name = name(&pod);
        if let Some(app) = app_of(&pod) {
            self.names
                .entry(app.to_string())
                .or_default()
                .insert(pod_name.clone());
        }
        if let Some(uid) = controller_uid(&pod) {
            self.controllers
                .entry(pod_name.clone())
                .or_default()
                .insert(uid.to_string());
        }
        self.pods.insert(pod_name, pod);
        self.update_peaks();
    }

    fn update_peaks(&mut self) {
        let apps: BTreeSet<String> = self
            .pods
            .values()
            .filter_map(app_of)
            .map(String::from)
            .collect();
        for app in apps {
            let now = self.active(&app);
            let peak = self.peak.entry(app).or_default();
            *peak = (*peak).max(now);
        }
    }
}

/// A watch on one namespace's pods, stopped on drop.
struct PodWatch {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    async fn start(client: &kube::Client, ns: &str) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                let mut stream = watcher(api, watcher::Config::default())
                    // Spaced retries: once the server is gone at the end of the test, a
                    // watcher without backoff would spin and hold the runtime's shutdown.
                    .default_backoff()
                    .boxed();
                while let Some(event) = stream.next().await {
                    let mut seen = seen.lock().expect("the watch state");
                    match event {
                        Ok(watcher::Event::Init) => seen.pods.clear(),
                        Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) => {
                            seen.apply(pod)
                        }
                        Ok(watcher::Event::InitDone) => seen.synced = true,
                        Ok(watcher::Event::Delete(pod)) => {
                            seen.pods.remove(&name(&pod));
                        }
                        Err(_) => {}
                    }
                }
            }
        });
        let watch = PodWatch { seen, task };
        let synced = || async { watch.seen().synced.then_some(()).ok_or(String::new()) };
        eventually("the pod watch to list", synced).await;
        watch
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().expect("the watch state")
    }

    /// Starts a new peak count for `app` from the pods active now.
    fn reset_peak(&self, app: &str) {
        let mut seen = self.seen();
        let now = seen.active(app);
        seen.peak.insert(app.to_string(), now);
    }

    fn peak(&self, app: &str) -> usize {
        self.seen().peak.get(app).copied().unwrap_or(0)
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` until it returns `Ok`; panics with its last `Err` at the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(state) => state,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A ReplicaSet's status, as the test compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    replicas: i32,
    ready: i32,
    available: i32,
    terminating: i32,
    /// observedGeneration is the current generation.
    observed: bool,
}

impl Counts {
    /// `n` pods, all available, none terminating, the latest spec seen.
    fn settled(n: i32) -> Self {
        Counts {
            replicas: n,
            ready: n,
            available: n,
            terminating: 0,
            observed: true,
        }
    }
}

/// One test namespace with its clients, and the test's kubelet stand-in.
struct Env {
    pods: Api<Pod>,
    replica_sets: Api<ReplicaSet>,
    ns: String,
    next_ip: AtomicU32,
}

impl Env {
    async fn new(client: &kube::Client) -> Self {
        let ns = unique_name("rs");
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).expect("a namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create the namespace");
        Env {
            pods: Api::namespaced(client.clone(), &ns),
            replica_sets: Api::namespaced(client.clone(), &ns),
            ns,
            next_ip: AtomicU32::new(10),
        }
    }

    async fn create_replica_set(&self, name: &str, app: &str, replicas: i32) -> ReplicaSet {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "replicas": replicas,
                "minReadySeconds": MIN_READY_SECONDS,
                "selector": {"matchLabels": {"app": app}},
                "template": {
                    "metadata": {"labels": {"app": app}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }))
        .expect("a replica set");
        self.replica_sets
            .create(&PostParams::default(), &rs)
            .await
            .expect("create the replica set")
    }

    async fn create_orphan(&self, name: &str, app: &str) -> Pod {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.ns, "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }))
        .expect("a pod");
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("create the orphan pod")
    }

    async fn scale(&self, name: &str, replicas: i32) {
        let patch = json!({"spec": {"replicas": replicas}});
        self.replica_sets
            .patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("scale the replica set");
    }

    async fn list(&self) -> Vec<Pod> {
        self.pods
            .list(&ListParams::default())
            .await
            .expect("list pods")
            .items
    }

    /// The active pods labelled `app`, by name.
    async fn active(&self, app: &str) -> BTreeMap<String, Pod> {
        self.list()
            .await
            .into_iter()
            .filter(|p| app_of(p) == Some(app) && is_active(p))
            .map(|p| (name(&p), p))
            .collect()
    }

    /// As a kubelet would: bound pods that are not ready yet start, become Ready and
    /// get an IP.
    async fn run_bound_pods(&self) {
        for pod in self.list().await {
            let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
            if !bound || !is_active(&pod) || is_ready(&pod) {
                continue;
            }
            let ip = self.next_ip.fetch_add(1, Ordering::Relaxed);
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let status = json!({"status": {
                "phase": "Running",
                "podIP": format!("10.42.0.{ip}"),
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
            }});
            let result = self
                .pods
                .patch_status(&name(&pod), &PatchParams::default(), &Patch::Merge(&status))
                .await;
            // A pod deleted meanwhile is fine; anything else is a failure.
            if let Err(kube::Error::Api(status)) = &result
                && status.code == 404
            {
                continue;
            }
            result.expect("mark a pod running and ready");
        }
    }

    /// As a kubelet would: terminating pods are stopped and deleted with grace 0.
    async fn finish_deletions(&self) {
        for pod in self.list().await {
            if pod.metadata.deletion_timestamp.is_none() {
                continue;
            }
            let result = self
                .pods
                .delete(&name(&pod), &DeleteParams::default().grace_period(0))
                .await;
            if let Err(kube::Error::Api(status)) = &result
                && status.code == 404
            {
                continue;
            }
            result.expect("finish a pod's deletion");
        }
    }

    async fn status(&self, name: &str) -> Counts {
        let rs = self
            .replica_sets
            .get(name)
            .await
            .expect("get the replica set");
        let s = rs.status.unwrap_or_default();
        Counts {
            replicas: s.replicas,
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            terminating: s.terminating_replicas.unwrap_or(0),
            observed: s.observed_generation == rs.metadata.generation,
        }
    }

    /// Waits until `app` has exactly `replicas` active pods, all owned by `rs`,
    /// running and ready, and the status says so (available too), with no pod left
    /// terminating. Plays the kubelet meanwhile.
    async fn converge(&self, rs: &ReplicaSet, app: &str, replicas: usize) -> BTreeMap<String, Pod> {
        let rs_name = rs.metadata.name.as_deref().unwrap_or_default();
        let uid = rs.metadata.uid.as_deref().unwrap_or_default();
        let n = i32::try_from(replicas).expect("a small count");
        eventually(
            &format!("{rs_name} to converge at {replicas}"),
            || async move {
                self.run_bound_pods().await;
                self.finish_deletions().await;
                let active = self.active(app).await;
                let owned = active
                    .values()
                    .filter(|p| controller_uid(p) == Some(uid))
                    .count();
                let ready = active.values().filter(|p| is_ready(p)).count();
                let status = self.status(rs_name).await;
                let pods_done = active.len() == replicas && owned == replicas && ready == replicas;
                if pods_done && status == Counts::settled(n) {
                    Ok(active)
                } else {
                    let names: Vec<&String> = active.keys().collect();
                    Err(format!(
                        "{owned} owned, {ready} ready of {names:?}; {status:?}"
                    ))
                }
            },
        )
        .await
    }
}

async fn create_node(client: &kube::Client, name: &str) {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "8", "memory": "64Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))
    .expect("a node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create a node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_sets_keep_their_pods() {
    // Nodes without kubelets must not be declared lost while the test runs.
    let server = Server::start_control_plane(
        Backend::Sqlite,
        &[
            "--node-monitor-grace-period",
            "1h",
            "--node-startup-grace-period",
            "1h",
        ],
    );
    let client = server.client().await;
    let prefix = unique_name("node");
    for i in 0..2 {
        create_node(&client, &format!("{prefix}-{i}")).await;
    }
    let env = &Env::new(&client).await;
    let watch = &PodWatch::start(&client, &env.ns).await;

    // Three pods, never more at any moment, all owned by the ReplicaSet.
    let web = env.create_replica_set("web", "web", 3).await;
    let web_uid = web.metadata.uid.as_deref().expect("a uid");
    let pods = env.converge(&web, "web", 3).await;
    assert_eq!(watch.peak("web"), 3, "pods seen at once");
    for pod in pods.values() {
        assert!(
            pod.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("web-"))
        );
        let reference = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.uid == web_uid)
            .expect("an owner reference to the ReplicaSet");
        assert_eq!(
            (reference.kind.as_str(), reference.api_version.as_str()),
            ("ReplicaSet", "apps/v1")
        );
        assert_eq!(reference.controller, Some(true));
        assert_eq!(reference.block_owner_deletion, Some(true));
    }

    // Scaled up through the scale subresource: five, never more.
    env.scale("web", 5).await;
    env.converge(&web, "web", 5).await;
    assert_eq!(watch.peak("web"), 5, "pods seen at once while scaling up");

    // Scaled down: the four deleted pods are bound, so they stay terminating until
    // their "kubelet" (this test) finishes them; the status counts them meanwhile.
    env.scale("web", 1).await;
    eventually("four pods terminating and one active", || async move {
        let active = env.active("web").await.len();
        let status = env.status("web").await;
        let four_terminating = Counts {
            terminating: 4,
            ..Counts::settled(1)
        };
        if active == 1 && status == four_terminating {
            Ok(())
        } else {
            Err(format!("{active} active, status {status:?}"))
        }
    })
    .await;
    let survivor = env.converge(&web, "web", 1).await;
    let survivor = survivor.keys().next().cloned().expect("one pod");
    assert_eq!(watch.peak("web"), 5, "scaling down never adds pods");

    // A deleted pod is replaced.
    watch.reset_peak("web");
    env.pods
        .delete(&survivor, &DeleteParams::default())
        .await
        .expect("delete the pod");
    let replaced = env.converge(&web, "web", 1).await;
    assert!(
        !replaced.contains_key(&survivor),
        "a new pod replaces {survivor}"
    );
    assert_eq!(
        watch.peak("web"),
        1,
        "the replacement comes after the deletion"
    );
    let current = replaced.keys().next().cloned().expect("one pod");
    let current = current.as_str();

    // A matching orphan while the ReplicaSet is full: adopted, then the surplus goes,
    // and the surplus is the orphan (not ready, so it ranks first for deletion).
    // `other` is created first, for the next step.
    let other_orphan = env.create_orphan("other-orphan", "other").await;
    env.create_orphan("web-orphan", "web").await;
    eventually("the orphan adopted and deleted", || async move {
        let adopted = watch
            .seen()
            .controllers
            .get("web-orphan")
            .is_some_and(|uids| uids.contains(web_uid));
        let active = env.active("web").await;
        if adopted && active.len() == 1 && active.contains_key(current) {
            Ok(())
        } else {
            Err(format!(
                "adopted: {adopted}; active: {:?}",
                active.keys().collect::<Vec<_>>()
            ))
        }
    })
    .await;
    env.converge(&web, "web", 1).await;

    // A matching orphan while a new ReplicaSet is short of pods: adopted instead of a
    // pod created. The controller's pod cache already holds it: "web-orphan", created
    // after it on the same watch, was adopted above.
    let other = env.create_replica_set("other", "other", 3).await;
    let other_uid = other.metadata.uid.clone().expect("a uid");
    let pods = env.converge(&other, "other", 3).await;
    let orphan_name = name(&other_orphan);
    let adopted = pods
        .get(&orphan_name)
        .expect("the orphan is one of the three");
    assert_eq!(controller_uid(adopted), Some(other_uid.as_str()));
    let names = watch.seen().names.get("other").cloned().unwrap_or_default();
    assert_eq!(
        names.len(),
        3,
        "two pods created besides the orphan: {names:?}"
    );
    assert_eq!(watch.peak("other"), 3);

    // A pod relabelled out of the selector is released and replaced.
    let patch = json!({"metadata": {"labels": {"app": "web-released"}}});
    env.pods
        .patch(current, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("relabel the pod");
    let replacement = env.converge(&web, "web", 1).await;
    assert!(!replacement.contains_key(current));
    eventually("the relabelled pod released", || async move {
        let pod = env.pods.get(current).await.expect("the released pod stays");
        let active = is_active(&pod);
        let owners = pod.metadata.owner_references.unwrap_or_default();
        if owners.iter().all(|r| r.uid != web_uid) && active {
            Ok(())
        } else {
            Err(format!("owners: {owners:?}"))
        }
    })
    .await;
}

/// `kubectl describe rs` tells what the controller did: upstream's reasons and
/// messages, one event per pod created or deleted. No nodes: the pods stay unbound, so
/// their deletion is immediate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_sets_record_events() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let env = &Env::new(&client).await;
    let events: &Api<Event> = &Api::namespaced(client.clone(), &env.ns);
    let rs = env.create_replica_set("web", "web", 2).await;
    let uid = rs.metadata.uid.as_deref().expect("a uid");
    // Messages of the ReplicaSet's events with `reason`, sorted.
    let messages = |reason: &'static str| async move {
        let list = events
            .list(&ListParams::default())
            .await
            .expect("list events");
        let mut found: Vec<String> = list
            .items
            .into_iter()
            .filter(|e| e.involved_object.uid.as_deref() == Some(uid))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.message)
            .collect();
        found.sort();
        found
    };

    let pods = eventually("two pods", || async move {
        let active = env.active("web").await;
        if active.len() == 2 {
            Ok(active)
        } else {
            Err(format!("{active:?}"))
        }
    })
    .await;
    let created: Vec<String> = pods.keys().map(|p| format!("Created pod: {p}")).collect();
    eventually("an event per pod created", || async {
        let found = messages("SuccessfulCreate").await;
        if found == created {
            Ok(())
        } else {
            Err(format!("{found:?}"))
        }
    })
    .await;

    env.scale("web", 0).await;
    let deleted: Vec<String> = pods.keys().map(|p| format!("Deleted pod: {p}")).collect();
    eventually("an event per pod deleted", || async {
        let found = messages("SuccessfulDelete").await;
        if found == deleted {
            Ok(())
        } else {
            Err(format!("{found:?}"))
        }
    })
    .await;
}
