//! mast's cluster DNS: the cluster domain (`cluster.local`) served from Services and
//! EndpointSlices with the CoreDNS kubernetes plugin's semantics (the Kubernetes DNS
//! specification), every other name forwarded to the host's resolvers. Built on
//! hickory-server (UDP and TCP); `mast dns` runs it.
//!
//! Layout:
//! - [`model`]: the cluster as DNS sees it (namespaces, services, ready endpoints),
//!   built from API objects. Pure.
//! - [`resolve`]: one question → an authoritative answer (A/AAAA/SRV/CNAME/PTR/SOA/NS,
//!   NXDOMAIN vs NODATA with the SOA) or "not ours". Pure.
//! - [`forward`]: names outside the zone to the upstream resolvers, with a deadline.
//! - [`server`]: the hickory request handler and listeners; the shared model.
//! - [`watch`]: kube-rs reflectors keeping the model current.
//! - [`ensure`]: the `kube-system/kube-dns` Service and this instance's endpoint.

pub mod ensure;
pub mod forward;
pub mod model;
pub mod resolve;
pub mod server;
pub mod watch;

/// hickory's DNS message types, for clients and tests of this server.
pub use hickory_server::proto;
pub use model::Model;
pub use resolve::Zone;
pub use server::{Handler, Running, SharedModel, serve};
