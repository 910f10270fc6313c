//! The Deployment controller inside `mast server`: the ReplicaSets it makes (name,
//! labels, owner, revision annotations), a rolling update within maxSurge that keeps
//! old pods until new ones are available, `kubectl rollout status` and `rollout undo`,
//! pausing, the revision history limit, and Recreate's order (old pods gone before the
//! new ReplicaSet exists).
//!
//! The scheduler binds the pods the ReplicaSet controller creates to a Node object the
//! test creates; the test then plays that node's kubelet itself (a `PodAgent`): it
//! marks pods Running and Ready, but only those of the pod templates it was told to
//! let through, and finishes graceful deletions unless told to hold them. That is how
//! a test controls when a rollout may take its next step.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Server, unique_name};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";

/// What the stand-in kubelet may do.
#[derive(Default)]
struct Gates {
    /// Pod template hashes whose pods may become Ready.
    ready: Mutex<HashSet<String>>,
    /// Every pod may become Ready.
    all_ready: AtomicBool,
    /// Graceful deletions are held (pods stay terminating).
    hold_deletions: AtomicBool,
}

/// Plays the kubelet of the test's node: Ready for the pods it may make Ready, and
/// the final deletion of terminating pods. Stops when dropped.
struct PodAgent {
    gates: Arc<Gates>,
    task: tokio::task::JoinHandle<()>,
}

impl PodAgent {
    fn start(client: kube::Client, ns: &str) -> Self {
        let gates = Arc::new(Gates::default());
        let task = tokio::spawn(run_agent(client, ns.to_string(), gates.clone()));
        PodAgent { gates, task }
    }

    fn allow(&self, hash: &str) {
        let mut ready = self.gates.ready.lock().unwrap_or_else(|e| e.into_inner());
        ready.insert(hash.to_string());
    }

    fn allow_all(&self) {
        self.gates.all_ready.store(true, Ordering::Relaxed);
    }

    fn hold_deletions(&self, hold: bool) {
        self.gates.hold_deletions.store(hold, Ordering::Relaxed);
    }
}

impl Drop for PodAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_agent(client: kube::Client, ns: String, gates: Arc<Gates>) {
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let mut next_ip = 2u32;
    loop {
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for pod in list.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some() {
                    if !gates.hold_deletions.load(Ordering::Relaxed) {
                        let _ = pods
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                    }
                    continue;
                }
                let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
                if !bound || is_ready(&pod) || !may_be_ready(&gates, &pod) {
                    continue;
                }
                next_ip += 1;
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({"status": {
                    "phase": "Running",
                    "podIP": format!("10.42.99.{}", next_ip % 250 + 2),
                    "conditions": [
                        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    ],
                }});
                let _ = pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(status))
                    .await;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

fn may_be_ready(gates: &Gates, pod: &Pod) -> bool {
    if gates.all_ready.load(Ordering::Relaxed) {
        return true;
    }
    let hash = label(&pod.metadata.labels, HASH_LABEL);
    let ready = gates.ready.lock().unwrap_or_else(|e| e.into_inner());
    hash.is_some_and(|h| ready.contains(h))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn label<'a>(labels: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    labels.as_ref()?.get(key).map(String::as_str)
}

/// A server with the whole control plane, a namespace, a node, and the node's agent.
struct Env {
    server: Server,
    client: kube::Client,
    ns: String,
    agent: PodAgent,
}

impl Env {
    async fn start() -> Self {
        // Nobody heartbeats for the test's node; keep the node lifecycle controller
        // from declaring it dead (and evicting its pods) while a test runs.
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
        let ns = unique_name("deploy");
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create the namespace");
        let node_name = unique_name("node");
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": node_name, "labels": {"kubernetes.io/hostname": node_name}},
            "status": {
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
        .expect("node");
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .expect("create the node");
        let agent = PodAgent::start(client.clone(), &ns);
        Env {
            server,
            client,
            ns,
            agent,
        }
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn replica_sets(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Polls `check` until it gives a value; at the deadline fails with what it last
    /// said (`Err`) and the server log.
    async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let last = match check().await {
                Ok(value) => return value,
                Err(state) => state,
            };
            if Instant::now() > deadline {
                self.server
                    .fail(&format!("timed out waiting for {what}; last seen: {last}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn create_deployment(
        &self,
        name: &str,
        replicas: i32,
        image: &str,
        extra_spec: serde_json::Value,
    ) {
        let mut spec = json!({
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        });
        for (k, v) in extra_spec.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"team": "web"}},
            "spec": spec,
        }))
        .expect("deployment");
        self.deployments()
            .create(&PostParams::default(), &d)
            .await
            .expect("create the deployment");
    }

    /// A strategic merge patch, as `kubectl patch` sends. It names no resourceVersion,
    /// so the controllers' concurrent writes must never make it conflict.
    async fn patch_deployment(&self, name: &str, patch: serde_json::Value) {
        let result = self
            .deployments()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Strategic(patch.clone()),
            )
            .await;
        if let Err(e) = result {
            self.server.fail(&format!("patch {name} with {patch}: {e}"));
        }
    }

    async fn set_image(&self, name: &str, image: &str) {
        self.patch_deployment(
            name,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}),
        )
        .await;
    }

    /// The ReplicaSets the Deployment controls, lowest revision first.
    async fn owned(&self, d: &Deployment) -> Vec<ReplicaSet> {
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let mut owned: Vec<ReplicaSet> = self
            .replica_sets()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid && o.controller == Some(true))
            })
            .collect();
        owned.sort_by_key(revision);
        owned
    }

    async fn get(&self, name: &str) -> Deployment {
        self.deployments()
            .get(name)
            .await
            .expect("get the deployment")
    }

    /// Waits until the rollout is complete as `kubectl rollout status` judges it, with
    /// `replicas` pods, all from a ReplicaSet running `image`, and every other
    /// ReplicaSet scaled to zero; returns the current ReplicaSet.
    async fn wait_complete(&self, name: &str, replicas: i32, image: &str) -> ReplicaSet {
        self.eventually(
            &format!("{name} rolled out to {replicas} × {image}"),
            || async {
                let d = self.get(name).await;
                let rss = self.owned(&d).await;
                let summary = summarize(&d, &rss);
                let status = d.status.clone().unwrap_or_default();
                let count = |v: Option<i32>| v.unwrap_or(0);
                let complete = status.observed_generation >= d.metadata.generation
                    && count(status.updated_replicas) == replicas
                    && count(status.replicas) == replicas
                    && count(status.available_replicas) == replicas
                    && condition_reason(&d, "Progressing") == Some("NewReplicaSetAvailable".into());
                let current = rss
                    .iter()
                    .find(|rs| image_of(rs) == image && spec_replicas(rs) == replicas);
                let others_empty = rss
                    .iter()
                    .filter(|rs| image_of(rs) != image)
                    .all(|rs| spec_replicas(rs) == 0);
                match current {
                    Some(rs) if complete && others_empty => Ok(rs.clone()),
                    _ => Err(summary),
                }
            },
        )
        .await
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        let (ok, out) = kubectl(self.server.kubeconfig_path(), &all);
        if !ok {
            self.server
                .fail(&format!("kubectl {} failed:\n{out}", args.join(" ")));
        }
        out
    }
}

/// Runs kubectl; returns (success, stdout + stderr).
fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    common::kubectl_text(kubeconfig, args, KUBECTL_TIMEOUT)
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.metadata.annotations.as_ref()?.get(key).cloned()
}

fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn deployment_revision(d: &Deployment) -> Option<String> {
    d.metadata.annotations.as_ref()?.get(REVISION).cloned()
}

fn condition_reason(d: &Deployment, kind: &str) -> Option<String> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(kind))?
        .reason
        .clone()
}

/// The deployment's status and ReplicaSets in one line, for failure messages.
fn summarize(d: &Deployment, rss: &[ReplicaSet]) -> String {
    let sets: Vec<String> = rss
        .iter()
        .map(|rs| {
            let s = rs.status.clone().unwrap_or_default();
            format!(
                "{} rev {} {} spec {} status {}/{} available",
                rs.metadata.name.as_deref().unwrap_or(""),
                revision(rs),
                image_of(rs),
                spec_replicas(rs),
                s.replicas,
                s.available_replicas.unwrap_or(0)
            )
        })
        .collect();
    format!(
        "deployment generation {:?} annotations {:?} status {:?}; replica sets [{}]",
        d.metadata.generation,
        d.metadata.annotations,
        d.status,
        sets.join("; ")
    )
}

/// Every ReplicaSet state the watch delivered, in order: (name, spec.replicas).
struct Timeline {
    seen: Arc<Mutex<Vec<(String, i32)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Timeline {
    fn start(api: Api<ReplicaSet>) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                // Spaced retries: once the server is gone at the end of the test, a
                // watcher without backoff would spin and hold the runtime's shutdown.
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(rs) | watcher::Event::InitApply(rs)) = event {
                    let mut seen = sink.lock().unwrap_or_else(|e| e.into_inner());
                    seen.push((
                        rs.metadata.name.clone().unwrap_or_default(),
                        spec_replicas(&rs),
                    ));
                }
            }
        });
        Timeline { seen, task }
    }

    fn events(&self) -> Vec<(String, i32)> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The largest total of spec.replicas over the states in order.
    fn max_total(&self) -> i32 {
        let mut latest: BTreeMap<String, i32> = BTreeMap::new();
        let mut max = 0;
        for (name, replicas) in self.events() {
            latest.insert(name, replicas);
            max = max.max(latest.values().sum());
        }
        max
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_surges_by_one_and_keeps_old_pods_until_new_ones_are_available() {
    let env = Env::start().await;
    env.create_deployment(
        "web",
        5,
        "nginx:1.25",
        json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
    )
    .await;
    let d = env.get("web").await;

    // One ReplicaSet of 5, revision 1, named and labelled by its template's hash.
    let rs1 = env
        .eventually("the first replica set", || async {
            let rss = env.owned(&d).await;
            match rss.as_slice() {
                [rs] if spec_replicas(rs) == 5 && revision(rs) == 1 => Ok(rs.clone()),
                _ => Err(summarize(&d, &rss)),
            }
        })
        .await;
    let hash1 = label(&rs1.metadata.labels, HASH_LABEL)
        .expect("the replica set has a pod-template-hash label")
        .to_string();
    assert_eq!(
        rs1.metadata.name.as_deref(),
        Some(format!("web-{hash1}").as_str())
    );
    assert_eq!(label(&rs1.metadata.labels, "app"), Some("web"));
    let selector = rs1.spec.selector.match_labels.clone().unwrap_or_default();
    assert_eq!(selector.get(HASH_LABEL), Some(&hash1));
    assert_eq!(selector.get("app").map(String::as_str), Some("web"));
    let template_labels = rs1
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    assert_eq!(template_labels, rs1.metadata.labels);
    let owner = rs1.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.len(), 1, "{owner:?}");
    assert_eq!(
        (owner[0].kind.as_str(), owner[0].name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(owner[0].uid, d.metadata.uid.clone().unwrap_or_default());
    assert_eq!(
        (owner[0].controller, owner[0].block_owner_deletion),
        (Some(true), Some(true))
    );
    assert_eq!(annotation(&rs1, DESIRED_REPLICAS).as_deref(), Some("5"));
    assert_eq!(annotation(&rs1, MAX_REPLICAS).as_deref(), Some("6"));
    assert_eq!(
        annotation(&rs1, "team").as_deref(),
        Some("web"),
        "deployment annotations are copied"
    );
    env.eventually("the deployment's revision annotation", || async {
        let d = env.get("web").await;
        (deployment_revision(&d).as_deref() == Some("1"))
            .then_some(())
            .ok_or_else(|| format!("{:?}", d.metadata.annotations))
    })
    .await;

    // Its pods become available: the rollout completes, and kubectl reports it.
    env.agent.allow(&hash1);
    env.wait_complete("web", 5, "nginx:1.25").await;
    let row = env.kubectl(&["get", "deploy", "web", "--no-headers"]);
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        columns.get(..4),
        Some(&["web", "5/5", "5", "5"][..]),
        "kubectl get deploy: {row}"
    );

    // The scaling shows as upstream's event (`kubectl describe` lists it).
    env.eventually("the scaling event", || async {
        let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
        let list = events
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let want = format!("Scaled up replica set web-{hash1} from 0 to 5");
        list.iter()
            .any(|e| {
                e.reason.as_deref() == Some("ScalingReplicaSet")
                    && e.message.as_deref() == Some(want.as_str())
            })
            .then_some(())
            .ok_or_else(|| format!("{:?}", list.iter().map(|e| &e.message).collect::<Vec<_>>()))
    })
    .await;

    // A new template: a second ReplicaSet, revision 2, one pod above the total; the
    // old one keeps all 5 while no new pod is available.
    let timeline = Timeline::start(env.replica_sets());
    env.set_image("web", "nginx:1.26").await;
    let (old, new) = env
        .eventually("the second replica set with its first pod", || async {
            let d = env.get("web").await;
            let rss = env.owned(&d).await;
            let status = d.status.clone().unwrap_or_default();
            let settled = status.observed_generation >= d.metadata.generation
                && status.updated_replicas == Some(1)
                && deployment_revision(&d).as_deref() == Some("2");
            match rss.as_slice() {
                [old, new] if settled && revision(new) == 2 => Ok((old.clone(), new.clone())),
                _ => Err(summarize(&d, &rss)),
            }
        })
        .await;
    assert_eq!(old.metadata.name, rs1.metadata.name);
    assert_eq!(spec_replicas(&new), 1, "5 + maxSurge 1 - 5 running");
    assert_eq!(
        spec_replicas(&old),
        5,
        "nothing old goes before a new pod is available"
    );
    assert_eq!(image_of(&new), "nginx:1.26");
    let hash2 = label(&new.metadata.labels, HASH_LABEL)
        .unwrap_or_default()
        .to_string();
    assert_ne!(hash1, hash2);

    // New pods become available: old ones make way, one at a time, never above 6.
    env.agent.allow(&hash2);
    env.wait_complete("web", 5, "nginx:1.26").await;
    assert_eq!(
        timeline.max_total(),
        6,
        "surge of 1 over 5: {:?}",
        timeline.events()
    );
    let rollout = env.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(rollout.contains("successfully rolled out"), "{rollout}");

    // Undo: the first template is current again, under the next revision.
    env.kubectl(&["rollout", "undo", "deployment/web"]);
    let current = env.wait_complete("web", 5, "nginx:1.25").await;
    assert_eq!(
        current.metadata.name, rs1.metadata.name,
        "the old replica set is reused"
    );
    assert_eq!(revision(&current), 3);
    assert_eq!(annotation(&current, REVISION_HISTORY).as_deref(), Some("1"));
    let d = env.get("web").await;
    assert_eq!(deployment_revision(&d).as_deref(), Some("3"));
    assert_eq!(env.owned(&d).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_scales_but_does_not_roll_out() {
    let env = Env::start().await;
    env.agent.allow_all();
    env.create_deployment("web", 2, "nginx:1.25", json!({}))
        .await;
    env.wait_complete("web", 2, "nginx:1.25").await;

    env.patch_deployment("web", json!({"spec": {"paused": true}}))
        .await;
    env.eventually("the paused condition", || async {
        let d = env.get("web").await;
        match condition_reason(&d, "Progressing").as_deref() {
            Some("DeploymentPaused") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // A new template while paused: seen (observedGeneration), not rolled out.
    env.set_image("web", "nginx:1.26").await;
    env.patch_deployment("web", json!({"spec": {"replicas": 4}}))
        .await;
    let d = env
        .eventually("the paused deployment scaled to 4", || async {
            let d = env.get("web").await;
            let rss = env.owned(&d).await;
            let observed =
                d.status.as_ref().and_then(|s| s.observed_generation) >= d.metadata.generation;
            match rss.as_slice() {
                [rs] if observed && spec_replicas(rs) == 4 => Ok(d),
                _ => Err(summarize(&d, &rss)),
            }
        })
        .await;
    let rss = env.owned(&d).await;
    assert_eq!(
        rss.len(),
        1,
        "no new replica set while paused: {}",
        summarize(&d, &rss)
    );
    assert_eq!(image_of(&rss[0]), "nginx:1.25");
    assert_eq!(annotation(&rss[0], DESIRED_REPLICAS).as_deref(), Some("4"));

    // Resumed: the rollout happens.
    env.patch_deployment("web", json!({"spec": {"paused": false}}))
        .await;
    let current = env.wait_complete("web", 4, "nginx:1.26").await;
    assert_eq!(revision(&current), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_history_limit_deletes_the_oldest_empty_replica_sets() {
    let env = Env::start().await;
    env.agent.allow_all();
    env.create_deployment(
        "web",
        1,
        "nginx:1",
        json!({"revisionHistoryLimit": 1,
               "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
    )
    .await;
    env.wait_complete("web", 1, "nginx:1").await;
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        env.set_image("web", image).await;
        env.wait_complete("web", 1, image).await;
    }
    let d = env.get("web").await;
    let kept = env
        .eventually("the history trimmed to one old replica set", || async {
            let rss = env.owned(&d).await;
            match rss.as_slice() {
                [old, current] => Ok((
                    revision(old),
                    image_of(old),
                    revision(current),
                    image_of(current),
                )),
                _ => Err(summarize(&d, &rss)),
            }
        })
        .await;
    assert_eq!(kept, (3, "nginx:3".to_string(), 4, "nginx:4".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_removes_old_pods_before_the_new_replica_set_exists() {
    let env = Env::start().await;
    env.agent.allow_all();
    env.create_deployment(
        "web",
        3,
        "nginx:1.25",
        json!({"strategy": {"type": "Recreate"}}),
    )
    .await;
    let rs1 = env.wait_complete("web", 3, "nginx:1.25").await;
    let old_name = rs1.metadata.name.clone().unwrap_or_default();

    // Old pods are told to go but stay terminating: the new ReplicaSet must wait.
    let timeline = Timeline::start(env.replica_sets());
    env.agent.hold_deletions(true);
    env.set_image("web", "nginx:1.26").await;
    let d = env
        .eventually("the old replica set scaled to 0 and seen so", || async {
            let d = env.get("web").await;
            let rss = env.owned(&d).await;
            let status = d.status.clone().unwrap_or_default();
            let seen = status.observed_generation >= d.metadata.generation
                && status.replicas.unwrap_or(0) == 0;
            match rss.as_slice() {
                [rs] if seen && spec_replicas(rs) == 0 => Ok(d),
                _ => Err(summarize(&d, &rss)),
            }
        })
        .await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let terminating = pods
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .count();
    assert_eq!(terminating, 3, "the old pods are still terminating");
    let rss = env.owned(&d).await;
    assert_eq!(
        rss.len(),
        1,
        "no new replica set while old pods run: {}",
        summarize(&d, &rss)
    );

    // Once they are gone, the new ReplicaSet comes, at full size at once.
    env.agent.hold_deletions(false);
    let current = env.wait_complete("web", 3, "nginx:1.26").await;
    assert_eq!(revision(&current), 2);
    let new_name = current.metadata.name.clone().unwrap_or_default();
    let events = timeline.events();
    let old_at_zero = events.iter().position(|(n, r)| *n == old_name && *r == 0);
    let new_first = events.iter().position(|(n, _)| *n == new_name);
    assert!(
        matches!((old_at_zero, new_first), (Some(a), Some(b)) if a < b),
        "the old set reached 0 before the new one appeared: {events:?}"
    );
    let first_size = new_first.map(|i| events[i].1);
    assert_eq!(
        first_size,
        Some(3),
        "Recreate creates the new set at full size: {events:?}"
    );
}
