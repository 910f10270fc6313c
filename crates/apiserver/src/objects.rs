//! API objects in the store: JSON values under `/registry/…` keys, stored without their
//! resourceVersion (the store revision is the resourceVersion) and given it back on
//! every read.

use api::registry::Resource;
use bytes::Bytes;
use serde_json::Value;
use store::{AnyStore, Store};

use crate::error::ApiError;
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
        Self { store, metrics }
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
        self.metrics.store_call("create");
        let bytes = encode(&mut object)?;
        match self.store.create(key.as_bytes(), bytes, None).await {
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
        self.metrics.store_call("update");
        let bytes = encode(&mut object)?;
        match self
            .store
            .update(key.as_bytes(), bytes, expected, None)
            .await
        {
            Ok(revision) => Ok(Some(with_revision(object, revision))),
            Err(store::Error::Conflict { .. } | store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the object if it is still at `expected`; `Ok(None)` if it moved or went.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<Option<i64>, ApiError> {
        self.metrics.store_call("delete");
        match self
            .store
            .delete(key.as_bytes(), Some(expected), None)
            .await
        {
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
