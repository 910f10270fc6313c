//! What every handler shares: the store (as objects), the watch caches, the metrics.

use std::sync::Arc;

use store::AnyStore;

use crate::admission::Admission;
use crate::allocator::{Allocators, ServiceRanges};
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::watch_cache::Caches;

/// Shared server state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    objects: Objects,
    caches: Caches,
    metrics: Metrics,
    backend: &'static str,
    admission: Admission,
    allocators: Allocators,
    /// Set when the server stops: open watches end, so a graceful stop need not wait
    /// for clients to hang up.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Starts the watch caches over `store`.
    pub fn new(store: AnyStore, watch_cache_size: usize) -> Self {
        Self::with_admission(store, watch_cache_size, Admission::default())
    }

    /// Starts the watch caches over `store`, admitting new objects with `admission`.
    pub fn with_admission(store: AnyStore, watch_cache_size: usize, admission: Admission) -> Self {
        Self::with_services(store, watch_cache_size, admission, ServiceRanges::default())
    }

    /// As [`AppState::with_admission`], allocating Service addresses and node ports
    /// from `ranges`.
    pub fn with_services(
        store: AnyStore,
        watch_cache_size: usize,
        admission: Admission,
        ranges: ServiceRanges,
    ) -> Self {
        let metrics = Metrics::new();
        let caches = Caches::start(&store, watch_cache_size, &metrics);
        let backend = store.backend_name();
        Self {
            inner: Arc::new(Inner {
                allocators: Allocators::new(store.clone(), ranges),
                objects: Objects::new(store, metrics.clone()),
                caches,
                metrics,
                backend,
                admission,
                stopping: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// Ends every open watch (the server is stopping).
    pub fn end_watches(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Resolves once [`AppState::end_watches`] was called.
    pub fn watches_ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.inner.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|s| *s).await;
        }
    }

    pub fn objects(&self) -> &Objects {
        &self.inner.objects
    }

    pub fn caches(&self) -> &Caches {
        &self.inner.caches
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    pub fn allocators(&self) -> &Allocators {
        &self.inner.allocators
    }

    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }
}
