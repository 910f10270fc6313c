//! A network namespace for a CRI kubelet, as `crates/cli/tests/kubelet_cri.rs` makes
//! one: loopback only, no route out. The calling thread moves itself in (setns) before
//! it builds its async runtime, so every thread and process started afterwards lives
//! there: the API server on the namespace's 127.0.0.1, the kubelet, its containerd and
//! the pods' bridge. Nothing needs a veth or `ip netns exec` (which would remount /sys
//! and hide the cgroups).
//!
//! [`World`]'s Drop removes what a kubelet leaves, whether the run succeeds, fails or
//! panics (not if the process is killed): our containerd, its shims (and their sockets
//! under /run/containerd/s, libcni's cached results), the pod cgroups, mounts under the
//! temp dir, and the namespace, which takes its routes, nftables table and bridge with
//! it. [`Residue`] checks afterwards that nothing is left.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tempfile::TempDir;

/// A network namespace and a temp dir (the kubelet's data dir and logs) of one run.
#[derive(Debug)]
pub struct World {
    netns: String,
    dir: TempDir,
    cgroup_root: String,
    /// The kubelet's data dir, relative to `dir`.
    kubelet_dir: PathBuf,
}

impl World {
    /// Creates the namespace (named `PREFIX-PID-NANOS`) with loopback up, and the temp
    /// dir.
    pub fn new(prefix: &str) -> Result<World> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let netns = format!("{prefix}-{}-{nanos:x}", std::process::id());
        // Short: containerd's socket path must fit in a unix socket address.
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .context("creating a temp dir")?;
        run("ip", &["netns", "add", &netns])?;
        let world = World {
            cgroup_root: format!("/{netns}"),
            netns,
            dir,
            kubelet_dir: PathBuf::from("k"),
        };
        run("ip", &["-n", &world.netns, "link", "set", "lo", "up"])?;
        Ok(world)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The kubelet's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join(&self.kubelet_dir)
    }

    /// Moves the kubelet's data dir to `relative` under the temp dir (`mast up` keeps it
    /// in DATA_DIR/kubelet).
    pub fn with_kubelet_dir(mut self, relative: &str) -> World {
        self.kubelet_dir = PathBuf::from(relative);
        self
    }

    /// The socket of the kubelet's own containerd.
    pub fn socket(&self) -> PathBuf {
        self.data_dir().join("containerd").join("containerd.sock")
    }

    /// The config file of the kubelet's own containerd (its command line names it).
    pub fn containerd_config(&self) -> PathBuf {
        self.data_dir().join("containerd").join("config.toml")
    }

    /// containerd's log (RFC 3339 timestamps per CRI call).
    pub fn containerd_log(&self) -> PathBuf {
        self.data_dir().join("containerd").join("containerd.log")
    }

    /// The cgroup the kubelet puts pods under (`--cgroup-root`).
    pub fn cgroup_root(&self) -> &str {
        &self.cgroup_root
    }

    /// Moves the calling thread into the namespace; threads and processes it starts
    /// afterwards are born there.
    pub fn enter(&self) -> Result<()> {
        let path = Path::new("/var/run/netns").join(&self.netns);
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .context("entering the network namespace")?;
        Ok(())
    }

    /// Gives the namespace a node address: a veth pair (`mast-n0`, `mast-n1`, both up)
    /// with `ip/24` on `mast-n0`. DNS endpoints and NodePorts need an address that is
    /// not loopback, and `dummy` links are unavailable here. Call it after [`World::enter`].
    pub fn add_node_address(&self, ip: &str) -> Result<()> {
        for args in [
            &[
                "link", "add", "mast-n0", "type", "veth", "peer", "name", "mast-n1",
            ][..],
            &["addr", "add", &format!("{ip}/24"), "dev", "mast-n0"],
            &["link", "set", "mast-n0", "up"],
            &["link", "set", "mast-n1", "up"],
        ] {
            run("ip", args)?;
        }
        Ok(())
    }

    /// What to look for once the world is dropped.
    pub fn residue(&self) -> Residue {
        Residue {
            netns: self.netns.clone(),
            dir: self.dir.path().to_path_buf(),
            socket: self.socket(),
            config: self.containerd_config(),
            cgroup_root: self.cgroup_root.clone(),
        }
    }

    /// The pid of our containerd, if it runs.
    pub fn containerd_pid(&self) -> Option<i32> {
        containerd_pids(&self.containerd_config()).first().copied()
    }

    /// The pids of our containerd's shims.
    pub fn shim_pids(&self) -> Vec<i32> {
        shim_pids(&self.socket())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for pid in containerd_pids(&self.containerd_config()) {
            kill(pid);
        }
        kill_shims(&self.socket());
        remove_cgroups(&self.cgroup_root);
        unmount_under(self.dir.path());
        if let Err(e) = run("ip", &["netns", "del", &self.netns]) {
            eprintln!("cleanup: {e:#}");
        }
    }
}

/// The names a [`World`] used, to check after its drop that nothing is left.
#[derive(Debug, Clone)]
pub struct Residue {
    netns: String,
    dir: PathBuf,
    socket: PathBuf,
    config: PathBuf,
    cgroup_root: String,
}

impl Residue {
    /// What is still there: the namespace, processes, mounts, cgroups, the temp dir.
    pub fn check(&self) -> Vec<String> {
        let mut left = Vec::new();
        if Path::new("/var/run/netns").join(&self.netns).exists() {
            left.push(format!("network namespace {}", self.netns));
        }
        let containerd = containerd_pids(&self.config);
        if !containerd.is_empty() {
            left.push(format!("containerd {containerd:?}"));
        }
        let shims = shim_pids(&self.socket);
        if !shims.is_empty() {
            left.push(format!("shims {shims:?}"));
        }
        let mounts = mounts_under(&self.dir);
        if !mounts.is_empty() {
            left.push(format!(
                "{} mounts under {}",
                mounts.len(),
                self.dir.display()
            ));
        }
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let dir = h.path().join(self.cgroup_root.trim_start_matches('/'));
                if dir.is_dir() && !h.path().is_symlink() {
                    left.push(format!("cgroup {}", dir.display()));
                }
            }
        }
        if self.dir.exists() {
            left.push(format!("directory {}", self.dir.display()));
        }
        left
    }
}

/// Runs `program` to completion; its stdout, or an error with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {}: {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn kill(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Pids whose command line (split at NULs) passes `matches`.
pub fn processes(matches: impl Fn(&[&[u8]]) -> bool) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if matches(&args) {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found
}

/// The containerd running with `config` (the kubelet's own).
fn containerd_pids(config: &Path) -> Vec<i32> {
    let config = config.as_os_str().as_encoded_bytes();
    processes(|args| {
        args.first().is_some_and(|a| a.ends_with(b"containerd"))
            && args
                .windows(2)
                .any(|w| w[0] == b"--config" && w[1] == config)
    })
}

/// The long-running shims of the containerd at `socket`.
fn shim_pids(socket: &Path) -> Vec<i32> {
    let socket = socket.as_os_str().as_encoded_bytes();
    processes(|args| {
        args.first()
            .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"))
            && args
                .windows(2)
                .any(|w| w[0] == b"-address" && w[1] == socket)
    })
}

/// Kills the shims of the containerd at `socket` and removes what they leave (their
/// sockets under /run/containerd/s, libcni's cached results).
fn kill_shims(socket: &Path) {
    for pid in shim_pids(socket) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let arg = |name: &[u8]| {
            args.windows(2)
                .find(|w| w[0] == name)
                .map(|w| String::from_utf8_lossy(w[1]).into_owned())
        };
        kill(pid);
        if let (Some(ns), Some(id)) = (arg(b"-namespace"), arg(b"-id")) {
            remove_shim_socket(&format!("{}/{ns}/{id}", socket.display()));
            remove_cni_cache(&id);
        }
    }
}

fn remove_cni_cache(sandbox_id: &str) {
    let Ok(entries) = std::fs::read_dir("/var/lib/cni/results") else {
        return;
    };
    let needle = format!("-{sandbox_id}-");
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().contains(&needle) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// containerd 1.6 names a shim's socket `/run/containerd/s/<sha256 of ADDRESS/NS/ID>`.
fn remove_shim_socket(key: &str) {
    let Ok(mut child) = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(key.as_bytes());
    }
    let Ok(out) = child.wait_with_output() else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(hash) = text.split_whitespace().next() {
        let _ = std::fs::remove_file(Path::new("/run/containerd/s").join(hash));
    }
}

/// Kills every process under the cgroup `root` (every hierarchy) and removes it.
fn remove_cgroups(root: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(root.trim_start_matches('/'));
        if dir.is_dir() && !h.path().is_symlink() {
            remove_cgroup_tree(&dir);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.flatten() {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&child.path());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                kill(pid);
            }
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if Instant::now() >= deadline => {
                eprintln!("cleanup: rmdir {}: {e}", dir.display());
                return;
            }
            // Killed processes take a moment to leave the cgroup.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A mountinfo path with its octal escapes (`\040` for a space) decoded.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        if let Some(v) = octal {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points under `dir`, in mount order.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unmount_under(dir: &Path) {
    for mount in mounts_under(dir).into_iter().rev() {
        let _ = rustix::mount::unmount(&mount, rustix::mount::UnmountFlags::DETACH);
    }
}
