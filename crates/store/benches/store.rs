//! Store benchmark: SQLite and a real etcd side by side, in one run, on this machine.
//!
//! ```text
//! cargo bench -p mast-store --bench store            # full run (a few minutes)
//! cargo bench -p mast-store --bench store -- --quick # smaller counts, for a smoke run
//! cargo bench -p mast-store --bench store -- --watch-only # SQLite watch latency only (1, then 1000 watchers)
//! ```
//!
//! Prints one Markdown table (paste it into docs/benchmarks.md):
//! - durable create and update throughput with 1, 16 and 64 concurrent writers; every
//!   write is acknowledged only once fsynced (SQLite: WAL, synchronous=FULL; etcd: its
//!   raft WAL);
//! - watch delivery latency, from the start of the write call to the event reaching each
//!   watcher, p50 and p99, with 1 and 1000 watchers; with 1000, also split per write
//!   into the first watcher's latency and the fan-out from it to the last watcher;
//! - disk size after 100k updates of 100 keys, compacting to the last 1000 revisions
//!   whenever 1000 more have accumulated (the same schedule for both backends).
//!
//! Each measurement gets a fresh store (a new SQLite file, a new single-member etcd) in
//! a temp dir on the same disk; each watch measurement starts after a `sync`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use store::testing::EtcdCluster;
use store::{EtcdStore, SqliteConfig, SqliteStore, Store};

/// Value size for every write: about a small Kubernetes object.
const VALUE_SIZE: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Scale {
    /// Total writes per throughput measurement, by writer count.
    writes: [(usize, usize); 3],
    watch_events: usize,
    churn_keys: usize,
    churn_updates: usize,
}

const FULL: Scale = Scale {
    writes: [(1, 3_000), (16, 20_000), (64, 40_000)],
    watch_events: 1000,
    churn_keys: 100,
    churn_updates: 100_000,
};

const QUICK: Scale = Scale {
    writes: [(1, 300), (16, 2_000), (64, 4_000)],
    watch_events: 50,
    churn_keys: 100,
    churn_updates: 10_000,
};

/// One backend under test: how to get a fresh instance and how big it is on disk.
trait Backend {
    type Store: Store;
    type Keep;
    const NAME: &'static str;
    fn fresh() -> impl Future<Output = Result<(Self::Store, Self::Keep)>>;
    /// Bytes on disk, and a note on what they are.
    fn disk_size(
        store: &Self::Store,
        keep: &Self::Keep,
    ) -> impl Future<Output = Result<(u64, String)>>;
}

struct Sqlite;

impl Backend for Sqlite {
    type Store = SqliteStore;
    type Keep = tempfile::TempDir;
    const NAME: &'static str = "sqlite";

    async fn fresh() -> Result<(SqliteStore, tempfile::TempDir)> {
        let dir = tempfile::tempdir()?;
        let mut config = SqliteConfig::new(dir.path().join("state.db"));
        config.compaction = None; // the benchmark compacts on the same schedule as etcd
        Ok((SqliteStore::open(config).await?, dir))
    }

    async fn disk_size(store: &SqliteStore, _: &tempfile::TempDir) -> Result<(u64, String)> {
        Ok((store.disk_usage(), "database + WAL".into()))
    }
}

struct Etcd;

impl Backend for Etcd {
    type Store = EtcdStore;
    type Keep = EtcdCluster;
    const NAME: &'static str = "etcd";

    async fn fresh() -> Result<(EtcdStore, EtcdCluster)> {
        let cluster = EtcdCluster::start(1).await.map_err(anyhow::Error::msg)?;
        let store = cluster.store().await?;
        Ok((store, cluster))
    }

    async fn disk_size(store: &EtcdStore, cluster: &EtcdCluster) -> Result<(u64, String)> {
        let mut client = store.client();
        let before = client.status().await?.db_size();
        client.defragment().await?;
        let after = client.status().await?.db_size();
        let wal: u64 = std::fs::read_dir(cluster.data_dir(0).join("member").join("wal"))?
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        Ok((
            u64::try_from(before)?,
            format!(
                "bbolt file; {} after defragment; WAL segments {} more",
                mib(after as u64),
                mib(wal)
            ),
        ))
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE_SIZE])
}

/// Creates per second and updates per second with `writers` concurrent writers.
async fn throughput<S: Store>(store: &S, writers: usize, total: usize) -> Result<(f64, f64)> {
    let per_writer = total / writers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let key = format!("/bench/tp/{writers}/{w}/{i}");
                store.create(key.as_bytes(), value(), None).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let creates = (per_writer * writers) as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/bench/tp/{writers}/{w}/0");
            let mut revision = store.get(key.as_bytes()).await?.mod_revision;
            for _ in 0..per_writer {
                revision = store
                    .update(key.as_bytes(), value(), revision, None)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let updates = (per_writer * writers) as f64 / started.elapsed().as_secs_f64();
    Ok((creates, updates))
}

/// Watch delivery figures for one watcher count.
struct WatchFigures {
    /// Write → event, over every (write, watcher) pair.
    latency: Percentiles,
    /// Per write: write → the first watcher's event.
    first: Percentiles,
    /// Per write: the first watcher's event → the last watcher's.
    fan_out: Percentiles,
}

#[derive(Clone, Copy)]
struct Percentiles {
    p50: Duration,
    p99: Duration,
}

impl Percentiles {
    fn of(mut nanos: Vec<u64>) -> Self {
        nanos.sort_unstable();
        let pick = |q: f64| Duration::from_nanos(nanos[((nanos.len() - 1) as f64 * q) as usize]);
        Percentiles {
            p50: pick(0.50),
            p99: pick(0.99),
        }
    }

    fn cell(self) -> String {
        format!("{:.3} / {:.3}", ms(self.p50), ms(self.p99))
    }
}

/// Write → event latencies over `watchers` watchers, `events` writes paced 10 ms apart.
async fn watch_latency<S: Store>(
    store: &S,
    watchers: usize,
    events: usize,
) -> Result<WatchFigures> {
    let base = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..events).map(|_| AtomicU64::new(0)).collect());
    let prefix = format!("/bench/lat/{watchers}/");
    let from = store.current_revision().await? + 1;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut stream = store.watch(prefix.as_bytes(), from).await?;
        let sent = sent.clone();
        let receive_all = async move {
            let mut latencies = vec![0u64; events];
            for _ in 0..events {
                let event = stream.next().await.context("watch ended")??;
                let received = base.elapsed().as_nanos() as u64;
                let i: usize = std::str::from_utf8(&event.kv.value)?.parse()?;
                latencies[i] = received.saturating_sub(sent[i].load(Ordering::SeqCst));
            }
            anyhow::Ok(latencies)
        };
        // One deadline for the whole run, not one per event: a timer armed and dropped
        // for every event in every watcher is work in the path being measured (with
        // 1000 watchers, dropping it took p50 from 0.85 to 0.60 ms).
        tasks.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(120), receive_all)
                .await
                .context("watch events timed out")?
        }));
    }
    for i in 0..events {
        sent[i].store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
        let key = format!("{prefix}{i}");
        store
            .create(key.as_bytes(), Bytes::from(i.to_string()), None)
            .await?;
        // Paced, so that each write's delivery is measured rather than a queue.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut all = Vec::with_capacity(events * watchers);
    let mut first = vec![u64::MAX; events];
    let mut last = vec![0; events];
    for task in tasks {
        let latencies = task.await??;
        for (i, &latency) in latencies.iter().enumerate() {
            first[i] = first[i].min(latency);
            last[i] = last[i].max(latency);
        }
        all.extend(latencies);
    }
    let fan_out = last.iter().zip(&first).map(|(l, f)| l - f).collect();
    Ok(WatchFigures {
        latency: Percentiles::of(all),
        first: Percentiles::of(first),
        fan_out: Percentiles::of(fan_out),
    })
}

/// `updates` updates spread over `keys` keys by 16 writers, compacting to the last
/// 1000 revisions each time 1000 more have accumulated. Returns the elapsed time.
async fn churn<S: Store>(store: &S, keys: usize, updates: usize) -> Result<Duration> {
    const WRITERS: usize = 16;
    const RETAIN: i64 = 1000;
    let mut revisions = Vec::with_capacity(keys);
    for k in 0..keys {
        revisions.push(
            store
                .create(format!("/bench/churn/{k:03}").as_bytes(), value(), None)
                .await?,
        );
    }
    let done = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let mut compacted = 0;
            while !done.load(Ordering::SeqCst) {
                let current = store.current_revision().await?;
                if current - RETAIN >= compacted + RETAIN {
                    store.compact(current - RETAIN).await?;
                    compacted = current - RETAIN;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            anyhow::Ok(())
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let mut mine: Vec<(usize, i64)> = revisions
            .iter()
            .copied()
            .enumerate()
            .filter(|(k, _)| k % WRITERS == w)
            .collect();
        tasks.push(tokio::spawn(async move {
            for i in 0..updates / WRITERS {
                let slot = i % mine.len();
                let (k, revision) = mine[slot];
                let key = format!("/bench/churn/{k:03}");
                mine[slot].1 = store
                    .update(key.as_bytes(), value(), revision, None)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    compactor.await??;
    let current = store.current_revision().await?;
    // Finish the schedule: the last 1000 revisions are kept, as during the run.
    match store.compact(current - RETAIN).await {
        Ok(()) | Err(store::Error::Compacted { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(elapsed)
}

/// Every figure for one backend, as table cells.
async fn measure<B: Backend>(scale: Scale) -> Result<Vec<String>> {
    let mut cells = Vec::new();
    for (writers, total) in scale.writes {
        let (store, keep) = B::fresh().await?;
        let (creates, updates) = throughput(&store, writers, total).await?;
        eprintln!(
            "{}: {writers} writers: {creates:.0} creates/s, {updates:.0} updates/s",
            B::NAME
        );
        cells.push(format!("{creates:.0}"));
        cells.push(format!("{updates:.0}"));
        drop((store, keep));
    }
    for watchers in [1, 1000] {
        let (store, keep) = B::fresh().await?;
        settle_disk()?;
        let figures = watch_latency(&store, watchers, scale.watch_events).await?;
        let Percentiles { p50, p99 } = figures.latency;
        eprintln!("{}: {watchers} watchers: p50 {p50:?}, p99 {p99:?}", B::NAME);
        cells.push(figures.latency.cell());
        if watchers > 1 {
            cells.push(figures.first.cell());
            cells.push(figures.fan_out.cell());
        }
        drop((store, keep));
    }
    let (store, keep) = B::fresh().await?;
    let elapsed = churn(&store, scale.churn_keys, scale.churn_updates).await?;
    let (size, note) = B::disk_size(&store, &keep).await?;
    eprintln!(
        "{}: churn took {elapsed:?}, size {} ({note})",
        B::NAME,
        mib(size)
    );
    cells.push(format!("{} ({note})", mib(size)));
    cells.push(format!("{:.1} s", elapsed.as_secs_f64()));
    Ok(cells)
}

/// The SQLite watch measurement alone, for comparing changes to the watch path run
/// against run (the figures are noisy on a small VM): one watcher first, the floor that
/// the durable commit sets, then 1000 on a fresh store.
async fn watch_only(scale: Scale) -> Result<()> {
    for watchers in [1, 1000] {
        let (store, _keep) = Sqlite::fresh().await?;
        settle_disk()?;
        let figures = watch_latency(&store, watchers, scale.watch_events).await?;
        if watchers == 1 {
            println!(
                "sqlite, 1 watcher: latency {} (p50 / p99, ms)",
                figures.latency.cell()
            );
        } else {
            println!(
                "sqlite, {watchers} watchers: latency {} | first {} | fan-out {} (p50 / p99, ms)",
                figures.latency.cell(),
                figures.first.cell(),
                figures.fan_out.cell()
            );
        }
    }
    Ok(())
}

/// Waits until the disk has written back what earlier measurements left dirty, so that
/// a latency measurement does not share the disk with their write-back.
fn settle_disk() -> Result<()> {
    let status = std::process::Command::new("sync")
        .status()
        .context("running sync")?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; ignore what we do not know.
    let scale = if args.iter().any(|a| a == "--quick") {
        QUICK
    } else {
        FULL
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.iter().any(|a| a == "--watch-only") {
        return runtime.block_on(watch_only(scale));
    }
    let (sqlite, etcd) = runtime.block_on(async {
        anyhow::Ok((
            measure::<Sqlite>(scale).await?,
            measure::<Etcd>(scale).await?,
        ))
    })?;
    let mut labels = Vec::new();
    for (writers, _) in scale.writes {
        let noun = if writers == 1 { "writer" } else { "writers" };
        labels.push(format!("durable creates/s, {writers} {noun}"));
        labels.push(format!("durable updates/s, {writers} {noun}"));
    }
    labels.push("watch latency p50 / p99 (ms), 1 watcher".into());
    labels.push("watch latency p50 / p99 (ms), 1000 watchers".into());
    labels.push("— per write: to the first of 1000 watchers p50 / p99 (ms)".into());
    labels.push("— per write: fan-out, first to last of 1000 p50 / p99 (ms)".into());
    labels.push(format!(
        "disk size after {}k updates of {} keys, compacted",
        scale.churn_updates / 1000,
        scale.churn_keys
    ));
    labels.push(format!(
        "time for the {}k updates (16 writers)",
        scale.churn_updates / 1000
    ));
    println!(
        "\nvalues {VALUE_SIZE} B; {} cores; etcd {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        etcd_version()
    );
    println!("| measure | SQLite (embedded) | etcd |");
    println!("|---|---|---|");
    for ((label, s), e) in labels.iter().zip(&sqlite).zip(&etcd) {
        println!("| {label} | {s} | {e} |");
    }
    Ok(())
}

fn etcd_version() -> String {
    std::process::Command::new(std::env::var("MAST_ETCD_BIN").unwrap_or_else(|_| "etcd".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.trim_start_matches("etcd Version: ").to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
