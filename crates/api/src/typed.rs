//! The typed round trip: an object is decoded into its `k8s-openapi` type and encoded
//! again before it is stored. This rejects wrongly typed fields, drops unknown ones
//! (upstream's default), and keeps stored objects in one canonical shape.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;

/// Decodes `object` as `kind` and encodes it back. The error says what did not decode.
pub fn normalize(kind: &str, object: Value) -> Result<Value, String> {
    match kind {
        "Namespace" => round_trip::<core::Namespace>(object),
        "Node" => round_trip::<core::Node>(object),
        "Pod" => round_trip::<core::Pod>(object),
        "Service" => round_trip::<core::Service>(object),
        "Endpoints" => round_trip::<core::Endpoints>(object),
        "ConfigMap" => round_trip::<core::ConfigMap>(object),
        "Secret" => round_trip::<core::Secret>(object),
        "ServiceAccount" => round_trip::<core::ServiceAccount>(object),
        "Event" => round_trip::<core::Event>(object),
        "Deployment" => round_trip::<apps::Deployment>(object),
        "ReplicaSet" => round_trip::<apps::ReplicaSet>(object),
        "Lease" => round_trip::<coordination::Lease>(object),
        "EndpointSlice" => round_trip::<discovery::EndpointSlice>(object),
        "Binding" => round_trip::<core::Binding>(object),
        "Scale" => round_trip::<k8s_openapi::api::autoscaling::v1::Scale>(object),
        other => Err(format!("no type known for kind {other}")),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(object: Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(object).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// The fields of `input` that the typed round trip dropped: fields the type does not
/// have. Paths as upstream prints them (`spec.containers[0].bogus`). Nulls are not
/// fields (the round trip drops them as absent values).
pub fn unknown_fields(input: &Value, normalized: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(input, normalized, &mut String::new(), &mut out);
    out
}

fn walk(input: &Value, normalized: &Value, path: &mut String, out: &mut Vec<String>) {
    match (input, normalized) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match b.get(key) {
                    Some(kept) => walk(value, kept, path, out),
                    None if !value.is_null() => out.push(path.clone()),
                    None => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (value, kept)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(value, kept, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_the_fields_the_type_does_not_have() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": null, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "Always"}]},
        });
        let normalized = normalize("Pod", pod.clone()).expect("pod");
        assert_eq!(
            unknown_fields(&pod, &normalized),
            ["metadata.bogus", "spec.containers[0].imagePullPolicyy"]
        );
    }

    #[test]
    fn drops_unknown_fields_and_rejects_wrong_types() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}, "bogus": 1});
        let out = normalize("ConfigMap", cm).expect("configmap");
        assert!(out.get("bogus").is_none());
        assert_eq!(out["data"]["k"], "v");
        let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": "three"}});
        assert!(normalize("Deployment", bad).is_err());
        let wrong_kind = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}});
        assert!(normalize("ConfigMap", wrong_kind).is_err());
    }
}
