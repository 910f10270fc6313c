//! OpenAPI v3: the index and one document per group version. Paths list each
//! resource's operations with their group-version-kind and the `fieldValidation`
//! parameter (kubectl reads them to leave validation to the server);
//! `components.schemas` holds the types' schemas (`api::openapi`), which
//! `kubectl explain` renders. Documents are built once and kept.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use api::registry::{self, Resource};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::codec;
use crate::discovery::KUBERNETES_MINOR;
use crate::error::ApiError;

/// The group versions served, as OpenAPI v3 path names (`api/v1`, `apis/apps/v1`).
fn group_versions() -> Vec<String> {
    let mut out = vec!["api/v1".to_string()];
    for (group, versions) in registry::groups() {
        for v in versions {
            out.push(format!("apis/{group}/{v}"));
        }
    }
    out
}

/// GET /openapi/v3.
pub fn index() -> Response {
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|gv| {
            let url = format!("/openapi/v3/{gv}");
            (gv, json!({"serverRelativeURL": url}))
        })
        .collect();
    codec::json_response(StatusCode::OK, &json!({"paths": paths}))
}

/// GET /openapi/v3/api/v1 or /openapi/v3/apis/GROUP/VERSION.
pub fn group_version(path: &str) -> Response {
    static DOCUMENTS: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    let documents = DOCUMENTS.get_or_init(Default::default);
    let gv = path
        .trim_start_matches("/openapi/v3/")
        .trim_end_matches('/');
    if let Some(doc) = documents.lock().ok().and_then(|d| d.get(gv).cloned()) {
        return codec::with_type(StatusCode::OK, "application/json", doc.to_vec());
    }
    let Some(doc) = build(gv) else {
        return not_found(path);
    };
    let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    if let Ok(mut d) = documents.lock() {
        d.insert(gv.to_string(), bytes.clone());
    }
    codec::with_type(StatusCode::OK, "application/json", bytes.to_vec())
}

/// The document of one group version (`api/v1`, `apis/apps/v1`), if served.
fn build(gv: &str) -> Option<Value> {
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let resources: Vec<&Resource> = registry::in_group_version(group, version).collect();
    if resources.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for r in resources {
        let base = if r.namespaced() {
            format!("/{gv}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("/{gv}/{}", r.plural)
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        paths.insert(
            base.clone(),
            json!({
                "get": operation(&gvk, "list", false),
                "post": operation(&gvk, "post", true),
                "delete": operation(&gvk, "deletecollection", false),
            }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": operation(&gvk, "get", false),
                "put": operation(&gvk, "put", true),
                "patch": operation(&gvk, "patch", true),
                "delete": operation(&gvk, "delete", false),
            }),
        );
    }
    let doc = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{KUBERNETES_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": api::openapi::schemas(group, version)},
    });
    Some(doc)
}

fn operation(gvk: &Value, action: &str, writes: bool) -> Value {
    let mut parameters = Vec::new();
    if writes {
        parameters.push(json!({
            "name": "fieldValidation",
            "in": "query",
            "description": "how the server treats unknown and duplicate fields",
            "schema": {"type": "string", "uniqueItems": true},
        }));
    }
    json!({
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
    })
}

fn not_found(path: &str) -> Response {
    ApiError::NotFound {
        message: format!("the server could not find the requested resource ({path})"),
        details: None,
    }
    .into_response()
}
