//! watch: a stream of JSON events served from the resource's watch cache. Each event is
//! filtered by namespace and selectors against the object before and after the change,
//! so an object that stops matching arrives as DELETED and one that starts as ADDED.

use std::sync::Arc;
use std::time::Duration;

use api::registry::Resource;
use api::tables::IncludeObject;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::handlers::{Request, read};
use crate::meta;
use crate::metrics::{Gauge, GaugeGuard};
use crate::query::ListOptions;
use crate::watch_cache::{CacheEvent, CachedObject, ChangeKind, Start, Subscription, WatchCache};

/// A watch without timeoutSeconds ends after this long (upstream picks 30–60 min);
/// clients then resume from their last resourceVersion.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often an idle watch that allows bookmarks gets one. Short, because clients take a
/// connection that stays silent for a few seconds (10 s for mast's) for a dead server.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(3);

/// Starts a watch and answers with its stream.
pub async fn serve(req: &Request<'_>) -> Result<Response, ApiError> {
    let resource = req.resource;
    let options = ListOptions::parse(req.query, resource)?;
    let cache = req
        .state
        .caches()
        .get(resource)
        .cloned()
        .ok_or_else(|| ApiError::Internal(format!("no watch cache for {}", resource.plural)))?;
    let start = match options.resource_version.as_deref() {
        None | Some("0") | Some("") => Start::WithState,
        Some(rv) => Start::After(
            rv.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion: {rv}")))?,
        ),
    };
    let initial_events_end = options.send_initial_events && options.allow_bookmarks;
    let start = if options.send_initial_events {
        Start::WithState
    } else {
        start
    };
    let table = super::table_request(req)?;
    let watcher = Watcher {
        table,
        resource,
        namespace: req.object_namespace().map(str::to_string),
        name: req.name.clone(),
        options,
        cache: cache.clone(),
        _gauge: req.state.metrics().hold(Gauge::Watchers, resource.plural),
    };
    let stream = match cache.subscribe(start).await {
        Ok(subscription) => watcher.stream(subscription, initial_events_end),
        // A watch from too old a resourceVersion gets its 410 as an ERROR event, as
        // upstream's cacher does; clients relist.
        Err(e @ ApiError::Expired(_)) => watcher.error_stream(e),
        Err(e) => return Err(e),
    };
    let stream = futures::StreamExt::take_until(stream, req.state.watches_ended());
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::Internal(format!("building the watch response: {e}")))
}

struct Watcher {
    /// Events carry one-row Tables instead of objects (`kubectl get -w`).
    table: Option<(&'static str, IncludeObject)>,
    resource: &'static Resource,
    namespace: Option<String>,
    /// Set when watching one object (`fieldSelector=metadata.name=…` is the usual way,
    /// but a name in the path works too).
    name: Option<String>,
    options: ListOptions,
    cache: Arc<WatchCache>,
    _gauge: GaugeGuard,
}

type Chunk = Result<Bytes, std::convert::Infallible>;

impl Watcher {
    fn error_stream(self, error: ApiError) -> futures::stream::BoxStream<'static, Chunk> {
        let line = event_line("ERROR", &Bytes::from(error.status().to_string()));
        Box::pin(futures::stream::once(async move {
            drop(self);
            Ok(line)
        }))
    }

    fn stream(
        self,
        subscription: Subscription,
        initial_events_end: bool,
    ) -> futures::stream::BoxStream<'static, Chunk> {
        let timeout = self
            .options
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        Box::pin(async_stream(
            self,
            subscription,
            initial_events_end,
            deadline,
        ))
    }

    /// Whether the object passes the namespace, name and selectors.
    fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && meta::namespace(object) != ns
        {
            return false;
        }
        if let Some(name) = &self.name
            && meta::name(object) != name
        {
            return false;
        }
        read::selected(self.resource, &self.options, object)
    }

    /// The line to send for a change, if this watcher sees it: the object's JSON, or
    /// a one-row Table of it when the watch asked for tables.
    fn line_for(&self, event: &CacheEvent) -> Option<Bytes> {
        let (kind, sent) = self.change_for(event)?;
        let Some((version, include)) = self.table else {
            let json = match sent {
                Sent::Cached(object) => object.json(),
                Sent::Departed(object) => Bytes::from(serde_json::to_vec(&object).ok()?),
            };
            return Some(event_line(kind, &json));
        };
        let object = match &sent {
            Sent::Cached(object) => &object.object,
            Sent::Departed(object) => object,
        };
        let metadata = json!({"resourceVersion": meta::resource_version(object)});
        let table = api::tables::table_for_version(
            version,
            self.resource.kind,
            std::slice::from_ref(object),
            metadata,
            include,
            meta::unix_now(),
        );
        Some(event_line(kind, &Bytes::from(table.to_string())))
    }

    /// The event type this watcher sees for a change, and the object it carries.
    fn change_for<'e>(&self, event: &'e CacheEvent) -> Option<(&'static str, Sent<'e>)> {
        let now = self.matches(&event.object.object);
        let before = event.prev.as_ref().is_some_and(|p| self.matches(&p.object));
        let current = Sent::Cached(&event.object);
        match event.kind {
            ChangeKind::Added if now => Some(("ADDED", current)),
            ChangeKind::Modified if now && before => Some(("MODIFIED", current)),
            ChangeKind::Modified if now => Some(("ADDED", current)),
            ChangeKind::Modified if before => {
                // It stopped matching: DELETED with its previous state at this revision.
                let mut gone = event.prev.as_ref()?.object.clone();
                meta::set_resource_version(&mut gone, event.revision);
                Some(("DELETED", Sent::Departed(gone)))
            }
            ChangeKind::Deleted if before => Some(("DELETED", current)),
            _ => None,
        }
    }

    fn bookmark(&self, revision: i64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": metadata,
        });
        event_line("BOOKMARK", &Bytes::from(object.to_string()))
    }
}

/// The object of an event: shared from the cache, or made for this watcher (an object
/// that left its selectors, at the revision it left).
enum Sent<'e> {
    Cached(&'e CachedObject),
    Departed(Value),
}

fn event_line(kind: &str, object: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}

/// The watch as a stream: initial events, then live ones until the deadline, the
/// client leaving, or the cache resetting.
fn async_stream(
    watcher: Watcher,
    subscription: Subscription,
    initial_events_end: bool,
    deadline: tokio::time::Instant,
) -> impl Stream<Item = Chunk> + Send {
    struct State {
        watcher: Watcher,
        pending: std::vec::IntoIter<CacheEvent>,
        receiver: tokio::sync::broadcast::Receiver<Arc<CacheEvent>>,
        last: i64,
        end_marker: Option<i64>,
        done: bool,
    }
    let Subscription {
        initial,
        receiver,
        last,
    } = subscription;
    let state = State {
        watcher,
        pending: initial.into_iter(),
        receiver,
        last,
        end_marker: initial_events_end.then_some(last),
        done: false,
    };
    futures::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        // Initial (or catch-up) events first.
        for event in s.pending.by_ref() {
            s.last = s.last.max(event.revision);
            if let Some(line) = s.watcher.line_for(&event) {
                return Some((Ok(line), s));
            }
        }
        if let Some(revision) = s.end_marker.take() {
            let line = s.watcher.bookmark(revision.max(s.last), true);
            return Some((Ok(line), s));
        }
        loop {
            let bookmark_at = tokio::time::Instant::now() + BOOKMARK_INTERVAL;
            let next = tokio::select! {
                received = s.receiver.recv() => received,
                _ = tokio::time::sleep_until(deadline) => return None,
                _ = tokio::time::sleep_until(bookmark_at), if s.watcher.options.allow_bookmarks => {
                    // Idle: everything up to the cache's revision has been seen. The
                    // revision is read before the queue is checked: the cache sends each
                    // event under the lock that guards its revision, so an empty queue
                    // then means every event up to it has reached this watcher (the other
                    // order lets an event slip in between and the bookmark run ahead of it).
                    let revision = s.watcher.cache.revision();
                    if s.receiver.is_empty() {
                        let line = s.watcher.bookmark(revision.max(s.last), false);
                        return Some((Ok(line), s));
                    }
                    continue;
                }
            };
            match next {
                Ok(event) if event.revision <= s.last => continue,
                Ok(event) => {
                    s.last = event.revision;
                    if let Some(line) = s.watcher.line_for(&event) {
                        return Some((Ok(line), s));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Fell behind the broadcast: catch up from the cache's window, or
                    // tell the client to relist.
                    match s.watcher.cache.resume_after(s.last) {
                        Ok(sub) => {
                            s.receiver = sub.receiver;
                            s.pending = sub.initial.into_iter();
                            for event in s.pending.by_ref() {
                                s.last = s.last.max(event.revision);
                                if let Some(line) = s.watcher.line_for(&event) {
                                    return Some((Ok(line), s));
                                }
                            }
                        }
                        Err(e) => {
                            s.done = true;
                            let line = event_line("ERROR", &Bytes::from(e.status().to_string()));
                            return Some((Ok(line), s));
                        }
                    }
                }
                // The cache relisted: end the watch; the client resumes.
                Err(RecvError::Closed) => return None,
            }
        }
    })
}
