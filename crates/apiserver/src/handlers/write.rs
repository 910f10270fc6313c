//! create, update and patch, and the preparation every stored object goes through:
//! the typed round trip, server-owned metadata, defaulting and validation.

use api::patch::{self, PatchType};
use api::registry::{Resource, StatusOnCreate};
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use crate::allocator::{self, Change};
use crate::codec;
use crate::error::ApiError;
use crate::handlers::Request;
use crate::meta;
use crate::objects::Stored;

/// How many times an update without a resourceVersion retries a lost race before
/// giving up with 409 (each retry rereads). Upstream retries without limit; a bound
/// keeps a pathological hot spot from spinning for ever, and is far above what N
/// concurrent writers of one object need (at most N rounds each).
const MAX_RETRIES: usize = 128;

/// POST of a new object.
pub async fn create(req: &Request<'_>, body: Value) -> Result<Value, ApiError> {
    let resource = req.resource;
    let mut object = check_identity(req, body)?;
    let m = meta::metadata_mut(&mut object);
    if m.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        match m.get("generateName").and_then(Value::as_str) {
            Some(prefix) if !prefix.is_empty() => {
                let name = meta::generate_name(prefix);
                m.insert("name".into(), json!(name));
            }
            _ => {
                return Err(ApiError::invalid(
                    resource.group,
                    resource.kind,
                    "",
                    vec![api::validation::FieldError {
                        kind: api::validation::FieldErrorKind::Required,
                        field: "metadata.name".into(),
                        value: None,
                        detail: "name or generateName is required".into(),
                    }],
                ));
            }
        }
    }
    fold_write_only(resource, &mut object);
    let sent = object.clone();
    let mut object = normalize(resource, object)?;
    req.fields.check(&sent, &object)?;
    stamp_new(resource, &mut object, req.applying);
    api::defaults::apply(resource.kind, &mut object);
    req.state
        .admission()
        .admit_create(resource.kind, &mut object);
    allocator::prepare_create(resource.kind, &mut object);
    validate(resource, &object, None)?;
    if let Some(ns) = req.object_namespace() {
        ensure_namespace_open(req, ns).await?;
    }
    let name = meta::name(&object).to_string();
    let key = req.key(&name);
    let allocators = req.state.allocators();
    let change = allocators
        .allocate(resource.kind, None, &mut object)
        .await?;
    match req.objects().create(resource, &key, object).await {
        Ok(stored) => {
            if req.objects().is_dry_run() {
                // The answer shows what would be allocated; nothing stays taken.
                allocators.revert(change).await;
            }
            Ok(stored.object)
        }
        Err(e) => {
            allocators.revert(change).await;
            Err(e)
        }
    }
}

/// Sets what the server owns on a new object.
fn stamp_new(resource: &Resource, object: &mut Value, applying: bool) {
    let m = meta::metadata_mut(object);
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(meta::now()));
    for owned in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(owned);
    }
    if !applying {
        // Only server-side apply records field managers.
        m.remove("managedFields");
    }
    if resource.generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    let Some(root) = object.as_object_mut() else {
        return;
    };
    match resource.status_on_create {
        StatusOnCreate::Keep => {}
        StatusOnCreate::Clear => {
            root.remove("status");
        }
        StatusOnCreate::Pending => {
            root.insert("status".into(), json!({"phase": "Pending"}));
        }
        StatusOnCreate::Active => {
            root.insert("status".into(), json!({"phase": "Active"}));
        }
    }
    if resource.kind == "Namespace" {
        // Upstream's namespace strategy: the namespace controller's finalizer, always.
        object["spec"]["finalizers"] = json!(["kubernetes"]);
    }
}

/// Checks apiVersion, kind, namespace and name of a body against the path, and fills
/// in what is missing.
fn check_identity(req: &Request<'_>, mut object: Value) -> Result<Value, ApiError> {
    let resource = req.resource;
    let expected = resource.api_version();
    if let Some(v) = object.get("apiVersion").and_then(Value::as_str)
        && v != expected
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({v}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(k) = object.get("kind").and_then(Value::as_str)
        && k != resource.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    object["apiVersion"] = json!(expected);
    object["kind"] = json!(resource.kind);
    let path_namespace = req.object_namespace().map(str::to_string);
    let m = meta::metadata_mut(&mut object);
    match path_namespace {
        Some(ns) => {
            let body_ns = m.get("namespace").and_then(Value::as_str).unwrap_or("");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            m.insert("namespace".into(), json!(ns));
        }
        None => {
            m.remove("namespace");
        }
    }
    if let Some(path_name) = &req.name {
        let body_name = m.get("name").and_then(Value::as_str).unwrap_or("");
        if body_name.is_empty() {
            m.insert("name".into(), json!(path_name));
        } else if body_name != path_name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({path_name})"
            )));
        }
    }
    Ok(object)
}

/// Folds write-only fields into their stored form, as upstream's decoding does: a
/// Secret's stringData into data. Done before field validation sees the body, so that
/// stringData is not an unknown field.
fn fold_write_only(resource: &Resource, object: &mut Value) {
    if resource.kind == "Secret" {
        api::defaults::merge_secret_string_data(object);
    }
}

/// The typed round trip; a body that does not decode is the client's error.
fn normalize(resource: &Resource, object: Value) -> Result<Value, ApiError> {
    api::typed::normalize(resource.kind, object).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body of the request could not be decoded as {}: {e}",
            resource.kind
        ))
    })
}

fn validate(resource: &Resource, object: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let causes = api::validation::validate(resource.kind, object, old);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            resource.group,
            resource.kind,
            meta::name(object),
            causes,
        ))
    }
}

/// Writes into a missing namespace are 404; into a terminating one, 403.
async fn ensure_namespace_open(req: &Request<'_>, namespace: &str) -> Result<(), ApiError> {
    let Some(namespaces) = api::registry::find("", "v1", "namespaces") else {
        return Ok(());
    };
    let stored = req
        .objects()
        .get(namespaces, &namespaces.key(None, namespace), namespace)
        .await?;
    if meta::is_deleting(&stored.object) {
        return Err(ApiError::Forbidden {
            message: format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                req.resource.plural,
                req.name.as_deref().unwrap_or("")
            ),
            details: None,
        });
    }
    Ok(())
}

/// PUT: replaces the object (or its status, or a namespace's finalizers).
pub async fn update(req: &Request<'_>, body: Value) -> Result<(StatusCode, Value), ApiError> {
    let body = check_identity(req, body)?;
    let result = guaranteed_update(req, |current| match current {
        Some(_) => Ok(Desire::Update(body.clone())),
        None if req.resource.create_on_update && req.subresource.is_none() => Ok(Desire::Create),
        None => Err(not_found(req)),
    })
    .await?;
    match result {
        Updated::Done(v) => Ok((StatusCode::OK, v)),
        Updated::Create => Ok((StatusCode::CREATED, create(req, body).await?)),
    }
}

fn not_found(req: &Request<'_>) -> ApiError {
    ApiError::not_found(
        req.resource.group,
        req.resource.plural,
        req.name.as_deref().unwrap_or(""),
    )
}

/// A patch body and its type, from the Content-Type.
pub fn decode_patch(req: &Request<'_>, body: &[u8]) -> Result<(PatchType, Value), ApiError> {
    let content_type = codec::media_type(req.headers.get(header::CONTENT_TYPE));
    let kind = PatchType::from_content_type(&content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type})"
        ))
    })?;
    let value = codec::decode(req.headers, body)?;
    req.fields.scan_body(&content_type, body);
    Ok((kind, value))
}

/// Applies a patch to the current object of `object_kind` (whose type decides how a
/// strategic merge patch merges lists).
pub fn apply_patch(
    object_kind: &str,
    current: &Value,
    kind: PatchType,
    patch: &Value,
) -> Result<Value, ApiError> {
    patch::apply_for_kind(object_kind, current, kind, patch).map_err(|e| match e {
        patch::PatchError::Malformed(m) => ApiError::BadRequest(m),
        patch::PatchError::Failed(m) => ApiError::Invalid {
            message: m,
            details: Default::default(),
            causes: Vec::new(),
        },
    })
}

/// PATCH of the object or its status.
pub async fn patch(req: &Request<'_>, kind: PatchType, patch: Value) -> Result<Value, ApiError> {
    let result = guaranteed_update(req, |current| {
        let current = current.ok_or_else(|| not_found(req))?;
        let mut patched = apply_patch(req.resource.kind, &current.object, kind, &patch)?;
        if !patched.is_object() {
            return Err(ApiError::BadRequest(
                "the patched object is not an object".into(),
            ));
        }
        // A patch is a precondition only if it names a resourceVersion itself: the one
        // carried over from the object read must not turn a concurrent write into a
        // 409 (upstream retries such patches).
        if meta::resource_version(&patched) == current.revision.to_string()
            && let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("resourceVersion");
        }
        Ok(Desire::Update(check_identity(req, patched)?))
    })
    .await?;
    match result {
        Updated::Done(v) => Ok(v),
        Updated::Create => Err(not_found(req)),
    }
}

/// What the caller of a guaranteed update wants, given the current object.
pub enum Desire {
    /// This new version (its resourceVersion, if set, is a precondition).
    Update(Value),
    /// The object is missing and should be created.
    Create,
}

/// What a guaranteed update ended with.
pub enum Updated {
    Done(Value),
    /// The object does not exist and the caller wants it created.
    Create,
}

/// Reads the object, asks `desire` for the new version, prepares and writes it if the
/// object is still at the revision read; rereads and retries when it moved, unless the
/// new version named a resourceVersion (then the move is the client's 409).
pub async fn guaranteed_update<F>(req: &Request<'_>, mut desire: F) -> Result<Updated, ApiError>
where
    F: FnMut(Option<&Stored>) -> Result<Desire, ApiError>,
{
    let resource = req.resource;
    let name = req.name()?.to_string();
    let key = req.key(&name);
    for _ in 0..MAX_RETRIES {
        let current = match req.objects().get(resource, &key, &name).await {
            Ok(c) => Some(c),
            Err(ApiError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let desired = match (desire(current.as_ref())?, current.as_ref()) {
            (Desire::Update(desired), Some(_)) => desired,
            _ => return Ok(Updated::Create),
        };
        let Some(current) = current else {
            return Ok(Updated::Create);
        };
        let requested = meta::resource_version(&desired).to_string();
        if !requested.is_empty() && requested != current.revision.to_string() {
            return Err(ApiError::stale(resource.group, resource.plural, &name));
        }
        let mut next = prepare_update(req, &current.object, desired)?;
        if unchanged(&current.object, &next) {
            return Ok(Updated::Done(current.object.clone()));
        }
        let finished = meta::is_deleting(&next)
            && meta::finalizers(&next).is_empty()
            && namespace_finalized(resource, &next)
            && was_held(resource, &current.object);
        let allocators = req.state.allocators();
        let change = allocate_update(req, &current.object, &mut next).await?;
        let written = match req.objects().update(&key, next, current.revision).await {
            Ok(Some(stored)) if req.objects().is_dry_run() => {
                allocators.revert(change).await;
                Some(stored)
            }
            Ok(Some(stored)) => {
                allocators.commit(change).await;
                Some(stored)
            }
            Ok(None) => {
                allocators.revert(change).await;
                None
            }
            Err(e) => {
                allocators.revert(change).await;
                return Err(e);
            }
        };
        match written {
            Some(stored) if finished => {
                // The last finalizer went: the object goes too.
                match req.objects().delete(&key, stored.revision).await? {
                    Some(_) => {
                        if !req.objects().is_dry_run() {
                            allocators
                                .release_deleted(resource.kind, &stored.object)
                                .await;
                        }
                        return Ok(Updated::Done(stored.object));
                    }
                    None => continue,
                }
            }
            Some(stored) => return Ok(Updated::Done(stored.object)),
            None if !requested.is_empty() => {
                return Err(ApiError::stale(resource.group, resource.plural, &name));
            }
            None => continue,
        }
    }
    Err(ApiError::stale(resource.group, resource.plural, &name))
}

/// What an update of the object itself takes from the Service allocators (a
/// subresource write keeps the spec as stored, so it takes nothing).
async fn allocate_update(
    req: &Request<'_>,
    current: &Value,
    next: &mut Value,
) -> Result<Change, ApiError> {
    if req.subresource.is_some() {
        return Ok(Change::default());
    }
    req.state
        .allocators()
        .allocate(req.resource.kind, Some(current), next)
        .await
}

/// Whether a deleting object was waiting on something an update can release: a
/// finalizer (or a namespace's spec finalizer), or a grace period already over. A pod
/// in its grace period is not: its kubelet's status updates must not end it early
/// (upstream's `shouldDeleteDuringUpdate`).
fn was_held(resource: &Resource, current: &Value) -> bool {
    !meta::finalizers(current).is_empty()
        || !namespace_finalized(resource, current)
        || current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(0)
}

/// A namespace also waits for its spec finalizers (the namespace controller's).
fn namespace_finalized(resource: &Resource, object: &Value) -> bool {
    resource.kind != "Namespace"
        || object
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty())
}

/// Equal but for resourceVersion: nothing to write.
fn unchanged(current: &Value, next: &Value) -> bool {
    let mut a = current.clone();
    let mut b = next.clone();
    for v in [&mut a, &mut b] {
        meta::metadata_mut(v).remove("resourceVersion");
    }
    a == b
}

/// The object to store for an update of `current` to `desired`, by subresource.
fn prepare_update(req: &Request<'_>, current: &Value, desired: Value) -> Result<Value, ApiError> {
    let resource = req.resource;
    let mut desired = desired;
    fold_write_only(resource, &mut desired);
    let sent = desired.clone();
    let desired = normalize(resource, desired)?;
    req.fields.check(&sent, &desired)?;
    let mut next = match req.subresource.as_deref() {
        Some("status") => {
            // Only status changes (and labels and annotations, as upstream).
            let mut next = current.clone();
            next["status"] = desired.get("status").cloned().unwrap_or(json!({}));
            for field in ["labels", "annotations"] {
                match desired.pointer(&format!("/metadata/{field}")) {
                    Some(v) => {
                        meta::metadata_mut(&mut next).insert(field.into(), v.clone());
                    }
                    None => {
                        meta::metadata_mut(&mut next).remove(field);
                    }
                }
            }
            next
        }
        // A binding sets spec.nodeName and a status condition, both prepared by the
        // caller.
        Some("binding") => desired,
        Some("finalize") => {
            let mut next = current.clone();
            next["spec"]["finalizers"] = desired
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            next
        }
        _ => {
            let mut next = desired;
            if resource.status {
                match current.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        if let Some(root) = next.as_object_mut() {
                            root.remove("status");
                        }
                    }
                }
            }
            next
        }
    };
    keep_server_metadata(current, &mut next, req.applying);
    api::defaults::apply(resource.kind, &mut next);
    if req.subresource.is_none() {
        allocator::prepare_update(resource.kind, current, &mut next);
    }
    if resource.generation {
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bumped = if meta::spec_differs(current, &next) {
            generation + 1
        } else {
            generation
        };
        meta::metadata_mut(&mut next).insert("generation".into(), json!(bumped));
    }
    // Update validation forbids changing a pod's spec; binding is the one way to set
    // its node, so it is validated as a new object.
    let old = (req.subresource.as_deref() != Some("binding")).then_some(current);
    validate(resource, &next, old)?;
    Ok(next)
}

/// Fields the client cannot change by update: they stay as stored.
fn keep_server_metadata(current: &Value, next: &mut Value, applying: bool) {
    let m = meta::metadata_mut(next);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match current.pointer(&format!("/metadata/{field}")) {
            Some(v) => {
                m.insert(field.into(), v.clone());
            }
            None => {
                m.remove(field);
            }
        }
    }
    m.remove("selfLink");
    if !applying {
        // Field managers change only through server-side apply.
        match current.pointer("/metadata/managedFields") {
            Some(v) => {
                m.insert("managedFields".into(), v.clone());
            }
            None => {
                m.remove("managedFields");
            }
        }
    }
}

/// PATCH with `application/apply-patch+yaml`: server-side apply as `fieldManager`,
/// creating the object if it does not exist.
pub async fn server_side_apply(
    req: &Request<'_>,
    applied: Value,
) -> Result<(StatusCode, Value), ApiError> {
    let manager = req
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::BadRequest(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            )
        })?;
    let force = matches!(
        req.query.get("force").map(String::as_str),
        Some("true" | "1")
    );
    if !applied.is_object() {
        return Err(ApiError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    }
    let applying = Request {
        applying: true,
        ..req.retarget(
            req.namespace.clone(),
            req.name.clone(),
            req.subresource.clone(),
        )
    };
    let applied = check_identity(&applying, applied)?;
    let kind = req.resource.kind;
    let now = meta::now();
    let merged = |live: Option<&Value>| {
        api::apply::apply(
            kind,
            live,
            &applied,
            &manager,
            force,
            &now,
            api::apply::list_keys,
        )
        .map_err(|e| match e {
            api::apply::ApplyError::Conflicts(_) => ApiError::Conflict {
                message: e.to_string(),
                details: Some(crate::error::Details::new(
                    req.name.as_deref().unwrap_or(""),
                    req.resource.group,
                    req.resource.plural,
                )),
            },
            api::apply::ApplyError::Invalid(m) => ApiError::BadRequest(m),
        })
    };
    let result = guaranteed_update(&applying, |current| match current {
        Some(current) => Ok(Desire::Update(merged(Some(&current.object))?)),
        None => Ok(Desire::Create),
    })
    .await?;
    match result {
        Updated::Done(v) => Ok((StatusCode::OK, v)),
        Updated::Create => {
            let object = merged(None)?;
            Ok((StatusCode::CREATED, create(&applying, object).await?))
        }
    }
}
