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

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use kube::api::{Api, DeleteParams, Preconditions};
use tokio::sync::watch;
use tracing::Instrument;

use super::probe::Prober;
use super::status::{self, Waiting, is_sidecar};
use super::{dns, env, service_env, volumes};
use crate::metrics::Metrics;
use crate::runtime::{
    ContainerConfig, ContainerKind, ContainerState, PullPolicy, Resources, RuntimeError,
    SandboxConfig, SandboxState,
};
use crate::state::{NodeState, Shared};

/// Resync while something is in progress (an init container running, a restart
/// waiting out its back-off).
const PROGRESS_RESYNC: Duration = Duration::from_secs(1);
/// Upstream's container restart back-off: the first restart at once, then 10 s,
/// doubling, at most 5 min; a container that ran 10 min starts the count afresh.
const RESTART_BACKOFF: Duration = Duration::from_secs(10);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// Image pull back-off: 10 s doubling to 5 min, as upstream's image manager.
const PULL_BACKOFF: Duration = Duration::from_secs(10);
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
    /// The pod's probe tasks and their results.
    prober: Prober,
    /// Why containers wait, for the status (upstream's reason cache).
    waiting: Waiting,
    /// Failed image pulls by container name: how many, and when the last one was.
    pull_failures: HashMap<String, (u32, Instant)>,
}

/// How a container start went, when it did not go through.
enum StartOutcome {
    Started,
    /// It waits (a reason is recorded for the status); try again soon.
    Waiting,
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
            prober: Prober::default(),
            waiting: Waiting::new(),
            pull_failures: HashMap::new(),
        }
    }

    /// Runs until the pod has left the API and the runtime.
    pub async fn run(mut self) {
        let mut cidr = self.node.pod_cidr.subscribe();
        let probed = self.prober.changed();
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
                () = probed.notified() => {}
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

    /// The pod's container log directory (`DATA_DIR/logs/<ns>_<name>_<uid>`).
    fn log_directory(&self, pod_namespace: &str, pod_name: &str) -> PathBuf {
        self.shared
            .config
            .data_dir
            .join("logs")
            .join(format!("{pod_namespace}_{pod_name}_{}", self.uid))
    }

    /// Removes the pod's files: volumes and logs.
    fn remove_files(&self) {
        let data_dir = &self.shared.config.data_dir;
        volumes::remove(data_dir, &self.uid);
        let suffix = format!("_{}", self.uid);
        if let Ok(entries) = std::fs::read_dir(data_dir.join("logs")) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(&suffix) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    async fn cleanup(&mut self) {
        self.prober.stop_all();
        let runtime = &self.node.runtime;
        if let Err(e) = runtime.stop_pod(&self.uid, Duration::ZERO).await {
            tracing::debug!(uid = %self.uid, error = %e, "stopping a pod that is gone");
        }
        if let Err(e) = runtime.remove_pod(&self.uid).await {
            tracing::warn!(uid = %self.uid, error = %e, "removing a pod that is gone");
        }
        self.remove_files();
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
        self.prober.sync(&runtime, pod, observed.as_ref());
        let probes = self.prober.results();
        let host_ip = self.shared.node_ip.to_string();
        let now = crate::time::now();
        let status = status::build(&status::Observed {
            pod,
            runtime: observed.as_ref(),
            host_ip: &host_ip,
            terminal: false,
            now: &now,
            probes: Some(&probes),
            waiting: Some(&self.waiting),
        });
        self.write_status(pod, &status).await?;
        Ok(if converged? {
            PROGRESS_RESYNC
        } else {
            self.shared.config.sync_frequency
        })
    }

    /// Makes the runtime match the spec; true while something is still under way.
    async fn converge(&mut self, pod: &Pod) -> Result<bool, SyncError> {
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
                sandbox.dns = Some(dns::for_pod(&self.shared.config, pod));
                runtime.run_pod_sandbox(&sandbox).await.map_err(&err)?
            }
            None => {
                sandbox.dns = Some(dns::for_pod(&self.shared.config, pod));
                runtime.run_pod_sandbox(&sandbox).await.map_err(&err)?
            }
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        // Volumes are prepared once per sync, before the first container start needs them.
        let mut prepared: Option<HashMap<String, PathBuf>> = None;

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
                        started_at,
                        finished_at,
                        ..
                    },
                    attempt,
                )) => {
                    if !sidecar && *exit_code != 0 && policy == "Never" {
                        // The pod has failed; the status says so.
                        return Ok(false);
                    }
                    if let Some(left) = restart_backoff(*started_at, *finished_at, attempt) {
                        self.crash_loop(pod, &container.name, left);
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
            let outcome = self
                .start(
                    pod,
                    &sandbox_id,
                    &sandbox,
                    container,
                    kind,
                    attempt,
                    &mut prepared,
                )
                .await?;
            if matches!(outcome, StartOutcome::Waiting) {
                return Ok(true);
            }
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
            let latest = state
                .as_ref()
                .and_then(|s| s.container(&container.name).0.cloned());
            let attempt = match latest.as_ref().map(|c| (&c.state, c.attempt)) {
                None => 0,
                Some((
                    ContainerState::Exited {
                        exit_code,
                        started_at,
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
                        self.waiting.remove(&container.name);
                        continue;
                    }
                    if let Some(left) = restart_backoff(*started_at, *finished_at, attempt) {
                        self.crash_loop(pod, &container.name, left);
                        progressing = true;
                        continue;
                    }
                    attempt + 1
                }
                Some(_) => continue,
            };
            let outcome = self
                .start(
                    pod,
                    &sandbox_id,
                    &sandbox,
                    container,
                    ContainerKind::App,
                    attempt,
                    &mut prepared,
                )
                .await?;
            if matches!(outcome, StartOutcome::Waiting) {
                progressing = true;
            }
        }
        Ok(progressing)
    }

    /// Records that `container` waits out its restart back-off.
    fn crash_loop(&mut self, pod: &Pod, container: &str, left: Duration) {
        let backoff = left.as_secs().max(1);
        self.waiting.insert(
            container.to_string(),
            (
                "CrashLoopBackOff".into(),
                format!(
                    "back-off {backoff}s restarting failed container={container} pod={}_{}({})",
                    pod.metadata.name.as_deref().unwrap_or(""),
                    pod.metadata.namespace.as_deref().unwrap_or(""),
                    self.uid
                ),
            ),
        );
    }

    /// Starts one container: volumes, environment, image (with its pull back-off),
    /// then the runtime. Failures that concern only this container are recorded as
    /// its waiting reason; the rest fail the sync.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &mut self,
        pod: &Pod,
        sandbox_id: &str,
        sandbox: &SandboxConfig,
        container: &Container,
        kind: ContainerKind,
        attempt: u32,
        prepared: &mut Option<HashMap<String, PathBuf>>,
    ) -> Result<StartOutcome, SyncError> {
        let name = container.name.clone();
        let image = container.image.clone().unwrap_or_default();
        if let Some((failures, at)) = self.pull_failures.get(&name)
            && at.elapsed() < pull_backoff(*failures)
        {
            if self
                .waiting
                .get(&name)
                .is_some_and(|(reason, _)| reason == "ErrImageNeverPull")
            {
                // Nothing to pull: the reason stays what it is.
                return Ok(StartOutcome::Waiting);
            }
            self.waiting.insert(
                name,
                (
                    "ImagePullBackOff".into(),
                    format!("Back-off pulling image \"{image}\""),
                ),
            );
            return Ok(StartOutcome::Waiting);
        }
        if prepared.is_none() {
            match volumes::prepare(&self.shared.client, &self.shared.config.data_dir, pod).await {
                Ok(paths) => *prepared = Some(paths),
                Err(e) => {
                    // Upstream's FailedMount: the containers stay ContainerCreating.
                    tracing::warn!(pod = %Self::name(pod), error = %e, "volumes not ready");
                    self.waiting.remove(&name);
                    return Ok(StartOutcome::Waiting);
                }
            }
        }
        let mounts = match prepared
            .as_ref()
            .map(|p| volumes::mounts(pod, container, p))
            .unwrap_or_else(|| Ok(Vec::new()))
        {
            Ok(mounts) => mounts,
            Err(e) => {
                self.waiting
                    .insert(name, ("CreateContainerConfigError".into(), e.to_string()));
                return Ok(StartOutcome::Waiting);
            }
        };
        let pod_ip = self
            .node
            .runtime
            .pod_status(&self.uid)
            .await
            .map_err(Self::runtime_err(pod))?
            .and_then(|s| s.sandbox.ip)
            .map(|ip| ip.to_string());
        let host_ip = self.shared.node_ip.to_string();
        let Some(services) = service_env::for_pod(&self.shared.services, pod).await else {
            self.waiting.insert(
                name,
                (
                    "CreateContainerConfigError".into(),
                    service_env::NOT_LISTED.into(),
                ),
            );
            return Ok(StartOutcome::Waiting);
        };
        let facts = env::Facts {
            pod_ip: pod_ip.as_deref(),
            host_ip: &host_ip,
            services: &services,
        };
        let resolved = match env::resolve(&self.shared.client, pod, container, &facts).await {
            Ok(resolved) => resolved,
            Err(e) => {
                self.waiting
                    .insert(name, ("CreateContainerConfigError".into(), e.to_string()));
                return Ok(StartOutcome::Waiting);
            }
        };
        let mut config = container_config(container, kind, attempt);
        config.env = resolved.env;
        config.command = resolved.command;
        config.args = resolved.args;
        config.mounts = mounts;
        let result = self
            .node
            .runtime
            .start_container(sandbox_id, sandbox, &config)
            .await;
        let reason = match result {
            Ok(_) => {
                self.waiting.remove(&name);
                self.pull_failures.remove(&name);
                return Ok(StartOutcome::Started);
            }
            Err(RuntimeError::ImagePull { image, message }) => {
                let entry = self
                    .pull_failures
                    .entry(name.clone())
                    .or_insert((0, Instant::now()));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = Instant::now();
                (
                    "ErrImagePull",
                    format!("failed to pull image \"{image}\": {message}"),
                )
            }
            Err(RuntimeError::ImageNeverPull { image }) => {
                // Retried on the pull back-off's schedule, as a failed pull is.
                let entry = self
                    .pull_failures
                    .entry(name.clone())
                    .or_insert((0, Instant::now()));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = Instant::now();
                (
                    "ErrImageNeverPull",
                    // Upstream's wording, which users grep for.
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                )
            }
            Err(RuntimeError::Failed { operation, message }) if operation == "CreateContainer" => {
                ("CreateContainerError", message)
            }
            Err(RuntimeError::Failed { operation, message }) if operation == "StartContainer" => {
                ("RunContainerError", message)
            }
            Err(source) => {
                return Err(SyncError::Runtime {
                    pod: Self::name(pod),
                    source,
                });
            }
        };
        tracing::info!(pod = %Self::name(pod), container = %name, reason = reason.0, message = %reason.1, "container not started");
        self.waiting.insert(name, (reason.0.to_string(), reason.1));
        Ok(StartOutcome::Waiting)
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
            log_directory: self.log_directory(&namespace, &name),
            namespace,
            name,
            attempt: 0,
            dns: None,
        }
    }

    /// Stops a pod being deleted, reports its final status, deletes it.
    async fn terminate(&mut self, pod: &Pod) -> Result<Duration, SyncError> {
        if self.deleted {
            // Waiting for the watch to report the object gone.
            return Ok(self.shared.config.sync_frequency);
        }
        self.prober.stop_all();
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
            probes: None,
            waiting: None,
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
        self.remove_files();
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

/// How long a container that ran from `started_at` to `finished_at` in attempt
/// `attempt` still waits before its restart (upstream's CrashLoopBackOff schedule);
/// None when it may restart now.
fn restart_backoff(
    started_at: SystemTime,
    finished_at: SystemTime,
    attempt: u32,
) -> Option<Duration> {
    let ran = finished_at.duration_since(started_at).unwrap_or_default();
    if attempt == 0 || ran >= BACKOFF_RESET {
        return None;
    }
    let backoff = RESTART_BACKOFF
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(MAX_RESTART_BACKOFF);
    // A clock that went backwards does not block restarts forever.
    let elapsed = finished_at.elapsed().ok()?;
    backoff.checked_sub(elapsed).filter(|left| !left.is_zero())
}

/// The image pull back-off after `failures` failed pulls.
fn pull_backoff(failures: u32) -> Duration {
    PULL_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_RESTART_BACKOFF)
}

fn quantity<T>(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    name: &str,
    parse: impl Fn(&str) -> Result<T, crate::config::ConfigError>,
) -> Option<T> {
    map.and_then(|m| m.get(name)).and_then(|q| parse(&q.0).ok())
}

/// The CPU and memory the runtime enforces; requests default to limits (as the API
/// defaults them).
fn resources(container: &Container) -> Resources {
    let r = container.resources.as_ref();
    let limits = r.and_then(|r| r.limits.as_ref());
    let requests = r.and_then(|r| r.requests.as_ref());
    let cpu_limit = quantity(limits, "cpu", crate::config::parse_millicores);
    Resources {
        cpu_request_millis: quantity(requests, "cpu", crate::config::parse_millicores)
            .or(cpu_limit),
        cpu_limit_millis: cpu_limit,
        memory_limit_bytes: quantity(limits, "memory", crate::config::parse_bytes)
            .map(|b| u64::try_from(b).unwrap_or(u64::MAX)),
    }
}

/// The runtime config of `container` with literal env only; [`Worker::start`] fills in
/// the resolved environment and the mounts.
fn container_config(container: &Container, kind: ContainerKind, attempt: u32) -> ContainerConfig {
    let image = container.image.clone().unwrap_or_default();
    ContainerConfig {
        name: container.name.clone(),
        pull_policy: PullPolicy::for_image(container.image_pull_policy.as_deref(), &image),
        image,
        kind,
        attempt,
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        env: container
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect(),
        working_dir: container.working_dir.clone(),
        log_path: format!("{}/{attempt}.log", container.name).into(),
        mounts: Vec::new(),
        resources: resources(container),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_backoff_grows_and_caps() {
        let now = SystemTime::now();
        let ago = |s: u64| now - Duration::from_secs(s);
        let waits = |finished: SystemTime, attempt| {
            restart_backoff(finished - Duration::from_secs(1), finished, attempt).is_some()
        };
        // The first crash restarts at once.
        assert!(!waits(now, 0));
        assert!(waits(now, 1));
        assert!(!waits(ago(11), 1));
        assert!(waits(ago(11), 2));
        assert!(!waits(ago(21), 2));
        assert!(waits(ago(299), 20));
        assert!(!waits(ago(301), 20));
        // A clock that went backwards does not block restarts forever.
        assert!(!waits(now + Duration::from_secs(60), 3));
        // Ten minutes of running reset the count.
        assert!(restart_backoff(ago(700), now, 5).is_none());
        assert_eq!(pull_backoff(1), Duration::from_secs(10));
        assert_eq!(pull_backoff(3), Duration::from_secs(40));
    }

    #[test]
    fn resources_from_the_spec() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}
        }))
        .expect("container");
        let r = resources(&c);
        assert_eq!(r.cpu_limit_millis, Some(500));
        assert_eq!(r.cpu_request_millis, Some(500));
        assert_eq!(r.memory_limit_bytes, Some(64 << 20));
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
