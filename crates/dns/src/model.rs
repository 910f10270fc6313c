//! What the DNS server knows of the cluster: namespaces, services and their ready
//! endpoints, folded from API objects into lookups by name. Pure: the watch builds a new
//! [`Model`] whenever the objects change, and queries read a snapshot of it.
//!
//! Names are kept lowercase (Kubernetes names are lowercase already; queries are
//! lowercased before lookup), so matching is case-insensitive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A service or endpoint port: SRV records are made of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Port {
    /// Lowercase; empty for an unnamed port (no SRV name can reach it).
    pub name: String,
    /// Lowercase: `tcp`, `udp`, `sctp`.
    pub protocol: String,
    pub port: u16,
}

/// How a service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A virtual IP (one per family): A/AAAA give it, SRV targets the service name.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: A/AAAA give the ready endpoints, SRV targets each endpoint.
    Headless,
    /// A CNAME to this (lowercase, without the trailing dot).
    ExternalName(String),
}

/// One ready endpoint address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// `hostname` from the slice, else the dashed IP (`10-42-0-5`), as CoreDNS names
    /// endpoints; lowercase.
    pub name: String,
    /// The ports of the endpoint's slice (target ports).
    pub ports: Vec<Port>,
}

/// A service as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub kind: Kind,
    pub ports: Vec<Port>,
    pub endpoints: Vec<Endpoint>,
}

/// Who holds an IP, for PTR answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub service: String,
    /// The endpoint's name for an endpoint address; None for a cluster IP.
    pub endpoint: Option<String>,
}

/// The cluster, for lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    namespaces: HashSet<String>,
    /// By (namespace, name).
    services: HashMap<(String, String), ServiceEntry>,
    reverse: HashMap<IpAddr, Owner>,
    /// The SOA serial: set by whoever builds the model (seconds since the epoch).
    pub serial: u32,
}

impl Model {
    /// Builds the model from the API's objects.
    pub fn build<'a>(
        namespaces: impl IntoIterator<Item = &'a Namespace>,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Model {
        let mut model = Model::default();
        for ns in namespaces {
            if let Some(name) = &ns.metadata.name {
                model.namespaces.insert(name.to_lowercase());
            }
        }
        let mut publish_not_ready: HashSet<(String, String)> = HashSet::new();
        for svc in services {
            let (Some(namespace), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name)
            else {
                continue;
            };
            let key = (namespace.to_lowercase(), name.to_lowercase());
            // A service implies its namespace, even if the namespace list lags.
            model.namespaces.insert(key.0.clone());
            let Some(entry) = service_entry(svc) else {
                continue;
            };
            if svc
                .spec
                .as_ref()
                .and_then(|s| s.publish_not_ready_addresses)
                .unwrap_or(false)
            {
                publish_not_ready.insert(key.clone());
            }
            model.services.insert(key, entry);
        }
        for slice in slices {
            let Some(namespace) = &slice.metadata.namespace else {
                continue;
            };
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let key = (namespace.to_lowercase(), service.to_lowercase());
            let all = publish_not_ready.contains(&key);
            if let Some(entry) = model.services.get_mut(&key) {
                entry.endpoints.extend(slice_endpoints(slice, all));
            }
        }
        // Cluster IPs first, then endpoint IPs in a stable order: a cluster IP wins a
        // clash, and the same objects always give the same PTR answers.
        let mut keys: Vec<(String, String)> = model.services.keys().cloned().collect();
        keys.sort();
        let mut endpoint_owners: BTreeMap<IpAddr, Owner> = BTreeMap::new();
        for key in &keys {
            let Some(entry) = model.services.get_mut(key) else {
                continue;
            };
            // Slices may overlap (while being rewritten): one record per address.
            let mut seen = HashSet::new();
            entry.endpoints.retain(|e| seen.insert(e.ip));
            if let Kind::ClusterIp(ips) = &entry.kind {
                for ip in ips {
                    model.reverse.insert(*ip, owner(key, None));
                }
            }
            for ep in &entry.endpoints {
                endpoint_owners
                    .entry(ep.ip)
                    .or_insert_with(|| owner(key, Some(ep.name.clone())));
            }
        }
        for (ip, owner) in endpoint_owners {
            model.reverse.entry(ip).or_insert(owner);
        }
        model
    }

    /// Adds a namespace (hand-built models).
    pub fn add_namespace(&mut self, name: &str) {
        self.namespaces.insert(name.to_lowercase());
    }

    /// Adds a service (hand-built models); its namespace comes with it.
    pub fn add_service(&mut self, namespace: &str, name: &str, entry: ServiceEntry) {
        let key = (namespace.to_lowercase(), name.to_lowercase());
        self.namespaces.insert(key.0.clone());
        if let Kind::ClusterIp(ips) = &entry.kind {
            for ip in ips {
                self.reverse.insert(*ip, owner(&key, None));
            }
        }
        for ep in &entry.endpoints {
            self.reverse
                .entry(ep.ip)
                .or_insert_with(|| owner(&key, Some(ep.name.clone())));
        }
        self.services.insert(key, entry);
    }

    /// Whether namespace `name` (lowercase) exists.
    pub fn has_namespace(&self, name: &str) -> bool {
        self.namespaces.contains(name)
    }

    /// Service `name` (lowercase) in `namespace` (lowercase).
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Who holds `ip`.
    pub fn owner_of(&self, ip: &IpAddr) -> Option<&Owner> {
        self.reverse.get(ip)
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }
}

fn owner(key: &(String, String), endpoint: Option<String>) -> Owner {
    Owner {
        namespace: key.0.clone(),
        service: key.1.clone(),
        endpoint,
    }
}

/// The DNS view of a Service; None for what DNS does not publish (no spec, an
/// ExternalName that is an IP, or a ClusterIP service not yet given its IP).
fn service_entry(svc: &Service) -> Option<ServiceEntry> {
    let spec = svc.spec.as_ref()?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default().to_lowercase(),
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.as_deref()?.trim_end_matches('.');
        // An IP is no CNAME target: CoreDNS publishes nothing for it.
        if target.is_empty() || target.parse::<IpAddr>().is_ok() {
            return None;
        }
        Kind::ExternalName(target.to_lowercase())
    } else {
        let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
        if ips.is_empty()
            && let Some(ip) = &spec.cluster_ip
        {
            ips.push(ip.clone());
        }
        if ips.iter().any(|ip| ip == "None") {
            Kind::Headless
        } else {
            let parsed: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
            if parsed.is_empty() {
                return None;
            }
            Kind::ClusterIp(parsed)
        }
    };
    Some(ServiceEntry {
        kind,
        ports,
        endpoints: Vec::new(),
    })
}

/// The ready endpoints of a slice (all of them when the service publishes not-ready
/// addresses); FQDN slices carry no addresses DNS can serve.
fn slice_endpoints(slice: &EndpointSlice, include_not_ready: bool) -> Vec<Endpoint> {
    if slice.address_type == "FQDN" {
        return Vec::new();
    }
    let ports: Vec<Port> = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default().to_lowercase(),
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                port: u16::try_from(p.port?).ok()?,
            })
        })
        .collect();
    let mut out = Vec::new();
    for endpoint in slice.endpoints.iter().flatten() {
        // An unset ready condition reads as ready (the API's documented meaning).
        let ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if !ready && !include_not_ready {
            continue;
        }
        for address in &endpoint.addresses {
            let Ok(ip) = address.parse::<IpAddr>() else {
                continue;
            };
            let name = endpoint
                .hostname
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(str::to_lowercase)
                .unwrap_or_else(|| dashed(&ip));
            out.push(Endpoint {
                ip,
                name,
                ports: ports.clone(),
            });
        }
    }
    out
}

/// `10.42.0.5` → `10-42-0-5`; `fd00::1` → `fd00--1` (CoreDNS's endpoint names).
pub fn dashed(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("object")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn builds_services_endpoints_and_reverse_map() {
        let namespaces: Vec<Namespace> =
            vec![from_json(serde_json::json!({"metadata": {"name": "Prod"}}))];
        let services: Vec<Service> = vec![
            from_json(serde_json::json!({
                "metadata": {"name": "web", "namespace": "prod"},
                "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "HTTP", "port": 80, "protocol": "TCP"}]}
            })),
            from_json(serde_json::json!({
                "metadata": {"name": "db", "namespace": "prod"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}
            })),
            from_json(serde_json::json!({
                "metadata": {"name": "ext", "namespace": "other"},
                "spec": {"type": "ExternalName", "externalName": "Example.COM."}
            })),
            from_json(serde_json::json!({
                "metadata": {"name": "pending", "namespace": "third"},
                "spec": {"ports": [{"port": 80}]}
            })),
        ];
        let slices: Vec<EndpointSlice> = vec![from_json(serde_json::json!({
            "metadata": {"name": "db-abc", "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"], "conditions": {}},
                {"addresses": ["10.42.0.7"], "conditions": {"ready": false}}
            ]
        }))];
        let model = Model::build(&namespaces, &services, &slices);
        assert!(model.has_namespace("prod"));
        assert!(model.has_namespace("other"), "implied by its service");
        assert!(model.has_namespace("third"), "implied by its service");
        assert_eq!(model.service_count(), 3, "the IP-less service is left out");
        let web = model.service("prod", "web").expect("web");
        assert_eq!(web.kind, Kind::ClusterIp(vec![ip("10.43.0.20")]));
        assert_eq!(
            (web.ports[0].name.as_str(), web.ports[0].protocol.as_str()),
            ("http", "tcp")
        );
        let db = model.service("prod", "db").expect("db");
        assert_eq!(db.kind, Kind::Headless);
        let names: Vec<&str> = db.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["db-0", "10-42-0-6"], "not-ready 10.42.0.7 left out");
        assert_eq!(
            model.service("other", "ext").map(|s| &s.kind),
            Some(&Kind::ExternalName("example.com".into()))
        );
        assert_eq!(
            model
                .owner_of(&ip("10.43.0.20"))
                .map(|o| (o.service.as_str(), o.endpoint.clone())),
            Some(("web", None))
        );
        assert_eq!(
            model
                .owner_of(&ip("10.42.0.5"))
                .and_then(|o| o.endpoint.clone()),
            Some("db-0".into())
        );
    }

    #[test]
    fn publish_not_ready_addresses_includes_all() {
        let services: Vec<Service> = vec![from_json(serde_json::json!({
            "metadata": {"name": "db", "namespace": "prod"},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": true}
        }))];
        let slices: Vec<EndpointSlice> = vec![from_json(serde_json::json!({
            "metadata": {"name": "db-abc", "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.0.7"], "conditions": {"ready": false}}]
        }))];
        let model = Model::build([], &services, &slices);
        assert_eq!(
            model.service("prod", "db").map(|s| s.endpoints.len()),
            Some(1)
        );
    }

    #[test]
    fn dashed_names() {
        assert_eq!(dashed(&ip("10.42.0.5")), "10-42-0-5");
        assert_eq!(dashed(&ip("fd00::1")), "fd00--1");
    }
}
