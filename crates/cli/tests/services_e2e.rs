//! Services end to end (issue 8's acceptance): `mast server` and `mast agent` (kubelet
//! with real containerd, runc and CNI; the nftables proxy; the cluster DNS server) in a
//! network namespace this test creates, with no route out.
//!
//! As in `kubelet_cri.rs`, the test thread moves itself into the namespace before it
//! builds its async runtime, so the server, the agent, its containerd, `nft` and the
//! test's own connections all live there. The namespace gets one veth pair whose end
//! `mast-n0` carries the node address (192.168.77.1): DNS endpoints and NodePorts need
//! a non-loopback address (`dummy` links are unavailable here). The harness
//! (`benches/common/netns.rs`) removes containerd, shims, cgroups, mounts and the
//! namespace on every exit path; [`Children`] kills the mast processes first.
//!
//! `agent_serves_services` asserts: from a client pod, 30 requests to
//! `web.default.svc.cluster.local` (the name through `mast dns`, the ClusterIP through
//! the proxy) reach each of 3 pods 10 ± 1 times; the ClusterIP answers from the node
//! itself and a NodePort on the node address; a pod failing readiness leaves the
//! rotation within 2 s; scaled to 1, all traffic goes to the survivor; a deleted
//! Service's ClusterIP leaves the table; SIGTERM stops everything cleanly.
//! `proxy_restart_keeps_connections` runs `mast kubelet` and `mast proxy` as separate
//! processes and restarts the proxy under a live connection.
//! Timings go to stderr.

mod common;
#[allow(dead_code)]
#[path = "../benches/common/netns.rs"]
mod netns;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use common::{Backend, Server, unique_name};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

const BUSYBOX: &str = "docker.io/library/busybox:latest";
const NODE_IP: &str = "192.168.77.1";
const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);
/// How fast a pod failing readiness must leave the rotation (issue 8).
const UNREADY_BOUND: Duration = Duration::from_secs(2);

/// The mast processes of a test, killed (and their logs printed on failure) on drop.
#[derive(Default)]
struct Children {
    running: BTreeMap<String, Child>,
    logs: Vec<PathBuf>,
}

impl Children {
    fn spawn(&mut self, dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<()> {
        let log = dir.join(format!("{name}-{}.log", self.logs.len()));
        let file = File::create(&log)?;
        let file2 = file.try_clone()?;
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .args(args)
            .arg("--exit-with-parent")
            // hickory's server logs every query at info.
            .env("RUST_LOG", "info,hickory_server=warn")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .with_context(|| format!("spawning mast {name}"))?;
        self.logs.push(log);
        if let Some(mut old) = self.running.insert(name.to_string(), child) {
            let _ = old.kill();
            let _ = old.wait();
        }
        Ok(())
    }

    /// SIGTERM to `name`; its exit status within `timeout`.
    async fn terminate(&mut self, name: &str, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let mut child = self
            .running
            .remove(name)
            .with_context(|| format!("no {name}"))?;
        if let Some(pid) = rustix::process::Pid::from_raw(i32::try_from(child.id())?) {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        }
        let waited = wait_for(&format!("{name} to exit"), timeout, || {
            let status = child.try_wait();
            async move { Ok(status?) }
        })
        .await;
        if waited.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        waited
    }

    fn print_logs(&self) {
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- last lines of {} ---\n{}\n--- end ---",
                log.display(),
                lines[lines.len().saturating_sub(120)..].join("\n")
            );
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in self.running.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `scenario` in a fresh namespace with a node address; everything it started is
/// gone afterwards, whatever the outcome.
fn in_world<F>(prefix: &str, scenario: F) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&netns::World, &mut Children) -> anyhow::Result<()>,
{
    let world = netns::World::new(prefix)?;
    world.enter()?;
    world.add_node_address(NODE_IP)?;
    let images = world.data_dir().join("agent").join("images");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    netns::run(
        "bash",
        &[&script.to_string_lossy(), &images.to_string_lossy()],
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut children = Children::default();
    let result = runtime.block_on(scenario(&world, &mut children));
    if result.is_err() {
        children.print_logs();
    }
    // The mast processes go before containerd and the namespace do.
    drop(children);
    drop(runtime);
    let residue = world.residue();
    drop(world);
    let left = residue.check();
    result?;
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

/// Polls `check` until it yields a value; fails after `timeout` with the last error.
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

/// GET http://ADDR/ from the test (inside the namespace): the body.
fn http_get(addr: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr.parse()?, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").context("no HTTP body")?;
    ensure!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    Ok(body.trim().to_string())
}

/// `nft list table ip mast-proxy`, or None when there is no such table.
fn proxy_table() -> anyhow::Result<Option<String>> {
    let tables = netns::run("nft", &["list", "tables"])?;
    if !tables.contains("mast-proxy") {
        return Ok(None);
    }
    netns::run("nft", &["list", "table", "ip", "mast-proxy"]).map(Some)
}

/// The table's maps, sets and chains, sorted: what it does, not the order its objects
/// were created in (an incrementally grown table lists a new service's chains last, a
/// fresh one in model order).
fn table_objects(table: &str) -> Vec<String> {
    let mut objects = Vec::new();
    let mut current = String::new();
    for line in table.lines() {
        if line.starts_with("\t}") {
            current.push_str(line);
            objects.push(std::mem::take(&mut current));
        } else if line.starts_with('\t') {
            current.push_str(line);
            current.push('\n');
        }
    }
    objects.sort();
    objects
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref().and_then(|s| s.pod_ip.clone())
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn cluster_ip(service: &Service) -> anyhow::Result<String> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| ip.starts_with("10.43."))
        .context("no ClusterIP allocated")
}

async fn wait_node_ready(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for("the node Ready with a pod CIDR", DEADLINE, || async {
        let node = nodes.get_opt(name).await?;
        Ok(node
            .filter(|n| {
                let ready = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                ready && n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some()
            })
            .map(|_| ()))
    })
    .await
}

/// Counts the pod names `bodies` holds.
fn tally<'a>(bodies: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for body in bodies {
        *counts.entry(body.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Every name in `names` got 10 ± 1 of 30, and nothing else answered.
fn check_round_robin(
    what: &str,
    counts: &BTreeMap<String, usize>,
    names: &BTreeSet<String>,
) -> anyhow::Result<()> {
    eprintln!("distribution {what}: {counts:?}");
    let answered: BTreeSet<String> = counts.keys().cloned().collect();
    ensure!(
        &answered == names,
        "{what}: answers from {answered:?}, pods {names:?}"
    );
    for (name, n) in counts {
        ensure!((9..=11).contains(n), "{what}: {name} got {n} of 30");
    }
    Ok(())
}

#[test]
fn agent_serves_services() -> anyhow::Result<()> {
    in_world("mast-sv", agent_scenario)
}

async fn agent_scenario(world: &netns::World, children: &mut Children) -> anyhow::Result<()> {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let kubeconfig = server.kubeconfig_path().to_string_lossy().into_owned();
    let resolv = world.dir().join("upstream-resolv.conf");
    std::fs::write(&resolv, "# no upstream in the namespace\n")?;
    let unready_dir = world.dir().join("unready");
    std::fs::create_dir_all(&unready_dir)?;
    let node = unique_name("svc-node");
    let data_dir = world.data_dir().to_string_lossy().into_owned();
    let started = Instant::now();
    children.spawn(
        world.dir(),
        "agent",
        &[
            "agent",
            "--kubeconfig",
            &kubeconfig,
            "--node-name",
            &node,
            "--data-dir",
            &data_dir,
            "--port",
            "0",
            "--node-ip",
            NODE_IP,
            "--cgroup-root",
            world.cgroup_root(),
            "--resolv-conf",
            &resolv.to_string_lossy(),
            // Upstream's 1 s batching plus the 1 s probe period could take 2 s alone.
            "--min-sync-period",
            "500ms",
        ],
    )?;
    wait_node_ready(&client, &node).await?;
    eprintln!("timing: agent start to node Ready {:?}", started.elapsed());
    // The DNS server published itself and the proxy translates its ClusterIP.
    wait_for("kube-dns in the proxy's table", DEADLINE, || async {
        Ok(proxy_table()?
            .is_some_and(|t| t.contains("10.43.0.10 . udp . 53") && t.contains(NODE_IP))
            .then_some(()))
    })
    .await?;

    // Three httpd pods, each serving its own name; ready while /unready/NAME is absent
    // (the test creates that file on the node, a hostPath, to fail one's readiness).
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "volumes": [{"name": "unready", "hostPath": {
                        "path": unready_dir.to_string_lossy(), "type": "Directory"}}],
                    "containers": [{
                        "name": "httpd",
                        "image": BUSYBOX,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c",
                            "mkdir -p /www && echo $POD_NAME > /www/index.html && exec httpd -f -p 80 -h /www"],
                        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "ports": [{"name": "http", "containerPort": 80}],
                        "volumeMounts": [{"name": "unready", "mountPath": "/unready"}],
                        "readinessProbe": {
                            "exec": {"command": ["sh", "-c", "test ! -e /unready/$(hostname)"]},
                            "periodSeconds": 1, "failureThreshold": 1
                        }
                    }]
                }
            }
        }
    }))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let web = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}
            }))?,
        )
        .await?;
    let web_ip = cluster_ip(&web)?;
    let web_np = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web-np"},
                "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}
            }))?,
        )
        .await?;
    let node_port = web_np
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.node_port)
        .context("no nodePort allocated")?;
    ensure!((30000..=32767).contains(&node_port), "nodePort {node_port}");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let by_label = ListParams::default().labels("app=web");
    let web_pods = wait_for("3 web pods Ready", DEADLINE, || async {
        let list = pods.list(&by_label).await?;
        let ready: Vec<Pod> = list.items.into_iter().filter(ready).collect();
        Ok((ready.len() == 3).then_some(ready))
    })
    .await?;
    let names: BTreeSet<String> = web_pods.iter().map(name_of).collect();
    let ips: BTreeMap<String, String> = web_pods
        .iter()
        .filter_map(|p| Some((name_of(p), pod_ip(p)?)))
        .collect();
    ensure!(ips.len() == 3, "pod IPs: {ips:?}");
    // All three in the rotation of both Services, each checked by its own endpoint
    // chains: `web` and `web-np` name the same pod IPs, and their EndpointSlices are
    // written (and synced) separately, so one being complete says nothing of the other.
    wait_for(
        "3 endpoints of each Service in the table",
        DEADLINE,
        || async {
            let table = proxy_table()?.unwrap_or_default();
            Ok((table.contains(&web_ip)
                && ips.values().all(|ip| {
                    table.contains(&format!("ep-default/web/tcp/80/{ip}/"))
                        && table.contains(&format!("ep-default/web-np/tcp/80/{ip}/"))
                }))
            .then_some(()))
        },
    )
    .await?;

    // From a client pod, through the cluster DNS name.
    let script = "for i in $(seq 30); do echo \"GOT $(timeout 5 wget -qO- http://web.default.svc.cluster.local)\"; done; echo DONE; sleep 3600";
    let client_pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "client"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
            }]
        }
    }))?;
    pods.create(&PostParams::default(), &client_pod).await?;
    let log = wait_for("the client's 30 requests", DEADLINE, || async {
        let log = pods
            .logs("client", &LogParams::default())
            .await
            .unwrap_or_default();
        Ok(log.contains("DONE").then_some(log))
    })
    .await?;
    let answers: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("GOT"))
        .map(str::trim)
        .collect();
    ensure!(answers.len() == 30, "client log:\n{log}");
    check_round_robin("from a pod by name", &tally(answers), &names)?;

    // From the node itself, to the ClusterIP (the output hook).
    let mut bodies = Vec::new();
    for _ in 0..30 {
        bodies.push(http_get(&format!("{web_ip}:80"))?);
    }
    check_round_robin(
        "from the node to the ClusterIP",
        &tally(bodies.iter().map(String::as_str)),
        &names,
    )?;
    // A NodePort on the node address.
    let mut bodies = Vec::new();
    for _ in 0..30 {
        bodies.push(http_get(&format!("{NODE_IP}:{node_port}"))?);
    }
    check_round_robin(
        "from the node to the NodePort",
        &tally(bodies.iter().map(String::as_str)),
        &names,
    )?;

    // A pod failing readiness leaves the rotation.
    let (victim, victim_ip) = ips.iter().next().context("no pod")?;
    let marker = unready_dir.join(victim);
    File::create(&marker)?;
    let failed = Instant::now();
    let left = wait_for("the unready pod out of the table", DEADLINE, || async {
        let table = proxy_table()?.unwrap_or_default();
        Ok((!table.contains(&format!("/{victim_ip}/"))).then(|| failed.elapsed()))
    })
    .await?;
    eprintln!("timing: readiness failure to out of the rotation {left:?}");
    ensure!(
        left <= UNREADY_BOUND,
        "the unready pod left the rotation after {left:?}"
    );
    for _ in 0..10 {
        let body = http_get(&format!("{web_ip}:80"))?;
        ensure!(&body != victim, "the unready pod {victim} still answers");
    }
    std::fs::remove_file(&marker)?;
    let back = Instant::now();
    wait_for("the pod back in the table", DEADLINE, || async {
        let table = proxy_table()?.unwrap_or_default();
        Ok(table.contains(&format!("/{victim_ip}/")).then_some(()))
    })
    .await?;
    eprintln!(
        "timing: ready again to back in the rotation {:?}",
        back.elapsed()
    );

    // Scaled to one: all traffic goes to the survivor.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await?;
    let survivor = wait_for("one web pod left", DEADLINE, || async {
        let list = pods.list(&by_label).await?;
        let live: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        Ok((live.len() == 1).then(|| name_of(&live[0])))
    })
    .await?;
    let survivor_ip = ips.get(&survivor).context("survivor unknown")?;
    wait_for("only the survivor in the table", DEADLINE, || async {
        let table = proxy_table()?.unwrap_or_default();
        Ok(ips
            .values()
            .all(|ip| table.contains(&format!("/{ip}/")) == (ip == survivor_ip))
            .then_some(()))
    })
    .await?;
    for _ in 0..10 {
        let body = http_get(&format!("{web_ip}:80"))?;
        ensure!(
            body == survivor,
            "{body} answered, not the survivor {survivor}"
        );
    }

    // A deleted Service's rules go.
    services.delete("web", &DeleteParams::default()).await?;
    let deleted = Instant::now();
    wait_for("the deleted service out of the table", DEADLINE, || async {
        let table = proxy_table()?.context("no table")?;
        Ok((!table.contains(&web_ip)).then_some(()))
    })
    .await?;
    eprintln!(
        "timing: Service deleted to its rules gone {:?}",
        deleted.elapsed()
    );

    // SIGTERM: the proxy's table, the kubelet's table and routes, the DNS endpoint go.
    let status = children.terminate("agent", Duration::from_secs(30)).await?;
    ensure!(status.success(), "agent exited with {status}");
    let tables = netns::run("nft", &["list", "tables"])?;
    ensure!(
        !tables.contains("mast-proxy") && !tables.contains("mast-kubelet"),
        "tables left: {tables}"
    );
    let routes = netns::run("ip", &["route", "show", "10.43.0.0/16"])?;
    ensure!(routes.trim().is_empty(), "service route left: {routes}");
    let dns =
        Api::<k8s_openapi::api::core::v1::Endpoints>::namespaced(client.clone(), "kube-system")
            .get_opt("kube-dns")
            .await?;
    let published = dns
        .and_then(|e| e.subsets)
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.addresses.clone().unwrap_or_default())
        .any(|a| a.ip == NODE_IP);
    ensure!(!published, "the DNS endpoint was not withdrawn");
    Ok(())
}

#[test]
fn proxy_restart_keeps_connections() -> anyhow::Result<()> {
    in_world("mast-sr", restart_scenario)
}

async fn restart_scenario(world: &netns::World, children: &mut Children) -> anyhow::Result<()> {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let kubeconfig = server.kubeconfig_path().to_string_lossy().into_owned();
    let node = unique_name("restart-node");
    let data_dir = world.data_dir().to_string_lossy().into_owned();
    children.spawn(
        world.dir(),
        "kubelet",
        &[
            "kubelet",
            "--kubeconfig",
            &kubeconfig,
            "--node-name",
            &node,
            "--data-dir",
            &data_dir,
            "--port",
            "0",
            "--node-ip",
            NODE_IP,
            "--cgroup-root",
            world.cgroup_root(),
        ],
    )?;
    let proxy_args = [
        "proxy",
        "--kubeconfig",
        &kubeconfig,
        "--hostname-override",
        &node,
        "--cluster-cidr",
        "10.42.0.0/16",
    ];
    children.spawn(world.dir(), "proxy", &proxy_args)?;
    wait_node_ready(&client, &node).await?;

    // An echo server behind a ClusterIP, and a NodePort for more rules to compare.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "echo", "labels": {"app": "echo"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "main", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                    "command": ["nc", "-ll", "-p", "9000", "-e", "cat"],
                    "ports": [{"containerPort": 9000}],
                }]
            }
        }))?,
    )
    .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let echo = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "echo"},
                "spec": {"type": "NodePort", "selector": {"app": "echo"}, "ports": [{"port": 9000}]}
            }))?,
        )
        .await?;
    let echo_ip = cluster_ip(&echo)?;
    let pod = wait_for("the echo pod Ready", DEADLINE, || async {
        Ok(Some(pods.get("echo").await?).filter(ready))
    })
    .await?;
    let ip = pod_ip(&pod).context("no pod IP")?;
    let before = wait_for("the echo service in the table", DEADLINE, || async {
        Ok(proxy_table()?.filter(|t| t.contains(&echo_ip) && t.contains(&format!("/{ip}/"))))
    })
    .await?;

    // A long-lived connection through the ClusterIP.
    let addr = format!("{echo_ip}:9000");
    let stream = wait_for("connecting to the echo service", DEADLINE, || async {
        Ok(Some(TcpStream::connect_timeout(
            &addr.parse()?,
            Duration::from_secs(2),
        )?))
    })
    .await?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut echo_line = |text: &str| -> anyhow::Result<()> {
        writeln!(writer, "{text}")?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        ensure!(line.trim() == text, "sent {text:?}, got {line:?}");
        Ok(())
    };
    echo_line("before")?;

    // The proxy stops: its table goes; the connection lives on through conntrack.
    let status = children.terminate("proxy", Duration::from_secs(30)).await?;
    ensure!(status.success(), "proxy exited with {status}");
    ensure!(proxy_table()?.is_none(), "the table outlived the proxy");
    echo_line("while stopped")?;

    // Restarted, it writes the same rules; the connection still works.
    let restarted = Instant::now();
    children.spawn(world.dir(), "proxy", &proxy_args)?;
    let after = wait_for("the same rules after the restart", DEADLINE, || async {
        Ok(proxy_table()?.filter(|t| table_objects(t) == table_objects(&before)))
    })
    .await;
    if after.is_err() {
        eprintln!(
            "before:\n{before}\nafter:\n{}",
            proxy_table()?.unwrap_or_default()
        );
    }
    after?;
    eprintln!(
        "timing: proxy restart to the same rules {:?}",
        restarted.elapsed()
    );
    echo_line("after")?;
    // And a new connection goes through too.
    let mut fresh = TcpStream::connect_timeout(&addr.parse()?, Duration::from_secs(2))?;
    fresh.set_read_timeout(Some(Duration::from_secs(5)))?;
    writeln!(fresh, "fresh")?;
    let mut line = String::new();
    BufReader::new(fresh).read_line(&mut line)?;
    ensure!(line.trim() == "fresh", "got {line:?}");
    Ok(())
}
