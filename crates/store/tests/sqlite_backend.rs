//! Properties of the SQLite backend beyond the shared contract: persistence across
//! reopen, single ownership of a database, watchers that fall behind, and automatic
//! compaction keeping the file bounded.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::testing::conformance::next_events;
use store::{CompactionPolicy, Error, SqliteConfig, SqliteStore, Store};

fn config(dir: &tempfile::TempDir) -> SqliteConfig {
    let mut config = SqliteConfig::new(dir.path().join("db").join("state.db"));
    config.compaction = None;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_revisions_survive_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(config(&dir)).await.expect("open");
    let a = store
        .create(b"/r/a", Bytes::from("1"), None)
        .await
        .expect("create");
    let b = store
        .create(b"/r/b", Bytes::from("2"), None)
        .await
        .expect("create");
    let b_gone = store
        .delete(b"/r/b", None, None)
        .await
        .expect("delete")
        .revision;
    store.compact(b).await.expect("compact");
    store.close().await;

    let store = SqliteStore::open(config(&dir)).await.expect("reopen");
    assert_eq!(store.current_revision().await.expect("revision"), b_gone);
    assert_eq!(
        store.get(b"/r/a").await.expect("get").value,
        Bytes::from("1")
    );
    assert!(matches!(
        store.get(b"/r/b").await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        matches!(
            store.list(b"/r/", a, 0, None).await,
            Err(Error::Compacted { .. })
        ),
        "the compaction point persists"
    );
    let next = store
        .create(b"/r/c", Bytes::from("3"), None)
        .await
        .expect("create");
    assert_eq!(next, b_gone + 1, "revisions continue where they stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_has_one_owner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = SqliteStore::open(config(&dir)).await.expect("open");
    match SqliteStore::open(config(&dir)).await {
        Err(Error::Backend(message)) => assert!(message.contains("in use"), "{message}"),
        other => panic!("second open of a database in use: {other:?}"),
    }
    first.close().await;
    SqliteStore::open(config(&dir))
        .await
        .expect("open after close");
}

/// A watcher that does not read while hundreds of batches are committed loses the
/// broadcast's oldest batches, catches up from the file, and misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(&dir);
    config.watch_buffer = 16;
    let store = SqliteStore::open(config).await.expect("open");
    let mut watch = store.watch(b"/lag/", 0).await.expect("watch");
    let mut revisions = Vec::new();
    // Sequential writes: one batch each, far more than the buffer holds.
    for i in 0..500 {
        let key = format!("/lag/{i:03}");
        revisions.push(
            store
                .create(key.as_bytes(), Bytes::from("x"), None)
                .await
                .expect("create"),
        );
    }
    let got: Vec<i64> = next_events(&mut watch, revisions.len())
        .await
        .iter()
        .map(|e| e.revision())
        .collect();
    assert_eq!(got, revisions);
    let marker = store
        .create(b"/lag/marker", Bytes::from("m"), None)
        .await
        .expect("create");
    let next = next_events(&mut watch, 1).await;
    assert_eq!(
        next[0].revision(),
        marker,
        "no duplicates after catching up"
    );
}

/// Events reach watchers through a relay task on the runtime that opened the store.
/// Once that runtime is gone, the writer hands events out itself and the watchers catch
/// up from the log: nothing lost, nothing twice.
#[test]
fn watches_outlive_the_runtime_that_opened_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = |workers| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime")
    };
    let opener = runtime(1);
    let store = opener
        .block_on(SqliteStore::open(config(&dir)))
        .expect("open");
    let user = runtime(2);
    let create = |key: &'static str| {
        let store = store.clone();
        async move {
            store
                .create(key.as_bytes(), Bytes::from("x"), None)
                .await
                .expect("create")
        }
    };
    let (mut watch, before) = user.block_on(async {
        let mut watch = store.watch(b"/moved/", 0).await.expect("watch");
        let before = create("/moved/before").await;
        let got = next_events(&mut watch, 1).await;
        assert_eq!(got[0].revision(), before, "delivered through the relay");
        (watch, before)
    });
    drop(opener);
    user.block_on(async {
        let mut after = Vec::new();
        for key in ["/moved/a", "/moved/b", "/moved/c"] {
            after.push(create(key).await);
        }
        let got: Vec<i64> = next_events(&mut watch, after.len())
            .await
            .iter()
            .map(|e| e.revision())
            .collect();
        assert_eq!(got, after, "every write after the relay's end, in order");
        assert!(after[0] > before);
        let marker = create("/moved/marker").await;
        let next = next_events(&mut watch, 1).await;
        assert_eq!(
            next[0].revision(),
            marker,
            "no duplicates after catching up"
        );
    });
}

/// Closing the store ends its watches instead of leaving them hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_end_when_the_store_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(config(&dir)).await.expect("open");
    let mut watch = store.watch(b"/", 0).await.expect("watch");
    store.close().await;
    let end = tokio::time::timeout(Duration::from_secs(10), watch.next()).await;
    assert!(matches!(end, Ok(None)), "watch after close: {end:?}");
}

/// Steady churn with automatic compaction: the file stops growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_compaction_keeps_the_file_bounded() {
    const KEYS: usize = 100;
    const ROUNDS: usize = 10;
    const UPDATES_PER_ROUND: usize = 2000;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(&dir);
    config.compaction = Some(CompactionPolicy {
        window: Duration::from_millis(200),
        interval: Duration::from_millis(20),
    });
    let store = SqliteStore::open(config).await.expect("open");
    let value = Bytes::from(vec![b'v'; 1024]);
    let mut revisions = Vec::with_capacity(KEYS);
    for k in 0..KEYS {
        let key = format!("/churn/{k:03}");
        revisions.push(
            store
                .create(key.as_bytes(), value.clone(), None)
                .await
                .expect("create"),
        );
    }
    let mut sizes = Vec::new();
    for _ in 0..ROUNDS {
        let mut tasks = Vec::new();
        // 16 writers, each owning a slice of the keys.
        for w in 0..16 {
            let store = store.clone();
            let value = value.clone();
            let mut mine: Vec<(usize, i64)> = revisions
                .iter()
                .copied()
                .enumerate()
                .filter(|(k, _)| k % 16 == w)
                .collect();
            tasks.push(tokio::spawn(async move {
                for i in 0..UPDATES_PER_ROUND / 16 {
                    let slot = i % mine.len();
                    let (k, rev) = mine[slot];
                    let key = format!("/churn/{k:03}");
                    let rev = store
                        .update(key.as_bytes(), value.clone(), rev, None)
                        .await
                        .expect("update");
                    mine[slot] = (k, rev);
                }
                mine
            }));
        }
        for task in tasks {
            for (k, rev) in task.await.expect("writer") {
                revisions[k] = rev;
            }
        }
        // Wait until the compactor has caught up with this round.
        let end = store.current_revision().await.expect("revision");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match store.list(b"/churn/", end - 1, 1, None).await {
                Err(Error::Compacted { .. }) => break,
                Ok(_) => {}
                Err(e) => panic!("list: {e}"),
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "compaction never reached {end}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sizes.push(store.disk_usage());
    }
    let early = sizes[..ROUNDS / 2].iter().max().copied().unwrap_or(0);
    let late = sizes[ROUNDS / 2..].iter().max().copied().unwrap_or(0);
    let written = (ROUNDS * UPDATES_PER_ROUND * value.len()) as u64;
    assert!(
        late <= early + early / 4,
        "file keeps growing under churn: sizes {sizes:?} (bytes written {written})"
    );
    // Without compaction the file would hold everything written, and more.
    assert!(
        late < written / 2,
        "compaction reclaimed little: sizes {sizes:?}"
    );
    assert_eq!(store.count(b"/churn/").await.expect("count"), KEYS as u64);
}
