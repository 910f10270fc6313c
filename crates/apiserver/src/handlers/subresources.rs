//! `/scale` of deployments and replicasets, `pods/binding`, and `pods/log` (the
//! container log, streamed from the kubelet of the pod's node).

use std::collections::HashMap;

use api::patch::PatchType;
use api::selectors::LabelSelector;
use api::validation::{FieldError, FieldErrorKind};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, Details};
use crate::handlers::Request;
use crate::handlers::write::{self, Desire, Updated};
use crate::kubelet_client::{self, Endpoint, LogOptions};
use crate::meta;

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(req: &Request<'_>, object: &Value) -> Value {
    let selector = req
        .resource
        .scale
        .and_then(|s| object.pointer(s.selector_path))
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .and_then(|s| LabelSelector::from_api(&s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let m = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// GET …/scale.
pub async fn get_scale(req: &Request<'_>) -> Result<Value, ApiError> {
    let object = super::read::get(req).await?;
    Ok(scale_of(req, &object))
}

/// How a scale write arrives.
#[derive(Debug)]
pub enum ScaleChange {
    Replace(Value),
    Patch(PatchType, Value),
}

/// PUT or PATCH of …/scale: sets the parent's spec.replicas.
pub async fn update_scale(req: &Request<'_>, change: ScaleChange) -> Result<Value, ApiError> {
    // The parent is written through the main resource: generation bumps, status stays.
    let parent = req.retarget(req.namespace.clone(), req.name.clone(), None);
    let result = write::guaranteed_update(&parent, |current| {
        let Some(current) = current else {
            return Err(ApiError::not_found(
                req.resource.group,
                req.resource.plural,
                req.name.as_deref().unwrap_or(""),
            ));
        };
        let scale = scale_of(req, &current.object);
        let desired_scale = match &change {
            ScaleChange::Replace(body) => body.clone(),
            ScaleChange::Patch(kind, patch) => write::apply_patch("Scale", &scale, *kind, patch)?,
        };
        // Range problems (a negative count) are the parent's validation's to report.
        let replicas = match desired_scale.pointer("/spec/replicas") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                ApiError::BadRequest("spec.replicas of a Scale must be an integer".into())
            })?,
        };
        let mut next = current.object.clone();
        next["spec"]["replicas"] = json!(replicas);
        // The Scale's resourceVersion, if any, is the parent's precondition.
        let requested = meta::resource_version(&desired_scale).to_string();
        meta::metadata_mut(&mut next).insert("resourceVersion".into(), json!(requested));
        Ok(Desire::Update(next))
    })
    .await?;
    match result {
        Updated::Done(object) => Ok(scale_of(req, &object)),
        Updated::Create => Err(ApiError::Internal("scale asked to create".into())),
    }
}

/// POST pods/NAME/binding: sets spec.nodeName once, and the PodScheduled condition.
pub async fn bind(req: &Request<'_>, body: Value) -> Result<Value, ApiError> {
    let name = req.name()?.to_string();
    let binding = api::typed::normalize(
        "Binding",
        json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": body.get("metadata").cloned().unwrap_or(json!({})),
            "target": body.get("target").cloned().unwrap_or(Value::Null),
        }),
    )
    .map_err(|e| ApiError::BadRequest(format!("the body is not a Binding: {e}")))?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            vec![api::validation::FieldError {
                kind: api::validation::FieldErrorKind::Required,
                field: "target.name".into(),
                value: None,
                detail: "Required value".into(),
            }],
        ));
    }
    let body_name = meta::name(&binding);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    // `req` is the pods/NAME/binding request: the update runs with binding semantics.
    let result = write::guaranteed_update(req, |current| {
        let Some(current) = current else {
            return Err(ApiError::not_found("", "pods", &name));
        };
        let object = &current.object;
        if meta::is_deleting(object) {
            return Err(ApiError::conflict(
                "",
                "pods",
                &name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        let bound = object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !bound.is_empty() {
            return Err(ApiError::conflict(
                "",
                "pods",
                &name,
                &format!("pod {name} is already assigned to node \"{bound}\""),
            ));
        }
        let mut next = object.clone();
        next["spec"]["nodeName"] = json!(node);
        set_scheduled_condition(&mut next);
        meta::metadata_mut(&mut next).insert("resourceVersion".into(), json!(""));
        Ok(Desire::Update(next))
    })
    .await?;
    match result {
        Updated::Done(_) => Ok(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        })),
        Updated::Create => Err(ApiError::not_found("", "pods", &name)),
    }
}

fn set_scheduled_condition(pod: &mut Value) {
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": meta::now(),
    });
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    let conditions = &mut pod["status"]["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c["type"] != "PodScheduled");
        list.push(condition);
    }
}

/// How much of a kubelet's error answer is read into the Status (upstream's limit).
const KUBELET_ERROR_LIMIT: usize = 50_000;

/// GET pods/NAME/log: the container's log from the kubelet of the pod's node, streamed
/// as text while the kubelet sends it (upstream's LogREST and LogLocation).
pub async fn logs(req: &Request<'_>) -> Result<Response, ApiError> {
    let name = req.name()?.to_string();
    let (container, options) = log_options(req.query, &name)?;
    let pod = super::read::get(req).await?;
    let container = log_container(&pod, container)?;
    let node_name = meta::str_field(&pod, "/spec/nodeName").unwrap_or("");
    if node_name.is_empty() {
        // Nothing ran yet, so there is no log: upstream answers 204 with no body.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let nodes = api::registry::find("", "v1", "nodes")
        .ok_or_else(|| ApiError::Internal("the nodes resource is not registered".into()))?;
    let node = req
        .objects()
        .get(nodes, &nodes.key(None, node_name), node_name)
        .await?
        .object;
    let endpoint = Endpoint::of_node(&node).map_err(|e| ApiError::Internal(e.to_string()))?;
    let path =
        kubelet_client::container_logs_path(meta::namespace(&pod), &name, container, &options);
    let reply = kubelet_client::get(&endpoint, &path)
        .await
        .map_err(|e| match e {
            kubelet_client::Error::Timeout { .. } => ApiError::Timeout(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        })?;
    // Upstream's GenericHttpResponseChecker: 200–206 stream through, the rest are errors.
    if !(200..=206).contains(&reply.status.as_u16()) {
        let status = reply.status;
        return Err(kubelet_error(
            status,
            reply.text(KUBELET_ERROR_LIMIT).await,
            &name,
        ));
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(reply.body)
        .map_err(|e| ApiError::Internal(format!("building the log response: {e}")))
}

/// PodLogOptions from the query, validated as upstream (`ValidatePodLogOptions`): the
/// container asked for, and the options for the kubelet.
fn log_options<'q>(
    query: &'q HashMap<String, String>,
    name: &str,
) -> Result<(Option<&'q str>, LogOptions), ApiError> {
    let get = |key: &str| query.get(key).map(String::as_str);
    // Upstream's query booleans: only absence, "0" and "false" are false.
    let flag = |key: &str| get(key).is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let number = |key: &str| {
        get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest(format!("{key}: invalid value {v:?}: not an integer"))
                })
            })
            .transpose()
    };
    let since_time = match get("sinceTime").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => Some(
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>(json!(
                text
            ))
            .map_err(|_| {
                ApiError::BadRequest(format!("sinceTime: invalid value {text:?}: not RFC 3339"))
            })?
            .0
            .as_second(),
        ),
    };
    let mut options = LogOptions {
        follow: flag("follow"),
        previous: flag("previous"),
        timestamps: flag("timestamps"),
        since_seconds: number("sinceSeconds")?,
        tail_lines: number("tailLines")?,
        limit_bytes: number("limitBytes")?,
    };
    let invalid = |field: &str, value: i64, detail: &str| FieldError {
        kind: FieldErrorKind::Invalid,
        field: field.into(),
        value: Some(value.to_string()),
        detail: detail.into(),
    };
    let mut causes = Vec::new();
    if let Some(n) = options.tail_lines.filter(|n| *n < 0) {
        causes.push(invalid(
            "tailLines",
            n,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(n) = options.limit_bytes.filter(|n| *n < 1) {
        causes.push(invalid("limitBytes", n, "must be greater than 0"));
    }
    match (options.since_seconds, since_time) {
        (Some(_), Some(_)) => causes.push(FieldError {
            kind: FieldErrorKind::Forbidden,
            field: String::new(),
            value: None,
            detail: "at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
        }),
        (Some(n), None) if n < 1 => {
            causes.push(invalid("sinceSeconds", n, "must be greater than 0"))
        }
        // mast's kubelet takes sinceSeconds only: a time becomes the seconds since it,
        // rounded up so no line at the boundary is lost (one from the future: none).
        (None, Some(at)) => {
            let now = meta::unix_now();
            options.since_seconds = Some(if at > now { 0 } else { now - at + 1 });
        }
        _ => {}
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", name, causes));
    }
    Ok((get("container").filter(|c| !c.is_empty()), options))
}

/// The container whose log is asked for: the named one, which must be in the pod
/// (init, app or ephemeral), or the pod's only container (upstream's validateContainer).
fn log_container<'p>(pod: &'p Value, asked: Option<&'p str>) -> Result<&'p str, ApiError> {
    let name = meta::name(pod);
    let names_in = |list: &str| -> Vec<&'p str> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect()
    };
    let all: Vec<&str> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| names_in(list))
        .collect();
    if let Some(asked) = asked {
        return if all.contains(&asked) {
            Ok(asked)
        } else {
            Err(ApiError::BadRequest(format!(
                "container {asked} is not valid for pod {name}"
            )))
        };
    }
    match names_in("containers").as_slice() {
        [only] => Ok(*only),
        [] => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {name}"
        ))),
        _ => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// A kubelet's error answer as the Status upstream makes of it: 400 and 500 carry the
/// kubelet's text; other codes get upstream's generic words about `pods/log NAME`.
fn kubelet_error(status: StatusCode, body: String, name: &str) -> ApiError {
    let about = format!("( pods/log {name})");
    match status.as_u16() {
        400 => ApiError::BadRequest(body),
        500 => ApiError::Internal(format!("Internal error occurred: {body}")),
        403 => ApiError::Forbidden {
            message: body,
            details: Some(Details::new(name, "", "pods/log")),
        },
        404 => ApiError::NotFound {
            message: format!("the server could not find the requested resource {about}"),
            details: Some(Details::new(name, "", "pods/log")),
        },
        503 => ApiError::Unavailable(format!(
            "the server is currently unable to handle the request {about}"
        )),
        504 => ApiError::Timeout(format!(
            "the server was unable to return a response in the time allotted, but may still be processing the request {about}"
        )),
        code => ApiError::Internal(format!(
            "an error on the server ({body:?}) has prevented the request from succeeding (status {code}) {about}"
        )),
    }
}
