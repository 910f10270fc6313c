//! The seam between the kubelet and whatever runs containers.
//!
//! [`Runtime`] follows CRI's shape (RunPodSandbox, Create+StartContainer, StopPodSandbox,
//! RemovePodSandbox, PodSandboxStatus + ContainerStatus, ListPodSandbox, the container
//! log files), folded to the calls the pod workers make: a CRI implementation maps each
//! method onto one to three gRPC calls, and the fake keeps everything in memory.
//!
//! The kubelet holds runtimes as `Arc<dyn Runtime>` (one per node; hollow nodes each get
//! their own fake), so methods return boxed futures: the CRI backend lives in another
//! crate, and a box per call is nothing next to a gRPC round trip.

pub mod cri;
pub mod fake;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::config::{KubeletConfig, RuntimeKind};

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No such pod or container in the runtime.
    #[error("{what} not found")]
    NotFound { what: String },
    /// Pod networking is not set up yet (no pod CIDR): pods wait.
    #[error("network not ready: {0}")]
    NetworkNotReady(String),
    /// The runtime cannot be used at all.
    #[error("{0}")]
    Unavailable(String),
    /// Log options the runtime cannot serve (e.g. `previous` with no earlier attempt).
    #[error("{0}")]
    BadRequest(String),
    /// The image could not be pulled (upstream's ErrImagePull).
    #[error("failed to pull image {image:?}: {message}")]
    ImagePull { image: String, message: String },
    /// The image is absent and the pull policy is Never (ErrImageNeverPull).
    #[error("container image {image:?} is not present with pull policy of Never")]
    ImageNeverPull { image: String },
    /// A call failed.
    #[error("{operation}: {message}")]
    Failed { operation: String, message: String },
}

/// The runtime's name and version: the Node reports `name://version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub name: String,
    pub version: String,
}

/// CRI's DNSConfig: what the runtime writes into the sandbox's /etc/resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// What CRI's PodSandboxConfig carries that the kubelet decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxConfig {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// 0 for the first sandbox of a pod, one more for each recreation.
    pub attempt: u32,
    pub hostname: String,
    pub host_network: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `<logs root>/<namespace>_<name>_<uid>`, where container logs go.
    pub log_directory: PathBuf,
    /// The pod's resolv.conf; set when the sandbox is created.
    pub dns: Option<DnsConfig>,
}

/// When the runtime pulls a container's image (the pod's imagePullPolicy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The policy of `image` under `policy` (the API's field), with upstream's default:
    /// Always for `:latest` or untagged images, IfNotPresent otherwise.
    pub fn for_image(policy: Option<&str>, image: &str) -> PullPolicy {
        match policy {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            Some("IfNotPresent") => PullPolicy::IfNotPresent,
            _ => {
                let name = image.split('@').next().unwrap_or(image);
                let last = name.rsplit('/').next().unwrap_or(name);
                if image.contains('@') {
                    PullPolicy::IfNotPresent
                } else {
                    match last.split_once(':') {
                        Some((_, "latest")) | None => PullPolicy::Always,
                        Some(_) => PullPolicy::IfNotPresent,
                    }
                }
            }
        }
    }
}

/// A host directory or file bound into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub container_path: String,
    pub host_path: PathBuf,
    pub readonly: bool,
}

/// What of the container's resources the runtime enforces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// requests.cpu, for CPU shares.
    pub cpu_request_millis: Option<u64>,
    /// limits.cpu, for the CFS quota.
    pub cpu_limit_millis: Option<u64>,
    /// limits.memory.
    pub memory_limit_bytes: Option<u64>,
}

/// Init or app container (ephemeral containers come later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    App,
}

/// What CRI's ContainerConfig carries (image pull included: the runtime pulls first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    pub name: String,
    pub image: String,
    pub kind: ContainerKind,
    /// 0 for the first run, one more per restart (the restart count).
    pub attempt: u32,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// Relative to the sandbox's log directory: `<name>/<attempt>.log`.
    pub log_path: PathBuf,
    pub pull_policy: PullPolicy,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
}

/// What a command run in a container (an exec probe) gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecResult {
    pub exit_code: i32,
    /// stdout then stderr, for the probe's message.
    pub output: Vec<u8>,
}

/// A sandbox's state, as CRI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Ready,
    NotReady,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    pub id: String,
    pub attempt: u32,
    pub state: SandboxState,
    /// The pod IP (None with host networking or before the network is set up).
    pub ip: Option<IpAddr>,
    pub created_at: SystemTime,
}

/// A container's state, as CRI reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running {
        started_at: SystemTime,
    },
    Exited {
        started_at: SystemTime,
        finished_at: SystemTime,
        exit_code: i32,
        reason: String,
        message: String,
    },
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// With the runtime's scheme: `containerd://…`, `fake://…`.
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub image: String,
    /// The image's digest reference.
    pub image_ref: String,
    pub state: ContainerState,
}

/// Everything the runtime knows about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodStatus {
    /// The latest sandbox.
    pub sandbox: SandboxStatus,
    /// All attempts of all containers still in the runtime, oldest first.
    pub containers: Vec<ContainerStatus>,
}

impl PodStatus {
    /// The latest attempt of container `name`, and the one before it.
    pub fn container(&self, name: &str) -> (Option<&ContainerStatus>, Option<&ContainerStatus>) {
        let mut attempts: Vec<&ContainerStatus> =
            self.containers.iter().filter(|c| c.name == name).collect();
        attempts.sort_by_key(|c| c.attempt);
        let latest = attempts.pop();
        (latest, attempts.pop())
    }
}

/// A pod the runtime holds, for orphan cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

/// One container in a relist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelistEntry {
    pub uid: String,
    pub id: String,
    /// The runtime's state, compared between relists only.
    pub state: i32,
}

/// The query of `/containerLogs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub since: Option<SystemTime>,
    pub timestamps: bool,
    pub previous: bool,
    pub limit_bytes: Option<u64>,
}

/// A container's log, chunk by chunk; with `follow`, it ends when the container does.
pub type LogStream = BoxStream<'static, Result<Bytes, RuntimeError>>;

/// A container runtime, as the kubelet uses it.
pub trait Runtime: Send + Sync + std::fmt::Debug {
    fn version(&self) -> RuntimeVersion;

    /// CRI's UpdateRuntimeConfig: the node's pod CIDR, for the network plugin.
    fn update_pod_cidr<'a>(&'a self, cidr: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Creates the pod's sandbox (network namespace, pod IP); returns its id.
    fn run_pod_sandbox<'a>(
        &'a self,
        config: &'a SandboxConfig,
    ) -> BoxFuture<'a, Result<String, RuntimeError>>;

    /// Pulls the image if needed, creates and starts the container; returns its id.
    fn start_container<'a>(
        &'a self,
        sandbox_id: &'a str,
        sandbox: &'a SandboxConfig,
        container: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<String, RuntimeError>>;

    /// Stops the pod's containers (each gets `grace` before it is killed) and its
    /// sandbox. Stopped containers stay until [`Runtime::remove_pod`].
    fn stop_pod<'a>(
        &'a self,
        uid: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Removes the pod's containers and sandbox (releasing its IP). Missing is fine.
    fn remove_pod<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// The pod's sandbox and containers; None if the runtime has no sandbox for it.
    fn pod_status<'a>(
        &'a self,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<PodStatus>, RuntimeError>>;

    /// Every pod the runtime holds.
    fn list_pods(&self) -> BoxFuture<'_, Result<Vec<PodRef>, RuntimeError>>;

    /// A container's log.
    fn container_logs<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, Result<LogStream, RuntimeError>>;

    /// Runs `cmd` in a running container (exec probes), for at most `timeout`.
    fn exec_sync<'a>(
        &'a self,
        container_id: &'a str,
        cmd: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecResult, RuntimeError>>;

    /// Stops one container (a failed liveness probe): SIGTERM, SIGKILL after `grace`.
    fn stop_container<'a>(
        &'a self,
        container_id: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Every container's pod UID, id and state, for the pod lifecycle event generator
    /// (a relist every second tells workers their containers changed, e.g. exited).
    /// Runtimes whose containers only change when the kubelet acts return nothing.
    fn relist(&self) -> BoxFuture<'_, Result<Vec<RelistEntry>, RuntimeError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The kubelet is exiting: release what the runtime holds on the host (its own
    /// containerd, network rules). Pods keep running.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The runtime for node `node`, of the configured kind. The CRI runtime starts (or
/// connects to) containerd, imports the image archives and sets up the host network.
pub async fn for_node(
    config: &KubeletConfig,
    node: &str,
) -> Result<Arc<dyn Runtime>, RuntimeError> {
    match &config.runtime {
        RuntimeKind::Fake => Ok(Arc::new(fake::FakeRuntime::new(node))),
        RuntimeKind::Cri { endpoint } => {
            let runtime = cri::CriRuntime::start(config, endpoint.as_deref()).await?;
            Ok(Arc::new(runtime))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults() {
        let cases = [
            (None, "busybox", PullPolicy::Always),
            (None, "busybox:latest", PullPolicy::Always),
            (None, "busybox:1.36", PullPolicy::IfNotPresent),
            (None, "localhost:5000/app", PullPolicy::Always),
            (None, "localhost:5000/app:v1", PullPolicy::IfNotPresent),
            (None, "app@sha256:00", PullPolicy::IfNotPresent),
            (Some("Never"), "busybox", PullPolicy::Never),
            (Some("IfNotPresent"), "busybox", PullPolicy::IfNotPresent),
            (Some("Always"), "busybox:1", PullPolicy::Always),
        ];
        for (policy, image, want) in cases {
            assert_eq!(PullPolicy::for_image(policy, image), want, "{image}");
        }
    }
}
