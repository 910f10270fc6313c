//! `k8s.io/api/apps/v1`: deployments and replica sets. Field numbers from its
//! `generated.proto`; shapes from `types.go`.

use super::core_v1::POD_TEMPLATE_SPEC;
use super::meta_v1::{LABEL_SELECTOR, OBJECT_META};
use super::schema::Ty::{Bool, I32, I64, IntOrString, Msg, Str, Time};
use super::schema::{Message, omitempty, pointer, slice, value};

pub(super) static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        omitempty(2, "spec", Msg(&DEPLOYMENT_SPEC)),
        omitempty(3, "status", Msg(&DEPLOYMENT_STATUS)),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        pointer(1, "replicas", I32),
        // A pointer without `omitempty`: Go writes `null` when unset; leaving it out
        // means the same.
        pointer(2, "selector", Msg(&LABEL_SELECTOR)),
        value(3, "template", Msg(&POD_TEMPLATE_SPEC)),
        omitempty(4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        omitempty(5, "minReadySeconds", I32),
        pointer(6, "revisionHistoryLimit", I32),
        omitempty(7, "paused", Bool),
        pointer(9, "progressDeadlineSeconds", I32),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[
        omitempty(1, "type", Str),
        pointer(2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[
        pointer(1, "maxUnavailable", IntOrString),
        pointer(2, "maxSurge", IntOrString),
    ],
};

static DEPLOYMENT_STATUS: Message = Message {
    name: "DeploymentStatus",
    fields: &[
        omitempty(1, "observedGeneration", I64),
        omitempty(2, "replicas", I32),
        omitempty(3, "updatedReplicas", I32),
        omitempty(7, "readyReplicas", I32),
        omitempty(4, "availableReplicas", I32),
        omitempty(5, "unavailableReplicas", I32),
        pointer(9, "terminatingReplicas", I32),
        slice(6, "conditions", Msg(&DEPLOYMENT_CONDITION)),
        pointer(8, "collisionCount", I32),
    ],
};

static DEPLOYMENT_CONDITION: Message = Message {
    name: "DeploymentCondition",
    fields: &[
        value(1, "type", Str),
        value(2, "status", Str),
        omitempty(6, "lastUpdateTime", Time),
        omitempty(7, "lastTransitionTime", Time),
        omitempty(4, "reason", Str),
        omitempty(5, "message", Str),
    ],
};

pub(super) static REPLICA_SET: Message = Message {
    name: "ReplicaSet",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        omitempty(2, "spec", Msg(&REPLICA_SET_SPEC)),
        omitempty(3, "status", Msg(&REPLICA_SET_STATUS)),
    ],
};

static REPLICA_SET_SPEC: Message = Message {
    name: "ReplicaSetSpec",
    fields: &[
        pointer(1, "replicas", I32),
        omitempty(4, "minReadySeconds", I32),
        pointer(2, "selector", Msg(&LABEL_SELECTOR)),
        omitempty(3, "template", Msg(&POD_TEMPLATE_SPEC)),
    ],
};

static REPLICA_SET_STATUS: Message = Message {
    name: "ReplicaSetStatus",
    fields: &[
        value(1, "replicas", I32),
        omitempty(2, "fullyLabeledReplicas", I32),
        omitempty(4, "readyReplicas", I32),
        omitempty(5, "availableReplicas", I32),
        pointer(7, "terminatingReplicas", I32),
        omitempty(3, "observedGeneration", I64),
        slice(6, "conditions", Msg(&REPLICA_SET_CONDITION)),
    ],
};

static REPLICA_SET_CONDITION: Message = Message {
    name: "ReplicaSetCondition",
    fields: &[
        value(1, "type", Str),
        value(2, "status", Str),
        omitempty(3, "lastTransitionTime", Time),
        omitempty(4, "reason", Str),
        omitempty(5, "message", Str),
    ],
};
