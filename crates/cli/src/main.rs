//! `mast`: one binary, one subcommand per component (like k3s). Each subcommand lives in
//! its own module; this file only parses the command line and dispatches.

mod agent;
mod apiserver;
mod clients;
mod controller_manager;
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
    init_logging();
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

/// Logs to stderr; `RUST_LOG` overrides the default level (info; hickory's server logs
/// every DNS query at info, so it is held to warnings).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
