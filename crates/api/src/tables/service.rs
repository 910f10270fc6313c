//! Services, Endpoints and EndpointSlices, as upstream's `printService`,
//! `printEndpoints` and `printEndpointSlice`.
//!
//! - Service: NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE | SELECTOR, ports as
//!   `80/TCP` or `80:30080/TCP` (with a node port); EXTERNAL-IP `<none>`, the
//!   load-balancer's addresses, `<pending>` while it has none, or the external name.
//! - Endpoints: NAME ENDPOINTS AGE, the first three `ip:port` pairs then
//!   "+ N more...".
//! - EndpointSlice: NAME ADDRESSTYPE PORTS ENDPOINTS AGE, lists cut the same way,
//!   `<unset>` when empty.

use std::collections::BTreeSet;

use serde_json::Value;

use super::format::{format_labels, join_capped, join_host_port};
use super::{Column, Printer, Row, age_cell, int, items, name_cell, text};

pub(super) const SERVICE: Printer = Printer {
    columns: SERVICE_COLUMNS,
    row: service_row,
};

pub(super) const ENDPOINTS: Printer = Printer {
    columns: ENDPOINTS_COLUMNS,
    row: endpoints_row,
};

pub(super) const ENDPOINT_SLICE: Printer = Printer {
    columns: ENDPOINT_SLICE_COLUMNS,
    row: endpoint_slice_row,
};

const SERVICE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    Column::new(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    Column::new(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    ),
    Column::new(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    Column::age(),
    Column::new(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    )
    .wide(),
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    Column::age(),
];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.",
    ),
    Column::new(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.",
    ),
    Column::new(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    Column::age(),
];

/// How many entries upstream lists before "+ N more...".
const SHOWN: usize = 3;

fn service_row(service: &Value, now: i64) -> Row {
    let cluster_ip = items(service, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        // Upstream's conversion fills clusterIPs from clusterIP when only that is set.
        .unwrap_or_else(|| text(service, "/spec/clusterIP"));
    let ports: Vec<String> = items(service, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = text(p, "/protocol");
            match int(p, "/nodePort") {
                n if n > 0 => format!("{}:{n}/{protocol}", int(p, "/port")),
                _ => format!("{}/{protocol}", int(p, "/port")),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    Row::cells(vec![
        name_cell(service),
        Value::from(text(service, "/spec/type")),
        Value::from(if cluster_ip.is_empty() {
            "<none>"
        } else {
            cluster_ip
        }),
        Value::from(external_ip(service)),
        Value::from(ports),
        age_cell(service, now),
        Value::from(format_labels(service.pointer("/spec/selector"))),
    ])
}

/// Upstream's `getServiceExternalIP`, in its wide form (the server renders wide, so a
/// long load-balancer list is not cut to 16 characters).
fn external_ip(service: &Value) -> String {
    let external: Vec<&str> = items(service, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match text(service, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            // Distinct and sorted, as upstream's string set.
            let balancers: BTreeSet<&str> = items(service, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match text(i, "/ip") {
                    "" => text(i, "/hostname"),
                    ip => ip,
                })
                .filter(|a| !a.is_empty())
                .collect();
            let all: Vec<&str> = balancers.into_iter().chain(external).collect();
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => text(service, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn endpoints_row(endpoints: &Value, now: i64) -> Row {
    let subsets = items(endpoints, "/subsets");
    let cell = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut all = Vec::new();
        for subset in subsets {
            let addresses = items(subset, "/addresses");
            let ports = items(subset, "/ports");
            if ports.is_empty() {
                // Headless services may have no ports: the bare addresses.
                all.extend(addresses.iter().map(|a| text(a, "/ip").to_string()));
            }
            for port in ports {
                let number = int(port, "/port");
                all.extend(
                    addresses
                        .iter()
                        .map(|a| join_host_port(text(a, "/ip"), number)),
                );
            }
        }
        join_capped(&all, SHOWN)
    };
    Row::cells(vec![
        name_cell(endpoints),
        Value::from(cell),
        age_cell(endpoints, now),
    ])
}

fn endpoint_slice_row(slice: &Value, now: i64) -> Row {
    let ports: Vec<String> = items(slice, "/ports")
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => match p.get("name").and_then(Value::as_str) {
                Some(name) => name.to_string(),
                None => "*".to_string(),
            },
        })
        .collect();
    let addresses: Vec<String> = items(slice, "/endpoints")
        .iter()
        .flat_map(|e| items(e, "/addresses"))
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    Row::cells(vec![
        name_cell(slice),
        Value::from(text(slice, "/addressType")),
        Value::from(or_unset(join_capped(&ports, SHOWN))),
        Value::from(or_unset(join_capped(&addresses, SHOWN))),
        age_cell(slice, now),
    ])
}

fn or_unset(s: String) -> String {
    if s.is_empty() {
        "<unset>".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-01T10:00:00Z.
    const NOW: i64 = 1_714_557_600;

    fn service(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T09:50:00Z"},
            "spec": spec, "status": status})
    }

    #[test]
    fn service_cases() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "cluster IP",
                service(
                    json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                        "selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}),
                    json!({}),
                ),
                json!([
                    "web",
                    "ClusterIP",
                    "10.96.0.10",
                    "<none>",
                    "80/TCP",
                    "10m",
                    "app=web"
                ]),
            ),
            (
                "node port, two ports",
                service(
                    json!({"type": "NodePort", "clusterIP": "10.96.4.2", "clusterIPs": ["10.96.4.2"],
                        "selector": {"tier": "front", "app": "web"},
                        "ports": [
                            {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                            {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}),
                    json!({}),
                ),
                json!([
                    "web",
                    "NodePort",
                    "10.96.4.2",
                    "<none>",
                    "80:30080/TCP,53:30053/UDP",
                    "10m",
                    "app=web,tier=front"
                ]),
            ),
            (
                "headless, no selector, only clusterIP set",
                service(
                    json!({"type": "ClusterIP", "clusterIP": "None",
                        "ports": [{"port": 5432, "protocol": "TCP"}]}),
                    json!({}),
                ),
                json!([
                    "web",
                    "ClusterIP",
                    "None",
                    "<none>",
                    "5432/TCP",
                    "10m",
                    "<none>"
                ]),
            ),
            (
                "cluster IP with external IPs, no ports",
                service(
                    json!({"type": "ClusterIP", "clusterIPs": ["10.96.0.11"],
                        "externalIPs": ["198.51.100.1", "198.51.100.2"]}),
                    json!({}),
                ),
                json!([
                    "web",
                    "ClusterIP",
                    "10.96.0.11",
                    "198.51.100.1,198.51.100.2",
                    "<none>",
                    "10m",
                    "<none>"
                ]),
            ),
            (
                "load balancer pending",
                service(
                    json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
                        "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}),
                    json!({"loadBalancer": {}}),
                ),
                json!([
                    "web",
                    "LoadBalancer",
                    "10.96.0.12",
                    "<pending>",
                    "443:31443/TCP",
                    "10m",
                    "<none>"
                ]),
            ),
            (
                "load balancer provisioned, not cut to 16 characters",
                service(
                    json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
                        "externalIPs": ["198.51.100.9"],
                        "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}),
                    json!({"loadBalancer": {"ingress": [
                        {"ip": "203.0.113.20"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.20"}]}}),
                ),
                json!([
                    "web",
                    "LoadBalancer",
                    "10.96.0.12",
                    "203.0.113.20,lb.example.com,198.51.100.9",
                    "443:31443/TCP",
                    "10m",
                    "<none>"
                ]),
            ),
            (
                "external name",
                service(
                    json!({"type": "ExternalName", "externalName": "db.example.com"}),
                    json!({}),
                ),
                json!([
                    "web",
                    "ExternalName",
                    "<none>",
                    "db.example.com",
                    "<none>",
                    "10m",
                    "<none>"
                ]),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(Value::from(service_row(&input, NOW).cells), want, "{name}");
        }
    }

    #[test]
    fn endpoints_cases() {
        let eps = |subsets: Value| {
            json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T09:59:00Z"},
                "subsets": subsets})
        };
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "no subsets",
                json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T09:59:00Z"}}),
                "<none>",
            ),
            ("empty subsets", eps(json!([])), "<none>"),
            (
                "two addresses",
                eps(
                    json!([{"addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]),
                ),
                "10.1.0.5:8080,10.1.0.6:8080",
            ),
            (
                "many addresses and ports",
                eps(json!([
                    {"addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}, {"ip": "10.1.0.7"}],
                        "notReadyAddresses": [{"ip": "10.1.0.8"}],
                        "ports": [{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}]},
                    {"addresses": [{"ip": "10.1.1.5"}], "ports": [{"name": "http", "port": 80}]}])),
                "10.1.0.5:80,10.1.0.6:80,10.1.0.7:80 + 4 more...",
            ),
            (
                "headless without ports",
                eps(json!([{"addresses": [{"ip": "10.1.0.5"}, {"ip": "fd00::5"}]}])),
                "10.1.0.5,fd00::5",
            ),
            (
                "IPv6 with a port",
                eps(json!([{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 80}]}])),
                "[fd00::5]:80",
            ),
            (
                "only not-ready addresses",
                eps(json!([{"notReadyAddresses": [{"ip": "10.1.0.5"}], "ports": [{"port": 80}]}])),
                "",
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(
                Value::from(endpoints_row(&input, NOW).cells),
                json!(["web", want, "60s"]),
                "{name}"
            );
        }
    }

    #[test]
    fn endpoint_slice_cases() {
        let slice = |ports: Value, endpoints: Value| {
            json!({"metadata": {"name": "web-abc12", "creationTimestamp": "2024-05-01T09:59:00Z"},
                "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
        };
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "one port, two endpoints",
                slice(
                    json!([{"name": "http", "port": 80, "protocol": "TCP"}]),
                    json!([{"addresses": ["10.1.0.5"]}, {"addresses": ["10.1.0.6"]}]),
                ),
                "80",
                "10.1.0.5,10.1.0.6",
            ),
            (
                "many ports and endpoints",
                slice(
                    json!([{"port": 80}, {"name": "grpc"}, {}, {"port": 443}, {"port": 8443}]),
                    json!([{"addresses": ["10.1.0.1"]}, {"addresses": ["10.1.0.2"]}, {"addresses": ["10.1.0.3"]},
                           {"addresses": ["10.1.0.4"]}, {"addresses": ["10.1.0.5"]}]),
                ),
                "80,grpc,* + 2 more...",
                "10.1.0.1,10.1.0.2,10.1.0.3 + 2 more...",
            ),
            (
                "nothing yet",
                slice(json!([]), json!([])),
                "<unset>",
                "<unset>",
            ),
        ];
        for (name, input, ports, endpoints) in cases {
            assert_eq!(
                Value::from(endpoint_slice_row(&input, NOW).cells),
                json!(["web-abc12", "IPv4", ports, endpoints, "60s"]),
                "{name}"
            );
        }
        let bare = json!({"metadata": {"name": "s"}, "addressType": "IPv6"});
        assert_eq!(
            Value::from(endpoint_slice_row(&bare, NOW).cells),
            json!(["s", "IPv6", "<unset>", "<unset>", "<unknown>"])
        );
    }
}
