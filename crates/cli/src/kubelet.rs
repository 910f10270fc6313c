//! `mast kubelet`: a node agent (or N hollow ones) talking to an API server through a
//! kubeconfig, until SIGINT or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kubelet::{KubeletConfig, RuntimeKind};
use tokio::signal::unix::{SignalKind, signal};

/// `--runtime` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    /// containerd (or any CRI runtime) at --container-runtime-endpoint.
    Cri,
    /// No processes: pods run on paper (tests, hollow nodes).
    Fake,
}

/// Flags of `mast kubelet`.
#[derive(Debug, Args)]
pub struct KubeletArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// API servers (`URL[,URL…]`), replacing the kubeconfig's: new connections go to
    /// the first that answers.
    #[arg(long = "server", value_name = "URL", value_delimiter = ',', value_parser = crate::clients::server)]
    pub servers: Vec<http::Uri>,
    /// The Node's name (the host name when unset); hollow nodes are NAME-0 … NAME-(N-1).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Where the kubelet keeps its files; its filesystem is the node's ephemeral storage.
    #[arg(long, default_value = "/var/lib/mast/kubelet")]
    pub data_dir: PathBuf,
    /// The container runtime: cri, or fake with --hollow-nodes.
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeArg>,
    /// An existing CRI endpoint (`unix:///run/containerd/containerd.sock`); without
    /// it the kubelet runs its own containerd in DATA_DIR/containerd.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    /// The cluster's pod network: traffic from it to elsewhere is masqueraded.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The service network (blackholed unless the proxy translates it).
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// The cluster DNS service's IPs, ClusterFirst pods' nameservers (comma-separated;
    /// empty: pods get the host's resolv.conf, as upstream without --cluster-dns).
    #[arg(long, default_value = "10.43.0.10", value_parser = ip_list)]
    pub cluster_dns: IpList,
    /// The cluster's DNS domain, for pods' search paths.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The resolver configuration `Default` DNS pods get, and whose search domains
    /// ClusterFirst pods append.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// The cgroup pods go under (ROOT/pod<uid>).
    #[arg(long, default_value = "/kubepods")]
    pub cgroup_root: String,
    /// Run this many hollow (fake) nodes in this process instead of one node.
    #[arg(long)]
    pub hollow_nodes: Option<usize>,
    /// The pod CIDR, overriding the Node's spec.podCIDR.
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// The node's InternalIP (the first non-loopback IPv4 address when unset).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Port of the kubelet's HTTP endpoints; 0 picks a free one.
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    /// Address the kubelet's HTTP endpoints listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// CPU capacity to report (e.g. 4 or 3500m) instead of the host's.
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory capacity to report (e.g. 8Gi) instead of the host's.
    #[arg(long)]
    pub memory: Option<String>,
    /// Pods the node takes at most.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// The node lease's duration.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    /// How often the node lease is renewed (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = crate::flags::duration)]
    pub node_lease_renew_interval: Duration,
    /// How often the node status is posted even when nothing changed.
    #[arg(long, default_value = "5m", value_parser = crate::flags::duration)]
    pub node_status_report_frequency: Duration,
    /// On a clean exit (SIGINT, SIGTERM), stop and remove every pod as well, and the
    /// pods' bridge: nothing of the node is left running (`mast up` does this).
    #[arg(long)]
    pub remove_pods_on_exit: bool,
    /// Stop when the parent process goes away (tests use it so that a killed test
    /// runner leaves no kubelet behind).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

/// A comma-separated list of IPs (possibly empty).
#[derive(Debug, Clone)]
pub struct IpList(pub Vec<IpAddr>);

fn ip_list(text: &str) -> Result<IpList, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|e| format!("{s:?}: {e}")))
        .collect::<Result<Vec<IpAddr>, String>>()
        .map(IpList)
}

impl KubeletArgs {
    pub(crate) fn config(&self) -> KubeletConfig {
        // Hollow nodes are fake by nature; a real node talks CRI.
        let runtime = self.runtime.unwrap_or(if self.hollow_nodes.is_some() {
            RuntimeArg::Fake
        } else {
            RuntimeArg::Cri
        });
        KubeletConfig {
            data_dir: self.data_dir.clone(),
            runtime: match runtime {
                RuntimeArg::Cri => RuntimeKind::Cri {
                    endpoint: self.container_runtime_endpoint.clone(),
                },
                RuntimeArg::Fake => RuntimeKind::Fake,
            },
            node_ip: self.node_ip,
            address: self.address,
            port: self.port,
            pod_cidr: self.pod_cidr.clone(),
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            max_pods: self.max_pods,
            node_lease_duration_seconds: self.node_lease_duration_seconds,
            node_lease_renew_interval: self.node_lease_renew_interval,
            node_status_report_frequency: self.node_status_report_frequency,
            cluster_cidr: self.cluster_cidr.clone(),
            service_cidr: self.service_cidr.clone(),
            cgroup_root: self.cgroup_root.clone(),
            cluster_dns: self.cluster_dns.0.clone(),
            cluster_domain: self.cluster_domain.clone(),
            resolv_conf: self.resolv_conf.clone(),
            remove_pods_on_exit: self.remove_pods_on_exit,
            ..KubeletConfig::default()
        }
    }
}

/// The host name, lowercased, as upstream's default node name.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

pub async fn run(args: KubeletArgs) -> anyhow::Result<()> {
    // The client first: a bad kubeconfig must fail before containerd is started and
    // the host's network rules are touched.
    let client = crate::clients::from_kubeconfig(&args.kubeconfig, &args.servers)?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let exit_with_parent = args.exit_with_parent;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            () = parent_gone(), if exit_with_parent => {
                tracing::info!("parent process gone");
            }
        }
    };
    run_until(&args, client, shutdown).await
}

/// Runs the kubelet(s) `args` describe until `shutdown` resolves (`mast agent` shares
/// one shutdown among its components).
pub(crate) async fn run_until(
    args: &KubeletArgs,
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = args.config();
    let name = args.node_name.clone().unwrap_or_else(hostname);
    let nodes = match args.hollow_nodes {
        Some(count) => {
            if config.runtime != RuntimeKind::Fake {
                anyhow::bail!("hollow nodes run the fake runtime only (--runtime fake)");
            }
            if count == 0 {
                anyhow::bail!("--hollow-nodes must be at least 1");
            }
            kubelet::hollow::fake_nodes(&name, count)
        }
        None => vec![(
            name.clone(),
            kubelet::runtime::for_node(&config, &name).await?,
        )],
    };
    Ok(kubelet::run(client, config, nodes, shutdown).await?)
}

/// Resolves when this process is reparented (its parent died).
pub(crate) async fn parent_gone() {
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}
