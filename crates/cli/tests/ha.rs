//! Acceptance tests for issue 9 (high availability), on the specification's topology:
//! a real 3-member etcd, two or more `mast server` masters sharing it, a real nginx
//! (configured by `mast nginx-config`) in front of them, and the real kubectl talking
//! through nginx. Nodes are hollow (`mast kubelet --runtime fake`): the control plane is
//! under test here, the kubelet's real runtime has its own tests.
//!
//! Figures (takeover and outage times) are printed with a `figure:` prefix; they are
//! recorded in docs/benchmarks.md.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Server, unique_name};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use store::testing::EtcdCluster;

const DEADLINE: Duration = Duration::from_secs(60);
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);
const HOLLOW_NODES: usize = 3;
const SCHEDULER_LEASE: &str = "kube-scheduler";
const CONTROLLER_MANAGER_LEASE: &str = "kube-controller-manager";

/// A child process killed on drop, with its log in a file.
#[derive(Debug)]
struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, mut command: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("create a log file");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Process {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn signal(&self, signal: &str) {
        common::send_signal(self.pid(), signal);
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            common::terminate(&mut child, Duration::from_secs(5));
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- last lines of {} ({}) ---\n{}\n--- end ---",
                self.name,
                self.log.display(),
                lines[lines.len().saturating_sub(80)..].join("\n")
            );
        }
    }
}

/// The specification's topology on loopback.
struct HaCluster {
    dir: tempfile::TempDir,
    etcd: EtcdCluster,
    masters: Vec<Server>,
    nginx: Option<Process>,
    /// Kubeconfig pointing at nginx.
    kubeconfig: PathBuf,
    nginx_url: String,
    extra: Vec<Process>,
}

impl HaCluster {
    /// etcd ×3 and the first master (which therefore wins both elections), then the
    /// other masters, then nginx in front of all of them.
    async fn start(masters: usize, master_args: &[&str]) -> Self {
        let etcd = EtcdCluster::start(3).await.expect("start a 3-member etcd");
        let dir = tempfile::Builder::new()
            .prefix("mast-ha-")
            .tempdir()
            .expect("temp dir");
        let backend = Backend::Etcd(etcd.endpoints());
        let mut cluster = HaCluster {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            etcd,
            masters: Vec::new(),
            nginx: None,
            nginx_url: String::new(),
            extra: Vec::new(),
        };
        cluster.add_master(backend.clone(), master_args);
        if !master_args.contains(&"--disable-scheduler") {
            cluster
                .wait_for_holder(SCHEDULER_LEASE, |holder| !holder.is_empty())
                .await;
        }
        cluster
            .wait_for_holder(CONTROLLER_MANAGER_LEASE, |holder| !holder.is_empty())
            .await;
        for _ in 1..masters {
            cluster.add_master(backend.clone(), master_args);
        }
        cluster.start_nginx();
        cluster
    }

    fn add_master(&mut self, backend: Backend, master_args: &[&str]) {
        let server = Server::start_control_plane(backend, master_args);
        self.masters.push(server);
    }

    /// Writes nginx's config for the current masters, starts nginx, and writes the
    /// kubeconfig that points at it.
    fn start_nginx(&mut self) {
        let port = free_port();
        let config = self.write_nginx_config(port);
        let prefix = self.dir.path().join("nginx");
        let mut command = Command::new(nginx_binary());
        command.arg("-p").arg(&prefix).arg("-c").arg(&config);
        self.nginx = Some(Process::spawn(
            "nginx",
            command,
            self.dir.path().join("nginx.log"),
        ));
        self.nginx_url = format!("http://127.0.0.1:{port}");
        let text = std::fs::read_to_string(self.masters[0].kubeconfig_path())
            .expect("read the master's kubeconfig");
        let text = text.replace(self.masters[0].url(), &self.nginx_url);
        std::fs::write(&self.kubeconfig, text).expect("write the nginx kubeconfig");
        self.wait_for_nginx();
    }

    /// Rewrites the config for the current masters (a new one joined) and reloads
    /// nginx, which keeps its listening socket, as an operator would.
    fn reload_nginx(&mut self) {
        let port: u16 = self
            .nginx_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("nginx runs");
        self.write_nginx_config(port);
        self.nginx.as_ref().expect("nginx runs").signal("HUP");
        self.wait_for_nginx();
    }

    fn wait_for_nginx(&self) {
        let deadline = Instant::now() + DEADLINE;
        while !kubectl(&self.kubeconfig, &["get", "--raw", "/readyz"]).0 {
            if Instant::now() > deadline {
                self.fail("nginx never answered /readyz");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_nginx_config(&self, port: u16) -> PathBuf {
        let prefix = self.dir.path().join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).expect("nginx prefix dir");
        let servers: Vec<String> = self
            .masters
            .iter()
            .map(|m| m.url().trim_start_matches("http://").to_string())
            .collect();
        let output = Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("nginx-config")
            .args(["--servers", &servers.join(",")])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--prefix")
            .arg(&prefix)
            .output()
            .expect("run mast nginx-config");
        assert!(
            output.status.success(),
            "mast nginx-config failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let config = prefix.join("nginx.conf");
        std::fs::write(&config, &output.stdout).expect("write nginx.conf");
        config
    }

    /// A kube client through nginx.
    async fn client(&self) -> kube::Client {
        common::client_from_kubeconfig(&self.kubeconfig).await
    }

    fn start_hollow_kubelet(&mut self, name: &str) {
        let dir = self.dir.path().join(format!("kubelet-{name}"));
        std::fs::create_dir_all(&dir).expect("kubelet dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mast"));
        command
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--node-name", name, "--runtime", "fake", "--port", "0"])
            .args(["--hollow-nodes", &HOLLOW_NODES.to_string()])
            .arg("--data-dir")
            .arg(dir.join("data"));
        let log = dir.join("kubelet.log");
        self.extra.push(Process::spawn("kubelet", command, log));
    }

    /// A standalone `mast scheduler` through nginx (leader-elected by default).
    fn start_scheduler(&mut self, name: &str) -> usize {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mast"));
        command
            .arg("scheduler")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("RUST_LOG", "info");
        let log = self.dir.path().join(format!("{name}.log"));
        self.extra.push(Process::spawn(name, command, log));
        self.extra.len() - 1
    }

    fn fail(&self, message: &str) -> ! {
        let mut logs = String::new();
        for (i, m) in self.masters.iter().enumerate() {
            let log = m.log();
            let lines: Vec<&str> = log.lines().collect();
            logs.push_str(&format!(
                "--- master {i} (last lines) ---\n{}\n",
                lines[lines.len().saturating_sub(60)..].join("\n")
            ));
        }
        panic!("{message}\n{logs}");
    }

    /// Polls (every 20 ms) until the Lease's holder satisfies `accept`; returns it.
    async fn wait_for_holder(&self, lease: &str, accept: impl Fn(&str) -> bool) -> String {
        let leases: Api<Lease> = Api::namespaced(self.direct_client().await, "kube-system");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(l)) = leases.get_opt(lease).await {
                let holder = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                if accept(&holder) {
                    return holder;
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!("timed out waiting for the {lease} lease"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client on the last (surviving) master directly, before nginx exists.
    async fn direct_client(&self) -> kube::Client {
        if self.nginx.is_some() {
            return self.client().await;
        }
        self.masters.last().expect("a master runs").client().await
    }

    /// Which running master's log names `holder` as the one that became leader, waiting
    /// for the line: the Lease can be read before its new holder has logged it.
    async fn master_holding(&self, holder: &str) -> usize {
        eventually(|| {
            self.masters
                .iter()
                .position(|m| m.pid() != 0 && m.log().contains(holder))
        })
        .await
        .unwrap_or_else(|| {
            self.fail(&format!(
                "no running master logged the leader identity {holder}"
            ))
        })
    }
}

/// Polls `found` until it gives something, for at most [`DEADLINE`] (None then): a log
/// line can land after the Lease change it reports was read.
async fn eventually<T>(mut found: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = found() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn nginx_binary() -> String {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx".into()
    } else {
        "nginx".into()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
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
"
    )
}

fn apply(kubeconfig: &Path, dir: &Path, yaml: &str) {
    let file = dir.join(format!("{}.yaml", unique_name("manifest")));
    std::fs::write(&file, yaml).expect("write manifest");
    let path = file.to_string_lossy().into_owned();
    let (ok, out) = kubectl(kubeconfig, &["apply", "-f", &path]);
    assert!(ok, "kubectl apply failed: {out}");
}

/// Polls until the Deployment reports `replicas` available and updated.
async fn wait_available(cluster: &HaCluster, name: &str, replicas: i32) -> Duration {
    let started = Instant::now();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "default");
    let deadline = started + DEADLINE;
    loop {
        if let Ok(d) = deployments.get(name).await {
            let status = d.status.unwrap_or_default();
            let generation = d.metadata.generation.unwrap_or(0);
            if status.observed_generation.unwrap_or(0) >= generation
                && status.available_replicas.unwrap_or(0) == replicas
                && status.updated_replicas.unwrap_or(0) == replicas
                && status.replicas.unwrap_or(0) == replicas
            {
                return started.elapsed();
            }
        }
        if Instant::now() > deadline {
            cluster.fail(&format!(
                "deployment {name} never had {replicas} available replicas"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs kubectl through nginx in a loop on its own thread and records, for every
/// call, when it ended and whether it worked.
struct Prober {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(Instant, bool)>>>,
}

impl Prober {
    fn start(kubeconfig: &Path, name: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let kubeconfig = kubeconfig.to_path_buf();
        let name = name.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut calls = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let (ok, _) = kubectl(
                    &kubeconfig,
                    &[
                        "get",
                        "deployment",
                        &name,
                        "-o",
                        "name",
                        "--request-timeout=5s",
                    ],
                );
                calls.push((Instant::now(), ok));
                std::thread::sleep(Duration::from_millis(20));
            }
            calls
        });
        Prober {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops probing; returns (calls, failures, the longest time between two successful
    /// calls that had failures between them).
    fn finish(mut self) -> (usize, usize, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let calls = self
            .thread
            .take()
            .expect("the prober runs")
            .join()
            .expect("the prober thread");
        let failures = calls.iter().filter(|(_, ok)| !ok).count();
        let mut longest = Duration::ZERO;
        let mut last_ok: Option<Instant> = None;
        let mut failed_since = false;
        for (at, ok) in &calls {
            if *ok {
                if let (true, Some(previous)) = (failed_since, last_ok) {
                    longest = longest.max(*at - previous);
                }
                last_ok = Some(*at);
                failed_since = false;
            } else {
                failed_since = true;
            }
        }
        (calls.len(), failures, longest)
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Graceful handover, then a leader crash: a master stopped with SIGTERM hands both
/// leases over within a second; then the leading master is killed with SIGKILL while
/// kubectl runs through nginx: the other master's scheduler and controller-manager
/// take over, a Deployment scaled afterwards converges, and kubectl fails for at most
/// 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_hand_over_and_a_crashed_master_is_replaced() {
    let mut cluster = HaCluster::start(2, &[]).await;
    let kubelet = unique_name("hollow");
    cluster.start_hollow_kubelet(&kubelet);
    let name = unique_name("web");
    apply(
        &cluster.kubeconfig,
        cluster.dir.path(),
        &deployment_yaml(&name, 3, "nginx:1"),
    );
    wait_available(&cluster, &name, 3).await;

    // Master 0 started first and leads both.
    let scheduler_0 = cluster
        .wait_for_holder(SCHEDULER_LEASE, |h| !h.is_empty())
        .await;
    let controllers_0 = cluster
        .wait_for_holder(CONTROLLER_MANAGER_LEASE, |h| !h.is_empty())
        .await;
    assert_eq!(cluster.master_holding(&scheduler_0).await, 0);
    assert_eq!(cluster.master_holding(&controllers_0).await, 0);

    // Graceful stop: a third master joins first, so that a follower remains afterwards.
    let backend = Backend::Etcd(cluster.etcd.endpoints());
    cluster.add_master(backend, &[]);
    cluster.reload_nginx();
    let stopped = Instant::now();
    cluster.masters[0].send_signal("TERM");
    let scheduler_1 = cluster
        .wait_for_holder(SCHEDULER_LEASE, |h| !h.is_empty() && h != scheduler_0)
        .await;
    let scheduler_handover = stopped.elapsed();
    let controllers_1 = cluster
        .wait_for_holder(CONTROLLER_MANAGER_LEASE, |h| {
            !h.is_empty() && h != controllers_0
        })
        .await;
    let controllers_handover = stopped.elapsed();
    assert!(
        cluster.masters[0].stop_gracefully(Duration::from_secs(10)),
        "master 0 did not exit after SIGTERM"
    );
    println!(
        "figure: graceful stop of the leading master: scheduler lease taken over after {:.0} ms, controller-manager after {:.0} ms (SIGTERM to new holder seen)",
        scheduler_handover.as_secs_f64() * 1000.0,
        controllers_handover.as_secs_f64() * 1000.0
    );
    assert!(
        controllers_handover < Duration::from_secs(1)
            && scheduler_handover < Duration::from_secs(1),
        "a graceful stop must hand over within 1 s"
    );

    // The crash: kill -9 the master that now leads the scheduler, while kubectl runs
    // through nginx.
    let leader = cluster.master_holding(&scheduler_1).await;
    // Known before the kill: a killed master no longer counts as running.
    let controllers_leader = cluster.master_holding(&controllers_1).await;
    let prober = Prober::start(&cluster.kubeconfig, &name);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    cluster.masters[leader].kill_now();
    let scheduler_2 = cluster
        .wait_for_holder(SCHEDULER_LEASE, |h| !h.is_empty() && h != scheduler_1)
        .await;
    let scheduler_takeover = killed.elapsed();
    let controllers_crash_takeover = if controllers_leader == leader {
        cluster
            .wait_for_holder(CONTROLLER_MANAGER_LEASE, |h| {
                !h.is_empty() && h != controllers_1
            })
            .await;
        Some(killed.elapsed())
    } else {
        None
    };
    assert_ne!(cluster.master_holding(&scheduler_2).await, leader);

    // The new leaders act: scaling converges (new pods created and scheduled).
    let (ok, out) = kubectl(
        &cluster.kubeconfig,
        &["scale", "deployment", &name, "--replicas=6"],
    );
    assert!(ok, "kubectl scale failed: {out}");
    let converged = wait_available(&cluster, &name, 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (calls, failures, outage) = prober.finish();
    println!(
        "figure: kill -9 of the leading master: new scheduler leader after {:.0} ms{}; scale to 6 converged {:.0} ms after the scale; kubectl through nginx: {calls} calls, {failures} failed, longest gap between successes around failures {:.0} ms",
        scheduler_takeover.as_secs_f64() * 1000.0,
        controllers_crash_takeover
            .map(|d| format!(
                ", new controller-manager leader after {:.0} ms",
                d.as_secs_f64() * 1000.0
            ))
            .unwrap_or_default(),
        converged.as_secs_f64() * 1000.0,
        outage.as_secs_f64() * 1000.0
    );
    assert!(
        outage <= Duration::from_secs(2),
        "kubectl through nginx failed for {outage:?}"
    );
    assert!(calls > 10, "the prober made too few calls ({calls})");
}

/// kill -9 the etcd leader while clients write through nginx: every write that was
/// acknowledged is there afterwards, and writes keep being acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_member_dies_during_writes_and_no_acknowledged_write_is_lost() {
    let mut cluster = HaCluster::start(2, &[]).await;
    let client = cluster.client().await;
    let namespace = unique_name("writes");
    let (ok, out) = kubectl(&cluster.kubeconfig, &["create", "namespace", &namespace]);
    assert!(ok, "create namespace: {out}");

    let acknowledged = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut failed = 0usize;
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{writer}-{n}");
                n += 1;
                let cm = ConfigMap {
                    metadata: kube::api::ObjectMeta {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([("n".to_string(), n.to_string())])),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => acknowledged
                        .lock()
                        .expect("lock")
                        .push((name, Instant::now())),
                    Err(_) => failed += 1,
                }
            }
            failed
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leader = etcd_leader(&cluster.etcd.endpoints());
    let killed = Instant::now();
    cluster.etcd.kill(leader);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for w in writers {
        failed += w.await.expect("writer task");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let after_kill = acknowledged.iter().filter(|(_, at)| *at > killed).count();
    // The longest pause between two acknowledgements from the kill on: etcd's election.
    let mut times: Vec<Instant> = acknowledged.iter().map(|(_, at)| *at).collect();
    times.push(killed);
    times.sort();
    let longest_pause = times
        .windows(2)
        .filter(|w| w[1] >= killed)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let stored: BTreeSet<String> = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .expect("list the config maps")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !stored.contains(*n))
        .collect();
    println!(
        "figure: kill -9 of the etcd leader (member {leader}) during writes: {} writes acknowledged ({after_kill} after the kill), {failed} failed, longest pause between acknowledgements after the kill {:.0} ms, {} lost",
        acknowledged.len(),
        longest_pause.as_secs_f64() * 1000.0,
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(after_kill > 0, "no write was acknowledged after the kill");
}

/// The index of the etcd member that leads, from `etcdctl endpoint status`.
fn etcd_leader(endpoints: &[String]) -> usize {
    let output = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .args(["endpoint", "status", "-w", "json"])
        .output()
        .expect("run etcdctl (Debian etcd-client)");
    assert!(
        output.status.success(),
        "etcdctl endpoint status: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let statuses: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("etcdctl's JSON");
    let statuses = statuses.as_array().expect("a status per endpoint");
    statuses
        .iter()
        .position(|s| {
            let member = &s["Status"]["header"]["member_id"];
            let leader = &s["Status"]["leader"];
            !member.is_null() && member == leader
        })
        .expect("one member leads")
}

/// What the watches saw during the SIGSTOP test.
#[derive(Debug, Default)]
struct Observed {
    /// Every node name each pod was seen bound to.
    bindings: BTreeMap<String, BTreeSet<String>>,
    /// The highest `status.replicas` per ReplicaSet, and the highest sum of ReplicaSet
    /// `spec.replicas` of the Deployment.
    replica_sets: BTreeMap<String, i32>,
    max_total_spec_replicas: i32,
}

/// SIGSTOP the leading scheduler past its lease, create pods meanwhile, SIGCONT: no
/// pod is bound twice, every write the stale leader tries is rejected by fencing, and
/// no ReplicaSet ever exceeds replicas + maxSurge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_scheduler_wakes_up_fenced() {
    let mut cluster = HaCluster::start(2, &["--disable-scheduler"]).await;
    let kubelet = unique_name("hollow");
    cluster.start_hollow_kubelet(&kubelet);
    let first = cluster.start_scheduler("scheduler-a");
    let holder_a = cluster
        .wait_for_holder(SCHEDULER_LEASE, |h| !h.is_empty())
        .await;
    let second = cluster.start_scheduler("scheduler-b");
    let client = cluster.client().await;

    let name = unique_name("web");
    apply(
        &cluster.kubeconfig,
        cluster.dir.path(),
        &deployment_yaml(&name, 4, "nginx:1"),
    );
    wait_available(&cluster, &name, 4).await;
    let leader = eventually(|| {
        [first, second]
            .into_iter()
            .find(|&i| cluster.extra[i].log().contains(&holder_a))
    })
    .await
    .unwrap_or_else(|| cluster.fail("no scheduler logged that it leads"));
    let follower = if leader == first { second } else { first };

    // Watch pods and ReplicaSets from here on.
    let observed = Arc::new(Mutex::new(Observed::default()));
    let pods_watch = {
        let observed = observed.clone();
        let api: Api<Pod> = Api::namespaced(client.clone(), "default");
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                // Spaced retries: once the server is gone at the end of the test, a
                // watcher without backoff would spin and hold the runtime's shutdown.
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event
                    && let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone())
                {
                    observed
                        .lock()
                        .expect("lock")
                        .bindings
                        .entry(pod.metadata.name.clone().unwrap_or_default())
                        .or_default()
                        .insert(node);
                }
            }
        })
    };
    let rs_watch = {
        let observed = observed.clone();
        let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
        let name = name.clone();
        tokio::spawn(async move {
            let mut specs: BTreeMap<String, i32> = BTreeMap::new();
            let mut stream = watcher(api, watcher::Config::default())
                // Spaced retries: once the server is gone at the end of the test, a
                // watcher without backoff would spin and hold the runtime's shutdown.
                .default_backoff()
                .boxed();
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(rs) | watcher::Event::InitApply(rs)) = event {
                    let rs_name = rs.metadata.name.clone().unwrap_or_default();
                    if !rs_name.starts_with(&name) {
                        continue;
                    }
                    let mut seen = observed.lock().expect("lock");
                    let status = rs.status.as_ref().map_or(0, |s| s.replicas);
                    let entry = seen.replica_sets.entry(rs_name.clone()).or_insert(0);
                    *entry = (*entry).max(status);
                    specs.insert(rs_name, rs.spec.replicas.unwrap_or(0));
                    let total: i32 = specs.values().sum();
                    seen.max_total_spec_replicas = seen.max_total_spec_replicas.max(total);
                }
            }
        })
    };

    // Give the leader pods to work on, and stop it in the middle of them.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let burst = unique_name("burst");
    create_pods(&pods, &burst, 0..20).await;
    cluster.extra[leader].signal("STOP");
    let stopped = Instant::now();
    // Meanwhile: a rolling update and more pods.
    let (ok, out) = kubectl(
        &cluster.kubeconfig,
        &["set", "image", &format!("deployment/{name}"), "web=nginx:2"],
    );
    assert!(ok, "kubectl set image: {out}");
    create_pods(&pods, &burst, 20..40).await;
    let holder_b = cluster
        .wait_for_holder(SCHEDULER_LEASE, |h| !h.is_empty() && h != holder_a)
        .await;
    let takeover = stopped.elapsed();
    eventually(|| {
        cluster.extra[follower]
            .log()
            .contains(&holder_b)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| cluster.fail("the follower did not take over"));
    wait_available(&cluster, &name, 4).await;
    wait_all_bound(&pods, &burst, 40).await;
    // Past the lease by a margin, then wake the stale leader.
    tokio::time::sleep(Duration::from_secs(1)).await;
    create_pods(&pods, &burst, 40..50).await;
    cluster.extra[leader].signal("CONT");
    let deadline = Instant::now() + DEADLINE;
    while !cluster.extra[leader].log().contains("lost leadership") {
        assert!(
            Instant::now() < deadline,
            "the stale leader never stepped down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_all_bound(&pods, &burst, 50).await;
    // Let anything the stale leader had in flight reach the API servers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        cluster.extra[leader].is_running(),
        "the stale scheduler died"
    );

    let rejected_by_servers: f64 = cluster
        .masters
        .iter()
        .map(|m| fenced_writes(&m.metrics(), "kube-system/kube-scheduler", "rejected"))
        .sum();
    let rejected_seen_by_stale = cluster.extra[leader]
        .log()
        .matches("write rejected by fencing")
        .count();
    let rejected_seen_by_new = cluster.extra[follower]
        .log()
        .matches("write rejected by fencing")
        .count();
    pods_watch.abort();
    rs_watch.abort();
    let observed = observed.lock().expect("lock");
    let bound_twice: Vec<_> = observed
        .bindings
        .iter()
        .filter(|(_, nodes)| nodes.len() > 1)
        .collect();
    println!(
        "figure: SIGSTOP of the leading scheduler: follower leads after {:.0} ms; after SIGCONT the stale leader's writes rejected by fencing: {rejected_seen_by_stale} (API servers counted {rejected_by_servers})",
        takeover.as_secs_f64() * 1000.0
    );
    assert!(bound_twice.is_empty(), "pods bound twice: {bound_twice:?}");
    assert_eq!(
        observed
            .bindings
            .keys()
            .filter(|k| k.starts_with(&burst))
            .count(),
        50,
        "every burst pod bound"
    );
    assert_eq!(rejected_seen_by_new, 0, "the new leader was fenced");
    assert_eq!(
        rejected_by_servers, rejected_seen_by_stale as f64,
        "every fenced rejection the API servers counted is one the stale leader saw"
    );
    // replicas 4 + maxSurge 1.
    for (rs, max) in &observed.replica_sets {
        assert!(*max <= 5, "ReplicaSet {rs} reached {max} replicas");
    }
    assert!(
        observed.max_total_spec_replicas <= 5,
        "the ReplicaSets together wanted {} replicas",
        observed.max_total_spec_replicas
    );
}

async fn create_pods(pods: &Api<Pod>, prefix: &str, range: std::ops::Range<usize>) {
    let creates = range.map(|i| {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{prefix}-{i}")},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .expect("pod");
        async move { pods.create(&PostParams::default(), &pod).await }
    });
    for result in futures::future::join_all(creates).await {
        result.expect("create a pod");
    }
}

async fn wait_all_bound(pods: &Api<Pod>, prefix: &str, count: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let list = pods.list(&ListParams::default()).await.expect("list pods");
        let bound = list
            .items
            .iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
                    && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
            })
            .count();
        if bound == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {bound} of {count} {prefix} pods were bound"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `mast_apiserver_fenced_writes_total{lease="…",result="…"}` in a /metrics text.
fn fenced_writes(text: &str, lease: &str, result: &str) -> f64 {
    let lease_label = format!("lease=\"{lease}\"");
    let result_label = format!("result=\"{result}\"");
    text.lines()
        .filter(|l| l.starts_with("mast_apiserver_fenced_writes_total{"))
        .filter(|l| l.contains(&lease_label) && l.contains(&result_label))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}
