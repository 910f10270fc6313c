//! What an elector elects for, and as whom.

use std::time::Duration;

use api::fence::{Fence, FenceError};

/// Namespace of the control plane's Leases, as upstream.
pub const DEFAULT_NAMESPACE: &str = "kube-system";
/// How long a Lease holds without renewal. Short, for failover within 3 s of a crash.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(2);
/// How long a leader keeps leading without a successful renewal.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_millis(1500);
/// How often a leader renews and a follower tries to acquire.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_millis(250);

/// Upstream requires the renew deadline to exceed the retry period by this factor
/// (client-go's `JitterFactor`), so a leader gets more than one try per deadline.
const JITTER_FACTOR: f64 = 1.2;

/// Why an election cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A duration or the relation between durations is not usable.
    #[error("invalid election timing: {reason}")]
    Timing { reason: String },
    /// The Lease or identity cannot travel in a fence header (empty, spaces, `/` in
    /// a namespace or name, non-ASCII).
    #[error("lease {namespace}/{name} with identity {identity:?} cannot be fenced: {source}")]
    Fence {
        namespace: String,
        name: String,
        identity: String,
        #[source]
        source: FenceError,
    },
}

/// One election: which Lease, as whom, and how fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease (`kube-scheduler`, `kube-controller-manager`).
    pub name: String,
    /// This candidate's `holderIdentity`; unique per process.
    pub identity: String,
    /// How long followers wait, from the last change they saw, before taking over.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Pause between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// The Lease `name` in `kube-system`, as [`default_identity`], with the default timing
    /// (lease 2 s, renew deadline 1.5 s, retry period 250 ms).
    pub fn new(name: &str) -> Self {
        ElectionConfig {
            namespace: DEFAULT_NAMESPACE.to_string(),
            name: name.to_string(),
            identity: default_identity(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// Checks upstream's rules (lease duration > renew deadline > 1.2 × retry period, all
    /// positive), that the Lease is at least a second (its duration travels in whole
    /// seconds), and that the fence header can carry the Lease and identity.
    pub fn validate(&self) -> Result<(), Error> {
        let timing = |reason: String| Err(Error::Timing { reason });
        if self.retry_period.is_zero() {
            return timing("retry period must be positive".to_string());
        }
        if self.lease_duration < Duration::from_secs(1) {
            return timing(format!(
                "lease duration {:?} must be at least 1s",
                self.lease_duration
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return timing(format!(
                "lease duration {:?} must be greater than the renew deadline {:?}",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return timing(format!(
                "renew deadline {:?} must be greater than {JITTER_FACTOR} x the retry period {:?}",
                self.renew_deadline, self.retry_period
            ));
        }
        self.initial_fence().map(|_| ())
    }

    /// `spec.leaseDurationSeconds`: the lease duration rounded up to whole seconds, so
    /// that followers never wait less than configured.
    pub fn lease_duration_seconds(&self) -> i32 {
        let millis = self.lease_duration.as_millis();
        i32::try_from(millis.div_ceil(1000)).unwrap_or(i32::MAX)
    }

    /// The fence this candidate carries before it ever led: transitions 0.
    pub(crate) fn initial_fence(&self) -> Result<Fence, Error> {
        Fence::new(&self.namespace, &self.name, 0, &self.identity).map_err(|source| Error::Fence {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            identity: self.identity.clone(),
            source,
        })
    }
}

/// `<hostname>_<uuid v4>`, as upstream's components name themselves: the hostname tells
/// people which machine leads, the uuid keeps two processes on one machine apart.
pub fn default_identity() -> String {
    format!("{}_{}", hostname(), uuid::Uuid::new_v4())
}

fn hostname() -> String {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let from_env = || std::env::var("HOSTNAME").ok();
    from_kernel
        .or_else(from_env)
        .map(|h| {
            // Only what a header value can carry; anything else would break the fence.
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_upstream_shaped() {
        let config = ElectionConfig::new("kube-scheduler");
        assert_eq!(config.namespace, "kube-system");
        assert_eq!(config.lease_duration, Duration::from_secs(2));
        assert_eq!(config.renew_deadline, Duration::from_millis(1500));
        assert_eq!(config.retry_period, Duration::from_millis(250));
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.lease_duration_seconds(), 2);
        let (host, uuid) = config.identity.rsplit_once('_').expect("host_uuid");
        assert!(!host.is_empty());
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{uuid}");
        assert_ne!(default_identity(), default_identity());
    }

    #[test]
    fn rejects_bad_timing() {
        let base = ElectionConfig::new("x");
        let with = |lease: u64, renew: u64, retry: u64| ElectionConfig {
            lease_duration: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(renew),
            retry_period: Duration::from_millis(retry),
            ..base.clone()
        };
        for (lease, renew, retry) in [
            (2000, 2000, 250), // lease must exceed renew
            (2000, 300, 250),  // renew must exceed 1.2 * retry
            (900, 500, 100),   // lease under a second
            (2000, 1500, 0),   // retry zero
            (2000, 0, 0),
        ] {
            assert!(
                matches!(
                    with(lease, renew, retry).validate(),
                    Err(Error::Timing { .. })
                ),
                "{lease}/{renew}/{retry} accepted"
            );
        }
        assert_eq!(with(1000, 400, 300).validate(), Ok(()));
    }

    #[test]
    fn rejects_unfenceable_names() {
        let mut config = ElectionConfig::new("kube-scheduler");
        config.identity = "has space".to_string();
        assert!(matches!(config.validate(), Err(Error::Fence { .. })));
        let mut config = ElectionConfig::new("kube-scheduler");
        config.identity = String::new();
        assert!(matches!(config.validate(), Err(Error::Fence { .. })));
    }

    #[test]
    fn lease_seconds_round_up() {
        let mut config = ElectionConfig::new("x");
        config.lease_duration = Duration::from_millis(2001);
        assert_eq!(config.lease_duration_seconds(), 3);
        config.lease_duration = Duration::from_secs(15);
        assert_eq!(config.lease_duration_seconds(), 15);
    }
}
