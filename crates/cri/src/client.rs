//! A CRI v1 client (RuntimeService and ImageService) over a unix socket.
//!
//! The generated stubs come from the `k8s-cri` crate; this module wraps the calls the
//! kubelet needs in a small typed API: ids in, the useful part of the answer out, a
//! deadline on every call, and "not found" told apart from other failures (the kubelet's
//! reconcile treats a missing sandbox or container as already gone).
//!
//! The channel connects lazily and reconnects on the next call after a failure, so one
//! [`CriClient`] outlives containerd restarts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as proto;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Deadline of one call unless [`CriClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Image pulls may move a lot of data: their own, longer deadline.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(300);
/// CRI messages (container lists, exec output) can exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Errors of the CRI client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not `unix:///absolute/path` (or an absolute path).
    #[error("invalid CRI endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// What was given.
        endpoint: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The runtime answered NotFound: the sandbox, container or image does not exist.
    #[error("{call}: {id} not found")]
    NotFound {
        /// The CRI call.
        call: &'static str,
        /// The id or image asked about.
        id: String,
    },
    /// The runtime (or the transport) answered with an error status.
    #[error("{call} {id}: {status}")]
    Rpc {
        /// The CRI call.
        call: &'static str,
        /// The id or image the call was about (empty for calls about none).
        id: String,
        /// The gRPC status (boxed: it is large).
        status: Box<tonic::Status>,
    },
    /// No answer within the deadline.
    #[error("{call} {id}: no answer within {after:?}")]
    Timeout {
        /// The CRI call.
        call: &'static str,
        /// The id or image the call was about.
        id: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The answer lacks a field the call must return.
    #[error("{call} {id}: answer without {field}")]
    MissingField {
        /// The CRI call.
        call: &'static str,
        /// The id or image the call was about.
        id: String,
        /// The missing field.
        field: &'static str,
    },
}

impl ClientError {
    /// True when the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::NotFound { .. })
    }
}

/// Parses a CRI endpoint: `unix:///path/to/sock` or a bare absolute path.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, ClientError> {
    let invalid = |reason| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let path = match endpoint.strip_prefix("unix://") {
        Some(rest) => rest,
        None if endpoint.contains("://") => return Err(invalid("only unix:// is supported")),
        None => endpoint,
    };
    if path.is_empty() {
        return Err(invalid("empty socket path"));
    }
    if !path.starts_with('/') {
        return Err(invalid("the socket path must be absolute"));
    }
    Ok(PathBuf::from(path))
}

/// Which sandboxes [`CriClient::list_pod_sandboxes`] returns; the default is all.
#[derive(Clone, Debug, Default)]
pub struct SandboxFilter {
    /// Only this sandbox id.
    pub id: Option<String>,
    /// Only sandboxes in this state.
    pub state: Option<proto::PodSandboxState>,
    /// Only sandboxes carrying all of these labels.
    pub labels: HashMap<String, String>,
}

/// Which containers [`CriClient::list_containers`] returns; the default is all.
#[derive(Clone, Debug, Default)]
pub struct ContainerFilter {
    /// Only this container id.
    pub id: Option<String>,
    /// Only containers of this sandbox.
    pub pod_sandbox_id: Option<String>,
    /// Only containers in this state.
    pub state: Option<proto::ContainerState>,
    /// Only containers carrying all of these labels.
    pub labels: HashMap<String, String>,
}

/// What the runtime knows about a running container beyond its CRI status: where it
/// lives on the host (from the verbose status).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The container's init process on the host (0 once it has exited).
    pub pid: u32,
    /// The OCI spec's `linux.cgroupsPath`.
    pub cgroups_path: Option<String>,
}

/// The result of [`CriClient::exec_sync`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// What the command wrote on stdout.
    pub stdout: Vec<u8>,
    /// What the command wrote on stderr.
    pub stderr: Vec<u8>,
    /// Its exit code.
    pub exit_code: i32,
}

/// A CRI v1 client. Cheap to clone: clones share one connection.
#[derive(Clone, Debug)]
pub struct CriClient {
    socket: PathBuf,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    timeout: Duration,
}

impl CriClient {
    /// A client for `endpoint` (`unix:///path` or an absolute path). No I/O happens
    /// here: the connection is made on the first call and remade after failures.
    pub fn new(endpoint: &str) -> Result<Self, ClientError> {
        let socket = socket_path(endpoint)?;
        Ok(Self::for_socket(&socket))
    }

    /// A client for the unix socket at `socket`.
    pub fn for_socket(socket: &Path) -> Self {
        let path = socket.to_path_buf();
        // The URI is a placeholder: the connector below ignores it and dials the socket.
        let channel =
            Endpoint::from_static("http://localhost")
                .connect_timeout(Duration::from_secs(5))
                .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }));
        CriClient {
            socket: socket.to_path_buf(),
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another per-call deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `Version`: the runtime's name and versions; also the readiness probe.
    pub async fn version(&self) -> Result<proto::VersionResponse, ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::VersionRequest {
            version: "v1".into(),
        };
        call("Version", "", self.timeout, rt.version(req)).await
    }

    /// `Status`: the runtime's conditions (`RuntimeReady`, `NetworkReady`).
    pub async fn runtime_status(&self) -> Result<Vec<proto::RuntimeCondition>, ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::StatusRequest { verbose: false };
        let resp = call("Status", "", self.timeout, rt.status(req)).await?;
        Ok(resp.status.map(|s| s.conditions).unwrap_or_default())
    }

    /// `RunPodSandbox`: creates and starts a sandbox (pause container, network);
    /// returns its id. `runtime_handler` empty means the default runtime.
    pub async fn run_pod_sandbox(
        &self,
        config: &proto::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String, ClientError> {
        let mut rt = self.runtime.clone();
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let req = proto::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: runtime_handler.to_owned(),
        };
        let resp = call(
            "RunPodSandbox",
            &name,
            self.timeout,
            rt.run_pod_sandbox(req),
        )
        .await?;
        Ok(resp.pod_sandbox_id)
    }

    /// `StopPodSandbox`: stops every container of the sandbox and tears its network
    /// down. Idempotent.
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        call("StopPodSandbox", id, self.timeout, rt.stop_pod_sandbox(req)).await?;
        Ok(())
    }

    /// `RemovePodSandbox`: removes a stopped sandbox and its containers. Idempotent.
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        call(
            "RemovePodSandbox",
            id,
            self.timeout,
            rt.remove_pod_sandbox(req),
        )
        .await?;
        Ok(())
    }

    /// `PodSandboxStatus`: state, network, labels of one sandbox.
    pub async fn pod_sandbox_status(
        &self,
        id: &str,
    ) -> Result<proto::PodSandboxStatus, ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: false,
        };
        let resp = call(
            "PodSandboxStatus",
            id,
            self.timeout,
            rt.pod_sandbox_status(req),
        )
        .await?;
        resp.status.ok_or_else(|| ClientError::MissingField {
            call: "PodSandboxStatus",
            id: id.to_owned(),
            field: "status",
        })
    }

    /// The sandbox's primary IP, if its network is set up (none for host-network pods).
    pub async fn pod_sandbox_ip(&self, id: &str) -> Result<Option<IpAddr>, ClientError> {
        let status = self.pod_sandbox_status(id).await?;
        Ok(status.network.and_then(|n| n.ip.parse().ok()))
    }

    /// `ListPodSandbox` with a filter.
    pub async fn list_pod_sandboxes(
        &self,
        filter: &SandboxFilter,
    ) -> Result<Vec<proto::PodSandbox>, ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::ListPodSandboxRequest {
            filter: Some(proto::PodSandboxFilter {
                id: filter.id.clone().unwrap_or_default(),
                state: filter
                    .state
                    .map(|s| proto::PodSandboxStateValue { state: s as i32 }),
                label_selector: filter.labels.clone(),
            }),
        };
        let resp = call("ListPodSandbox", "", self.timeout, rt.list_pod_sandbox(req)).await?;
        Ok(resp.items)
    }

    /// `CreateContainer` in a sandbox; `sandbox_config` is the config the sandbox was
    /// run with. Returns the container's id.
    pub async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: &proto::ContainerConfig,
        sandbox_config: &proto::PodSandboxConfig,
    ) -> Result<String, ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::CreateContainerRequest {
            pod_sandbox_id: pod_sandbox_id.to_owned(),
            config: Some(config.clone()),
            sandbox_config: Some(sandbox_config.clone()),
        };
        let resp = call(
            "CreateContainer",
            pod_sandbox_id,
            self.timeout,
            rt.create_container(req),
        )
        .await?;
        Ok(resp.container_id)
    }

    /// `StartContainer`.
    pub async fn start_container(&self, id: &str) -> Result<(), ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::StartContainerRequest {
            container_id: id.to_owned(),
        };
        call("StartContainer", id, self.timeout, rt.start_container(req)).await?;
        Ok(())
    }

    /// `StopContainer`: SIGTERM (or the image's stop signal), SIGKILL after `grace`.
    /// The call's own deadline is `grace` plus the client's timeout.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::StopContainerRequest {
            container_id: id.to_owned(),
            timeout: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
        };
        let deadline = self.timeout.saturating_add(grace);
        call("StopContainer", id, deadline, rt.stop_container(req)).await?;
        Ok(())
    }

    /// `RemoveContainer` (force: a running container is killed first). Idempotent.
    pub async fn remove_container(&self, id: &str) -> Result<(), ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        call(
            "RemoveContainer",
            id,
            self.timeout,
            rt.remove_container(req),
        )
        .await?;
        Ok(())
    }

    /// `ListContainers` with a filter.
    pub async fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<proto::Container>, ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::ListContainersRequest {
            filter: Some(proto::ContainerFilter {
                id: filter.id.clone().unwrap_or_default(),
                state: filter
                    .state
                    .map(|s| proto::ContainerStateValue { state: s as i32 }),
                pod_sandbox_id: filter.pod_sandbox_id.clone().unwrap_or_default(),
                label_selector: filter.labels.clone(),
            }),
        };
        let resp = call("ListContainers", "", self.timeout, rt.list_containers(req)).await?;
        Ok(resp.containers)
    }

    /// `ContainerStatus`: state, exit code, reason, log path of one container.
    pub async fn container_status(&self, id: &str) -> Result<proto::ContainerStatus, ClientError> {
        let (status, _) = self.container_status_verbose(id, false).await?;
        Ok(status)
    }

    /// The container's host pid and cgroups path, from the verbose `ContainerStatus`.
    pub async fn container_info(&self, id: &str) -> Result<ContainerInfo, ClientError> {
        let (_, info) = self.container_status_verbose(id, true).await?;
        Ok(parse_container_info(&info))
    }

    async fn container_status_verbose(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(proto::ContainerStatus, HashMap<String, String>), ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose,
        };
        let resp = call(
            "ContainerStatus",
            id,
            self.timeout,
            rt.container_status(req),
        )
        .await?;
        let status = resp.status.ok_or_else(|| ClientError::MissingField {
            call: "ContainerStatus",
            id: id.to_owned(),
            field: "status",
        })?;
        Ok((status, resp.info))
    }

    /// `ExecSync`: runs `cmd` in the container and waits up to `timeout` (what exec
    /// probes use). A command that outlives `timeout` is an error from the runtime.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.to_vec(),
            // CRI counts whole seconds; 0 would mean "no timeout".
            timeout: i64::try_from(timeout.as_secs().max(1)).unwrap_or(i64::MAX),
        };
        let deadline = self.timeout.saturating_add(timeout);
        let resp = call("ExecSync", id, deadline, rt.exec_sync(req)).await?;
        Ok(ExecOutput {
            stdout: resp.stdout,
            stderr: resp.stderr,
            exit_code: resp.exit_code,
        })
    }

    /// `ReopenContainerLog`: makes the runtime reopen the log file (after rotation).
    pub async fn reopen_container_log(&self, id: &str) -> Result<(), ClientError> {
        let mut rt = self.runtime.clone();
        let req = proto::ReopenContainerLogRequest {
            container_id: id.to_owned(),
        };
        call(
            "ReopenContainerLog",
            id,
            self.timeout,
            rt.reopen_container_log(req),
        )
        .await?;
        Ok(())
    }

    /// `ImageStatus`: the image if present locally, `None` if not.
    pub async fn image_status(&self, image: &str) -> Result<Option<proto::Image>, ClientError> {
        let mut is = self.images.clone();
        let req = proto::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        let resp = call("ImageStatus", image, self.timeout, is.image_status(req)).await?;
        Ok(resp.image)
    }

    /// `PullImage`: fetches the image from its registry; returns the image reference
    /// (its id). `sandbox_config` is the pod's, when pulling for a pod.
    pub async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<&proto::PodSandboxConfig>,
    ) -> Result<String, ClientError> {
        let mut is = self.images.clone();
        let req = proto::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config: sandbox_config.cloned(),
        };
        let deadline = self.timeout.max(PULL_TIMEOUT);
        let resp = call("PullImage", image, deadline, is.pull_image(req)).await?;
        Ok(resp.image_ref)
    }

    /// `ListImages`: every image the runtime has.
    pub async fn list_images(&self) -> Result<Vec<proto::Image>, ClientError> {
        let mut is = self.images.clone();
        let req = proto::ListImagesRequest { filter: None };
        let resp = call("ListImages", "", self.timeout, is.list_images(req)).await?;
        Ok(resp.images)
    }
}

fn image_spec(image: &str) -> proto::ImageSpec {
    proto::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    }
}

/// Runs one call under a deadline and sorts its failure.
async fn call<T, F>(
    name: &'static str,
    id: &str,
    deadline: Duration,
    fut: F,
) -> Result<T, ClientError>
where
    F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(resp)) => Ok(resp.into_inner()),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => Err(ClientError::NotFound {
            call: name,
            id: id.to_owned(),
        }),
        Ok(Err(status)) => Err(ClientError::Rpc {
            call: name,
            id: id.to_owned(),
            status: Box::new(status),
        }),
        Err(_) => Err(ClientError::Timeout {
            call: name,
            id: id.to_owned(),
            after: deadline,
        }),
    }
}

/// Reads pid and cgroups path out of containerd's verbose container status: its
/// `info` entry is a JSON document with `pid` and `runtimeSpec.linux.cgroupsPath`.
fn parse_container_info(info: &HashMap<String, String>) -> ContainerInfo {
    let Some(doc) = info
        .get("info")
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw).ok())
    else {
        return ContainerInfo::default();
    };
    ContainerInfo {
        pid: doc
            .get("pid")
            .and_then(serde_json::Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        cgroups_path: doc
            .pointer("/runtimeSpec/linux/cgroupsPath")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            socket_path("unix:///run/c.sock").ok(),
            Some(PathBuf::from("/run/c.sock"))
        );
        assert_eq!(
            socket_path("/run/c.sock").ok(),
            Some(PathBuf::from("/run/c.sock"))
        );
        for bad in [
            "tcp://1.2.3.4:5",
            "unix://",
            "unix://rel.sock",
            "rel.sock",
            "",
        ] {
            assert!(
                matches!(socket_path(bad), Err(ClientError::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn container_info_from_verbose_status() {
        let mut info = HashMap::new();
        info.insert(
            "info".to_owned(),
            r#"{"pid":4242,"runtimeSpec":{"linux":{"cgroupsPath":"/pods/p1/c1"}}}"#.to_owned(),
        );
        assert_eq!(
            parse_container_info(&info),
            ContainerInfo {
                pid: 4242,
                cgroups_path: Some("/pods/p1/c1".to_owned())
            }
        );
        assert_eq!(
            parse_container_info(&HashMap::new()),
            ContainerInfo::default()
        );
    }

    #[tokio::test]
    async fn unreachable_socket_is_an_rpc_error() {
        let client = CriClient::for_socket(Path::new("/nonexistent/mast-cri-test.sock"))
            .with_timeout(Duration::from_secs(5));
        match client.version().await {
            Err(ClientError::Rpc { call, .. }) => assert_eq!(call, "Version"),
            other => panic!("expected an rpc error, got {other:?}"),
        }
    }
}
