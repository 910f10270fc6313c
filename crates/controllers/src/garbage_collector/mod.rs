//! The garbage collector: deletes objects whose owners are gone, and carries out the
//! Foreground and Orphan propagation policies, as upstream's
//! (pkg/controller/garbagecollector).
//!
//! Layout:
//! - `graph.rs`: the uid-indexed owner/dependent graph and which changes wake whom.
//! - `monitors.rs`: discovery and the watches that feed the graph (shared informers
//!   where the controller-manager has them, a metadata-keeping watch otherwise).
//! - `decide.rs`: the decisions, free of I/O.
//! - `collector.rs`: the reconcile of one object, on live reads and preconditioned
//!   writes.
//! - `cluster.rs`: the seam to the API server (a fake in tests).
//!
//! The queue key is the object's identity (kind, namespace, name, uid); the reconcile
//! reads the object's current node from the graph, so it is level-based: what it does
//! depends on the state now, never on the event that enqueued it.

mod cluster;
mod collector;
mod decide;
mod graph;
mod monitors;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use graph::ObjectId;

use self::cluster::ApiCluster;
use self::collector::{Collector, State};
use crate::context::Context;
use crate::runtime::{Next, Reconciler, WorkQueue};

#[derive(Debug)]
pub struct GarbageCollector {
    collector: Collector<ApiCluster>,
}

impl GarbageCollector {
    /// Registers on the shared informers and starts discovery and the collector's
    /// own watches; the workers act once every watch has listed.
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let state = Arc::new(State::default());
        monitors::attach_shared(&ctx, &state);
        tokio::spawn(monitors::run(ctx.clone(), state.clone()));
        Arc::new(GarbageCollector {
            collector: Collector::new(ApiCluster::new(ctx.client.clone()), state),
        })
    }
}

impl Reconciler for GarbageCollector {
    type Key = ObjectId;

    fn name(&self) -> &'static str {
        "garbagecollector"
    }

    fn queue(&self) -> &WorkQueue<ObjectId> {
        self.collector.state().queue()
    }

    fn resync(&self) {
        self.collector.state().resync();
    }

    async fn reconcile(&self, key: &ObjectId) -> Result<Next, crate::Error> {
        self.collector.reconcile(key).await
    }
}
