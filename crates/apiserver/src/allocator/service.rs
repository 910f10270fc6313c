//! The Service fields allocation reads and fills, as upstream's service strategy and
//! allocator prepare them: clusterIP and clusterIPs kept in step, values the client left
//! out of an update carried over, fields a type change makes meaningless dropped, and
//! the IP family fields defaulted for a single-stack IPv4 cluster. Pure functions on the
//! typed object; the store work is in the parent module.

use std::collections::{BTreeMap, BTreeSet};

use api::validation::{BadValue, FieldError, Path};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};

/// The clusterIP of a headless Service.
pub const NONE: &str = "None";
const SINGLE_STACK: &str = "SingleStack";
const REQUIRE_DUAL_STACK: &str = "RequireDualStack";
const IPV4: &str = "IPv4";
const IPV6: &str = "IPv6";

fn spec(svc: &Service) -> &ServiceSpec {
    static EMPTY: std::sync::OnceLock<ServiceSpec> = std::sync::OnceLock::new();
    svc.spec
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(ServiceSpec::default))
}

fn spec_mut(svc: &mut Service) -> &mut ServiceSpec {
    svc.spec.get_or_insert_with(Default::default)
}

fn service_type(svc: &Service) -> &str {
    spec(svc).type_.as_deref().unwrap_or("")
}

fn cluster_ip(svc: &Service) -> &str {
    spec(svc).cluster_ip.as_deref().unwrap_or("")
}

fn cluster_ip_list(svc: &Service) -> &[String] {
    spec(svc).cluster_ips.as_deref().unwrap_or_default()
}

fn families(svc: &Service) -> &[String] {
    spec(svc).ip_families.as_deref().unwrap_or_default()
}

fn policy(svc: &Service) -> &str {
    spec(svc).ip_family_policy.as_deref().unwrap_or("")
}

fn health_check_node_port(svc: &Service) -> i32 {
    spec(svc).health_check_node_port.unwrap_or(0)
}

/// Everything but ExternalName has a cluster IP (or "None").
pub fn needs_cluster_ip(svc: &Service) -> bool {
    service_type(svc) != "ExternalName"
}

pub fn needs_node_port(svc: &Service) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// Upstream's `NeedsHealthCheck`: a LoadBalancer keeping traffic on local endpoints.
pub fn needs_health_check_node_port(svc: &Service) -> bool {
    service_type(svc) == "LoadBalancer"
        && spec(svc).external_traffic_policy.as_deref() == Some("Local")
}

/// Whether ports without a nodePort get one (a LoadBalancer may opt out).
pub fn should_allocate_node_ports(svc: &Service) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => spec(svc).allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

pub fn is_headless(svc: &Service) -> bool {
    cluster_ip(svc) == NONE || cluster_ip_list(svc).first().map(String::as_str) == Some(NONE)
}

fn selectorless(svc: &Service) -> bool {
    spec(svc).selector.as_ref().is_none_or(BTreeMap::is_empty)
}

/// The addresses the Service holds from the range: its cluster IPs, unless it is
/// headless or ExternalName.
pub fn allocated_ips(svc: &Service) -> Vec<String> {
    if !needs_cluster_ip(svc) || is_headless(svc) {
        return Vec::new();
    }
    let mut ips: Vec<String> = cluster_ip_list(svc).to_vec();
    if ips.is_empty() && !cluster_ip(svc).is_empty() {
        ips.push(cluster_ip(svc).to_string());
    }
    ips.retain(|ip| !ip.is_empty() && ip != NONE);
    ips
}

/// Every node port the Service holds: its ports' and its health check's.
pub fn allocated_node_ports(svc: &Service) -> BTreeSet<i32> {
    let mut ports = port_node_ports(svc);
    if health_check_node_port(svc) != 0 {
        ports.insert(health_check_node_port(svc));
    }
    ports
}

fn port_node_ports(svc: &Service) -> BTreeSet<i32> {
    spec(svc)
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.node_port.filter(|n| *n != 0))
        .collect()
}

/// Sets clusterIP and clusterIPs to one address.
pub fn set_cluster_ip(svc: &mut Service, ip: &str) {
    let spec = spec_mut(svc);
    spec.cluster_ip = Some(ip.to_string());
    spec.cluster_ips = Some(vec![ip.to_string()]);
}

/// Upstream's `NormalizeClusterIPs`: work out what a client meant when it set only one
/// of clusterIP and clusterIPs (old clients know only the first).
pub fn normalize_cluster_ips(new: &mut Service, old: Option<&Service>) {
    let Some(old) = old else {
        if !cluster_ip(new).is_empty() && cluster_ip_list(new).is_empty() {
            let ip = cluster_ip(new).to_string();
            spec_mut(new).cluster_ips = Some(vec![ip]);
        }
        return;
    };
    if !cluster_ip_list(old).is_empty()
        && cluster_ip_list(new).is_empty()
        && cluster_ip(old) == cluster_ip(new)
    {
        spec_mut(new).cluster_ips = spec(old).cluster_ips.clone();
    }
    if cluster_ip(old) != cluster_ip(new) {
        let same_list = cluster_ip_list(old) == cluster_ip_list(new);
        if !cluster_ip(old).is_empty() && cluster_ip(new).is_empty() {
            if same_list {
                spec_mut(new).cluster_ips = None;
            }
        } else if same_list {
            let ip = cluster_ip(new).to_string();
            spec_mut(new).cluster_ips = Some(vec![ip]);
        }
    }
}

/// Upstream's `patchAllocatedValues`: an update that leaves out what the server
/// allocated (resubmitting the YAML it was created from) keeps it.
pub fn patch_allocated_values(new: &mut Service, old: &Service) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if cluster_ip(new).is_empty() {
            spec_mut(new).cluster_ip = spec(old).cluster_ip.clone();
        }
        if cluster_ip_list(new).is_empty() && !cluster_ip_list(old).is_empty() {
            spec_mut(new).cluster_ips = spec(old).cluster_ips.clone();
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        // Ports are matched by name; a node port still in use by another port of the
        // new object is not handed to a second one.
        let used: BTreeSet<i32> = port_node_ports(old)
            .intersection(&port_node_ports(new))
            .copied()
            .collect();
        let by_name: BTreeMap<String, i32> = spec(old)
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.node_port.unwrap_or(0)))
            .collect();
        for p in spec_mut(new).ports.iter_mut().flatten() {
            if p.node_port.unwrap_or(0) == 0 {
                let previous = by_name
                    .get(p.name.as_deref().unwrap_or(""))
                    .copied()
                    .unwrap_or(0);
                if previous != 0 && !used.contains(&previous) {
                    p.node_port = Some(previous);
                }
            }
        }
    }
    if needs_health_check_node_port(old)
        && needs_health_check_node_port(new)
        && health_check_node_port(new) == 0
    {
        spec_mut(new).health_check_node_port = spec(old).health_check_node_port;
    }
}

/// Upstream's `dropTypeDependentFields`: on a type change, the fields the new type has
/// no use for are cleared — if the client left them as they were (a changed value is
/// the client's and goes to validation). What is cleared is released after the write.
pub fn drop_type_dependent_fields(new: &mut Service, old: &Service) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if cluster_ip(old) == cluster_ip(new) && cluster_ip_list(old) == cluster_ip_list(new) {
            let spec = spec_mut(new);
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        if families(old) == families(new) {
            spec_mut(new).ip_families = None;
        }
        if policy(old) == policy(new) {
            spec_mut(new).ip_family_policy = None;
        }
    }
    if needs_node_port(old)
        && !needs_node_port(new)
        && port_node_ports(old).is_superset(&port_node_ports(new))
    {
        for p in spec_mut(new).ports.iter_mut().flatten() {
            p.node_port = None;
        }
    }
    if needs_health_check_node_port(old)
        && !needs_health_check_node_port(new)
        && health_check_node_port(old) == health_check_node_port(new)
    {
        spec_mut(new).health_check_node_port = None;
    }
    let was_lb = service_type(old) == "LoadBalancer";
    if was_lb && service_type(new) != "LoadBalancer" {
        let (o, n) = (spec(old), spec(new));
        if n.allocate_load_balancer_node_ports.is_some()
            && n.allocate_load_balancer_node_ports == o.allocate_load_balancer_node_ports
        {
            spec_mut(new).allocate_load_balancer_node_ports = None;
        }
        if spec(new).load_balancer_class == spec(old).load_balancer_class {
            spec_mut(new).load_balancer_class = None;
        }
    }
    let accessible = |s: &Service| api::validation::service::externally_accessible(spec(s));
    if accessible(old)
        && !accessible(new)
        && spec(old).external_traffic_policy == spec(new).external_traffic_policy
    {
        spec_mut(new).external_traffic_policy = None;
    }
}

/// What upstream's strategy does to a Service update before validation.
pub fn prepare_update(new: &mut Service, old: &Service) {
    patch_allocated_values(new, old);
    normalize_cluster_ips(new, Some(old));
    drop_type_dependent_fields(new, old);
}

fn invalid_policy(svc: &Service, detail: &str) -> FieldError {
    FieldError::invalid(
        &Path::new("spec").child("ipFamilyPolicy"),
        policy(svc),
        detail,
    )
}

/// Upstream's `initIPFamilyFields` for a cluster with one IPv4 range: defaults
/// `ipFamilyPolicy` and `ipFamilies`, and rejects what asks for IPv6 or dual-stack.
pub fn init_ip_families(new: &mut Service, old: Option<&Service>) -> Vec<FieldError> {
    if !needs_cluster_ip(new) {
        return Vec::new();
    }
    if spec(new).ip_family_policy.is_none() {
        let policy = match old.and_then(|o| spec(o).ip_family_policy.clone()) {
            Some(p) => p,
            None if is_headless(new) && selectorless(new) => REQUIRE_DUAL_STACK.to_string(),
            None => SINGLE_STACK.to_string(),
        };
        spec_mut(new).ip_family_policy = Some(policy);
    }
    let mut errs = Vec::new();
    if let Some(old) = old
        && policy(new) == SINGLE_STACK
    {
        // Going single-stack with the dual-stack fields left as they were: keep the
        // primary ones only.
        if cluster_ip_list(old) == cluster_ip_list(new)
            && cluster_ip_list(new).len() > 1
            && let Some(ips) = spec_mut(new).cluster_ips.as_mut()
        {
            ips.truncate(1);
        }
        if families(old) == families(new)
            && families(new).len() > 1
            && let Some(f) = spec_mut(new).ip_families.as_mut()
        {
            f.truncate(1);
        }
    }
    if policy(new) == SINGLE_STACK {
        if cluster_ip_list(new).len() == 2 {
            errs.push(invalid_policy(
                new,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families(new).len() == 2 {
            errs.push(invalid_policy(
                new,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    let ips = cluster_ip_list(new).to_vec();
    for (i, ip) in ips.iter().enumerate() {
        if ip == NONE {
            break;
        }
        if i < families(new).len() {
            continue;
        }
        if ip.parse::<std::net::Ipv6Addr>().is_ok() {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("clusterIPs").index(i),
                BadValue::json(&ips),
                &format!("{IPV6} is not configured on this cluster"),
            ));
        } else {
            spec_mut(new)
                .ip_families
                .get_or_insert_with(Vec::new)
                .push(IPV4.to_string());
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    if is_headless(new) && selectorless(new) {
        // Selectorless headless Services may list endpoints of either family, so
        // upstream lets them have both even on a single-stack cluster.
        let spec = spec_mut(new);
        let families = spec.ip_families.get_or_insert_with(Vec::new);
        if families.is_empty() {
            families.push(IPV4.to_string());
        }
        if families.len() < 2 && spec.ip_family_policy.as_deref() != Some(SINGLE_STACK) {
            let other = if families[0] == IPV4 { IPV6 } else { IPV4 };
            families.push(other.to_string());
        }
        return Vec::new();
    }
    if policy(new) == REQUIRE_DUAL_STACK {
        errs.push(invalid_policy(
            new,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in families(new).iter().enumerate() {
        if family != IPV4 {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilies").index(i),
                family,
                "not configured on this cluster",
            ));
        }
    }
    if errs.is_empty() && families(new).is_empty() {
        spec_mut(new).ip_families = Some(vec![IPV4.to_string()]);
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn svc(v: Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    fn spec_json(s: &Service) -> Value {
        serde_json::to_value(s.spec.as_ref().expect("spec")).expect("json")
    }

    #[test]
    fn families_on_create() {
        let cases: Vec<(Value, Result<Value, Vec<&str>>)> = vec![
            (
                json!({"type": "ClusterIP"}),
                Ok(json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]})),
            ),
            (
                json!({"type": "ClusterIP", "ipFamilyPolicy": "PreferDualStack"}),
                Ok(json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4"]})),
            ),
            (
                json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "selector": {"a": "b"}}),
                Ok(json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]})),
            ),
            (
                json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}),
                Ok(json!({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]})),
            ),
            (
                json!({"type": "ClusterIP", "clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"]}),
                Ok(json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]})),
            ),
            (
                json!({"type": "ClusterIP", "ipFamilyPolicy": "RequireDualStack"}),
                Err(vec![
                    "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services",
                ]),
            ),
            (
                json!({"type": "ClusterIP", "ipFamilies": ["IPv6"]}),
                Err(vec![
                    "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster",
                ]),
            ),
            (
                json!({"type": "ClusterIP", "clusterIP": "fd00::5", "clusterIPs": ["fd00::5"]}),
                Err(vec![
                    "spec.clusterIPs[0]: Invalid value: [\"fd00::5\"]: IPv6 is not configured on this cluster",
                ]),
            ),
            (
                json!({"type": "ClusterIP", "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "SingleStack"}),
                Err(vec![
                    "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
                ]),
            ),
            (json!({"type": "ExternalName"}), Ok(json!({}))),
        ];
        for (spec_in, want) in cases {
            let mut s = svc(json!({"spec": spec_in.clone()}));
            let errs: Vec<String> = init_ip_families(&mut s, None)
                .iter()
                .map(FieldError::message)
                .collect();
            match want {
                Ok(fields) => {
                    assert!(errs.is_empty(), "{spec_in}: {errs:?}");
                    let out = spec_json(&s);
                    for key in ["ipFamilyPolicy", "ipFamilies"] {
                        assert_eq!(out.get(key), fields.get(key), "{spec_in} {key}");
                    }
                }
                Err(messages) => assert_eq!(errs, messages, "{spec_in}"),
            }
        }
    }

    #[test]
    fn update_keeps_the_old_policy() {
        let old = svc(
            json!({"spec": {"type": "ClusterIP", "ipFamilyPolicy": "PreferDualStack",
            "ipFamilies": ["IPv4"], "clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"]}}),
        );
        let mut new = svc(json!({"spec": {"type": "ClusterIP", "ipFamilies": ["IPv4"],
            "clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"]}}));
        assert!(init_ip_families(&mut new, Some(&old)).is_empty());
        assert_eq!(policy(&new), "PreferDualStack");
    }

    #[test]
    fn normalizes_cluster_ips() {
        let mut created = svc(json!({"spec": {"clusterIP": "10.43.0.7"}}));
        normalize_cluster_ips(&mut created, None);
        assert_eq!(cluster_ip_list(&created), ["10.43.0.7"]);

        let old = svc(json!({"spec": {"clusterIP": "10.43.0.7", "clusterIPs": ["10.43.0.7"]}}));
        // An old client that only knows clusterIP: the list follows it.
        let mut changed =
            svc(json!({"spec": {"clusterIP": "10.43.0.8", "clusterIPs": ["10.43.0.7"]}}));
        normalize_cluster_ips(&mut changed, Some(&old));
        assert_eq!(cluster_ip_list(&changed), ["10.43.0.8"]);
        // Clearing clusterIP alone clears the list too.
        let mut cleared = svc(json!({"spec": {"clusterIPs": ["10.43.0.7"]}}));
        normalize_cluster_ips(&mut cleared, Some(&old));
        assert!(cluster_ip_list(&cleared).is_empty());
        // Leaving the list out keeps it.
        let mut omitted = svc(json!({"spec": {"clusterIP": "10.43.0.7"}}));
        normalize_cluster_ips(&mut omitted, Some(&old));
        assert_eq!(cluster_ip_list(&omitted), ["10.43.0.7"]);
    }

    #[test]
    fn resubmitting_keeps_allocated_values() {
        let old = svc(
            json!({"spec": {"type": "NodePort", "clusterIP": "10.43.0.7",
            "clusterIPs": ["10.43.0.7"],
            "ports": [{"name": "a", "port": 80, "nodePort": 30001},
                      {"name": "b", "port": 81, "nodePort": 30002}]}}),
        );
        let mut new = svc(json!({"spec": {"type": "NodePort",
            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30001},
                      {"name": "c", "port": 82}]}}));
        prepare_update(&mut new, &old);
        let out = spec_json(&new);
        assert_eq!(out["clusterIP"], json!("10.43.0.7"));
        assert_eq!(out["clusterIPs"], json!(["10.43.0.7"]));
        // 30001 moved to port b, so port a does not get it back; c never had one.
        assert_eq!(out["ports"][0].get("nodePort"), None);
        assert_eq!(out["ports"][1]["nodePort"], json!(30001));
        assert_eq!(out["ports"][2].get("nodePort"), None);
    }

    #[test]
    fn type_changes_drop_what_the_new_type_does_not_use() {
        let node_port = json!({"type": "NodePort", "clusterIP": "10.43.0.7",
            "clusterIPs": ["10.43.0.7"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "nodePort": 30001}]});
        let old = svc(json!({ "spec": node_port }));

        let mut to_cluster_ip = old.clone();
        spec_mut(&mut to_cluster_ip).type_ = Some("ClusterIP".into());
        prepare_update(&mut to_cluster_ip, &old);
        let out = spec_json(&to_cluster_ip);
        assert_eq!(out["ports"][0].get("nodePort"), None);
        assert_eq!(out.get("externalTrafficPolicy"), None);
        assert_eq!(out["clusterIP"], json!("10.43.0.7"));

        let mut to_external = old.clone();
        spec_mut(&mut to_external).type_ = Some("ExternalName".into());
        prepare_update(&mut to_external, &old);
        let out = spec_json(&to_external);
        for gone in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            assert_eq!(out.get(gone), None, "{gone}");
        }

        // A node port the client changed while leaving the type stays for validation.
        let mut changed = old.clone();
        spec_mut(&mut changed).type_ = Some("ClusterIP".into());
        if let Some(p) = spec_mut(&mut changed).ports.as_mut() {
            p[0].node_port = Some(30009);
        }
        prepare_update(&mut changed, &old);
        assert_eq!(spec_json(&changed)["ports"][0]["nodePort"], json!(30009));
    }

    #[test]
    fn what_a_service_holds() {
        let s = svc(
            json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.7",
            "clusterIPs": ["10.43.0.7"], "healthCheckNodePort": 30100,
            "externalTrafficPolicy": "Local",
            "ports": [{"port": 80, "nodePort": 30001, "protocol": "TCP"},
                      {"port": 80, "nodePort": 30001, "protocol": "UDP"}]}}),
        );
        assert_eq!(allocated_ips(&s), ["10.43.0.7"]);
        assert_eq!(allocated_node_ports(&s), BTreeSet::from([30001, 30100]));
        assert!(needs_health_check_node_port(&s) && should_allocate_node_ports(&s));
        let headless = svc(json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}}));
        assert!(allocated_ips(&headless).is_empty() && is_headless(&headless));
        let external = svc(json!({"spec": {"type": "ExternalName", "clusterIP": "10.43.0.7"}}));
        assert!(allocated_ips(&external).is_empty());
        let opted_out = svc(json!({"spec": {"type": "LoadBalancer",
            "allocateLoadBalancerNodePorts": false}}));
        assert!(!should_allocate_node_ports(&opted_out));
    }
}
