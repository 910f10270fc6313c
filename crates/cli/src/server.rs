//! `mast server`: a master: the API server and, in the same process, the scheduler and
//! the controller-manager (talking to the API server over loopback, as any client).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

use crate::election::Gate;

/// Flags shared by `mast server` and `mast apiserver`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where state lives (the SQLite database when no datastore endpoint is given).
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Port to listen on (plain HTTP for now); 0 picks a free one.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// etcd endpoints (`http://h:p,http://h:p`) or `sqlite://PATH`; default: SQLite in
    /// the data dir.
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
    /// Write an admin kubeconfig here once listening.
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Events kept per resource for watches that resume from a resourceVersion.
    #[arg(long, default_value_t = 1000)]
    pub watch_cache_size: usize,
    /// IPv4 range Services' cluster IPs come from (its first address is the
    /// `kubernetes` Service's, its tenth cluster DNS's).
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: apiserver::allocator::IpRange,
    /// Ports NodePort and LoadBalancer Services are given node ports from.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: apiserver::allocator::PortRange,
    /// Address the `kubernetes` Service's endpoints name (default: the bind address, or
    /// this host's default-route address when bound to 0.0.0.0).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// Stop when the parent process goes away (tests use it so that a killed test
    /// runner leaves no server behind).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
    /// Run without the scheduler (`mast server` only).
    #[arg(long)]
    pub disable_scheduler: bool,
    /// How long new pods tolerate a not-ready node before eviction (seconds).
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// How long new pods tolerate an unreachable node before eviction (seconds).
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// Run without the controllers (`mast server` only).
    #[arg(long)]
    pub disable_controller_manager: bool,
    #[command(flatten)]
    pub controllers: crate::controller_manager::ControllerOptions,
    /// Leader election of the in-process scheduler and controller-manager (`mast server`
    /// only), so that several masters run them with one active instance of each.
    #[command(flatten)]
    pub election: crate::election::LeaderElectionArgs,
}

impl ServerArgs {
    pub fn config(&self) -> apiserver::Config {
        apiserver::Config {
            data_dir: self.data_dir.clone(),
            bind_address: self.bind_address,
            port: self.secure_port,
            datastore_endpoint: self
                .datastore_endpoint
                .clone()
                .filter(|e| !e.trim().is_empty()),
            write_kubeconfig: self.write_kubeconfig.clone(),
            watch_cache_size: self.watch_cache_size,
            admission: apiserver::admission::Admission {
                default_not_ready_toleration_seconds: self.default_not_ready_toleration_seconds,
                default_unreachable_toleration_seconds: self.default_unreachable_toleration_seconds,
            },
            services: apiserver::allocator::ServiceRanges {
                cluster_ips: self.service_cidr,
                node_ports: self.service_node_port_range,
            },
            advertise_address: self.advertise_address,
        }
    }
}

/// `/var/lib/mast/server` for root, `~/.local/share/mast/server` otherwise (as k3s
/// splits `/var/lib/rancher` and `~/.rancher`).
fn default_data_dir() -> PathBuf {
    let is_root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::env::var("HOME").map(|h| h == "/root").unwrap_or(false);
    match std::env::var_os("HOME") {
        Some(home) if !is_root => PathBuf::from(home).join(".local/share/mast/server"),
        _ => PathBuf::from("/var/lib/mast/server"),
    }
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let running = apiserver::start(&args.config()).await?;
    let hand_over = start_components(&args, running.address)?;
    crate::apiserver::serve_until_stopped(running, &args, hand_over).await
}

/// Starts the in-process scheduler and controller-manager (unless disabled) against the
/// API server at `address`. The returned future stops them: it ends their work first,
/// then releases their Leases through that server (still serving), so that another
/// master takes over at once.
pub fn start_components(
    args: &ServerArgs,
    address: std::net::SocketAddr,
) -> anyhow::Result<impl std::future::Future<Output = ()> + use<>> {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut gates = Vec::new();
    let mut components = tokio::task::JoinSet::new();
    if !args.disable_scheduler || !args.disable_controller_manager {
        let connection = kubeclient::ClientConfig::for_servers(vec![loopback_uri(address)?]);
        if !args.disable_scheduler {
            let framework = crate::scheduler::framework(None)?;
            let gate = Gate::start(
                &args.election,
                crate::scheduler::LEASE,
                &connection,
                stop_rx.clone(),
            )?;
            let (client, leading) = (gate.client.clone(), gate.leading.clone());
            components.spawn(async move {
                if let Err(e) = scheduler::run::run(client, framework, leading).await {
                    tracing::error!(error = %e, "scheduler stopped");
                }
            });
            gates.push(gate);
        }
        if !args.disable_controller_manager {
            let gate = Gate::start(
                &args.election,
                crate::controller_manager::LEASE,
                &connection,
                stop_rx,
            )?;
            let config = args.controllers.config();
            components.spawn(controllers::run(
                gate.client.clone(),
                config,
                gate.leading.clone(),
            ));
            gates.push(gate);
        }
    }
    Ok(async move {
        components.shutdown().await;
        let _ = stop.send(true);
        for gate in gates {
            gate.finished().await;
        }
    })
}

/// This server's own address as the in-process components reach it (loopback when it
/// listens on every address).
pub fn loopback_uri(mut address: std::net::SocketAddr) -> anyhow::Result<http::Uri> {
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{address}").parse()?)
}
