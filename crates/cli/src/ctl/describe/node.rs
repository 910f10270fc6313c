//! Nodes (`describeNode`): roles, taints, the node Lease, conditions, addresses,
//! capacity, system info, and the pods on the node with their share of its
//! allocatable resources.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};

use super::events;
use super::quantity::Amount;
use super::text::{self, Out, rfc1123z, rfc1123z_micro};

const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

/// The node's roles from its labels, sorted and deduplicated (`findNodeRoles`).
fn roles(node: &Node) -> Vec<String> {
    let mut roles: Vec<String> = node
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix(ROLE_PREFIX) {
            Some(role) if !role.is_empty() => Some(role.to_string()),
            Some(_) => None,
            None if k == ROLE_LABEL && !v.is_empty() => Some(v.clone()),
            None => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The node's Lease, or why it could not be read.
pub type LeaseLookup = Result<Lease, String>;

/// The whole `kubectl describe node` text; `pods` are the node's non-terminated pods.
pub fn describe(
    node: &Node,
    pods: &[Pod],
    lease: LeaseLookup,
    events: Option<Vec<Event>>,
) -> String {
    let mut out = Out::new();
    let meta = &node.metadata;
    let spec = node.spec.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    out.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    let roles = roles(node);
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    out.write(0, &format!("Roles:\t{roles}\n"));
    text::labels_and_annotations(&mut out, meta);
    out.write(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(meta.creation_timestamp.as_ref())
        ),
    );
    text::taints(&mut out, "Taints", spec.taints.as_deref());
    out.write(
        0,
        &format!("Unschedulable:\t{}\n", spec.unschedulable.unwrap_or(false)),
    );
    match lease {
        Ok(lease) => {
            let spec = lease.spec.unwrap_or_default();
            out.write(0, "Lease:\n");
            out.write(
                1,
                &format!(
                    "HolderIdentity:\t{}\n",
                    spec.holder_identity.as_deref().unwrap_or("<unset>")
                ),
            );
            let or_unset =
                |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime>| {
                    t.map_or_else(|| "<unset>".to_string(), |t| rfc1123z_micro(Some(t)))
                };
            out.write(
                1,
                &format!("AcquireTime:\t{}\n", or_unset(spec.acquire_time.as_ref())),
            );
            out.write(
                1,
                &format!("RenewTime:\t{}\n", or_unset(spec.renew_time.as_ref())),
            );
        }
        Err(e) => out.write(0, &format!("Lease:\tFailed to get lease: {e}\n")),
    }
    let conditions: Vec<_> = status.conditions.iter().flatten().collect();
    if !conditions.is_empty() {
        out.write(
            0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        );
        out.write(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conditions {
            out.write(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    c.type_,
                    c.status,
                    rfc1123z(c.last_heartbeat_time.as_ref()),
                    rfc1123z(c.last_transition_time.as_ref()),
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or("")
                ),
            );
        }
    }
    out.write(0, "Addresses:\n");
    for a in status.addresses.iter().flatten() {
        out.write(1, &format!("{}:\t{}\n", a.type_, a.address));
    }
    let resource_list = |out: &mut Out, list: &BTreeMap<String, _>| {
        for (name, q) in list {
            let q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity = q;
            out.write(
                0,
                &format!("  {name}:\t{}\n", Amount::parse(&q.0).canonical()),
            );
        }
    };
    let capacity = status.capacity.clone().unwrap_or_default();
    let allocatable = status.allocatable.clone().unwrap_or_default();
    if !capacity.is_empty() {
        out.write(0, "Capacity:\n");
        resource_list(&mut out, &capacity);
    }
    if !allocatable.is_empty() {
        out.write(0, "Allocatable:\n");
        resource_list(&mut out, &allocatable);
    }
    let info = status.node_info.clone().unwrap_or_default();
    out.write(0, "System Info:\n");
    for (label, value) in [
        ("Machine ID", &info.machine_id),
        ("System UUID", &info.system_uuid),
        ("Boot ID", &info.boot_id),
        ("Kernel Version", &info.kernel_version),
        ("OS Image", &info.os_image),
        ("Operating System", &info.operating_system),
        ("Architecture", &info.architecture),
        ("Container Runtime Version", &info.container_runtime_version),
        ("Kubelet Version", &info.kubelet_version),
        ("Kube-Proxy Version", &info.kube_proxy_version),
    ] {
        out.write(0, &format!("  {label}:\t{value}\n"));
    }
    if let Some(cidr) = spec.pod_cidr.as_deref().filter(|c| !c.is_empty()) {
        out.write(0, &format!("PodCIDR:\t{cidr}\n"));
    }
    if let Some(cidrs) = spec.pod_cidrs.as_ref().filter(|c| !c.is_empty()) {
        out.write(0, &format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    if let Some(provider) = spec.provider_id.as_deref().filter(|p| !p.is_empty()) {
        out.write(0, &format!("ProviderID:\t{provider}\n"));
    }
    let allocatable = if allocatable.is_empty() {
        capacity
    } else {
        allocatable
    };
    pods_section(&mut out, pods, &allocatable);
    events::section(&mut out, events);
    out.finish()
}

type Resources = BTreeMap<String, Amount>;

/// Upstream's `resourcehelper.PodRequestsAndLimits`: the containers' sums, raised to
/// any init container's, plus the pod overhead.
fn pod_requests_and_limits(pod: &Pod) -> (Resources, Resources) {
    let mut requests = Resources::new();
    let mut limits = Resources::new();
    let Some(spec) = &pod.spec else {
        return (requests, limits);
    };
    let add = |sum: &mut Resources, list: Option<&BTreeMap<String, _>>| {
        for (name, q) in list.into_iter().flatten() {
            let q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity = q;
            let amount = Amount::parse(&q.0);
            let next = sum.get(name).map_or(amount, |s| s.plus(amount));
            sum.insert(name.clone(), next);
        }
    };
    for c in &spec.containers {
        let r = c.resources.as_ref();
        add(&mut requests, r.and_then(|r| r.requests.as_ref()));
        add(&mut limits, r.and_then(|r| r.limits.as_ref()));
    }
    for c in spec.init_containers.iter().flatten() {
        let r = c.resources.as_ref();
        for (sum, list) in [
            (&mut requests, r.and_then(|r| r.requests.as_ref())),
            (&mut limits, r.and_then(|r| r.limits.as_ref())),
        ] {
            for (name, q) in list.into_iter().flatten() {
                let amount = Amount::parse(&q.0);
                let next = sum.get(name).map_or(amount, |s| s.max(amount));
                sum.insert(name.clone(), next);
            }
        }
    }
    if let Some(overhead) = &spec.overhead {
        add(&mut requests, Some(overhead));
        // Overhead counts toward limits only where a limit is set.
        for (name, q) in overhead {
            if let Some(limit) = limits.get(name).copied() {
                limits.insert(name.clone(), limit.plus(Amount::parse(&q.0)));
            }
        }
    }
    (requests, limits)
}

/// `part` as a whole percentage of `total` (Go's `int64(float64 / float64 * 100)`).
fn percent(part: i128, total: i128) -> i64 {
    if total == 0 {
        return 0;
    }
    (part as f64 / total as f64 * 100.0) as i64
}

fn get(list: &Resources, name: &str) -> Amount {
    list.get(name).copied().unwrap_or(Amount::ZERO)
}

fn allocatable_amount(
    allocatable: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    name: &str,
) -> Amount {
    allocatable
        .get(name)
        .map_or(Amount::ZERO, |q| Amount::parse(&q.0))
}

/// `Non-terminated Pods:` and `Allocated resources:` (`describeNodeResource`).
fn pods_section(
    out: &mut Out,
    pods: &[Pod],
    allocatable: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) {
    out.write(
        0,
        &format!("Non-terminated Pods:\t({} in total)\n", pods.len()),
    );
    out.write(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    );
    out.write(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n",
    );
    let cpu = allocatable_amount(allocatable, "cpu").milli;
    let memory = allocatable_amount(allocatable, "memory").value();
    let mut total_requests = Resources::new();
    let mut total_limits = Resources::new();
    for pod in pods {
        let (requests, limits) = pod_requests_and_limits(pod);
        let (cr, cl) = (get(&requests, "cpu"), get(&limits, "cpu"));
        let (mr, ml) = (get(&requests, "memory"), get(&limits, "memory"));
        out.write(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}\n",
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.name.as_deref().unwrap_or(""),
                cr.canonical(),
                percent(cr.milli, cpu),
                cl.canonical(),
                percent(cl.milli, cpu),
                mr.canonical(),
                percent(mr.value(), memory),
                ml.canonical(),
                percent(ml.value(), memory),
                crate::ctl::age(pod.metadata.creation_timestamp.as_ref())
            ),
        );
        for (sum, list) in [(&mut total_requests, requests), (&mut total_limits, limits)] {
            for (name, amount) in list {
                let next = sum.get(&name).map_or(amount, |s| s.plus(amount));
                sum.insert(name, next);
            }
        }
    }
    out.write(
        0,
        "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
    );
    out.write(1, "Resource\tRequests\tLimits\n");
    out.write(1, "--------\t--------\t------\n");
    let row = |out: &mut Out, name: &str, total: i128, by: fn(&Amount) -> i128| {
        let r = get(&total_requests, name);
        let l = get(&total_limits, name);
        out.write(
            1,
            &format!(
                "{name}\t{} ({}%)\t{} ({}%)\n",
                r.canonical(),
                percent(by(&r), total),
                l.canonical(),
                percent(by(&l), total)
            ),
        );
    };
    row(out, "cpu", cpu, |a| a.milli);
    row(out, "memory", memory, Amount::value);
    row(
        out,
        "ephemeral-storage",
        allocatable_amount(allocatable, "ephemeral-storage").value(),
        Amount::value,
    );
    for name in allocatable.keys().filter(|n| n.starts_with("hugepages-")) {
        row(
            out,
            name,
            allocatable_amount(allocatable, name).value(),
            Amount::value,
        );
    }
    let standard = ["cpu", "memory", "ephemeral-storage", "pods"];
    for name in allocatable
        .keys()
        .filter(|n| !n.starts_with("hugepages-") && !standard.contains(&n.as_str()))
    {
        out.write(
            1,
            &format!(
                "{name}\t{}\t{}\n",
                get(&total_requests, name).canonical(),
                get(&total_limits, name).canonical()
            ),
        );
    }
}
