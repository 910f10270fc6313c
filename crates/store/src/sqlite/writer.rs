//! The single writer thread: group commit.
//!
//! Every write goes through one channel to one OS thread that owns the only writable
//! connection. The thread takes whatever is waiting (up to `max_batch`), applies it in
//! one `BEGIN IMMEDIATE` transaction and commits once, so N concurrent writers pay for one
//! fsync instead of N. Throughput therefore grows with concurrency.
//!
//! Each request is checked against the state left by the requests before it in the same
//! batch, so batching never changes the outcome: the result is the same as applying the
//! requests one by one in channel order. Only after the commit is durable are the batch's
//! events published to watchers and the callers answered.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::WalCheckpoints;
use super::hub::Hub;
use super::schema;
use crate::error::{Error, Result, Revision, key_text};
use crate::types::{Deleted, Event, EventKind, Guard, KeyValue};

/// Compaction deletes at most this many revisions' worth of history per transaction, so
/// a large compaction never holds up writers for long.
const COMPACTION_CHUNK: i64 = 10_000;

/// State the writer publishes and everyone else reads.
#[derive(Debug)]
pub struct Shared {
    /// Revision of the last committed write. Updated after the commit and before the
    /// events are published, which is what lets a watch "from now" start without a gap.
    pub revision: AtomicI64,
    /// Fan-out of committed events to watchers.
    pub hub: Arc<Hub>,
}

/// A change to one key.
#[derive(Debug)]
pub enum WriteOp {
    Create {
        key: Bytes,
        value: Bytes,
    },
    Update {
        key: Bytes,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: Bytes,
        expected: Option<Revision>,
    },
}

/// What a successful write returns.
#[derive(Debug)]
pub enum Outcome {
    Written(Revision),
    Deleted(Deleted),
}

/// A message to the writer thread.
#[derive(Debug)]
pub enum Request {
    Write {
        op: WriteOp,
        guard: Option<Guard>,
        reply: oneshot::Sender<Result<Outcome>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Close the connection and release the data dir lock, then answer.
    Close { reply: oneshot::Sender<()> },
}

/// Starts the writer thread. It owns `conn` and `lock` and ends when every sender is
/// dropped or a [`Request::Close`] arrives.
pub fn spawn(
    mut conn: Connection,
    lock: File,
    requests: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    max_batch: usize,
) -> std::io::Result<()> {
    let checkpoints = WalCheckpoints::install(&mut conn).map_err(std::io::Error::other)?;
    let writer = Writer {
        conn,
        checkpoints,
        shared,
        max_batch: max_batch.max(1),
    };
    std::thread::Builder::new()
        .name("mast-store-writer".into())
        .spawn(move || {
            let hub = writer.shared.hub.clone();
            let close_reply = writer.run(requests);
            // No more writes: end every watch.
            hub.close();
            // Close the database before releasing the lock, then answer `close()`.
            drop(lock);
            if let Some(reply) = close_reply {
                let _ = reply.send(());
            }
        })?;
    Ok(())
}

struct Writer {
    conn: Connection,
    checkpoints: WalCheckpoints,
    shared: Arc<Shared>,
    max_batch: usize,
}

/// A write taken off the channel, not yet applied.
type QueuedWrite = (WriteOp, Option<Guard>, oneshot::Sender<Result<Outcome>>);

/// A write waiting for the batch's commit.
struct Pending {
    reply: oneshot::Sender<Result<Outcome>>,
    result: Result<Outcome>,
}

/// Why a single write in a batch did not apply.
enum Rejection {
    /// The caller's mistake or a lost race: answer this caller, keep the batch.
    Refused(Error),
    /// The database failed: the whole batch is rolled back.
    Database(rusqlite::Error),
}

impl From<rusqlite::Error> for Rejection {
    fn from(e: rusqlite::Error) -> Self {
        Rejection::Database(e)
    }
}

/// The newest row of a key.
struct Latest {
    revision: Revision,
    deleted: bool,
    create_revision: Revision,
    value: Bytes,
}

impl Latest {
    fn live(self) -> Option<Latest> {
        (!self.deleted).then_some(self)
    }
}

impl Writer {
    /// The main loop; returns the reply channel of a close request, if that ended it.
    fn run(mut self, mut requests: mpsc::Receiver<Request>) -> Option<oneshot::Sender<()>> {
        let mut writes = Vec::with_capacity(self.max_batch);
        let mut compactions = Vec::new();
        while let Some(first) = requests.blocking_recv() {
            let mut close = None;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Write { op, guard, reply } => writes.push((op, guard, reply)),
                    Request::Compact { revision, reply } => compactions.push((revision, reply)),
                    Request::Close { reply } => {
                        close = Some(reply);
                        break;
                    }
                }
                if writes.len() < self.max_batch {
                    next = requests.try_recv().ok();
                }
            }
            if !writes.is_empty() {
                self.commit_batch(&mut writes);
            }
            for (revision, reply) in compactions.drain(..) {
                let _ = reply.send(self.compact(revision));
            }
            // Everyone this round is answered: copying the WAL back now delays no one
            // but the writes that queue meanwhile.
            self.checkpoints.run_if_due(&self.conn);
            if close.is_some() {
                return close;
            }
        }
        None
    }

    /// Applies `writes` in one transaction, commits once, publishes, answers.
    fn commit_batch(&mut self, writes: &mut Vec<QueuedWrite>) {
        let mut pending = Vec::with_capacity(writes.len());
        let mut events = Vec::with_capacity(writes.len());
        let committed = self.apply_batch(writes.drain(..), &mut pending, &mut events);
        match committed {
            Ok(last_revision) => {
                if let Some(revision) = last_revision {
                    self.shared.revision.store(revision, Ordering::SeqCst);
                    self.shared.hub.publish(events);
                }
                for p in pending {
                    let _ = p.reply.send(p.result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "sqlite write batch failed; rolled back");
                for p in pending {
                    let _ = p.reply.send(Err(Error::Backend(format!("sqlite: {e}"))));
                }
            }
        }
    }

    /// Returns the revision of the last write applied, if any applied.
    fn apply_batch(
        &mut self,
        writes: impl Iterator<Item = QueuedWrite>,
        pending: &mut Vec<Pending>,
        events: &mut Vec<Event>,
    ) -> rusqlite::Result<Option<Revision>> {
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut next_revision = schema::last_revision(&txn)? + 1;
        let mut failure = None;
        for (op, guard, reply) in writes {
            if failure.is_some() {
                // The batch is lost anyway; answer everyone with the database error.
                pending.push(Pending {
                    reply,
                    result: Err(Error::Backend("batch rolled back".into())),
                });
                continue;
            }
            let result = match apply(&txn, op, guard.as_ref(), next_revision) {
                Ok((outcome, event)) => {
                    next_revision += 1;
                    events.push(event);
                    Ok(outcome)
                }
                Err(Rejection::Refused(e)) => Err(e),
                Err(Rejection::Database(e)) => {
                    let message = e.to_string();
                    failure = Some(e);
                    Err(Error::Backend(message))
                }
            };
            pending.push(Pending { reply, result });
        }
        if let Some(e) = failure {
            return Err(e); // dropping `txn` rolls back
        }
        if events.is_empty() {
            return Ok(None); // dropping `txn` rolls back a transaction that wrote nothing
        }
        txn.commit()?;
        Ok(Some(next_revision - 1))
    }

    /// Deletes history that no read at or after `target` and no watch from `target` on
    /// can need: every row superseded by a row below `target`, and every tombstone below
    /// `target`. The row at `target` and the latest row of every key as of `target` stay,
    /// as does each one's predecessor if its successor is at or after `target` (a watch
    /// replaying that successor needs its previous value).
    fn compact(&mut self, target: Revision) -> Result<()> {
        let db = |e: rusqlite::Error| Error::Backend(format!("sqlite compaction: {e}"));
        let (current, mut compacted) = {
            let txn = self.conn.transaction().map_err(db)?;
            (
                schema::last_revision(&txn).map_err(db)?,
                schema::compact_revision(&txn).map_err(db)?,
            )
        };
        if target > current {
            return Err(Error::FutureRevision {
                requested_revision: target,
                current_revision: current,
            });
        }
        if target <= compacted {
            return Err(Error::Compacted {
                requested_revision: target,
                compact_revision: compacted,
            });
        }
        while compacted < target {
            let upto = target.min(compacted + COMPACTION_CHUNK);
            let txn = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            txn.execute(
                "DELETE FROM log WHERE id IN (
                     SELECT prev_revision FROM log
                     WHERE id >= ?1 AND id < ?2 AND prev_revision > 0)",
                params![compacted, upto],
            )
            .map_err(db)?;
            txn.execute(
                "DELETE FROM log WHERE id >= ?1 AND id < ?2 AND deleted = 1",
                params![compacted, upto],
            )
            .map_err(db)?;
            txn.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'compact_revision'",
                params![upto],
            )
            .map_err(db)?;
            txn.commit().map_err(db)?;
            compacted = upto;
        }
        tracing::debug!(revision = target, "sqlite store compacted");
        Ok(())
    }
}

/// Applies one write at `revision` inside the batch transaction.
fn apply(
    conn: &Connection,
    op: WriteOp,
    guard: Option<&Guard>,
    revision: Revision,
) -> std::result::Result<(Outcome, Event), Rejection> {
    if let Some(guard) = guard {
        check_guard(conn, guard)?;
    }
    match op {
        WriteOp::Create { key, value } => {
            let latest = latest(conn, &key)?;
            if latest.as_ref().is_some_and(|l| !l.deleted) {
                return Err(Rejection::Refused(Error::AlreadyExists {
                    key: key_text(&key),
                }));
            }
            // A re-create points at the tombstone, keeping (name, prev_revision) unique.
            let prev_revision = latest.map_or(0, |l| l.revision);
            insert(
                conn,
                revision,
                &key,
                true,
                false,
                revision,
                prev_revision,
                &value,
            )?;
            let kv = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            let event = Event {
                kind: EventKind::Put,
                kv,
                prev: None,
            };
            Ok((Outcome::Written(revision), event))
        }
        WriteOp::Update {
            key,
            value,
            expected,
        } => {
            let prev = live_or_not_found(conn, &key)?;
            check_expected(&key, expected, prev.revision)?;
            let create_revision = prev.create_revision;
            insert(
                conn,
                revision,
                &key,
                false,
                false,
                create_revision,
                prev.revision,
                &value,
            )?;
            let prev = prev_kv(&key, prev);
            let kv = KeyValue {
                key,
                value,
                create_revision,
                mod_revision: revision,
            };
            let event = Event {
                kind: EventKind::Put,
                kv,
                prev: Some(prev),
            };
            Ok((Outcome::Written(revision), event))
        }
        WriteOp::Delete { key, expected } => {
            let prev = live_or_not_found(conn, &key)?;
            if let Some(expected) = expected {
                check_expected(&key, expected, prev.revision)?;
            }
            let empty = Bytes::new();
            insert(
                conn,
                revision,
                &key,
                false,
                true,
                prev.create_revision,
                prev.revision,
                &empty,
            )?;
            let prev = prev_kv(&key, prev);
            let kv = KeyValue {
                key,
                value: empty,
                create_revision: 0,
                mod_revision: revision,
            };
            let event = Event {
                kind: EventKind::Delete,
                kv,
                prev: Some(prev.clone()),
            };
            Ok((Outcome::Deleted(Deleted { revision, prev }), event))
        }
    }
}

fn check_guard(conn: &Connection, guard: &Guard) -> std::result::Result<(), Rejection> {
    let current = latest(conn, &guard.key)?
        .and_then(Latest::live)
        .map_or(0, |l| l.revision);
    if current != guard.mod_revision {
        return Err(Rejection::Refused(Error::GuardFailed {
            key: key_text(&guard.key),
            expected_revision: guard.mod_revision,
            current_revision: current,
        }));
    }
    Ok(())
}

fn check_expected(
    key: &[u8],
    expected: Revision,
    current: Revision,
) -> std::result::Result<(), Rejection> {
    if expected != current {
        return Err(Rejection::Refused(Error::Conflict {
            key: key_text(key),
            expected_revision: expected,
            current_revision: current,
        }));
    }
    Ok(())
}

fn live_or_not_found(conn: &Connection, key: &[u8]) -> std::result::Result<Latest, Rejection> {
    latest(conn, key)?
        .and_then(Latest::live)
        .ok_or_else(|| Rejection::Refused(Error::NotFound { key: key_text(key) }))
}

fn prev_kv(key: &Bytes, prev: Latest) -> KeyValue {
    KeyValue {
        key: key.clone(),
        value: prev.value,
        create_revision: prev.create_revision,
        mod_revision: prev.revision,
    }
}

/// The newest row of `key`, live or tombstone. `prev_revision` grows along a key's
/// history, so the unique index finds it in one seek.
fn latest(conn: &Connection, key: &[u8]) -> rusqlite::Result<Option<Latest>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, deleted, create_revision, value FROM log
         WHERE name = ?1 ORDER BY prev_revision DESC LIMIT 1",
    )?;
    stmt.query_row([key], |row| {
        Ok(Latest {
            revision: row.get(0)?,
            deleted: row.get(1)?,
            create_revision: row.get(2)?,
            value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
        })
    })
    .optional()
}

#[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
fn insert(
    conn: &Connection,
    revision: Revision,
    key: &[u8],
    created: bool,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: &[u8],
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    stmt.execute(params![
        revision,
        key,
        created,
        deleted,
        create_revision,
        prev_revision,
        value
    ])?;
    Ok(())
}
