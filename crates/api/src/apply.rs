//! Server-side apply: merge a manager's applied configuration into the live object,
//! track which manager owns which fields (`metadata.managedFields`, FieldsV1), report
//! conflicts with other managers, and remove fields the manager applied before but no
//! longer does.
//!
//! Field paths follow FieldsV1: `f:<name>` for a field, `k:<json of key fields>` for an
//! item of a keyed list, `.` for the item itself. Lists with merge keys are keyed (each
//! item owned separately); other lists and scalars are atomic leaves. What is tracked:
//! the managers that applied (operation `Apply`); managers of other writes are kept as
//! they are stored.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::patch::merge_keys::{ListStrategy, Schema};

/// One segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    Field(String),
    /// An item of a keyed list, by its key fields (serialized JSON object).
    Key(String),
}

/// A field path, from the object's root.
pub type FieldPath = Vec<Segment>;

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields other managers own with different values: (manager, path as `.a.b`).
    #[error("Apply failed with {} conflict{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, describe(.0))]
    Conflicts(Vec<(String, String)>),
    /// The applied configuration is not usable.
    #[error("{0}")]
    Invalid(String),
}

fn describe(conflicts: &[(String, String)]) -> String {
    conflicts
        .iter()
        .map(|(m, p)| format!("conflict with \"{m}\": {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The merge keys of a list at `path` (field names, from the object root, list
/// indexes skipped) of an object of `kind`; None: the list is atomic.
pub type ListKeys = fn(kind: &str, path: &[String]) -> Option<Vec<String>>;

/// Applies `applied` as `manager`. `live` is the stored object (None: create).
/// Returns the new object with its managedFields updated.
pub fn apply(
    kind: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
    list_keys: ListKeys,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid(
            "the applied configuration must be an object".into(),
        ));
    }
    let mut applied = applied.clone();
    if let Some(m) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        for owned in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            m.remove(owned);
        }
    }
    let new_fields = field_set(kind, &applied, list_keys);
    let Some(live) = live else {
        let mut object = applied;
        let own = entry(manager, &object, &new_fields, now);
        set_managed(&mut object, vec![own]);
        return Ok(object);
    };
    let mut managed = managed_fields(live);
    let mut conflicts = Vec::new();
    let mut contested: BTreeSet<FieldPath> = BTreeSet::new();
    for e in managed
        .iter()
        .filter(|e| e.manager != manager || e.operation != "Apply")
    {
        for path in new_fields.intersection(&e.fields) {
            if is_leaf(path, &new_fields) && value_at(live, path) != value_at(&applied, path) {
                conflicts.push((e.manager.clone(), render(path)));
                contested.insert(path.clone());
            }
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort();
        conflicts.dedup();
        return Err(ApplyError::Conflicts(conflicts));
    }
    // Forced: the others lose the contested fields; values they agree on stay shared.
    for e in managed.iter_mut().filter(|e| e.manager != manager) {
        e.fields = e.fields.difference(&contested).cloned().collect();
    }
    let previous = managed
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut object = live.clone();
    merge(kind, &mut object, &applied, &mut Vec::new(), list_keys);
    // Fields this manager applied before and dropped now go, unless someone else owns
    // them. Shallowest first: an item removed takes its fields with it.
    let others: BTreeSet<FieldPath> = managed
        .iter()
        .filter(|e| e.manager != manager)
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut dropped: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !new_fields.contains(*p) && !others.contains(*p))
        .collect();
    dropped.sort_by_key(|p| p.len());
    for path in dropped {
        remove_at(&mut object, path);
    }
    // Upstream moves an entry's time only when the manager's fields or their values
    // change; a repeated apply keeps it, so the object stays as it was (a no-op write
    // instead of a new resourceVersion whenever the clock passed a second).
    let time = match managed
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
    {
        Some(e) if e.fields == new_fields && same_but_managed(&object, live) => {
            e.raw["time"].as_str().unwrap_or(now).to_string()
        }
        _ => now.to_string(),
    };
    managed.retain(|e| !(e.manager == manager && e.operation == "Apply"));
    managed.retain(|e| !e.fields.is_empty());
    let mut entries: Vec<Value> = managed.iter().map(|e| e.to_json()).collect();
    entries.insert(0, entry(manager, &object, &new_fields, &time));
    set_managed(&mut object, entries);
    Ok(object)
}

/// Whether two objects are equal apart from their managed fields.
fn same_but_managed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

/// The list keys of the built-in types: the merge keys strategic merge patch uses
/// (`patch::merge_keys`), found by following the field path from the kind's root.
/// Lists without one are atomic.
pub fn list_keys(kind: &str, path: &[String]) -> Option<Vec<String>> {
    let (last, parents) = path.split_last()?;
    let schema = parents.iter().fold(Schema::for_kind(kind), |schema, name| {
        schema.field(name).child
    });
    match schema.field(last).list {
        ListStrategy::MergeByKey(key) => Some(vec![key.to_string()]),
        _ => None,
    }
}

/// One managedFields entry, parsed.
#[derive(Debug, Clone)]
struct Managed {
    manager: String,
    operation: String,
    raw: Value,
    fields: BTreeSet<FieldPath>,
}

impl Managed {
    fn to_json(&self) -> Value {
        let mut raw = self.raw.clone();
        raw["fieldsV1"] = fields_v1(&self.fields);
        raw
    }
}

fn managed_fields(object: &Value) -> Vec<Managed> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| Managed {
                    manager: e["manager"].as_str().unwrap_or("").to_string(),
                    operation: e["operation"].as_str().unwrap_or("").to_string(),
                    raw: e.clone(),
                    fields: parse_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry(manager: &str, object: &Value, fields: &BTreeSet<FieldPath>, now: &str) -> Value {
    json!({
        "manager": manager,
        "operation": "Apply",
        "apiVersion": object.get("apiVersion").cloned().unwrap_or(Value::Null),
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(fields),
    })
}

fn set_managed(object: &mut Value, entries: Vec<Value>) {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["metadata"]["managedFields"] = Value::Array(entries);
}

/// Every path the configuration sets: leaves, and keyed-list items themselves.
pub fn field_set(kind: &str, config: &Value, list_keys: ListKeys) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect(
        kind,
        config,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut out,
        list_keys,
    );
    out
}

fn collect(
    kind: &str,
    value: &Value,
    path: &mut FieldPath,
    names: &mut Vec<String>,
    out: &mut BTreeSet<FieldPath>,
    list_keys: ListKeys,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                if path.is_empty() && (key == "apiVersion" || key == "kind") {
                    continue;
                }
                path.push(Segment::Field(key.clone()));
                names.push(key.clone());
                collect(kind, child, path, names, out, list_keys);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) => match list_keys(kind, names) {
            Some(keys) => {
                for item in items {
                    let Some(key) = item_key(item, &keys) else {
                        continue;
                    };
                    path.push(Segment::Key(key));
                    out.insert(path.clone());
                    collect(kind, item, path, names, out, list_keys);
                    path.pop();
                }
            }
            None => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// An item's key: its key fields as a JSON object with sorted keys.
fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let mut key = Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            key.insert(k.clone(), v.clone());
        }
    }
    (!key.is_empty()).then(|| Value::Object(key).to_string())
}

/// Whether nothing in the set lies under `path` (so it is a leaf, not an item or map).
fn is_leaf(path: &FieldPath, set: &BTreeSet<FieldPath>) -> bool {
    !matches!(path.last(), Some(Segment::Key(_)))
        || !set
            .iter()
            .any(|p| p.len() > path.len() && p.starts_with(path))
}

fn value_at<'a>(object: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut current = object;
    for segment in path {
        current = match segment {
            Segment::Field(name) => current.get(name)?,
            Segment::Key(key) => find_item(current.as_array()?, key)?,
        };
    }
    Some(current)
}

fn find_item<'a>(items: &'a [Value], key: &str) -> Option<&'a Value> {
    let key: Map<String, Value> = serde_json::from_str(key).ok()?;
    items
        .iter()
        .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))
}

fn remove_at(object: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = object;
    for segment in parents {
        let next = match segment {
            Segment::Field(name) => current.get_mut(name),
            Segment::Key(key) => {
                let Ok(key) = serde_json::from_str::<Map<String, Value>>(key) else {
                    return;
                };
                current.as_array_mut().and_then(|items| {
                    items
                        .iter_mut()
                        .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))
                })
            }
        };
        match next {
            Some(n) => current = n,
            None => return,
        }
    }
    match last {
        Segment::Field(name) => {
            if let Some(map) = current.as_object_mut() {
                map.remove(name);
            }
        }
        Segment::Key(key) => {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(key) else {
                return;
            };
            if let Some(items) = current.as_array_mut() {
                items.retain(|item| !key.iter().all(|(k, v)| item.get(k) == Some(v)));
            }
        }
    }
}

/// Merges the applied configuration into the live object: maps field by field, keyed
/// lists item by item, everything else replaced.
fn merge(
    kind: &str,
    live: &mut Value,
    applied: &Value,
    names: &mut Vec<String>,
    list_keys: ListKeys,
) {
    match (live.as_object_mut(), applied) {
        (Some(live_map), Value::Object(applied_map)) => {
            for (key, value) in applied_map {
                names.push(key.clone());
                match live_map.get_mut(key) {
                    Some(existing) if value.is_object() || value.is_array() => {
                        merge(kind, existing, value, names, list_keys);
                    }
                    _ => {
                        live_map.insert(key.clone(), value.clone());
                    }
                }
                names.pop();
            }
            return;
        }
        (None, Value::Object(_)) => {
            *live = applied.clone();
            return;
        }
        _ => {}
    }
    if let (Some(live_items), Value::Array(applied_items)) = (live.as_array_mut(), applied)
        && let Some(keys) = list_keys(kind, names)
    {
        for item in applied_items {
            let existing = item_key(item, &keys).and_then(|k| {
                let key: Map<String, Value> = serde_json::from_str(&k).ok()?;
                live_items
                    .iter_mut()
                    .find(|i| key.iter().all(|(kk, v)| i.get(kk) == Some(v)))
            });
            match existing {
                Some(live_item) => merge(kind, live_item, item, names, list_keys),
                None => live_items.push(item.clone()),
            }
        }
        return;
    }
    *live = applied.clone();
}

/// A path as kubectl prints it: `.spec.containers[name="web"].image`.
fn render(path: &FieldPath) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Segment::Key(key) => {
                let parsed: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let inner: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", inner.join(",")));
            }
        }
    }
    out
}

/// FieldsV1 JSON of a set of paths.
fn fields_v1(set: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for segment in path {
            let name = match segment {
                Segment::Field(f) => format!("f:{f}"),
                Segment::Key(k) => format!("k:{k}"),
            };
            let child = node.entry(name).or_insert_with(|| json!({}));
            if !child.is_object() {
                *child = json!({});
            }
            match child {
                Value::Object(m) => node = m,
                _ => unreachable!("made an object just above"),
            }
        }
        if matches!(path.last(), Some(Segment::Key(_))) {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

/// The paths of a FieldsV1 tree: its leaves, and its keyed items (marked `.`).
fn parse_fields_v1(tree: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    walk_v1(tree, &mut Vec::new(), &mut out);
    out
}

fn walk_v1(node: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Some(map) = node.as_object() else { return };
    let children: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != ".").collect();
    if map.contains_key(".") || (children.is_empty() && !path.is_empty()) {
        out.insert(path.clone());
    }
    for (name, child) in children {
        let segment = if let Some(f) = name.strip_prefix("f:") {
            Segment::Field(f.to_string())
        } else if let Some(k) = name.strip_prefix("k:") {
            Segment::Key(k.to_string())
        } else {
            // v: (set members) and i: (indexes) are not produced by mast; skip.
            continue;
        };
        path.push(segment);
        walk_v1(child, path, out);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(_kind: &str, path: &[String]) -> Option<Vec<String>> {
        match path.last().map(String::as_str) {
            Some("containers") => Some(vec!["name".into()]),
            Some("ports") => Some(vec!["containerPort".into()]),
            _ => None,
        }
    }

    fn deployment(replicas: i64, image: &str, ports: &[i64]) -> Value {
        let ports: Vec<Value> = ports.iter().map(|p| json!({"containerPort": p})).collect();
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": image, "ports": ports}
            ]}}},
        })
    }

    /// Applies a Deployment as `manager` (not forced) at time `now`.
    fn apply_as(
        manager: &str,
        live: Option<&Value>,
        applied: &Value,
        now: &str,
    ) -> Result<Value, ApplyError> {
        apply("Deployment", live, applied, manager, false, now, keys)
    }

    #[test]
    fn create_then_reapply_removes_what_was_dropped() {
        let first =
            apply_as("alice", None, &deployment(2, "nginx:1", &[80, 443]), "t").expect("create");
        assert_eq!(first["metadata"]["managedFields"][0]["manager"], "alice");
        let fields = &first["metadata"]["managedFields"][0]["fieldsV1"];
        assert!(
            fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["."]
                .is_object()
        );

        let second = apply_as("alice", Some(&first), &deployment(3, "nginx:2", &[80]), "t")
            .expect("reapply");
        let container = &second["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(second["spec"]["replicas"], 3);
        assert_eq!(container["image"], "nginx:2");
        assert_eq!(container["ports"], json!([{"containerPort": 80}]));
    }

    #[test]
    fn the_entry_time_moves_only_when_the_manager_changes_something() {
        let applied = deployment(2, "nginx:1", &[80]);
        let first = apply_as("alice", None, &applied, "t1").expect("create");
        let same = apply_as("alice", Some(&first), &applied, "t2").expect("reapply");
        assert_eq!(
            same, first,
            "a repeated apply changes nothing, time included"
        );
        let changed = apply_as(
            "alice",
            Some(&first),
            &deployment(3, "nginx:1", &[80]),
            "t3",
        )
        .expect("apply a change");
        assert_eq!(changed["metadata"]["managedFields"][0]["time"], "t3");
        let dropped = apply_as(
            "alice",
            Some(&changed),
            &deployment(3, "nginx:1", &[]),
            "t4",
        )
        .expect("apply fewer fields");
        assert_eq!(dropped["metadata"]["managedFields"][0]["time"], "t4");
    }

    #[test]
    fn another_manager_conflicts_unless_forced() {
        let first = apply_as("alice", None, &deployment(2, "nginx:1", &[80]), "t").expect("create");
        let err = apply_as("bob", Some(&first), &deployment(5, "nginx:1", &[80]), "t")
            .expect_err("conflict");
        assert_eq!(
            err,
            ApplyError::Conflicts(vec![("alice".into(), ".spec.replicas".into())])
        );
        // The same value is shared ownership, not a conflict.
        let shared = apply_as("bob", Some(&first), &deployment(2, "nginx:1", &[80]), "t")
            .expect("same values");
        assert_eq!(
            shared["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(2)
        );

        let forced = apply(
            "Deployment",
            Some(&first),
            &deployment(5, "nginx:1", &[80]),
            "bob",
            true,
            "t",
            keys,
        )
        .expect("forced");
        assert_eq!(forced["spec"]["replicas"], 5);
        let alice = forced["metadata"]["managedFields"]
            .as_array()
            .and_then(|m| m.iter().find(|e| e["manager"] == "alice"))
            .expect("alice keeps the rest");
        assert!(alice["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    }

    #[test]
    fn list_keys_follow_the_strategic_merge_table() {
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        let key = |kind: &str, p: &str| list_keys(kind, &path(p));
        assert_eq!(
            key("Deployment", "spec.template.spec.containers"),
            Some(vec!["name".to_string()])
        );
        assert_eq!(
            key("Deployment", "spec.template.spec.containers.ports"),
            Some(vec!["containerPort".to_string()])
        );
        assert_eq!(key("Service", "spec.ports"), Some(vec!["port".to_string()]));
        assert_eq!(key("Pod", "spec.tolerations"), None);
        assert_eq!(key("ConfigMap", "data"), None);
    }

    #[test]
    fn fields_v1_round_trips() {
        let set = field_set("Deployment", &deployment(1, "x", &[80]), keys);
        assert_eq!(parse_fields_v1(&fields_v1(&set)), set);
    }
}
