//! Object metadata on JSON values: reading names and labels, stamping what the server
//! owns (uid, timestamps, resourceVersion, generation).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The current time as upstream writes it (RFC 3339, seconds, UTC).
pub fn now() -> String {
    now_plus(0)
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

/// A time `seconds` from now, in the same form.
pub fn now_plus(seconds: i64) -> String {
    match k8s_openapi::jiff::Timestamp::from_second(unix_now().saturating_add(seconds)) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// `metadata`, created if missing (the object itself becomes a map if it was not one;
/// the handlers only pass objects, checked at decoding).
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    if !object["metadata"].is_object() {
        object["metadata"] = Value::Object(Map::new());
    }
    match object.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was made a map just above"),
    }
}

pub fn str_field<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

pub fn name(object: &Value) -> &str {
    str_field(object, "/metadata/name").unwrap_or("")
}

pub fn namespace(object: &Value) -> &str {
    str_field(object, "/metadata/namespace").unwrap_or("")
}

pub fn uid(object: &Value) -> &str {
    str_field(object, "/metadata/uid").unwrap_or("")
}

pub fn resource_version(object: &Value) -> &str {
    str_field(object, "/metadata/resourceVersion").unwrap_or("")
}

pub fn set_resource_version(object: &mut Value, revision: i64) {
    metadata_mut(object).insert("resourceVersion".into(), json!(revision.to_string()));
}

pub fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The value a field selector compares: strings as they are, numbers and booleans in
/// their JSON spelling, absent fields as None.
pub fn field_value(object: &Value, pointer: &str) -> Option<String> {
    match object.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A name for `generateName`: the prefix and five characters from upstream's alphabet
/// (no vowels, no confusable digits).
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    // Upstream trims the prefix so the result stays within 63 characters.
    let keep = prefix.len().min(58);
    format!("{}{suffix}", &prefix[..floor_char_boundary(prefix, keep)])
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Everything outside metadata and status: what `generation` tracks.
pub fn spec_differs(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(a) != strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_keep_the_prefix() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9, "{n}");
        assert_ne!(generate_name("web-"), generate_name("web-"));
        let long = "x".repeat(80);
        assert_eq!(generate_name(&long).len(), 63);
    }

    #[test]
    fn metadata_readers() {
        let mut o = json!({"metadata": {"name": "a", "labels": {"app": "web"}}, "spec": {"x": 1}});
        assert_eq!(name(&o), "a");
        assert_eq!(labels(&o).get("app").map(String::as_str), Some("web"));
        set_resource_version(&mut o, 42);
        assert_eq!(resource_version(&o), "42");
        let mut p = o.clone();
        p["status"] = json!({"phase": "Running"});
        assert!(!spec_differs(&o, &p));
        p["spec"]["x"] = json!(2);
        assert!(spec_differs(&o, &p));
        assert_eq!(field_value(&o, "/spec/x").as_deref(), Some("1"));
        assert_eq!(field_value(&o, "/spec/y"), None);
        assert!(now().ends_with('Z'));
    }
}
