//! Objects as `-o json`, `-o yaml` and `-o name` print them. kubectl decodes objects
//! into maps, so keys come out sorted (serde_json's map is ordered); its JSON is
//! indented by four spaces and escapes `<`, `>` and `&` as Go's encoder does.

use serde::Serialize;
use serde_json::{Value, json};

/// `-o json`: four-space indent, Go's HTML-safe escapes, a final newline.
pub fn to_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into memory cannot fail.
    let _ = value.serialize(&mut serializer);
    let text = String::from_utf8_lossy(&out);
    // These characters only occur inside strings, where Go writes them escaped.
    let mut text = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    text.push('\n');
    text
}

/// `-o yaml`: as kubectl writes it, or — should that text not read back as the same
/// value — as a YAML library writes it.
pub fn to_yaml(value: &Value) -> anyhow::Result<String> {
    let text = super::yaml::to_yaml(value);
    match serde_yaml::from_str::<Value>(&text) {
        Ok(back) if same(&back, value) => Ok(text),
        _ => Ok(serde_yaml::to_string(value)?),
    }
}

/// Equal values, numbers compared by value (`1.0` is written as `1`, as Go does).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The `v1` `List` kubectl prints several objects as.
pub fn list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// `kind.group` lowercased (`deployment.apps`, `pod`): how kubectl names a type in
/// `-o name` and in its one-line reports.
pub fn kind_group(kind: &str, group: &str) -> String {
    if group.is_empty() {
        kind.to_lowercase()
    } else {
        format!("{}.{group}", kind.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_as_kubectl_prints_it() {
        let value = json!({"kind": "Pod", "apiVersion": "v1", "items": [], "m": {},
                           "s": "<none> & more", "n": [1, 2]});
        assert_eq!(
            to_json(&value),
            "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"Pod\",\n    \
             \"m\": {},\n    \"n\": [\n        1,\n        2\n    ],\n    \
             \"s\": \"\\u003cnone\\u003e \\u0026 more\"\n}\n"
        );
    }

    #[test]
    fn yaml_and_lists_parse_back() {
        let item = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "a"}, "data": {"k": "1", "t": "yes"}});
        let list = list(vec![item.clone()]);
        let text = to_yaml(&list).expect("yaml");
        assert!(
            text.starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n"),
            "{text}"
        );
        let back: Value = serde_yaml::from_str(&text).expect("parse back");
        assert_eq!(back, list);
        assert_eq!(back["metadata"]["resourceVersion"], "");
    }

    #[test]
    fn kind_group_names() {
        assert_eq!(kind_group("Deployment", "apps"), "deployment.apps");
        assert_eq!(kind_group("Pod", ""), "pod");
    }
}
