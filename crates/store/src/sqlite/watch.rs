//! Watch streams over the SQLite log.
//!
//! A watch subscribes to the writer's broadcast *before* it reads anything, then reads
//! the missed events from the log (catch-up), then follows the broadcast (live), skipping
//! what catch-up already delivered. Subscribing first is what makes it gap-free: any
//! event committed after the catch-up snapshot was published after the subscription. A
//! watcher that falls so far behind that the broadcast drops batches for it goes back to
//! catch-up from its next revision; nothing is lost unless that history was compacted.
//!
//! No watcher ever polls the database while it is live: one broadcast feeds them all.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};

use super::reader::{self, ReadPool};
use super::writer::EventBatch;
use crate::WatchStream;
use crate::error::{Result, Revision};
use crate::keys::prefix_end;
use crate::types::Event;

/// How many past events one catch-up query reads.
const CATCH_UP_CHUNK: usize = 1000;

enum Phase {
    /// Reading the log from this revision on.
    CatchUp { next: Revision },
    /// Following the broadcast; events below `next` were already delivered.
    Live { next: Revision },
    /// The stream has ended.
    Done,
}

struct Watch {
    pool: Arc<ReadPool>,
    events: broadcast::Receiver<EventBatch>,
    prefix: Bytes,
    prefix_end: Option<Vec<u8>>,
    phase: Phase,
    pending: VecDeque<Event>,
}

/// Starts a watch. `now` is the current revision, read after `events` subscribed.
/// Compaction of the start revision is reported here, not through the stream.
pub async fn start(
    pool: Arc<ReadPool>,
    events: broadcast::Receiver<EventBatch>,
    prefix: Bytes,
    from_revision: Revision,
    now: Revision,
) -> Result<WatchStream> {
    let phase = if from_revision <= 0 {
        Phase::Live { next: now + 1 }
    } else {
        Phase::CatchUp {
            next: from_revision,
        }
    };
    let mut watch = Watch {
        pool,
        events,
        prefix_end: prefix_end(&prefix),
        prefix,
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
                Phase::Live { next } => match self.events.recv().await {
                    Ok(batch) => self.take_live(&batch, next),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(
                            missed,
                            next,
                            "sqlite watcher lagged; catching up from the log"
                        );
                        self.phase = Phase::CatchUp { next };
                    }
                    Err(RecvError::Closed) => self.phase = Phase::Done,
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

    fn take_live(&mut self, batch: &EventBatch, next: Revision) {
        let Some(last) = batch.last() else { return };
        for event in batch.iter() {
            if event.revision() >= next && self.matches(&event.kv.key) {
                self.pending.push_back(event.clone());
            }
        }
        self.phase = Phase::Live {
            next: next.max(last.revision() + 1),
        };
    }

    fn matches(&self, key: &[u8]) -> bool {
        key.starts_with(&self.prefix)
            && self
                .prefix_end
                .as_ref()
                .is_none_or(|end| key < end.as_slice())
    }
}
