//! Patch strategies of the built-in types: which list fields merge (and by which key)
//! instead of being replaced, and which maps take a `$retainKeys` directive.
//!
//! Upstream keeps these facts in `patchStrategy`/`patchMergeKey` struct tags of
//! `k8s.io/api` and `k8s.io/apimachinery` (`ObjectMeta`). Here they are one table of
//! types, each listing only the fields that matter to a patch: a field with a strategy,
//! or a field leading to a type that has some. A kind names its root type, so that
//! `spec.containers` of a Pod and `spec.template.spec.containers` of a Deployment both
//! reach the same `PodSpec` entry. A field missing from the table has no strategy: its
//! lists are replaced and its maps merged.

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// No strategy (upstream's default, and `+listType=atomic`): the patch replaces the
    /// whole list.
    Replace,
    /// `patchStrategy:"merge"` with a `patchMergeKey`: items are objects matched by the
    /// value of this key.
    MergeByKey(&'static str),
    /// `patchStrategy:"merge"` without a key: a set of primitives (e.g. `finalizers`).
    MergePrimitives,
}

/// One field of a [`TypeDef`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// The JSON name.
    pub name: &'static str,
    /// How the field is patched when it holds a list.
    pub list: ListStrategy,
    /// Upstream's `retainKeys` strategy: clients send `$retainKeys` for it. Applying a
    /// patch honours `$retainKeys` wherever it appears, so this only informs clients
    /// (the OpenAPI `x-kubernetes-patch-strategy` extension).
    pub retain_keys: bool,
    /// The type of the value (of its items, for a list), when the table describes it.
    pub ty: Option<&'static str>,
}

impl FieldDef {
    /// Upstream's `patchStrategy` tag: `merge`, `retainKeys` or `merge,retainKeys`.
    pub fn patch_strategy(&self) -> Option<&'static str> {
        let merge = self.list != ListStrategy::Replace;
        match (merge, self.retain_keys) {
            (true, true) => Some("merge,retainKeys"),
            (true, false) => Some("merge"),
            (false, true) => Some("retainKeys"),
            (false, false) => None,
        }
    }

    /// Upstream's `patchMergeKey` tag.
    pub fn merge_key(&self) -> Option<&'static str> {
        match self.list {
            ListStrategy::MergeByKey(key) => Some(key),
            _ => None,
        }
    }
}

/// A type's fields that matter to a strategic merge patch.
#[derive(Debug, PartialEq, Eq)]
pub struct TypeDef {
    /// Upstream's Go type name (`PodSpec`, `Container`, …), or the name of a shape
    /// several upstream types share (`Status`, `PodController`, `Object`).
    pub name: &'static str,
    pub fields: &'static [FieldDef],
}

impl TypeDef {
    /// The field called `name`, if it matters to a patch.
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A field leading to a described type, with no strategy of its own.
const fn typed(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        list: ListStrategy::Replace,
        retain_keys: false,
        ty: Some(ty),
    }
}

/// A list merged by `key` whose items have no strategy inside.
const fn keyed(name: &'static str, key: &'static str) -> FieldDef {
    FieldDef {
        name,
        list: ListStrategy::MergeByKey(key),
        retain_keys: false,
        ty: None,
    }
}

/// A list merged by `key` whose items are of the described type `ty`.
const fn keyed_typed(name: &'static str, key: &'static str, ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        list: ListStrategy::MergeByKey(key),
        retain_keys: false,
        ty: Some(ty),
    }
}

/// A list merged by `key` that also carries the `retainKeys` strategy.
const fn keyed_retained(name: &'static str, key: &'static str) -> FieldDef {
    FieldDef {
        name,
        list: ListStrategy::MergeByKey(key),
        retain_keys: true,
        ty: None,
    }
}

/// A list of primitives merged as a set.
const fn primitives(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        list: ListStrategy::MergePrimitives,
        retain_keys: false,
        ty: None,
    }
}

/// A map with the `retainKeys` strategy.
const fn retained(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        list: ListStrategy::Replace,
        retain_keys: true,
        ty: None,
    }
}

/// `status.conditions` merged by `type`: the shape of every status with conditions.
const CONDITIONS: FieldDef = keyed("conditions", "type");

/// The built-in types, as upstream tags them (k8s.io/api core/v1, apps/v1, batch/v1;
/// k8s.io/apimachinery meta/v1).
pub static TYPES: &[TypeDef] = &[
    TypeDef {
        name: "ObjectMeta",
        fields: &[keyed("ownerReferences", "uid"), primitives("finalizers")],
    },
    // The root of a kind without strategies of its own (ConfigMap, Lease, Scale, …).
    TypeDef {
        name: "Object",
        fields: &[typed("metadata", "ObjectMeta")],
    },
    TypeDef {
        name: "Pod",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("spec", "PodSpec"),
            typed("status", "PodStatus"),
        ],
    },
    TypeDef {
        name: "PodTemplate",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("template", "PodTemplateSpec"),
        ],
    },
    TypeDef {
        name: "PodTemplateSpec",
        fields: &[typed("metadata", "ObjectMeta"), typed("spec", "PodSpec")],
    },
    TypeDef {
        name: "PodSpec",
        fields: &[
            keyed_retained("volumes", "name"),
            keyed_typed("initContainers", "name", "Container"),
            keyed_typed("containers", "name", "Container"),
            // EphemeralContainer inlines EphemeralContainerCommon, whose tagged fields
            // are Container's.
            keyed_typed("ephemeralContainers", "name", "Container"),
            keyed("imagePullSecrets", "name"),
            keyed("hostAliases", "ip"),
            keyed("topologySpreadConstraints", "topologyKey"),
            keyed("schedulingGates", "name"),
            keyed_retained("resourceClaims", "name"),
            keyed("evictionResponders", "name"),
        ],
    },
    TypeDef {
        name: "Container",
        fields: &[
            keyed("ports", "containerPort"),
            keyed("env", "name"),
            keyed("volumeMounts", "mountPath"),
            keyed("volumeDevices", "devicePath"),
        ],
    },
    TypeDef {
        name: "PodStatus",
        fields: &[
            CONDITIONS,
            keyed("hostIPs", "ip"),
            keyed("podIPs", "ip"),
            keyed_retained("resourceClaimStatuses", "name"),
            keyed("nodeAllocatableResourceClaimStatuses", "resourceClaimName"),
        ],
    },
    TypeDef {
        name: "Service",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("spec", "ServiceSpec"),
            typed("status", "ServiceStatus"),
        ],
    },
    TypeDef {
        name: "ServiceSpec",
        fields: &[keyed("ports", "port")],
    },
    TypeDef {
        name: "ServiceStatus",
        fields: &[CONDITIONS],
    },
    TypeDef {
        name: "ServiceAccount",
        fields: &[typed("metadata", "ObjectMeta"), keyed("secrets", "name")],
    },
    TypeDef {
        name: "Node",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("spec", "NodeSpec"),
            typed("status", "NodeStatus"),
        ],
    },
    TypeDef {
        name: "NodeSpec",
        fields: &[primitives("podCIDRs")],
    },
    TypeDef {
        name: "NodeStatus",
        fields: &[CONDITIONS, keyed("addresses", "type")],
    },
    TypeDef {
        name: "Namespace",
        fields: &[typed("metadata", "ObjectMeta"), typed("status", "Status")],
    },
    TypeDef {
        name: "Deployment",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("spec", "DeploymentSpec"),
            typed("status", "Status"),
        ],
    },
    TypeDef {
        name: "DeploymentSpec",
        fields: &[typed("template", "PodTemplateSpec"), retained("strategy")],
    },
    // A kind whose `spec.template` is a pod template and whose status has conditions:
    // ReplicaSet, ReplicationController, DaemonSet, StatefulSet, Job.
    TypeDef {
        name: "PodController",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("spec", "PodControllerSpec"),
            typed("status", "Status"),
        ],
    },
    TypeDef {
        name: "PodControllerSpec",
        fields: &[typed("template", "PodTemplateSpec")],
    },
    TypeDef {
        name: "CronJob",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("spec", "CronJobSpec"),
        ],
    },
    TypeDef {
        name: "CronJobSpec",
        fields: &[typed("jobTemplate", "JobTemplateSpec")],
    },
    TypeDef {
        name: "JobTemplateSpec",
        fields: &[
            typed("metadata", "ObjectMeta"),
            typed("spec", "PodControllerSpec"),
        ],
    },
    // Every status whose only tagged field is `conditions` (Namespace, Deployment,
    // ReplicaSet, ReplicationController, DaemonSet, StatefulSet, Job).
    TypeDef {
        name: "Status",
        fields: &[CONDITIONS],
    },
];

/// Each kind's root type; a kind not listed has [`Object`](TYPES)'s.
pub static KINDS: &[(&str, &str)] = &[
    ("Pod", "Pod"),
    ("PodTemplate", "PodTemplate"),
    ("Service", "Service"),
    ("ServiceAccount", "ServiceAccount"),
    ("Node", "Node"),
    ("Namespace", "Namespace"),
    ("Deployment", "Deployment"),
    ("ReplicaSet", "PodController"),
    ("ReplicationController", "PodController"),
    ("DaemonSet", "PodController"),
    ("StatefulSet", "PodController"),
    ("Job", "PodController"),
    ("CronJob", "CronJob"),
];

/// The type called `name` in [`TYPES`].
pub fn type_def(name: &str) -> Option<&'static TypeDef> {
    lookup(TYPES, name)
}

fn lookup(table: &'static [TypeDef], name: &str) -> Option<&'static TypeDef> {
    table.iter().find(|t| t.name == name)
}

/// The root type of objects of `kind`.
pub fn type_for_kind(kind: &str) -> Option<&'static TypeDef> {
    let name = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("Object", |(_, ty)| *ty);
    type_def(name)
}

/// Where a patch is, type-wise: a type of a table, or nowhere known (then every list
/// is replaced and every map merged).
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    table: &'static [TypeDef],
    ty: Option<&'static TypeDef>,
}

/// What a [`Schema`] says about one field.
#[derive(Debug, Clone, Copy)]
pub struct FieldPatch {
    /// How the field's list is patched.
    pub list: ListStrategy,
    /// The schema of the field's value (of its items, for a list).
    pub child: Schema,
}

impl Schema {
    /// Knows no type: lists are replaced, maps merged.
    pub const UNKNOWN: Schema = Schema {
        table: TYPES,
        ty: None,
    };

    /// The root of an object of `kind`.
    pub fn for_kind(kind: &str) -> Self {
        Schema {
            table: TYPES,
            ty: type_for_kind(kind),
        }
    }

    /// The type `name` of another table (tests use small tables of their own).
    pub fn of_table(table: &'static [TypeDef], name: &str) -> Self {
        Schema {
            table,
            ty: lookup(table, name),
        }
    }

    /// The type this schema stands for, if known.
    pub fn type_def(self) -> Option<&'static TypeDef> {
        self.ty
    }

    /// The strategy of field `name` and the schema of its value.
    pub fn field(self, name: &str) -> FieldPatch {
        let def = self.ty.and_then(|t| t.field(name));
        FieldPatch {
            list: def.map_or(ListStrategy::Replace, |d| d.list),
            child: Schema {
                table: self.table,
                ty: def.and_then(|d| d.ty).and_then(|n| lookup(self.table, n)),
            },
        }
    }

    /// Follows a dotted path of field names (`spec.template.spec`).
    pub fn at(self, path: &str) -> Self {
        path.split('.')
            .filter(|s| !s.is_empty())
            .fold(self, |schema, name| schema.field(name).child)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_and_kind_resolves() {
        for ty in TYPES {
            for field in ty.fields {
                if let Some(name) = field.ty {
                    assert!(
                        type_def(name).is_some(),
                        "{}.{} names unknown type {name}",
                        ty.name,
                        field.name
                    );
                }
            }
            let mut names: Vec<_> = ty.fields.iter().map(|f| f.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), ty.fields.len(), "{} repeats a field", ty.name);
        }
        for (kind, ty) in KINDS {
            assert!(
                type_def(ty).is_some(),
                "kind {kind} names unknown type {ty}"
            );
        }
    }

    #[test]
    fn paths_resolve_for_pods_and_their_controllers() {
        let cases = [
            (
                "Pod",
                "spec",
                "containers",
                ListStrategy::MergeByKey("name"),
            ),
            (
                "Deployment",
                "spec.template.spec",
                "containers",
                ListStrategy::MergeByKey("name"),
            ),
            (
                "ReplicaSet",
                "spec.template.spec",
                "volumes",
                ListStrategy::MergeByKey("name"),
            ),
            (
                "CronJob",
                "spec.jobTemplate.spec.template.spec",
                "initContainers",
                ListStrategy::MergeByKey("name"),
            ),
            ("Pod", "spec", "tolerations", ListStrategy::Replace),
            ("Node", "spec", "taints", ListStrategy::Replace),
            ("Node", "spec", "podCIDRs", ListStrategy::MergePrimitives),
            (
                "Node",
                "status",
                "addresses",
                ListStrategy::MergeByKey("type"),
            ),
            ("Pod", "status", "containerStatuses", ListStrategy::Replace),
            ("Service", "spec", "ports", ListStrategy::MergeByKey("port")),
            ("Namespace", "spec", "finalizers", ListStrategy::Replace),
            (
                "Deployment",
                "status",
                "conditions",
                ListStrategy::MergeByKey("type"),
            ),
            (
                "ConfigMap",
                "metadata",
                "finalizers",
                ListStrategy::MergePrimitives,
            ),
            (
                "Scale",
                "metadata",
                "ownerReferences",
                ListStrategy::MergeByKey("uid"),
            ),
            (
                "Deployment",
                "spec.template.metadata",
                "finalizers",
                ListStrategy::MergePrimitives,
            ),
            ("Endpoints", "", "subsets", ListStrategy::Replace),
        ];
        for (kind, path, field, want) in cases {
            let got = Schema::for_kind(kind).at(path).field(field).list;
            assert_eq!(got, want, "{kind} {path}.{field}");
        }
        let container = Schema::for_kind("Deployment")
            .at("spec.template.spec")
            .field("containers")
            .child;
        assert_eq!(
            container.field("ports").list,
            ListStrategy::MergeByKey("containerPort")
        );
        assert_eq!(
            container.field("env").list,
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(container.field("resizePolicy").list, ListStrategy::Replace);
        assert!(Schema::UNKNOWN.type_def().is_none());
        assert_eq!(
            Schema::UNKNOWN.field("containers").list,
            ListStrategy::Replace
        );
    }

    #[test]
    fn upstream_tags() {
        let spec = type_def("PodSpec").expect("PodSpec");
        let volumes = spec.field("volumes").expect("volumes");
        assert_eq!(volumes.patch_strategy(), Some("merge,retainKeys"));
        assert_eq!(volumes.merge_key(), Some("name"));
        let strategy = type_def("DeploymentSpec")
            .and_then(|t| t.field("strategy"))
            .expect("strategy");
        assert_eq!(strategy.patch_strategy(), Some("retainKeys"));
        assert_eq!(strategy.merge_key(), None);
        let finalizers = type_def("ObjectMeta")
            .and_then(|t| t.field("finalizers"))
            .expect("finalizers");
        assert_eq!(finalizers.patch_strategy(), Some("merge"));
        assert_eq!(finalizers.merge_key(), None);
        assert_eq!(spec.field("tolerations"), None);
    }
}
