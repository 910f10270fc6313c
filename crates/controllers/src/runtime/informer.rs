//! An informer: one watch per resource, a local cache of every object, and handlers
//! called with the old and new version of each change.
//!
//! Upstream's shared informers, in small: several controllers read the same cache and
//! register handlers on it, so the controller-manager holds one pod watch, not one per
//! controller. Handlers run on the informer's task and must only enqueue keys (cheap,
//! never blocking); workers reconcile from the cache later. The watch itself is
//! kube-rs's `watcher`, which lists, watches, and relists after a 410.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// Namespace (empty for cluster-scoped objects) and name: how caches and queues name
/// objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A cluster-scoped object's key.
    pub fn cluster(name: impl Into<String>) -> Self {
        ObjectKey::new("", name)
    }

    pub fn of<K: Resource>(object: &K) -> Self {
        ObjectKey::new(
            object.meta().namespace.clone().unwrap_or_default(),
            object.meta().name.clone().unwrap_or_default(),
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// A change as handlers see it: `old` is `None` for an addition, `new` is `None` for a
/// deletion. After a relist, objects that vanished meanwhile come as deletions.
pub type Handler<K> = Box<dyn Fn(Option<&Arc<K>>, Option<&Arc<K>>) + Send + Sync>;

type Objects<K> = HashMap<ObjectKey, Arc<K>>;

/// The cache of one resource, readable from any task; cloning shares it.
#[derive(Debug)]
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<K> {
    objects: RwLock<Objects<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

impl<K> fmt::Debug for Shared<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("synced", &*self.synced.borrow())
            .finish_non_exhaustive()
    }
}

impl<K> Default for Informer<K> {
    fn default() -> Self {
        Informer {
            shared: Arc::new(Shared {
                objects: RwLock::new(HashMap::new()),
                handlers: RwLock::new(Vec::new()),
                synced: watch::Sender::new(false),
            }),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// Registers a handler; handlers added after `run` starts miss the first listing,
    /// so controllers register theirs before the manager starts the informers.
    pub fn on_change(&self, handler: Handler<K>) {
        write(&self.shared.handlers).push(handler);
    }

    /// Lists and watches `api` for ever (retrying with backoff), keeping the cache and
    /// calling the handlers.
    pub async fn run(self, api: Api<K>, config: watcher::Config) {
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut relisted: Option<Objects<K>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => relisted = Some(HashMap::new()),
                Ok(watcher::Event::InitApply(object)) => {
                    if let Some(buffer) = relisted.as_mut() {
                        buffer.insert(ObjectKey::of(&object), Arc::new(object));
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    let fresh = relisted.take().unwrap_or_default();
                    self.replace_all(fresh);
                    self.shared.synced.send_replace(true);
                }
                Ok(watcher::Event::Apply(object)) => self.apply(Arc::new(object)),
                Ok(watcher::Event::Delete(object)) => self.remove(&ObjectKey::of(&object)),
                Err(e) => {
                    tracing::debug!(kind = %K::kind(&Default::default()), error = %e, "watch failed; retrying")
                }
            }
        }
    }

    fn apply(&self, object: Arc<K>) {
        let key = ObjectKey::of(object.as_ref());
        let old = write(&self.shared.objects).insert(key, object.clone());
        self.notify(old.as_ref(), Some(&object));
    }

    fn remove(&self, key: &ObjectKey) {
        let old = write(&self.shared.objects).remove(key);
        if let Some(old) = old {
            self.notify(Some(&old), None);
        }
    }

    /// After a relist: every listed object is a change (handlers dedupe by key), and
    /// objects not listed any more are deletions.
    fn replace_all(&self, fresh: Objects<K>) {
        let old = std::mem::replace(&mut *write(&self.shared.objects), fresh.clone());
        for (key, object) in &fresh {
            self.notify(old.get(key), Some(object));
        }
        for (key, object) in &old {
            if !fresh.contains_key(key) {
                self.notify(Some(object), None);
            }
        }
    }

    fn notify(&self, old: Option<&Arc<K>>, new: Option<&Arc<K>>) {
        for handler in read(&self.shared.handlers).iter() {
            handler(old, new);
        }
    }
}

impl<K: Resource> Informer<K> {
    /// The cached object, if any.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        read(&self.shared.objects).get(key).cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        read(&self.shared.objects).values().cloned().collect()
    }

    /// The cached objects of one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        read(&self.shared.objects)
            .iter()
            .filter(|(key, _)| key.namespace == namespace)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Every cached object that `keep` accepts.
    pub fn filter(&self, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        read(&self.shared.objects)
            .values()
            .filter(|object| keep(object))
            .cloned()
            .collect()
    }

    /// Every key in the cache.
    pub fn keys(&self) -> Vec<ObjectKey> {
        read(&self.shared.objects).keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        read(&self.shared.objects).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first listing has arrived.
    pub fn is_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits for the first listing.
    pub async fn wait_synced(&self) {
        let mut synced = self.shared.synced.subscribe();
        // The sender lives as long as the informer, so this only ends when synced.
        let _ = synced.wait_for(|s| *s).await;
    }
}

/// Inserts an object as if the watch had delivered it, for unit tests of controllers
/// that read from informers.
#[cfg(test)]
impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    pub fn insert_for_test(&self, object: K) {
        self.apply(Arc::new(object));
        self.shared.synced.send_replace(true);
    }
}

// A poisoned lock only means a handler panicked; the map itself is still whole.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
