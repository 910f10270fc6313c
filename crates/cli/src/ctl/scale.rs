//! `mast scale`: sets the replicas of Deployments, ReplicaSets or StatefulSets through
//! their `scale` subresource, as `kubectl scale` does: read the Scale, check the
//! preconditions (`--current-replicas`, `--resource-version`), write it back at the
//! version read, and start over when someone else wrote in between.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use kube::api::PostParams;

use super::apply::{dry_run, manifest::Located};
use super::get::fetch::Scope;
use super::get::target::{self, Selection};
use super::printer::kind_group;
use super::{Connection, Session, error_line, exit_reported};

/// How often a write that lost a race is tried again.
const ATTEMPTS: usize = 5;

/// Flags of `mast scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// `TYPE NAME…` or `TYPE/NAME …`.
    pub args: Vec<String>,
    /// The number of replicas to set.
    #[arg(long, allow_negative_numbers = true)]
    pub replicas: Option<i64>,
    /// Only scale if the current replicas are this many.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
    /// Only scale if the object is still at this resourceVersion.
    #[arg(long)]
    pub resource_version: Option<String>,
    /// Scale the objects these manifests name (files, directories, `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<PathBuf>,
    /// Read directories given with -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Scale the objects of the types matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Scale every object of the types in the namespace.
    #[arg(long)]
    pub all: bool,
    /// `server`: have the server check the change without making it.
    #[arg(long, value_name = "none|server")]
    pub dry_run: Option<String>,
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let dry_run = dry_run(args.dry_run.as_deref())?;
    let replicas = match args.replicas {
        None => bail!("required flag(s) \"replicas\" not set"),
        Some(r) => i32::try_from(r).ok().filter(|r| *r >= 0).ok_or_else(|| {
            anyhow::anyhow!(
                "The --replicas=COUNT flag is required, and COUNT must be greater than or \
                 equal to 0"
            )
        })?,
    };
    let session = Session::connect(&args.connection)?;
    let selection = Selection {
        args: args.args.clone(),
        filenames: args.filenames.clone(),
        recursive: args.recursive,
        explicit_namespace: args.connection.namespace.clone(),
        scope: Scope {
            namespace: Some(session.namespace.clone()),
            label_selector: args.selector.clone(),
            field_selector: None,
        },
        all: args.all,
    };
    let (objects, unlocated) = target::select(&session, &selection).await?;
    for e in &unlocated {
        eprintln!("{}", error_line(e));
    }
    if objects.is_empty() && unlocated.is_empty() {
        bail!("no objects passed to scale");
    }
    if objects.len() > 1 && args.resource_version.is_some() {
        bail!("cannot use --resource-version with multiple resources");
    }
    let preconditions = Preconditions {
        replicas: (args.current_replicas >= 0).then_some(args.current_replicas),
        resource_version: args.resource_version.clone(),
    };
    let suffix = if dry_run { " (server dry run)" } else { "" };
    let mut failed = !unlocated.is_empty();
    for object in &objects {
        match scale_one(&session, object, replicas, &preconditions, dry_run).await {
            Ok(()) => println!(
                "{}/{} scaled{suffix}",
                kind_group(&object.resource.api.kind, &object.resource.api.group),
                object.name
            ),
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

/// What must hold before scaling.
#[derive(Debug, Default)]
struct Preconditions {
    replicas: Option<i64>,
    resource_version: Option<String>,
}

impl Preconditions {
    /// kubectl's wording when one does not hold.
    fn check(&self, replicas: i32, resource_version: &str) -> anyhow::Result<()> {
        if let Some(expected) = self.replicas
            && expected != i64::from(replicas)
        {
            bail!("Expected replicas to be {expected}, was {replicas}");
        }
        if let Some(expected) = &self.resource_version
            && expected != resource_version
        {
            bail!("Expected resource version to be {expected}, was {resource_version}");
        }
        Ok(())
    }
}

async fn scale_one(
    session: &Session,
    object: &Located,
    replicas: i32,
    preconditions: &Preconditions,
    dry_run: bool,
) -> anyhow::Result<()> {
    let api = session.api(&object.resource, object.namespace.as_deref());
    let params = PostParams {
        dry_run,
        ..PostParams::default()
    };
    let mut attempt = 1;
    loop {
        let mut scale = api.get_scale(&object.name).await?;
        let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let version = scale.metadata.resource_version.clone().unwrap_or_default();
        preconditions.check(current, &version)?;
        scale.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        // The read version rides along, so a concurrent write makes this one conflict.
        match api.replace_scale(&object.name, &params, &scale).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_as_kubectl_words_them() {
        let none = Preconditions::default();
        assert!(none.check(3, "7").is_ok());
        let p = Preconditions {
            replicas: Some(2),
            resource_version: Some("7".into()),
        };
        assert!(p.check(2, "7").is_ok());
        let err = p.check(3, "7").expect_err("replicas differ").to_string();
        assert_eq!(err, "Expected replicas to be 2, was 3");
        let err = p.check(2, "8").expect_err("version differs").to_string();
        assert_eq!(err, "Expected resource version to be 7, was 8");
    }
}
