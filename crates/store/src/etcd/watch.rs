//! etcd watches that survive member failures.
//!
//! etcd's watch stream breaks when the member serving it dies or loses its leader. The
//! stream here remembers the next revision it owes its reader and, on a break, opens a
//! new etcd watch from exactly that revision on whichever member the client reaches, so
//! the reader sees no gap and no duplicate. It gives up (with [`Error::Unavailable`])
//! only after [`GIVE_UP_AFTER`] without any successful message, and ends with
//! [`Error::Compacted`] if the history it needs is gone.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{EventType, WatchClient, WatchOptions};
use futures::StreamExt;
use tokio::time::Instant;

use super::errors::map_error;
use super::{range_start, to_key_value};
use crate::WatchStream;
use crate::error::{Error, Result, Revision};
use crate::keys::prefix_end;
use crate::types::{Event, EventKind, KeyValue};

/// How long a watch keeps trying to re-establish itself before reporting failure.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

struct EtcdWatch {
    client: WatchClient,
    start_key: Vec<u8>,
    prefix_end: Option<Vec<u8>>,
    /// The next revision owed to the reader; 0 until the first watch reports "now".
    next: Revision,
    stream: Option<etcd_client::WatchStream>,
    pending: VecDeque<Event>,
    done: bool,
    last_success: Instant,
    backoff: Duration,
}

/// Opens the first etcd watch (so that an unreachable cluster fails the call) and wraps
/// it in a resuming stream.
pub async fn start(
    client: WatchClient,
    prefix: &[u8],
    from_revision: Revision,
) -> Result<WatchStream> {
    let mut watch = EtcdWatch {
        client,
        start_key: range_start(prefix),
        prefix_end: prefix_end(prefix),
        next: from_revision.max(0),
        stream: None,
        pending: VecDeque::new(),
        done: false,
        last_success: Instant::now(),
        backoff: Duration::from_millis(50),
    };
    watch.stream = Some(watch.subscribe().await?);
    Ok(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next_item().await?;
        Some((item, watch))
    })
    .boxed())
}

impl EtcdWatch {
    async fn subscribe(&mut self) -> Result<etcd_client::WatchStream> {
        let mut options = WatchOptions::new().with_prev_key();
        options = match &self.prefix_end {
            Some(end) => options.with_range(end.clone()),
            None => options.with_from_key(),
        };
        if self.next > 0 {
            options = options.with_start_revision(self.next);
        }
        self.client
            .watch(self.start_key.clone(), Some(options))
            .await
            .map_err(map_error)
    }

    async fn next_item(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                match self.subscribe().await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(e) => {
                        let retry = e.is_retryable();
                        if let Some(fatal) = self.broken(e, retry).await {
                            return Some(Err(fatal));
                        }
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(resp)) => {
                    if let Some(fatal) = self.absorb(resp) {
                        return Some(Err(fatal));
                    }
                }
                Ok(None) => {
                    let e = Error::Unavailable("etcd closed the watch stream".into());
                    if let Some(fatal) = self.broken(e, true).await {
                        return Some(Err(fatal));
                    }
                }
                Err(e) => {
                    // An established stream that breaks (a member died mid-response, an
                    // h2 reset) is always worth resuming; the deadline bounds the tries.
                    if let Some(fatal) = self.broken(map_error(e), true).await {
                        return Some(Err(fatal));
                    }
                }
            }
        }
    }

    /// Takes one watch response; returns the error that ends the stream, if any.
    fn absorb(&mut self, resp: etcd_client::WatchResponse) -> Option<Error> {
        if resp.canceled() {
            self.stream = None;
            if resp.compact_revision() > 0 {
                self.done = true;
                return Some(Error::Compacted {
                    requested_revision: self.next,
                    compact_revision: resp.compact_revision(),
                });
            }
            // Canceled for another reason (no leader, say): resume elsewhere.
            tracing::debug!(
                reason = resp.cancel_reason(),
                "etcd watch canceled; resuming"
            );
            return None;
        }
        self.last_success = Instant::now();
        self.backoff = Duration::from_millis(50);
        if resp.created() && self.next == 0 {
            self.next = resp.header().map_or(0, |h| h.revision()) + 1;
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let kv = to_key_value(kv);
            if kv.mod_revision < self.next {
                continue; // already delivered before a resume
            }
            self.next = kv.mod_revision + 1;
            let prev = event.prev_kv().map(to_key_value);
            self.pending.push_back(match event.event_type() {
                EventType::Put => Event {
                    kind: EventKind::Put,
                    kv,
                    prev,
                },
                EventType::Delete => Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        value: Bytes::new(),
                        create_revision: 0,
                        ..kv
                    },
                    prev,
                },
            });
        }
        None
    }

    /// Handles a broken stream: waits and lets the loop resubscribe, or gives up.
    async fn broken(&mut self, e: Error, retry: bool) -> Option<Error> {
        self.stream = None;
        if !retry || self.last_success.elapsed() > GIVE_UP_AFTER {
            self.done = true;
            return Some(e);
        }
        tracing::debug!(error = %e, next = self.next, "etcd watch broken; resuming");
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
        None
    }
}
