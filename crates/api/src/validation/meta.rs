//! Object metadata checks shared by every kind: upstream's `ValidateObjectMeta` (name,
//! generateName, namespace, labels, annotations, owner references, finalizers) and the
//! immutability rules of `ValidateObjectMetaUpdate`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::errors::{BadValue, FieldError};
use super::formats::{self, NameFn};
use super::path::Path;

/// Upstream's `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Upstream's `FieldImmutableErrorMsg`.
pub const FIELD_IMMUTABLE: &str = "field is immutable";

/// Upstream's `IsNegativeErrorMsg`.
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";

/// Finalizers that need no domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// How a kind's metadata is checked.
#[derive(Debug, Clone, Copy)]
pub struct MetaRules {
    /// The kind's name format.
    pub name: NameFn,
    /// Whether the kind lives in a namespace (`None` when unknown).
    pub namespaced: Option<bool>,
    /// Whether core's extra finalizer rule applies (un-prefixed finalizers must be
    /// standard ones); the generic checks applied to other kinds omit it.
    pub core_finalizers: bool,
}

/// Upstream's `ValidateNonnegativeField`.
pub fn nonnegative(value: i64, path: &Path) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(path, value, IS_NEGATIVE)]
    } else {
        Vec::new()
    }
}

/// Upstream's `ValidateLabelName`.
pub fn label_name(key: &str, path: &Path) -> Vec<FieldError> {
    formats::is_qualified_name(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, &msg))
        .collect()
}

/// Upstream's `ValidateLabels`: keys are qualified names, values label values; every
/// error is reported on the map's own path.
pub fn labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        errs.extend(label_name(k, path));
        for msg in formats::is_label_value(v) {
            errs.push(FieldError::invalid(path, v, &msg));
        }
    }
    errs
}

/// Upstream's `ValidateAnnotations`: keys are qualified names (case ignored), and keys
/// plus values may not exceed 256 KiB in total.
pub fn annotations(annotations: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in formats::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, &msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Splits `apiVersion` as upstream's `ParseGroupVersion`; `None` when malformed.
fn group_version(api_version: &str) -> Option<(&str, &str)> {
    if api_version.is_empty() || api_version == "/" {
        return Some(("", ""));
    }
    match api_version.matches('/').count() {
        0 => Some(("", api_version)),
        1 => api_version.split_once('/'),
        _ => None,
    }
}

/// Upstream's `ValidateOwnerReferences`. Errors go on `metadata.ownerReferences.<field>`
/// without an index, as upstream reports them.
pub fn owner_references(refs: Option<&Vec<OwnerReference>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    let refs = refs.map(Vec::as_slice).unwrap_or_default();
    for r in refs {
        let (group, version) = group_version(&r.api_version).unwrap_or(("", ""));
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                &r.api_version,
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                &r.kind,
                "must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("name"),
                &r.name,
                "must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("uid"),
                &r.uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                BadValue::json(r),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    BadValue::json(refs),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Upstream's `ValidateFinalizers`, plus core's rule for un-prefixed names when asked.
pub fn finalizers(list: Option<&Vec<String>>, path: &Path, core: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let list = list.map(Vec::as_slice).unwrap_or_default();
    for f in list {
        for msg in formats::is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f, &msg));
        }
    }
    let has = |name: &str| list.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            BadValue::json(list),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    if core {
        for (i, f) in list.iter().enumerate() {
            errs.extend(kube_finalizer_name(f, &path.index(i)));
        }
    }
    errs
}

/// Core's `validateKubeFinalizerName`.
pub fn kube_finalizer_name(name: &str, path: &Path) -> Vec<FieldError> {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        return vec![FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )];
    }
    Vec::new()
}

/// Upstream's `ValidateObjectMeta` for an object about to be created (after the caller
/// filled in a generated name).
///
/// An empty namespace on a namespaced kind is not reported: the API server takes the
/// namespace from the request path and fills it in. A namespace on a cluster-scoped kind
/// is not reported either: upstream's REST layer clears it silently.
pub fn object_meta(meta: &ObjectMeta, rules: &MetaRules) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let mut errs = Vec::new();
    if let Some(generate) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        for msg in (rules.name)(generate, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate,
                &msg,
            ));
        }
    }
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        )),
        Some(name) => {
            for msg in (rules.name)(name, false) {
                errs.push(FieldError::invalid(&path.child("name"), name, &msg));
            }
        }
    }
    if rules.namespaced == Some(true)
        && let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty())
    {
        for msg in formats::name_is_dns_label(ns, false) {
            errs.push(FieldError::invalid(&path.child("namespace"), ns, &msg));
        }
    }
    if let Some(generation) = meta.generation {
        errs.extend(nonnegative(generation, &path.child("generation")));
    }
    errs.extend(labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(owner_references(
        meta.owner_references.as_ref(),
        &path.child("ownerReferences"),
    ));
    errs.extend(finalizers(
        meta.finalizers.as_ref(),
        &path.child("finalizers"),
        rules.core_finalizers,
    ));
    errs
}

/// The immutability rules of upstream's `ValidateObjectMetaUpdate`.
///
/// Fields the API server fills in from the stored object before validating (uid when
/// absent, creationTimestamp, resourceVersion for unconditional updates) are only
/// compared when the new object carries them.
pub fn object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_set: Vec<&String> = old.finalizers.iter().flatten().collect();
        let mut extra: Vec<&String> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_set.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let quoted: Vec<String> = extra.iter().map(|f| formats_quote(f)).collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    let immutable = |field: &str, new: Option<&String>, old: Option<&String>| {
        let new = new.map(String::as_str).unwrap_or("");
        let old = old.map(String::as_str).unwrap_or("");
        (new != old).then(|| FieldError::invalid(&path.child(field), new, FIELD_IMMUTABLE))
    };
    errs.extend(immutable("name", new.name.as_ref(), old.name.as_ref()));
    errs.extend(immutable(
        "namespace",
        new.namespace.as_ref(),
        old.namespace.as_ref(),
    ));
    if new.uid.as_deref().is_some_and(|u| !u.is_empty()) {
        errs.extend(immutable("uid", new.uid.as_ref(), old.uid.as_ref()));
    }
    errs
}

fn formats_quote(s: &str) -> String {
    super::errors::go_quote(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> MetaRules {
        MetaRules {
            name: formats::name_is_dns_subdomain,
            namespaced: Some(true),
            core_finalizers: true,
        }
    }

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).expect("meta")
    }

    #[test]
    fn object_meta_cases() {
        let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
            (
                serde_json::json!({"name": "ok", "namespace": "default"}),
                vec![],
            ),
            (
                serde_json::json!({}),
                vec!["metadata.name: Required value: name or generateName is required"],
            ),
            (
                serde_json::json!({"name": "Foo_"}),
                vec![
                    "metadata.name: Invalid value: \"Foo_\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
            (
                serde_json::json!({"name": "a", "namespace": "Bad.NS"}),
                vec![
                    "metadata.namespace: Invalid value: \"Bad.NS\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                serde_json::json!({"name": "a", "generation": -1}),
                vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                serde_json::json!({"name": "a", "labels": {"app": "-x"}}),
                vec![
                    "metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ],
            ),
            (
                serde_json::json!({"name": "a", "annotations": {"Example.com/X": "fine", "bad key": "v"}}),
                vec![
                    "metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                ],
            ),
            (
                serde_json::json!({"name": "a", "finalizers": ["kubernetes", "example.com/x", "custom"]}),
                vec![
                    "metadata.finalizers[2]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
                ],
            ),
            (
                serde_json::json!({"name": "a", "finalizers": ["orphan", "foregroundDeletion"]}),
                vec![
                    "metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set",
                ],
            ),
            (
                serde_json::json!({"name": "a", "generateName": "Web-"}),
                vec![
                    "metadata.generateName: Invalid value: \"Web-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
        ];
        for (input, want) in cases {
            let got: Vec<String> = object_meta(&meta(input.clone()), &rules())
                .iter()
                .map(FieldError::message)
                .collect();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn annotation_size_limit() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let m = meta(serde_json::json!({"name": "a", "annotations": {"k": big}}));
        let got: Vec<String> = object_meta(&m, &rules())
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec!["metadata.annotations: Too long: must have at most 262144 bytes"]
        );
    }

    #[test]
    fn owner_reference_cases() {
        let m = meta(serde_json::json!({"name": "a", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": true},
            {"apiVersion": "", "kind": "", "name": "", "uid": ""},
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "2", "controller": true}
        ]}));
        let got: Vec<String> = object_meta(&m, &rules())
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(got.len(), 6, "{got:#?}");
        assert_eq!(
            got[0],
            "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty"
        );
        assert_eq!(
            got[1],
            "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty"
        );
        assert!(got[4].ends_with("/v1, Kind=Event is disallowed from being an owner"));
        assert!(got[5].ends_with(
            "Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/rs and Event/e"
        ));
    }

    #[test]
    fn update_rules() {
        let old = meta(
            serde_json::json!({"name": "a", "namespace": "n", "uid": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x/y"]}),
        );
        let new =
            meta(serde_json::json!({"name": "b", "namespace": "n", "finalizers": ["x/y", "x/z"]}));
        let got: Vec<String> = object_meta_update(&new, &old)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/z\"}",
                "metadata.name: Invalid value: \"b\": field is immutable",
            ]
        );
        let new = meta(serde_json::json!({"name": "a", "namespace": "n", "uid": "2"}));
        let got: Vec<String> = object_meta_update(&new, &old)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec!["metadata.uid: Invalid value: \"2\": field is immutable"]
        );
    }
}
