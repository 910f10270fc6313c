//! Pods resolving cluster names: `mast server`, `mast dns` and a CRI `mast kubelet`
//! (real containerd, runc, CNI bridge) inside a network namespace this test creates.
//!
//! What it shows: containerd writes the resolv.conf the kubelet composes (nameserver,
//! `search NS.svc.cluster.local svc.cluster.local cluster.local`, `options ndots:5`),
//! the container gets the service environment variables, and busybox's resolver, going
//! by that resolv.conf, gets the Service's ClusterIP from `mast dns`, for the full name
//! and for the bare service name through the search list. (busybox's nslookup tries
//! every search domain and exits non-zero for the NXDOMAINs of the others, so the
//! short lookup is judged by its output.)
//!
//! The service proxy is not part of this test, so the kubelet's `--cluster-dns` names
//! the pod bridge's gateway (10.42.77.1, the node side of the bridge) where `mast dns`
//! listens on 0.0.0.0:53; in a cluster the nameserver is the kube-dns ClusterIP, which
//! the proxy DNATs to the same node address and port.
//!
//! The namespace harness is the benchmarks' (`benches/common/netns.rs`); its Drop
//! removes containerd, shims, cgroups, mounts and the namespace on every exit path.

mod common;
#[allow(dead_code)]
#[path = "../benches/common/netns.rs"]
mod netns;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{Backend, LOOPBACK_KUBELET, Server, unique_name};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, LogParams, PostParams};
use serde_json::json;

const BUSYBOX: &str = "docker.io/library/busybox:latest";
const POD_CIDR: &str = "10.42.77.0/24";
const GATEWAY: &str = "10.42.77.1";
const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(200);

/// Child processes, killed (and their logs printed on failure) on drop.
#[derive(Default)]
struct Children {
    running: Vec<(Child, std::path::PathBuf)>,
}

impl Children {
    fn spawn(&mut self, dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<()> {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log)?;
        let file2 = file.try_clone()?;
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .args(args)
            .arg("--exit-with-parent")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .with_context(|| format!("spawning mast {name}"))?;
        self.running.push((child, log));
        Ok(())
    }

    fn print_logs(&self) {
        for (_, log) in &self.running {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(80).collect();
            eprintln!("--- {} (tail) ---", log.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (child, _) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn pods_resolve_services_through_mast_dns() -> anyhow::Result<()> {
    let world = netns::World::new("mast-dp")?;
    world.enter()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut children = Children::default();
    let result = runtime.block_on(scenario(&world, &mut children));
    if result.is_err() {
        children.print_logs();
    }
    // The kubelet and containerd go before the namespace does.
    drop(children);
    drop(runtime);
    drop(world);
    result
}

async fn scenario(world: &netns::World, children: &mut Children) -> anyhow::Result<()> {
    let images = world.data_dir().join("agent").join("images");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    netns::run(
        "bash",
        &[&script.to_string_lossy(), &images.to_string_lossy()],
    )?;
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let kubeconfig = server.kubeconfig_path().to_string_lossy().into_owned();
    let resolv = world.dir().join("upstream-resolv.conf");
    std::fs::write(&resolv, "# no upstream in the namespace\n")?;
    children.spawn(
        world.dir(),
        "dns",
        &[
            "dns",
            "--kubeconfig",
            &kubeconfig,
            "--listen",
            "0.0.0.0:53",
            "--resolv-conf",
            &resolv.to_string_lossy(),
        ],
    )?;
    let node = unique_name("dns-node");
    let data_dir = world.data_dir().to_string_lossy().into_owned();
    let mut kubelet_args = vec![
        "kubelet",
        "--kubeconfig",
        &kubeconfig,
        "--node-name",
        &node,
        "--runtime",
        "cri",
        "--data-dir",
        &data_dir,
        "--pod-cidr",
        POD_CIDR,
        "--cluster-dns",
        GATEWAY,
        "--cgroup-root",
        world.cgroup_root(),
    ];
    kubelet_args.extend(LOOPBACK_KUBELET);
    children.spawn(world.dir(), "kubelet", &kubelet_args)?;

    let ns = unique_name("dnsp");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    // Before the pod: service variables are taken when a container starts.
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web-front"},
                "spec": {"clusterIP": "10.43.100.20", "ports": [{"name": "http", "port": 80}]}
            }))?,
        )
        .await?;
    let fqdn = format!("web-front.{ns}.svc.cluster.local");
    let script = format!(
        "cat /etc/resolv.conf; env | grep ^WEB_FRONT_ | sort; \
         nslookup {fqdn} && echo LOOKUP-FQDN-OK; \
         nslookup web-front | grep -q 'Address: 10.43.100.20' && echo LOOKUP-SHORT-OK; \
         echo DONE; sleep 3600"
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "client"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": BUSYBOX,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
            }]
        }
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod).await?;

    let deadline = Instant::now() + DEADLINE;
    let log = loop {
        let log = pods
            .logs("client", &LogParams::default())
            .await
            .unwrap_or_default();
        if log.contains("DONE") {
            break log;
        }
        if Instant::now() > deadline {
            let status = pods.get_opt("client").await?.and_then(|p| p.status);
            bail!("the pod did not finish its lookups; log so far:\n{log}\nstatus: {status:?}");
        }
        tokio::time::sleep(POLL).await;
    };
    eprintln!("--- pod log ---\n{log}");
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    let want = [
        format!("search {ns}.svc.cluster.local svc.cluster.local cluster.local"),
        format!("nameserver {GATEWAY}"),
        "options ndots:5".to_string(),
        "WEB_FRONT_SERVICE_HOST=10.43.100.20".to_string(),
        "WEB_FRONT_SERVICE_PORT=80".to_string(),
        "WEB_FRONT_SERVICE_PORT_HTTP=80".to_string(),
        "WEB_FRONT_PORT=tcp://10.43.100.20:80".to_string(),
        "WEB_FRONT_PORT_80_TCP_ADDR=10.43.100.20".to_string(),
        "LOOKUP-FQDN-OK".to_string(),
        "LOOKUP-SHORT-OK".to_string(),
    ];
    for line in &want {
        if !lines.iter().any(|l| l == line) {
            bail!("the pod log lacks {line:?}");
        }
    }
    if !lines
        .iter()
        .any(|l| l.starts_with("Address") && l.ends_with("10.43.100.20"))
    {
        bail!("no lookup answered 10.43.100.20");
    }
    Ok(())
}
