//! The kubectl-style verbs (`mast get`, `apply`, `describe`, …) for machines without
//! kubectl. Each verb lives in its own module; this one holds what they share: the
//! connection flags, a [`Session`] (client, default namespace) and the resource table
//! from the server's discovery, so that `po`, `pod`, `pods`, `Pod` and
//! `deployments.apps` all name what kubectl would name.

pub mod apply;
pub mod cluster_info;
pub mod delete;
pub mod describe;
pub mod get;
pub mod logs;
pub mod printer;
pub mod rollout;
pub mod scale;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList, APIVersions};
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use tokio::sync::OnceCell;

/// A verb's connection may wait on a followed log or a watch for as long as the user
/// likes: no read timeout worth the name (the client's default of 10 s is for
/// components, whose watches see a bookmark every few seconds).
const CLI_READ_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Flags every verb takes.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace (default: the kubeconfig context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

/// One kind of object the server serves, as its discovery describes it.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Group, version, kind and plural, for [`Api`]s.
    pub api: ApiResource,
    pub namespaced: bool,
    pub singular: String,
    pub short_names: Vec<String>,
}

impl Resource {
    /// `deployments.apps`, or `pods` for the core group: how kubectl names a type in
    /// messages.
    pub fn qualified_plural(&self) -> String {
        if self.api.group.is_empty() {
            self.api.plural.clone()
        } else {
            format!("{}.{}", self.api.plural, self.api.group)
        }
    }

    /// Whether `name` (any case; `plural[.group]`, `singular[.group]`, `Kind[.group]` or
    /// a short name) names this resource.
    pub fn is_named(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let (base, group) = match name.split_once('.') {
            Some((base, group)) => (base, Some(group)),
            None => (name.as_str(), None),
        };
        if group.is_some_and(|g| g != self.api.group) {
            return false;
        }
        base == self.api.plural
            || base == self.singular
            || base == self.api.kind.to_ascii_lowercase()
            || self.short_names.iter().any(|s| s == base)
    }
}

/// A connection to the cluster for one command.
pub struct Session {
    pub client: kube::Client,
    /// `-n`, else the kubeconfig context's namespace.
    pub namespace: String,
    resources: OnceCell<Vec<Resource>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Reads the kubeconfig and builds the client (nothing is sent yet).
    pub fn connect(connection: &Connection) -> anyhow::Result<Session> {
        let path = match &connection.kubeconfig {
            Some(path) => path.clone(),
            None => crate::clients::default_kubeconfig()?,
        };
        let config = kubeclient::ClientConfig::from_kubeconfig(&path)
            .with_context(|| format!("reading the kubeconfig {}", path.display()))?
            .with_read_timeout(CLI_READ_TIMEOUT);
        let namespace = connection
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace().to_string());
        Ok(Session {
            client: config.client()?,
            namespace,
            resources: OnceCell::new(),
        })
    }

    /// Every resource the server serves (its preferred version of each group), from
    /// discovery, fetched once per command.
    pub async fn resources(&self) -> anyhow::Result<&[Resource]> {
        self.resources
            .get_or_try_init(|| discover(&self.client))
            .await
            .map(Vec::as_slice)
    }

    /// The resource `name` names, as kubectl resolves `kubectl get NAME`.
    pub async fn resolve(&self, name: &str) -> anyhow::Result<Resource> {
        self.resources()
            .await?
            .iter()
            .find(|r| r.is_named(name))
            .cloned()
            .with_context(|| format!("the server doesn't have a resource type \"{name}\""))
    }

    /// The resource of objects with this apiVersion and kind (what a manifest names).
    pub async fn resolve_kind(&self, api_version: &str, kind: &str) -> anyhow::Result<Resource> {
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        self.resources()
            .await?
            .iter()
            .find(|r| r.api.group == group && r.api.version == version && r.api.kind == kind)
            .cloned()
            .with_context(|| {
                format!(
                    "resource mapping not found for kind \"{kind}\" in version \"{api_version}\""
                )
            })
    }

    /// An API for `resource` in `namespace` (`None`: every namespace, or a cluster-scoped
    /// resource).
    pub fn api(&self, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) if resource.namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &resource.api)
            }
            _ => Api::all_with(self.client.clone(), &resource.api),
        }
    }

    /// An API for `resource` in the session's namespace (cluster-scoped ones ignore it).
    pub fn api_here(&self, resource: &Resource) -> Api<DynamicObject> {
        self.api(resource, Some(&self.namespace))
    }
}

/// The server's resources: `/api/v1` and each group's preferred version under `/apis`.
async fn discover(client: &kube::Client) -> anyhow::Result<Vec<Resource>> {
    let core: APIVersions = get_json(client, "/api").await?;
    let mut group_versions: Vec<(String, String, String)> = core
        .versions
        .iter()
        .map(|v| (String::new(), v.clone(), format!("/api/{v}")))
        .collect();
    let groups: APIGroupList = get_json(client, "/apis").await?;
    for group in groups.groups {
        let Some(preferred) = group
            .preferred_version
            .or_else(|| group.versions.into_iter().next())
        else {
            continue;
        };
        group_versions.push((
            group.name,
            preferred.version,
            format!("/apis/{}", preferred.group_version),
        ));
    }
    let mut resources = Vec::new();
    for (group, version, path) in group_versions {
        let list: APIResourceList = get_json(client, &path).await?;
        for r in list.resources {
            // Subresources (`pods/log`) are not types of their own.
            if r.name.contains('/') {
                continue;
            }
            let api_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            resources.push(Resource {
                api: ApiResource {
                    group: group.clone(),
                    version: version.clone(),
                    api_version,
                    kind: r.kind,
                    plural: r.name,
                },
                namespaced: r.namespaced,
                singular: r.singular_name,
                short_names: r.short_names.unwrap_or_default(),
            });
        }
    }
    Ok(resources)
}

/// GET `path` as JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    client: &kube::Client,
    path: &str,
) -> anyhow::Result<T> {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())?;
    client
        .request::<T>(request)
        .await
        .with_context(|| format!("GET {path}"))
}

/// How long ago `time` was, as kubectl prints ages ("45s", "3m12s", "5h3m", "2d3h").
pub fn age(time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    match time {
        Some(t) => {
            let elapsed = k8s_openapi::jiff::Timestamp::now().duration_since(t.0);
            api::tables::format::human_duration(elapsed.as_nanos())
        }
        None => "<unknown>".to_string(),
    }
}

/// kubectl's line for a failed request: `Error from server (NotFound): pods "x" not
/// found` when the server refused it (with any context in front of the server's
/// message), `error: …` for everything else.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut context = Vec::new();
    for cause in err.chain() {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            context.push(status.message.clone());
            let text = context.join(": ");
            return if status.reason.is_empty() {
                format!("Error from server: {text}")
            } else {
                format!("Error from server ({}): {text}", status.reason)
            };
        }
        context.push(cause.to_string());
    }
    format!("error: {err:#}")
}

/// Whether `err` is the server's 404 for the object (or type) asked for.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<kube::Error>(), Some(kube::Error::Api(s)) if s.code == 404)
    })
}

/// Ends a command whose failures were already printed, one line each, with exit
/// status 1 (returning an error would print it once more).
pub fn exit_reported() -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> Resource {
        Resource {
            api: ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
            },
            namespaced: true,
            singular: "deployment".into(),
            short_names: vec!["deploy".into()],
        }
    }

    #[test]
    fn resource_names_as_kubectl_accepts_them() {
        let d = deployments();
        for name in [
            "deployments",
            "deployment",
            "Deployment",
            "deploy",
            "DEPLOY",
            "deployments.apps",
            "deploy.apps",
        ] {
            assert!(d.is_named(name), "{name}");
        }
        for name in ["deployments.batch", "deploys", "pods", "deployments.apps.x"] {
            assert!(!d.is_named(name), "{name}");
        }
        assert_eq!(d.qualified_plural(), "deployments.apps");
    }
}
