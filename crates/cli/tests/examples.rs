//! The manifests in `examples/` do what their comments say, on a real `mast server`
//! (API server, scheduler and controllers) with hollow nodes (`mast kubelet --runtime
//! fake`):
//!
//! - every example passes kubectl's server-side dry run, which stores nothing, and is
//!   then created for real (kubectl, and `mast apply -f examples/`), every object
//!   readable afterwards;
//! - `placement.yaml`: with one node labelled `disktype=ssd` and another labelled and
//!   tainted `dedicated=web:NoSchedule`, each Deployment's pods land exactly where its
//!   node affinity and tolerations say, and pods without the toleration (`web.yaml`)
//!   stay off the tainted node;
//! - `probes-and-resources.yaml`: the pods run, their readiness follows the httpGet
//!   probe (nothing answers it on the fake runtime, so the Service lists them as not
//!   ready), and the scheduler accounts their requests: scaled one past what the nodes'
//!   allocatable CPU holds, exactly one pod stays Pending with "Insufficient cpu".

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Backend, FakeKubelet, Server, unique_name};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{GroupVersion, GroupVersionKind};
use tokio::time::Instant;

/// How long the cluster gets to act on an example.
const DEADLINE: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);
/// The longest one kubectl run may take.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
/// Hollow nodes per test.
const NODES: usize = 3;

/// The repository's `examples/` directory.
fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example(name: &str) -> String {
    examples_dir().join(name).to_string_lossy().into_owned()
}

/// Every manifest in `examples/`, sorted.
fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("read examples/")
        .map(|entry| entry.expect("read an examples/ entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    files
}

/// One object a manifest declares.
#[derive(Debug)]
struct ObjectRef {
    api_version: String,
    kind: String,
    name: String,
}

/// The objects of every document in `path` (comment-only documents skipped).
fn objects_in(path: &Path) -> Vec<ObjectRef> {
    let text = std::fs::read_to_string(path).expect("read an example");
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(document)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
        if value.is_null() {
            continue;
        }
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_yaml::Value::as_str)
                .unwrap_or_else(|| panic!("a document of {} has no {name}", path.display()))
                .to_string()
        };
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or_else(|| panic!("a document of {} has no name", path.display()))
            .to_string();
        objects.push(ObjectRef {
            api_version: field("apiVersion"),
            kind: field("kind"),
            name,
        });
    }
    objects
}

/// The object in the server (namespace `default` for namespaced kinds), if it exists.
async fn lookup(client: &kube::Client, object: &ObjectRef) -> Option<DynamicObject> {
    let gvk: GroupVersionKind = object
        .api_version
        .parse::<GroupVersion>()
        .expect("a valid apiVersion")
        .with_kind(&object.kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovery has no {gvk:?}: {e}"));
    let api: Api<DynamicObject> = match capabilities.scope {
        kube::discovery::Scope::Namespaced => {
            Api::namespaced_with(client.clone(), "default", &resource)
        }
        kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    api.get_opt(&object.name)
        .await
        .unwrap_or_else(|e| panic!("GET {} {}: {e}", object.kind, object.name))
}

/// Runs kubectl against `server`; returns (success, stdout + stderr).
fn kubectl(server: &Server, args: &[&str]) -> (bool, String) {
    common::kubectl_text(server.kubeconfig_path(), args, KUBECTL_TIMEOUT)
}

fn kubectl_ok(server: &Server, args: &[&str]) -> String {
    let (ok, out) = kubectl(server, args);
    assert!(ok, "kubectl {} failed: {out}", args.join(" "));
    out
}

/// `NODES` hollow nodes, `<base>-0` … in one fake kubelet.
struct HollowNodes {
    base: String,
    kubelet: FakeKubelet,
}

impl HollowNodes {
    fn start(server: &Server, extra_args: &[&str]) -> HollowNodes {
        let base = unique_name("node");
        let nodes = NODES.to_string();
        let mut args = vec!["--hollow-nodes", nodes.as_str()];
        args.extend_from_slice(extra_args);
        HollowNodes {
            kubelet: FakeKubelet::start(server, &base, &args),
            base,
        }
    }

    fn name(&self, i: usize) -> String {
        format!("{}-{i}", self.base)
    }

    fn check_running(&mut self) {
        self.kubelet.check_running();
    }

    /// Waits until every node is registered and Ready.
    async fn wait_ready(&mut self, client: &kube::Client) {
        let nodes: Api<Node> = Api::all(client.clone());
        let names: Vec<String> = (0..NODES).map(|i| self.name(i)).collect();
        wait_for(self, "the hollow nodes to be Ready", || async {
            for name in &names {
                let node = nodes.get_opt(name).await.ok().flatten()?;
                let ready = node
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if !ready {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }
}

/// Polls `probe` until it returns Some; panics with `what` at the deadline, or as soon
/// as the kubelet has exited.
async fn wait_for<T, F, Fut>(nodes: &mut HollowNodes, what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + DEADLINE;
    loop {
        nodes.check_running();
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// The pods labelled `app=<app>` in `default`.
async fn pods_of(client: &kube::Client, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|list| list.items)
        .unwrap_or_default()
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pods of `app` once there are `count` of them, all bound and Running.
async fn running_pods(
    nodes: &mut HollowNodes,
    client: &kube::Client,
    app: &str,
    count: usize,
) -> Vec<Pod> {
    wait_for(nodes, &format!("{count} running pods of {app}"), || async {
        let pods = pods_of(client, app).await;
        let done = pods.len() == count
            && pods
                .iter()
                .all(|p| node_of(p).is_some() && phase(p) == "Running");
        done.then_some(pods)
    })
    .await
}

/// How many pods of `app` run on each node.
fn placement(pods: &[Pod]) -> BTreeMap<String, usize> {
    let mut by_node = BTreeMap::new();
    for pod in pods {
        *by_node
            .entry(node_of(pod).unwrap_or("<none>").to_string())
            .or_insert(0) += 1;
    }
    by_node
}

/// A CPU quantity in millicores (`1`, `250m`, `1.5`).
fn millicores(quantity: &Quantity) -> i64 {
    let text = quantity.0.trim();
    match text.strip_suffix('m') {
        Some(milli) => milli.parse().expect("a millicore quantity"),
        None => {
            let cores: f64 = text.parse().expect("a CPU quantity");
            (cores * 1000.0).round() as i64
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_pass_a_server_side_dry_run_that_stores_nothing() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let files = example_files();
    assert!(
        files.len() >= 3,
        "examples/ should hold at least web, probes-and-resources and placement: {files:?}"
    );
    for file in &files {
        let path = file.to_string_lossy();
        let out = kubectl_ok(&server, &["apply", "--dry-run=server", "-f", &path]);
        let objects = objects_in(file);
        assert!(!objects.is_empty(), "{path} declares no object");
        for object in &objects {
            assert!(
                out.contains(&format!("{} created (server dry run)", object.name)),
                "kubectl apply --dry-run=server -f {path} did not report {object:?}: {out}"
            );
            let stored = lookup(&client, object).await;
            assert!(
                stored.is_none(),
                "a server-side dry run of {path} stored {} {}",
                object.kind,
                object.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_are_created() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let files = example_files();
    assert!(
        files.len() >= 3,
        "examples/ is missing manifests: {files:?}"
    );
    for file in &files {
        let path = file.to_string_lossy();
        kubectl_ok(&server, &["create", "-f", &path]);
        for object in objects_in(file) {
            let stored = lookup(&client, &object).await.unwrap_or_else(|| {
                panic!("{} {} from {path} was not stored", object.kind, object.name)
            });
            assert_eq!(
                stored.types.as_ref().map(|t| t.kind.as_str()),
                Some(object.kind.as_str()),
                "{} from {path}",
                object.name
            );
        }
    }
}

/// What examples/README.md tells users to run: `mast apply -f` (here on the whole
/// directory, whose README.md it must skip).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mast_apply_takes_the_examples_directory() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let output = Command::new(env!("CARGO_BIN_EXE_mast"))
        .arg("apply")
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .arg("-f")
        .arg(examples_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run mast apply");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "mast apply -f examples/: {out}");
    for file in example_files() {
        for object in objects_in(&file) {
            assert!(
                lookup(&client, &object).await.is_some(),
                "mast apply -f examples/ did not create {} {}: {out}",
                object.kind,
                object.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_follows_node_affinity_and_taints() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let mut nodes = HollowNodes::start(&server, &[]);
    nodes.wait_ready(&client).await;
    let (ssd, plain, dedicated) = (nodes.name(0), nodes.name(1), nodes.name(2));

    // The commands placement.yaml's comments give.
    kubectl_ok(&server, &["label", "node", &ssd, "disktype=ssd"]);
    kubectl_ok(&server, &["label", "node", &dedicated, "dedicated=web"]);
    kubectl_ok(
        &server,
        &["taint", "node", &dedicated, "dedicated=web:NoSchedule"],
    );
    kubectl_ok(&server, &["apply", "-f", &example("placement.yaml")]);
    // web.yaml tolerates nothing: three replicas spread, but never onto the tainted node.
    kubectl_ok(&server, &["apply", "-f", &example("web.yaml")]);

    let ssd_cache = running_pods(&mut nodes, &client, "ssd-cache", 2).await;
    assert_eq!(
        placement(&ssd_cache),
        BTreeMap::from([(ssd.clone(), 2)]),
        "required affinity disktype=ssd"
    );
    let preferred = running_pods(&mut nodes, &client, "ssd-preferred", 1).await;
    assert_eq!(
        placement(&preferred),
        BTreeMap::from([(ssd.clone(), 1)]),
        "preferred affinity disktype=ssd, room on the ssd node"
    );
    let dedicated_web = running_pods(&mut nodes, &client, "dedicated-web", 2).await;
    assert_eq!(
        placement(&dedicated_web),
        BTreeMap::from([(dedicated.clone(), 2)]),
        "toleration plus required affinity dedicated=web"
    );
    let web = running_pods(&mut nodes, &client, "web", 3).await;
    let web_nodes = placement(&web);
    assert!(
        !web_nodes.contains_key(&dedicated),
        "pods without the toleration landed on the tainted node: {web_nodes:?}"
    );
    assert!(
        web_nodes.keys().all(|n| *n == ssd || *n == plain),
        "web pods on unknown nodes: {web_nodes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_resources_are_honoured() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    // Small nodes, so that the requests decide how many pods fit.
    let mut nodes = HollowNodes::start(&server, &["--cpu", "1", "--memory", "1Gi"]);
    nodes.wait_ready(&client).await;
    kubectl_ok(
        &server,
        &["apply", "-f", &example("probes-and-resources.yaml")],
    );
    let app = "web-checked";
    let pods = running_pods(&mut nodes, &client, app, 3).await;

    // Readiness follows the httpGet probe: the fake runtime has no process behind the
    // pod IP, so the probe fails and the Service lists the pods as not ready. The exec
    // liveness probe passes (fake processes answer every command), so nothing restarts.
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let (ready, not_ready) = wait_for(&mut nodes, "the Service's endpoints", || async {
        let subsets = endpoints.get_opt(app).await.ok()??.subsets?;
        let count = |f: fn(&k8s_openapi::api::core::v1::EndpointSubset) -> usize| {
            subsets.iter().map(f).sum::<usize>()
        };
        let ready = count(|s| s.addresses.as_ref().map_or(0, Vec::len));
        let not_ready = count(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len));
        (ready + not_ready == 3).then_some((ready, not_ready))
    })
    .await;
    assert_eq!(
        (ready, not_ready),
        (0, 3),
        "no pod answers the readiness probe on the fake runtime"
    );
    for pod in pods_of(&client, app).await {
        let status = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .expect("a container status");
        assert!(!status.ready, "container ready without a passing probe");
        assert_eq!(status.started, Some(true), "the container runs");
        assert_eq!(status.restart_count, 0, "the liveness probe passes");
    }

    // Requests: each node holds allocatable / request pods; one more stays Pending.
    let request = pods[0]
        .spec
        .as_ref()
        .and_then(|s| s.containers[0].resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("cpu"))
        .map(millicores)
        .expect("the example requests CPU");
    let node_api: Api<Node> = Api::all(client.clone());
    let mut allocatable = BTreeMap::new();
    for i in 0..NODES {
        let node = node_api.get(&nodes.name(i)).await.expect("get a node");
        let cpu = node
            .status
            .and_then(|s| s.allocatable)
            .and_then(|a| a.get("cpu").map(millicores))
            .expect("the node reports allocatable CPU");
        allocatable.insert(nodes.name(i), cpu);
    }
    let per_node: BTreeMap<String, usize> = allocatable
        .iter()
        .map(|(name, cpu)| (name.clone(), usize::try_from(cpu / request).unwrap_or(0)))
        .collect();
    let fit: usize = per_node.values().sum();
    assert!(fit >= 3, "the example's 3 replicas fit: {per_node:?}");
    let replicas = (fit + 1).to_string();
    kubectl_ok(
        &server,
        &[
            "scale",
            &format!("deployment/{app}"),
            "--replicas",
            &replicas,
        ],
    );
    let pending = wait_for(&mut nodes, "all but one pod to be placed", || async {
        let pods = pods_of(&client, app).await;
        if pods.len() != fit + 1 {
            return None;
        }
        let running = pods
            .iter()
            .filter(|p| node_of(p).is_some() && phase(p) == "Running")
            .count();
        let pending: Vec<&Pod> = pods.iter().filter(|p| node_of(p).is_none()).collect();
        let unschedulable = pending.first().and_then(|p| {
            p.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
                .message
                .clone()
        });
        if running == fit && pending.len() == 1 {
            unschedulable
        } else {
            None
        }
    })
    .await;
    assert!(
        pending.contains("Insufficient cpu"),
        "the pending pod's reason: {pending}"
    );
    let placed = placement(
        &pods_of(&client, app)
            .await
            .into_iter()
            .filter(|p| node_of(p).is_some())
            .collect::<Vec<_>>(),
    );
    assert_eq!(placed, per_node, "each node holds what its CPU allows");
}
