//! Leader fencing on the write path.
//!
//! A leader-elected component sends [`api::fence::HEADER`] with every write: the Lease it
//! leads by, and the holder and transition count the Lease had when it won. Every store
//! write such a request makes carries a [`Guard`] on the Lease's key at the revision
//! where the Lease, read just before, still named that holder and transition count. The
//! store checks the guard atomically with the write, so a leader deposed between our
//! read and its write cannot slip a write in; if only a renew moved the Lease, the write
//! re-reads it and tries again ([`crate::objects::Objects`] runs that loop).
//!
//! This module holds the pure parts: the header, the Lease check, and the errors.

use api::fence::{Fence, FenceError, HEADER};
use axum::http::HeaderMap;
use serde::Deserialize;
use store::{Guard, KeyValue};

use crate::error::ApiError;

/// How many times one write re-reads the Lease after it moved between read and write.
/// A renew every 250 ms moves it far less often than a write takes; the bound only
/// stops a pathological writer of the Lease from holding a request for ever.
pub const MAX_LEASE_TRIES: usize = 32;

/// Why a fenced write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The header is there but is not a fence (400).
    #[error("invalid {HEADER} header: {0}")]
    Malformed(#[from] FenceError),
    /// The header is not text, or is repeated (400).
    #[error("invalid {HEADER} header: {why}")]
    Unreadable { why: &'static str },
    /// The Lease the fence names does not exist (409).
    #[error("write fenced: lease {lease} does not exist")]
    Missing { lease: String },
    /// The Lease names another holder or transition count (409).
    #[error(
        "write fenced: lease {lease} is held by {} (transitions {transitions}), not by {:?} (transitions {fence_transitions})",
        holder_text(.holder),
        .fence_holder
    )]
    Held {
        lease: String,
        /// The Lease's holderIdentity now (None: nobody holds it).
        holder: Option<String>,
        /// The Lease's leaseTransitions now (absent counts as 0).
        transitions: i32,
        fence_holder: String,
        fence_transitions: i32,
    },
    /// The Lease moved between our read and the write on every try (429: the client may
    /// retry; the fence itself still matched).
    #[error("write fenced: lease {lease} changed during each of {tries} tries; retry")]
    Contended { lease: String, tries: usize },
    /// The stored Lease is not a Lease (500: a fault of the store, not of the client).
    #[error("lease {lease} as stored does not parse: {why}")]
    Corrupt { lease: String, why: String },
}

fn holder_text(holder: &Option<String>) -> String {
    match holder {
        Some(h) => format!("{h:?}"),
        None => "nobody".to_string(),
    }
}

impl Error {
    /// Whether this is the fence's verdict against the writer (counted as rejected).
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::Missing { .. } | Error::Held { .. })
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Malformed(_) | Error::Unreadable { .. } => ApiError::BadRequest(e.to_string()),
            Error::Missing { .. } | Error::Held { .. } => ApiError::Conflict {
                message: e.to_string(),
                details: None,
            },
            Error::Contended { .. } => ApiError::TooManyRequests(e.to_string()),
            Error::Corrupt { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

/// The fence a request carries, if any.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<Fence>, Error> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::Unreadable {
            why: "given more than once",
        });
    }
    let text = value.to_str().map_err(|_| Error::Unreadable {
        why: "the value is not visible ascii",
    })?;
    Ok(Some(Fence::parse(text)?))
}

/// The Lease fields a fence is checked against.
#[derive(Debug, Default, Deserialize)]
struct LeaseDoc {
    #[serde(default)]
    spec: LeaseSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseSpec {
    holder_identity: Option<String>,
    lease_transitions: Option<i32>,
}

/// The guard for a write under `fence`, given the Lease as just read (None: absent):
/// the Lease's key at its current mod revision, if it still names the fence's holder
/// and transition count.
pub fn guard(fence: &Fence, lease: Option<&KeyValue>) -> Result<Guard, Error> {
    let Some(lease) = lease else {
        return Err(Error::Missing {
            lease: fence.lease(),
        });
    };
    let doc: LeaseDoc = serde_json::from_slice(&lease.value).map_err(|e| Error::Corrupt {
        lease: fence.lease(),
        why: e.to_string(),
    })?;
    let holder = doc.spec.holder_identity.filter(|h| !h.is_empty());
    // Upstream omits leaseTransitions until the first change of holder.
    let transitions = doc.spec.lease_transitions.unwrap_or(0);
    if holder.as_deref() != Some(fence.holder.as_str()) || transitions != fence.transitions {
        return Err(Error::Held {
            lease: fence.lease(),
            holder,
            transitions,
            fence_holder: fence.holder.clone(),
            fence_transitions: fence.transitions,
        });
    }
    Ok(Guard::new(lease.key.clone(), lease.mod_revision))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    const KEY: &str = "/registry/leases/kube-system/kube-scheduler";

    fn lease(spec: serde_json::Value, mod_revision: i64) -> KeyValue {
        let object = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
            "spec": spec,
        });
        KeyValue {
            key: Bytes::from_static(KEY.as_bytes()),
            value: Bytes::from(serde_json::to_vec(&object).expect("encode")),
            create_revision: 1,
            mod_revision,
        }
    }

    fn fence(transitions: i32, holder: &str) -> Fence {
        Fence::new("kube-system", "kube-scheduler", transitions, holder).expect("fence")
    }

    #[test]
    fn a_matching_lease_guards_at_its_mod_revision() {
        let kv = lease(json!({"holderIdentity": "A", "leaseTransitions": 2}), 17);
        let guard = guard(&fence(2, "A"), Some(&kv)).expect("matches");
        assert_eq!(guard, Guard::new(KEY.as_bytes().to_vec(), 17));
    }

    #[test]
    fn missing_lease_transitions_count_as_zero() {
        let kv = lease(json!({"holderIdentity": "A"}), 5);
        assert!(guard(&fence(0, "A"), Some(&kv)).is_ok());
        let err = guard(&fence(1, "A"), Some(&kv)).expect_err("transitions differ");
        assert!(matches!(err, Error::Held { transitions: 0, .. }), "{err:?}");
    }

    #[test]
    fn another_holder_is_refused_with_both_sides_named() {
        let kv = lease(json!({"holderIdentity": "B", "leaseTransitions": 3}), 9);
        let err = guard(&fence(2, "A"), Some(&kv)).expect_err("held by B");
        assert!(err.is_rejection());
        assert_eq!(
            err.to_string(),
            "write fenced: lease kube-system/kube-scheduler is held by \"B\" (transitions 3), not by \"A\" (transitions 2)"
        );
        let api: ApiError = err.into();
        assert_eq!(api.code(), axum::http::StatusCode::CONFLICT);
        assert_eq!(api.reason(), "Conflict");
    }

    #[test]
    fn the_same_holder_with_other_transitions_is_refused() {
        // A holder that lost the Lease and won it back is a new term: writes fenced by
        // the old term must not pass.
        let kv = lease(json!({"holderIdentity": "A", "leaseTransitions": 4}), 9);
        let err = guard(&fence(2, "A"), Some(&kv)).expect_err("old term");
        assert!(matches!(
            err,
            Error::Held {
                transitions: 4,
                fence_transitions: 2,
                ..
            }
        ));
    }

    #[test]
    fn a_released_lease_is_held_by_nobody() {
        let kv = lease(json!({"holderIdentity": "", "leaseTransitions": 2}), 9);
        let err = guard(&fence(2, "A"), Some(&kv)).expect_err("released");
        assert!(err.to_string().contains("is held by nobody"), "{err}");
        let kv = lease(json!({}), 9);
        assert!(guard(&fence(0, "A"), Some(&kv)).is_err());
    }

    #[test]
    fn a_missing_lease_is_refused() {
        let err = guard(&fence(1, "A"), None).expect_err("missing");
        assert!(err.is_rejection());
        assert_eq!(
            err.to_string(),
            "write fenced: lease kube-system/kube-scheduler does not exist"
        );
        assert_eq!(ApiError::from(err).code(), axum::http::StatusCode::CONFLICT);
    }

    #[test]
    fn a_corrupt_lease_is_a_server_fault() {
        let mut kv = lease(json!({}), 1);
        kv.value = Bytes::from_static(b"not json");
        let err = guard(&fence(0, "A"), Some(&kv)).expect_err("corrupt");
        assert!(!err.is_rejection());
        assert!(ApiError::from(err).code().is_server_error());
    }

    #[test]
    fn headers_parse_or_fail_as_bad_requests() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_headers(&headers), Ok(None));
        headers.insert(
            HEADER,
            HeaderValue::from_static("kube-system/kube-scheduler/3/host/a"),
        );
        assert_eq!(from_headers(&headers), Ok(Some(fence(3, "host/a"))));
        headers.insert(HEADER, HeaderValue::from_static("kube-system/3"));
        let err = from_headers(&headers).expect_err("malformed");
        assert!(err.to_string().starts_with("invalid x-mast-fence header"));
        assert_eq!(
            ApiError::from(err).code(),
            axum::http::StatusCode::BAD_REQUEST
        );
        headers.insert(HEADER, HeaderValue::from_static("kube-system/s/1/a"));
        headers.append(HEADER, HeaderValue::from_static("kube-system/s/1/a"));
        assert!(matches!(
            from_headers(&headers),
            Err(Error::Unreadable { .. })
        ));
    }
}
