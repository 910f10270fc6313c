//! containerd, run by us: its config, written into a data dir, and a supervisor that
//! starts it, waits until it answers CRI, restarts it when it dies and stops it on
//! shutdown. Or, with [`RuntimeSource::Endpoint`], a containerd someone else runs.
//!
//! Everything containerd keeps lives in the data dir ([`Layout`]): its root (content,
//! snapshots, metadata), its state (sockets of tasks, pod network namespaces, runc's
//! state), its gRPC socket, the CNI conf dir and its log. Two exceptions are
//! containerd's own: shim sockets go to `/run/containerd/s/` and CNI's result cache to
//! `/var/lib/cni/`; both are named by unique ids.
//!
//! Settings measured on our machines (see FIELD-NOTES.md): `restrict_oom_score_adj`
//! (no CAP_SYS_RESOURCE), Debian's CNI plugins under `/usr/lib/cni` (found with
//! `dpkg -L`), and overlayfs only where an overlay mount actually works.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::{ClientError, CriClient, socket_path};
use crate::images::{Importer, tail};

/// The pod sandbox image `scripts/build-images.sh` builds.
pub const PAUSE_IMAGE: &str = "mast.local/pause:1";
/// How long [`Containerd::start`] waits for CRI to answer, unless configured.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Containerd::stop`] waits after SIGTERM before SIGKILL, unless configured.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// First delay before restarting a dead containerd; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A containerd that ran this long before dying restarts with the initial backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(20);
/// sun_path holds 108 bytes with the NUL; containerd adds `.ttrpc` for its ttrpc socket.
const MAX_SOCKET_PATH: usize = 107 - ".ttrpc".len();

/// Plugins the kubelet never uses; leaving them out saves start-up work and keeps
/// containerd from touching `/opt/containerd`. (The v1 runtime `io.containerd.runtime.v1.linux`
/// must stay: containerd 1.6's tasks service, which CRI needs, refuses to load without it.)
const DISABLED_PLUGINS: &[&str] = &[
    "io.containerd.internal.v1.opt",
    "io.containerd.internal.v1.restart",
    "io.containerd.internal.v1.tracing",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
];

/// Errors of running containerd.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    /// A file or directory of the data dir could not be made or written.
    #[error("preparing {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The socket path does not fit in a unix socket address.
    #[error(
        "socket path {path} is too long ({len} bytes, at most {MAX_SOCKET_PATH}); use a shorter data dir"
    )]
    SocketPathTooLong {
        /// The socket path.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// No CNI plugins were found.
    #[error(
        "no CNI plugins (bridge) found: install containernetworking-plugins (looked in {looked})"
    )]
    NoCniPlugins {
        /// Where we looked.
        looked: String,
    },
    /// containerd (or nsenter) could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// containerd exited while we waited for it to answer.
    #[error("containerd exited with {status} before it was ready; its log ends with:\n{log_tail}")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its log.
        log_tail: String,
    },
    /// The runtime did not answer CRI `Version` before the deadline.
    #[error(
        "CRI runtime at {socket} not ready within {after:?} (last error: {last_error}){log_tail}"
    )]
    NotReady {
        /// Its socket.
        socket: PathBuf,
        /// The deadline.
        after: Duration,
        /// The last failure seen.
        last_error: String,
        /// The end of containerd's log, when we run it (with a leading newline).
        log_tail: String,
    },
    /// The runtime answers, but not CRI v1 (containerd's CRI plugin failed to load).
    #[error("{socket} answers but has no CRI v1 runtime service ({status}){log_tail}")]
    NoCri {
        /// Its socket.
        socket: PathBuf,
        /// What it answered.
        status: String,
        /// The end of containerd's log, when we run it (with a leading newline).
        log_tail: String,
    },
    /// The endpoint of an existing runtime is invalid.
    #[error(transparent)]
    Endpoint(#[from] ClientError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContainerdError + '_ {
    move |source| ContainerdError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshotter containerd's CRI plugin unpacks images into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshotter {
    /// overlayfs: fast, needs an overlay mount to work on the data dir's filesystem.
    Overlayfs,
    /// native: full copies; works anywhere.
    Native,
}

impl Snapshotter {
    /// containerd's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Snapshotter::Overlayfs => "overlayfs",
            Snapshotter::Native => "native",
        }
    }
}

/// Where things live in containerd's data dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The data dir itself.
    pub data_dir: PathBuf,
    /// `config.toml`, rewritten at every start.
    pub config: PathBuf,
    /// containerd's root: content, snapshots, metadata.
    pub root: PathBuf,
    /// containerd's state: task bundles, pod network namespaces.
    pub state: PathBuf,
    /// runc's state (`--root`), inside `state`.
    pub runc_root: PathBuf,
    /// The gRPC (and CRI) socket.
    pub socket: PathBuf,
    /// Where containerd reads CNI conflists ([`crate::cni::BridgeNetwork::write`]).
    pub cni_conf_dir: PathBuf,
    /// Where host-local IPAM keeps its allocations.
    pub cni_ipam_dir: PathBuf,
    /// containerd's stdout and stderr.
    pub log: PathBuf,
}

impl Layout {
    /// The layout under `data_dir` (which should be absolute).
    pub fn new(data_dir: &Path) -> Self {
        let state = data_dir.join("state");
        Layout {
            data_dir: data_dir.to_path_buf(),
            config: data_dir.join("config.toml"),
            root: data_dir.join("root"),
            runc_root: state.join("runc"),
            state,
            socket: data_dir.join("containerd.sock"),
            cni_conf_dir: data_dir.join("cni").join("net.d"),
            cni_ipam_dir: data_dir.join("cni").join("networks"),
            log: data_dir.join("containerd.log"),
        }
    }
}

/// How to run containerd.
#[derive(Clone, Debug)]
pub struct ContainerdConfig {
    /// The data dir; made absolute and created on start.
    pub data_dir: PathBuf,
    /// The pod sandbox image (must be present: imported, since nothing is pulled).
    pub sandbox_image: String,
    /// The CNI plugins' directory; `None` finds Debian's.
    pub cni_bin_dir: Option<PathBuf>,
    /// The snapshotter; `None` picks overlayfs if an overlay mount works, else native.
    pub snapshotter: Option<Snapshotter>,
    /// Run containerd in this network namespace (e.g. `/var/run/netns/NAME`), entered
    /// with `nsenter --net=` (not `ip netns exec`, which hides the cgroup mounts).
    pub netns: Option<PathBuf>,
    /// The containerd binary.
    pub containerd_bin: PathBuf,
    /// How long to wait for containerd to answer CRI.
    pub start_timeout: Duration,
    /// How long to wait after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
}

impl ContainerdConfig {
    /// Defaults for a containerd keeping everything in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ContainerdConfig {
            data_dir: data_dir.into(),
            sandbox_image: PAUSE_IMAGE.to_owned(),
            cni_bin_dir: None,
            snapshotter: None,
            netns: None,
            containerd_bin: PathBuf::from("containerd"),
            start_timeout: START_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
        }
    }
}

/// Finds the CNI plugins: Debian's package directory (`dpkg -L
/// containernetworking-plugins`), else the usual places; the one holding `bridge`.
pub async fn find_cni_bin_dir() -> Result<PathBuf, ContainerdError> {
    let listed = Command::new("dpkg")
        .args(["-L", "containernetworking-plugins"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    if let Ok(out) = listed
        && out.status.success()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let path = Path::new(line.trim());
            if path.file_name().is_some_and(|n| n == "bridge")
                && path.is_file()
                && let Some(dir) = path.parent()
            {
                return Ok(dir.to_path_buf());
            }
        }
    }
    const USUAL: &[&str] = &["/opt/cni/bin", "/usr/lib/cni", "/usr/libexec/cni"];
    for dir in USUAL {
        if Path::new(dir).join("bridge").is_file() {
            return Ok(PathBuf::from(dir));
        }
    }
    Err(ContainerdError::NoCniPlugins {
        looked: format!("dpkg -L containernetworking-plugins, {}", USUAL.join(", ")),
    })
}

/// Picks overlayfs if an overlay mount works under `dir` (containerd's root: the
/// upper dir's filesystem is what matters), native otherwise.
pub fn probe_snapshotter(dir: &Path) -> Snapshotter {
    let probe = dir.join("mast-overlay-probe");
    let works = try_overlay(&probe);
    // Best effort: a leftover probe dir is harmless and removed by the next probe.
    let _ = std::fs::remove_dir_all(&probe);
    match works {
        Ok(()) => Snapshotter::Overlayfs,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "overlay mounts do not work; using the native snapshotter");
            Snapshotter::Native
        }
    }
}

fn try_overlay(probe: &Path) -> std::io::Result<()> {
    use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};
    if !std::fs::read_to_string("/proc/filesystems")?.contains("\toverlay\n") {
        return Err(std::io::Error::other(
            "the kernel has no overlay filesystem",
        ));
    }
    let _ = std::fs::remove_dir_all(probe);
    let (lower, upper, work, merged) = (
        probe.join("l"),
        probe.join("u"),
        probe.join("w"),
        probe.join("m"),
    );
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir_all(d)?;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let data = std::ffi::CString::new(data).map_err(std::io::Error::other)?;
    mount(
        "overlay",
        &merged,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )?;
    unmount(&merged, UnmountFlags::DETACH)?;
    Ok(())
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_path(p: &Path) -> String {
    toml_str(&p.to_string_lossy())
}

/// containerd's config for `layout`, in its version 2 format.
pub fn render_config(
    layout: &Layout,
    sandbox_image: &str,
    cni_bin_dir: &Path,
    snapshotter: Snapshotter,
) -> String {
    let disabled: Vec<String> = DISABLED_PLUGINS.iter().map(|p| toml_str(p)).collect();
    const CRI: &str = "plugins.\"io.containerd.grpc.v1.cri\"";
    format!(
        r#"# Written by mast at every start; edits are lost.
version = 2
root = {root}
state = {state}
disabled_plugins = [{disabled}]

[grpc]
  address = {socket}

[{CRI}]
  sandbox_image = {sandbox_image}
  # No CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj below ours.
  restrict_oom_score_adj = true
  # Pod network namespaces inside our state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true

  [{CRI}.cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
    max_conf_num = 1

  [{CRI}.containerd]
    snapshotter = {snapshotter}
    default_runtime_name = "runc"

    [{CRI}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [{CRI}.containerd.runtimes.runc.options]
        Root = {runc_root}
        SystemdCgroup = false
"#,
        root = toml_path(&layout.root),
        state = toml_path(&layout.state),
        disabled = disabled.join(", "),
        socket = toml_path(&layout.socket),
        sandbox_image = toml_str(sandbox_image),
        cni_bin = toml_path(cni_bin_dir),
        cni_conf = toml_path(&layout.cni_conf_dir),
        snapshotter = toml_str(snapshotter.as_str()),
        runc_root = toml_path(&layout.runc_root),
    )
}

/// Prepares the data dir and writes the config; returns the layout and the snapshotter
/// chosen. Idempotent.
pub async fn prepare(config: &ContainerdConfig) -> Result<(Layout, Snapshotter), ContainerdError> {
    // Checked before anything is created, and again once symlinks are resolved.
    let absolute = std::path::absolute(&config.data_dir).map_err(io_err(&config.data_dir))?;
    check_socket_path(&Layout::new(&absolute))?;
    std::fs::create_dir_all(&absolute).map_err(io_err(&absolute))?;
    let data_dir = std::fs::canonicalize(&absolute).map_err(io_err(&absolute))?;
    let layout = Layout::new(&data_dir);
    check_socket_path(&layout)?;
    for dir in [
        &layout.root,
        &layout.state,
        &layout.cni_conf_dir,
        &layout.cni_ipam_dir,
    ] {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let cni_bin_dir = match &config.cni_bin_dir {
        Some(dir) => dir.clone(),
        None => find_cni_bin_dir().await?,
    };
    let snapshotter = match config.snapshotter {
        Some(s) => s,
        None => {
            let root = layout.root.clone();
            tokio::task::spawn_blocking(move || probe_snapshotter(&root))
                .await
                .unwrap_or(Snapshotter::Native)
        }
    };
    let text = render_config(&layout, &config.sandbox_image, &cni_bin_dir, snapshotter);
    let tmp = layout.config.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &layout.config).map_err(io_err(&layout.config))?;
    Ok((layout, snapshotter))
}

fn check_socket_path(layout: &Layout) -> Result<(), ContainerdError> {
    let len = layout.socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ContainerdError::SocketPathTooLong {
            path: layout.socket.clone(),
            len,
        });
    }
    Ok(())
}

/// Waits until the runtime behind `client` answers `Version`, up to `timeout`.
pub async fn wait_ready(
    client: &CriClient,
    timeout: Duration,
) -> Result<k8s_cri::v1::VersionResponse, ContainerdError> {
    let deadline = Instant::now() + timeout;
    let probe = client.clone().with_timeout(Duration::from_secs(2));
    loop {
        let last_error = if probe.socket().exists() {
            match probe.version().await {
                Ok(v) => return Ok(v),
                // containerd serves its socket only once every plugin is loaded: a
                // missing service will not appear later.
                Err(ClientError::Rpc { status, .. })
                    if status.code() == tonic::Code::Unimplemented =>
                {
                    return Err(ContainerdError::NoCri {
                        socket: client.socket().to_path_buf(),
                        status: status.message().to_owned(),
                        log_tail: String::new(),
                    });
                }
                Err(e) => e.to_string(),
            }
        } else {
            "no socket yet".to_owned()
        };
        if Instant::now() >= deadline {
            return Err(ContainerdError::NotReady {
                socket: client.socket().to_path_buf(),
                after: timeout,
                last_error,
                log_tail: String::new(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the supervisor needs to (re)start containerd.
#[derive(Clone, Debug)]
struct Launch {
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    log: PathBuf,
}

impl Launch {
    fn new(config: &ContainerdConfig, layout: &Layout) -> Self {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        let program = match &config.netns {
            Some(netns) => {
                let mut net = std::ffi::OsString::from("--net=");
                net.push(netns);
                args.extend([net, "--".into(), config.containerd_bin.clone().into()]);
                PathBuf::from("nsenter")
            }
            None => config.containerd_bin.clone(),
        };
        args.extend(["--config".into(), layout.config.clone().into()]);
        Launch {
            program,
            args,
            log: layout.log.clone(),
        }
    }

    fn spawn(&self) -> Result<Child, ContainerdError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_err(&self.log))?;
        let log2 = log.try_clone().map_err(io_err(&self.log))?;
        Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ContainerdError::Spawn {
                program: self.program.clone(),
                source,
            })
    }
}

fn log_tail(log: &Path) -> String {
    std::fs::read_to_string(log)
        .map(|s| tail(&s, 3000))
        .unwrap_or_default()
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // It may have exited meanwhile: nothing to do then.
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Pids of containerd processes started with `--config CONFIG` (by an earlier run of
/// ours that was killed before it could stop them).
fn stale_pids(config: &Path) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let config = config.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_containerd = args.first().is_some_and(|a| a.ends_with(b"containerd"));
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"--config" && w[1] == config);
        if is_containerd && ours && pid != std::process::id() {
            pids.push(pid);
        }
    }
    pids
}

/// A containerd left running with our config (its supervisor was SIGKILLed) would hold
/// the socket and the metadata lock: stop it first. Its shims, and so the containers,
/// keep running, as across any containerd restart.
async fn stop_stale(config: &Path, timeout: Duration) {
    let pids = stale_pids(config);
    if pids.is_empty() {
        return;
    }
    tracing::info!(?pids, config = %config.display(), "stopping a containerd left by an earlier run");
    for pid in &pids {
        signal(*pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // Read the command lines again rather than test /proc/PID: an exited process
        // nobody reaps stays there as a zombie, with an empty command line.
        if stale_pids(config).is_empty() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    for pid in &pids {
        signal(*pid, rustix::process::Signal::KILL);
    }
}

/// A containerd we run and watch over.
#[derive(Debug)]
pub struct Containerd {
    layout: Layout,
    snapshotter: Snapshotter,
    version: k8s_cri::v1::VersionResponse,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU64>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    stop_timeout: Duration,
}

impl Containerd {
    /// Writes the config, starts containerd, waits until it answers CRI, and keeps it
    /// running (restarting it with backoff when it dies) until [`Containerd::stop`].
    pub async fn start(config: &ContainerdConfig) -> Result<Containerd, ContainerdError> {
        let (layout, snapshotter) = prepare(config).await?;
        stop_stale(&layout.config, config.stop_timeout).await;
        let launch = Launch::new(config, &layout);
        let started = Instant::now();
        let mut child = launch.spawn()?;
        let client = CriClient::for_socket(&layout.socket);
        let version = tokio::select! {
            ready = wait_ready(&client, config.start_timeout) => match ready {
                Ok(v) => v,
                Err(e) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    let tail = format!("; containerd's log ends with:\n{}", log_tail(&layout.log));
                    return Err(match e {
                        ContainerdError::NotReady { socket, after, last_error, .. } => {
                            ContainerdError::NotReady { socket, after, last_error, log_tail: tail }
                        }
                        ContainerdError::NoCri { socket, status, .. } => {
                            ContainerdError::NoCri { socket, status, log_tail: tail }
                        }
                        other => other,
                    });
                }
            },
            status = child.wait() => {
                let status = status.map_err(io_err(&layout.log))?;
                return Err(ContainerdError::Exited { status, log_tail: log_tail(&layout.log) });
            }
        };
        tracing::info!(
            socket = %layout.socket.display(),
            version = %version.runtime_version,
            snapshotter = snapshotter.as_str(),
            elapsed = ?started.elapsed(),
            "containerd ready"
        );
        let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
        let restarts = Arc::new(AtomicU64::new(0));
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(supervise(
            child,
            launch,
            pid.clone(),
            restarts.clone(),
            rx,
            config.stop_timeout,
        ));
        Ok(Containerd {
            layout,
            snapshotter,
            version,
            pid,
            restarts,
            shutdown,
            task: Some(task),
            stop_timeout: config.stop_timeout,
        })
    }

    /// Where its files are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Its CRI endpoint, `unix:///…/containerd.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.layout.socket.display())
    }

    /// The snapshotter its CRI plugin uses.
    pub fn snapshotter(&self) -> Snapshotter {
        self.snapshotter
    }

    /// What it answered to `Version` at start.
    pub fn version(&self) -> &k8s_cri::v1::VersionResponse {
        &self.version
    }

    /// The running containerd's pid (0 while it is down between restarts).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// How often it was restarted after dying.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// A CRI client for it.
    pub fn client(&self) -> CriClient {
        CriClient::for_socket(&self.layout.socket)
    }

    /// An image importer for it, unpacking into its snapshotter.
    pub fn importer(&self) -> Importer {
        Importer::new(&self.layout.socket).with_snapshotter(self.snapshotter.as_str())
    }

    /// Stops it: SIGTERM, SIGKILL after the stop timeout. Containers keep running
    /// (their shims outlive containerd), as with any containerd restart.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let grace = self.stop_timeout + Duration::from_secs(5);
            if tokio::time::timeout(grace, task).await.is_err() {
                signal(self.pid(), rustix::process::Signal::KILL);
            }
        }
    }
}

impl Drop for Containerd {
    /// Not stopped: kill it at once (Drop cannot wait for a graceful stop).
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = self.shutdown.send(true);
            signal(self.pid(), rustix::process::Signal::KILL);
            task.abort();
        }
    }
}

/// Keeps containerd running until shutdown is signalled, then stops it.
async fn supervise(
    child: Child,
    launch: Launch,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU64>,
    mut shutdown: watch::Receiver<bool>,
    stop_timeout: Duration,
) {
    let mut child = Some(child);
    let mut started = Instant::now();
    let mut backoff = INITIAL_BACKOFF;
    loop {
        match child.as_mut() {
            Some(running) => {
                tokio::select! {
                    status = running.wait() => {
                        pid.store(0, Ordering::SeqCst);
                        child = None;
                        if started.elapsed() >= STABLE_AFTER {
                            backoff = INITIAL_BACKOFF;
                        }
                        tracing::warn!(?status, ?backoff, log = %launch.log.display(), "containerd exited; restarting");
                    }
                    _ = shutdown.changed() => {
                        terminate(running, stop_timeout).await;
                        pid.store(0, Ordering::SeqCst);
                        return;
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                match launch.spawn() {
                    Ok(new) => {
                        pid.store(new.id().unwrap_or(0), Ordering::SeqCst);
                        restarts.fetch_add(1, Ordering::SeqCst);
                        started = Instant::now();
                        tracing::info!(pid = new.id(), "containerd restarted");
                        child = Some(new);
                    }
                    Err(e) => tracing::error!(error = %e, "restarting containerd"),
                }
            }
        }
    }
}

/// SIGTERM, then SIGKILL if it has not exited within `timeout`.
async fn terminate(child: &mut Child, timeout: Duration) {
    let Some(pid) = child.id() else { return };
    signal(pid, rustix::process::Signal::TERM);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => tracing::info!(?status, "containerd stopped"),
        Err(_) => {
            tracing::warn!(?timeout, "containerd ignored SIGTERM; killing it");
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// Where the kubelet's CRI runtime comes from.
#[derive(Clone, Debug)]
pub enum RuntimeSource {
    /// A containerd we run, with this config.
    Embedded(ContainerdConfig),
    /// A runtime already listening at this endpoint (`unix:///path`).
    Endpoint(String),
}

/// A CRI runtime ready for use: our own containerd, or someone else's endpoint.
#[derive(Debug)]
pub struct Runtime {
    socket: PathBuf,
    containerd: Option<Containerd>,
}

impl Runtime {
    /// Starts (or, for an endpoint, waits for) the runtime until it answers CRI
    /// `Version`; an endpoint gets `timeout`, an embedded containerd its own.
    pub async fn start(
        source: RuntimeSource,
        timeout: Duration,
    ) -> Result<Runtime, ContainerdError> {
        match source {
            RuntimeSource::Embedded(config) => {
                let containerd = Containerd::start(&config).await?;
                Ok(Runtime {
                    socket: containerd.layout().socket.clone(),
                    containerd: Some(containerd),
                })
            }
            RuntimeSource::Endpoint(endpoint) => {
                let socket = socket_path(&endpoint)?;
                wait_ready(&CriClient::for_socket(&socket), timeout).await?;
                Ok(Runtime {
                    socket,
                    containerd: None,
                })
            }
        }
    }

    /// The runtime's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Its CRI endpoint, `unix:///…`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A CRI client for it.
    pub fn client(&self) -> CriClient {
        CriClient::for_socket(&self.socket)
    }

    /// An image importer for it (for an endpoint: ctr's default snapshotter).
    pub fn importer(&self) -> Importer {
        match &self.containerd {
            Some(c) => c.importer(),
            None => Importer::new(&self.socket),
        }
    }

    /// Our containerd, if we run it.
    pub fn containerd(&self) -> Option<&Containerd> {
        self.containerd.as_ref()
    }

    /// Stops our containerd; leaves an endpoint's runtime alone.
    pub async fn stop(self) {
        if let Some(c) = self.containerd {
            c.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_everything_in_the_data_dir() {
        let l = Layout::new(Path::new("/d"));
        for p in [
            &l.config,
            &l.root,
            &l.state,
            &l.runc_root,
            &l.socket,
            &l.cni_conf_dir,
            &l.log,
        ] {
            assert!(p.starts_with("/d"), "{}", p.display());
        }
    }

    #[test]
    fn config_names_our_paths_and_settings() {
        let l = Layout::new(Path::new("/data/ctd"));
        let text = render_config(
            &l,
            PAUSE_IMAGE,
            Path::new("/usr/lib/cni"),
            Snapshotter::Native,
        );
        for want in [
            "root = \"/data/ctd/root\"",
            "state = \"/data/ctd/state\"",
            "address = \"/data/ctd/containerd.sock\"",
            "sandbox_image = \"mast.local/pause:1\"",
            "restrict_oom_score_adj = true",
            "bin_dir = \"/usr/lib/cni\"",
            "conf_dir = \"/data/ctd/cni/net.d\"",
            "snapshotter = \"native\"",
            "Root = \"/data/ctd/state/runc\"",
            "\"io.containerd.snapshotter.v1.btrfs\"",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_str("x\ny"), "\"x\\u000Ay\"");
    }

    #[test]
    fn nsenter_wraps_containerd_when_a_netns_is_given() {
        let mut config = ContainerdConfig::new("/d");
        let layout = Layout::new(Path::new("/d"));
        let plain = Launch::new(&config, &layout);
        assert_eq!(plain.program, PathBuf::from("containerd"));
        assert_eq!(plain.args, vec!["--config", "/d/config.toml"]);
        config.netns = Some(PathBuf::from("/var/run/netns/t1"));
        let wrapped = Launch::new(&config, &layout);
        assert_eq!(wrapped.program, PathBuf::from("nsenter"));
        assert_eq!(
            wrapped.args,
            vec![
                "--net=/var/run/netns/t1",
                "--",
                "containerd",
                "--config",
                "/d/config.toml"
            ]
        );
    }

    #[tokio::test]
    async fn long_socket_paths_are_refused() {
        let long = format!("/tmp/{}", "x".repeat(120));
        let err = prepare(&ContainerdConfig::new(&long)).await;
        assert!(!Path::new(&long).exists(), "nothing is created");
        assert!(
            matches!(err, Err(ContainerdError::SocketPathTooLong { .. })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn debian_cni_plugins_are_found() {
        let dir = find_cni_bin_dir().await.expect("CNI plugins installed");
        assert!(dir.join("bridge").is_file());
    }
}
