//! Watch streams over the SQLite log.
//!
//! A watch subscribes to the hub *before* it reads anything, then reads the missed
//! events from the log (catch-up), then follows its subscription (live), skipping what
//! catch-up already delivered. Subscribing first is what makes it gap-free: any event
//! committed after the catch-up snapshot was published after the subscription. A watcher
//! that falls so far behind that the hub drops it subscribes again and goes back to
//! catch-up from its next revision; nothing is lost unless that history was compacted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::StreamExt;

use super::hub::{Received, Subscription};
use super::reader::{self, ReadPool};
use super::writer::Shared;
use crate::WatchStream;
use crate::error::{Result, Revision};
use crate::types::Event;

/// How many past events one catch-up query reads.
const CATCH_UP_CHUNK: usize = 1000;

enum Phase {
    /// Reading the log from this revision on.
    CatchUp { next: Revision },
    /// Following the subscription; events below `next` were already delivered.
    Live { next: Revision },
    /// The stream has ended.
    Done,
}

struct Watch {
    pool: Arc<ReadPool>,
    shared: Arc<Shared>,
    capacity: usize,
    prefix: Bytes,
    subscription: Subscription,
    phase: Phase,
    pending: VecDeque<Event>,
}

/// Starts a watch of `prefix` from `from_revision` (0: from now) that may fall
/// `capacity` events behind before it has to catch up from the log. Compaction of the
/// start revision is reported here, not through the stream.
pub async fn start(
    pool: Arc<ReadPool>,
    shared: Arc<Shared>,
    capacity: usize,
    prefix: Bytes,
    from_revision: Revision,
) -> Result<WatchStream> {
    let subscription = shared.hub.subscribe(prefix.clone(), capacity);
    // Read after subscribing: the writer stores the revision before it publishes.
    let now = shared.revision.load(Ordering::SeqCst);
    let phase = if from_revision <= 0 {
        Phase::Live { next: now + 1 }
    } else {
        Phase::CatchUp {
            next: from_revision,
        }
    };
    let mut watch = Watch {
        pool,
        shared,
        capacity,
        prefix,
        subscription,
        phase,
        pending: VecDeque::new(),
    };
    if let Phase::CatchUp { next } = watch.phase {
        watch.catch_up(next).await?;
    }
    Ok(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next_item().await?;
        Some((item, watch))
    })
    .boxed())
}

impl Watch {
    async fn next_item(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::CatchUp { next } => {
                    if let Err(e) = self.catch_up(next).await {
                        self.phase = Phase::Done;
                        return Some(Err(e));
                    }
                }
                Phase::Live { next } => match self.subscription.recv().await {
                    Received::Event(event) if event.revision() >= next => {
                        self.phase = Phase::Live {
                            next: event.revision() + 1,
                        };
                        return Some(Ok(event));
                    }
                    Received::Event(_) => {} // delivered by catch-up already
                    Received::Lagged => {
                        tracing::debug!(next, "sqlite watcher lagged; catching up from the log");
                        self.subscription = self
                            .shared
                            .hub
                            .subscribe(self.prefix.clone(), self.capacity);
                        self.phase = Phase::CatchUp { next };
                    }
                    Received::Closed => self.phase = Phase::Done,
                },
            }
        }
    }

    /// Reads one chunk of the log from `next` and moves the phase on.
    async fn catch_up(&mut self, next: Revision) -> Result<()> {
        let prefix = self.prefix.clone();
        let chunk = self
            .pool
            .run(move |conn| reader::events(conn, &prefix, next, CATCH_UP_CHUNK))
            .await?;
        self.phase = match (chunk.complete, chunk.events.last()) {
            (false, Some(last)) => Phase::CatchUp {
                next: last.revision() + 1,
            },
            _ => Phase::Live {
                next: next.max(chunk.snapshot_revision + 1),
            },
        };
        self.pending.extend(chunk.events);
        Ok(())
    }
}
