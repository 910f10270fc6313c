//! mast's controller-manager: the controllers that turn what users declare into what
//! runs.
//!
//! Layout:
//! - `runtime/`: what every controller shares: `Informer` (one watch per resource, a
//!   cache, change handlers), `WorkQueue` (deduplicated keys, backoff), and `run`
//!   (workers that reconcile keys while this instance leads).
//! - `context.rs`: the client, settings, shared informers and event recorder.
//! - `selector.rs`, `claim.rs`: label selectors as controllers read them, and
//!   upstream's adopt/release rule for the objects they select.
//! - One module per controller: `replicaset/`, `deployment/`, `endpoints/`,
//!   `endpointslice/`, `node_ipam/`, `node_lifecycle/`, `garbage_collector/`,
//!   `namespace/`. Each registers handlers that only enqueue keys, and reconciles a
//!   key from the caches, level-based and idempotent, as upstream's controllers do.
//! - `manager.rs`: builds them all and runs them.

pub mod claim;
pub mod config;
pub mod context;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
mod error;
pub mod events;
pub mod garbage_collector;
pub mod manager;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod replicaset;
pub mod runtime;
pub mod selector;

pub use config::Config;
pub use error::{Error, ignore_not_found};
pub use manager::run;
