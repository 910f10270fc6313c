//! The etcd backend: a real etcd cluster through `etcd-client`.
//!
//! Keys map one to one onto etcd keys and revisions are etcd's own, so a mast cluster's
//! data in etcd looks like any Kubernetes cluster's. Compare-and-swap and the fencing
//! guard are etcd transactions: the compares run atomically with the write on the etcd
//! leader, and on failure the `else` branch reads the keys involved so the error can say
//! which compare lost and what the revision is now.
//!
//! Availability: the client balances over every endpoint and reconnects on its own when a
//! member dies; reads are retried briefly on retryable errors, writes are not (a write
//! whose answer was lost may have applied, and only the caller can decide how to
//! recover); watches resume from their next revision after a broken stream (see
//! [`watch`]).

mod errors;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, Txn,
    TxnOp, TxnOpResponse, TxnResponse, WatchClient, WatchOptions,
};

use self::errors::map_error;
use crate::error::{Error, Result, Revision, key_text};
use crate::keys::{key_successor, prefix_end};
use crate::types::{Deleted, Guard, KeyValue, ListPage};
use crate::{Store, WatchStream, check_value_size};

/// Settings for [`EtcdStore::connect`].
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs of the members, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// How long `connect` keeps trying to reach the cluster.
    pub connect_timeout: Duration,
    /// Deadline for each unary request.
    pub request_timeout: Duration,
}

impl EtcdConfig {
    /// Defaults: 10 s to connect, 10 s per request.
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdConfig {
            endpoints,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Larger than any response we expect: a full page of 1.5 MiB values.
const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// How often a read is tried before a retryable error reaches the caller.
const READ_ATTEMPTS: u32 = 4;

/// The etcd-backed [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Clients>,
}

/// The clients every clone shares. Each call clones the one it needs (a handle on the
/// same balanced channel), because `etcd-client` methods take `&mut self`.
struct Clients {
    client: Client,
    kv: KvClient,
    watch: WatchClient,
    endpoints: Arc<[String]>,
    request_timeout: Duration,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.endpoints)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects and checks that the cluster answers, retrying until the connect timeout.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        if config.endpoints.is_empty() {
            return Err(Error::Backend("no etcd endpoints given".into()));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
            .with_keep_alive_while_idle(true)
            // Watches on a member cut off from the leader get canceled instead of going
            // silent; the watch then resumes on another member.
            .with_require_leader(true);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(map_error)?;
        let clients = Clients {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
            client,
            endpoints: config.endpoints.into(),
            request_timeout: config.request_timeout,
        };
        let store = EtcdStore {
            inner: Arc::new(clients),
        };
        let deadline = tokio::time::Instant::now() + config.connect_timeout;
        loop {
            match store.current_revision().await {
                Ok(_) => return Ok(store),
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(Error::Unavailable(format!(
                        "cannot reach etcd at {}: {e}",
                        store.inner.endpoints.join(",")
                    )));
                }
            }
        }
    }

    /// The underlying client, for maintenance calls (status, defragment) in tools.
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// Runs one unary request under the request deadline.
    async fn call<T>(
        &self,
        request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.inner.request_timeout, request).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(Error::Unavailable(format!(
                "etcd request timed out after {:?}",
                self.inner.request_timeout
            ))),
        }
    }

    /// Runs a read, retrying retryable failures with a short backoff.
    async fn read<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut backoff = Duration::from_millis(50);
        for n in 1.. {
            match self.call(attempt(self.inner.kv.clone())).await {
                Err(e) if e.is_retryable() && n < READ_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt = n, "etcd read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on the last attempt")
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        let mut kv = self.inner.kv.clone();
        self.call(kv.txn(txn)).await
    }

    /// Where compaction stands. etcd's errors do not say, but a watch from revision 1 is
    /// canceled with the compact revision; used only on the error path.
    async fn compact_revision(&self) -> Revision {
        let mut client = self.inner.watch.clone();
        let probe = async {
            let mut stream = client
                .watch(
                    b"\0".to_vec(),
                    Some(WatchOptions::new().with_start_revision(1)),
                )
                .await
                .ok()?;
            while let Ok(Some(resp)) = stream.message().await {
                if resp.canceled() {
                    return Some(resp.compact_revision());
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Fills in the revisions etcd's message left out.
    async fn complete_error(&self, e: Error, requested: Revision) -> Error {
        match e {
            Error::Compacted { .. } => Error::Compacted {
                requested_revision: requested,
                compact_revision: self.compact_revision().await,
            },
            Error::FutureRevision { .. } => Error::FutureRevision {
                requested_revision: requested,
                current_revision: self.current_revision().await.unwrap_or(0),
            },
            other => other,
        }
    }

    /// The guard's compare, if any.
    fn guard_compare(guard: Option<&Guard>) -> Vec<Compare> {
        guard
            .map(|g| Compare::mod_revision(g.key.to_vec(), CompareOp::Equal, g.mod_revision))
            .into_iter()
            .collect()
    }

    /// After a failed transaction whose `else` branch read `key` and then the guard key:
    /// the guard's error if the guard lost, otherwise the key's current state.
    fn failed_compare(
        resp: &TxnResponse,
        guard: Option<&Guard>,
    ) -> std::result::Result<Option<KeyValue>, Error> {
        let reads: Vec<Option<KeyValue>> = resp
            .op_responses()
            .into_iter()
            .map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().map(to_key_value),
                _ => None,
            })
            .collect();
        if let Some(guard) = guard {
            let current = reads
                .get(1)
                .cloned()
                .flatten()
                .map_or(0, |kv| kv.mod_revision);
            if current != guard.mod_revision {
                return Err(Error::GuardFailed {
                    key: key_text(&guard.key),
                    expected_revision: guard.mod_revision,
                    current_revision: current,
                });
            }
        }
        Ok(reads.into_iter().next().flatten())
    }

    /// Puts `value` at `key` if `compares` and the guard hold. `Ok(Err(current))` when a
    /// compare on the key failed, with the key as it is now (`None`: absent).
    async fn put_if(
        &self,
        key: &[u8],
        value: Bytes,
        mut compares: Vec<Compare>,
        guard: Option<&Guard>,
    ) -> Result<std::result::Result<Revision, Option<KeyValue>>> {
        check_value_size(key, &value)?;
        let size = value.len();
        compares.extend(Self::guard_compare(guard));
        let txn = Txn::new()
            .when(compares)
            .and_then(vec![TxnOp::put(key.to_vec(), value.to_vec(), None)])
            .or_else(Self::else_reads(key, guard));
        let resp = self.txn(txn).await.map_err(|e| with_key(e, key, size))?;
        if resp.succeeded() {
            return header_revision(&resp).map(Ok);
        }
        Ok(Err(Self::failed_compare(&resp, guard)?))
    }

    fn else_reads(key: &[u8], guard: Option<&Guard>) -> Vec<TxnOp> {
        let mut ops = vec![TxnOp::get(key.to_vec(), None)];
        if let Some(guard) = guard {
            ops.push(TxnOp::get(guard.key.to_vec(), None));
        }
        ops
    }
}

fn to_key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: Bytes::copy_from_slice(kv.key()),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

fn header_revision(resp: &TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::Backend("etcd transaction response without header".into()))
}

/// The key range of `prefix` starting at `lower`, as etcd range options. etcd cannot
/// take an empty key, so the empty prefix starts at the smallest key, `\0`.
fn range_options(prefix: &[u8], options: GetOptions) -> GetOptions {
    match prefix_end(prefix) {
        Some(end) => options.with_range(end),
        None => options.with_from_key(),
    }
}

fn range_start(lower: &[u8]) -> Vec<u8> {
    if lower.is_empty() {
        vec![0]
    } else {
        lower.to_vec()
    }
}

impl Store for EtcdStore {
    async fn get(&self, key: &[u8]) -> Result<KeyValue> {
        let resp = self
            .read(|mut kv| {
                let key = key.to_vec();
                async move { kv.get(key, None).await }
            })
            .await?;
        resp.kvs()
            .first()
            .map(to_key_value)
            .ok_or_else(|| Error::NotFound { key: key_text(key) })
    }

    async fn list(
        &self,
        prefix: &[u8],
        at_revision: Revision,
        limit: usize,
        start_after: Option<&[u8]>,
    ) -> Result<ListPage> {
        let mut lower = prefix.to_vec();
        if let Some(after) = start_after {
            lower = lower.max(key_successor(after));
        }
        let empty = prefix_end(prefix).is_some_and(|end| lower >= end);
        let mut options = GetOptions::new();
        if at_revision > 0 {
            options = options.with_revision(at_revision);
        }
        if empty {
            // Nothing can match, but the revision must still be valid: read it cheaply.
            options = options.with_count_only().with_limit(1);
        } else if limit > 0 {
            options = options.with_limit(limit as i64);
        }
        let options = range_options(prefix, options);
        let start = range_start(if empty { prefix } else { &lower });
        let result = self
            .read(|mut kv| {
                let (start, options) = (start.clone(), options.clone());
                async move { kv.get(start, Some(options)).await }
            })
            .await;
        let resp = match result {
            Ok(resp) => resp,
            Err(e) => return Err(self.complete_error(e, at_revision).await),
        };
        let revision = if at_revision > 0 {
            at_revision
        } else {
            resp.header().map_or(0, |h| h.revision())
        };
        if empty {
            return Ok(ListPage {
                items: Vec::new(),
                revision,
                more: false,
            });
        }
        Ok(ListPage {
            items: resp.kvs().iter().map(to_key_value).collect(),
            revision,
            more: resp.more(),
        })
    }

    async fn count(&self, prefix: &[u8]) -> Result<u64> {
        let options = range_options(prefix, GetOptions::new().with_count_only());
        let start = range_start(prefix);
        let resp = self
            .read(|mut kv| {
                let (start, options) = (start.clone(), options.clone());
                async move { kv.get(start, Some(options)).await }
            })
            .await?;
        Ok(u64::try_from(resp.count()).unwrap_or(0))
    }

    async fn create(&self, key: &[u8], value: Bytes, guard: Option<Guard>) -> Result<Revision> {
        let absent = Compare::create_revision(key.to_vec(), CompareOp::Equal, 0);
        match self
            .put_if(key, value, vec![absent], guard.as_ref())
            .await?
        {
            Ok(revision) => Ok(revision),
            Err(_) => Err(Error::AlreadyExists { key: key_text(key) }),
        }
    }

    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected_mod_revision: Revision,
        guard: Option<Guard>,
    ) -> Result<Revision> {
        // `version > 0` keeps an expected revision of 0 from creating a missing key.
        let compares = vec![
            Compare::version(key.to_vec(), CompareOp::Greater, 0),
            Compare::mod_revision(key.to_vec(), CompareOp::Equal, expected_mod_revision),
        ];
        match self.put_if(key, value, compares, guard.as_ref()).await? {
            Ok(revision) => Ok(revision),
            Err(None) => Err(Error::NotFound { key: key_text(key) }),
            Err(Some(current)) => Err(Error::Conflict {
                key: key_text(key),
                expected_revision: expected_mod_revision,
                current_revision: current.mod_revision,
            }),
        }
    }

    async fn delete(
        &self,
        key: &[u8],
        expected_mod_revision: Option<Revision>,
        guard: Option<Guard>,
    ) -> Result<Deleted> {
        let mut compares = vec![Compare::version(key.to_vec(), CompareOp::Greater, 0)];
        if let Some(expected) = expected_mod_revision {
            compares.push(Compare::mod_revision(
                key.to_vec(),
                CompareOp::Equal,
                expected,
            ));
        }
        compares.extend(Self::guard_compare(guard.as_ref()));
        let txn = Txn::new()
            .when(compares)
            .and_then(vec![TxnOp::delete(
                key.to_vec(),
                Some(etcd_client::DeleteOptions::new().with_prev_key()),
            )])
            .or_else(Self::else_reads(key, guard.as_ref()));
        let resp = self.txn(txn).await?;
        if resp.succeeded() {
            let revision = header_revision(&resp)?;
            let prev = resp.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().map(to_key_value),
                _ => None,
            });
            return match prev {
                Some(prev) => Ok(Deleted { revision, prev }),
                None => Err(Error::Backend(format!(
                    "etcd delete of {:?} returned no previous value",
                    key_text(key)
                ))),
            };
        }
        match Self::failed_compare(&resp, guard.as_ref())? {
            None => Err(Error::NotFound { key: key_text(key) }),
            Some(current) => Err(Error::Conflict {
                key: key_text(key),
                expected_revision: expected_mod_revision.unwrap_or(0),
                current_revision: current.mod_revision,
            }),
        }
    }

    async fn watch(&self, prefix: &[u8], from_revision: Revision) -> Result<WatchStream> {
        if from_revision > 0 {
            // Report compaction from the call, as the SQLite backend does. A future start
            // revision is fine for a watch: it simply waits.
            let options = GetOptions::new()
                .with_revision(from_revision)
                .with_count_only()
                .with_limit(1);
            let start = range_start(prefix);
            let checked = self
                .read(|mut kv| {
                    let (start, options) = (start.clone(), options.clone());
                    async move { kv.get(start, Some(options)).await }
                })
                .await;
            match checked {
                Ok(_) | Err(Error::FutureRevision { .. }) => {}
                Err(e) => return Err(self.complete_error(e, from_revision).await),
            }
        }
        watch::start(self.inner.watch.clone(), prefix, from_revision).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .read(|mut kv| async move {
                kv.get(b"\0".to_vec(), Some(GetOptions::new().with_count_only()))
                    .await
            })
            .await?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::Backend("etcd response without header".into()))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut kv = self.inner.kv.clone();
        let result = self
            .call(kv.compact(revision, Some(CompactionOptions::new().with_physical())))
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.complete_error(e, revision).await),
        }
    }
}

/// Puts the key and size into a size error etcd raised without them.
fn with_key(e: Error, key: &[u8], size: usize) -> Error {
    match e {
        Error::TooLarge { limit, .. } => Error::TooLarge {
            key: key_text(key),
            size,
            limit,
        },
        other => other,
    }
}
