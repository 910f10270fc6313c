//! Fan-out of committed events to watchers, filtered at the source.
//!
//! The writer publishes every committed batch once, here. The hub hands the batch only
//! to the watchers whose prefix it touches, each through its own [`Mailbox`], shared
//! rather than copied, so a write wakes only the watchers that care, and watchers never
//! contend on a shared queue. A watcher that falls more than its bound behind is dropped
//! and flagged as lagged; it then re-subscribes and catches up from the log (see
//! [`super::watch`]). Nobody polls the database while live.
//!
//! The hand-out runs in a relay task on the store's Tokio runtime, not on the writer
//! thread. Waking a task from outside the runtime queues it on the runtime's shared
//! queue, one lock per wake, while the writer thread competes with both workers for
//! the CPUs; from inside a worker the wakes go to that worker's own queue and the other
//! worker steals half. Measured with 1000 watchers on 2 cores: the time from the first
//! watcher's event to the last one's fell by a quarter to a third (docs/benchmarks.md).
//! The writer only moves each committed batch into the relay's channel. Should the
//! relay be gone (its runtime shut down while the store lives on), the writer hands
//! out itself again, and every watcher catches up from the log, which replays whatever
//! batches the relay had not handed out yet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::mailbox::{End, Mailbox};
use crate::types::Event;

/// The registry of live watchers.
#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    /// The relay task's inbox; None before [`Hub::start_relay`], after the store
    /// closed, or once the relay was found gone.
    relay: Mutex<Option<mpsc::UnboundedSender<Arc<[Event]>>>>,
}

#[derive(Debug)]
struct Subscriber {
    prefix: Bytes,
    mailbox: Arc<Mailbox>,
}

/// One watcher's end. Dropping it unregisters the watcher.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    mailbox: Arc<Mailbox>,
}

/// What a subscription's next receive gave.
#[derive(Debug)]
pub enum Received {
    /// A committed batch with at least one event under the prefix; it may hold others.
    Batch(Arc<[Event]>),
    /// The watcher fell too far behind and was dropped: catch up from the log.
    Lagged,
    /// The store closed.
    Closed,
}

impl Hub {
    /// Registers a watcher of `prefix` that may fall `capacity` events behind.
    pub fn subscribe(self: &Arc<Self>, prefix: Bytes, capacity: usize) -> Subscription {
        let mailbox = Arc::new(Mailbox::new(capacity));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            prefix,
            mailbox: mailbox.clone(),
        };
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.insert(id, subscriber);
        }
        Subscription {
            hub: self.clone(),
            id,
            mailbox,
        }
    }

    /// Starts the relay task on the current Tokio runtime; from then on [`Hub::publish`]
    /// hands batches to it. It ends, ending every watch, once [`Hub::close`] was called
    /// and every batch before it handed out.
    pub fn start_relay(self: &Arc<Self>) {
        let (inbox, mut batches) = mpsc::unbounded_channel::<Arc<[Event]>>();
        if let Ok(mut relay) = self.relay.lock() {
            *relay = Some(inbox);
        }
        let hub = self.clone();
        tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                hub.deliver(&batch);
            }
            hub.end_all();
        });
    }

    /// Publishes one committed batch: through the relay when it runs, else right here.
    /// Called by the writer thread only, in commit order.
    pub fn publish(&self, events: Vec<Event>) {
        let batch: Arc<[Event]> = events.into();
        let Ok(mut relay) = self.relay.lock() else {
            return;
        };
        let Some(inbox) = relay.as_ref() else {
            drop(relay);
            self.deliver(&batch);
            return;
        };
        if inbox.send(batch).is_err() {
            // The relay's runtime is gone, and with it the batches it still held. Hand
            // out from here on, and send every watcher back to the log, where this batch
            // and the lost ones are.
            *relay = None;
            drop(relay);
            self.lag_all();
        }
    }

    /// Hands the batch to every watcher with an event in it, forgetting those that
    /// lagged.
    fn deliver(&self, batch: &Arc<[Event]>) {
        let Ok(mut subscribers) = self.subscribers.lock() else {
            return;
        };
        subscribers.retain(|_, subscriber| {
            let wanted = batch
                .iter()
                .filter(|event| event.kv.key.starts_with(&subscriber.prefix))
                .count();
            wanted == 0 || subscriber.mailbox.push(batch, wanted)
        });
    }

    /// Ends every watch once the batches already published are handed out: the store
    /// is closing.
    pub fn close(&self) {
        let relay = self.relay.lock().ok().and_then(|mut relay| relay.take());
        match relay {
            // Dropping the inbox lets the relay finish its queue, then end every watch.
            Some(inbox) if !inbox.is_closed() => {}
            _ => self.end_all(),
        }
    }

    /// Ends every watch, after what each has queued.
    fn end_all(&self) {
        self.end_each(End::Closed);
    }

    /// Sends every watcher back to the log, after what each has queued.
    fn lag_all(&self) {
        self.end_each(End::Lagged);
    }

    fn end_each(&self, end: End) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            for (_, subscriber) in subscribers.drain() {
                subscriber.mailbox.end(end);
            }
        }
    }
}

impl Subscription {
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received> {
        Poll::Ready(match ready!(self.mailbox.poll_next(cx)) {
            Ok(batch) => Received::Batch(batch),
            Err(End::Lagged) => Received::Lagged,
            Err(End::Closed) => Received::Closed,
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut subscribers) = self.hub.subscribers.lock() {
            subscribers.remove(&self.id);
        }
    }
}
