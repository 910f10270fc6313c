//! Services (`describeService`, endpoints from their EndpointSlices) and Endpoints
//! (`describeEndpoints`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::events;
use super::text::{self, Out};

/// Upstream's `labels.FormatLabels`: `k=v,…` sorted, or `<none>`.
pub fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    let pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// The whole `kubectl describe service` text.
pub fn describe_service(
    service: &Service,
    slices: &[EndpointSlice],
    events: Option<Vec<Event>>,
) -> String {
    let mut out = Out::new();
    let meta = &service.metadata;
    let spec = service.spec.clone().unwrap_or_default();
    text::name_and_namespace(&mut out, meta);
    text::labels_and_annotations(&mut out, meta);
    out.write(
        0,
        &format!("Selector:\t{}\n", format_labels(spec.selector.as_ref())),
    );
    out.write(
        0,
        &format!("Type:\t{}\n", spec.type_.as_deref().unwrap_or("")),
    );
    if let Some(policy) = &spec.ip_family_policy {
        out.write(0, &format!("IP Family Policy:\t{policy}\n"));
    }
    let families = spec.ip_families.clone().unwrap_or_default();
    let families = if families.is_empty() {
        "<none>".to_string()
    } else {
        families.join(",")
    };
    out.write(0, &format!("IP Families:\t{families}\n"));
    out.write(
        0,
        &format!("IP:\t{}\n", spec.cluster_ip.as_deref().unwrap_or("")),
    );
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    let ips = if ips.is_empty() {
        "<none>".to_string()
    } else {
        ips.join(",")
    };
    out.write(0, &format!("IPs:\t{ips}\n"));
    if let Some(external) = spec.external_ips.as_ref().filter(|e| !e.is_empty()) {
        out.write(0, &format!("External IPs:\t{}\n", external.join(",")));
    }
    if let Some(ip) = spec.load_balancer_ip.as_deref().filter(|i| !i.is_empty()) {
        out.write(0, &format!("Desired LoadBalancer IP:\t{ip}\n"));
    }
    if let Some(name) = spec.external_name.as_deref().filter(|n| !n.is_empty()) {
        out.write(0, &format!("External Name:\t{name}\n"));
    }
    let ingress: Vec<String> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
        .iter()
        .map(|i| match i.ip.as_deref().filter(|ip| !ip.is_empty()) {
            Some(ip) => match &i.ip_mode {
                Some(mode) => format!("{ip} ({mode})"),
                None => ip.to_string(),
            },
            None => i.hostname.clone().unwrap_or_default(),
        })
        .collect();
    if !ingress.is_empty() {
        out.write(
            0,
            &format!("LoadBalancer Ingress:\t{}\n", ingress.join(", ")),
        );
    }
    for port in spec.ports.iter().flatten() {
        let port_name = port.name.clone().unwrap_or_default();
        let name = if port_name.is_empty() {
            "<unset>"
        } else {
            port_name.as_str()
        };
        let protocol = port.protocol.as_deref().unwrap_or("");
        out.write(0, &format!("Port:\t{name}\t{}/{protocol}\n", port.port));
        let target = match &port.target_port {
            Some(IntOrString::String(s)) => s.clone(),
            Some(IntOrString::Int(i)) => i.to_string(),
            None => "0".to_string(),
        };
        out.write(0, &format!("TargetPort:\t{target}/{protocol}\n"));
        if let Some(node_port) = port.node_port.filter(|p| *p != 0) {
            out.write(0, &format!("NodePort:\t{name}\t{node_port}/{protocol}\n"));
        }
        out.write(
            0,
            &format!(
                "Endpoints:\t{}\n",
                format_endpoint_slices(slices, Some(&port_name))
            ),
        );
    }
    out.write(
        0,
        &format!(
            "Session Affinity:\t{}\n",
            spec.session_affinity.as_deref().unwrap_or("")
        ),
    );
    if let Some(policy) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        out.write(0, &format!("External Traffic Policy:\t{policy}\n"));
    }
    if let Some(policy) = &spec.internal_traffic_policy {
        out.write(0, &format!("Internal Traffic Policy:\t{policy}\n"));
    }
    if let Some(port) = spec.health_check_node_port.filter(|p| *p != 0) {
        out.write(0, &format!("HealthCheck NodePort:\t{port}\n"));
    }
    if let Some(ranges) = spec
        .load_balancer_source_ranges
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        out.write(
            0,
            &format!("LoadBalancer Source Ranges:\t{}\n", ranges.join(",")),
        );
    }
    events::section(&mut out, events);
    out.finish()
}

/// Upstream's `formatEndpointSlices`: the first three ready `ip:port`s of the port
/// named `port` (every port when `None`), then "+ N more...".
pub fn format_endpoint_slices(slices: &[EndpointSlice], port: Option<&str>) -> String {
    const MAX: usize = 3;
    if slices.is_empty() {
        return "<none>".to_string();
    }
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    let ready = |e: &k8s_openapi::api::discovery::v1::Endpoint| {
        e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
    };
    for slice in slices {
        let endpoints: &[_] = slice.endpoints.as_deref().unwrap_or(&[]);
        let ports: &[_] = slice.ports.as_deref().unwrap_or(&[]);
        if ports.is_empty() {
            // Headless services may have no ports.
            for e in endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(e.addresses.first().cloned().unwrap_or_default());
                }
                count += 1;
            }
            continue;
        }
        for p in ports {
            if port.is_some_and(|want| p.name.as_deref().unwrap_or("") != want) {
                continue;
            }
            for e in endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    let addr = e.addresses.first().cloned().unwrap_or_default();
                    let number = p.port.unwrap_or(0);
                    list.push(if addr.contains(':') {
                        format!("[{addr}]:{number}")
                    } else {
                        format!("{addr}:{number}")
                    });
                }
                count += 1;
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// The whole `kubectl describe endpoints` text.
pub fn describe_endpoints(ep: &Endpoints, events: Option<Vec<Event>>) -> String {
    let mut out = Out::new();
    let meta = &ep.metadata;
    text::name_and_namespace(&mut out, meta);
    text::labels_and_annotations(&mut out, meta);
    out.write(0, "Subsets:\n");
    for subset in ep.subsets.iter().flatten() {
        let join = |addrs: Option<&Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
            let ips: Vec<&str> = addrs.into_iter().flatten().map(|a| a.ip.as_str()).collect();
            if ips.is_empty() {
                "<none>".to_string()
            } else {
                ips.join(",")
            }
        };
        out.write(
            1,
            &format!("Addresses:\t{}\n", join(subset.addresses.as_ref())),
        );
        out.write(
            1,
            &format!(
                "NotReadyAddresses:\t{}\n",
                join(subset.not_ready_addresses.as_ref())
            ),
        );
        let ports: Vec<_> = subset.ports.iter().flatten().collect();
        if !ports.is_empty() {
            out.write(1, "Ports:\n");
            out.write(2, "Name\tPort\tProtocol\n");
            out.write(2, "----\t----\t--------\n");
            for p in ports {
                let name = p
                    .name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("<unset>");
                out.write(
                    2,
                    &format!(
                        "{name}\t{}\t{}\n",
                        p.port,
                        p.protocol.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        out.write(0, "\n");
    }
    events::section(&mut out, events);
    out.finish()
}
