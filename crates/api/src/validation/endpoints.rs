//! Endpoints and EndpointSlices, as upstream's `ValidateEndpoints` and discovery's
//! `ValidateEndpointSlice`: addresses that are real, non-special IPs (or FQDNs), ports
//! with valid numbers, names and protocols.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::errors::FieldError;
use super::formats;
use super::meta::{self, MetaRules};
use super::path::Path;
use super::pod::container::{dns1123_label, protocol};
use super::service::non_special_ip;

/// How Endpoints and EndpointSlice metadata is checked.
pub const ENDPOINTS_META: MetaRules = MetaRules {
    name: formats::name_is_dns_subdomain,
    namespaced: Some(true),
    core_finalizers: true,
};

const MAX_SLICE_ENDPOINTS: usize = 1000;
const MAX_SLICE_ADDRESSES: usize = 100;
const MAX_SLICE_PORTS: usize = 100;
const MAX_TOPOLOGY_LABELS: usize = 16;

/// Upstream's `validateEndpointAddress`.
fn address(a: &EndpointAddress, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ip_path = path.child("ip");
    let parsed = formats::is_valid_ip(&a.ip);
    if parsed.is_none() {
        errs.push(FieldError::invalid(&ip_path, &a.ip, formats::INVALID_IP));
    }
    if let Some(hostname) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(dns1123_label(hostname, &path.child("hostname")));
    }
    if let Some(node) = &a.node_name {
        for msg in formats::name_is_dns_subdomain(node, false) {
            errs.push(FieldError::invalid(&path.child("nodeName"), node, &msg));
        }
    }
    match parsed {
        Some(ip) => errs.extend(non_special_ip(&a.ip, ip, &ip_path)),
        None => errs.push(FieldError::invalid(
            &ip_path,
            &a.ip,
            "must be a valid IP address",
        )),
    }
    errs
}

/// Upstream's `validateEndpointPort`.
fn endpoint_port(p: &EndpointPort, require_name: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(dns1123_label(name, &path.child("name")));
    }
    for msg in formats::is_valid_port_num(i64::from(p.port)) {
        errs.push(FieldError::invalid(&path.child("port"), p.port, &msg));
    }
    errs.extend(protocol(p.protocol.as_deref(), &path.child("protocol")));
    if let Some(app) = &p.app_protocol {
        errs.extend(meta::label_name(app, &path.child("appProtocol")));
    }
    errs
}

/// Upstream's `ValidateEndpoints`.
pub fn endpoints(ep: &Endpoints) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&ep.metadata, &ENDPOINTS_META);
    let path = Path::new("subsets");
    for (i, subset) in ep.subsets.iter().flatten().enumerate() {
        let idx = path.index(i);
        let addresses = subset.addresses.as_deref().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
        if addresses.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &idx,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in addresses.iter().enumerate() {
            errs.extend(address(a, &idx.child("addresses").index(j)));
        }
        for (j, a) in not_ready.iter().enumerate() {
            errs.extend(address(a, &idx.child("notReadyAddresses").index(j)));
        }
        let ports = subset.ports.as_deref().unwrap_or_default();
        for (j, p) in ports.iter().enumerate() {
            errs.extend(endpoint_port(
                p,
                ports.len() > 1,
                &idx.child("ports").index(j),
            ));
        }
    }
    errs
}

/// One EndpointSlice address of the slice's type.
fn slice_address(address_type: &str, address: &str, path: &Path) -> Vec<FieldError> {
    match address_type {
        "IPv4" | "IPv6" => {
            let want_v4 = address_type == "IPv4";
            match formats::is_valid_ip(address) {
                Some(ip) if ip.is_ipv4() == want_v4 => non_special_ip(address, ip, path),
                _ => vec![FieldError::invalid(
                    path,
                    address,
                    &format!("must be a valid {address_type} address"),
                )],
            }
        }
        "FQDN" => formats::is_fully_qualified_domain_name(address)
            .into_iter()
            .map(|msg| {
                let shown = address.strip_suffix('.').unwrap_or(address);
                FieldError::invalid(path, shown, &msg)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Discovery's `ValidateEndpointSlice`.
pub fn endpoint_slice(slice: &EndpointSlice) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&slice.metadata, &ENDPOINTS_META);
    let type_path = Path::new("addressType");
    match slice.address_type.as_str() {
        "" => errs.push(FieldError::required(&type_path, "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => errs.push(FieldError::not_supported(
            &type_path,
            other,
            &["FQDN", "IPv4", "IPv6"],
        )),
    }
    let endpoints = slice.endpoints.as_deref().unwrap_or_default();
    let endpoints_path = Path::new("endpoints");
    if endpoints.len() > MAX_SLICE_ENDPOINTS {
        errs.push(FieldError::too_many(
            &endpoints_path,
            endpoints.len(),
            MAX_SLICE_ENDPOINTS,
        ));
    } else {
        for (i, ep) in endpoints.iter().enumerate() {
            let idx = endpoints_path.index(i);
            let addresses_path = idx.child("addresses");
            if ep.addresses.is_empty() {
                errs.push(FieldError::required(
                    &addresses_path,
                    "must contain at least 1 address",
                ));
            } else if ep.addresses.len() > MAX_SLICE_ADDRESSES {
                errs.push(FieldError::too_many(
                    &addresses_path,
                    ep.addresses.len(),
                    MAX_SLICE_ADDRESSES,
                ));
            }
            for (j, a) in ep.addresses.iter().enumerate() {
                errs.extend(slice_address(
                    &slice.address_type,
                    a,
                    &addresses_path.index(j),
                ));
            }
            let topology = ep.deprecated_topology.as_ref();
            let topology_path = idx.child("topology");
            if let Some(t) = topology
                && t.len() > MAX_TOPOLOGY_LABELS
            {
                errs.push(FieldError::too_many(
                    &topology_path,
                    t.len(),
                    MAX_TOPOLOGY_LABELS,
                ));
            }
            errs.extend(meta::labels(topology, &topology_path));
            if let Some(hostname) = &ep.hostname {
                errs.extend(dns1123_label(hostname, &idx.child("hostname")));
            }
        }
    }
    let ports = slice.ports.as_deref().unwrap_or_default();
    let ports_path = Path::new("ports");
    if ports.len() > MAX_SLICE_PORTS {
        errs.push(FieldError::too_many(
            &ports_path,
            ports.len(),
            MAX_SLICE_PORTS,
        ));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let idx = ports_path.index(i);
        let name = p.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            errs.extend(dns1123_label(name, &idx.child("name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&idx.child("name"), name));
        }
        match p.protocol.as_deref() {
            None => errs.push(FieldError::required(&idx.child("protocol"), "")),
            Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => errs.push(FieldError::not_supported(
                &idx.child("protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
        if let Some(app) = &p.app_protocol {
            errs.extend(meta::label_name(app, &idx.child("appProtocol")));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn endpoints_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}]}]}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "web"}, "subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}),
                vec!["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"],
            ),
            (
                json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [
                    {"port": 80, "protocol": "TCP", "name": "a"}, {"port": 70000, "protocol": "TCP"}
                ]}]}),
                vec![
                    "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                    "subsets[0].ports[1].name: Required value",
                    "subsets[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                ],
            ),
        ];
        for (input, want) in cases {
            let ep: Endpoints = serde_json::from_value(input.clone()).expect("endpoints");
            let got: Vec<String> = endpoints(&ep).iter().map(FieldError::message).collect();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn endpoint_slice_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
                       "endpoints": [{"addresses": ["10.0.0.1"]}],
                       "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "s"}, "addressType": "IPv5"}),
                vec![
                    "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
                ],
            ),
            (
                json!({"metadata": {"name": "s"}, "addressType": "IPv4",
                       "endpoints": [{"addresses": []}, {"addresses": ["::1"]}],
                       "ports": [{"name": "", "protocol": "TCP"}, {"name": "", "protocol": "TCP"}, {"name": "x"}]}),
                vec![
                    "endpoints[0].addresses: Required value: must contain at least 1 address",
                    "endpoints[1].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address",
                    "ports[1].name: Duplicate value: \"\"",
                    "ports[2].protocol: Required value",
                ],
            ),
        ];
        for (input, want) in cases {
            let slice: EndpointSlice = serde_json::from_value(input.clone()).expect("slice");
            let got: Vec<String> = endpoint_slice(&slice)
                .iter()
                .map(FieldError::message)
                .collect();
            assert_eq!(got, want, "{input}");
        }
    }
}
