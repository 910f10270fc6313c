//! `mast delete`: objects by name, `TYPE/NAME`, manifest (`-f`), label or field
//! selector, or `--all`, as `kubectl delete` does it: one DELETE per object (with the
//! grace period and cascade asked for), one `deployment.apps "web" deleted` line each,
//! then — unless `--wait=false` — a wait until every deleted object is really gone
//! (finalizers run, pods terminated), up to `--timeout`.
//!
//! Layout: `wait` watches the deleted objects disappear.

mod wait;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{ArgAction, Args};
use kube::api::{DeleteParams, PropagationPolicy};

use super::apply::{dry_run, manifest::Located};
use super::get::fetch::Scope;
use super::get::target::{self, Selection};
use super::printer::kind_group;
use super::{Connection, Session, error_line, exit_reported, is_not_found};

/// kubectl waits "forever" (a week) when `--timeout` is zero.
const WAIT_FOREVER: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Flags of `mast delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// `TYPE[,TYPE…] [NAME…]` or `TYPE/NAME …`.
    pub args: Vec<String>,
    /// Delete the objects these manifests name (files, directories, `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<PathBuf>,
    /// Read directories given with -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete the objects of the types matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete the objects of the types matching this field selector.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Delete every object of the types (in the namespace, or everywhere with -A).
    #[arg(long)]
    pub all: bool,
    /// With a selector or --all: across every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Not an error when an object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Seconds the objects get to terminate (-1: their own default; 0 needs --force).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Delete at once, without waiting for the objects to terminate.
    #[arg(long)]
    pub force: bool,
    /// Delete with a grace period of one second.
    #[arg(long)]
    pub now: bool,
    /// How dependents go: background (default), foreground, or orphan (left behind).
    #[arg(long, default_value = "background", num_args = 0..=1,
          default_missing_value = "background", require_equals = true)]
    pub cascade: String,
    /// Wait until the objects are gone (`--wait=false` returns at once).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub wait: bool,
    /// How long to wait (`30s`, `5m`; 0: a week).
    #[arg(long, default_value = "0s", value_parser = crate::flags::duration)]
    pub timeout: Duration,
    /// `server`: have the server check the deletion without doing it.
    #[arg(long, value_name = "none|server")]
    pub dry_run: Option<String>,
    /// `name`: print `kind.group/name` per deleted object.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// What to send with every DELETE.
#[derive(Debug)]
struct Plan {
    params: DeleteParams,
    /// "deleted", "force deleted", with " (server dry run)".
    verb: String,
    names_only: bool,
}

impl Plan {
    fn from_args(args: &DeleteArgs) -> anyhow::Result<Plan> {
        let dry_run = dry_run(args.dry_run.as_deref())?;
        let propagation = match args.cascade.as_str() {
            "background" | "true" => PropagationPolicy::Background,
            "foreground" => PropagationPolicy::Foreground,
            "orphan" | "false" => PropagationPolicy::Orphan,
            other => bail!(
                "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \
                 \"orphan\"."
            ),
        };
        let names_only = match args.output.as_deref() {
            None | Some("") => false,
            Some("name") => true,
            Some(other) => bail!(
                "unable to match a printer suitable for the output format \"{other}\", allowed \
                 formats are: name"
            ),
        };
        let mut grace = args.grace_period;
        if args.now {
            if grace != -1 {
                bail!("--now and --grace-period cannot be specified together");
            }
            grace = 1;
        }
        // kubectl's guard against accidental immediate deletion.
        if grace == 0 && !args.force {
            grace = 1;
        }
        if args.force && grace < 0 {
            grace = 0;
        }
        let grace_period_seconds = u32::try_from(grace).ok();
        let mut verb = if grace == 0 {
            "force deleted"
        } else {
            "deleted"
        }
        .to_string();
        if dry_run {
            verb.push_str(" (server dry run)");
        }
        Ok(Plan {
            params: DeleteParams {
                dry_run,
                grace_period_seconds,
                propagation_policy: Some(propagation),
                preconditions: None,
            },
            verb,
            names_only,
        })
    }
}

pub async fn run(args: DeleteArgs) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args)?;
    let session = Session::connect(&args.connection)?;
    let selection = Selection {
        args: args.args.clone(),
        filenames: args.filenames.clone(),
        recursive: args.recursive,
        explicit_namespace: args.connection.namespace.clone(),
        scope: Scope {
            namespace: (!args.all_namespaces).then(|| session.namespace.clone()),
            label_selector: args.selector.clone(),
            field_selector: args.field_selector.clone(),
        },
        all: args.all,
    };
    let (objects, unlocated) = target::select(&session, &selection).await?;
    if plan.params.grace_period_seconds == Some(0) {
        eprintln!(
            "Warning: Immediate deletion does not wait for confirmation that the running \
             resource has been terminated. The resource may continue to run on the cluster \
             indefinitely."
        );
    }
    let mut deleted = Vec::new();
    let mut failed = !unlocated.is_empty();
    for e in &unlocated {
        eprintln!("{}", error_line(e));
    }
    for object in objects {
        match delete_one(&session, &object, &plan.params).await {
            Ok(uid) => {
                let kind = kind_group(&object.resource.api.kind, &object.resource.api.group);
                if plan.names_only {
                    println!("{kind}/{}", object.name);
                } else {
                    println!("{kind} \"{}\" {}", object.name, plan.verb);
                }
                deleted.push(wait::Deleted { object, uid });
            }
            Err(e) if args.ignore_not_found && is_not_found(&e) => {}
            Err(e) => {
                let e = if args.filenames.is_empty() {
                    e
                } else {
                    e.context(format!("error when deleting \"{}\"", object.source))
                };
                eprintln!("{}", error_line(&e));
                failed = true;
            }
        }
    }
    if failed {
        exit_reported();
    }
    if deleted.is_empty() {
        // Names that were not found and ignored say nothing, as kubectl's do.
        if selection_lists(&args) {
            println!("No resources found");
        }
        return Ok(());
    }
    if !args.wait || plan.params.dry_run {
        return Ok(());
    }
    let timeout = if args.timeout.is_zero() {
        WAIT_FOREVER
    } else {
        args.timeout
    };
    let gone = wait::until_gone(&session, deleted, timeout).await?;
    if gone.is_empty() {
        return Ok(());
    }
    for object in gone {
        eprintln!(
            "error: timed out waiting for the condition on {}/{}",
            object.resource.api.plural, object.name
        );
    }
    exit_reported()
}

/// Whether the objects came from listing (a selector or --all), where finding none is
/// reported as such.
fn selection_lists(args: &DeleteArgs) -> bool {
    args.filenames.is_empty()
        && (args.all || args.selector.is_some() || args.field_selector.is_some())
}

/// Deletes one object; returns its uid (to tell it from a successor of the same name).
async fn delete_one(
    session: &Session,
    object: &Located,
    params: &DeleteParams,
) -> anyhow::Result<Option<String>> {
    let api = session.api(&object.resource, object.namespace.as_deref());
    let response = api.delete(&object.name, params).await?;
    Ok(response.either(
        |object| object.metadata.uid,
        |status| status.details.map(|d| d.uid).filter(|uid| !uid.is_empty()),
    ))
}
