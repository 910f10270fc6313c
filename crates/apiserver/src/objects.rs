//! API objects in the store: JSON values under `/registry/…` keys, stored without their
//! resourceVersion (the store revision is the resourceVersion) and given it back on
//! every read.
//!
//! An [`Objects`] may carry a leader's fence ([`Objects::with_fence`]): then every write
//! is guarded by the fence's Lease (see [`crate::fencing`]), so every handler's writes
//! are fenced without the handler knowing.

use std::future::Future;
use std::sync::Arc;

use api::fence::Fence;
use api::registry::Resource;
use bytes::Bytes;
use serde_json::Value;
use store::{AnyStore, Guard, Store};

use crate::error::ApiError;
use crate::fencing;
use crate::meta;
use crate::metrics::Metrics;

/// An object read from the store.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object, with `metadata.resourceVersion` set.
    pub object: Value,
    /// Its mod revision.
    pub revision: i64,
}

/// Object-level access to the store, counting every call.
#[derive(Debug, Clone)]
pub struct Objects {
    store: AnyStore,
    metrics: Metrics,
    /// The fence every write is conditional on (None: writes are unconditional).
    fence: Option<Arc<Fenced>>,
    /// `dryRun=All`: writes are checked against the store but never made.
    dry_run: bool,
}

/// A fence and the store key of its Lease.
#[derive(Debug)]
struct Fenced {
    fence: Fence,
    lease_key: String,
}

/// One page of a list read at one revision.
#[derive(Debug)]
pub struct Page {
    /// Each object with its key.
    pub items: Vec<(Vec<u8>, Stored)>,
    pub revision: i64,
    /// The last key read, when more remain after it.
    pub more_after: Option<Vec<u8>>,
}

impl Objects {
    pub fn new(store: AnyStore, metrics: Metrics) -> Self {
        Self {
            store,
            metrics,
            fence: None,
            dry_run: false,
        }
    }

    /// The same store for a `dryRun=All` request: every write answers as it would
    /// (AlreadyExists, a moved revision) and changes nothing.
    pub fn dry_run(&self) -> Self {
        Self {
            dry_run: true,
            ..self.clone()
        }
    }

    /// Whether writes are only checked ([`Objects::dry_run`]).
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The current mod revision of `key`; None if absent.
    async fn revision_of(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.metrics.store_call("get");
        match self.store.get(key.as_bytes()).await {
            Ok(kv) => Ok(Some(kv.mod_revision)),
            Err(store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The same store, every write conditional on `fence`.
    pub fn with_fence(&self, fence: Fence) -> Result<Self, ApiError> {
        let leases = api::registry::find("coordination.k8s.io", "v1", "leases")
            .ok_or_else(|| ApiError::Internal("the leases resource is not registered".into()))?;
        let lease_key = leases.key(Some(&fence.lease_namespace), &fence.lease_name);
        Ok(Self {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            fence: Some(Arc::new(Fenced { fence, lease_key })),
            dry_run: self.dry_run,
        })
    }

    /// The fence writes are conditional on, if any.
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_deref().map(|f| &f.fence)
    }

    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    pub async fn get(
        &self,
        resource: &Resource,
        key: &str,
        name: &str,
    ) -> Result<Stored, ApiError> {
        self.metrics.store_call("get");
        match self.store.get(key.as_bytes()).await {
            Ok(kv) => decode(&kv.value, kv.mod_revision),
            Err(store::Error::NotFound { .. }) => {
                Err(ApiError::not_found(resource.group, resource.plural, name))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the object; returns it with its resourceVersion.
    pub async fn create(
        &self,
        resource: &Resource,
        key: &str,
        mut object: Value,
    ) -> Result<Stored, ApiError> {
        if self.dry_run {
            if self.revision_of(key).await?.is_some() {
                return Err(ApiError::already_exists(
                    resource.group,
                    resource.plural,
                    meta::name(&object),
                ));
            }
            // Upstream answers a dry-run create without a resourceVersion: none exists.
            encode(&mut object)?;
            return Ok(Stored {
                object,
                revision: 0,
            });
        }
        self.metrics.store_call("create");
        let bytes = encode(&mut object)?;
        let written = self
            .write(|guard| self.store.create(key.as_bytes(), bytes.clone(), guard))
            .await?;
        match written {
            Ok(revision) => Ok(with_revision(object, revision)),
            Err(store::Error::AlreadyExists { .. }) => Err(ApiError::already_exists(
                resource.group,
                resource.plural,
                meta::name(&object),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the object if it is still at `expected`; `Ok(None)` if it moved.
    pub async fn update(
        &self,
        key: &str,
        mut object: Value,
        expected: i64,
    ) -> Result<Option<Stored>, ApiError> {
        if self.dry_run {
            return Ok((self.revision_of(key).await? == Some(expected))
                .then(|| with_revision(object, expected)));
        }
        self.metrics.store_call("update");
        let bytes = encode(&mut object)?;
        let written = self
            .write(|guard| {
                self.store
                    .update(key.as_bytes(), bytes.clone(), expected, guard)
            })
            .await?;
        match written {
            Ok(revision) => Ok(Some(with_revision(object, revision))),
            Err(store::Error::Conflict { .. } | store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the object if it is still at `expected`; `Ok(None)` if it moved or went.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<Option<i64>, ApiError> {
        if self.dry_run {
            return Ok((self.revision_of(key).await? == Some(expected)).then_some(expected));
        }
        self.metrics.store_call("delete");
        let written = self
            .write(|guard| self.store.delete(key.as_bytes(), Some(expected), guard))
            .await?;
        match written {
            Ok(deleted) => Ok(Some(deleted.revision)),
            Err(store::Error::Conflict { .. } | store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One page of objects under `prefix`, at `revision` (0 = now), after `start_after`.
    pub async fn list(
        &self,
        prefix: &str,
        revision: i64,
        limit: usize,
        start_after: Option<&[u8]>,
    ) -> Result<Page, ApiError> {
        self.metrics.store_call("list");
        let page = self
            .store
            .list(prefix.as_bytes(), revision, limit, start_after)
            .await?;
        let more_after = if page.more {
            page.items.last().map(|kv| kv.key.to_vec())
        } else {
            None
        };
        let items = page
            .items
            .iter()
            .map(|kv| Ok::<_, ApiError>((kv.key.to_vec(), decode(&kv.value, kv.mod_revision)?)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            revision: page.revision,
            more_after,
        })
    }

    pub async fn current_revision(&self) -> Result<i64, ApiError> {
        self.metrics.store_call("current_revision");
        Ok(self.store.current_revision().await?)
    }

    /// Runs one store write: unguarded without a fence; with one, guarded by the
    /// Lease as read just before, re-reading it and writing again while only the
    /// Lease's revision moved (a renew by the same holder). The outer error is the
    /// fence's verdict; the inner result is the write's own.
    async fn write<T, F, Fut>(&self, op: F) -> Result<store::Result<T>, ApiError>
    where
        F: Fn(Option<Guard>) -> Fut,
        Fut: Future<Output = store::Result<T>>,
    {
        let Some(fenced) = self.fence.as_deref() else {
            return Ok(op(None).await);
        };
        let fence = &fenced.fence;
        let lease = fence.lease();
        for _ in 0..fencing::MAX_LEASE_TRIES {
            self.metrics.store_call("get");
            let current = match self.store.get(fenced.lease_key.as_bytes()).await {
                Ok(kv) => Some(kv),
                Err(store::Error::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let guard = match fencing::guard(fence, current.as_ref()) {
                Ok(guard) => guard,
                Err(e) => {
                    if e.is_rejection() {
                        self.metrics.fenced_write(&lease, false);
                        tracing::info!(
                            lease = %lease,
                            holder = %fence.holder,
                            transitions = fence.transitions,
                            error = %e,
                            "fenced write rejected"
                        );
                    }
                    return Err(e.into());
                }
            };
            match op(Some(guard)).await {
                // Only the Lease's revision is known to have moved: look again.
                Err(store::Error::GuardFailed { .. }) => continue,
                result => {
                    if result.is_ok() {
                        self.metrics.fenced_write(&lease, true);
                    }
                    return Ok(result);
                }
            }
        }
        Err(fencing::Error::Contended {
            lease,
            tries: fencing::MAX_LEASE_TRIES,
        }
        .into())
    }
}

/// The stored form: JSON without resourceVersion.
fn encode(object: &mut Value) -> Result<Bytes, ApiError> {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(object)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("encoding an object: {e}")))
}

/// An object as stored, given back its resourceVersion.
pub fn decode(bytes: &[u8], revision: i64) -> Result<Stored, ApiError> {
    let object: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("a stored object does not parse: {e}")))?;
    Ok(with_revision(object, revision))
}

fn with_revision(mut object: Value, revision: i64) -> Stored {
    meta::set_resource_version(&mut object, revision);
    Stored { object, revision }
}
