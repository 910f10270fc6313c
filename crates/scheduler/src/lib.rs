//! mast's scheduler: decides on which node every pod runs.
//!
//! Layout:
//! - [`framework`]: the pure core: [`framework::Status`], [`framework::NodeInfo`] (a node
//!   with the summed requests and host ports of its pods), the extension-point traits
//!   [`framework::FilterPlugin`] and [`framework::ScorePlugin`], and
//!   [`framework::Framework`], which runs one scheduling cycle over a snapshot of nodes
//!   and returns a [`framework::Decision`] that records every node's filter verdict and
//!   every plugin's score, so that a decision can be explained afterwards.
//! - [`plugins`]: one module per plugin, each with its `NAME` and table-driven tests.
//! - [`registry`]: plugin names to constructors, and the profile configuration that
//!   enables, disables and weights plugins (upstream's defaults when none is given).
//!
//! - [`run`]: the loop: kube-rs watches of nodes and pods feed the cache and the queue;
//!   each cycle schedules one pod, assumes it on its node and binds it in the
//!   background; events and the PodScheduled condition report the outcome.
//!
//! Everything but `run` is free of I/O.

pub mod framework;
pub mod plugins;
pub mod registry;
pub mod run;

#[cfg(test)]
pub(crate) mod testing;
