//! Decoding a `Value` into its `k8s-openapi` type while reporting *where* it fails.
//!
//! serde reports a failure with a line and column, not a field path. So the value is
//! rendered as JSON with every scalar on its own line while recording, per line, the
//! path that line belongs to; decoding that text turns serde's line into a field path.
//! The offending node is then removed (or, in a list, replaced by a zero value) and
//! decoding retried, so one bad field does not hide the checks on all the others — the
//! way upstream's decoder would have left a zero value there.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::{BadValue, FieldError};
use super::path::Path;

/// Bound on repairs: an object with more broken fields than this is reported as is.
const MAX_REPAIRS: usize = 64;

/// Fields whose members are map keys rather than struct fields; upstream renders those
/// as `[key]` (`metadata.labels[app]`, `resources.limits[cpu]`).
const MAP_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "binaryData",
    "stringData",
    "limits",
    "requests",
    "nodeSelector",
    "matchLabels",
    "capacity",
    "allocatable",
    "overhead",
    "hard",
    "used",
    "deprecatedTopology",
];

/// One step of a path inside a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a JSON path the way upstream renders field paths.
fn field_path(segs: &[Seg]) -> Path {
    let mut path = Path::new("");
    let mut in_map = false;
    for seg in segs {
        match seg {
            Seg::Index(i) => {
                path = path.index(*i);
                in_map = false;
            }
            Seg::Key(k) if in_map => {
                path = path.key(k);
                in_map = false;
            }
            Seg::Key(k) => {
                path = path.child(k);
                in_map = MAP_FIELDS.contains(&k.as_str());
            }
        }
    }
    path
}

/// JSON text with one scalar per line, and for each line the path it belongs to.
#[derive(Default)]
struct Rendered {
    text: String,
    lines: Vec<Vec<Seg>>,
}

impl Rendered {
    fn line(&mut self, text: &str, segs: &[Seg]) {
        self.text.push_str(text);
        self.text.push('\n');
        self.lines.push(segs.to_vec());
    }

    fn emit(&mut self, prefix: &str, value: &Value, segs: &mut Vec<Seg>, comma: bool) {
        let tail = if comma { "," } else { "" };
        match value {
            Value::Object(map) => {
                self.line(&format!("{prefix}{{"), segs);
                let n = map.len();
                for (i, (k, v)) in map.iter().enumerate() {
                    let key = serde_json::to_string(k).unwrap_or_else(|_| "\"\"".into());
                    segs.push(Seg::Key(k.clone()));
                    self.emit(&format!("{key}: "), v, segs, i + 1 < n);
                    segs.pop();
                }
                self.line(&format!("}}{tail}"), segs);
            }
            Value::Array(items) => {
                self.line(&format!("{prefix}["), segs);
                let n = items.len();
                for (i, v) in items.iter().enumerate() {
                    segs.push(Seg::Index(i));
                    self.emit("", v, segs, i + 1 < n);
                    segs.pop();
                }
                self.line(&format!("]{tail}"), segs);
            }
            scalar => {
                let text = serde_json::to_string(scalar).unwrap_or_else(|_| "null".into());
                self.line(&format!("{prefix}{text}{tail}"), segs);
            }
        }
    }
}

/// Removes object members that are `null`: upstream's decoder treats them as absent.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn node<'a>(root: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    segs.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

fn node_mut<'a>(root: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    segs.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.get_mut(*i),
    })
}

/// A zero value of the type serde said it expected.
fn zero_for(message: &str) -> Value {
    let expected = message.rsplit("expected ").next().unwrap_or("");
    if expected.contains("string") {
        Value::String(String::new())
    } else if expected.contains("boolean") {
        Value::Bool(false)
    } else if expected.contains("sequence") {
        Value::Array(Vec::new())
    } else if expected.starts_with('i')
        || expected.starts_with('u')
        || expected.starts_with('f')
        || expected.contains("integer")
        || expected.contains("IntOrString")
    {
        Value::from(0)
    } else {
        Value::Object(serde_json::Map::new())
    }
}

/// Makes the node at `segs` decodable: an object member is removed (absent decodes as
/// the zero value), a list element is replaced by a zero value. False when nothing could
/// be changed.
fn repair(root: &mut Value, segs: &[Seg], message: &str) -> bool {
    let Some((last, parent)) = segs.split_last() else {
        return false;
    };
    let Some(parent) = node_mut(root, parent) else {
        return false;
    };
    match (last, parent) {
        (Seg::Key(k), Value::Object(map)) => map.remove(k).is_some(),
        (Seg::Index(i), Value::Array(items)) if *i < items.len() => {
            let zero = zero_for(message);
            if items[*i] == zero {
                items.remove(*i);
            } else {
                items[*i] = zero;
            }
            true
        }
        _ => false,
    }
}

/// serde's message without the ` at line L column C` tail.
fn clean(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

fn bad_value(value: Option<&Value>) -> BadValue {
    match value {
        Some(Value::String(s)) => BadValue::from(s),
        Some(Value::Number(n)) => BadValue(n.to_string()),
        Some(Value::Bool(b)) => BadValue::from(*b),
        Some(other) => BadValue::json(other),
        None => BadValue::null(),
    }
}

/// Decodes `value` (its `apiVersion` and `kind` ignored; the caller chose the type) into
/// `T`. Returns the decoded object — with offending fields dropped — unless even that
/// failed, and one Invalid error per offending field.
pub fn decode<T: DeserializeOwned>(value: &Value) -> (Option<T>, Vec<FieldError>) {
    let mut work = value.clone();
    strip_nulls(&mut work);
    if let Value::Object(map) = &mut work {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let mut errors = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let mut rendered = Rendered::default();
        rendered.emit("", &work, &mut Vec::new(), false);
        let err = match serde_json::from_str::<T>(&rendered.text) {
            Ok(typed) => return (Some(typed), errors),
            Err(err) => err,
        };
        let segs = err
            .line()
            .checked_sub(1)
            .and_then(|i| rendered.lines.get(i))
            .cloned()
            .unwrap_or_default();
        let message = clean(&err.to_string());
        errors.push(FieldError::invalid(
            &field_path(&segs),
            bad_value(node(&work, &segs)),
            &message,
        ));
        if !repair(&mut work, &segs, &message) {
            return (None, errors);
        }
    }
    (None, errors)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_valid_objects_without_errors() {
        let (pod, errs) = decode::<Pod>(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": null},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }));
        assert!(errs.is_empty(), "{errs:?}");
        let pod = pod.expect("decoded");
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
    }

    #[test]
    fn locates_and_repairs_wrongly_typed_fields() {
        let (pod, errs) = decode::<Pod>(&json!({
            "metadata": {"name": "p", "labels": {"app": 5}},
            "spec": {"containers": [
                {"name": "c", "image": "nginx", "ports": [{"containerPort": "80"}]},
                {"name": true, "image": "x"}
            ]}
        }));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "metadata.labels[app]",
                "spec.containers[0].ports[0].containerPort",
                "spec.containers[1].name",
            ]
        );
        assert_eq!(
            errs[1].message(),
            "spec.containers[0].ports[0].containerPort: Invalid value: \"80\": invalid type: string \"80\", expected i32"
        );
        let pod = pod.expect("repaired object still decodes");
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.containers[1].name, "");
        assert_eq!(spec.containers[0].ports.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn list_elements_are_replaced_not_dropped() {
        let (cm, errs) = decode::<ConfigMap>(&json!({
            "metadata": {"name": "c", "finalizers": ["a", 3, "b"]}
        }));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.finalizers[1]");
        let finalizers = cm.expect("decoded").metadata.finalizers.expect("kept");
        assert_eq!(finalizers, vec!["a", "", "b"]);
    }

    #[test]
    fn reports_the_root_when_nothing_can_be_repaired() {
        let (pod, errs) = decode::<Pod>(&json!("not an object"));
        assert!(pod.is_none());
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "");
    }
}
