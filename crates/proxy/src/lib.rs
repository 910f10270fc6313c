//! mast's service proxy: makes every Service's ClusterIP and NodePorts lead to its
//! ready endpoints, round-robin, on the node it runs on.
//!
//! Layout:
//! - [`model`]: Services + EndpointSlices → per service port, the usable endpoints
//!   (pure; upstream kube-proxy's selection rules);
//! - [`rules`]: model → `nft -f` script for the table `ip mast-proxy` (pure);
//! - [`nft`]: runs `nft` (one script, one transaction);
//! - [`nftables`]: the nftables data path (full and incremental syncs);
//! - [`userspace`]: the userspace fallback (TCP listeners, round-robin);
//! - [`run`]: watchers, the batched sync loop, cleanup on shutdown;
//! - [`cidr`]: IPv4 CIDRs from flags.

pub mod cidr;
pub mod model;
pub mod nft;
pub mod nftables;
pub mod rules;
pub mod run;
pub mod userspace;

pub use cidr::Ipv4Cidr;
pub use model::{Model, NodeContext};
pub use nft::Nft;
pub use rules::{RuleOptions, TABLE};
pub use run::{Mode, ProxyConfig, ProxyError, run};
