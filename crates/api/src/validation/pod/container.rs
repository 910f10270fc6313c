//! Containers and init containers, as upstream's `validateContainers`,
//! `validateInitContainers` and `validateContainerCommon`: names, images, ports,
//! environment, mounts, pull policy, resources, probes and security context.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, ContainerPort, SecurityContext, VolumeMount};

use super::probe::{self, ProbeKind};
use super::{env, resources};
use crate::validation::errors::{BadValue, FieldError};
use crate::validation::formats;
use crate::validation::path::Path;

/// What container checks need to know about the surrounding pod spec.
#[derive(Debug, Clone, Copy)]
pub struct SpecContext<'a> {
    /// Names of the pod's volumes that validated.
    pub volumes: &'a BTreeSet<String>,
    /// The pod's termination grace period, bounding sleep hooks.
    pub grace_period: Option<i64>,
}

/// Upstream's `ValidateDNS1123Label` as field errors.
pub fn dns1123_label(value: &str, path: &Path) -> Vec<FieldError> {
    formats::is_dns1123_label(value)
        .into_iter()
        .map(|msg| FieldError::invalid(path, value, &msg))
        .collect()
}

/// Upstream's `validateContainerPorts`.
fn ports(ports: Option<&Vec<ContainerPort>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.into_iter().flatten().enumerate() {
        let idx = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = formats::is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(&idx.child("name"), name, &msg));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&idx.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&idx.child("containerPort"), ""));
        } else {
            for msg in formats::is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    &idx.child("containerPort"),
                    port.container_port,
                    &msg,
                ));
            }
        }
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            for msg in formats::is_valid_port_num(i64::from(host_port)) {
                errs.push(FieldError::invalid(&idx.child("hostPort"), host_port, &msg));
            }
        }
        errs.extend(protocol(port.protocol.as_deref(), &idx.child("protocol")));
    }
    errs
}

/// A port protocol: required, and one of SCTP, TCP, UDP.
pub fn protocol(protocol: Option<&str>, path: &Path) -> Vec<FieldError> {
    match protocol.unwrap_or("") {
        "" => vec![FieldError::required(path, "")],
        "TCP" | "UDP" | "SCTP" => Vec::new(),
        other => vec![FieldError::not_supported(
            path,
            other,
            &["SCTP", "TCP", "UDP"],
        )],
    }
}

/// Upstream's `validateLocalDescendingPath`: relative and without `..` steps.
pub fn local_descending_path(target: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(no_backsteps(target, path));
    errs
}

/// Upstream's `validatePathNoBacksteps`.
pub fn no_backsteps(target: &str, path: &Path) -> Vec<FieldError> {
    if target.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// Upstream's `ValidateVolumeMounts`.
fn volume_mounts(
    mounts: Option<&Vec<VolumeMount>>,
    volumes: &BTreeSet<String>,
    privileged: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, mount) in mounts.into_iter().flatten().enumerate() {
        let idx = path.index(i);
        if mount.name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        }
        if !volumes.contains(&mount.name) {
            errs.push(FieldError::not_found(&idx.child("name"), &mount.name));
        }
        if mount.mount_path.is_empty() {
            errs.push(FieldError::required(&idx.child("mountPath"), ""));
        }
        if !mount_points.insert(mount.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                &idx.child("mountPath"),
                &mount.mount_path,
                "must be unique",
            ));
        }
        let sub_path = mount.sub_path.as_deref().unwrap_or("");
        let sub_path_expr = mount.sub_path_expr.as_deref().unwrap_or("");
        // Upstream reports these two on the list's path, not the element's.
        if !sub_path.is_empty() {
            errs.extend(local_descending_path(sub_path, &path.child("subPath")));
        }
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &idx.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(
                sub_path_expr,
                &path.child("subPathExpr"),
            ));
        }
        if let Some(propagation) = mount.mount_propagation.as_deref() {
            let prop_path = path.child("mountPropagation");
            if !matches!(propagation, "None" | "HostToContainer" | "Bidirectional") {
                errs.push(FieldError::not_supported(
                    &prop_path,
                    propagation,
                    &["Bidirectional", "HostToContainer", "None"],
                ));
            }
            if propagation == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &prop_path,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
    }
    errs
}

/// Upstream's `validatePullPolicy`.
fn pull_policy(policy: Option<&str>, path: &Path) -> Vec<FieldError> {
    match policy.unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "IfNotPresent", "Never"],
        )],
    }
}

fn termination_message_policy(policy: Option<&str>, path: &Path) -> Vec<FieldError> {
    match policy.unwrap_or("") {
        "File" | "FallbackToLogsOnError" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["File", "FallbackToLogsOnError"],
        )],
    }
}

/// Unix user and group ids are 32-bit.
fn id_range(value: Option<i64>, path: &Path) -> Vec<FieldError> {
    match value {
        Some(id) => formats::is_in_range(id, 0, i64::from(u32::MAX))
            .into_iter()
            .map(|msg| FieldError::invalid(path, id, &msg))
            .collect(),
        None => Vec::new(),
    }
}

/// Upstream's `validateSeccompProfileField`.
pub fn seccomp_profile(
    profile: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
    path: &Path,
) -> Vec<FieldError> {
    let Some(profile) = profile else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    match profile.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    match (profile.type_.as_str(), &profile.localhost_profile) {
        ("Localhost", None) => errs.push(FieldError::required(
            &path.child("localhostProfile"),
            "must be set when seccomp type is Localhost",
        )),
        ("Localhost", Some(p)) => {
            errs.extend(local_descending_path(p, &path.child("localhostProfile")));
        }
        (_, Some(_)) => errs.push(FieldError::invalid(
            &path.child("localhostProfile"),
            BadValue::json(profile),
            "can only be set when seccomp type is Localhost",
        )),
        (_, None) => {}
    }
    errs
}

/// The parts of upstream's `ValidateSecurityContext` that do not depend on cluster
/// policy.
fn security_context(sc: Option<&SecurityContext>, path: &Path) -> Vec<FieldError> {
    let Some(sc) = sc else {
        return Vec::new();
    };
    let mut errs = id_range(sc.run_as_user, &path.child("runAsUser"));
    errs.extend(id_range(sc.run_as_group, &path.child("runAsGroup")));
    if let Some(proc_mount) = sc.proc_mount.as_deref()
        && !matches!(proc_mount, "Default" | "Unmasked")
    {
        errs.push(FieldError::not_supported(
            &path.child("procMount"),
            proc_mount,
            &["Default", "Unmasked"],
        ));
    }
    errs.extend(seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    if sc.allow_privilege_escalation == Some(false) && sc.privileged == Some(true) {
        errs.push(FieldError::invalid(
            path,
            BadValue::json(sc),
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
    errs
}

/// Upstream's `validateContainerCommon`: what every kind of container must satisfy.
fn common(c: &Container, ctx: &SpecContext<'_>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if c.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(dns1123_label(&c.name, &path.child("name")));
    }
    if c.image.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    errs.extend(termination_message_policy(
        c.termination_message_policy.as_deref(),
        &path.child("terminationMessagePolicy"),
    ));
    errs.extend(ports(c.ports.as_ref(), &path.child("ports")));
    errs.extend(env::env(c.env.as_ref(), &path.child("env")));
    errs.extend(env::env_from(c.env_from.as_ref(), &path.child("envFrom")));
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|sc| sc.privileged)
        .unwrap_or(false);
    errs.extend(volume_mounts(
        c.volume_mounts.as_ref(),
        ctx.volumes,
        privileged,
        &path.child("volumeMounts"),
    ));
    errs.extend(pull_policy(
        c.image_pull_policy.as_deref(),
        &path.child("imagePullPolicy"),
    ));
    errs.extend(resources::requirements(
        c.resources.as_ref(),
        &path.child("resources"),
    ));
    errs.extend(security_context(
        c.security_context.as_ref(),
        &path.child("securityContext"),
    ));
    errs
}

fn probes_and_hooks(c: &Container, ctx: &SpecContext<'_>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(l) = &c.lifecycle {
        errs.extend(probe::lifecycle(
            l,
            ctx.grace_period,
            &path.child("lifecycle"),
        ));
    }
    let probes = [
        (
            c.liveness_probe.as_ref(),
            ProbeKind::Liveness,
            "livenessProbe",
        ),
        (
            c.readiness_probe.as_ref(),
            ProbeKind::Readiness,
            "readinessProbe",
        ),
        (c.startup_probe.as_ref(), ProbeKind::Startup, "startupProbe"),
    ];
    for (p, kind, name) in probes {
        errs.extend(probe::probe(p, kind, ctx.grace_period, &path.child(name)));
    }
    errs
}

/// Upstream's `AccumulateUniqueHostPorts`: a host port (with protocol and host IP) may be
/// claimed once.
fn host_port_conflicts(containers: &[&Container], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{host_port}",
                port.protocol.as_deref().unwrap_or(""),
                port.host_ip.as_deref().unwrap_or("")
            );
            if !seen.insert(key.clone()) {
                let at = path.index(ci).child("ports").index(pi).child("hostPort");
                errs.push(FieldError::duplicate(&at, key));
            }
        }
    }
    errs
}

/// Upstream's `validateContainers`.
pub fn containers(list: &[Container], ctx: &SpecContext<'_>, path: &Path) -> Vec<FieldError> {
    if list.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let idx = path.index(i);
        errs.extend(common(c, ctx, &idx));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&idx.child("name"), &c.name));
        }
        errs.extend(probes_and_hooks(c, ctx, &idx));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &idx.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let all: Vec<&Container> = list.iter().collect();
    errs.extend(host_port_conflicts(&all, path));
    errs
}

/// Upstream's `validateInitContainers`.
pub fn init_containers(
    list: &[Container],
    regular: &[Container],
    ctx: &SpecContext<'_>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in list.iter().enumerate() {
        let idx = path.index(i);
        errs.extend(common(c, ctx, &idx));
        let restart_always = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(FieldError::not_supported(
                    &idx.child("restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&idx.child("name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        // Init containers run one at a time, so only conflicts within one count.
        errs.extend(host_port_conflicts(&[c], path));
        if restart_always {
            errs.extend(probes_and_hooks(c, ctx, &idx));
        } else {
            let not_allowed = "may not be set for init containers without restartPolicy=Always";
            let set = [
                (c.lifecycle.is_some(), "lifecycle"),
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ];
            for (present, name) in set {
                if present {
                    errs.push(FieldError::forbidden(&idx.child(name), not_allowed));
                }
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base(extra: serde_json::Value) -> serde_json::Value {
        let mut c = json!({
            "name": "web", "image": "nginx",
            "imagePullPolicy": "IfNotPresent", "terminationMessagePolicy": "File"
        });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    }

    fn check(list: serde_json::Value) -> Vec<String> {
        let list: Vec<Container> = serde_json::from_value(list).expect("containers");
        let volumes: BTreeSet<String> = ["data".to_string()].into();
        let ctx = SpecContext {
            volumes: &volumes,
            grace_period: Some(30),
        };
        containers(&list, &ctx, &Path::new("c"))
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn container_cases() {
        let cases: Vec<(serde_json::Value, Vec<&str>)> = vec![
            (json!([base(json!({}))]), vec![]),
            (json!([]), vec!["c: Required value"]),
            (
                json!([base(json!({"image": ""}))]),
                vec!["c[0].image: Required value"],
            ),
            (
                json!([base(json!({"name": "Web_1"}))]),
                vec![
                    "c[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!([base(json!({})), base(json!({}))]),
                vec!["c[1].name: Duplicate value: \"web\""],
            ),
            (
                json!([base(
                    json!({"imagePullPolicy": "Sometimes", "terminationMessagePolicy": ""})
                )]),
                vec![
                    "c[0].terminationMessagePolicy: Required value",
                    "c[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                ],
            ),
            (
                json!([base(json!({"ports": [
                    {"containerPort": 80, "protocol": "TCP", "name": "http"},
                    {"containerPort": 70000, "protocol": "ICMP", "name": "http", "hostPort": -1},
                    {"containerPort": 0, "protocol": "UDP"}
                ]}))]),
                vec![
                    "c[0].ports[1].name: Duplicate value: \"http\"",
                    "c[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                    "c[0].ports[1].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
                    "c[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                    "c[0].ports[2].containerPort: Required value",
                ],
            ),
            (
                json!([base(json!({"volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "nope", "mountPath": "/data", "subPath": "../x"}
                ]}))]),
                vec![
                    "c[0].volumeMounts[1].name: Not found: \"nope\"",
                    "c[0].volumeMounts[1].mountPath: Invalid value: \"/data\": must be unique",
                    "c[0].volumeMounts.subPath: Invalid value: \"../x\": must not contain '..'",
                ],
            ),
            (
                json!([
                    base(
                        json!({"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]})
                    ),
                    base(
                        json!({"name": "b", "ports": [{"containerPort": 81, "hostPort": 8080, "protocol": "TCP"}]})
                    )
                ]),
                vec!["c[1].ports[0].hostPort: Duplicate value: \"TCP//8080\""],
            ),
            (
                json!([base(json!({"restartPolicy": "Always"}))]),
                vec!["c[0].restartPolicy: Forbidden: may not be set for non-init containers"],
            ),
            (
                json!([base(
                    json!({"securityContext": {"runAsUser": -1, "privileged": true, "allowPrivilegeEscalation": false}})
                )]),
                vec![
                    "c[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 4294967295, inclusive",
                    "c[0].securityContext: Invalid value: {\"allowPrivilegeEscalation\":false,\"privileged\":true,\"runAsUser\":-1}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn init_container_rules() {
        let regular: Vec<Container> =
            serde_json::from_value(json!([base(json!({}))])).expect("regular");
        let init: Vec<Container> = serde_json::from_value(json!([
            base(json!({"name": "web"})),
            base(json!({"name": "setup", "livenessProbe": {"exec": {"command": ["x"]}}})),
            base(json!({"name": "sidecar", "restartPolicy": "OnFailure"}))
        ]))
        .expect("init");
        let volumes = BTreeSet::new();
        let ctx = SpecContext {
            volumes: &volumes,
            grace_period: Some(30),
        };
        let got: Vec<String> = init_containers(&init, &regular, &ctx, &Path::new("i"))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "i[0].name: Duplicate value: \"web\"",
                "i[1].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
                "i[2].restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
            ]
        );
    }
}
