//! Pod volumes, as upstream's `ValidateVolumes`: unique DNS-label names, exactly one
//! source each, and the checks for the sources pods commonly use (emptyDir, hostPath,
//! secret, configMap, persistentVolumeClaim, downwardAPI, projected). Other sources are
//! counted but not inspected further.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{KeyToPath, Volume};
use serde_json::Value;

use super::container::{dns1123_label, local_descending_path, no_backsteps};
use super::env;
use crate::validation::errors::FieldError;
use crate::validation::path::Path;
use crate::validation::quantity::Quantity;

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Pod fields a downward API volume may expose (sorted).
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

fn file_mode(mode: Option<i32>, path: &Path) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_ERROR)],
        _ => Vec::new(),
    }
}

/// Upstream's `ValidateLocalNonReservedPath`.
fn local_non_reserved_path(target: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

/// Upstream's `validateKeyToPath`.
fn key_to_path(items: Option<&Vec<KeyToPath>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, item) in items.into_iter().flatten().enumerate() {
        let idx = path.index(i);
        if item.key.is_empty() {
            errs.push(FieldError::required(&idx.child("key"), ""));
        }
        if item.path.is_empty() {
            errs.push(FieldError::required(&idx.child("path"), ""));
        }
        errs.extend(local_non_reserved_path(&item.path, &idx.child("path")));
        errs.extend(file_mode(item.mode, &idx.child("mode")));
    }
    errs
}

/// The source fields set on a volume, in the order upstream checks them.
fn sources(raw: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(map)) = raw else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, v)| k.as_str() != "name" && !v.is_null())
        .map(|(k, _)| k.clone())
        .collect()
}

/// Checks the one source a volume uses.
fn source(vol: &Volume, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(empty_dir) = &vol.empty_dir
        && let Some(limit) = &empty_dir.size_limit
        && Quantity::parse(&limit.0).is_ok_and(|q| q.is_negative())
    {
        errs.push(FieldError::forbidden(
            &path.child("emptyDir").child("sizeLimit"),
            "SizeLimit field must be a valid resource quantity",
        ));
    }
    if let Some(host_path) = &vol.host_path {
        let p = path.child("hostPath");
        if host_path.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else {
            errs.extend(no_backsteps(&host_path.path, &p.child("path")));
            let kinds = [
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ];
            if let Some(t) = host_path.type_.as_deref()
                && !kinds.contains(&t)
            {
                errs.push(FieldError::not_supported(&p.child("type"), t, &kinds));
            }
        }
    }
    if let Some(secret) = &vol.secret {
        let p = path.child("secret");
        if secret.secret_name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        errs.extend(file_mode(secret.default_mode, &p.child("defaultMode")));
        errs.extend(key_to_path(secret.items.as_ref(), &p.child("items")));
    }
    if let Some(cm) = &vol.config_map {
        let p = path.child("configMap");
        if cm.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        errs.extend(file_mode(cm.default_mode, &p.child("defaultMode")));
        errs.extend(key_to_path(cm.items.as_ref(), &p.child("items")));
    }
    if let Some(pvc) = &vol.persistent_volume_claim
        && pvc.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("persistentVolumeClaim").child("claimName"),
            "",
        ));
    }
    if let Some(downward) = &vol.downward_api {
        let p = path.child("downwardAPI");
        errs.extend(file_mode(downward.default_mode, &p.child("defaultMode")));
        for file in downward.items.iter().flatten() {
            if file.path.is_empty() {
                errs.push(FieldError::required(&p.child("path"), ""));
            }
            errs.extend(local_non_reserved_path(&file.path, &p.child("path")));
            match (&file.field_ref, &file.resource_field_ref) {
                (Some(fs), other) => {
                    errs.extend(env::object_field_selector(
                        fs,
                        VOLUME_FIELD_PATHS,
                        &p.child("fieldRef"),
                    ));
                    if other.is_some() {
                        errs.push(FieldError::invalid(
                            &p,
                            "resource",
                            "fieldRef and resourceFieldRef can not be specified simultaneously",
                        ));
                    }
                }
                (None, Some(rs)) => {
                    errs.extend(env::resource_field_selector(
                        rs,
                        true,
                        &p.child("resourceFieldRef"),
                    ));
                }
                (None, None) => errs.push(FieldError::required(
                    &p,
                    "one of fieldRef and resourceFieldRef is required",
                )),
            }
            errs.extend(file_mode(file.mode, &p.child("mode")));
        }
    }
    if let Some(projected) = &vol.projected {
        let p = path.child("projected");
        errs.extend(file_mode(projected.default_mode, &p.child("defaultMode")));
    }
    errs
}

/// Upstream's `ValidateVolumes`; `raw` is the volumes list as sent, used to see which
/// source fields are set. Returns the names of the volumes that validated, for mounts.
pub fn volumes(
    list: &[Volume],
    raw: Option<&Value>,
    path: &Path,
) -> (BTreeSet<String>, Vec<FieldError>) {
    let mut names = BTreeSet::new();
    let mut errs = Vec::new();
    for (i, vol) in list.iter().enumerate() {
        let idx = path.index(i);
        let mut el = Vec::new();
        let set = sources(raw.and_then(|r| r.get(i)));
        for extra in set.iter().skip(1) {
            el.push(FieldError::forbidden(
                &idx.child(extra),
                "may not specify more than 1 volume type",
            ));
        }
        if set.is_empty() {
            el.push(FieldError::required(&idx, "must specify a volume type"));
        }
        el.extend(source(vol, &idx));
        if vol.name.is_empty() {
            el.push(FieldError::required(&idx.child("name"), ""));
        } else {
            el.extend(dns1123_label(&vol.name, &idx.child("name")));
        }
        if names.contains(&vol.name) {
            el.push(FieldError::duplicate(&idx.child("name"), &vol.name));
        }
        if el.is_empty() {
            names.insert(vol.name.clone());
        } else {
            errs.extend(el);
        }
    }
    (names, errs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(raw: serde_json::Value) -> (BTreeSet<String>, Vec<String>) {
        let list: Vec<Volume> = serde_json::from_value(raw.clone()).expect("volumes");
        let (names, errs) = volumes(&list, Some(&raw), &Path::new("v"));
        (names, errs.iter().map(FieldError::message).collect())
    }

    #[test]
    fn volume_cases() {
        let cases: Vec<(serde_json::Value, Vec<&str>, Vec<&str>)> = vec![
            (
                json!([{"name": "a", "emptyDir": {}}, {"name": "b", "configMap": {"name": "cm", "defaultMode": 420}}]),
                vec!["a", "b"],
                vec![],
            ),
            (
                json!([{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]),
                vec!["a"],
                vec!["v[1].name: Duplicate value: \"a\""],
            ),
            (
                json!([{"name": "x"}]),
                vec![],
                vec!["v[0]: Required value: must specify a volume type"],
            ),
            (
                json!([{"name": "x", "emptyDir": {}, "hostPath": {"path": "/tmp"}}]),
                vec![],
                vec!["v[0].hostPath: Forbidden: may not specify more than 1 volume type"],
            ),
            (
                json!([{"name": "s", "secret": {"defaultMode": 1000, "items": [{"key": "", "path": "/abs"}]}}]),
                vec![],
                vec![
                    "v[0].secret.secretName: Required value",
                    "v[0].secret.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
                    "v[0].secret.items[0].key: Required value",
                    "v[0].secret.items[0].path: Invalid value: \"/abs\": must be a relative path",
                ],
            ),
            (
                json!([{"name": "p", "persistentVolumeClaim": {"claimName": ""}}]),
                vec![],
                vec!["v[0].persistentVolumeClaim.claimName: Required value"],
            ),
            (
                json!([{"name": "Bad", "emptyDir": {}}]),
                vec![],
                vec![
                    "v[0].name: Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!([{"name": "d", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}]}}]),
                vec![],
                vec![
                    "v[0].downwardAPI.fieldRef.fieldPath: Unsupported value: \"spec.nodeName\": supported values: \"metadata.annotations\", \"metadata.labels\", \"metadata.name\", \"metadata.namespace\", \"metadata.uid\"",
                ],
            ),
        ];
        for (input, names, want) in cases {
            let (got_names, got) = check(input.clone());
            let got_names: Vec<&str> = got_names.iter().map(String::as_str).collect();
            assert_eq!(got, want, "{input}");
            assert_eq!(got_names, names, "{input}");
        }
    }
}
