//! mast's kubelet: registers a Node, heartbeats through its Lease, runs the pods bound
//! to it through a container runtime and reports their status; serves `/pods`,
//! `/metrics` and container logs over HTTP. One process can also run many hollow
//! (fake) nodes for scale tests.
//!
//! Layout:
//! - [`config`]: the configuration (upstream's defaults) and flag parsers.
//! - [`host`]: what the machine has (CPUs, memory, disk, OS, node IP).
//! - [`state`]: what the tasks share; one [`state::NodeState`] per node.
//! - [`node`]: the Node object: registration, status, the pod CIDR from its spec.
//! - [`lease`]: the heartbeat Lease in `kube-node-lease`.
//! - [`pods`]: the pod watch, per-pod [`pods::worker`]s, [`pods::status`] building.
//! - [`runtime`]: the [`runtime::Runtime`] seam (CRI-shaped) and [`runtime::fake`].
//! - [`ipam`]: pod IPs from the pod CIDR (the fake's stand-in for CNI host-local).
//! - [`server`]: the HTTP endpoints.
//! - [`hollow`]: N fake nodes in one process.
//! - [`pace`]: periodic work spread over a period, for many nodes from one task.
//! - [`metrics`], [`time`]: counters; API timestamps.
//! - [`run`]: wiring it together until shutdown.

pub mod config;
pub mod hollow;
pub mod host;
pub mod ipam;
pub mod lease;
pub mod metrics;
pub mod node;
pub mod pace;
pub mod pods;
pub mod run;
pub mod runtime;
pub mod server;
pub mod state;
pub mod time;

pub use config::{KubeletConfig, RuntimeKind};
pub use run::{RunError, run};
