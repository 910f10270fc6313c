//! Which objects a command line names, as kubectl reads `TYPE[,TYPE…] [NAME…]` and
//! `TYPE/NAME …`: one visit per type (a list) or per type and name (a get), in the
//! order given. `all` stands for the workload types kubectl groups under it.

use anyhow::bail;

use crate::ctl::apply::manifest::{self, Located};
use crate::ctl::{Resource, Session};

/// kubectl's `all` category, in its order (the types this server lacks are skipped).
const ALL: [(&str, &str); 10] = [
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("", "services"),
    ("apps", "statefulsets"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("apps", "daemonsets"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
];

/// One request to make: a whole collection, or one object by name.
#[derive(Debug, Clone)]
pub struct Visit {
    pub resource: Resource,
    pub name: Option<String>,
    /// The object's own namespace (from a manifest); None: the command's.
    pub namespace: Option<String>,
}

/// The visits `args` ask for (none when `args` is empty).
pub async fn parse(session: &Session, args: &[String]) -> anyhow::Result<Vec<Visit>> {
    let with_slash = args.iter().filter(|a| a.contains('/')).count();
    if with_slash > 0 && with_slash < args.len() {
        bail!(
            "there is no need to specify a resource type as a separate argument when passing \
             arguments in resource/name form (e.g. 'mast get resource/<resource_name>' instead \
             of 'mast get resource resource/<resource_name>'"
        );
    }
    let mut visits = Vec::new();
    if with_slash > 0 {
        for arg in args {
            let (type_name, name) = split_type_name(arg)?;
            visits.push(Visit {
                resource: session.resolve(type_name).await?,
                name: Some(name.to_string()),
                namespace: None,
            });
        }
        return Ok(visits);
    }
    let Some((types, names)) = args.split_first() else {
        return Ok(visits);
    };
    let mut resources: Vec<Resource> = Vec::new();
    for type_name in types.split(',') {
        for resource in resolve_types(session, type_name).await? {
            if !resources
                .iter()
                .any(|r| r.qualified_plural() == resource.qualified_plural())
            {
                resources.push(resource);
            }
        }
    }
    for resource in resources {
        if names.is_empty() {
            visits.push(Visit {
                resource,
                name: None,
                namespace: None,
            });
        } else {
            visits.extend(names.iter().map(|name| Visit {
                resource: resource.clone(),
                name: Some(name.clone()),
                namespace: None,
            }));
        }
    }
    Ok(visits)
}

/// `deploy/web` → (`deploy`, `web`), with kubectl's complaints about other shapes.
fn split_type_name(arg: &str) -> anyhow::Result<(&str, &str)> {
    let parts: Vec<&str> = arg.split('/').collect();
    match parts.as_slice() {
        [type_name, name] if !type_name.is_empty() && !name.is_empty() => Ok((type_name, name)),
        [_, _] => bail!("arguments in resource/name form must have a single resource and name"),
        _ => bail!("arguments in resource/name form may not have more than one slash"),
    }
}

/// One comma-separated entry: a type, or `all`.
async fn resolve_types(session: &Session, type_name: &str) -> anyhow::Result<Vec<Resource>> {
    if type_name.eq_ignore_ascii_case("all") {
        let resources = session.resources().await?;
        return Ok(ALL
            .iter()
            .filter_map(|(group, plural)| {
                resources
                    .iter()
                    .find(|r| r.api.group == *group && r.api.plural == *plural)
                    .cloned()
            })
            .collect());
    }
    Ok(vec![session.resolve(type_name).await?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_name_pairs() {
        assert_eq!(split_type_name("deploy/web").ok(), Some(("deploy", "web")));
        let err = |arg| split_type_name(arg).map(|_| ()).expect_err(arg).to_string();
        assert!(err("deploy/").contains("single resource and name"));
        assert!(err("/web").contains("single resource and name"));
        assert!(err("a/b/c").contains("more than one slash"));
    }
}

/// What a verb acting on existing objects (`delete`, `scale`) is pointed at.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `TYPE[,TYPE…] [NAME…]` or `TYPE/NAME …`.
    pub args: Vec<String>,
    /// `-f`: manifests naming the objects.
    pub filenames: Vec<std::path::PathBuf>,
    pub recursive: bool,
    /// `-n` as given (a manifest's namespace must agree with it).
    pub explicit_namespace: Option<String>,
    /// Where to list, and the selectors.
    pub scope: super::fetch::Scope,
    /// `--all`: every object of the types.
    pub all: bool,
}

impl Selection {
    fn selects(&self) -> bool {
        self.all || self.scope.label_selector.is_some() || self.scope.field_selector.is_some()
    }
}

/// The objects `selection` names: the manifests' objects, the named ones, or the
/// listed members of the types (matching the selectors, or all with `--all`). A
/// manifest object that cannot be located is reported next to the others, so the
/// verb goes on with the rest as kubectl does.
pub async fn select(
    session: &Session,
    selection: &Selection,
) -> anyhow::Result<(Vec<Located>, Vec<anyhow::Error>)> {
    if !selection.filenames.is_empty() {
        if !selection.args.is_empty() {
            bail!(
                "when paths, URLs, or stdin is provided as input, you may not specify resource \
                 arguments as well"
            );
        }
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        for m in manifest::read(&selection.filenames, selection.recursive)? {
            match manifest::locate(session, &m, selection.explicit_namespace.as_deref()).await {
                Ok(located) => objects.push(located),
                Err(e) => errors.push(e),
            }
        }
        return Ok((objects, errors));
    }
    if selection.args.is_empty() {
        bail!("you must provide one or more resources by argument or filename");
    }
    let visits = parse(session, &selection.args).await?;
    let named = visits.iter().any(|v| v.name.is_some());
    if named && selection.selects() {
        bail!("name cannot be provided when a selector is specified");
    }
    if named && selection.scope.namespace.is_none() {
        bail!("a resource cannot be retrieved by name across all namespaces");
    }
    if !named && !selection.selects() {
        bail!("resource(s) were provided, but no name was specified");
    }
    let mut objects = Vec::new();
    for visit in &visits {
        if let Some(name) = &visit.name {
            objects.push(Located {
                source: String::new(),
                resource: visit.resource.clone(),
                name: name.clone(),
                namespace: namespace_for(&visit.resource, &session.namespace),
            });
            continue;
        }
        let (items, _) = super::fetch::objects(session, visit, &selection.scope).await?;
        for item in items {
            let field = |f: &str| {
                item.pointer(&format!("/metadata/{f}"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            objects.push(Located {
                source: String::new(),
                resource: visit.resource.clone(),
                name: field("name"),
                namespace: visit.resource.namespaced.then(|| field("namespace")),
            });
        }
    }
    Ok((objects, Vec::new()))
}

/// The namespace a named object of `resource` is looked for in.
fn namespace_for(resource: &Resource, namespace: &str) -> Option<String> {
    resource.namespaced.then(|| namespace.to_string())
}
