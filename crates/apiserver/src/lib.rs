//! mast's Kubernetes API server: the REST API over the store, with a watch cache.
//!
//! Layout:
//! - [`server`]: startup, the router (a function, so tests can drive it in process),
//!   health, metrics endpoints, shutdown.
//! - [`path`]: resource paths into (resource, namespace, name, subresource).
//! - [`admission`]: changes made to new objects (default tolerations).
//! - [`allocator`]: Services' cluster IPs and node ports, one store key per item, and
//!   the repair pass; [`kubernetes_service`]: the API server's own `kubernetes` Service
//!   and its endpoints; [`identity`]: each API server's identity Lease.
//! - [`health`]: `/readyz` and its checks (the store, named after its backend).
//! - [`handlers`]: the verbs — get/list (`read`), create/update/patch (`write`),
//!   delete/deletecollection (`delete`), `/scale` and `pods/binding`
//!   (`subresources`), and `watch`.
//! - [`kubelet_client`]: where a node's kubelet listens, and a streaming GET to it
//!   (`pods/log`).
//! - [`watch_cache`]: per resource, one store watch feeding every client watch.
//! - [`objects`]: API objects in the store (keys, JSON, resourceVersion = revision);
//!   [`fencing`]: a leader's fence header, and the Lease check that guards its writes.
//! - [`discovery`], [`openapi`] (the minimal v3 kubectl's validation needs), [`metrics`], [`kubeconfig`], [`codec`] (JSON/YAML, limits),
//!   [`query`] (list, watch and delete options), [`meta`] (object metadata),
//!   [`error`] (every error as a Kubernetes Status).

pub mod admission;
pub mod allocator;
pub mod codec;
pub mod discovery;
pub mod error;
pub mod fencing;
pub mod handlers;
pub mod health;
pub mod identity;
pub mod kubeconfig;
pub mod kubelet_client;
pub mod kubernetes_service;
pub mod meta;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod path;
pub mod query;
pub mod server;
pub mod state;
pub mod watch_cache;

pub use server::{Config, Running, router, start};
pub use state::AppState;
