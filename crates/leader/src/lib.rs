//! Leader election for mast's control-plane components, through
//! `coordination.k8s.io/v1` Leases as upstream's client-go does it, plus the client side
//! of write fencing.
//!
//! Layout:
//! - [`config`]: [`ElectionConfig`] (which Lease, as whom, how fast) and
//!   [`default_identity`].
//! - [`lease`]: the [`LeaseApi`] seam (get, create, replace of one Lease) and its kube
//!   implementation.
//! - [`elector`]: the protocol as a state machine (`State` + `step`) and [`Elector`],
//!   which runs it, publishes `leading` and releases the Lease on shutdown.
//! - [`fence`]: [`FenceSlot`], the fence a leader's writes carry, and [`FenceLayer`],
//!   which puts it on every write a kube client sends.
//!
//! How a component uses it: build an [`Elector`] with a plain client, build the
//! component's own client with `FenceLayer::new(elector.fence())`, spawn
//! `elector.run(shutdown)`, and do leader work only while `leading()` is true. Safety does
//! not rest on `leading` being timely: a deposed leader's writes carry a stale fence and
//! the API server rejects them.
//!
//! Timing (defaults lease 2 s, renew deadline 1.5 s, retry 250 ms): a follower takes over
//! a crashed leader's Lease at most lease duration + retry period after it last saw the
//! Lease change, and a released one on its next attempt; a leader that cannot renew
//! within the renew deadline steps down before any follower can take over.

pub mod config;
pub mod elector;
pub mod fence;
pub mod lease;

pub use config::{ElectionConfig, Error, default_identity};
pub use elector::Elector;
pub use fence::{FenceLayer, FenceService, FenceSlot};
pub use lease::{KubeLeases, LeaseApi, LeaseError};

#[cfg(test)]
mod tests;
