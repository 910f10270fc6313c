//! Pods bound to this process's nodes: one kube-rs watch feeds per-pod workers.
//!
//! The watch (fieldSelector `spec.nodeName=NAME`; for hollow nodes one watch of all
//! bound pods, dispatched by spec.nodeName) only hands each pod's latest object to its
//! worker, starting one for a new UID. A relist (after a 410 or a reconnect) tells the
//! workers of pods it no longer shows that their pod is gone. Housekeeping removes
//! runtime pods no worker accounts for (orphans left by a restart).

pub mod dns;
pub mod env;
pub mod probe;
pub mod service_env;
pub mod status;
pub mod volumes;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::metrics::Metrics;
use crate::state::Shared;

/// Follows the pods of this process's nodes until the process ends; flips `synced`
/// once the first list is in.
pub async fn watch_pods(shared: Arc<Shared>, synced: watch::Sender<bool>) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let selector = match shared.nodes.as_slice() {
        [only] => format!("spec.nodeName={}", only.name),
        _ => "spec.nodeName!=".to_string(),
    };
    let mut stream = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    // Dropping the set (when this task is aborted) aborts the workers.
    let mut workers = JoinSet::new();
    let mut listing: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Err(e) => tracing::debug!(error = %e, "pod watch"),
            Ok(watcher::Event::Init) => listing = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(pod)) => {
                if let (Some(seen), Some(uid)) = (listing.as_mut(), pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                dispatch(&shared, &mut workers, pod);
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(seen) = listing.take() {
                    forget_unlisted(&shared, &seen);
                }
                synced.send_replace(true);
            }
            Ok(watcher::Event::Apply(pod)) => dispatch(&shared, &mut workers, pod),
            Ok(watcher::Event::Delete(pod)) => gone(&shared, &pod),
        }
        while workers.try_join_next().is_some() {}
    }
}

/// Hands `pod` to its worker, starting one if it has none.
fn dispatch(shared: &Arc<Shared>, workers: &mut JoinSet<()>, pod: Pod) {
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let Some(node) = node_name.and_then(|n| shared.by_name.get(n)) else {
        return;
    };
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let pod = Arc::new(pod);
    let mut map = node.workers();
    if let Some(sender) = map.get(&uid) {
        sender.send_replace(Some(pod));
        return;
    }
    let (sender, receiver) = watch::channel(Some(pod));
    map.insert(uid.clone(), sender);
    drop(map);
    let worker = worker::Worker::new(shared.clone(), node.clone(), uid, receiver);
    workers.spawn(worker.run());
}

/// Tells `pod`'s worker that the object is gone.
fn gone(shared: &Shared, pod: &Pod) {
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let (Some(node), Some(uid)) = (
        node_name.and_then(|n| shared.by_name.get(n)),
        pod.metadata.uid.as_deref(),
    ) else {
        return;
    };
    if let Some(sender) = node.workers().get(uid) {
        sender.send_replace(None);
    }
}

/// After a relist: pods the list no longer shows were deleted while the watch was down.
fn forget_unlisted(shared: &Shared, seen: &HashSet<String>) {
    for node in &shared.nodes {
        for (uid, sender) in node.workers().iter() {
            if !seen.contains(uid) {
                sender.send_replace(None);
            }
        }
    }
}

/// How often the pod lifecycle event generator relists the runtime (upstream's 1 s).
const RELIST_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// The pod lifecycle event generator: relists every node's runtime each second and
/// wakes the workers of pods whose containers or sandboxes appeared, went or changed
/// state (a container that exited on its own is only seen this way).
pub async fn pleg(shared: Arc<Shared>) {
    let mut previous: Vec<HashMap<String, (String, i32)>> =
        vec![HashMap::new(); shared.nodes.len()];
    loop {
        tokio::time::sleep(RELIST_PERIOD).await;
        for (node, seen) in shared.nodes.iter().zip(previous.iter_mut()) {
            let entries = match node.runtime.relist().await {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::debug!(node = %node.name, error = %e, "relist");
                    continue;
                }
            };
            let current: HashMap<String, (String, i32)> = entries
                .into_iter()
                .map(|e| (e.id, (e.uid, e.state)))
                .collect();
            let mut changed: HashSet<&str> = HashSet::new();
            for (id, (uid, state)) in &current {
                if seen.get(id).is_none_or(|(_, old)| old != state) {
                    changed.insert(uid);
                }
            }
            for (id, (uid, _)) in seen.iter() {
                if !current.contains_key(id) {
                    changed.insert(uid);
                }
            }
            if !changed.is_empty() {
                let workers = node.workers();
                for uid in changed {
                    if let Some(sender) = workers.get(uid) {
                        // Same object, new notification: the worker syncs now.
                        sender.send_modify(|_| {});
                    }
                }
            }
            *seen = current;
        }
    }
}

/// Every `housekeeping_interval` once the pods are listed: runtime pods without a
/// worker are stopped and removed.
pub async fn housekeeping(shared: Arc<Shared>, mut synced: watch::Receiver<bool>) {
    if synced.wait_for(|s| *s).await.is_err() {
        return;
    }
    loop {
        for node in &shared.nodes {
            let listed = match node.runtime.list_pods().await {
                Ok(pods) => pods,
                Err(e) => {
                    tracing::warn!(node = %node.name, error = %e, "listing runtime pods");
                    continue;
                }
            };
            let orphans: Vec<_> = {
                let workers = node.workers();
                listed
                    .into_iter()
                    .filter(|p| !workers.contains_key(&p.uid))
                    .collect()
            };
            for orphan in orphans {
                tracing::info!(
                    node = %node.name,
                    pod = %format!("{}/{}", orphan.namespace, orphan.name),
                    uid = %orphan.uid,
                    "removing a pod the API no longer has"
                );
                let stopped = node
                    .runtime
                    .stop_pod(&orphan.uid, std::time::Duration::ZERO)
                    .await;
                match stopped {
                    Ok(()) => match node.runtime.remove_pod(&orphan.uid).await {
                        Ok(()) => Metrics::inc(&shared.metrics.orphans_removed),
                        Err(e) => tracing::warn!(error = %e, "removing an orphaned pod"),
                    },
                    Err(e) => tracing::warn!(error = %e, "stopping an orphaned pod"),
                }
            }
        }
        tokio::time::sleep(shared.config.housekeeping_interval).await;
    }
}
