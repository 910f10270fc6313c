//! Scheduler benchmark, after upstream's scheduler_perf: a real `mast server` on the
//! embedded SQLite store with its scheduler turned off, and a separate `mast scheduler`
//! process talking to it, so that each process's CPU and memory can be read alone.
//!
//! ```text
//! cargo bench -p mast --bench scheduler            # 500/1000 and 5000/10000
//! cargo bench -p mast --bench scheduler -- --quick # 100/200 and 500/1000
//! ```
//!
//! Per scenario, with a fresh server and scheduler each time:
//! 1. fake nodes (plain Node objects that nobody runs pods on: 32 CPU, 128 Gi, 110
//!    pods, Ready) are created by several concurrent clients;
//! 2. a warm-up pod proves the scheduler is up and caught up (it is not measured);
//! 3. a pod watch is opened, then the pods (one container asking for 100m and 128Mi,
//!    no owner) are created by several concurrent clients.
//!
//! Per pod, the latency runs from the moment its create call returned to the moment the
//! watch showed it with `spec.nodeName` set (the binding is persisted by then).
//! Throughput is pods bound over the time from the first create call to the last
//! binding seen. Afterwards every pod must be bound to a node that exists and no node
//! may hold more than 110 pods. The memory of both processes (VmRSS) is read after the
//! run; the CPU each used (utime + stime) during the pod phase says where the time went.
//!
//! Prints a Markdown table (paste it into docs/benchmarks.md).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{
    Memory, POLL_INTERVAL, Process, START_TIMEOUT, client, cpu_seconds, mib, ms, start_server,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Container, Node, NodeCondition, NodeStatus, Pod, PodSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use tokio::sync::Mutex;

/// Where the pods live.
const NAMESPACE: &str = "default";
/// Label on every measured pod, so the watch and the final list see only those.
const POD_LABEL: &str = "bench-scheduler";
/// Concurrent clients creating nodes and pods.
const CREATORS: usize = 8;
/// Pods a fake node accepts (its `pods` capacity).
const MAX_PODS: usize = 110;

/// Longest wait for the next binding before the run is declared stuck.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Time the processes are left alone after the run before their memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// Nodes and pods of one scenario.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    nodes: usize,
    pods: usize,
}

const FULL: [Scenario; 2] = [
    Scenario {
        nodes: 500,
        pods: 1000,
    },
    Scenario {
        nodes: 5000,
        pods: 10000,
    },
];

const QUICK: [Scenario; 2] = [
    Scenario {
        nodes: 100,
        pods: 200,
    },
    Scenario {
        nodes: 500,
        pods: 1000,
    },
];

/// CPU seconds used so far by the server, the scheduler and this process.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    server: f64,
    scheduler: f64,
    bench: f64,
}

impl Cpu {
    fn sample(cluster: &Cluster) -> Result<Self> {
        Ok(Cpu {
            server: cpu_seconds(&cluster.server.pid())?,
            scheduler: cpu_seconds(&cluster.scheduler.pid())?,
            bench: cpu_seconds("self")?,
        })
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            server: self.server - before.server,
            scheduler: self.scheduler - before.scheduler,
            bench: self.bench - before.bench,
        }
    }
}

/// A server with its scheduler off, and a scheduler process beside it, in one temp dir.
#[derive(Debug)]
struct Cluster {
    // Fields drop in order: the scheduler goes first, then the server, then the dir.
    scheduler: Process,
    server: Process,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the server and waits for its kubeconfig and a 200 on `/readyz`; then
    /// starts the scheduler.
    async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mast-bench-scheduler-")
            .tempdir()
            .context("creating a temp dir")?;
        let server = start_server(
            dir.path(),
            &[
                "--disable-scheduler".to_string(),
                // Nodes here are bare API objects without heartbeats: keep the node
                // lifecycle controller from tainting them mid-run.
                "--disable-controller-manager".to_string(),
            ],
        )
        .await?;
        let scheduler = Process::spawn(
            "mast scheduler",
            Command::new(env!("CARGO_BIN_EXE_mast"))
                .arg("scheduler")
                .arg("--kubeconfig")
                .arg(&server.kubeconfig),
            dir.path().join("scheduler.log"),
        )?;
        Ok(Cluster {
            scheduler,
            server: server.process,
            kubeconfig: server.kubeconfig,
            _dir: dir,
        })
    }

    /// A client as a user would build one, from the kubeconfig; each has its own
    /// connections.
    async fn client(&self) -> Result<kube::Client> {
        client(&self.kubeconfig).await
    }

    /// `n` clients.
    async fn clients(&self, n: usize) -> Result<Vec<kube::Client>> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(self.client().await?);
        }
        Ok(clients)
    }

    /// Fails, with both logs, if either process has died.
    fn check_both(&mut self, waiting_for: &str) -> Result<()> {
        let far = Instant::now() + START_TIMEOUT;
        self.server.check_alive(far, waiting_for)?;
        self.scheduler.check_alive(far, waiting_for)
    }
}

fn quantities(cpu: &str, memory: &str, pods: Option<&str>) -> BTreeMap<String, Quantity> {
    let mut map = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.to_string())),
        ("memory".to_string(), Quantity(memory.to_string())),
    ]);
    if let Some(pods) = pods {
        map.insert("pods".to_string(), Quantity(pods.to_string()));
    }
    map
}

/// A fake node: 32 CPU, 128 Gi, 110 pods, Ready.
fn node(name: &str) -> Node {
    let capacity = quantities("32", "128Gi", Some(&MAX_PODS.to_string()));
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/hostname".to_string(),
                name.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(NodeStatus {
            allocatable: Some(capacity.clone()),
            capacity: Some(capacity),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".to_string(),
                status: "True".to_string(),
                reason: Some("KubeletReady".to_string()),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    }
}

/// A pod of one container asking for 100m and 128Mi, with no owner.
fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                POD_LABEL.to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "pause".to_string(),
                image: Some("registry.k8s.io/pause:3.10".to_string()),
                resources: Some(ResourceRequirements {
                    requests: Some(quantities("100m", "128Mi", None)),
                    ..ResourceRequirements::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// Creates the fake nodes over `clients`, concurrently. If the server drops the status
/// of a created node, as some strategies do, it is written through the status
/// subresource.
async fn create_nodes(clients: &[kube::Client], count: usize) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in clients {
        let api: Api<Node> = Api::all(client.clone());
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                let name = format!("fake-node-{i}");
                let wanted = node(&name);
                let mut created = api
                    .create(&PostParams::default(), &wanted)
                    .await
                    .with_context(|| format!("creating node {name}"))?;
                let allocatable = created.status.as_ref().and_then(|s| s.allocatable.as_ref());
                if allocatable.is_none() {
                    created.status = wanted.status;
                    api.replace_status(&name, &PostParams::default(), &created)
                        .await
                        .with_context(|| format!("writing the status of node {name}"))?;
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The node a pod is bound to, if any.
fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Creates one unmeasured pod and waits for it to be bound: the scheduler is running
/// and has its caches.
async fn warm_up(cluster: &mut Cluster) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(cluster.client().await?, NAMESPACE);
    api.create(&PostParams::default(), &pod("bench-warm-up"))
        .await
        .context("creating the warm-up pod")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let pod = api.get("bench-warm-up").await?;
        if node_name(&pod).is_some() {
            return Ok(());
        }
        cluster
            .scheduler
            .check_alive(deadline, "the warm-up pod to be bound")?;
        cluster
            .server
            .check_alive(deadline, "the warm-up pod to be bound")?;
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What one scenario measured.
#[derive(Debug)]
struct Outcome {
    scenario: Scenario,
    node_setup: Duration,
    /// Pods created per second (all creators), while the scheduler binds.
    create_rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    per_second: f64,
    /// CPU used during the pod phase (first create to last binding).
    cpu: Cpu,
    /// Wall time of the pod phase.
    elapsed: Duration,
    scheduler: Memory,
    server: Memory,
    /// Most pods on one node.
    fullest: usize,
    /// Nodes with at least one pod.
    used_nodes: usize,
    complaints: usize,
}

/// Follows the measured pods and records, per pod name, when it was first seen bound
/// (relative to `base`), until `total` are. Reopens the watch from the last
/// resourceVersion seen if the server ends it.
async fn follow_bindings(
    api: Api<Pod>,
    mut version: String,
    base: Instant,
    total: usize,
) -> Result<HashMap<String, Duration>> {
    let params = WatchParams::default().labels(&format!("{POD_LABEL}=true"));
    let mut bound = HashMap::with_capacity(total);
    'reopen: while bound.len() < total {
        let mut stream = api.watch(&params, &version).await?.boxed();
        while bound.len() < total {
            let event = match tokio::time::timeout(STALL_TIMEOUT, stream.next()).await {
                Err(_) => bail!(
                    "no binding for {STALL_TIMEOUT:?}; {} of {total} pods bound",
                    bound.len()
                ),
                Ok(None) => continue 'reopen,
                Ok(Some(event)) => event?,
            };
            let seen = base.elapsed();
            let pod = match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => pod,
                WatchEvent::Bookmark(mark) => {
                    version = mark.metadata.resource_version;
                    continue;
                }
                WatchEvent::Deleted(pod) => bail!("pod {:?} was deleted", pod.metadata.name),
                WatchEvent::Error(status) => bail!("watch error: {status:?}"),
            };
            if let Some(v) = &pod.metadata.resource_version {
                version.clone_from(v);
            }
            if node_name(&pod).is_some() {
                let name = pod.metadata.name.unwrap_or_default();
                bound.entry(name).or_insert(seen);
            }
        }
    }
    Ok(bound)
}

/// Runs one scenario on a fresh cluster.
async fn measure(scenario: Scenario) -> Result<Outcome> {
    let label = format!("{} nodes / {} pods", scenario.nodes, scenario.pods);
    let mut cluster = Cluster::start().await?;
    let clients = cluster.clients(CREATORS).await?;

    let began = Instant::now();
    create_nodes(&clients, scenario.nodes).await?;
    let node_setup = began.elapsed();
    eprintln!(
        "{label}: {} nodes created in {:.2} s",
        scenario.nodes,
        node_setup.as_secs_f64()
    );
    warm_up(&mut cluster).await?;

    let watch_api: Api<Pod> = Api::namespaced(cluster.client().await?, NAMESPACE);
    let version = watch_api
        .list(&ListParams::default().labels(&format!("{POD_LABEL}=true")))
        .await?
        .metadata
        .resource_version
        .context("a list without resourceVersion")?;
    let base = Instant::now();
    let watching = tokio::spawn(follow_bindings(watch_api, version, base, scenario.pods));
    // Let the watch open before the first create.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let cpu_before = Cpu::sample(&cluster)?;
    let first_create = base.elapsed();
    // When each pod's create call returned, relative to `base`.
    let created: Arc<Mutex<HashMap<String, Duration>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(scenario.pods)));
    let next = Arc::new(AtomicUsize::new(0));
    let mut creators = Vec::new();
    for client in &clients {
        let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        let (next, created) = (next.clone(), created.clone());
        let total = scenario.pods;
        creators.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let name = format!("bench-pod-{i}");
                api.create(&PostParams::default(), &pod(&name))
                    .await
                    .with_context(|| format!("creating pod {name}"))?;
                let at = base.elapsed();
                created.lock().await.insert(name, at);
            }
        }));
    }
    for creator in creators {
        creator.await??;
    }
    let creating = base.elapsed() - first_create;
    let create_rate = scenario.pods as f64 / creating.as_secs_f64();
    eprintln!(
        "{label}: {} pods created in {:.2} s ({create_rate:.0}/s)",
        scenario.pods,
        creating.as_secs_f64()
    );
    let bound = match watching.await? {
        Ok(bound) => bound,
        Err(e) => {
            cluster.check_both("bindings")?;
            return Err(e);
        }
    };
    let cpu = Cpu::sample(&cluster)?.since(cpu_before);

    let created = created.lock().await;
    let mut latencies = Vec::with_capacity(scenario.pods);
    let mut last = Duration::ZERO;
    for (name, at) in created.iter() {
        let seen = bound
            .get(name)
            .with_context(|| format!("pod {name} created but never seen bound"))?;
        last = last.max(*seen);
        // The watch may deliver the binding before the create call's answer arrives.
        latencies.push(seen.saturating_sub(*at));
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let elapsed = last - first_create;

    // Correctness, from the store: every pod bound to an existing node, none over-full.
    let check = cluster.client().await?;
    let nodes: HashSet<String> = Api::<Node>::all(check.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let pods = Api::<Pod>::namespaced(check, NAMESPACE)
        .list(&ListParams::default())
        .await?
        .items;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for pod in &pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let node = node_name(pod).with_context(|| format!("pod {name} is not bound"))?;
        if !nodes.contains(node) {
            bail!("pod {name} is bound to {node}, which is not a node");
        }
        *per_node.entry(node.to_string()).or_default() += 1;
    }
    if pods.len() != scenario.pods + 1 {
        bail!(
            "{} pods listed, not {} (and the warm-up pod)",
            pods.len(),
            scenario.pods
        );
    }
    let fullest = per_node.values().copied().max().unwrap_or(0);
    if fullest > MAX_PODS {
        bail!("a node holds {fullest} pods, more than its {MAX_PODS}");
    }

    tokio::time::sleep(SETTLE).await;
    cluster.check_both("the end of the run")?;
    let scheduler = cluster.scheduler.memory()?;
    let server = cluster.server.memory()?;
    let complaints = cluster.scheduler.complaints();
    for line in complaints.iter().take(5) {
        eprintln!("  scheduler: {line}");
    }
    let outcome = Outcome {
        scenario,
        node_setup,
        create_rate,
        p50: pick(0.50),
        p99: pick(0.99),
        max: pick(1.0),
        per_second: scenario.pods as f64 / elapsed.as_secs_f64(),
        cpu,
        elapsed,
        scheduler,
        server,
        fullest,
        used_nodes: per_node.len(),
        complaints: complaints.len(),
    };
    eprintln!(
        "{label}: {:.0} pods/s, p50 {:.1} ms, p99 {:.1} ms; CPU over {:.2} s: server {:.2} s, \
         scheduler {:.2} s, bench {:.2} s; RSS scheduler {}, server {}",
        outcome.per_second,
        ms(outcome.p50),
        ms(outcome.p99),
        elapsed.as_secs_f64(),
        cpu.server,
        cpu.scheduler,
        cpu.bench,
        mib(scheduler.rss),
        mib(server.rss)
    );
    // Dropping the cluster kills the scheduler, then the server, and removes the dir.
    drop(cluster);
    Ok(outcome)
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "| nodes / pods | pods/s | p50 / p99 / max (ms) | pods created/s | \
         scheduler RSS (peak) | server RSS (peak) | CPU s: scheduler / server / bench | \
         nodes used, fullest |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        println!(
            "| {} / {} | {:.0} | {:.1} / {:.1} / {:.1} | {:.0} | {} ({}) | {} ({}) | \
             {:.2} / {:.2} / {:.2} (over {:.2} s) | {}, {} pods |",
            o.scenario.nodes,
            o.scenario.pods,
            o.per_second,
            ms(o.p50),
            ms(o.p99),
            ms(o.max),
            o.create_rate,
            mib(o.scheduler.rss),
            mib(o.scheduler.peak),
            mib(o.server.rss),
            mib(o.server.peak),
            o.cpu.scheduler,
            o.cpu.server,
            o.cpu.bench,
            o.elapsed.as_secs_f64(),
            o.used_nodes,
            o.fullest
        );
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; ignore what we do not know.
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let scenarios = if quick { QUICK } else { FULL };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let began = Instant::now();
    let outcomes = runtime.block_on(async {
        let mut outcomes = Vec::new();
        for scenario in scenarios {
            outcomes.push(measure(scenario).await?);
        }
        anyhow::Ok(outcomes)
    })?;
    println!(
        "\nmast server --disable-scheduler + mast scheduler ({} build), SQLite, {} cores; \
         {CREATORS} pod creators; {} run in {:.0} s\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if quick { "quick" } else { "full" },
        began.elapsed().as_secs_f64()
    );
    print_table(&outcomes);
    for o in &outcomes {
        println!(
            "\n{} nodes: created in {:.2} s; every pod bound, none over {MAX_PODS} per node; \
             the scheduler logged {} warnings and errors.",
            o.scenario.nodes,
            o.node_setup.as_secs_f64(),
            o.complaints
        );
    }
    if let Some(big) = outcomes.iter().find(|o| o.scenario.nodes == 5000) {
        let met = if big.per_second >= 1000.0 {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "\nAim: at least 1000 pods/s at 5000 nodes: {met} ({:.0} pods/s).",
            big.per_second
        );
    }
    Ok(())
}
