//! `mast kubelet` with the CRI runtime against a real `mast server`, with real
//! containerd, runc and CNI, inside a network namespace this test creates (loopback
//! only, no route out).
//!
//! Design: the test thread moves itself into the namespace (setns on the thread) before
//! it builds its async runtime, so every thread and process it starts after that is in
//! there too: the API server (on the namespace's 127.0.0.1), the kubelet (which starts
//! its own containerd), kubectl, and the test's own HTTP requests to pod IPs. Nothing
//! needs a veth or `ip netns exec` (which would remount /sys and hide the cgroups).
//! Leaving the namespace behind on exit is what deleting it does: its routes, nftables
//! table and bridge go with it. [`World`]'s Drop removes the rest on every exit path:
//! processes (kubelet, containerd, shims), pod cgroups, mounts, the namespace.
//!
//! Runs as root; never skipped. Timings and the kubelet's RSS go to stderr.

mod common;
// Each user of the shared harness needs a different part of it.
#[allow(dead_code)]
#[path = "../benches/common/netns.rs"]
mod netns;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use common::{Backend, Server, unique_name};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use netns::{processes, run};
use serde_json::json;
use tokio::time::Instant;

const BUSYBOX: &str = "docker.io/library/busybox:latest";
const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);
const MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// The test's world: the namespace and temp dir (the shared harness, which removes
/// containerd, shims, cgroups, mounts and the namespace on drop) and the kubelet.
struct World {
    kubelet: Option<Child>,
    kubelet_logs: Vec<PathBuf>,
    // Dropped after `Drop::drop` below has stopped the kubelet.
    net: netns::World,
}

impl World {
    fn new() -> anyhow::Result<World> {
        Ok(World {
            kubelet: None,
            kubelet_logs: Vec::new(),
            net: netns::World::new("mast-kc")?,
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.net.data_dir()
    }

    fn socket(&self) -> PathBuf {
        self.net.socket()
    }

    fn cgroup_root(&self) -> &str {
        self.net.cgroup_root()
    }

    fn enter(&self) -> anyhow::Result<()> {
        self.net.enter()
    }

    fn start_kubelet(&mut self, server: &Server, node: &str) -> anyhow::Result<u32> {
        let log = self
            .net
            .dir()
            .join(format!("kubelet-{}.log", self.kubelet_logs.len()));
        let file = File::create(&log)?;
        let file2 = file.try_clone()?;
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(server.kubeconfig_path())
            .args(["--node-name", node, "--runtime", "cri"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(common::LOOPBACK_KUBELET)
            .args(["--cgroup-root", self.cgroup_root()])
            .arg("--exit-with-parent")
            .env("RUST_LOG", "info,kubelet=debug")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()?;
        self.kubelet_logs.push(log);
        let pid = child.id();
        self.kubelet = Some(child);
        Ok(pid)
    }

    fn kubelet_pid(&self) -> Option<u32> {
        self.kubelet.as_ref().map(Child::id)
    }

    fn print_logs(&self) {
        for log in &self.kubelet_logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- last lines of {} ---\n{}\n--- end ---",
                log.display(),
                lines[lines.len().saturating_sub(150)..].join("\n")
            );
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        if let Some(mut child) = self.kubelet.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition not met");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?}: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// GET http://IP/ from the test (inside the namespace).
fn http_get(ip: &str) -> anyhow::Result<String> {
    let mut stream =
        std::net::TcpStream::connect_timeout(&format!("{ip}:80").parse()?, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").context("no HTTP body")?;
    ensure!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    Ok(body.to_string())
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn first_container(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
}

fn waiting_reason(pod: &Pod) -> Option<&str> {
    first_container(pod)
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref())
}

fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref().and_then(|s| s.pod_ip.clone())
}

/// A single-container busybox pod.
fn pod(name: &str, container: serde_json::Value, extra_spec: serde_json::Value) -> Pod {
    let mut spec = json!({
        "terminationGracePeriodSeconds": 2,
        "containers": [container],
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap_or_default()
}

fn busybox(command: &str) -> serde_json::Value {
    json!({
        "name": "main",
        "image": BUSYBOX,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", command],
    })
}

/// The memory cgroup directory of process `pid` (cgroup v1).
fn memory_cgroup(pid: u32) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        if let (Some(controllers), Some(path)) = (controllers, path)
            && controllers.split(',').any(|c| c == "memory")
        {
            return Ok(Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')));
        }
    }
    bail!("pid {pid} has no memory cgroup:\n{text}")
}

/// Sandboxes per pod UID, as CRI lists them.
async fn sandboxes_by_uid(client: &cri::CriClient) -> anyhow::Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for s in client
        .list_pod_sandboxes(&cri::SandboxFilter::default())
        .await?
    {
        if let Some(uid) = s.labels.get("io.kubernetes.pod.uid") {
            *counts.entry(uid.clone()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

async fn containers_of(client: &cri::CriClient, uid: &str) -> anyhow::Result<usize> {
    let filter = cri::ContainerFilter {
        labels: HashMap::from([("io.kubernetes.pod.uid".to_string(), uid.to_string())]),
        ..cri::ContainerFilter::default()
    };
    Ok(client.list_containers(&filter).await?.len())
}

#[test]
fn kubelet_runs_real_pods_through_cri() -> anyhow::Result<()> {
    let mut world = World::new()?;
    world.enter()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(scenario(&mut world));
    if result.is_err() {
        world.print_logs();
    }
    drop(runtime);
    result
}

async fn scenario(world: &mut World) -> anyhow::Result<()> {
    let images = world.data_dir().join("agent").join("images");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    run(
        "bash",
        &[&script.to_string_lossy(), &images.to_string_lossy()],
    )?;

    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let node_name = unique_name("cri-node");
    let started = Instant::now();
    world.start_kubelet(&server, &node_name)?;
    let nodes: Api<Node> = Api::all(client.clone());
    let node = wait_for("the node Ready with a pod CIDR", DEADLINE, || async {
        let node = nodes.get_opt(&node_name).await?;
        Ok(node.filter(|n| {
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            ready && n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some()
        }))
    })
    .await?;
    eprintln!(
        "timing: kubelet start to node Ready {:?}",
        started.elapsed()
    );
    let runtime_version = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.container_runtime_version.clone())
        .unwrap_or_default();
    ensure!(
        runtime_version.starts_with("containerd://"),
        "{runtime_version}"
    );
    let kubelet_port = node
        .status
        .as_ref()
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|e| e.port)
        .context("no kubelet port")?;
    let cri = cri::CriClient::for_socket(&world.socket());

    let ns = unique_name("cri");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    // A Deployment of three busybox httpd pods, each serving its own name.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "httpd",
                        "image": BUSYBOX,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c",
                            "mkdir -p /www && echo $(POD_NAME) > /www/index.html && echo serving $POD_NAME on $POD_IP && exec httpd -f -p 80 -h /www"],
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                        ],
                        "ports": [{"name": "http", "containerPort": 80}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}
                    }]
                }
            }
        }
    }))?;
    let created = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &deployment)
        .await?;
    let web = ListParams::default().labels("app=web");
    let running = wait_for("3 web pods Running", DEADLINE, || async {
        let list = pods.list(&web).await?;
        let running = list.items.iter().filter(|p| phase(p) == "Running").count();
        Ok((running == 3).then_some(()))
    })
    .await;
    running?;
    let to_running = created.elapsed();
    let web_pods = wait_for("3 web pods Ready", DEADLINE, || async {
        let list = pods.list(&web).await?;
        let ready: Vec<Pod> = list.items.into_iter().filter(ready).collect();
        Ok((ready.len() == 3).then_some(ready))
    })
    .await?;
    eprintln!(
        "timing: Deployment of 3 created to all Running {to_running:?}, all Ready {:?}",
        created.elapsed()
    );
    let ips: BTreeSet<String> = web_pods.iter().filter_map(pod_ip).collect();
    ensure!(ips.len() == 3, "pod IPs not distinct: {ips:?}");
    let cidr = node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .unwrap_or_default();
    let prefix = cidr.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
    for pod in &web_pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ip = pod_ip(pod).unwrap_or_default();
        ensure!(ip.starts_with(prefix), "{ip} not in {cidr}");
        let page = wait_for("the pod's page", Duration::from_secs(10), || async {
            Ok(Some(http_get(&ip)?))
        })
        .await?;
        assert_eq!(page.trim(), name, "page of {name} at {ip}");
        let status = first_container(pod).context("no container status")?;
        let id = status.container_id.clone().unwrap_or_default();
        ensure!(id.starts_with("containerd://"), "{id}");
        ensure!(!status.image_id.is_empty(), "no imageID: {status:?}");
        ensure!(status.ready && status.started == Some(true), "{status:?}");
    }

    // Logs: through the API server's pods/log proxy (kubectl), else the kubelet itself.
    let first = web_pods[0].metadata.name.clone().unwrap_or_default();
    let want = format!(
        "serving {first} on {}",
        pod_ip(&web_pods[0]).unwrap_or_default()
    );
    let kubectl = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .args(["logs", "-n", &ns, &first])
        .output()?;
    let kubectl_logs = String::from_utf8_lossy(&kubectl.stdout).into_owned();
    if kubectl.status.success() {
        ensure!(kubectl_logs.contains(&want), "kubectl logs: {kubectl_logs}");
        eprintln!("logs: kubectl logs shows the container's output");
    } else {
        eprintln!(
            "logs: kubectl logs failed ({}); checking the kubelet's /containerLogs",
            String::from_utf8_lossy(&kubectl.stderr).trim()
        );
    }
    let direct = common::http_exchange(
        &format!("127.0.0.1:{kubelet_port}"),
        "GET",
        &format!("/containerLogs/{ns}/{first}/httpd?timestamps=true&tailLines=1"),
        &[],
        b"",
    )?;
    let text = direct.text();
    ensure!(
        direct.status == 200 && text.contains(&want),
        "{}: {text}",
        direct.status
    );
    ensure!(
        text.lines().count() == 1 && text.contains("Z serving"),
        "{text}"
    );

    // The memory limit is in the container's cgroup.
    let web_id = first_container(&web_pods[0])
        .and_then(|c| c.container_id.clone())
        .unwrap_or_default();
    let info = cri
        .container_info(web_id.trim_start_matches("containerd://"))
        .await?;
    let cgroup = memory_cgroup(info.pid)?;
    let limit = std::fs::read_to_string(cgroup.join("memory.limit_in_bytes"))?;
    assert_eq!(limit.trim().parse::<u64>()?, MEMORY_LIMIT);
    ensure!(
        cgroup.to_string_lossy().contains(world.cgroup_root()),
        "{} not under {}",
        cgroup.display(),
        world.cgroup_root()
    );

    // CrashLoopBackOff, liveness, readiness, image pull failures, all at once.
    let specs = [
        pod("crash", busybox("echo dying; exit 1"), json!({})),
        pod(
            "liveness",
            json!({
                "name": "main", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
                "livenessProbe": {"exec": {"command": ["sh", "-c", "exit 1"]}, "periodSeconds": 1, "failureThreshold": 2}
            }),
            json!({}),
        ),
        pod(
            "readiness",
            json!({
                "name": "main", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "touch /tmp/ready; sleep 4; rm /tmp/ready; exec sleep 3600"],
                "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1}
            }),
            json!({}),
        ),
        pod(
            "absent",
            json!({"name": "main", "image": "mast.local/absent:1", "imagePullPolicy": "IfNotPresent"}),
            json!({}),
        ),
        pod(
            "never",
            json!({"name": "main", "image": "mast.local/absent:1", "imagePullPolicy": "Never"}),
            json!({}),
        ),
        pod(
            "graceful",
            busybox("trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 1; done"),
            json!({"terminationGracePeriodSeconds": 10}),
        ),
    ];
    for p in &specs {
        pods.create(&PostParams::default(), p).await?;
    }
    let get = |name: &'static str| {
        let pods = pods.clone();
        async move { Ok::<Pod, anyhow::Error>(pods.get(name).await?) }
    };
    // Readiness first, while the file is there: Ready, then not Ready once it goes.
    wait_for("readiness pod Ready", DEADLINE, || async {
        Ok(ready(&get("readiness").await?).then_some(()))
    })
    .await?;
    let unready = wait_for("readiness pod not Ready", DEADLINE, || async {
        let p = get("readiness").await?;
        Ok((!ready(&p) && phase(&p) == "Running").then_some(p))
    })
    .await?;
    let status = first_container(&unready).context("no status")?;
    ensure!(!status.ready && status.restart_count == 0, "{status:?}");
    let crash = wait_for("CrashLoopBackOff with 2 restarts", DEADLINE, || async {
        let p = get("crash").await?;
        let restarts = first_container(&p).map_or(0, |c| c.restart_count);
        if waiting_reason(&p) == Some("CrashLoopBackOff") && restarts >= 2 {
            return Ok(Some(p));
        }
        bail!("status: {}", serde_json::to_string(&p.status)?)
    })
    .await?;
    let last = first_container(&crash)
        .and_then(|c| c.last_state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .context("no last state")?;
    ensure!(last.exit_code == 1, "{last:?}");
    ensure!(phase(&crash) == "Running", "phase {}", phase(&crash));
    wait_for("liveness restarts", DEADLINE, || async {
        let p = get("liveness").await?;
        Ok(first_container(&p)
            .is_some_and(|c| c.restart_count >= 1)
            .then_some(()))
    })
    .await?;
    wait_for("ErrImagePull", DEADLINE, || async {
        let p = get("absent").await?;
        Ok(matches!(
            waiting_reason(&p),
            Some("ErrImagePull" | "ImagePullBackOff")
        )
        .then_some(()))
    })
    .await?;
    wait_for("ErrImageNeverPull", DEADLINE, || async {
        let p = get("never").await?;
        Ok((waiting_reason(&p) == Some("ErrImageNeverPull")).then_some(()))
    })
    .await?;

    // Deletion: the containers are gone (through CRI) within the grace period.
    let graceful = wait_for("graceful pod Running", DEADLINE, || async {
        let p = get("graceful").await?;
        Ok((phase(&p) == "Running").then_some(p))
    })
    .await?;
    let uid = graceful.metadata.uid.clone().unwrap_or_default();
    ensure!(
        containers_of(&cri, &uid).await? == 1,
        "graceful has no container"
    );
    let deleted = Instant::now();
    pods.delete("graceful", &DeleteParams::default()).await?;
    wait_for(
        "graceful pod's containers gone",
        Duration::from_secs(10),
        || async {
            Ok((containers_of(&cri, &uid).await? == 0
                && !sandboxes_by_uid(&cri).await?.contains_key(&uid))
            .then_some(()))
        },
    )
    .await?;
    eprintln!(
        "timing: delete to containers and sandbox gone {:?}",
        deleted.elapsed()
    );
    wait_for("graceful pod object gone", DEADLINE, || async {
        Ok(pods.get_opt("graceful").await?.is_none().then_some(()))
    })
    .await?;

    // Kill the kubelet; meanwhile one pod goes from the API for good (an orphan).
    let pid = world.kubelet_pid().context("no kubelet")?;
    if let Some(rss) = common::rss_kib(pid) {
        eprintln!("kubelet RSS with 8 pods: {rss} KiB");
    }
    let before = sandboxes_by_uid(&cri).await?;
    let web_ids: BTreeSet<String> = pods
        .list(&web)
        .await?
        .items
        .iter()
        .filter_map(|p| first_container(p).and_then(|c| c.container_id.clone()))
        .collect();
    ensure!(web_ids.len() == 3, "{web_ids:?}");
    if let Some(mut child) = world.kubelet.take() {
        child.kill()?;
        child.wait()?;
    }
    let orphan = get("liveness").await?;
    let orphan_uid = orphan.metadata.uid.clone().unwrap_or_default();
    pods.delete("liveness", &DeleteParams::default().grace_period(0))
        .await?;
    wait_for("liveness pod object gone", DEADLINE, || async {
        Ok(pods.get_opt("liveness").await?.is_none().then_some(()))
    })
    .await?;
    ensure!(
        before.contains_key(&orphan_uid),
        "orphan not in the runtime"
    );
    let restarted = Instant::now();
    world.start_kubelet(&server, &node_name)?;
    wait_for("the orphan removed", DEADLINE, || async {
        Ok((!sandboxes_by_uid(&cri).await?.contains_key(&orphan_uid)
            && containers_of(&cri, &orphan_uid).await? == 0)
            .then_some(()))
    })
    .await?;
    eprintln!(
        "timing: kubelet restart to orphan removed {:?}",
        restarted.elapsed()
    );
    // Let the new kubelet write statuses once, then compare.
    let after_ids = wait_for("web pods adopted", DEADLINE, || async {
        let list = pods.list(&web).await?;
        let ids: BTreeSet<String> = list
            .items
            .iter()
            .filter(|p| ready(p))
            .filter_map(|p| first_container(p).and_then(|c| c.container_id.clone()))
            .collect();
        Ok((ids.len() == 3).then_some(ids))
    })
    .await?;
    ensure!(
        after_ids == web_ids,
        "containers recreated: {web_ids:?} -> {after_ids:?}"
    );
    let after = sandboxes_by_uid(&cri).await?;
    for pod in pods.list(&web).await?.items {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        ensure!(
            after.get(&uid) == Some(&1),
            "sandboxes of {uid}: {:?}",
            after.get(&uid)
        );
        ensure!(
            containers_of(&cri, &uid).await? == 1,
            "duplicate containers of {uid}"
        );
        let ip = pod_ip(&pod).unwrap_or_default();
        let page = http_get(&ip)?;
        assert_eq!(Some(page.trim()), pod.metadata.name.as_deref());
    }
    let mut expected = before.clone();
    expected.remove(&orphan_uid);
    ensure!(
        after.len() == expected.len(),
        "sandboxes before {before:?}, after {after:?}"
    );

    let pid = world.kubelet_pid().context("no kubelet")?;
    if let Some(rss) = common::rss_kib(pid) {
        eprintln!("kubelet RSS after restart with 7 pods: {rss} KiB");
    }

    // A clean exit: SIGTERM; containerd stops, the host rules go, pods stay.
    if let Some(mut child) = world.kubelet.take() {
        if let Some(pid) = rustix::process::Pid::from_raw(i32::try_from(child.id())?) {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        }
        let exited = wait_for("the kubelet to exit", Duration::from_secs(30), || {
            let status = child.try_wait();
            async move { Ok(status?) }
        })
        .await?;
        ensure!(exited.success(), "kubelet exited with {exited}");
    }
    let tables = run("nft", &["list", "tables"])?;
    ensure!(
        !tables.contains("mast-kubelet"),
        "nftables table left: {tables}"
    );
    let routes = run("ip", &["route", "show", "type", "blackhole"])?;
    ensure!(routes.trim().is_empty(), "blackhole routes left: {routes}");
    let service_routes = run("ip", &["route", "show", "10.43.0.0/16"])?;
    ensure!(
        service_routes.trim().is_empty(),
        "service range route left: {service_routes}"
    );
    let config = world.data_dir().join("containerd").join("config.toml");
    let left = processes(|args| {
        args.first().is_some_and(|a| a.ends_with(b"containerd"))
            && args
                .windows(2)
                .any(|w| w[0] == b"--config" && w[1] == config.as_os_str().as_encoded_bytes())
    });
    ensure!(left.is_empty(), "containerd still running: {left:?}");
    Ok(())
}
