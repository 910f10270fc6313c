//! `mast`: one binary, one subcommand per component (like k3s). Each subcommand lives in
//! its own module; this file only parses the command line and dispatches.

mod agent;
mod apiserver;
mod clients;
mod controller_manager;
mod ctl;
mod dns;
mod election;
mod explain;
mod flags;
mod images;
mod kubelet;
mod nginx_config;
mod proxy;
mod scheduler;
mod server;
mod up;

use clap::{Parser, Subcommand};

/// A Kubernetes-compatible container orchestrator with a highly available control plane.
#[derive(Debug, Parser)]
#[command(name = "mast", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a whole cluster on this machine (server and agent in one process tree),
    /// write its kubeconfig, and run until Ctrl-C, which stops everything cleanly.
    Up(up::UpArgs),
    /// Create or update objects from files, directories or stdin (server-side apply).
    Apply(ctl::apply::ApplyArgs),
    /// List objects as tables (kubectl's columns), or print them as YAML or JSON.
    Get(ctl::get::GetArgs),
    /// Show an object in detail, with its events.
    Describe(ctl::describe::DescribeArgs),
    /// Delete objects by name, label selector or file.
    Delete(ctl::delete::DeleteArgs),
    /// Set the replicas of a Deployment, ReplicaSet or StatefulSet.
    Scale(ctl::scale::ScaleArgs),
    /// Print (or follow) a container's log.
    Logs(ctl::logs::LogsArgs),
    /// Follow, list, undo or restart a Deployment's rollouts.
    Rollout(ctl::rollout::RolloutArgs),
    /// Show the masters, the current leaders, the nodes, versions and the store's health.
    ClusterInfo(ctl::cluster_info::ClusterInfoArgs),
    /// Run a master: the API server, the scheduler and the controllers.
    Server(server::ServerArgs),
    /// Run the API server alone.
    Apiserver(server::ServerArgs),
    /// Run the scheduler alone, against an API server.
    Scheduler(scheduler::SchedulerArgs),
    /// Run the controllers alone, against an API server.
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Show why a pod is (or would be) placed where it is: each node's filter verdict,
    /// each plugin's score, and the winner.
    ExplainScheduling(explain::ExplainArgs),
    /// Run a node: the kubelet (CRI), the service proxy and the cluster DNS server.
    Agent(agent::AgentArgs),
    /// Run a node agent (or many hollow ones), against an API server.
    Kubelet(kubelet::KubeletArgs),
    /// Manage the kubelet's images (offline import).
    Images(images::ImagesArgs),
    /// Run the cluster DNS server, against an API server.
    Dns(dns::DnsArgs),
    /// Run a node's service proxy (nftables DNAT, round-robin), against an API server.
    Proxy(proxy::ProxyArgs),
    /// Print an nginx.conf balancing TCP over the masters' API servers (run one per node).
    NginxConfig(nginx_config::NginxConfigArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `mast up` keeps the terminal for its progress; its logs go to a file.
    let log_file = match &cli.command {
        Command::Up(args) => Some(args.log_file()),
        _ => None,
    };
    if let Err(e) = init_logging(log_file.as_deref()) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Apply(args) => ctl::apply::run(args).await,
            Command::Get(args) => ctl::get::run(args).await,
            Command::Describe(args) => ctl::describe::run(args).await,
            Command::Delete(args) => ctl::delete::run(args).await,
            Command::Scale(args) => ctl::scale::run(args).await,
            Command::Logs(args) => ctl::logs::run(args).await,
            Command::Rollout(args) => ctl::rollout::run(args).await,
            Command::ClusterInfo(args) => ctl::cluster_info::run(args).await,
            Command::Server(args) => server::run(args).await,
            Command::Apiserver(args) => apiserver::run(args).await,
            Command::Scheduler(args) => scheduler::run(args).await,
            Command::ControllerManager(args) => controller_manager::run(args).await,
            Command::ExplainScheduling(args) => explain::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Kubelet(args) => kubelet::run(args).await,
            Command::Images(args) => images::run(args).await,
            Command::Dns(args) => dns::run(args).await,
            Command::Proxy(args) => proxy::run(args).await,
            Command::NginxConfig(args) => nginx_config::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, or appends to `file`; `RUST_LOG` overrides the default level (info;
/// hickory's server logs every DNS query at info, so it is held to warnings).
fn init_logging(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
