//! What a ReplicaSet is waiting to see in the pod cache (upstream's
//! `UIDTrackingControllerExpectations`).
//!
//! The pod cache lags behind the controller's own writes: right after creating three
//! pods, a reconcile that counted pods in the cache would see none and create three
//! more. So before creating N pods a reconcile records "expect N additions", and the pod
//! handlers count them off as the watch delivers them; deletions likewise, by pod key
//! so that a pod deleted once (first a deletionTimestamp, then gone) counts once. While
//! a ReplicaSet waits, reconciles only update its status. A record that waits longer
//! than `TIMEOUT` (a watch event lost for good) stops blocking.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::runtime::ObjectKey;

/// How long a ReplicaSet waits for its own writes to show before acting anyway
/// (upstream's `ExpectationsTimeout`).
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Record {
    /// Creations not seen yet (may go below zero: a pod seen twice, say after a relist).
    adds: i64,
    /// Deletions not seen yet.
    deletes: i64,
    /// Pods whose deletion is awaited; each counts once.
    deleting: HashSet<ObjectKey>,
    since: Instant,
}

/// Expectations of every ReplicaSet, by the ReplicaSet's key; shared by the handlers
/// (which observe) and the workers (which expect and check).
#[derive(Debug, Default)]
pub struct Expectations {
    records: Mutex<HashMap<ObjectKey, Record>>,
}

impl Expectations {
    /// Before creating `count` pods.
    pub fn expect_creations(&self, rs: &ObjectKey, count: usize) {
        self.set(rs, count, HashSet::new());
    }

    /// Before deleting these pods.
    pub fn expect_deletions(&self, rs: &ObjectKey, pods: impl IntoIterator<Item = ObjectKey>) {
        self.set(rs, 0, pods.into_iter().collect());
    }

    fn set(&self, rs: &ObjectKey, adds: usize, deleting: HashSet<ObjectKey>) {
        let record = Record {
            adds: i64::try_from(adds).unwrap_or(i64::MAX),
            deletes: i64::try_from(deleting.len()).unwrap_or(i64::MAX),
            deleting,
            since: Instant::now(),
        };
        self.lock().insert(rs.clone(), record);
    }

    /// A pod of the ReplicaSet appeared (or a creation failed, so will never appear).
    pub fn creation_observed(&self, rs: &ObjectKey) {
        if let Some(record) = self.lock().get_mut(rs) {
            record.adds -= 1;
        }
    }

    /// A pod of the ReplicaSet went or started going (or its deletion failed); only
    /// pods whose deletion is awaited count, each once.
    pub fn deletion_observed(&self, rs: &ObjectKey, pod: &ObjectKey) {
        if let Some(record) = self.lock().get_mut(rs)
            && record.deleting.remove(pod)
        {
            record.deletes -= 1;
        }
    }

    /// `None` when the ReplicaSet may act (nothing awaited, everything seen, or the
    /// wait timed out); otherwise how long until the wait times out.
    pub fn pending(&self, rs: &ObjectKey) -> Option<Duration> {
        let records = self.lock();
        let record = records.get(rs)?;
        if record.adds <= 0 && record.deletes <= 0 {
            return None;
        }
        TIMEOUT
            .checked_sub(record.since.elapsed())
            .filter(|d| !d.is_zero())
    }

    /// Forgets the ReplicaSet (it was deleted).
    pub fn forget(&self, rs: &ObjectKey) {
        self.lock().remove(rs);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs() -> ObjectKey {
        ObjectKey::new("ns", "web")
    }

    fn pod(name: &str) -> ObjectKey {
        ObjectKey::new("ns", name)
    }

    #[test]
    fn nothing_recorded_is_satisfied() {
        let e = Expectations::default();
        assert_eq!(e.pending(&rs()), None);
        // Observations without a record change nothing.
        e.creation_observed(&rs());
        e.deletion_observed(&rs(), &pod("a"));
        assert_eq!(e.pending(&rs()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn creations_are_counted_off() {
        let e = Expectations::default();
        e.expect_creations(&rs(), 3);
        for _ in 0..2 {
            assert_eq!(e.pending(&rs()), Some(TIMEOUT));
            e.creation_observed(&rs());
        }
        assert!(e.pending(&rs()).is_some());
        e.creation_observed(&rs());
        assert_eq!(e.pending(&rs()), None);
        // Seen once too often (a relist): still satisfied.
        e.creation_observed(&rs());
        assert_eq!(e.pending(&rs()), None);
    }

    #[test]
    fn deletions_count_once_per_awaited_pod() {
        let e = Expectations::default();
        e.expect_deletions(&rs(), [pod("a"), pod("b")]);
        e.deletion_observed(&rs(), &pod("a"));
        // The same pod again (deletionTimestamp first, then gone) and a stranger.
        e.deletion_observed(&rs(), &pod("a"));
        e.deletion_observed(&rs(), &pod("other"));
        assert!(e.pending(&rs()).is_some());
        e.deletion_observed(&rs(), &pod("b"));
        assert_eq!(e.pending(&rs()), None);
    }

    #[test]
    fn records_are_per_replica_set() {
        let e = Expectations::default();
        let other = ObjectKey::new("ns", "api");
        e.expect_creations(&rs(), 1);
        assert!(e.pending(&rs()).is_some());
        assert_eq!(e.pending(&other), None);
        e.creation_observed(&other);
        assert!(e.pending(&rs()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_times_out() {
        let e = Expectations::default();
        e.expect_creations(&rs(), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(e.pending(&rs()), Some(TIMEOUT - Duration::from_secs(60)));
        tokio::time::advance(TIMEOUT).await;
        assert_eq!(e.pending(&rs()), None);
    }

    #[test]
    fn a_new_expectation_replaces_the_old_and_forget_clears() {
        let e = Expectations::default();
        e.expect_deletions(&rs(), [pod("a")]);
        e.expect_creations(&rs(), 1);
        // The old deletion no longer counts.
        e.deletion_observed(&rs(), &pod("a"));
        assert!(e.pending(&rs()).is_some());
        e.forget(&rs());
        assert_eq!(e.pending(&rs()), None);
    }

    #[test]
    fn expecting_nothing_is_satisfied() {
        let e = Expectations::default();
        e.expect_creations(&rs(), 0);
        assert_eq!(e.pending(&rs()), None);
        e.expect_deletions(&rs(), []);
        assert_eq!(e.pending(&rs()), None);
    }
}
