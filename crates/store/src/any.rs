//! Enum dispatch over the backends, chosen from a datastore endpoint like k3s's
//! `--datastore-endpoint`: empty means SQLite in the data dir, `http://h:p,http://h:p`
//! means an etcd cluster.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Result, Revision};
use crate::etcd::{EtcdConfig, EtcdStore};
use crate::sqlite::{SqliteConfig, SqliteStore};
use crate::types::{Deleted, Guard, KeyValue, ListPage};
use crate::{Store, WatchStream};

/// Where the store lives.
#[derive(Debug, Clone)]
pub enum DatastoreConfig {
    /// The embedded SQLite file.
    Sqlite(SqliteConfig),
    /// A real etcd cluster.
    Etcd(EtcdConfig),
}

impl DatastoreConfig {
    /// Parses a `--datastore-endpoint` value. `None` or empty: SQLite at
    /// `<data_dir>/db/state.db`. A comma-separated list of `http://` or `https://` URLs:
    /// etcd. Anything else is refused with a one-line reason.
    pub fn from_endpoint(data_dir: &Path, endpoint: Option<&str>) -> Result<Self, String> {
        let endpoint = endpoint.map(str::trim).unwrap_or_default();
        if endpoint.is_empty() {
            return Ok(DatastoreConfig::Sqlite(SqliteConfig::new(
                default_sqlite_path(data_dir),
            )));
        }
        if let Some(path) = endpoint.strip_prefix("sqlite://") {
            return Ok(DatastoreConfig::Sqlite(SqliteConfig::new(path)));
        }
        let endpoints: Vec<String> = endpoint
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = endpoints
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(format!(
                "datastore endpoint {bad:?} is neither sqlite://PATH nor an http(s):// etcd URL"
            ));
        }
        Ok(DatastoreConfig::Etcd(EtcdConfig::new(endpoints)))
    }
}

/// Where the embedded database lives inside a data dir.
pub fn default_sqlite_path(data_dir: &Path) -> PathBuf {
    data_dir.join("db").join("state.db")
}

/// Either backend, behind one type.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// SQLite.
    Sqlite(SqliteStore),
    /// etcd.
    Etcd(EtcdStore),
}

impl AnyStore {
    /// Opens the configured backend.
    pub async fn open(config: DatastoreConfig) -> Result<Self> {
        Ok(match config {
            DatastoreConfig::Sqlite(c) => AnyStore::Sqlite(SqliteStore::open(c).await?),
            DatastoreConfig::Etcd(c) => AnyStore::Etcd(EtcdStore::connect(c).await?),
        })
    }

    /// A short name for logs: `sqlite` or `etcd`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Etcd(_) => "etcd",
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Etcd($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn get(&self, key: &[u8]) -> Result<KeyValue> {
        dispatch!(self, s => s.get(key))
    }

    async fn list(
        &self,
        prefix: &[u8],
        at_revision: Revision,
        limit: usize,
        start_after: Option<&[u8]>,
    ) -> Result<ListPage> {
        dispatch!(self, s => s.list(prefix, at_revision, limit, start_after))
    }

    async fn count(&self, prefix: &[u8]) -> Result<u64> {
        dispatch!(self, s => s.count(prefix))
    }

    async fn create(&self, key: &[u8], value: Bytes, guard: Option<Guard>) -> Result<Revision> {
        dispatch!(self, s => s.create(key, value, guard))
    }

    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_mod_revision: Revision,
        guard: Option<Guard>,
    ) -> Result<Revision> {
        dispatch!(self, s => s.update(key, value, expected_mod_revision, guard))
    }

    async fn delete(
        &self,
        key: &[u8],
        expected_mod_revision: Option<Revision>,
        guard: Option<Guard>,
    ) -> Result<Deleted> {
        dispatch!(self, s => s.delete(key, expected_mod_revision, guard))
    }

    async fn watch(&self, prefix: &[u8], from_revision: Revision) -> Result<WatchStream> {
        dispatch!(self, s => s.watch(prefix, from_revision))
    }

    async fn current_revision(&self) -> Result<Revision> {
        dispatch!(self, s => s.current_revision())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        dispatch!(self, s => s.compact(revision))
    }
}
