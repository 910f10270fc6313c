//! `k8s.io/api/coordination/v1`: leases. Field numbers from its `generated.proto`;
//! shapes from `types.go`.

use super::meta_v1::OBJECT_META;
use super::schema::Ty::{I32, MicroTime, Msg, Str};
use super::schema::{Message, omitempty, pointer};

pub(super) static LEASE: Message = Message {
    name: "Lease",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        omitempty(2, "spec", Msg(&LEASE_SPEC)),
    ],
};

static LEASE_SPEC: Message = Message {
    name: "LeaseSpec",
    fields: &[
        pointer(1, "holderIdentity", Str),
        pointer(2, "leaseDurationSeconds", I32),
        pointer(3, "acquireTime", MicroTime),
        pointer(4, "renewTime", MicroTime),
        pointer(5, "leaseTransitions", I32),
        pointer(6, "strategy", Str),
        pointer(7, "preferredHolder", Str),
    ],
};
