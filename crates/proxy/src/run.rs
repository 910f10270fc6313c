//! The proxy's main loop: two watchers (Services, EndpointSlices) fill caches and
//! signal changes; one loop rebuilds the model from the caches and syncs the data
//! path, at most once per `min_sync_period` (bursts of changes become one sync), and
//! at least once per `sync_period` (which also repairs a table changed behind our
//! back). On shutdown the data path is removed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::model::{self, Model, NodeContext};
use crate::nft::{Nft, NftError};
use crate::nftables::NftProxier;
use crate::rules::RuleOptions;
use crate::userspace::{UserspaceError, UserspaceProxier};

/// Which data path programs the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The table `ip mast-proxy` (kernel DNAT, round-robin).
    #[default]
    Nftables,
    /// TCP listeners in this process (see [`crate::userspace`] for the limits).
    Userspace,
}

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub mode: Mode,
    /// This node's name (traffic policies `Local`).
    pub node_name: String,
    /// Shortest time between two syncs.
    pub min_sync_period: Duration,
    /// Longest time between two syncs.
    pub sync_period: Duration,
    pub rules: RuleOptions,
    /// How to run `nft`.
    pub nft: Nft,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            mode: Mode::Nftables,
            node_name: String::new(),
            min_sync_period: Duration::from_secs(1),
            sync_period: Duration::from_secs(30),
            rules: RuleOptions::default(),
            nft: Nft::default(),
        }
    }
}

/// Why the proxy stopped or a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("nftables: {0}")]
    Nft(#[from] NftError),
    #[error("userspace: {0}")]
    Userspace(#[from] UserspaceError),
    /// A watcher's cache went away before its first list (the task died).
    #[error("the {0} watcher stopped before its first list")]
    Watcher(&'static str),
}

/// The data path, as one of a fixed set (enum dispatch).
#[derive(Debug)]
pub enum Proxier {
    Nftables(NftProxier),
    Userspace(UserspaceProxier),
}

impl Proxier {
    pub fn new(config: &ProxyConfig) -> Proxier {
        match config.mode {
            Mode::Nftables => {
                Proxier::Nftables(NftProxier::new(config.nft.clone(), config.rules.clone()))
            }
            Mode::Userspace => Proxier::Userspace(UserspaceProxier::new()),
        }
    }

    pub async fn sync(&mut self, model: &Model) -> Result<(), ProxyError> {
        match self {
            Proxier::Nftables(p) => {
                let stats = p.sync(model).await?;
                tracing::debug!(
                    ports = model.ports.len(),
                    endpoints = model.endpoint_count(),
                    generate_ms = stats.generate.as_secs_f64() * 1e3,
                    apply_ms = stats.apply.as_secs_f64() * 1e3,
                    bytes = stats.bytes,
                    full = stats.full,
                    "nftables synced"
                );
            }
            Proxier::Userspace(p) => {
                p.sync(model).await?;
                tracing::debug!(listeners = p.addresses().len(), "userspace synced");
            }
        }
        Ok(())
    }

    /// Removes what the data path installed.
    pub async fn cleanup(&mut self) -> Result<(), ProxyError> {
        match self {
            Proxier::Nftables(p) => p.cleanup().await?,
            Proxier::Userspace(p) => p.cleanup(),
        }
        Ok(())
    }
}

/// Starts a watcher filling a cache; every change wakes `changed`.
fn watch<K>(client: &Client, changed: Arc<Notify>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
    K: 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying")
                }
            }
        }
    });
    (reader, task)
}

/// Runs until `shutdown` resolves, then removes the data path.
pub async fn run(
    client: Client,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let changed = Arc::new(Notify::new());
    let (services, services_task) = watch::<Service>(&client, changed.clone());
    let (slices, slices_task) = watch::<EndpointSlice>(&client, changed.clone());
    let _abort = AbortOnDrop(vec![services_task, slices_task]);

    // The first sync waits for both caches: a sync from half the picture would drop
    // every service whose slices are not in yet.
    tokio::select! {
        () = &mut shutdown => return Ok(()),
        ready = async {
            services.wait_until_ready().await.map_err(|_| ProxyError::Watcher("Service"))?;
            slices.wait_until_ready().await.map_err(|_| ProxyError::Watcher("EndpointSlice"))
        } => ready?,
    }
    tracing::info!(mode = ?config.mode, node = %config.node_name, "proxy caches ready");

    let node = NodeContext {
        node_name: config.node_name.clone(),
    };
    let mut proxier = Proxier::new(&config);
    let mut applied: Option<Model> = None;
    let mut last_sync: Option<Instant> = None;
    let mut failures: u32 = 0;
    let mut periodic = Instant::now();
    loop {
        // The first round syncs at once; later rounds wait for a change, the periodic
        // deadline, or a retry.
        if last_sync.is_some() {
            let retry = (failures > 0).then(|| {
                let factor = 1u32 << failures.min(5);
                config
                    .min_sync_period
                    .max(Duration::from_millis(100))
                    .saturating_mul(factor)
                    .min(config.sync_period)
            });
            tokio::select! {
                () = &mut shutdown => break,
                () = changed.notified() => {}
                () = tokio::time::sleep_until(periodic + config.sync_period) => {}
                () = async {
                    match retry {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
        if let Some(last) = last_sync {
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep_until(last + config.min_sync_period) => {}
            }
        }
        let model = model::build(
            services.state().iter().map(|s| s.as_ref()),
            slices.state().iter().map(|s| s.as_ref()),
            &node,
        );
        let due = periodic.elapsed() >= config.sync_period;
        if failures == 0 && !due && applied.as_ref() == Some(&model) {
            continue;
        }
        let start = Instant::now();
        last_sync = Some(start);
        match proxier.sync(&model).await {
            Ok(()) => {
                tracing::info!(
                    ports = model.ports.len(),
                    endpoints = model.endpoint_count(),
                    took_ms = start.elapsed().as_secs_f64() * 1e3,
                    "synced"
                );
                failures = 0;
                periodic = Instant::now();
                applied = Some(model);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                applied = None;
                tracing::warn!(error = %e, failures, "sync failed; will retry");
            }
        }
    }
    tracing::info!("proxy stopping; removing its rules");
    proxier.cleanup().await
}

/// Stops the watcher tasks when the loop ends, however it ends.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
