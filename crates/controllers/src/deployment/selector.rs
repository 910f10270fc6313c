//! Label selectors as upstream's `metav1.LabelSelectorAsSelector` reads them: which
//! ReplicaSets and pods a Deployment's selector takes in.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A selector with neither labels nor expressions. Upstream refuses to act on one
/// (it would select every pod in the namespace).
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// Whether `labels` satisfy `selector`; an error names a requirement that cannot be
/// evaluated (an unknown operator, `In` without values).
pub fn matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<bool, String> {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    for (key, value) in selector.match_labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            return Ok(false);
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or_default();
        let present = labels.get(&requirement.key);
        let holds = match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "{} {}: values must be non-empty",
                    requirement.key, requirement.operator
                ));
            }
            "In" => present.is_some_and(|v| values.contains(v)),
            "NotIn" => present.is_none_or(|v| !values.contains(v)),
            "Exists" => present.is_some(),
            "DoesNotExist" => present.is_none(),
            other => {
                return Err(format!(
                    "{}: {other:?} is not a valid label selector operator",
                    requirement.key
                ));
            }
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A copy of `selector` that also requires `key=value` (upstream's
/// `CloneSelectorAndAddLabel`).
pub fn with_label(selector: &LabelSelector, key: &str, value: &str) -> LabelSelector {
    let mut selector = selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
    selector
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).expect("selector")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requirements_are_anded() {
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
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}),
                vec![("tier", "b")],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}),
                vec![],
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
                vec![("app", "web")],
                false,
            ),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}),
                vec![("app", "web"), ("canary", "1")],
                false,
            ),
            (json!({}), vec![("x", "y")], true),
        ];
        for (sel, pairs, want) in cases {
            let got = matches(&selector(sel.clone()), Some(&labels(&pairs)));
            assert_eq!(got, Ok(want), "{sel} against {pairs:?}");
        }
    }

    #[test]
    fn bad_requirements_are_errors() {
        for sel in [
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}),
        ] {
            assert!(matches(&selector(sel.clone()), None).is_err(), "{sel}");
        }
    }

    #[test]
    fn emptiness_and_added_labels() {
        assert!(is_empty(&selector(json!({"matchLabels": {}}))));
        assert!(!is_empty(&selector(json!({"matchLabels": {"a": "b"}}))));
        let added = with_label(&selector(json!({"matchLabels": {"a": "b"}})), "h", "x");
        assert_eq!(added.match_labels, Some(labels(&[("a", "b"), ("h", "x")])));
    }
}
