//! Reads: a small pool of read-only connections and the queries that run on them.
//!
//! WAL lets readers run beside the writer without blocking it. Every multi-statement read
//! runs in one transaction, so the revision it reports and the rows it returns come from
//! the same snapshot.

use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter, types::Value};
use tokio::sync::Semaphore;

use super::schema;
use crate::error::{Error, Result, Revision, key_text};
use crate::keys::{key_successor, prefix_end};
use crate::types::{Event, EventKind, KeyValue, ListPage};

/// Read-only connections, opened on demand up to a limit and reused.
#[derive(Debug)]
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadPool {
    pub fn new(path: PathBuf, size: usize) -> Self {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// Runs `query` on a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("sqlite read pool closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let mut conn = match idle {
                Some(conn) => conn,
                None => match schema::open_reader(&path) {
                    Ok(conn) => conn,
                    Err(e) => return (None, Err(sqlite_error(e))),
                },
            };
            let result = query(&mut conn);
            (Some(conn), result)
        })
        .await
        .map_err(|e| Error::Backend(format!("sqlite read task failed: {e}")))?;
        if let (Some(conn), Ok(mut idle)) = (conn, self.idle.lock()) {
            idle.push(conn);
        }
        result
    }
}

pub fn sqlite_error(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Error::Unavailable(format!("sqlite: {e}"))
        }
        other => Error::Backend(format!("sqlite: {other}")),
    }
}

/// The key range a prefix covers, as SQL bounds.
struct Range {
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl Range {
    fn of_prefix(prefix: &[u8]) -> Self {
        Range {
            lower: prefix.to_vec(),
            upper: prefix_end(prefix),
        }
    }

    fn is_empty(&self) -> bool {
        self.upper.as_ref().is_some_and(|u| self.lower >= *u)
    }

    /// `AND <column> < ?n` when bounded above; the caller binds [`Range::upper`].
    fn upper_clause(&self, column: &str, param: usize) -> String {
        match self.upper {
            Some(_) => format!("AND {column} < ?{param}"),
            None => String::new(),
        }
    }

    fn push_upper(&self, params: &mut Vec<Value>) {
        if let Some(upper) = &self.upper {
            params.push(Value::Blob(upper.clone()));
        }
    }
}

/// The snapshot a read runs at, checked against the retained history.
fn resolve_revision(conn: &Connection, at_revision: Revision) -> Result<Revision> {
    let current = schema::last_revision(conn).map_err(sqlite_error)?;
    let compacted = schema::compact_revision(conn).map_err(sqlite_error)?;
    let at = if at_revision <= 0 {
        current
    } else {
        at_revision
    };
    if at > current {
        return Err(Error::FutureRevision {
            requested_revision: at,
            current_revision: current,
        });
    }
    if at < compacted {
        return Err(Error::Compacted {
            requested_revision: at,
            compact_revision: compacted,
        });
    }
    Ok(at)
}

pub fn get(conn: &mut Connection, key: &[u8]) -> Result<KeyValue> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, deleted, create_revision, value FROM log
             WHERE name = ?1 ORDER BY prev_revision DESC LIMIT 1",
        )
        .map_err(sqlite_error)?;
    let row = stmt
        .query_row([key], |row| {
            let deleted: bool = row.get(1)?;
            Ok((!deleted).then(|| -> rusqlite::Result<KeyValue> {
                Ok(KeyValue {
                    key: Bytes::copy_from_slice(key),
                    value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
                    create_revision: row.get(2)?,
                    mod_revision: row.get(0)?,
                })
            }))
        })
        .optional()
        .map_err(sqlite_error)?;
    match row {
        Some(Some(kv)) => kv.map_err(sqlite_error),
        _ => Err(Error::NotFound { key: key_text(key) }),
    }
}

pub fn list(
    conn: &mut Connection,
    prefix: &[u8],
    at_revision: Revision,
    limit: usize,
    start_after: Option<&[u8]>,
) -> Result<ListPage> {
    let txn = conn.transaction().map_err(sqlite_error)?;
    let revision = resolve_revision(&txn, at_revision)?;
    let mut range = Range::of_prefix(prefix);
    if let Some(after) = start_after {
        range.lower = range.lower.max(key_successor(after));
    }
    if range.is_empty() {
        return Ok(ListPage {
            items: Vec::new(),
            revision,
            more: false,
        });
    }
    // The newest row of each key at or below the snapshot revision, skipping tombstones.
    let sql = format!(
        "SELECT l.name, l.value, l.create_revision, l.id
         FROM (SELECT MAX(id) AS id FROM log
               WHERE name >= ?1 {upper} AND id <= ?2 GROUP BY name) AS newest
         JOIN log AS l ON l.id = newest.id
         WHERE l.deleted = 0
         ORDER BY l.name
         LIMIT ?3",
        upper = range.upper_clause("name", 4)
    );
    // One extra row tells whether more remain.
    let fetch = if limit == 0 { -1 } else { limit as i64 + 1 };
    let mut params = vec![
        Value::Blob(range.lower.clone()),
        Value::Integer(revision),
        Value::Integer(fetch),
    ];
    range.push_upper(&mut params);
    let mut stmt = txn.prepare_cached(&sql).map_err(sqlite_error)?;
    let mut items = stmt
        .query_map(params_from_iter(params), |row| {
            Ok(KeyValue {
                key: Bytes::from(row.get::<_, Vec<u8>>(0)?),
                value: Bytes::from(row.get::<_, Vec<u8>>(1)?),
                create_revision: row.get(2)?,
                mod_revision: row.get(3)?,
            })
        })
        .map_err(sqlite_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sqlite_error)?;
    let more = limit > 0 && items.len() > limit;
    if more {
        items.truncate(limit);
    }
    Ok(ListPage {
        items,
        revision,
        more,
    })
}

pub fn count(conn: &mut Connection, prefix: &[u8]) -> Result<u64> {
    let range = Range::of_prefix(prefix);
    let sql = format!(
        "SELECT COUNT(*)
         FROM (SELECT MAX(id) AS id FROM log WHERE name >= ?1 {upper} GROUP BY name) AS newest
         JOIN log AS l ON l.id = newest.id
         WHERE l.deleted = 0",
        upper = range.upper_clause("name", 2)
    );
    let mut params = vec![Value::Blob(range.lower.clone())];
    range.push_upper(&mut params);
    let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_error)?;
    let n: i64 = stmt
        .query_row(params_from_iter(params), |row| row.get(0))
        .map_err(sqlite_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A run of past events read for a watch that is catching up.
#[derive(Debug)]
pub struct EventChunk {
    pub events: Vec<Event>,
    /// The revision of the snapshot read.
    pub snapshot_revision: Revision,
    /// True if every event up to `snapshot_revision` was returned.
    pub complete: bool,
}

/// Events under `prefix` from revision `from` on, at most `limit` of them.
pub fn events(
    conn: &mut Connection,
    prefix: &[u8],
    from: Revision,
    limit: usize,
) -> Result<EventChunk> {
    let txn = conn.transaction().map_err(sqlite_error)?;
    let current = schema::last_revision(&txn).map_err(sqlite_error)?;
    let compacted = schema::compact_revision(&txn).map_err(sqlite_error)?;
    if from < compacted {
        return Err(Error::Compacted {
            requested_revision: from,
            compact_revision: compacted,
        });
    }
    let range = Range::of_prefix(prefix);
    // The previous value comes from the predecessor row, which compaction keeps for
    // every row at or after the compaction point. A create's predecessor, if any, is a
    // tombstone: no previous value.
    let sql = format!(
        "SELECT y.id, y.name, y.deleted, y.create_revision, y.value,
                x.id, x.create_revision, x.value
         FROM log AS y
         LEFT JOIN log AS x ON x.id = y.prev_revision AND y.created = 0
         WHERE y.id >= ?1 AND y.id <= ?2 AND y.name >= ?3 {upper}
         ORDER BY y.id
         LIMIT ?4",
        upper = range.upper_clause("y.name", 5)
    );
    let mut params = vec![
        Value::Integer(from),
        Value::Integer(current),
        Value::Blob(range.lower.clone()),
        Value::Integer(limit as i64),
    ];
    range.push_upper(&mut params);
    let mut stmt = txn.prepare_cached(&sql).map_err(sqlite_error)?;
    let events = stmt
        .query_map(params_from_iter(params), event_from_row)
        .map_err(sqlite_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sqlite_error)?;
    Ok(EventChunk {
        complete: events.len() < limit,
        events,
        snapshot_revision: current,
    })
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let revision: Revision = row.get(0)?;
    let key = Bytes::from(row.get::<_, Vec<u8>>(1)?);
    let deleted: bool = row.get(2)?;
    let prev = match row.get::<_, Option<Revision>>(5)? {
        Some(prev_revision) => Some(KeyValue {
            key: key.clone(),
            value: Bytes::from(row.get::<_, Vec<u8>>(7)?),
            create_revision: row.get(6)?,
            mod_revision: prev_revision,
        }),
        None => None,
    };
    let event = if deleted {
        Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key,
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: revision,
            },
            prev,
        }
    } else {
        Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key,
                value: Bytes::from(row.get::<_, Vec<u8>>(4)?),
                create_revision: row.get(3)?,
                mod_revision: revision,
            },
            prev,
        }
    };
    Ok(event)
}
