//! ConfigMaps and Secrets, as upstream's `ValidateConfigMap` and `ValidateSecret`: keys
//! are config keys, a key lives in one bag only, the total stays within 1 MiB, secrets
//! of well-known types carry their required keys, and `immutable` objects stay so.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::errors::FieldError;
use super::formats;
use super::meta::{self, FIELD_IMMUTABLE, MetaRules};
use super::path::Path;

/// How ConfigMap and Secret metadata is checked.
pub const CONFIG_META: MetaRules = MetaRules {
    name: formats::name_is_dns_subdomain,
    namespaced: Some(true),
    core_finalizers: true,
};

/// Upstream's `MaxSecretSize`, which also bounds ConfigMaps.
pub const MAX_SIZE: usize = 1024 * 1024;

fn config_key(key: &str, path: &Path) -> Vec<FieldError> {
    formats::is_config_map_key(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, &msg))
        .collect()
}

/// Upstream's `ValidateConfigMap`.
pub fn config_map(cm: &ConfigMap) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&cm.metadata, &CONFIG_META);
    let binary = cm.binary_data.clone().unwrap_or_default();
    let mut total = 0;
    for (key, value) in cm.data.iter().flatten() {
        let p = Path::new("data").key(key);
        errs.extend(config_key(key, &p));
        if binary.contains_key(key) {
            errs.push(FieldError::invalid(
                &p,
                key,
                "duplicate of key present in binaryData",
            ));
        }
        total += value.len();
    }
    for (key, value) in &binary {
        errs.extend(config_key(key, &Path::new("binaryData").key(key)));
        total += value.0.len();
    }
    if total > MAX_SIZE {
        // Upstream reports this on the whole object.
        errs.push(FieldError::too_long(&Path::new(""), MAX_SIZE));
    }
    errs
}

/// A Secret's data as upstream validates it: `stringData` merged over `data`.
fn merged_data(s: &Secret) -> BTreeMap<String, usize> {
    let mut data: BTreeMap<String, usize> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.len()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        data.insert(k.clone(), v.len());
    }
    data
}

/// Upstream's `ValidateSecret`.
pub fn secret(s: &Secret) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&s.metadata, &CONFIG_META);
    let data_path = Path::new("data");
    let data = merged_data(s);
    let mut total = 0;
    for (key, len) in &data {
        errs.extend(config_key(key, &data_path.key(key)));
        total += len;
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SIZE));
    }
    let bytes = |key: &str| -> Option<Vec<u8>> {
        if let Some(v) = s.string_data.as_ref().and_then(|d| d.get(key)) {
            return Some(v.as_bytes().to_vec());
        }
        s.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| v.0.clone())
    };
    let required = |key: &str| FieldError::required(&data_path.key(key), "");
    match s.type_.as_deref().unwrap_or("") {
        "kubernetes.io/service-account-token" => {
            let name = s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"));
            if name.is_none_or(String::is_empty) {
                errs.push(FieldError::required(
                    &Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match bytes(key) {
                None => errs.push(required(key)),
                Some(content) => {
                    let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
                        serde_json::from_slice(&content);
                    if let Err(e) = parsed {
                        errs.push(FieldError::invalid(
                            &data_path.key(key),
                            "<secret contents redacted>",
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        // Username or password may be empty, but one of them must be there.
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|len| *len == 0) => {
            errs.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(required(key));
                }
            }
        }
        _ => {}
    }
    errs
}

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// Upstream's `ValidateConfigMapUpdate` (beyond the create checks).
pub fn config_map_update(new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
    let mut errs = meta::object_meta_update(&new.metadata, &old.metadata);
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                IMMUTABLE_SET,
            ));
        }
        if new.data.clone().unwrap_or_default() != old.data.clone().unwrap_or_default() {
            errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE_SET));
        }
        if new.binary_data.clone().unwrap_or_default()
            != old.binary_data.clone().unwrap_or_default()
        {
            errs.push(FieldError::forbidden(
                &Path::new("binaryData"),
                IMMUTABLE_SET,
            ));
        }
    }
    errs.extend(config_map(new));
    errs
}

/// Upstream's `ValidateSecretUpdate` (beyond the create checks).
pub fn secret_update(new: &Secret, old: &Secret) -> Vec<FieldError> {
    let mut errs = meta::object_meta_update(&new.metadata, &old.metadata);
    let (new_type, old_type) = (
        new.type_.as_deref().unwrap_or(""),
        old.type_.as_deref().unwrap_or(""),
    );
    if new_type != old_type {
        errs.push(FieldError::invalid(
            &Path::new("type"),
            new_type,
            FIELD_IMMUTABLE,
        ));
    }
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                IMMUTABLE_SET,
            ));
        }
        if merged_data(new) != merged_data(old) || new.data != old.data {
            errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE_SET));
        }
    }
    errs.extend(secret(new));
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn cm(v: Value) -> Vec<String> {
        let c: ConfigMap = serde_json::from_value(v).expect("configmap");
        config_map(&c).iter().map(FieldError::message).collect()
    }

    fn sec(v: Value) -> Vec<String> {
        let s: Secret = serde_json::from_value(v).expect("secret");
        secret(&s).iter().map(FieldError::message).collect()
    }

    #[test]
    fn config_map_cases() {
        let big = "x".repeat(MAX_SIZE + 1);
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"metadata": {"name": "c"}, "data": {"a.conf": "x"}, "binaryData": {"b": "AAE="}}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "c"}, "data": {"a/b": "x"}}),
                vec![
                    "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ],
            ),
            (
                json!({"metadata": {"name": "c"}, "data": {"..": "x"}}),
                vec!["data[..]: Invalid value: \"..\": must not be '..'"],
            ),
            (
                json!({"metadata": {"name": "c"}, "data": {"k": "x"}, "binaryData": {"k": "AA=="}}),
                vec!["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"],
            ),
            (
                json!({"metadata": {"name": "c"}, "data": {"k": big}}),
                vec![": Too long: must have at most 1048576 bytes"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(cm(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn secret_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "s"}, "stringData": {"bad key": "v"}}),
                vec![
                    "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ],
            ),
            (
                json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
                vec!["data[tls.key]: Required value"],
            ),
            (
                json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "not json"}}),
                vec![
                    "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": expected ident at line 1 column 2",
                ],
            ),
            (
                json!({"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"}),
                vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
            ),
            (
                json!({"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth"}),
                vec![
                    "data[username]: Required value",
                    "data[password]: Required value",
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sec(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn immutable_objects_stay_immutable() {
        let old: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}}),
        )
        .expect("old");
        let new: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "2"}}),
        )
        .expect("new");
        let got: Vec<String> = config_map_update(&new, &old)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let old: Secret =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "type": "Opaque"}))
                .expect("old");
        let new: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}))
            .expect("new");
        let got: Vec<String> = secret_update(&new, &old)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }
}
