//! Cluster IPs and node ports for Services, as kube-apiserver's service registry
//! allocates them, kept in the store so that any number of API servers share them.
//!
//! Layout:
//! - [`ip`], [`port`]: the two ranges (`--service-cidr`, `--service-node-port-range`)
//!   and their arithmetic.
//! - [`pool`]: one store key per allocated item (`/registry/ranges/serviceips/<ip>`,
//!   `/registry/ranges/servicenodeports/<port>`), taken with the store's `create`: the
//!   store decides races between API servers, item by item.
//! - [`service`]: the Service fields allocation reads and fills (pure).
//! - [`repair`]: the pass that frees what no Service holds and records what is missing.
//! - this file: the create, update and delete steps the handlers call.
//!
//! The keys live under `/registry/ranges/`, which is no resource's prefix, so they never
//! show up in a list or watch of Services. A write first takes what it needs, then
//! writes the Service; if the write fails, what was taken is given back; what an update
//! or delete gives up is released after the write. A crash in between leaves an
//! allocation no Service names, which the repair pass frees.

pub mod ip;
mod pool;
pub mod port;
pub mod repair;
pub mod service;

use std::collections::{BTreeMap, BTreeSet};

use api::validation::{BadValue, FieldError, Path};
use k8s_openapi::api::core::v1::Service;
use serde_json::Value;
use store::AnyStore;

pub use ip::IpRange;
pub use pool::Holder;
use pool::Pool;
pub use port::PortRange;
pub use repair::RepairReport;

use crate::error::ApiError;
use crate::meta;

/// Where allocated cluster IPs are kept (upstream's key for its bitmap).
pub const IP_PREFIX: &str = "/registry/ranges/serviceips/";
/// Where allocated node ports are kept.
pub const NODE_PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

const IPS: Pool = Pool { prefix: IP_PREFIX };
const NODE_PORTS: Pool = Pool {
    prefix: NODE_PORT_PREFIX,
};

/// A range flag that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not `address/prefix`.
    #[error("invalid CIDR {0:?}: expected an IPv4 network such as 10.43.0.0/16")]
    Cidr(String),
    /// An IPv6 network: services are single-stack IPv4 for now.
    #[error("{0}: only IPv4 service CIDRs are supported")]
    NotIpv4(String),
    /// A range too large to track or too small to hold anything.
    #[error("{cidr}: the mask must be between /{min} and /{max}")]
    PrefixLength { cidr: String, min: u8, max: u8 },
    /// Not `from-to` within 1-65535.
    #[error("invalid port range {0:?}: expected FROM-TO within 1-65535, such as 30000-32767")]
    Ports(String),
}

/// The ranges Services are given addresses and node ports from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceRanges {
    pub cluster_ips: IpRange,
    pub node_ports: PortRange,
}

/// What one write of a Service took and gives up.
#[derive(Debug, Default)]
pub struct Change {
    uid: String,
    claimed_ips: Vec<String>,
    claimed_ports: Vec<String>,
    released_ips: Vec<String>,
    released_ports: Vec<String>,
}

/// Node ports already accounted for while one Service's ports are filled.
struct Taken<'a> {
    /// Held before this write (not taken again).
    old: &'a BTreeSet<i32>,
    /// Taken or kept by this write so far.
    held: &'a mut BTreeSet<i32>,
    /// Port number to node port: a TCP and a UDP port of one number share one.
    by_port: &'a mut BTreeMap<i32, i32>,
}

/// The allocators over the store.
#[derive(Debug, Clone)]
pub struct Allocators {
    store: AnyStore,
    ranges: ServiceRanges,
}

fn decode(object: &Value) -> Option<Service> {
    serde_json::from_value(object.clone()).ok()
}

/// Writes the typed Service back into `object`; on the (impossible) failure to encode,
/// the object stays as it was and validation has the last word.
fn encode(svc: &Service, object: &mut Value) {
    if let Ok(value) = serde_json::to_value(svc) {
        *object = value;
    }
}

/// Before a new Service is validated: clusterIPs follows a lone clusterIP.
pub fn prepare_create(kind: &str, object: &mut Value) {
    if kind != "Service" {
        return;
    }
    if let Some(mut svc) = decode(object) {
        service::normalize_cluster_ips(&mut svc, None);
        encode(&svc, object);
    }
}

/// Before an updated Service is validated: upstream's strategy (allocated values kept,
/// clusterIPs in step, fields of the old type dropped).
pub fn prepare_update(kind: &str, current: &Value, next: &mut Value) {
    if kind != "Service" {
        return;
    }
    if let (Some(old), Some(mut svc)) = (decode(current), decode(next)) {
        service::prepare_update(&mut svc, &old);
        encode(&svc, next);
    }
}

fn invalid(name: &str, causes: Vec<FieldError>) -> ApiError {
    ApiError::invalid("", "Service", name, causes)
}

/// Upstream's wording for a failure that is neither the client's nor the store's.
fn internal(what: &str) -> ApiError {
    ApiError::Internal(format!("Internal error occurred: {what}"))
}

impl Allocators {
    pub fn new(store: AnyStore, ranges: ServiceRanges) -> Self {
        Self { store, ranges }
    }

    pub fn ranges(&self) -> &ServiceRanges {
        &self.ranges
    }

    /// Takes what a Service of `kind` about to be written needs — cluster IP, node
    /// ports — and fills them into `new`; `old` is the stored object on update. Nothing
    /// for other kinds. On error, nothing stays taken.
    pub async fn allocate(
        &self,
        kind: &str,
        old: Option<&Value>,
        new: &mut Value,
    ) -> Result<Change, ApiError> {
        if kind != "Service" {
            return Ok(Change::default());
        }
        let Some(mut svc) = decode(new) else {
            return Ok(Change::default());
        };
        let old = old.and_then(decode);
        let name = meta::name(new).to_string();
        let errs = service::init_ip_families(&mut svc, old.as_ref());
        if !errs.is_empty() {
            return Err(invalid(&name, errs));
        }
        let holder = Holder {
            namespace: meta::namespace(new).to_string(),
            name: name.clone(),
            uid: meta::uid(new).to_string(),
            allocated_at: meta::unix_now(),
        };
        let mut change = Change {
            uid: holder.uid.clone(),
            ..Change::default()
        };
        let done = match self
            .cluster_ip(&mut svc, old.as_ref(), &holder, &mut change)
            .await
        {
            Ok(()) => {
                self.node_ports(&mut svc, old.as_ref(), &holder, &mut change)
                    .await
            }
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => {
                encode(&svc, new);
                Ok(change)
            }
            Err(e) => {
                self.revert(change).await;
                Err(e)
            }
        }
    }

    async fn cluster_ip(
        &self,
        svc: &mut Service,
        old: Option<&Service>,
        holder: &Holder,
        change: &mut Change,
    ) -> Result<(), ApiError> {
        if !service::needs_cluster_ip(svc) {
            // Leaving for ExternalName: the addresses go back after the write.
            change.released_ips = old.map(service::allocated_ips).unwrap_or_default();
            return Ok(());
        }
        let old_holds = old.is_some_and(|o| !service::allocated_ips(o).is_empty());
        let old_headless =
            old.is_some_and(|o| service::needs_cluster_ip(o) && service::is_headless(o));
        // An address never changes once held (validation sees to that); a Service gets
        // one on create, when it leaves ExternalName, or when it was stored before
        // allocation existed.
        if old_holds || old_headless || service::is_headless(svc) {
            return Ok(());
        }
        let requested = service::allocated_ips(svc);
        match requested.first() {
            Some(ip) => {
                let detail = |why: &str| {
                    let listed = svc
                        .spec
                        .as_ref()
                        .and_then(|s| s.cluster_ips.clone())
                        .unwrap_or_else(|| requested.clone());
                    invalid(
                        &holder.name,
                        vec![FieldError::invalid(
                            &Path::new("spec").child("clusterIPs"),
                            BadValue::json(&listed),
                            &format!("failed to allocate IP {ip}: {why}"),
                        )],
                    )
                };
                let Some(canonical) = ip
                    .parse::<std::net::Ipv4Addr>()
                    .ok()
                    .filter(|a| self.ranges.cluster_ips.index_of(*a).is_some())
                else {
                    return Err(detail(&format!(
                        "provided IP {ip} is not in the valid range"
                    )));
                };
                let item = canonical.to_string();
                if !IPS.claim(&self.store, &item, holder).await? {
                    return Err(detail("provided IP is already allocated"));
                }
                change.claimed_ips.push(item);
            }
            None => {
                let Some(ip) = IPS
                    .claim_next(&self.store, &self.ranges.cluster_ips, holder)
                    .await?
                else {
                    return Err(internal("failed to allocate a serviceIP: range is full"));
                };
                service::set_cluster_ip(svc, &ip);
                change.claimed_ips.push(ip);
            }
        }
        Ok(())
    }

    /// Takes a requested node port; the reason it cannot, if it cannot.
    async fn claim_port(
        &self,
        port: i32,
        holder: &Holder,
        change: &mut Change,
    ) -> Result<Result<(), String>, ApiError> {
        if self.ranges.node_ports.index_of(port).is_none() {
            return Ok(Err(format!(
                "provided port is not in the valid range. The range of valid ports is {}",
                self.ranges.node_ports
            )));
        }
        let item = port.to_string();
        if !NODE_PORTS.claim(&self.store, &item, holder).await? {
            return Ok(Err("provided port is already allocated".to_string()));
        }
        change.claimed_ports.push(item);
        Ok(Ok(()))
    }

    async fn next_port(
        &self,
        holder: &Holder,
        change: &mut Change,
    ) -> Result<Option<i32>, ApiError> {
        let Some(item) = NODE_PORTS
            .claim_next(&self.store, &self.ranges.node_ports, holder)
            .await?
        else {
            return Ok(None);
        };
        let port = item.parse().ok();
        change.claimed_ports.push(item);
        Ok(port)
    }

    /// Gives port `i` of the Service its node port: takes a requested one not held
    /// yet, or the next free one when the port has none and the type allocates.
    async fn fill_node_port(
        &self,
        i: usize,
        port: &mut k8s_openapi::api::core::v1::ServicePort,
        allocate: bool,
        taken: &mut Taken<'_>,
        holder: &Holder,
        change: &mut Change,
    ) -> Result<(), ApiError> {
        let requested = port.node_port.unwrap_or(0);
        if requested != 0 {
            let fresh = !taken.old.contains(&requested) && !taken.held.contains(&requested);
            taken.held.insert(requested);
            if fresh && let Err(why) = self.claim_port(requested, holder, change).await? {
                let field = Path::new("spec").child("ports").index(i).child("nodePort");
                return Err(invalid(
                    &holder.name,
                    vec![FieldError::invalid(&field, requested, &why)],
                ));
            }
            return Ok(());
        }
        if !allocate {
            return Ok(());
        }
        if let Some(shared) = taken.by_port.get(&port.port) {
            port.node_port = Some(*shared);
            return Ok(());
        }
        let Some(np) = self.next_port(holder, change).await? else {
            return Err(internal("failed to allocate a nodePort: range is full"));
        };
        port.node_port = Some(np);
        taken.by_port.insert(port.port, np);
        taken.held.insert(np);
        Ok(())
    }

    async fn node_ports(
        &self,
        svc: &mut Service,
        old: Option<&Service>,
        holder: &Holder,
        change: &mut Change,
    ) -> Result<(), ApiError> {
        let old_ports = old.map(service::allocated_node_ports).unwrap_or_default();
        let mut held = BTreeSet::new();
        if service::needs_node_port(svc) {
            let allocate = service::should_allocate_node_ports(svc);
            let ports = svc
                .spec
                .as_mut()
                .and_then(|s| s.ports.as_mut())
                .map(std::mem::take)
                .unwrap_or_default();
            // Upstream gives a TCP and a UDP port of the same number one node port.
            let mut by_port: BTreeMap<i32, i32> = BTreeMap::new();
            for p in &ports {
                if let Some(np) = p.node_port.filter(|n| *n != 0) {
                    by_port.entry(p.port).or_insert(np);
                }
            }
            let mut filled = Vec::with_capacity(ports.len());
            let mut failure = None;
            for (i, mut p) in ports.into_iter().enumerate() {
                if failure.is_none() {
                    let mut taken = Taken {
                        old: &old_ports,
                        held: &mut held,
                        by_port: &mut by_port,
                    };
                    if let Err(e) = self
                        .fill_node_port(i, &mut p, allocate, &mut taken, holder, change)
                        .await
                    {
                        failure = Some(e);
                    }
                }
                filled.push(p);
            }
            if let Some(spec) = svc.spec.as_mut() {
                spec.ports = Some(filled);
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        if service::needs_health_check_node_port(svc) {
            let requested = svc
                .spec
                .as_ref()
                .and_then(|s| s.health_check_node_port)
                .unwrap_or(0);
            let fresh = !old_ports.contains(&requested) && !held.contains(&requested);
            if requested != 0 {
                if fresh && let Err(why) = self.claim_port(requested, holder, change).await? {
                    return Err(internal(&format!(
                        "failed to allocate requested HealthCheck NodePort {requested}: {why}"
                    )));
                }
            } else {
                let Some(np) = self.next_port(holder, change).await? else {
                    return Err(internal(
                        "failed to allocate a HealthCheck NodePort 0: range is full",
                    ));
                };
                if let Some(spec) = svc.spec.as_mut() {
                    spec.health_check_node_port = Some(np);
                }
            }
        }
        let now = service::allocated_node_ports(svc);
        change.released_ports = old_ports
            .difference(&now)
            .map(ToString::to_string)
            .collect();
        Ok(())
    }

    /// After a failed write: gives back what `change` took.
    pub async fn revert(&self, change: Change) {
        self.release(IPS, &change.claimed_ips, &change.uid).await;
        self.release(NODE_PORTS, &change.claimed_ports, &change.uid)
            .await;
    }

    /// After a successful write: gives back what the Service no longer holds.
    pub async fn commit(&self, change: Change) {
        self.release(IPS, &change.released_ips, &change.uid).await;
        self.release(NODE_PORTS, &change.released_ports, &change.uid)
            .await;
    }

    /// After a Service of `kind` is deleted: gives back everything it held.
    pub async fn release_deleted(&self, kind: &str, object: &Value) {
        if kind != "Service" {
            return;
        }
        let Some(svc) = decode(object) else {
            return;
        };
        let uid = meta::uid(object);
        let ports: Vec<String> = service::allocated_node_ports(&svc)
            .iter()
            .map(ToString::to_string)
            .collect();
        self.release(IPS, &service::allocated_ips(&svc), uid).await;
        self.release(NODE_PORTS, &ports, uid).await;
    }

    /// A failed release leaves an allocation no Service holds: the repair pass frees
    /// it, so it is logged, not returned.
    async fn release(&self, pool: Pool, items: &[String], uid: &str) {
        for item in items {
            if let Err(e) = pool.release(&self.store, item, uid).await {
                tracing::warn!(item, error = %e, "releasing a service allocation; the repair pass will");
            }
        }
    }

    /// Takes `ip` for `holder`, taking it over if a previous incarnation of the same
    /// Service (same namespace and name) still holds it: for the API server's own
    /// Service, whose address is fixed. False if another Service holds it.
    pub async fn adopt_ip(&self, ip: &str, holder: &Holder) -> Result<bool, ApiError> {
        for _ in 0..3 {
            if IPS.claim(&self.store, ip, holder).await? {
                return Ok(true);
            }
            let (entries, _) = IPS.list(&self.store, 0).await?;
            let Some(entry) = entries.into_iter().find(|e| e.item == ip) else {
                continue;
            };
            let same = entry
                .holder
                .as_ref()
                .is_some_and(|h| h.namespace == holder.namespace && h.name == holder.name);
            if !same {
                return Ok(false);
            }
            if IPS
                .reassign(&self.store, ip, holder, entry.mod_revision)
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
