//! Plain data carried across the [`crate::Store`] trait.

use bytes::Bytes;

use crate::error::Revision;

/// One key with its value and revisions, as of some revision of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key.
    pub key: Bytes,
    /// The value (empty in the `kv` of a delete event).
    pub value: Bytes,
    /// Revision of the write that created this incarnation of the key (0 in the `kv` of
    /// a delete event).
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
}

/// A page of a prefix listing, read at one consistent revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Items in ascending key order.
    pub items: Vec<KeyValue>,
    /// The revision of the snapshot the page was read at; pass it back as `at_revision`
    /// to read the next page from the same snapshot.
    pub revision: Revision,
    /// True if more items remain after the last one returned.
    pub more: bool,
}

/// Which kind of change an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change, as delivered by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change. For a delete: the key, an empty value, create revision
    /// 0 and the revision of the delete as mod revision (etcd's convention).
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// An extra condition checked atomically with a write: "key `key` is still at mod
/// revision `mod_revision`". A `mod_revision` of 0 means "the key does not exist".
///
/// The HA control plane uses this for leader fencing: a leader's writes carry a guard on
/// its Lease, so a deposed leader cannot write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// The key whose revision is checked.
    pub key: Bytes,
    /// The mod revision the key must still have.
    pub mod_revision: Revision,
}

impl Guard {
    /// A guard requiring `key` to be at `mod_revision`.
    pub fn new(key: impl Into<Bytes>, mod_revision: Revision) -> Self {
        Guard {
            key: key.into(),
            mod_revision,
        }
    }
}

/// Result of a successful delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The revision of the delete.
    pub revision: Revision,
    /// The key as it was just before the delete.
    pub prev: KeyValue,
}
