//! `/scale` of deployments and replicasets, and `pods/binding`.

use api::patch::PatchType;
use api::selectors::LabelSelector;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::handlers::Request;
use crate::handlers::write::{self, Desire, Updated};
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

/// GET pods/NAME/log: the route exists so clients get a clear answer, but logs live on
/// the node and mast's kubelet does not serve them yet. Returns the error to send.
pub async fn logs(req: &Request<'_>) -> Result<ApiError, ApiError> {
    let pod = super::read::get(req).await?;
    let name = meta::name(&pod);
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let why = if node.is_empty() {
        format!("pod \"{name}\" is not scheduled to a node yet")
    } else {
        format!(
            "logs of pod \"{name}\" live on node \"{node}\", and mast's kubelet does not serve them yet"
        )
    };
    Ok(ApiError::BadRequest(why))
}
