//! Fan-out of committed events to watchers, filtered at the source.
//!
//! The writer publishes every committed batch once, here. The hub hands each event only
//! to the watchers whose prefix matches, through each watcher's own bounded channel, so
//! a write wakes only the watchers that care, and watchers never contend on a shared
//! queue. A watcher whose channel is full is dropped and flagged as lagged; it then
//! re-subscribes and catches up from the log (see [`super::watch`]). Nobody polls the
//! database while live.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::types::Event;

/// The registry of live watchers.
#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    subscribers: Mutex<HashMap<u64, Subscriber>>,
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

    /// Hands each event to every matching watcher, in order.
    pub fn publish(&self, events: &[Event]) {
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

    /// Ends every watch: the store is closing.
    pub fn close(&self) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.clear();
        }
    }
}

impl Subscription {
    pub async fn recv(&mut self) -> Received {
        match self.events.recv().await {
            Some(event) => Received::Event(event),
            None if self.lagged.load(Ordering::SeqCst) => Received::Lagged,
            None => Received::Closed,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut subscribers) = self.hub.subscribers.lock() {
            subscribers.remove(&self.id);
        }
    }
}
