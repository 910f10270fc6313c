//! Server-side printing: objects rendered as a `meta.k8s.io` `Table`, the form
//! `kubectl get` asks for, with upstream's columns and cell formatting
//! (`pkg/printers/internalversion`).
//!
//! Upstream's apiserver always generates the wide form (its table convertor passes
//! `Wide: true`); kubectl hides the columns with a priority above zero unless `-o wide`
//! is given. So every row here carries every column, in column order.
//!
//! Everything is pure: objects come in as the API stores them (upstream JSON shapes),
//! and the current time comes in as a number, so the same input always renders the
//! same table.
//!
//! Layout:
//! - [`format`](mod@format): `HumanDuration`, timestamps, label and selector strings.
//! - `negotiate`: whether an `Accept` header asks for a Table ([`wants_table`]).
//! - one file per kind or family: `pod`, `apps` (Deployment, ReplicaSet), `cluster`
//!   (Node, Namespace, Lease), `service` (Service, Endpoints, EndpointSlice), `config`
//!   (ConfigMap, Secret, ServiceAccount), `event`, and `default` for every other kind
//!   (upstream's default table convertor: NAME and CREATED AT).

mod apps;
mod cluster;
mod config;
mod default;
mod event;
pub mod format;
mod negotiate;
mod pod;
mod service;

pub use negotiate::wants_table;

use serde_json::{Map, Value, json};

/// The `includeObject` query parameter: what each row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object (`includeObject=None`).
    None,
    /// The object's metadata as a `PartialObjectMetadata` (upstream's default, and
    /// what kubectl asks for).
    #[default]
    Metadata,
    /// The whole object (`includeObject=Object`).
    Object,
}

impl IncludeObject {
    /// Reads the query parameter: absent or empty means the default (`Metadata`); an
    /// unrecognised value gives `None`, which upstream answers with 400 Bad Request
    /// (`unrecognized includeObject value: "x"`).
    pub fn from_query(value: Option<&str>) -> Option<Self> {
        match value.unwrap_or("") {
            "" | "Metadata" => Some(Self::Metadata),
            "None" => Some(Self::None),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

/// Renders `objects` (all of `kind`) as a `meta.k8s.io/v1` Table. `list_metadata`
/// becomes the table's `metadata` (resourceVersion, continue, remainingItemCount);
/// `now` is the current time in Unix seconds, for the AGE-like cells.
pub fn table(
    kind: &str,
    objects: &[Value],
    list_metadata: Value,
    include_object: IncludeObject,
    now: i64,
) -> Value {
    table_for_version("v1", kind, objects, list_metadata, include_object, now)
}

/// As [`table`], for the `meta.k8s.io` version the client negotiated (`"v1"` or
/// `"v1beta1"`, see [`wants_table`]); the rows' `PartialObjectMetadata` carry the same
/// version, as upstream's.
pub fn table_for_version(
    version: &str,
    kind: &str,
    objects: &[Value],
    list_metadata: Value,
    include_object: IncludeObject,
    now: i64,
) -> Value {
    let printer = printer(kind);
    let api_version = format!("meta.k8s.io/{version}");
    let columns: Vec<Value> = printer.columns.iter().map(|c| c.to_json()).collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let row = (printer.row)(object, now);
            let mut out = Map::new();
            out.insert("cells".into(), Value::Array(row.cells));
            if !row.conditions.is_empty() {
                out.insert("conditions".into(), Value::Array(row.conditions));
            }
            match include_object {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let metadata = match object.get("metadata") {
                        Some(m) if m.is_object() => m.clone(),
                        _ => json!({}),
                    };
                    out.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": api_version,
                            "metadata": metadata,
                        }),
                    );
                }
                IncludeObject::Object => {
                    out.insert("object".into(), object.clone());
                }
            }
            Value::Object(out)
        })
        .collect();
    let metadata = if list_metadata.is_object() {
        list_metadata
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// How one kind prints: its columns and the function that fills a row.
#[derive(Debug, Clone, Copy)]
struct Printer {
    columns: &'static [Column],
    row: fn(&Value, i64) -> Row,
}

/// The printer for `kind`; kinds without one get upstream's default table.
fn printer(kind: &str) -> Printer {
    match kind {
        "Pod" => pod::PRINTER,
        "Deployment" => apps::DEPLOYMENT,
        "ReplicaSet" => apps::REPLICA_SET,
        "Node" => cluster::NODE,
        "Namespace" => cluster::NAMESPACE,
        "Lease" => cluster::LEASE,
        "Service" => service::SERVICE,
        "Endpoints" => service::ENDPOINTS,
        "EndpointSlice" => service::ENDPOINT_SLICE,
        "ConfigMap" => config::CONFIG_MAP,
        "Secret" => config::SECRET,
        "ServiceAccount" => config::SERVICE_ACCOUNT,
        "Event" => event::PRINTER,
        _ => default::PRINTER,
    }
}

/// One printed row: the cells, in column order, and upstream's row conditions (only
/// finished pods have any).
#[derive(Debug, Clone, PartialEq, Default)]
struct Row {
    cells: Vec<Value>,
    conditions: Vec<Value>,
}

impl Row {
    fn cells(cells: Vec<Value>) -> Self {
        Self {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// A `TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `date`, ...
    kind: &'static str,
    /// `name` for the column holding the object's name, else empty.
    format: &'static str,
    description: &'static str,
    /// 0 for the default columns, 1 for the `-o wide` extras.
    priority: i32,
}

impl Column {
    /// A default (priority 0) column.
    const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Self {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    /// The column holding the object's name.
    const fn name() -> Self {
        Self {
            format: "name",
            ..Self::new("Name", "string", NAME_DOC)
        }
    }

    /// The usual `Age` column.
    const fn age() -> Self {
        Self::new("Age", "string", CREATION_DOC)
    }

    /// The same column, shown only with `-o wide`.
    const fn wide(self) -> Self {
        Self {
            priority: 1,
            ..self
        }
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

// Column descriptions: upstream takes them from the API types' documentation.
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

// Lenient accessors over stored objects: a missing or mistyped field reads as Go's
// zero value, as the typed conversion upstream would leave it.

/// The string at `pointer`, or "".
fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `pointer`, or 0.
fn int(value: &Value, pointer: &str) -> i64 {
    value.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The boolean at `pointer`, or false.
fn flag(value: &Value, pointer: &str) -> bool {
    value
        .pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The array at `pointer`, or an empty slice.
fn items<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The object at `pointer` (Go: a non-nil pointer to a struct).
fn object<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    value.pointer(pointer).filter(|v| v.is_object())
}

/// The number of entries of the map at `pointer`.
fn map_len(value: &Value, pointer: &str) -> usize {
    value
        .pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

/// The object's name cell.
fn name_cell(object: &Value) -> Value {
    Value::from(text(object, "/metadata/name"))
}

/// The object's AGE cell.
fn age_cell(object: &Value, now: i64) -> Value {
    Value::from(format::since(
        object.pointer("/metadata/creationTimestamp"),
        now,
    ))
}

/// upstream's `layoutContainerCells`: container names and images, comma-separated.
fn container_cells(pod_spec: &Value) -> (Value, Value) {
    let containers = items(pod_spec, "/containers");
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shape_follows_include_object() {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default", "resourceVersion": "7",
                         "creationTimestamp": "2024-05-01T10:00:00Z"},
            "data": {"a": "1"},
        });
        let now = 1_714_557_600 + 90; // 2024-05-01T10:01:30Z
        let objects = [cm.clone()];

        let t = table(
            "ConfigMap",
            &objects,
            json!({"resourceVersion": "9"}),
            IncludeObject::Metadata,
            now,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion": "9"}));
        assert_eq!(
            t["columnDefinitions"][0],
            json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DOC, "priority": 0})
        );
        assert_eq!(t["rows"][0]["cells"], json!(["settings", 1, "90s"]));
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": cm["metadata"]})
        );
        assert!(t["rows"][0].get("conditions").is_none());

        let t = table_for_version(
            "v1beta1",
            "ConfigMap",
            &objects,
            Value::Null,
            IncludeObject::Metadata,
            now,
        );
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(t["metadata"], json!({}));
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1beta1");

        let t = table("ConfigMap", &objects, json!({}), IncludeObject::Object, now);
        assert_eq!(t["rows"][0]["object"], cm);

        let t = table("ConfigMap", &objects, json!({}), IncludeObject::None, now);
        assert!(t["rows"][0].get("object").is_none());

        let t = table("ConfigMap", &[], json!({}), IncludeObject::None, now);
        assert_eq!(t["rows"], json!([]));
    }

    #[test]
    fn include_object_from_query() {
        let cases = [
            (None, Some(IncludeObject::Metadata)),
            (Some(""), Some(IncludeObject::Metadata)),
            (Some("Metadata"), Some(IncludeObject::Metadata)),
            (Some("None"), Some(IncludeObject::None)),
            (Some("Object"), Some(IncludeObject::Object)),
            (Some("object"), None),
        ];
        for (input, want) in cases {
            assert_eq!(IncludeObject::from_query(input), want, "{input:?}");
        }
    }

    #[test]
    fn wide_columns_have_priority_one() {
        let t = table("Pod", &[], json!({}), IncludeObject::None, 0);
        let got: Vec<(String, i64)> = t["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["priority"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let want: Vec<(String, i64)> = [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ]
        .iter()
        .map(|(n, p)| (n.to_string(), *p))
        .collect();
        assert_eq!(got, want);
    }
}
