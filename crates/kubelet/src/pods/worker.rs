//! One worker per pod (by UID). The watch only hands it the latest object; the worker
//! reconciles level-based, on an event, when the pod CIDR arrives, or on its resync
//! timer:
//!
//! - a live pod: make the runtime match the spec (sandbox, init containers in order,
//!   app containers, restarts by restartPolicy), then write the status if it changed;
//! - a pod with deletionTimestamp: stop it (with its grace period), write the final
//!   status, delete the object with grace 0 and a UID precondition (the API server keeps
//!   a bound pod until the kubelet does this), remove it from the runtime;
//! - a pod gone from the API: remove it from the runtime and retire.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use kube::api::{Api, DeleteParams, Preconditions};
use tokio::sync::watch;
use tracing::Instrument;

use super::status::{self, is_sidecar};
use crate::metrics::Metrics;
use crate::runtime::{
    ContainerConfig, ContainerKind, ContainerState, RuntimeError, SandboxConfig, SandboxState,
};
use crate::state::{NodeState, Shared};

/// Resync while something is in progress (an init container running, a restart
/// waiting out its back-off).
const PROGRESS_RESYNC: Duration = Duration::from_secs(1);
/// Upstream's container restart back-off: 10 s, doubling, at most 5 min.
const RESTART_BACKOFF: Duration = Duration::from_secs(10);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(300);
/// The first retry after a failed sync; it doubles up to the resync period.
const ERROR_BACKOFF: Duration = Duration::from_millis(500);
/// Upstream's default terminationGracePeriodSeconds.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("pod {pod}: runtime: {source}")]
    Runtime {
        pod: String,
        #[source]
        source: RuntimeError,
    },
    #[error("pod {pod}: {source}")]
    Api {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("pod {pod}: {message}")]
    Request { pod: String, message: String },
}

/// A pod's worker.
#[derive(Debug)]
pub struct Worker {
    shared: Arc<Shared>,
    node: Arc<NodeState>,
    uid: String,
    pod: watch::Receiver<Option<Arc<Pod>>>,
    /// The status last written, and the resourceVersion of the object it was computed
    /// from: until the watch brings a newer object, the same status is not sent again.
    last_sent: Option<(Option<String>, serde_json::Value)>,
    /// The object was deleted by this worker (after termination).
    deleted: bool,
    failures: u32,
}

impl Worker {
    pub fn new(
        shared: Arc<Shared>,
        node: Arc<NodeState>,
        uid: String,
        pod: watch::Receiver<Option<Arc<Pod>>>,
    ) -> Self {
        Worker {
            shared,
            node,
            uid,
            pod,
            last_sent: None,
            deleted: false,
            failures: 0,
        }
    }

    /// Runs until the pod has left the API and the runtime.
    pub async fn run(mut self) {
        let mut cidr = self.node.pod_cidr.subscribe();
        loop {
            let latest = self.pod.borrow_and_update().clone();
            let Some(pod) = latest else {
                self.cleanup().await;
                if self.retire() {
                    return;
                }
                continue;
            };
            Metrics::inc(&self.shared.metrics.pod_syncs);
            let span = tracing::debug_span!(
                "pod_sync",
                pod = %Self::name(&pod),
                uid = %self.uid,
                node = %self.node.name
            );
            let next = match self.sync(&pod).instrument(span).await {
                Ok(next) => {
                    self.failures = 0;
                    next
                }
                Err(e) => {
                    Metrics::inc(&self.shared.metrics.pod_sync_errors);
                    self.failures = self.failures.saturating_add(1);
                    let backoff = ERROR_BACKOFF
                        .saturating_mul(1 << self.failures.min(16))
                        .min(self.shared.config.sync_frequency);
                    match &e {
                        SyncError::Runtime {
                            source: RuntimeError::NetworkNotReady(_),
                            ..
                        } => tracing::debug!(error = %e, "pod waits for the network"),
                        _ => tracing::warn!(error = %e, "pod sync failed"),
                    }
                    backoff
                }
            };
            tokio::select! {
                changed = self.pod.changed() => {
                    if changed.is_err() {
                        // The dispatcher dropped us (shutdown).
                        return;
                    }
                }
                Ok(()) = cidr.changed() => {}
                () = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Leaves the worker map if the pod is still gone; false if it came back meanwhile.
    fn retire(&self) -> bool {
        let mut workers = self.node.workers();
        let gone = workers
            .get(&self.uid)
            .is_none_or(|sender| sender.borrow().is_none());
        if gone {
            workers.remove(&self.uid);
        }
        gone
    }

    fn name(pod: &Pod) -> String {
        format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or("")
        )
    }

    fn runtime_err(pod: &Pod) -> impl Fn(RuntimeError) -> SyncError + '_ {
        move |source| SyncError::Runtime {
            pod: Self::name(pod),
            source,
        }
    }

    async fn cleanup(&self) {
        let runtime = &self.node.runtime;
        if let Err(e) = runtime.stop_pod(&self.uid, Duration::ZERO).await {
            tracing::debug!(uid = %self.uid, error = %e, "stopping a pod that is gone");
        }
        if let Err(e) = runtime.remove_pod(&self.uid).await {
            tracing::warn!(uid = %self.uid, error = %e, "removing a pod that is gone");
        }
    }

    async fn sync(&mut self, pod: &Pod) -> Result<Duration, SyncError> {
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod).await;
        }
        let runtime = self.node.runtime.clone();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if status::is_terminal_phase(phase) {
            // Finished pods keep their status; their containers must not run.
            runtime
                .stop_pod(&self.uid, Duration::ZERO)
                .await
                .map_err(Self::runtime_err(pod))?;
            return Ok(self.shared.config.sync_frequency);
        }
        // The status is written even when the runtime could not do everything (e.g. no
        // pod CIDR yet): the pod then shows Pending with its containers waiting.
        let converged = self.converge(pod).await;
        let observed = runtime
            .pod_status(&self.uid)
            .await
            .map_err(Self::runtime_err(pod))?;
        let host_ip = self.shared.node_ip.to_string();
        let now = crate::time::now();
        let status = status::build(&status::Observed {
            pod,
            runtime: observed.as_ref(),
            host_ip: &host_ip,
            terminal: false,
            now: &now,
        });
        self.write_status(pod, &status).await?;
        Ok(if converged? {
            PROGRESS_RESYNC
        } else {
            self.shared.config.sync_frequency
        })
    }

    /// Makes the runtime match the spec; true while something is still under way.
    async fn converge(&self, pod: &Pod) -> Result<bool, SyncError> {
        let runtime = self.node.runtime.clone();
        let err = Self::runtime_err(pod);
        let mut sandbox = self.sandbox_config(pod);
        let current = runtime.pod_status(&self.uid).await.map_err(&err)?;
        let sandbox_id = match &current {
            Some(s) if s.sandbox.state == SandboxState::Ready => s.sandbox.id.clone(),
            Some(s) => {
                // The sandbox died: everything in it goes, and a new one is made.
                runtime
                    .stop_pod(&self.uid, Duration::ZERO)
                    .await
                    .map_err(&err)?;
                sandbox.attempt = s.sandbox.attempt + 1;
                runtime.run_pod_sandbox(&sandbox).await.map_err(&err)?
            }
            None => runtime.run_pod_sandbox(&sandbox).await.map_err(&err)?,
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");

        // Init containers, one at a time, in order.
        for container in spec.init_containers.iter().flatten() {
            let sidecar = is_sidecar(container);
            let state = runtime.pod_status(&self.uid).await.map_err(&err)?;
            let latest = state
                .as_ref()
                .and_then(|s| s.container(&container.name).0.cloned());
            let attempt = match latest.as_ref().map(|c| (&c.state, c.attempt)) {
                None => Some(0),
                Some((ContainerState::Exited { exit_code: 0, .. }, _)) if !sidecar => None,
                Some((ContainerState::Running { .. }, _)) if sidecar => None,
                Some((
                    ContainerState::Exited {
                        exit_code,
                        finished_at,
                        ..
                    },
                    attempt,
                )) => {
                    if !sidecar && *exit_code != 0 && policy == "Never" {
                        // The pod has failed; the status says so.
                        return Ok(false);
                    }
                    if !backoff_over(*finished_at, attempt) {
                        return Ok(true);
                    }
                    Some(attempt + 1)
                }
                // Running (or being created): wait for it to finish.
                Some(_) => return Ok(true),
            };
            let Some(attempt) = attempt else {
                continue;
            };
            let kind = if sidecar {
                ContainerKind::App
            } else {
                ContainerKind::Init
            };
            let config = container_config(container, kind, attempt);
            runtime
                .start_container(&sandbox_id, &sandbox, &config)
                .await
                .map_err(&err)?;
            // Go on only once it is done (a sidecar: once it runs).
            let after = runtime.pod_status(&self.uid).await.map_err(&err)?;
            let done = after
                .as_ref()
                .and_then(|s| s.container(&container.name).0)
                .is_some_and(|c| match c.state {
                    ContainerState::Exited { exit_code, .. } => !sidecar && exit_code == 0,
                    ContainerState::Running { .. } => sidecar,
                    _ => false,
                });
            if !done {
                return Ok(true);
            }
        }

        // App containers, all at once.
        let state = runtime.pod_status(&self.uid).await.map_err(&err)?;
        let mut progressing = false;
        for container in &spec.containers {
            let latest = state.as_ref().and_then(|s| s.container(&container.name).0);
            let attempt = match latest.map(|c| (&c.state, c.attempt)) {
                None => 0,
                Some((
                    ContainerState::Exited {
                        exit_code,
                        finished_at,
                        ..
                    },
                    attempt,
                )) => {
                    let restart = match policy {
                        "Never" => false,
                        "OnFailure" => *exit_code != 0,
                        _ => true,
                    };
                    if !restart {
                        continue;
                    }
                    if !backoff_over(*finished_at, attempt) {
                        progressing = true;
                        continue;
                    }
                    attempt + 1
                }
                Some(_) => continue,
            };
            let config = container_config(container, ContainerKind::App, attempt);
            runtime
                .start_container(&sandbox_id, &sandbox, &config)
                .await
                .map_err(&err)?;
        }
        Ok(progressing)
    }

    fn sandbox_config(&self, pod: &Pod) -> SandboxConfig {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let mut labels: BTreeMap<String, String> = pod.metadata.labels.clone().unwrap_or_default();
        // The labels CRI runtimes (and crictl) find kubelet pods by.
        labels.insert("io.kubernetes.pod.name".into(), name.clone());
        labels.insert("io.kubernetes.pod.namespace".into(), namespace.clone());
        labels.insert("io.kubernetes.pod.uid".into(), self.uid.clone());
        SandboxConfig {
            uid: self.uid.clone(),
            hostname: spec
                .and_then(|s| s.hostname.clone())
                .unwrap_or_else(|| name.clone()),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            labels,
            annotations: pod.metadata.annotations.clone().unwrap_or_default(),
            log_directory: self
                .shared
                .config
                .data_dir
                .join("pods")
                .join(format!("{namespace}_{name}_{}", self.uid)),
            namespace,
            name,
            attempt: 0,
        }
    }

    /// Stops a pod being deleted, reports its final status, deletes it.
    async fn terminate(&mut self, pod: &Pod) -> Result<Duration, SyncError> {
        if self.deleted {
            // Waiting for the watch to report the object gone.
            return Ok(self.shared.config.sync_frequency);
        }
        let runtime = self.node.runtime.clone();
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        let grace = Duration::from_secs(u64::try_from(grace).unwrap_or(0));
        runtime
            .stop_pod(&self.uid, grace)
            .await
            .map_err(Self::runtime_err(pod))?;
        let observed = runtime
            .pod_status(&self.uid)
            .await
            .map_err(Self::runtime_err(pod))?;
        let host_ip = self.shared.node_ip.to_string();
        let now = crate::time::now();
        let status = status::build(&status::Observed {
            pod,
            runtime: observed.as_ref(),
            host_ip: &host_ip,
            terminal: true,
            now: &now,
        });
        self.write_status(pod, &status).await?;

        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => Metrics::inc(&self.shared.metrics.pods_deleted),
            // Gone already, or the name now belongs to another pod.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(source) => {
                return Err(SyncError::Api {
                    pod: Self::name(pod),
                    source,
                });
            }
        }
        self.deleted = true;
        runtime
            .remove_pod(&self.uid)
            .await
            .map_err(Self::runtime_err(pod))?;
        tracing::debug!(pod = %Self::name(pod), "pod terminated and deleted");
        Ok(self.shared.config.sync_frequency)
    }

    /// Writes `status` through `pods/status` unless the pod already has it. A JSON
    /// patch whose first operation tests the UID makes the write miss a pod that was
    /// replaced under the same name.
    async fn write_status(&mut self, pod: &Pod, status: &PodStatus) -> Result<(), SyncError> {
        let request_err = |message: String| SyncError::Request {
            pod: Self::name(pod),
            message,
        };
        let new = serde_json::to_value(status).map_err(|e| request_err(e.to_string()))?;
        let old = serde_json::to_value(pod.status.clone().unwrap_or_default())
            .map_err(|e| request_err(e.to_string()))?;
        if new == old {
            return Ok(());
        }
        let version = pod.metadata.resource_version.clone();
        if self
            .last_sent
            .as_ref()
            .is_some_and(|(v, sent)| *v == version && *sent == new)
        {
            return Ok(());
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let patch = serde_json::json!([
            {"op": "test", "path": "/metadata/uid", "value": self.uid},
            {"op": "add", "path": "/status", "value": new},
        ]);
        let body = serde_json::to_vec(&patch).map_err(|e| request_err(e.to_string()))?;
        let request =
            http::Request::patch(format!("/api/v1/namespaces/{namespace}/pods/{name}/status"))
                .header(http::header::CONTENT_TYPE, "application/json-patch+json")
                .header(http::header::ACCEPT, "application/json")
                .body(body)
                .map_err(|e| request_err(e.to_string()))?;
        match self.shared.client.request::<Pod>(request).await {
            Ok(_) => {
                Metrics::inc(&self.shared.metrics.pod_status_writes);
                self.last_sent = Some((version, new));
                Ok(())
            }
            // Gone, or (the UID test failed) replaced by a pod of the same name.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {
                tracing::debug!(pod = %Self::name(pod), code = s.code, "status not written");
                Ok(())
            }
            Err(source) => Err(SyncError::Api {
                pod: Self::name(pod),
                source,
            }),
        }
    }
}

/// Whether a container that finished at `finished_at` after `attempt` restarts may
/// start again (upstream's CrashLoopBackOff schedule).
fn backoff_over(finished_at: SystemTime, attempt: u32) -> bool {
    let backoff = RESTART_BACKOFF
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_RESTART_BACKOFF);
    finished_at.elapsed().map_or(true, |e| e >= backoff)
}

fn container_config(container: &Container, kind: ContainerKind, attempt: u32) -> ContainerConfig {
    ContainerConfig {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        kind,
        attempt,
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        // Literal values only; valueFrom needs the API (comes with real runtimes).
        env: container
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect(),
        working_dir: container.working_dir.clone(),
        log_path: format!("{}/{attempt}.log", container.name).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_backoff_grows_and_caps() {
        let now = SystemTime::now();
        assert!(!backoff_over(now, 0));
        assert!(backoff_over(now - Duration::from_secs(11), 0));
        assert!(!backoff_over(now - Duration::from_secs(11), 1));
        assert!(backoff_over(now - Duration::from_secs(21), 1));
        assert!(backoff_over(now - Duration::from_secs(301), 20));
        // A clock that went backwards does not block restarts forever.
        assert!(backoff_over(now + Duration::from_secs(60), 0));
    }

    #[test]
    fn container_configs() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "image": "nginx", "args": ["-g"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
        }))
        .expect("container");
        let config = container_config(&c, ContainerKind::App, 2);
        assert_eq!(config.attempt, 2);
        assert_eq!(config.env, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(config.log_path, std::path::PathBuf::from("app/2.log"));
        assert_eq!(config.args, vec!["-g".to_string()]);
    }
}
