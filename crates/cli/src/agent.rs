//! `mast agent`: a node in one process — the kubelet (CRI), the service proxy and the
//! cluster DNS server — against an API server, until SIGINT or SIGTERM.
//!
//! Each component runs through the same function its own subcommand uses; they share
//! one shutdown signal. When one of them stops (an error, or the DNS server failing),
//! the others are stopped too, so the agent never runs half a node. On a clean exit
//! each undoes what it set up: the proxy removes its nftables table, the kubelet its
//! table and routes (pods keep running, as with `mast kubelet`), the DNS server
//! withdraws its endpoint from the `kube-dns` Service.
//!
//! DNS: the server listens on NODE_IP:53 and, with `--ensure-service`'s behaviour,
//! publishes that address as the endpoint of `kube-system/kube-dns` (cluster IP
//! `--cluster-dns`, 10.43.0.10 by default), which the proxy DNATs to it; pods' resolv.conf
//! (written by the kubelet) names that cluster IP. `--disable-dns` leaves DNS to
//! another server.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::dns::DnsArgs;
use crate::kubelet::KubeletArgs;
use crate::proxy::ProxyOptions;

/// The DNS server's port on the node address.
const DNS_PORT: u16 = 53;
/// How long a forwarded DNS query may take.
const DNS_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Flags of `mast agent`: the kubelet's, the proxy's own, and switches.
#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub kubelet: KubeletArgs,
    #[command(flatten)]
    pub proxy: ProxyOptions,
    /// Run no DNS server (another one serves the `kube-dns` Service).
    #[arg(long)]
    pub disable_dns: bool,
}

/// A shutdown broadcast: one sender, a future per component.
#[derive(Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn wait(&self) -> impl Future<Output = ()> + use<> {
        let mut rx = self.0.clone();
        async move {
            // An error means the sender is gone, which is a stop too.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    // The client first: a bad kubeconfig must fail before containerd is started and
    // the host's network rules are touched.
    let client = crate::clients::from_kubeconfig(&args.kubelet.kubeconfig, &args.kubelet.servers)?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let exit_with_parent = args.kubelet.exit_with_parent;
    let signals = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
            _ = terminate.recv() => tracing::info!("terminated; stopping"),
            () = crate::kubelet::parent_gone(), if exit_with_parent => {
                tracing::info!("parent process gone; stopping");
            }
        }
    };
    run_until(&args, client, signals).await
}

/// Runs the node's components until `shutdown` resolves or one of them stops (`mast up`
/// runs the agent next to a server in one process).
pub async fn run_until(
    args: &AgentArgs,
    client: kube::Client,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let kubelet = &args.kubelet;
    if kubelet.hollow_nodes.is_some() {
        anyhow::bail!("mast agent runs one real node; hollow nodes are for `mast kubelet`");
    }
    let node_name = kubelet
        .node_name
        .clone()
        .unwrap_or_else(crate::kubelet::hostname);
    let cluster_cidr = kubelet
        .cluster_cidr
        .parse()
        .with_context(|| format!("--cluster-cidr {}", kubelet.cluster_cidr))?;
    let proxy_config = args.proxy.config(node_name.clone(), Some(cluster_cidr));
    let dns = if args.disable_dns {
        None
    } else {
        Some(dns_args(kubelet, &node_name)?)
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = Stop(stop_rx);
    let signals = {
        let stop = stop.wait();
        let stop_tx = stop_tx.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                // A component stopped on its own: nothing left to wait for.
                () = stop => {}
            }
            let _ = stop_tx.send(true);
        }
    };
    // Whichever component ends first ends the others.
    let ended = |what: &'static str, result: anyhow::Result<()>| {
        if let Err(e) = &result {
            tracing::error!(component = what, error = format!("{e:#}"), "stopped");
        }
        let _ = stop_tx.send(true);
        result.with_context(|| format!("the {what}"))
    };
    let kubelet_run = async {
        ended(
            "kubelet",
            crate::kubelet::run_until(kubelet, client.clone(), stop.wait()).await,
        )
    };
    let proxy_run = async {
        let result = proxy::run(client.clone(), proxy_config, stop.wait()).await;
        ended("proxy", result.map_err(anyhow::Error::from))
    };
    let dns_run = async {
        match &dns {
            Some(dns) => ended(
                "DNS server",
                crate::dns::run_until(dns, client.clone(), stop.wait()).await,
            ),
            None => Ok(()),
        }
    };
    let ((), kubelet_result, proxy_result, dns_result) =
        tokio::join!(signals, kubelet_run, proxy_run, dns_run);
    kubelet_result.and(proxy_result).and(dns_result)
}

/// The DNS server's flags from the kubelet's: listen on the node address, publish it
/// as the `kube-dns` endpoint, serve the kubelet's cluster domain and first cluster
/// DNS address.
fn dns_args(kubelet: &KubeletArgs, node_name: &str) -> anyhow::Result<DnsArgs> {
    let node_ip = match kubelet.node_ip {
        Some(ip) => ip,
        None => {
            std::fs::create_dir_all(&kubelet.data_dir)
                .with_context(|| format!("creating {}", kubelet.data_dir.display()))?;
            kubelet::host::HostInfo::detect(&kubelet.data_dir).default_ip
        }
    };
    if node_ip.is_loopback() || node_ip.is_unspecified() {
        anyhow::bail!(
            "node address {node_ip} cannot be the DNS service's endpoint: pass --node-ip, \
             or --disable-dns"
        );
    }
    let cluster_dns = kubelet
        .cluster_dns
        .0
        .first()
        .copied()
        .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 43, 0, 10)));
    Ok(DnsArgs {
        kubeconfig: kubelet.kubeconfig.clone(),
        servers: kubelet.servers.clone(),
        listen: SocketAddr::new(node_ip, DNS_PORT),
        cluster_domain: kubelet.cluster_domain.clone(),
        cluster_dns,
        resolv_conf: kubelet.resolv_conf.clone(),
        upstream_timeout: DNS_UPSTREAM_TIMEOUT,
        ensure_service: true,
        node_ip: Some(node_ip),
        node_name: Some(node_name.to_string()),
        exit_with_parent: false,
    })
}
