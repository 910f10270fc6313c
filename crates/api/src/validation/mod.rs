//! Validation: upstream's per-kind rules, reported as upstream's field errors so the API
//! server can answer 422 with the same causes and messages a real cluster gives.
//!
//! Layout:
//! - [`errors`]: [`FieldError`] and its rendering; [`path`]: field paths.
//! - [`formats`]: string format checks (DNS names, label keys, ports, …);
//!   [`quantity`]: resource quantities.
//! - [`decode`]: decoding into the `k8s-openapi` types, reporting wrongly typed fields.
//! - [`meta`]: object metadata, shared by every kind.
//! - per kind: [`pod`] (pods and pod templates), [`apps`] (Deployment, ReplicaSet),
//!   [`service`], [`endpoints`] (Endpoints, EndpointSlice), [`config`] (ConfigMap,
//!   Secret), [`cluster`] (Namespace, Node, ServiceAccount, Lease, Event).
//!
//! Objects are expected to have been defaulted (see `crate::defaults`) before they are
//! validated, as upstream defaults on decode: fields that defaulting always fills (a
//! container's `imagePullPolicy`, a pod's `restartPolicy`, …) are required here.

pub mod apps;
pub mod cluster;
pub mod config;
pub mod decode;
pub mod endpoints;
pub mod errors;
pub mod formats;
pub mod meta;
pub mod path;
pub mod pod;
pub mod quantity;
pub mod service;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use errors::{BadValue, FieldError, FieldErrorKind};
pub use path::Path;

/// Decodes the object (and the old one, on update), runs `create` or `update`, and puts
/// decoding errors first. A check that reports on a field that already failed to decode
/// is dropped: it would only describe the placeholder left there.
fn run<T: DeserializeOwned>(
    object: &Value,
    old: Option<&Value>,
    create: impl Fn(&T, &Value) -> Vec<FieldError>,
    update: impl Fn(&T, &Value, &T) -> Vec<FieldError>,
) -> Vec<FieldError> {
    let (typed, mut errs) = decode::decode::<T>(object);
    let Some(typed) = typed else {
        return errs;
    };
    let old_typed = old.and_then(|o| decode::decode::<T>(o).0);
    let checks = match &old_typed {
        Some(old_typed) => update(&typed, object, old_typed),
        None => create(&typed, object),
    };
    let undecodable: BTreeSet<String> = errs.iter().map(|e| e.field.clone()).collect();
    errs.extend(
        checks
            .into_iter()
            .filter(|e| !undecodable.contains(&e.field)),
    );
    errs
}

/// Kinds with nothing to check beyond their metadata.
fn meta_only<T: DeserializeOwned>(
    object: &Value,
    old: Option<&Value>,
    rules: meta::MetaRules,
    metadata: fn(&T) -> &ObjectMeta,
) -> Vec<FieldError> {
    run::<T>(
        object,
        old,
        |t, _| meta::object_meta(metadata(t), &rules),
        |t, _, o| {
            let mut errs = meta::object_meta_update(metadata(t), metadata(o));
            errs.extend(meta::object_meta(metadata(t), &rules));
            errs
        },
    )
}

/// Adds the metadata update rules in front of a kind's create checks.
fn with_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    checks: Vec<FieldError>,
) -> Vec<FieldError> {
    let mut errs = meta::object_meta_update(new, old);
    errs.extend(checks);
    errs
}

/// Any object: only `metadata` is looked at.
#[derive(Deserialize)]
struct Generic {
    #[serde(default)]
    metadata: ObjectMeta,
}

/// The checks the REST layer applies to every object, for kinds without their own.
const GENERIC_META: meta::MetaRules = meta::MetaRules {
    name: formats::name_is_path_segment,
    namespaced: None,
    core_finalizers: false,
};

/// Removes repeated errors, keeping the first (upstream's aggregate does the same).
fn dedupe(errs: Vec<FieldError>) -> Vec<FieldError> {
    let mut seen = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    seen
}

/// Validates an object of `kind` (`Pod`, `Deployment`, …) about to be stored; `old` is
/// the stored object on update. Returns every problem found.
pub fn validate(kind: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let errs = match kind {
        "Namespace" => run::<Namespace>(
            object,
            old,
            |n, _| cluster::namespace(n),
            |n, _, o| with_meta_update(&n.metadata, &o.metadata, cluster::namespace(n)),
        ),
        "Node" => meta_only::<Node>(object, old, cluster::NODE_META, |n| &n.metadata),
        "ServiceAccount" => {
            meta_only::<ServiceAccount>(object, old, cluster::SUBDOMAIN_META, |s| &s.metadata)
        }
        "Pod" => run::<Pod>(object, old, pod::pod_create, pod::pod_update),
        "Service" => run::<Service>(
            object,
            old,
            |s, _| service::service(s),
            |s, _, o| service::service_update(s, o),
        ),
        "Endpoints" => run::<Endpoints>(
            object,
            old,
            |e, _| endpoints::endpoints(e),
            |e, _, o| with_meta_update(&e.metadata, &o.metadata, endpoints::endpoints(e)),
        ),
        "EndpointSlice" => run::<EndpointSlice>(
            object,
            old,
            |s, _| endpoints::endpoint_slice(s),
            |s, _, o| {
                let mut errs =
                    with_meta_update(&s.metadata, &o.metadata, endpoints::endpoint_slice(s));
                if s.address_type != o.address_type {
                    errs.push(FieldError::invalid(
                        &Path::new("addressType"),
                        &s.address_type,
                        meta::FIELD_IMMUTABLE,
                    ));
                }
                errs
            },
        ),
        "ConfigMap" => run::<ConfigMap>(
            object,
            old,
            |c, _| config::config_map(c),
            |c, _, o| config::config_map_update(c, o),
        ),
        "Secret" => run::<Secret>(
            object,
            old,
            |s, _| config::secret(s),
            |s, _, o| config::secret_update(s, o),
        ),
        "Event" => run::<Event>(
            object,
            old,
            |e, _| cluster::event(e),
            |e, _, o| with_meta_update(&e.metadata, &o.metadata, cluster::event(e)),
        ),
        "Lease" => run::<Lease>(
            object,
            old,
            |l, _| cluster::lease(l),
            |l, _, o| with_meta_update(&l.metadata, &o.metadata, cluster::lease(l)),
        ),
        "Deployment" => run::<Deployment>(object, old, apps::deployment, |d, raw, o| {
            let mut errs = with_meta_update(&d.metadata, &o.metadata, apps::deployment(d, raw));
            errs.extend(apps::selector_unchanged(&d.spec.selector, &o.spec.selector));
            errs
        }),
        "ReplicaSet" => run::<ReplicaSet>(object, old, apps::replica_set, |r, raw, o| {
            let mut errs = with_meta_update(&r.metadata, &o.metadata, apps::replica_set(r, raw));
            errs.extend(apps::selector_unchanged(&r.spec.selector, &o.spec.selector));
            errs
        }),
        _ => meta_only::<Generic>(object, old, GENERIC_META, |g| &g.metadata),
    };
    dedupe(errs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(kind: &str, object: Value, old: Option<Value>) -> Vec<String> {
        validate(kind, &object, old.as_ref())
            .iter()
            .map(FieldError::message)
            .collect()
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx",
                    "imagePullPolicy": "Always", "terminationMessagePolicy": "File"
                }],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "terminationGracePeriodSeconds": 30
            }
        })
    }

    #[test]
    fn dispatches_by_kind() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("Pod", pod(), vec![]),
            (
                "Pod",
                json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": ""}]}}),
                vec![
                    "spec.terminationGracePeriodSeconds: Required value",
                    "spec.containers[0].image: Required value",
                    "spec.containers[0].terminationMessagePolicy: Required value",
                    "spec.containers[0].imagePullPolicy: Required value",
                    "spec.restartPolicy: Required value",
                    "spec.dnsPolicy: Required value",
                ],
            ),
            (
                "ConfigMap",
                json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
                vec![],
            ),
            (
                "ConfigMap",
                json!({"metadata": {"name": "Bad_Name"}}),
                vec![
                    "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
            (
                "Node",
                json!({"metadata": {"name": "node-1.example"}}),
                vec![],
            ),
            (
                "ServiceAccount",
                json!({"metadata": {}}),
                vec!["metadata.name: Required value: name or generateName is required"],
            ),
            ("Widget", json!({"metadata": {"name": "Any Name"}}), vec![]),
            (
                "Widget",
                json!({"metadata": {"name": ".."}}),
                vec!["metadata.name: Invalid value: \"..\": may not be '..'"],
            ),
        ];
        for (kind, object, want) in cases {
            assert_eq!(
                messages(kind, object.clone(), None),
                want,
                "{kind}: {object}"
            );
        }
    }

    #[test]
    fn undecodable_fields_are_reported_once() {
        let mut object = pod();
        object["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": "http", "protocol": "TCP"}]);
        assert_eq!(
            messages("Pod", object, None),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: \"http\": invalid type: string \"http\", expected i32"
            ]
        );
    }

    #[test]
    fn updates_use_the_old_object() {
        let mut changed = pod();
        changed["spec"]["restartPolicy"] = json!("Never");
        let got = messages("Pod", changed, Some(pod()));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("spec: Forbidden: pod updates may not change fields other than")
        );
        assert!(
            got[0].ends_with("spec.restartPolicy: \"Always\" -> \"Never\""),
            "{got:?}"
        );

        let mut renamed = pod();
        renamed["metadata"]["name"] = json!("other");
        assert_eq!(
            messages("Pod", renamed, Some(pod())),
            vec!["metadata.name: Invalid value: \"other\": field is immutable"]
        );

        let cm = json!({"metadata": {"name": "c"}});
        assert!(messages("ConfigMap", cm.clone(), Some(cm)).is_empty());
    }

    #[test]
    fn duplicates_are_removed() {
        let p = Path::new("a");
        let errs = vec![
            FieldError::required(&p, ""),
            FieldError::required(&p, ""),
            FieldError::forbidden(&p, "x"),
        ];
        assert_eq!(dedupe(errs).len(), 2);
    }
}
