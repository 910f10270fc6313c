//! Kubelet benchmark: pod startup latency and memory with the real CRI runtime on one
//! node, and memory per hollow node.
//!
//! ```text
//! cargo bench -p mast --bench kubelet            # 30 pods; 1000 hollow nodes
//! cargo bench -p mast --bench kubelet -- --quick # 10 pods; 200 hollow nodes
//! ```
//!
//! Flags after `--`: `--quick`; `--only cri` or `--only hollow`; `--pods N`;
//! `--hollow-nodes N`; `--kubelet-env NAME=VALUE` (repeatable; set on every kubelet
//! the harness starts, e.g. `MALLOC_ARENA_MAX=2` or `RUST_LOG=debug`); `--keep-logs
//! DIR` (copies the server, kubelet and containerd logs there before cleaning up).
//! `MAST_BENCH_BIN=PATH` runs another `mast` build than the one cargo made.
//!
//! Everything runs inside a network namespace the harness creates (loopback only, no
//! route out), entered by the main thread before it builds its async runtime, as
//! `crates/cli/tests/kubelet_cri.rs` does; see `common::netns` for the cleanup.
//!
//! 1. CRI: `mast server` (SQLite, scheduler and controller-manager: pods are
//!    scheduled, the node gets its podCIDR from the IPAM controller), and `mast kubelet
//!    --runtime cri`, which runs its own containerd and imports the images
//!    `scripts/build-images.sh` wrote into DATA_DIR/agent/images before it started.
//!    Pods: one busybox container running `sleep`, `imagePullPolicy: IfNotPresent`
//!    (the image is present). A pod watch records when each pod is first seen bound
//!    and first seen `Running`; latency is from the start of its create call. One
//!    unmeasured warm-up pod first (the node's first pod also creates the CNI bridge);
//!    then N pods one by one (each created once the previous one is Running); the
//!    readings with N pods running; all deleted; then N pods created at once (N
//!    concurrent create calls) and the readings again. Readings: VmRSS (and VmHWM,
//!    its anonymous and file-backed parts, PSS) of the kubelet, VmRSS of containerd,
//!    VmRSS and PSS summed over containerd's shims. CPU seconds per phase of the
//!    kubelet, containerd (and its reaped children: CNI plugins), the shims (with
//!    runc), the server and the whole machine; the kubelet's sync and status-write
//!    counters. Where each startup goes comes from containerd's own log
//!    (RunPodSandbox, CreateContainer, StartContainer, with their timestamps) set
//!    against the watch's wall-clock times. Then the CPU over [`IDLE`] with the pods
//!    running, and what each CRI call of a pod status costs containerd.
//! 2. Hollow: per size (1 node, then N), a fresh `mast server` and `mast kubelet
//!    --runtime fake --hollow-nodes SIZE`; once every node is Ready and every lease has
//!    been renewed a few times (default 10 s interval), the kubelet's VmRSS.
//!
//! Prints how busy the machine was just before, then Markdown tables (paste them into
//! docs/benchmarks.md).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use common::netns::{World, run};
use common::{
    Memory, Process, START_TIMEOUT, client, cpu_seconds, cpu_seconds_with_children, http_get,
    machine_busy_seconds, mast_bin, memory_of, mib, ms, pss_of, start_server,
};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::mpsc;

/// The busybox image `scripts/build-images.sh` builds.
const BUSYBOX: &str = "docker.io/library/busybox:latest";
/// Namespace of the measured pods.
const NAMESPACE: &str = "bench";
/// Label on the measured pods (what the watch selects).
const POD_LABEL: &str = "mast-bench";
/// Longest a phase may take before the run is declared stuck.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
/// Quiet time before memory is read, so statuses and relists have settled.
const SETTLE: Duration = Duration::from_secs(3);
/// Lease renewals each hollow node must have made before its memory is read.
const RENEWALS: usize = 3;
/// How long the node is watched idle, with its pods running, for the steady CPU.
const IDLE: Duration = Duration::from_secs(10);
/// Calls of each kind in the CRI call cost probe.
const PROBE_CALLS: usize = 200;

#[derive(Debug)]
struct Options {
    pods: usize,
    hollow_nodes: usize,
    cri: bool,
    hollow: bool,
    kubelet_env: Vec<(String, String)>,
    keep_logs: Option<PathBuf>,
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut options = Options {
            pods: if quick { 10 } else { 30 },
            hollow_nodes: if quick { 200 } else { 1000 },
            cri: true,
            hollow: true,
            kubelet_env: Vec::new(),
            keep_logs: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--pods" => options.pods = value()?.parse().context("--pods")?,
                "--hollow-nodes" => {
                    options.hollow_nodes = value()?.parse().context("--hollow-nodes")?;
                }
                "--only" => match value()?.as_str() {
                    "cri" => options.hollow = false,
                    "hollow" => options.cri = false,
                    other => bail!("--only cri or --only hollow, not {other}"),
                },
                "--kubelet-env" => {
                    let pair = value()?;
                    let (name, val) = pair
                        .split_once('=')
                        .with_context(|| format!("--kubelet-env NAME=VALUE, not {pair}"))?;
                    options.kubelet_env.push((name.into(), val.into()));
                }
                "--keep-logs" => options.keep_logs = Some(PathBuf::from(value()?)),
                // `--quick`, and `--bench`, which cargo passes.
                _ => {}
            }
        }
        ensure!(options.pods > 0, "--pods must be at least 1");
        ensure!(
            options.hollow_nodes > 1,
            "--hollow-nodes must be at least 2"
        );
        Ok(options)
    }
}

fn main() -> Result<()> {
    let options = Options::parse()?;
    // Others' work on the machine skews the latencies: say how busy it was.
    let before = machine_busy_seconds()?;
    std::thread::sleep(Duration::from_secs(2));
    let busy_before = (machine_busy_seconds()? - before) / 2.0;
    let world = World::new("mast-kb")?;
    let residue = world.residue();
    world.enter()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(&world, &options));
    // Every process the harness started is stopped by now (dropped with its future).
    drop(runtime);
    if let Some(dir) = &options.keep_logs
        && let Err(e) = keep_logs(&world, dir)
    {
        eprintln!("keeping the logs: {e:#}");
    }
    drop(world);
    let left = residue.check();
    if left.is_empty() {
        eprintln!("cleanup: nothing left (namespace, processes, mounts, cgroups, files)");
    } else {
        eprintln!("cleanup: LEFT BEHIND: {}", left.join("; "));
    }
    let figures = result?;
    println!(
        "\nThe machine was {:.0}% busy (of one core) in the 2 s before the run.",
        busy_before * 100.0
    );
    figures.print(&options);
    ensure!(left.is_empty(), "the run left things behind");
    Ok(())
}

#[derive(Debug, Default)]
struct Figures {
    cri: Option<CriFigures>,
    hollow: Option<HollowFigures>,
}

async fn measure(world: &World, options: &Options) -> Result<Figures> {
    let mut figures = Figures::default();
    if options.cri {
        figures.cri = Some(cri(world, options).await?);
    }
    if options.hollow {
        figures.hollow = Some(hollow(world, options).await?);
    }
    Ok(figures)
}

/// Copies every `*.log` under the world's temp dir (not containerd's root or state)
/// into `dest`.
fn keep_logs(world: &World, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    let mut pending = vec![world.dir().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() && !path.ends_with("root") && !path.ends_with("state") {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "log") {
                let relative = path.strip_prefix(world.dir())?;
                let name = relative.to_string_lossy().replace('/', "_");
                std::fs::copy(&path, dest.join(name))?;
            }
        }
    }
    eprintln!("logs kept in {}", dest.display());
    Ok(())
}

fn kubelet_command(kubeconfig: &Path, options: &Options) -> Command {
    let mut command = Command::new(mast_bin());
    command
        .arg("kubelet")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--port", "0", "--address", "127.0.0.1"])
        .args(["--node-ip", "127.0.0.1"])
        .arg("--exit-with-parent");
    for (name, value) in &options.kubelet_env {
        command.env(name, value);
    }
    command
}

/// Waits until `count` nodes are Ready (and, with `cidr`, have a podCIDR).
async fn wait_nodes(
    client: &kube::Client,
    count: usize,
    cidr: bool,
    processes: &mut [&mut Process],
) -> Result<Vec<Node>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let list = nodes.list(&ListParams::default()).await?.items;
        let ready: Vec<Node> = list
            .into_iter()
            .filter(|n| !cidr || n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some())
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .collect();
        if ready.len() >= count {
            return Ok(ready);
        }
        for p in processes.iter_mut() {
            p.check_alive(deadline, "the nodes to be Ready")?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------
// CRI: pod startup latency and memory on one real node.

#[derive(Debug)]
struct CriFigures {
    runtime_version: String,
    warm_up: Duration,
    sequential: Startup,
    batch: Startup,
    after_sequential: Readings,
    after_batch: Readings,
    cpu_sequential: Cpu,
    cpu_batch: Cpu,
    counters_sequential: Counters,
    counters_batch: Counters,
    /// CPU over [`IDLE`] with the pods running.
    idle: Cpu,
    /// The CRI calls of one pod status: name, wall time p50, containerd CPU per call.
    probe: Vec<(&'static str, Duration, f64)>,
    kubelet_complaints: Vec<String>,
}

/// The kubelet's counters (from its `/metrics`) over a phase.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    syncs: u64,
    sync_errors: u64,
    status_writes: u64,
}

impl Counters {
    async fn read(authority: &str) -> Result<Counters> {
        let (code, text) = http_get(authority, "/metrics").await?;
        ensure!(code == 200, "GET /metrics: {code}");
        let value = |name: &str| -> u64 {
            text.lines()
                .filter_map(|l| l.strip_prefix(name))
                .filter_map(|rest| rest.trim().parse::<f64>().ok())
                .map(|v| v as u64)
                .next()
                .unwrap_or(0)
        };
        Ok(Counters {
            syncs: value("mast_kubelet_pod_syncs_total"),
            sync_errors: value("mast_kubelet_pod_sync_errors_total"),
            status_writes: value("mast_kubelet_pod_status_writes_total"),
        })
    }

    fn since(self, before: Counters) -> Counters {
        Counters {
            syncs: self.syncs - before.syncs,
            sync_errors: self.sync_errors - before.sync_errors,
            status_writes: self.status_writes - before.status_writes,
        }
    }
}

/// Startup latencies of one phase.
#[derive(Debug)]
struct Startup {
    /// Create call start → first seen Running, per pod.
    total: Vec<Duration>,
    /// Create call start → first seen bound.
    bound: Vec<Duration>,
    /// First seen bound → first seen Running.
    node: Vec<Duration>,
    /// The phase's wall time: first create → last Running.
    elapsed: Duration,
    phases: Option<RuntimePhases>,
}

/// CPU seconds used over a phase.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    kubelet: f64,
    /// containerd itself.
    containerd: f64,
    /// containerd's reaped children: the CNI plugins, shim start-ups.
    containerd_children: f64,
    /// The shims with their reaped children (runc create/start); they start with the
    /// phase, so this is their whole life.
    shims: f64,
    /// `mast server`: API server, scheduler, controller-manager.
    server: f64,
    /// Every process on the machine (others' too).
    machine: f64,
}

impl Cpu {
    fn sample(world: &World, kubelet: &Process, server: &Process) -> Result<Cpu> {
        let containerd = world
            .containerd_pid()
            .context("the kubelet's containerd is not running")?;
        let mut shims = 0.0;
        for pid in world.shim_pids() {
            shims += cpu_seconds_with_children(&pid.to_string()).unwrap_or(0.0);
        }
        let containerd = containerd.to_string();
        let own = cpu_seconds(&containerd)?;
        Ok(Cpu {
            kubelet: cpu_seconds(&kubelet.pid())?,
            containerd: own,
            containerd_children: cpu_seconds_with_children(&containerd)? - own,
            shims,
            server: cpu_seconds(&server.pid())?,
            machine: machine_busy_seconds()?,
        })
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            kubelet: self.kubelet - before.kubelet,
            containerd: self.containerd - before.containerd,
            containerd_children: self.containerd_children - before.containerd_children,
            shims: self.shims - before.shims,
            server: self.server - before.server,
            machine: self.machine - before.machine,
        }
    }
}

/// Memory with the pods running.
#[derive(Debug, Clone, Copy)]
struct Readings {
    kubelet: Memory,
    /// The kubelet's proportional set size (the binary's pages are shared with the
    /// server, which runs the same file).
    kubelet_pss: u64,
    containerd: Memory,
    shims: usize,
    shims_rss: u64,
    shims_pss: u64,
}

fn readings(world: &World, kubelet: &Process) -> Result<Readings> {
    let containerd = world
        .containerd_pid()
        .context("the kubelet's containerd is not running")?;
    let shims = world.shim_pids();
    let mut shims_rss = 0;
    let mut shims_pss = 0;
    for pid in &shims {
        shims_rss += memory_of(&pid.to_string())?.rss;
        shims_pss += pss_of(&pid.to_string())?;
    }
    Ok(Readings {
        kubelet: kubelet.memory()?,
        kubelet_pss: pss_of(&kubelet.pid())?,
        containerd: memory_of(&containerd.to_string())?,
        shims: shims.len(),
        shims_rss,
        shims_pss,
    })
}

/// A busybox pod that sleeps; it ignores SIGTERM (pid 1), so a 1 s grace period.
fn sleeper(name: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {POD_LABEL: "true"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": BUSYBOX,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "86400"],
            }],
        },
    }))?)
}

/// What the pod watch saw, per pod name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stage {
    Bound,
    Running,
}

enum Seen {
    Synced,
    /// A pod reached a stage; when, by the monotonic clock and by the wall clock (to
    /// compare with containerd's log).
    Pod(String, Stage, Instant, SystemTime),
}

/// Follows the measured pods and reports, once per pod and stage, when it was first
/// seen bound and first seen Running.
async fn follow_pods(api: Api<Pod>, events: mpsc::UnboundedSender<Seen>) {
    let config = watcher::Config::default().labels(&format!("{POD_LABEL}=true"));
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut reported: HashSet<(String, Stage)> = HashSet::new();
    while let Some(event) = stream.next().await {
        let (at, wall) = (Instant::now(), SystemTime::now());
        let pod = match event {
            Ok(watcher::Event::InitDone) => {
                if events.send(Seen::Synced).is_err() {
                    return;
                }
                continue;
            }
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("pod watch: {e}");
                continue;
            }
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        for (stage, reached) in [(Stage::Bound, bound), (Stage::Running, running)] {
            if reached && reported.insert((name.clone(), stage)) {
                let _ = events.send(Seen::Pod(name.clone(), stage, at, wall));
            }
        }
    }
}

/// The watch's reports, collected; dropping it stops the watch.
struct Tracker {
    events: mpsc::UnboundedReceiver<Seen>,
    seen: HashMap<(String, Stage), (Instant, SystemTime)>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl Tracker {
    async fn start(client: &kube::Client) -> Result<Tracker> {
        let (sender, mut events) = mpsc::unbounded_channel();
        let watch = tokio::spawn(follow_pods(
            Api::namespaced(client.clone(), NAMESPACE),
            sender,
        ));
        let synced = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(seen) = events.recv().await {
                if matches!(seen, Seen::Synced) {
                    return true;
                }
            }
            false
        })
        .await;
        if synced.ok() != Some(true) {
            watch.abort();
            bail!("the pod watch did not sync");
        }
        Ok(Tracker {
            events,
            seen: HashMap::new(),
            watch,
        })
    }

    /// Waits until every pod of `names` was seen Running.
    async fn wait_running(&mut self, names: &[String], kubelet: &mut Process) -> Result<()> {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        loop {
            let missing = names
                .iter()
                .filter(|n| !self.seen.contains_key(&((*n).clone(), Stage::Running)))
                .count();
            if missing == 0 {
                return Ok(());
            }
            kubelet.check_alive(deadline, &format!("{missing} pods to be Running"))?;
            match tokio::time::timeout(Duration::from_secs(1), self.events.recv()).await {
                Ok(Some(Seen::Pod(name, stage, at, wall))) => {
                    self.seen.entry((name, stage)).or_insert((at, wall));
                }
                Ok(Some(Seen::Synced)) | Err(_) => {}
                Ok(None) => bail!("the pod watch ended"),
            }
        }
    }

    fn at(&self, name: &str, stage: Stage) -> Result<Instant> {
        Ok(self.at_both(name, stage)?.0)
    }

    fn at_both(&self, name: &str, stage: Stage) -> Result<(Instant, SystemTime)> {
        self.seen
            .get(&(name.to_string(), stage))
            .copied()
            .with_context(|| format!("pod {name} never seen {stage:?}"))
    }

    /// The latencies of `started` (pod name → its create call's start), and the
    /// runtime's share from containerd's `log`.
    fn startup(&self, started: &[(String, Instant)], log: &Path) -> Result<Startup> {
        let mut total = Vec::new();
        let mut bound = Vec::new();
        let mut node = Vec::new();
        let mut first = None::<Instant>;
        let mut last = None::<Instant>;
        for (name, start) in started {
            let b = self.at(name, Stage::Bound)?;
            let r = self.at(name, Stage::Running)?;
            total.push(r.saturating_duration_since(*start));
            bound.push(b.saturating_duration_since(*start));
            node.push(r.saturating_duration_since(b));
            first = Some(first.map_or(*start, |f: Instant| f.min(*start)));
            last = Some(last.map_or(r, |l: Instant| l.max(r)));
        }
        let elapsed = match (first, last) {
            (Some(f), Some(l)) => l.saturating_duration_since(f),
            _ => Duration::ZERO,
        };
        let watched: Vec<(String, SystemTime, SystemTime)> = started
            .iter()
            .map(|(name, _)| {
                let bound = self.at_both(name, Stage::Bound)?.1;
                let running = self.at_both(name, Stage::Running)?.1;
                anyhow::Ok((name.clone(), bound, running))
            })
            .collect::<Result<_>>()?;
        let phases = RuntimePhases::from_log(log, &watched)
            .map_err(|e| eprintln!("cri: containerd's log not read: {e:#}"))
            .ok();
        Ok(Startup {
            total,
            bound,
            node,
            elapsed,
            phases,
        })
    }
}

async fn cri(world: &World, options: &Options) -> Result<CriFigures> {
    let images = world.data_dir().join("agent").join("images");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    run(
        "bash",
        &[&script.to_string_lossy(), &images.to_string_lossy()],
    )?;

    let server_dir = world.dir().join("server");
    std::fs::create_dir_all(&server_dir)?;
    let mut server = start_server(&server_dir, &["--exit-with-parent".to_string()]).await?;
    let mut kubelet = Process::spawn(
        "mast kubelet (cri)",
        kubelet_command(&server.kubeconfig, options)
            .args(["--node-name", "cri-node", "--runtime", "cri"])
            .arg("--data-dir")
            .arg(world.data_dir())
            .args(["--cgroup-root", world.cgroup_root()]),
        world.dir().join("kubelet-cri.log"),
    )?;
    let client = client(&server.kubeconfig).await?;
    let started = Instant::now();
    let nodes = wait_nodes(&client, 1, true, &mut [&mut server.process, &mut kubelet]).await?;
    let status = nodes.first().and_then(|n| n.status.as_ref());
    let runtime_version = status
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.container_runtime_version.clone())
        .unwrap_or_default();
    let kubelet_port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|e| e.port)
        .context("the node publishes no kubelet port")?;
    let kubelet_http = format!("127.0.0.1:{kubelet_port}");
    eprintln!(
        "cri: node Ready with a podCIDR {:.2} s after the kubelet started ({runtime_version})",
        started.elapsed().as_secs_f64()
    );

    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut tracker = Tracker::start(&client).await?;

    // Warm-up: the node's first pod also sets up the bridge.
    let start = Instant::now();
    pods.create(&PostParams::default(), &sleeper("warm-up")?)
        .await?;
    tracker
        .wait_running(&["warm-up".to_string()], &mut kubelet)
        .await?;
    let warm_up = tracker
        .at("warm-up", Stage::Running)?
        .saturating_duration_since(start);
    eprintln!("cri: warm-up pod Running after {:.0} ms", ms(warm_up));
    delete_all(&pods, world, &mut kubelet).await?;

    // One by one.
    let n = options.pods;
    let cpu_before = Cpu::sample(world, &kubelet, &server.process)?;
    let counters_before = Counters::read(&kubelet_http).await?;
    let mut started = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("seq-{i}");
        let start = Instant::now();
        pods.create(&PostParams::default(), &sleeper(&name)?)
            .await?;
        started.push((name.clone(), start));
        tracker.wait_running(&[name], &mut kubelet).await?;
    }
    let cpu_sequential = Cpu::sample(world, &kubelet, &server.process)?.since(cpu_before);
    let counters_sequential = Counters::read(&kubelet_http).await?.since(counters_before);
    let sequential = tracker.startup(&started, &world.containerd_log())?;
    eprintln!(
        "cri: {n} pods one by one: p50 {:.0} ms, p99 {:.0} ms",
        ms(percentile(&sequential.total, 0.5)),
        ms(percentile(&sequential.total, 0.99))
    );
    tokio::time::sleep(SETTLE).await;
    let after_sequential = readings(world, &kubelet)?;
    delete_all(&pods, world, &mut kubelet).await?;

    // All at once.
    let cpu_before = Cpu::sample(world, &kubelet, &server.process)?;
    let counters_before = Counters::read(&kubelet_http).await?;
    let names: Vec<String> = (0..n).map(|i| format!("batch-{i}")).collect();
    let creates = names.iter().map(|name| {
        let pods = pods.clone();
        async move {
            let pod = sleeper(name)?;
            let start = Instant::now();
            pods.create(&PostParams::default(), &pod)
                .await
                .with_context(|| format!("creating {name}"))?;
            anyhow::Ok((name.clone(), start))
        }
    });
    let started: Vec<(String, Instant)> = futures::future::join_all(creates)
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    tracker.wait_running(&names, &mut kubelet).await?;
    let cpu_batch = Cpu::sample(world, &kubelet, &server.process)?.since(cpu_before);
    let counters_batch = Counters::read(&kubelet_http).await?.since(counters_before);
    let batch = tracker.startup(&started, &world.containerd_log())?;
    eprintln!(
        "cri: {n} pods at once: p50 {:.0} ms, p99 {:.0} ms",
        ms(percentile(&batch.total, 0.5)),
        ms(percentile(&batch.total, 0.99))
    );
    tokio::time::sleep(SETTLE).await;
    let after_batch = readings(world, &kubelet)?;

    // Steady state: nothing changes, the kubelet relists and resyncs.
    let idle_before = Cpu::sample(world, &kubelet, &server.process)?;
    tokio::time::sleep(IDLE).await;
    let idle = Cpu::sample(world, &kubelet, &server.process)?.since(idle_before);

    // What the status calls of one pod cost containerd, with the pods running.
    let uid = pods
        .get("batch-0")
        .await?
        .metadata
        .uid
        .context("a pod without a uid")?;
    let probe = probe_status_calls(world, &uid).await?;
    let kubelet_complaints = kubelet.complaints();

    // A clean stop: the kubelet stops its containerd; the world removes the pods.
    let status = kubelet.terminate(Duration::from_secs(30)).await?;
    ensure!(status.success(), "the kubelet exited with {status}");
    Ok(CriFigures {
        runtime_version,
        warm_up,
        sequential,
        batch,
        after_sequential,
        after_batch,
        cpu_sequential,
        cpu_batch,
        counters_sequential,
        counters_batch,
        idle,
        probe,
        kubelet_complaints,
    })
}

/// Calls each CRI call of one pod status ([`PROBE_CALLS`] times, one after another)
/// for the pod `uid`: its wall time (p50) and containerd's CPU per call.
async fn probe_status_calls(
    world: &World,
    uid: &str,
) -> Result<Vec<(&'static str, Duration, f64)>> {
    let client = cri::CriClient::for_socket(&world.socket());
    let labels = HashMap::from([("io.kubernetes.pod.uid".to_string(), uid.to_string())]);
    let sandbox_filter = cri::SandboxFilter {
        labels: labels.clone(),
        ..cri::SandboxFilter::default()
    };
    let container_filter = cri::ContainerFilter {
        labels,
        ..cri::ContainerFilter::default()
    };
    let sandbox = client
        .list_pod_sandboxes(&sandbox_filter)
        .await?
        .into_iter()
        .next()
        .context("the probed pod has no sandbox")?
        .id;
    let container = client
        .list_containers(&container_filter)
        .await?
        .into_iter()
        .next()
        .context("the probed pod has no container")?
        .id;
    let containerd = world
        .containerd_pid()
        .context("the kubelet's containerd is not running")?
        .to_string();
    let mut results = Vec::new();
    for call in [
        "ListPodSandbox",
        "PodSandboxStatus",
        "ListContainers",
        "ContainerStatus",
    ] {
        let cpu_before = cpu_seconds(&containerd)?;
        let mut times = Vec::with_capacity(PROBE_CALLS);
        for _ in 0..PROBE_CALLS {
            let start = Instant::now();
            match call {
                "ListPodSandbox" => drop(client.list_pod_sandboxes(&sandbox_filter).await?),
                "PodSandboxStatus" => drop(client.pod_sandbox_status(&sandbox).await?),
                "ListContainers" => drop(client.list_containers(&container_filter).await?),
                _ => drop(client.container_status(&container).await?),
            }
            times.push(start.elapsed());
        }
        let cpu = (cpu_seconds(&containerd)? - cpu_before) / PROBE_CALLS as f64;
        results.push((call, percentile(&times, 0.5), cpu));
    }
    Ok(results)
}

/// Deletes every measured pod and waits until the API and the runtime have none.
async fn delete_all(pods: &Api<Pod>, world: &World, kubelet: &mut Process) -> Result<()> {
    let selector = ListParams::default().labels(&format!("{POD_LABEL}=true"));
    pods.delete_collection(&DeleteParams::default(), &selector)
        .await?;
    let runtime = cri::CriClient::for_socket(&world.socket());
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let left = pods.list(&selector).await?.items.len();
        let sandboxes = runtime
            .list_pod_sandboxes(&cri::SandboxFilter::default())
            .await?
            .len();
        if left == 0 && sandboxes == 0 && world.shim_pids().is_empty() {
            return Ok(());
        }
        kubelet.check_alive(
            deadline,
            &format!("{left} pods and {sandboxes} sandboxes to go"),
        )?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where each startup of one phase went, per pod, from the watch's wall-clock times
/// and containerd's log: from the binding seen to the RunPodSandbox call (the watch to
/// the kubelet, its worker), RunPodSandbox (call to return), on to the CreateContainer
/// call, CreateContainer, StartContainer (call to return), and from its return to
/// Running seen (the kubelet's status write, the watch back to the harness).
#[derive(Debug, Default)]
struct RuntimePhases {
    pods: usize,
    before: Vec<Duration>,
    sandbox: Vec<Duration>,
    gap: Vec<Duration>,
    create: Vec<Duration>,
    start: Vec<Duration>,
    after: Vec<Duration>,
}

/// The CRI calls of one pod, as containerd logged them.
#[derive(Debug, Default)]
struct PodCalls {
    sandbox_call: Option<Timestamp>,
    sandbox_done: Option<Timestamp>,
    create_call: Option<Timestamp>,
    create_done: Option<Timestamp>,
    start_call: Option<Timestamp>,
    start_done: Option<Timestamp>,
}

impl RuntimePhases {
    /// `watched`: per pod, its name and when the watch saw it bound and Running.
    fn from_log(log: &Path, watched: &[(String, SystemTime, SystemTime)]) -> Result<RuntimePhases> {
        let text =
            std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
        let names: HashSet<&str> = watched.iter().map(|(n, _, _)| n.as_str()).collect();
        let mut by_pod: HashMap<String, PodCalls> = HashMap::new();
        let mut pod_of_sandbox: HashMap<String, String> = HashMap::new();
        let mut pod_of_container: HashMap<String, String> = HashMap::new();
        for line in text.lines() {
            let (Some(time), Some(msg)) = (field(line, "time"), field(line, "msg")) else {
                continue;
            };
            let Ok(at) = time.parse::<Timestamp>() else {
                continue;
            };
            if let Some(rest) = msg.strip_prefix("RunPodSandbox for &PodSandboxMetadata{Name:") {
                let name = rest.split(',').next().unwrap_or("").to_string();
                if !names.contains(name.as_str()) {
                    continue;
                }
                match quoted_after(&msg, "returns sandbox id ") {
                    Some(id) => {
                        by_pod.entry(name.clone()).or_default().sandbox_done = Some(at);
                        pod_of_sandbox.insert(id, name);
                    }
                    None => by_pod.entry(name).or_default().sandbox_call = Some(at),
                }
            } else if let Some(rest) = msg.strip_prefix("CreateContainer within sandbox ") {
                let Some(pod) = quoted(rest).and_then(|s| pod_of_sandbox.get(&s).cloned()) else {
                    continue;
                };
                match quoted_after(&msg, "returns container id ") {
                    Some(id) => {
                        by_pod.entry(pod.clone()).or_default().create_done = Some(at);
                        pod_of_container.insert(id, pod);
                    }
                    None => by_pod.entry(pod).or_default().create_call = Some(at),
                }
            } else if let Some(rest) = msg.strip_prefix("StartContainer for ") {
                let Some(pod) = quoted(rest).and_then(|s| pod_of_container.get(&s).cloned()) else {
                    continue;
                };
                let calls = by_pod.entry(pod).or_default();
                if msg.ends_with("returns successfully") {
                    calls.start_done = Some(at);
                } else {
                    calls.start_call = Some(at);
                }
            }
        }
        // The harness's watch may see a pod bound a little after the kubelet did (and
        // so after its first CRI call): such a span counts as zero.
        let span = |a: Option<Timestamp>, b: Option<Timestamp>| -> Option<Duration> {
            Some(Duration::try_from(b?.duration_since(a?)).unwrap_or(Duration::ZERO))
        };
        let mut phases = RuntimePhases::default();
        for (name, bound, running) in watched {
            let Some(calls) = by_pod.get(name) else {
                continue;
            };
            let (bound, running) = (Timestamp::try_from(*bound)?, Timestamp::try_from(*running)?);
            let all = [
                span(Some(bound), calls.sandbox_call),
                span(calls.sandbox_call, calls.sandbox_done),
                span(calls.sandbox_done, calls.create_call),
                span(calls.create_call, calls.create_done),
                span(calls.start_call, calls.start_done),
                span(calls.start_done, Some(running)),
            ];
            let [
                Some(before),
                Some(sandbox),
                Some(gap),
                Some(create),
                Some(start),
                Some(after),
            ] = all
            else {
                continue;
            };
            phases.pods += 1;
            phases.before.push(before);
            phases.sandbox.push(sandbox);
            phases.gap.push(gap);
            phases.create.push(create);
            phases.start.push(start);
            phases.after.push(after);
        }
        ensure!(
            phases.pods > 0,
            "no complete pod start in {}",
            log.display()
        );
        Ok(phases)
    }
}

/// The value of `name="…"` (with `\"` escapes) or `name=word` in a logfmt line.
fn field(line: &str, name: &str) -> Option<String> {
    let key = format!("{name}=");
    let at = line.find(&key)? + key.len();
    let rest = &line[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?),
                '"' => return Some(value),
                c => value.push(c),
            }
        }
        None
    } else {
        Some(rest.split_whitespace().next()?.to_string())
    }
}

/// The first `"…"` in `text`.
fn quoted(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

/// The first `"…"` after `marker` in `text`.
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)? + marker.len();
    quoted(&text[at..])
}

// ---------------------------------------------------------------------------------
// Hollow nodes: memory per node.

#[derive(Debug)]
struct HollowFigures {
    sizes: Vec<HollowRun>,
}

#[derive(Debug)]
struct HollowRun {
    nodes: usize,
    /// Start of the kubelet → every node Ready.
    registered: Duration,
    /// Lease renewals seen per node (the least).
    renewals: usize,
    kubelet: Memory,
    server: Memory,
    /// The kubelet's CPU seconds per second while renewing.
    cpu_per_second: f64,
}

async fn hollow(world: &World, options: &Options) -> Result<HollowFigures> {
    let mut sizes = Vec::new();
    for nodes in [1, options.hollow_nodes] {
        sizes.push(hollow_run(world, options, nodes).await?);
    }
    Ok(HollowFigures { sizes })
}

async fn hollow_run(world: &World, options: &Options, nodes: usize) -> Result<HollowRun> {
    let dir = world.dir().join(format!("hollow-{nodes}"));
    std::fs::create_dir_all(&dir)?;
    let mut server = start_server(&dir, &["--exit-with-parent".to_string()]).await?;
    let started = Instant::now();
    let mut kubelet = Process::spawn(
        "mast kubelet (hollow)",
        kubelet_command(&server.kubeconfig, options)
            .args(["--node-name", "hollow", "--runtime", "fake"])
            .args(["--hollow-nodes", &nodes.to_string()])
            .arg("--data-dir")
            .arg(dir.join("kubelet")),
        dir.join("kubelet-hollow.log"),
    )?;
    let client = client(&server.kubeconfig).await?;
    wait_nodes(
        &client,
        nodes,
        false,
        &mut [&mut server.process, &mut kubelet],
    )
    .await?;
    let registered = started.elapsed();
    eprintln!(
        "hollow: {nodes} nodes Ready {:.2} s after the kubelet started; waiting for {RENEWALS} lease renewals each",
        registered.as_secs_f64()
    );

    // Every lease renewed RENEWALS times after registration.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut last: HashMap<String, MicroTime> = HashMap::new();
    let mut renewals: HashMap<String, usize> = HashMap::new();
    let cpu_before = cpu_seconds(&kubelet.pid())?;
    let renewing = Instant::now();
    let deadline = renewing + PHASE_TIMEOUT;
    loop {
        for lease in leases.list(&ListParams::default()).await?.items {
            let (Some(name), Some(renewed)) = (
                lease.metadata.name.clone(),
                lease.spec.and_then(|s| s.renew_time),
            ) else {
                continue;
            };
            match last.get(&name) {
                Some(previous) if *previous < renewed => {
                    *renewals.entry(name.clone()).or_insert(0) += 1;
                    last.insert(name, renewed);
                }
                Some(_) => {}
                None => {
                    renewals.insert(name.clone(), 0);
                    last.insert(name, renewed);
                }
            }
        }
        let least = if renewals.len() >= nodes {
            renewals.values().copied().min().unwrap_or(0)
        } else {
            0
        };
        if least >= RENEWALS {
            break;
        }
        kubelet.check_alive(deadline, "the lease renewals")?;
        server.process.check_alive(deadline, "the lease renewals")?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu_per_second =
        (cpu_seconds(&kubelet.pid())? - cpu_before) / renewing.elapsed().as_secs_f64();
    let run = HollowRun {
        nodes,
        registered,
        renewals: renewals.values().copied().min().unwrap_or(0),
        kubelet: kubelet.memory()?,
        server: server.process.memory()?,
        cpu_per_second,
    };
    eprintln!(
        "hollow: {nodes} nodes: kubelet RSS {} (peak {})",
        mib(run.kubelet.rss),
        mib(run.kubelet.peak)
    );
    let complaints = kubelet.complaints();
    if !complaints.is_empty() {
        eprintln!(
            "hollow: kubelet warnings ({}), first: {}",
            complaints.len(),
            complaints[0]
        );
    }
    let status = kubelet.terminate(Duration::from_secs(30)).await?;
    ensure!(status.success(), "the hollow kubelet exited with {status}");
    Ok(run)
}

// ---------------------------------------------------------------------------------
// Output.

/// The `q` quantile by nearest rank (`q = 0.99` of 30 samples is the largest).
fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn p50_p99_max(samples: &[Duration]) -> String {
    format!(
        "{:.0} / {:.0} / {:.0}",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99)),
        ms(percentile(samples, 1.0))
    )
}

fn p50_max(samples: &[Duration]) -> String {
    format!(
        "{:.0} / {:.0}",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 1.0))
    )
}

impl Figures {
    fn print(&self, options: &Options) {
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if let Some(cri) = &self.cri {
            cri.print(options, build, cores);
        }
        if let Some(hollow) = &self.hollow {
            hollow.print(build, cores);
        }
        if !options.kubelet_env.is_empty() {
            let env: Vec<String> = options
                .kubelet_env
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            println!("\nkubelet environment: {}", env.join(" "));
        }
    }
}

impl CriFigures {
    fn print(&self, options: &Options, build: &str, cores: usize) {
        let n = options.pods;
        println!(
            "\nmast kubelet --runtime cri ({build} build), its own containerd ({}), one node, SQLite, {cores} cores\n",
            self.runtime_version
        );
        println!(
            "Pod startup, ms: create call → first seen Running by a watch (warm-up pod: {:.0} ms)\n",
            ms(self.warm_up)
        );
        println!(
            "| phase | p50 / p99 / max | create → bound, p50 / max | bound → Running, p50 / max | wall time | CPU s: kubelet / containerd (its children) / shims / server / machine |"
        );
        println!("|---|---|---|---|---|---|");
        for (label, s, cpu) in [
            (
                format!("{n} pods one by one"),
                &self.sequential,
                self.cpu_sequential,
            ),
            (format!("{n} pods at once"), &self.batch, self.cpu_batch),
        ] {
            println!(
                "| {label} | {} | {} | {} | {:.2} s | {:.2} / {:.2} ({:.2}) / {:.2} / {:.2} / {:.2} |",
                p50_p99_max(&s.total),
                p50_max(&s.bound),
                p50_max(&s.node),
                s.elapsed.as_secs_f64(),
                cpu.kubelet,
                cpu.containerd,
                cpu.containerd_children,
                cpu.shims,
                cpu.server,
                cpu.machine
            );
        }
        println!("\nThe kubelet's pod syncs and status writes (its /metrics), per phase:\n");
        println!("| phase | syncs | failed syncs | status writes |");
        println!("|---|---|---|---|");
        for (label, c) in [
            (format!("{n} pods one by one"), &self.counters_sequential),
            (format!("{n} pods at once"), &self.counters_batch),
        ] {
            println!(
                "| {label} | {} | {} | {} |",
                c.syncs, c.sync_errors, c.status_writes
            );
        }
        println!(
            "\nWhere the time goes, ms, p50 / max per pod (the CRI calls' times from containerd's log):\n"
        );
        println!(
            "| phase | bound seen → RunPodSandbox call | RunPodSandbox | → CreateContainer call | CreateContainer | StartContainer | StartContainer return → Running seen |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (label, s) in [
            (format!("{n} pods one by one"), &self.sequential),
            (format!("{n} pods at once"), &self.batch),
        ] {
            match &s.phases {
                Some(p) => println!(
                    "| {label} ({} pods) | {} | {} | {} | {} | {} | {} |",
                    p.pods,
                    p50_max(&p.before),
                    p50_max(&p.sandbox),
                    p50_max(&p.gap),
                    p50_max(&p.create),
                    p50_max(&p.start),
                    p50_max(&p.after)
                ),
                None => println!("| {label} | — | — | — | — | — | — |"),
            }
        }
        println!("\nMemory with {n} pods running:\n");
        println!(
            "| after | kubelet RSS (peak) | kubelet RSS: anonymous / file; PSS | containerd RSS (peak) | shims: count, RSS sum, PSS sum |"
        );
        println!("|---|---|---|---|---|");
        for (label, r) in [
            ("one by one", &self.after_sequential),
            ("at once", &self.after_batch),
        ] {
            println!(
                "| {label} | {} ({}) | {} / {}; {} | {} ({}) | {}, {}, {} |",
                mib(r.kubelet.rss),
                mib(r.kubelet.peak),
                mib(r.kubelet.anon),
                mib(r.kubelet.file),
                mib(r.kubelet_pss),
                mib(r.containerd.rss),
                mib(r.containerd.peak),
                r.shims,
                mib(r.shims_rss),
                mib(r.shims_pss)
            );
        }
        let idle = self.idle;
        let share = |seconds: f64| seconds / IDLE.as_secs_f64() * 100.0;
        println!(
            "\nIdle with {n} pods running, % of a core over {IDLE:?}: kubelet {:.2}, containerd {:.2} (its children {:.2}), shims {:.2}, server {:.2}; the whole machine {:.1}",
            share(idle.kubelet),
            share(idle.containerd),
            share(idle.containerd_children),
            share(idle.shims),
            share(idle.server),
            share(idle.machine)
        );
        println!(
            "\nThe CRI calls of one pod status ({PROBE_CALLS} of each, one at a time, {n} pods running):\n"
        );
        println!("| call | wall p50 (ms) | containerd CPU per call (ms) |");
        println!("|---|---|---|");
        for (call, wall, cpu) in &self.probe {
            println!("| {call} | {:.2} | {:.2} |", ms(*wall), cpu * 1000.0);
        }
        if !self.kubelet_complaints.is_empty() {
            println!(
                "\nkubelet warnings ({}), first: {}",
                self.kubelet_complaints.len(),
                self.kubelet_complaints[0]
            );
        }
    }
}

impl HollowFigures {
    fn print(&self, build: &str, cores: usize) {
        println!(
            "\nmast kubelet --runtime fake --hollow-nodes N ({build} build), SQLite, {cores} cores\n"
        );
        println!(
            "| hollow nodes | Ready after | kubelet RSS (peak) | anonymous / file | RSS / nodes | server RSS | kubelet CPU while renewing |"
        );
        println!("|---|---|---|---|---|---|---|");
        let base = self.sizes.first().map(|r| (r.nodes, r.kubelet.rss));
        for r in &self.sizes {
            let per_node = r.kubelet.rss as f64 / r.nodes as f64;
            let marginal = match base {
                Some((n, rss)) if r.nodes > n => format!(
                    " ({:.1} KiB per node above 1 node's)",
                    (r.kubelet.rss as f64 - rss as f64) / (r.nodes - n) as f64 / 1024.0
                ),
                _ => String::new(),
            };
            println!(
                "| {} | {:.2} s | {} ({}) | {} / {} | {:.1} KiB{marginal} | {} | {:.1}% of a core ({} renewals each) |",
                r.nodes,
                r.registered.as_secs_f64(),
                mib(r.kubelet.rss),
                mib(r.kubelet.peak),
                mib(r.kubelet.anon),
                mib(r.kubelet.file),
                per_node / 1024.0,
                mib(r.server.rss),
                r.cpu_per_second * 100.0,
                r.renewals
            );
        }
    }
}
