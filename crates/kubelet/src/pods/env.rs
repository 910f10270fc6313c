//! A container's environment, as upstream's `makeEnvironmentVariables` builds it:
//! `envFrom` first, then `env` in order (literal values with `$(VAR)` expansion, the
//! downward API's `fieldRef` and `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef`);
//! command and args expanded against the result.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Client;
use kube::api::Api;

/// Why the environment could not be built (upstream: CreateContainerConfigError).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("configmap {0:?} not found")]
    ConfigMapMissing(String),
    #[error("secret {0:?} not found")]
    SecretMissing(String),
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    KeyMissing {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldPath {0:?}")]
    FieldPath(String),
    #[error("unsupported resource {0:?}")]
    Resource(String),
    #[error("reading {kind} {name}: {message}")]
    Api {
        kind: &'static str,
        name: String,
        message: String,
    },
}

/// What the downward API exposes besides the pod object, and the service environment
/// variables (appended after the container's own, which win; `$(VAR)` may name them).
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub pod_ip: Option<&'a str>,
    pub host_ip: &'a str,
    pub services: &'a [(String, String)],
}

/// The container's environment, command and args.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub args: Vec<String>,
}

/// Expands `$(NAME)` from `vars`; `$$` is a literal `$`; unknown references stay.
pub fn expand(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A downward-API field of the pod.
pub fn field(pod: &Pod, facts: &Facts<'_>, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let lookup = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => facts.pod_ip.unwrap_or_default().to_string(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.to_string(),
        _ => {
            if let Some(key) = subscript("metadata.labels['") {
                lookup(&meta.labels, &key)
            } else if let Some(key) = subscript("metadata.annotations['") {
                lookup(&meta.annotations, &key)
            } else {
                return Err(EnvError::FieldPath(path.to_string()));
            }
        }
    })
}

/// A `resourceFieldRef` value: limits fall back to the node's capacity upstream; here
/// an unset limit reads as 0 (no limit known), a set one in the divisor's units.
fn resource(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, EnvError> {
    let resources = container.resources.as_ref();
    let get = |limits: bool, name: &str| {
        resources
            .and_then(|r| {
                if limits {
                    r.limits.as_ref()
                } else {
                    r.requests.as_ref()
                }
            })
            .and_then(|m| m.get(name))
            .map(|q| q.0.clone())
    };
    let (limits, name) = match resource.split_once('.') {
        Some(("limits", name)) => (true, name),
        Some(("requests", name)) => (false, name),
        _ => return Err(EnvError::Resource(resource.to_string())),
    };
    let value = get(limits, name);
    Ok(match name {
        "cpu" => {
            let millis = value
                .and_then(|v| crate::config::parse_millicores(&v).ok())
                .unwrap_or(0);
            let divisor = divisor
                .and_then(|d| crate::config::parse_millicores(d).ok())
                .unwrap_or(1000);
            // Upstream rounds up to whole divisor units.
            millis.div_ceil(divisor.max(1)).to_string()
        }
        "memory" | "ephemeral-storage" => {
            let bytes = value
                .and_then(|v| crate::config::parse_bytes(&v).ok())
                .unwrap_or(0);
            let divisor = divisor
                .and_then(|d| crate::config::parse_bytes(d).ok())
                .unwrap_or(1);
            bytes.div_ceil(divisor.max(1)).to_string()
        }
        _ => return Err(EnvError::Resource(resource.to_string())),
    })
}

/// Reads configmaps and secrets once per resolution.
struct Sources<'a> {
    client: &'a Client,
    namespace: &'a str,
    config_maps: HashMap<String, Option<BTreeMap<String, String>>>,
    secrets: HashMap<String, Option<BTreeMap<String, String>>>,
}

impl Sources<'_> {
    async fn config_map(
        &mut self,
        name: &str,
    ) -> Result<Option<&BTreeMap<String, String>>, EnvError> {
        if !self.config_maps.contains_key(name) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.namespace);
            let found = api.get_opt(name).await.map_err(|e| EnvError::Api {
                kind: "configmap",
                name: name.to_string(),
                message: e.to_string(),
            })?;
            self.config_maps
                .insert(name.to_string(), found.map(|c| c.data.unwrap_or_default()));
        }
        Ok(self.config_maps.get(name).and_then(Option::as_ref))
    }

    async fn secret(&mut self, name: &str) -> Result<Option<&BTreeMap<String, String>>, EnvError> {
        if !self.secrets.contains_key(name) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
            let found = api.get_opt(name).await.map_err(|e| EnvError::Api {
                kind: "secret",
                name: name.to_string(),
                message: e.to_string(),
            })?;
            self.secrets.insert(
                name.to_string(),
                found.map(|s| {
                    let mut data: BTreeMap<String, String> = s
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect();
                    data.extend(s.string_data.unwrap_or_default());
                    data
                }),
            );
        }
        Ok(self.secrets.get(name).and_then(Option::as_ref))
    }
}

/// The container's environment, command and args.
pub async fn resolve(
    client: &Client,
    pod: &Pod,
    container: &Container,
    facts: &Facts<'_>,
) -> Result<Resolved, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut sources = Sources {
        client,
        namespace,
        config_maps: HashMap::new(),
        secrets: HashMap::new(),
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut set = |env: &mut Vec<(String, String)>, name: String, value: String| {
        vars.insert(name.clone(), value.clone());
        match env.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => env.push((name, value)),
        }
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match sources.config_map(&r.name).await? {
                Some(data) => {
                    for (k, v) in data.clone() {
                        set(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapMissing(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            match sources.secret(&r.name).await? {
                Some(data) => {
                    for (k, v) in data.clone() {
                        set(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretMissing(r.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            // Upstream's mapping: the container's variables, then the services'.
            let mut known: HashMap<String, String> = facts.services.iter().cloned().collect();
            known.extend(env.iter().cloned());
            Some(expand(value, &known))
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                Some(field(pod, facts, &f.field_path)?)
            } else if let Some(r) = &from.resource_field_ref {
                Some(resource(
                    container,
                    &r.resource,
                    r.divisor.as_ref().map(|q| q.0.as_str()),
                )?)
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match sources.config_map(&r.name).await? {
                    Some(data) => match data.get(&r.key) {
                        Some(v) => Some(v.clone()),
                        None if optional => None,
                        None => {
                            return Err(EnvError::KeyMissing {
                                kind: "configmap",
                                namespace: namespace.to_string(),
                                name: r.name.clone(),
                                key: r.key.clone(),
                            });
                        }
                    },
                    None if optional => None,
                    None => return Err(EnvError::ConfigMapMissing(r.name.clone())),
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match sources.secret(&r.name).await? {
                    Some(data) => match data.get(&r.key) {
                        Some(v) => Some(v.clone()),
                        None if optional => None,
                        None => {
                            return Err(EnvError::KeyMissing {
                                kind: "secret",
                                namespace: namespace.to_string(),
                                name: r.name.clone(),
                                key: r.key.clone(),
                            });
                        }
                    },
                    None if optional => None,
                    None => return Err(EnvError::SecretMissing(r.name.clone())),
                }
            } else {
                None
            }
        } else {
            Some(String::new())
        };
        if let Some(value) = value {
            set(&mut env, var.name.clone(), value);
        }
    }
    for (name, value) in facts.services {
        if !env.iter().any(|(n, _)| n == name) {
            env.push((name.clone(), value.clone()));
        }
    }
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let expand_all = |list: &Option<Vec<String>>| {
        list.iter()
            .flatten()
            .map(|s| expand(s, &vars))
            .collect::<Vec<_>>()
    };
    Ok(Resolved {
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let vars = HashMap::from([("A".to_string(), "1".to_string())]);
        let cases = [
            ("x$(A)y", "x1y"),
            ("$(B)", "$(B)"),
            ("$$(A)", "$(A)"),
            ("cost: $5", "cost: $5"),
            ("$(A", "$(A"),
            ("$", "$"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &vars), want, "{input}");
        }
    }

    #[test]
    fn downward_fields() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "prod", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": []}
        }))
        .expect("pod");
        let facts = Facts {
            pod_ip: Some("10.42.0.5"),
            host_ip: "192.168.0.2",
            services: &[],
        };
        let cases = [
            ("metadata.name", "web-1"),
            ("metadata.namespace", "prod"),
            ("metadata.uid", "u1"),
            ("spec.nodeName", "n1"),
            ("spec.serviceAccountName", "default"),
            ("status.podIP", "10.42.0.5"),
            ("status.hostIP", "192.168.0.2"),
            ("metadata.labels['app']", "web"),
        ];
        for (path, want) in cases {
            assert_eq!(field(&pod, &facts, path).as_deref(), Ok(want), "{path}");
        }
        assert!(field(&pod, &facts, "spec.nope").is_err());
    }

    #[tokio::test]
    async fn service_variables_follow_the_containers_own() {
        // No API call is made: the container reads no configmap or secret.
        let url = "http://127.0.0.1:9".parse().expect("url");
        let client = Client::try_from(kube::Config::new(url)).expect("client");
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "prod"},
            "spec": {"containers": []}
        }))
        .expect("pod");
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "command": ["wget", "$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"],
            "env": [
                {"name": "URL", "value": "http://$(WEB_SERVICE_HOST)/"},
                {"name": "WEB_SERVICE_PORT", "value": "8080"}
            ]
        }))
        .expect("container");
        let services = vec![
            ("WEB_SERVICE_HOST".to_string(), "10.43.0.20".to_string()),
            ("WEB_SERVICE_PORT".to_string(), "80".to_string()),
        ];
        let facts = Facts {
            pod_ip: None,
            host_ip: "192.168.0.2",
            services: &services,
        };
        let resolved = resolve(&client, &pod, &container, &facts)
            .await
            .expect("resolved");
        assert_eq!(
            resolved.env,
            [
                ("URL".to_string(), "http://10.43.0.20/".to_string()),
                ("WEB_SERVICE_PORT".to_string(), "8080".to_string()),
                ("WEB_SERVICE_HOST".to_string(), "10.43.0.20".to_string()),
            ],
            "the container's WEB_SERVICE_PORT wins; the rest are appended"
        );
        assert_eq!(resolved.command, ["wget", "10.43.0.20:8080"]);
    }

    #[test]
    fn resource_fields() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}
        }))
        .expect("container");
        assert_eq!(resource(&c, "limits.cpu", None).as_deref(), Ok("1"));
        assert_eq!(resource(&c, "limits.cpu", Some("1m")).as_deref(), Ok("500"));
        assert_eq!(
            resource(&c, "limits.memory", Some("1Mi")).as_deref(),
            Ok("64")
        );
        assert!(resource(&c, "limits.gpu", None).is_err());
    }
}
