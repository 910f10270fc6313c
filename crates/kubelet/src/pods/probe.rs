//! Container probes (liveness, readiness, startup), one task per running container
//! and probe, as upstream's prober workers: wait initialDelaySeconds, then probe every
//! periodSeconds with timeoutSeconds; successThreshold consecutive successes or
//! failureThreshold consecutive failures flip the result.
//!
//! - readiness drives the container's `ready` (false until the first success);
//! - startup gates the other two; once it succeeds it stops, `started` is true;
//! - a liveness (or startup) failure stops the container with the pod's grace period;
//!   the worker then restarts it by the pod's restartPolicy (a restart counted).
//!
//! Results are keyed by container ID, so a restarted container starts afresh. Each
//! change wakes the pod's worker, which writes the status.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::runtime::{self, ContainerState, Runtime};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// What the probes of one container found so far (None: not decided yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeState {
    pub ready: Option<bool>,
    pub started: Option<bool>,
}

/// Probe results by container ID.
pub type Results = HashMap<String, ProbeState>;

/// The User-Agent upstream's prober sends.
const USER_AGENT: &str = "kube-probe/1.37";
/// Upstream's default terminationGracePeriodSeconds.
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// At most this much of an HTTP answer is read (its status line is what counts).
const MAX_RESPONSE: usize = 10 * 1024;

/// The probe tasks of one pod.
#[derive(Debug, Default)]
pub struct Prober {
    results: Arc<Mutex<Results>>,
    tasks: HashMap<(String, ProbeKind), JoinHandle<()>>,
    changed: Arc<Notify>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn seconds(value: Option<i32>, default: u64, min: u64) -> Duration {
    Duration::from_secs(
        value
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(default)
            .max(min),
    )
}

impl Prober {
    /// Resolves when a probe result changed.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// The results so far.
    pub fn results(&self) -> Results {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stop_all(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }

    /// Starts probes for the running containers that have them; stops those of
    /// containers that no longer run.
    pub fn sync(
        &mut self,
        runtime_handle: &Arc<dyn Runtime>,
        pod: &Pod,
        observed: Option<&runtime::PodStatus>,
    ) {
        let spec = pod.spec.clone().unwrap_or_default();
        let grace = Duration::from_secs(
            u64::try_from(
                spec.termination_grace_period_seconds
                    .unwrap_or(DEFAULT_GRACE_SECONDS),
            )
            .unwrap_or(0),
        );
        let ip = observed.and_then(|o| o.sandbox.ip);
        let mut wanted: Vec<(String, ProbeKind, Container, Probe)> = Vec::new();
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| super::status::is_sidecar(c));
        for container in spec.containers.iter().chain(sidecars) {
            let Some((latest, _)) = observed.map(|o| o.container(&container.name)) else {
                continue;
            };
            let Some(latest) = latest.filter(|c| matches!(c.state, ContainerState::Running { .. }))
            else {
                continue;
            };
            for (kind, probe) in [
                (ProbeKind::Liveness, &container.liveness_probe),
                (ProbeKind::Readiness, &container.readiness_probe),
                (ProbeKind::Startup, &container.startup_probe),
            ] {
                if let Some(probe) = probe {
                    wanted.push((latest.id.clone(), kind, container.clone(), probe.clone()));
                }
            }
        }
        // Containers that went: their tasks and results.
        let keep: Vec<(String, ProbeKind)> = wanted
            .iter()
            .map(|(id, kind, ..)| (id.clone(), *kind))
            .collect();
        self.tasks.retain(|key, task| {
            let stay = keep.contains(key);
            if !stay {
                task.abort();
            }
            stay
        });
        {
            let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
            results.retain(|id, _| keep.iter().any(|(k, _)| k == id));
        }
        for (id, kind, container, probe) in wanted {
            let key = (id.clone(), kind);
            if self.tasks.contains_key(&key) {
                continue;
            }
            let worker = ProbeWorker {
                kind,
                id,
                container,
                probe,
                ip,
                grace,
                runtime: runtime_handle.clone(),
                results: self.results.clone(),
                changed: self.changed.clone(),
            };
            self.tasks.insert(key, tokio::spawn(worker.run()));
        }
    }
}

struct ProbeWorker {
    kind: ProbeKind,
    id: String,
    container: Container,
    probe: Probe,
    ip: Option<IpAddr>,
    grace: Duration,
    runtime: Arc<dyn Runtime>,
    results: Arc<Mutex<Results>>,
    changed: Arc<Notify>,
}

impl ProbeWorker {
    fn update(&self, f: impl FnOnce(&mut ProbeState)) {
        let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        let state = results.entry(self.id.clone()).or_default();
        let before = *state;
        f(state);
        if *state != before {
            self.changed.notify_one();
        }
    }

    fn started(&self) -> bool {
        self.container.startup_probe.is_none()
            || self
                .results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&self.id)
                .and_then(|s| s.started)
                == Some(true)
    }

    async fn run(self) {
        let p = &self.probe;
        let delay = seconds(p.initial_delay_seconds, 0, 0);
        let period = seconds(p.period_seconds, 10, 1);
        let timeout = seconds(p.timeout_seconds, 1, 1);
        let success_threshold = p.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = p.failure_threshold.unwrap_or(3).max(1);
        let grace = p
            .termination_grace_period_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.grace, Duration::from_secs);
        match self.kind {
            ProbeKind::Readiness => self.update(|s| s.ready = Some(false)),
            ProbeKind::Startup => self.update(|s| s.started = Some(false)),
            ProbeKind::Liveness => {}
        }
        tokio::time::sleep(delay).await;
        let (mut successes, mut failures) = (0, 0);
        loop {
            if self.kind != ProbeKind::Startup && !self.started() {
                tokio::time::sleep(period).await;
                continue;
            }
            let outcome = self.execute(timeout).await;
            match &outcome {
                Ok(()) => {
                    successes += 1;
                    failures = 0;
                }
                Err(message) => {
                    failures += 1;
                    successes = 0;
                    tracing::debug!(
                        container = %self.container.name,
                        kind = ?self.kind,
                        failures,
                        %message,
                        "probe failed"
                    );
                }
            }
            match self.kind {
                ProbeKind::Readiness => {
                    if successes >= success_threshold {
                        self.update(|s| s.ready = Some(true));
                    } else if failures >= failure_threshold {
                        self.update(|s| s.ready = Some(false));
                    }
                }
                ProbeKind::Startup if successes >= 1 => {
                    self.update(|s| s.started = Some(true));
                    return;
                }
                ProbeKind::Liveness | ProbeKind::Startup if failures >= failure_threshold => {
                    tracing::info!(
                        container = %self.container.name,
                        id = %self.id,
                        kind = ?self.kind,
                        message = %outcome.err().unwrap_or_default(),
                        "probe failed; the container will be restarted"
                    );
                    if let Err(e) = self.runtime.stop_container(&self.id, grace).await {
                        tracing::warn!(id = %self.id, error = %e, "stopping a failed container");
                    }
                    self.changed.notify_one();
                    return;
                }
                _ => {}
            }
            tokio::time::sleep(period).await;
        }
    }

    /// One probe; the error says why it failed.
    async fn execute(&self, timeout: Duration) -> Result<(), String> {
        let p = &self.probe;
        if let Some(exec) = &p.exec {
            let command = exec.command.clone().unwrap_or_default();
            let result = self
                .runtime
                .exec_sync(&self.id, &command, timeout)
                .await
                .map_err(|e| e.to_string())?;
            return if result.exit_code == 0 {
                Ok(())
            } else {
                Err(format!(
                    "command exited with {}: {}",
                    result.exit_code,
                    String::from_utf8_lossy(&result.output).trim()
                ))
            };
        }
        if let Some(http) = &p.http_get {
            let host = self.host(http.host.as_deref())?;
            let port = port(&self.container, &http.port)?;
            return tokio::time::timeout(timeout, http_get(host, port, http))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?;
        }
        if let Some(tcp) = &p.tcp_socket {
            let host = self.host(tcp.host.as_deref())?;
            let port = port(&self.container, &tcp.port)?;
            return match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("dial {host}:{port}: {e}")),
                Err(_) => Err(format!("dial {host}:{port}: timeout")),
            };
        }
        Err("no supported handler (exec, httpGet, tcpSocket)".into())
    }

    fn host(&self, host: Option<&str>) -> Result<IpAddr, String> {
        match host.filter(|h| !h.is_empty()) {
            Some(h) => h
                .parse()
                .map_err(|_| format!("host {h:?} is not an IP address")),
            None => self.ip.ok_or_else(|| "the pod has no IP".to_string()),
        }
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
fn port(container: &Container, port: &IntOrString) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("no port named {name:?}"))?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid port {number}"))
}

/// The HTTP request an httpGet probe sends.
fn http_request(host: IpAddr, port: u16, action: &HTTPGetAction) -> String {
    let path = action
        .path
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let headers = action.http_headers.clone().unwrap_or_default();
    let has = |name: &str| headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
    let host_header = match host {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    };
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    if !has("host") {
        request.push_str(&format!("Host: {host_header}\r\n"));
    }
    if !has("user-agent") {
        request.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
    }
    if !has("accept") {
        request.push_str("Accept: */*\r\n");
    }
    for h in &headers {
        // Header injection through a value is refused by leaving such values out.
        if !h.name.contains(['\r', '\n', ':']) && !h.value.contains(['\r', '\n']) {
            request.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    request
}

/// The status code of an HTTP answer's first line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

async fn http_get(host: IpAddr, port: u16, action: &HTTPGetAction) -> Result<(), String> {
    if action
        .scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    {
        return Err("HTTPS probes are not supported yet".into());
    }
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("dial {host}:{port}: {e}"))?;
    stream
        .write_all(http_request(host, port, action).as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < MAX_RESPONSE {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    match status_code(&head) {
        // Upstream counts 2xx and 3xx as success.
        Some(code) if (200..400).contains(&code) => Ok(()),
        Some(code) => Err(format!("HTTP probe failed with statuscode: {code}")),
        None => Err("not an HTTP answer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        serde_json::from_value(serde_json::json!({
            "name": "web", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .expect("container")
    }

    #[test]
    fn ports_by_number_or_name() {
        let c = container();
        assert_eq!(port(&c, &IntOrString::Int(80)), Ok(80));
        assert_eq!(port(&c, &IntOrString::String("http".into())), Ok(8080));
        assert_eq!(port(&c, &IntOrString::String("81".into())), Ok(81));
        assert!(port(&c, &IntOrString::String("nope".into())).is_err());
        assert!(port(&c, &IntOrString::Int(70000)).is_err());
    }

    #[test]
    fn requests_and_answers() {
        let action: HTTPGetAction = serde_json::from_value(serde_json::json!({
            "path": "healthz", "port": 80,
            "httpHeaders": [{"name": "X-Probe", "value": "1"}, {"name": "Bad", "value": "a\r\nInjected: 1"}]
        }))
        .expect("action");
        let request = http_request("10.0.0.1".parse().expect("ip"), 80, &action);
        assert!(request.starts_with("GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:80\r\n"));
        assert!(request.contains("X-Probe: 1\r\n"));
        assert!(!request.contains("Injected"));
        assert!(request.ends_with("\r\n\r\n"));
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"garbage"), None);
    }

    #[tokio::test]
    async fn http_probes_against_a_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 500 Oops\r\n\r\n"] {
                if let Ok((mut s, _)) = listener.accept().await {
                    let mut buf = [0u8; 512];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(answer.as_bytes()).await;
                }
            }
        });
        let action = HTTPGetAction::default();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(http_get(ip, port, &action).await, Ok(()));
        assert!(http_get(ip, port, &action).await.is_err());
    }
}
