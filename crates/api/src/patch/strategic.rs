//! Strategic merge patch (`application/strategic-merge-patch+json`), applied as the
//! Kubernetes API server applies it (k8s.io/apimachinery `strategicpatch`).
//!
//! A strategic merge patch is a JSON merge patch (maps merge recursively, `null`
//! deletes a key, other values replace) that knows the object's type: a list whose
//! field has the `merge` strategy ([`merge_keys`](super::merge_keys)) is merged
//! instead of replaced, objects by their merge key (a patch item updates the item with
//! the same key, or is added) and primitives as a set. Directives steer the merge and
//! never reach the result:
//! - `"$patch": "replace"` in a map: the map becomes the patch's other keys; as an item
//!   of a merging list: the list becomes the patch's other items.
//! - `"$patch": "delete"` in a map: the map becomes `{}` (as upstream; a map the
//!   original lacks stays absent); as an item of a merging list, next to the merge key:
//!   the items with that key go.
//! - `"$patch": "merge"`: the default (upstream rejects it; here it is a no-op).
//!
//! Where a patch value meets nothing to merge with (a new field, a replaced list, an
//! added list item), it is taken as it is, its directives carried out against nothing
//! and its nulls dropped.
//! - `"$retainKeys": [...]`: after merging, the map keeps only these keys.
//! - `"$setElementOrder/<field>": [...]`: the order of the merged list `<field>`.
//! - `"$deleteFromPrimitiveList/<field>": [...]`: values to take out of a list of
//!   primitives.
//!
//! Order of a merged list, as upstream: the items the patch names follow the patch's
//! order, the others (server-only) keep the original order, and the two runs are
//! interleaved by the original list: a server-only item goes first only if it came
//! before the next patch item there, so an added item lands where its turn comes in the
//! patch. `$setElementOrder/<field>` then reorders the result by the same rule, with its
//! list in place of the patch's.

use std::fmt;

use serde_json::{Map, Value};

use super::PatchError;
use super::merge_keys::{FieldPatch, ListStrategy, Schema};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

type Object = Map<String, Value>;

/// Identities of list items (merge-key values, or the primitives themselves); `None`
/// for an item without its merge key.
type Ids = Vec<Option<Value>>;

/// Applies the strategic merge patch `patch` to `target`, an object of type `schema`.
pub fn apply(target: &Value, patch: &Value, schema: Schema) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Malformed(
            "a strategic merge patch must be a JSON object".into(),
        ));
    };
    let original = match target {
        Value::Object(map) => map.clone(),
        _ => Object::new(),
    };
    merge_map(original, patch, schema, Path::Root).map(Value::Object)
}

/// Where in the patch we are, rendered only for error messages.
#[derive(Debug, Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Item(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

fn malformed(path: Path<'_>, message: impl fmt::Display) -> PatchError {
    match path {
        Path::Root => PatchError::Malformed(message.to_string()),
        _ => PatchError::Malformed(format!("{path}: {message}")),
    }
}

fn missing_key(path: Path<'_>, key: &str) -> PatchError {
    malformed(path, format_args!("the item lacks its merge key {key:?}"))
}

/// A `$patch` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Replace,
    Delete,
    Merge,
}

/// The `$patch` directive of a patch map, if it has one.
fn directive(map: &Object, path: Path<'_>) -> Result<Option<Directive>, PatchError> {
    match map.get(PATCH) {
        None => Ok(None),
        Some(Value::String(name)) => match name.as_str() {
            "replace" => Ok(Some(Directive::Replace)),
            "delete" => Ok(Some(Directive::Delete)),
            "merge" => Ok(Some(Directive::Merge)),
            _ => Err(malformed(
                path,
                format_args!("unknown $patch directive {name:?} (want replace, delete or merge)"),
            )),
        },
        Some(other) => Err(malformed(
            path,
            format_args!("$patch must be a string, not {other}"),
        )),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Merges the patch map `patch` into `original`.
fn merge_map(
    mut original: Object,
    patch: &Object,
    schema: Schema,
    path: Path<'_>,
) -> Result<Object, PatchError> {
    match directive(patch, path)? {
        Some(Directive::Delete) => return Ok(Object::new()),
        Some(Directive::Replace) => {
            let mut rest = patch.clone();
            rest.remove(PATCH);
            return merge_map(Object::new(), &rest, schema, path);
        }
        Some(Directive::Merge) | None => {}
    }
    if let Some(keys) = patch.get(RETAIN_KEYS) {
        retain_keys(&mut original, patch, keys, path)?;
    }
    let ordered = set_element_orders(&mut original, patch, schema, path)?;
    for (key, value) in patch {
        let here = Path::Field(&path, key);
        if let Some(name) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            delete_from_primitive_list(&mut original, name, value, here)?;
            continue;
        }
        if is_directive_key(key) || ordered.contains(&key.as_str()) {
            continue;
        }
        if key.starts_with('$') {
            return Err(malformed(here, "unknown directive"));
        }
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let field = schema.field(key);
        let merged = match original.get_mut(key) {
            Some(current) => merge_value(std::mem::take(current), value, field, here)?,
            None => materialize(value, field.child, here)?,
        };
        match merged {
            Some(merged) => {
                original.insert(key.clone(), merged);
            }
            None => {
                original.remove(key);
            }
        }
    }
    Ok(original)
}

/// Merges a patch value into the current value of the same field; `None` when the
/// field goes.
fn merge_value(
    current: Value,
    patch: &Value,
    field: FieldPatch,
    path: Path<'_>,
) -> Result<Option<Value>, PatchError> {
    match (current, patch) {
        (Value::Object(current), Value::Object(patch)) => {
            merge_map(current, patch, field.child, path).map(|m| Some(Value::Object(m)))
        }
        (Value::Array(current), Value::Array(patch)) if field.list != ListStrategy::Replace => {
            merge_list(current, patch, field, path).map(|m| Some(Value::Array(m.items)))
        }
        (_, patch) => materialize(patch, field.child, path),
    }
}

/// The value a patch value takes where it meets nothing to merge with (a new field, a
/// value of another type, a replaced list): its directives carried out against nothing
/// and its nulls dropped. `None` when it deletes itself.
fn materialize(patch: &Value, schema: Schema, path: Path<'_>) -> Result<Option<Value>, PatchError> {
    match patch {
        Value::Object(map) => {
            if directive(map, path)? == Some(Directive::Delete) {
                return Ok(None);
            }
            merge_map(Object::new(), map, schema, path).map(|m| Some(Value::Object(m)))
        }
        Value::Array(items) => materialize_list(items, schema, path).map(|l| Some(Value::Array(l))),
        other => Ok(Some(other.clone())),
    }
}

/// A patch list taken as it is, as upstream takes a new or replaced list: its items keep
/// their order (duplicates too) and directive items are dropped.
fn materialize_list(
    items: &[Value],
    schema: Schema,
    path: Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let here = Path::Item(&path, index);
        match item {
            Value::Object(map) => match directive(map, here)? {
                None => out.push(Value::Object(merge_map(Object::new(), map, schema, here)?)),
                Some(Directive::Merge) if map.len() > 1 => {
                    out.push(Value::Object(merge_map(Object::new(), map, schema, here)?));
                }
                // Nothing to delete from, replace, or merge into.
                Some(_) => {}
            },
            Value::Array(inner) => {
                out.push(Value::Array(materialize_list(
                    inner,
                    Schema::UNKNOWN,
                    here,
                )?));
            }
            other => out.push(other.clone()),
        }
    }
    Ok(out)
}

/// A merged list.
struct MergedList {
    items: Vec<Value>,
    /// The order `$setElementOrder` places server-only items by. Upstream reads it from
    /// the original list's storage after merging into it in place: the items left after
    /// deletions, then the added ones, cut to the original length.
    server_order: Ids,
}

/// What the items of a list are.
#[derive(Debug, PartialEq, Eq)]
enum Items {
    Objects,
    Primitives,
}

fn item_kind(original: &[Value], patch: &[Value], path: Path<'_>) -> Result<Items, PatchError> {
    let mut seen = None;
    for item in original.iter().chain(patch) {
        let tag = match item {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Object(_) => "object",
            Value::Array(_) => return Err(malformed(path, "lists of lists cannot be merged")),
        };
        match seen {
            None => seen = Some(tag),
            Some(first) if first != tag => {
                return Err(malformed(
                    path,
                    format_args!("list items must all be of one type, not {first} and {tag}"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(if seen == Some("object") {
        Items::Objects
    } else {
        Items::Primitives
    })
}

fn is_primitive(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// What identifies a list item: the value of its merge key, or the item itself.
fn identity<'v>(item: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(key) => item.as_object().and_then(|map| map.get(key)),
        None => Some(item),
    }
}

fn ids(items: &[Value], key: Option<&str>) -> Ids {
    items
        .iter()
        .map(|item| identity(item, key).cloned())
        .collect()
}

fn position(order: &Ids, id: Option<&Value>) -> Option<usize> {
    let id = id?;
    order.iter().position(|o| o.as_ref() == Some(id))
}

/// Merges a patch list into the current list of a field with the merge strategy.
fn merge_list(
    current: Vec<Value>,
    patch: &[Value],
    field: FieldPatch,
    path: Path<'_>,
) -> Result<MergedList, PatchError> {
    match item_kind(&current, patch, path)? {
        Items::Primitives => Ok(merge_primitives(current, patch)),
        Items::Objects => match field.list {
            ListStrategy::MergeByKey(key) => merge_objects(current, patch, key, field.child, path),
            _ => Err(malformed(
                path,
                "a list of objects cannot be merged without a merge key",
            )),
        },
    }
}

/// The union of two lists of primitives.
fn merge_primitives(current: Vec<Value>, patch: &[Value]) -> MergedList {
    let mut merged: Vec<Value> = Vec::with_capacity(current.len() + patch.len());
    for item in current.iter().chain(patch) {
        if !merged.contains(item) {
            merged.push(item.clone());
        }
    }
    let (named, server_only): (Vec<_>, Vec<_>) =
        merged.into_iter().partition(|item| patch.contains(item));
    let order = ids(patch, None);
    let server = ids(&current, None);
    let items = interleave(named, server_only, &order, &server, None);
    MergedList {
        items,
        server_order: server,
    }
}

/// Merges a patch list into a list of objects merged by `key`.
fn merge_objects(
    current: Vec<Value>,
    patch: &[Value],
    key: &str,
    schema: Schema,
    path: Path<'_>,
) -> Result<MergedList, PatchError> {
    let original_len = current.len();
    let mut current = current;
    let mut replace = false;
    let mut entries: Vec<(usize, &Object)> = Vec::with_capacity(patch.len());
    for (index, item) in patch.iter().enumerate() {
        let here = Path::Item(&path, index);
        let Value::Object(map) = item else {
            return Err(malformed(here, "expected an object"));
        };
        match directive(map, here)? {
            None => entries.push((index, map)),
            Some(Directive::Merge) => {
                if map.len() > 1 {
                    entries.push((index, map));
                }
            }
            Some(Directive::Replace) => replace = true,
            Some(Directive::Delete) => {
                let id = map.get(key).ok_or_else(|| missing_key(here, key))?;
                current.retain(|item| identity(item, Some(key)) != Some(id));
            }
        }
    }
    if replace {
        current = entries
            .drain(..)
            .map(|(index, map)| {
                merge_map(Object::new(), map, schema, Path::Item(&path, index)).map(Value::Object)
            })
            .collect::<Result<_, _>>()?;
    }
    let kept = current.len();
    let mut order: Ids = Vec::with_capacity(entries.len());
    for (index, map) in entries {
        let here = Path::Item(&path, index);
        let id = map.get(key).ok_or_else(|| missing_key(here, key))?;
        match current
            .iter()
            .position(|item| identity(item, Some(key)) == Some(id))
        {
            Some(at) => {
                let item = match std::mem::take(&mut current[at]) {
                    Value::Object(item) => item,
                    _ => Object::new(),
                };
                current[at] = Value::Object(merge_map(item, map, schema, here)?);
            }
            None => current.push(Value::Object(merge_map(Object::new(), map, schema, here)?)),
        }
        order.push(Some(id.clone()));
    }
    if current
        .iter()
        .any(|item| identity(item, Some(key)).is_none())
    {
        return Err(malformed(
            path,
            format_args!("an item of the list lacks its merge key {key:?}"),
        ));
    }
    let server = ids(&current[..kept], Some(key));
    let server_order = ids(&current[..current.len().min(original_len)], Some(key));
    let (named, server_only): (Vec<_>, Vec<_>) = current
        .into_iter()
        .partition(|item| position(&order, identity(item, Some(key))).is_some());
    let items = interleave(named, server_only, &order, &server, Some(key));
    Ok(MergedList {
        items,
        server_order,
    })
}

/// Upstream's ordering of a merged list: `named` items sorted by `order`,
/// `server_only` ones by `server`, then interleaved, a server-only item going first
/// only when `server` has it before the next named item.
fn interleave(
    mut named: Vec<Value>,
    mut server_only: Vec<Value>,
    order: &Ids,
    server: &Ids,
    key: Option<&str>,
) -> Vec<Value> {
    let rank = |ids: &Ids, item: &Value| position(ids, identity(item, key));
    named.sort_by_key(|item| rank(order, item).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| rank(server, item).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let mut named = named.into_iter().peekable();
    let mut server_only = server_only.into_iter().peekable();
    loop {
        let server_first = match (server_only.peek(), named.peek()) {
            (Some(s), Some(n)) => matches!(
                (rank(server, s), rank(server, n)),
                (Some(s), Some(n)) if s < n
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if server_first {
            server_only.next()
        } else {
            named.next()
        });
    }
    out
}

/// Carries out the `$setElementOrder/<field>` directives of `patch`, merging each
/// ordered field's list on the way; returns the fields done.
fn set_element_orders<'p>(
    original: &mut Object,
    patch: &'p Object,
    schema: Schema,
    path: Path<'_>,
) -> Result<Vec<&'p str>, PatchError> {
    let mut done = Vec::new();
    for (directive_key, order) in patch {
        let Some(name) = directive_key.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let here = Path::Field(&path, directive_key);
        if name.is_empty() {
            return Err(malformed(here, "names no field"));
        }
        let Value::Array(order) = order else {
            return Err(malformed(here, "must be a list"));
        };
        let field = schema.field(name);
        let key = match field.list {
            // Clients order merging lists only; a replaced list is the patch's.
            ListStrategy::Replace => continue,
            ListStrategy::MergeByKey(key) => Some(key),
            ListStrategy::MergePrimitives => None,
        };
        let field_path = Path::Field(&path, name);
        let patch_list = match patch.get(name) {
            None => None,
            Some(Value::Array(list)) => Some(list.as_slice()),
            Some(_) => {
                return Err(malformed(
                    field_path,
                    format_args!("must be a list, as {directive_key} orders it"),
                ));
            }
        };
        let order = order_ids(order, key, here)?;
        if let Some(list) = patch_list {
            check_order(list, &order, key, directive_key, field_path)?;
        }
        let current = match original.get_mut(name) {
            None => None,
            Some(Value::Array(list)) => Some(std::mem::take(list)),
            Some(_) => {
                return Err(malformed(
                    field_path,
                    format_args!("is not a list in the object, so {directive_key} cannot order it"),
                ));
            }
        };
        let (merged, server) = match (current, patch_list) {
            (None, None) => continue,
            (Some(current), None) => {
                let server = ids(&current, key);
                (current, server)
            }
            (None, Some(list)) => (materialize_list(list, field.child, field_path)?, Vec::new()),
            (Some(current), Some(list)) => {
                let merged = merge_list(current, list, field, field_path)?;
                (merged.items, merged.server_order)
            }
        };
        if let Some(key) = key
            && merged
                .iter()
                .any(|item| identity(item, Some(key)).is_none())
        {
            return Err(malformed(
                field_path,
                format_args!("an item of the list lacks its merge key {key:?}"),
            ));
        }
        let (named, server_only): (Vec<_>, Vec<_>) = merged
            .into_iter()
            .partition(|item| position(&order, identity(item, key)).is_some());
        let items = interleave(named, server_only, &order, &server, key);
        original.insert(name.to_owned(), Value::Array(items));
        done.push(name);
    }
    Ok(done)
}

/// The identities a `$setElementOrder` list names.
fn order_ids(order: &[Value], key: Option<&str>, path: Path<'_>) -> Result<Ids, PatchError> {
    order
        .iter()
        .enumerate()
        .map(|(index, item)| match key {
            Some(key) => identity(item, Some(key))
                .map(|id| Some(id.clone()))
                .ok_or_else(|| missing_key(Path::Item(&path, index), key)),
            None if is_primitive(item) => Ok(Some(item.clone())),
            None => Err(malformed(
                Path::Item(&path, index),
                "expected a primitive value",
            )),
        })
        .collect()
}

/// Checks that the patch list names its items in the order of `$setElementOrder`,
/// and none it leaves out (upstream's validation).
fn check_order(
    list: &[Value],
    order: &Ids,
    key: Option<&str>,
    directive_key: &str,
    path: Path<'_>,
) -> Result<(), PatchError> {
    if order.is_empty() {
        return Ok(());
    }
    let mut next = 0;
    for (index, item) in list.iter().enumerate() {
        if let Value::Object(map) = item
            && map.contains_key(PATCH)
        {
            continue;
        }
        let id = match key {
            Some(key) => identity(item, Some(key))
                .ok_or_else(|| missing_key(Path::Item(&path, index), key))?,
            None => item,
        };
        match order[next..].iter().position(|o| o.as_ref() == Some(id)) {
            Some(offset) => next += offset + 1,
            None => {
                return Err(malformed(
                    Path::Item(&path, index),
                    format_args!("the item is missing from {directive_key} or out of its order"),
                ));
            }
        }
    }
    Ok(())
}

/// Carries out `$deleteFromPrimitiveList/<name>: value`.
fn delete_from_primitive_list(
    original: &mut Object,
    name: &str,
    value: &Value,
    path: Path<'_>,
) -> Result<(), PatchError> {
    if name.is_empty() {
        return Err(malformed(path, "names no field"));
    }
    let doomed = match value {
        // As upstream: a null list deletes the field.
        Value::Null => {
            original.remove(name);
            return Ok(());
        }
        Value::Array(items) if items.iter().all(is_primitive) => items,
        _ => return Err(malformed(path, "must be a list of primitive values")),
    };
    if let Some(Value::Array(list)) = original.get_mut(name) {
        if !list.iter().all(is_primitive) {
            return Err(malformed(
                path,
                format_args!("{name} is not a list of primitive values"),
            ));
        }
        list.retain(|item| !doomed.contains(item));
    }
    Ok(())
}

/// Carries out `$retainKeys`: the patch may only set listed keys, and the original
/// keeps only those.
fn retain_keys(
    original: &mut Object,
    patch: &Object,
    keys: &Value,
    path: Path<'_>,
) -> Result<(), PatchError> {
    let here = Path::Field(&path, RETAIN_KEYS);
    let Some(keys) = keys
        .as_array()
        .and_then(|list| list.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
    else {
        return Err(malformed(here, "must be a list of field names"));
    };
    if let Some((key, _)) = patch
        .iter()
        .find(|(k, v)| !is_directive_key(k) && !v.is_null() && !keys.contains(&k.as_str()))
    {
        return Err(malformed(
            here,
            format_args!("does not list {key:?}, which the patch sets"),
        ));
    }
    original.retain(|key, _| keys.contains(&key.as_str()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A Deployment as stored, trimmed to what the patches below touch.
    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web", "tier": "frontend"},
                "annotations": {"owner": "team-a"},
                "finalizers": ["example.com/a", "example.com/b"]
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1",
                                "ports": [
                                    {"containerPort": 80, "protocol": "TCP"},
                                    {"containerPort": 8080, "protocol": "TCP"}
                                ],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                            },
                            {"name": "sidecar", "image": "busybox:1", "args": ["sleep", "infinity"]}
                        ],
                        "volumes": [
                            {"name": "data", "emptyDir": {}},
                            {"name": "cache", "emptyDir": {}}
                        ],
                        "tolerations": [{"key": "a", "operator": "Exists"}],
                        "restartPolicy": "Always"
                    }
                }
            }
        })
    }

    /// A JSON pointer and the value to set there, or `None` to remove it.
    type Edit = (&'static str, Option<Value>);

    /// `base` with the value at each JSON pointer set (`Some`; one past a list's end
    /// appends) or removed (`None`).
    fn edited(mut base: Value, edits: &[Edit]) -> Value {
        for (pointer, value) in edits {
            let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
            let target = base.pointer_mut(parent).expect("the parent exists");
            match (target, value) {
                (Value::Object(map), Some(v)) => {
                    map.insert(last.to_owned(), v.clone());
                }
                (Value::Object(map), None) => {
                    map.remove(last);
                }
                (Value::Array(list), Some(v)) => {
                    let index = last.parse::<usize>().expect("an index");
                    if index == list.len() {
                        list.push(v.clone());
                    } else {
                        list[index] = v.clone();
                    }
                }
                (Value::Array(list), None) => {
                    list.remove(last.parse::<usize>().expect("an index"));
                }
                _ => panic!("{pointer} is not in a map or list"),
            }
        }
        base
    }

    fn smp(kind: &str, target: &Value, patch: &Value) -> Value {
        apply(target, patch, Schema::for_kind(kind))
            .unwrap_or_else(|e| panic!("patch {patch} failed: {e}"))
    }

    const CONTAINERS: &str = "/spec/template/spec/containers";

    /// Patches as kubectl sends them, applied to [`deployment`]; each expects the whole
    /// resulting object, written as the edits it makes to the original.
    #[test]
    fn kubectl_patches_on_a_deployment() {
        let cases: Vec<(&str, Value, Vec<Edit>)> = vec![
            (
                "apply: a new image (three-way patch)",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"image": "nginx:2", "name": "web"}]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/0/image",
                    Some(json!("nginx:2")),
                )],
            ),
            (
                "set image",
                json!({"spec": {"template": {"spec": {
                    "containers": [{"name": "web", "image": "nginx:2"}]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/0/image",
                    Some(json!("nginx:2")),
                )],
            ),
            (
                "apply: a port removed by a delete directive",
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "web", "ports": [{"$patch": "delete", "containerPort": 8080}]}
                ]}}}}),
                vec![(
                    "/spec/template/spec/containers/0/ports",
                    Some(json!([{"containerPort": 80, "protocol": "TCP"}])),
                )],
            ),
            (
                "apply: a port removed, with the orders kubectl sends",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{
                        "$setElementOrder/ports": [{"containerPort": 80}],
                        "name": "web",
                        "ports": [{"$patch": "delete", "containerPort": 8080}]
                    }]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/0/ports",
                    Some(json!([{"containerPort": 80, "protocol": "TCP"}])),
                )],
            ),
            (
                "apply: an env var added between two",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{
                        "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}],
                        "env": [{"name": "C", "value": "3"}],
                        "name": "web"
                    }]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/0/env",
                    Some(json!([
                        {"name": "A", "value": "1"},
                        {"name": "C", "value": "3"},
                        {"name": "B", "value": "2"}
                    ])),
                )],
            ),
            (
                "apply: an env var removed",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{
                        "$setElementOrder/env": [{"name": "A"}],
                        "env": [{"$patch": "delete", "name": "B"}],
                        "name": "web"
                    }]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/0/env",
                    Some(json!([{"name": "A", "value": "1"}])),
                )],
            ),
            (
                "set env: a value changed by name",
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "web", "env": [{"name": "B", "value": "20"}]}
                ]}}}}),
                vec![(
                    "/spec/template/spec/containers/0/env/1",
                    Some(json!({"name": "B", "value": "20"})),
                )],
            ),
            (
                "apply: a container added at the end",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers":
                        [{"name": "web"}, {"name": "sidecar"}, {"name": "log"}],
                    "containers": [{"image": "fluentd:1", "name": "log"}]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/2",
                    Some(json!({"image": "fluentd:1", "name": "log"})),
                )],
            ),
            (
                "patch: an added container without an order goes first, as upstream",
                json!({"spec": {"template": {"spec": {
                    "containers": [{"name": "log", "image": "fluentd:1"}]
                }}}}),
                vec![(
                    CONTAINERS,
                    Some(json!([
                        {"name": "log", "image": "fluentd:1"},
                        deployment().pointer("/spec/template/spec/containers/0"),
                        deployment().pointer("/spec/template/spec/containers/1")
                    ])),
                )],
            ),
            (
                "apply: containers reordered",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]
                }}}}),
                vec![(
                    CONTAINERS,
                    Some(json!([
                        deployment().pointer("/spec/template/spec/containers/1"),
                        deployment().pointer("/spec/template/spec/containers/0")
                    ])),
                )],
            ),
            (
                "patch: a container deleted",
                json!({"spec": {"template": {"spec": {
                    "containers": [{"$patch": "delete", "name": "sidecar"}]
                }}}}),
                vec![("/spec/template/spec/containers/1", None)],
            ),
            (
                "patch: the container list replaced",
                json!({"spec": {"template": {"spec": {
                    "containers": [{"$patch": "replace"}, {"name": "only", "image": "x:1"}]
                }}}}),
                vec![(CONTAINERS, Some(json!([{"name": "only", "image": "x:1"}])))],
            ),
            (
                "apply: a volume removed",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/volumes": [{"name": "data"}],
                    "volumes": [{"$patch": "delete", "name": "cache"}]
                }}}}),
                vec![("/spec/template/spec/volumes/1", None)],
            ),
            (
                "apply: a volume's source switched with $retainKeys",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/volumes": [{"name": "data"}, {"name": "cache"}],
                    "volumes": [{
                        "$retainKeys": ["configMap", "name"],
                        "configMap": {"name": "cfg"},
                        "name": "cache"
                    }]
                }}}}),
                vec![(
                    "/spec/template/spec/volumes/1",
                    Some(json!({"name": "cache", "configMap": {"name": "cfg"}})),
                )],
            ),
            (
                "apply: strategy RollingUpdate to Recreate with $retainKeys",
                json!({"spec": {"strategy": {
                    "$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null
                }}}),
                vec![("/spec/strategy", Some(json!({"type": "Recreate"})))],
            ),
            (
                "tolerations have no strategy: replaced",
                json!({"spec": {"template": {"spec": {
                    "tolerations": [{"key": "b", "operator": "Exists"}]
                }}}}),
                vec![(
                    "/spec/template/spec/tolerations",
                    Some(json!([{"key": "b", "operator": "Exists"}])),
                )],
            ),
            (
                "args have no strategy: replaced inside the merged container",
                json!({"spec": {"template": {"spec": {
                    "containers": [{"name": "sidecar", "args": ["sleep", "10"]}]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/1/args",
                    Some(json!(["sleep", "10"])),
                )],
            ),
            (
                "edit: replicas and a container's limits",
                json!({"spec": {"replicas": 3, "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"name": "web", "resources": {"limits": {"cpu": "500m"}}}]
                }}}}),
                vec![
                    ("/spec/replicas", Some(json!(3))),
                    (
                        "/spec/template/spec/containers/0/resources",
                        Some(json!({"limits": {"cpu": "500m"}})),
                    ),
                ],
            ),
            (
                "scale",
                json!({"spec": {"replicas": 5}}),
                vec![("/spec/replicas", Some(json!(5)))],
            ),
            (
                "label",
                json!({"metadata": {"labels": {"env": "prod"}}}),
                vec![(
                    "/metadata/labels",
                    Some(json!({"app": "web", "tier": "frontend", "env": "prod"})),
                )],
            ),
            (
                "label tier-",
                json!({"metadata": {"labels": {"tier": null}}}),
                vec![("/metadata/labels", Some(json!({"app": "web"})))],
            ),
            (
                "annotate --overwrite and owner-",
                json!({"metadata": {"annotations": {"note": "hi", "owner": null}}}),
                vec![("/metadata/annotations", Some(json!({"note": "hi"})))],
            ),
            (
                "labels replaced by $patch: replace",
                json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}}),
                vec![("/metadata/labels", Some(json!({"new": "1"})))],
            ),
            (
                "a map emptied by $patch: delete, as upstream",
                json!({"spec": {"selector": {"$patch": "delete"}}}),
                vec![("/spec/selector", Some(json!({})))],
            ),
            (
                "rollout restart",
                json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"
                }}}}}),
                vec![(
                    "/spec/template/metadata/annotations",
                    Some(json!({"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"})),
                )],
            ),
            (
                "rollout pause",
                json!({"spec": {"paused": true}}),
                vec![("/spec/paused", Some(json!(true)))],
            ),
            (
                "a finalizer removed",
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
                vec![("/metadata/finalizers", Some(json!(["example.com/b"])))],
            ),
            (
                "a finalizer added without an order goes first, as upstream",
                json!({"metadata": {"finalizers": ["example.com/c"]}}),
                vec![(
                    "/metadata/finalizers",
                    Some(json!(["example.com/c", "example.com/a", "example.com/b"])),
                )],
            ),
            (
                "apply: a finalizer added and one removed",
                json!({"metadata": {
                    "$setElementOrder/finalizers": ["example.com/b", "example.com/c"],
                    "$deleteFromPrimitiveList/finalizers": ["example.com/a"],
                    "finalizers": ["example.com/c"]
                }}),
                vec![(
                    "/metadata/finalizers",
                    Some(json!(["example.com/b", "example.com/c"])),
                )],
            ),
            (
                "a new container's directives and nulls do not reach the object",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers":
                        [{"name": "web"}, {"name": "sidecar"}, {"name": "log"}],
                    "containers": [{
                        "name": "log",
                        "image": "fluentd:1",
                        "workingDir": null,
                        "env": [{"name": "X", "value": null}],
                        "$setElementOrder/ports": [{"containerPort": 1}],
                        "ports": [
                            {"containerPort": 1},
                            {"$patch": "delete", "containerPort": 2}
                        ],
                        "securityContext": {"$patch": "replace", "privileged": false}
                    }]
                }}}}),
                vec![(
                    "/spec/template/spec/containers/2",
                    Some(json!({
                        "name": "log",
                        "image": "fluentd:1",
                        "env": [{"name": "X"}],
                        "ports": [{"containerPort": 1}],
                        "securityContext": {"privileged": false}
                    })),
                )],
            ),
        ];
        for (name, patch, edits) in cases {
            let got = smp("Deployment", &deployment(), &patch);
            assert_eq!(got, edited(deployment(), &edits), "{name}");
        }
    }

    #[test]
    fn rollout_pause_then_resume() {
        let paused = smp(
            "Deployment",
            &deployment(),
            &json!({"spec": {"paused": true}}),
        );
        let resumed = smp("Deployment", &paused, &json!({"spec": {"paused": null}}));
        assert_eq!(resumed, deployment());
    }

    #[test]
    fn other_kinds() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [
                {"name": "app", "image": "app:1"},
                {"name": "proxy", "image": "envoy:1"}
            ]},
            "status": {"conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "False"}
            ]}
        });
        let service = json!({
            "metadata": {"name": "s"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        });
        let node = json!({
            "metadata": {"name": "n"},
            "spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "10.1.0.1"}],
                "conditions": [{"type": "Ready", "status": "False", "reason": "Starting"}]
            }
        });
        let cases = [
            (
                "set image on a pod",
                "Pod",
                &pod,
                json!({"spec": {"containers": [{"name": "proxy", "image": "envoy:2"}]}}),
                json!({
                    "metadata": {"name": "p"},
                    "spec": {"containers": [
                        {"name": "app", "image": "app:1"},
                        {"name": "proxy", "image": "envoy:2"}
                    ]},
                    "status": pod["status"]
                }),
            ),
            (
                "a pod condition patched by type",
                "Pod",
                &pod,
                json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
                json!({
                    "metadata": {"name": "p"},
                    "spec": pod["spec"],
                    "status": {"conditions": [
                        {"type": "Initialized", "status": "True"},
                        {"type": "Ready", "status": "True"}
                    ]}
                }),
            ),
            (
                "apply: a service port added",
                "Service",
                &service,
                json!({"spec": {
                    "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
                    "ports": [{"name": "https", "port": 443, "targetPort": 8443}]
                }}),
                json!({
                    "metadata": {"name": "s"},
                    "spec": {"ports": [
                        {"name": "http", "port": 80, "targetPort": 8080},
                        {"name": "https", "port": 443, "targetPort": 8443}
                    ]}
                }),
            ),
            (
                "node status: conditions and addresses by type",
                "Node",
                &node,
                json!({"status": {
                    "conditions": [{"type": "Ready", "status": "True", "reason": null}],
                    "addresses": [{"type": "Hostname", "address": "n"}]
                }}),
                json!({
                    "metadata": {"name": "n"},
                    "spec": node["spec"],
                    "status": {
                        "addresses": [
                            {"type": "Hostname", "address": "n"},
                            {"type": "InternalIP", "address": "10.1.0.1"}
                        ],
                        "conditions": [{"type": "Ready", "status": "True"}]
                    }
                }),
            ),
            (
                "node spec: podCIDRs merge, taints replace",
                "Node",
                &node,
                json!({"spec": {"podCIDRs": ["fd00::/64"], "taints": []}}),
                json!({
                    "metadata": {"name": "n"},
                    "spec": {"podCIDRs": ["fd00::/64", "10.0.0.0/24"], "taints": []},
                    "status": node["status"]
                }),
            ),
        ];
        for (name, kind, target, patch, want) in cases {
            assert_eq!(smp(kind, target, &patch), want, "{name}");
        }
    }

    /// Upstream's order of a merged list, on `env` (merged by name).
    #[test]
    fn merged_list_order() {
        let pod = |env: Value| json!({"spec": {"containers": [{"name": "c", "env": env}]}});
        let named =
            |names: &[&str]| Value::Array(names.iter().map(|n| json!({"name": n})).collect());
        let original = pod(named(&["A", "B", "C"]));
        let cases = [
            (
                "an item updated keeps its place",
                json!([{"name": "C"}]),
                named(&["A", "B", "C"]),
            ),
            (
                "an added item goes before the server-only ones after it",
                json!([{"name": "X"}, {"name": "A"}]),
                named(&["X", "A", "B", "C"]),
            ),
            (
                "an added item after an updated one",
                json!([{"name": "C"}, {"name": "X"}]),
                named(&["A", "B", "C", "X"]),
            ),
            (
                "patch order wins over the original order",
                json!([{"name": "C"}, {"name": "A"}]),
                named(&["B", "C", "A"]),
            ),
            (
                "duplicate patch items collapse",
                json!([{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]),
                json!([{"name": "X", "value": "2"}, {"name": "A"}, {"name": "B"}, {"name": "C"}]),
            ),
        ];
        for (name, env, want) in cases {
            let patch = json!({"spec": {"containers": [{"name": "c", "env": env}]}});
            assert_eq!(smp("Pod", &original, &patch), pod(want), "{name}");
        }

        let ordered = [
            (
                "an order alone reorders",
                json!({"$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}]}),
                named(&["C", "A", "B"]),
            ),
            (
                "server-only items keep their place next to ordered ones",
                json!({
                    "$setElementOrder/env": [{"name": "X"}, {"name": "A"}, {"name": "C"}],
                    "env": [{"name": "X"}]
                }),
                named(&["X", "A", "B", "C"]),
            ),
            (
                // Upstream places server-only items by the list it merged in place: the
                // items left after deletions, then the added ones.
                "with a deletion, as upstream",
                json!({
                    "$setElementOrder/env": [{"name": "B"}, {"name": "X"}],
                    "env": [{"name": "X"}, {"$patch": "delete", "name": "A"}]
                }),
                named(&["B", "C", "X"]),
            ),
        ];
        for (name, mut container, want) in ordered {
            container["name"] = json!("c");
            let patch = json!({"spec": {"containers": [container]}});
            assert_eq!(smp("Pod", &original, &patch), pod(want), "{name}");
        }
    }

    #[test]
    fn without_a_kind_lists_are_replaced() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"name": "web", "image": "nginx:2"}]
        }}}});
        let got = apply(&deployment(), &patch, Schema::UNKNOWN).expect("patch");
        assert_eq!(
            got,
            edited(
                deployment(),
                &[(
                    CONTAINERS,
                    Some(json!([{"name": "web", "image": "nginx:2"}]))
                )]
            )
        );
        // A kind without strategies of its own still merges metadata's lists.
        let config_map = json!({"metadata": {"finalizers": ["a"]}, "data": {"k": "v"}});
        let got = smp(
            "ConfigMap",
            &config_map,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}, "data": {"k": null}}),
        );
        assert_eq!(got, json!({"metadata": {"finalizers": []}, "data": {}}));
    }

    #[test]
    fn malformed_patches_are_rejected() {
        let containers =
            |list: Value| json!({"spec": {"template": {"spec": {"containers": list}}}});
        let cases = [
            (
                "not an object",
                json!([1]),
                "a strategic merge patch must be a JSON object",
            ),
            (
                "unknown $patch",
                json!({"metadata": {"labels": {"$patch": "remove"}}}),
                "metadata.labels: unknown $patch directive \"remove\"",
            ),
            (
                "$patch not a string",
                json!({"spec": {"$patch": 1}}),
                "spec: $patch must be a string",
            ),
            (
                "item without its merge key",
                containers(json!([{"image": "x"}])),
                "spec.template.spec.containers[0]: the item lacks its merge key \"name\"",
            ),
            (
                "delete without the merge key",
                containers(json!([{"$patch": "delete"}])),
                "spec.template.spec.containers[0]: the item lacks its merge key \"name\"",
            ),
            (
                "items of different types",
                containers(json!([{"name": "web"}, "sidecar"])),
                "spec.template.spec.containers: list items must all be of one type",
            ),
            (
                "$retainKeys not a list",
                json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
                "spec.strategy.$retainKeys: must be a list of field names",
            ),
            (
                "$retainKeys missing a patched key",
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
                "spec.strategy.$retainKeys: does not list \"rollingUpdate\"",
            ),
            (
                "$setElementOrder not a list",
                json!({"spec": {"template": {"spec": {"$setElementOrder/containers": {}}}}}),
                "spec.template.spec.$setElementOrder/containers: must be a list",
            ),
            (
                "$setElementOrder item without the merge key",
                json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{}]}}}}),
                "spec.template.spec.$setElementOrder/containers[0]: the item lacks its merge key",
            ),
            (
                "patch list out of the order given",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"name": "sidecar"}, {"name": "web"}]
                }}}}),
                "spec.template.spec.containers[1]: the item is missing from \
                 $setElementOrder/containers or out of its order",
            ),
            (
                "$deleteFromPrimitiveList of objects",
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [{"a": 1}]}}),
                "metadata.$deleteFromPrimitiveList/finalizers: must be a list of primitive",
            ),
            (
                "$deleteFromPrimitiveList without a field",
                json!({"metadata": {"$deleteFromPrimitiveList/": ["a"]}}),
                "metadata.$deleteFromPrimitiveList/: names no field",
            ),
            (
                "unknown directive",
                json!({"spec": {"$replaceAll": true}}),
                "spec.$replaceAll: unknown directive",
            ),
        ];
        for (name, patch, want) in cases {
            match apply(&deployment(), &patch, Schema::for_kind("Deployment")) {
                Err(PatchError::Malformed(message)) => assert!(
                    message.starts_with(want),
                    "{name}: {message:?} does not start with {want:?}"
                ),
                other => panic!("{name}: expected a malformed-patch error, got {other:?}"),
            }
        }
    }
}
