//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
//! patch.
//!
//! Layout:
//! - this module: the patch types by Content-Type, and [`apply_for_kind`], which the API
//!   server calls with the object's kind.
//! - [`strategic`]: strategic merge patch with its directives (`$patch`, `$retainKeys`,
//!   `$setElementOrder/…`, `$deleteFromPrimitiveList/…`), as upstream applies it.
//! - [`merge_keys`]: which list fields of the built-in types merge, and by which key.
//!
//! Apply patches (server-side apply) are served with merge-patch semantics here, their
//! directives dropped rather than stored.

pub mod merge_keys;
pub mod strategic;

use serde_json::Value;

use self::merge_keys::Schema;

/// The patch flavours the API accepts, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of the declared type.
    #[error("invalid patch: {0}")]
    Malformed(String),
    /// A JSON patch operation failed (a `test` op, a missing path).
    #[error("the patch could not be applied: {0}")]
    Failed(String),
}

/// Applies `patch` (already parsed JSON) to `target`, not knowing the object's kind: a
/// strategic merge patch then replaces every list (maps still merge and directives are
/// still carried out). The API server uses [`apply_for_kind`].
pub fn apply(target: &Value, kind: PatchType, patch: &Value) -> Result<Value, PatchError> {
    apply_with_schema(target, kind, patch, Schema::UNKNOWN)
}

/// Applies `patch` (already parsed JSON) to `target`, an object of `kind` (`Pod`,
/// `Deployment`, `Scale`, …), whose list strategies a strategic merge patch follows. A
/// kind without strategies of its own gets those of `metadata`.
pub fn apply_for_kind(
    kind: &str,
    target: &Value,
    patch_type: PatchType,
    patch: &Value,
) -> Result<Value, PatchError> {
    apply_with_schema(target, patch_type, patch, Schema::for_kind(kind))
}

fn apply_with_schema(
    target: &Value,
    patch_type: PatchType,
    patch: &Value,
    schema: Schema,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| PatchError::Malformed(e.to_string()))?;
            let mut doc = target.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::Failed(e.to_string()))?;
            Ok(doc)
        }
        PatchType::StrategicMerge => strategic::apply(target, patch, schema),
        PatchType::Merge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(PatchError::Malformed(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            let mut doc = target.clone();
            let mut patch = patch.clone();
            if patch_type == PatchType::Apply {
                strip_directives(&mut patch);
            }
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
    }
}

/// Removes strategic-merge directives from an apply patch, which merge semantics would
/// otherwise store.
fn strip_directives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => {
            items.retain(|item| {
                !item
                    .as_object()
                    .is_some_and(|m| m.len() == 1 && m.contains_key("$patch"))
            });
            items.iter_mut().for_each(strip_directives);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn merge_patch_merges_maps_and_deletes_nulls() {
        let target = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "y"}});
        let patch = json!({"metadata": {"labels": {"b": null, "c": "3"}}});
        let out = apply(&target, PatchType::Merge, &patch).expect("merge");
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "data": {"x": "y"}})
        );
    }

    #[test]
    fn strategic_merge_drops_directives() {
        let target = json!({"spec": {"replicas": 1}});
        let patch = json!({"spec": {"replicas": 3, "$retainKeys": ["replicas"]}});
        let out = apply(&target, PatchType::StrategicMerge, &patch).expect("merge");
        assert_eq!(out, json!({"spec": {"replicas": 3}}));
    }

    #[test]
    fn strategic_merge_follows_the_kind() {
        let target = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1"},
            {"name": "sidecar", "image": "busybox:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2"}
        ]}}}});
        let merged = apply_for_kind("Deployment", &target, PatchType::StrategicMerge, &patch)
            .expect("patch");
        assert_eq!(
            merged,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:2"},
                {"name": "sidecar", "image": "busybox:1"}
            ]}}}})
        );
        let replaced = apply(&target, PatchType::StrategicMerge, &patch).expect("patch");
        assert_eq!(replaced, patch);
        // Other patch types ignore the kind.
        let merge = apply_for_kind("Deployment", &target, PatchType::Merge, &patch).expect("patch");
        assert_eq!(merge, patch);

        let scale = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let scaled = apply_for_kind(
            "Scale",
            &scale,
            PatchType::StrategicMerge,
            &json!({"spec": {"replicas": 3}}),
        )
        .expect("patch");
        assert_eq!(
            scaled,
            json!({"metadata": {"name": "web"}, "spec": {"replicas": 3}})
        );
        assert!(matches!(
            apply_for_kind("Pod", &scale, PatchType::StrategicMerge, &json!("x")),
            Err(PatchError::Malformed(_))
        ));
    }

    #[test]
    fn json_patch_ops_and_failures() {
        let target = json!({"spec": {"replicas": 1}});
        let patch = json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]);
        let out = apply(&target, PatchType::Json, &patch).expect("patch");
        assert_eq!(out, json!({"spec": {"replicas": 5}}));
        let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 2}]);
        assert!(matches!(
            apply(&target, PatchType::Json, &failing),
            Err(PatchError::Failed(_))
        ));
        assert!(matches!(
            apply(&target, PatchType::Json, &json!({"op": "add"})),
            Err(PatchError::Malformed(_))
        ));
        assert!(matches!(
            apply(&target, PatchType::Merge, &json!([1])),
            Err(PatchError::Malformed(_))
        ));
    }
}
