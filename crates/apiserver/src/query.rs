//! Query parameters of list, watch and delete requests.

use std::collections::HashMap;

use api::registry::Resource;
use api::selectors::{FieldSelector, LabelSelector};

use crate::error::ApiError;

/// Parsed list and watch options.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub timeout_seconds: Option<u64>,
    pub send_initial_events: bool,
}

impl ListOptions {
    pub fn parse(query: &HashMap<String, String>, resource: &Resource) -> Result<Self, ApiError> {
        let labels = match query.get("labelSelector") {
            Some(s) => LabelSelector::parse(s)
                .map_err(|e| ApiError::BadRequest(format!("unable to parse labelSelector: {e}")))?,
            None => LabelSelector::default(),
        };
        let fields = match query.get("fieldSelector") {
            Some(s) => FieldSelector::parse(s)
                .map_err(|e| ApiError::BadRequest(format!("unable to parse fieldSelector: {e}")))?,
            None => FieldSelector::default(),
        };
        for field in fields.fields() {
            if resource.field_pointer(field).is_none() {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        let limit = match query.get("limit").map(String::as_str) {
            None | Some("") => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                Ok(_) => None,
                Err(_) => return Err(ApiError::BadRequest(format!("invalid limit: {s}"))),
            },
        };
        let resource_version_match = non_empty(query.get("resourceVersionMatch"));
        if let Some(m) = &resource_version_match
            && m != "NotOlderThan"
            && m != "Exact"
        {
            return Err(ApiError::BadRequest(format!(
                "resourceVersionMatch: Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        let timeout_seconds = match query.get("timeoutSeconds").map(String::as_str) {
            None | Some("") => None,
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds: {s}")))?,
            ),
        };
        Ok(Self {
            labels,
            fields,
            limit,
            continue_token: non_empty(query.get("continue")),
            resource_version: non_empty(query.get("resourceVersion")),
            resource_version_match,
            watch: flag(query.get("watch")),
            allow_bookmarks: flag(query.get("allowWatchBookmarks")),
            timeout_seconds,
            send_initial_events: flag(query.get("sendInitialEvents")),
        })
    }
}

/// Parsed delete options (from the query; a body overrides them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

impl DeleteOptions {
    pub fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let mut options = Self {
            grace_period_seconds: match query.get("gracePeriodSeconds") {
                Some(s) => Some(s.parse().map_err(|_| {
                    ApiError::BadRequest(format!("invalid gracePeriodSeconds: {s}"))
                })?),
                None => None,
            },
            propagation_policy: non_empty(query.get("propagationPolicy")),
            ..Self::default()
        };
        if options.propagation_policy.is_none() && flag(query.get("orphanDependents")) {
            options.propagation_policy = Some("Orphan".into());
        }
        options.check()?;
        Ok(options)
    }

    /// Merges a DeleteOptions body over the query's options.
    pub fn merge_body(&mut self, body: &serde_json::Value) -> Result<(), ApiError> {
        if let Some(kind) = body.get("kind").and_then(|k| k.as_str())
            && kind != "DeleteOptions"
        {
            return Err(ApiError::BadRequest(format!(
                "expected a DeleteOptions body, got {kind}"
            )));
        }
        if let Some(g) = body.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            self.grace_period_seconds = Some(g.as_i64().ok_or_else(|| {
                ApiError::BadRequest("gracePeriodSeconds must be an integer".into())
            })?);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(|v| v.as_str()) {
            self.propagation_policy = Some(p.to_string());
        } else if body.get("orphanDependents").and_then(|v| v.as_bool()) == Some(true) {
            self.propagation_policy = Some("Orphan".into());
        }
        if let Some(pre) = body.get("preconditions") {
            self.precondition_uid = pre.get("uid").and_then(|v| v.as_str()).map(str::to_string);
            self.precondition_resource_version = pre
                .get("resourceVersion")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
        self.check()
    }

    fn check(&self) -> Result<(), ApiError> {
        if let Some(p) = &self.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
        if self.grace_period_seconds.is_some_and(|g| g < 0) {
            return Err(ApiError::BadRequest(
                "gracePeriodSeconds: must be greater than or equal to 0".into(),
            ));
        }
        Ok(())
    }
}

fn non_empty(v: Option<&String>) -> Option<String> {
    v.filter(|s| !s.is_empty()).cloned()
}

fn flag(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("1" | "true" | "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_options() {
        let pods = api::registry::find("", "v1", "pods").expect("pods");
        let o = ListOptions::parse(
            &q(&[("limit", "5"), ("watch", "true"), ("resourceVersion", "7")]),
            pods,
        )
        .expect("parse");
        assert_eq!(o.limit, Some(5));
        assert!(o.watch);
        assert_eq!(o.resource_version.as_deref(), Some("7"));
        assert!(ListOptions::parse(&q(&[("limit", "x")]), pods).is_err());
        assert!(ListOptions::parse(&q(&[("resourceVersionMatch", "Nope")]), pods).is_err());
    }

    #[test]
    fn delete_options() {
        let mut o = DeleteOptions::from_query(&q(&[("gracePeriodSeconds", "0")])).expect("q");
        assert_eq!(o.grace_period_seconds, Some(0));
        o.merge_body(
            &serde_json::json!({"propagationPolicy": "Foreground", "preconditions": {"uid": "u"}}),
        )
        .expect("body");
        assert_eq!(o.propagation_policy.as_deref(), Some("Foreground"));
        assert_eq!(o.precondition_uid.as_deref(), Some("u"));
        assert!(DeleteOptions::from_query(&q(&[("propagationPolicy", "Sideways")])).is_err());
    }
}
