//! Batching of pod-driven syncs (upstream's `--endpoint-updates-batch-period`): the
//! first pod change of a service schedules one sync a short period later; changes
//! until that sync starts ride along with it. A rollout of many pods thus costs a few
//! writes per service, not one per pod event.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::runtime::{ObjectKey, WorkQueue};

/// How long pod changes of one service gather before it is synced.
pub(crate) const PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Batch {
    period: Duration,
    /// Services with a sync scheduled that has not started yet.
    pending: Mutex<HashSet<ObjectKey>>,
}

impl Batch {
    pub(crate) fn new(period: Duration) -> Self {
        Batch {
            period,
            pending: Mutex::new(HashSet::new()),
        }
    }

    /// Schedules a sync of `key` unless one is already scheduled.
    pub(crate) fn add(&self, queue: &WorkQueue<ObjectKey>, key: ObjectKey) {
        if self.lock().insert(key.clone()) {
            queue.add_after(key, self.period);
        }
    }

    /// Called as a sync of `key` starts (before it reads the caches): later changes
    /// need a sync of their own.
    pub(crate) fn started(&self, key: &ObjectKey) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<ObjectKey>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_makes_one_sync_after_the_period() {
        let queue = WorkQueue::new();
        let batch = Batch::new(PERIOD);
        let key = ObjectKey::new("ns", "web");
        for _ in 0..10 {
            batch.add(&queue, key.clone());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(queue.is_empty(), "nothing before the period ends");
        tokio::time::sleep(PERIOD).await;
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.next().await, Some(key.clone()));
        batch.started(&key);
        queue.done(&key);
        // Timers of the burst must not bring the key back on their own.
        tokio::time::sleep(PERIOD * 3).await;
        assert!(queue.is_empty());
        // A change after the sync started schedules another.
        batch.add(&queue, key.clone());
        tokio::time::sleep(PERIOD * 2).await;
        assert_eq!(queue.len(), 1);
    }
}
