//! The scheduling queue: pods waiting for a node, in three sub-queues as upstream's
//! `PriorityQueue`.
//!
//! - **active**: ready to be tried, highest priority first, then in the order they
//!   became active;
//! - **backoff**: failed recently; each becomes active once `backoff(attempts)` has
//!   passed since its last attempt (1 s, doubling per attempt, at most 10 s);
//! - **unschedulable**: no node fitted; parked until a cluster event
//!   ([`SchedulingQueue::move_all_to_active_or_backoff`]) or the periodic flush
//!   ([`SchedulingQueue::flush_unschedulable_older_than`]) moves them back.
//!
//! The queue is a plain data structure: every method takes the current time explicitly
//! (so tests fabricate instants) and nothing here sleeps or wakes anyone. Waking is the
//! caller's job: the scheduling loop keeps the queue behind a mutex next to a
//! `tokio::sync::Notify`, notifies after every call that can make [`SchedulingQueue::pop`]
//! return a pod (`add`, `requeue_backoff`, `move_all_to_active_or_backoff`,
//! `flush_unschedulable_older_than`), and otherwise sleeps until
//! [`SchedulingQueue::next_ready`].
//!
//! Pods are keyed by [`pod_key`]: the UID, or `namespace/name` when there is none.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

/// Backoff after the first failed attempt.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Backoff never grows beyond this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream's `podMaxInUnschedulablePodsDuration`: how long a pod stays parked as
/// unschedulable before the periodic flush retries it anyway.
pub const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(5 * 60);

/// The key the queue (and the cache) knows a pod by: its UID, or `namespace/name` for a
/// pod without one.
pub fn pod_key(pod: &Pod) -> String {
    match pod.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or("")
        ),
    }
}

/// Upstream's `calculateBackoffDuration`: 1 s for the first attempt, doubling with each
/// further attempt, capped at [`MAX_BACKOFF`]. Zero attempts mean no backoff.
pub fn backoff_duration(attempts: u32) -> Duration {
    if attempts == 0 {
        return Duration::ZERO;
    }
    let mut d = INITIAL_BACKOFF;
    for _ in 1..attempts {
        if d >= MAX_BACKOFF / 2 {
            return MAX_BACKOFF;
        }
        d *= 2;
    }
    d.min(MAX_BACKOFF)
}

/// A pod handed out by [`SchedulingQueue::pop`].
#[derive(Debug, Clone)]
pub struct QueuedPod {
    /// The pod, as most recently added.
    pub pod: Arc<Pod>,
    /// Scheduling attempts including the one this pop starts; pass it back unchanged to
    /// `requeue_*`.
    pub attempts: u32,
    /// When the pod first entered the queue (for the scheduling-latency metric).
    pub first_queued: Instant,
}

/// How many pods each sub-queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Ready to be popped.
    pub active: usize,
    /// Waiting out their backoff.
    pub backoff: usize,
    /// Parked until a cluster event.
    pub unschedulable: usize,
}

/// Where a queued pod sits; each variant holds its key into that sub-queue's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active { priority: i32, seq: u64 },
    Backoff { ready: Instant, seq: u64 },
    Unschedulable { since: Instant, seq: u64 },
}

#[derive(Debug, Clone)]
struct Entry {
    pod: Arc<Pod>,
    attempts: u32,
    first_queued: Instant,
    /// When the pod last entered the queue (added or requeued after an attempt); the
    /// backoff counts from here.
    timestamp: Instant,
    place: Place,
}

impl Entry {
    fn backoff_ready(&self) -> Instant {
        self.timestamp + backoff_duration(self.attempts)
    }
}

/// A pod handed out by `pop` and not yet requeued, deleted or marked done.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    first_queued: Instant,
    /// `moves` when the pod was popped: an event during its attempt sends it to backoff
    /// rather than to unschedulable, where it could miss that event (upstream's
    /// `moveRequestCycle`).
    moves_at_pop: u64,
}

/// The scheduling queue; see the module documentation.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    active: BTreeMap<(Reverse<i32>, u64), String>,
    backoff: BTreeMap<(Instant, u64), String>,
    unschedulable: BTreeMap<(Instant, u64), String>,
    in_flight: HashMap<String, InFlight>,
    /// Orders entries within a sub-queue by when they entered it.
    seq: u64,
    /// How many times `move_all_to_active_or_backoff` (or the flush) has run.
    moves: u64,
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// Upstream's `isPodUpdated`: whether anything but the resource version, generation,
/// managed fields and status changed.
fn pod_changed(old: &Pod, new: &Pod) -> bool {
    let strip = |p: &Pod| {
        let mut p = p.clone();
        p.metadata.resource_version = None;
        p.metadata.generation = None;
        p.metadata.managed_fields = None;
        p.status = None;
        p
    };
    strip(old) != strip(new)
}

impl SchedulingQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Removes `key` from whichever sub-queue index holds it (not from `entries`).
    fn unindex(&mut self, key: &str, place: Place) {
        let removed = match place {
            Place::Active { priority, seq } => self.active.remove(&(Reverse(priority), seq)),
            Place::Backoff { ready, seq } => self.backoff.remove(&(ready, seq)),
            Place::Unschedulable { since, seq } => self.unschedulable.remove(&(since, seq)),
        };
        debug_assert_eq!(removed.as_deref(), Some(key));
    }

    /// Puts the entry for `key` (already in `entries`) into `place`'s index.
    fn place(&mut self, key: &str, place: Place) {
        let k = key.to_string();
        match place {
            Place::Active { priority, seq } => self.active.insert((Reverse(priority), seq), k),
            Place::Backoff { ready, seq } => self.backoff.insert((ready, seq), k),
            Place::Unschedulable { since, seq } => self.unschedulable.insert((since, seq), k),
        };
        if let Some(e) = self.entries.get_mut(key) {
            e.place = place;
        }
    }

    fn move_to_active(&mut self, key: &str) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        let (old, prio) = (e.place, priority(&e.pod));
        self.unindex(key, old);
        let seq = self.next_seq();
        self.place(
            key,
            Place::Active {
                priority: prio,
                seq,
            },
        );
    }

    fn move_to_backoff(&mut self, key: &str) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        let (old, ready) = (e.place, e.backoff_ready());
        self.unindex(key, old);
        let seq = self.next_seq();
        self.place(key, Place::Backoff { ready, seq });
    }

    /// Active if the pod's backoff has passed by `now`, backoff otherwise (upstream's
    /// `requeuePodViaQueueingHint` without hints).
    fn move_to_active_or_backoff(&mut self, key: &str, now: Instant) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        if e.backoff_ready() <= now {
            self.move_to_active(key);
        } else {
            self.move_to_backoff(key);
        }
    }

    /// Inserts a new entry (the key must not be queued) into active, backoff or
    /// unschedulable according to `place` (its seq is assigned here).
    fn insert(&mut self, key: String, entry: Entry) {
        let place = entry.place;
        self.entries.insert(key.clone(), entry);
        let seq = self.next_seq();
        let place = match place {
            Place::Active { priority, .. } => Place::Active { priority, seq },
            Place::Backoff { ready, .. } => Place::Backoff { ready, seq },
            Place::Unschedulable { since, .. } => Place::Unschedulable { since, seq },
        };
        self.place(&key, place);
    }

    /// A pending pod from the watch, new or updated.
    ///
    /// A new pod becomes active. An update of a queued pod replaces it where it is (an
    /// active pod is re-ordered if its priority changed); an unschedulable pod that
    /// really changed (not just status or resource version) moves to active, or to
    /// backoff if its backoff has not passed yet, since the change may make it fit. A
    /// pod currently being scheduled (popped, not yet requeued) is queued again as
    /// active (keeping its `first_queued`); its requeue then finds the newer copy queued,
    /// leaves it there and only carries over the attempts.
    pub fn add(&mut self, pod: Arc<Pod>, now: Instant) {
        let key = pod_key(&pod);
        let Some(e) = self.entries.get_mut(&key) else {
            let first_queued = self.in_flight.get(&key).map_or(now, |f| f.first_queued);
            let entry = Entry {
                place: Place::Active {
                    priority: priority(&pod),
                    seq: 0,
                },
                pod,
                attempts: 0,
                first_queued,
                timestamp: now,
            };
            self.insert(key, entry);
            return;
        };
        let old = std::mem::replace(&mut e.pod, pod);
        match e.place {
            Place::Active { priority: p, .. } if p != priority(&e.pod) => self.move_to_active(&key),
            Place::Unschedulable { .. } if pod_changed(&old, &e.pod) => {
                self.move_to_active_or_backoff(&key, now)
            }
            _ => {}
        }
    }

    /// The next pod to schedule: first moves every backoff entry whose time has come
    /// (ready ≤ `now`) to active, then takes the highest-priority, earliest active pod.
    /// The pod stays "in flight" until it is requeued, deleted or marked [`Self::done`].
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.flush_backoff_completed(now);
        let (_, key) = self.active.pop_first()?;
        let mut e = self.entries.remove(&key)?;
        e.attempts += 1;
        self.in_flight.insert(
            key,
            InFlight {
                first_queued: e.first_queued,
                moves_at_pop: self.moves,
            },
        );
        Some(QueuedPod {
            pod: e.pod,
            attempts: e.attempts,
            first_queued: e.first_queued,
        })
    }

    /// Moves backoff entries with ready ≤ `now` to active, earliest first.
    fn flush_backoff_completed(&mut self, now: Instant) {
        while let Some(entry) = self.backoff.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.get().clone();
            self.move_to_active(&key);
        }
    }

    /// When the earliest backoff entry becomes ready (possibly already, ≤ `now`), or
    /// `None` if no pod is backing off. The loop sleeps until then when `pop` returns
    /// nothing (and wakes earlier on a notification).
    pub fn next_ready(&self, now: Instant) -> Option<Instant> {
        let _ = now;
        self.backoff.keys().next().map(|(ready, _)| *ready)
    }

    fn requeue(&mut self, pod: Arc<Pod>, attempts: u32, now: Instant, unschedulable: bool) {
        let key = pod_key(&pod);
        let flight = self.in_flight.remove(&key);
        if let Some(e) = self.entries.get_mut(&key) {
            // Re-added by an update while it was being scheduled: the queued copy is
            // newer; only carry over the attempts.
            e.attempts = e.attempts.max(attempts);
            return;
        }
        let moved_meanwhile = flight.is_some_and(|f| f.moves_at_pop != self.moves);
        let entry = Entry {
            pod,
            attempts,
            first_queued: flight.map_or(now, |f| f.first_queued),
            timestamp: now,
            place: Place::Unschedulable { since: now, seq: 0 },
        };
        let ready = entry.backoff_ready();
        let park = unschedulable && !moved_meanwhile;
        let place = if park {
            Place::Unschedulable { since: now, seq: 0 }
        } else if ready <= now {
            Place::Active {
                priority: priority(&entry.pod),
                seq: 0,
            }
        } else {
            Place::Backoff { ready, seq: 0 }
        };
        self.insert(key, Entry { place, ..entry });
    }

    /// A popped pod that fits no node: parked as unschedulable, unless a cluster event
    /// arrived while it was being scheduled (then it goes to backoff, so the event is
    /// not missed). `attempts` is what `pop` returned.
    pub fn requeue_unschedulable(&mut self, pod: Arc<Pod>, attempts: u32, now: Instant) {
        self.requeue(pod, attempts, now, true);
    }

    /// A popped pod whose attempt failed for another reason (an error, a failed
    /// binding): back to backoff, ready after `backoff_duration(attempts)` from `now`.
    pub fn requeue_backoff(&mut self, pod: Arc<Pod>, attempts: u32, now: Instant) {
        self.requeue(pod, attempts, now, false);
    }

    /// A cluster event that may make unschedulable pods fit (node added or updated, pod
    /// deleted): every unschedulable pod whose backoff has passed goes to active, the
    /// others to backoff. Returns how many pods moved.
    pub fn move_all_to_active_or_backoff(&mut self, now: Instant) -> usize {
        self.moves += 1;
        let keys: Vec<String> = self.unschedulable.values().cloned().collect();
        for key in &keys {
            self.move_to_active_or_backoff(key, now);
        }
        keys.len()
    }

    /// Upstream's `flushUnschedulablePodsLeftover`: pods parked for longer than `max`
    /// (normally [`MAX_UNSCHEDULABLE_DURATION`]) go to active or backoff. Call it
    /// periodically (upstream: every 30 s). Returns how many pods moved.
    pub fn flush_unschedulable_older_than(&mut self, now: Instant, max: Duration) -> usize {
        let keys: Vec<String> = self
            .unschedulable
            .iter()
            .take_while(|((since, _), _)| now.saturating_duration_since(*since) > max)
            .map(|(_, k)| k.clone())
            .collect();
        for key in &keys {
            self.move_to_active_or_backoff(key, now);
        }
        keys.len()
    }

    /// Forgets a pod (deleted, or bound by someone else), wherever it is; returns
    /// whether it was queued.
    pub fn delete(&mut self, key: &str) -> bool {
        self.in_flight.remove(key);
        let Some(e) = self.entries.remove(key) else {
            return false;
        };
        match e.place {
            Place::Active { priority, seq } => self.active.remove(&(Reverse(priority), seq)),
            Place::Backoff { ready, seq } => self.backoff.remove(&(ready, seq)),
            Place::Unschedulable { since, seq } => self.unschedulable.remove(&(since, seq)),
        };
        true
    }

    /// A popped pod was scheduled (assumed and sent to binding): stop tracking it.
    pub fn done(&mut self, key: &str) {
        self.in_flight.remove(key);
    }

    /// Whether the pod is in one of the sub-queues (not counting in-flight pods).
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Pods in all three sub-queues (not counting in-flight pods).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no pod is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pods per sub-queue.
    pub fn counts(&self) -> QueueCounts {
        QueueCounts {
            active: self.active.len(),
            backoff: self.backoff.len(),
            unschedulable: self.unschedulable.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::PodBuilder;

    fn pod(name: &str, prio: i32) -> Arc<Pod> {
        let mut p = PodBuilder::new(name).uid(name).build();
        p.spec.get_or_insert_with(Default::default).priority = Some(prio);
        Arc::new(p)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Pops everything poppable at `now`, returning the names.
    fn drain(q: &mut SchedulingQueue, now: Instant) -> Vec<String> {
        std::iter::from_fn(|| q.pop(now))
            .map(|p| p.pod.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let cases = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (5, 10),
            (6, 10),
            (100, 10),
        ];
        for (attempts, want) in cases {
            assert_eq!(
                backoff_duration(attempts),
                secs(want),
                "attempts {attempts}"
            );
        }
    }

    #[test]
    fn pod_key_falls_back_to_namespace_name() {
        let with_uid = PodBuilder::new("a").uid("u1").build();
        let without = PodBuilder::new("a").namespace("ns").build();
        assert_eq!(pod_key(&with_uid), "u1");
        assert_eq!(pod_key(&without), "ns/a");
    }

    #[test]
    fn active_order_priority_then_arrival() {
        type Case = (&'static str, Vec<(&'static str, i32)>, Vec<&'static str>);
        let cases: [Case; 3] = [
            (
                "fifo",
                vec![("a", 0), ("b", 0), ("c", 0)],
                vec!["a", "b", "c"],
            ),
            (
                "priority first",
                vec![("low", 0), ("high", 100), ("mid", 10), ("high2", 100)],
                vec!["high", "high2", "mid", "low"],
            ),
            (
                "negative",
                vec![("neg", -5), ("zero", 0)],
                vec!["zero", "neg"],
            ),
        ];
        let t0 = Instant::now();
        for (name, pods, want) in cases {
            let mut q = SchedulingQueue::new();
            for (p, prio) in pods {
                q.add(pod(p, prio), t0);
            }
            assert_eq!(drain(&mut q, t0), want, "{name}");
            assert!(q.is_empty(), "{name}");
        }
    }

    #[test]
    fn pop_counts_attempts_and_keeps_first_queued() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), t0);
        let mut now = t0;
        for want in 1..=6u32 {
            let p = q.pop(now).expect("ready");
            assert_eq!(p.attempts, want);
            assert_eq!(p.first_queued, t0);
            q.requeue_backoff(p.pod, p.attempts, now);
            // Not ready a moment before its backoff, ready exactly at it.
            let ready = now + backoff_duration(want);
            assert_eq!(q.next_ready(now), Some(ready), "attempt {want}");
            assert!(q.pop(ready - Duration::from_millis(1)).is_none());
            now = ready;
        }
        assert_eq!(q.pop(now).map(|p| p.attempts), Some(7));
    }

    #[test]
    fn backoff_flush_order_and_next_ready() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new();
        // b fails with more attempts, so it waits longer than a.
        q.requeue_backoff(pod("b", 0), 3, t0);
        q.requeue_backoff(pod("a", 0), 1, t0);
        assert_eq!(
            q.counts(),
            QueueCounts {
                active: 0,
                backoff: 2,
                unschedulable: 0
            }
        );
        assert_eq!(q.next_ready(t0), Some(t0 + secs(1)));
        assert!(q.pop(t0).is_none());
        assert_eq!(drain(&mut q, t0 + secs(1)), vec!["a"]);
        assert_eq!(q.next_ready(t0), Some(t0 + secs(4)));
        assert_eq!(drain(&mut q, t0 + secs(5)), vec!["b"]);
        assert_eq!(q.next_ready(t0), None);
    }

    #[test]
    fn unschedulable_moves_on_event() {
        // (name, attempts, seconds after requeue of the event, want in active, backoff)
        let cases = [
            ("backoff passed", 1, 2, 1, 0),
            ("backoff exactly passed", 2, 2, 1, 0),
            ("still backing off", 4, 2, 0, 1),
        ];
        let t0 = Instant::now();
        for (name, attempts, after, active, backoff) in cases {
            let mut q = SchedulingQueue::new();
            q.requeue_unschedulable(pod("a", 0), attempts, t0);
            assert_eq!(q.counts().unschedulable, 1, "{name}");
            assert!(q.pop(t0 + secs(60)).is_none(), "{name}: parked");
            let moved = q.move_all_to_active_or_backoff(t0 + secs(after));
            assert_eq!(moved, 1, "{name}");
            let c = q.counts();
            assert_eq!(
                (c.active, c.backoff, c.unschedulable),
                (active, backoff, 0),
                "{name}"
            );
        }
    }

    #[test]
    fn event_during_attempt_sends_to_backoff() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), t0);
        let p = q.pop(t0).expect("active");
        // A node appears while "a" is being scheduled against the old snapshot.
        q.move_all_to_active_or_backoff(t0);
        q.requeue_unschedulable(p.pod, p.attempts, t0);
        assert_eq!(q.counts().backoff, 1);
        assert_eq!(drain(&mut q, t0 + secs(1)), vec!["a"]);
    }

    #[test]
    fn flush_only_old_unschedulable() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new();
        q.requeue_unschedulable(pod("old", 0), 1, t0);
        q.requeue_unschedulable(pod("new", 0), 1, t0 + secs(200));
        let now = t0 + secs(301);
        assert_eq!(
            q.flush_unschedulable_older_than(now, MAX_UNSCHEDULABLE_DURATION),
            1
        );
        assert_eq!(drain(&mut q, now), vec!["old"]);
        assert_eq!(q.counts().unschedulable, 1);
    }

    #[test]
    fn updates() {
        let t0 = Instant::now();
        let changed = |name: &str| {
            let mut p = (*pod(name, 0)).clone();
            p.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
            Arc::new(p)
        };
        let status_only = |name: &str| {
            let mut p = (*pod(name, 0)).clone();
            p.metadata.resource_version = Some("7".into());
            p.status = Some(Default::default());
            Arc::new(p)
        };

        // An update of an active pod replaces it in place.
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), t0);
        q.add(pod("b", 0), t0);
        q.add(changed("a"), t0);
        let p = q.pop(t0).expect("a");
        assert!(p.pod.metadata.labels.is_some());
        assert_eq!(q.len(), 1);

        // A priority change re-orders.
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), t0);
        q.add(pod("b", 0), t0);
        q.add(pod("b", 9), t0);
        assert_eq!(drain(&mut q, t0), vec!["b", "a"]);

        // Unschedulable: a status-only update stays parked, a real change moves it.
        let mut q = SchedulingQueue::new();
        q.requeue_unschedulable(pod("a", 0), 1, t0);
        q.add(status_only("a"), t0 + secs(5));
        assert_eq!(q.counts().unschedulable, 1);
        q.add(changed("a"), t0 + secs(5));
        assert_eq!(q.counts().active, 1);
        // Within its backoff it goes to backoff instead.
        let mut q = SchedulingQueue::new();
        q.requeue_unschedulable(pod("a", 0), 4, t0);
        q.add(changed("a"), t0 + secs(1));
        assert_eq!(q.counts().backoff, 1);
        assert_eq!(q.next_ready(t0), Some(t0 + secs(8)));

        // An update while in flight queues it again; the requeue keeps the newer copy.
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), t0);
        let p = q.pop(t0).expect("a");
        q.add(changed("a"), t0 + secs(1));
        q.requeue_unschedulable(p.pod, p.attempts, t0 + secs(2));
        assert_eq!(q.counts().active, 1);
        let p = q.pop(t0 + secs(2)).expect("a again");
        assert!(p.pod.metadata.labels.is_some());
        assert_eq!((p.attempts, p.first_queued), (2, t0));
    }

    #[test]
    fn delete_from_every_sub_queue() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new();
        q.add(pod("a", 0), t0);
        q.requeue_backoff(pod("b", 0), 1, t0);
        q.requeue_unschedulable(pod("c", 0), 1, t0);
        assert_eq!(q.len(), 3);
        for key in ["a", "b", "c"] {
            assert!(q.contains(key));
            assert!(q.delete(key), "{key}");
            assert!(!q.delete(key), "{key} twice");
        }
        assert!(q.is_empty());
        assert_eq!(q.counts(), QueueCounts::default());
        assert!(q.pop(t0 + secs(60)).is_none());
    }
}
