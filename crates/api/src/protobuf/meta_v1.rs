//! `k8s.io/apimachinery/pkg/apis/meta/v1`: object metadata, label selectors, conditions
//! and delete options. Field numbers from its `generated.proto`; shapes from `types.go`.

use super::schema::Ty::{Bool, FieldsV1, I64, Msg, Str, Time};
use super::schema::{Message, map, omitempty, omitzero, pointer, slice, value};

pub(super) static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        omitempty(1, "name", Str),
        omitempty(2, "generateName", Str),
        omitempty(3, "namespace", Str),
        omitempty(4, "selfLink", Str),
        omitempty(5, "uid", Str),
        omitempty(6, "resourceVersion", Str),
        omitempty(7, "generation", I64),
        omitzero(8, "creationTimestamp", Time),
        pointer(9, "deletionTimestamp", Time),
        pointer(10, "deletionGracePeriodSeconds", I64),
        map(11, "labels", Str),
        map(12, "annotations", Str),
        slice(13, "ownerReferences", Msg(&OWNER_REFERENCE)),
        slice(14, "finalizers", Str),
        slice(17, "managedFields", Msg(&MANAGED_FIELDS_ENTRY)),
    ],
};

pub(super) static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        value(5, "apiVersion", Str),
        value(1, "kind", Str),
        value(3, "name", Str),
        value(4, "uid", Str),
        pointer(6, "controller", Bool),
        pointer(7, "blockOwnerDeletion", Bool),
    ],
};

pub(super) static MANAGED_FIELDS_ENTRY: Message = Message {
    name: "ManagedFieldsEntry",
    fields: &[
        omitempty(1, "manager", Str),
        omitempty(2, "operation", Str),
        omitempty(3, "apiVersion", Str),
        pointer(4, "time", Time),
        omitempty(6, "fieldsType", Str),
        pointer(7, "fieldsV1", FieldsV1),
        omitempty(8, "subresource", Str),
    ],
};

pub(super) static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        map(1, "matchLabels", Str),
        slice(2, "matchExpressions", Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

pub(super) static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[
        value(1, "key", Str),
        value(2, "operator", Str),
        slice(3, "values", Str),
    ],
};

/// `metav1.Condition`, the common condition type (used by `ServiceStatus`).
pub(super) static CONDITION: Message = Message {
    name: "Condition",
    fields: &[
        value(1, "type", Str),
        value(2, "status", Str),
        omitempty(3, "observedGeneration", I64),
        value(4, "lastTransitionTime", Time),
        value(5, "reason", Str),
        value(6, "message", Str),
    ],
};

pub(super) static DELETE_OPTIONS: Message = Message {
    name: "DeleteOptions",
    fields: &[
        pointer(1, "gracePeriodSeconds", I64),
        pointer(2, "preconditions", Msg(&PRECONDITIONS)),
        pointer(3, "orphanDependents", Bool),
        pointer(4, "propagationPolicy", Str),
        slice(5, "dryRun", Str),
        pointer(6, "ignoreStoreReadErrorWithClusterBreakingPotential", Bool),
    ],
};

pub(super) static PRECONDITIONS: Message = Message {
    name: "Preconditions",
    fields: &[pointer(1, "uid", Str), pointer(2, "resourceVersion", Str)],
};
