//! Automatic compaction: keep a time window of history, drop the rest.
//!
//! Every `interval` the compactor notes the current revision. It then compacts up to the
//! newest revision noted at least `window` ago. Under steady churn the retained history is
//! therefore about `rate × window` rows, and SQLite reuses the freed pages, so the file
//! stays bounded. Samples live in memory only: after a restart, history is kept for one
//! more window before compaction resumes, which errs on the side of keeping.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use tokio::time::Instant;

use super::Inner;
use crate::Store;
use crate::error::Error;

/// How much history the SQLite store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// History younger than this is kept (default 5 minutes, as the Kubernetes API server
    /// compacts etcd).
    pub window: Duration,
    /// How often to check (default: a tenth of the window, at least 1 s, at most 30 s).
    pub interval: Duration,
}

impl CompactionPolicy {
    /// A policy keeping `window` of history, checking ten times per window.
    pub fn with_window(window: Duration) -> Self {
        let interval = (window / 10).clamp(Duration::from_millis(10), Duration::from_secs(30));
        CompactionPolicy { window, interval }
    }
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy::with_window(Duration::from_secs(5 * 60))
    }
}

/// Runs until the store is dropped.
pub async fn run(store: Weak<Inner>, policy: CompactionPolicy) {
    let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut compacted = 0;
    let mut ticker = tokio::time::interval(policy.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = store.upgrade() else { return };
        let store = super::SqliteStore { inner };
        let now = Instant::now();
        let Ok(revision) = store.current_revision().await else {
            continue;
        };
        samples.push_back((now, revision));
        // Keep exactly one sample at least `window` old: the newest such, our target.
        while samples.len() >= 2 && now.duration_since(samples[1].0) >= policy.window {
            samples.pop_front();
        }
        let Some(&(taken, target)) = samples.front() else {
            continue;
        };
        if now.duration_since(taken) < policy.window || target <= compacted {
            continue;
        }
        match store.compact(target).await {
            Ok(()) => compacted = target,
            Err(Error::Compacted {
                compact_revision, ..
            }) => compacted = compact_revision,
            Err(e) => tracing::warn!(error = %e, revision = target, "automatic compaction failed"),
        }
    }
}
