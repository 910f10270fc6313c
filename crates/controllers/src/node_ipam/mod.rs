//! Node IPAM (upstream's pkg/controller/nodeipam, range allocator): every Node
//! without `spec.podCIDR` gets the next free `/node_cidr_mask_size` of the cluster
//! CIDR, patched into `spec.podCIDR` and `spec.podCIDRs`.
//!
//! - `cidr.rs`: IPv4 CIDR parsing and arithmetic.
//! - `allocator.rs`: the choice, from the node cache plus reservations of patches
//!   in flight, behind one mutex (so even several workers never hand one CIDR out
//!   twice). Nothing is allocated before the node cache has its first listing.
//! - A full range records a `CIDRNotAvailable` event on the node and retries later
//!   (and whenever a node holding a CIDR is deleted). A refused patch releases the
//!   reservation and records `CIDRAssignmentFailed`; a patch whose outcome is
//!   unknown keeps it, so the retry patches the same CIDR.
//! - IPv4 only: IPv6 parts of the cluster CIDR are ignored with an error logged; with
//!   no usable IPv4 range the controller does nothing.

mod allocator;
mod cidr;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};

use self::allocator::{Allocator, Decision, pod_cidrs};
use self::cidr::{CidrError, Ipv4Cidr};
use crate::config::Config;
use crate::context::Context;
use crate::events::EventType;
use crate::runtime::{Informer, Next, ObjectKey, Reconciler, WorkQueue};

/// How soon a node that found the range full asks again.
const EXHAUSTED_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct NodeIpamController {
    ctx: Arc<Context>,
    queue: WorkQueue<ObjectKey>,
    /// `None` when the configured range is unusable (logged once at start).
    allocator: Option<Mutex<Allocator>>,
}

impl NodeIpamController {
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let queue = WorkQueue::new();
        let allocator = match allocator_for(&ctx.config) {
            Ok(allocator) => {
                register_handlers(&ctx.nodes, &queue);
                Some(Mutex::new(allocator))
            }
            Err(e) => {
                tracing::error!(
                    cluster_cidr = %ctx.config.cluster_cidr,
                    node_cidr_mask_size = ctx.config.node_cidr_mask_size,
                    error = %e,
                    "node IPAM disabled: nodes get no podCIDR"
                );
                None
            }
        };
        Arc::new(NodeIpamController {
            ctx,
            queue,
            allocator,
        })
    }

    fn decide(
        &self,
        allocator: &Mutex<Allocator>,
        key: &ObjectKey,
        node: Option<&Node>,
    ) -> Decision {
        let mut allocator = allocator.lock().unwrap_or_else(|e| e.into_inner());
        allocator.decide(&key.name, node, &self.ctx.nodes.list())
    }

    async fn assign(
        &self,
        allocator: &Mutex<Allocator>,
        node: &Node,
        cidr: Ipv4Cidr,
    ) -> Result<Next, crate::Error> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        // The version read is a precondition: a node changed meanwhile (say, given a
        // CIDR by someone else) is looked at again rather than overwritten.
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]},
        });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = %name, pod_cidr = %cidr, "set node podCIDR");
                Ok(Next::Idle)
            }
            Err(kube::Error::Api(status)) => {
                // The server answered: the CIDR was not assigned.
                allocator
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .release(&name, cidr);
                match status.code {
                    404 => Ok(Next::Idle),
                    409 => Err(kube::Error::Api(status).into()),
                    _ => {
                        record_status_change(&self.ctx, node, "CIDRAssignmentFailed");
                        Err(kube::Error::Api(status).into())
                    }
                }
            }
            // No answer: the patch may have landed; the reservation stays for the retry.
            Err(e) => Err(e.into()),
        }
    }
}

/// The allocator for the configured range: its IPv4 CIDR (IPv6 ones are logged
/// and ignored).
fn allocator_for(config: &Config) -> Result<Allocator, String> {
    let mut ipv4 = None;
    for part in config
        .cluster_cidr
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part.parse::<Ipv4Cidr>() {
            Ok(cidr) if ipv4.is_none() => ipv4 = Some(cidr),
            Ok(_) => {
                return Err(format!(
                    "{:?} names more than one IPv4 CIDR",
                    config.cluster_cidr
                ));
            }
            Err(CidrError::Ipv6(_)) => {
                tracing::error!(
                    cidr = part,
                    "IPv6 cluster CIDRs are not supported; ignoring it"
                );
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let cluster = ipv4.ok_or_else(|| format!("no IPv4 CIDR in {:?}", config.cluster_cidr))?;
    Allocator::new(cluster, config.node_cidr_mask_size)
}

/// Nodes without a CIDR, nodes whose CIDR changed (their reservation can go), and
/// deleted nodes; when a node holding a CIDR goes, every node still waiting.
fn register_handlers(nodes: &Informer<Node>, queue: &WorkQueue<ObjectKey>) {
    let (queue, cache) = (queue.clone(), nodes.clone());
    nodes.on_change(Box::new(move |old, new| match (old, new) {
        (_, Some(node)) if pod_cidrs(node).is_empty() => queue.add(ObjectKey::of(node.as_ref())),
        (Some(old), Some(node)) if pod_cidrs(old) != pod_cidrs(node) => {
            queue.add(ObjectKey::of(node.as_ref()));
        }
        (Some(old), None) => {
            queue.add(ObjectKey::of(old.as_ref()));
            if !pod_cidrs(old).is_empty() {
                for waiting in cache.filter(|n| pod_cidrs(n).is_empty()) {
                    queue.add(ObjectKey::of(waiting.as_ref()));
                }
            }
        }
        _ => {}
    }));
}

/// Upstream's `RecordNodeStatusChange`.
fn record_status_change(ctx: &Context, node: &Node, status: &str) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    ctx.events.record(
        node,
        EventType::Normal,
        status,
        format!("Node {name} status is now: {status}"),
    );
}

impl Reconciler for NodeIpamController {
    type Key = ObjectKey;

    fn name(&self) -> &'static str {
        "nodeipam"
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    fn resync(&self) {
        if self.allocator.is_none() {
            return;
        }
        for node in self.ctx.nodes.filter(|n| pod_cidrs(n).is_empty()) {
            self.queue.add(ObjectKey::of(node.as_ref()));
        }
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Next, crate::Error> {
        let Some(allocator) = &self.allocator else {
            return Ok(Next::Idle);
        };
        // Allocating before every existing node is known could hand out a used CIDR.
        self.ctx.nodes.wait_synced().await;
        let node = self.ctx.nodes.get(key);
        match self.decide(allocator, key, node.as_deref()) {
            Decision::Done => Ok(Next::Idle),
            Decision::Exhausted => {
                if let Some(node) = &node {
                    tracing::warn!(node = %key, "no podCIDR left in the cluster CIDR");
                    record_status_change(&self.ctx, node, "CIDRNotAvailable");
                }
                Ok(Next::After(EXHAUSTED_RETRY))
            }
            Decision::Assign(cidr) => match &node {
                Some(node) => self.assign(allocator, node, cidr).await,
                None => Ok(Next::Idle),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cluster_cidr: &str, mask: u8) -> Config {
        Config {
            cluster_cidr: cluster_cidr.into(),
            node_cidr_mask_size: mask,
            ..Config::default()
        }
    }

    #[test]
    fn the_configured_range_is_checked() {
        assert!(allocator_for(&Config::default()).is_ok());
        assert!(
            allocator_for(&config("10.42.0.0/16,fd00::/56", 24)).is_ok(),
            "IPv6 part ignored"
        );
        assert!(
            allocator_for(&config("fd00::/56", 24)).is_err(),
            "no IPv4 left"
        );
        assert!(allocator_for(&config("10.42.0.0/16,10.43.0.0/16", 24)).is_err());
        assert!(allocator_for(&config("nonsense", 24)).is_err());
        assert!(allocator_for(&config("10.42.0.0/16", 12)).is_err());
    }
}
