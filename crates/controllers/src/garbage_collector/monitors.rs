//! What feeds the graph: the shared informers for the kinds the controller-manager
//! already watches, and one metadata-keeping watch per other resource the API server
//! serves (found by discovery) that can be listed, watched and deleted.
//!
//! Upstream's monitors, in small. The API server sends whole objects (it has no
//! metadata-only lists), so each watch keeps nothing but the graph node it makes of
//! an object's metadata.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::cluster::{ResourceInfo, Resources};
use super::collector::State;
use super::graph::{Node, Source};
use crate::context::{Context, NODE_LEASE_NAMESPACE};
use crate::runtime::Informer;

/// Resources the shared informers already watch (group, plural); the collector
/// feeds on those rather than opening a second watch.
const SHARED: &[(&str, &str)] = &[
    ("", "pods"),
    ("apps", "replicasets"),
    ("apps", "deployments"),
    ("", "services"),
    ("", "endpoints"),
    ("discovery.k8s.io", "endpointslices"),
    ("", "nodes"),
    ("", "namespaces"),
];

/// Never owners nor owned in practice, and by far the busiest: upstream's collector
/// ignores them too.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// Sources of the dynamic watches start here (the shared informers use 0..).
const DYNAMIC_SOURCES: Source = 100;

/// Longest wait between discovery attempts.
const DISCOVERY_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Registers the collector on the shared informers; call before they start.
pub fn attach_shared(ctx: &Context, state: &Arc<State>) {
    attach(&ctx.pods, state, 0);
    attach(&ctx.replica_sets, state, 1);
    attach(&ctx.deployments, state, 2);
    attach(&ctx.services, state, 3);
    attach(&ctx.endpoints, state, 4);
    attach(&ctx.endpoint_slices, state, 5);
    attach(&ctx.nodes, state, 6);
    // Node heartbeats (owned by their Node); other Leases come from a dynamic watch.
    attach(&ctx.node_leases, state, 7);
    attach(&ctx.namespaces, state, 8);
}

fn attach<K>(informer: &Informer<K>, state: &Arc<State>, source: Source)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let state = state.clone();
    let api_version = K::api_version(&()).into_owned();
    let kind = K::kind(&()).into_owned();
    informer.on_change(Box::new(move |old, new| {
        if let Some(old) = old {
            let replaced = new.is_none_or(|new| new.meta().uid != old.meta().uid);
            if replaced && let Some(uid) = old.meta().uid.as_deref() {
                state.remove(uid);
            }
        }
        if let Some(node) =
            new.and_then(|new| Node::from_meta(&api_version, &kind, source, new.meta()))
        {
            state.upsert(node);
        }
    }));
}

/// Discovers the served resources, starts a watch for each one the shared
/// informers do not cover, and marks the graph synced once every watch has listed.
pub async fn run(ctx: Arc<Context>, state: Arc<State>) {
    let discovered = discover(&ctx.client).await;
    let mut resources = Resources::default();
    for (api, caps) in &discovered {
        resources.insert(ResourceInfo {
            api: api.clone(),
            namespaced: caps.scope == Scope::Namespaced,
        });
    }
    state.set_resources(resources);
    let mut synced = Vec::new();
    let mut source = DYNAMIC_SOURCES;
    for (api, _) in discovered
        .into_iter()
        .filter(|(a, c)| watched_dynamically(a, c))
    {
        let (tx, rx) = watch::channel(false);
        synced.push(rx);
        tokio::spawn(watch_resource(
            ctx.client.clone(),
            api,
            state.clone(),
            source,
            tx,
        ));
        source = source.saturating_add(1);
    }
    ctx.wait_synced().await;
    for mut rx in synced {
        // The sender lives as long as its watch task, which runs for ever.
        let _ = rx.wait_for(|s| *s).await;
    }
    state.mark_synced();
}

/// Whether the collector opens its own watch on this resource.
fn watched_dynamically(api: &ApiResource, caps: &ApiCapabilities) -> bool {
    let id = (api.group.as_str(), api.plural.as_str());
    [verbs::LIST, verbs::WATCH, verbs::DELETE]
        .iter()
        .all(|v| caps.supports_operation(v))
        && !SHARED.contains(&id)
        && !IGNORED.contains(&id)
}

/// The served top-level resources at each group's preferred version, retried until
/// discovery answers.
async fn discover(client: &Client) -> Vec<(ApiResource, ApiCapabilities)> {
    let mut delay = Duration::from_secs(1);
    loop {
        match discover_once(client).await {
            Ok(found) if !found.is_empty() => return found,
            Ok(_) => tracing::warn!("discovery found no resources; retrying"),
            Err(e) => tracing::warn!(error = %e, "discovery failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(DISCOVERY_BACKOFF_MAX);
    }
}

/// One discovery pass (aggregated discovery, else one request per group version).
pub async fn discover_once(
    client: &Client,
) -> Result<Vec<(ApiResource, ApiCapabilities)>, kube::Error> {
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => d,
        Err(_) => Discovery::new(client.clone()).run().await?,
    };
    Ok(discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .collect())
}

/// Watches one resource for ever, feeding the graph.
async fn watch_resource(
    client: Client,
    api: ApiResource,
    state: Arc<State>,
    source: Source,
    synced: watch::Sender<bool>,
) {
    let mut config = watcher::Config::default();
    if api.group == Lease::group(&()) && api.kind == Lease::kind(&()) {
        // Node heartbeats come from the shared informer; a second watch of them
        // would double the busiest traffic the collector sees.
        config = config.fields(&format!("metadata.namespace!={NODE_LEASE_NAMESPACE}"));
    }
    let objects: Api<DynamicObject> = Api::all_with(client, &api);
    let mut stream = watcher(objects, config).default_backoff().boxed();
    let mut relisted: Option<Vec<Node>> = None;
    let node =
        |o: &DynamicObject| Node::from_meta(&api.api_version, &api.kind, source, &o.metadata);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => relisted = Some(Vec::new()),
            Ok(watcher::Event::InitApply(o)) => {
                if let (Some(buffer), Some(n)) = (relisted.as_mut(), node(&o)) {
                    buffer.push(n);
                }
            }
            Ok(watcher::Event::InitDone) => {
                state.replace_source(source, relisted.take().unwrap_or_default());
                synced.send_replace(true);
            }
            Ok(watcher::Event::Apply(o)) => {
                if let Some(n) = node(&o) {
                    state.upsert(n);
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                if let Some(uid) = o.metadata.uid.as_deref() {
                    state.remove(uid);
                }
            }
            Err(e) => tracing::debug!(kind = %api.kind, error = %e, "watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node as KubeNode, Pod, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    fn plural<K: Resource<DynamicType = ()>>() -> (String, String) {
        (K::group(&()).into_owned(), K::plural(&()).into_owned())
    }

    #[test]
    fn shared_lists_exactly_the_kinds_attached_to_shared_informers() {
        let mut attached = vec![
            plural::<Pod>(),
            plural::<ReplicaSet>(),
            plural::<Deployment>(),
            plural::<Service>(),
            plural::<Endpoints>(),
            plural::<EndpointSlice>(),
            plural::<KubeNode>(),
            plural::<Namespace>(),
        ];
        let mut shared: Vec<(String, String)> = SHARED
            .iter()
            .map(|(g, p)| (g.to_string(), p.to_string()))
            .collect();
        attached.sort();
        shared.sort();
        assert_eq!(attached, shared);
    }

    #[test]
    fn only_listable_watchable_deletable_unshared_resources_get_a_watch() {
        let caps = |ops: &[&str]| ApiCapabilities {
            scope: Scope::Namespaced,
            subresources: Vec::new(),
            operations: ops.iter().map(|s| s.to_string()).collect(),
        };
        let all = caps(&[verbs::LIST, verbs::WATCH, verbs::DELETE, verbs::GET]);
        let cm = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
        assert!(watched_dynamically(&cm, &all));
        assert!(!watched_dynamically(
            &cm,
            &caps(&[verbs::LIST, verbs::WATCH])
        ));
        assert!(!watched_dynamically(&ApiResource::erase::<Pod>(&()), &all));
        assert!(!watched_dynamically(
            &ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&()),
            &all
        ));
        assert!(watched_dynamically(&ApiResource::erase::<Lease>(&()), &all));
    }
}
