//! Defaulting, as upstream's core/v1, apps/v1 and discovery/v1 defaulters: absent fields
//! get upstream's values; present ones are never changed.
//!
//! Each kind with defaults is decoded into its `k8s-openapi` type, filled in, and
//! encoded back (so the output has the canonical `k8s-openapi` shape). An object that
//! does not decode is left untouched for validation to report. Kinds without defaults
//! (ConfigMap, ServiceAccount, Event, Lease, unknown kinds) are not touched at all.
//!
//! Layout: [`pod`] (pod specs, containers, probes, volumes), [`apps`] (Deployment,
//! ReplicaSet), [`service`] (Service, Endpoints, EndpointSlice), [`cluster`]
//! (Namespace, Node, Secret).

pub mod apps;
pub mod cluster;
pub mod pod;
pub mod service;

use k8s_openapi::ByteString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::validation::decode::strip_nulls;

/// Decodes `object` as `T`, applies `f`, and writes the result back. `keep_absent` lists
/// JSON pointers whose absence means something to validation (an absent selector is
/// "required", an empty one "invalid"); the typed form would write them out as empty
/// values, so they are removed again when the input lacked them.
fn round_trip<T: DeserializeOwned + Serialize>(
    object: &mut Value,
    keep_absent: &[&str],
    f: impl FnOnce(&mut T),
) {
    let mut input = object.clone();
    strip_nulls(&mut input);
    let api_version = input.get("apiVersion").cloned();
    let kind = input.get("kind").cloned();
    if let Value::Object(map) = &mut input {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let Ok(mut typed) = serde_json::from_value::<T>(input.clone()) else {
        return;
    };
    f(&mut typed);
    let Ok(mut out) = serde_json::to_value(&typed) else {
        return;
    };
    for pointer in keep_absent {
        if input.pointer(pointer).is_none() {
            remove_pointer(&mut out, pointer);
        }
    }
    if let Value::Object(map) = &mut out {
        // The caller decides the type; keep what it sent (or did not send).
        map.remove("apiVersion");
        map.remove("kind");
        let mut front = serde_json::Map::new();
        if let Some(v) = api_version {
            front.insert("apiVersion".to_string(), v);
        }
        if let Some(v) = kind {
            front.insert("kind".to_string(), v);
        }
        front.append(map);
        *map = front;
    }
    *object = out;
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(map)) = value.pointer_mut(parent) {
        map.remove(key);
    }
}

/// Fills in upstream's defaults for an object of `kind`.
pub fn apply(kind: &str, object: &mut Value) {
    use k8s_openapi::api::apps::v1 as apps_v1;
    use k8s_openapi::api::core::v1 as core;
    use k8s_openapi::api::discovery::v1 as discovery;
    match kind {
        "Pod" => round_trip::<core::Pod>(object, &[], pod::pod),
        "Deployment" => {
            round_trip::<apps_v1::Deployment>(object, &["/spec/selector"], apps::deployment);
        }
        "ReplicaSet" => {
            round_trip::<apps_v1::ReplicaSet>(object, &["/spec/selector"], apps::replica_set);
        }
        "Service" => round_trip::<core::Service>(object, &[], service::service),
        "Endpoints" => round_trip::<core::Endpoints>(object, &[], service::endpoints),
        "EndpointSlice" => {
            round_trip::<discovery::EndpointSlice>(object, &[], service::endpoint_slice);
        }
        "Namespace" => round_trip::<core::Namespace>(object, &[], cluster::namespace),
        "Node" => round_trip::<core::Node>(object, &[], cluster::node),
        "Secret" => round_trip::<core::Secret>(object, &[], cluster::secret),
        _ => {}
    }
}

/// Folds a Secret's write-only `stringData` into `data` (base64, overriding keys of the
/// same name) and drops `stringData`, as upstream's conversion does when a Secret is
/// decoded. This overwrites, so it is not part of [`apply`]; the API server calls it for
/// Secrets on create and update.
pub fn merge_secret_string_data(object: &mut Value) {
    let Some(Value::Object(map)) = object.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    let data = object.as_object_mut().map(|m| {
        m.entry("data")
            .or_insert_with(|| Value::Object(Default::default()))
    });
    let Some(Value::Object(data)) = data else {
        return;
    };
    for (k, v) in map {
        if let Value::String(s) = v
            && let Ok(encoded) = serde_json::to_value(ByteString(s.into_bytes()))
        {
            data.insert(k, encoded);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn applies_by_kind() {
        let cases: Vec<(&str, Value, &str, Value)> = vec![
            (
                "Pod",
                json!({"spec": {"containers": [{"name": "c", "image": "x"}]}}),
                "/spec/restartPolicy",
                json!("Always"),
            ),
            (
                "Secret",
                json!({"metadata": {"name": "s"}}),
                "/type",
                json!("Opaque"),
            ),
            (
                "Service",
                json!({"spec": {"ports": [{"port": 80}]}}),
                "/spec/ports/0/targetPort",
                json!(80),
            ),
            (
                "Endpoints",
                json!({"subsets": [{"ports": [{"port": 1}]}]}),
                "/subsets/0/ports/0/protocol",
                json!("TCP"),
            ),
            (
                "Namespace",
                json!({"metadata": {"name": "n"}}),
                "/status/phase",
                json!("Active"),
            ),
            (
                "ReplicaSet",
                json!({"spec": {"selector": {"matchLabels": {"a": "b"}}}}),
                "/spec/replicas",
                json!(1),
            ),
        ];
        for (kind, mut object, pointer, want) in cases {
            apply(kind, &mut object);
            assert_eq!(object.pointer(pointer), Some(&want), "{kind} {pointer}");
        }
    }

    #[test]
    fn leaves_other_kinds_and_undecodable_objects_alone() {
        for (kind, object) in [
            (
                "ConfigMap",
                json!({"metadata": {"name": "c"}, "data": {"a": "b"}, "extra": 1}),
            ),
            ("Lease", json!({"metadata": {"name": "l"}})),
            ("Widget", json!({"spec": {"anything": true}})),
            ("Pod", json!({"spec": {"containers": "not a list"}})),
        ] {
            let mut out = object.clone();
            apply(kind, &mut out);
            assert_eq!(out, object, "{kind}");
        }
    }

    #[test]
    fn keeps_api_version_and_kind_as_sent() {
        let mut with = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
        apply("Secret", &mut with);
        assert_eq!(with["apiVersion"], json!("v1"));
        assert_eq!(with["kind"], json!("Secret"));
        let mut without = json!({"metadata": {"name": "s"}});
        apply("Secret", &mut without);
        assert!(without.get("apiVersion").is_none() && without.get("kind").is_none());
    }

    #[test]
    fn an_absent_selector_stays_absent() {
        let mut d =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        apply("Deployment", &mut d);
        assert!(d.pointer("/spec/selector").is_none());
        assert_eq!(d.pointer("/spec/replicas"), Some(&json!(1)));
        let mut d = json!({"spec": {"selector": {}, "template": {}}});
        apply("Deployment", &mut d);
        assert_eq!(d.pointer("/spec/selector"), Some(&json!({})));
    }

    #[test]
    fn defaults_are_idempotent() {
        let mut once = json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
        });
        apply("Deployment", &mut once);
        let mut twice = once.clone();
        apply("Deployment", &mut twice);
        assert_eq!(once, twice);
    }

    /// What kubectl and controllers send, defaulted, must pass validation untouched.
    #[test]
    fn defaulted_objects_validate_cleanly() {
        let template = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "nginx", "image": "nginx:1.25",
                "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"port": 80}},
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}
            }]}
        });
        let cases: Vec<(&str, Value)> = vec![
            (
                "Pod",
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "web", "namespace": "default", "labels": {"run": "web"}},
                       "spec": template["spec"].clone()}),
            ),
            (
                "Deployment",
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "default"},
                       "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
            ),
            (
                "ReplicaSet",
                json!({"metadata": {"name": "web-5d4f", "namespace": "default"},
                       "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}}),
            ),
            (
                "Service",
                json!({"metadata": {"name": "web", "namespace": "default"},
                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
            ),
            (
                "Service",
                json!({"metadata": {"name": "web-np", "namespace": "default"},
                       "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}}),
            ),
            (
                "Service",
                json!({"metadata": {"name": "web-lb", "namespace": "default"},
                       "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
            ),
            (
                "Service",
                json!({"metadata": {"name": "headless", "namespace": "default"}, "spec": {"clusterIP": "None"}}),
            ),
            ("Namespace", json!({"metadata": {"name": "team-a"}})),
            (
                "Node",
                json!({"metadata": {"name": "node-1"}, "status": {"capacity": {"cpu": "2"}}}),
            ),
            (
                "Secret",
                json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"password": "c2VjcmV0"}}),
            ),
            (
                "Endpoints",
                json!({"metadata": {"name": "web", "namespace": "default"},
                       "subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"port": 8080}]}]}),
            ),
            (
                "EndpointSlice",
                json!({"metadata": {"name": "web-x1", "namespace": "default"}, "addressType": "IPv4",
                       "endpoints": [{"addresses": ["10.1.0.5"]}], "ports": [{"port": 8080}]}),
            ),
        ];
        for (kind, mut object) in cases {
            apply(kind, &mut object);
            let errs: Vec<String> = crate::validation::validate(kind, &object, None)
                .iter()
                .map(crate::validation::FieldError::message)
                .collect();
            assert!(errs.is_empty(), "{kind}: {errs:#?}\n{object:#}");
        }
    }

    #[test]
    fn merges_string_data() {
        let mut s = json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "z", "c": "hi"}});
        merge_secret_string_data(&mut s);
        assert_eq!(s["data"], json!({"a": "eA==", "b": "eg==", "c": "aGk="}));
        assert!(s.get("stringData").is_none());
    }
}
