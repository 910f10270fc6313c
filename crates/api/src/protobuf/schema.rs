//! The schema language and the one decoder that interprets it.
//!
//! Each Kubernetes type is described by a [`Message`]: a table of fields, each with its
//! protobuf number, its JSON name, what its bytes hold ([`Ty`]) and how the Go field is
//! declared ([`Shape`]). The shape matters because the JSON we must produce is what
//! upstream's `encoding/json` writes for the Go struct after protobuf decoding filled
//! it: a value field without `omitempty` is always written (zero when absent), one with
//! `omitempty` is dropped when zero, a pointer is written exactly when it was sent, and
//! an embedded struct's fields appear in its parent.
//!
//! Adding a type is adding a table; the decoder never changes.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::ProtobufError;
use super::scalars;
use super::wire::{Reader, WireValue};

/// A protobuf message generated from a Go struct.
#[derive(Debug)]
pub(super) struct Message {
    /// The Go type name, used in error messages.
    pub(super) name: &'static str,
    pub(super) fields: &'static [Field],
}

/// One field of a [`Message`].
#[derive(Debug)]
pub(super) struct Field {
    pub(super) number: u32,
    /// The JSON name; unused for [`Shape::Inline`].
    pub(super) json: &'static str,
    pub(super) ty: Ty,
    pub(super) shape: Shape,
}

/// What a field's bytes hold, and how they are written as JSON.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    /// `string`, written as a JSON string (invalid UTF-8 replaced, as Go does).
    Str,
    /// `int32`, a JSON number.
    I32,
    /// `int64`, a JSON number.
    I64,
    /// `bool`.
    Bool,
    /// `bytes`, written as standard base64 with padding (Go's `[]byte`).
    Bytes,
    /// `meta/v1.Time`: RFC 3339 in UTC to the second, `null` when zero.
    Time,
    /// `meta/v1.MicroTime`: RFC 3339 in UTC with six fractional digits, `null` when zero.
    MicroTime,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string, by its type tag.
    IntOrString,
    /// `meta/v1.FieldsV1`: raw JSON bytes, embedded as JSON.
    FieldsV1,
    /// Another message, a JSON object.
    Msg(&'static Message),
}

/// How the Go field is declared, which decides when it appears in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// A value without `omitempty`: always written, as the zero value when absent.
    Value,
    /// A value with `omitempty`: empty strings, zero numbers, `false` and empty bytes are
    /// dropped; structs are never dropped (Go's `omitempty` ignores them).
    OmitEmpty,
    /// A value with `omitzero`: dropped when zero, structs included (a zero time).
    OmitZero,
    /// A pointer: written exactly when present on the wire.
    Pointer,
    /// A slice: a JSON array, dropped when empty. (Go writes `null` for a nil slice
    /// without `omitempty`; leaving it out means the same and types more strictly.)
    Slice,
    /// A `map[string]T`: protobuf entries `{1: key, 2: value}`, a JSON object, dropped
    /// when empty (the same liberty as [`Shape::Slice`]).
    Map,
    /// An embedded struct (`json:",inline"`): its fields are written into the parent.
    Inline,
}

/// A value field without `omitempty`.
pub(super) const fn value(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        shape: Shape::Value,
    }
}

/// A value field with `omitempty`.
pub(super) const fn omitempty(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        shape: Shape::OmitEmpty,
    }
}

/// A value field with `omitzero`.
pub(super) const fn omitzero(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        shape: Shape::OmitZero,
    }
}

/// A pointer field.
pub(super) const fn pointer(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        shape: Shape::Pointer,
    }
}

/// A slice field (`repeated`).
pub(super) const fn slice(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        shape: Shape::Slice,
    }
}

/// A map field with string keys and `ty` values.
pub(super) const fn map(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        shape: Shape::Map,
    }
}

/// An embedded struct whose fields are written into the parent.
pub(super) const fn inline(number: u32, message: &'static Message) -> Field {
    Field {
        number,
        json: "",
        ty: Ty::Msg(message),
        shape: Shape::Inline,
    }
}

/// Decodes `bytes` as `message` into a JSON object.
pub(super) fn decode_message(
    message: &'static Message,
    bytes: &[u8],
) -> Result<Map<String, Value>, ProtobufError> {
    // Gather every occurrence first: protobuf allows fields in any order and repeated
    // occurrences, and the JSON is written in table order.
    let mut found: Vec<Vec<WireValue<'_>>> = message.fields.iter().map(|_| Vec::new()).collect();
    let mut reader = Reader::new(bytes, message.name);
    while let Some((number, value)) = reader.next_field()? {
        // Unknown numbers are fields newer than this table: skipped, as upstream does.
        if let Some(index) = message.fields.iter().position(|f| f.number == number) {
            found[index].push(value);
        }
    }
    let mut object = Map::new();
    for (field, values) in message.fields.iter().zip(&found) {
        decode_field(message, field, values, &mut object)?;
    }
    Ok(object)
}

/// Where a value sits, for error messages.
#[derive(Debug, Clone, Copy)]
struct Site {
    message: &'static str,
    field: &'static str,
}

fn decode_field(
    message: &'static Message,
    field: &'static Field,
    values: &[WireValue<'_>],
    object: &mut Map<String, Value>,
) -> Result<(), ProtobufError> {
    let site = Site {
        message: message.name,
        field: match field.shape {
            Shape::Inline => match field.ty {
                Ty::Msg(inner) => inner.name,
                _ => "inline",
            },
            _ => field.json,
        },
    };
    match field.shape {
        Shape::Slice => {
            let mut items = Vec::new();
            for value in values {
                push_elements(site, field.ty, *value, &mut items)?;
            }
            if !items.is_empty() {
                object.insert(field.json.to_owned(), Value::Array(items));
            }
        }
        Shape::Map => {
            let mut entries = Map::new();
            for value in values {
                let bytes = expect_bytes(site, *value)?;
                let (key, value) = decode_entry(site, field.ty, bytes)?;
                entries.insert(key, value);
            }
            if !entries.is_empty() {
                object.insert(field.json.to_owned(), Value::Object(entries));
            }
        }
        Shape::Inline => {
            let single = singular(site, field.ty, values)?;
            match render(site, field.ty, single)? {
                Some(Value::Object(inner)) => object.extend(inner),
                Some(other) => {
                    object.insert(site.field.to_owned(), other);
                }
                None => {}
            }
        }
        Shape::Pointer => {
            if values.is_empty() {
                return Ok(());
            }
            let single = singular(site, field.ty, values)?;
            if let Some(value) = render(site, field.ty, single)? {
                object.insert(field.json.to_owned(), value);
            }
        }
        Shape::Value | Shape::OmitEmpty | Shape::OmitZero => {
            let single = singular(site, field.ty, values)?;
            if let Some(value) = render(site, field.ty, single)?
                && !omitted(field.shape, field.ty, &value)
            {
                object.insert(field.json.to_owned(), value);
            }
        }
    }
    Ok(())
}

/// A singular field's value once its occurrences are combined.
#[derive(Debug)]
enum Single<'a> {
    Absent,
    Varint(u64),
    Bytes(Cow<'a, [u8]>),
}

/// Combines a singular field's occurrences as protobuf does: the last scalar wins, and
/// repeated occurrences of a message merge, which for the wire format is concatenation.
fn singular<'a>(site: Site, ty: Ty, values: &[WireValue<'a>]) -> Result<Single<'a>, ProtobufError> {
    let Some(last) = values.last() else {
        return Ok(Single::Absent);
    };
    if is_varint(ty) {
        for value in values {
            expect_varint(site, *value)?;
        }
        return Ok(Single::Varint(expect_varint(site, *last)?));
    }
    let mut slices = Vec::with_capacity(values.len());
    for value in values {
        slices.push(expect_bytes(site, *value)?);
    }
    let merges = matches!(
        ty,
        Ty::Msg(_) | Ty::Time | Ty::MicroTime | Ty::Quantity | Ty::IntOrString | Ty::FieldsV1
    );
    match slices.as_slice() {
        [only] => Ok(Single::Bytes(Cow::Borrowed(only))),
        [.., last] if !merges => Ok(Single::Bytes(Cow::Borrowed(last))),
        _ => Ok(Single::Bytes(Cow::Owned(slices.concat()))),
    }
}

fn is_varint(ty: Ty) -> bool {
    matches!(ty, Ty::I32 | Ty::I64 | Ty::Bool)
}

fn expect_varint(site: Site, value: WireValue<'_>) -> Result<u64, ProtobufError> {
    match value {
        WireValue::Varint(v) => Ok(v),
        other => Err(mismatch(site, 0, other)),
    }
}

fn expect_bytes<'a>(site: Site, value: WireValue<'a>) -> Result<&'a [u8], ProtobufError> {
    match value {
        WireValue::Bytes(bytes) => Ok(bytes),
        other => Err(mismatch(site, 2, other)),
    }
}

fn mismatch(site: Site, expected: u8, found: WireValue<'_>) -> ProtobufError {
    ProtobufError::WireTypeMismatch {
        message: site.message,
        field: site.field,
        expected,
        found: found.wire_type(),
    }
}

/// The JSON for one value of type `ty`, or `None` where Go would hold a nil slice
/// (absent `bytes`), which is never written.
fn render(site: Site, ty: Ty, single: Single<'_>) -> Result<Option<Value>, ProtobufError> {
    let bytes = match single {
        Single::Varint(v) => return Ok(Some(varint_json(ty, v))),
        Single::Absent if is_varint(ty) => return Ok(Some(varint_json(ty, 0))),
        Single::Absent => None,
        Single::Bytes(bytes) => Some(bytes),
    };
    let bytes = bytes.as_deref();
    let value = match ty {
        Ty::Str => Value::String(text(bytes.unwrap_or_default())),
        Ty::Bytes => match bytes {
            Some(bytes) => Value::String(scalars::base64(bytes)),
            None => return Ok(None),
        },
        Ty::Time => match nonempty(bytes) {
            None => Value::Null,
            Some(bytes) => {
                let (seconds, _) = timestamp(bytes)?;
                Value::String(scalars::format_time(seconds).map_err(|()| {
                    ProtobufError::TimeOutOfRange {
                        message: site.message,
                        field: site.field,
                        seconds,
                    }
                })?)
            }
        },
        Ty::MicroTime => match nonempty(bytes) {
            None => Value::Null,
            Some(bytes) => {
                let (seconds, nanos) = timestamp(bytes)?;
                Value::String(scalars::format_micro_time(seconds, nanos).map_err(|()| {
                    ProtobufError::TimeOutOfRange {
                        message: site.message,
                        field: site.field,
                        seconds,
                    }
                })?)
            }
        },
        Ty::Quantity => {
            let quantity = decode_message(&QUANTITY, bytes.unwrap_or_default())?;
            match quantity.get("string") {
                Some(Value::String(s)) => Value::String(s.clone()),
                // A zero quantity, as Go writes it.
                _ => Value::String("0".to_owned()),
            }
        }
        Ty::IntOrString => {
            let parts = decode_message(&INT_OR_STRING, bytes.unwrap_or_default())?;
            match parts.get("type").and_then(Value::as_i64) {
                Some(0) | None => parts.get("intVal").cloned().unwrap_or(Value::from(0)),
                Some(1) => parts
                    .get("strVal")
                    .cloned()
                    .unwrap_or(Value::String(String::new())),
                Some(other) => {
                    return Err(ProtobufError::InvalidIntOrString {
                        message: site.message,
                        field: site.field,
                        type_tag: other,
                    });
                }
            }
        }
        Ty::FieldsV1 => {
            let mut reader = Reader::new(bytes.unwrap_or_default(), FIELDS_V1);
            let mut raw: Option<&[u8]> = None;
            while let Some((number, value)) = reader.next_field()? {
                if number == 1 {
                    raw = Some(expect_bytes(site, value)?);
                }
            }
            match nonempty(raw) {
                None => Value::Null,
                Some(raw) => {
                    serde_json::from_slice(raw).map_err(|error| ProtobufError::InvalidFieldsV1 {
                        message: site.message,
                        reason: error.to_string(),
                    })?
                }
            }
        }
        Ty::Msg(inner) => Value::Object(decode_message(inner, bytes.unwrap_or_default())?),
        Ty::I32 | Ty::I64 | Ty::Bool => Value::from(0),
    };
    Ok(Some(value))
}

fn nonempty(bytes: Option<&[u8]>) -> Option<&[u8]> {
    bytes.filter(|b| !b.is_empty())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Integers are truncated to their declared width, as Go's generated code does.
fn varint_json(ty: Ty, v: u64) -> Value {
    match ty {
        Ty::Bool => Value::Bool(v != 0),
        Ty::I32 => Value::Number(Number::from(v as i32)),
        _ => Value::Number(Number::from(v as i64)),
    }
}

/// The seconds and nanoseconds of a `Timestamp` message.
fn timestamp(bytes: &[u8]) -> Result<(i64, i32), ProtobufError> {
    let parts = decode_message(&TIMESTAMP, bytes)?;
    let seconds = parts.get("seconds").and_then(Value::as_i64).unwrap_or(0);
    let nanos = parts.get("nanos").and_then(Value::as_i64).unwrap_or(0);
    Ok((seconds, nanos as i32))
}

/// Whether a rendered value is left out under `shape`.
fn omitted(shape: Shape, ty: Ty, value: &Value) -> bool {
    let empty_scalar = match ty {
        Ty::Str | Ty::Bytes => value.as_str() == Some(""),
        Ty::I32 | Ty::I64 => value.as_i64() == Some(0),
        Ty::Bool => value.as_bool() == Some(false),
        _ => false,
    };
    match shape {
        Shape::OmitEmpty => empty_scalar,
        Shape::OmitZero => empty_scalar || value.is_null(),
        _ => false,
    }
}

/// Appends a slice field's elements from one occurrence. Numbers and booleans may come
/// one per occurrence or packed into one length-delimited run.
fn push_elements(
    site: Site,
    ty: Ty,
    value: WireValue<'_>,
    items: &mut Vec<Value>,
) -> Result<(), ProtobufError> {
    if is_varint(ty) {
        match value {
            WireValue::Varint(v) => items.push(varint_json(ty, v)),
            WireValue::Bytes(packed) => {
                let mut reader = Reader::new(packed, site.message);
                while !reader.is_empty() {
                    items.push(varint_json(ty, reader.varint()?));
                }
            }
            other => return Err(mismatch(site, 0, other)),
        }
        return Ok(());
    }
    let bytes = expect_bytes(site, value)?;
    if let Some(item) = render(site, ty, Single::Bytes(Cow::Borrowed(bytes)))? {
        items.push(item);
    }
    Ok(())
}

/// Decodes one map entry: key 1 (a string), value 2 (of type `ty`).
fn decode_entry(site: Site, ty: Ty, bytes: &[u8]) -> Result<(String, Value), ProtobufError> {
    let mut reader = Reader::new(bytes, site.message);
    let mut key = String::new();
    let mut values = Vec::new();
    while let Some((number, value)) = reader.next_field()? {
        match number {
            1 => key = text(expect_bytes(site, value)?),
            2 => values.push(value),
            _ => {}
        }
    }
    let single = singular(site, ty, &values)?;
    // Go decodes a missing `bytes` value as an empty, non-nil slice.
    let value = render(site, ty, single)?.unwrap_or(Value::String(String::new()));
    Ok((key, value))
}

/// `google.protobuf.Timestamp` as `meta/v1` declares it.
static TIMESTAMP: Message = Message {
    name: "Timestamp",
    fields: &[value(1, "seconds", Ty::I64), value(2, "nanos", Ty::I32)],
};

/// `resource.Quantity`: one string field named `string`.
static QUANTITY: Message = Message {
    name: "Quantity",
    fields: &[pointer(1, "string", Ty::Str)],
};

/// `intstr.IntOrString`: a type tag (0 int, 1 string) and both possible values.
static INT_OR_STRING: Message = Message {
    name: "IntOrString",
    fields: &[
        value(1, "type", Ty::I64),
        value(2, "intVal", Ty::I32),
        value(3, "strVal", Ty::Str),
    ],
};

const FIELDS_V1: &str = "FieldsV1";
