//! A ReplicaSet's `spec.selector` as a matcher of pod labels (upstream's
//! `LabelSelectorAsSelector`, reduced to what matching needs).
//!
//! The API crate has a full selector (with the string syntax), but this crate only
//! depends on kube; matching the API form takes a few lines.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One requirement on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(key, value) => labels.get(key) == Some(value),
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            // Upstream: a missing key satisfies NotIn.
            Requirement::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
        }
    }
}

/// Requirements that must all hold. A selector without requirements matches nothing
/// here: upstream's validation forbids empty ReplicaSet selectors, and adopting every
/// pod of a namespace would be the worst reading of one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Converts the API form.
    pub fn new(selector: &LabelSelector) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::Equals(key.clone(), value.clone()));
        }
        for expression in selector.match_expressions.iter().flatten() {
            let key = expression.key.clone();
            let values = expression.values.clone().unwrap_or_default();
            let requirement = match expression.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!(
                        "for 'in', 'notin' operators, values set can't be empty (key {key:?})"
                    ));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(format!(
                        "values set must be empty for exists and does not exist (key {key:?})"
                    ));
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            };
            requirements.push(requirement);
        }
        Ok(Selector { requirements })
    }

    /// Whether the selector has no requirements (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        let labels = labels.unwrap_or(&empty);
        !self.is_empty() && self.requirements.iter().all(|r| r.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector(value: serde_json::Value) -> Result<Selector, String> {
        let api: LabelSelector = serde_json::from_value(value).expect("a label selector");
        Selector::new(&api)
    }

    #[test]
    fn matching_follows_upstream_operators() {
        let cases = [
            (
                json!({"matchLabels": {"app": "web"}}),
                vec![("app", "web")],
                true,
            ),
            (
                json!({"matchLabels": {"app": "web"}}),
                vec![("app", "db")],
                false,
            ),
            (json!({"matchLabels": {"app": "web"}}), vec![], false),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}),
                vec![("app", "web"), ("tier", "b")],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}),
                vec![],
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}),
                vec![],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}),
                vec![("tier", "a")],
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
                vec![("tier", "")],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
                vec![("tier", "x")],
                false,
            ),
            // Empty selectors match nothing (see the type's comment).
            (json!({}), vec![("app", "web")], false),
        ];
        for (spec, pod_labels, want) in cases {
            let s = selector(spec.clone()).expect("a valid selector");
            assert_eq!(
                s.matches(Some(&labels(&pod_labels))),
                want,
                "{spec} vs {pod_labels:?}"
            );
        }
    }

    #[test]
    fn invalid_selectors_are_refused() {
        for spec in [
            json!({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        ] {
            assert!(selector(spec.clone()).is_err(), "{spec} must be refused");
        }
    }
}
