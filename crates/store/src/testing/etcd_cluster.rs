//! Real etcd members for tests and benchmarks.
//!
//! Each cluster lives in its own temp dir on free loopback ports, so tests can run in
//! parallel; dropping it kills every member and removes the data. The binary is `etcd`
//! from `PATH` (Debian's `etcd-server`), or `$MAST_ETCD_BIN`.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::etcd::{EtcdConfig, EtcdStore};

/// Requests up to this size pass etcd, so that a value of exactly
/// [`crate::MAX_VALUE_SIZE`] plus its key fits (etcd's default is exactly 1.5 MiB for
/// the whole request).
const MAX_REQUEST_BYTES: usize = crate::MAX_VALUE_SIZE + 64 * 1024;

/// How long members get to elect a leader and answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One etcd member.
#[derive(Debug)]
struct Member {
    client_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster of one or more members on loopback.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    _dir: TempDir,
}

impl EtcdCluster {
    /// Starts `size` members and waits until the cluster answers. Retries with new ports
    /// if another process took one in the meantime.
    pub async fn start(size: usize) -> Result<Self, String> {
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(size).await {
                Ok(cluster) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    async fn try_start(size: usize) -> Result<Self, String> {
        let binary = std::env::var_os("MAST_ETCD_BIN").unwrap_or_else(|| "etcd".into());
        let dir = tempfile::Builder::new()
            .prefix("mast-etcd-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir for etcd: {e}"))?;
        let ports = free_ports(size * 2)?;
        let names: Vec<String> = (0..size).map(|i| format!("m{i}")).collect();
        let peer_urls: Vec<String> = (0..size)
            .map(|i| format!("http://127.0.0.1:{}", ports[2 * i + 1]))
            .collect();
        let initial_cluster = names
            .iter()
            .zip(&peer_urls)
            .map(|(name, url)| format!("{name}={url}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = dir
            .path()
            .file_name()
            .map_or_else(|| "mast".into(), |n| n.to_string_lossy().into_owned());
        let mut members = Vec::with_capacity(size);
        for i in 0..size {
            let client_url = format!("http://127.0.0.1:{}", ports[2 * i]);
            let data_dir = dir.path().join(&names[i]);
            let log = dir.path().join(format!("{}.log", names[i]));
            let log_file =
                File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
            let child = Command::new(&binary)
                .arg("--name")
                .arg(&names[i])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_urls[i]])
                .args(["--initial-advertise-peer-urls", &peer_urls[i]])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token])
                .args(["--max-request-bytes", &MAX_REQUEST_BYTES.to_string()])
                .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot run {:?} (install Debian's etcd-server, or set MAST_ETCD_BIN): {e}",
                        binary
                    )
                })?;
            members.push(Member {
                client_url,
                data_dir,
                log,
                child: Some(child),
            });
        }
        let mut cluster = EtcdCluster { members, _dir: dir };
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    /// Waits until every member answers a read through a leader.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for i in 0..self.members.len() {
            loop {
                if let Some(status) = self.members[i]
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    return Err(format!(
                        "etcd member {i} exited with {status}: {}",
                        log_tail(&self.members[i].log)
                    ));
                }
                let mut config = EtcdConfig::new(vec![self.members[i].client_url.clone()]);
                config.connect_timeout = Duration::from_millis(500);
                if EtcdStore::connect(config).await.is_ok() {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!(
                        "etcd member {i} not ready after {READY_TIMEOUT:?}: {}",
                        log_tail(&self.members[i].log)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// A store connected to every member.
    pub async fn store(&self) -> crate::Result<EtcdStore> {
        EtcdStore::connect(EtcdConfig::new(self.endpoints())).await
    }

    /// The data dir of member `i` (its `member/snap/db` is etcd's database file).
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.members[i].data_dir
    }

    /// Kills member `i` with SIGKILL and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// Ports the kernel just handed out as free. They are released before etcd binds them,
/// so a collision is possible but rare; `start` retries on one.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot find free ports: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot find free ports: {e}"))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}
