//! Bodies in and out: JSON or YAML by `Content-Type`, JSON or YAML by `Accept`, and the
//! request size limit.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ApiError;

/// Bodies over this are refused with 413, as upstream's 3 MiB limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The representations the server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// Parses a request body as JSON or YAML, by its Content-Type (JSON when absent).
pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the request body is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    let media = media_type(headers.get(header::CONTENT_TYPE));
    match media.as_str() {
        ""
        | "application/json"
        | "*/*"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => decode_json(body),
        "application/yaml" | "application/apply-patch+yaml" | "text/yaml" => decode_yaml(body),
        api::protobuf::MEDIA_TYPE => api::protobuf::decode(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding the protobuf body: {e}"))),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding the JSON body: {e}")))
}

fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding the YAML body: {e}")))?;
    if value.is_null() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    Ok(value)
}

/// The format to answer in, from `Accept`: the first of JSON or YAML the client lists;
/// JSON when it lists neither but accepts anything.
pub fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    for part in accept.split(',') {
        match part.split(';').next().unwrap_or("").trim() {
            "application/json" | "application/*" | "*/*" | "" => return Ok(Format::Json),
            "application/yaml" | "text/yaml" => return Ok(Format::Yaml),
            _ => {}
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "only the following media types are accepted: application/json, application/yaml (asked for {accept})"
    )))
}

/// An object (or Status, or list) as a response in `format`.
pub fn respond(code: StatusCode, format: Format, body: &Value) -> Response {
    match format {
        Format::Json => json_response(code, body),
        Format::Yaml => match serde_yaml::to_string(body) {
            Ok(text) => with_type(code, "application/yaml", text.into_bytes()),
            Err(e) => ApiError::Internal(format!("encoding YAML: {e}")).into_response(),
        },
    }
}

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => with_type(code, "application/json", bytes),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub fn with_type(code: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// The bare media type of a header value, lowercased, without parameters.
pub fn media_type(value: Option<&HeaderValue>) -> String {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn decodes_json_and_yaml() {
        let v = decode(&HeaderMap::new(), br#"{"a": 1}"#).expect("json");
        assert_eq!(v["a"], 1);
        let h = headers(header::CONTENT_TYPE, "application/yaml");
        let v = decode(&h, b"a: 1\nb: [x]\n").expect("yaml");
        assert_eq!(v["b"][0], "x");
    }

    #[test]
    fn bad_bodies_are_client_errors() {
        let e = decode(&HeaderMap::new(), b"{nope").expect_err("malformed");
        assert_eq!(e.code(), StatusCode::BAD_REQUEST);
        let h = headers(header::CONTENT_TYPE, "application/yaml");
        let e = decode(&h, b"a: [").expect_err("malformed yaml");
        assert_eq!(e.code(), StatusCode::BAD_REQUEST);
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let e = decode(&HeaderMap::new(), &big).expect_err("too large");
        assert_eq!(e.code(), StatusCode::PAYLOAD_TOO_LARGE);
        let h = headers(header::CONTENT_TYPE, "application/vnd.kubernetes.protobuf");
        let e = decode(&h, b"x").expect_err("not protobuf");
        assert_eq!(e.code(), StatusCode::BAD_REQUEST);
        let h = headers(header::CONTENT_TYPE, "application/cbor");
        let e = decode(&h, b"x").expect_err("cbor");
        assert_eq!(e.code(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn negotiation_picks_the_first_known_type() {
        let h = headers(
            header::ACCEPT,
            "application/vnd.kubernetes.protobuf, application/yaml, application/json",
        );
        assert_eq!(negotiate(&h).expect("yaml"), Format::Yaml);
        let h = headers(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        );
        assert_eq!(negotiate(&h).expect("json"), Format::Json);
        let h = headers(header::ACCEPT, "application/vnd.kubernetes.protobuf");
        assert!(negotiate(&h).is_err());
    }
}

/// The paths of keys that appear twice in one JSON object of `body` (serde_json keeps
/// the last silently; upstream's strict decoding reports them). Assumes `body` is
/// valid JSON, so run it after parsing succeeded.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    /// One open container: its path, and for an object the keys seen so far and
    /// whether the next string is a key; for an array the next index.
    struct Frame {
        path: String,
        keys: Option<std::collections::HashSet<String>>,
        expect_key: bool,
        index: usize,
        current: String,
    }
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    // The path of the value about to start, in the innermost container.
    let child_path = |stack: &[Frame]| -> String {
        match stack.last() {
            Some(f) if f.keys.is_some() => join(&f.path, &f.current),
            Some(f) => format!("{}[{}]", f.path, f.index),
            None => String::new(),
        }
    };
    while i < body.len() {
        match body[i] {
            b'{' | b'[' => {
                let path = child_path(&stack);
                let object = body[i] == b'{';
                stack.push(Frame {
                    path,
                    keys: object.then(Default::default),
                    expect_key: object,
                    index: 0,
                    current: String::new(),
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(f) = stack.last_mut() {
                    if f.keys.is_some() {
                        f.expect_key = true;
                    } else {
                        f.index += 1;
                    }
                }
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    if body[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let raw = &body[start..i.min(body.len())];
                if let Some(f) = stack.last_mut()
                    && f.expect_key
                {
                    let key: String = serde_json::from_slice(&[b"\"", raw, b"\""].concat())
                        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned());
                    f.expect_key = false;
                    if let Some(keys) = f.keys.as_mut()
                        && !keys.insert(key.clone())
                    {
                        out.push(join(&f.path, &key));
                    }
                    f.current = key;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod duplicate_tests {
    use super::duplicate_fields;

    #[test]
    fn finds_repeated_keys_with_their_paths() {
        let body = br#"{"metadata": {"name": "a", "name": "b"}, "spec": {"containers": [{"name": "x", "image": "i", "image": "j"}], "x\"y": 1, "x\"y": 2}}"#;
        assert_eq!(
            duplicate_fields(body),
            ["metadata.name", "spec.containers[0].image", "spec.x\"y"]
        );
        assert!(duplicate_fields(br#"{"a": {"b": 1}, "c": {"b": 2}, "d": ["b", "b"]}"#).is_empty());
    }
}
