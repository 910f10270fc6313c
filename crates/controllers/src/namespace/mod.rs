//! The namespace controller: empties a namespace that is being deleted, then lets
//! the API server delete it, as upstream's (pkg/controller/namespace).
//!
//! Layout:
//! - `content.rs`: deletes every namespaced resource's objects, pods first, and
//!   reports what is left.
//! - `conditions.rs`: the namespace's status conditions for a report.
//!
//! The API server marks a deleted namespace Terminating and keeps it while its
//! `spec.finalizers` holds `kubernetes`. Each reconcile (key: the namespace) reads the
//! namespace live, deletes its content, writes the conditions, and, once a live list
//! of every resource comes back empty, removes `kubernetes` through the `finalize`
//! subresource, after which the API server deletes the namespace. While content
//! remains (pods waiting for their kubelets), the key comes back after a delay that
//! grows with how long the namespace has been terminating; a deleted pod of such a
//! namespace brings it back at once.

mod conditions;
mod content;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};

use crate::context::Context;
use crate::error::{Error, ignore_not_found};
use crate::runtime::{Informer, Next, ObjectKey, Reconciler, WorkQueue};

/// The namespace controller's finalizer in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

/// Shortest and longest wait before looking again at content that remains.
const REQUEUE_MIN: Duration = Duration::from_secs(1);
const REQUEUE_MAX: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct NamespaceController {
    ctx: Arc<Context>,
    queue: WorkQueue<ObjectKey>,
}

impl NamespaceController {
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let queue = WorkQueue::new();
        let on_namespace = queue.clone();
        ctx.namespaces.on_change(Box::new(move |_, new| {
            if let Some(ns) = new.filter(|ns| ns.metadata.deletion_timestamp.is_some()) {
                on_namespace.add(ObjectKey::of(ns.as_ref()));
            }
        }));
        let on_pod = queue.clone();
        let namespaces = ctx.namespaces.clone();
        ctx.pods.on_change(Box::new(move |old, new| {
            // The last pods of a terminating namespace usually hold it up; when one
            // goes, look again at once rather than at the next delay.
            if let (Some(pod), None) = (old, new) {
                enqueue_if_terminating(&namespaces, pod, &on_pod);
            }
        }));
        Arc::new(NamespaceController { ctx, queue })
    }

    /// Writes the conditions if they changed; returns the namespace as stored.
    async fn update_status(
        &self,
        api: &Api<Namespace>,
        ns: Namespace,
        report: &conditions::ContentReport,
    ) -> Result<Namespace, Error> {
        let status = ns.status.clone().unwrap_or_default();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let existing = status.conditions.as_deref().unwrap_or_default();
        let merged = conditions::merge(existing, conditions::desired(report), &now);
        let terminating = status.phase.as_deref() == Some("Terminating");
        if merged.is_none() && terminating {
            return Ok(ns);
        }
        let mut next = ns.clone();
        next.status = Some(NamespaceStatus {
            phase: Some("Terminating".into()),
            conditions: merged.or(status.conditions),
        });
        let name = ns.metadata.name.clone().unwrap_or_default();
        Ok(api
            .replace_status(&name, &PostParams::default(), &next)
            .await?)
    }

    /// Removes `kubernetes` from spec.finalizers; the API server then deletes the
    /// namespace (once its metadata finalizers, if any, are gone too).
    async fn finalize(&self, api: &Api<Namespace>, ns: Namespace) -> Result<(), Error> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let mut next = ns;
        if let Some(spec) = next.spec.as_mut() {
            spec.finalizers = spec
                .finalizers
                .take()
                .map(|f| f.into_iter().filter(|f| f != FINALIZER).collect());
        }
        tracing::info!(namespace = %name, "namespace emptied; finalizing");
        ignore_not_found(
            api.replace_subresource("finalize", &name, &PostParams::default(), &next)
                .await,
        )?;
        Ok(())
    }
}

fn enqueue_if_terminating(
    namespaces: &Informer<Namespace>,
    pod: &Pod,
    queue: &WorkQueue<ObjectKey>,
) {
    let Some(name) = pod.metadata.namespace.as_deref() else {
        return;
    };
    let key = ObjectKey::cluster(name);
    if namespaces
        .get(&key)
        .is_some_and(|ns| ns.metadata.deletion_timestamp.is_some())
    {
        queue.add(key);
    }
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// How long to wait before looking again at content that remains: half the time
/// the namespace has been terminating, within [REQUEUE_MIN, REQUEUE_MAX] (quick for
/// what goes quickly, patient with pods that take their grace period).
fn requeue_delay(terminating_for: Duration) -> Duration {
    (terminating_for / 2).clamp(REQUEUE_MIN, REQUEUE_MAX)
}

fn terminating_for(ns: &Namespace) -> Duration {
    let Some(since) = ns.metadata.deletion_timestamp.as_ref() else {
        return Duration::ZERO;
    };
    let secs = k8s_openapi::jiff::Timestamp::now()
        .duration_since(since.0)
        .as_secs();
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

impl Reconciler for NamespaceController {
    type Key = ObjectKey;

    fn name(&self) -> &'static str {
        "namespace"
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    fn resync(&self) {
        for ns in self
            .ctx
            .namespaces
            .filter(|ns| ns.metadata.deletion_timestamp.is_some())
        {
            self.queue.add(ObjectKey::of(ns.as_ref()));
        }
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Next, Error> {
        let cached = self.ctx.namespaces.get(key);
        if cached.is_none_or(|ns| ns.metadata.deletion_timestamp.is_none()) {
            return Ok(Next::Idle);
        }
        // The cache may lag; deleting content is decided on the live namespace.
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let Some(ns) = ignore_not_found(api.get(&key.name).await)? else {
            return Ok(Next::Idle);
        };
        if ns.metadata.deletion_timestamp.is_none() || !has_finalizer(&ns) {
            return Ok(Next::Idle);
        }
        let report = content::delete_all(&self.ctx.client, &key.name).await;
        let ns = self.update_status(&api, ns, &report).await?;
        if let Some(error) = report.error() {
            return Err(Error::Invalid(format!(
                "deleting the content of namespace {}: {error}",
                key.name
            )));
        }
        if !report.is_empty() {
            tracing::debug!(namespace = %key.name, remaining = ?report.remaining, "content remains");
            return Ok(Next::After(requeue_delay(terminating_for(&ns))));
        }
        self.finalize(&api, ns).await?;
        Ok(Next::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn requeue_delay_grows_with_time_terminating_within_bounds() {
        let cases = [(0, 1), (1, 1), (4, 2), (10, 5), (30, 15), (3600, 15)];
        for (terminating, want) in cases {
            assert_eq!(
                requeue_delay(Duration::from_secs(terminating)),
                Duration::from_secs(want),
                "terminating for {terminating}s"
            );
        }
    }

    fn namespace(deleting: bool, finalizers: Option<Vec<&str>>) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("ns".into()),
                deletion_timestamp: deleting.then(|| Time(k8s_openapi::jiff::Timestamp::now())),
                ..ObjectMeta::default()
            },
            spec: Some(NamespaceSpec {
                finalizers: finalizers.map(|f| f.into_iter().map(String::from).collect()),
            }),
            status: None,
        }
    }

    #[test]
    fn only_the_kubernetes_finalizer_holds_the_controller() {
        assert!(has_finalizer(&namespace(true, Some(vec!["kubernetes"]))));
        assert!(!has_finalizer(&namespace(
            true,
            Some(vec!["example.com/other"])
        )));
        assert!(!has_finalizer(&namespace(true, None)));
    }

    #[tokio::test]
    async fn a_deleted_pod_brings_back_its_terminating_namespace_only() {
        let namespaces = Informer::default();
        namespaces.insert_for_test(namespace(true, Some(vec!["kubernetes"])));
        let mut active = namespace(false, Some(vec!["kubernetes"]));
        active.metadata.name = Some("active".into());
        namespaces.insert_for_test(active);
        let queue = WorkQueue::new();
        let pod = |ns: &str| Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some("p".into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        enqueue_if_terminating(&namespaces, &pod("active"), &queue);
        enqueue_if_terminating(&namespaces, &pod("unknown"), &queue);
        assert!(queue.is_empty());
        enqueue_if_terminating(&namespaces, &pod("ns"), &queue);
        assert_eq!(queue.next().await, Some(ObjectKey::cluster("ns")));
    }
}
