//! A runtime with no processes: sandboxes get an IP from the node's pod CIDR (as the
//! CNI bridge's host-local IPAM would give), init containers complete at once, app
//! containers run until stopped, and stopping is immediate. Everything lives in one
//! map per node, so a hollow node costs a few hundred bytes until it has pods.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::{
    ContainerConfig, ContainerKind, ContainerState, ContainerStatus, ExecResult, LogOptions,
    LogStream, PodRef, PodStatus, Runtime, RuntimeError, RuntimeVersion, SandboxConfig,
    SandboxState, SandboxStatus,
};
use crate::ipam::{Allocator, Cidr};

/// The version the Node reports (`fake://0.1`).
pub const VERSION: &str = "0.1";

/// The in-memory runtime of one node.
#[derive(Debug)]
pub struct FakeRuntime {
    node: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ipam: Option<Allocator>,
    pods: HashMap<String, FakePod>,
}

#[derive(Debug)]
struct FakePod {
    reference: PodRef,
    sandbox: SandboxStatus,
    containers: Vec<ContainerStatus>,
    /// Flips to true when the pod stops; followed logs end then.
    stopped: watch::Sender<bool>,
}

impl FakeRuntime {
    pub fn new(node: &str) -> Self {
        FakeRuntime {
            node: node.to_string(),
            state: Mutex::new(State::default()),
        }
    }

    /// The node this runtime belongs to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How many pods the runtime holds.
    pub fn pod_count(&self) -> usize {
        self.lock().pods.len()
    }

    /// How many pod IPs are given out.
    pub fn ips_in_use(&self) -> usize {
        self.lock().ipam.as_ref().map_or(0, Allocator::in_use)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; if one ever did, the map is
        // still consistent enough to go on with.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError> {
        let parsed: Cidr =
            cidr.parse()
                .map_err(|e: crate::ipam::IpamError| RuntimeError::Failed {
                    operation: "UpdateRuntimeConfig".into(),
                    message: e.to_string(),
                })?;
        let mut state = self.lock();
        if state.ipam.as_ref().is_some_and(|a| a.cidr() == parsed) {
            return Ok(());
        }
        let mut allocator = Allocator::new(parsed).map_err(|e| RuntimeError::Failed {
            operation: "UpdateRuntimeConfig".into(),
            message: e.to_string(),
        })?;
        // Pods that keep running keep their addresses.
        for pod in state.pods.values() {
            if let Some(ip) = pod.sandbox.ip {
                allocator.reserve(ip);
            }
        }
        state.ipam = Some(allocator);
        Ok(())
    }

    fn run_sandbox(&self, config: &SandboxConfig) -> Result<String, RuntimeError> {
        let mut state = self.lock();
        // A sandbox recreated for the same pod gives its old address back first.
        if let Some(old) = state.pods.remove(&config.uid) {
            release(&mut state, &old);
        }
        let ip = if config.host_network {
            None
        } else {
            let ipam = state.ipam.as_mut().ok_or_else(|| {
                RuntimeError::NetworkNotReady(format!(
                    "node {} has no pod CIDR assigned yet",
                    self.node
                ))
            })?;
            Some(ipam.allocate().ok_or_else(|| RuntimeError::Failed {
                operation: "RunPodSandbox".into(),
                message: format!("no free address in {}", ipam.cidr()),
            })?)
        };
        let id = new_id();
        let (stopped, _) = watch::channel(false);
        state.pods.insert(
            config.uid.clone(),
            FakePod {
                reference: PodRef {
                    uid: config.uid.clone(),
                    namespace: config.namespace.clone(),
                    name: config.name.clone(),
                },
                sandbox: SandboxStatus {
                    id: id.clone(),
                    attempt: config.attempt,
                    state: SandboxState::Ready,
                    ip,
                    created_at: SystemTime::now(),
                },
                containers: Vec::new(),
                stopped,
            },
        );
        Ok(id)
    }

    fn start(
        &self,
        sandbox_id: &str,
        sandbox: &SandboxConfig,
        container: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let mut state = self.lock();
        let pod = state
            .pods
            .get_mut(&sandbox.uid)
            .filter(|p| p.sandbox.id == sandbox_id)
            .ok_or_else(|| RuntimeError::NotFound {
                what: format!("sandbox {sandbox_id}"),
            })?;
        if pod.sandbox.state != SandboxState::Ready {
            return Err(RuntimeError::Failed {
                operation: "StartContainer".into(),
                message: format!("sandbox {sandbox_id} is not ready"),
            });
        }
        let now = SystemTime::now();
        let id = format!("fake://{}", new_id());
        let state = match container.kind {
            // Nothing to run: an init container succeeds as soon as it starts.
            ContainerKind::Init => ContainerState::Exited {
                started_at: now,
                finished_at: now,
                exit_code: 0,
                reason: "Completed".into(),
                message: String::new(),
            },
            ContainerKind::App => ContainerState::Running { started_at: now },
        };
        pod.containers.push(ContainerStatus {
            id: id.clone(),
            name: container.name.clone(),
            attempt: container.attempt,
            image: container.image.clone(),
            image_ref: image_ref(&container.image),
            state,
        });
        Ok(id)
    }

    fn stop(&self, uid: &str) {
        let mut state = self.lock();
        let Some(pod) = state.pods.get_mut(uid) else {
            return;
        };
        let now = SystemTime::now();
        for container in &mut pod.containers {
            if let ContainerState::Running { started_at } = container.state {
                // A fake process honours SIGTERM at once and exits cleanly.
                container.state = ContainerState::Exited {
                    started_at,
                    finished_at: now,
                    exit_code: 0,
                    reason: "Completed".into(),
                    message: String::new(),
                };
            }
        }
        pod.sandbox.state = SandboxState::NotReady;
        pod.stopped.send_replace(true);
    }

    fn logs(
        &self,
        uid: &str,
        container: &str,
        options: &LogOptions,
    ) -> Result<LogStream, RuntimeError> {
        let state = self.lock();
        let pod = state.pods.get(uid).ok_or_else(|| RuntimeError::NotFound {
            what: format!("pod {uid}"),
        })?;
        let mut attempts: Vec<&ContainerStatus> = pod
            .containers
            .iter()
            .filter(|c| c.name == container)
            .collect();
        attempts.sort_by_key(|c| c.attempt);
        let chosen = if options.previous {
            attempts.len().checked_sub(2).and_then(|i| attempts.get(i))
        } else {
            attempts.last()
        };
        let Some(chosen) = chosen else {
            let name = &pod.reference.name;
            return Err(if options.previous {
                RuntimeError::BadRequest(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ))
            } else {
                RuntimeError::NotFound {
                    what: format!("container \"{container}\" in pod \"{name}\""),
                }
            });
        };
        let started_at = match chosen.state {
            ContainerState::Running { started_at } | ContainerState::Exited { started_at, .. } => {
                started_at
            }
            ContainerState::Created | ContainerState::Unknown => SystemTime::now(),
        };
        let mut text = String::new();
        let shown = options.tail_lines != Some(0) && options.since.is_none_or(|s| s <= started_at);
        if shown {
            if options.timestamps {
                text.push_str(&rfc3339_nanos(started_at));
                text.push(' ');
            }
            text.push_str(&format!(
                "fake runtime: container {container} of pod {}/{} started (no output)\n",
                pod.reference.namespace, pod.reference.name
            ));
        }
        if let Some(limit) = options.limit_bytes {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            if text.len() > limit {
                let mut cut = limit;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
        }
        let first = futures::stream::iter((!text.is_empty()).then(|| Ok(Bytes::from(text))));
        let running = matches!(chosen.state, ContainerState::Running { .. }) && !options.previous;
        if !(options.follow && running) {
            return Ok(first.boxed());
        }
        // Following a running container: hold the stream open until the pod stops or
        // goes, as a real log file stops growing then.
        let mut stopped = pod.stopped.subscribe();
        let end = futures::stream::once(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .filter_map(|()| async { None });
        Ok(first.chain(end).boxed())
    }
}

fn release(state: &mut State, pod: &FakePod) {
    if let (Some(ip), Some(ipam)) = (pod.sandbox.ip, state.ipam.as_mut()) {
        ipam.release(ip);
    }
    pod.stopped.send_replace(true);
}

impl Runtime for FakeRuntime {
    fn version(&self) -> RuntimeVersion {
        RuntimeVersion {
            name: "fake".into(),
            version: VERSION.into(),
        }
    }

    fn update_pod_cidr<'a>(&'a self, cidr: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        async move { self.set_pod_cidr(cidr) }.boxed()
    }

    fn run_pod_sandbox<'a>(
        &'a self,
        config: &'a SandboxConfig,
    ) -> BoxFuture<'a, Result<String, RuntimeError>> {
        async move { self.run_sandbox(config) }.boxed()
    }

    fn start_container<'a>(
        &'a self,
        sandbox_id: &'a str,
        sandbox: &'a SandboxConfig,
        container: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<String, RuntimeError>> {
        async move { self.start(sandbox_id, sandbox, container) }.boxed()
    }

    fn stop_pod<'a>(
        &'a self,
        uid: &'a str,
        _grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        async move {
            self.stop(uid);
            Ok(())
        }
        .boxed()
    }

    fn remove_pod<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        async move {
            let mut state = self.lock();
            if let Some(pod) = state.pods.remove(uid) {
                release(&mut state, &pod);
            }
            Ok(())
        }
        .boxed()
    }

    fn pod_status<'a>(
        &'a self,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<Option<PodStatus>, RuntimeError>> {
        async move {
            Ok(self.lock().pods.get(uid).map(|pod| PodStatus {
                sandbox: pod.sandbox.clone(),
                containers: pod.containers.clone(),
            }))
        }
        .boxed()
    }

    fn list_pods(&self) -> BoxFuture<'_, Result<Vec<PodRef>, RuntimeError>> {
        async move {
            Ok(self
                .lock()
                .pods
                .values()
                .map(|p| p.reference.clone())
                .collect())
        }
        .boxed()
    }

    fn container_logs<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, Result<LogStream, RuntimeError>> {
        async move { self.logs(uid, container, options) }.boxed()
    }

    fn exec_sync<'a>(
        &'a self,
        _container_id: &'a str,
        _cmd: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecResult, RuntimeError>> {
        // Fake processes answer every probe command with success.
        async move { Ok(ExecResult::default()) }.boxed()
    }

    fn stop_container<'a>(
        &'a self,
        container_id: &'a str,
        _grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        async move {
            let mut state = self.lock();
            let now = SystemTime::now();
            for pod in state.pods.values_mut() {
                for c in &mut pod.containers {
                    if let (true, ContainerState::Running { started_at }) =
                        (c.id == container_id, &c.state)
                    {
                        // Killed: upstream's 137 (128 + SIGKILL).
                        c.state = ContainerState::Exited {
                            started_at: *started_at,
                            finished_at: now,
                            exit_code: 137,
                            reason: "Error".into(),
                            message: String::new(),
                        };
                        return Ok(());
                    }
                }
            }
            Err(RuntimeError::NotFound {
                what: format!("container {container_id}"),
            })
        }
        .boxed()
    }
}

/// 64 hex digits, like a containerd id.
fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A digest reference for `image`, stable per image name: `docker.io/library/nginx`
/// style repository, a made-up sha256.
pub fn image_ref(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A tag is a `:` after the last `/` (a `:` before it is a registry port).
    let repository = match without_digest.rfind(':') {
        Some(colon) if !without_digest[colon..].contains('/') => &without_digest[..colon],
        _ => without_digest,
    };
    let repository = match repository.split_once('/') {
        None => format!("docker.io/library/{repository}"),
        Some((first, _))
            if !first.contains('.') && !first.contains(':') && first != "localhost" =>
        {
            format!("docker.io/{repository}")
        }
        Some(_) => repository.to_string(),
    };
    let digest: String = (0u8..4)
        .map(|salt| {
            let mut hasher = DefaultHasher::new();
            (salt, image).hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect();
    format!("{repository}@sha256:{digest}")
}

/// RFC 3339 with nanoseconds, as container log timestamps are written.
fn rfc3339_nanos(time: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(time)
        .ok()
        .and_then(|t| k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%.9fZ", t).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(uid: &str) -> SandboxConfig {
        SandboxConfig {
            uid: uid.into(),
            namespace: "default".into(),
            name: format!("pod-{uid}"),
            ..SandboxConfig::default()
        }
    }

    fn container(name: &str, kind: ContainerKind) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image: "nginx:1.27".into(),
            kind,
            attempt: 0,
            command: vec![],
            args: vec![],
            env: vec![],
            working_dir: None,
            log_path: PathBuf::from(format!("{name}/0.log")),
            pull_policy: super::super::PullPolicy::IfNotPresent,
            mounts: vec![],
            resources: super::super::Resources::default(),
        }
    }

    use std::path::PathBuf;

    #[tokio::test]
    async fn pods_wait_for_a_cidr_then_get_addresses() {
        let rt = FakeRuntime::new("n1");
        let err = rt
            .run_pod_sandbox(&sandbox("a"))
            .await
            .expect_err("no cidr");
        assert!(matches!(err, RuntimeError::NetworkNotReady(_)), "{err}");
        // Host-network pods need no address.
        let host = SandboxConfig {
            host_network: true,
            ..sandbox("h")
        };
        rt.run_pod_sandbox(&host).await.expect("host network");
        rt.update_pod_cidr("10.1.0.0/24").await.expect("cidr");
        let id = rt.run_pod_sandbox(&sandbox("a")).await.expect("sandbox");
        let status = rt.pod_status("a").await.expect("status").expect("pod");
        assert_eq!(status.sandbox.id, id);
        assert_eq!(status.sandbox.ip, Some("10.1.0.2".parse().expect("ip")));
        assert_eq!(rt.ips_in_use(), 1);
        rt.remove_pod("a").await.expect("remove");
        assert_eq!(rt.ips_in_use(), 0);
        assert_eq!(rt.pod_count(), 1);
    }

    #[tokio::test]
    async fn containers_run_and_stop() {
        let rt = FakeRuntime::new("n1");
        rt.update_pod_cidr("10.1.0.0/24").await.expect("cidr");
        let config = sandbox("a");
        let id = rt.run_pod_sandbox(&config).await.expect("sandbox");
        let init = rt
            .start_container(&id, &config, &container("init", ContainerKind::Init))
            .await
            .expect("init");
        assert!(init.starts_with("fake://"));
        rt.start_container(&id, &config, &container("web", ContainerKind::App))
            .await
            .expect("app");
        let status = rt.pod_status("a").await.expect("status").expect("pod");
        let (init, _) = status.container("init");
        assert!(matches!(
            init.map(|c| &c.state),
            Some(ContainerState::Exited { exit_code: 0, .. })
        ));
        let (web, previous) = status.container("web");
        assert!(matches!(
            web.map(|c| &c.state),
            Some(ContainerState::Running { .. })
        ));
        assert!(previous.is_none());
        rt.stop_pod("a", Duration::from_secs(30))
            .await
            .expect("stop");
        let status = rt.pod_status("a").await.expect("status").expect("pod");
        assert_eq!(status.sandbox.state, SandboxState::NotReady);
        assert!(
            status
                .containers
                .iter()
                .all(|c| matches!(c.state, ContainerState::Exited { exit_code: 0, .. }))
        );
        let listed = rt.list_pods().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "pod-a");
        // A stale sandbox id is refused.
        assert!(
            rt.start_container("nope", &config, &container("x", ContainerKind::App))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn logs_answer_a_line_or_nothing() {
        let rt = FakeRuntime::new("n1");
        rt.update_pod_cidr("10.1.0.0/24").await.expect("cidr");
        let config = sandbox("a");
        let id = rt.run_pod_sandbox(&config).await.expect("sandbox");
        rt.start_container(&id, &config, &container("web", ContainerKind::App))
            .await
            .expect("app");
        let read = |options: LogOptions| {
            let rt = &rt;
            async move {
                let stream = rt.container_logs("a", "web", &options).await?;
                let chunks: Vec<Result<Bytes, RuntimeError>> = stream.collect().await;
                let mut text = String::new();
                for chunk in chunks {
                    text.push_str(&String::from_utf8_lossy(&chunk?));
                }
                Ok::<String, RuntimeError>(text)
            }
        };
        let line = read(LogOptions::default()).await.expect("logs");
        assert!(
            line.contains("container web of pod default/pod-a"),
            "{line}"
        );
        assert!(line.ends_with('\n'));
        let tail0 = LogOptions {
            tail_lines: Some(0),
            ..LogOptions::default()
        };
        assert_eq!(read(tail0).await.expect("logs"), "");
        let stamped = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        let stamped = read(stamped).await.expect("logs");
        assert!(stamped.split(' ').next().is_some_and(|t| t.ends_with('Z')));
        let limited = LogOptions {
            limit_bytes: Some(5),
            ..LogOptions::default()
        };
        assert_eq!(read(limited).await.expect("logs").len(), 5);
        let previous = LogOptions {
            previous: true,
            ..LogOptions::default()
        };
        assert!(matches!(
            read(previous).await,
            Err(RuntimeError::BadRequest(_))
        ));
        assert!(
            rt.container_logs("a", "nope", &LogOptions::default())
                .await
                .is_err()
        );

        // A followed log ends when the pod stops.
        let follow = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let mut stream = rt
            .container_logs("a", "web", &follow)
            .await
            .expect("follow");
        assert!(stream.next().await.is_some());
        rt.stop_pod("a", Duration::ZERO).await.expect("stop");
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        assert!(matches!(end, Ok(None)));
    }

    #[test]
    fn image_refs() {
        let cases = [
            ("nginx", "docker.io/library/nginx@sha256:"),
            ("nginx:1.27", "docker.io/library/nginx@sha256:"),
            ("bitnami/redis:7", "docker.io/bitnami/redis@sha256:"),
            (
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io/pause@sha256:",
            ),
            ("localhost:5000/app", "localhost:5000/app@sha256:"),
        ];
        for (image, prefix) in cases {
            let r = image_ref(image);
            assert!(r.starts_with(prefix), "{image}: {r}");
            assert_eq!(r.len(), prefix.len() + 64, "{image}: {r}");
            assert_eq!(r, image_ref(image));
        }
    }
}
