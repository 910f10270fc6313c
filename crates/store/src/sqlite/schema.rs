//! The on-disk layout and connection settings.
//!
//! One append-only table, `log`, holds every version of every key. Its `id` is the
//! global revision. The newest row is never compacted away (compaction only deletes rows
//! below the compaction point, which is at most the newest revision), so `MAX(id)` is
//! the current revision and an id is never reused: the revision never goes backwards.
//! (`AUTOINCREMENT` would guarantee the same at the cost of one more page written per
//! commit.) A row is a create, an
//! update or a tombstone; `prev_revision` points at the key's previous row, which gives
//! both the previous value for watch events and, through a unique index on
//! `(name, prev_revision)`, the kine guarantee that two writes based on the same
//! revision of a key collide inside the database.
//!
//! Durability: WAL with `synchronous = FULL`, so the WAL is fsynced at every commit and
//! an acknowledged write survives power loss, not only a process crash. `NORMAL` would
//! be faster per transaction but can lose the last commits on power loss; group commit
//! (one transaction, one fsync, for every write waiting) recovers the throughput instead.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Bumped when the layout changes incompatibly.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id              INTEGER PRIMARY KEY,
    name            BLOB    NOT NULL,
    created         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS log_name_prev ON log (name, prev_revision);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compact_revision', 0);
";

/// How long a connection waits on a lock before failing. Only a WAL checkpoint or
/// recovery holds one for long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the writer connection, creating the file and schema if needed.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The writer checkpoints every ~4 MiB of WAL (see `checkpoint`); the WAL is truncated
    // back to that size when it restarts, so the file stays bounded under steady churn.
    conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
    conn.execute_batch(SCHEMA)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 0 {
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    } else if version != SCHEMA_VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "database schema version {version}, this build understands {SCHEMA_VERSION}"
            )),
        ));
    }
    Ok(conn)
}

/// Opens a read-only connection on an existing database.
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The highest revision ever assigned (0 for a new database). Inside a transaction this
/// is the revision of that transaction's snapshot.
pub fn last_revision(conn: &Connection) -> rusqlite::Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM log")?;
    stmt.query_row([], |row| row.get(0))
}

/// The revision history has been compacted up to.
pub fn compact_revision(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT value FROM meta WHERE name = 'compact_revision'",
        [],
        |row| row.get(0),
    )
}
