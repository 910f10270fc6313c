//! Field errors as upstream's `field.Error`: a type, the field's path, the offending
//! value and a detail, rendered the way the Kubernetes API server renders them so that
//! clients (kubectl, tests written against real clusters) see the same text.

use std::fmt::Write as _;

use serde::Serialize;

use super::path::Path;

/// What is wrong with one field, as upstream's `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Which check failed.
    pub kind: FieldErrorKind,
    /// The field's path, as upstream writes it: `spec.containers[0].image`.
    pub field: String,
    /// The offending value, rendered as upstream prints it (strings quoted Go-style,
    /// numbers bare, composite values as JSON), when there is one.
    pub value: Option<String>,
    /// Upstream's detail text. Where upstream leaves the detail empty this holds the
    /// kind's label (`Required value`, `Duplicate value`, …) so that it is never blank.
    pub detail: String,
}

/// Upstream's field error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// A value is malformed or out of range (`FieldValueInvalid`).
    Invalid,
    /// A value is not one of an enumerated set (`FieldValueNotSupported`).
    NotSupported,
    /// A value that must be unique is repeated (`FieldValueDuplicate`).
    Duplicate,
    /// A value is too long; the value itself is not echoed (`FieldValueTooLong`).
    TooLong,
    /// A well-formed value is not allowed here (`FieldValueForbidden`).
    Forbidden,
    /// A value refers to something that does not exist (`FieldValueNotFound`).
    NotFound,
    /// A list has too many items (`FieldValueTooMany`).
    TooMany,
}

impl FieldErrorKind {
    /// Upstream's `ErrorType.String()`: the words every message starts with.
    pub fn label(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Duplicate => "Duplicate value",
            Self::TooLong => "Too long",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::TooMany => "Too many",
        }
    }
}

impl FieldError {
    /// The `reason` of a Status cause: `FieldValueRequired`, `FieldValueInvalid`, ….
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::TooMany => "FieldValueTooMany",
        }
    }

    /// The full message, as upstream's `Error()`: `spec.containers[0].image: Required
    /// value`, `metadata.name: Invalid value: "Foo_": a lowercase RFC 1123 …`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }

    /// The message without the field, as upstream's `ErrorBody()`; this is what upstream
    /// puts in a Status cause's `message` (the field travels in its own member there).
    pub fn body(&self) -> String {
        let label = self.kind.label();
        let mut out = label.to_string();
        // Upstream never echoes the value of these three kinds.
        let echoes_value = !matches!(
            self.kind,
            FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong
        );
        if echoes_value && let Some(value) = &self.value {
            out.push_str(": ");
            out.push_str(value);
        }
        if !self.detail.is_empty() && self.detail != label {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }

    fn new(kind: FieldErrorKind, field: &Path, value: Option<BadValue>, detail: &str) -> Self {
        let detail = if detail.is_empty() {
            kind.label().to_string()
        } else {
            detail.to_string()
        };
        Self {
            kind,
            field: field.to_string(),
            value: value.map(|v| v.0),
            detail,
        }
    }

    /// `field.Required`.
    pub fn required(field: &Path, detail: &str) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }

    /// `field.Invalid`.
    pub fn invalid(field: &Path, value: impl Into<BadValue>, detail: &str) -> Self {
        Self::new(FieldErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// `field.NotSupported`, listing the supported values in the order given.
    pub fn not_supported<S: AsRef<str>>(
        field: &Path,
        value: impl Into<BadValue>,
        supported: &[S],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            FieldErrorKind::NotSupported,
            field,
            Some(value.into()),
            &detail,
        )
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(FieldErrorKind::Duplicate, field, Some(value.into()), "")
    }

    /// `field.NotFound`.
    pub fn not_found(field: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(FieldErrorKind::NotFound, field, Some(value.into()), "")
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: &Path, detail: &str) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }

    /// `field.TooLong`; the value is never echoed.
    pub fn too_long(field: &Path, max_bytes: usize) -> Self {
        let detail = format!("must have at most {max_bytes} bytes");
        Self::new(FieldErrorKind::TooLong, field, None, &detail)
    }

    /// `field.TooMany`.
    pub fn too_many(field: &Path, actual: usize, max: usize) -> Self {
        let detail = format!("must have at most {max} items");
        Self::new(FieldErrorKind::TooMany, field, Some(actual.into()), &detail)
    }
}

/// An offending value, already rendered the way upstream's `ErrorBody` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue(pub String);

impl BadValue {
    /// A composite value (map, list, struct), rendered as compact JSON as upstream does
    /// since it stopped printing Go syntax.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(s) if s != "null" => Self(s),
            _ => Self::null(),
        }
    }

    /// An absent value.
    pub fn null() -> Self {
        Self("null".to_string())
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        Self(go_quote(s))
    }
}

impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        Self(go_quote(s))
    }
}

impl From<String> for BadValue {
    fn from(s: String) -> Self {
        Self(go_quote(&s))
    }
}

impl From<i64> for BadValue {
    fn from(n: i64) -> Self {
        Self(n.to_string())
    }
}

impl From<i32> for BadValue {
    fn from(n: i32) -> Self {
        Self(n.to_string())
    }
}

impl From<usize> for BadValue {
    fn from(n: usize) -> Self {
        Self(n.to_string())
    }
}

impl From<bool> for BadValue {
    fn from(b: bool) -> Self {
        Self(b.to_string())
    }
}

/// Quotes a string the way Go's `strconv.Quote` (and so `%q`) does: backslash escapes
/// for quotes, backslashes and control characters; printable Unicode kept as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_messages_like_upstream() {
        let p = Path::new("spec").child("x");
        let cases = [
            (FieldError::required(&p, ""), "spec.x: Required value"),
            (
                FieldError::required(&p, "must specify a handler type"),
                "spec.x: Required value: must specify a handler type",
            ),
            (
                FieldError::invalid(&p, "Foo_", "bad"),
                "spec.x: Invalid value: \"Foo_\": bad",
            ),
            (
                FieldError::invalid(&p, 70000_i32, "must be between 1 and 65535, inclusive"),
                "spec.x: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                FieldError::not_supported(&p, "Sometimes", &["Always", "OnFailure", "Never"]),
                "spec.x: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
            (
                FieldError::duplicate(&p, "web"),
                "spec.x: Duplicate value: \"web\"",
            ),
            (
                FieldError::not_found(&p, "vol"),
                "spec.x: Not found: \"vol\"",
            ),
            (
                FieldError::forbidden(&p, "may not be set"),
                "spec.x: Forbidden: may not be set",
            ),
            (
                FieldError::too_long(&p, 262144),
                "spec.x: Too long: must have at most 262144 bytes",
            ),
            (
                FieldError::too_many(&p, 120, 100),
                "spec.x: Too many: 120: must have at most 100 items",
            ),
            (
                FieldError::invalid(&p, BadValue::json(&serde_json::json!({"a": "b"})), "x"),
                "spec.x: Invalid value: {\"a\":\"b\"}: x",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.message(), want);
            assert_eq!(err.body(), want.trim_start_matches("spec.x: "));
        }
    }

    #[test]
    fn detail_is_never_blank() {
        let p = Path::new("a");
        assert_eq!(FieldError::required(&p, "").detail, "Required value");
        assert_eq!(FieldError::duplicate(&p, "x").detail, "Duplicate value");
        assert_eq!(FieldError::invalid(&p, "x", "why").detail, "why");
    }

    #[test]
    fn reasons_match_upstream_cause_types() {
        let p = Path::new("a");
        let cases = [
            (FieldError::required(&p, ""), "FieldValueRequired"),
            (FieldError::invalid(&p, "x", "y"), "FieldValueInvalid"),
            (
                FieldError::not_supported::<&str>(&p, "x", &[]),
                "FieldValueNotSupported",
            ),
            (FieldError::duplicate(&p, "x"), "FieldValueDuplicate"),
            (FieldError::too_long(&p, 1), "FieldValueTooLong"),
            (FieldError::forbidden(&p, "x"), "FieldValueForbidden"),
            (FieldError::not_found(&p, "x"), "FieldValueNotFound"),
            (FieldError::too_many(&p, 2, 1), "FieldValueTooMany"),
        ];
        for (err, want) in cases {
            assert_eq!(err.reason(), want);
        }
    }

    #[test]
    fn quotes_like_go() {
        let cases = [
            ("plain", "\"plain\""),
            ("a\"b", "\"a\\\"b\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("tab\there", "\"tab\\there\""),
            ("nl\n", "\"nl\\n\""),
            ("\u{1}", "\"\\x01\""),
            ("rā", "\"rā\""),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want);
        }
    }
}
