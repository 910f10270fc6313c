//! `mast server`: a master: the API server and, in the same process, the scheduler and
//! the controller-manager (talking to the API server over loopback, as any client).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

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
    // Leader election comes with the HA work; alone, this instance leads. The switch
    // lives as long as the server.
    let (_leading, leading_rx) = tokio::sync::watch::channel(true);
    if !args.disable_scheduler || !args.disable_controller_manager {
        let client = loopback_client(running.address).await?;
        if !args.disable_scheduler {
            let framework = crate::scheduler::framework(None)?;
            let client = client.clone();
            let leading_rx = leading_rx.clone();
            tokio::spawn(async move {
                if let Err(e) = scheduler::run::run(client, framework, leading_rx).await {
                    tracing::error!(error = %e, "scheduler stopped");
                }
            });
        }
        if !args.disable_controller_manager {
            let config = args.controllers.config();
            tokio::spawn(controllers::run(client, config, leading_rx));
        }
    }
    crate::apiserver::serve_until_stopped(running, &args).await
}

/// A client for the in-process components, over loopback to this server.
async fn loopback_client(mut address: std::net::SocketAddr) -> anyhow::Result<kube::Client> {
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let text = apiserver::kubeconfig::render(&format!("http://{address}"));
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}
