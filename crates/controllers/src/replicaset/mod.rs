//! The ReplicaSet controller (upstream's `pkg/controller/replicaset`): keeps
//! `spec.replicas` pods of each ReplicaSet alive, and reports them in its status.
//!
//! A reconcile reads the ReplicaSet and its namespace's pods from the caches, claims
//! the pods (`claim.rs`: adopt matching orphans, release pods that stopped matching),
//! creates the missing pods in slow-start batches (`batch.rs`) or deletes the surplus,
//! least valuable first (`ranking.rs`), and writes the status (`status.rs`) when it
//! changed. Because the pod cache lags behind the controller's own writes, creations
//! and deletions are recorded as expectations (`expectations.rs`) that the pod
//! handlers (`handlers.rs`) count off; a ReplicaSet with writes still unseen only gets
//! its status updated. A ReplicaSet being deleted is left alone: the garbage collector
//! deletes its pods.

mod batch;
mod claim;
mod expectations;
mod handlers;
mod pods;
mod ranking;
mod status;

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};

use crate::context::Context;
use crate::events::EventType;
use crate::runtime::{Next, ObjectKey, Reconciler, WorkQueue};
use crate::selector::Selector;
use crate::{Error, ignore_not_found};
use expectations::Expectations;
use handlers::Handlers;
use status::Observed;

/// The most pods one reconcile creates or deletes (upstream's `BurstReplicas`).
const BURST: usize = 500;

#[derive(Debug)]
pub struct ReplicaSetController {
    ctx: Arc<Context>,
    queue: WorkQueue<ObjectKey>,
    expectations: Arc<Expectations>,
}

impl ReplicaSetController {
    /// Registers the handlers on the shared ReplicaSet and pod informers.
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let queue = WorkQueue::new();
        let expectations = Arc::new(Expectations::default());
        let handlers = Arc::new(Handlers {
            replica_sets: ctx.replica_sets.clone(),
            expectations: expectations.clone(),
            queue: queue.clone(),
        });
        let on_rs = handlers.clone();
        ctx.replica_sets.on_change(Box::new(move |old, new| {
            on_rs.replica_set_changed(old.map(Arc::as_ref), new.map(Arc::as_ref));
        }));
        ctx.pods.on_change(Box::new(move |old, new| {
            handlers.pod_changed(old.map(Arc::as_ref), new.map(Arc::as_ref));
        }));
        Arc::new(ReplicaSetController {
            ctx,
            queue,
            expectations,
        })
    }

    /// One pass over one ReplicaSet (upstream's `syncReplicaSet`).
    async fn sync(&self, key: &ObjectKey, rs: &ReplicaSet) -> Result<Next, Error> {
        // Checked before the pods are read: an observation that lands in between then
        // waits for the next pass instead of being counted against a stale list.
        let pending = self.expectations.pending(key);
        let selector = match Selector::new(&rs.spec.selector) {
            Ok(selector) => selector,
            Err(why) => {
                // Retrying cannot help; a fixed selector is an update, which enqueues.
                tracing::warn!(rs = %key, error = %why, "invalid selector; ignoring it");
                return Ok(Next::Idle);
            }
        };
        let namespace_pods = self.ctx.pods.list_namespace(&key.namespace);
        let active: Vec<Arc<Pod>> = namespace_pods
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();
        let owned = claim::claim(&self.ctx.client, rs, &selector, &active).await?;
        let terminating = namespace_pods
            .iter()
            .filter(|p| {
                pods::is_terminating(p)
                    && pods::is_owned_by(p, rs)
                    && selector.matches(p.metadata.labels.as_ref())
            })
            .count();

        let managed = match plan(rs, owned.len(), pending.is_some()) {
            Plan::Create(count) => self.create(key, rs, count).await,
            Plan::Delete(count) => self.delete(key, rs, &owned, count).await,
            Plan::Nothing => Ok(()),
        };

        let now = Timestamp::now();
        let failure = managed.as_ref().err().map(failure_message);
        let observed = Observed {
            pods: &owned,
            terminating,
            failure: failure.as_deref(),
            now,
        };
        self.write_status(rs, status::compute(rs, &observed))
            .await?;
        managed?;
        // Come back when a pod turns available, or when the expectations (earlier or
        // just set) time out, should an event be lost for good; anything else that
        // matters arrives as an event.
        let waiting = self.expectations.pending(key);
        let next = [waiting, status::next_availability(rs, &owned, now)]
            .into_iter()
            .flatten()
            .min();
        Ok(next.map_or(Next::Idle, Next::After))
    }

    async fn create(&self, key: &ObjectKey, rs: &ReplicaSet, count: usize) -> Result<(), Error> {
        let pod = pods::from_template(rs).map_err(Error::Invalid)?;
        self.expectations.expect_creations(key, count);
        let (created, error) =
            batch::slow_start(count, batch::INITIAL_BATCH, || self.create_one(rs, &pod)).await;
        // Pods that failed or were never tried will not show up: stop waiting for them.
        for _ in created..count {
            self.expectations.creation_observed(key);
        }
        error.map_or(Ok(()), Err)
    }

    async fn create_one(&self, rs: &ReplicaSet, pod: &Pod) -> Result<(), Error> {
        let namespace = rs.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
        match api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                let name = created.metadata.name.unwrap_or_default();
                tracing::debug!(namespace = %namespace, pod = %name, "created a pod");
                let message = format!("Created pod: {name}");
                self.ctx
                    .events
                    .record(rs, EventType::Normal, "SuccessfulCreate", message);
                Ok(())
            }
            // The namespace and everything in it are going: nothing to do.
            Err(e) if namespace_terminating(&e) => Ok(()),
            Err(e) => {
                let error = Error::from(e);
                let message = format!("Error creating: {}", failure_message(&error));
                self.ctx
                    .events
                    .record(rs, EventType::Warning, "FailedCreate", message);
                Err(error)
            }
        }
    }

    async fn delete(
        &self,
        key: &ObjectKey,
        rs: &ReplicaSet,
        owned: &[Arc<Pod>],
        count: usize,
    ) -> Result<(), Error> {
        let related = self.related_pods(rs);
        let doomed = ranking::pods_to_delete(owned, &related, count, Timestamp::now());
        self.expectations
            .expect_deletions(key, doomed.iter().map(|p| ObjectKey::of(p.as_ref())));
        let results =
            futures::future::join_all(doomed.iter().map(|pod| self.delete_one(key, rs, pod))).await;
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    async fn delete_one(&self, key: &ObjectKey, rs: &ReplicaSet, pod: &Pod) -> Result<(), Error> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::debug!(namespace = %namespace, pod = %name, "deleted a pod");
                let message = format!("Deleted pod: {name}");
                self.ctx
                    .events
                    .record(rs, EventType::Normal, "SuccessfulDelete", message);
                Ok(())
            }
            Err(e) => {
                // The deletion will not show up as an event of ours: stop waiting.
                self.expectations
                    .deletion_observed(key, &ObjectKey::of(pod));
                match ignore_not_found(Err::<(), _>(e)) {
                    Ok(_) => Ok(()),
                    Err(error) => {
                        let message = format!("Error deleting: {}", failure_message(&error));
                        self.ctx
                            .events
                            .record(rs, EventType::Warning, "FailedDelete", message);
                        Err(error)
                    }
                }
            }
        }
    }

    /// The pods of the ReplicaSet and of its siblings (ReplicaSets with the same
    /// controller, i.e. the other revisions of a Deployment), for the node-crowding
    /// rank. Upstream ranks a ReplicaSet without controller against no pods at all;
    /// here it ranks against its own, so that its scale-downs also spread.
    fn related_pods(&self, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
        let namespace = rs.metadata.namespace.clone().unwrap_or_default();
        let mut owners: HashSet<String> = rs.metadata.uid.iter().cloned().collect();
        if let Some(controller) = pods::controller_of(&rs.metadata) {
            let siblings = self.ctx.replica_sets.filter(|other| {
                other.metadata.namespace.as_deref() == Some(namespace.as_str())
                    && pods::controller_of(&other.metadata).is_some_and(|c| c.uid == controller.uid)
            });
            owners.extend(siblings.iter().filter_map(|s| s.metadata.uid.clone()));
        }
        self.ctx
            .pods
            .list_namespace(&namespace)
            .into_iter()
            .filter(|p| pods::controller_of(&p.metadata).is_some_and(|c| owners.contains(&c.uid)))
            .collect()
    }

    /// Writes the status if it changed. The cached version's resourceVersion goes
    /// along, so a status computed from a stale ReplicaSet loses with a conflict and
    /// the reconcile runs again on the fresh one.
    async fn write_status(&self, rs: &ReplicaSet, status: ReplicaSetStatus) -> Result<(), Error> {
        if !status::differs(rs.status.as_ref(), &status) {
            return Ok(());
        }
        let namespace = rs.metadata.namespace.clone().unwrap_or_default();
        let name = rs.metadata.name.clone().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let mut updated = rs.clone();
        updated.status = Some(status);
        ignore_not_found(
            api.replace_status(&name, &PostParams::default(), &updated)
                .await,
        )?;
        Ok(())
    }
}

/// What a pass does about the number of pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Nothing,
    Create(usize),
    Delete(usize),
}

/// Upstream's `manageReplicas` decision: a ReplicaSet acts only when it waits for
/// none of its earlier writes and is not being deleted, and by at most `BURST` pods.
fn plan(rs: &ReplicaSet, owned: usize, waiting: bool) -> Plan {
    if waiting || rs.metadata.deletion_timestamp.is_some() {
        return Plan::Nothing;
    }
    let desired = usize::try_from(status::desired_replicas(rs)).unwrap_or(0);
    match owned.cmp(&desired) {
        Ordering::Less => Plan::Create((desired - owned).min(BURST)),
        Ordering::Greater => Plan::Delete((owned - desired).min(BURST)),
        Ordering::Equal => Plan::Nothing,
    }
}

impl Reconciler for ReplicaSetController {
    type Key = ObjectKey;

    fn name(&self) -> &'static str {
        "replicaset"
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    fn resync(&self) {
        for key in self.ctx.replica_sets.keys() {
            self.queue.add(key);
        }
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Next, Error> {
        // Counting pods in a half-filled cache would create pods that exist. Both
        // caches fill once, at start.
        self.ctx.replica_sets.wait_synced().await;
        self.ctx.pods.wait_synced().await;
        let Some(rs) = self.ctx.replica_sets.get(key) else {
            self.expectations.forget(key);
            return Ok(Next::Idle);
        };
        self.sync(key, &rs).await
    }
}

/// The API server's message for an API error (what upstream's events and conditions
/// show), else the error's text.
fn failure_message(error: &Error) -> String {
    match error {
        Error::Api(kube::Error::Api(status)) if !status.message.is_empty() => {
            status.message.clone()
        }
        other => other.to_string(),
    }
}

/// A create refused because the namespace is being deleted (upstream checks the
/// `NamespaceTerminating` cause; the message is the same on servers that send none).
fn namespace_terminating(error: &kube::Error) -> bool {
    let kube::Error::Api(status) = error else {
        return false;
    };
    let has_cause = status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"));
    has_cause || (status.code == 403 && status.message.contains("because it is being terminated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use pods::test_support::{ago, replica_set};

    #[test]
    fn plans_follow_upstream() {
        let mut dying = replica_set(3, 0);
        dying.metadata.deletion_timestamp = serde_json::from_value(serde_json::json!(ago(1))).ok();
        // (what, replica set, owned pods, waiting for earlier writes, plan)
        let cases = [
            ("short", replica_set(3, 0), 1, false, Plan::Create(2)),
            ("over", replica_set(3, 0), 5, false, Plan::Delete(2)),
            ("even", replica_set(3, 0), 3, false, Plan::Nothing),
            (
                "short but waiting",
                replica_set(3, 0),
                0,
                true,
                Plan::Nothing,
            ),
            (
                "over but waiting",
                replica_set(0, 0),
                2,
                true,
                Plan::Nothing,
            ),
            ("being deleted", dying, 0, false, Plan::Nothing),
            (
                "a burst at most",
                replica_set(2000, 0),
                10,
                false,
                Plan::Create(BURST),
            ),
            (
                "a burst at most, down",
                replica_set(0, 0),
                2000,
                false,
                Plan::Delete(BURST),
            ),
            (
                "negative replicas count as none",
                replica_set(-1, 0),
                1,
                false,
                Plan::Delete(1),
            ),
        ];
        for (what, rs, owned, waiting, want) in cases {
            assert_eq!(plan(&rs, owned, waiting), want, "{what}");
        }
    }

    #[test]
    fn a_missing_replicas_field_means_one() {
        let mut rs = replica_set(3, 0);
        rs.spec.replicas = None;
        assert_eq!(plan(&rs, 0, false), Plan::Create(1));
    }

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            Status::failure(message, "Forbidden")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn failures_read_as_the_api_server_wrote_them() {
        let error = Error::from(api_error(403, "pods \"x\" is forbidden: exceeded quota"));
        assert_eq!(
            failure_message(&error),
            "pods \"x\" is forbidden: exceeded quota"
        );
        let error = Error::Invalid("unable to create pods, no labels".into());
        assert_eq!(failure_message(&error), "unable to create pods, no labels");
    }

    #[test]
    fn a_terminating_namespace_is_recognised() {
        let message = "pods \"\" is forbidden: unable to create new content in namespace ns because it is being terminated";
        assert!(namespace_terminating(&api_error(403, message)));
        assert!(!namespace_terminating(&api_error(403, "exceeded quota")));
        let with_cause = Status::failure("forbidden", "Forbidden")
            .with_code(403)
            .with_details(kube::core::response::StatusDetails {
                causes: vec![kube::core::response::StatusCause {
                    reason: "NamespaceTerminating".into(),
                    message: String::new(),
                    field: String::new(),
                }],
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                retry_after_seconds: 0,
            });
        assert!(namespace_terminating(&kube::Error::Api(with_cause.boxed())));
    }
}
