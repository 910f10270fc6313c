//! The node heartbeat: a `coordination.k8s.io/v1` Lease per node in `kube-node-lease`,
//! holder = the node, renewTime renewed every `node_lease_renew_interval`, owned by the
//! Node (so it goes when the Node goes). As upstream's lease controller: the lease is
//! created if missing, updated from the cached copy, and read again after a conflict.
//!
//! One task renews every node's lease, spread evenly over the interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use crate::metrics::Metrics;
use crate::state::{NodeState, Shared};

/// The namespace of node leases.
pub const NAMESPACE: &str = "kube-node-lease";

/// Renewals in flight at once.
const CONCURRENCY: usize = 32;
/// Attempts per renewal before waiting for the next round (upstream retries 5 times).
const ATTEMPTS: u32 = 5;
/// The first retry's delay; it doubles each time (upstream's 200 ms onward).
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Why a lease could not be renewed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease of node {node}: {source}")]
    Api {
        node: String,
        #[source]
        source: kube::Error,
    },
}

/// The lease `node` should hold now, from the cached copy if there is one.
pub fn desired(
    cached: Option<&Lease>,
    node: &str,
    node_uid: Option<&str>,
    duration_seconds: i32,
    now: MicroTime,
) -> Lease {
    let mut lease = cached.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(node.to_string()),
            namespace: Some(NAMESPACE.to_string()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(node) {
        // Taking the lease over (from an older holder) counts as a transition.
        if spec.holder_identity.is_some() {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(node.to_string());
        spec.acquire_time = Some(now.clone());
    }
    spec.lease_duration_seconds = Some(duration_seconds);
    spec.renew_time = Some(now);
    if let Some(uid) = node_uid {
        let owned = lease
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Node" && o.uid == uid);
        if !owned {
            lease.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: node.to_string(),
                uid: uid.to_string(),
                ..OwnerReference::default()
            }]);
        }
    }
    lease
}

/// Renews node leases, each from its cached copy.
#[derive(Debug, Default)]
pub struct Renewer {
    cache: Mutex<HashMap<String, Lease>>,
}

impl Renewer {
    fn cached(&self, node: &str) -> Option<Lease> {
        self.lock().get(node).cloned()
    }

    fn store(&self, node: &str, lease: Option<Lease>) {
        let mut cache = self.lock();
        match lease {
            Some(l) => cache.insert(node.to_string(), l),
            None => cache.remove(node),
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        // Nothing panics while holding the lock; a poisoned one is still usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renews `node`'s lease once: update from the cache; on a conflict or no cache,
    /// read it; create it if missing.
    async fn renew_once(&self, shared: &Shared, node: &NodeState) -> Result<(), LeaseError> {
        let api: Api<Lease> = Api::namespaced(shared.client.clone(), NAMESPACE);
        let err = |source| LeaseError::Api {
            node: node.name.clone(),
            source,
        };
        let uid = node.registration().uid.clone();
        let duration = shared.config.node_lease_duration_seconds;
        let cached = match self.cached(&node.name) {
            Some(l) => Some(l),
            None => match api.get_opt(&node.name).await.map_err(err)? {
                Some(l) => Some(l),
                None => {
                    let lease = desired(
                        None,
                        &node.name,
                        uid.as_deref(),
                        duration,
                        crate::time::micro_now(),
                    );
                    match api.create(&PostParams::default(), &lease).await {
                        Ok(created) => {
                            self.store(&node.name, Some(created));
                            return Ok(());
                        }
                        // Someone made it meanwhile: update it below.
                        Err(kube::Error::Api(s)) if s.code == 409 => {
                            api.get_opt(&node.name).await.map_err(err)?
                        }
                        Err(e) => return Err(err(e)),
                    }
                }
            },
        };
        let lease = desired(
            cached.as_ref(),
            &node.name,
            uid.as_deref(),
            duration,
            crate::time::micro_now(),
        );
        match api
            .replace(&node.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.store(&node.name, Some(updated));
                Ok(())
            }
            Err(e) => {
                // Conflict (someone wrote it) or gone: read it afresh next attempt.
                self.store(&node.name, None);
                Err(err(e))
            }
        }
    }

    /// Renews `node`'s lease, retrying with a growing delay.
    pub async fn renew(&self, shared: &Shared, node: &NodeState) {
        let mut delay = RETRY_DELAY;
        for attempt in 1..=ATTEMPTS {
            match self.renew_once(shared, node).await {
                Ok(()) => {
                    Metrics::inc(&shared.metrics.lease_renewals);
                    return;
                }
                Err(e) => {
                    Metrics::inc(&shared.metrics.lease_renewal_errors);
                    if attempt == ATTEMPTS {
                        tracing::warn!(error = %e, "renewing the node lease");
                        return;
                    }
                    tracing::debug!(error = %e, attempt, "renewing the node lease");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

/// Renews every node's lease every `node_lease_renew_interval`, until the process ends.
pub async fn run(shared: Arc<Shared>) {
    let renewer = Renewer::default();
    let interval = shared.config.node_lease_renew_interval;
    loop {
        crate::pace::round(&shared.nodes, interval, CONCURRENCY, |node| {
            let (renewer, shared) = (&renewer, &shared);
            async move { renewer.renew(shared, node).await }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::from_second(second).expect("time"))
    }

    #[test]
    fn a_new_lease() {
        let lease = desired(None, "n1", Some("uid-1"), 40, at(100));
        assert_eq!(lease.metadata.name.as_deref(), Some("n1"));
        assert_eq!(lease.metadata.namespace.as_deref(), Some(NAMESPACE));
        let spec = lease.spec.as_ref().expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(at(100)));
        assert_eq!(spec.acquire_time, Some(at(100)));
        assert_eq!(spec.lease_transitions, None);
        let owners = lease.metadata.owner_references.as_deref().expect("owners");
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].kind.as_str(),
                owners[0].name.as_str(),
                owners[0].uid.as_str()
            ),
            ("Node", "n1", "uid-1")
        );
    }

    #[test]
    fn renewing_keeps_the_rest() {
        let first = desired(None, "n1", None, 40, at(100));
        assert!(first.metadata.owner_references.is_none());
        let mut stored = first.clone();
        stored.metadata.resource_version = Some("7".into());
        let renewed = desired(Some(&stored), "n1", Some("u"), 40, at(110));
        assert_eq!(renewed.metadata.resource_version.as_deref(), Some("7"));
        let spec = renewed.spec.as_ref().expect("spec");
        assert_eq!(spec.renew_time, Some(at(110)));
        assert_eq!(spec.acquire_time, Some(at(100)));
        // The owner is added once the Node's UID is known.
        assert_eq!(
            renewed.metadata.owner_references.as_ref().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn taking_over_counts_a_transition() {
        let mut other = desired(None, "old", None, 40, at(100));
        other.metadata.name = Some("n1".into());
        let taken = desired(Some(&other), "n1", None, 40, at(200));
        let spec = taken.spec.as_ref().expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(spec.acquire_time, Some(at(200)));
    }
}
