//! The controller-manager's settings (flags of `mast controller-manager` and
//! `mast server`).

use std::time::Duration;

/// Settings shared by the controllers; defaults are upstream's unless said otherwise.
#[derive(Debug, Clone)]
pub struct Config {
    /// The range pod networks are carved from (k3s's default).
    pub cluster_cidr: String,
    /// Prefix length of each node's podCIDR.
    pub node_cidr_mask_size: u8,
    /// How long a node may go without a heartbeat before it is Unknown.
    pub node_monitor_grace_period: Duration,
    /// How long a newly registered node may take to post its first status.
    pub node_startup_grace_period: Duration,
    /// Workers per controller (upstream's `--concurrent-*-syncs`).
    pub workers: Workers,
}

/// Concurrent workers per controller.
#[derive(Debug, Clone)]
pub struct Workers {
    pub replicaset: usize,
    pub deployment: usize,
    pub endpoints: usize,
    pub garbage_collector: usize,
    pub namespace: usize,
    pub node: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_cidr: "10.42.0.0/16".into(),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            node_startup_grace_period: Duration::from_secs(60),
            workers: Workers::default(),
        }
    }
}

impl Default for Workers {
    /// Fewer than upstream's (5 for most, 20 for the garbage collector): reconciles
    /// here are short and the API server is usually on the same few cores.
    fn default() -> Self {
        Workers {
            replicaset: 4,
            deployment: 4,
            endpoints: 4,
            garbage_collector: 8,
            namespace: 2,
            node: 2,
        }
    }
}
