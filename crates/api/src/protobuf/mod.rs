//! Request bodies in `application/vnd.kubernetes.protobuf`, turned into the JSON that
//! upstream's JSON encoding of the same object would be, so that the API server can
//! carry on as if JSON had been sent.
//!
//! kubectl sends protobuf for the built-in objects it builds itself (`kubectl create
//! namespace|configmap|secret|deployment|service|serviceaccount`) and for the
//! `DeleteOptions` of the pod deletions `kubectl drain` makes; client-go programs do so
//! for every built-in type. (`kubectl run`, `expose`, `create -f`, `apply` and plain
//! `delete` send JSON.) We only ever read it: responses stay JSON.
//!
//! The body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` message:
//! `typeMeta` (1: `apiVersion` 1, `kind` 2), `raw` (2: the object's own message),
//! `contentEncoding` (3) and `contentType` (4). `raw` is decoded by the schema for
//! `apiVersion` + `kind`.
//!
//! Layout:
//! - `wire`: the protobuf wire format (varints, length-delimited, fixed 32/64).
//! - `schema`: the table language (field number → JSON name, type, Go shape) and the
//!   one generic decoder that interprets tables.
//! - `scalars`: base64 and RFC 3339 times as upstream writes them.
//! - `meta_v1`, `core_v1`, `apps_v1`, `coordination_v1`: one table per
//!   message, numbers from upstream's `generated.proto` files.
//!
//! The JSON is what `encoding/json` writes for the Go struct protobuf decoding fills,
//! with two deliberate differences that mean the same to every reader: nil slices,
//! maps and pointers are left out rather than written as `null`, and a zero
//! `creationTimestamp` is left out (upstream now declares it `omitzero`; kubectl 1.32
//! still prints `null`).
//!
//! Covered kinds: `v1` Namespace, ConfigMap, Secret, ServiceAccount, Service, Pod;
//! `apps/v1` Deployment, ReplicaSet; `coordination.k8s.io/v1` Lease; DeleteOptions
//! under any group version (client-go sends it in the client's own). Fields a table
//! does not list are skipped, like unknown fields upstream; the pod tables leave out
//! ephemeral containers, resource claims, scheduling groups, eviction responders, the
//! cloud volume sources (only hostPath, emptyDir, secret, configMap,
//! persistentVolumeClaim, downwardAPI and projected are read) and the newest alpha
//! fields (per-file `user`, `defaultUser`, `bindMountOptions`, `fileKeyRef`, container
//! restart rules). Quantities pass through as sent, not re-canonicalized.

mod apps_v1;
mod coordination_v1;
mod core_v1;
mod meta_v1;
mod scalars;
mod schema;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use schema::Message;
use wire::{Reader, WireValue};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Why a protobuf body could not be decoded. Every malformed input ends here; the
/// decoder never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not begin with [`MAGIC`].
    #[error("protobuf body does not start with the kubernetes magic prefix \"k8s\\0\"")]
    MissingMagic,
    /// The bytes end in the middle of a field.
    #[error("truncated protobuf data in {message}")]
    Truncated {
        /// The message being read.
        message: &'static str,
    },
    /// A varint is longer than ten bytes or overflows 64 bits.
    #[error("malformed varint in {message}: longer than 64 bits")]
    VarintOverflow {
        /// The message being read.
        message: &'static str,
    },
    /// A field key holds number 0 or one beyond protobuf's 29 bits.
    #[error("invalid protobuf field number {number} in {message}")]
    InvalidFieldNumber {
        /// The message being read.
        message: &'static str,
        /// The number found.
        number: u64,
    },
    /// A group (wire types 3 and 4, never used by Kubernetes) or an undefined wire type.
    #[error("unsupported protobuf wire type {wire_type} for field {number} in {message}")]
    UnsupportedWireType {
        /// The message being read.
        message: &'static str,
        /// The field's number.
        number: u32,
        /// The wire type found.
        wire_type: u8,
    },
    /// A known field arrived with a wire type its type cannot have.
    #[error("field {field} of {message} has protobuf wire type {found}, expected {expected}")]
    WireTypeMismatch {
        /// The message being read.
        message: &'static str,
        /// The field's JSON name.
        field: &'static str,
        /// The wire type the schema expects.
        expected: u8,
        /// The wire type found.
        found: u8,
    },
    /// The envelope does not name the object's `apiVersion` and `kind`.
    #[error("protobuf envelope has no apiVersion and kind")]
    MissingTypeMeta,
    /// The envelope says `raw` is compressed or otherwise encoded.
    #[error("protobuf envelope has unsupported content encoding {0:?}")]
    UnsupportedContentEncoding(String),
    /// No schema for this kind.
    #[error("protobuf bodies of kind {kind} in {api_version} are not supported")]
    UnsupportedKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
    /// A time outside the years 0 to 9999, which upstream's JSON cannot express.
    #[error("time in field {field} of {message} is out of range ({seconds} seconds)")]
    TimeOutOfRange {
        /// The message holding the time.
        message: &'static str,
        /// The field's JSON name.
        field: &'static str,
        /// The seconds since the Unix epoch found.
        seconds: i64,
    },
    /// An `IntOrString` whose type tag is neither 0 (int) nor 1 (string).
    #[error("int-or-string in field {field} of {message} has unknown type {type_tag}")]
    InvalidIntOrString {
        /// The message holding the value.
        message: &'static str,
        /// The field's JSON name.
        field: &'static str,
        /// The tag found.
        type_tag: i64,
    },
    /// Managed fields (`fieldsV1`) whose raw bytes are not JSON.
    #[error("fieldsV1 in {message} is not valid json: {reason}")]
    InvalidFieldsV1 {
        /// The message holding the value.
        message: &'static str,
        /// The JSON parser's complaint.
        reason: String,
    },
}

/// Decodes a Kubernetes protobuf request body into the object's JSON form, with
/// `apiVersion` and `kind` set from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let unknown = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::MissingMagic)?;
    let envelope = Envelope::parse(unknown)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedContentEncoding(
            envelope.content_encoding,
        ));
    }
    if envelope.api_version.is_empty() || envelope.kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let root = schema_for(&envelope.api_version, &envelope.kind).ok_or_else(|| {
        ProtobufError::UnsupportedKind {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
        }
    })?;
    let fields = schema::decode_message(root, envelope.raw)?;
    let mut object = Map::new();
    object.insert("apiVersion".to_owned(), Value::String(envelope.api_version));
    object.insert("kind".to_owned(), Value::String(envelope.kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// The objects with a schema, by `apiVersion` and `kind`.
static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Namespace", &core_v1::NAMESPACE),
    ("v1", "ConfigMap", &core_v1::CONFIG_MAP),
    ("v1", "Secret", &core_v1::SECRET),
    ("v1", "ServiceAccount", &core_v1::SERVICE_ACCOUNT),
    ("v1", "Service", &core_v1::SERVICE),
    ("v1", "Pod", &core_v1::POD),
    ("apps/v1", "Deployment", &apps_v1::DEPLOYMENT),
    ("apps/v1", "ReplicaSet", &apps_v1::REPLICA_SET),
    ("coordination.k8s.io/v1", "Lease", &coordination_v1::LEASE),
];

fn schema_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    // DeleteOptions is registered in every group version; its layout is always
    // meta/v1's.
    if kind == "DeleteOptions" {
        return Some(&meta_v1::DELETE_OPTIONS);
    }
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, message)| *message)
}

/// `runtime.Unknown`, the envelope around every object.
#[derive(Debug, Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, ProtobufError> {
        let mut envelope = Envelope::default();
        let mut reader = Reader::new(bytes, "Unknown");
        while let Some((number, value)) = reader.next_field()? {
            match number {
                1 => {
                    let type_meta = bytes_of("Unknown", "typeMeta", value)?;
                    let mut inner = Reader::new(type_meta, "TypeMeta");
                    while let Some((number, value)) = inner.next_field()? {
                        match number {
                            1 => envelope.api_version = text_of("TypeMeta", "apiVersion", value)?,
                            2 => envelope.kind = text_of("TypeMeta", "kind", value)?,
                            _ => {}
                        }
                    }
                }
                2 => envelope.raw = bytes_of("Unknown", "raw", value)?,
                3 => envelope.content_encoding = text_of("Unknown", "contentEncoding", value)?,
                // 4 is the content type, which says protobuf again; others are unknown.
                _ => {}
            }
        }
        Ok(envelope)
    }
}

fn bytes_of<'a>(
    message: &'static str,
    field: &'static str,
    value: WireValue<'a>,
) -> Result<&'a [u8], ProtobufError> {
    match value {
        WireValue::Bytes(bytes) => Ok(bytes),
        other => Err(ProtobufError::WireTypeMismatch {
            message,
            field,
            expected: 2,
            found: other.wire_type(),
        }),
    }
}

fn text_of(
    message: &'static str,
    field: &'static str,
    value: WireValue<'_>,
) -> Result<String, ProtobufError> {
    Ok(String::from_utf8_lossy(bytes_of(message, field, value)?).into_owned())
}
