//! Node lifecycle inside `mast server`: a node whose heartbeats stop turns Unknown, is
//! tainted, its pods are evicted when their (short, in this test) tolerations run out,
//! and the ReplicaSet replaces them on the node that is still alive; when heartbeats
//! return, the taints go.
//!
//! The test plays both kubelets itself: Node objects, and their Leases in
//! `kube-node-lease` renewed by a task until the test stops one of them. The
//! controllers run as their own process, `mast controller-manager --kubeconfig`, with
//! short settings.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, Server, unique_name};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);
const RENEW_EVERY: Duration = Duration::from_millis(300);

/// Polls `check` until it returns Some, or fails the test with the server log.
async fn eventually<T, F, Fut>(server: &Server, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            let controllers = std::fs::read_to_string(server.dir().join("controller-manager.log"))
                .unwrap_or_default();
            server.fail(&format!(
                "timed out waiting for {what}\n--- controller-manager log ---\n{controllers}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_node(client: &kube::Client, name: &str) {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": "10.42.99.0/24"},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True",
                            "lastHeartbeatTime": now(), "reason": "KubeletReady"}],
        },
    }))
    .expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create the node");
}

/// A `mast controller-manager` process, killed on drop.
struct ControllerManager(std::process::Child);

impl ControllerManager {
    fn start(server: &Server, extra_args: &[&str]) -> Self {
        let log = std::fs::File::create(server.dir().join("controller-manager.log"))
            .expect("controller-manager log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(server.kubeconfig_path())
            .args(extra_args)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn mast controller-manager");
        ControllerManager(child)
    }
}

impl Drop for ControllerManager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Renews the node's Lease until `alive` turns false (a kubelet's heartbeat).
fn heartbeat(
    client: kube::Client,
    node: String,
    alive: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": node},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": 40},
        }))
        .expect("lease");
        let _ = leases.create(&PostParams::default(), &lease).await;
        loop {
            if alive.load(Ordering::Relaxed) {
                let patch =
                    json!({"spec": {"renewTime": MicroTime(k8s_openapi::jiff::Timestamp::now())}});
                let _ = leases
                    .patch(&node, &PatchParams::default(), &Patch::Merge(patch))
                    .await;
            }
            tokio::time::sleep(RENEW_EVERY).await;
        }
    })
}

fn ready_status(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

fn taint_keys(node: &Node) -> Vec<(String, String)> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| {
            t.iter()
                .map(|t| (t.key.clone(), t.effect.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.node_name.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_tainted_and_its_pods_move_to_the_live_node() {
    let server = Server::start_without_controllers(
        Backend::Sqlite,
        &[
            "--default-unreachable-toleration-seconds",
            "1",
            "--default-not-ready-toleration-seconds",
            "1",
        ],
    );
    let _controllers = ControllerManager::start(
        &server,
        &[
            "--node-monitor-grace-period",
            "2s",
            "--node-startup-grace-period",
            "2s",
        ],
    );
    let client = server.client().await;
    let live = unique_name("live");
    let dying = unique_name("dying");
    let live_beat = Arc::new(AtomicBool::new(true));
    let dying_beat = Arc::new(AtomicBool::new(true));
    create_node(&client, &live).await;
    create_node(&client, &dying).await;
    let beats = [
        heartbeat(client.clone(), live.clone(), live_beat.clone()),
        heartbeat(client.clone(), dying.clone(), dying_beat.clone()),
    ];

    let name = unique_name("web");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))
    .expect("replicaset");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &rs)
        .await
        .expect("create the replicaset");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let selector = ListParams::default().labels(&format!("app={name}"));

    // Both nodes get pods (the scheduler spreads a ReplicaSet's pods).
    let on_dying = eventually(&server, "pods bound on both nodes", || async {
        let list = pods.list(&selector).await.ok()?;
        let bound: Vec<String> = list.items.iter().filter_map(node_of).collect();
        let dying_count = bound.iter().filter(|n| **n == dying).count();
        (bound.len() == 4 && dying_count > 0 && dying_count < 4).then_some(dying_count)
    })
    .await;
    // The pods got the default tolerations from admission (1 s here).
    let sample = pods.list(&selector).await.expect("list pods").items;
    let tolerations = sample[0]
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    assert!(
        tolerations.iter().any(
            |t| t.key.as_deref() == Some("node.kubernetes.io/unreachable")
                && t.toleration_seconds == Some(1)
        ),
        "admission adds the unreachable toleration: {tolerations:?}"
    );

    // The dying node's kubelet goes silent.
    let silent_at = Instant::now();
    dying_beat.store(false, Ordering::Relaxed);
    let nodes: Api<Node> = Api::all(client.clone());
    let tainted = eventually(
        &server,
        "the silent node to turn Unknown and be tainted",
        || async {
            let node = nodes.get(&dying).await.ok()?;
            let unknown = ready_status(&node).as_deref() == Some("Unknown");
            let taints = taint_keys(&node);
            let has = |effect: &str| {
                taints
                    .iter()
                    .any(|(k, e)| k == "node.kubernetes.io/unreachable" && e == effect)
            };
            (unknown && has("NoExecute") && has("NoSchedule")).then_some(node)
        },
    )
    .await;
    eprintln!("tainted {:?} after silence", silent_at.elapsed());
    assert!(
        taint_keys(&tainted).len() == 2,
        "only the health taints: {:?}",
        taint_keys(&tainted)
    );
    let live_node = nodes.get(&live).await.expect("get the live node");
    assert_eq!(
        ready_status(&live_node).as_deref(),
        Some("True"),
        "the live node stays Ready"
    );
    assert!(taint_keys(&live_node).is_empty());

    // Its pods are evicted (marked for deletion; no kubelet finishes them) and the
    // ReplicaSet puts 4 working pods on the live node.
    eventually(
        &server,
        "the evicted pods to be replaced on the live node",
        || async {
            let list = pods.list(&selector).await.ok()?;
            let (terminating, active): (Vec<&Pod>, Vec<&Pod>) = list
                .items
                .iter()
                .partition(|p| p.metadata.deletion_timestamp.is_some());
            let all_active_live = active.len() == 4
                && active
                    .iter()
                    .all(|p| node_of(p).as_deref() == Some(live.as_str()));
            let evicted_were_on_dying = terminating.len() == on_dying
                && terminating
                    .iter()
                    .all(|p| node_of(p).as_deref() == Some(dying.as_str()));
            (all_active_live && evicted_were_on_dying).then_some(())
        },
    )
    .await;

    eprintln!("replaced {:?} after silence", silent_at.elapsed());
    // The kubelet comes back: a heartbeat and Ready again; the taints go.
    dying_beat.store(true, Ordering::Relaxed);
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "reason": "KubeletReady", "lastHeartbeatTime": now()}]}});
    nodes
        .patch_status(&dying, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("report Ready again");
    eventually(&server, "the taints to be removed", || async {
        let node = nodes.get(&dying).await.ok()?;
        taint_keys(&node).is_empty().then_some(())
    })
    .await;

    live_beat.store(false, Ordering::Relaxed);
    for beat in beats {
        beat.abort();
    }
}
