//! Discovery: /version, /api, /apis, per group and group version, and aggregated
//! discovery (apidiscovery.k8s.io v2 and v2beta1) when the client asks for it. All of
//! it is derived from the registry.

use api::registry::{self, RESOURCES, Resource, VERBS};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::codec;
use crate::error::ApiError;

/// The Kubernetes version mast's types come from (k8s-openapi's `latest`).
pub const KUBERNETES_MINOR: &str = "37";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0+mast{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// Architecture names as Go (and so kubectl) spells them.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Which aggregated discovery version the client asked for, if any.
fn aggregated_version(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        if params.first() != Some(&"application/json") {
            continue;
        }
        let has = |p: &str| params.contains(&p);
        if !has("g=apidiscovery.k8s.io") || !has("as=APIGroupDiscoveryList") {
            // The first plain JSON entry wins over later aggregated ones.
            if params.len() == 1 {
                return None;
            }
            continue;
        }
        if has("v=v2") {
            return Some("v2");
        }
        if has("v=v2beta1") {
            return Some("v2beta1");
        }
    }
    None
}

fn aggregated(version: &'static str, items: Vec<Value>) -> Response {
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    let content_type = if version == "v2" {
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    } else {
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    };
    let mut response = codec::json_response(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// GET /api.
pub fn core(headers: &HeaderMap, server_address: &str) -> Response {
    if let Some(v) = aggregated_version(headers) {
        return aggregated(v, vec![group_discovery("")]);
    }
    codec::json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }),
    )
}

/// GET /apis.
pub fn groups(headers: &HeaderMap) -> Response {
    if let Some(v) = aggregated_version(headers) {
        let items = registry::groups()
            .into_iter()
            .map(|(g, _)| group_discovery(g))
            .collect();
        return aggregated(v, items);
    }
    let groups: Vec<Value> = registry::groups()
        .into_iter()
        .map(|(g, versions)| api_group(g, &versions))
        .collect();
    codec::json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

/// GET /apis/GROUP.
pub fn group(name: &str) -> Response {
    match registry::groups().into_iter().find(|(g, _)| *g == name) {
        Some((g, versions)) => codec::json_response(StatusCode::OK, &api_group(g, &versions)),
        None => not_found(&format!("/apis/{name}")),
    }
}

/// GET /api/v1 or /apis/GROUP/VERSION.
pub fn group_version(group: &str, version: &str) -> Response {
    let resources: Vec<&Resource> = registry::in_group_version(group, version).collect();
    if resources.is_empty() {
        return not_found(&format!("/apis/{group}/{version}"));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list = Vec::new();
    for r in resources {
        list.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced(),
            "kind": r.kind,
            "verbs": VERBS,
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for (sub, kind, verbs) in subresources(r) {
            let mut entry = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": kind.2,
                "verbs": verbs,
            });
            if kind.0 != r.group || kind.1 != r.version {
                entry["group"] = json!(kind.0);
                entry["version"] = json!(kind.1);
            }
            list.push(entry);
        }
    }
    codec::json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": list,
        }),
    )
}

fn not_found(path: &str) -> Response {
    ApiError::NotFound {
        message: format!("the server could not find the requested resource ({path})"),
        details: None,
    }
    .into_response()
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

/// (group, version, kind) of a subresource's response.
type Gvk = (&'static str, &'static str, &'static str);

/// A resource's subresources: name, response kind, verbs.
fn subresources(r: &Resource) -> Vec<(&'static str, Gvk, &'static [&'static str])> {
    let own = (r.group, r.version, r.kind);
    let mut subs = Vec::new();
    if r.binding {
        subs.push(("binding", ("", "v1", "Binding"), &["create"][..]));
        subs.push(("log", own, &["get"][..]));
    }
    if r.kind == "Namespace" {
        subs.push(("finalize", own, &["update"][..]));
    }
    if r.scale.is_some() {
        subs.push((
            "scale",
            ("autoscaling", "v1", "Scale"),
            &["get", "patch", "update"][..],
        ));
    }
    if r.status {
        subs.push(("status", own, &["get", "patch", "update"][..]));
    }
    subs
}

/// One group's entry in aggregated discovery.
fn group_discovery(group: &str) -> Value {
    let mut versions = Vec::new();
    let known: Vec<&str> = if group.is_empty() {
        vec!["v1"]
    } else {
        registry::groups()
            .into_iter()
            .find(|(g, _)| *g == group)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    for version in known {
        let resources: Vec<Value> = RESOURCES
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .map(|r| {
                let subs: Vec<Value> = subresources(r)
                    .into_iter()
                    .map(|(name, (g, v, k), verbs)| {
                        json!({
                            "subresource": name,
                            "responseKind": {"group": g, "version": v, "kind": k},
                            "verbs": verbs,
                        })
                    })
                    .collect();
                json!({
                    "resource": r.plural,
                    "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                    "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
                    "singularResource": r.singular,
                    "verbs": VERBS,
                    "shortNames": r.short_names,
                    "categories": r.categories,
                    "subresources": subs,
                })
            })
            .collect();
        versions.push(json!({"version": version, "resources": resources, "freshness": "Current"}));
    }
    let metadata = if group.is_empty() {
        json!({})
    } else {
        json!({"name": group})
    };
    json!({"metadata": metadata, "versions": versions})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn aggregated_discovery_is_chosen_as_kubectl_asks() {
        let kubectl = accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(aggregated_version(&kubectl), Some("v2"));
        assert_eq!(aggregated_version(&accept("application/json")), None);
        assert_eq!(aggregated_version(&HeaderMap::new()), None);
    }

    #[test]
    fn group_discovery_lists_subresources() {
        let apps = group_discovery("apps");
        let deployments = &apps["versions"][0]["resources"][0];
        assert_eq!(deployments["resource"], "deployments");
        let subs: Vec<&str> = deployments["subresources"]
            .as_array()
            .expect("subresources")
            .iter()
            .filter_map(|s| s["subresource"].as_str())
            .collect();
        assert_eq!(subs, ["scale", "status"]);
        let core = group_discovery("");
        assert_eq!(core["metadata"], json!({}));
    }
}
