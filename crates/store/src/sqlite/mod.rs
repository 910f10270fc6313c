//! The embedded backend: one SQLite file in the data dir.
//!
//! - [`schema`]: the append-only log table and the durability settings (WAL, fsync at
//!   every commit).
//! - [`writer`]: the single writer thread doing group commit and publishing events.
//! - [`checkpoint`]: when the WAL is copied back, after the answers rather than inside
//!   a commit.
//! - [`reader`]: pooled read-only connections and the read queries.
//! - [`hub`]: the one place committed events are published, fanned out to each
//!   matching watcher by a relay task on the runtime.
//! - [`mailbox`]: one watcher's bounded inbox of shared batches.
//! - [`watch`]: catch-up-then-live watch streams fed by the hub.
//! - [`compactor`]: time-window automatic compaction.
//!
//! One process owns a database at a time: opening takes an exclusive lock on
//! `<file>.lock`, because watchers only see writes made through their own process.

mod checkpoint;
mod compactor;
mod hub;
mod mailbox;
mod reader;
mod schema;
mod watch;
mod writer;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

pub use compactor::CompactionPolicy;
use reader::{ReadPool, sqlite_error};
use writer::{Outcome, Request, Shared, WriteOp};

use crate::error::{Error, Result, Revision};
use crate::types::{Deleted, Guard, KeyValue, ListPage};
use crate::{Store, WatchStream, check_value_size};

/// Settings for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; created with its parent directories if missing.
    pub path: PathBuf,
    /// Automatic compaction; `None` keeps all history until [`Store::compact`] is called.
    pub compaction: Option<CompactionPolicy>,
    /// The most writes one transaction (one fsync) commits.
    pub max_batch: usize,
    /// The most read connections open at once.
    pub read_connections: usize,
    /// How many events a watcher may fall behind before it has to catch up from the
    /// file.
    pub watch_buffer: usize,
}

impl SqliteConfig {
    /// Defaults for a database at `path`: 5-minute compaction window, batches of up to
    /// 1024 writes, 4 readers.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            compaction: Some(CompactionPolicy::default()),
            max_batch: 1024,
            read_connections: 4,
            watch_buffer: 4096,
        }
    }
}

/// The SQLite-backed [`Store`]. Cheap to clone; all clones share one writer thread.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    requests: mpsc::Sender<Request>,
    readers: Arc<ReadPool>,
    shared: Arc<Shared>,
    watch_buffer: usize,
    compactor: Option<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(compactor) = &self.compactor {
            compactor.abort();
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the database and starts the writer thread, the relay that hands
    /// events to watchers and, if configured, the compactor. Must be called inside a
    /// Tokio runtime: the relay and the compactor are tasks on it, so it must keep
    /// running while the store is used. (Should it shut down first, the writer hands
    /// events out itself; compaction stops.)
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        let path = config.path.clone();
        let (conn, lock, revision) = tokio::task::spawn_blocking(move || open_file(&path))
            .await
            .map_err(|e| Error::Backend(format!("sqlite open task failed: {e}")))??;
        let shared = Arc::new(Shared {
            revision: AtomicI64::new(revision),
            hub: Arc::new(hub::Hub::default()),
        });
        let (requests, receiver) = mpsc::channel(config.max_batch.max(1) * 4);
        writer::spawn(conn, lock, receiver, shared.clone(), config.max_batch)
            .map_err(|e| Error::Backend(format!("cannot start sqlite writer thread: {e}")))?;
        // No write can be committed before `open` returns, so none is published before
        // the relay runs. The writer thread closes the hub, which ends the relay.
        shared.hub.start_relay();
        let inner = Arc::new_cyclic(|weak| Inner {
            path: config.path.clone(),
            requests,
            readers: Arc::new(ReadPool::new(config.path.clone(), config.read_connections)),
            shared,
            watch_buffer: config.watch_buffer,
            compactor: config
                .compaction
                .map(|policy| tokio::spawn(compactor::run(weak.clone(), policy)).abort_handle()),
        });
        Ok(SqliteStore { inner })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes on disk: the database file plus its WAL.
    pub fn disk_usage(&self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.inner.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.inner.path) + size(Path::new(&wal))
    }

    /// Finishes pending writes, closes the database and releases its lock. Other clones
    /// fail with [`Error::Unavailable`] afterwards.
    pub async fn close(self) {
        let (reply, done) = oneshot::channel();
        if self
            .inner
            .requests
            .send(Request::Close { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    async fn write(&self, op: WriteOp, guard: Option<Guard>) -> Result<Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Write { op, guard, reply })
            .await
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }
}

fn closed() -> Error {
    Error::Unavailable("sqlite store is closed".into())
}

/// Creates directories, takes the lock, opens the writer connection, reads the revision.
fn open_file(path: &Path) -> Result<(rusqlite::Connection, File, Revision)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Backend(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            Error::Backend(format!(
                "cannot open {}: {e}",
                Path::new(&lock_path).display()
            ))
        })?;
    lock.try_lock().map_err(|_| {
        Error::Backend(format!(
            "database {} is in use by another process",
            path.display()
        ))
    })?;
    let conn = schema::open_writer(path).map_err(sqlite_error)?;
    let revision = schema::last_revision(&conn).map_err(sqlite_error)?;
    Ok((conn, lock, revision))
}

impl Store for SqliteStore {
    async fn get(&self, key: &[u8]) -> Result<KeyValue> {
        let key = key.to_vec();
        self.inner
            .readers
            .run(move |conn| reader::get(conn, &key))
            .await
    }

    async fn list(
        &self,
        prefix: &[u8],
        at_revision: Revision,
        limit: usize,
        start_after: Option<&[u8]>,
    ) -> Result<ListPage> {
        let prefix = prefix.to_vec();
        let start_after = start_after.map(<[u8]>::to_vec);
        self.inner
            .readers
            .run(move |conn| {
                reader::list(conn, &prefix, at_revision, limit, start_after.as_deref())
            })
            .await
    }

    async fn count(&self, prefix: &[u8]) -> Result<u64> {
        let prefix = prefix.to_vec();
        self.inner
            .readers
            .run(move |conn| reader::count(conn, &prefix))
            .await
    }

    async fn create(&self, key: &[u8], value: Bytes, guard: Option<Guard>) -> Result<Revision> {
        check_value_size(key, &value)?;
        let op = WriteOp::Create {
            key: Bytes::copy_from_slice(key),
            value,
        };
        match self.write(op, guard).await? {
            Outcome::Written(revision) => Ok(revision),
            Outcome::Deleted(_) => Err(Error::Backend(
                "writer answered a create with a delete".into(),
            )),
        }
    }

    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_mod_revision: Revision,
        guard: Option<Guard>,
    ) -> Result<Revision> {
        check_value_size(key, &value)?;
        let op = WriteOp::Update {
            key: Bytes::copy_from_slice(key),
            value,
            expected: expected_mod_revision,
        };
        match self.write(op, guard).await? {
            Outcome::Written(revision) => Ok(revision),
            Outcome::Deleted(_) => Err(Error::Backend(
                "writer answered an update with a delete".into(),
            )),
        }
    }

    async fn delete(
        &self,
        key: &[u8],
        expected_mod_revision: Option<Revision>,
        guard: Option<Guard>,
    ) -> Result<Deleted> {
        let op = WriteOp::Delete {
            key: Bytes::copy_from_slice(key),
            expected: expected_mod_revision,
        };
        match self.write(op, guard).await? {
            Outcome::Deleted(deleted) => Ok(deleted),
            Outcome::Written(_) => Err(Error::Backend(
                "writer answered a delete with a write".into(),
            )),
        }
    }

    async fn watch(&self, prefix: &[u8], from_revision: Revision) -> Result<WatchStream> {
        watch::start(
            self.inner.readers.clone(),
            self.inner.shared.clone(),
            self.inner.watch_buffer,
            Bytes::copy_from_slice(prefix),
            from_revision,
        )
        .await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.shared.revision.load(Ordering::SeqCst))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Compact { revision, reply })
            .await
            .map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }
}
