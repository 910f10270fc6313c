//! `mast scheduler`: the scheduler alone, talking to an API server through a
//! kubeconfig. `mast server` runs the same loop in process.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use scheduler::framework::Framework;
use scheduler::registry::{Registry, SchedulerConfiguration};
use tokio::signal::unix::{SignalKind, signal};

use crate::election::Gate;

/// The Lease the schedulers elect their leader through (upstream's name).
pub const LEASE: &str = "kube-scheduler";

/// Flags of `mast scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// A KubeSchedulerConfiguration (YAML or JSON) enabling, disabling and weighting
    /// plugins; upstream's defaults without it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub election: crate::election::LeaderElectionArgs,
}

/// The framework of the first profile in `config` (the default profile without one).
pub fn framework(config: Option<&Path>) -> anyhow::Result<Framework> {
    let configuration = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            SchedulerConfiguration::from_text(&text)
                .with_context(|| format!("in {}", path.display()))?
        }
        None => SchedulerConfiguration::default(),
    };
    let mut frameworks = configuration.build(&Registry::default())?;
    if frameworks.len() > 1 {
        tracing::warn!("only the first scheduler profile is run");
    }
    frameworks
        .drain(..)
        .next()
        .context("the scheduler configuration has no profile")
}

/// How to reach the API servers a kubeconfig file names.
pub fn connection(kubeconfig: &Path) -> anyhow::Result<kubeclient::ClientConfig> {
    kubeclient::ClientConfig::from_kubeconfig(kubeconfig)
        .with_context(|| format!("using the kubeconfig {}", kubeconfig.display()))
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let framework = framework(args.config.as_deref())?;
    let connection = connection(&args.kubeconfig)?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let gate = Gate::start(&args.election, LEASE, &connection, stop_rx)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let result = tokio::select! {
        result = scheduler::run::run(gate.client.clone(), framework, gate.leading.clone()) => {
            result.map_err(anyhow::Error::from)
        }
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
    };
    // The scheduling loop is gone (dropped above); now hand the Lease over.
    let _ = stop.send(true);
    gate.finished().await;
    result
}
