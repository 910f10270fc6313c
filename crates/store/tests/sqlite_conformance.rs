//! The conformance suite on the embedded SQLite backend, each case on a fresh file.

use store::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

async fn open() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = SqliteConfig::new(dir.path().join("state.db"));
    // Compaction is under the suite's control.
    config.compaction = None;
    let store = SqliteStore::open(config).await.expect("open sqlite store");
    (store, dir)
}

store::conformance_tests!(open);
