//! The Deployment controller: runs a Deployment's pod template through ReplicaSets,
//! one per template, rolling from old to new by its strategy (upstream's
//! `pkg/controller/deployment`).
//!
//! Layout:
//! - `handlers.rs`: which changes enqueue which Deployment.
//! - `claim.rs`: the ReplicaSets a Deployment owns (adoption and release).
//! - `new_replica_set.rs`: finding, creating and annotating the current ReplicaSet;
//!   `hash.rs` names it, `revision.rs` numbers it.
//! - `rolling.rs`, `recreate.rs`: the two strategies, one step per reconcile.
//! - `sync.rs`: scaling (proportional mid-rollout), ReplicaSet writes, history cleanup.
//! - `progress.rs`, `status.rs`: conditions and status.
//! - `replicas.rs`, `selector.rs`: reading ReplicaSets and selectors.
//!
//! A reconcile reads the Deployment, its ReplicaSets and pods from the caches, takes at
//! most one step (scale up the new ReplicaSet, or scale old ones down), writes the
//! status, and returns; the ReplicaSets' status changes bring it back for the next.

mod claim;
mod handlers;
mod hash;
mod new_replica_set;
mod progress;
mod recreate;
mod replicas;
mod revision;
mod rolling;
mod status;
mod sync;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;

use crate::context::Context;
use crate::events::EventType;
use crate::runtime::{Next, ObjectKey, Reconciler, WorkQueue};

pub use hash::POD_TEMPLATE_HASH_LABEL;

#[derive(Debug)]
pub struct DeploymentController {
    ctx: Arc<Context>,
    queue: WorkQueue<ObjectKey>,
}

impl DeploymentController {
    /// Builds the controller and registers its handlers (before the manager starts the
    /// informers, so none of the first listing is missed).
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let controller = Arc::new(DeploymentController {
            ctx,
            queue: WorkQueue::new(),
        });
        handlers::register(&controller.ctx, &controller.queue);
        controller
    }

    /// Upstream's `syncDeployment`.
    async fn sync_deployment(&self, d: &mut Deployment) -> Result<Next, crate::Error> {
        let selects_all = crate::selector::is_empty(&d.spec.selector);
        if selects_all {
            return self.refuse_selecting_all(d).await;
        }

        let mut rs_list = self.claim_replica_sets(d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            return self.sync_status_only(d, &rs_list).await;
        }

        // Pausing and resuming show in the conditions before anything else.
        self.check_paused_conditions(d).await?;
        if replicas::is_paused(d) {
            return self.sync(d, &mut rs_list).await;
        }
        if self.check_scaling_event(d, &mut rs_list).await? {
            return self.sync(d, &mut rs_list).await;
        }
        match replicas::strategy_type(d) {
            "Recreate" => self.rollout_recreate(d, &mut rs_list).await,
            "RollingUpdate" => self.rollout_rolling(d, &mut rs_list).await,
            other => Err(crate::Error::Invalid(format!(
                "unexpected deployment strategy type: {other}"
            ))),
        }
    }

    /// An empty selector would take every pod of the namespace: upstream only warns
    /// and records that it saw this generation.
    async fn refuse_selecting_all(&self, d: &mut Deployment) -> Result<Next, crate::Error> {
        self.ctx.events.record(
            &*d,
            EventType::Warning,
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.",
        );
        let status = d.status.get_or_insert_with(Default::default);
        if status.observed_generation < d.metadata.generation {
            status.observed_generation = d.metadata.generation;
            self.update_status(d).await?;
        }
        Ok(Next::Idle)
    }

    /// Waits for the first listing of the caches a reconcile reads, so that a
    /// controller starting up never mistakes a cache still filling for a Deployment
    /// without ReplicaSets.
    async fn wait_for_caches(&self) {
        self.ctx.deployments.wait_synced().await;
        self.ctx.replica_sets.wait_synced().await;
        self.ctx.pods.wait_synced().await;
    }
}

impl Reconciler for DeploymentController {
    type Key = ObjectKey;

    fn name(&self) -> &'static str {
        "deployment"
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    fn resync(&self) {
        for key in self.ctx.deployments.keys() {
            self.queue.add(key);
        }
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Next, crate::Error> {
        self.wait_for_caches().await;
        let Some(cached) = self.ctx.deployments.get(key) else {
            return Ok(Next::Idle);
        };
        let mut d = (*cached).clone();
        self.sync_deployment(&mut d).await
    }
}
