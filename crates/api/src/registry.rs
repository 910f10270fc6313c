//! The resource registry: one entry per served resource. Routing, discovery, storage
//! keys and per-kind behaviour (status handling, selectable fields) all read it, so a
//! resource is added in one place.

/// Whether a resource lives in a namespace or in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// What happens to `status` when the main resource is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOnCreate {
    /// Kept as sent (nodes: the kubelet registers its node with status).
    Keep,
    /// Cleared: status belongs to the controllers.
    Clear,
    /// Cleared, then `phase: Pending` (pods).
    Pending,
    /// Cleared, then `phase: Active` (namespaces).
    Active,
}

/// A `/scale` subresource: where replicas live in the parent object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleSubresource {
    /// JSON pointer to the LabelSelector reported as `status.selector`.
    pub selector_path: &'static str,
}

/// One served resource.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    /// API group; empty for core.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lowercase plural, the URL segment and the storage prefix.
    pub plural: &'static str,
    pub singular: &'static str,
    pub scope: Scope,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Whether `/status` exists; then writes to the main resource ignore status.
    pub status: bool,
    pub scale: Option<ScaleSubresource>,
    /// Whether the pod-only subresources `binding` and `log` exist.
    pub binding: bool,
    /// Whether `metadata.generation` tracks changes outside metadata and status.
    pub generation: bool,
    pub status_on_create: StatusOnCreate,
    /// Whether PUT on a missing object creates it (upstream: endpoints and events).
    pub create_on_update: bool,
    /// Whether a completed delete answers with the deleted object rather than a Status.
    pub return_deleted_object: bool,
    /// Field selectors beyond `metadata.name` and `metadata.namespace`, each with the
    /// JSON pointer it reads.
    pub fields: &'static [(&'static str, &'static str)],
}

/// Every verb a plain resource supports, in discovery order.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Resource {
    /// `group/version`, or just `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// The storage prefix holding every object of this resource.
    pub fn prefix(&self) -> String {
        format!("/registry/{}/", self.storage_name())
    }

    /// The storage prefix for one namespace (or the whole resource if cluster-scoped).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced(), namespace) {
            (true, Some(ns)) => format!("{}{ns}/", self.prefix()),
            _ => self.prefix(),
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced(), namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.prefix()),
            _ => format!("{}{name}", self.prefix()),
        }
    }

    /// Upstream's layout: the plural alone, without the group (no two served
    /// resources share a plural; the registry test checks it).
    fn storage_name(&self) -> &'static str {
        self.plural
    }

    /// The JSON pointer a selectable field reads, or None if the field is not
    /// selectable on this resource.
    pub fn field_pointer(&self, field: &str) -> Option<&'static str> {
        match field {
            "metadata.name" => Some("/metadata/name"),
            "metadata.namespace" => Some("/metadata/namespace"),
            _ => self
                .fields
                .iter()
                .find(|(name, _)| *name == field)
                .map(|(_, pointer)| *pointer),
        }
    }
}

const CORE: &str = "";

const PLAIN: Resource = Resource {
    group: CORE,
    version: "v1",
    kind: "",
    plural: "",
    singular: "",
    scope: Scope::Namespaced,
    short_names: &[],
    categories: &[],
    status: false,
    scale: None,
    binding: false,
    generation: false,
    status_on_create: StatusOnCreate::Keep,
    create_on_update: false,
    return_deleted_object: false,
    fields: &[],
};

/// Every resource mast serves.
pub static RESOURCES: &[Resource] = &[
    Resource {
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        scope: Scope::Cluster,
        short_names: &["ns"],
        status: true,
        status_on_create: StatusOnCreate::Active,
        return_deleted_object: true,
        fields: &[("status.phase", "/status/phase")],
        ..PLAIN
    },
    Resource {
        kind: "Node",
        plural: "nodes",
        singular: "node",
        scope: Scope::Cluster,
        short_names: &["no"],
        status: true,
        fields: &[("spec.unschedulable", "/spec/unschedulable")],
        ..PLAIN
    },
    Resource {
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        short_names: &["po"],
        categories: &["all"],
        status: true,
        binding: true,
        generation: true,
        status_on_create: StatusOnCreate::Pending,
        return_deleted_object: true,
        fields: &[
            ("spec.nodeName", "/spec/nodeName"),
            ("spec.restartPolicy", "/spec/restartPolicy"),
            ("spec.schedulerName", "/spec/schedulerName"),
            ("spec.serviceAccountName", "/spec/serviceAccountName"),
            ("spec.hostNetwork", "/spec/hostNetwork"),
            ("status.phase", "/status/phase"),
            ("status.podIP", "/status/podIP"),
            ("status.nominatedNodeName", "/status/nominatedNodeName"),
        ],
        ..PLAIN
    },
    Resource {
        kind: "Service",
        plural: "services",
        singular: "service",
        short_names: &["svc"],
        categories: &["all"],
        status: true,
        status_on_create: StatusOnCreate::Clear,
        return_deleted_object: true,
        fields: &[
            ("spec.clusterIP", "/spec/clusterIP"),
            ("spec.type", "/spec/type"),
        ],
        ..PLAIN
    },
    Resource {
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        short_names: &["ep"],
        create_on_update: true,
        ..PLAIN
    },
    Resource {
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        short_names: &["cm"],
        ..PLAIN
    },
    Resource {
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        fields: &[("type", "/type")],
        ..PLAIN
    },
    Resource {
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        short_names: &["sa"],
        ..PLAIN
    },
    Resource {
        kind: "Event",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        create_on_update: true,
        fields: &[
            ("involvedObject.kind", "/involvedObject/kind"),
            ("involvedObject.namespace", "/involvedObject/namespace"),
            ("involvedObject.name", "/involvedObject/name"),
            ("involvedObject.uid", "/involvedObject/uid"),
            ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
            (
                "involvedObject.resourceVersion",
                "/involvedObject/resourceVersion",
            ),
            ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
            ("reason", "/reason"),
            ("reportingComponent", "/reportingComponent"),
            ("source", "/source/component"),
            ("type", "/type"),
        ],
        ..PLAIN
    },
    Resource {
        group: "apps",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        short_names: &["deploy"],
        categories: &["all"],
        status: true,
        scale: Some(ScaleSubresource {
            selector_path: "/spec/selector",
        }),
        generation: true,
        status_on_create: StatusOnCreate::Clear,
        ..PLAIN
    },
    Resource {
        group: "apps",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        short_names: &["rs"],
        categories: &["all"],
        status: true,
        scale: Some(ScaleSubresource {
            selector_path: "/spec/selector",
        }),
        generation: true,
        status_on_create: StatusOnCreate::Clear,
        fields: &[("status.replicas", "/status/replicas")],
        ..PLAIN
    },
    Resource {
        group: "coordination.k8s.io",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        ..PLAIN
    },
    Resource {
        group: "discovery.k8s.io",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        fields: &[("addressType", "/addressType")],
        ..PLAIN
    },
];

/// The resource served at `group/version/plural`, if any.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of `apiVersion` + `kind`, if any.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The served API groups (non-core), each with its versions, in first-seen order.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => groups.push((r.group, vec![r.version])),
        }
    }
    groups
}

/// The resources of one group version.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_and_complete() {
        for (i, r) in RESOURCES.iter().enumerate() {
            assert!(!r.kind.is_empty() && !r.plural.is_empty() && !r.singular.is_empty());
            assert_eq!(r.plural, r.plural.to_lowercase());
            for other in &RESOURCES[i + 1..] {
                assert!(
                    r.plural != other.plural,
                    "{} served twice (storage keys would collide)",
                    r.plural
                );
                for short in r.short_names {
                    assert!(!other.short_names.contains(short), "short name {short}");
                }
            }
        }
    }

    #[test]
    fn keys_follow_the_kubernetes_layout() {
        let pods = find("", "v1", "pods").expect("pods");
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/pods/default/web"
        );
        assert_eq!(pods.namespace_prefix(Some("a")), "/registry/pods/a/");
        assert_eq!(pods.namespace_prefix(None), "/registry/pods/");
        let nodes = find("", "v1", "nodes").expect("nodes");
        assert_eq!(nodes.key(Some("ignored"), "n1"), "/registry/nodes/n1");
        let leases = find("coordination.k8s.io", "v1", "leases").expect("leases");
        assert_eq!(
            leases.key(Some("kube-system"), "x"),
            "/registry/leases/kube-system/x"
        );
    }

    #[test]
    fn lookups() {
        assert_eq!(
            find_kind("apps/v1", "Deployment").map(|r| r.plural),
            Some("deployments")
        );
        assert!(find_kind("v1", "Deployment").is_none());
        assert!(find("apps", "v1", "pods").is_none());
        let groups = groups();
        assert_eq!(groups[0], ("apps", vec!["v1"]));
        assert_eq!(groups.len(), 3);
        let pods = find("", "v1", "pods").expect("pods");
        assert_eq!(pods.field_pointer("spec.nodeName"), Some("/spec/nodeName"));
        assert_eq!(pods.field_pointer("spec.bogus"), None);
    }
}
