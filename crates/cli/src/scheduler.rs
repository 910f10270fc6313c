//! `mast scheduler`: the scheduler alone, talking to an API server through a
//! kubeconfig. `mast server` runs the same loop in process.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use scheduler::framework::Framework;
use scheduler::registry::{Registry, SchedulerConfiguration};
use tokio::signal::unix::{SignalKind, signal};

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

/// A kube client from a kubeconfig file.
pub async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading the kubeconfig {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .context("using the kubeconfig")?;
    Ok(kube::Client::try_from(config)?)
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let framework = framework(args.config.as_deref())?;
    let client = client(&args.kubeconfig).await?;
    // Leader election comes with the HA work; alone, this instance leads.
    let (_leading, leading_rx) = tokio::sync::watch::channel(true);
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = scheduler::run::run(client, framework, leading_rx) => Ok(result?),
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
    }
}
