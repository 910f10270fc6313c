//! The one error type every backend speaks.
//!
//! Callers (the API server above all) map these onto Kubernetes `Status` codes, so each
//! variant carries the context needed for a precise message: the key and the revisions
//! involved.

/// Revision numbers are etcd's: a global, strictly increasing 64-bit counter.
pub type Revision = i64;

/// Errors returned by every [`crate::Store`] operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The key does not exist (or was deleted).
    #[error("key {key:?} not found")]
    NotFound {
        /// The key that was looked up.
        key: String,
    },

    /// `create` found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key that was to be created.
        key: String,
    },

    /// A compare-and-swap lost: the key's mod revision moved away from the expected one.
    #[error(
        "key {key:?} was modified: expected mod revision {expected_revision}, current {current_revision}"
    )]
    Conflict {
        /// The key that was to be written.
        key: String,
        /// The mod revision the caller expected.
        expected_revision: Revision,
        /// The key's mod revision now.
        current_revision: Revision,
    },

    /// The write's extra guard failed: the guard key is no longer at the given mod
    /// revision (0 means it no longer exists). Used for leader fencing.
    #[error(
        "guard on key {key:?} failed: expected mod revision {expected_revision}, current {current_revision}"
    )]
    GuardFailed {
        /// The guard key.
        key: String,
        /// The mod revision the guard required.
        expected_revision: Revision,
        /// The guard key's mod revision now (0 if absent).
        current_revision: Revision,
    },

    /// The requested revision is older than the oldest one still kept.
    #[error(
        "revision {requested_revision} has been compacted (compacted up to {compact_revision})"
    )]
    Compacted {
        /// The revision that was asked for (0 if the backend did not say).
        requested_revision: Revision,
        /// The revision history has been compacted up to.
        compact_revision: Revision,
    },

    /// The requested revision has not happened yet.
    #[error("revision {requested_revision} is in the future (current {current_revision})")]
    FutureRevision {
        /// The revision that was asked for.
        requested_revision: Revision,
        /// The store's current revision (0 if the backend did not say).
        current_revision: Revision,
    },

    /// The value exceeds [`crate::MAX_VALUE_SIZE`].
    #[error("value for key {key:?} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The key that was to be written.
        key: String,
        /// The size of the rejected value.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// The backend cannot be reached right now; the operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),

    /// Anything else the backend reported: a bug, a corrupt file, a full disk.
    #[error("store backend error: {0}")]
    Backend(String),
}

impl Error {
    /// True when the same call may succeed if simply retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

/// Result alias for store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Keys are bytes; errors show them as (lossy) text, which is what they are in practice.
pub(crate) fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}
