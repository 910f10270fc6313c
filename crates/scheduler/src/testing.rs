//! Builders for the pods and nodes of table-driven tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec,
    ResourceRequirements, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::framework::{NodeInfo, PodInfo};

/// A container requesting `cpu` and `memory` (empty strings leave them out).
pub fn container(cpu: &str, memory: &str) -> Container {
    let mut requests = BTreeMap::new();
    if !cpu.is_empty() {
        requests.insert("cpu".to_string(), Quantity(cpu.to_string()));
    }
    if !memory.is_empty() {
        requests.insert("memory".to_string(), Quantity(memory.to_string()));
    }
    Container {
        name: "c".into(),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds a pod.
#[derive(Debug, Clone)]
pub struct PodBuilder(Pod);

impl PodBuilder {
    pub fn new(name: &str) -> Self {
        Self(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        })
    }

    fn spec(&mut self) -> &mut PodSpec {
        self.0.spec.get_or_insert_with(Default::default)
    }

    pub fn uid(mut self, uid: &str) -> Self {
        self.0.metadata.uid = Some(uid.into());
        self
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }

    pub fn container(mut self, c: Container) -> Self {
        self.spec().containers.push(c);
        self
    }

    pub fn init_container(mut self, mut c: Container, sidecar: bool) -> Self {
        if sidecar {
            c.restart_policy = Some("Always".into());
        }
        self.spec()
            .init_containers
            .get_or_insert_with(Vec::new)
            .push(c);
        self
    }

    pub fn overhead(mut self, cpu: &str, memory: &str) -> Self {
        self.spec().overhead = Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ]));
        self
    }

    /// Adds a host port to the first container (creating one if needed).
    pub fn host_port(mut self, ip: &str, protocol: &str, port: i32) -> Self {
        let spec = self.spec();
        if spec.containers.is_empty() {
            spec.containers.push(Container::default());
        }
        spec.containers[0]
            .ports
            .get_or_insert_with(Vec::new)
            .push(ContainerPort {
                container_port: port,
                host_port: Some(port),
                host_ip: (!ip.is_empty()).then(|| ip.to_string()),
                protocol: (!protocol.is_empty()).then(|| protocol.to_string()),
                ..Default::default()
            });
        self
    }

    pub fn node_name(mut self, node: &str) -> Self {
        self.spec().node_name = Some(node.into());
        self
    }

    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.spec()
            .node_selector
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    pub fn toleration(mut self, key: &str, op: &str, value: &str, effect: &str) -> Self {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        self.spec()
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: opt(key),
                operator: opt(op),
                value: opt(value),
                effect: opt(effect),
                ..Default::default()
            });
        self
    }

    pub fn affinity(mut self, a: Affinity) -> Self {
        self.spec().affinity = Some(a);
        self
    }

    pub fn owner(mut self, kind: &str, uid: &str) -> Self {
        self.0
            .metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(OwnerReference {
                api_version: "apps/v1".into(),
                kind: kind.into(),
                name: format!("{}-owner", kind.to_lowercase()),
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            });
        self
    }

    pub fn build(self) -> Pod {
        self.0
    }

    pub fn info(self) -> PodInfo {
        PodInfo::new(self.0)
    }
}

/// Builds a node, Ready by default.
#[derive(Debug, Clone)]
pub struct NodeBuilder(Node);

impl NodeBuilder {
    pub fn new(name: &str) -> Self {
        Self(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/hostname".to_string(),
                    name.to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    pub fn capacity(mut self, cpu: &str, memory: &str, pods: i64) -> Self {
        let status = self.0.status.get_or_insert_with(Default::default);
        status.allocatable = Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
            ("pods".to_string(), Quantity(pods.to_string())),
        ]));
        self
    }

    pub fn allocatable(mut self, name: &str, q: &str) -> Self {
        let status = self.0.status.get_or_insert_with(Default::default);
        status
            .allocatable
            .get_or_insert_with(BTreeMap::new)
            .insert(name.into(), Quantity(q.into()));
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .taints
            .get_or_insert_with(Vec::new)
            .push(Taint {
                key: key.into(),
                value: (!value.is_empty()).then(|| value.to_string()),
                effect: effect.into(),
                ..Default::default()
            });
        self
    }

    pub fn unschedulable(mut self) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = Some(true);
        self
    }

    /// Sets the Ready condition's status; `None` removes every condition.
    pub fn ready(mut self, status: Option<&str>) -> Self {
        let s = self.0.status.get_or_insert_with(Default::default);
        s.conditions = status.map(|st| {
            vec![NodeCondition {
                type_: "Ready".into(),
                status: st.into(),
                ..Default::default()
            }]
        });
        self
    }

    pub fn build(self) -> Node {
        self.0
    }

    pub fn info(self) -> NodeInfo {
        NodeInfo::new(self.0)
    }

    pub fn info_with(self, pods: Vec<Pod>) -> NodeInfo {
        NodeInfo::with_pods(self.0, pods.into_iter().map(|p| Arc::new(PodInfo::new(p))))
    }
}
