//! Pods (`describePod`) and pod templates (`DescribePodTemplate`, which Deployments,
//! ReplicaSets and `rollout history --revision` print).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Event, Pod, PodSpec, PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::quantity::Amount;
use super::text::{self, Out, rfc1123z};
use super::{containers, events, volumes};

/// `Kind/name` of the object's controller, as `Controlled By:` shows it.
pub fn controller_of(meta: &ObjectMeta) -> Option<String> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| format!("{}/{}", o.kind, o.name))
}

/// The whole `kubectl describe pod` text.
pub fn describe(pod: &Pod, events: Option<Vec<Event>>) -> String {
    let mut out = Out::new();
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    text::name_and_namespace(&mut out, meta);
    if let Some(priority) = spec.priority {
        out.write(0, &format!("Priority:\t{priority}\n"));
    }
    if let Some(class) = spec
        .priority_class_name
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        out.write(0, &format!("Priority Class Name:\t{class}\n"));
    }
    if let Some(class) = spec.runtime_class_name.as_deref().filter(|c| !c.is_empty()) {
        out.write(0, &format!("Runtime Class Name:\t{class}\n"));
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        out.write(0, &format!("Service Account:\t{sa}\n"));
    }
    match spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        None => out.write(0, "Node:\t<none>\n"),
        Some(node) => out.write(
            0,
            &format!(
                "Node:\t{node}/{}\n",
                status.host_ip.as_deref().unwrap_or("")
            ),
        ),
    }
    if let Some(start) = &status.start_time {
        out.write(0, &format!("Start Time:\t{}\n", rfc1123z(Some(start))));
    }
    text::labels_and_annotations(&mut out, meta);
    let phase = status.phase.as_deref().unwrap_or("");
    match &meta.deletion_timestamp {
        Some(deleted) if phase != "Failed" && phase != "Succeeded" => {
            out.write(
                0,
                &format!(
                    "Status:\tTerminating (lasts {})\n",
                    crate::ctl::age(Some(deleted))
                ),
            );
            out.write(
                0,
                &format!(
                    "Termination Grace Period:\t{}s\n",
                    meta.deletion_grace_period_seconds.unwrap_or(0)
                ),
            );
        }
        _ => out.write(0, &format!("Status:\t{phase}\n")),
    }
    if let Some(reason) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        out.write(0, &format!("Reason:\t{reason}\n"));
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        out.write(0, &format!("Message:\t{message}\n"));
    }
    if let Some(profile) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
    {
        out.write(0, &format!("SeccompProfile:\t{}\n", profile.type_));
        if profile.type_ == "Localhost" {
            out.write(
                0,
                &format!(
                    "LocalhostProfile:\t{}\n",
                    profile.localhost_profile.as_deref().unwrap_or("")
                ),
            );
        }
    }
    out.write(
        0,
        &format!("IP:\t{}\n", status.pod_ip.as_deref().unwrap_or("")),
    );
    let ips: Vec<_> = status.pod_ips.iter().flatten().collect();
    if ips.is_empty() {
        out.write(0, "IPs:\t<none>\n");
    } else {
        out.write(0, "IPs:\n");
        for ip in ips {
            out.write(1, &format!("IP:\t{}\n", ip.ip));
        }
    }
    if let Some(controller) = controller_of(meta) {
        out.write(0, &format!("Controlled By:\t{controller}\n"));
    }
    if let Some(nominated) = status
        .nominated_node_name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        out.write(0, &format!("NominatedNodeName:\t{nominated}\n"));
    }
    if let Some(resources) = &spec.resources {
        out.write(0, "Resources:\n");
        containers::resources(&mut out, Some(resources), 1);
    }
    let resolve = |path: &str| field_value(pod, path);
    if let Some(init) = spec.init_containers.as_ref().filter(|c| !c.is_empty()) {
        containers::describe(
            &mut out,
            "Init Containers",
            init,
            status.init_container_statuses.as_deref(),
            Some(&resolve),
            "",
        );
    }
    containers::describe(
        &mut out,
        "Containers",
        &spec.containers,
        status.container_statuses.as_deref(),
        Some(&resolve),
        "",
    );
    if let Some(ephemeral) = spec.ephemeral_containers.as_ref().filter(|c| !c.is_empty()) {
        // Same fields under another type: through JSON they are containers.
        let as_containers: Vec<Container> = ephemeral
            .iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        containers::describe(
            &mut out,
            "Ephemeral Containers",
            &as_containers,
            status.ephemeral_container_statuses.as_deref(),
            Some(&resolve),
            "",
        );
    }
    let conditions: Vec<_> = status.conditions.iter().flatten().collect();
    if let Some(gates) = spec.readiness_gates.as_ref().filter(|g| !g.is_empty()) {
        out.write(0, "Readiness Gates:\n  Type\tStatus\n");
        for gate in gates {
            let status = conditions
                .iter()
                .find(|c| c.type_ == gate.condition_type)
                .map_or("<none>", |c| c.status.as_str());
            out.write(1, &format!("{} \t{status} \n", gate.condition_type));
        }
    }
    if !conditions.is_empty() {
        out.write(0, "Conditions:\n  Type\tStatus\n");
        for c in &conditions {
            out.write(1, &format!("{} \t{} \n", c.type_, c.status));
        }
    }
    volumes::describe(&mut out, spec.volumes.as_deref(), "");
    let qos = status
        .qos_class
        .clone()
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| qos_class(&spec));
    out.write(0, &format!("QoS Class:\t{qos}\n"));
    text::labels(&mut out, "", "Node-Selectors", spec.node_selector.as_ref());
    text::tolerations(&mut out, "", "Tolerations", spec.tolerations.as_deref());
    topology_spread(&mut out, &spec, "");
    events::section(&mut out, events);
    out.finish()
}

/// `Topology Spread Constraints:` lines, sorted by topology key.
fn topology_spread(out: &mut Out, spec: &PodSpec, space: &str) {
    let mut constraints: Vec<_> = spec.topology_spread_constraints.iter().flatten().collect();
    if constraints.is_empty() {
        return;
    }
    super::gosort::sort(&mut constraints, |a, b| a.topology_key < b.topology_key);
    out.write(0, &format!("{space}Topology Spread Constraints:\t"));
    for (i, c) in constraints.iter().enumerate() {
        if i != 0 {
            out.write(0, &format!("{space}\t"));
        }
        let mut text = format!(
            "{}:{} when max skew {} is exceeded",
            c.topology_key, c.when_unsatisfiable, c.max_skew
        );
        if let Some(selector) = &c.label_selector {
            text.push_str(&format!(
                " for selector {}",
                super::format_label_selector(Some(selector))
            ));
        }
        out.write(0, &format!("{text}\n"));
    }
}

/// A `fieldRef` path's value in `pod` (upstream's `ExtractFieldPathAsString`, for the
/// paths pods accept).
fn field_value(pod: &Pod, path: &str) -> String {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let map_entry = |map: Option<&BTreeMap<String, String>>, prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .and_then(|key| map.and_then(|m| m.get(key)).cloned())
    };
    if let Some(v) = map_entry(meta.labels.as_ref(), "metadata.labels['") {
        return v;
    }
    if let Some(v) = map_entry(meta.annotations.as_ref(), "metadata.annotations['") {
        return v;
    }
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.podIPs" => status.map(|s| {
            s.pod_ips
                .iter()
                .flatten()
                .map(|ip| ip.ip.clone())
                .collect::<Vec<_>>()
                .join(",")
        }),
        _ => None,
    };
    value.unwrap_or_default()
}

/// Upstream's `ComputePodQOS`: BestEffort without cpu or memory requests and limits,
/// Guaranteed when every container limits both and requests equal limits, else
/// Burstable.
pub fn qos_class(spec: &PodSpec) -> String {
    let mut requests: BTreeMap<String, Amount> = BTreeMap::new();
    let mut limits: BTreeMap<String, Amount> = BTreeMap::new();
    let mut guaranteed = true;
    // Pod-level resources replace the containers' when set.
    let all: Vec<Option<&ResourceRequirements>> = match &spec.resources {
        Some(resources) => vec![Some(resources)],
        None => spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .map(|c| c.resources.as_ref())
            .collect(),
    };
    let pod_level = spec.resources.is_some();
    for resources in all {
        let limited = resources.and_then(|r| r.limits.as_ref());
        add_positive(&mut requests, resources.and_then(|r| r.requests.as_ref()));
        add_positive(&mut limits, limited);
        // Pod-level requests without limits leave the pod Guaranteed-eligible.
        if pod_level && limited.is_none() {
            continue;
        }
        let limits_both = ["cpu", "memory"].iter().all(|name| {
            limited
                .and_then(|l| l.get(*name))
                .is_some_and(|q| Amount::parse(&q.0).milli > 0)
        });
        if !limits_both {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort".to_string();
    }
    if guaranteed {
        guaranteed = requests
            .iter()
            .all(|(name, req)| limits.get(name).is_some_and(|l| l.milli == req.milli));
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed".to_string()
    } else {
        "Burstable".to_string()
    }
}

fn add_positive(
    sums: &mut BTreeMap<String, Amount>,
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) {
    for (name, quantity) in list.into_iter().flatten() {
        if name != "cpu" && name != "memory" {
            continue;
        }
        let amount = Amount::parse(&quantity.0);
        if amount.milli > 0 {
            let sum = sums.get(name).map_or(amount, |s| s.plus(amount));
            sums.insert(name.clone(), sum);
        }
    }
}

/// `Pod Template:` and the template (kubectl's `DescribePodTemplate`).
pub fn template(out: &mut Out, template: Option<&PodTemplateSpec>) {
    out.write(0, "Pod Template:\n");
    let Some(template) = template else {
        out.write(1, "<unset>");
        return;
    };
    let meta = template.metadata.clone().unwrap_or_default();
    let spec = template.spec.clone().unwrap_or_default();
    text::labels(out, "", "  Labels", meta.labels.as_ref());
    if meta.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        text::annotations(out, "  Annotations", meta.annotations.as_ref());
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        out.write(1, &format!("Service Account:\t{sa}\n"));
    }
    if let Some(init) = spec.init_containers.as_ref().filter(|c| !c.is_empty()) {
        containers::describe(out, "Init Containers", init, None, None, "  ");
    }
    containers::describe(out, "Containers", &spec.containers, None, None, "  ");
    volumes::describe(out, spec.volumes.as_deref(), "  ");
    topology_spread(out, &spec, "  ");
    if let Some(class) = spec
        .priority_class_name
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        out.write(1, &format!("Priority Class Name:\t{class}\n"));
    }
    text::labels(out, "", "  Node-Selectors", spec.node_selector.as_ref());
    text::tolerations(out, "", "  Tolerations", spec.tolerations.as_deref());
}
