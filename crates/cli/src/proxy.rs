//! `mast proxy`: the service proxy of one node, against an API server, until SIGINT
//! or SIGTERM; on either it removes its nftables table (or closes its listeners).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use proxy::{Ipv4Cidr, Mode, ProxyConfig, RuleOptions};
use tokio::signal::unix::{SignalKind, signal};

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Kernel DNAT in the nftables table `ip mast-proxy`, round-robin.
    Nftables,
    /// TCP listeners in this process: NodePorts, and each ClusterIP a.b.c.d:P on
    /// 127.b.c.d:P for this host only.
    Userspace,
}

/// Flags of `mast proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// API servers (`URL[,URL…]`), replacing the kubeconfig's: new connections go to
    /// the first that answers.
    #[arg(long = "server", value_name = "URL", value_delimiter = ',', value_parser = crate::clients::server)]
    pub servers: Vec<http::Uri>,
    /// This node's name (the host name when unset), for traffic policies `Local`.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The pod network: ClusterIP traffic from outside it is masqueraded.
    #[arg(long)]
    pub cluster_cidr: Option<Ipv4Cidr>,
    #[command(flatten)]
    pub options: ProxyOptions,
    /// Stop when the parent process goes away (tests use it so that a killed test
    /// runner leaves no proxy behind).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

/// The proxy's own flags, shared by `mast proxy` and `mast agent` (which takes the
/// node name and cluster CIDR from its kubelet flags).
#[derive(Debug, Args)]
pub struct ProxyOptions {
    /// The data path.
    #[arg(long, value_enum, default_value = "nftables")]
    pub mode: ModeArg,
    /// Shortest time between two syncs (changes within it are batched).
    #[arg(long, default_value = "1s", value_parser = crate::flags::duration)]
    pub min_sync_period: Duration,
    /// Longest time between two syncs (a full re-apply repairs tampered rules).
    #[arg(long, default_value = "30s", value_parser = crate::flags::duration)]
    pub sync_period: Duration,
    /// CIDRs of the node addresses NodePorts answer on (comma-separated); all local
    /// addresses except 127.0.0.0/8 when unset.
    #[arg(long, value_delimiter = ',')]
    pub nodeport_addresses: Vec<Ipv4Cidr>,
}

impl ProxyOptions {
    /// The proxy's configuration on node `node_name`.
    pub(crate) fn config(&self, node_name: String, cluster_cidr: Option<Ipv4Cidr>) -> ProxyConfig {
        ProxyConfig {
            mode: match self.mode {
                ModeArg::Nftables => Mode::Nftables,
                ModeArg::Userspace => Mode::Userspace,
            },
            node_name,
            min_sync_period: self.min_sync_period,
            sync_period: self.sync_period.max(self.min_sync_period),
            rules: RuleOptions {
                cluster_cidr,
                nodeport_addresses: self.nodeport_addresses.clone(),
            },
            ..ProxyConfig::default()
        }
    }
}

pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let node_name = args
        .hostname_override
        .clone()
        .unwrap_or_else(crate::kubelet::hostname);
    let config = args.options.config(node_name, args.cluster_cidr);
    let client = crate::clients::from_kubeconfig(&args.kubeconfig, &args.servers)?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let exit_with_parent = args.exit_with_parent;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            () = crate::kubelet::parent_gone(), if exit_with_parent => {
                tracing::info!("parent process gone");
            }
        }
    };
    Ok(proxy::run(client, config, shutdown).await?)
}
