//! `mast get`: objects as kubectl prints them. Tables come from the server (kubectl's
//! columns), aligned here; `-o yaml|json|name` print the objects themselves, one
//! object alone or several as a `v1` `List`; `-w` follows changes row by row.
//!
//! Layout: `target` reads the command line into visits, `fetch` makes the requests,
//! `watch` follows changes; this module prints one snapshot.

pub mod fetch;
pub mod target;
mod watch;

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use serde_json::Value;

use super::apply::manifest;
use super::printer::{self, TabWriter, TableOptions, TablePrinter};
use super::{Connection, Session, error_line, exit_reported, is_not_found};
use fetch::Scope;
use target::Visit;

/// Flags of `mast get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// `TYPE[,TYPE…] [NAME…]` or `TYPE/NAME …` (`all` for the workload types).
    pub args: Vec<String>,
    /// Output format: wide, yaml, json or name (default: a table).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Label selector (`app=web`, `tier in (a,b)`, `!canary`), applied by the server.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (`status.phase=Running`, `spec.nodeName=n1`).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// List across every namespace (a NAMESPACE column first).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Print tables without their header row.
    #[arg(long)]
    pub no_headers: bool,
    /// Add a LABELS column.
    #[arg(long)]
    pub show_labels: bool,
    /// Add a column per label key (`-L app,tier`).
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// Prefix names with their type even for a single type.
    #[arg(long)]
    pub show_kind: bool,
    /// Not an error when a named object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// After the listing, print each change as it happens.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Print only the changes, not the current objects.
    #[arg(long)]
    pub watch_only: bool,
    /// Keep `metadata.managedFields` in `-o yaml|json` output.
    #[arg(long)]
    pub show_managed_fields: bool,
    /// Get the objects these manifests name (files, directories, `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<PathBuf>,
    /// Read directories given with -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// How objects are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table { wide: bool },
    Yaml,
    Json,
    Name,
}

impl Output {
    /// `-o`'s value, with kubectl's complaint for the formats this one lacks.
    pub fn parse(value: Option<&str>) -> anyhow::Result<Output> {
        Ok(match value.unwrap_or("") {
            "" => Output::Table { wide: false },
            "wide" => Output::Table { wide: true },
            "yaml" => Output::Yaml,
            "json" => Output::Json,
            "name" => Output::Name,
            other => bail!(
                "unable to match a printer suitable for the output format \"{other}\", \
                 allowed formats are: json,name,wide,yaml"
            ),
        })
    }
}

pub async fn run(args: GetArgs) -> anyhow::Result<()> {
    let output = Output::parse(args.output.as_deref())?;
    let session = Session::connect(&args.connection)?;
    let visits = visits(&session, &args).await?;
    let scope = Scope {
        namespace: (!args.all_namespaces).then(|| session.namespace.clone()),
        label_selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
    };
    if args.watch || args.watch_only {
        return watch::run(&session, &args, output, &visits, &scope).await;
    }
    let errors = match output {
        Output::Table { wide } => print_tables(&session, &args, wide, &visits, &scope).await?,
        _ => print_objects(&session, &args, output, &visits, &scope).await?,
    };
    if errors.is_empty() {
        return Ok(());
    }
    for error in &errors {
        eprintln!("{}", error_line(error));
    }
    exit_reported()
}

/// What the arguments (or `-f`) name, checked as kubectl checks them.
async fn visits(session: &Session, args: &GetArgs) -> anyhow::Result<Vec<Visit>> {
    let visits = if args.filenames.is_empty() {
        if args.args.is_empty() {
            bail!("you must specify the type of resource to get (e.g. mast get pods)");
        }
        target::parse(session, &args.args).await?
    } else {
        if !args.args.is_empty() {
            bail!(
                "when paths, URLs, or stdin is provided as input, you may not specify resource \
                 arguments as well"
            );
        }
        let mut visits = Vec::new();
        for m in manifest::read(&args.filenames, args.recursive)? {
            let located =
                manifest::locate(session, &m, args.connection.namespace.as_deref()).await?;
            visits.push(Visit {
                resource: located.resource,
                name: Some(located.name),
                namespace: located.namespace,
            });
        }
        visits
    };
    let named = visits.iter().any(|v| v.name.is_some());
    if named && (args.selector.is_some() || args.field_selector.is_some()) {
        bail!("name cannot be provided when a selector is specified");
    }
    if named && args.all_namespaces && args.filenames.is_empty() {
        bail!("a resource cannot be retrieved by name across all namespaces");
    }
    Ok(visits)
}

/// stdout as kubectl's get writes it: a blank line before the table of another type,
/// once something was printed.
#[derive(Debug, Default)]
struct Sections {
    written: bool,
    separate: bool,
}

impl Sections {
    fn write(&mut self, text: &[u8]) -> std::io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        if self.separate {
            out.write_all(b"\n")?;
            self.separate = false;
        }
        self.written = true;
        out.write_all(text)?;
        out.flush()
    }

    fn flush(&mut self, tabs: &mut TabWriter) -> std::io::Result<()> {
        let mut text = Vec::new();
        tabs.flush(&mut text)?;
        self.write(&text)
    }
}

/// The table options for `resource` from the flags.
fn table_options(
    args: &GetArgs,
    wide: bool,
    namespaced: bool,
    kind: Option<String>,
) -> TableOptions {
    TableOptions {
        wide,
        no_headers: args.no_headers,
        with_namespace: args.all_namespaces && namespaced,
        kind,
        show_labels: args.show_labels,
        label_columns: args.label_columns.clone(),
    }
}

/// Fetches and prints every visit as a table; returns the failures.
async fn print_tables(
    session: &Session,
    args: &GetArgs,
    wide: bool,
    visits: &[Visit],
    scope: &Scope,
) -> anyhow::Result<Vec<anyhow::Error>> {
    let mut tables = Vec::new();
    let mut errors = Vec::new();
    for visit in visits {
        match fetch::table(session, visit, scope).await {
            Ok(table) => tables.push((visit, table)),
            Err(e) if args.ignore_not_found && is_not_found(&e) => {}
            Err(e) => errors.push(e),
        }
    }
    let several_types = tables
        .iter()
        .any(|(v, _)| v.resource.qualified_plural() != tables[0].0.resource.qualified_plural());
    let with_kind = args.show_kind || several_types;
    let mut sections = Sections::default();
    let mut tabs = TabWriter::new();
    let mut current: Option<(String, TablePrinter)> = None;
    for (visit, table) in tables {
        let key = visit.resource.qualified_plural();
        let printer = match &mut current {
            Some((k, printer)) if *k == key => printer,
            _ => {
                sections.flush(&mut tabs)?;
                tabs.forget_widths();
                if current.is_some() && !args.no_headers && sections.written {
                    sections.separate = true;
                }
                let resource = &visit.resource;
                let kind =
                    with_kind.then(|| printer::kind_group(&resource.api.kind, &resource.api.group));
                let options = table_options(args, wide, resource.namespaced, kind);
                &mut current.insert((key, TablePrinter::new(options))).1
            }
        };
        printer.print(table, &mut tabs);
    }
    sections.flush(&mut tabs)?;
    if !sections.written && !args.ignore_not_found && errors.is_empty() {
        let namespaced = visits.iter().all(|v| v.resource.namespaced);
        match &scope.namespace {
            Some(ns) if namespaced => eprintln!("No resources found in {ns} namespace."),
            _ => eprintln!("No resources found"),
        }
    }
    Ok(errors)
}

/// Fetches every visit's objects and prints them as YAML, JSON or names: one object
/// alone when one was named, else a `List`. Returns the failures.
async fn print_objects(
    session: &Session,
    args: &GetArgs,
    output: Output,
    visits: &[Visit],
    scope: &Scope,
) -> anyhow::Result<Vec<anyhow::Error>> {
    let single = visits.len() == 1 && visits[0].name.is_some();
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for visit in visits {
        match fetch::objects(session, visit, scope).await {
            Ok((mut objects, _)) => {
                if !args.show_managed_fields {
                    objects.iter_mut().for_each(strip_managed_fields);
                }
                items.extend(objects)
            }
            Err(e) if args.ignore_not_found && is_not_found(&e) => {}
            Err(e) => errors.push(e),
        }
    }
    if (single && items.is_empty()) || (items.is_empty() && args.ignore_not_found) {
        return Ok(errors);
    }
    let text = match output {
        Output::Name => items
            .iter()
            .map(|o| format!("{}\n", object_name(o)))
            .collect(),
        _ => {
            let value = if single && items.len() == 1 {
                items.swap_remove(0)
            } else {
                printer::list(items)
            };
            encode(output, &value)?
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(errors)
}

/// An object as `-o yaml` or `-o json` prints it.
fn encode(output: Output, value: &Value) -> anyhow::Result<String> {
    match output {
        Output::Json => Ok(printer::to_json(value)),
        _ => printer::to_yaml(value),
    }
}

/// Drops `metadata.managedFields`, which kubectl leaves out of its output by default.
pub fn strip_managed_fields(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
}

/// `deployment.apps/web`: an object as `-o name` prints it.
pub fn object_name(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let group = text("/apiVersion").rsplit_once('/').map_or("", |(g, _)| g);
    format!(
        "{}/{}",
        printer::kind_group(text("/kind"), group),
        text("/metadata/name")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_formats() {
        assert_eq!(
            Output::parse(None).ok(),
            Some(Output::Table { wide: false })
        );
        assert_eq!(
            Output::parse(Some("wide")).ok(),
            Some(Output::Table { wide: true })
        );
        assert_eq!(Output::parse(Some("name")).ok(), Some(Output::Name));
        let err = Output::parse(Some("jsonpath")).expect_err("unsupported");
        assert!(err.to_string().contains("\"jsonpath\""), "{err}");
    }

    #[test]
    fn errors_as_kubectl_words_them() {
        let status = kube::core::Status::failure("pods \"x\" not found", "NotFound").with_code(404);
        let err = anyhow::Error::from(kube::Error::Api(status.boxed()));
        assert_eq!(
            error_line(&err),
            "Error from server (NotFound): pods \"x\" not found"
        );
        let err = err.context("error when deleting \"f.yaml\"");
        assert_eq!(
            error_line(&err),
            "Error from server (NotFound): error when deleting \"f.yaml\": pods \"x\" not found"
        );
        assert!(is_not_found(&err));
        let plain = anyhow::anyhow!("the server doesn't have a resource type \"foo\"");
        assert_eq!(
            error_line(&plain),
            "error: the server doesn't have a resource type \"foo\""
        );
        assert!(!is_not_found(&plain));
    }

    #[test]
    fn names_as_kubectl_prints_them() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        assert_eq!(object_name(&d), "deployment.apps/web");
        let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}});
        assert_eq!(object_name(&p), "pod/x");
    }
}
