//! delete and deletecollection: preconditions, finalizers and deletionTimestamp,
//! graceful pod deletion, propagation policy, namespaces turning Terminating.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::handlers::Request;
use crate::handlers::read;
use crate::meta;
use crate::query::{DeleteOptions, ListOptions};

/// Retries of a delete that lost a race with a writer.
const MAX_RETRIES: usize = 16;
/// Upstream's default pod termination grace period.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// What a delete did.
enum Outcome {
    /// The object is gone; its last state.
    Deleted(Value),
    /// The object is marked for deletion and waits (finalizers, grace period).
    Pending(Value),
}

/// DELETE of one object.
pub async fn delete(
    req: &Request<'_>,
    options: &DeleteOptions,
) -> Result<(StatusCode, Value), ApiError> {
    let name = req.name()?.to_string();
    match delete_one(req, &name, options).await? {
        Outcome::Pending(object) => Ok((StatusCode::OK, object)),
        Outcome::Deleted(object) if req.resource.return_deleted_object => {
            Ok((StatusCode::OK, object))
        }
        Outcome::Deleted(object) => Ok((StatusCode::OK, success(req, &object))),
    }
}

/// A `Status` of kind Success for a completed delete.
fn success(req: &Request<'_>, object: &Value) -> Value {
    let mut details = json!({
        "name": meta::name(object),
        "kind": req.resource.plural,
        "uid": meta::uid(object),
    });
    if !req.resource.group.is_empty() {
        details["group"] = json!(req.resource.group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

async fn delete_one(
    req: &Request<'_>,
    name: &str,
    options: &DeleteOptions,
) -> Result<Outcome, ApiError> {
    let resource = req.resource;
    let key = req.key(name);
    let objects = req.objects();
    for _ in 0..MAX_RETRIES {
        let current = objects.get(resource, &key, name).await?;
        check_preconditions(req, name, &current.object, options)?;
        match pending_state(req, &current.object, options) {
            Some(next) if next == current.object => return Ok(Outcome::Pending(next)),
            Some(next) => match objects.update(&key, next, current.revision).await? {
                Some(stored) => return Ok(Outcome::Pending(stored.object)),
                None => continue,
            },
            None => {
                if objects.delete(&key, current.revision).await?.is_some() {
                    if !objects.is_dry_run() {
                        req.state
                            .allocators()
                            .release_deleted(resource.kind, &current.object)
                            .await;
                    }
                    return Ok(Outcome::Deleted(current.object));
                }
            }
        }
    }
    Err(ApiError::stale(resource.group, resource.plural, name))
}

fn check_preconditions(
    req: &Request<'_>,
    name: &str,
    object: &Value,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    let resource = req.resource;
    if let Some(uid) = &options.precondition_uid
        && uid != meta::uid(object)
    {
        return Err(ApiError::conflict(
            resource.group,
            resource.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta::uid(object)
            ),
        ));
    }
    if let Some(rv) = &options.precondition_resource_version
        && rv != meta::resource_version(object)
    {
        return Err(ApiError::conflict(
            resource.group,
            resource.plural,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta::resource_version(object)
            ),
        ));
    }
    Ok(())
}

/// The object marked for deletion, if it must wait rather than go now: finalizers
/// (including the propagation policy's), a namespace's content, a running pod's grace
/// period. None: delete it now.
fn pending_state(req: &Request<'_>, current: &Value, options: &DeleteOptions) -> Option<Value> {
    let resource = req.resource;
    let mut next = current.clone();
    let mut finalizers = meta::finalizers(current);
    if !meta::is_deleting(current) {
        let policy_finalizer = match options.propagation_policy.as_deref() {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        if let Some(f) = policy_finalizer
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(f.to_string());
        }
    }
    let namespace_waits = resource.kind == "Namespace"
        && current
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    if namespace_waits {
        if !meta::is_deleting(current) {
            mark(&mut next, 0, &finalizers);
        }
        next["status"]["phase"] = json!("Terminating");
        return Some(next);
    }
    if !finalizers.is_empty() {
        if !meta::is_deleting(current) {
            mark(&mut next, 0, &finalizers);
        }
        return Some(next);
    }
    if resource.kind == "Pod" {
        return graceful_pod(current, options);
    }
    None
}

/// Sets deletionTimestamp (now + grace) and the finalizers.
fn mark(object: &mut Value, grace: i64, finalizers: &[String]) {
    let m = meta::metadata_mut(object);
    m.insert("deletionTimestamp".into(), json!(meta::now_plus(grace)));
    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
}

/// A pod on a node gets its grace period: the kubelet stops it, then deletes it with
/// grace 0. Unscheduled and finished pods go at once.
fn graceful_pod(current: &Value, options: &DeleteOptions) -> Option<Value> {
    let bound = current
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        current.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    let grace = options.grace_period_seconds.unwrap_or_else(|| {
        current
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_GRACE_SECONDS)
    });
    if !bound || finished || grace == 0 {
        return None;
    }
    let existing = current
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    match existing {
        // Already terminating: only a shorter grace period changes anything.
        Some(g) if g <= grace => Some(current.clone()),
        _ => {
            let mut next = current.clone();
            mark(&mut next, grace, &[]);
            Some(next)
        }
    }
}

/// DELETE of a collection: every object the selectors match.
pub async fn delete_collection(
    req: &Request<'_>,
    list: &ListOptions,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let listed = read::list(req, list).await?;
    let mut deleted = Vec::new();
    for object in listed["items"].as_array().cloned().unwrap_or_default() {
        let name = meta::name(&object).to_string();
        let namespace = meta::namespace(&object).to_string();
        let one = req.retarget(
            (!namespace.is_empty()).then_some(namespace),
            Some(name.clone()),
            None,
        );
        match delete_one(&one, &name, options).await {
            Ok(Outcome::Deleted(o) | Outcome::Pending(o)) => deleted.push(o),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json!({
        "kind": format!("{}List", req.resource.kind),
        "apiVersion": req.resource.api_version(),
        "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"]},
        "items": deleted,
    }))
}
