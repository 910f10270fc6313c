//! The controller-manager: builds every controller on one shared context, starts the
//! informers once all handlers are registered, and runs each controller's workers
//! while this instance leads.

use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;

use crate::config::Config;
use crate::context::Context;
use crate::runtime::{self, Reconciler};
use crate::{
    deployment, endpoints, endpointslice, garbage_collector, namespace, node_ipam, node_lifecycle,
    replicaset,
};

/// Runs every controller until the task is dropped. `leading` switches the workers on
/// and off (the informers keep running so that a new leader starts warm).
pub async fn run(client: Client, config: Config, leading: watch::Receiver<bool>) {
    let ctx = Context::new(client, config);
    let workers = ctx.config.workers.clone();
    let mut tasks = tokio::task::JoinSet::new();
    let mut start = |controller: Arc<dyn Start>, workers: usize| {
        tasks.spawn(controller.start(workers, leading.clone()));
    };
    start(
        replicaset::ReplicaSetController::new(ctx.clone()),
        workers.replicaset,
    );
    start(
        deployment::DeploymentController::new(ctx.clone()),
        workers.deployment,
    );
    start(
        endpoints::EndpointsController::new(ctx.clone()),
        workers.endpoints,
    );
    start(
        endpointslice::EndpointSliceController::new(ctx.clone()),
        workers.endpoints,
    );
    start(node_ipam::NodeIpamController::new(ctx.clone()), 1);
    start(
        node_lifecycle::NodeLifecycleController::new(ctx.clone()),
        workers.node,
    );
    start(
        garbage_collector::GarbageCollector::new(ctx.clone()),
        workers.garbage_collector,
    );
    start(
        namespace::NamespaceController::new(ctx.clone()),
        workers.namespace,
    );
    ctx.start_informers();
    while tasks.join_next().await.is_some() {}
}

/// Type erasure over controllers, so the manager can hold them in one list.
trait Start: Send + Sync {
    fn start(
        self: Arc<Self>,
        workers: usize,
        leading: watch::Receiver<bool>,
    ) -> futures::future::BoxFuture<'static, ()>;
}

impl<R: Reconciler> Start for R {
    fn start(
        self: Arc<Self>,
        workers: usize,
        leading: watch::Receiver<bool>,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(runtime::run(self, workers, leading))
    }
}
