//! Remembers this controller's own slice writes until the cache shows them (upstream's
//! `EndpointSliceTracker`). Syncing from a cache that lags behind them would be wrong
//! in a costly way: a slice just created but not cached yet would be created again.
//! So a sync first checks that the cache caught up, and waits if not.
//!
//! Slices have no generation here, so "caught up" compares resourceVersions as
//! numbers (mast's, like etcd's, are revisions); versions that are not numbers count
//! as caught up. Expectations expire, so that one missed (a slice deleted by someone
//! else before we ever saw it) cannot stall a service for good.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::time::Instant;

use crate::runtime::ObjectKey;

/// How long an expectation may wait for the cache.
const EXPIRY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Present at this resourceVersion or a later one.
    Written(String),
    /// Gone (or being deleted): no slice of this name with this uid.
    Deleted(Option<String>),
}

/// Per service, per slice name: what is expected, since when.
type Expectations = HashMap<ObjectKey, HashMap<String, (Expect, Instant)>>;

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    expected: Mutex<Expectations>,
}

impl Tracker {
    /// After a create or update answered with `slice`.
    pub(crate) fn written(&self, service: &ObjectKey, slice: &EndpointSlice) {
        let rv = slice.metadata.resource_version.clone().unwrap_or_default();
        self.expect(service, slice, Expect::Written(rv));
    }

    /// After a delete of `slice`.
    pub(crate) fn deleted(&self, service: &ObjectKey, slice: &EndpointSlice) {
        self.expect(service, slice, Expect::Deleted(slice.metadata.uid.clone()));
    }

    fn expect(&self, service: &ObjectKey, slice: &EndpointSlice, expect: Expect) {
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.lock()
            .entry(service.clone())
            .or_default()
            .insert(name, (expect, Instant::now()));
    }

    /// Whether the cached slices of `service` miss some of our writes; expectations
    /// met (or expired) are dropped.
    pub(crate) fn is_stale(
        &self,
        service: &ObjectKey,
        cached: &[std::sync::Arc<EndpointSlice>],
    ) -> bool {
        let mut all = self.lock();
        let Some(expected) = all.get_mut(service) else {
            return false;
        };
        let now = Instant::now();
        expected.retain(|name, (expect, since)| {
            let slice = cached
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            let met = match expect {
                Expect::Written(rv) => {
                    slice.is_some_and(|s| at_least(s.metadata.resource_version.as_deref(), rv))
                }
                Expect::Deleted(uid) => slice.is_none_or(|s| {
                    s.metadata.uid != *uid || s.metadata.deletion_timestamp.is_some()
                }),
            };
            !met && now.duration_since(*since) < EXPIRY
        });
        let stale = !expected.is_empty();
        if !stale {
            all.remove(service);
        }
        stale
    }

    /// Drops what was expected for a deleted service.
    pub(crate) fn forget(&self, service: &ObjectKey) {
        self.lock().remove(service);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expectations> {
        self.expected.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the cached version is the written one or later.
fn at_least(cached: Option<&str>, written: &str) -> bool {
    let Some(cached) = cached else {
        return false;
    };
    match (cached.parse::<u64>(), written.parse::<u64>()) {
        (Ok(c), Ok(w)) => c >= w,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn slice(name: &str, rv: &str, uid: &str) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: None,
            ports: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sync_waits_until_the_cache_shows_our_writes() {
        let tracker = Tracker::default();
        let svc = ObjectKey::new("ns", "web");
        assert!(!tracker.is_stale(&svc, &[]));

        tracker.written(&svc, &slice("web-a", "10", "u1"));
        assert!(tracker.is_stale(&svc, &[]), "created, not cached yet");
        assert!(tracker.is_stale(&svc, &[Arc::new(slice("web-a", "9", "u1"))]));
        assert!(!tracker.is_stale(&svc, &[Arc::new(slice("web-a", "12", "u1"))]));
        // Met expectations are dropped.
        assert!(!tracker.is_stale(&svc, &[]));

        tracker.deleted(&svc, &slice("web-a", "12", "u1"));
        assert!(tracker.is_stale(&svc, &[Arc::new(slice("web-a", "12", "u1"))]));
        let mut deleting = slice("web-a", "13", "u1");
        deleting.metadata.deletion_timestamp = Some(Time(Default::default()));
        assert!(!tracker.is_stale(&svc, &[Arc::new(deleting)]));

        tracker.written(&svc, &slice("web-b", "20", "u2"));
        tokio::time::sleep(EXPIRY + Duration::from_secs(1)).await;
        assert!(!tracker.is_stale(&svc, &[]), "expired");

        tracker.written(&svc, &slice("web-c", "x", "u3"));
        assert!(!tracker.is_stale(&svc, &[Arc::new(slice("web-c", "y", "u3"))]));
        tracker.written(&svc, &slice("web-c", "5", "u3"));
        tracker.forget(&svc);
        assert!(!tracker.is_stale(&svc, &[]));
    }
}
