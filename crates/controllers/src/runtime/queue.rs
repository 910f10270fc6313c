//! A work queue of keys, as upstream's: a key waits at most once however often it is
//! added, is never handed to two workers at once (added while in process, it comes
//! back when the first worker is done), and failures come back after an exponential
//! backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// First retry delay after a failure; doubles per consecutive failure of the key.
const BACKOFF_BASE: Duration = Duration::from_millis(5);
/// The longest retry delay (upstream's controllers use 1000 s; a minute keeps a
/// cluster that recovered from an outage quick to converge).
const BACKOFF_MAX: Duration = Duration::from_secs(60);

pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for WorkQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue").finish_non_exhaustive()
    }
}

struct Inner<T> {
    state: Mutex<State<T>>,
    wake: Notify,
}

struct State<T> {
    /// Keys ready for a worker, in order.
    ready: VecDeque<T>,
    /// Keys that need processing (in `ready`, or re-added while in process).
    dirty: HashSet<T>,
    /// Keys a worker holds now.
    processing: HashSet<T>,
    /// Consecutive failures per key, for the backoff.
    failures: HashMap<T, u32>,
    shut_down: bool,
}

impl<T> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    ready: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                    shut_down: false,
                }),
                wake: Notify::new(),
            }),
        }
    }
}

impl<T> WorkQueue<T>
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
{
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the key for processing (once, however often it is added).
    pub fn add(&self, key: T) {
        let mut state = self.lock();
        if state.shut_down || !state.dirty.insert(key.clone()) {
            return;
        }
        if !state.processing.contains(&key) {
            state.ready.push_back(key);
            drop(state);
            self.inner.wake.notify_one();
        }
    }

    /// Adds the key once `delay` has passed (a timer, not a worker, waits).
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Adds the key after its backoff, which doubles with each consecutive failure.
    pub fn add_rate_limited(&self, key: T) {
        let failures = {
            let mut state = self.lock();
            let count = state.failures.entry(key.clone()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        self.add_after(key, backoff(failures));
    }

    /// Forgets the key's failures (after it succeeded).
    pub fn forget(&self, key: &T) {
        self.lock().failures.remove(key);
    }

    /// Consecutive failures recorded for the key.
    pub fn failures(&self, key: &T) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process, waiting for one; `None` once shut down. The caller
    /// must call `done` with it.
    pub async fn next(&self) -> Option<T> {
        loop {
            let woken = self.inner.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some(key) = state.ready.pop_front() {
                    state.dirty.remove(&key);
                    state.processing.insert(key.clone());
                    let more = !state.ready.is_empty();
                    drop(state);
                    if more {
                        // Another worker may be waiting; pass the wake-up on.
                        self.inner.wake.notify_one();
                    }
                    return Some(key);
                }
                if state.shut_down {
                    return None;
                }
            }
            woken.await;
        }
    }

    /// Releases a key taken with `next`; if it was added meanwhile, it is ready again.
    pub fn done(&self, key: &T) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.contains(key) {
            state.ready.push_back(key.clone());
            drop(state);
            self.inner.wake.notify_one();
        }
    }

    /// Keys waiting (not counting those in process).
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out keys; waiting workers get `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.inner.wake.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    BACKOFF_BASE
        .saturating_mul(1u32 << exponent)
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_added_twice_waits_once() {
        let queue = WorkQueue::new();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.next().await, Some("a"));
        assert_eq!(queue.next().await, Some("b"));
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn a_key_in_process_is_not_handed_out_again_until_done() {
        let queue = WorkQueue::new();
        queue.add("a");
        let key = queue.next().await;
        assert_eq!(key, Some("a"));
        queue.add("a");
        assert!(queue.is_empty(), "a second worker must not get the key");
        queue.done(&"a");
        assert_eq!(queue.next().await, Some("a"));
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let queue: WorkQueue<&str> = WorkQueue::new();
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.shut_down();
        assert_eq!(waiting.await.ok().flatten(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_forget_resets() {
        let queue = WorkQueue::new();
        queue.add_rate_limited("a");
        queue.add_rate_limited("a");
        queue.add_rate_limited("a");
        assert_eq!(queue.failures(&"a"), 3);
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(3), Duration::from_millis(20));
        assert_eq!(backoff(40), BACKOFF_MAX);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(queue.next().await, Some("a"));
        queue.forget(&"a");
        assert_eq!(queue.failures(&"a"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_waits_for_the_delay() {
        let queue = WorkQueue::new();
        queue.add_after("a", Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(queue.is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(queue.len(), 1);
    }
}
