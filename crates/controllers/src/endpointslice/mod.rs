//! The EndpointSlice controller (upstream's pkg/controller/endpointslice): for every
//! Service with a selector, discovery.k8s.io/v1 EndpointSlices holding the selected
//! pods as endpoints, at most 100 per slice, one set of slices per distinct port
//! resolution, owned by the service (the garbage collector removes them with it).
//!
//! - `desired.rs`: pod to endpoint (conditions ready/serving/terminating, node, zone,
//!   hostname, targetRef), ports as the pod resolves them, the slices' labels.
//!   Terminating pods stay, not ready.
//! - `pack.rs`: the fewest creates, updates and deletes that get there.
//! - `tracker.rs`: our own writes, so a sync never acts on a cache lagging them.
//!
//! Handlers: service changes sync at once; pod changes, changes to our slices (an
//! edit or delete by someone else) and node zone changes are batched as in the
//! Endpoints controller.

mod desired;
mod pack;
mod tracker;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use self::desired::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use self::pack::Plan;
use self::tracker::Tracker;
use crate::context::Context;
use crate::endpoints::batch::{self, Batch};
use crate::endpoints::trigger_time::{self, TriggerTimes};
use crate::endpoints::{namespace_terminating, pods};
use crate::runtime::{Informer, Next, ObjectKey, Reconciler, WorkQueue};

/// How soon a sync that found the cache behind our writes looks again (the slice
/// events that catch it up usually requeue it sooner).
const STALE_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct EndpointSliceController {
    ctx: Arc<Context>,
    queue: WorkQueue<ObjectKey>,
    batch: Arc<Batch>,
    trigger_times: TriggerTimes,
    tracker: Tracker,
}

impl EndpointSliceController {
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let queue = WorkQueue::new();
        let batch = Arc::new(Batch::new(batch::PERIOD));
        register_handlers(&ctx, &queue, &batch);
        Arc::new(EndpointSliceController {
            ctx,
            queue,
            batch,
            trigger_times: TriggerTimes::default(),
            tracker: Tracker::default(),
        })
    }

    /// The slices of the service that this controller manages.
    fn managed_slices(&self, key: &ObjectKey) -> Vec<Arc<EndpointSlice>> {
        self.ctx.endpoint_slices.filter(|s| {
            s.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                && label(s, SERVICE_NAME_LABEL) == Some(key.name.as_str())
                && label(s, MANAGED_BY_LABEL) == Some(CONTROLLER_NAME)
        })
    }

    /// Writes the plan: creates (unless the service is going), updates, deletes.
    async fn apply(
        &self,
        key: &ObjectKey,
        service: &Service,
        plan: Plan,
        trigger: Option<Timestamp>,
    ) -> Result<(), crate::Error> {
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let params = PostParams::default();
        // Creating slices for a service being deleted would race the garbage
        // collector removing them.
        if service.metadata.deletion_timestamp.is_none() {
            for mut slice in plan.create {
                stamp(&mut slice, trigger);
                match api.create(&params, &slice).await {
                    Ok(created) => self.tracker.written(key, &created),
                    Err(e) if namespace_terminating(&e) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for mut slice in plan.update {
            stamp(&mut slice, trigger);
            let name = slice.metadata.name.clone().unwrap_or_default();
            let updated = api.replace(&name, &params, &slice).await?;
            self.tracker.written(key, &updated);
        }
        for slice in plan.delete {
            let name = slice.metadata.name.clone().unwrap_or_default();
            crate::ignore_not_found(api.delete(&name, &DeleteParams::default()).await)?;
            self.tracker.deleted(key, &slice);
        }
        Ok(())
    }
}

fn label<'a>(slice: &'a EndpointSlice, key: &str) -> Option<&'a str> {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// Sets (or clears) the trigger-time annotation on a slice about to be written.
fn stamp(slice: &mut EndpointSlice, trigger: Option<Timestamp>) {
    let mut annotations = slice.metadata.annotations.take().unwrap_or_default();
    match trigger {
        Some(time) => {
            annotations.insert(trigger_time::ANNOTATION.into(), trigger_time::format(time))
        }
        None => annotations.remove(trigger_time::ANNOTATION),
    };
    slice.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
}

fn register_handlers(ctx: &Context, queue: &WorkQueue<ObjectKey>, batch: &Arc<Batch>) {
    let services_queue = queue.clone();
    ctx.services.on_change(Box::new(move |old, new| {
        if let Some(service) = new.or(old) {
            services_queue.add(ObjectKey::of(service.as_ref()));
        }
    }));

    let (pods_queue, pods_batch, services) = (queue.clone(), batch.clone(), ctx.services.clone());
    ctx.pods.on_change(Box::new(move |old, new| {
        let keys = pods::services_for_pod_change(
            &services,
            old.map(|p| p.as_ref()),
            new.map(|p| p.as_ref()),
        );
        for key in keys {
            pods_batch.add(&pods_queue, key);
        }
    }));

    // Our slices changed by someone else (or our own writes arriving, which then
    // sync to nothing) bring their service back.
    let (slices_queue, slices_batch) = (queue.clone(), batch.clone());
    ctx.endpoint_slices.on_change(Box::new(move |old, new| {
        if let (Some(o), Some(n)) = (old, new)
            && o.metadata.resource_version == n.metadata.resource_version
        {
            return;
        }
        for slice in old.into_iter().chain(new) {
            if label(slice, MANAGED_BY_LABEL) != Some(CONTROLLER_NAME) {
                continue;
            }
            if let (Some(namespace), Some(service)) =
                (&slice.metadata.namespace, label(slice, SERVICE_NAME_LABEL))
            {
                slices_batch.add(&slices_queue, ObjectKey::new(namespace, service));
            }
        }
    }));

    // Endpoints carry their node's zone.
    let (nodes_queue, nodes_batch) = (queue.clone(), batch.clone());
    let (pods, services) = (ctx.pods.clone(), ctx.services.clone());
    ctx.nodes.on_change(Box::new(move |old, new| {
        let (Some(old), Some(new)) = (old, new) else {
            return;
        };
        if zone(old) == zone(new) {
            return;
        }
        for key in services_of_pods_on(&pods, &services, new) {
            nodes_batch.add(&nodes_queue, key);
        }
    }));
}

fn zone(node: &Node) -> Option<&String> {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("topology.kubernetes.io/zone"))
}

fn services_of_pods_on(
    pods: &Informer<Pod>,
    services: &Informer<Service>,
    node: &Node,
) -> std::collections::BTreeSet<ObjectKey> {
    let name = node.metadata.name.as_deref();
    pods.filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == name)
        .iter()
        .flat_map(|pod| pods::services_for_pod_change(services, None, Some(pod)))
        .collect()
}

impl Reconciler for EndpointSliceController {
    type Key = ObjectKey;

    fn name(&self) -> &'static str {
        "endpointslice"
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    fn resync(&self) {
        for key in self.ctx.services.keys() {
            self.queue.add(key);
        }
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Next, crate::Error> {
        self.batch.started(key);
        let Some(service) = self.ctx.services.get(key) else {
            // The slices go with the service, through their ownerReference.
            self.trigger_times.forget(key);
            self.tracker.forget(key);
            return Ok(Next::Idle);
        };
        let Some(selector) = pods::managed_selector(&service) else {
            return Ok(Next::Idle);
        };
        let slices = self.managed_slices(key);
        if self.tracker.is_stale(key, &slices) {
            tracing::debug!(service = %key, "slice cache behind our writes; waiting");
            return Ok(Next::After(STALE_RETRY));
        }
        let slices: Vec<Arc<EndpointSlice>> = slices
            .into_iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .collect();
        let selected = pods::selected_pods(&self.ctx.pods, &key.namespace, selector);
        let trigger = self.trigger_times.compute(key, &service, &selected);
        let nodes = &self.ctx.nodes;
        let desired = desired::desired(&service, &selected, |name| {
            nodes.get(&ObjectKey::cluster(name))
        });
        let plan = pack::plan(
            &service,
            &slices,
            &desired.by_family,
            pack::MAX_ENDPOINTS_PER_SLICE,
        );
        if !plan.is_empty() {
            self.apply(key, &service, plan, trigger).await?;
        }
        if !desired.missing_nodes.is_empty() {
            // Written without those pods; try again once the nodes may be known.
            return Err(crate::Error::Invalid(format!(
                "pods of service {key} name nodes that do not exist: {:?}",
                desired.missing_nodes
            )));
        }
        Ok(Next::Idle)
    }
}
