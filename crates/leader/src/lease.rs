//! The three Lease calls an election makes, behind a small trait so that the state
//! machine runs against an in-memory fake in unit tests.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;

/// Why a Lease call failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// 409: the Lease changed since it was read (Conflict), or was created by someone
    /// else first (AlreadyExists). Either way another candidate won this round.
    #[error("lease {name} was written concurrently")]
    Conflict { name: String },
    /// The call did not finish in time; the API server may be hung.
    #[error("lease {name}: no answer within {after:?}")]
    Timeout { name: String, after: Duration },
    /// Any other failure (connection refused, 5xx, …); retried on the next period.
    #[error("lease {name}: {source}")]
    Request {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Get, create and replace of one Lease, the calls client-go's `LeaseLock` makes.
pub trait LeaseApi: Send + Sync + 'static {
    /// `namespace/name` of the Lease, for logs.
    fn key(&self) -> String;
    /// The Lease, or `None` if it does not exist.
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, LeaseError>> + Send;
    /// Creates the Lease; [`LeaseError::Conflict`] if it exists.
    fn create(&self, lease: Lease) -> impl Future<Output = Result<Lease, LeaseError>> + Send;
    /// Replaces the Lease, conditional on `lease.metadata.resourceVersion`;
    /// [`LeaseError::Conflict`] if it moved on.
    fn replace(&self, lease: Lease) -> impl Future<Output = Result<Lease, LeaseError>> + Send;
}

/// [`LeaseApi`] through a kube client.
#[derive(Clone)]
pub struct KubeLeases {
    api: Api<Lease>,
    namespace: String,
    name: String,
}

impl std::fmt::Debug for KubeLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeLeases")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KubeLeases {
    /// The Lease `namespace/name`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        KubeLeases {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    fn error(&self, source: kube::Error) -> LeaseError {
        match &source {
            kube::Error::Api(status) if status.is_conflict() || status.is_already_exists() => {
                LeaseError::Conflict { name: self.key() }
            }
            _ => LeaseError::Request {
                name: self.key(),
                source,
            },
        }
    }
}

impl LeaseApi for KubeLeases {
    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    async fn get(&self) -> Result<Option<Lease>, LeaseError> {
        self.api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))
    }

    async fn create(&self, lease: Lease) -> Result<Lease, LeaseError> {
        self.api
            .create(&PostParams::default(), &lease)
            .await
            .map_err(|e| self.error(e))
    }

    async fn replace(&self, lease: Lease) -> Result<Lease, LeaseError> {
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.error(e))
    }
}
