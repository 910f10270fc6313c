//! Keeps the [`SharedModel`] current: kube-rs reflectors over Namespaces, Services and
//! EndpointSlices; any change wakes one task that rebuilds the model from the three
//! caches (changes arriving together are folded into one rebuild).
//!
//! Rebuilding whole is O(services + slices) per change batch: simple, and cheap next to
//! the watch traffic that causes it at the sizes this cluster runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::model::Model;
use crate::server::SharedModel;

/// How long a rebuild waits for more changes to fold in; at least as long as the last
/// rebuild took, so that under constant churn rebuilding takes at most half a core
/// (10 000 services with 30 000 endpoints rebuild in about 70 ms, release build).
const SETTLE: Duration = Duration::from_millis(20);

/// Follows the cluster until the future is dropped.
pub async fn run(client: Client, shared: Arc<SharedModel>) {
    let changed = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let listed = Arc::new(AtomicUsize::new(0));
    let namespaces = reflect::<Namespace>(&client, &changed, &listed, &mut tasks);
    let services = reflect::<Service>(&client, &changed, &listed, &mut tasks);
    let slices = reflect::<EndpointSlice>(&client, &changed, &listed, &mut tasks);
    let mut last_rebuild = Duration::ZERO;
    loop {
        changed.notified().await;
        tokio::time::sleep(SETTLE.max(last_rebuild)).await;
        let started = std::time::Instant::now();
        // Each reflector counts its first complete list once.
        let synced = listed.load(Ordering::Acquire) >= 3;
        let (ns, svc, eps) = (namespaces.state(), services.state(), slices.state());
        let mut model = Model::build(
            ns.iter().map(Arc::as_ref),
            svc.iter().map(Arc::as_ref),
            eps.iter().map(Arc::as_ref),
        );
        model.serial = serial();
        shared.replace(model);
        last_rebuild = started.elapsed();
        if synced && !shared.is_synced() {
            tracing::info!(
                services = svc.len(),
                slices = eps.len(),
                "dns: cluster listed"
            );
            shared.set_synced();
        }
    }
}

/// A reflector over all objects of `K`, driven by a task in `tasks` that wakes
/// `changed` on every event and counts its first complete list in `listed`.
fn reflect<K>(
    client: &Client,
    changed: &Arc<Notify>,
    listed: &Arc<AtomicUsize>,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let changed = changed.clone();
    let listed = listed.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut counted = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) if !counted => {
                    counted = true;
                    listed.fetch_add(1, Ordering::AcqRel);
                    changed.notify_one();
                }
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::debug!(kind = %K::kind(&()), error = %e, "dns watch"),
            }
        }
    });
    store
}

/// The SOA serial: seconds since the epoch, as CoreDNS uses its last-change time.
fn serial() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}
