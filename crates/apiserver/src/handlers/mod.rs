//! REST handlers for resources: one module per family of verbs. `dispatch` maps method,
//! path and query to a verb; the verb functions return values (objects, lists,
//! Statuses) and errors, and `dispatch` encodes them in the negotiated format.

mod delete;
mod fields;
mod read;
mod subresources;
mod watch;
mod write;

use std::collections::HashMap;
use std::time::Instant;

use api::registry::Resource;
use api::tables::IncludeObject;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::codec;
use crate::error::ApiError;
use crate::fencing;
use crate::objects::Objects;
use crate::path::Target;
use crate::query::{DeleteOptions, ListOptions};
use crate::state::AppState;

pub use fields::{FieldChecks, FieldValidation};
pub use read::selected;

/// One request to a resource path.
#[derive(Debug)]
pub struct Request<'a> {
    pub state: &'a AppState,
    /// The store as this request writes it: the state's objects, or, for a leader's
    /// request carrying a fence, the same with every write guarded by its Lease.
    pub objects: &'a Objects,
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub headers: &'a HeaderMap,
    pub query: &'a HashMap<String, String>,
    /// Unknown and duplicate fields found in this request's body.
    pub fields: &'a FieldChecks,
    /// A server-side apply: managedFields come from the apply, not from the store.
    pub applying: bool,
}

impl<'a> Request<'a> {
    /// Objects in the store, written under this request's fence if it has one.
    pub fn objects(&self) -> &'a Objects {
        self.objects
    }

    /// The object name from the path (every single-object verb has one).
    pub fn name(&self) -> Result<&str, ApiError> {
        self.name
            .as_deref()
            .ok_or_else(|| ApiError::MethodNotAllowed("a name is required".into()))
    }

    /// The namespace for an object of this resource (None when cluster-scoped).
    pub fn object_namespace(&self) -> Option<&str> {
        if self.resource.namespaced() {
            self.namespace.as_deref()
        } else {
            None
        }
    }

    pub fn key(&self, name: &str) -> String {
        self.resource.key(self.object_namespace(), name)
    }

    /// The same request aimed at another object or subresource of the resource (not
    /// applying).
    pub fn retarget(
        &self,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    ) -> Request<'a> {
        Request {
            state: self.state,
            objects: self.objects,
            resource: self.resource,
            namespace,
            name,
            subresource,
            headers: self.headers,
            query: self.query,
            fields: self.fields,
            applying: false,
        }
    }
}

/// Serves one request to a resource path.
pub async fn dispatch(
    state: &AppState,
    method: &Method,
    target: Target,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let resource = target.resource;
    let log =
        *method == Method::GET && resource.binding && target.subresource.as_deref() == Some("log");
    let format = match codec::negotiate(headers) {
        Ok(f) => f,
        // A log streams as text whatever the client accepts (upstream streams past
        // negotiation); only its errors are encoded, as JSON.
        Err(_) if log => codec::Format::Json,
        Err(e) => return e.into_response(),
    };
    let mode = match FieldValidation::parse(query.get("fieldValidation").map(String::as_str)) {
        Ok(mode) => mode,
        Err(e) => return e.into_response(),
    };
    let fields = FieldChecks::new(mode);
    // Only writes are fenced; a read ignores the header. The fenced view is built once
    // per request, and the unfenced path borrows the state's as before.
    let fence = match *method {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            fencing::from_headers(headers).map_err(ApiError::from)
        }
        _ => Ok(None),
    };
    let dry_run = match dry_run(query) {
        Ok(dry_run) => dry_run,
        Err(e) => return e.into_response(),
    };
    let fenced;
    let fenced_objects = fence.and_then(|f| f.map(|f| state.objects().with_fence(f)).transpose());
    let (objects, fence_error) = match fenced_objects {
        Ok(Some(o)) => {
            fenced = o;
            (&fenced, None)
        }
        Ok(None) => (state.objects(), None),
        Err(e) => (state.objects(), Some(e)),
    };
    let simulated;
    let objects = if dry_run {
        simulated = objects.dry_run();
        &simulated
    } else {
        objects
    };
    let req = Request {
        state,
        objects,
        resource,
        namespace: target.namespace,
        name: target.name,
        subresource: target.subresource,
        headers,
        query,
        fields: &fields,
        applying: false,
    };
    let verb = verb_of(method, &req, target.legacy_watch);
    let failed = |e: ApiError| {
        let code = e.code();
        if code.is_server_error() {
            tracing::warn!(verb, resource = resource.plural, error = %e, "request failed");
        }
        codec::respond(code, format, &e.status())
    };
    let response = match (verb, fence_error) {
        (_, Some(e)) => failed(e),
        ("watch", None) => watch::serve(&req)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        ("get", None) if log => subresources::logs(&req).await.unwrap_or_else(failed),
        (_, None) => match serve(&req, verb, &body)
            .await
            .and_then(|(code, value)| Ok((code, as_table(&req, verb, value)?)))
        {
            Ok((code, value)) => codec::respond(code, format, &value),
            Err(e) => failed(e),
        },
    };
    let mut response = response;
    for warning in fields.take_warnings() {
        let text = format!("299 - {}", serde_json::Value::String(warning));
        if let Ok(value) = axum::http::HeaderValue::from_str(&text) {
            response
                .headers_mut()
                .append(axum::http::header::WARNING, value);
        }
    }
    let metric_resource = match &req.subresource {
        Some(sub) => format!("{}/{sub}", resource.plural),
        None => resource.plural.to_string(),
    };
    state.metrics().request(
        verb,
        &metric_resource,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The `dryRun` query parameter: `All` (check everything, write nothing) or absent;
/// upstream knows no other value.
fn dry_run(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unsupported dry run value {other:?}: only \"All\" is supported"
        ))),
    }
}

/// What the client asked for with `Accept: …;as=Table`: the meta.k8s.io version and
/// how much of each object to embed. None: plain objects.
pub fn table_request(req: &Request<'_>) -> Result<Option<(&'static str, IncludeObject)>, ApiError> {
    let Some(version) = req
        .headers
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .and_then(api::tables::wants_table)
    else {
        return Ok(None);
    };
    let raw = req.query.get("includeObject").map(String::as_str);
    let include = IncludeObject::from_query(raw).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unrecognized includeObject value: \"{}\"",
            raw.unwrap_or("")
        ))
    })?;
    Ok(Some((version, include)))
}

/// Answers get and list with a Table when asked for one.
fn as_table(req: &Request<'_>, verb: &str, value: Value) -> Result<Value, ApiError> {
    if !matches!(verb, "get" | "list") || req.subresource.is_some() {
        return Ok(value);
    }
    let Some((version, include)) = table_request(req)? else {
        return Ok(value);
    };
    let now = crate::meta::unix_now();
    let kind = req.resource.kind;
    Ok(match verb {
        "list" => {
            let items = value["items"].as_array().cloned().unwrap_or_default();
            let metadata = value.get("metadata").cloned().unwrap_or(Value::Null);
            api::tables::table_for_version(version, kind, &items, metadata, include, now)
        }
        _ => {
            let metadata = serde_json::json!({
                "resourceVersion": value.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
            });
            api::tables::table_for_version(version, kind, &[value], metadata, include, now)
        }
    })
}

/// The Kubernetes verb of a request.
fn verb_of(method: &Method, req: &Request<'_>, legacy_watch: bool) -> &'static str {
    let collection = req.name.is_none();
    let watch_param = matches!(
        req.query.get("watch").map(String::as_str),
        Some("1" | "true" | "True")
    );
    match *method {
        Method::GET if (legacy_watch || watch_param) && req.subresource.is_none() => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

async fn serve(
    req: &Request<'_>,
    verb: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let sub = req.subresource.as_deref();
    let resource = req.resource;
    let allowed = match sub {
        None => true,
        Some("status") => resource.status,
        Some("scale") => resource.scale.is_some(),
        Some("binding") => resource.binding,
        Some("log") => resource.binding,
        Some("finalize") => resource.kind == "Namespace",
        Some(_) => false,
    };
    if !allowed {
        return Err(ApiError::NotFound {
            message: format!(
                "the server could not find the requested resource ({}/{})",
                resource.plural,
                sub.unwrap_or_default()
            ),
            details: None,
        });
    }
    if resource.namespaced() && req.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::MethodNotAllowed(format!(
            "{verb} of {} needs a namespace in the path",
            resource.plural
        )));
    }
    let ok = |v| Ok((StatusCode::OK, v));
    match (verb, sub) {
        ("get", Some("scale")) => ok(subresources::get_scale(req).await?),
        ("get", _) => ok(read::get(req).await?),
        ("list", None) => {
            let options = ListOptions::parse(req.query, resource)?;
            ok(read::list(req, &options).await?)
        }
        ("create", None) => {
            let body = decode_object(req, body)?;
            Ok((StatusCode::CREATED, write::create(req, body).await?))
        }
        ("create", Some("binding")) => {
            let body = decode_object(req, body)?;
            Ok((StatusCode::CREATED, subresources::bind(req, body).await?))
        }
        ("update", Some("scale")) => {
            let body = decode_object(req, body)?;
            ok(subresources::update_scale(req, subresources::ScaleChange::Replace(body)).await?)
        }
        ("update", None | Some("status" | "finalize")) => {
            let body = decode_object(req, body)?;
            write::update(req, body).await
        }
        ("patch", Some("scale")) => {
            let (kind, patch) = write::decode_patch(req, body)?;
            ok(
                subresources::update_scale(req, subresources::ScaleChange::Patch(kind, patch))
                    .await?,
            )
        }
        ("patch", None | Some("status")) => {
            let (kind, patch) = write::decode_patch(req, body)?;
            if kind == api::patch::PatchType::Apply {
                return write::server_side_apply(req, patch).await;
            }
            ok(write::patch(req, kind, patch).await?)
        }
        ("delete", None) => {
            let options = delete_options(req, body)?;
            delete::delete(req, &options).await
        }
        ("deletecollection", None) => {
            let options = delete_options(req, body)?;
            let list = ListOptions::parse(req.query, resource)?;
            ok(delete::delete_collection(req, &list, &options).await?)
        }
        _ => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({verb} {}{})",
            resource.plural,
            sub.map(|s| format!("/{s}")).unwrap_or_default()
        ))),
    }
}

/// A request body that must be a JSON or YAML object.
fn decode_object(req: &Request<'_>, body: &[u8]) -> Result<Value, ApiError> {
    let value = codec::decode(req.headers, body)?;
    req.fields.scan_body(
        &codec::media_type(req.headers.get(axum::http::header::CONTENT_TYPE)),
        body,
    );
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be an object".into(),
        ));
    }
    Ok(value)
}

fn delete_options(req: &Request<'_>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions::from_query(req.query)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let value = decode_object(req, body)?;
        options.merge_body(&value)?;
    }
    Ok(options)
}
