//! What every controller reads and writes through: the client, the settings, the
//! shared informers, and an event recorder.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::config::Config;
use crate::events::Recorder;
use crate::runtime::Informer;

/// Namespace of the nodes' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Shared by all controllers; informers are started once every controller has
/// registered its handlers.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub events: Recorder,
    pub pods: Informer<Pod>,
    pub replica_sets: Informer<ReplicaSet>,
    pub deployments: Informer<Deployment>,
    pub services: Informer<Service>,
    pub endpoints: Informer<Endpoints>,
    pub endpoint_slices: Informer<EndpointSlice>,
    pub nodes: Informer<Node>,
    /// Node heartbeats (Leases in `kube-node-lease` only).
    pub node_leases: Informer<Lease>,
    pub namespaces: Informer<Namespace>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, config: Config) -> Arc<Self> {
        Arc::new(Context {
            events: Recorder::new(client.clone(), "controller-manager"),
            client,
            config,
            pods: Informer::default(),
            replica_sets: Informer::default(),
            deployments: Informer::default(),
            services: Informer::default(),
            endpoints: Informer::default(),
            endpoint_slices: Informer::default(),
            nodes: Informer::default(),
            node_leases: Informer::default(),
            namespaces: Informer::default(),
        })
    }

    /// Starts every shared informer (each on its own task).
    pub fn start_informers(&self) {
        let client = &self.client;
        let config = watcher::Config::default;
        tokio::spawn(self.pods.clone().run(Api::all(client.clone()), config()));
        tokio::spawn(
            self.replica_sets
                .clone()
                .run(Api::all(client.clone()), config()),
        );
        tokio::spawn(
            self.deployments
                .clone()
                .run(Api::all(client.clone()), config()),
        );
        tokio::spawn(
            self.services
                .clone()
                .run(Api::all(client.clone()), config()),
        );
        tokio::spawn(
            self.endpoints
                .clone()
                .run(Api::all(client.clone()), config()),
        );
        tokio::spawn(
            self.endpoint_slices
                .clone()
                .run(Api::all(client.clone()), config()),
        );
        tokio::spawn(self.nodes.clone().run(Api::all(client.clone()), config()));
        tokio::spawn(self.node_leases.clone().run(
            Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
            config(),
        ));
        tokio::spawn(
            self.namespaces
                .clone()
                .run(Api::all(client.clone()), config()),
        );
    }

    /// Waits until every shared informer has its first listing.
    pub async fn wait_synced(&self) {
        self.pods.wait_synced().await;
        self.replica_sets.wait_synced().await;
        self.deployments.wait_synced().await;
        self.services.wait_synced().await;
        self.endpoints.wait_synced().await;
        self.endpoint_slices.wait_synced().await;
        self.nodes.wait_synced().await;
        self.node_leases.wait_synced().await;
        self.namespaces.wait_synced().await;
    }
}
