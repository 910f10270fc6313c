//! kubectl's printing of the server's `meta.k8s.io` Tables: the columns of priority 0
//! (all of them with `-o wide`), headers uppercased, a NAMESPACE column first with
//! `-A`, names prefixed `kind.group/` when several types are printed, label columns
//! at the end. Headers are printed once per run of tables with the same columns.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::tabwriter::TabWriter;

/// A `meta.k8s.io/v1` Table as the server sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    #[serde(default)]
    pub column_definitions: Vec<Column>,
    #[serde(default)]
    pub rows: Vec<Row>,
    #[serde(default)]
    pub metadata: TableMeta,
}

/// The list metadata of a Table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableMeta {
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
}

/// One column definition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: i64,
}

/// One row: its cells, in column order, and the object (or its metadata) it shows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Row {
    #[serde(default)]
    pub cells: Vec<Value>,
    #[serde(default)]
    pub object: Option<Value>,
}

impl Row {
    /// The row's object's metadata (from `includeObject=Metadata` or `Object`).
    fn metadata(&self) -> Option<&Value> {
        self.object.as_ref().and_then(|o| o.get("metadata"))
    }
}

/// How to print tables, from `kubectl get`'s flags.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// `-o wide`: every column, whatever its priority.
    pub wide: bool,
    pub no_headers: bool,
    /// `-A` on a namespaced type: a NAMESPACE column first.
    pub with_namespace: bool,
    /// `kind.group` to prefix names with (`deployment.apps/web`).
    pub kind: Option<String>,
    /// `--show-labels`: a LABELS column last.
    pub show_labels: bool,
    /// `-L key,…`: one column per label key.
    pub label_columns: Vec<String>,
}

/// Prints the tables of one resource type, as kubectl's human-readable printer does.
#[derive(Debug)]
pub struct TablePrinter {
    options: TableOptions,
    last_columns: Vec<Column>,
    printed_headers: bool,
}

impl TablePrinter {
    pub fn new(options: TableOptions) -> TablePrinter {
        TablePrinter {
            options,
            last_columns: Vec::new(),
            printed_headers: false,
        }
    }

    /// Queues `table`'s header (unless already printed for these columns) and rows.
    /// Watch events may carry no column definitions: the last ones apply.
    pub fn print(&mut self, mut table: Table, out: &mut TabWriter) {
        let mut no_headers = self.options.no_headers;
        if self.printed_headers
            && (table.column_definitions.is_empty()
                || table.column_definitions == self.last_columns)
        {
            no_headers = true;
        }
        if table.column_definitions.is_empty() {
            table.column_definitions = self.last_columns.clone();
        } else if table.column_definitions != self.last_columns {
            self.last_columns = table.column_definitions.clone();
            self.printed_headers = false;
        }
        if table.rows.is_empty() {
            return;
        }
        self.printed_headers = true;
        let shown: Vec<usize> = table
            .column_definitions
            .iter()
            .enumerate()
            .filter(|(_, c)| self.options.wide || c.priority == 0)
            .map(|(i, _)| i)
            .collect();
        let name_column = table
            .column_definitions
            .iter()
            .position(|c| c.format == "name" && c.type_ == "string");
        if !no_headers {
            let mut header = Vec::new();
            if self.options.with_namespace {
                header.push("NAMESPACE".to_string());
            }
            header.extend(
                shown
                    .iter()
                    .map(|&i| table.column_definitions[i].name.to_uppercase()),
            );
            header.extend(self.options.label_columns.iter().map(|k| label_header(k)));
            if self.options.show_labels {
                header.push("LABELS".to_string());
            }
            out.row(header);
        }
        for row in &table.rows {
            out.row(self.cells(row, &shown, name_column));
        }
    }

    fn cells(&self, row: &Row, shown: &[usize], name_column: Option<usize>) -> Vec<String> {
        let metadata = row.metadata();
        let mut cells = Vec::new();
        if self.options.with_namespace {
            cells.push(text_field(metadata, "namespace"));
        }
        for &i in shown {
            let mut cell = row.cells.get(i).map(cell_text).unwrap_or_default();
            if Some(i) == name_column
                && let Some(kind) = &self.options.kind
            {
                cell = format!("{kind}/{cell}");
            }
            cells.push(cell);
        }
        let labels = labels_of(metadata);
        for key in &self.options.label_columns {
            cells.push(labels.get(key.as_str()).cloned().unwrap_or_default());
        }
        if self.options.show_labels {
            cells.push(format_labels(&labels));
        }
        cells
    }
}

/// A cell as kubectl prints it: strings cut at the first line break (with `...`),
/// terminal escapes made visible, other values as Go's `fmt.Sprint` shows them.
pub fn cell_text(cell: &Value) -> String {
    match cell {
        Value::Null => String::new(),
        Value::String(s) => {
            let mut text = match s.find(['\n', '\r', '\u{c}']) {
                Some(at) => format!("{}...", &s[..at]),
                None => s.clone(),
            };
            if text.contains('\u{1b}') {
                text = text.replace('\u{1b}', "^[");
            }
            text
        }
        other => go_sprint(other),
    }
}

/// Go's `fmt.Sprint` of a decoded JSON value.
fn go_sprint(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e21 => {
                format!("{f:.0}")
            }
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_sprint).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_sprint(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

fn text_field(metadata: Option<&Value>, field: &str) -> String {
    metadata
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn labels_of(metadata: Option<&Value>) -> BTreeMap<String, String> {
    metadata
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `labels.FormatLabels`: `k=v,k2=v2` sorted by key, `<none>` when there are none.
fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The header of a `-L` column: the key's last path segment, uppercased.
fn label_header(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Table {
        serde_json::from_value(json!({
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Ready", "type": "string", "format": "", "priority": 0},
                {"name": "IP", "type": "string", "format": "", "priority": 1},
                {"name": "Age", "type": "string", "format": "", "priority": 0},
            ],
            "rows": [
                {"cells": ["web-1", "1/1", "10.0.0.1", "5s"],
                 "object": {"metadata": {"name": "web-1", "namespace": "default",
                                         "labels": {"b": "2", "a": "1"}}}},
                {"cells": ["db", "0/1", null, "10m"],
                 "object": {"metadata": {"name": "db", "namespace": "kube-system"}}},
            ],
        }))
        .expect("a table")
    }

    fn render(printer: &mut TablePrinter, tables: Vec<Table>) -> String {
        let mut w = TabWriter::new();
        for t in tables {
            printer.print(t, &mut w);
        }
        let mut out = Vec::new();
        w.flush(&mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn hides_wide_columns_unless_asked() {
        let mut p = TablePrinter::new(TableOptions::default());
        assert_eq!(
            render(&mut p, vec![table()]),
            "NAME    READY   AGE\nweb-1   1/1     5s\ndb      0/1     10m\n"
        );
        let mut p = TablePrinter::new(TableOptions {
            wide: true,
            ..TableOptions::default()
        });
        assert_eq!(
            render(&mut p, vec![table()]),
            "NAME    READY   IP         AGE\nweb-1   1/1     10.0.0.1   5s\ndb      0/1                10m\n"
        );
    }

    #[test]
    fn decorates_with_namespace_kind_and_labels() {
        let mut p = TablePrinter::new(TableOptions {
            with_namespace: true,
            kind: Some("pod".into()),
            show_labels: true,
            label_columns: vec!["a".into()],
            ..TableOptions::default()
        });
        let expected = concat!(
            "NAMESPACE     NAME        READY   AGE   A     LABELS\n",
            "default       pod/web-1   1/1     5s    1     a=1,b=2\n",
            "kube-system   pod/db      0/1     10m         <none>\n",
        );
        assert_eq!(render(&mut p, vec![table()]), expected);
        assert_eq!(label_header("example.com/tier"), "TIER");
    }

    #[test]
    fn headers_once_for_the_same_columns() {
        let mut p = TablePrinter::new(TableOptions::default());
        let empty = Table {
            column_definitions: table().column_definitions,
            ..Table::default()
        };
        let out = render(&mut p, vec![empty, table(), table()]);
        assert_eq!(out.matches("NAME").count(), 1, "{out}");
        assert_eq!(out.lines().count(), 5, "{out}");
    }

    #[test]
    fn cells_as_kubectl_shows_them() {
        assert_eq!(cell_text(&json!("a\nb")), "a...");
        assert_eq!(cell_text(&json!("\u{1b}[31m")), "^[[31m");
        assert_eq!(cell_text(&json!(3)), "3");
        assert_eq!(cell_text(&json!(2.0)), "2");
        assert_eq!(cell_text(&json!(0.5)), "0.5");
        assert_eq!(cell_text(&json!(true)), "true");
        assert_eq!(cell_text(&Value::Null), "");
        assert_eq!(cell_text(&json!(["a", "b"])), "[a b]");
    }
}
