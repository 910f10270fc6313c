//! Pods and pod specs: upstream's `ValidatePodSpec`, `ValidatePodCreate`,
//! `ValidatePodUpdate` and `ValidatePodTemplateSpec`. The spec checks are shared by
//! pods and by the pod templates inside workload controllers.
//!
//! Layout: [`container`] (containers, ports, mounts, security context), [`env`],
//! [`probe`] (probes and lifecycle hooks), [`resources`] (quantities), [`volume`], and
//! [`update`] (what a pod update may change).

pub mod container;
pub mod env;
pub mod probe;
pub mod resources;
pub mod update;
pub mod volume;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec, Toleration};
use serde_json::Value;

use self::container::{SpecContext, dns1123_label};
use crate::validation::errors::{BadValue, FieldError};
use crate::validation::formats;
use crate::validation::meta::{self, MetaRules};
use crate::validation::path::Path;

/// How a pod's metadata is checked.
pub const POD_META: MetaRules = MetaRules {
    name: formats::name_is_dns_subdomain,
    namespaced: Some(true),
    core_finalizers: true,
};

const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;

fn subdomain_field(value: Option<&str>, path: &Path) -> Vec<FieldError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => formats::is_dns1123_subdomain(v)
            .into_iter()
            .map(|msg| FieldError::invalid(path, v, &msg))
            .collect(),
        None => Vec::new(),
    }
}

fn restart_policy(policy: Option<&str>, path: &Path) -> Vec<FieldError> {
    match policy.unwrap_or("") {
        "Always" | "OnFailure" | "Never" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "OnFailure", "Never"],
        )],
    }
}

fn dns_policy(policy: Option<&str>, path: &Path) -> Vec<FieldError> {
    match policy.unwrap_or("") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )],
    }
}

/// Upstream's `validatePodDNSConfig`.
fn dns_config(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let config = spec.dns_config.as_ref();
    if spec.dns_policy.as_deref() == Some("None") {
        let Some(config) = config else {
            return vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        };
        if config.nameservers.as_ref().is_none_or(Vec::is_empty) {
            return vec![FieldError::required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let Some(config) = config else {
        return errs;
    };
    let nameservers = config.nameservers.as_deref().unwrap_or_default();
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            BadValue::json(nameservers),
            &format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        if formats::is_valid_ip(ns).is_none() {
            errs.push(FieldError::invalid(
                &path.child("nameservers").index(i),
                ns,
                formats::INVALID_IP,
            ));
        }
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            BadValue::json(searches),
            &format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths"),
        ));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_LIST_CHARS {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            BadValue::json(searches),
            &format!(
                "must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list"
            ),
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        let search = search.strip_suffix('.').unwrap_or(search);
        errs.extend(subdomain_or_empty(search, &path.child("searches").index(i)));
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if option.name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

fn subdomain_or_empty(value: &str, path: &Path) -> Vec<FieldError> {
    formats::is_dns1123_subdomain(value)
        .into_iter()
        .map(|msg| FieldError::invalid(path, value, &msg))
        .collect()
}

/// Upstream's `ValidateTolerations`.
pub fn tolerations(list: &[Toleration], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let idx = path.index(i);
        let key = t.key.as_deref().unwrap_or("");
        let operator = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key.is_empty() {
            errs.extend(meta::label_name(key, &idx.child("key")));
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                &idx.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &idx.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = formats::is_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        value,
                        &msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &idx.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(FieldError::not_supported(
                &idx.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// Upstream's `validatePodSpecSecurityContext`, minus the Windows and sysctl rules.
fn pod_security_context(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let Some(sc) = &spec.security_context else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let ids = [
        (sc.fs_group, "fsGroup"),
        (sc.run_as_user, "runAsUser"),
        (sc.run_as_group, "runAsGroup"),
    ];
    for (id, name) in ids {
        if let Some(id) = id {
            for msg in formats::is_in_range(id, 0, i64::from(u32::MAX)) {
                errs.push(FieldError::invalid(&path.child(name), id, &msg));
            }
        }
    }
    for (g, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        for msg in formats::is_in_range(*gid, 0, i64::from(u32::MAX)) {
            errs.push(FieldError::invalid(
                &path.child("supplementalGroups").index(g),
                *gid,
                &msg,
            ));
        }
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    errs.extend(container::seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    errs
}

/// Upstream's `validatePodHostNetworkDeps`: with host networking, host ports must equal
/// container ports (a pod template may leave them 0, to be defaulted on the pod).
fn host_network_ports(spec: &PodSpec, is_pod: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.host_network != Some(true) {
        return errs;
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if (is_pod || host_port != 0) && host_port != port.container_port {
                errs.push(FieldError::invalid(
                    &path
                        .child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort"),
                    host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

/// Upstream's `ValidatePodSpec`. `raw` is the spec as sent (for which volume sources are
/// set); `is_pod` is false for pod templates, which are checked a little more loosely.
pub fn pod_spec(spec: &PodSpec, raw: Option<&Value>, path: &Path, is_pod: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match spec.termination_grace_period_seconds {
        None => errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        )),
        Some(g) => errs.extend(meta::nonnegative(
            g,
            &path.child("terminationGracePeriodSeconds"),
        )),
    }
    let volume_list = spec.volumes.as_deref().unwrap_or_default();
    let (volumes, volume_errs) = volume::volumes(
        volume_list,
        raw.and_then(|r| r.get("volumes")),
        &path.child("volumes"),
    );
    errs.extend(volume_errs);
    let ctx = SpecContext {
        volumes: &volumes,
        grace_period: spec.termination_grace_period_seconds,
    };
    errs.extend(container::containers(
        &spec.containers,
        &ctx,
        &path.child("containers"),
    ));
    errs.extend(container::init_containers(
        spec.init_containers.as_deref().unwrap_or_default(),
        &spec.containers,
        &ctx,
        &path.child("initContainers"),
    ));
    errs.extend(host_network_ports(spec, is_pod, path));
    errs.extend(restart_policy(
        spec.restart_policy.as_deref(),
        &path.child("restartPolicy"),
    ));
    errs.extend(dns_policy(
        spec.dns_policy.as_deref(),
        &path.child("dnsPolicy"),
    ));
    errs.extend(meta::labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    errs.extend(pod_security_context(spec, &path.child("securityContext")));
    errs.extend(dns_config(spec, &path.child("dnsConfig")));
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        errs.extend(meta::label_name(
            &gate.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
        ));
    }
    let mut gates = BTreeSet::new();
    for (i, gate) in spec.scheduling_gates.iter().flatten().enumerate() {
        let idx = path.child("schedulingGates").index(i);
        errs.extend(meta::label_name(&gate.name, &idx));
        if !gates.insert(gate.name.as_str()) {
            errs.push(FieldError::duplicate(&idx, &gate.name));
        }
    }
    errs.extend(subdomain_field(
        spec.service_account_name.as_deref(),
        &path.child("serviceAccountName"),
    ));
    errs.extend(subdomain_field(
        spec.node_name.as_deref(),
        &path.child("nodeName"),
    ));
    if let Some(deadline) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&deadline)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            deadline,
            &formats::inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for (value, name) in [(&spec.hostname, "hostname"), (&spec.subdomain, "subdomain")] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(dns1123_label(v, &path.child(name)));
        }
    }
    errs.extend(tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    errs.extend(subdomain_field(
        spec.priority_class_name.as_deref(),
        &path.child("priorityClassName"),
    ));
    if let Some(rc) = spec.runtime_class_name.as_deref() {
        errs.extend(subdomain_or_empty(rc, &path.child("runtimeClassName")));
    }
    match spec.preemption_policy.as_deref() {
        None | Some("PreemptLowerPriority" | "Never") => {}
        Some("") => errs.push(FieldError::required(&path.child("preemptionPolicy"), "")),
        Some(other) => errs.push(FieldError::not_supported(
            &path.child("preemptionPolicy"),
            other,
            &["PreemptLowerPriority", "Never"],
        )),
    }
    if let Some(os) = &spec.os {
        match os.name.as_str() {
            "" => errs.push(FieldError::required(
                &path.child("os").child("name"),
                "cannot be empty",
            )),
            "linux" | "windows" => {}
            other => errs.push(FieldError::not_supported(
                &path.child("os"),
                other,
                &["linux", "windows"],
            )),
        }
    }
    errs
}

/// Upstream's `validateContainersOnlyForPod`: a pod's images may not be padded.
fn images_unpadded(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lists = [
        (&spec.containers[..], "containers"),
        (
            spec.init_containers.as_deref().unwrap_or_default(),
            "initContainers",
        ),
    ];
    for (list, name) in lists {
        for (i, c) in list.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &path.child(name).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// Upstream's `validatePodMetadataAndSpec`.
fn metadata_and_spec(pod: &Pod, raw: &Value) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let mut errs = meta::object_meta(&pod.metadata, &POD_META);
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    errs.extend(pod_spec(spec, raw.get("spec"), &spec_path, true));
    errs.extend(images_unpadded(spec, &spec_path));
    errs
}

/// Upstream's `ValidatePodCreate`.
pub fn pod_create(pod: &Pod, raw: &Value) -> Vec<FieldError> {
    let mut errs = metadata_and_spec(pod, raw);
    let spec_path = Path::new("spec");
    if let Some(spec) = &pod.spec {
        if spec
            .ephemeral_containers
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            errs.push(FieldError::forbidden(
                &spec_path.child("ephemeralContainers"),
                "cannot be set on create",
            ));
        }
        let gated = spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty());
        if spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) && gated {
            errs.push(FieldError::forbidden(
                &spec_path.child("nodeName"),
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
    }
    errs
}

/// Upstream's `ValidatePodUpdate`.
pub fn pod_update(new: &Pod, raw: &Value, old: &Pod) -> Vec<FieldError> {
    let mut errs = meta::object_meta_update(&new.metadata, &old.metadata);
    errs.extend(metadata_and_spec(new, raw));
    let empty = PodSpec::default();
    errs.extend(update::spec_update(
        new.spec.as_ref().unwrap_or(&empty),
        old.spec.as_ref().unwrap_or(&empty),
    ));
    errs
}

/// Upstream's `ValidatePodTemplateSpec` for the template at `path`; `raw` is the
/// template as sent.
pub fn pod_template(
    template: &PodTemplateSpec,
    raw: Option<&Value>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = &template.metadata {
        // Upstream reports these on `template.labels`, not `template.metadata.labels`.
        errs.extend(meta::labels(m.labels.as_ref(), &path.child("labels")));
        errs.extend(meta::annotations(
            m.annotations.as_ref(),
            &path.child("annotations"),
        ));
    }
    let empty = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&empty);
    errs.extend(pod_spec(
        spec,
        raw.and_then(|r| r.get("spec")),
        &path.child("spec"),
        false,
    ));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A pod as it looks after defaulting.
    pub(crate) fn defaulted_pod() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx",
                    "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
                    "terminationMessagePath": "/dev/termination-log"
                }],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
                "securityContext": {}, "enableServiceLinks": true
            }
        })
    }

    fn check(raw: Value) -> Vec<String> {
        let pod: Pod = serde_json::from_value(raw.clone()).expect("pod");
        pod_create(&pod, &raw)
            .iter()
            .map(FieldError::message)
            .collect()
    }

    fn with(mut raw: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        if let Some(Value::Object(map)) = raw.pointer_mut(parent) {
            map.insert(key.to_string(), value);
        }
        raw
    }

    #[test]
    fn pod_create_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (defaulted_pod(), vec![]),
            (
                with(defaulted_pod(), "/spec/containers", json!([])),
                vec!["spec.containers: Required value"],
            ),
            (
                with(defaulted_pod(), "/spec/restartPolicy", json!("Sometimes")),
                vec![
                    "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                ],
            ),
            (
                with(defaulted_pod(), "/spec/dnsPolicy", json!("Cluster")),
                vec![
                    "spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
                ],
            ),
            (
                with(
                    defaulted_pod(),
                    "/spec/terminationGracePeriodSeconds",
                    json!(-5),
                ),
                vec![
                    "spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0",
                ],
            ),
            (
                with(defaulted_pod(), "/spec/activeDeadlineSeconds", json!(0)),
                vec![
                    "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
                ],
            ),
            (
                with(
                    defaulted_pod(),
                    "/spec/ephemeralContainers",
                    json!([{"name": "debug", "image": "busybox"}]),
                ),
                vec!["spec.ephemeralContainers: Forbidden: cannot be set on create"],
            ),
            (
                with(
                    defaulted_pod(),
                    "/spec/tolerations",
                    json!([{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "tolerationSeconds": 5}]),
                ),
                vec![
                    "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                    "spec.tolerations[1].effect: Invalid value: \"\": effect must be 'NoExecute' when `tolerationSeconds` is set",
                ],
            ),
            (
                with(
                    defaulted_pod(),
                    "/spec/nodeSelector",
                    json!({"disk": "ssd!"}),
                ),
                vec![
                    "spec.nodeSelector: Invalid value: \"ssd!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ],
            ),
            (
                with(defaulted_pod(), "/spec/dnsPolicy", json!("None")),
                vec![
                    "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None",
                ],
            ),
            (
                with(
                    with(defaulted_pod(), "/spec/hostNetwork", json!(true)),
                    "/spec/containers/0/ports",
                    json!([{"containerPort": 80, "protocol": "TCP"}]),
                ),
                vec![
                    "spec.containers[0].ports[0].hostPort: Invalid value: 0: must match `containerPort` when `hostNetwork` is true",
                ],
            ),
            (
                with(defaulted_pod(), "/spec/containers/0/image", json!(" nginx")),
                vec![
                    "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn templates_report_labels_on_template_path() {
        let raw = json!({
            "metadata": {"labels": {"app": "-bad"}},
            "spec": defaulted_pod()["spec"].clone(),
        });
        let template: PodTemplateSpec = serde_json::from_value(raw.clone()).expect("template");
        let got: Vec<String> =
            pod_template(&template, Some(&raw), &Path::new("spec").child("template"))
                .iter()
                .map(FieldError::message)
                .collect();
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("spec.template.labels: Invalid value: \"-bad\""),
            "{got:?}"
        );
    }
}
