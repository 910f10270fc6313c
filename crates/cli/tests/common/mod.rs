//! Test harness: a real `mast server` process on a free loopback port.
//!
//! Each [`Server`] gets its own temp dir (data dir, kubeconfig, log), so tests run in
//! parallel. Startup follows the server's contract: with `--secure-port 0` it binds a
//! free port and then writes the kubeconfig atomically, so we wait for the file, read the
//! server URL from it, and wait for `GET /readyz` to answer 200. Every wait has a
//! deadline; when one runs out, or the process dies early, the server's log is printed.
//! Dropping the [`Server`] kills the process and waits for it, so nothing leaks.
//!
//! Raw HTTP (for `/readyz`, `/metrics`) goes through a tiny blocking HTTP/1.1 client on
//! `std::net`, which keeps the harness free of extra dependencies.

// Each test crate uses a different part of the harness.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::config::{KubeConfigOptions, Kubeconfig};
use tempfile::TempDir;

/// How long a server gets from spawn to a 200 on `/readyz`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a single raw HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often conditions are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Which store the server runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite in the server's data dir (no `--datastore-endpoint`).
    Sqlite,
    /// A real etcd cluster at these client URLs.
    Etcd(Vec<String>),
}

/// A running `mast server`, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    url: String,
    /// `host:port` of `url`, for the raw HTTP client.
    authority: String,
    kubeconfig: PathBuf,
    log: PathBuf,
    /// Set once [`Server::fail`] printed the whole log, so `Drop` does not repeat it.
    log_printed: AtomicBool,
    dir: TempDir,
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Server {
    /// Starts a server on `backend` with the default flags.
    pub fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[])
    }

    /// Starts a server on `backend` with extra command-line arguments
    /// (e.g. `["--watch-cache-size", "64"]`), and waits until it is ready.
    pub fn start_with(backend: Backend, extra_args: &[&str]) -> Self {
        Self::start_subcommand("server", backend, extra_args)
    }

    /// Starts `mast <subcommand>` (`server`, or `apiserver`, which takes the same flags).
    /// The API suites run it without the scheduler, so pods stay where they put them.
    pub fn start_subcommand(subcommand: &str, backend: Backend, extra_args: &[&str]) -> Self {
        Self::launch(subcommand, backend, extra_args, false, false)
    }

    /// Starts `mast server` with its scheduler (no controllers).
    pub fn start_with_scheduler(backend: Backend) -> Self {
        Self::launch("server", backend, &[], true, false)
    }

    /// Starts `mast server` with its scheduler and `extra_args`, leaving the controllers
    /// to a separate `mast controller-manager`.
    pub fn start_without_controllers(backend: Backend, extra_args: &[&str]) -> Self {
        Self::launch("server", backend, extra_args, true, false)
    }

    /// Starts `mast server` as users run it: API server, scheduler and controllers.
    pub fn start_control_plane(backend: Backend, extra_args: &[&str]) -> Self {
        Self::launch("server", backend, extra_args, true, true)
    }

    fn launch(
        subcommand: &str,
        backend: Backend,
        extra_args: &[&str],
        scheduler: bool,
        controllers: bool,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mast-server-")
            .tempdir()
            .expect("create a temp dir for the server");
        let data_dir = dir.path().join("data");
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).expect("create the server log file");
        let log_file_2 = log_file.try_clone().expect("clone the server log handle");

        let mut command = Command::new(env!("CARGO_BIN_EXE_mast"));
        command
            .arg(subcommand)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
            // A test process killed outright (a nextest timeout) leaves no server.
            .arg("--exit-with-parent")
            .arg("--write-kubeconfig")
            .arg(&kubeconfig);
        if !scheduler {
            command.arg("--disable-scheduler");
        }
        if subcommand == "server" && !controllers {
            command.arg("--disable-controller-manager");
        }
        if let Backend::Etcd(endpoints) = &backend {
            command.arg("--datastore-endpoint").arg(endpoints.join(","));
        }
        command
            .args(extra_args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file_2);
        let child = command.spawn().expect("spawn the mast binary");

        // Build the value first so that a panic from here on kills the process.
        let mut server = Server {
            child: Some(child),
            url: String::new(),
            authority: String::new(),
            kubeconfig,
            log,
            log_printed: AtomicBool::new(false),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let kubeconfig_path = server.kubeconfig.clone();
        server.wait_until(deadline, "the kubeconfig to be written", || {
            kubeconfig_path.exists()
        });
        server.url = server_url(&server.kubeconfig);
        server.authority = server
            .url
            .strip_prefix("http://")
            .unwrap_or_else(|| {
                server.fail(&format!(
                    "kubeconfig names {} but the server speaks plain HTTP",
                    server.url
                ))
            })
            .trim_end_matches('/')
            .to_string();
        let authority = server.authority.clone();
        server.wait_until(deadline, "GET /readyz to answer 200", || {
            http_exchange(&authority, "GET", "/readyz", &[], &[])
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        server
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin kubeconfig the server wrote.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// This server's temp dir, for files a test wants to keep next to it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A kube-rs client configured from the server's kubeconfig file, as a user would.
    pub async fn client(&self) -> kube::Client {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One raw HTTP request to the server (blocking; keep it out of hot async paths).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_exchange(&self.authority, method, path, headers, body)
            .unwrap_or_else(|e| self.fail(&format!("{method} {path} failed: {e}")))
    }

    /// `GET /metrics`, in Prometheus text format.
    pub fn metrics(&self) -> String {
        let response = self.http("GET", "/metrics", &[], &[]);
        assert_eq!(
            response.status,
            200,
            "GET /metrics answered {}: {}",
            response.status,
            response.text()
        );
        response.text()
    }

    /// The value of the sample `name{...resource="<resource>"...}` in `/metrics`, if any.
    /// Samples of `name` that differ in other labels are summed.
    pub fn metric(&self, name: &str, resource: &str) -> Option<f64> {
        metric_value(&self.metrics(), name, resource)
    }

    /// Polls `condition` until it holds; panics with the server log at `deadline`, or as
    /// soon as the server process has exited.
    pub fn wait_until(
        &mut self,
        deadline: Instant,
        what: &str,
        mut condition: impl FnMut() -> bool,
    ) {
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.fail(&format!(
                    "the server exited with {status} while waiting for {what}"
                ));
            }
            if condition() {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("timed out waiting for {what}"));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Runs `kubectl --kubeconfig <this server's> --request-timeout=30s ARGS` to its end
    /// (see [`run_to_end`]); fails the test, with the server's log, if it outlives
    /// `timeout`.
    pub fn run_kubectl(&self, args: &[&str], timeout: Duration) -> Finished {
        let mut all = vec!["--request-timeout=30s"];
        all.extend_from_slice(args);
        run_kubectl(&self.kubeconfig, self.dir(), &all, timeout).unwrap_or_else(|| {
            self.fail(&format!("kubectl {args:?} did not finish in {timeout:?}"))
        })
    }

    /// Panics with `message` and the server's log.
    pub fn fail(&self, message: &str) -> ! {
        self.log_printed.store(true, Ordering::Relaxed);
        panic!(
            "{message}\n--- mast server log ({}) ---\n{}\n--- end of log ---",
            self.log.display(),
            self.log()
        );
    }

    /// The server's process id (0 once it was reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// kill -9: the process dies at once, holding whatever it held.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`, …) to the server.
    pub fn send_signal(&self, signal: &str) {
        let pid = self.pid();
        assert!(pid != 0, "the server process is gone");
        send_signal(pid, signal);
    }

    /// SIGTERM, then waits up to `timeout` for the process to exit; true if it did.
    pub fn stop_gracefully(&mut self, timeout: Duration) -> bool {
        if self.child.is_none() {
            return true;
        }
        self.send_signal("TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return true;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        false
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() && !self.log_printed.load(Ordering::Relaxed) {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- last lines of the mast server log ({}) ---\n{}\n--- end of log ---",
                self.log.display(),
                lines[lines.len().saturating_sub(200)..].join("\n")
            );
        }
    }
}

/// A kube-rs client from a kubeconfig file, built as kube-rs users build theirs.
pub async fn client_from_kubeconfig(path: &Path) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("build a kube config from the kubeconfig");
    kube::Client::try_from(config).expect("build a kube client")
}

/// Sends `signal` (`STOP`, `CONT`, `TERM`, …) to `pid` through kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Stops a child that may be paused: SIGCONT and SIGTERM (nginx's master then takes its
/// workers down with it, which a SIGKILLed master would leave running), up to `grace`
/// to exit, then SIGKILL; always reaped.
pub fn terminate(child: &mut Child, grace: Duration) {
    for signal in ["-CONT", "-TERM"] {
        let _ = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + grace;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(POLL_INTERVAL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The server URL of the kubeconfig's current context (or its only cluster).
fn server_url(path: &Path) -> String {
    let kubeconfig = Kubeconfig::read_from(path).expect("parse the kubeconfig the server wrote");
    let cluster_name = kubeconfig.current_context.as_ref().and_then(|current| {
        kubeconfig
            .contexts
            .iter()
            .find(|c| &c.name == current)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
    });
    let cluster = match cluster_name {
        Some(name) => kubeconfig.clusters.iter().find(|c| c.name == name),
        None => kubeconfig.clusters.first(),
    };
    cluster
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .expect("the kubeconfig names a server for its current context")
}

/// The sum of the samples of metric `name` labelled `resource="<resource>"`.
pub fn metric_value(text: &str, name: &str, resource: &str) -> Option<f64> {
    let wanted = format!("resource=\"{resource}\"");
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(labels_and_value) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = labels_and_value.split_once('}') else {
            continue;
        };
        if !labels.split(',').any(|label| label.trim() == wanted) {
            continue;
        }
        let value: f64 = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unparsable sample in /metrics: {line}"));
        found = Some(found.unwrap_or(0.0) + value);
    }
    found
}

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close`).
pub fn http_exchange(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers in the response"))?;
    let head = String::from_utf8_lossy(&raw[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| invalid("empty response"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[header_end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| invalid("bad chunked body"))?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A name no other test in this run uses: `<prefix>-<pid>-<counter>-<time>`, in
/// DNS-1123 label form.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}-{n}-{:x}",
        std::process::id(),
        nanos % 0x10_0000
    )
}

/// The flags that put a test's `mast kubelet` on loopback: its HTTP on a free port of
/// 127.0.0.1, and 127.0.0.1 as the node's address.
pub const LOOPBACK_KUBELET: [&str; 6] = [
    "--port",
    "0",
    "--address",
    "127.0.0.1",
    "--node-ip",
    "127.0.0.1",
];

/// VmRSS of a process from /proc, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `mast kubelet --runtime fake` against a server, HTTP on a free loopback port, in a
/// temp data dir: one node, or `--hollow-nodes N` of them through `extra_args`. Killed
/// on drop, with the last lines of its log printed when the test failed.
pub struct FakeKubelet {
    child: Option<Child>,
    log: PathBuf,
    _dir: TempDir,
}

impl FakeKubelet {
    pub fn start(server: &Server, node_name: &str, extra_args: &[&str]) -> FakeKubelet {
        let dir = tempfile::Builder::new()
            .prefix("mast-kubelet-")
            .tempdir()
            .expect("create a temp dir for the kubelet");
        let log = dir.path().join("kubelet.log");
        let out = File::create(&log).expect("create the kubelet log");
        let err = out.try_clone().expect("clone the kubelet log handle");
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(server.kubeconfig_path())
            .args(["--node-name", node_name, "--runtime", "fake"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(LOOPBACK_KUBELET)
            // A test process killed outright (a nextest timeout) leaves no kubelet.
            .arg("--exit-with-parent")
            .args(extra_args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn mast kubelet");
        FakeKubelet {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the kubelet runs")
    }

    /// Panics with the log if the kubelet has exited.
    pub fn check_running(&mut self) {
        let exited = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            panic!(
                "the kubelet exited with {status}\n--- kubelet log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- last lines of the kubelet log ({}) ---\n{}\n--- end of log ---",
                self.log.display(),
                lines[lines.len().saturating_sub(200)..].join("\n")
            );
        }
    }
}

/// Starts a 1-member etcd from synchronous test code. Its members are plain child
/// processes, so the runtime used to start it is not needed afterwards.
pub fn start_etcd() -> store::testing::EtcdCluster {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime to start etcd")
        .block_on(store::testing::EtcdCluster::start(1))
        .expect("start a 1-member etcd cluster")
}

/// A command that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kubectl --kubeconfig KUBECONFIG ARGS` to its end, its output going to files in
/// `dir`; None if it outlived `timeout` (see [`run_to_end`]).
pub fn run_kubectl(
    kubeconfig: &Path,
    dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> Option<Finished> {
    let mut command = Command::new("kubectl");
    command.arg("--kubeconfig").arg(kubeconfig).args(args);
    run_to_end(&mut command, dir, None, timeout)
}

/// Runs `kubectl --kubeconfig KUBECONFIG ARGS`; whether it succeeded, and its stdout
/// followed by its stderr. Outliving `timeout` counts as failing, and says so.
pub fn kubectl_text(kubeconfig: &Path, args: &[&str], timeout: Duration) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir for kubectl output");
    match run_kubectl(kubeconfig, dir.path(), args, timeout) {
        Some(run) => (run.status.success(), run.stdout + &run.stderr),
        None => (
            false,
            format!("kubectl {args:?} timed out after {timeout:?}"),
        ),
    }
}

/// Runs `command` to its end with `stdin` as its input (None: nothing), its output
/// going to files in `dir` (a pipe nobody reads could fill up and stall it). None if it
/// had not finished after `timeout`; it is killed then, and on every other way out.
pub fn run_to_end(
    command: &mut Command,
    dir: &Path,
    stdin: Option<&str>,
    timeout: Duration,
) -> Option<Finished> {
    let id = unique_name("run");
    let out_path = dir.join(format!("{id}.out"));
    let err_path = dir.join(format!("{id}.err"));
    let child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(File::create(&out_path).expect("create the stdout file"))
        .stderr(File::create(&err_path).expect("create the stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", command.get_program()));
    let mut child = KillOnDrop(child);
    if let Some(text) = stdin {
        let mut input = child.0.stdin.take().expect("piped stdin");
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Some(Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// Kills (and reaps) a child on every way out.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
