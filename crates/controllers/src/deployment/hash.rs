//! The `pod-template-hash`: names a Deployment's ReplicaSet after its pod template, so
//! that one template always maps to one ReplicaSet and its pods can be told apart.
//!
//! Upstream hashes the template's Go printout with FNV-32a, appends the collision
//! count, and renders the number's decimal digits in a vowel-free alphabet (so no
//! words appear in names). We hash the template's JSON (k8s-openapi serializes fields in
//! a fixed order and maps sorted, so it is canonical) the same way; the hashes differ
//! from upstream's, but they have the same shape and the same stability.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label (and selector key) carrying the hash.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// Upstream's `rand.SafeEncodeString` alphabet: no vowels, no confusable 0/1/3.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// The hash of `template` for a Deployment whose `status.collisionCount` is
/// `collision_count` (bumping it yields a different name after a collision).
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // Serializing plain data cannot fail; an empty text still hashes deterministically.
    let mut bytes = serde_json::to_vec(&canonical(template)).unwrap_or_default();
    if let Some(count) = collision_count {
        // As upstream: the count as 8 little-endian bytes (the upper four zero).
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV32_OFFSET, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(FNV32_PRIME)
    })
}

/// Maps every byte of `text` into the safe alphabet.
fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// Whether two templates are the same once the hash label is ignored (how a Deployment
/// recognises its current ReplicaSet; upstream's `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    canonical(&without_hash(a)) == canonical(&without_hash(b))
}

fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    template
}

/// The template's JSON without nulls, empty maps and empty lists, at any depth.
///
/// Upstream compares Go structs, where an empty struct field, a nil and an empty list
/// or map are all the same value; clients write them differently (kubectl sends
/// `resources: {}` for a container without resources, kube-rs nothing), and `kubectl
/// rollout undo` copies a ReplicaSet's template as kubectl serializes it. Without this,
/// undoing to an old template would make a new ReplicaSet instead of reusing the old.
fn canonical(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    prune(&mut value);
    value
}

/// Removes empty values below `value`; whether `value` itself is empty now.
fn prune(value: &mut Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => {
            map.retain(|_, v| !prune(v));
            map.is_empty()
        }
        Value::Array(items) => {
            // Items keep their place (a list's order and length are its meaning);
            // only their insides are pruned.
            for item in items.iter_mut() {
                prune(item);
            }
            items.is_empty()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(image: &str, extra_labels: serde_json::Value) -> PodTemplateSpec {
        let mut labels = json!({"app": "web"});
        for (k, v) in extra_labels.as_object().into_iter().flatten() {
            labels[k] = v.clone();
        }
        serde_json::from_value(json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": image}]},
        }))
        .expect("template")
    }

    #[test]
    fn fnv32a_matches_the_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_maps_digits_as_upstream() {
        // '0'..'9' are bytes 48..57; modulo 27 they land on "456789bcdf".
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn hash_is_stable_and_sensitive_to_template_and_collisions() {
        let nginx = template("nginx:1.25", json!({}));
        let cases = [
            (
                "same input",
                compute_hash(&nginx, None),
                compute_hash(&nginx, None),
                true,
            ),
            (
                "other image",
                compute_hash(&nginx, None),
                compute_hash(&template("nginx:1.26", json!({})), None),
                false,
            ),
            (
                "collision count",
                compute_hash(&nginx, None),
                compute_hash(&nginx, Some(1)),
                false,
            ),
            (
                "two collision counts",
                compute_hash(&nginx, Some(1)),
                compute_hash(&nginx, Some(2)),
                false,
            ),
        ];
        for (what, a, b, equal) in cases {
            assert_eq!(a == b, equal, "{what}: {a} vs {b}");
            assert!(
                a.bytes().all(|c| ALPHANUMS.contains(&c)) && !a.is_empty() && a.len() <= 10,
                "{what}: {a} is not in the safe alphabet"
            );
        }
    }

    #[test]
    fn empty_values_are_no_values() {
        let bare: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        }))
        .expect("template");
        let as_kubectl_writes_it: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {}, "env": []}],
                     "securityContext": {}},
        }))
        .expect("template");
        assert!(equal_ignore_hash(&bare, &as_kubectl_writes_it));
        assert_eq!(
            compute_hash(&bare, None),
            compute_hash(&as_kubectl_writes_it, None)
        );
        let limited: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "1"}}}]},
        }))
        .expect("template");
        assert!(!equal_ignore_hash(&bare, &limited));
    }

    #[test]
    fn equality_ignores_only_the_hash_label() {
        let plain = template("nginx", json!({}));
        let hashed = template("nginx", json!({POD_TEMPLATE_HASH_LABEL: "abc"}));
        let other_label = template("nginx", json!({"tier": "front"}));
        let other_image = template("httpd", json!({POD_TEMPLATE_HASH_LABEL: "abc"}));
        assert!(equal_ignore_hash(&plain, &hashed));
        assert!(equal_ignore_hash(&hashed, &plain));
        assert!(!equal_ignore_hash(&plain, &other_label));
        assert!(!equal_ignore_hash(&plain, &other_image));
        let only_hash: PodTemplateSpec =
            serde_json::from_value(json!({"metadata": {"labels": {POD_TEMPLATE_HASH_LABEL: "x"}}}))
                .expect("template");
        assert!(equal_ignore_hash(&only_hash, &PodTemplateSpec::default()));
    }
}
