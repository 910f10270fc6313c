//! API errors: every failure a client can see, each answered as a Kubernetes `Status`
//! with the upstream reason and code.

use api::validation::FieldError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::codec;

/// What went wrong with a request, in the API's terms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 403: refused for a reason other than authorization (a terminating namespace).
    #[error("{message}")]
    Forbidden {
        message: String,
        details: Option<Details>,
    },
    /// 404: the object (or path) does not exist.
    #[error("{message}")]
    NotFound {
        message: String,
        details: Option<Details>,
    },
    /// 405: the verb is not served on this path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406: no representation the client accepts.
    #[error("{0}")]
    NotAcceptable(String),
    /// 409 AlreadyExists.
    #[error("{message}")]
    AlreadyExists { message: String, details: Details },
    /// 409 Conflict: a stale resourceVersion, a failed precondition, a bound pod.
    #[error("{message}")]
    Conflict {
        message: String,
        details: Option<Details>,
    },
    /// 410 Expired: the resourceVersion or continue token is older than what is kept.
    #[error("{0}")]
    Expired(String),
    /// 413: the body is over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415: a body in a media type the server does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422 Invalid, with one cause per field.
    #[error("{message}")]
    Invalid {
        message: String,
        details: Details,
        causes: Vec<FieldError>,
    },
    /// 429: the server is overloaded or the store asks to retry.
    #[error("{0}")]
    TooManyRequests(String),
    /// 500: a fault of the server or store, never of the client's input.
    #[error("{0}")]
    Internal(String),
    /// 503: the store is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 504: the store did not answer in time.
    #[error("{0}")]
    Timeout(String),
}

/// The `details` of a Status: which object the error is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
}

impl Details {
    pub fn new(name: &str, group: &str, kind: &str) -> Self {
        Self {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
        }
    }
}

impl ApiError {
    /// `<plural> "<name>" not found`, as upstream words it.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::NotFound {
            message: format!("{} \"{name}\" not found", qualified(group, plural)),
            details: Some(Details::new(name, group, plural)),
        }
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::AlreadyExists {
            message: format!("{} \"{name}\" already exists", qualified(group, plural)),
            details: Details::new(name, group, plural),
        }
    }

    /// The conflict of an update from a stale resourceVersion.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural)
            ),
            details: Some(Details::new(name, group, plural)),
        }
    }

    /// A conflict with a reason of our own (preconditions, bindings).
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, plural)
            ),
            details: Some(Details::new(name, group, plural)),
        }
    }

    /// 422 with the field causes.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<FieldError>) -> Self {
        let list: Vec<String> = causes.iter().map(FieldError::message).collect();
        let what = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        Self::Invalid {
            message: format!(
                "{kind}{} \"{name}\" is invalid: {what}",
                group_suffix(group)
            ),
            details: Details::new(name, group, kind),
            causes,
        }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Expired(_) => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Upstream's `StatusReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Forbidden { .. } => "Forbidden",
            Self::NotFound { .. } => "NotFound",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Expired(_) => "Expired",
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Invalid { .. } => "Invalid",
            Self::TooManyRequests(_) => "TooManyRequests",
            Self::Internal(_) => "InternalError",
            Self::Unavailable(_) => "ServiceUnavailable",
            Self::Timeout(_) => "Timeout",
        }
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            Self::NotFound { details, .. }
            | Self::Forbidden { details, .. }
            | Self::Conflict { details, .. } => details.as_ref(),
            Self::AlreadyExists { details, .. } | Self::Invalid { details, .. } => Some(details),
            _ => None,
        };
        if let Some(d) = details {
            let mut value = json!({"name": d.name, "kind": d.kind});
            if !d.group.is_empty() {
                value["group"] = json!(d.group);
            }
            if let Self::Invalid { causes, .. } = self {
                value["causes"] = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason(), "message": c.body(), "field": c.field}))
                    .collect();
            }
            status["details"] = value;
        }
        status
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        use store::Error as E;
        match e {
            E::Compacted { .. } => {
                Self::Expired("The resourceVersion for the provided list is too old.".to_string())
            }
            E::FutureRevision {
                requested_revision, ..
            } => Self::Timeout(format!("Too large resource version: {requested_revision}")),
            E::TooLarge { .. } => Self::TooLarge("the object is too large to store".into()),
            E::Unavailable(why) => Self::Unavailable(format!("the store is unavailable: {why}")),
            other => Self::Internal(format!("store: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code().is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let body = self.status();
        codec::json_response(self.code(), &body)
    }
}

/// `plural.group`, or the plural alone for core.
fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

fn group_suffix(group: &str) -> String {
    if group.is_empty() {
        String::new()
    } else {
        format!(".{group}")
    }
}

#[cfg(test)]
mod tests {
    use api::validation::FieldErrorKind;

    use super::*;

    #[test]
    fn statuses_carry_reason_code_and_details() {
        let e = ApiError::not_found("apps", "deployments", "web");
        let s = e.status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["details"]["group"], "apps");

        let e = ApiError::invalid(
            "",
            "Pod",
            "p",
            vec![FieldError {
                kind: FieldErrorKind::Required,
                field: "spec.containers".into(),
                value: None,
                detail: "Required value".into(),
            }],
        );
        let s = e.status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][0]["field"], "spec.containers");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
    }

    #[test]
    fn store_errors_map_to_api_errors() {
        let e: ApiError = store::Error::Compacted {
            requested_revision: 1,
            compact_revision: 5,
        }
        .into();
        assert_eq!(e.code(), StatusCode::GONE);
        let e: ApiError = store::Error::Unavailable("down".into()).into();
        assert_eq!(e.code(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
