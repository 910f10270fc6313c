//! Container environment: `env` (names and `valueFrom` sources) and `envFrom`, as
//! upstream's `ValidateEnv` and `ValidateEnvFrom`.

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, ObjectFieldSelector, ResourceFieldSelector,
};

use crate::validation::errors::FieldError;
use crate::validation::formats;
use crate::validation::path::Path;
use crate::validation::quantity::Quantity;

/// Pod fields the downward API may expose through env (sorted, as upstream lists them).
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Fields upstream's `ConvertDownwardAPIFieldLabel` knows for pods.
const KNOWN_FIELD_LABELS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Container resources the downward API may expose (sorted).
pub const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Upstream's `SplitMaybeSubscriptedPath`: `metadata.labels['app']`.
pub fn split_subscript(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

/// Upstream's `ConvertDownwardAPIFieldLabel` for pods: the field path, or why not.
fn convert_field_label(version: &str, label: &str) -> Result<String, String> {
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    if let Some((path, _)) = split_subscript(label) {
        return match path {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_string()),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    if label == "spec.host" {
        return Ok("spec.nodeName".to_string());
    }
    if KNOWN_FIELD_LABELS.contains(&label) {
        Ok(label.to_string())
    } else {
        Err(format!("field label not supported: {label}"))
    }
}

/// Upstream's `validateObjectFieldSelector`.
pub fn object_field_selector(
    fs: &ObjectFieldSelector,
    allowed: &[&str],
    path: &Path,
) -> Vec<FieldError> {
    let version = fs.api_version.as_deref().unwrap_or("");
    if version.is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    if fs.field_path.is_empty() {
        return vec![FieldError::required(&path.child("fieldPath"), "")];
    }
    let internal = match convert_field_label(version, &fs.field_path) {
        Ok(p) => p,
        Err(e) => {
            return vec![FieldError::invalid(
                &path.child("fieldPath"),
                &fs.field_path,
                &format!("error converting fieldPath: {e}"),
            )];
        }
    };
    if let Some((field, subscript)) = split_subscript(&internal) {
        let key = if field == "metadata.annotations" {
            subscript.to_lowercase()
        } else {
            subscript.to_string()
        };
        return formats::is_qualified_name(&key)
            .into_iter()
            .map(|msg| FieldError::invalid(path, key.as_str(), &msg))
            .collect();
    }
    if !allowed.contains(&internal.as_str()) {
        return vec![FieldError::not_supported(
            &path.child("fieldPath"),
            internal.as_str(),
            allowed,
        )];
    }
    Vec::new()
}

/// Upstream's `validateContainerResourceFieldSelector`; `volume` selects the downward
/// API volume flavour, which also requires a container name.
pub fn resource_field_selector(
    fs: &ResourceFieldSelector,
    volume: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let container = fs.container_name.as_deref().unwrap_or("");
    if volume && container.is_empty() {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if fs.resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&fs.resource.as_str())
        && !fs.resource.starts_with("requests.hugepages-")
        && !fs.resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            fs.resource.as_str(),
            RESOURCE_FIELD_PATHS,
        ));
    }
    errs.extend(divisor(fs, path));
    errs
}

/// Upstream's `validateContainerResourceDivisor`.
fn divisor(fs: &ResourceFieldSelector, path: &Path) -> Vec<FieldError> {
    let Some(raw) = &fs.divisor else {
        return Vec::new();
    };
    let Ok(q) = Quantity::parse(&raw.0) else {
        return vec![FieldError::invalid(
            &path.child("divisor"),
            &raw.0,
            crate::validation::quantity::ERR_FORMAT_WRONG,
        )];
    };
    if q.is_zero() {
        return Vec::new();
    }
    let canonical = q.to_string();
    let memory_like = [
        "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
    ];
    let list = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei";
    let resource = fs.resource.as_str();
    let problem = match resource {
        "limits.cpu" | "requests.cpu" if !["1m", "1"].contains(&canonical.as_str()) => {
            Some("only divisor's values 1m and 1 are supported with the cpu resource".to_string())
        }
        "limits.memory" | "requests.memory" if !memory_like.contains(&canonical.as_str()) => Some(
            format!("only divisor's values {list} are supported with the memory resource"),
        ),
        "limits.ephemeral-storage" | "requests.ephemeral-storage"
            if !memory_like.contains(&canonical.as_str()) =>
        {
            Some(format!(
                "only divisor's values {list} are supported with the local ephemeral storage resource"
            ))
        }
        r if (r.starts_with("requests.hugepages-") || r.starts_with("limits.hugepages-"))
            && !memory_like.contains(&canonical.as_str()) =>
        {
            Some(format!(
                "only divisor's values {list} are supported with the hugepages resource"
            ))
        }
        _ => None,
    };
    problem
        .map(|msg| vec![FieldError::invalid(&path.child("divisor"), resource, &msg)])
        .unwrap_or_default()
}

/// Upstream's `ValidateEnv`.
pub fn env(vars: Option<&Vec<EnvVar>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, var) in vars.into_iter().flatten().enumerate() {
        let idx = path.index(i);
        if var.name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        } else {
            for msg in formats::is_env_var_name(&var.name) {
                errs.push(FieldError::invalid(&idx.child("name"), &var.name, &msg));
            }
        }
        errs.extend(value_from(var, &idx.child("valueFrom")));
    }
    errs
}

/// Upstream's `validateEnvVarValueFrom`.
fn value_from(var: &EnvVar, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(from) = &var.value_from else {
        return errs;
    };
    let mut sources = 0;
    if let Some(fs) = &from.field_ref {
        sources += 1;
        errs.extend(object_field_selector(
            fs,
            ENV_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
    }
    if let Some(rs) = &from.resource_field_ref {
        sources += 1;
        errs.extend(resource_field_selector(
            rs,
            false,
            &path.child("resourceFieldRef"),
        ));
    }
    if let Some(cm) = &from.config_map_key_ref {
        sources += 1;
        errs.extend(key_selector(
            &cm.name,
            &cm.key,
            &path.child("configMapKeyRef"),
        ));
    }
    if let Some(secret) = &from.secret_key_ref {
        sources += 1;
        errs.extend(key_selector(
            &secret.name,
            &secret.key,
            &path.child("secretKeyRef"),
        ));
    }
    if from.file_key_ref.is_some() {
        sources += 1;
    }
    let has_value = var.value.as_deref().is_some_and(|v| !v.is_empty());
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if has_value {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// Upstream's `validateConfigMapKeySelector` / `validateSecretKeySelector`.
fn key_selector(name: &str, key: &str, path: &Path) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = formats::name_is_dns_subdomain(name, false)
        .into_iter()
        .map(|msg| FieldError::invalid(&path.child("name"), name, &msg))
        .collect();
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for msg in formats::is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.child("key"), key, &msg));
        }
    }
    errs
}

/// Upstream's `ValidateEnvFrom`.
pub fn env_from(sources: Option<&Vec<EnvFromSource>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, source) in sources.into_iter().flatten().enumerate() {
        let idx = path.index(i);
        if let Some(prefix) = source.prefix.as_deref().filter(|p| !p.is_empty()) {
            for msg in formats::is_env_var_name(prefix) {
                errs.push(FieldError::invalid(&idx.child("prefix"), prefix, &msg));
            }
        }
        let mut count = 0;
        if let Some(cm) = &source.config_map_ref {
            count += 1;
            errs.extend(env_source_name(&cm.name, &idx.child("configMapRef")));
        }
        if let Some(secret) = &source.secret_ref {
            count += 1;
            errs.extend(env_source_name(&secret.name, &idx.child("secretRef")));
        }
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn env_source_name(name: &str, path: &Path) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(&path.child("name"), "")];
    }
    formats::name_is_dns_subdomain(name, true)
        .into_iter()
        .map(|msg| FieldError::invalid(&path.child("name"), name, &msg))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check_env(v: serde_json::Value) -> Vec<String> {
        let vars: Vec<EnvVar> = serde_json::from_value(v).expect("env");
        env(Some(&vars), &Path::new("env"))
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn env_cases() {
        let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
            (json!([{"name": "A", "value": "1"}]), vec![]),
            (json!([{"name": ""}]), vec!["env[0].name: Required value"]),
            (
                json!([{"name": "A=B"}]),
                vec![
                    "env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                ],
            ),
            (
                json!([{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}]),
                vec![],
            ),
            (
                json!([{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['app']"}}}]),
                vec![],
            ),
            (
                json!([{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.phase"}}}]),
                vec![
                    "env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"status.phase\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
                ],
            ),
            (
                json!([{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.bogus"}}}]),
                vec![
                    "env[0].valueFrom.fieldRef.fieldPath: Invalid value: \"spec.bogus\": error converting fieldPath: field label not supported: spec.bogus",
                ],
            ),
            (
                json!([{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
                vec!["env[0].valueFrom.fieldRef.apiVersion: Required value"],
            ),
            (
                json!([{"name": "N", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
                vec![
                    "env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
                ],
            ),
            (
                json!([{"name": "N", "valueFrom": {}}]),
                vec![
                    "env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                ],
            ),
            (
                json!([{"name": "N", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "bad/key"}}}]),
                vec![
                    "env[0].valueFrom.configMapKeyRef.key: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ],
            ),
            (
                json!([{"name": "N", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]),
                vec![
                    "env[0].valueFrom.resourceFieldRef.resource: Unsupported value: \"limits.gpu\": supported values: \"limits.cpu\", \"limits.ephemeral-storage\", \"limits.memory\", \"requests.cpu\", \"requests.ephemeral-storage\", \"requests.memory\"",
                ],
            ),
            (
                json!([{"name": "N", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}}}]),
                vec![
                    "env[0].valueFrom.resourceFieldRef.divisor: Invalid value: \"limits.cpu\": only divisor's values 1m and 1 are supported with the cpu resource",
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check_env(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn env_from_cases() {
        let sources: Vec<EnvFromSource> = serde_json::from_value(json!([
            {"configMapRef": {"name": "cm"}},
            {},
            {"prefix": "P=", "secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}
        ]))
        .expect("envFrom");
        let got: Vec<String> = env_from(Some(&sources), &Path::new("envFrom"))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "envFrom: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`",
                "envFrom[2].prefix: Invalid value: \"P=\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                "envFrom: Invalid value: \"\": may not have more than one field specified at a time",
            ]
        );
    }

    #[test]
    fn subscripts() {
        assert_eq!(
            split_subscript("metadata.labels['a']"),
            Some(("metadata.labels", "a"))
        );
        assert_eq!(split_subscript("metadata.labels"), None);
        assert_eq!(split_subscript("['a']"), None);
    }
}
