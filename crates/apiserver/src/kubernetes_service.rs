//! The API server's own Service, as upstream's control-plane reconciler keeps it:
//! `default/kubernetes`, type ClusterIP with the first address of the service range,
//! port 443 (`https`) to the API server's port, no selector; and its Endpoints and
//! EndpointSlice (both named `kubernetes`) listing the API servers' advertised
//! addresses. With several API servers, each merges its own address in and keeps the
//! others', and drops the address of one whose identity Lease ([`crate::identity`])
//! expired, as upstream's lease-based reconciler does.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::allocator::Holder;
use crate::error::ApiError;
use crate::meta;
use crate::state::AppState;

pub const NAME: &str = "kubernetes";
pub const NAMESPACE: &str = "default";
const PORT_NAME: &str = "https";
const SERVICE_PORT: i32 = 443;
/// How often the Endpoints are checked again (upstream: every 10 seconds).
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(10);
/// Rereads when another API server writes the same object meanwhile.
const MAX_RETRIES: usize = 8;

/// Makes the Service, its Endpoints and its EndpointSlice name this API server at
/// `advertise`.
pub async fn reconcile(state: &AppState, advertise: SocketAddr) -> Result<(), ApiError> {
    ensure_service(state, i32::from(advertise.port())).await?;
    let endpoints = ensure_endpoints(state, advertise).await?;
    ensure_slice(state, &endpoints).await
}

/// Reconciles every [`RECONCILE_INTERVAL`] until `stop` turns true.
pub fn spawn(
    state: AppState,
    advertise: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + RECONCILE_INTERVAL;
        let mut ticks = tokio::time::interval_at(start, RECONCILE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = reconcile(&state, advertise).await {
                tracing::warn!(error = %e, "reconciling the kubernetes service");
            }
        }
    })
}

fn resource(plural: &str) -> Result<&'static api::registry::Resource, ApiError> {
    let group = if plural == "endpointslices" {
        "discovery.k8s.io"
    } else {
        ""
    };
    api::registry::find(group, "v1", plural)
        .ok_or_else(|| ApiError::Internal(format!("{plural} are not served")))
}

fn service_ports(port: i32) -> Value {
    json!([{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP", "targetPort": port}])
}

fn endpoint_ports(port: i32) -> Value {
    json!([{"name": PORT_NAME, "port": port, "protocol": "TCP"}])
}

fn new_metadata(labels: Value) -> Value {
    json!({
        "name": NAME,
        "namespace": NAMESPACE,
        "uid": uuid::Uuid::new_v4().to_string(),
        "creationTimestamp": meta::now(),
        "labels": labels,
    })
}

async fn ensure_service(state: &AppState, port: i32) -> Result<(), ApiError> {
    let services = resource("services")?;
    let key = services.key(Some(NAMESPACE), NAME);
    match state.objects().get(services, &key, NAME).await {
        Ok(current) => {
            // Upstream points the port at the API server again if it changed.
            let want = service_ports(port);
            if current.object.pointer("/spec/ports") != Some(&want) {
                let mut next = current.object.clone();
                next["spec"]["ports"] = want;
                // Lost to another writer: the next pass looks again.
                state.objects().update(&key, next, current.revision).await?;
            }
            Ok(())
        }
        Err(ApiError::NotFound { .. }) => {
            let metadata =
                new_metadata(json!({"component": "apiserver", "provider": "kubernetes"}));
            let ip = state
                .allocators()
                .ranges()
                .cluster_ips
                .kubernetes_service_ip()
                .to_string();
            let holder = Holder {
                namespace: NAMESPACE.to_string(),
                name: NAME.to_string(),
                uid: metadata["uid"].as_str().unwrap_or("").to_string(),
                allocated_at: meta::unix_now(),
            };
            if !state.allocators().adopt_ip(&ip, &holder).await? {
                return Err(ApiError::Internal(format!(
                    "the kubernetes service's address {ip} is held by another service"
                )));
            }
            let object = json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata,
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": ip,
                    "clusterIPs": [ip],
                    "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack",
                    "internalTrafficPolicy": "Cluster",
                    "sessionAffinity": "None",
                    "ports": service_ports(port),
                },
                "status": {"loadBalancer": {}},
            });
            match state.objects().create(services, &key, object).await {
                // Another API server made it first; the repair pass settles whose uid
                // the address records.
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The Endpoints with `ip` listed beside the addresses already there, in the subset of
/// `port` (a new subset if none has that port).
pub fn merge_address(endpoints: &Value, ip: &str, port: i32) -> Value {
    let mut merged = endpoints.clone();
    let ports = endpoint_ports(port);
    let address = json!({"ip": ip});
    let mut subsets = merged
        .get("subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match subsets.iter_mut().find(|s| s.get("ports") == Some(&ports)) {
        Some(subset) => {
            let mut addresses = subset
                .get("addresses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !addresses
                .iter()
                .any(|a| a.get("ip").and_then(Value::as_str) == Some(ip))
            {
                addresses.push(address);
                addresses.sort_by(|a, b| a["ip"].as_str().cmp(&b["ip"].as_str()));
                subset["addresses"] = Value::Array(addresses);
            }
        }
        None => subsets.push(json!({"addresses": [address], "ports": ports})),
    }
    merged["subsets"] = Value::Array(subsets);
    merged
}

/// The Endpoints without the addresses in `gone`; a subset left with no address
/// goes too.
pub fn drop_addresses(endpoints: &Value, gone: &[SocketAddr]) -> Value {
    let mut pruned = endpoints.clone();
    let Some(subsets) = pruned.get_mut("subsets").and_then(Value::as_array_mut) else {
        return pruned;
    };
    for addr in gone {
        let ports = endpoint_ports(i32::from(addr.port()));
        let ip = addr.ip().to_string();
        for subset in subsets.iter_mut() {
            if subset.get("ports") != Some(&ports) {
                continue;
            }
            if let Some(addresses) = subset.get_mut("addresses").and_then(Value::as_array_mut) {
                addresses.retain(|a| a.get("ip").and_then(Value::as_str) != Some(ip.as_str()));
            }
        }
    }
    subsets.retain(|s| {
        s.get("addresses")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    });
    pruned
}

/// Addresses of API servers whose identity Leases expired, unless a live server (or
/// this one) is at the same address. A failed read prunes nothing.
async fn gone_servers(state: &AppState, advertise: SocketAddr) -> Vec<SocketAddr> {
    let peers = match crate::identity::peers(state).await {
        Ok(peers) => peers,
        Err(e) => {
            tracing::debug!(error = %e, "reading API server identity leases");
            return Vec::new();
        }
    };
    let live: Vec<SocketAddr> = peers
        .iter()
        .filter(|p| !p.expired())
        .filter_map(|p| p.address)
        .collect();
    peers
        .iter()
        .filter(|p| p.expired())
        .filter_map(|p| p.address)
        .filter(|a| *a != advertise && !live.contains(a))
        .collect()
}

async fn ensure_endpoints(state: &AppState, advertise: SocketAddr) -> Result<Value, ApiError> {
    let endpoints = resource("endpoints")?;
    let key = endpoints.key(Some(NAMESPACE), NAME);
    let ip = advertise.ip().to_string();
    let port = i32::from(advertise.port());
    let gone = gone_servers(state, advertise).await;
    for _ in 0..MAX_RETRIES {
        match state.objects().get(endpoints, &key, NAME).await {
            Ok(current) => {
                let merged = drop_addresses(&merge_address(&current.object, &ip, port), &gone);
                if merged == current.object {
                    return Ok(merged);
                }
                if let Some(stored) = state
                    .objects()
                    .update(&key, merged, current.revision)
                    .await?
                {
                    return Ok(stored.object);
                }
            }
            Err(ApiError::NotFound { .. }) => {
                let object = json!({
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    // The API server keeps the slice itself: the mirroring controller
                    // must not make another.
                    "metadata": new_metadata(json!({"endpointslice.kubernetes.io/skip-mirror": "true"})),
                    "subsets": [{"addresses": [{"ip": ip}], "ports": endpoint_ports(port)}],
                });
                match state.objects().create(endpoints, &key, object).await {
                    Ok(stored) => return Ok(stored.object),
                    Err(ApiError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale("", "endpoints", NAME))
}

/// Upstream's `endpointSliceFromEndpoints`: the first subset's addresses and ports.
pub fn slice_fields(endpoints: &Value) -> (Value, Value) {
    let subset = endpoints.pointer("/subsets/0");
    let addresses: Vec<Value> = subset
        .and_then(|s| s.get("addresses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("ip").cloned())
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    let ports = subset
        .and_then(|s| s.get("ports"))
        .cloned()
        .unwrap_or(json!([]));
    (Value::Array(addresses), ports)
}

async fn ensure_slice(state: &AppState, endpoints: &Value) -> Result<(), ApiError> {
    let slices = resource("endpointslices")?;
    let key = slices.key(Some(NAMESPACE), NAME);
    let (addresses, ports) = slice_fields(endpoints);
    let labels = json!({"kubernetes.io/service-name": NAME});
    for _ in 0..MAX_RETRIES {
        match state.objects().get(slices, &key, NAME).await {
            Ok(current) => {
                let mut next = current.object.clone();
                next["addressType"] = json!("IPv4");
                next["endpoints"] = addresses.clone();
                next["ports"] = ports.clone();
                meta::metadata_mut(&mut next).insert("labels".into(), labels.clone());
                if next == current.object
                    || state
                        .objects()
                        .update(&key, next, current.revision)
                        .await?
                        .is_some()
                {
                    return Ok(());
                }
            }
            Err(ApiError::NotFound { .. }) => {
                let object = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": new_metadata(labels.clone()),
                    "addressType": "IPv4",
                    "endpoints": addresses,
                    "ports": ports,
                });
                match state.objects().create(slices, &key, object).await {
                    Ok(_) => return Ok(()),
                    Err(ApiError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::stale("discovery.k8s.io", "endpointslices", NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_servers() {
        let empty = json!({"metadata": {"name": NAME}});
        let one = merge_address(&empty, "10.0.0.2", 6443);
        assert_eq!(
            one["subsets"],
            json!([{"addresses": [{"ip": "10.0.0.2"}], "ports": endpoint_ports(6443)}])
        );
        assert_eq!(merge_address(&one, "10.0.0.2", 6443), one);
        let two = merge_address(&one, "10.0.0.1", 6443);
        assert_eq!(
            two["subsets"][0]["addresses"],
            json!([{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}])
        );
        let other_port = merge_address(&two, "10.0.0.3", 7443);
        assert_eq!(other_port["subsets"].as_array().map(Vec::len), Some(2));
        let pruned = drop_addresses(&two, &["10.0.0.2:6443".parse().expect("an address")]);
        assert_eq!(
            pruned["subsets"][0]["addresses"],
            json!([{"ip": "10.0.0.1"}])
        );
        let emptied = drop_addresses(&one, &["10.0.0.2:6443".parse().expect("an address")]);
        assert_eq!(emptied["subsets"], json!([]));
        let (addresses, ports) = slice_fields(&other_port);
        assert_eq!(
            addresses,
            json!([
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
            ])
        );
        assert_eq!(ports, endpoint_ports(6443));
    }
}
