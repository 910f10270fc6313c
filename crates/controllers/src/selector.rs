//! Label selectors as the controllers read them: upstream's `LabelSelectorAsSelector`
//! (the API crate's selector), plus the controllers' rule that an empty selector
//! selects nothing.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A parsed selector. One without requirements matches nothing: upstream's validation
/// forbids empty ReplicaSet and Deployment selectors, and adopting every pod of a
/// namespace would be the worst reading of one.
#[derive(Debug, Clone)]
pub struct Selector(api::selectors::LabelSelector);

impl Selector {
    /// Converts the API form; an error names the requirement that cannot be evaluated.
    pub fn new(selector: &LabelSelector) -> Result<Self, String> {
        api::selectors::LabelSelector::from_api(selector)
            .map(Selector)
            .map_err(|e| e.to_string())
    }

    /// Whether the selector has no requirements (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        !self.is_empty() && self.0.matches(labels.unwrap_or(&empty))
    }
}

/// A selector with neither labels nor expressions.
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

/// Whether `labels` satisfy `selector` (an empty one matches nothing); an error names a
/// requirement that cannot be evaluated.
pub fn matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<bool, String> {
    Ok(Selector::new(selector)?.matches(labels))
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

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).expect("a label selector")
    }

    #[test]
    fn labels_and_expressions_must_all_hold() {
        let s = selector(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "track", "operator": "NotIn", "values": ["canary"]},
                {"key": "env", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }));
        let good = labels(&[("app", "web"), ("tier", "a"), ("env", "x")]);
        assert_eq!(matches(&s, Some(&good)), Ok(true));
        for bad in [
            labels(&[("app", "db"), ("tier", "a"), ("env", "x")]),
            labels(&[("app", "web"), ("tier", "c"), ("env", "x")]),
            labels(&[
                ("app", "web"),
                ("tier", "a"),
                ("env", "x"),
                ("track", "canary"),
            ]),
            labels(&[("app", "web"), ("tier", "a")]),
            labels(&[("app", "web"), ("tier", "a"), ("env", "x"), ("legacy", "1")]),
        ] {
            assert_eq!(matches(&s, Some(&bad)), Ok(false), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_selector_matches_nothing_and_bad_ones_are_errors() {
        let empty = selector(json!({}));
        assert!(is_empty(&empty));
        assert_eq!(matches(&empty, Some(&labels(&[("a", "b")]))), Ok(false));
        assert_eq!(matches(&empty, None), Ok(false));
        let no_values = selector(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
        assert!(matches(&no_values, None).is_err());
        let unknown = selector(json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}));
        assert!(matches(&unknown, None).is_err());
    }

    #[test]
    fn with_label_adds_a_requirement() {
        let s = with_label(
            &selector(json!({"matchLabels": {"app": "web"}})),
            "hash",
            "abc",
        );
        assert_eq!(matches(&s, Some(&labels(&[("app", "web")]))), Ok(false));
        assert_eq!(
            matches(&s, Some(&labels(&[("app", "web"), ("hash", "abc")]))),
            Ok(true)
        );
    }
}
