//! `mast get -w`: the current objects, then one row (or object) per change, as
//! kubectl prints them. A collection is watched from its list's resourceVersion; a
//! named object from "now" (`resourceVersion=0`), whose first event only repeats
//! what was printed. When the server ends a watch it is resumed where it stopped.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::TryStreamExt;
use kube::api::WatchParams;
use kube::core::WatchEvent;
use serde_json::Value;

use super::fetch::{self, Scope};
use super::target::Visit;
use super::{GetArgs, Output, encode, object_name, strip_managed_fields, table_options};
use crate::ctl::printer::{TabWriter, Table, TablePrinter};
use crate::ctl::{Session, error_line, exit_reported};

/// A watch that ends sooner than this after it began is resumed only after this
/// long, so a server going away is not asked again in a tight loop.
const RESUME_PAUSE: Duration = Duration::from_secs(1);

/// Prints what a watch sees, in the chosen format.
enum Printer {
    Table {
        printer: TablePrinter,
        tabs: TabWriter,
    },
    Objects {
        output: Output,
        printed: usize,
        managed_fields: bool,
    },
}

impl Printer {
    /// Prints one watch event's object: a one-row Table, or the object itself.
    fn print(&mut self, object: Value) -> anyhow::Result<()> {
        match self {
            Printer::Table { .. } => self.print_table(fetch::parse_table(object)?),
            Printer::Objects {
                output,
                printed,
                managed_fields,
            } => {
                let mut object = object;
                if !*managed_fields {
                    strip_managed_fields(&mut object);
                }
                let mut text = String::new();
                if *output == Output::Name {
                    text = format!("{}\n", object_name(&object));
                } else {
                    // kubectl separates the YAML documents of a stream.
                    if *output == Output::Yaml && *printed > 0 {
                        text.push_str("---\n");
                    }
                    text.push_str(&encode(*output, &object)?);
                }
                *printed += 1;
                emit(text.as_bytes())
            }
        }
    }

    fn print_table(&mut self, table: Table) -> anyhow::Result<()> {
        let Printer::Table { printer, tabs } = self else {
            return Ok(());
        };
        printer.print(table, tabs);
        let mut text = Vec::new();
        tabs.flush(&mut text)?;
        emit(&text)
    }
}

fn emit(text: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text)?;
    out.flush()?;
    Ok(())
}

pub async fn run(
    session: &Session,
    args: &GetArgs,
    output: Output,
    visits: &[Visit],
    scope: &Scope,
) -> anyhow::Result<()> {
    let Some(visit) = visits.first() else {
        bail!("you must specify the type of resource to get");
    };
    if visits
        .iter()
        .any(|v| v.resource.qualified_plural() != visit.resource.qualified_plural())
    {
        bail!("you may only specify a single resource type");
    }
    if visits.len() > 1 {
        bail!("watch is only supported on individual resources and resource collections");
    }
    let mut printer = match output {
        Output::Table { wide } => Printer::Table {
            printer: TablePrinter::new(table_options(args, wide, visit.resource.namespaced, None)),
            tabs: TabWriter::new(),
        },
        _ => Printer::Objects {
            output,
            printed: 0,
            managed_fields: args.show_managed_fields,
        },
    };
    let list_version = match print_current(session, visit, scope, output, args, &mut printer).await
    {
        Ok(version) => version,
        Err(e) => {
            eprintln!("{}", error_line(&e));
            exit_reported()
        }
    };
    let named = visit.name.is_some();
    let mut version = if named { "0".to_string() } else { list_version };
    loop {
        // A named object's watch opens with the state just printed.
        let mut skip_first = named && version == "0";
        let started = Instant::now();
        let request = watch_request(session, visit, scope, output, &version)?;
        let events = session.client.request_events::<Value>(request).await?;
        futures::pin_mut!(events);
        while let Some(event) = events.try_next().await? {
            let object = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
                WatchEvent::Bookmark(b) => {
                    version = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(status) => {
                    bail!("the watch failed: {} ({})", status.message, status.reason)
                }
            };
            if let Some(v) = object_version(&object) {
                version = v;
            }
            if std::mem::take(&mut skip_first) {
                continue;
            }
            printer.print(object)?;
        }
        if started.elapsed() < RESUME_PAUSE {
            tokio::time::sleep(RESUME_PAUSE).await;
        }
    }
}

/// Prints what is there now (unless `--watch-only`); returns the resourceVersion a
/// collection's watch starts from.
async fn print_current(
    session: &Session,
    visit: &Visit,
    scope: &Scope,
    output: Output,
    args: &GetArgs,
    printer: &mut Printer,
) -> anyhow::Result<String> {
    if let Output::Table { .. } = output {
        let table = fetch::table(session, visit, scope).await?;
        let version = table.metadata.resource_version.clone().unwrap_or_default();
        if !args.watch_only {
            printer.print_table(table)?;
        }
        return Ok(version);
    }
    let (objects, version) = fetch::objects(session, visit, scope).await?;
    if !args.watch_only {
        for object in objects {
            printer.print(object)?;
        }
    }
    Ok(version)
}

fn watch_request(
    session: &Session,
    visit: &Visit,
    scope: &Scope,
    output: Output,
    version: &str,
) -> anyhow::Result<http::Request<Vec<u8>>> {
    let mut field_selector = scope.field_selector.clone();
    if let Some(name) = &visit.name {
        let by_name = format!("metadata.name={name}");
        field_selector = Some(match field_selector {
            Some(f) => format!("{f},{by_name}"),
            None => by_name,
        });
    }
    let params = WatchParams {
        label_selector: scope.label_selector.clone(),
        field_selector,
        ..WatchParams::default()
    };
    let url = fetch::collection_url(session, visit, scope);
    let mut request = kube::core::Request::new(url).watch(&params, version)?;
    if let Output::Table { .. } = output {
        fetch::accept_table(&mut request);
    }
    Ok(request)
}

/// The resourceVersion a watch object carries (the object's, a Table's, or that of
/// the object in the Table's row).
fn object_version(object: &Value) -> Option<String> {
    [
        "/metadata/resourceVersion",
        "/rows/0/object/metadata/resourceVersion",
    ]
    .iter()
    .filter_map(|pointer| object.pointer(pointer).and_then(Value::as_str))
    .find(|v| !v.is_empty())
    .map(str::to_string)
}
