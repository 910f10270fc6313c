//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
//! patch. Strategic merge is served with merge-patch semantics for now (maps merge,
//! lists are replaced); its directives (`$patch`, `$retainKeys`, `$setElementOrder/…`,
//! `$deleteFromPrimitiveList/…`) are dropped rather than stored.

use serde_json::Value;

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

/// Applies `patch` (already parsed JSON) to `target`.
pub fn apply(target: &Value, kind: PatchType, patch: &Value) -> Result<Value, PatchError> {
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| PatchError::Malformed(e.to_string()))?;
            let mut doc = target.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::Failed(e.to_string()))?;
            Ok(doc)
        }
        PatchType::Merge | PatchType::StrategicMerge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(PatchError::Malformed(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            let mut doc = target.clone();
            let mut patch = patch.clone();
            if kind != PatchType::Merge {
                strip_directives(&mut patch);
            }
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
    }
}

/// Removes strategic-merge directives, which merge semantics would otherwise store.
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
