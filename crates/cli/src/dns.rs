//! `mast dns`: the cluster DNS server, against an API server through a kubeconfig,
//! until SIGINT or SIGTERM.
//!
//! How pods reach it: the kubelet writes `nameserver 10.43.0.10` (the `kube-dns`
//! Service's cluster IP) into every ClusterFirst pod's resolv.conf. With
//! `--ensure-service`, this process creates that selectorless Service and publishes
//! itself as its endpoint: `NODE_IP:PORT`, where NODE_IP is `--node-ip` (by default the
//! listen address if it is a specific one, else the address of the default route) and
//! PORT the listen port. The service proxy DNATs 10.43.0.10:53 to that endpoint; the
//! packet is then local to the node (or routed to it), reaches this server listening on
//! 0.0.0.0:53 (the default), and conntrack rewrites the reply's source back to
//! 10.43.0.10. Listening on the cluster IP itself would need the address on a local
//! interface, which the service CIDR's blackhole route otherwise swallows.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use dns::ensure::{self, DnsService};
use dns::forward::Upstream;
use dns::server::{Handler, SharedModel};
use tokio::signal::unix::{SignalKind, signal};

/// How often `--ensure-service` re-checks the Service and this instance's endpoint
/// (recreating what someone deleted).
const ENSURE_PERIOD: Duration = Duration::from_secs(30);
/// How long withdrawing the endpoint may hold up the exit.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of `mast dns`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// API servers (`URL[,URL…]`), replacing the kubeconfig's: new connections go to
    /// the first that answers.
    #[arg(long = "server", value_name = "URL", value_delimiter = ',', value_parser = crate::clients::server)]
    pub servers: Vec<http::Uri>,
    /// Where to answer, UDP and TCP (port 0 picks a free one).
    #[arg(long, default_value = "0.0.0.0:53")]
    pub listen: SocketAddr,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The DNS Service's cluster IP (what pods' resolv.conf names; `ns.dns.DOMAIN`).
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,
    /// Where the upstream resolvers for other names are listed.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// How long a forwarded query may take (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = crate::flags::duration)]
    pub upstream_timeout: Duration,
    /// Create (or repair) the kube-system/kube-dns Service and publish this server as
    /// its endpoint.
    #[arg(long)]
    pub ensure_service: bool,
    /// The address published as the endpoint (default: the listen address if specific,
    /// else the address of the default route).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The node this runs on, recorded in the endpoint.
    #[arg(long)]
    pub node_name: Option<String>,
    /// Stop when the parent process goes away (tests).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

/// The source address of the default route (connecting a UDP socket sends nothing).
fn default_route_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Addresses a query to which would come back here: never forwarded to.
fn own_addresses(listen: SocketAddr, node_ip: Option<IpAddr>) -> Vec<SocketAddr> {
    let mut own = vec![listen];
    if listen.ip().is_unspecified() {
        own.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()));
        own.extend(node_ip.map(|ip| SocketAddr::new(ip, listen.port())));
    }
    own
}

pub async fn run(args: DnsArgs) -> anyhow::Result<()> {
    let client = crate::clients::from_kubeconfig(&args.kubeconfig, &args.servers)?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let exit_with_parent = args.exit_with_parent;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            () = crate::kubelet::parent_gone(), if exit_with_parent => {}
        }
    };
    run_until(&args, client, shutdown).await
}

/// Serves until `shutdown` resolves (or the server fails), then withdraws the
/// published endpoint (`mast agent` shares one shutdown among its components).
pub(crate) async fn run_until(
    args: &DnsArgs,
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let zone = dns::Zone::new(&args.cluster_domain, Some(args.cluster_dns))?;
    let node_ip = args.node_ip.or_else(|| {
        let ip = args.listen.ip();
        if ip.is_unspecified() {
            default_route_ip()
        } else {
            Some(ip)
        }
    });
    let upstream = Upstream::from_resolv_conf(
        &args.resolv_conf,
        &own_addresses(args.listen, node_ip),
        args.upstream_timeout,
    );
    if upstream.servers().is_empty() {
        tracing::warn!(path = %args.resolv_conf.display(), "no upstream resolver: names outside the cluster are refused");
    }
    let shared = Arc::new(SharedModel::default());
    let running = dns::serve(args.listen, Handler::new(shared.clone(), zone, upstream))
        .await
        .context("starting the DNS server")?;
    let bound = running.addr;
    let watch = tokio::spawn(dns::watch::run(client.clone(), shared));

    let published = if args.ensure_service {
        let ip = node_ip.context("no node address to publish: pass --node-ip")?;
        if ip.is_loopback() || ip.is_unspecified() {
            anyhow::bail!("--node-ip {ip} cannot be a service endpoint");
        }
        Some(DnsService {
            cluster_ip: args.cluster_dns,
            endpoint_ip: ip,
            port: bound.port(),
            node_name: args.node_name.clone(),
        })
    } else {
        None
    };
    let ensurer = published.clone().map(|want| {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                match ensure::ensure(&client, &want).await {
                    Ok(()) => tracing::debug!("kube-dns service ensured"),
                    Err(e) => tracing::warn!(error = %e, "ensuring the kube-dns service"),
                }
                tokio::time::sleep(ENSURE_PERIOD).await;
            }
        })
    });

    let served = tokio::select! {
        () = shutdown => None,
        result = running.wait() => Some(result),
    };
    watch.abort();
    if let Some(task) = ensurer {
        task.abort();
    }
    if let Some(want) = &published {
        match tokio::time::timeout(WITHDRAW_TIMEOUT, ensure::withdraw(&client, want)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "withdrawing the kube-dns endpoint"),
            Err(_) => tracing::warn!("withdrawing the kube-dns endpoint timed out"),
        }
    }
    match served {
        Some(result) => Ok(result?),
        None => Ok(()),
    }
}
