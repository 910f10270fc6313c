//! `mast up`: a whole cluster on this machine in one process — a master (API server on
//! SQLite in the data dir, scheduler, controllers) and a node (its own containerd,
//! kubelet, service proxy, cluster DNS) — until Ctrl-C or SIGTERM.
//!
//! The pieces are the ones `mast server` and `mast agent` run, started here in order
//! and watched from the outside (through the API and containerd's socket) so that each
//! step prints how long it took. Logs go to `DATA_DIR/mast.log`, leaving the terminal
//! to the progress.
//!
//! On a stop the node goes first: every pod is stopped and removed, then containerd,
//! the nftables tables, the routes and the pods' bridge; then the control plane. The
//! state stays in the data dir, so the next `mast up` finds the cluster as it was and
//! starts its pods again.

mod checks;

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Node};
use kube::api::Api;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::agent::AgentArgs;
use crate::server::ServerArgs;

/// How long any one start-up step may take before `mast up` says so.
const STEP_DEADLINE: Duration = Duration::from_secs(60);
/// How often a step's condition is checked.
const POLL: Duration = Duration::from_millis(25);

/// Flags of `mast up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the cluster lives: DIR/server (the SQLite store), DIR/kubelet (containerd,
    /// images, pod files), DIR/kubeconfig and DIR/mast.log. Default: /var/lib/mast for
    /// root, ~/.local/share/mast otherwise.
    #[arg(long, default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// The API server's port.
    #[arg(long, default_value_t = 6443)]
    pub port: u16,
    /// The API server's listen address.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The node's address (default: the address of the default route's interface).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Also write the admin kubeconfig here (it is always in DATA_DIR/kubeconfig).
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Run no cluster DNS server.
    #[arg(long)]
    pub disable_dns: bool,
    /// The kubelet's port (logs are read through it); 0 picks a free one.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// The cgroup pods go under.
    #[arg(long, default_value = "/kubepods")]
    pub cgroup_root: String,
    /// The resolver configuration the cluster DNS forwards to and `Default` pods get.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Stop when the parent process goes away (tests).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

impl UpArgs {
    /// Where the logs go.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join("mast.log")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    /// The master's flags, as `mast server` would parse them.
    fn server_args(&self) -> anyhow::Result<ServerArgs> {
        let mut argv = vec![
            "server".to_string(),
            "--data-dir".into(),
            path_arg(&self.data_dir.join("server")),
            "--bind-address".into(),
            self.bind_address.to_string(),
            "--secure-port".into(),
            self.port.to_string(),
            "--write-kubeconfig".into(),
            path_arg(&self.kubeconfig()),
        ];
        if let Some(ip) = self.node_ip {
            argv.extend(["--advertise-address".into(), ip.to_string()]);
        }
        Ok(Flags::<ServerArgs>::try_parse_from(argv)?.args)
    }

    /// The node's flags, as `mast agent` would parse them.
    fn agent_args(&self) -> anyhow::Result<AgentArgs> {
        let mut argv = vec![
            "agent".to_string(),
            "--kubeconfig".into(),
            path_arg(&self.kubeconfig()),
            "--data-dir".into(),
            path_arg(&self.kubelet_dir()),
            "--port".into(),
            self.kubelet_port.to_string(),
            "--cgroup-root".into(),
            self.cgroup_root.clone(),
            "--resolv-conf".into(),
            path_arg(&self.resolv_conf),
            "--remove-pods-on-exit".into(),
        ];
        if let Some(ip) = self.node_ip {
            argv.extend(["--node-ip".into(), ip.to_string()]);
        }
        if let Some(name) = &self.node_name {
            argv.extend(["--node-name".into(), name.clone()]);
        }
        if self.disable_dns {
            argv.push("--disable-dns".into());
        }
        Ok(Flags::<AgentArgs>::try_parse_from(argv)?.args)
    }

    fn kubelet_dir(&self) -> PathBuf {
        self.data_dir.join("kubelet")
    }
}

/// A subcommand's flags parsed from an argument list (the defaults stay in one place:
/// the subcommand's own flag definitions).
#[derive(Debug, Parser)]
struct Flags<T: Args> {
    #[command(flatten)]
    args: T,
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `/var/lib/mast` for root, `~/.local/share/mast` otherwise (as `mast server`'s).
fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) if !is_root() => PathBuf::from(home).join(".local/share/mast"),
        _ => PathBuf::from("/var/lib/mast"),
    }
}

/// Whether the effective user is root (from /proc: no libc call needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let missing = checks::missing_prerequisites(&args.kubelet_dir()).await;
    if !missing.is_empty() {
        for line in &missing {
            eprintln!("error: {line}");
        }
        anyhow::bail!(
            "{} prerequisite(s) missing (`bash scripts/start.sh` sets all of them up)",
            missing.len()
        );
    }
    let server_args = args.server_args()?;
    let agent_args = args.agent_args()?;
    println!("mast up: data dir {}", args.data_dir.display());
    println!("  logs: {}", args.log_file().display());

    let running = apiserver::start(&server_args.config())
        .await
        .context("starting the API server")?;
    let address = running.address;
    step(
        started,
        &format!("API server on {address} ({})", store_backend(&server_args)),
    );
    if let Some(extra) = &args.write_kubeconfig {
        std::fs::copy(args.kubeconfig(), extra)
            .with_context(|| format!("writing the kubeconfig to {}", extra.display()))?;
    }
    let hand_over = crate::server::start_components(&server_args, address)?;
    let client = kubeclient::ClientConfig::for_servers(vec![crate::server::loopback_uri(address)?])
        .client()?;

    let (stop_agent, agent_stopped) = watch::channel(false);
    let agent_client = crate::clients::from_kubeconfig(&args.kubeconfig(), &[])?;
    let mut agent = tokio::spawn(async move {
        let mut stop = agent_stopped;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        crate::agent::run_until(&agent_args, agent_client, shutdown).await
    });

    let node_name = args
        .node_name
        .clone()
        .unwrap_or_else(crate::kubelet::hostname);
    let progress = report_progress(&args, &client, &node_name, started);
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let exit_with_parent = args.exit_with_parent;
    let stopped_by = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = terminate.recv() => "terminated",
            () = crate::kubelet::parent_gone(), if exit_with_parent => "parent process gone",
        }
    };
    // Whatever happens first: a signal, the node stopping on its own (an error), or
    // the progress failing; progress finishing just lets the cluster run.
    tokio::pin!(progress);
    tokio::pin!(stopped_by);
    let mut progress_done = false;
    let mut stop_requested = None;
    let agent_result = loop {
        tokio::select! {
            why = &mut stopped_by => {
                stop_requested = Some(Instant::now());
                println!("\n{why}: stopping the node (pods, containerd, network rules), then the control plane");
                tracing::info!("{why}; stopping");
                let _ = stop_agent.send(true);
                break agent.await;
            }
            result = &mut agent => break result,
            result = &mut progress, if !progress_done => {
                progress_done = true;
                if let Err(e) = result {
                    eprintln!("warning: {e:#} (see {})", args.log_file().display());
                }
            }
        }
    };
    let stopping = stop_requested.unwrap_or_else(Instant::now);
    hand_over.await;
    // The server ends its watches itself; the bound is for a client that never
    // reads its last bytes.
    let _ = tokio::time::timeout(Duration::from_secs(5), running.stop()).await;
    let agent_result = agent_result.context("the node's task")?;
    agent_result.context("the node stopped")?;
    println!(
        "stopped in {}; the cluster's state is kept in {}",
        seconds(stopping.elapsed()),
        args.data_dir.display()
    );
    Ok(())
}

fn store_backend(args: &ServerArgs) -> String {
    match &args.datastore_endpoint {
        Some(endpoint) => format!("store {endpoint}"),
        None => format!("SQLite in {}", args.data_dir.display()),
    }
}

/// Prints one finished step with the time since `mast up` started.
fn step(started: Instant, what: &str) {
    println!("  ✓ {what:<52} {:>7}", seconds(started.elapsed()));
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Waits for each component in turn and prints when it is up; at the end, how to use
/// the cluster.
async fn report_progress(
    args: &UpArgs,
    client: &kube::Client,
    node_name: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    wait_until("the scheduler and controllers to lead", || async {
        let mut held = 0;
        for name in [crate::scheduler::LEASE, crate::controller_manager::LEASE] {
            let holder = leases
                .get_opt(name)
                .await?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity)
                .filter(|h| !h.is_empty());
            held += usize::from(holder.is_some());
        }
        Ok(held == 2)
    })
    .await?;
    step(started, "scheduler and controller-manager leading");

    let socket = args
        .kubelet_dir()
        .join("containerd")
        .join("containerd.sock");
    let version = wait_for("containerd to answer", || async {
        let cri = cri::CriClient::for_socket(&socket).with_timeout(Duration::from_millis(500));
        Ok(cri.version().await.ok().map(|v| v.runtime_version))
    })
    .await?;
    step(started, &format!("containerd {version}"));

    let nodes: Api<Node> = Api::all(client.clone());
    wait_until("the node to register", || async {
        Ok(nodes.get_opt(node_name).await?.is_some())
    })
    .await?;
    step(started, &format!("node {node_name} registered"));
    // A restarted cluster's Node still says Ready from before the stop: only a
    // heartbeat from this run counts (heartbeats have whole seconds).
    let since = k8s_openapi::jiff::Timestamp::from_second(
        k8s_openapi::jiff::Timestamp::now().as_second() - started.elapsed().as_secs() as i64 - 1,
    )?;
    let node_ip = wait_for("the node to be Ready", || async {
        let node = nodes.get_opt(node_name).await?;
        Ok(node
            .filter(|n| ready_since(n, since))
            .map(|n| internal_ip(&n)))
    })
    .await?;
    step(started, &format!("node {node_name} Ready ({node_ip})"));

    wait_until("the service proxy's rules", || async {
        Ok(proxy_table_exists().await)
    })
    .await?;
    step(started, "service proxy (nftables)");
    if !args.disable_dns {
        let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "kube-system");
        wait_until("the cluster DNS server", || async {
            let published = endpoints.get_opt("kube-dns").await?.is_some_and(|e| {
                e.subsets
                    .iter()
                    .flatten()
                    .any(|s| s.addresses.iter().flatten().any(|a| a.ip == node_ip))
            });
            Ok(published)
        })
        .await?;
        step(started, "cluster DNS (kube-dns)");
    }
    println!(
        "cluster ready in {}\n\n  export KUBECONFIG={}\n  mast get nodes        (kubectl works too)\n\nCtrl-C stops the cluster and removes its pods; `mast up` again brings it back.",
        seconds(started.elapsed()),
        args.kubeconfig().display()
    );
    Ok(())
}

/// Whether the node's Ready condition is True with a heartbeat at or after `since`.
fn ready_since(node: &Node, since: k8s_openapi::jiff::Timestamp) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "True"
                    && c.last_heartbeat_time.as_ref().is_some_and(|t| t.0 >= since)
            })
        })
}

fn internal_ip(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map(|a| a.address.clone())
        .unwrap_or_default()
}

/// Whether the proxy's nftables table exists (in this process's network namespace).
async fn proxy_table_exists() -> bool {
    tokio::process::Command::new("nft")
        .args(["list", "table", "ip", proxy::rules::TABLE])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    wait_for(what, || {
        let done = check();
        async move { Ok(done.await?.then_some(())) }
    })
    .await
}

/// Polls `check` until it yields a value, for at most [`STEP_DEADLINE`]; errors count
/// as "not yet" (the API server may be busy starting), the last one is reported.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + STEP_DEADLINE;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = format!(": {e:#}"),
        }
        if Instant::now() >= deadline {
            anyhow::bail!("still waiting for {what} after {STEP_DEADLINE:?}{last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> UpArgs {
        Flags::<UpArgs>::try_parse_from(argv).expect("flags").args
    }

    #[test]
    fn the_node_and_master_flags_come_from_ours() {
        let up = parse(&[
            "up",
            "--data-dir",
            "/d",
            "--port",
            "7443",
            "--node-ip",
            "192.168.77.1",
            "--node-name",
            "n1",
            "--disable-dns",
        ]);
        let server = up.server_args().expect("server flags");
        assert_eq!(server.data_dir, PathBuf::from("/d/server"));
        assert_eq!(server.secure_port, 7443);
        assert_eq!(
            server.write_kubeconfig,
            Some(PathBuf::from("/d/kubeconfig"))
        );
        assert_eq!(
            server.advertise_address,
            Some("192.168.77.1".parse().expect("ip"))
        );
        let agent = up.agent_args().expect("agent flags");
        assert_eq!(agent.kubelet.kubeconfig, PathBuf::from("/d/kubeconfig"));
        assert_eq!(agent.kubelet.data_dir, PathBuf::from("/d/kubelet"));
        assert_eq!(agent.kubelet.node_name.as_deref(), Some("n1"));
        assert!(agent.kubelet.remove_pods_on_exit);
        assert!(agent.disable_dns);
    }

    #[test]
    fn the_data_dir_defaults_by_user() {
        let dir = default_data_dir();
        if is_root() {
            assert_eq!(dir, PathBuf::from("/var/lib/mast"));
        } else {
            assert!(dir.ends_with(".local/share/mast"), "{}", dir.display());
        }
    }
}
