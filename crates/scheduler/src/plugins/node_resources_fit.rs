//! NodeResourcesFit: the pod's requests must fit in what the node's pods leave of its
//! allocatable cpu, memory, ephemeral storage, extended resources and pod count.

use std::sync::Arc;

use crate::framework::{FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

/// Upstream's reason when the pod count is exhausted.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";

/// One resource the node lacks, as upstream's `InsufficientResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientResource {
    /// The resource name (`cpu`, `pods`, …).
    pub resource: String,
    /// The message (`Insufficient cpu`).
    pub reason: String,
    /// What the pod asks for.
    pub requested: i64,
    /// What the node's pods already use.
    pub used: i64,
    /// What the node has.
    pub capacity: i64,
}

/// Every resource the node lacks for the pod, in upstream's order (pods, cpu, memory,
/// ephemeral-storage, then extended resources by name).
pub fn insufficient_resources(pod: &PodInfo, node: &NodeInfo) -> Vec<InsufficientResource> {
    let mut out = Vec::new();
    let alloc = node.allocatable();
    let used = node.requested();
    let pods = node.pods().len() as i64;
    if pods + 1 > alloc.allowed_pod_number {
        out.push(InsufficientResource {
            resource: "pods".into(),
            reason: REASON_TOO_MANY_PODS.into(),
            requested: 1,
            used: pods,
            capacity: alloc.allowed_pod_number,
        });
    }
    let req = &pod.requests;
    if req.milli_cpu == 0
        && req.memory == 0
        && req.ephemeral_storage == 0
        && req.scalar.values().all(|v| *v == 0)
    {
        return out;
    }
    let mut check = |name: &str, wanted: i64, used: i64, capacity: i64| {
        if wanted > 0 && wanted > capacity - used {
            out.push(InsufficientResource {
                resource: name.into(),
                reason: format!("Insufficient {name}"),
                requested: wanted,
                used,
                capacity,
            });
        }
    };
    check("cpu", req.milli_cpu, used.milli_cpu, alloc.milli_cpu);
    check("memory", req.memory, used.memory, alloc.memory);
    check(
        "ephemeral-storage",
        req.ephemeral_storage,
        used.ephemeral_storage,
        alloc.ephemeral_storage,
    );
    for (name, wanted) in &req.scalar {
        let u = used.scalar.get(name).copied().unwrap_or(0);
        let c = alloc.scalar.get(name).copied().unwrap_or(0);
        check(name, *wanted, u, c);
    }
    out
}

/// The NodeResourcesFit plugin (its filter; scoring strategies are the separate
/// LeastAllocated and BalancedAllocation plugins here).
#[derive(Debug, Default, Clone)]
pub struct NodeResourcesFit;

impl NodeResourcesFit {
    /// The registered name.
    pub const NAME: &'static str = "NodeResourcesFit";

    /// A new instance, as the registry builds it.
    pub fn plugin() -> Arc<dyn Plugin> {
        Arc::new(Self)
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let missing = insufficient_resources(pod, node);
        if missing.is_empty() {
            Status::success()
        } else {
            Status::new(
                crate::framework::Code::Unschedulable,
                missing.into_iter().map(|m| m.reason),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, container};
    use k8s_openapi::api::core::v1::{Container, Pod};

    /// Name, pod, node, pods already on the node, wanted reasons.
    type Case = (
        &'static str,
        PodBuilder,
        NodeBuilder,
        Vec<Pod>,
        Vec<&'static str>,
    );

    fn with_storage(mut c: Container, q: &str) -> Container {
        if let Some(req) = c.resources.as_mut().and_then(|r| r.requests.as_mut()) {
            req.insert(
                "ephemeral-storage".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity(q.into()),
            );
        }
        c
    }

    #[test]
    fn filter() {
        let node = || {
            NodeBuilder::new("n")
                .capacity("10", "20", 32)
                .allocatable("ephemeral-storage", "20")
        };
        let used =
            |cpu: &str, mem: &str| PodBuilder::new("u").container(container(cpu, mem)).build();
        let cases: Vec<Case> = vec![
            (
                "no requests fits",
                PodBuilder::new("p").container(Container::default()),
                node(),
                vec![used("10", "20")],
                vec![],
            ),
            (
                "fits exactly",
                PodBuilder::new("p").container(container("5", "10")),
                node(),
                vec![used("5", "10")],
                vec![],
            ),
            (
                "too much cpu",
                PodBuilder::new("p").container(container("8", "1")),
                node(),
                vec![used("5", "5")],
                vec!["Insufficient cpu"],
            ),
            (
                "too much memory",
                PodBuilder::new("p").container(container("1", "16")),
                node(),
                vec![used("5", "5")],
                vec!["Insufficient memory"],
            ),
            (
                "both, in upstream order",
                PodBuilder::new("p").container(container("8", "16")),
                node(),
                vec![used("5", "5")],
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "init container counts",
                PodBuilder::new("p")
                    .container(container("1", "1"))
                    .init_container(container("6", "1"), false),
                node(),
                vec![used("5", "5")],
                vec!["Insufficient cpu"],
            ),
            (
                "sidecar init container adds to containers",
                PodBuilder::new("p")
                    .container(container("3", "1"))
                    .init_container(container("3", "1"), true),
                node(),
                vec![used("5", "5")],
                vec!["Insufficient cpu"],
            ),
            (
                "overhead counts",
                PodBuilder::new("p")
                    .container(container("5", "1"))
                    .overhead("1", "0"),
                node(),
                vec![used("5", "5")],
                vec!["Insufficient cpu"],
            ),
            (
                "too many pods, even with no requests",
                PodBuilder::new("p").container(Container::default()),
                NodeBuilder::new("n").capacity("10", "20", 1),
                vec![used("0", "0")],
                vec!["Too many pods"],
            ),
            (
                "too many pods and insufficient cpu",
                PodBuilder::new("p").container(container("20", "1")),
                NodeBuilder::new("n").capacity("10", "20", 1),
                vec![used("0", "0")],
                vec!["Too many pods", "Insufficient cpu"],
            ),
            (
                "ephemeral storage",
                PodBuilder::new("p").container(with_storage(container("1", "1"), "25")),
                node(),
                vec![],
                vec!["Insufficient ephemeral-storage"],
            ),
            (
                "extended resource missing on node",
                PodBuilder::new("p").container({
                    let mut c = container("1", "1");
                    if let Some(req) = c.resources.as_mut().and_then(|r| r.requests.as_mut()) {
                        req.insert(
                            "example.com/gpu".into(),
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()),
                        );
                    }
                    c
                }),
                node(),
                vec![],
                vec!["Insufficient example.com/gpu"],
            ),
        ];
        for (name, pod, node, pods, want) in cases {
            let s = NodeResourcesFit.filter(&pod.info(), &node.info_with(pods));
            assert_eq!(s.reasons, want, "{name}");
            assert_eq!(s.is_success(), want.is_empty(), "{name}");
        }
    }
}
