//! Each API server's identity Lease, after upstream's: `kube-system/apiserver-<hash>`,
//! labelled `apiserver.kubernetes.io/identity=kube-apiserver`, held by the server's
//! own id and renewed every [`RENEW_INTERVAL`]. A master that dies stops renewing,
//! so its Lease expires after [`LEASE_DURATION_SECONDS`]: that is how `mast
//! cluster-info` tells live masters from gone ones, and how the `kubernetes`
//! Endpoints learn which addresses to drop. Leases expired for longer than
//! [`GC_AFTER`] are deleted.
//!
//! The name hashes the host name and the advertised address, so a master restarted
//! on the same host and port takes its old Lease back instead of leaving one behind.
//! Annotations carry what `cluster-info` shows: the advertised address, the
//! version and the store backend.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::state::AppState;

pub const NAMESPACE: &str = "kube-system";
/// Upstream's label key and value for API server identity Leases.
pub const IDENTITY_LABEL: &str = "apiserver.kubernetes.io/identity";
pub const IDENTITY_VALUE: &str = "kube-apiserver";
/// Where the server is reached (`ip:port`).
pub const ADDRESS_ANNOTATION: &str = "mast.dev/advertise-address";
/// The server's `gitVersion`.
pub const VERSION_ANNOTATION: &str = "mast.dev/version";
/// The server's store backend (`sqlite` or `etcd`).
pub const BACKEND_ANNOTATION: &str = "mast.dev/store-backend";
/// How often a server renews its Lease: one small write every few seconds.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(5);
/// How long a Lease stays valid without renewal: three missed renewals.
pub const LEASE_DURATION_SECONDS: i64 = 15;
/// Expired Leases are deleted this long after they expired.
pub const GC_AFTER: Duration = Duration::from_secs(10 * 60);

/// Who this API server is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The Lease's name, `apiserver-<hash>`.
    pub name: String,
    /// `<name>_<uuid>`: this process.
    pub holder: String,
    pub hostname: String,
    pub advertise: SocketAddr,
    pub version: String,
    pub backend: String,
}

impl Identity {
    /// The identity of a server on this host, advertised at `advertise`.
    pub fn new(advertise: SocketAddr, backend: &str) -> Self {
        let hostname = hostname();
        let name = lease_name(&hostname, advertise);
        Identity {
            holder: format!("{name}_{}", uuid::Uuid::new_v4()),
            name,
            hostname,
            advertise,
            version: crate::discovery::version()["gitVersion"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            backend: backend.to_string(),
        }
    }
}

/// The host's name, as the kernel reports it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// `apiserver-` and a 64-bit FNV-1a hash of the host name and address, in hex: a
/// valid name whatever the host is called, and the same one at every restart.
pub fn lease_name(hostname: &str, advertise: SocketAddr) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{hostname}/{advertise}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("apiserver-{hash:016x}")
}

fn leases() -> Result<&'static api::registry::Resource, ApiError> {
    api::registry::find("coordination.k8s.io", "v1", "leases")
        .ok_or_else(|| ApiError::Internal("leases are not served".to_string()))
}

/// Nanoseconds since the epoch (jiff's own clock needs its `std` feature, which this
/// crate does not ask for).
fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i128::try_from(d.as_nanos()).unwrap_or(0))
        .unwrap_or(0)
}

/// Now, as a `metav1.MicroTime`.
fn micro_now() -> String {
    match k8s_openapi::jiff::Timestamp::from_nanosecond(now_nanos()) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        Err(_) => "1970-01-01T00:00:00.000000Z".to_string(),
    }
}

/// Writes this server's Lease: created if missing, else renewed (and taken over
/// from an earlier process of the same server).
pub async fn renew(state: &AppState, identity: &Identity) -> Result<(), ApiError> {
    let resource = leases()?;
    let key = resource.key(Some(NAMESPACE), &identity.name);
    let now = micro_now();
    let annotations = json!({
        ADDRESS_ANNOTATION: identity.advertise.to_string(),
        VERSION_ANNOTATION: identity.version,
        BACKEND_ANNOTATION: identity.backend,
    });
    match state.objects().get(resource, &key, &identity.name).await {
        Ok(current) => {
            let mut next = current.object.clone();
            let metadata = meta::metadata_mut(&mut next);
            metadata.insert("annotations".into(), annotations);
            let spec = next
                .as_object_mut()
                .map(|o| o.entry("spec").or_insert_with(|| json!({})));
            if let Some(Value::Object(spec)) = spec {
                if spec.get("holderIdentity").and_then(Value::as_str) != Some(&identity.holder) {
                    spec.insert("holderIdentity".into(), json!(identity.holder));
                    spec.insert("acquireTime".into(), json!(now));
                }
                spec.insert("renewTime".into(), json!(now));
                spec.insert("leaseDurationSeconds".into(), json!(LEASE_DURATION_SECONDS));
            }
            // Lost to another writer (only a restarted twin): the next tick retries.
            state.objects().update(&key, next, current.revision).await?;
            Ok(())
        }
        Err(ApiError::NotFound { .. }) => {
            let object = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": identity.name,
                    "namespace": NAMESPACE,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": meta::now(),
                    "labels": {
                        IDENTITY_LABEL: IDENTITY_VALUE,
                        "kubernetes.io/hostname": identity.hostname,
                    },
                    "annotations": annotations,
                },
                "spec": {
                    "holderIdentity": identity.holder,
                    "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                    "acquireTime": now,
                    "renewTime": now,
                },
            });
            match state.objects().create(resource, &key, object).await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// One identity Lease as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub name: String,
    pub address: Option<SocketAddr>,
    /// Seconds since its last renewal, by this server's clock.
    pub silent_for: f64,
    pub duration_seconds: i64,
}

impl Peer {
    pub fn expired(&self) -> bool {
        self.silent_for > self.duration_seconds as f64
    }
}

/// Reads one Lease object as a [`Peer`] at `now` (nanoseconds since the epoch).
pub fn peer(lease: &Value, now: i128) -> Option<Peer> {
    let labels = meta::labels(lease);
    if labels.get(IDENTITY_LABEL).map(String::as_str) != Some(IDENTITY_VALUE) {
        return None;
    }
    let renewed = lease
        .pointer("/spec/renewTime")
        .and_then(Value::as_str)
        .and_then(api::tables::format::parse_time)?;
    Some(Peer {
        name: meta::name(lease).to_string(),
        address: lease
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ADDRESS_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok()),
        silent_for: (now - renewed) as f64 / 1e9,
        duration_seconds: lease
            .pointer("/spec/leaseDurationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(LEASE_DURATION_SECONDS),
    })
}

/// Every API server identity Lease in the store.
pub async fn peers(state: &AppState) -> Result<Vec<Peer>, ApiError> {
    let resource = leases()?;
    let prefix = resource.namespace_prefix(Some(NAMESPACE));
    let now = now_nanos();
    let mut found = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    let mut revision = 0;
    loop {
        let page = state
            .objects()
            .list(&prefix, revision, 500, after.as_deref())
            .await?;
        revision = page.revision;
        found.extend(page.items.iter().filter_map(|(_, s)| peer(&s.object, now)));
        match page.more_after {
            Some(key) => after = Some(key),
            None => return Ok(found),
        }
    }
}

/// Deletes identity Leases that expired more than [`GC_AFTER`] ago.
async fn collect_garbage(state: &AppState) -> Result<(), ApiError> {
    let resource = leases()?;
    for peer in peers(state).await? {
        if peer.silent_for < peer.duration_seconds as f64 + GC_AFTER.as_secs_f64() {
            continue;
        }
        let key = resource.key(Some(NAMESPACE), &peer.name);
        let current = match state.objects().get(resource, &key, &peer.name).await {
            Ok(current) => current,
            Err(ApiError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        // Conditional on the revision read: a Lease renewed meanwhile stays.
        state.objects().delete(&key, current.revision).await?;
        tracing::info!(lease = %peer.name, "deleted an expired API server identity lease");
    }
    Ok(())
}

/// Renews every [`RENEW_INTERVAL`] (and collects expired Leases every few minutes)
/// until `stop` turns true.
pub fn spawn(
    state: AppState,
    identity: Identity,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + RENEW_INTERVAL;
        let mut ticks = tokio::time::interval_at(start, RENEW_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let gc_every = (GC_AFTER.as_secs() / RENEW_INTERVAL.as_secs() / 4).max(1);
        let mut tick: u64 = 0;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = renew(&state, &identity).await {
                tracing::warn!(error = %e, lease = %identity.name, "renewing the API server identity lease");
            }
            tick += 1;
            if tick.is_multiple_of(gc_every)
                && let Err(e) = collect_garbage(&state).await
            {
                tracing::debug!(error = %e, "collecting expired API server identity leases");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_valid() {
        let a: SocketAddr = "10.0.0.1:6443".parse().expect("an address");
        let b: SocketAddr = "10.0.0.2:6443".parse().expect("an address");
        let name = lease_name("host", a);
        assert_eq!(name, lease_name("host", a));
        assert_ne!(name, lease_name("host", b));
        assert_ne!(name, lease_name("other", a));
        assert_eq!(name.len(), "apiserver-".len() + 16);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn peers_expire_after_their_duration() {
        let lease = json!({
            "metadata": {"name": "apiserver-1", "labels": {IDENTITY_LABEL: IDENTITY_VALUE},
                         "annotations": {ADDRESS_ANNOTATION: "10.0.0.1:6443"}},
            "spec": {"renewTime": "2026-01-01T00:00:00.000000Z", "leaseDurationSeconds": 15},
        });
        let renewed = api::tables::format::parse_time("2026-01-01T00:00:00Z").expect("a time");
        let fresh = peer(&lease, renewed + 10_000_000_000).expect("an identity lease");
        assert!(!fresh.expired());
        assert_eq!(
            fresh.address,
            Some("10.0.0.1:6443".parse().expect("an address"))
        );
        let stale = peer(&lease, renewed + 16_000_000_000).expect("an identity lease");
        assert!(stale.expired());
        let other = json!({"metadata": {"name": "kube-scheduler"}, "spec": {}});
        assert_eq!(peer(&other, renewed), None);
    }
}
