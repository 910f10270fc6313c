//! One watcher's inbox of committed batches.
//!
//! Every watcher whose prefix a batch touches gets the same batch, shared, not a copy of
//! each event: handing a write to a thousand watchers is then a reference count and a
//! wake per watcher, and the inbox's slots stay small enough to stay in cache. The bound
//! counts the watcher's own events waiting, not batches, because a group commit may
//! carry many events for one watcher.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::types::Event;

/// Why an inbox ends, once its batches are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The store closed.
    Closed,
    /// The watcher fell more than its bound behind: it should catch up from the log.
    Lagged,
}

/// A single-producer, single-consumer queue of shared batches. The producer is the hub,
/// the consumer the watch stream.
#[derive(Debug)]
pub struct Mailbox {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Batches not yet read, each with how many of its events the watcher wants.
    batches: VecDeque<(Arc<[Event]>, usize)>,
    /// The wanted events in `batches`.
    waiting: usize,
    /// At most this many may wait.
    capacity: usize,
    /// The reader to wake on the next batch or the end.
    reader: Option<Waker>,
    end: Option<End>,
}

impl Mailbox {
    pub fn new(capacity: usize) -> Self {
        Mailbox {
            state: Mutex::new(State {
                batches: VecDeque::new(),
                waiting: 0,
                capacity: capacity.max(1),
                reader: None,
                end: None,
            }),
        }
    }

    /// Queues `batch`, of which the watcher wants `wanted` events. Returns false if the
    /// inbox has ended, by now or before: the hub should forget it. Overflowing the bound
    /// ends it as lagged; what was queued stays readable. An empty inbox takes any
    /// batch: the batch exists anyway, and a watcher that has read everything is not
    /// behind, however large the commit.
    pub fn push(&self, batch: &Arc<[Event]>, wanted: usize) -> bool {
        let (open, reader) = {
            let Ok(mut state) = self.state.lock() else {
                return false;
            };
            if state.end.is_some() {
                return false;
            }
            if state.waiting > 0 && state.waiting + wanted > state.capacity {
                state.end = Some(End::Lagged);
            } else {
                state.batches.push_back((batch.clone(), wanted));
                state.waiting += wanted;
            }
            (state.end.is_none(), state.reader.take())
        };
        if let Some(reader) = reader {
            reader.wake();
        }
        open
    }

    /// Ends the inbox, unless it has ended already; the reader still gets what was
    /// queued, then `end`.
    pub fn end(&self, end: End) {
        let reader = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            state.end.get_or_insert(end);
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }

    /// The next batch, or how the inbox ended once every batch was read.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Result<Arc<[Event]>, End>> {
        let Ok(mut state) = self.state.lock() else {
            return Poll::Ready(Err(End::Closed));
        };
        if let Some((batch, wanted)) = state.batches.pop_front() {
            state.waiting -= wanted;
            return Poll::Ready(Ok(batch));
        }
        if let Some(end) = state.end {
            return Poll::Ready(Err(end));
        }
        match &state.reader {
            Some(reader) if reader.will_wake(cx.waker()) => {}
            _ => state.reader = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use bytes::Bytes;

    use super::*;
    use crate::types::{EventKind, KeyValue};

    fn batch(revisions: &[i64]) -> Arc<[Event]> {
        revisions
            .iter()
            .map(|&revision| Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: Bytes::from(format!("/k/{revision}")),
                    value: Bytes::new(),
                    create_revision: revision,
                    mod_revision: revision,
                },
                prev: None,
            })
            .collect()
    }

    fn next(mailbox: &Mailbox) -> Poll<Result<Vec<i64>, End>> {
        let mut cx = Context::from_waker(Waker::noop());
        mailbox
            .poll_next(&mut cx)
            .map(|read| read.map(|batch| batch.iter().map(Event::revision).collect()))
    }

    #[test]
    fn batches_come_out_in_order_then_the_end() {
        let mailbox = Mailbox::new(10);
        assert!(next(&mailbox).is_pending());
        assert!(mailbox.push(&batch(&[1, 2]), 2));
        assert!(mailbox.push(&batch(&[3]), 1));
        mailbox.end(End::Closed);
        assert!(
            !mailbox.push(&batch(&[4]), 1),
            "an ended inbox takes nothing"
        );
        assert_eq!(next(&mailbox), Poll::Ready(Ok(vec![1, 2])));
        assert_eq!(next(&mailbox), Poll::Ready(Ok(vec![3])));
        assert_eq!(next(&mailbox), Poll::Ready(Err(End::Closed)));
    }

    #[test]
    fn the_bound_counts_wanted_events_not_batches() {
        let mailbox = Mailbox::new(3);
        assert!(mailbox.push(&batch(&[1, 2, 3, 4]), 2), "two of four wanted");
        assert!(mailbox.push(&batch(&[5]), 1));
        assert!(!mailbox.push(&batch(&[6]), 1), "a fourth event overflows");
        mailbox.end(End::Closed);
        assert_eq!(next(&mailbox), Poll::Ready(Ok(vec![1, 2, 3, 4])));
        assert_eq!(next(&mailbox), Poll::Ready(Ok(vec![5])));
        assert_eq!(
            next(&mailbox),
            Poll::Ready(Err(End::Lagged)),
            "the first end stands"
        );
    }

    #[test]
    fn an_empty_inbox_takes_a_batch_larger_than_the_bound() {
        let mailbox = Mailbox::new(2);
        assert!(mailbox.push(&batch(&[1, 2, 3]), 3));
        assert!(!mailbox.push(&batch(&[4]), 1), "behind by four now");
        assert_eq!(next(&mailbox), Poll::Ready(Ok(vec![1, 2, 3])));
        assert_eq!(next(&mailbox), Poll::Ready(Err(End::Lagged)));
    }

    #[test]
    fn reading_makes_room() {
        let mailbox = Mailbox::new(2);
        assert!(mailbox.push(&batch(&[1, 2]), 2));
        assert_eq!(next(&mailbox), Poll::Ready(Ok(vec![1, 2])));
        assert!(mailbox.push(&batch(&[3, 4]), 2));
        assert_eq!(next(&mailbox), Poll::Ready(Ok(vec![3, 4])));
    }

    #[test]
    fn a_push_wakes_the_waiting_reader() {
        let mailbox = Mailbox::new(2);
        let woken = Arc::new(Woken::default());
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(mailbox.poll_next(&mut cx).is_pending());
        assert!(mailbox.push(&batch(&[1]), 1));
        assert_eq!(woken.count(), 1);
        assert!(mailbox.push(&batch(&[2]), 1));
        assert_eq!(woken.count(), 1, "woken once until it reads again");
        assert!(mailbox.poll_next(&mut cx).is_ready());
        assert!(mailbox.poll_next(&mut cx).is_ready());
        assert!(mailbox.poll_next(&mut cx).is_pending());
        mailbox.end(End::Lagged);
        assert_eq!(woken.count(), 2, "the end wakes it too");
    }

    #[derive(Default)]
    struct Woken(std::sync::atomic::AtomicUsize);

    impl Woken {
        fn count(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
