//! Acceptance test for issue 6 (controller-manager): `mast server` (API server,
//! scheduler, controllers) and a `mast kubelet --runtime fake` running three hollow
//! nodes, driven with the real kubectl from PATH, as a user would.
//!
//! It follows one Deployment through its life: 5 available pods, scaling to 10 and 2,
//! a rolling image update whose invariants (never fewer than desired available, never
//! more than desired + maxSurge) are checked on every pod event, `kubectl rollout
//! status` and `rollout undo`, a deleted pod replaced, a Service's endpoints following
//! the pods, `kubectl get deploy,rs,pods` columns, and deletion (cascading, and with
//! `--cascade=orphan`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Server, unique_name};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};

const DEADLINE: Duration = Duration::from_secs(90);
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
const HOLLOW_NODES: usize = 3;

/// A `mast kubelet --runtime fake` process, killed on drop.
struct Kubelet {
    child: Child,
    log: std::path::PathBuf,
}

impl Kubelet {
    fn start(server: &Server, name: &str) -> Self {
        let dir = server.dir().join(format!("kubelet-{name}"));
        std::fs::create_dir_all(&dir).expect("kubelet dir");
        let log = dir.join("kubelet.log");
        let file = std::fs::File::create(&log).expect("kubelet log");
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(server.kubeconfig_path())
            .args(["--node-name", name, "--runtime", "fake", "--port", "0"])
            .args(["--hollow-nodes", &HOLLOW_NODES.to_string()])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("spawn mast kubelet");
        Kubelet { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    server: Server,
    kubelet: Kubelet,
    client: kube::Client,
}

impl Cluster {
    fn fail(&self, message: &str) -> ! {
        self.server.fail(&format!(
            "{message}\n--- kubelet log ---\n{}",
            self.kubelet.log()
        ))
    }

    /// Polls `check` until it gives a value; fails with both logs at the deadline.
    async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
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
                self.fail(&format!("timed out waiting for {what}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs kubectl against the server; returns (exit success, stdout + stderr).
    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        kubectl(self.server.kubeconfig_path(), args)
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.kubectl(args);
        if !ok {
            self.fail(&format!("kubectl {} failed:\n{out}", args.join(" ")));
        }
        out
    }
}

/// Runs kubectl; returns (success, stdout + stderr).
fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    common::kubectl_text(kubeconfig, args, KUBECTL_TIMEOUT)
}

fn deployment_yaml(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - {{name: http, containerPort: 80}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
  - {{port: 80, targetPort: http}}
"
    )
}

fn apply(cluster: &Cluster, yaml: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, yaml).expect("write the manifest");
    cluster.kubectl_ok(&["apply", "-f", file.to_str().unwrap_or_default()])
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn active(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// The Deployment's status numbers: (replicas, updated, ready, available).
fn counts(d: &Deployment) -> (i32, i32, i32, i32) {
    let s = d.status.clone().unwrap_or_default();
    (
        s.replicas.unwrap_or(0),
        s.updated_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

async fn wait_available(cluster: &Cluster, name: &str, replicas: i32) {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let selector = ListParams::default().labels(&format!("app={name}"));
    cluster
        .eventually(
            &format!("{name} to have {replicas} available pods"),
            || async {
                let d = deployments.get(name).await.ok()?;
                let generation = d.metadata.generation.unwrap_or(0);
                let observed = d.status.as_ref()?.observed_generation.unwrap_or(0);
                let all = pods.list(&selector).await.ok()?.items;
                let running = active(&all);
                let settled = observed >= generation
                    && counts(&d) == (replicas, replicas, replicas, replicas)
                    && running.len() == replicas as usize
                    && running.iter().all(|p| is_ready(p));
                settled.then_some(())
            },
        )
        .await;
}

fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    meta.annotations
        .as_ref()?
        .get("deployment.kubernetes.io/revision")
        .cloned()
}

fn image_of_rs(rs: &ReplicaSet) -> String {
    rs.spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// Columns of a `kubectl get` table, by header, for the row whose NAME is `name`.
fn row(table: &str, name: &str) -> BTreeMap<String, String> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.first().map(|c| c.ends_with(name)) == Some(true) {
            return header
                .iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect();
        }
    }
    BTreeMap::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_lives_its_whole_life_on_hollow_nodes() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let node_prefix = unique_name("hollow");
    let kubelet = Kubelet::start(&server, &node_prefix);
    let client = server.client().await;
    let cluster = Cluster {
        server,
        kubelet,
        client,
    };
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    cluster
        .eventually("the hollow nodes to be Ready with podCIDRs", || async {
            let list = nodes.list(&ListParams::default()).await.ok()?.items;
            let ready = list
                .iter()
                .filter(|n| {
                    n.metadata
                        .name
                        .as_deref()
                        .unwrap_or("")
                        .starts_with(&node_prefix)
                })
                .filter(|n| n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some())
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            (ready == HOLLOW_NODES).then_some(())
        })
        .await;

    let name = unique_name("web");
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let selector = ListParams::default().labels(&format!("app={name}"));

    // 5 replicas become 5 available pods; scaling to 10 and to 2 converges.
    apply(&cluster, &deployment_yaml(&name, 5, "busybox:1"));
    wait_available(&cluster, &name, 5).await;
    cluster.kubectl_ok(&["scale", "deployment", &name, "--replicas=10"]);
    wait_available(&cluster, &name, 10).await;
    cluster.kubectl_ok(&["scale", "deployment", &name, "--replicas=2"]);
    wait_available(&cluster, &name, 2).await;
    cluster.kubectl_ok(&["scale", "deployment", &name, "--replicas=5"]);
    wait_available(&cluster, &name, 5).await;

    // The Service's endpoints follow the pods.
    let endpoints: Api<Endpoints> = Api::namespaced(cluster.client.clone(), "default");
    let pod_ips = |list: &[Pod]| -> Vec<String> {
        let mut ips: Vec<String> = active(list)
            .iter()
            .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
            .collect();
        ips.sort();
        ips
    };
    cluster
        .eventually("the endpoints to list the 5 pod IPs on port 80", || async {
            let ep = endpoints.get(&name).await.ok()?;
            let subsets = ep.subsets.unwrap_or_default();
            let mut ips: Vec<String> = subsets
                .iter()
                .flat_map(|s| s.addresses.clone().unwrap_or_default())
                .map(|a| a.ip)
                .collect();
            ips.sort();
            let ports_ok = subsets.iter().all(|s| {
                s.ports
                    .as_ref()
                    .is_some_and(|p| p.iter().any(|p| p.port == 80))
            });
            let wanted = pod_ips(&pods.list(&selector).await.ok()?.items);
            (ips.len() == 5 && ips == wanted && ports_ok).then_some(())
        })
        .await;

    // A rolling image update with maxSurge=1, maxUnavailable=0: on every pod event,
    // ready pods (not terminating) >= 5 and pods (not terminating) <= 6.
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let observed = Arc::new(Mutex::new(0usize));
    let watch = {
        let violations = violations.clone();
        let observed = observed.clone();
        let api = pods.clone();
        let label = format!("app={name}");
        tokio::spawn(async move {
            let mut current: BTreeMap<String, Pod> = BTreeMap::new();
            let mut stream = watcher(api, watcher::Config::default().labels(&label))
                // Spaced retries: once the server is gone at the end of the test, a
                // watcher without backoff would spin and hold the runtime's shutdown.
                .default_backoff()
                .boxed();
            let mut listed = false;
            while let Some(Ok(event)) = stream.next().await {
                match event {
                    watcher::Event::Init => current.clear(),
                    watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                        current.insert(p.metadata.name.clone().unwrap_or_default(), p);
                    }
                    watcher::Event::Delete(p) => {
                        current.remove(p.metadata.name.as_deref().unwrap_or_default());
                    }
                    watcher::Event::InitDone => listed = true,
                }
                if !listed {
                    continue;
                }
                let live: Vec<&Pod> = current
                    .values()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                let ready = live.iter().filter(|p| is_ready(p)).count();
                *observed.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                if ready < 5 || live.len() > 6 {
                    violations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{} pods, {ready} ready", live.len()));
                }
            }
        })
    };
    cluster
        .eventually("the invariant watch to list the pods", || async {
            (*observed.lock().unwrap_or_else(|e| e.into_inner()) > 0).then_some(())
        })
        .await;
    cluster.kubectl_ok(&[
        "set",
        "image",
        &format!("deployment/{name}"),
        "web=busybox:2",
    ]);
    let status = cluster.kubectl_ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=80s",
    ]);
    assert!(
        status.contains("successfully rolled out"),
        "rollout status:\n{status}"
    );
    wait_available(&cluster, &name, 5).await;
    watch.abort();
    let checked = *observed.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("rolling update: bounds checked on {checked} pod events");
    let seen = violations.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        seen.is_empty(),
        "rolling update broke its bounds at: {seen:?}"
    );
    let running = pods.list(&selector).await.expect("pods").items;
    assert!(
        active(&running).iter().all(
            |p| p.spec.as_ref().map(|s| s.containers[0].image.as_deref())
                == Some(Some("busybox:2"))
        ),
        "every pod runs the new image"
    );
    let d = deployments.get(&name).await.expect("deployment");
    assert_eq!(revision(&d.metadata).as_deref(), Some("2"));

    // `kubectl rollout undo` brings back the old template; its ReplicaSet becomes
    // revision 3, as upstream renumbers.
    cluster.kubectl_ok(&["rollout", "undo", &format!("deployment/{name}")]);
    cluster.kubectl_ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=80s",
    ]);
    wait_available(&cluster, &name, 5).await;
    let d = deployments.get(&name).await.expect("deployment");
    assert_eq!(
        revision(&d.metadata).as_deref(),
        Some("3"),
        "deployment revision after undo"
    );
    let image = d
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers[0].image.clone());
    assert_eq!(image.as_deref(), Some("busybox:1"));
    let sets_now = sets.list(&selector).await.expect("replicasets").items;
    let by_image: BTreeMap<String, Option<String>> = sets_now
        .iter()
        .map(|rs| (image_of_rs(rs), revision(&rs.metadata)))
        .collect();
    assert_eq!(
        by_image.get("busybox:1"),
        Some(&Some("3".to_string())),
        "{by_image:?}"
    );
    assert_eq!(
        by_image.get("busybox:2"),
        Some(&Some("2".to_string())),
        "{by_image:?}"
    );
    let history = cluster.kubectl_ok(&["rollout", "history", &format!("deployment/{name}")]);
    assert!(
        history.contains('2') && history.contains('3'),
        "rollout history:\n{history}"
    );

    // kubectl's columns tell the truth.
    let deploy_table = cluster.kubectl_ok(&["get", "deploy", &name]);
    let deploy_row = row(&deploy_table, &name);
    assert_eq!(
        deploy_row.get("READY").map(String::as_str),
        Some("5/5"),
        "{deploy_table}"
    );
    assert_eq!(
        deploy_row.get("UP-TO-DATE").map(String::as_str),
        Some("5"),
        "{deploy_table}"
    );
    assert_eq!(
        deploy_row.get("AVAILABLE").map(String::as_str),
        Some("5"),
        "{deploy_table}"
    );
    let current_rs = sets_now
        .iter()
        .find(|rs| image_of_rs(rs) == "busybox:1")
        .and_then(|rs| rs.metadata.name.clone())
        .unwrap_or_default();
    let rs_table = cluster.kubectl_ok(&["get", "rs", &current_rs]);
    let rs_row = row(&rs_table, &current_rs);
    for column in ["DESIRED", "CURRENT", "READY"] {
        assert_eq!(
            rs_row.get(column).map(String::as_str),
            Some("5"),
            "{column} in\n{rs_table}"
        );
    }
    let pods_table = cluster.kubectl_ok(&["get", "pods", "-l", &format!("app={name}")]);
    let running_rows = pods_table
        .lines()
        .filter(|l| l.contains("Running") && l.contains("1/1"))
        .count();
    assert_eq!(running_rows, 5, "kubectl get pods:\n{pods_table}");

    // A deleted pod is replaced.
    let victim = active(&pods.list(&selector).await.expect("pods").items)[0]
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    cluster.kubectl_ok(&["delete", "pod", &victim]);
    cluster
        .eventually("the deleted pod to be replaced", || async {
            let all = pods.list(&selector).await.ok()?.items;
            let names: Vec<String> = active(&all)
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            (names.len() == 5
                && !names.contains(&victim)
                && active(&all).iter().all(|p| is_ready(p)))
            .then_some(())
        })
        .await;

    // Deleting the Deployment leaves no ReplicaSet or Pod.
    cluster.kubectl_ok(&["delete", "deployment", &name]);
    cluster
        .eventually(
            "the deployment's replicasets and pods to be gone",
            || async {
                let rs = sets.list(&selector).await.ok()?.items;
                let p = pods.list(&selector).await.ok()?.items;
                (rs.is_empty() && p.is_empty()).then_some(())
            },
        )
        .await;

    // `--cascade=orphan` leaves the ReplicaSet and its pods.
    let kept = unique_name("kept");
    let kept_selector = ListParams::default().labels(&format!("app={kept}"));
    apply(&cluster, &deployment_yaml(&kept, 2, "busybox:1"));
    wait_available(&cluster, &kept, 2).await;
    cluster.kubectl_ok(&["delete", "deployment", &kept, "--cascade=orphan"]);
    cluster
        .eventually("the orphaned replicaset to lose its owner", || async {
            let gone = deployments.get(&kept).await.is_err();
            let rs = sets.list(&kept_selector).await.ok()?.items;
            let orphaned = rs.len() == 1
                && rs[0]
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(|o| o.is_empty());
            (gone && orphaned).then_some(())
        })
        .await;
    let left = pods.list(&kept_selector).await.expect("pods").items;
    assert_eq!(active(&left).len(), 2, "orphaned pods stay");
}
