//! Services, as upstream's `ValidateService` and `ValidateServiceUpdate`: ports, type,
//! session affinity, cluster IPs and families, traffic policies.
//!
//! Upstream's strategy copies `clusterIP` into `clusterIPs` before validating; here a
//! missing `clusterIPs` is read as `[clusterIP]` so objects straight from kubectl pass.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::errors::{BadValue, FieldError};
use super::formats;
use super::meta::{self, MetaRules};
use super::path::Path;
use super::pod::container::{dns1123_label, protocol};
use super::pod::probe::port_num_or_name;

/// How a Service's metadata is checked: names are DNS-1035 labels (they become DNS
/// names and environment variable prefixes).
pub const SERVICE_META: MetaRules = MetaRules {
    name: formats::name_is_dns1035_label,
    namespaced: Some(true),
    core_finalizers: true,
};

const MAX_CLIENT_IP_AFFINITY_SECONDS: i32 = 86400;

fn service_type(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().unwrap_or("")
}

/// `clusterIPs`, or `[clusterIP]` when only that was given.
fn cluster_ips(spec: &ServiceSpec) -> Vec<String> {
    match (&spec.cluster_ips, spec.cluster_ip.as_deref()) {
        (Some(ips), _) if !ips.is_empty() => ips.clone(),
        (_, Some(ip)) if !ip.is_empty() => vec![ip.to_string()],
        _ => Vec::new(),
    }
}

fn is_headless(spec: &ServiceSpec) -> bool {
    cluster_ips(spec) == ["None"]
}

/// Upstream's `ExternallyAccessible`; defaulting uses the same rule.
pub fn externally_accessible(spec: &ServiceSpec) -> bool {
    matches!(service_type(spec), "LoadBalancer" | "NodePort")
        || (service_type(spec) == "ClusterIP"
            && spec
                .external_ips
                .as_ref()
                .is_some_and(|ips| !ips.is_empty()))
}

/// Upstream's `validateServicePort`.
fn port(
    p: &ServicePort,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(dns1123_label(name, &path.child("name")));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    for msg in formats::is_valid_port_num(i64::from(p.port)) {
        errs.push(FieldError::invalid(&path.child("port"), p.port, &msg));
    }
    errs.extend(protocol(p.protocol.as_deref(), &path.child("protocol")));
    let zero = IntOrString::Int(0);
    errs.extend(port_num_or_name(
        p.target_port.as_ref().unwrap_or(&zero),
        &path.child("targetPort"),
    ));
    if let Some(node_port) = p.node_port {
        for msg in formats::is_in_range(i64::from(node_port), 0, 65535) {
            errs.push(FieldError::invalid(
                &path.child("nodePort"),
                node_port,
                &msg,
            ));
        }
    }
    if let Some(app) = &p.app_protocol {
        errs.extend(meta::label_name(app, &path.child("appProtocol")));
    }
    errs
}

/// Upstream's `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ip_fields(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ips_path = path.child("clusterIPs");
    let ips = cluster_ips(spec);
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    if !cluster_ip.is_empty() {
        if ips.first().map(String::as_str) != Some(cluster_ip) {
            errs.push(FieldError::invalid(
                &ips_path,
                BadValue::json(&ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            BadValue::json(&ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families = spec.ip_families.as_deref().unwrap_or_default();
    let mut seen = BTreeSet::new();
    for (i, family) in families.iter().enumerate() {
        let idx = path.child("ipFamilies").index(i);
        if !matches!(family.as_str(), "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(&idx, family, &["IPv4", "IPv6"]));
        }
        if !seen.insert(family) {
            errs.push(FieldError::duplicate(&idx, family));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref()
        && !matches!(
            policy,
            "SingleStack" | "PreferDualStack" | "RequireDualStack"
        )
    {
        errs.push(FieldError::not_supported(
            &path.child("ipFamilyPolicy"),
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    let mut invalid = false;
    let mut parsed = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    BadValue::json(&ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        match formats::is_valid_ip(ip) {
            Some(addr) => parsed.push(addr),
            None => {
                invalid = true;
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip,
                    formats::INVALID_IP,
                ));
            }
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            BadValue::json(&ips),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return errs;
    }
    if parsed.len() > 1 && parsed.iter().filter(|ip| ip.is_ipv4()).count() != 1 {
        errs.push(FieldError::invalid(
            &ips_path,
            BadValue::json(&ips),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(spec) {
        for (i, (ip, family)) in parsed.iter().zip(families).enumerate() {
            let wrong = match family.as_str() {
                "IPv4" => ip.is_ipv6(),
                "IPv6" => ip.is_ipv4(),
                _ => false,
            };
            if wrong {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.to_string(),
                    &format!("expected an {family} value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// Upstream's `ValidateNonSpecialIP` for an address that parsed.
pub fn non_special_ip(raw: &str, ip: IpAddr, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (unspecified, loopback, link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => (
            v4.is_unspecified(),
            v4.is_loopback(),
            v4.is_link_local(),
            v4.octets()[..3] == [224, 0, 0],
        ),
        IpAddr::V6(v6) => {
            let seg = v6.segments()[0];
            (
                v6.is_unspecified(),
                v6.is_loopback(),
                seg & 0xffc0 == 0xfe80,
                seg & 0xff0f == 0xff02,
            )
        }
    };
    if unspecified {
        errs.push(FieldError::invalid(
            path,
            raw,
            &format!("may not be unspecified ({raw})"),
        ));
    }
    if loopback {
        errs.push(FieldError::invalid(
            path,
            raw,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(FieldError::invalid(
            path,
            raw,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            raw,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// A CIDR such as `10.0.0.0/8`.
fn valid_cidr(value: &str) -> bool {
    let Some((ip, bits)) = value.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// The type-specific rules at the top of upstream's `ValidateService`.
fn by_type(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match service_type(spec) {
        t @ ("LoadBalancer" | "NodePort") if is_headless(spec) => {
            errs.push(FieldError::invalid(
                &path.child("clusterIPs").index(0),
                "None",
                &format!("may not be set to 'None' for {t} services"),
            ));
        }
        "ExternalName" => {
            let forbidden = "may not be set for ExternalName services";
            if !cluster_ips(spec).is_empty() {
                errs.push(FieldError::forbidden(&path.child("clusterIPs"), forbidden));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(&path.child("ipFamilies"), forbidden));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("ipFamilyPolicy"),
                    forbidden,
                ));
            }
            let name = spec.external_name.as_deref().unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(&path.child("externalName"), ""));
            } else {
                for msg in formats::is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(
                        &path.child("externalName"),
                        cname,
                        &msg,
                    ));
                }
            }
        }
        _ => {}
    }
    errs
}

/// Session affinity and its ClientIP configuration.
fn session_affinity(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let affinity = spec.session_affinity.as_deref().unwrap_or("");
    match affinity {
        "" => errs.push(FieldError::required(&path.child("sessionAffinity"), "")),
        "None" => {}
        "ClientIP" => {
            let config_path = path.child("sessionAffinityConfig");
            let when = "when session affinity type is ClientIP";
            let client_ip = spec.session_affinity_config.as_ref().map(|c| &c.client_ip);
            match client_ip {
                None => errs.push(FieldError::required(&config_path, when)),
                Some(None) => errs.push(FieldError::required(&config_path.child("clientIP"), when)),
                Some(Some(c)) => {
                    let timeout_path = config_path.child("clientIP").child("timeoutSeconds");
                    match c.timeout_seconds {
                        None => errs.push(FieldError::required(&timeout_path, when)),
                        Some(t) if t <= 0 || t > MAX_CLIENT_IP_AFFINITY_SECONDS => {
                            errs.push(FieldError::invalid(
                                &timeout_path,
                                t,
                                &format!(
                                    "must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"
                                ),
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    errs
}

/// Traffic policies, load balancer fields and the `type` itself.
fn policies(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = service_type(spec);
    let lb_only = "may only be used when `type` is 'LoadBalancer'";
    match ty {
        "" => errs.push(FieldError::required(&path.child("type"), "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.is_some_and(|n| n != 0) {
                errs.push(FieldError::forbidden(
                    &path.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    let mut port_keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let protocol = p.protocol.clone().unwrap_or_default();
        if let Some(np) = p.node_port.filter(|n| *n != 0)
            && !node_ports.insert((protocol.clone(), np))
        {
            errs.push(FieldError::duplicate(
                &path.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
        if !port_keys.insert((protocol.clone(), p.port)) {
            errs.push(FieldError::duplicate(
                &path.child("ports").index(i),
                BadValue::json(&serde_json::json!({"port": p.port, "protocol": protocol})),
            ));
        }
    }
    let ranges = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or_default();
    if !ranges.is_empty() {
        // Upstream spells this path with a capital L.
        let ranges_path = path.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(&ranges_path, lb_only));
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = r.trim();
            if !valid_cidr(r) {
                errs.push(FieldError::invalid(
                    &ranges_path.index(i),
                    r,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &path.child("allocateLoadBalancerNodePorts"),
            lb_only,
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // Upstream reports this one without the `spec.` prefix.
        errs.push(FieldError::required(
            &Path::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    if let Some(class) = &spec.load_balancer_class {
        if ty == "LoadBalancer" {
            errs.extend(meta::label_name(class, &path.child("loadBalancerClass")));
        } else {
            errs.push(FieldError::forbidden(
                &path.child("loadBalancerClass"),
                lb_only,
            ));
        }
    }
    let etp = spec.external_traffic_policy.as_deref().unwrap_or("");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(
            &path.child("externalTrafficPolicy"),
            "",
        ));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported(
            &path.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let needs_health_check = ty == "LoadBalancer" && etp == "Local";
    let hcnp = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check && hcnp != 0 {
        errs.push(FieldError::invalid(
            &path.child("healthCheckNodePort"),
            hcnp,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(
                &path.child("internalTrafficPolicy"),
                "",
            ));
        }
        Some(itp) if !matches!(itp, "Cluster" | "Local") => {
            errs.push(FieldError::not_supported(
                &path.child("internalTrafficPolicy"),
                itp,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if let Some(td) = spec.traffic_distribution.as_deref()
        && !matches!(td, "PreferClose" | "PreferSameZone" | "PreferSameNode")
    {
        errs.push(FieldError::not_supported(
            &path.child("trafficDistribution"),
            td,
            &["PreferClose", "PreferSameNode", "PreferSameZone"],
        ));
    }
    errs
}

/// Upstream's `ValidateService`.
pub fn service(svc: &Service) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&svc.metadata, &SERVICE_META);
    let path = Path::new("spec");
    let empty = ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&empty);
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && !is_headless(spec) && service_type(spec) != "ExternalName" {
        errs.push(FieldError::required(&path.child("ports"), ""));
    }
    errs.extend(by_type(spec, &path));
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(port(
            p,
            ports.len() > 1,
            &mut names,
            &path.child("ports").index(i),
        ));
    }
    errs.extend(meta::labels(
        spec.selector.as_ref(),
        &path.child("selector"),
    ));
    errs.extend(session_affinity(spec, &path));
    if service_type(spec) != "ExternalName" {
        errs.extend(cluster_ip_fields(spec, &path));
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let idx = path.child("externalIPs").index(i);
        match formats::is_valid_ip(ip) {
            Some(addr) => errs.extend(non_special_ip(ip, addr, &idx)),
            None => errs.push(FieldError::invalid(&idx, ip, formats::INVALID_IP)),
        }
    }
    errs.extend(policies(spec, &path));
    errs
}

/// Upstream's `ValidateServiceUpdate`: the new service must be valid and its cluster IP
/// may not change once allocated. An update that leaves `clusterIP` out keeps the old
/// one (the API server copies it over), so only a different non-empty value is an error.
pub fn service_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs = meta::object_meta_update(&new.metadata, &old.metadata);
    let empty = ServiceSpec::default();
    let (n, o) = (
        new.spec.as_ref().unwrap_or(&empty),
        old.spec.as_ref().unwrap_or(&empty),
    );
    // ExternalName services have no cluster IP, and headless ones keep "None".
    let exempt = service_type(n) == "ExternalName"
        || service_type(o) == "ExternalName"
        || (is_headless(n) && is_headless(o));
    let (new_ips, old_ips) = (cluster_ips(n), cluster_ips(o));
    if !exempt
        && let (Some(new_first), Some(old_first)) = (new_ips.first(), old_ips.first())
        && new_first != old_first
    {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("clusterIPs").index(0),
            BadValue::json(&new_ips),
            "may not change once set",
        ));
    }
    errs.extend(service(new));
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn base() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
            }
        })
    }

    fn set(mut raw: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        if let Some(Value::Object(map)) = raw.pointer_mut(parent) {
            map.insert(key.to_string(), value);
        }
        raw
    }

    fn check(raw: Value) -> Vec<String> {
        let svc: Service = serde_json::from_value(raw).expect("service");
        service(&svc).iter().map(FieldError::message).collect()
    }

    #[test]
    fn service_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (base(), vec![]),
            (
                set(base(), "/metadata/name", json!("1web")),
                vec![
                    "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                set(base(), "/spec/ports", json!([])),
                vec!["spec.ports: Required value"],
            ),
            (
                set(
                    set(base(), "/spec/ports", json!([])),
                    "/spec/clusterIP",
                    json!("None"),
                ),
                vec![],
            ),
            (
                set(
                    base(),
                    "/spec/ports",
                    json!([
                        {"port": 80, "targetPort": 80, "protocol": "TCP", "name": "http"},
                        {"port": 0, "targetPort": "Bad", "protocol": "ICMP"}
                    ]),
                ),
                vec![
                    "spec.ports[1].name: Required value",
                    "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                    "spec.ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                    "spec.ports[1].targetPort: Invalid value: \"Bad\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                ],
            ),
            (
                set(
                    base(),
                    "/spec/ports",
                    json!([
                        {"port": 80, "targetPort": 80, "protocol": "TCP", "name": "a"},
                        {"port": 80, "targetPort": 81, "protocol": "TCP", "name": "a"}
                    ]),
                ),
                vec![
                    "spec.ports[1].name: Duplicate value: \"a\"",
                    "spec.ports[1]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
                ],
            ),
            (
                set(base(), "/spec/type", json!("Magic")),
                vec![
                    "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                ],
            ),
            (
                set(base(), "/spec/sessionAffinity", json!("Sticky")),
                vec![
                    "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
                ],
            ),
            (
                set(base(), "/spec/sessionAffinity", json!("ClientIP")),
                vec![
                    "spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP",
                ],
            ),
            (
                set(base(), "/spec/type", json!("NodePort")),
                vec!["spec.externalTrafficPolicy: Required value"],
            ),
            (
                set(
                    set(base(), "/spec/type", json!("NodePort")),
                    "/spec/externalTrafficPolicy",
                    json!("Cluster"),
                ),
                vec![],
            ),
            (
                set(base(), "/spec/externalTrafficPolicy", json!("Cluster")),
                vec![
                    "spec.externalTrafficPolicy: Invalid value: \"Cluster\": may only be set for externally-accessible services",
                ],
            ),
            (
                set(base(), "/spec/clusterIP", json!("10.0.0.300")),
                vec![
                    "spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ],
            ),
            (
                set(
                    base(),
                    "/spec/ports",
                    json!([{"port": 80, "targetPort": 80, "protocol": "TCP", "nodePort": 30080}]),
                ),
                vec![
                    "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                ],
            ),
            (
                set(
                    set(
                        set(base(), "/spec/type", json!("ExternalName")),
                        "/spec/ports",
                        json!([]),
                    ),
                    "/spec/externalName",
                    json!("db.example.com."),
                ),
                vec![],
            ),
            (
                set(
                    set(base(), "/spec/type", json!("LoadBalancer")),
                    "/spec/externalTrafficPolicy",
                    json!("Cluster"),
                ),
                vec!["allocateLoadBalancerNodePorts: Required value"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.clone()), want, "{input}");
        }
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let old: Service =
            serde_json::from_value(set(base(), "/spec/clusterIP", json!("10.0.0.1"))).expect("old");
        let same: Service = serde_json::from_value(base()).expect("same");
        assert!(service_update(&same, &old).is_empty());
        let changed: Service =
            serde_json::from_value(set(base(), "/spec/clusterIP", json!("10.0.0.2")))
                .expect("changed");
        let got: Vec<String> = service_update(&changed, &old)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec!["spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set"]
        );
    }

    #[test]
    fn special_ips() {
        let p = Path::new("ip");
        let cases = [
            ("10.0.0.1", 0),
            ("127.0.0.1", 1),
            ("0.0.0.0", 1),
            ("169.254.1.1", 1),
            ("224.0.0.5", 1),
            ("fe80::1", 1),
            ("::1", 1),
        ];
        for (ip, n) in cases {
            let addr: IpAddr = ip.parse().expect("ip");
            assert_eq!(non_special_ip(ip, addr, &p).len(), n, "{ip}");
        }
    }
}
