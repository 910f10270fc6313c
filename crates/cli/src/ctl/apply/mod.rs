//! `mast apply -f`: server-side apply of every object in files, directories or stdin,
//! as `kubectl apply --server-side` does it: one `PATCH` (`application/apply-patch+yaml`)
//! per object under a field manager (`mast` unless `--field-manager`), in the order
//! read. An object that fails gets one error line and the rest still go; the exit
//! status then says something failed.
//!
//! Layout: `manifest` reads and locates objects (shared with `get`, `delete`, `scale`).

pub mod manifest;

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::printer::kind_group;
use super::{Connection, Session, error_line, exit_reported};
use manifest::Manifest;

/// Flags of `mast apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// A manifest file, a directory of them, or `-` for stdin (repeatable).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<PathBuf>,
    /// Read directories recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// The field manager the applied fields are owned by.
    #[arg(long, default_value = "mast")]
    pub field_manager: String,
    /// Take over fields other managers own instead of failing with a conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// `server`: have the server check and default the objects without storing them.
    #[arg(long, value_name = "none|server")]
    pub dry_run: Option<String>,
    /// Accepted for kubectl's command lines: mast always applies server-side.
    #[arg(long, hide = true)]
    pub server_side: bool,
}

/// `--dry-run`'s value: whether the server should only pretend. Client-side dry runs
/// need kubectl's local machinery, which mast leaves to the server.
pub fn dry_run(value: Option<&str>) -> anyhow::Result<bool> {
    match value {
        None | Some("none") => Ok(false),
        Some("server") => Ok(true),
        Some("client") => bail!("--dry-run=client is not supported, use --dry-run=server"),
        Some(other) => {
            bail!("invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\".")
        }
    }
}

pub async fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let dry_run = dry_run(args.dry_run.as_deref())?;
    if args.filenames.is_empty() {
        bail!("must specify -f (a file, a directory, or - for stdin)");
    }
    let manifests = manifest::read(&args.filenames, args.recursive)?;
    if manifests.is_empty() {
        bail!("no objects passed to apply");
    }
    let session = Session::connect(&args.connection)?;
    let mut failed = false;
    for m in &manifests {
        match apply_one(&session, &args, m, dry_run).await {
            Ok(applied) => {
                let suffix = if dry_run { " (server dry run)" } else { "" };
                println!("{applied} serverside-applied{suffix}");
            }
            Err(e) => {
                eprintln!("{}", error_line(&e));
                failed = true;
            }
        }
    }
    if failed {
        exit_reported();
    }
    Ok(())
}

/// Applies one object; returns its `kind.group/name`.
async fn apply_one(
    session: &Session,
    args: &ApplyArgs,
    m: &Manifest,
    dry_run: bool,
) -> anyhow::Result<String> {
    let located = manifest::locate(session, m, args.connection.namespace.as_deref()).await?;
    let mut object = m.object.clone();
    // The body names the namespace the URL does (none for cluster-scoped objects).
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        match &located.namespace {
            Some(ns) => metadata.insert("namespace".to_string(), Value::from(ns.clone())),
            None => metadata.remove("namespace"),
        };
    }
    let params = PatchParams {
        field_manager: Some(args.field_manager.clone()),
        force: args.force_conflicts,
        dry_run,
        ..PatchParams::default()
    };
    let api = session.api(&located.resource, located.namespace.as_deref());
    match api
        .patch(&located.name, &params, &Patch::Apply(&object))
        .await
    {
        Ok(_) => Ok(format!(
            "{}/{}",
            kind_group(&located.resource.api.kind, &located.resource.api.group),
            located.name
        )),
        // kubectl words field conflicts as its own error, not the server's.
        Err(kube::Error::Api(status)) if status.code == 409 && status.reason == "Conflict" => {
            bail!("{}", status.message)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_values() {
        assert!(!dry_run(None).expect("absent"));
        assert!(!dry_run(Some("none")).expect("none"));
        assert!(dry_run(Some("server")).expect("server"));
        assert!(dry_run(Some("client")).is_err());
        assert!(dry_run(Some("bogus")).is_err());
    }
}
