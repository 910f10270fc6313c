//! The DNS Service pods reach: `kube-system/kube-dns` with the well-known cluster IP
//! (10.43.0.10), ports 53/UDP `dns` and 53/TCP `dns-tcp`, as kubeadm and k3s name it.
//!
//! It has no selector: the DNS server is no pod but a node process. Each `mast dns`
//! instance publishes itself as an endpoint — its own EndpointSlice
//! (`kube-dns-<dashed ip>`, managed by `mast-dns`, so the EndpointSlice controller
//! leaves it alone) and its address in the `kube-dns` Endpoints — pointing at the node
//! address and port it listens on. A pod's query to 10.43.0.10:53 is then DNATed by the
//! service proxy to `NODE_IP:PORT`, delivered locally on that node (or routed to it from
//! other nodes), and the reply un-NATed by conntrack, so the pod sees 10.43.0.10 answer.
//!
//! [`ensure`] is idempotent and level-based (the caller repeats it, which recreates
//! what someone deleted); [`withdraw`] removes this instance's endpoint on shutdown.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use crate::model::SERVICE_NAME_LABEL;

/// The Service's namespace and name, as kubeadm and k3s have them.
pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "kube-dns";
/// The label marking slices this crate manages.
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "mast-dns";
/// Compare-and-swap retries on the shared Endpoints object.
const CAS_ATTEMPTS: usize = 5;

/// Why the Service or its endpoints could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EnsureError {
    #[error("{what}: {source}")]
    Api {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{what}: {message}")]
    Encode { what: &'static str, message: String },
}

/// What to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsService {
    /// The Service's cluster IP (10.43.0.10).
    pub cluster_ip: IpAddr,
    /// Where this instance is reached: the node address (not loopback).
    pub endpoint_ip: IpAddr,
    /// The port it listens on (UDP and TCP).
    pub port: u16,
    /// The node it runs on, for the slice's endpoint.
    pub node_name: Option<String>,
}

impl DnsService {
    /// This instance's EndpointSlice name.
    pub fn slice_name(&self) -> String {
        format!("{NAME}-{}", crate::model::dashed(&self.endpoint_ip))
    }

    fn service(&self) -> Result<Service, EnsureError> {
        from_json(
            "kube-dns service",
            serde_json::json!({
                "metadata": {
                    "name": NAME,
                    "namespace": NAMESPACE,
                    "labels": labels(),
                },
                "spec": {
                    "clusterIP": self.cluster_ip.to_string(),
                    "clusterIPs": [self.cluster_ip.to_string()],
                    "ports": self.service_ports(),
                },
            }),
        )
    }

    fn service_ports(&self) -> serde_json::Value {
        serde_json::json!([
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": self.port},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": self.port},
        ])
    }

    fn slice(&self, owner: Option<OwnerReference>) -> Result<EndpointSlice, EnsureError> {
        let mut labels = labels();
        labels.insert(SERVICE_NAME_LABEL.into(), NAME.into());
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        let family = if self.endpoint_ip.is_ipv4() {
            "IPv4"
        } else {
            "IPv6"
        };
        from_json(
            "kube-dns endpointslice",
            serde_json::json!({
                "metadata": {
                    "name": self.slice_name(),
                    "namespace": NAMESPACE,
                    "labels": labels,
                    "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
                },
                "addressType": family,
                "endpoints": [{
                    "addresses": [self.endpoint_ip.to_string()],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "nodeName": self.node_name,
                }],
                "ports": [
                    {"name": "dns", "port": self.port, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": self.port, "protocol": "TCP"},
                ],
            }),
        )
    }

    fn endpoint_ports(&self) -> Vec<EndpointPort> {
        ["UDP", "TCP"]
            .iter()
            .map(|proto| EndpointPort {
                name: Some(if *proto == "UDP" { "dns" } else { "dns-tcp" }.into()),
                port: i32::from(self.port),
                protocol: Some((*proto).into()),
                ..EndpointPort::default()
            })
            .collect()
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("k8s-app".to_string(), "kube-dns".to_string()),
        (
            "kubernetes.io/cluster-service".to_string(),
            "true".to_string(),
        ),
        ("kubernetes.io/name".to_string(), "CoreDNS".to_string()),
    ])
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    value: serde_json::Value,
) -> Result<T, EnsureError> {
    serde_json::from_value(value).map_err(|e| EnsureError::Encode {
        what,
        message: e.to_string(),
    })
}

fn api_err(what: &'static str) -> impl Fn(kube::Error) -> EnsureError {
    move |source| EnsureError::Api { what, source }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Creates or repairs the Service, this instance's slice and its Endpoints address.
pub async fn ensure(client: &Client, want: &DnsService) -> Result<(), EnsureError> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let service = match services
        .get_opt(NAME)
        .await
        .map_err(api_err("reading kube-dns"))?
    {
        Some(existing) => {
            let spec = existing.spec.as_ref();
            let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
            if ip != want.cluster_ip.to_string() {
                // The cluster IP is immutable: pods must be told the one it has.
                tracing::warn!(have = ip, want = %want.cluster_ip, "kube-dns has another cluster IP");
            }
            let want_ports = want.service()?.spec.and_then(|s| s.ports);
            if spec.and_then(|s| s.ports.clone()) != want_ports {
                let patch = serde_json::json!({"spec": {"ports": want.service_ports()}});
                services
                    .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(api_err("updating kube-dns ports"))?
            } else {
                existing
            }
        }
        None => match services
            .create(&PostParams::default(), &want.service()?)
            .await
        {
            Ok(created) => {
                tracing::info!(ip = %want.cluster_ip, "created service kube-system/kube-dns");
                created
            }
            // Another instance was quicker.
            Err(e) if is_status(&e, 409) => services
                .get(NAME)
                .await
                .map_err(api_err("reading kube-dns"))?,
            Err(e) => return Err(api_err("creating kube-dns")(e)),
        },
    };
    let owner = service.metadata.uid.clone().map(|uid| OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: NAME.into(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    ensure_slice(client, want, owner).await?;
    ensure_endpoints(client, want).await
}

async fn ensure_slice(
    client: &Client,
    want: &DnsService,
    owner: Option<OwnerReference>,
) -> Result<(), EnsureError> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let mut desired = want.slice(owner)?;
    let name = want.slice_name();
    match slices
        .get_opt(&name)
        .await
        .map_err(api_err("reading the kube-dns slice"))?
    {
        None => {
            slices
                .create(&PostParams::default(), &desired)
                .await
                .map_err(api_err("creating the kube-dns slice"))?;
        }
        Some(existing)
            if existing.endpoints == desired.endpoints
                && existing.ports == desired.ports
                && existing.metadata.owner_references == desired.metadata.owner_references => {}
        Some(existing) => {
            desired.metadata.resource_version = existing.resource_version();
            slices
                .replace(&name, &PostParams::default(), &desired)
                .await
                .map_err(api_err("updating the kube-dns slice"))?;
        }
    }
    Ok(())
}

/// Adds this instance's address to the shared Endpoints object (compare-and-swap).
async fn ensure_endpoints(client: &Client, want: &DnsService) -> Result<(), EnsureError> {
    let api: Api<Endpoints> = Api::namespaced(client.clone(), NAMESPACE);
    let ip = want.endpoint_ip.to_string();
    for _ in 0..CAS_ATTEMPTS {
        let result = match api
            .get_opt(NAME)
            .await
            .map_err(api_err("reading kube-dns endpoints"))?
        {
            None => {
                let mut endpoints = Endpoints::default();
                endpoints.metadata.name = Some(NAME.into());
                endpoints.metadata.namespace = Some(NAMESPACE.into());
                endpoints.metadata.labels = Some(labels());
                endpoints.subsets = Some(vec![subset(want, vec![ip.clone()])]);
                api.create(&PostParams::default(), &endpoints)
                    .await
                    .map(|_| ())
            }
            Some(mut existing) => {
                let mut subsets = existing.subsets.take().unwrap_or_default();
                let ports = want.endpoint_ports();
                let present = subsets.iter().any(|s| {
                    s.ports.as_ref() == Some(&ports)
                        && s.addresses.iter().flatten().any(|a| a.ip == ip)
                });
                if present {
                    return Ok(());
                }
                // Our address, with our port, in a subset of its own kind.
                for s in &mut subsets {
                    if let Some(addresses) = s.addresses.as_mut() {
                        addresses.retain(|a| a.ip != ip);
                    }
                }
                subsets.retain(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()));
                match subsets
                    .iter_mut()
                    .find(|s| s.ports.as_ref() == Some(&ports))
                {
                    Some(s) => s.addresses.get_or_insert_with(Vec::new).push(address(&ip)),
                    None => subsets.push(subset(want, vec![ip.clone()])),
                }
                existing.subsets = Some(subsets);
                api.replace(NAME, &PostParams::default(), &existing)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => return Ok(()),
            // Another instance wrote in between: read again.
            Err(e) if is_status(&e, 409) => continue,
            Err(e) => return Err(api_err("writing kube-dns endpoints")(e)),
        }
    }
    Err(EnsureError::Encode {
        what: "writing kube-dns endpoints",
        message: "too many conflicting writers".into(),
    })
}

fn address(ip: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_string(),
        ..EndpointAddress::default()
    }
}

fn subset(want: &DnsService, ips: Vec<String>) -> EndpointSubset {
    EndpointSubset {
        addresses: Some(ips.iter().map(|ip| address(ip)).collect()),
        ports: Some(want.endpoint_ports()),
        ..EndpointSubset::default()
    }
}

/// Removes this instance's slice and Endpoints address (the Service stays: other
/// instances, and the pods' resolv.conf, still name it).
pub async fn withdraw(client: &Client, want: &DnsService) -> Result<(), EnsureError> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    match slices
        .delete(&want.slice_name(), &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(e) if is_status(&e, 404) => {}
        Err(e) => return Err(api_err("deleting the kube-dns slice")(e)),
    }
    let api: Api<Endpoints> = Api::namespaced(client.clone(), NAMESPACE);
    let ip = want.endpoint_ip.to_string();
    for _ in 0..CAS_ATTEMPTS {
        let Some(mut existing) = api
            .get_opt(NAME)
            .await
            .map_err(api_err("reading kube-dns endpoints"))?
        else {
            return Ok(());
        };
        let mut subsets = existing.subsets.take().unwrap_or_default();
        let before: usize = subsets
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum();
        for s in &mut subsets {
            if let Some(addresses) = s.addresses.as_mut() {
                addresses.retain(|a| a.ip != ip);
            }
        }
        subsets.retain(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()));
        let after: usize = subsets
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum();
        if before == after {
            return Ok(());
        }
        existing.subsets = Some(subsets);
        match api.replace(NAME, &PostParams::default(), &existing).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 409) => continue,
            Err(e) => return Err(api_err("writing kube-dns endpoints")(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> DnsService {
        DnsService {
            cluster_ip: "10.43.0.10".parse().expect("ip"),
            endpoint_ip: "192.0.2.2".parse().expect("ip"),
            port: 5353,
            node_name: Some("n1".into()),
        }
    }

    #[test]
    fn service_is_selectorless_with_both_protocols() {
        let svc = want().service().expect("service");
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.43.0.10"));
        assert!(spec.selector.is_none());
        let ports: Vec<(String, i32, String)> = spec
            .ports
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p.name.unwrap_or_default(),
                    p.port,
                    p.protocol.unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("dns".to_string(), 53, "UDP".to_string()),
                ("dns-tcp".to_string(), 53, "TCP".to_string())
            ]
        );
    }

    #[test]
    fn slice_points_at_the_node_port() {
        let slice = want().slice(None).expect("slice");
        assert_eq!(slice.metadata.name.as_deref(), Some("kube-dns-192-0-2-2"));
        let labels = slice.metadata.labels.expect("labels");
        assert_eq!(
            labels.get(SERVICE_NAME_LABEL).map(String::as_str),
            Some("kube-dns")
        );
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some("mast-dns")
        );
        assert_eq!(slice.address_type, "IPv4");
        let endpoints = slice.endpoints.expect("endpoints");
        assert_eq!(endpoints[0].addresses, ["192.0.2.2"]);
        assert_eq!(endpoints[0].node_name.as_deref(), Some("n1"));
        let ports: Vec<Option<i32>> = slice.ports.into_iter().flatten().map(|p| p.port).collect();
        assert_eq!(ports, [Some(5353), Some(5353)]);
    }
}
