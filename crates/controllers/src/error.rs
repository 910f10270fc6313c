//! The controllers' one error type.

/// Why a reconcile failed; every failure is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not be reached.
    #[error("api: {0}")]
    Api(#[from] kube::Error),
    /// An object in the cache cannot be acted on as it is (a bad selector, say).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// A write lost a race with another writer (409 Conflict): normal under
    /// optimistic concurrency, retried at once without alarm.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api(kube::Error::Api(status)) if status.code == 409)
    }

    /// The object is gone already (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api(kube::Error::Api(status)) if status.code == 404)
    }
}

/// Treats 404 as success: deleting or updating something already gone is done.
pub fn ignore_not_found<T>(result: Result<T, kube::Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}
