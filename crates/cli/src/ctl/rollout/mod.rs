//! `mast rollout status|history|undo|restart`, for Deployments, as kubectl 1.32 does
//! them: `status` follows the Deployment with a watch and prints kubectl's progress
//! lines; `history` lists revisions from the ReplicaSets (or prints one revision's
//! pod template); `undo` copies a revision's template back into the Deployment;
//! `restart` stamps the template with `kubectl.kubernetes.io/restartedAt`.

mod history;
mod restart;
mod status;
mod undo;

use std::time::Duration;

use clap::{Args, Subcommand};
use kube::api::ListParams;

use super::{Connection, Resource, Session};

/// Flags of `mast rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: RolloutCommand,
}

/// The rollout verbs.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Wait for a rollout to finish, printing its progress.
    Status(StatusArgs),
    /// List a Deployment's revisions, or show one revision's pod template.
    History(HistoryArgs),
    /// Roll back to the previous revision, or to `--to-revision`.
    Undo(UndoArgs),
    /// Restart every pod by rolling out the same template again.
    Restart(RestartArgs),
}

/// What to act on: `TYPE NAME`, `TYPE/NAME`, or `TYPE` with `-l`.
#[derive(Debug, Args)]
pub struct Targets {
    /// `deployment/web`, `deployment web`, or `deployment` (all of them).
    pub resources: Vec<String>,
    /// Only objects whose labels match this selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Keep watching until the rollout is done (`--watch=false` prints once).
    #[arg(short = 'w', long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub watch: bool,
    /// Give up after this long (`30s`, `5m`); 0 waits forever.
    #[arg(long, value_parser = crate::flags::duration, default_value = "0s")]
    pub timeout: Duration,
    /// Require this revision to be the one rolling out.
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Show this revision's pod template.
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// The revision to roll back to (0: the one before the current).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub targets: Targets,
}

/// One object the verb acts on.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: Resource,
    pub namespace: String,
    pub name: String,
}

impl Target {
    /// `deployment.apps/web`, as kubectl names objects in its messages.
    pub fn display(&self) -> String {
        let kind = self.resource.api.kind.to_lowercase();
        if self.resource.api.group.is_empty() {
            format!("{kind}/{}", self.name)
        } else {
            format!("{kind}.{}/{}", self.resource.api.group, self.name)
        }
    }

    /// `ReplicaSet.apps`: upstream's GroupKind string.
    pub fn group_kind(&self) -> String {
        if self.resource.api.group.is_empty() {
            self.resource.api.kind.clone()
        } else {
            format!("{}.{}", self.resource.api.kind, self.resource.api.group)
        }
    }

    pub fn is_deployment(&self) -> bool {
        self.resource.api.group == "apps" && self.resource.api.kind == "Deployment"
    }
}

pub async fn run(args: RolloutArgs) -> anyhow::Result<()> {
    match dispatch(&args).await {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("{}", super::error_line(&e));
            super::exit_reported()
        }
    }
}

async fn dispatch(args: &RolloutArgs) -> anyhow::Result<()> {
    let session = Session::connect(&args.connection)?;
    match &args.command {
        RolloutCommand::Status(a) => {
            let targets = resolve(&session, &a.targets).await?;
            status::run(&session, &targets, a).await
        }
        RolloutCommand::History(a) => {
            let targets = resolve(&session, &a.targets).await?;
            history::run(&session, &targets, a.revision).await
        }
        RolloutCommand::Undo(a) => {
            let targets = resolve(&session, &a.targets).await?;
            undo::run(&session, &targets, a.to_revision).await
        }
        RolloutCommand::Restart(a) => {
            let targets = resolve(&session, &a.targets).await?;
            restart::run(&session, &targets).await
        }
    }
}

/// The objects the arguments name; each named one must exist (kubectl reads them
/// first), and `TYPE` alone means every object of the type in the namespace.
async fn resolve(session: &Session, targets: &Targets) -> anyhow::Result<Vec<Target>> {
    let args = &targets.resources;
    if args.is_empty() {
        anyhow::bail!("required resource not specified");
    }
    let mut named: Vec<(String, String)> = Vec::new();
    let mut type_only = None;
    if args.iter().all(|a| a.contains('/')) {
        for a in args {
            let (t, name) = a.split_once('/').unwrap_or((a, ""));
            if t.is_empty() || name.is_empty() {
                anyhow::bail!(
                    "arguments in resource/name form must have a single resource and name"
                );
            }
            named.push((t.to_string(), name.to_string()));
        }
    } else if args.len() == 1 {
        type_only = Some(args[0].clone());
    } else {
        named.extend(args[1..].iter().map(|n| (args[0].clone(), n.clone())));
    }
    let selector = targets.selector.clone().unwrap_or_default();
    if !selector.is_empty() && !named.is_empty() {
        anyhow::bail!("name cannot be provided when a selector is specified");
    }
    let mut out = Vec::new();
    if let Some(t) = type_only {
        let resource = session.resolve(&t).await?;
        let list = session
            .api_here(&resource)
            .list(&ListParams::default().labels(&selector))
            .await?;
        for o in list.items {
            out.push(Target {
                resource: resource.clone(),
                namespace: session.namespace.clone(),
                name: o.metadata.name.unwrap_or_default(),
            });
        }
        if out.is_empty() {
            eprintln!("No resources found in {} namespace.", session.namespace);
        }
        return Ok(out);
    }
    for (t, name) in named {
        let resource = session.resolve(&t).await?;
        session.api_here(&resource).get(&name).await?;
        out.push(Target {
            resource,
            namespace: session.namespace.clone(),
            name,
        });
    }
    Ok(out)
}

/// Prints `text` and flushes, so progress shows as it happens.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// An error's text as client-go's `err.Error()` gives it: a server's refusal is its
/// Status message alone.
pub fn go_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
