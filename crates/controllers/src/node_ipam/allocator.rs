//! Which podCIDR a node gets (upstream's range allocator over a `CidrSet`).
//!
//! What is in use is recomputed from the node cache at each allocation (every node's
//! podCIDRs), plus the reservations of allocations whose patch the cache does not
//! show yet. So a deleted node frees its CIDR as soon as the cache drops it, the
//! CIDRs of existing nodes are respected from the start, and two nodes never get the
//! same CIDR even while the cache lags behind our patches. Candidates are tried
//! round-robin from after the last allocation, as upstream does, so a freed CIDR is
//! not handed out again at once.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use super::cidr::Ipv4Cidr;

/// Upstream's limit on node-CIDR bits past the cluster prefix (65536 node CIDRs),
/// which also bounds the in-use map.
const MAX_SUBNET_BITS: u8 = 16;

/// The cluster range, split into node CIDRs.
#[derive(Debug)]
pub(crate) struct Allocator {
    cluster: Ipv4Cidr,
    node_prefix: u8,
    count: u64,
    next: u64,
    /// Allocations the cache may not show yet, by node name.
    reserved: HashMap<String, Ipv4Cidr>,
}

/// What to do for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing: it has a CIDR, is gone or is going.
    Done,
    /// Give it this CIDR (reserved for it until the cache shows it).
    Assign(Ipv4Cidr),
    /// The range is full.
    Exhausted,
}

impl Allocator {
    pub(crate) fn new(cluster: Ipv4Cidr, node_prefix: u8) -> Result<Self, String> {
        if node_prefix < cluster.prefix() || node_prefix > 32 {
            return Err(format!(
                "node CIDR mask size /{node_prefix} must be between the cluster CIDR's /{} and /32",
                cluster.prefix()
            ));
        }
        if node_prefix - cluster.prefix() > MAX_SUBNET_BITS {
            return Err(format!(
                "node CIDR mask size /{node_prefix} splits {cluster} into more than 2^{MAX_SUBNET_BITS} CIDRs"
            ));
        }
        let count = cluster
            .subnet_count(node_prefix)
            .ok_or_else(|| format!("/{node_prefix} does not split {cluster}"))?;
        Ok(Allocator {
            cluster,
            node_prefix,
            count,
            next: 0,
            reserved: HashMap::new(),
        })
    }

    /// Decides for node `name` (`node` as cached, `None` if gone), given every cached
    /// node; an assignment is reserved before it is returned.
    pub(crate) fn decide(
        &mut self,
        name: &str,
        node: Option<&Node>,
        nodes: &[Arc<Node>],
    ) -> Decision {
        let Some(node) = node else {
            self.reserved.remove(name);
            return Decision::Done;
        };
        if !pod_cidrs(node).is_empty() {
            self.reserved.remove(name);
            return Decision::Done;
        }
        if node.metadata.deletion_timestamp.is_some() {
            return Decision::Done;
        }
        // A patch that failed without an answer: try the same CIDR again.
        if let Some(cidr) = self.reserved.get(name) {
            return Decision::Assign(*cidr);
        }
        let used = self.in_use(nodes);
        match self.next_free(&used) {
            Some(cidr) => {
                self.reserved.insert(name.to_string(), cidr);
                Decision::Assign(cidr)
            }
            None => Decision::Exhausted,
        }
    }

    /// Drops the reservation of `name` for `cidr` (its patch was refused).
    pub(crate) fn release(&mut self, name: &str, cidr: Ipv4Cidr) {
        if self.reserved.get(name) == Some(&cidr) {
            self.reserved.remove(name);
        }
    }

    /// Every node CIDR index in use: cached podCIDRs and live reservations
    /// (reservations of nodes gone, or whose CIDR the cache now shows, are dropped).
    fn in_use(&mut self, nodes: &[Arc<Node>]) -> Vec<bool> {
        let mut used = vec![false; usize::try_from(self.count).unwrap_or(usize::MAX)];
        let mut waiting = HashMap::new();
        for node in nodes {
            let cidrs = pod_cidrs(node);
            for cidr in &cidrs {
                // Not ours to judge: IPv6 or malformed CIDRs take nothing from the range.
                if let Ok(cidr) = cidr.parse::<Ipv4Cidr>() {
                    self.mark(&mut used, &cidr);
                }
            }
            if cidrs.is_empty()
                && let Some(name) = node.metadata.name.as_deref()
            {
                waiting.insert(name, ());
            }
        }
        self.reserved
            .retain(|name, _| waiting.contains_key(name.as_str()));
        for cidr in self.reserved.values() {
            let cidr = *cidr;
            let range = self.cluster.subnets_overlapping(self.node_prefix, &cidr);
            for index in range {
                if let Some(slot) = usize::try_from(index).ok().and_then(|i| used.get_mut(i)) {
                    *slot = true;
                }
            }
        }
        used
    }

    fn mark(&self, used: &mut [bool], cidr: &Ipv4Cidr) {
        for index in self.cluster.subnets_overlapping(self.node_prefix, cidr) {
            if let Some(slot) = usize::try_from(index).ok().and_then(|i| used.get_mut(i)) {
                *slot = true;
            }
        }
    }

    /// The first free CIDR from the round-robin position on.
    fn next_free(&mut self, used: &[bool]) -> Option<Ipv4Cidr> {
        let index = (0..self.count)
            .map(|offset| (self.next + offset) % self.count)
            .find(|i| usize::try_from(*i).ok().and_then(|i| used.get(i)) == Some(&false))?;
        self.next = (index + 1) % self.count;
        self.cluster.subnet(self.node_prefix, index)
    }
}

/// A node's podCIDRs: `spec.podCIDRs`, or `spec.podCIDR` alone.
pub(crate) fn pod_cidrs(node: &Node) -> Vec<&str> {
    let Some(spec) = node.spec.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = spec
        .pod_cidrs
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    spec.pod_cidr
        .as_deref()
        .filter(|c| !c.is_empty())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        text.parse().expect("a valid CIDR")
    }

    fn node(name: &str, pod_cidr: Option<&str>) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: pod_cidr.map(str::to_string),
                pod_cidrs: pod_cidr.map(|c| vec![c.to_string()]),
                ..NodeSpec::default()
            }),
            ..Node::default()
        })
    }

    /// Decides for `name` against `nodes`, as the controller would.
    fn decide(alloc: &mut Allocator, name: &str, nodes: &[Arc<Node>]) -> Decision {
        let this = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .cloned();
        alloc.decide(name, this.as_deref(), nodes)
    }

    #[test]
    fn mask_sizes_must_split_the_cluster_range() {
        assert!(Allocator::new(cidr("10.42.0.0/16"), 24).is_ok());
        assert!(Allocator::new(cidr("10.42.0.0/16"), 32).is_ok());
        assert!(Allocator::new(cidr("10.42.0.0/16"), 8).is_err());
        assert!(Allocator::new(cidr("10.42.0.0/16"), 33).is_err());
        assert!(
            Allocator::new(cidr("10.0.0.0/8"), 25).is_err(),
            "over 2^16 CIDRs"
        );
    }

    #[test]
    fn nodes_get_distinct_cidrs_while_the_cache_lags() {
        let mut alloc = Allocator::new(cidr("10.42.0.0/16"), 24).expect("valid");
        // Nobody's patch is cached yet: reservations keep them apart.
        let nodes = vec![node("a", None), node("b", None), node("c", None)];
        let got: Vec<Decision> = ["a", "b", "c"]
            .iter()
            .map(|n| decide(&mut alloc, n, &nodes))
            .collect();
        assert_eq!(
            got,
            vec![
                Decision::Assign(cidr("10.42.0.0/24")),
                Decision::Assign(cidr("10.42.1.0/24")),
                Decision::Assign(cidr("10.42.2.0/24")),
            ]
        );
        // Asked again before the cache caught up: the same answer, not a new CIDR.
        assert_eq!(
            decide(&mut alloc, "b", &nodes),
            Decision::Assign(cidr("10.42.1.0/24"))
        );
    }

    #[test]
    fn existing_cidrs_are_respected_and_freed_ones_come_back_last() {
        let mut alloc = Allocator::new(cidr("10.42.0.0/30"), 32).expect("valid");
        // Four CIDRs; two taken at start (one of them by a bigger block elsewhere).
        let mut nodes = vec![
            node("old", Some("10.42.0.1/32")),
            node("big", Some("10.42.0.2/31")),
            node("new", None),
        ];
        assert_eq!(
            decide(&mut alloc, "new", &nodes),
            Decision::Assign(cidr("10.42.0.0/32"))
        );
        nodes[2] = node("new", Some("10.42.0.0/32"));
        assert_eq!(decide(&mut alloc, "new", &nodes), Decision::Done);
        nodes.push(node("more", None));
        assert_eq!(decide(&mut alloc, "more", &nodes), Decision::Exhausted);

        // "old" is deleted: its CIDR is free again.
        nodes.remove(0);
        assert_eq!(decide(&mut alloc, "old", &nodes), Decision::Done);
        assert_eq!(
            decide(&mut alloc, "more", &nodes),
            Decision::Assign(cidr("10.42.0.1/32"))
        );
    }

    #[test]
    fn round_robin_does_not_reuse_a_freed_cidr_at_once() {
        let mut alloc = Allocator::new(cidr("10.42.0.0/16"), 24).expect("valid");
        let mut nodes = vec![node("a", None), node("b", None)];
        assert_eq!(
            decide(&mut alloc, "a", &nodes),
            Decision::Assign(cidr("10.42.0.0/24"))
        );
        assert_eq!(
            decide(&mut alloc, "b", &nodes),
            Decision::Assign(cidr("10.42.1.0/24"))
        );
        nodes = vec![node("b", Some("10.42.1.0/24")), node("c", None)];
        assert_eq!(
            decide(&mut alloc, "c", &nodes),
            Decision::Assign(cidr("10.42.2.0/24"))
        );
    }

    #[test]
    fn refused_patches_release_and_going_nodes_get_nothing() {
        let mut alloc = Allocator::new(cidr("10.42.0.0/31"), 32).expect("valid");
        let nodes = vec![node("a", None), node("b", None)];
        assert_eq!(
            decide(&mut alloc, "a", &nodes),
            Decision::Assign(cidr("10.42.0.0/32"))
        );
        alloc.release("a", cidr("10.42.0.0/32"));
        assert_eq!(
            decide(&mut alloc, "b", &nodes),
            Decision::Assign(cidr("10.42.0.1/32"))
        );
        assert_eq!(
            decide(&mut alloc, "a", &nodes),
            Decision::Assign(cidr("10.42.0.0/32"))
        );

        let mut going = (*node("c", None)).clone();
        going.metadata.deletion_timestamp = Some(Time(Default::default()));
        let nodes = vec![Arc::new(going)];
        assert_eq!(decide(&mut alloc, "c", &nodes), Decision::Done);
        // A node not (or no longer) cached gets nothing.
        assert_eq!(decide(&mut alloc, "gone", &nodes), Decision::Done);
    }

    #[test]
    fn foreign_cidrs_do_not_count() {
        let mut alloc = Allocator::new(cidr("10.42.0.0/31"), 32).expect("valid");
        let nodes = vec![
            node("v6", Some("fd00::/64")),
            node("outside", Some("192.168.0.0/24")),
            node("bad", Some("nonsense")),
            node("a", None),
        ];
        assert_eq!(
            decide(&mut alloc, "a", &nodes),
            Decision::Assign(cidr("10.42.0.0/32"))
        );
    }
}
