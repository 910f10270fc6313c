//! What the benchmarks share: `mast` processes with their output in a log file, killed
//! on drop; starting `mast server` and waiting, with a deadline, for its kubeconfig and
//! a 200 on `/readyz`; clients from that kubeconfig; memory and CPU from /proc;
//! [`netns`]: a network namespace for a CRI kubelet, and everything it leaves, removed.

// Each benchmark compiles this module on its own and uses a part of it.
#![allow(dead_code)]

pub mod netns;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a process may take to start.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a start-up condition is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Deadline of one raw HTTP exchange.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The `mast` binary to run: `$MAST_BENCH_BIN` if set (to compare two builds, or to
/// hold one fixed while the tree changes), else the one cargo built for the benchmark.
pub fn mast_bin() -> PathBuf {
    std::env::var_os("MAST_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mast")))
}

/// A child process, killed (and reaped) on drop, with its output in a log file.
#[derive(Debug)]
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Result<Self> {
        let stdout = File::create(&log).with_context(|| format!("creating the {name} log"))?;
        let stderr = stdout.try_clone().context("cloning a log handle")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {name}"))?;
        Ok(Process { name, child, log })
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Fails, with the log, if the process has exited or `deadline` has passed.
    pub fn check_alive(&mut self, deadline: Instant, waiting_for: &str) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}) while waiting for {waiting_for}; its log:\n{}",
                self.name,
                self.log_text()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{}: gave up after {START_TIMEOUT:?} waiting for {waiting_for}; its log:\n{}",
                self.name,
                self.log_text()
            );
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let pid =
            rustix::process::Pid::from_raw(i32::try_from(self.child.id())?).context("no pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .with_context(|| format!("signalling {}", self.name))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not exit within {timeout:?} of SIGTERM; its log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Warnings and errors the process logged.
    pub fn complaints(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_string)
            .collect()
    }

    /// Resident and peak resident memory, in bytes.
    pub fn memory(&self) -> Result<Memory> {
        memory_of(&self.pid())
    }
}

/// Resident and peak resident memory of process `pid`, in bytes.
pub fn memory_of(pid: &str) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(Memory {
        rss: kib_field(&status, "VmRSS:", &path)?,
        peak: kib_field(&status, "VmHWM:", &path)?,
        anon: kib_field(&status, "RssAnon:", &path)?,
        file: kib_field(&status, "RssFile:", &path)?,
    })
}

/// Proportional set size of process `pid` (shared pages divided among the processes
/// mapping them), in bytes: the figure that adds up over many copies of one binary.
pub fn pss_of(pid: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let rollup = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    kib_field(&rollup, "Pss:", &path)
}

/// The value of a `Name:   123 kB` line, in bytes.
fn kib_field(text: &str, name: &str, path: &str) -> Result<u64> {
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .with_context(|| format!("no {name} in {path}"))?;
    let kib: u64 = value
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{name}{value} in {path}"))?;
    Ok(kib * 1024)
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of one process, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
    /// The anonymous part of `rss` (heap, stacks): the process's own.
    pub anon: u64,
    /// The file-backed part of `rss` (mostly the binary's code, shared with every
    /// process running it).
    pub file: u64,
}

/// A started `mast server`: the process, its kubeconfig and its `host:port`.
#[derive(Debug)]
pub struct StartedServer {
    pub process: Process,
    pub kubeconfig: PathBuf,
    pub authority: String,
}

/// Starts `mast server` with its data, kubeconfig and log in `dir` (and `extra_args`),
/// and waits for the kubeconfig, then for `GET /readyz` to answer 200.
pub async fn start_server(dir: &Path, extra_args: &[String]) -> Result<StartedServer> {
    let kubeconfig = dir.join("kubeconfig");
    let mut process = Process::spawn(
        "mast server",
        Command::new(mast_bin())
            .arg("server")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .args(extra_args),
        dir.join("server.log"),
    )?;
    let deadline = Instant::now() + START_TIMEOUT;
    while !kubeconfig.exists() {
        process.check_alive(deadline, "the kubeconfig to be written")?;
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let authority = authority(&kubeconfig)?;
    while http_status(&authority, "/readyz").await.ok() != Some(200) {
        process.check_alive(deadline, "GET /readyz to answer 200")?;
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(StartedServer {
        process,
        kubeconfig,
        authority,
    })
}

/// A client as a user would build one: from the kubeconfig file. Each has its own
/// connection pool.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let file = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// The `host:port` of the `server:` URL in a kubeconfig.
pub fn authority(kubeconfig: &Path) -> Result<String> {
    let text = std::fs::read_to_string(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(str::trim)
        .with_context(|| format!("no server: line in {}:\n{text}", kubeconfig.display()))?;
    Ok(url
        .strip_prefix("http://")
        .with_context(|| format!("the kubeconfig names {url}, not a plain HTTP URL"))?
        .trim_end_matches('/')
        .to_string())
}

/// The status code of one `GET path` over a fresh connection.
pub async fn http_status(authority: &str, path: &str) -> Result<u16> {
    Ok(http_get(authority, path).await?.0)
}

/// The status code and body of one `GET path` over a fresh connection (HTTP/1.1,
/// `Connection: close`; the body as sent, chunked or not).
pub async fn http_get(authority: &str, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response);
        let code = text
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        anyhow::Ok((code, body))
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .context("timed out")?
}

/// Seconds of CPU a process has used (`pid` or `self`), from `/proc/<pid>/stat`:
/// utime + stime, in ticks of 1/100 s (USER_HZ on Linux).
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name is in parentheses and may hold spaces; after it, the state is
    // the first field, utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> Result<f64> {
        let field = fields.get(i).with_context(|| format!("short {path}"))?;
        Ok(field.parse::<u64>()? as f64 / 100.0)
    };
    Ok(ticks(11)? + ticks(12)?)
}

/// Seconds of CPU a process and its reaped children have used: utime + stime +
/// cutime + cstime from `/proc/<pid>/stat`.
pub fn cpu_seconds_with_children(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let mut ticks = 0;
    for i in 11..=14 {
        let field = fields.get(i).with_context(|| format!("short {path}"))?;
        ticks += field.parse::<u64>()?;
    }
    Ok(ticks as f64 / 100.0)
}

/// Seconds the machine's CPUs were busy (not idle nor waiting for I/O), from
/// `/proc/stat`, in ticks of 1/100 s.
pub fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = values
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .take(6)
        .sum();
    Ok(busy as f64 / 100.0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
