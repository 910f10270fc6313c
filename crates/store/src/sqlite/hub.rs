//! Fan-out of committed events to watchers, filtered at the source.
//!
//! The writer publishes every committed batch once, here. The hub hands each event only
//! to the watchers whose prefix matches, through each watcher's own bounded channel, so
//! a write wakes only the watchers that care, and watchers never contend on a shared
//! queue. A watcher whose channel is full is dropped and flagged as lagged; it then
//! re-subscribes and catches up from the log (see [`super::watch`]). Nobody polls the
//! database while live.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::types::Event;

/// The registry of live watchers.
#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    /// The relay task's inbox; None before [`Hub::start_relay`], after the store
    /// closed, or once the relay was found gone.
    relay: Mutex<Option<mpsc::UnboundedSender<Vec<Event>>>>,
}

#[derive(Debug)]
struct Subscriber {
    prefix: Bytes,
    events: mpsc::Sender<Event>,
    lagged: Arc<AtomicBool>,
}

/// One watcher's end. Dropping it unregisters the watcher.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    events: mpsc::Receiver<Event>,
    lagged: Arc<AtomicBool>,
}

/// What a subscription's next receive gave.
#[derive(Debug)]
pub enum Received {
    Event(Event),
    /// The watcher fell too far behind and was dropped: catch up from the log.
    Lagged,
    /// The store closed.
    Closed,
}

impl Hub {
    /// Registers a watcher of `prefix` that may fall `capacity` events behind.
    pub fn subscribe(self: &Arc<Self>, prefix: Bytes, capacity: usize) -> Subscription {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            prefix,
            events: sender,
            lagged: lagged.clone(),
        };
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.insert(id, subscriber);
        }
        Subscription {
            hub: self.clone(),
            id,
            events: receiver,
            lagged,
        }
    }

    /// Starts the relay task on the current Tokio runtime; from then on [`Hub::publish`]
    /// hands batches to it. It ends, ending every watch, once [`Hub::close`] was called
    /// and every batch before it handed out.
    pub fn start_relay(self: &Arc<Self>) {
        let (inbox, mut batches) = mpsc::unbounded_channel::<Vec<Event>>();
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
        let Ok(mut relay) = self.relay.lock() else {
            return;
        };
        let Some(inbox) = relay.as_ref() else {
            drop(relay);
            self.deliver(&events);
            return;
        };
        if inbox.send(events).is_err() {
            // The relay's runtime is gone, and with it the batches it still held. Hand
            // out from here on, and send every watcher back to the log, where this batch
            // and the lost ones are.
            *relay = None;
            drop(relay);
            self.lag_all();
        }
    }

    /// Hands each event to every matching watcher, in order.
    fn deliver(&self, events: &[Event]) {
        let Ok(mut subscribers) = self.subscribers.lock() else {
            return;
        };
        subscribers.retain(|_, subscriber| {
            for event in events {
                if !event.kv.key.starts_with(&subscriber.prefix) {
                    continue;
                }
                match subscriber.events.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        subscriber.lagged.store(true, Ordering::SeqCst);
                        return false;
                    }
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            true
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

    /// Ends every watch: each finds its channel closed, not lagged.
    fn end_all(&self) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.clear();
        }
    }

    /// Sends every watcher back to the log: each finds its channel closed and lagged.
    fn lag_all(&self) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            for subscriber in subscribers.values() {
                subscriber.lagged.store(true, Ordering::SeqCst);
            }
            subscribers.clear();
        }
    }
}

impl Subscription {
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received> {
        Poll::Ready(match ready!(self.events.poll_recv(cx)) {
            Some(event) => Received::Event(event),
            None if self.lagged.load(Ordering::SeqCst) => Received::Lagged,
            None => Received::Closed,
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
