//! The machinery every controller shares: informers (watch + cache + handlers), a work
//! queue of keys, and workers that reconcile keys while this instance leads.

pub mod informer;
pub mod queue;

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

pub use informer::{Handler, Informer, ObjectKey};
pub use queue::WorkQueue;

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Done until something changes.
    Idle,
    /// Look again after this long (a time-based condition: minReadySeconds, a grace
    /// period, a progress deadline).
    After(Duration),
}

/// One controller: a queue of keys and the reconcile that brings one key's world to
/// what it should be. Reconciles are level-based (they read the whole state from the
/// caches, never the event) and idempotent.
pub trait Reconciler: Send + Sync + 'static {
    type Key: Clone + Eq + Hash + Display + Send + Sync + 'static;

    /// The controller's name, for logs (upstream's names: "replicaset", "deployment").
    fn name(&self) -> &'static str;

    fn queue(&self) -> &WorkQueue<Self::Key>;

    /// Enqueues every key it knows of (when this instance starts leading).
    fn resync(&self);

    fn reconcile(&self, key: &Self::Key)
    -> impl Future<Output = Result<Next, crate::Error>> + Send;
}

/// Runs `workers` workers for the controller for ever; they take keys only while
/// `leading` says so (the informers keep filling the queue meanwhile, so a new leader
/// starts from a warm cache).
pub async fn run<R: Reconciler>(
    controller: Arc<R>,
    workers: usize,
    mut leading: watch::Receiver<bool>,
) {
    loop {
        if leading.wait_for(|l| *l).await.is_err() {
            return;
        }
        controller.resync();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            tasks.spawn(work(controller.clone(), leading.clone()));
        }
        // Workers return when leadership ends (or the switch is dropped).
        while tasks.join_next().await.is_some() {}
        if leading.has_changed().is_err() {
            return;
        }
    }
}

async fn work<R: Reconciler>(controller: Arc<R>, mut leading: watch::Receiver<bool>) {
    loop {
        let key = tokio::select! {
            key = controller.queue().next() => key,
            changed = leading.wait_for(|l| !*l) => {
                let _ = changed;
                return;
            }
        };
        let Some(key) = key else { return };
        let span = tracing::debug_span!("reconcile", controller = controller.name(), key = %key);
        let result = controller.reconcile(&key).instrument(span).await;
        let queue = controller.queue();
        match result {
            Ok(next) => {
                queue.forget(&key);
                if let Next::After(delay) = next {
                    queue.add_after(key.clone(), delay);
                }
            }
            Err(e) => {
                let level_is_quiet = e.is_conflict();
                if level_is_quiet {
                    tracing::debug!(controller = controller.name(), key = %key, error = %e, "reconcile retried");
                } else {
                    tracing::warn!(controller = controller.name(), key = %key, error = %e, "reconcile failed; retrying");
                }
                queue.add_rate_limited(key.clone());
            }
        }
        queue.done(&key);
    }
}
