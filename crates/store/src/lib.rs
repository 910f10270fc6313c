//! The store: a revisioned key-value store with watch, the one thing the API server
//! persists into.
//!
//! # Layout
//! - [`Store`] (this file): the trait every backend implements. Semantics follow etcd's
//!   MVCC model: one global revision counter, per-key create and mod revisions,
//!   compare-and-swap on the mod revision, reads at a past revision, ordered watches
//!   from a past revision, and compaction of old history.
//! - [`error`]: the one error enum shared by all backends.
//! - [`types`]: keys, values, events, guards, list pages.
//! - [`sqlite`]: the embedded default, an append-only log table in a SQLite file with
//!   group commit and one in-process broadcast for watchers.
//! - [`etcd`]: a real etcd cluster through `etcd-client`.
//! - [`any`]: enum dispatch over the two, chosen from a datastore endpoint string.
//! - [`testing`]: the conformance suite every backend runs, and a real-etcd launcher
//!   for tests and benchmarks.

pub mod any;
pub mod error;
pub mod etcd;
pub mod keys;
pub mod sqlite;
pub mod testing;
pub mod types;

use std::future::Future;

use bytes::Bytes;
use futures::stream::BoxStream;

pub use any::{AnyStore, DatastoreConfig};
pub use error::{Error, Result, Revision};
pub use etcd::{EtcdConfig, EtcdStore};
pub use sqlite::{CompactionPolicy, SqliteConfig, SqliteStore};
pub use types::{Deleted, Event, EventKind, Guard, KeyValue, ListPage};

/// The largest value a store accepts: 1.5 MiB, etcd's default request limit (which is
/// also what Kubernetes objects are held to).
pub const MAX_VALUE_SIZE: usize = 1536 * 1024;

/// A stream of watch events in strictly increasing revision order. An `Err` item (for
/// example [`Error::Compacted`]) is always the last item.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// A revisioned key-value store with watch. Every backend passes the conformance suite
/// in [`testing::conformance`]; see there for the exact contract.
///
/// Keys are arbitrary non-empty bytes; by convention `/registry/<resource>/<ns>/<name>`.
/// A prefix matches by bytes, so the prefix `/a/` never matches `/ab`.
pub trait Store: Clone + Send + Sync + 'static {
    /// The current value of `key`. [`Error::NotFound`] if absent.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<KeyValue>> + Send;

    /// Keys under `prefix` in ascending order, as of `at_revision` (0: the latest).
    /// At most `limit` items (0: no limit), starting after the key `start_after` if given.
    /// Pass the returned [`ListPage::revision`] back as `at_revision` to page through one
    /// consistent snapshot. [`Error::Compacted`] or [`Error::FutureRevision`] if the
    /// revision is no longer, or not yet, readable.
    fn list(
        &self,
        prefix: &[u8],
        at_revision: Revision,
        limit: usize,
        start_after: Option<&[u8]>,
    ) -> impl Future<Output = Result<ListPage>> + Send;

    /// The number of keys under `prefix` now.
    fn count(&self, prefix: &[u8]) -> impl Future<Output = Result<u64>> + Send;

    /// Creates `key`; returns the revision of the write. [`Error::AlreadyExists`] if it
    /// exists.
    fn create(
        &self,
        key: &[u8],
        value: Bytes,
        guard: Option<Guard>,
    ) -> impl Future<Output = Result<Revision>> + Send;

    /// Replaces the value of `key` if its mod revision is still `expected_mod_revision`;
    /// returns the revision of the write. [`Error::Conflict`] carries the current mod
    /// revision if it moved; [`Error::NotFound`] if the key is gone.
    fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_mod_revision: Revision,
        guard: Option<Guard>,
    ) -> impl Future<Output = Result<Revision>> + Send;

    /// Deletes `key`, only if its mod revision is `expected_mod_revision` when given.
    fn delete(
        &self,
        key: &[u8],
        expected_mod_revision: Option<Revision>,
        guard: Option<Guard>,
    ) -> impl Future<Output = Result<Deleted>> + Send;

    /// Watches keys under `prefix`, delivering every change with revision
    /// `>= from_revision` in order (0: changes after the current revision). A start
    /// revision older than the compaction point yields [`Error::Compacted`], either from
    /// this call or as the stream's only item.
    fn watch(
        &self,
        prefix: &[u8],
        from_revision: Revision,
    ) -> impl Future<Output = Result<WatchStream>> + Send;

    /// The revision of the latest write.
    fn current_revision(&self) -> impl Future<Output = Result<Revision>> + Send;

    /// Discards history before `revision`: reads below it and watches starting below it
    /// fail with [`Error::Compacted`] afterwards. Compacting at or below the current
    /// compaction point is [`Error::Compacted`]; above the current revision,
    /// [`Error::FutureRevision`].
    fn compact(&self, revision: Revision) -> impl Future<Output = Result<()>> + Send;
}

/// Rejects values over [`MAX_VALUE_SIZE`] before they reach a backend.
pub(crate) fn check_value_size(key: &[u8], value: &Bytes) -> Result<()> {
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::TooLarge {
            key: error::key_text(key),
            size: value.len(),
            limit: MAX_VALUE_SIZE,
        });
    }
    Ok(())
}
