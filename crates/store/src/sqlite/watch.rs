//! Watch streams over the SQLite log.
//!
//! A watch subscribes to the hub *before* it reads anything, then reads the missed
//! events from the log (catch-up), then follows its subscription (live), skipping what
//! catch-up already delivered. Subscribing first is what makes it gap-free: any event
//! committed after the catch-up snapshot was published after the subscription. A watcher
//! that falls so far behind that the hub drops it subscribes again and goes back to
//! catch-up from its next revision; nothing is lost unless that history was compacted.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;
use futures::future::BoxFuture;

use super::hub::{Received, Subscription};
use super::reader::{self, EventChunk, ReadPool};
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

/// One watch, polled in place. A hand-written stream rather than an `unfold` over an
/// async fn: a live event is read from the shared batch in its inbox, with no future
/// built and no state moved per event, which counts when one write wakes a thousand
/// watchers.
struct Watch {
    pool: Arc<ReadPool>,
    shared: Arc<Shared>,
    capacity: usize,
    prefix: Bytes,
    subscription: Subscription,
    phase: Phase,
    /// Events read from the log, not yet yielded.
    pending: VecDeque<Event>,
    /// The live batch being read, shared with the other watchers, and where in it.
    batch: Option<(Arc<[Event]>, usize)>,
    /// The catch-up query in flight, if any.
    reading: Option<BoxFuture<'static, Result<EventChunk>>>,
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
        batch: None,
        reading: None,
    };
    if let Phase::CatchUp { next } = watch.phase {
        let chunk = watch.read_from(next).await?;
        watch.caught_up(next, chunk);
    }
    Ok(Box::pin(watch))
}

impl Stream for Watch {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let watch = self.get_mut();
        loop {
            if let Some(event) = watch.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            match watch.phase {
                Phase::Done => return Poll::Ready(None),
                Phase::CatchUp { next } => {
                    let reading = match &mut watch.reading {
                        Some(reading) => reading,
                        None => watch.reading.insert(Box::pin(watch.read_from(next))),
                    };
                    let read = ready!(reading.as_mut().poll(cx));
                    watch.reading = None;
                    match read {
                        Ok(chunk) => watch.caught_up(next, chunk),
                        Err(e) => {
                            watch.phase = Phase::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
                Phase::Live { next } => {
                    if let Some(event) = watch.next_in_batch(next) {
                        watch.phase = Phase::Live {
                            next: event.revision() + 1,
                        };
                        return Poll::Ready(Some(Ok(event)));
                    }
                    match ready!(watch.subscription.poll_recv(cx)) {
                        Received::Batch(batch) => watch.batch = Some((batch, 0)),
                        Received::Lagged => {
                            tracing::debug!(
                                next,
                                "sqlite watcher lagged; catching up from the log"
                            );
                            watch.subscription = watch
                                .shared
                                .hub
                                .subscribe(watch.prefix.clone(), watch.capacity);
                            watch.phase = Phase::CatchUp { next };
                        }
                        Received::Closed => watch.phase = Phase::Done,
                    }
                }
            }
        }
    }
}

impl Watch {
    /// The live batch's next event under the prefix from revision `next` on (what is
    /// below was delivered by catch-up already), copied out of the shared batch.
    fn next_in_batch(&mut self, next: Revision) -> Option<Event> {
        let (batch, at) = self.batch.as_mut()?;
        while let Some(event) = batch.get(*at) {
            *at += 1;
            if event.revision() >= next && event.kv.key.starts_with(&self.prefix) {
                return Some(event.clone());
            }
        }
        self.batch = None;
        None
    }

    /// Reads one chunk of the log from `next`.
    fn read_from(&self, next: Revision) -> impl Future<Output = Result<EventChunk>> + use<> {
        let (pool, prefix) = (self.pool.clone(), self.prefix.clone());
        async move {
            pool.run(move |conn| reader::events(conn, &prefix, next, CATCH_UP_CHUNK))
                .await
        }
    }

    /// Queues a chunk read from `next` and moves the phase on.
    fn caught_up(&mut self, next: Revision, chunk: EventChunk) {
        self.phase = match (chunk.complete, chunk.events.last()) {
            (false, Some(last)) => Phase::CatchUp {
                next: last.revision() + 1,
            },
            _ => Phase::Live {
                next: next.max(chunk.snapshot_revision + 1),
            },
        };
        self.pending.extend(chunk.events);
    }
}
