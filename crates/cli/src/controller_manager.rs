//! `mast controller-manager`: the controllers alone, talking to an API server through a
//! kubeconfig. `mast server` runs the same controllers in process.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

/// Controller settings shared by `mast controller-manager` and `mast server`.
#[derive(Debug, Clone, Args)]
pub struct ControllerOptions {
    /// The range nodes' podCIDRs are carved from.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Prefix length of each node's podCIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// How long a node may miss heartbeats before it is marked Unknown (e.g. 40s).
    #[arg(long, default_value = "40s", value_parser = crate::flags::duration)]
    pub node_monitor_grace_period: Duration,
    /// How long a new node may take to post its first status (e.g. 1m).
    #[arg(long, default_value = "60s", value_parser = crate::flags::duration)]
    pub node_startup_grace_period: Duration,
}

impl ControllerOptions {
    pub fn config(&self) -> controllers::Config {
        controllers::Config {
            cluster_cidr: self.cluster_cidr.clone(),
            node_cidr_mask_size: self.node_cidr_mask_size,
            node_monitor_grace_period: self.node_monitor_grace_period,
            node_startup_grace_period: self.node_startup_grace_period,
            ..controllers::Config::default()
        }
    }
}

/// Flags of `mast controller-manager`.
#[derive(Debug, Args)]
pub struct ControllerManagerArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    #[command(flatten)]
    pub options: ControllerOptions,
    #[command(flatten)]
    pub election: crate::election::LeaderElectionArgs,
}

/// The Lease the controller-managers elect their leader through (upstream's name).
pub const LEASE: &str = "kube-controller-manager";

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let connection = crate::scheduler::connection(&args.kubeconfig)?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let gate = crate::election::Gate::start(&args.election, LEASE, &connection, stop_rx)?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        () = controllers::run(gate.client.clone(), args.options.config(), gate.leading.clone()) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    // The controllers are gone (dropped above); now hand the Lease over.
    let _ = stop.send(true);
    gate.finished().await;
    Ok(())
}
