//! `mast kubelet --runtime fake` against a real `mast server`: hollow nodes register
//! Ready with their labels and capacity, heartbeat through their Leases, run a
//! scheduled pod to Running and Ready with an IP from the node's pod CIDR, delete it
//! when it is deleted, and stop heartbeating when killed. Also: a thousand hollow nodes
//! in one process register and keep renewing their leases.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Backend, FakeKubelet, Server, http_exchange, unique_name};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

/// How long a test waits for the kubelet to act.
const DEADLINE: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);

/// Polls `probe` until it returns Some; panics with `what` at the deadline, or as soon
/// as the kubelet has exited.
async fn wait_for<T, F, Fut>(
    kubelet: &mut FakeKubelet,
    deadline: Duration,
    what: &str,
    probe: F,
) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        kubelet.check_running();
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

fn condition_true(conditions: Option<&Vec<impl ConditionLike>>, type_: &str) -> bool {
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_() == type_ && c.status() == "True")
}

trait ConditionLike {
    fn type_(&self) -> &str;
    fn status(&self) -> &str;
}

impl ConditionLike for k8s_openapi::api::core::v1::NodeCondition {
    fn type_(&self) -> &str {
        &self.type_
    }
    fn status(&self) -> &str {
        &self.status
    }
}

impl ConditionLike for k8s_openapi::api::core::v1::PodCondition {
    fn type_(&self) -> &str {
        &self.type_
    }
    fn status(&self) -> &str {
        &self.status
    }
}

fn node_ready(node: &Node) -> bool {
    condition_true(
        node.status.as_ref().and_then(|s| s.conditions.as_ref()),
        "Ready",
    )
}

/// Whether `ip` is inside the IPv4 `cidr`.
fn in_cidr(ip: &str, cidr: &str) -> bool {
    let Some((network, prefix)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(network), Ok(prefix)) = (
        ip.parse::<Ipv4Addr>(),
        network.parse::<Ipv4Addr>(),
        prefix.parse::<u32>(),
    ) else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(network) & mask
}

/// renewTime of each lease of `names`, as text.
async fn renew_times(client: &kube::Client, names: &[String]) -> HashMap<String, String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let list = leases
        .list(&ListParams::default())
        .await
        .expect("list leases");
    list.items
        .into_iter()
        .filter_map(|l| {
            let name = l.metadata.name.clone()?;
            let renew = l.spec.as_ref()?.renew_time.as_ref()?;
            names
                .contains(&name)
                .then(|| (name, serde_json::to_string(renew).unwrap_or_default()))
        })
        .collect()
}

/// The kubelet's HTTP endpoint `path`, as text (status 200 required).
fn kubelet_get(port: i32, path: &str) -> String {
    let response = http_exchange(&format!("127.0.0.1:{port}"), "GET", path, &[], &[])
        .unwrap_or_else(|e| panic!("GET {path} from the kubelet: {e}"));
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hollow_nodes_register_heartbeat_and_run_pods() {
    let server = Server::start_with_scheduler(Backend::Sqlite);
    let client = server.client().await;
    let base = unique_name("hollow");
    let mut kubelet = FakeKubelet::start(
        &server,
        &base,
        &[
            "--hollow-nodes",
            "3",
            "--cpu",
            "4",
            "--memory",
            "8Gi",
            "--max-pods",
            "50",
            "--node-lease-duration-seconds",
            "5",
            "--node-lease-renew-interval",
            "500ms",
        ],
    );
    let names: Vec<String> = (0..3).map(|i| format!("{base}-{i}")).collect();
    let nodes_api: Api<Node> = Api::all(client.clone());

    // Three Ready nodes, as the kubelet describes them.
    let nodes = wait_for(&mut kubelet, DEADLINE, "3 Ready nodes", || {
        let (api, names) = (&nodes_api, &names);
        async move {
            let mut found = Vec::new();
            for name in names {
                let node = api.get_opt(name).await.ok()??;
                node_ready(&node).then_some(())?;
                found.push(node);
            }
            Some(found)
        }
    })
    .await;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut port = 0;
    for (node, name) in nodes.iter().zip(&names) {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("kubernetes.io/hostname"), Some(name));
        assert_eq!(
            labels.get("kubernetes.io/os").map(String::as_str),
            Some("linux")
        );
        assert_eq!(
            labels.get("kubernetes.io/arch").map(String::as_str),
            Some(arch)
        );
        assert_eq!(
            labels.get("beta.kubernetes.io/arch").map(String::as_str),
            Some(arch)
        );
        let status = node.status.as_ref().expect("node status");
        let capacity = status.capacity.as_ref().expect("capacity");
        assert_eq!(capacity["cpu"].0, "4");
        assert_eq!(capacity["memory"].0, "8Gi");
        assert_eq!(capacity["pods"].0, "50");
        assert!(capacity.contains_key("ephemeral-storage"), "{capacity:?}");
        let allocatable = status.allocatable.as_ref().expect("allocatable");
        assert_eq!(allocatable["memory"].0, "8286208Ki");
        let info = status.node_info.as_ref().expect("nodeInfo");
        assert_eq!(info.kubelet_version, "v1.37.0-mast");
        assert_eq!(info.container_runtime_version, "fake://0.1");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(info.architecture, arch);
        assert!(!info.kernel_version.is_empty() && !info.os_image.is_empty());
        let addresses: Vec<(&str, &str)> = status
            .addresses
            .iter()
            .flatten()
            .map(|a| (a.type_.as_str(), a.address.as_str()))
            .collect();
        assert_eq!(
            addresses,
            [("InternalIP", "127.0.0.1"), ("Hostname", name.as_str())]
        );
        let conditions: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        for wanted in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
            assert!(conditions.contains(&wanted), "{conditions:?}");
        }
        port = status
            .daemon_endpoints
            .as_ref()
            .and_then(|d| d.kubelet_endpoint.as_ref())
            .map(|e| e.port)
            .expect("the kubelet port");
        assert!(port > 0);
    }
    assert_eq!(kubelet_get(port, "/healthz"), "ok");

    // Leases: held by their node, owned by it, renewed.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for node in &nodes {
        let name = node.metadata.name.clone().expect("name");
        let lease = wait_for(&mut kubelet, DEADLINE, "the node lease", || {
            let (leases, name) = (&leases, &name);
            async move { leases.get_opt(name).await.ok()? }
        })
        .await;
        let spec = lease.spec.as_ref().expect("lease spec");
        assert_eq!(spec.holder_identity.as_ref(), Some(&name));
        assert_eq!(spec.lease_duration_seconds, Some(5));
        let owner_uid = wait_for(&mut kubelet, DEADLINE, "the lease's owner", || {
            let (leases, name) = (&leases, &name);
            async move {
                let lease = leases.get_opt(name).await.ok()??;
                let owner = lease.metadata.owner_references?.into_iter().next()?;
                (owner.kind == "Node" && owner.name == *name).then_some(owner.uid)
            }
        })
        .await;
        assert_eq!(Some(owner_uid), node.metadata.uid);
    }
    let first = renew_times(&client, &names).await;
    assert_eq!(first.len(), 3, "{first:?}");
    wait_for(&mut kubelet, DEADLINE, "every lease renewed", || {
        let (client, names, first) = (&client, &names, &first);
        async move {
            let now = renew_times(client, names).await;
            names
                .iter()
                .all(|n| now.get(n).is_some_and(|t| Some(t) != first.get(n)))
                .then_some(())
        }
    })
    .await;

    // A pod, scheduled by the server's scheduler onto a node without a pod CIDR yet:
    // it waits, Pending, with its status saying so.
    let ns = unique_name("kubelet");
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create the namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": names[1]},
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
    let has_cidr = |node: &Node| node.spec.as_ref().and_then(|s| s.pod_cidr.clone());
    if has_cidr(&nodes_api.get(&names[1]).await.expect("get node")).is_none() {
        let waiting = wait_for(
            &mut kubelet,
            DEADLINE,
            "the pod Pending, waiting for a pod CIDR",
            || {
                let pods = &pods;
                async move {
                    let pod = pods.get_opt("web").await.ok()??;
                    let status = pod.status?;
                    let sandbox = status
                        .conditions
                        .iter()
                        .flatten()
                        .find(|c| c.type_ == "PodReadyToStartContainers")?;
                    (sandbox.status == "False").then_some(status)
                }
            },
        )
        .await;
        assert_eq!(waiting.phase.as_deref(), Some("Pending"));
        assert_eq!(waiting.pod_ip, None);
    }

    // Pod CIDRs: the IPAM controller's, or set here the way it would.
    let mut cidrs = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let node = nodes_api.get(name).await.expect("get node");
        let cidr = match has_cidr(&node) {
            Some(cidr) => cidr,
            None => {
                let cidr = format!("10.{}.{}.0/24", 200 + i, std::process::id() % 250);
                let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
                nodes_api
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .expect("set the pod CIDR");
                cidr
            }
        };
        cidrs.insert(name.clone(), cidr);
    }

    let running = wait_for(&mut kubelet, DEADLINE, "the pod Running and Ready", || {
        let pods = &pods;
        async move {
            let pod = pods.get_opt("web").await.ok()??;
            let status = pod.status.as_ref()?;
            (status.phase.as_deref() == Some("Running")
                && condition_true(status.conditions.as_ref(), "Ready"))
            .then_some(pod)
        }
    })
    .await;
    let node_name = running
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .expect("bound");
    assert_eq!(node_name, names[1]);
    let status = running.status.as_ref().expect("status");
    let ip = status.pod_ip.clone().expect("a pod IP");
    assert!(
        in_cidr(&ip, &cidrs[&node_name]),
        "{ip} is not in {}",
        cidrs[&node_name]
    );
    assert_eq!(
        status.pod_ips.as_ref().map(|v| v[0].ip.clone()),
        Some(ip.clone())
    );
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    assert!(status.start_time.is_some());
    for wanted in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert!(
            condition_true(status.conditions.as_ref(), wanted),
            "{wanted}: {:?}",
            status.conditions
        );
    }
    let app = &status
        .container_statuses
        .as_ref()
        .expect("container statuses")[0];
    assert_eq!(app.name, "app");
    assert!(app.ready);
    assert_eq!(app.started, Some(true));
    assert_eq!(app.restart_count, 0);
    assert_eq!(app.image, "nginx:1.27");
    assert!(app.image_id.contains("@sha256:"), "{}", app.image_id);
    assert!(
        app.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("fake://"))
    );
    assert!(
        app.state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .is_some()
    );
    let setup = &status
        .init_container_statuses
        .as_ref()
        .expect("init statuses")[0];
    let terminated = setup
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("init container terminated");
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (0, Some("Completed"))
    );

    // The kubelet's own view of it.
    let list: serde_json::Value =
        serde_json::from_str(&kubelet_get(port, "/pods")).expect("PodList JSON");
    assert_eq!(list["kind"], "PodList");
    let listed: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(listed, ["web"]);
    let logs = kubelet_get(port, &format!("/containerLogs/{ns}/web/app"));
    assert!(logs.contains(&format!("{ns}/web")), "{logs}");
    let metrics = kubelet_get(port, "/metrics");
    assert!(metrics.contains("\nkubelet_running_pods 1\n"), "{metrics}");
    assert!(metrics.contains("\nmast_kubelet_nodes 3\n"), "{metrics}");

    // Status is written when it changes, not on every sync.
    let written = |metrics: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("mast_kubelet_pod_status_writes_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("pod status writes")
    };
    assert!(written(&metrics) <= 4, "{metrics}");

    // Deleted: the kubelet stops it and removes the object.
    pods.delete("web", &DeleteParams::default())
        .await
        .expect("delete the pod");
    wait_for(&mut kubelet, DEADLINE, "the pod gone from the API", || {
        let pods = &pods;
        async move { matches!(pods.get_opt("web").await, Ok(None)).then_some(()) }
    })
    .await;

    // Killed: the leases stop moving.
    kubelet.kill();
    let after_kill = renew_times(&client, &names).await;
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        assert_eq!(
            renew_times(&client, &names).await,
            after_kill,
            "a lease moved after the kubelet was killed"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hollow_nodes_register_and_heartbeat() {
    const NODES: usize = 1000;
    let server = Server::start(Backend::Sqlite);
    let client = server.client().await;
    let base = unique_name("h");
    let started = Instant::now();
    let mut kubelet = FakeKubelet::start(
        &server,
        &base,
        &[
            "--hollow-nodes",
            &NODES.to_string(),
            "--node-lease-renew-interval",
            "5s",
        ],
    );
    let names: Vec<String> = (0..NODES).map(|i| format!("{base}-{i}")).collect();
    let prefix = format!("{base}-");
    let nodes_api: Api<Node> = Api::all(client.clone());
    let deadline = Duration::from_secs(180);
    wait_for(&mut kubelet, deadline, "1000 Ready nodes", || {
        let (api, prefix) = (&nodes_api, &prefix);
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let ready = list
                .items
                .iter()
                .filter(|n| {
                    n.metadata
                        .name
                        .as_deref()
                        .is_some_and(|m| m.starts_with(prefix.as_str()))
                        && node_ready(n)
                })
                .count();
            (ready == NODES).then_some(())
        }
    })
    .await;
    let registered = started.elapsed();

    // Every lease renewed at least twice after it first showed up.
    let mut first_seen: HashMap<String, String> = HashMap::new();
    let mut changes: HashMap<String, u32> = HashMap::new();
    let until = Instant::now() + deadline;
    loop {
        kubelet.check_running();
        let now = renew_times(&client, &names).await;
        for (name, time) in &now {
            match first_seen.get(name) {
                None => {
                    first_seen.insert(name.clone(), time.clone());
                }
                Some(previous) if previous != time => {
                    *changes.entry(name.clone()).or_default() += 1;
                    first_seen.insert(name.clone(), time.clone());
                }
                Some(_) => {}
            }
        }
        if changes.len() == NODES && changes.values().all(|c| *c >= 2) {
            break;
        }
        assert!(
            Instant::now() < until,
            "timed out: {} of {NODES} leases renewed twice",
            changes.values().filter(|c| **c >= 2).count()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rss = common::rss_kib(kubelet.pid()).unwrap_or(0);
    eprintln!(
        "{NODES} hollow nodes: registered and Ready in {:.1}s, every lease renewed twice after {:.1}s, kubelet VmRSS {} KiB",
        registered.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        rss
    );
}

#[test]
fn a_bad_kubeconfig_fails_with_one_line_before_the_cri_runtime_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_mast"))
        .args([
            "kubelet",
            "--kubeconfig",
            "/nonexistent",
            "--runtime",
            "cri",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run mast kubelet");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("error: reading the kubeconfig /nonexistent"),
        "{stderr}"
    );
    // Nothing of the runtime was started (containerd logs its start at info).
    assert!(!stderr.contains("containerd ready"), "{stderr}");
}
