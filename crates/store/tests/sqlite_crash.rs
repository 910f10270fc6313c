//! Crash safety of the SQLite backend: a process writing with 16 concurrent writers is
//! killed with SIGKILL at an arbitrary moment, several times over. After each kill the
//! database must hold every write that was acknowledged, and revisions must never go
//! backwards.
//!
//! The writer is this same test binary, re-executed with `CHILD_ENV` set: the test then
//! plays the writer instead of the checker.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::{Error, SqliteConfig, SqliteStore, Store};

const CHILD_ENV: &str = "MAST_CRASH_TEST_DB";
const TEST_NAME: &str = "kill_minus_nine_loses_no_acknowledged_write";
const WRITERS: usize = 16;
const ROUNDS: usize = 5;

/// Kills the child on every exit path, panics included.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The last acknowledged write of one writer key.
#[derive(Debug, Clone, Copy)]
struct Ack {
    count: u64,
    revision: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_loses_no_acknowledged_write() {
    if let Some(db) = std::env::var_os(CHILD_ENV) {
        run_writer(Path::new(&db)).await;
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("state.db");
    let mut acked: BTreeMap<usize, Ack> = BTreeMap::new();
    let mut highest_acked = 0;
    for round in 0..ROUNDS {
        // Kill at a different point each round.
        let kill_after = 500 + round * 1500;
        let (round_acks, first_revision, count) = run_and_kill(&db, kill_after);
        assert!(
            count >= kill_after,
            "round {round}: the writer acknowledged only {count} writes"
        );
        assert!(
            first_revision > highest_acked,
            "round {round}: revision went backwards after a crash: {first_revision} <= {highest_acked}"
        );
        for (writer, ack) in round_acks {
            highest_acked = highest_acked.max(ack.revision);
            let entry = acked.entry(writer).or_insert(ack);
            if ack.count >= entry.count {
                *entry = ack;
            }
        }
        verify(&db, &acked, highest_acked, round).await;
    }
}

/// Runs the writer process until it has acknowledged `kill_after` writes, kills it with
/// SIGKILL, and returns the newest acknowledgement per writer, the revision of the first
/// acknowledged write and how many acknowledgements it printed.
fn run_and_kill(db: &Path, kill_after: usize) -> (Vec<(usize, Ack)>, i64, usize) {
    let exe = std::env::current_exe().expect("test binary path");
    let child = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer process");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("writer stdout");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut latest: BTreeMap<usize, Ack> = BTreeMap::new();
    let mut first_revision = None;
    let mut count = 0;
    let mut killed = false;
    // Every line read after the kill was still written before it: acknowledged too.
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read writer output");
        let Some(ack) = line.strip_prefix("ACK ") else {
            continue;
        };
        let fields: Vec<i64> = ack
            .split(' ')
            .map(|f| f.parse().expect("numeric ack field"))
            .collect();
        let (writer, ack) = (
            fields[0] as usize,
            Ack {
                count: fields[1] as u64,
                revision: fields[2],
            },
        );
        first_revision = Some(first_revision.map_or(ack.revision, |r: i64| r.min(ack.revision)));
        let entry = latest.entry(writer).or_insert(ack);
        if ack.count >= entry.count {
            *entry = ack;
        }
        count += 1;
        if count >= kill_after && !killed {
            child.0.kill().expect("SIGKILL the writer");
            killed = true;
        }
        assert!(Instant::now() < deadline, "writer too slow: {count} acks");
    }
    assert!(killed, "the writer exited by itself after {count} acks");
    (
        latest.into_iter().collect(),
        first_revision.unwrap_or(0),
        count,
    )
}

/// Reopens the database after a kill and checks every acknowledged write is there.
async fn verify(db: &Path, acked: &BTreeMap<usize, Ack>, highest_acked: i64, round: usize) {
    let mut config = SqliteConfig::new(db);
    config.compaction = None;
    let store = SqliteStore::open(config).await.expect("reopen after crash");
    let current = store.current_revision().await.expect("revision");
    assert!(
        current >= highest_acked,
        "round {round}: current revision {current} is below acknowledged revision {highest_acked}"
    );
    for (writer, ack) in acked {
        let kv = store
            .get(format!("/crash/{writer:02}").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("round {round}: writer {writer}'s key lost: {e}"));
        let stored: u64 = std::str::from_utf8(&kv.value)
            .expect("utf-8")
            .parse()
            .expect("a count");
        assert!(
            stored >= ack.count && kv.mod_revision >= ack.revision,
            "round {round}: writer {writer} acknowledged {ack:?}, store has {stored}@{}",
            kv.mod_revision
        );
        if stored == ack.count {
            assert_eq!(
                kv.mod_revision, ack.revision,
                "round {round}: writer {writer}"
            );
        }
    }
    store.close().await;
}

/// The child: 16 writers, each incrementing its own key forever, printing each
/// acknowledged write as `ACK <writer> <count> <revision>`.
async fn run_writer(db: &Path) {
    let mut config = SqliteConfig::new(db);
    config.compaction = None;
    let store = SqliteStore::open(config).await.expect("open in writer");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/crash/{writer:02}");
            let (mut count, mut revision) = match store.get(key.as_bytes()).await {
                Ok(kv) => (
                    std::str::from_utf8(&kv.value)
                        .expect("utf-8")
                        .parse::<u64>()
                        .expect("count"),
                    kv.mod_revision,
                ),
                Err(Error::NotFound { .. }) => (0, 0),
                Err(e) => panic!("read {key}: {e}"),
            };
            loop {
                count += 1;
                let value = Bytes::from(count.to_string());
                revision = if revision == 0 {
                    store.create(key.as_bytes(), value, None).await
                } else {
                    store.update(key.as_bytes(), value, revision, None).await
                }
                .expect("write");
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {writer} {count} {revision}").expect("print ack");
                out.flush().expect("flush ack");
            }
        }));
    }
    // The writers never stop; if one fails, end the process so the parent notices.
    let (failed, _, _) = futures::future::select_all(tasks).await;
    panic!("a writer stopped: {failed:?}");
}
