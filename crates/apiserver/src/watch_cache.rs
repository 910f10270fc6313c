//! The watch cache: per resource, one store watch feeds an in-memory copy of every
//! object and a bounded window of recent events; every client watch of that resource is
//! served from it, so a thousand watchers cost one store watch.
//!
//! Protocol, as upstream's cacher: the cache lists the resource at revision R, then
//! watches from R+1. A client watch from resourceVersion V is served if V is inside the
//! window (V ≥ the oldest revision the window still covers): first the buffered events
//! after V, then the live broadcast, skipping what the buffer already gave. Older V gets
//! 410 Expired and the client relists. A watch without V starts with synthetic ADDED
//! events for the current state. When the store watch fails the cache relists; open
//! client watches are closed (they resume from their last resourceVersion, or relist).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use api::registry::Resource;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use store::{AnyStore, EventKind, Store};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::meta;
use crate::metrics::{Gauge, Metrics};
use crate::objects;

/// How long a client watch waits for a cache that is (re)listing.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before relisting after the store watch failed.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Objects per page while (re)listing.
const LIST_PAGE: usize = 1000;

/// An object as the cache holds it: the value with its resourceVersion, and its JSON
/// encoding, made once and shared by every watcher.
#[derive(Debug)]
pub struct CachedObject {
    pub object: Value,
    json: OnceLock<Bytes>,
}

impl CachedObject {
    pub fn new(object: Value) -> Arc<Self> {
        Arc::new(Self {
            object,
            json: OnceLock::new(),
        })
    }

    /// The object as JSON, encoded on first use.
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&self.object).unwrap_or_default()))
            .clone()
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change, in revision order.
#[derive(Debug, Clone)]
pub struct CacheEvent {
    pub kind: ChangeKind,
    /// The object after the change; for a delete, its last state with the delete's
    /// revision as resourceVersion.
    pub object: Arc<CachedObject>,
    /// The object before the change, if it existed.
    pub prev: Option<Arc<CachedObject>>,
    pub revision: i64,
}

/// Where a client watch starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Synthetic ADDED events for the current state, then changes.
    WithState,
    /// Changes after this resourceVersion.
    After(i64),
}

/// A client watch's start: events to send first, then the live receiver, skipping
/// events at or below `last`.
#[derive(Debug)]
pub struct Subscription {
    pub initial: Vec<CacheEvent>,
    pub receiver: broadcast::Receiver<Arc<CacheEvent>>,
    pub last: i64,
}

/// The watch cache of one resource.
#[derive(Debug)]
pub struct WatchCache {
    resource: &'static Resource,
    inner: Mutex<Inner>,
    ready: watch::Sender<bool>,
    metrics: Metrics,
}

#[derive(Debug)]
struct Inner {
    objects: HashMap<Vec<u8>, Arc<CachedObject>>,
    events: VecDeque<Arc<CacheEvent>>,
    capacity: usize,
    /// Watches from a resourceVersion at or above this are served.
    oldest: i64,
    /// Every change up to this revision has been applied.
    revision: i64,
    sender: broadcast::Sender<Arc<CacheEvent>>,
}

impl WatchCache {
    /// Starts the cache of `resource`: it lists and watches in a background task for as
    /// long as the runtime runs (the server's caches live as long as the server).
    pub fn start(
        resource: &'static Resource,
        store: AnyStore,
        capacity: usize,
        metrics: Metrics,
    ) -> Arc<Self> {
        let capacity = capacity.max(1);
        let (sender, _) = broadcast::channel(capacity);
        let cache = Arc::new(Self {
            resource,
            inner: Mutex::new(Inner {
                objects: HashMap::new(),
                events: VecDeque::with_capacity(capacity),
                capacity,
                oldest: 0,
                revision: 0,
                sender,
            }),
            ready: watch::channel(false).0,
            metrics,
        });
        let task_cache = cache.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = task_cache.run(&store).await {
                    tracing::warn!(resource = resource.plural, error = %e, "watch cache relisting");
                }
                task_cache.ready.send_replace(false);
                tokio::time::sleep(RETRY_DELAY).await;
            }
        });
        cache
    }

    /// Lists, then follows the store watch until it fails.
    async fn run(&self, store: &AnyStore) -> Result<(), store::Error> {
        let prefix = self.resource.prefix();
        let mut objects = HashMap::new();
        let mut revision = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store
                .list(prefix.as_bytes(), revision, LIST_PAGE, after.as_deref())
                .await?;
            revision = page.revision;
            for kv in &page.items {
                if let Ok(stored) = objects::decode(&kv.value, kv.mod_revision) {
                    objects.insert(kv.key.to_vec(), CachedObject::new(stored.object));
                }
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => after = Some(last.key.to_vec()),
                _ => break,
            }
        }
        let mut stream = store.watch(prefix.as_bytes(), revision + 1).await?;
        let _open = self.metrics.hold(Gauge::StoreWatches, self.resource.plural);
        self.reset(objects, revision);
        self.ready.send_replace(true);
        while let Some(event) = stream.next().await {
            let event = event?;
            self.apply(&event);
        }
        Err(store::Error::Unavailable("the store watch ended".into()))
    }

    /// Replaces the state after a (re)list; open client watches are closed.
    fn reset(&self, objects: HashMap<Vec<u8>, Arc<CachedObject>>, revision: i64) {
        let mut inner = self.lock();
        inner.objects = objects;
        inner.events.clear();
        inner.oldest = revision;
        inner.revision = revision;
        let capacity = inner.capacity;
        inner.sender = broadcast::channel(capacity).0;
    }

    fn apply(&self, event: &store::Event) {
        let revision = event.revision();
        let key = event.kv.key.to_vec();
        let mut inner = self.lock();
        let known = inner.objects.get(&key).cloned();
        let prev = known.or_else(|| {
            let prev = event.prev.as_ref()?;
            let stored = objects::decode(&prev.value, prev.mod_revision).ok()?;
            Some(CachedObject::new(stored.object))
        });
        let change = match event.kind {
            EventKind::Put => {
                let Ok(stored) = objects::decode(&event.kv.value, revision) else {
                    tracing::warn!(key = %String::from_utf8_lossy(&key), "unreadable object in the store");
                    return;
                };
                let object = CachedObject::new(stored.object);
                inner.objects.insert(key, object.clone());
                let kind = if prev.is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                CacheEvent {
                    kind,
                    object,
                    prev,
                    revision,
                }
            }
            EventKind::Delete => {
                inner.objects.remove(&key);
                let Some(last) = prev.clone() else { return };
                let mut object = last.object.clone();
                meta::set_resource_version(&mut object, revision);
                CacheEvent {
                    kind: ChangeKind::Deleted,
                    object: CachedObject::new(object),
                    prev,
                    revision,
                }
            }
        };
        inner.revision = revision;
        let change = Arc::new(change);
        if inner.events.len() == inner.capacity
            && let Some(evicted) = inner.events.pop_front()
        {
            inner.oldest = evicted.revision;
        }
        inner.events.push_back(change.clone());
        // No receivers is fine: nobody is watching.
        let _ = inner.sender.send(change);
    }

    /// Starts a client watch, waiting for the cache to be ready.
    pub async fn subscribe(&self, start: Start) -> Result<Subscription, ApiError> {
        let mut ready = self.ready.subscribe();
        let waited = tokio::time::timeout(READY_TIMEOUT, ready.wait_for(|r| *r)).await;
        if !matches!(waited, Ok(Ok(_))) {
            return Err(ApiError::Timeout(format!(
                "the watch cache of {} is not ready",
                self.resource.plural
            )));
        }
        let inner = self.lock();
        match start {
            Start::WithState => {
                let mut initial: Vec<CacheEvent> = inner
                    .objects
                    .values()
                    .map(|o| CacheEvent {
                        kind: ChangeKind::Added,
                        revision: resource_version(&o.object),
                        object: o.clone(),
                        prev: None,
                    })
                    .collect();
                initial.sort_by_key(|e| e.revision);
                Ok(Subscription {
                    initial,
                    receiver: inner.sender.subscribe(),
                    last: inner.revision,
                })
            }
            Start::After(version) => Self::resume(&inner, version),
        }
    }

    /// Picks a watch up again after `version` (a lagging watcher calls this too).
    pub fn resume_after(&self, version: i64) -> Result<Subscription, ApiError> {
        let inner = self.lock();
        Self::resume(&inner, version)
    }

    fn resume(inner: &Inner, version: i64) -> Result<Subscription, ApiError> {
        if version < inner.oldest {
            return Err(ApiError::Expired(format!(
                "too old resource version: {version} ({})",
                inner.oldest
            )));
        }
        let initial = inner
            .events
            .iter()
            .filter(|e| e.revision > version)
            .map(|e| e.as_ref().clone())
            .collect();
        Ok(Subscription {
            initial,
            receiver: inner.sender.subscribe(),
            last: version.max(inner.revision),
        })
    }

    /// The revision up to which every change has been applied.
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }

    pub fn resource(&self) -> &'static Resource {
        self.resource
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every mutation is
        // completed before anything that can panic), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The resourceVersion of a cached object, as a number.
pub fn resource_version(object: &Value) -> i64 {
    meta::resource_version(object).parse().unwrap_or(0)
}

/// One cache per resource, all started together.
#[derive(Debug, Clone)]
pub struct Caches {
    caches: Arc<HashMap<&'static str, Arc<WatchCache>>>,
}

impl Caches {
    pub fn start(store: &AnyStore, capacity: usize, metrics: &Metrics) -> Self {
        let caches = api::registry::RESOURCES
            .iter()
            .map(|r| {
                (
                    r.plural,
                    WatchCache::start(r, store.clone(), capacity, metrics.clone()),
                )
            })
            .collect();
        Self {
            caches: Arc::new(caches),
        }
    }

    pub fn get(&self, resource: &Resource) -> Option<&Arc<WatchCache>> {
        self.caches.get(resource.plural)
    }

    /// Whether every cache has listed and is watching.
    pub fn ready(&self) -> bool {
        self.caches.values().all(|c| *c.ready.borrow())
    }
}
