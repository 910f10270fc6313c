//! Admission: changes the server makes to objects on their way in, after defaulting
//! and before validation, as upstream's admission plugins do.
//!
//! Only `DefaultTolerationSeconds` so far: every new pod tolerates the
//! `node.kubernetes.io/not-ready` and `unreachable` NoExecute taints for a bounded time
//! (300 s by default), so that when a node dies its pods are evicted and replaced
//! elsewhere after that time instead of waiting for ever.

use serde_json::{Value, json};

/// The taint the node lifecycle controller puts on a node whose Ready condition is
/// False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint for a node whose Ready condition is Unknown (its heartbeats stopped).
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Admission settings (kube-apiserver's flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub default_not_ready_toleration_seconds: i64,
    pub default_unreachable_toleration_seconds: i64,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
        }
    }
}

impl Admission {
    /// Admits a new object of `kind`.
    pub fn admit_create(&self, kind: &str, object: &mut Value) {
        if kind == "Pod" {
            self.default_toleration_seconds(object);
        }
    }

    /// Adds the two NoExecute tolerations unless the pod already tolerates the taint
    /// (a toleration with that key, or with no key, whose effect is NoExecute or any).
    fn default_toleration_seconds(&self, pod: &mut Value) {
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let tolerations = spec
            .entry("tolerations")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(list) = tolerations.as_array_mut() else {
            return;
        };
        for (taint, seconds) in [
            (TAINT_NOT_READY, self.default_not_ready_toleration_seconds),
            (
                TAINT_UNREACHABLE,
                self.default_unreachable_toleration_seconds,
            ),
        ] {
            if !list.iter().any(|t| tolerates_no_execute(t, taint)) {
                list.push(json!({
                    "key": taint,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": seconds,
                }));
            }
        }
        if list.is_empty() {
            spec.remove("tolerations");
        }
    }
}

fn tolerates_no_execute(toleration: &Value, taint: &str) -> bool {
    let field = |name: &str| toleration.get(name).and_then(Value::as_str).unwrap_or("");
    let key = field("key");
    let effect = field("effect");
    (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(pod: Value) -> Value {
        let mut pod = pod;
        Admission::default().admit_create("Pod", &mut pod);
        pod
    }

    #[test]
    fn a_pod_without_tolerations_gets_both_defaults() {
        let pod = admitted(json!({"spec": {"containers": []}}));
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
    }

    #[test]
    fn existing_tolerations_for_the_taints_are_kept_as_they_are() {
        let own = json!({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5});
        let pod = admitted(json!({"spec": {"tolerations": [own.clone()]}}));
        let list = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], own);
        assert_eq!(list[1]["key"], TAINT_NOT_READY);
    }

    #[test]
    fn a_toleration_of_everything_needs_no_defaults() {
        let all = json!({"operator": "Exists"});
        let pod = admitted(json!({"spec": {"tolerations": [all.clone()]}}));
        assert_eq!(pod["spec"]["tolerations"], json!([all]));
    }

    #[test]
    fn other_kinds_and_no_execute_for_other_keys_do_not_count() {
        let mut config_map = json!({"data": {}});
        Admission::default().admit_create("ConfigMap", &mut config_map);
        assert_eq!(config_map, json!({"data": {}}));
        let pod = admitted(json!({"spec": {"tolerations": [
            {"key": "other", "operator": "Exists", "effect": "NoExecute"},
            {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoSchedule"},
        ]}}));
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn configured_seconds_are_used() {
        let admission = Admission {
            default_not_ready_toleration_seconds: 7,
            default_unreachable_toleration_seconds: 9,
        };
        let mut pod = json!({"spec": {}});
        admission.admit_create("Pod", &mut pod);
        assert_eq!(pod["spec"]["tolerations"][0]["tolerationSeconds"], 7);
        assert_eq!(pod["spec"]["tolerations"][1]["tolerationSeconds"], 9);
    }
}
