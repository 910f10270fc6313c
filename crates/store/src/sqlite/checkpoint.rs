//! When the WAL is copied back into the database file.
//!
//! SQLite's own auto-checkpoint runs inside the COMMIT that takes the WAL past its
//! threshold, so that one commit also waits for the copy and the database file's fsync
//! (1.4 to 4 ms in the store benchmark, against about 0.3 ms for a commit), and with it
//! the callers it answers and the watchers it feeds. The writer instead counts the
//! WAL's frames through SQLite's WAL hook and checkpoints once the batch that crossed
//! the threshold has been answered and published. The copy is not needed for
//! durability: the WAL is already fsynced.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use rusqlite::Connection;

/// Checkpoint once the WAL holds this many frames: about 4 MiB, SQLite's default.
const CHECKPOINT_FRAMES: i32 = 1000;

/// The WAL's size as the last commit left it, in frames.
#[derive(Debug)]
pub struct WalCheckpoints {
    frames: Arc<AtomicI32>,
}

impl WalCheckpoints {
    /// Takes over checkpointing on `conn` (the writer's), replacing SQLite's own.
    pub fn install(conn: &mut Connection) -> rusqlite::Result<Self> {
        let frames = Arc::new(AtomicI32::new(0));
        let seen = frames.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, wal_frames| {
            seen.store(wal_frames, Ordering::Relaxed);
            Ok(())
        }))?;
        Ok(WalCheckpoints { frames })
    }

    /// Checkpoints if the WAL has reached the threshold. Passive: it copies what no
    /// reader still needs, and the next write restarts the WAL from its beginning once
    /// everything was copied. Should readers hold it back, the next commit finds the
    /// WAL still over the threshold and this tries again, as SQLite's own would.
    pub fn run_if_due(&self, conn: &Connection) {
        if self.frames.load(Ordering::Relaxed) < CHECKPOINT_FRAMES {
            return;
        }
        self.frames.store(0, Ordering::Relaxed);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite WAL checkpoint failed; again after the next commit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_bytes(dir: &tempfile::TempDir) -> u64 {
        std::fs::metadata(dir.path().join("t.db")).map_or(0, |m| m.len())
    }

    #[test]
    fn the_wal_is_copied_back_only_when_asked_and_due() -> rusqlite::Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = Connection::open(dir.path().join("t.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch("CREATE TABLE t (v BLOB)")?;
        let checkpoints = WalCheckpoints::install(&mut conn)?;
        let before = database_bytes(&dir);
        let page = vec![7u8; 4096];
        let mut commits = 0u64;
        while checkpoints.frames.load(Ordering::Relaxed) < CHECKPOINT_FRAMES {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [&page])?;
            commits += 1;
            assert!(
                commits < 5 * CHECKPOINT_FRAMES as u64,
                "the WAL hook never counted"
            );
        }
        assert_eq!(
            database_bytes(&dir),
            before,
            "no commit checkpointed on its own"
        );
        checkpoints.run_if_due(&conn);
        assert!(
            database_bytes(&dir) > before + commits * 4096,
            "the checkpoint copied every row into the database file"
        );
        assert_eq!(checkpoints.frames.load(Ordering::Relaxed), 0);
        let copied = database_bytes(&dir);
        conn.execute("INSERT INTO t (v) VALUES (?1)", [&page])?;
        checkpoints.run_if_due(&conn);
        assert_eq!(
            database_bytes(&dir),
            copied,
            "not due again after one commit"
        );
        Ok(())
    }
}
