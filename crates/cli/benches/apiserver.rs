//! API server benchmark: a real `mast server` process, on SQLite and on a real etcd, in
//! one run, driven over HTTP by kube-rs clients on this machine.
//!
//! ```text
//! cargo bench -p mast --bench apiserver            # full run (about 2 minutes)
//! cargo bench -p mast --bench apiserver -- --quick # smaller counts (about 20 s)
//! ```
//!
//! The server under test is the binary cargo built for this benchmark, so with
//! `cargo bench` it is the optimised (bench profile) build. It starts as a user would
//! start it (`--secure-port 0 --write-kubeconfig …`); every client is a `kube::Client`
//! built from the kubeconfig it writes, each with its own connections.
//!
//! Per backend, with 1, 16 and 64 concurrent clients (closed loop: each sends its next
//! request when the previous one is answered), on ConfigMaps of about 1 KiB in
//! `default`, it measures p50 and p99 latency and throughput of:
//! - list: a label selector matching a fixed set of 100 objects. Once before anything
//!   else, when those are the only ConfigMaps the namespace has ever had, and once at
//!   the end, after the rounds below have created, updated and deleted tens of
//!   thousands of others (history the store keeps until it compacts);
//! - create, get, update (replace, with the resourceVersion the create returned) and
//!   delete, each client on objects of its own;
//! - watch: from the start of a write (an update) to a watcher receiving its event.
//!   With 1 watcher while the clients write flat out; and, at 16 clients, with the
//!   writes paced to 200/s in all, with 1 and with 100 watchers (unpaced, 100 watchers
//!   would measure this process decoding 100 copies of every event, not the server).
//!
//! And the server's resident memory (VmRSS): right after it is ready, and once the load
//! is over and every client has gone (plus the peak, VmHWM). The progress lines on
//! stderr also give, per measurement, the cores the server and this process used (the
//! machine is shared between them) and the server's RSS after it.
//!
//! Prints one Markdown table per backend (paste them into docs/benchmarks.md).

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{Memory, Process, client, cpu_seconds, mib, ms, start_server};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use store::testing::EtcdCluster;
use tokio::sync::{Barrier, Mutex};

/// Where every object lives.
const NAMESPACE: &str = "default";
/// Filler in each ConfigMap's data, so that the stored object is about 1 KiB.
const PAD_BYTES: usize = 750;
/// Objects in the fixed set that every list returns.
const LIST_SET: usize = 100;
/// Concurrent clients, one column each.
const CLIENTS: [usize; 3] = [1, 16, 64];
/// Clients for the paced watch measurements (1 and 100 watchers).
const PACED_CLIENTS: usize = 16;
/// Watchers in the fan-out measurement.
const MANY_WATCHERS: usize = 100;
/// Time between two writes of the paced watch measurements, over all clients.
const PACE: Duration = Duration::from_millis(5);

/// A watcher waiting for its next event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server is left alone before its after-load memory is read.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Scale {
    /// Requests per client for create, get, update, delete and the unpaced watch, in
    /// the order of [`CLIENTS`].
    ops_per_client: [usize; 3],
    /// Lists per client, in the order of [`CLIENTS`].
    lists_per_client: [usize; 3],
    /// Writes per client in each paced watch measurement.
    paced_per_client: usize,
}

const FULL: Scale = Scale {
    ops_per_client: [2000, 500, 250],
    lists_per_client: [300, 50, 25],
    paced_per_client: 64,
};

const QUICK: Scale = Scale {
    ops_per_client: [200, 40, 15],
    lists_per_client: [30, 10, 4],
    paced_per_client: 16,
};

/// Which store the server runs on.
#[derive(Debug, Clone)]
enum Backend {
    /// SQLite in the data dir (no `--datastore-endpoint`).
    Sqlite,
    /// etcd at these client URLs.
    Etcd(Vec<String>),
}

impl Backend {
    fn title(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite (embedded)",
            Backend::Etcd(_) => "etcd",
        }
    }
}

/// A running `mast server`, killed (and reaped) on drop.
#[derive(Debug)]
struct Server {
    process: Process,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Spawns the server on `backend` and waits, with a deadline, for the kubeconfig and
    /// then for `GET /readyz` to answer 200.
    async fn start(backend: &Backend) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mast-bench-")
            .tempdir()
            .context("creating a temp dir for the server")?;
        let mut extra = Vec::new();
        if let Backend::Etcd(endpoints) = backend {
            extra = vec!["--datastore-endpoint".to_string(), endpoints.join(",")];
        }
        let started = start_server(dir.path(), &extra).await?;
        Ok(Server {
            process: started.process,
            kubeconfig: started.kubeconfig,
            _dir: dir,
        })
    }

    fn memory(&self) -> Result<Memory> {
        self.process.memory()
    }

    fn cpu(&self) -> Result<CpuSample> {
        Ok(CpuSample {
            server: cpu_seconds(&self.process.pid())?,
            bench: cpu_seconds("self")?,
            at: Instant::now(),
        })
    }

    /// Prints a measurement's figures, with the cores the server and this process used
    /// since `before`, and the server's memory after it.
    fn progress(&self, what: &str, f: &Figures, before: CpuSample) {
        let usage = self.cpu().map_or_else(
            |e| e.to_string(),
            |now| {
                let wall = now.at.duration_since(before.at).as_secs_f64();
                format!(
                    "server {:.2} cores, bench {:.2} cores",
                    (now.server - before.server) / wall,
                    (now.bench - before.bench) / wall
                )
            },
        );
        let rss = self.memory().map_or_else(|e| e.to_string(), |m| mib(m.rss));
        eprintln!(
            "{what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0}/s; {usage}; server RSS {rss}",
            ms(f.p50),
            ms(f.p99),
            ms(f.max),
            f.per_second
        );
    }

    /// A client as a user would build one: from the kubeconfig file. Each has its own
    /// connection pool.
    async fn client(&self) -> Result<kube::Client> {
        client(&self.kubeconfig).await
    }

    /// `n` ConfigMap APIs, each on its own client with its connection already open.
    async fn apis(&self, n: usize) -> Result<Vec<Api<ConfigMap>>> {
        let mut apis = Vec::with_capacity(n);
        for _ in 0..n {
            let api = Api::namespaced(self.client().await?, NAMESPACE);
            api.get_opt("bench-warm-up").await?;
            apis.push(api);
        }
        Ok(apis)
    }
}

/// CPU time (user + system) used so far by the server and by this process, to show
/// who uses the two cores during a measurement.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    server: f64,
    bench: f64,
    at: Instant,
}

/// Latency percentiles and throughput of one measurement.
#[derive(Debug, Clone, Copy)]
struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
    per_second: f64,
}

impl Figures {
    fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Result<Self> {
        if latencies.is_empty() {
            bail!("no samples");
        }
        latencies.sort_unstable();
        let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        Ok(Figures {
            p50: pick(0.50),
            p99: pick(0.99),
            max: pick(1.0),
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        })
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} / {:.2} | {:.0}",
            ms(self.p50),
            ms(self.p99),
            self.per_second
        )
    }
}

/// Rows of figures, one column per entry of [`CLIENTS`], in the order first set.
#[derive(Debug, Default)]
struct Table {
    rows: Vec<(String, [Option<Figures>; 3])>,
}

impl Table {
    fn set(&mut self, row: &str, column: usize, figures: Figures) {
        match self.rows.iter_mut().find(|(label, _)| label == row) {
            Some((_, cells)) => cells[column] = Some(figures),
            None => {
                let mut cells = [None; 3];
                cells[column] = Some(figures);
                self.rows.push((row.to_string(), cells));
            }
        }
    }

    fn get(&self, row: &str, column: usize) -> Option<Figures> {
        self.rows
            .iter()
            .find(|(label, _)| label == row)
            .and_then(|(_, cells)| cells[column])
    }
}

/// Everything measured on one backend.
#[derive(Debug)]
struct Report {
    title: &'static str,
    table: Table,
    ready: Memory,
    after_load: Memory,
    /// Size of one of the listed objects as the server returns it, in JSON.
    object_bytes: usize,
}

/// A ConfigMap of about 1 KiB. `seq` identifies the write that produced it, so that a
/// watcher can tell which write an event belongs to.
fn configmap(name: &str, labels: &[(&str, String)], seq: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("seq".to_string(), seq.to_string()),
            ("pad".to_string(), "x".repeat(PAD_BYTES)),
        ])),
        ..ConfigMap::default()
    }
}

/// Which write produced this state of an object.
fn seq_of(object: &ConfigMap) -> Result<usize> {
    object
        .data
        .as_ref()
        .and_then(|d| d.get("seq"))
        .context("an object without data.seq")?
        .parse()
        .context("data.seq is not a number")
}

/// Sets the object's `seq`, as an update would change its content.
fn set_seq(object: &mut ConfigMap, seq: usize) {
    object
        .data
        .get_or_insert_with(BTreeMap::new)
        .insert("seq".to_string(), seq.to_string());
}

/// Runs `per_client` requests on each client at once, each client sending its next
/// request when the previous one is answered. `op(api, client, i)` is request `i` of
/// `client`. Latency is per request; throughput is requests over the wall time from
/// the common start to the last answer.
async fn drive<F, Fut>(apis: &[Api<ConfigMap>], per_client: usize, op: F) -> Result<Figures>
where
    F: Fn(Api<ConfigMap>, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let start = Arc::new(Barrier::new(apis.len() + 1));
    let mut tasks = Vec::with_capacity(apis.len());
    for (client, api) in apis.iter().enumerate() {
        let (api, op, start) = (api.clone(), op.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            start.wait().await;
            for i in 0..per_client {
                let began = Instant::now();
                op(api.clone(), client, i).await?;
                latencies.push(began.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    start.wait().await;
    let began = Instant::now();
    let mut all = Vec::with_capacity(apis.len() * per_client);
    for task in tasks {
        all.extend(task.await??);
    }
    Figures::new(all, began.elapsed())
}

/// Write → event latency. Each writer updates its own object `per_writer` times (after
/// each write, waiting for its next slot when `pace` is set: write `k` of writer `w` is
/// due at `(k * writers + w) * pace`); every watcher watches all of those objects and
/// times each event from the start of the write that made it. Throughput is events
/// received, over all watchers, per second.
async fn watch_latency(
    writers: &[Api<ConfigMap>],
    watchers: &[Api<ConfigMap>],
    tag: &str,
    round_label: &str,
    per_writer: usize,
    pace: Option<Duration>,
) -> Result<Figures> {
    let selector = format!("bench-watch={tag}");
    let labels = [
        ("bench-round", round_label.to_string()),
        ("bench-watch", tag.to_string()),
    ];
    let mut objects = Vec::with_capacity(writers.len());
    for (w, api) in writers.iter().enumerate() {
        let object = configmap(&format!("bench-{tag}-{w}"), &labels, 0);
        objects.push(api.create(&PostParams::default(), &object).await?);
    }
    let from = writers[0]
        .list(&ListParams::default().labels(&selector))
        .await?
        .metadata
        .resource_version
        .context("a list without resourceVersion")?;

    let total = writers.len() * per_writer;
    let base = Instant::now();
    // Nanoseconds after `base` at which write `seq` started (seq 1..=total).
    let started: Arc<Vec<AtomicU64>> = Arc::new((0..=total).map(|_| AtomicU64::new(0)).collect());
    let mut watching = Vec::with_capacity(watchers.len());
    for api in watchers {
        let params = WatchParams::default().labels(&selector);
        let mut stream = api.watch(&params, &from).await?.boxed();
        let started = started.clone();
        watching.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total);
            while latencies.len() < total {
                let event = tokio::time::timeout(EVENT_TIMEOUT, stream.next())
                    .await
                    .context("waiting for a watch event")?
                    .context("the watch ended early")??;
                let received = base.elapsed();
                let object = match event {
                    WatchEvent::Modified(object) => object,
                    WatchEvent::Bookmark(_) => continue,
                    WatchEvent::Error(status) => bail!("watch error: {status:?}"),
                    other => bail!("unexpected watch event: {other:?}"),
                };
                let seq = seq_of(&object)?;
                let began = started
                    .get(seq)
                    .with_context(|| format!("an event for write {seq} of {total}"))?
                    .load(Ordering::SeqCst);
                latencies.push(received.saturating_sub(Duration::from_nanos(began)));
            }
            anyhow::Ok(latencies)
        }));
    }

    let count = writers.len();
    // Every watch is open: the paced schedule starts now.
    let origin = Instant::now();
    let slots: Arc<Vec<Mutex<ConfigMap>>> = Arc::new(objects.into_iter().map(Mutex::new).collect());
    drive(writers, per_writer, move |api, w, k| {
        let (slots, started) = (slots.clone(), started.clone());
        async move {
            if let Some(pace) = pace {
                let due = pace * u32::try_from(k * count + w)?;
                tokio::time::sleep_until((origin + due).into()).await;
            }
            let seq = 1 + w * per_writer + k;
            let mut object = slots[w].lock().await;
            set_seq(&mut object, seq);
            let name = object.metadata.name.clone().unwrap_or_default();
            started[seq].store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
            *object = api.replace(&name, &PostParams::default(), &object).await?;
            Ok(())
        }
    })
    .await?;

    let mut all = Vec::with_capacity(total * watchers.len());
    for task in watching {
        all.extend(task.await??);
    }
    Figures::new(all, origin.elapsed())
}

/// Lists of the fixed set by `CLIENTS[column]` concurrent clients.
async fn list_round(
    server: &Server,
    table: &mut Table,
    column: usize,
    scale: Scale,
    row: &str,
    name: &str,
) -> Result<()> {
    let apis = server.apis(CLIENTS[column]).await?;
    let selector = format!("bench-set=list-{LIST_SET}");
    let before = server.cpu()?;
    let figures = drive(&apis, scale.lists_per_client[column], move |api, _, _| {
        let params = ListParams::default().labels(&selector);
        async move {
            let list = api.list(&params).await?;
            if list.items.len() != LIST_SET {
                bail!("listed {} objects, not {LIST_SET}", list.items.len());
            }
            Ok(())
        }
    })
    .await?;
    server.progress(
        &format!("{name}: {} clients: {row}", CLIENTS[column]),
        &figures,
        before,
    );
    table.set(row, column, figures);
    Ok(())
}

/// One round of `CLIENTS[column]` concurrent clients on objects of their own: create,
/// get, update, delete; then watch latency, with objects made for it.
async fn round(
    server: &Server,
    table: &mut Table,
    column: usize,
    scale: Scale,
    name: &str,
) -> Result<()> {
    let clients = CLIENTS[column];
    let per_client = scale.ops_per_client[column];
    let apis = server.apis(clients).await?;
    let round_label = format!("r{clients}");
    let note = |op: &str, f: &Figures, before: CpuSample| {
        server.progress(&format!("{name}: {clients} clients: {op}"), f, before);
    };

    let object_name = move |client: usize, i: usize| format!("bench-{clients}-{client}-{i}");
    // What each client created, in order: the update phase writes these back.
    let mine: Arc<Vec<Mutex<Vec<ConfigMap>>>> = Arc::new(
        (0..clients)
            .map(|_| Mutex::new(Vec::with_capacity(per_client)))
            .collect(),
    );
    let labels = [("bench-round", round_label.clone())];
    let created = mine.clone();
    let before = server.cpu()?;
    let figures = drive(&apis, per_client, move |api, client, i| {
        let object = configmap(&object_name(client, i), &labels, 0);
        let created = created.clone();
        async move {
            let object = api.create(&PostParams::default(), &object).await?;
            created[client].lock().await.push(object);
            Ok(())
        }
    })
    .await?;
    note("create", &figures, before);
    table.set("create", column, figures);

    let before = server.cpu()?;
    let figures = drive(&apis, per_client, move |api, client, i| async move {
        api.get(&object_name(client, i)).await?;
        Ok(())
    })
    .await?;
    note("get", &figures, before);
    table.set("get", column, figures);

    // Each client replaces each of its objects once, with the state (and so the
    // resourceVersion) its create returned, as a controller updates what it has cached.
    let before = server.cpu()?;
    let figures = drive(&apis, per_client, move |api, client, i| {
        let mine = mine.clone();
        async move {
            let mut object = std::mem::take(&mut mine[client].lock().await[i]);
            set_seq(&mut object, i + 1);
            api.replace(&object_name(client, i), &PostParams::default(), &object)
                .await?;
            Ok(())
        }
    })
    .await?;
    note("update", &figures, before);
    table.set("update (replace)", column, figures);

    let before = server.cpu()?;
    let figures = drive(&apis, per_client, move |api, client, i| async move {
        api.delete(&object_name(client, i), &DeleteParams::default())
            .await?;
        Ok(())
    })
    .await?;
    note("delete", &figures, before);
    table.set("delete", column, figures);

    let watcher = server.apis(1).await?;
    let tag = format!("{clients}-flat");
    let before = server.cpu()?;
    let figures = watch_latency(&apis, &watcher, &tag, &round_label, per_client, None).await?;
    note("watch, 1 watcher, writes unpaced", &figures, before);
    table.set("watch, 1 watcher (writes unpaced)", column, figures);

    if clients == PACED_CLIENTS {
        let rate = 1.0 / PACE.as_secs_f64();
        for watchers in [1, MANY_WATCHERS] {
            let watching = server.apis(watchers).await?;
            let tag = format!("{clients}-paced-{watchers}");
            let before = server.cpu()?;
            let figures = watch_latency(
                &apis,
                &watching,
                &tag,
                &round_label,
                scale.paced_per_client,
                Some(PACE),
            )
            .await?;
            let noun = if watchers == 1 { "watcher" } else { "watchers" };
            let row = format!("watch, {watchers} {noun} (writes paced to {rate:.0}/s)");
            note(&row, &figures, before);
            table.set(&row, column, figures);
        }
    }

    // The watch objects too, so the next round's lists see only the fixed set.
    apis[0]
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("bench-round={round_label}")),
        )
        .await?;
    Ok(())
}

/// Starts a server on `backend`, measures every round, and stops it.
async fn measure(backend: &Backend, scale: Scale) -> Result<Report> {
    let server = Server::start(backend).await?;
    let ready = server.memory()?;
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Etcd(_) => "etcd",
    };
    eprintln!(
        "{name}: ready; RSS {}, peak {}",
        mib(ready.rss),
        mib(ready.peak)
    );

    let setup = server.apis(1).await?;
    let labels = [("bench-set", format!("list-{LIST_SET}"))];
    let mut object_bytes = 0;
    for i in 0..LIST_SET {
        let object = configmap(&format!("bench-list-{i}"), &labels, 0);
        let created = setup[0].create(&PostParams::default(), &object).await?;
        object_bytes = serde_json::to_vec(&created)?.len();
    }
    drop(setup);

    let mut table = Table::default();
    let fresh = format!("list ({LIST_SET} objects)");
    for column in 0..CLIENTS.len() {
        list_round(&server, &mut table, column, scale, &fresh, name).await?;
    }
    for column in 0..CLIENTS.len() {
        round(&server, &mut table, column, scale, name).await?;
    }
    let churned = format!("list ({LIST_SET} objects), after the rounds' churn");
    for column in 0..CLIENTS.len() {
        list_round(&server, &mut table, column, scale, &churned, name).await?;
    }

    tokio::time::sleep(SETTLE).await;
    let after_load = server.memory()?;
    eprintln!(
        "{name}: after load: RSS {}, peak {}",
        mib(after_load.rss),
        mib(after_load.peak)
    );
    // Anything the server complained about under load is worth knowing next to the
    // figures.
    let complaints = server.process.complaints();
    eprintln!(
        "{name}: the server logged {} warnings and errors",
        complaints.len()
    );
    for line in complaints.iter().take(5) {
        eprintln!("  {line}");
    }
    drop(server);
    Ok(Report {
        title: backend.title(),
        table,
        ready,
        after_load,
        object_bytes,
    })
}

fn print_report(report: &Report) {
    println!("\n#### {}\n", report.title);
    let mut header = String::from("| operation |");
    let mut rule = String::from("|---|");
    for clients in CLIENTS {
        let noun = if clients == 1 { "client" } else { "clients" };
        header.push_str(&format!(
            " {clients} {noun}: p50 / p99 (ms) | {clients} {noun}: ops/s |"
        ));
        rule.push_str("---|---|");
    }
    println!("{header}\n{rule}");
    for (label, cells) in &report.table.rows {
        let cells: Vec<String> = cells
            .iter()
            .map(|c| c.map_or_else(|| "— | —".to_string(), |f| f.to_string()))
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    println!(
        "\nServer RSS: {} right after ready; {} after the load, idle ({} peak).",
        mib(report.ready.rss),
        mib(report.after_load.rss),
        mib(report.after_load.peak)
    );
}

/// The aims of the API server issue, checked against the SQLite figures.
fn print_aims(sqlite: &Report) {
    let column = CLIENTS
        .iter()
        .position(|&c| c == 16)
        .unwrap_or(CLIENTS.len() - 1);
    let mutating: Vec<(&str, f64)> = ["create", "update (replace)", "delete"]
        .into_iter()
        .filter_map(|op| sqlite.table.get(op, column).map(|f| (op, ms(f.p99))))
        .collect();
    let worst = mutating.iter().map(|(_, p99)| *p99).fold(0.0, f64::max);
    let listed: Vec<String> = mutating
        .iter()
        .map(|(op, p99)| format!("{op} {p99:.2} ms"))
        .collect();
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "\nAim: mutating p99 under 10 ms at 16 clients on SQLite: {} ({}).",
        verdict(worst < 10.0),
        listed.join(", ")
    );
    let aim = 40 * 1024 * 1024;
    println!(
        "Aim: idle RSS under 40 MiB (SQLite): right after ready {} ({}); idle after the \
         load {} ({}).",
        verdict(sqlite.ready.rss < aim),
        mib(sqlite.ready.rss),
        verdict(sqlite.after_load.rss < aim),
        mib(sqlite.after_load.rss)
    );
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; ignore what we do not know.
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let scale = if quick { QUICK } else { FULL };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let began = Instant::now();
    let reports = runtime.block_on(async {
        let sqlite = measure(&Backend::Sqlite, scale).await?;
        let etcd = EtcdCluster::start(1).await.map_err(anyhow::Error::msg)?;
        let on_etcd = measure(&Backend::Etcd(etcd.endpoints()), scale).await?;
        drop(etcd);
        anyhow::Ok([sqlite, on_etcd])
    })?;
    println!(
        "\nmast server ({} build), {} cores; ConfigMaps of {} bytes (JSON); {} run in {:.0} s",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        reports[0].object_bytes,
        if quick { "quick" } else { "full" },
        began.elapsed().as_secs_f64()
    );
    let objects: usize = CLIENTS
        .iter()
        .zip(scale.ops_per_client)
        .map(|(clients, ops)| clients * ops)
        .sum();
    let watched = objects + 2 * PACED_CLIENTS * scale.paced_per_client;
    println!(
        "The lists after the churn follow {objects} creates, {objects} updates and \
         {objects} deletes of other ConfigMaps in the namespace, and {watched} updates of \
         watched ones."
    );
    for report in &reports {
        print_report(report);
    }
    print_aims(&reports[0]);
    Ok(())
}
