//! Resource paths: `/api/v1/…` and `/apis/GROUP/VERSION/…` into what they address.

use api::registry::{self, Resource};

use crate::error::ApiError;

/// What a resource path addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static Resource,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` prefix was used.
    pub legacy_watch: bool,
}

/// Where a path under `/api` or `/apis` leads.
#[derive(Debug, Clone)]
pub enum Route {
    /// A resource, a collection, or a subresource.
    Resource(Target),
    /// Discovery for a group version (`/api/v1`, `/apis/apps/v1`).
    GroupVersion { group: String, version: String },
    /// Discovery for a group (`/apis/apps`).
    Group(String),
}

/// Parses the path of a request under `/api` or `/apis`.
pub fn parse(path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => return Ok(Route::Group((*group).to_string())),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found(path)),
    };
    if rest.is_empty() {
        return Ok(Route::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        });
    }
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, rest),
    };
    let (namespace, plural, name, sub): (Option<&str>, &str, Option<&str>, Option<&str>) =
        match rest {
            ["namespaces", ns, plural, tail @ ..] if !is_namespace_subresource(plural) => {
                match tail {
                    [] => (Some(ns), plural, None, None),
                    [name] => (Some(ns), plural, Some(name), None),
                    [name, sub] => (Some(ns), plural, Some(name), Some(sub)),
                    _ => return Err(not_found(path)),
                }
            }
            [plural] => (None, plural, None, None),
            [plural, name] => (None, plural, Some(name), None),
            [plural, name, sub] => (None, plural, Some(name), Some(sub)),
            _ => return Err(not_found(path)),
        };
    let resource = registry::find(group, version, plural).ok_or_else(|| not_found(path))?;
    if namespace.is_some() && !resource.namespaced() {
        return Err(not_found(path));
    }
    if [Some(plural), name, sub, namespace]
        .iter()
        .flatten()
        .any(|s| s.is_empty())
    {
        return Err(not_found(path));
    }
    Ok(Route::Resource(Target {
        resource,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
        legacy_watch,
    }))
}

/// `namespaces/NAME/status` and `/finalize` are the namespace's own subresources, not
/// a resource inside it.
fn is_namespace_subresource(segment: &str) -> bool {
    matches!(segment, "status" | "finalize")
}

fn not_found(path: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("the server could not find the requested resource ({path})"),
        details: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match parse(path).expect(path) {
            Route::Resource(t) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let t = target("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(t.resource.plural, "pods");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("status"));

        let t = target("/api/v1/pods");
        assert!(t.namespace.is_none() && t.name.is_none());

        let t = target("/api/v1/namespaces/kube-system");
        assert_eq!(t.resource.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("kube-system"));

        let t = target("/api/v1/namespaces/x/status");
        assert_eq!(t.resource.plural, "namespaces");
        assert_eq!(t.subresource.as_deref(), Some("status"));

        let t = target("/apis/apps/v1/namespaces/a/deployments/web/scale");
        assert_eq!(t.resource.kind, "Deployment");

        let t = target("/api/v1/watch/namespaces/a/configmaps");
        assert!(t.legacy_watch);
        assert_eq!(t.resource.plural, "configmaps");

        let t = target("/api/v1/nodes/n1");
        assert_eq!(t.name.as_deref(), Some("n1"));
    }

    #[test]
    fn discovery_and_unknown_paths() {
        assert!(matches!(parse("/api/v1"), Ok(Route::GroupVersion { .. })));
        assert!(matches!(parse("/apis/apps"), Ok(Route::Group(g)) if g == "apps"));
        for bad in [
            "/api/v1/widgets",
            "/api/v1/namespaces/a/nodes/n",
            "/apis/apps/v1/pods",
            "/api/v1/namespaces/a/pods/b/c/d",
            "/nope",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
