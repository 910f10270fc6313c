//! The election protocol: client-go's `LeaderElector` over a `LeaseLock`, as an explicit
//! state machine.
//!
//! `step` makes one bounded attempt from a `State` and says what changed and when
//! to try next; [`Elector::run`] loops over it, publishes `leading` and the fence, and
//! releases the Lease on shutdown. Differences from upstream, on purpose:
//! - a leader that misses its renew deadline steps down and keeps competing instead of
//!   exiting (the fence keeps a late write from a deposed leader harmless);
//! - a leader renews by replacing the Lease it last wrote (no read first), reading only
//!   when that conflicts;
//! - no jitter on retries, so timing in tests is exact.

use std::future::Future;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::{Duration, Instant, sleep_until, timeout_at};
use tracing::Instrument;

use crate::config::{ElectionConfig, Error};
use crate::fence::FenceSlot;
use crate::lease::{KubeLeases, LeaseApi, LeaseError};

/// A Lease as last read, and the local monotonic time this elector first saw its
/// current spec (client-go's `observedTime`). Expiry is judged on that, never on the
/// Lease's `renewTime`, so clock skew between machines cannot shorten a lease.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    lease: Lease,
    seen: Instant,
}

/// Where an elector stands.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// Not leading; `observed` is the Lease as last read, if any.
    Following { observed: Option<Observed> },
    /// Leading: `lease` is what this elector last wrote (its resourceVersion is what the
    /// next renewal replaces), `renewed` the local time that write was sent. Sent, not
    /// answered: other candidates start their clocks no earlier than the write landed,
    /// so stepping down at `renewed + renew_deadline` is always before they take over.
    Leading { lease: Lease, renewed: Instant },
}

/// A change the run loop publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The acquiring write succeeded; the Lease now says `transitions`.
    Acquired { transitions: i32 },
    /// Leadership ended for `reason`.
    Lost { reason: &'static str },
}

/// What one [`step`] did.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) state: State,
    pub(crate) event: Option<Event>,
    /// When to step again.
    pub(crate) next: Instant,
}

fn holder(lease: &Lease) -> &str {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or("")
}

/// `leaseTransitions`, absent counting as 0 (a Lease written by another client may omit it)
/// and never negative, so that it always makes a valid fence.
fn transitions(lease: &Lease) -> i32 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0)
        .max(0)
}

/// How long a holder's Lease lasts from when it was seen: the Lease's own
/// `leaseDurationSeconds` (as upstream; a released Lease says 1), else ours.
fn duration(lease: &Lease, config: &ElectionConfig) -> Duration {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(config.lease_duration, Duration::from_secs)
}

/// The Lease this candidate writes to hold it, over `current` (None: creating it).
/// Transitions count every change of holder, including from nobody; a holder renewing
/// keeps its acquire time and count.
fn held_by_us(config: &ElectionConfig, current: Option<&Lease>) -> Lease {
    let now = MicroTime(Timestamp::now());
    let (metadata, acquire_time, lease_transitions) = match current {
        None => (
            ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            now.clone(),
            0,
        ),
        Some(lease) if holder(lease) == config.identity => (
            lease.metadata.clone(),
            lease
                .spec
                .as_ref()
                .and_then(|s| s.acquire_time.clone())
                .unwrap_or_else(|| now.clone()),
            transitions(lease),
        ),
        Some(lease) => (
            lease.metadata.clone(),
            now.clone(),
            transitions(lease).saturating_add(1),
        ),
    };
    let base = current.and_then(|l| l.spec.clone()).unwrap_or_default();
    Lease {
        metadata,
        spec: Some(LeaseSpec {
            holder_identity: Some(config.identity.clone()),
            lease_duration_seconds: Some(config.lease_duration_seconds()),
            acquire_time: Some(acquire_time),
            renew_time: Some(now),
            lease_transitions: Some(lease_transitions),
            ..base
        }),
    }
}

/// The Lease as released: nobody holds it and it lasts a second (client-go's
/// `ReleaseOnCancel`), so followers take it on their next attempt.
fn released(lease: &Lease) -> Lease {
    let now = MicroTime(Timestamp::now());
    let base = lease.spec.clone().unwrap_or_default();
    Lease {
        metadata: lease.metadata.clone(),
        spec: Some(LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions(lease)),
            ..base
        }),
    }
}

/// One attempt from `state` at local time `now`; every call inside is bounded, so a
/// hung API server cannot stall an elector past its renew deadline.
pub(crate) async fn step<A: LeaseApi>(
    api: &A,
    config: &ElectionConfig,
    state: State,
    now: Instant,
) -> Step {
    match state {
        State::Leading { lease, renewed } => renew(api, config, lease, renewed, now).await,
        State::Following { observed } => {
            let attempt = try_acquire(api, config, observed.clone(), now);
            match timeout_at(now + config.renew_deadline, attempt).await {
                Ok(step) => step,
                Err(_) => {
                    tracing::debug!(after = ?config.renew_deadline, "lease attempt timed out");
                    Step {
                        state: State::Following { observed },
                        event: None,
                        next: Instant::now() + config.retry_period,
                    }
                }
            }
        }
    }
}

async fn renew<A: LeaseApi>(
    api: &A,
    config: &ElectionConfig,
    lease: Lease,
    renewed: Instant,
    now: Instant,
) -> Step {
    let deadline = renewed + config.renew_deadline;
    let lost = |reason, observed| Step {
        state: State::Following { observed },
        event: Some(Event::Lost { reason }),
        next: Instant::now() + config.retry_period,
    };
    // Retrying a failed renewal must not overshoot the deadline.
    let keep = |lease, renewed| Step {
        state: State::Leading { lease, renewed },
        event: None,
        next: (Instant::now() + config.retry_period).min(deadline),
    };
    if now >= deadline {
        return lost("no successful renewal within the renew deadline", None);
    }
    let attempt = api.replace(held_by_us(config, Some(&lease)));
    match timeout_at(deadline, attempt).await {
        Ok(Ok(renewed_lease)) => keep(renewed_lease, now),
        Ok(Err(LeaseError::Conflict { .. })) => {
            // Someone wrote the Lease; it may still be ours (a renewal that timed out
            // but landed), or another candidate took it.
            match timeout_at(deadline, api.get()).await {
                Ok(Ok(Some(current)))
                    if holder(&current) == config.identity
                        && transitions(&current) == transitions(&lease) =>
                {
                    Step {
                        state: State::Leading {
                            lease: current,
                            renewed,
                        },
                        event: None,
                        // Renew at once with the fresh resourceVersion.
                        next: Instant::now(),
                    }
                }
                Ok(Ok(current)) => lost(
                    "another candidate holds the lease",
                    current.map(|lease| Observed {
                        lease,
                        seen: Instant::now(),
                    }),
                ),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "renewing the lease failed");
                    keep(lease, renewed)
                }
                Err(_) => lost("no successful renewal within the renew deadline", None),
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "renewing the lease failed");
            keep(lease, renewed)
        }
        Err(_) => lost("no successful renewal within the renew deadline", None),
    }
}

async fn try_acquire<A: LeaseApi>(
    api: &A,
    config: &ElectionConfig,
    observed: Option<Observed>,
    now: Instant,
) -> Step {
    let follow = |observed| Step {
        state: State::Following { observed },
        event: None,
        next: Instant::now() + config.retry_period,
    };
    let acquired = |lease: Lease, sent| Step {
        event: Some(Event::Acquired {
            transitions: transitions(&lease),
        }),
        state: State::Leading {
            lease,
            renewed: sent,
        },
        next: Instant::now() + config.retry_period,
    };
    let current = match api.get().await {
        Ok(Some(current)) => current,
        Ok(None) => {
            let sent = Instant::now();
            return match api.create(held_by_us(config, None)).await {
                Ok(lease) => acquired(lease, sent),
                // Another candidate created it first; read it next time.
                Err(LeaseError::Conflict { .. }) => follow(observed),
                Err(error) => {
                    tracing::debug!(%error, "creating the lease failed");
                    follow(observed)
                }
            };
        }
        Err(error) => {
            tracing::debug!(%error, "reading the lease failed");
            return follow(observed);
        }
    };
    let seen = match &observed {
        Some(o) if o.lease.spec == current.spec => o.seen,
        _ => now,
    };
    let observed = Observed {
        lease: current,
        seen,
    };
    let current = &observed.lease;
    let other = holder(current);
    if !other.is_empty()
        && other != config.identity
        && now < observed.seen + duration(current, config)
    {
        return follow(Some(observed));
    }
    let sent = Instant::now();
    match api.replace(held_by_us(config, Some(current))).await {
        Ok(lease) => acquired(lease, sent),
        // Someone else wrote between our read and write: they won this round.
        Err(LeaseError::Conflict { .. }) => follow(Some(observed)),
        Err(error) => {
            tracing::debug!(%error, "acquiring the lease failed");
            follow(Some(observed))
        }
    }
}

/// Hands the Lease over: writes it released if this elector holds it. `known` is the
/// Lease as last written (a leader), or `None` to read it first (a follower whose
/// acquiring write may have landed while it was being cancelled). Returns the released
/// Lease's transitions, or `None` if there was nothing of ours to release.
async fn release<A: LeaseApi>(
    api: &A,
    config: &ElectionConfig,
    known: Option<Lease>,
) -> Result<Option<i32>, LeaseError> {
    let mut lease = match known {
        Some(lease) => lease,
        None => match api.get().await? {
            Some(lease) if holder(&lease) == config.identity => lease,
            _ => return Ok(None),
        },
    };
    // Two tries: a renewal cancelled mid-flight may have landed and moved the
    // resourceVersion on; then the Lease read back is still ours.
    for _ in 0..2 {
        match api.replace(released(&lease)).await {
            Ok(done) => return Ok(Some(transitions(&done))),
            Err(LeaseError::Conflict { .. }) => match api.get().await? {
                Some(current) if holder(&current) == config.identity => lease = current,
                _ => return Ok(None),
            },
            Err(error) => return Err(error),
        }
    }
    Err(LeaseError::Conflict { name: api.key() })
}

/// Competes for one Lease until told to stop; see the crate docs.
#[derive(Debug)]
pub struct Elector<A = KubeLeases> {
    api: A,
    config: ElectionConfig,
    leading: watch::Sender<bool>,
    slot: FenceSlot,
}

impl Elector {
    /// An elector for `config`'s Lease through `client`. The client must not itself be
    /// fenced: the Lease writes are what a fence is checked against.
    pub fn new(client: kube::Client, config: ElectionConfig) -> Result<Self, Error> {
        let api = KubeLeases::new(client, &config.namespace, &config.name);
        Elector::with_api(api, config)
    }
}

impl<A: LeaseApi> Elector<A> {
    /// An elector over any [`LeaseApi`] (tests use an in-memory one).
    pub fn with_api(api: A, config: ElectionConfig) -> Result<Self, Error> {
        config.validate()?;
        let slot = FenceSlot::new(config.initial_fence()?);
        let (leading, _) = watch::channel(false);
        Ok(Elector {
            api,
            config,
            leading,
            slot,
        })
    }

    /// Whether this elector leads now. Goes true only after the acquiring write
    /// succeeded (and after the fence was updated), false as soon as leadership is in
    /// doubt.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// The fence this elector's component writes with.
    pub fn fence(&self) -> FenceSlot {
        self.slot.clone()
    }

    /// The election this elector runs.
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// Runs until `shutdown` resolves; then, if leading, sets `leading` false and
    /// releases the Lease at once (holderIdentity cleared, leaseDurationSeconds 1, like
    /// client-go's `ReleaseOnCancel`), so a follower takes over on its next attempt.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let span = tracing::info_span!(
            "election",
            lease = %format!("{}/{}", self.config.namespace, self.config.name),
            identity = %self.config.identity,
        );
        self.run_inner(shutdown).instrument(span).await;
    }

    async fn run_inner(self, shutdown: impl Future<Output = ()>) {
        let Elector {
            api,
            config,
            leading,
            slot,
        } = self;
        tokio::pin!(shutdown);
        let mut state = State::Following { observed: None };
        // Whether shutdown cancelled a step half-way (a write may have landed).
        let mut interrupted = false;
        loop {
            let outcome = tokio::select! {
                biased;
                () = &mut shutdown => {
                    interrupted = true;
                    break;
                }
                outcome = step(&api, &config, state.clone(), Instant::now()) => outcome,
            };
            state = outcome.state;
            match outcome.event {
                Some(Event::Acquired { transitions }) => {
                    match api::fence::Fence::new(
                        &config.namespace,
                        &config.name,
                        transitions,
                        &config.identity,
                    ) {
                        // The fence first: work starts on `leading`, and must carry it.
                        Ok(fence) => slot.set(fence),
                        Err(error) => {
                            // Unreachable after validate(); never lead without a fence.
                            tracing::error!(%error, "cannot fence; not leading");
                            continue;
                        }
                    }
                    leading.send_replace(true);
                    tracing::info!(transitions, "became leader");
                }
                Some(Event::Lost { reason }) => {
                    leading.send_replace(false);
                    tracing::info!(
                        reason,
                        transitions = slot.current().transitions,
                        "lost leadership"
                    );
                }
                None => {}
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = sleep_until(outcome.next) => {}
            }
        }
        // Stop leader work before the Lease is up for grabs.
        let was_leading = leading.send_replace(false);
        let known = match state {
            State::Leading { lease, .. } => Some(lease),
            State::Following { .. } if interrupted => None,
            State::Following { .. } => return,
        };
        let deadline = Instant::now() + config.renew_deadline;
        match timeout_at(deadline, release(&api, &config, known)).await {
            Ok(Ok(Some(transitions))) => {
                tracing::info!(transitions, was_leading, "released lease");
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "releasing the lease failed"),
            Err(_) => tracing::warn!(
                after = ?config.renew_deadline,
                "releasing the lease timed out"
            ),
        }
    }
}
