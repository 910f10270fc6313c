//! OpenAPI v3 schemas from the `k8s-openapi` types (their `schemars` schemas carry
//! types, formats and descriptions), with the extensions kubectl reads that those
//! schemas lack: `x-kubernetes-group-version-kind` on each served kind, so that
//! `kubectl explain` and kubectl's validation find their type.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::registry;

/// Adds the schema of `kind` (and everything it refers to) to the generator; returns
/// the schema's name, or None for a kind without a type here.
fn add_kind(generator: &mut SchemaGenerator, kind: &str) -> Option<String> {
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<String> {
        generator.subschema_for::<T>();
        Some(T::schema_name().into_owned())
    }
    match kind {
        "Namespace" => add::<core::Namespace>(generator),
        "Node" => add::<core::Node>(generator),
        "Pod" => add::<core::Pod>(generator),
        "Service" => add::<core::Service>(generator),
        "Endpoints" => add::<core::Endpoints>(generator),
        "ConfigMap" => add::<core::ConfigMap>(generator),
        "Secret" => add::<core::Secret>(generator),
        "ServiceAccount" => add::<core::ServiceAccount>(generator),
        "Event" => add::<core::Event>(generator),
        "Deployment" => add::<apps::Deployment>(generator),
        "ReplicaSet" => add::<apps::ReplicaSet>(generator),
        "Lease" => add::<coordination::Lease>(generator),
        "EndpointSlice" => add::<discovery::EndpointSlice>(generator),
        _ => None,
    }
}

/// The `components.schemas` of one group version's document: every served kind of
/// it, the types they use, and the GVK extension on each kind.
pub fn schemas(group: &str, version: &str) -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut kinds = Vec::new();
    for resource in registry::in_group_version(group, version) {
        if let Some(name) = add_kind(&mut generator, resource.kind) {
            kinds.push((name, resource));
        }
    }
    // The subresources answer with these.
    generator.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();
    generator.subschema_for::<core::Binding>();
    let mut schemas = generator.take_definitions(true);
    add_patch_extensions(&mut schemas);
    for (name, resource) in kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": resource.group, "version": resource.version, "kind": resource.kind}]),
            );
        }
    }
    schemas
}

/// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` on the list fields
/// that strategic merge patch merges, from the patch module's table: kubectl reads
/// them to compute `kubectl apply`'s patches.
fn add_patch_extensions(schemas: &mut Map<String, Value>) {
    for (name, schema) in schemas.iter_mut() {
        let Some(type_name) = name.rsplit('.').next() else {
            continue;
        };
        let Some(def) = crate::patch::merge_keys::type_def(type_name) else {
            continue;
        };
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for field in def.fields {
            let Some(Value::Object(property)) = properties.get_mut(field.name) else {
                continue;
            };
            if let Some(strategy) = field.patch_strategy() {
                property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
            }
            if let Some(key) = field.merge_key() {
                property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_carry_their_group_version_kind_and_refs_resolve() {
        let schemas = schemas("apps", "v1");
        let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        // Every $ref names a schema in the same document.
        let text = serde_json::to_string(&schemas).expect("json");
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or("");
            assert!(schemas.contains_key(name), "dangling ref {name}");
        }
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        let core = super::schemas("", "v1");
        assert!(core.contains_key("io.k8s.api.core.v1.Pod"));
    }
}
