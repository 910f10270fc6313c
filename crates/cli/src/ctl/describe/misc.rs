//! Namespaces, ConfigMaps and Secrets, and kubectl's generic describer for every other
//! kind (Leases among them): the object's fields, sorted, as indented "Label: value"
//! lines.

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret};
use serde_json::Value;

use super::events;
use super::text::{self, Out, rfc1123z};

/// The whole `kubectl describe namespace` text (no quota or limit-range sections: the
/// server serves neither, and kubectl leaves them out then).
pub fn describe_namespace(ns: &Namespace) -> String {
    let mut out = Out::new();
    let meta = &ns.metadata;
    out.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    text::labels_and_annotations(&mut out, meta);
    let status = ns.status.clone().unwrap_or_default();
    out.write(
        0,
        &format!("Status:\t{}\n", status.phase.as_deref().unwrap_or("")),
    );
    let conditions: Vec<_> = status.conditions.iter().flatten().collect();
    if !conditions.is_empty() {
        out.write(0, "Conditions:\n");
        out.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        out.write(1, "----\t------\t------------------\t------\t-------\n");
        for c in conditions {
            out.write(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    c.type_,
                    c.status,
                    rfc1123z(c.last_transition_time.as_ref()),
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or("")
                ),
            );
        }
    }
    out.finish()
}

/// The whole `kubectl describe configmap` text (keys sorted; kubectl's own order is
/// Go's random map order).
pub fn describe_configmap(cm: &ConfigMap, events: Option<Vec<Event>>) -> String {
    let mut out = Out::new();
    let meta = &cm.metadata;
    text::name_and_namespace(&mut out, meta);
    text::labels_and_annotations(&mut out, meta);
    out.write(0, "\nData\n====\n");
    for (k, v) in cm.data.iter().flatten() {
        out.write(0, &format!("{k}:\n----\n"));
        out.write(0, &format!("{v}\n"));
        out.write(0, "\n");
    }
    out.write(0, "\nBinaryData\n====\n");
    for (k, v) in cm.binary_data.iter().flatten() {
        out.write(0, &format!("{k}: {} bytes\n", v.0.len()));
    }
    out.write(0, "\n");
    events::section(&mut out, events);
    out.finish()
}

/// The whole `kubectl describe secret` text: sizes, never values (except a service
/// account token's).
pub fn describe_secret(secret: &Secret) -> String {
    let mut out = Out::new();
    let meta = &secret.metadata;
    text::name_and_namespace(&mut out, meta);
    text::labels_and_annotations(&mut out, meta);
    let type_ = secret.type_.as_deref().unwrap_or("");
    out.write(0, &format!("\nType:\t{type_}\n"));
    out.write(0, "\nData\n====\n");
    for (k, v) in secret.data.iter().flatten() {
        if k == "token" && type_ == "kubernetes.io/service-account-token" {
            out.write(0, &format!("{k}:\t{}\n", String::from_utf8_lossy(&v.0)));
        } else {
            out.write(0, &format!("{k}:\t{} bytes\n", v.0.len()));
        }
    }
    out.finish()
}

/// Paths kubectl's generic describer leaves out (shown above the fields, or noise).
const GENERIC_SKIP: &[&str] = &[
    ".metadata.managedFields",
    ".metadata.name",
    ".metadata.namespace",
    ".metadata.labels",
    ".metadata.annotations",
];

/// The whole generic `kubectl describe` text for `object` (its JSON).
pub fn describe_generic(object: &Value, events: Option<Vec<Event>>) -> String {
    let mut out = Out::new();
    let text_at = |path: &str| {
        object
            .pointer(path)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    out.write(0, &format!("Name:\t{}\n", text_at("/metadata/name")));
    out.write(
        0,
        &format!("Namespace:\t{}\n", text_at("/metadata/namespace")),
    );
    let map = |path: &str| {
        object.pointer(path).and_then(Value::as_object).map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        })
    };
    text::labels(&mut out, "", "Labels", map("/metadata/labels").as_ref());
    text::annotations(
        &mut out,
        "Annotations",
        map("/metadata/annotations").as_ref(),
    );
    if let Some(content) = object.as_object() {
        unstructured(&mut out, 0, content, "");
    }
    events::section(&mut out, events);
    out.finish()
}

/// kubectl's `printUnstructuredContent`: fields sorted, maps and lists nested one
/// level deeper, scalars as `Label:\tvalue`.
fn unstructured(
    out: &mut Out,
    level: usize,
    content: &serde_json::Map<String, Value>,
    prefix: &str,
) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let path = format!("{prefix}.{field}");
        if GENERIC_SKIP.contains(&path.as_str()) {
            continue;
        }
        let label = smart_label(field);
        match &content[field] {
            Value::Object(map) => {
                out.write(level, &format!("{label}:\n"));
                unstructured(out, level + 1, map, &path);
            }
            Value::Array(items) => {
                out.write(level, &format!("{label}:\n"));
                for item in items {
                    match item {
                        Value::Object(map) => unstructured(out, level + 1, map, &path),
                        other => out.write(level + 1, &format!("{}\n", go_value(other))),
                    }
                }
            }
            other => out.write(level, &format!("{label}:\t{}\n", go_value(other))),
        }
    }
}

/// A JSON scalar as Go's `%v` prints its unstructured form.
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// kubectl's `smartLabelFor`: `holderIdentity` → `Holder Identity`, `apiVersion` →
/// `API Version`; names with characters other than letters and `-` stay as they are.
fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    const ACRONYMS: &[&str] = &["API", "URL", "UID", "OSB", "GUID"];
    camel_split(field)
        .into_iter()
        .filter(|part| part != "_")
        .map(|part| {
            let upper = part.to_uppercase();
            if ACRONYMS.contains(&upper.as_str()) {
                upper
            } else {
                title(&part)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `camelcase.Split`: runs of lower case, upper case, digits and other characters,
/// an upper-case run's last letter moving to a lower-case run that follows
/// (`HTTPServer` → `HTTP`, `Server`).
fn camel_split(s: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in s.chars() {
        let k = class(c);
        match runs.last_mut() {
            Some(run) if k == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = k;
    }
    for i in 0..runs.len().saturating_sub(1) {
        let upper_then_lower = runs[i].first().is_some_and(|c| c.is_uppercase())
            && runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if upper_then_lower && let Some(c) = runs[i].pop() {
            runs[i + 1].insert(0, c);
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_labels() {
        for (field, want) in [
            ("holderIdentity", "Holder Identity"),
            ("apiVersion", "API Version"),
            ("uid", "UID"),
            ("leaseDurationSeconds", "Lease Duration Seconds"),
            ("HTTPServer", "HTTP Server"),
            ("spec", "Spec"),
            ("x.y", "x.y"),
            ("ipv4", "ipv4"),
        ] {
            assert_eq!(smart_label(field), want, "{field}");
        }
    }

    #[test]
    fn generic_lease() {
        let lease = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "l", "namespace": "kube-system", "uid": "u",
                         "managedFields": [{"manager": "x"}]},
            "spec": {"holderIdentity": "me", "leaseDurationSeconds": 2},
        });
        assert_eq!(
            describe_generic(&lease, Some(vec![])),
            "Name:         l\nNamespace:    kube-system\nLabels:       <none>\nAnnotations:  <none>\n\
             API Version:  coordination.k8s.io/v1\nKind:         Lease\nMetadata:\n  UID:  u\n\
             Spec:\n  Holder Identity:         me\n  Lease Duration Seconds:  2\n\
             Events:                    <none>\n"
        );
    }
}
