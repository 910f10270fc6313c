//! Pod defaults, as upstream's core/v1 `SetDefaults_PodSpec`, `SetDefaults_Container`,
//! `SetDefaults_Probe`, volume source defaults and (for Pods only, not templates)
//! `SetDefaults_Pod`. Only absent (or, for upstream's non-pointer fields, empty/zero)
//! values are filled.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, Lifecycle, Pod, PodSpec, PodTemplateSpec,
    Probe, Volume,
};

/// Upstream's `DefaultTerminationGracePeriodSeconds`.
const TERMINATION_GRACE_PERIOD: i64 = 30;
/// 0644, the default mode of files projected from secrets, config maps and the downward
/// API.
const DEFAULT_FILE_MODE: i32 = 0o644;
/// One hour, the default lifetime of projected service account tokens.
const TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Sets `field` to `value` when it is absent or empty, upstream's test for its
/// non-pointer string fields.
pub fn fill(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// Sets an int32 field upstream declares without a pointer, so 0 counts as unset.
fn fill_zero(field: &mut Option<i32>, value: i32) {
    if field.is_none_or(|v| v == 0) {
        *field = Some(value);
    }
}

/// Upstream's pull policy rule: `Always` for `:latest` or an untagged image without a
/// digest, `IfNotPresent` otherwise (including images that do not parse).
pub fn pull_policy_for(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_slash = name.rfind('/');
    let tag = match name.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => Some(&name[colon + 1..]),
        _ => None,
    };
    let repository = match tag {
        Some(t) => &name[..name.len() - t.len() - 1],
        None => name,
    };
    // References that do not parse (empty, or a repository path with upper case
    // letters) leave the tag empty upstream.
    let path = repository
        .split_once('/')
        .map_or(repository, |(first, rest)| {
            if first.contains(['.', ':']) || first == "localhost" {
                rest
            } else {
                repository
            }
        });
    if repository.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return "IfNotPresent";
    }
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn http_get(action: &mut HTTPGetAction) {
    fill(&mut action.path, "/");
    fill(&mut action.scheme, "HTTP");
}

fn probe(p: &mut Probe) {
    fill_zero(&mut p.timeout_seconds, 1);
    fill_zero(&mut p.period_seconds, 10);
    fill_zero(&mut p.success_threshold, 1);
    fill_zero(&mut p.failure_threshold, 3);
    if let Some(action) = p.http_get.as_mut() {
        http_get(action);
    }
    if let Some(grpc) = p.grpc.as_mut()
        && grpc.service.is_none()
    {
        grpc.service = Some(String::new());
    }
}

fn lifecycle(l: &mut Lifecycle) {
    for handler in [l.post_start.as_mut(), l.pre_stop.as_mut()]
        .into_iter()
        .flatten()
    {
        if let Some(action) = handler.http_get.as_mut() {
            http_get(action);
        }
    }
}

fn ports(ports: Option<&mut Vec<ContainerPort>>) {
    for port in ports.into_iter().flatten() {
        fill(&mut port.protocol, "TCP");
    }
}

fn env(vars: Option<&mut Vec<EnvVar>>) {
    for var in vars.into_iter().flatten() {
        if let Some(field_ref) = var.value_from.as_mut().and_then(|f| f.field_ref.as_mut()) {
            fill(&mut field_ref.api_version, "v1");
        }
    }
}

/// Upstream's `SetDefaults_Container` and the defaults of what a container holds.
pub fn container(c: &mut Container) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let policy = pull_policy_for(c.image.as_deref().unwrap_or(""));
        c.image_pull_policy = Some(policy.to_string());
    }
    fill(&mut c.termination_message_path, "/dev/termination-log");
    fill(&mut c.termination_message_policy, "File");
    ports(c.ports.as_mut());
    env(c.env.as_mut());
    for p in [
        c.liveness_probe.as_mut(),
        c.readiness_probe.as_mut(),
        c.startup_probe.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        probe(p);
    }
    if let Some(l) = c.lifecycle.as_mut() {
        lifecycle(l);
    }
}

/// Whether a volume names no source at all.
fn has_no_source(v: &Volume) -> bool {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(map)) => map.keys().all(|k| k == "name"),
        _ => false,
    }
}

fn file_mode(mode: &mut Option<i32>) {
    if mode.is_none() {
        *mode = Some(DEFAULT_FILE_MODE);
    }
}

/// Upstream's volume defaults: a volume without a source is an emptyDir, projected files
/// get mode 0644, hostPath types default to "".
pub fn volume(v: &mut Volume) {
    if has_no_source(v) {
        v.empty_dir = Some(Default::default());
    }
    if let Some(s) = v.secret.as_mut() {
        file_mode(&mut s.default_mode);
    }
    if let Some(cm) = v.config_map.as_mut() {
        file_mode(&mut cm.default_mode);
    }
    if let Some(d) = v.downward_api.as_mut() {
        file_mode(&mut d.default_mode);
        for item in d.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                fill(&mut f.api_version, "v1");
            }
        }
    }
    if let Some(p) = v.projected.as_mut() {
        file_mode(&mut p.default_mode);
        for source in p.sources.iter_mut().flatten() {
            if let Some(token) = source.service_account_token.as_mut()
                && token.expiration_seconds.is_none()
            {
                token.expiration_seconds = Some(TOKEN_EXPIRATION_SECONDS);
            }
            let items = source.downward_api.as_mut().and_then(|d| d.items.as_mut());
            for item in items.into_iter().flatten() {
                if let Some(f) = item.field_ref.as_mut() {
                    fill(&mut f.api_version, "v1");
                }
            }
        }
    }
    if let Some(h) = v.host_path.as_mut()
        && h.type_.is_none()
    {
        h.type_ = Some(String::new());
    }
}

/// Upstream's `SetDefaults_PodSpec` plus everything inside a spec; shared by pods and
/// pod templates.
pub fn pod_spec(spec: &mut PodSpec) {
    fill(&mut spec.dns_policy, "ClusterFirst");
    fill(&mut spec.restart_policy, "Always");
    if spec.security_context.is_none() {
        spec.security_context = Some(Default::default());
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(TERMINATION_GRACE_PERIOD);
    }
    fill(&mut spec.scheduler_name, "default-scheduler");
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
    for c in spec.containers.iter_mut() {
        container(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            let policy = pull_policy_for(c.image.as_deref().unwrap_or(""));
            c.image_pull_policy = Some(policy.to_string());
        }
        fill(&mut c.termination_message_path, "/dev/termination-log");
        fill(&mut c.termination_message_policy, "File");
        ports(c.ports.as_mut());
        env(c.env.as_mut());
    }
}

/// A pod template's defaults: its spec's, nothing pod-only.
pub fn pod_template(t: &mut PodTemplateSpec) {
    pod_spec(t.spec.get_or_insert_with(Default::default));
}

/// Upstream's `SetDefaults_Pod`: the spec defaults, requests defaulted from limits,
/// service links on, and host ports copied from container ports under host networking.
pub fn pod(p: &mut Pod) {
    let spec = p.spec.get_or_insert_with(Default::default);
    pod_spec(spec);
    let host_network = spec.host_network == Some(true);
    let init = spec.init_containers.iter_mut().flatten();
    for c in spec.containers.iter_mut().chain(init) {
        if let Some(resources) = c.resources.as_mut()
            && let Some(limits) = &resources.limits
        {
            let requests = resources.requests.get_or_insert_with(Default::default);
            for (name, quantity) in limits {
                requests
                    .entry(name.clone())
                    .or_insert_with(|| quantity.clone());
            }
        }
        if host_network {
            for port in c.ports.iter_mut().flatten() {
                if port.host_port.is_none_or(|h| h == 0) {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn pull_policies() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("docker.io/library/nginx", "Always"),
            ("localhost:5000/app", "Always"),
            ("localhost:5000/app:v1", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
            ("nginx:latest@sha256:abc", "Always"),
            ("", "IfNotPresent"),
            ("Nginx", "IfNotPresent"),
            ("Registry.Example.com/app", "Always"),
        ];
        for (image, want) in cases {
            assert_eq!(pull_policy_for(image), want, "{image}");
        }
    }

    fn defaulted(v: Value) -> Value {
        let mut p: Pod = serde_json::from_value(v).expect("pod");
        pod(&mut p);
        serde_json::to_value(&p).expect("serialize")
    }

    #[test]
    fn fills_pod_defaults() {
        let out = defaulted(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{
                    "name": "c", "image": "nginx:1",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "livenessProbe": {"httpGet": {"port": 80}},
                    "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}}
                }],
                "volumes": [
                    {"name": "a"},
                    {"name": "b", "secret": {"secretName": "s"}},
                    {"name": "c", "hostPath": {"path": "/x"}}
                ]
            }
        }));
        let spec = &out["spec"];
        let expected = [
            ("/restartPolicy", json!("Always")),
            ("/dnsPolicy", json!("ClusterFirst")),
            ("/terminationGracePeriodSeconds", json!(30)),
            ("/schedulerName", json!("default-scheduler")),
            ("/securityContext", json!({})),
            ("/enableServiceLinks", json!(true)),
            ("/containers/0/imagePullPolicy", json!("IfNotPresent")),
            (
                "/containers/0/terminationMessagePath",
                json!("/dev/termination-log"),
            ),
            ("/containers/0/terminationMessagePolicy", json!("File")),
            ("/containers/0/ports/0/protocol", json!("TCP")),
            (
                "/containers/0/env/0/valueFrom/fieldRef/apiVersion",
                json!("v1"),
            ),
            (
                "/containers/0/livenessProbe",
                json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}),
            ),
            (
                "/containers/0/resources/requests",
                json!({"cpu": "1", "memory": "1Gi"}),
            ),
            ("/volumes/0", json!({"name": "a", "emptyDir": {}})),
            ("/volumes/1/secret/defaultMode", json!(420)),
            ("/volumes/2/hostPath/type", json!("")),
        ];
        for (pointer, want) in expected {
            assert_eq!(spec.pointer(pointer), Some(&want), "{pointer}");
        }
    }

    #[test]
    fn never_overwrites() {
        let out = defaulted(json!({
            "spec": {
                "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never",
                                "terminationMessagePath": "/tmp/log",
                                "readinessProbe": {"exec": {"command": ["x"]}, "periodSeconds": 3}}],
                "restartPolicy": "OnFailure", "dnsPolicy": "Default",
                "terminationGracePeriodSeconds": 5, "enableServiceLinks": false,
                "securityContext": {"runAsUser": 1000}
            }
        }));
        let spec = &out["spec"];
        let expected = [
            ("/restartPolicy", json!("OnFailure")),
            ("/dnsPolicy", json!("Default")),
            ("/terminationGracePeriodSeconds", json!(5)),
            ("/enableServiceLinks", json!(false)),
            ("/securityContext", json!({"runAsUser": 1000})),
            ("/containers/0/imagePullPolicy", json!("Never")),
            ("/containers/0/terminationMessagePath", json!("/tmp/log")),
            ("/containers/0/readinessProbe/periodSeconds", json!(3)),
        ];
        for (pointer, want) in expected {
            assert_eq!(spec.pointer(pointer), Some(&want), "{pointer}");
        }
    }

    #[test]
    fn templates_skip_pod_only_defaults_and_host_ports_follow_container_ports() {
        let mut t: PodTemplateSpec = serde_json::from_value(json!({
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1"}}}]}
        }))
        .expect("template");
        pod_template(&mut t);
        let out = serde_json::to_value(&t).expect("serialize");
        assert_eq!(out.pointer("/spec/enableServiceLinks"), None);
        assert_eq!(out.pointer("/spec/containers/0/resources/requests"), None);
        assert_eq!(out.pointer("/spec/restartPolicy"), Some(&json!("Always")));

        let out = defaulted(json!({"spec": {"hostNetwork": true, "containers": [
            {"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}
        ]}}));
        assert_eq!(
            out.pointer("/spec/containers/0/ports/0/hostPort"),
            Some(&json!(8080))
        );
    }
}
