//! Container resource requirements, as upstream's `ValidateContainerResourceRequirements`:
//! resource names, quantity syntax and sign, integer-only resources, and requests that
//! may not exceed limits (or must equal them for resources that cannot be
//! overcommitted, such as hugepages and extended resources).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::validation::errors::{BadValue, FieldError};
use crate::validation::formats;
use crate::validation::meta::IS_NEGATIVE;
use crate::validation::path::Path;
use crate::validation::quantity::Quantity;

/// Resource names that need no domain prefix (upstream's `standardResources`).
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Native resources are un-prefixed or in the `kubernetes.io` domain.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Upstream's `IsExtendedResourceName`.
fn is_extended(name: &str) -> bool {
    if is_native(name) || name.starts_with("requests.") {
        return false;
    }
    formats::is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

fn is_standard_resource(name: &str) -> bool {
    STANDARD_RESOURCES.contains(&name)
        || is_hugepages(name)
        || name.starts_with("requests.hugepages-")
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepages(name)
}

/// Upstream's `validateContainerResourceName`.
fn container_resource_name(name: &str, path: &Path) -> Vec<FieldError> {
    let bad = |msg: &str| FieldError::invalid(path, BadValue(name.to_string()), msg);
    let qualified: Vec<FieldError> = formats::is_qualified_name(name)
        .iter()
        .map(|msg| bad(msg))
        .collect();
    if !qualified.is_empty() {
        return qualified;
    }
    let mut errs = Vec::new();
    if !name.contains('/') {
        if !is_standard_resource(name) {
            errs.push(bad("must be a standard resource type or fully qualified"));
        }
        if !is_standard_container_resource(name) {
            errs.push(bad("must be a standard resource for containers"));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(bad("doesn't follow extended resource name standard"));
    }
    errs
}

/// Parses one quantity, reporting a malformed one on its path.
fn parse(raw: &ApiQuantity, path: &Path, errs: &mut Vec<FieldError>) -> Option<Quantity> {
    match Quantity::parse(&raw.0) {
        Ok(q) => Some(q),
        Err(e) => {
            errs.push(FieldError::invalid(path, &raw.0, e.0));
            None
        }
    }
}

/// Upstream's `ValidateResourceQuantityValue`.
fn quantity_value(name: &str, q: &Quantity, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if q.is_negative() {
        errs.push(FieldError::invalid(path, q.to_string(), IS_NEGATIVE));
    }
    if is_extended(name) && q.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            BadValue(q.to_string()),
            "must be an integer",
        ));
    }
    errs
}

/// Validates `resources` of a container at `path`.
pub fn requirements(req: Option<&ResourceRequirements>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(req) = req else {
        return errs;
    };
    let empty = BTreeMap::new();
    let limits = req.limits.as_ref().unwrap_or(&empty);
    let requests = req.requests.as_ref().unwrap_or(&empty);
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let mut parsed_limits = BTreeMap::new();
    let (mut lim_compute, mut req_compute, mut hugepages) = (false, false, false);
    for (name, raw) in limits {
        let p = lim_path.key(name);
        errs.extend(container_resource_name(name, &p));
        if let Some(q) = parse(raw, &p, &mut errs) {
            errs.extend(quantity_value(name, &q, &p));
            parsed_limits.insert(name.as_str(), q);
        }
        hugepages |= is_hugepages(name);
        lim_compute |= matches!(name.as_str(), "cpu" | "memory");
    }
    for (name, raw) in requests {
        let p = req_path.key(name);
        errs.extend(container_resource_name(name, &p));
        let Some(q) = parse(raw, &p, &mut errs) else {
            continue;
        };
        errs.extend(quantity_value(name, &q, &p));
        match parsed_limits.get(name.as_str()) {
            Some(limit) if !overcommit_allowed(name) && q != *limit => {
                errs.push(FieldError::invalid(
                    &req_path,
                    q.to_string(),
                    &format!("must be equal to {name} limit of {limit}"),
                ));
            }
            Some(limit) if q > *limit => {
                errs.push(FieldError::invalid(
                    &req_path,
                    q.to_string(),
                    &format!("must be less than or equal to {name} limit of {limit}"),
                ));
            }
            Some(_) => {}
            None if !overcommit_allowed(name) && !limits.contains_key(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
        hugepages |= is_hugepages(name);
        req_compute |= matches!(name.as_str(), "cpu" | "memory");
    }
    if hugepages && !lim_compute && !req_compute {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(v: serde_json::Value) -> Vec<String> {
        let req: ResourceRequirements = serde_json::from_value(v).expect("requirements");
        requirements(Some(&req), &Path::new("r"))
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn resource_requirement_cases() {
        let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
            (
                json!({"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "500m"}}),
                vec![],
            ),
            (
                json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}),
                vec![
                    "r.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
                ],
            ),
            (
                json!({"requests": {"memory": "-1"}}),
                vec![
                    "r.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
                ],
            ),
            (
                json!({"limits": {"cpu": "one"}}),
                vec![
                    "r.limits[cpu]: Invalid value: \"one\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                ],
            ),
            (
                json!({"limits": {"gpu": "1"}}),
                vec![
                    "r.limits[gpu]: Invalid value: gpu: must be a standard resource type or fully qualified",
                    "r.limits[gpu]: Invalid value: gpu: must be a standard resource for containers",
                ],
            ),
            (
                json!({"limits": {"example.com/gpu": "1500m"}, "requests": {"example.com/gpu": "1500m"}}),
                vec![
                    "r.limits[example.com/gpu]: Invalid value: 1500m: must be an integer",
                    "r.requests[example.com/gpu]: Invalid value: 1500m: must be an integer",
                ],
            ),
            (
                json!({"requests": {"example.com/gpu": "1"}}),
                vec![
                    "r.limits: Required value: Limit must be set for non overcommitable resources",
                ],
            ),
            (
                json!({"limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}}),
                vec![
                    "r.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2",
                ],
            ),
            (
                json!({"limits": {"hugepages-2Mi": "2Mi"}}),
                vec!["r: Forbidden: HugePages require cpu or memory"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.clone()), want, "{input}");
        }
    }
}
