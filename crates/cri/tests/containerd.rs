//! End to end against the real parts: containerd + runc + CNI bridge, driven through
//! CRI. Each test makes its own network namespace (no route out), runs its own
//! containerd inside it, and cleans up on every exit path ([`Env`]'s Drop). Runs as
//! root; never skipped. Timings go to stderr.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use cri::containerd::Layout;
use cri::proto;
use cri::{
    BridgeNetwork, ContainerFilter, Containerd, ContainerdConfig, Runtime, RuntimeSource,
    SandboxFilter,
};
use tempfile::TempDir;
use tokio::time::Instant;

const BUSYBOX: &str = "docker.io/library/busybox:latest";
const MEMORY_LIMIT: i64 = 64 * 1024 * 1024;

/// One test's world: a network namespace, a temp dir, a cgroup parent for its pods,
/// and the containerd running in them. Dropping it removes all of it, whatever state
/// the test left things in.
struct Env {
    name: String,
    dir: TempDir,
    containerd: Option<Containerd>,
    /// containerd's socket, to find its shims if it has to be torn down by force.
    socket: Option<PathBuf>,
}

impl Env {
    fn new(tag: &str) -> anyhow::Result<Env> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("mast-cri-{tag}-{}-{nanos:x}", std::process::id());
        // Short: containerd's socket path must fit in a unix socket address.
        let dir = tempfile::Builder::new().prefix("mast-cri-").tempdir()?;
        run("ip", &["netns", "add", &name])?;
        let env = Env {
            name,
            dir,
            containerd: None,
            socket: None,
        };
        run("ip", &["-n", &env.name, "link", "set", "lo", "up"])?;
        Ok(env)
    }

    fn netns_path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }

    /// The cgroup parent of this test's pods (cgroupfs driver: a path).
    fn cgroup_parent(&self) -> String {
        format!("/{}", self.name)
    }

    fn containerd_config(&self) -> ContainerdConfig {
        let mut config = ContainerdConfig::new(self.dir.path().join("ctd"));
        config.netns = Some(self.netns_path());
        config
    }

    async fn start_containerd(&mut self) -> anyhow::Result<&Containerd> {
        let config = self.containerd_config();
        self.socket = Some(Layout::new(&std::path::absolute(&config.data_dir)?).socket);
        let started = Instant::now();
        let containerd = Containerd::start(&config).await?;
        eprintln!(
            "timing: containerd {} ready in {:?} (snapshotter {})",
            containerd.version().runtime_version,
            started.elapsed(),
            containerd.snapshotter().as_str()
        );
        self.socket = Some(containerd.layout().socket.clone());
        Ok(self.containerd.insert(containerd))
    }

    /// `busybox wget` from inside the test's network namespace. Its own `-T` timeout
    /// crashes Debian's busybox-static 1.35 (SIGSEGV), hence `timeout`.
    fn wget(&self, url: &str) -> anyhow::Result<String> {
        let netns = format!("--net={}", self.netns_path().display());
        let out = Command::new("timeout")
            .args([
                "-s", "KILL", "5", "nsenter", &netns, "busybox", "wget", "-q", "-O", "-", url,
            ])
            .output()?;
        ensure!(
            out.status.success(),
            "wget {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // containerd first (dropping it SIGKILLs it if the test did not stop it), so
        // nothing restarts what we kill next.
        drop(self.containerd.take());
        if let Some(socket) = &self.socket {
            kill_shims(socket);
        }
        remove_cgroups(&self.cgroup_parent());
        unmount_under(self.dir.path());
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("cleanup: {e:#}");
        }
        // The TempDir field removes the directory after this.
    }
}

/// Runs a command to completion; fails on a non-zero exit.
fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
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

/// Kills the shims of the containerd at `socket` (they outlive containerd by design).
fn kill_shims(socket: &Path) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let socket = socket.as_os_str().as_encoded_bytes();
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
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"));
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"-address" && w[1] == socket);
        if is_shim && ours {
            eprintln!("cleanup: killing leftover shim {pid}");
            kill(pid);
            let arg = |name: &[u8]| {
                args.windows(2)
                    .find(|w| w[0] == name)
                    .map(|w| String::from_utf8_lossy(w[1]).into_owned())
            };
            if let (Some(ns), Some(id)) = (arg(b"-namespace"), arg(b"-id")) {
                remove_shim_socket(&format!("{}/{ns}/{id}", String::from_utf8_lossy(socket)));
                remove_cni_cache(&id);
            }
        }
    }
}

/// A sandbox never torn down leaves libcni's cached results (`NETWORK-ID-IFNAME`)
/// in /var/lib/cni/results; a shim's id is its sandbox's.
fn remove_cni_cache(sandbox_id: &str) {
    let Ok(entries) = std::fs::read_dir("/var/lib/cni/results") else {
        return;
    };
    let needle = format!("-{sandbox_id}-");
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().contains(&needle)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            eprintln!("cleanup: removed {}", entry.path().display());
        }
    }
}

/// A killed shim leaves its socket behind: containerd 1.6 names it
/// `/run/containerd/s/<sha256 of "ADDRESS/NAMESPACE/ID">`, outside our data dir.
fn remove_shim_socket(key: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
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
        let path = Path::new("/run/containerd/s").join(hash);
        if std::fs::remove_file(&path).is_ok() {
            eprintln!("cleanup: removed {}", path.display());
        }
    }
}

/// Kills every process in the cgroup `parent` (in every hierarchy) and removes it.
fn remove_cgroups(parent: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(parent.trim_start_matches('/'));
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
    // Processes take a moment to leave once killed; rmdir says EBUSY until then.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                kill(pid);
            }
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if std::time::Instant::now() >= deadline => {
                eprintln!("cleanup: rmdir {}: {e}", dir.display());
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Mount points at or under `dir`, deepest (latest) first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.reverse();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
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

fn unmount_under(dir: &Path) {
    for mount in mounts_under(dir) {
        eprintln!("cleanup: unmounting {}", mount.display());
        if let Err(e) = rustix::mount::unmount(&mount, rustix::mount::UnmountFlags::DETACH) {
            eprintln!("cleanup: unmount {}: {e}", mount.display());
        }
    }
}

/// Polls `check` until it yields a value; fails after `timeout` with the last error.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition not met");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn build_images(out: &Path) -> anyhow::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    run("bash", &[&script.to_string_lossy(), &out.to_string_lossy()])?;
    Ok(())
}

fn namespaces() -> proto::NamespaceOption {
    proto::NamespaceOption {
        network: proto::NamespaceMode::Pod as i32,
        pid: proto::NamespaceMode::Container as i32,
        ipc: proto::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// The memory cgroup directory of process `pid`, from /proc/PID/cgroup.
fn memory_cgroup(pid: u32) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        if let (Some(controllers), Some(path)) = (controllers, path)
            && controllers.split(',').any(|c| c == "memory")
        {
            return Ok(Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')));
        }
    }
    bail!("pid {pid} has no memory cgroup (cgroup v1 expected):\n{text}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_pod_serves_http_through_cri() -> anyhow::Result<()> {
    let mut env = Env::new("pod")?;
    let images = env.dir.path().join("images");
    build_images(&images)?;
    let logs = env.dir.path().join("logs");
    let cgroup_parent = env.cgroup_parent();
    let containerd = env.start_containerd().await?;
    let layout = containerd.layout().clone();
    let client = containerd.client();
    let importer = containerd.importer();

    let started = Instant::now();
    let report = importer.import_dir(&images).await?;
    ensure!(
        report.failed.is_empty(),
        "imports failed: {:?}",
        report.failed
    );
    let mut names: Vec<_> = report.imported.iter().map(|i| i.name.as_str()).collect();
    names.sort();
    // Everything scripts/build-images.sh writes: busybox, pause and the example app.
    assert_eq!(
        names,
        vec![BUSYBOX, cri::containerd::PAUSE_IMAGE, "mast.local/web:1"]
    );
    eprintln!("timing: images imported in {:?}", started.elapsed());
    let image = client
        .image_status(BUSYBOX)
        .await?
        .context("busybox not listed")?;
    assert!(image.repo_tags.iter().any(|t| t == BUSYBOX), "{image:?}");
    assert!(client.image_status("mast.local/absent:0").await?.is_none());
    let all = client.list_images().await?;
    assert!(all.iter().any(|i| {
        i.repo_tags
            .iter()
            .any(|t| t == cri::containerd::PAUSE_IMAGE)
    }));

    let mut net = BridgeNetwork::new("10.88.0.0/24")?;
    net.ipam_data_dir = Some(layout.cni_ipam_dir.clone());
    net.write(&layout.cni_conf_dir)?;
    let started = Instant::now();
    wait_for("NetworkReady", Duration::from_secs(10), || async {
        let conditions = client.runtime_status().await?;
        Ok(conditions
            .iter()
            .any(|c| c.r#type == "NetworkReady" && c.status)
            .then_some(()))
    })
    .await?;
    eprintln!("timing: CNI config loaded in {:?}", started.elapsed());

    let run_id = env.name.clone();
    let labels = HashMap::from([("mast.test/run".to_owned(), run_id.clone())]);
    let sandbox_config = proto::PodSandboxConfig {
        metadata: Some(proto::PodSandboxMetadata {
            name: "web".into(),
            uid: run_id.clone(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: logs.to_string_lossy().into_owned(),
        labels: labels.clone(),
        linux: Some(proto::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.clone(),
            security_context: Some(proto::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let started = Instant::now();
    let sandbox = client.run_pod_sandbox(&sandbox_config, "").await?;
    eprintln!("timing: RunPodSandbox {:?}", started.elapsed());
    let ip = client
        .pod_sandbox_ip(&sandbox)
        .await?
        .context("sandbox has no IP")?;
    ensure!(ip.to_string().starts_with("10.88.0."), "pod IP {ip}");

    let container_config = proto::ContainerConfig {
        metadata: Some(proto::ContainerMetadata {
            name: "httpd".into(),
            attempt: 0,
        }),
        image: Some(proto::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into()],
        args: vec![
            "echo started-$RUN; mkdir -p /www && echo hello-from-POD > /www/index.html \
             && exec httpd -f -p 80 -h /www"
                .into(),
        ],
        envs: vec![proto::KeyValue {
            key: "RUN".into(),
            value: run_id.clone(),
        }],
        labels: labels.clone(),
        log_path: "httpd/0.log".into(),
        linux: Some(proto::LinuxContainerConfig {
            resources: Some(proto::LinuxContainerResources {
                memory_limit_in_bytes: MEMORY_LIMIT,
                ..Default::default()
            }),
            security_context: Some(proto::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let started = Instant::now();
    let container = client
        .create_container(&sandbox, &container_config, &sandbox_config)
        .await?;
    let created = started.elapsed();
    client.start_container(&container).await?;
    eprintln!(
        "timing: CreateContainer {created:?}, + StartContainer {:?}",
        started.elapsed()
    );

    let status = client.container_status(&container).await?;
    assert_eq!(
        status.state,
        proto::ContainerState::ContainerRunning as i32,
        "{status:?}"
    );
    let started = Instant::now();
    let page = wait_for("the pod's page", Duration::from_secs(10), || async {
        Ok(Some(env.wget(&format!("http://{ip}/"))?))
    })
    .await;
    let page = match page {
        Ok(page) => page,
        Err(e) => {
            let status = client.container_status(&container).await;
            let log = std::fs::read_to_string(logs.join("httpd/0.log"));
            let addrs = run("ip", &["-n", &env.name, "addr"]);
            bail!("{e:#}\nstatus: {status:?}\nlog: {log:?}\nnetns: {addrs:?}");
        }
    };
    assert_eq!(page.trim(), "hello-from-POD");
    eprintln!(
        "timing: first HTTP answer {:?} after start",
        started.elapsed()
    );

    // Exec probes' path.
    let out = client
        .exec_sync(
            &container,
            &["cat".into(), "/www/index.html".into()],
            Duration::from_secs(5),
        )
        .await?;
    assert_eq!(
        (out.exit_code, out.stdout.as_slice()),
        (0, &b"hello-from-POD\n"[..])
    );
    let fail = client
        .exec_sync(
            &container,
            &["sh".into(), "-c".into(), "exit 3".into()],
            Duration::from_secs(5),
        )
        .await?;
    assert_eq!(fail.exit_code, 3);

    // The memory limit is in the container's cgroup, under the pod's cgroup parent.
    let info = client.container_info(&container).await?;
    ensure!(info.pid > 0, "no pid in {info:?}");
    let cgroup = memory_cgroup(info.pid)?;
    let limit = std::fs::read_to_string(cgroup.join("memory.limit_in_bytes"))?;
    assert_eq!(limit.trim().parse::<i64>()?, MEMORY_LIMIT);
    assert!(
        cgroup.starts_with(Path::new("/sys/fs/cgroup/memory").join(&cgroup_parent[1..])),
        "{} not under {cgroup_parent}",
        cgroup.display()
    );
    if let Some(path) = &info.cgroups_path {
        assert!(
            cgroup.ends_with(path.trim_start_matches('/')),
            "{path} vs {}",
            cgroup.display()
        );
    }

    // The log, in CRI's format, where the config said.
    let log_path = PathBuf::from(&status.log_path);
    assert_eq!(log_path, logs.join("httpd/0.log"));
    let line = wait_for("the container's log", Duration::from_secs(5), || async {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        Ok(text
            .lines()
            .find(|l| l.ends_with(&format!("started-{run_id}")))
            .map(str::to_owned))
    })
    .await?;
    assert!(line.contains(" stdout F "), "{line}");
    client.reopen_container_log(&container).await?;

    let by_label = SandboxFilter {
        labels: labels.clone(),
        ..Default::default()
    };
    let sandboxes = client.list_pod_sandboxes(&by_label).await?;
    assert_eq!(
        sandboxes.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![sandbox.as_str()]
    );
    let in_pod = ContainerFilter {
        pod_sandbox_id: Some(sandbox.clone()),
        labels: labels.clone(),
        ..Default::default()
    };
    let containers = client.list_containers(&in_pod).await?;
    assert_eq!(
        containers.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec![container.as_str()]
    );

    // Tear down through CRI and check it is all gone.
    let started = Instant::now();
    client
        .stop_container(&container, Duration::from_secs(1))
        .await?;
    let stopped = started.elapsed();
    let status = client.container_status(&container).await?;
    assert_eq!(status.state, proto::ContainerState::ContainerExited as i32);
    client.remove_container(&container).await?;
    client.stop_pod_sandbox(&sandbox).await?;
    client.remove_pod_sandbox(&sandbox).await?;
    eprintln!(
        "timing: StopContainer {stopped:?}; all stopped and removed {:?}",
        started.elapsed()
    );
    assert!(
        client
            .container_status(&container)
            .await
            .is_err_and(|e| e.is_not_found())
    );
    assert!(
        client
            .pod_sandbox_status(&sandbox)
            .await
            .is_err_and(|e| e.is_not_found())
    );
    assert!(client.list_pod_sandboxes(&by_label).await?.is_empty());
    assert!(client.list_containers(&in_pod).await?.is_empty());
    // The pod's veth is gone and its address back in the pool.
    let links = run("ip", &["-n", &env.name, "-o", "link"])?;
    ensure!(!links.contains("veth"), "veth left behind:\n{links}");
    let leased = layout.cni_ipam_dir.join("mast").join(ip.to_string());
    ensure!(!leased.exists(), "{} still leased", leased.display());

    let started = Instant::now();
    if let Some(containerd) = env.containerd.take() {
        containerd.stop().await;
    }
    eprintln!("timing: containerd stopped in {:?}", started.elapsed());
    let left = mounts_under(env.dir.path());
    assert!(left.is_empty(), "mounts left behind: {left:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_is_restarted_after_a_crash() -> anyhow::Result<()> {
    let mut env = Env::new("restart")?;
    let containerd = env.start_containerd().await?;
    let client = containerd.client();
    let first = containerd.pid();
    ensure!(first > 0, "no pid");
    kill(i32::try_from(first)?);
    let started = Instant::now();
    wait_for(
        "a restarted containerd",
        Duration::from_secs(20),
        || async {
            let pid = containerd.pid();
            if pid == 0 || pid == first {
                return Ok(None);
            }
            client.version().await?;
            Ok(Some(()))
        },
    )
    .await?;
    assert_eq!(containerd.restarts(), 1);
    eprintln!(
        "timing: containerd back {:?} after SIGKILL",
        started.elapsed()
    );

    // The same containerd used as an existing endpoint.
    let endpoint = containerd.endpoint();
    let runtime = Runtime::start(RuntimeSource::Endpoint(endpoint), Duration::from_secs(5)).await?;
    assert!(runtime.containerd().is_none());
    assert_eq!(runtime.client().version().await?.runtime_name, "containerd");
    runtime.stop().await;
    let second = containerd.pid();

    if let Some(containerd) = env.containerd.take() {
        containerd.stop().await;
    }
    ensure!(
        !Path::new(&format!("/proc/{second}")).exists(),
        "containerd {second} still running after stop"
    );
    Ok(())
}

#[tokio::test]
async fn an_absent_endpoint_is_not_ready() {
    let result = Runtime::start(
        RuntimeSource::Endpoint("unix:///nonexistent/mast-cri.sock".into()),
        Duration::from_millis(200),
    )
    .await;
    assert!(
        matches!(result, Err(cri::ContainerdError::NotReady { .. })),
        "{result:?}"
    );
}
