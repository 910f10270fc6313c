//! Mapping etcd and gRPC failures onto [`crate::Error`].
//!
//! etcd reports MVCC conditions as gRPC status messages (`etcdserver: mvcc: required
//! revision has been compacted`), so the mapping matches on them; the gRPC code decides
//! what is retryable.

use tonic::Code;

use crate::error::Error;

/// What an etcd failure means for the caller.
pub fn map_error(e: etcd_client::Error) -> Error {
    match e {
        etcd_client::Error::GRpcStatus(status) => map_status(status.code(), status.message()),
        etcd_client::Error::TransportError(e) => Error::Unavailable(format!("etcd transport: {e}")),
        etcd_client::Error::IoError(e) => Error::Unavailable(format!("etcd i/o: {e}")),
        other => Error::Backend(format!("etcd: {other}")),
    }
}

fn map_status(code: Code, message: &str) -> Error {
    if message.contains("required revision has been compacted") {
        // The message does not say where compaction stands; the caller fills it in.
        return Error::Compacted {
            requested_revision: 0,
            compact_revision: 0,
        };
    }
    if message.contains("required revision is a future revision") {
        return Error::FutureRevision {
            requested_revision: 0,
            current_revision: 0,
        };
    }
    if message.contains("request is too large") {
        return Error::TooLarge {
            key: String::new(),
            size: 0,
            limit: crate::MAX_VALUE_SIZE,
        };
    }
    match code {
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled => {
            Error::Unavailable(format!("etcd: {message}"))
        }
        // etcd answers "leader changed", "no leader", "request timed out" with Unknown.
        // A connection dying mid-request surfaces with Unknown too: as an h2 error, or
        // as tonic's bare "transport error" when the channel's connection was reset.
        Code::Unknown
            if message.contains("leader")
                || message.contains("timed out")
                || message.contains("too many requests")
                || message.contains("h2 protocol error")
                || message.contains("transport error")
                || message.contains("connection") =>
        {
            Error::Unavailable(format!("etcd: {message}"))
        }
        Code::ResourceExhausted => Error::Unavailable(format!("etcd: {message}")),
        _ => Error::Backend(format!("etcd ({code:?}): {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gRPC status and a check on what it maps to.
    type Case = (Code, &'static str, fn(&Error) -> bool);

    #[test]
    fn status_messages_map_to_store_errors() {
        let cases: &[Case] = &[
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
                |e| matches!(e, Error::Compacted { .. }),
            ),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
                |e| matches!(e, Error::FutureRevision { .. }),
            ),
            (
                Code::InvalidArgument,
                "etcdserver: request is too large",
                |e| matches!(e, Error::TooLarge { .. }),
            ),
            (
                Code::Unavailable,
                "etcdserver: no leader",
                Error::is_retryable,
            ),
            (
                Code::Unknown,
                "etcdserver: leader changed",
                Error::is_retryable,
            ),
            (
                Code::Unknown,
                "etcdserver: request timed out",
                Error::is_retryable,
            ),
            (
                Code::Unknown,
                "h2 protocol error: error reading a body from connection",
                Error::is_retryable,
            ),
            (Code::Unknown, "transport error", Error::is_retryable),
            (
                Code::InvalidArgument,
                "etcdserver: key is not provided",
                |e| matches!(e, Error::Backend(_)),
            ),
        ];
        for (code, message, check) in cases {
            let mapped = map_status(*code, message);
            assert!(check(&mapped), "{code:?} {message:?} mapped to {mapped:?}");
        }
    }
}
