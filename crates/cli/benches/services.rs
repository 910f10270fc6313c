//! Services benchmark: the same traffic through a ClusterIP and straight to the pod IP,
//! from the node, as a ratio (issue 8's aim: ClusterIP throughput ≥ 95% of direct).
//!
//! ```text
//! cargo bench -p mast --bench services            # 5 rounds
//! cargo bench -p mast --bench services -- --quick # 2 rounds, smaller transfers
//! ```
//!
//! Flags after `--`: `--quick`; `--rounds N`; `--keep-logs DIR` (copies the server and
//! agent logs there before cleaning up). `MAST_BENCH_BIN=PATH` runs another `mast`
//! build than the one cargo made.
//!
//! As `crates/cli/tests/services_e2e.rs` does: a network namespace this benchmark
//! creates (loopback, and a veth pair whose end `mast-n0` carries the node address the
//! agent's DNS server needs), entered by the main thread before it builds its async
//! runtime, so `mast server` (SQLite, scheduler, controllers), `mast agent` (kubelet
//! with its own containerd, runc and CNI bridge; the nftables proxy; DNS), `nft` and the
//! benchmark's own sockets all live there. `common::netns` removes containerd, shims,
//! cgroups, mounts and the namespace (with its nftables tables) on every exit path; the
//! agent is stopped with SIGTERM first so it removes its own tables.
//!
//! One server pod (busybox), three containers sharing its network:
//! - `source` on 9000: `nc -ll -e dd if=/dev/zero bs=1M`, a byte source writing 1 MiB
//!   blocks straight into the accepted socket (nc hands the socket over as stdout);
//! - `echo` on 9001: `nc -ll -e cat`, echoes what it reads;
//! - `httpd` on 80: busybox httpd serving a fixed 1 KiB file.
//!
//! One ClusterIP Service with the three ports. The client is this process, in the
//! namespace: node-originated traffic, translated by the proxy's `nat-output` chain
//! (DNAT, and the masquerade mark for traffic from outside the pod network). Per round,
//! each path in turn (the order alternating between rounds, so drift hits both):
//! 1. bulk: one connection, read BULK bytes; MiB/s from connect to the last byte. The
//!    kernel's TCP path (veth, bridge, conntrack, NAT mangling per packet) is the work;
//!    dd's reads of /dev/zero are cheap.
//! 2. echo: one connection (TCP_NODELAY), ECHOES round trips of 64 bytes; each round
//!    trip's time. Per-packet latency of an established flow (conntrack only, after
//!    the first packet).
//! 3. http: HTTP requests, each on a fresh connection (`GET /`, `Connection: close`,
//!    the 1 KiB body read to the end); the connect() time (SYN → SYN-ACK, answered by
//!    the pod's kernel: the new-connection NAT rules are the difference) and the whole
//!    request. busybox httpd forks per connection, so the request time is mostly
//!    httpd's; the connect time is the network path's.
//!
//! Prints a Markdown table (paste it into docs/benchmarks.md).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::netns::{World, run};
use common::{Process, START_TIMEOUT, client, machine_busy_seconds, mast_bin, start_server};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, PostParams};
use serde_json::json;

/// The busybox image `scripts/build-images.sh` builds.
const BUSYBOX: &str = "docker.io/library/busybox:latest";
/// The node address, on the veth end `mast-n0` (as in services_e2e.rs).
const NODE_IP: &str = "192.168.77.1";
const NODE_NAME: &str = "svc-bench-node";
const SOURCE_PORT: u16 = 9000;
const ECHO_PORT: u16 = 9001;
const HTTP_PORT: u16 = 80;
/// Size of the file httpd serves.
const HTTP_BODY: usize = 1024;
/// Size of one echoed message.
const ECHO_MESSAGE: usize = 64;
/// Deadline of any one socket operation.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Options {
    rounds: usize,
    /// Bytes read per bulk transfer.
    bulk: usize,
    /// Round trips per echo run.
    echoes: usize,
    /// Requests per HTTP run.
    requests: usize,
    keep_logs: Option<std::path::PathBuf>,
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut options = Options {
            rounds: if quick { 2 } else { 5 },
            bulk: if quick { 128 << 20 } else { 1 << 30 },
            echoes: if quick { 1000 } else { 4000 },
            requests: if quick { 100 } else { 400 },
            keep_logs: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--rounds" => options.rounds = value()?.parse().context("--rounds")?,
                "--keep-logs" => options.keep_logs = Some(value()?.into()),
                // `--quick`, and `--bench`, which cargo passes.
                _ => {}
            }
        }
        ensure!(options.rounds > 0, "--rounds must be at least 1");
        Ok(options)
    }
}

fn main() -> Result<()> {
    let options = Options::parse()?;
    // Others' work on the machine skews the figures: say how busy it was.
    let before = machine_busy_seconds()?;
    std::thread::sleep(Duration::from_secs(2));
    let busy_before = (machine_busy_seconds()? - before) / 2.0;
    let world = World::new("mast-sb")?;
    let residue = world.residue();
    world.enter()?;
    let result = setup_network(&world).and_then(|()| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        // Every process the benchmark started is stopped when this returns (dropped
        // with its future, if not stopped before).
        runtime.block_on(measure(&world, &options))
    });
    if let Some(dir) = &options.keep_logs
        && let Err(e) = keep_logs(&world, dir)
    {
        eprintln!("keeping the logs: {e:#}");
    }
    drop(world);
    let left = residue.check();
    if left.is_empty() {
        eprintln!("cleanup: nothing left (namespace, processes, mounts, cgroups, files)");
    } else {
        eprintln!("cleanup: LEFT BEHIND: {}", left.join("; "));
    }
    let figures = result?;
    println!(
        "\nThe machine was {:.0}% busy (of one core) in the 2 s before the run.",
        busy_before * 100.0
    );
    figures.print(&options);
    ensure!(left.is_empty(), "the run left things behind");
    Ok(())
}

/// The node address on a veth end, and the images where the agent imports them from.
fn setup_network(world: &World) -> Result<()> {
    world.add_node_address(NODE_IP)?;
    let images = world.data_dir().join("agent").join("images");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    run(
        "bash",
        &[&script.to_string_lossy(), &images.to_string_lossy()],
    )?;
    Ok(())
}

/// Copies the `*.log` files directly in the world's temp dir and its server dir.
fn keep_logs(world: &World, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    for dir in [world.dir().to_path_buf(), world.dir().join("server")] {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                std::fs::copy(&path, dest.join(entry.file_name()))?;
            }
        }
    }
    eprintln!("logs kept in {}", dest.display());
    Ok(())
}

/// Polls `check` until it yields a value, while `processes` live; fails after
/// [`START_TIMEOUT`] with the last error.
async fn wait_for<T, F, Fut>(what: &str, processes: &mut [&mut Process], mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("condition not met");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        for p in processes.iter_mut() {
            p.check_alive(deadline, &format!("{what} (last: {last})"))?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `nft list table ip mast-proxy`, or empty when there is none.
fn proxy_table() -> Result<String> {
    if !run("nft", &["list", "tables"])?.contains("mast-proxy") {
        return Ok(String::new());
    }
    run("nft", &["list", "table", "ip", "mast-proxy"])
}

async fn measure(world: &World, options: &Options) -> Result<Figures> {
    let server_dir = world.dir().join("server");
    std::fs::create_dir_all(&server_dir)?;
    let mut server = start_server(&server_dir, &["--exit-with-parent".to_string()]).await?;
    let resolv = world.dir().join("upstream-resolv.conf");
    std::fs::write(&resolv, "# no upstream in the namespace\n")?;
    let mut agent = Process::spawn(
        "mast agent",
        Command::new(mast_bin())
            .arg("agent")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .args([
                "--node-name",
                NODE_NAME,
                "--port",
                "0",
                "--node-ip",
                NODE_IP,
            ])
            .arg("--data-dir")
            .arg(world.data_dir())
            .args(["--cgroup-root", world.cgroup_root()])
            .arg("--resolv-conf")
            .arg(&resolv)
            .arg("--exit-with-parent")
            // hickory's server logs every query at info.
            .env("RUST_LOG", "info,hickory_server=warn"),
        world.dir().join("agent.log"),
    )?;
    let client = client(&server.kubeconfig).await?;
    let started = Instant::now();
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for(
        "the node Ready with a podCIDR",
        &mut [&mut server.process, &mut agent],
        || async {
            let node = nodes.get_opt(NODE_NAME).await?;
            Ok(node.filter(node_ready).map(|_| ()))
        },
    )
    .await?;
    eprintln!(
        "services: node Ready {:.1} s after the agent started",
        started.elapsed().as_secs_f64()
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &server_pod()?).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "bench"},
                "spec": {"selector": {"app": "bench"}, "ports": [
                    {"name": "source", "port": SOURCE_PORT},
                    {"name": "echo", "port": ECHO_PORT},
                    {"name": "http", "port": HTTP_PORT},
                ]}
            }))?,
        )
        .await?;
    let cluster_ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .filter(|ip| ip.starts_with("10.43."))
        .context("no ClusterIP allocated")?;
    let pod_ip = wait_for(
        "the server pod Ready",
        &mut [&mut server.process, &mut agent],
        || async {
            let pod = pods.get("server").await?;
            Ok(pod_ready(&pod)
                .then(|| pod.status.and_then(|s| s.pod_ip))
                .flatten())
        },
    )
    .await?;
    wait_for(
        "the pod behind the ClusterIP in the proxy's table, every port answering",
        &mut [&mut server.process, &mut agent],
        || async {
            let table = proxy_table()?;
            if !(table.contains(&cluster_ip) && table.contains(&format!("/{pod_ip}/"))) {
                return Ok(None);
            }
            for ip in [&pod_ip, &cluster_ip] {
                http_request(&format!("{ip}:{HTTP_PORT}").parse()?)?;
                echo_run(format!("{ip}:{ECHO_PORT}").parse()?, 1)?;
            }
            Ok(Some(()))
        },
    )
    .await?;
    eprintln!("services: pod {pod_ip} behind ClusterIP {cluster_ip}");

    let direct = Target::new("direct", &pod_ip)?;
    let through = Target::new("ClusterIP", &cluster_ip)?;
    let mut figures = Figures::default();
    let bulk = options.bulk;
    let echoes = options.echoes;
    let requests = options.requests;
    for round in 0..options.rounds {
        let order = if round % 2 == 0 {
            [(&direct, false), (&through, true)]
        } else {
            [(&through, true), (&direct, false)]
        };
        for (target, is_cluster) in order {
            let target = target.clone();
            let path = tokio::task::spawn_blocking(move || -> Result<Readings> {
                let throughput = bulk_run(target.source, bulk)?;
                let echo = echo_run(target.echo, echoes)?;
                let mut connect = Vec::with_capacity(requests);
                let mut request = Vec::with_capacity(requests);
                let http_started = Instant::now();
                for _ in 0..requests {
                    let (c, r) = http_request(&target.http)?;
                    connect.push(c);
                    request.push(r);
                }
                let http_elapsed = http_started.elapsed();
                Ok(Readings {
                    throughput: vec![throughput],
                    echo,
                    connect,
                    request,
                    http_elapsed,
                })
            })
            .await??;
            eprintln!(
                "services: round {} {}: {:.0} MiB/s, echo p50 {:.1} µs, connect p50 {:.1} µs, \
                 request p50 {:.1} µs",
                round + 1,
                target.name,
                path.throughput[0],
                us(percentile(&path.echo, 0.5)),
                us(percentile(&path.connect, 0.5)),
                us(percentile(&path.request, 0.5)),
            );
            let into = if is_cluster {
                &mut figures.cluster
            } else {
                &mut figures.direct
            };
            into.add(path);
        }
    }

    // The agent's own shutdown removes its tables; then the server goes.
    let status = agent.terminate(Duration::from_secs(30)).await?;
    ensure!(status.success(), "the agent exited with {status}");
    let tables = run("nft", &["list", "tables"])?;
    ensure!(
        !tables.contains("mast-proxy") && !tables.contains("mast-kubelet"),
        "tables left after the agent stopped: {tables}"
    );
    server.process.terminate(Duration::from_secs(30)).await?;
    figures.cluster_ip = cluster_ip;
    figures.pod_ip = pod_ip;
    Ok(figures)
}

fn node_ready(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready
        && node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .is_some()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The server pod: a byte source, an echo server and httpd, sharing one network.
fn server_pod() -> Result<Pod> {
    let container = |name: &str, command: &[&str], port: u16| {
        json!({
            "name": name, "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
            "command": command, "ports": [{"containerPort": port}],
        })
    };
    let page = format!(
        "mkdir -p /www && dd if=/dev/zero of=/www/index.html bs={HTTP_BODY} count=1 \
         && exec httpd -f -p {HTTP_PORT} -h /www"
    );
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "server", "labels": {"app": "bench"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                container("source", &["nc", "-ll", "-p", &SOURCE_PORT.to_string(),
                    "-e", "dd", "if=/dev/zero", "bs=1048576"], SOURCE_PORT),
                container("echo", &["nc", "-ll", "-p", &ECHO_PORT.to_string(), "-e", "cat"],
                    ECHO_PORT),
                container("httpd", &["sh", "-c", &page], HTTP_PORT),
            ]
        }
    }))?)
}

/// One path's three addresses.
#[derive(Debug, Clone)]
struct Target {
    name: &'static str,
    source: SocketAddr,
    echo: SocketAddr,
    http: SocketAddr,
}

impl Target {
    fn new(name: &'static str, ip: &str) -> Result<Target> {
        Ok(Target {
            name,
            source: format!("{ip}:{SOURCE_PORT}").parse()?,
            echo: format!("{ip}:{ECHO_PORT}").parse()?,
            http: format!("{ip}:{HTTP_PORT}").parse()?,
        })
    }
}

fn connect(addr: &SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(addr, IO_TIMEOUT)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Reads `bytes` from the source: MiB/s from the connect call to the last byte.
fn bulk_run(addr: SocketAddr, bytes: usize) -> Result<f64> {
    let mut buffer = vec![0u8; 256 * 1024];
    let started = Instant::now();
    let mut stream = connect(&addr)?;
    let mut left = bytes;
    while left > 0 {
        let want = left.min(buffer.len());
        let n = stream
            .read(&mut buffer[..want])
            .with_context(|| format!("reading from {addr}"))?;
        ensure!(n > 0, "{addr} closed with {left} bytes to go");
        left -= n;
    }
    let elapsed = started.elapsed();
    // Dropping the stream ends dd (SIGPIPE) and nc's child.
    drop(stream);
    Ok(bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64())
}

/// `count` round trips of a 64-byte message on one connection, after a few unmeasured
/// ones; each round trip's time.
fn echo_run(addr: SocketAddr, count: usize) -> Result<Vec<Duration>> {
    let mut stream = connect(&addr)?;
    stream.set_nodelay(true)?;
    let message = [b'x'; ECHO_MESSAGE];
    let mut reply = [0u8; ECHO_MESSAGE];
    let warm_up = count.min(50);
    let mut times = Vec::with_capacity(count);
    for i in 0..warm_up + count {
        let started = Instant::now();
        stream.write_all(&message)?;
        stream
            .read_exact(&mut reply)
            .with_context(|| format!("reading the echo from {addr}"))?;
        if i >= warm_up {
            times.push(started.elapsed());
        }
        ensure!(reply == message, "{addr} echoed something else");
    }
    Ok(times)
}

/// One `GET /` on a fresh connection, the body read to the end: the connect call's
/// time and the whole request's.
fn http_request(addr: &SocketAddr) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut stream = connect(addr)?;
    let connected = started.elapsed();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::with_capacity(HTTP_BODY + 512);
    stream.read_to_end(&mut raw)?;
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{addr}: no HTTP body in {text:?}");
    };
    ensure!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{addr}: {head}"
    );
    ensure!(
        body.len() == HTTP_BODY,
        "{addr}: {} bytes of body",
        body.len()
    );
    Ok((connected, elapsed))
}

/// One path's readings over one round.
#[derive(Debug, Default)]
struct Readings {
    /// MiB/s per bulk transfer.
    throughput: Vec<f64>,
    echo: Vec<Duration>,
    connect: Vec<Duration>,
    request: Vec<Duration>,
    /// Wall time of the HTTP requests.
    http_elapsed: Duration,
}

impl Readings {
    fn add(&mut self, other: Readings) {
        self.throughput.extend(other.throughput);
        self.echo.extend(other.echo);
        self.connect.extend(other.connect);
        self.request.extend(other.request);
        self.http_elapsed += other.http_elapsed;
    }

    fn requests_per_second(&self) -> f64 {
        self.request.len() as f64 / self.http_elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

#[derive(Debug, Default)]
struct Figures {
    direct: Readings,
    cluster: Readings,
    pod_ip: String,
    cluster_ip: String,
}

impl Figures {
    fn print(&self, options: &Options) {
        let (d, c) = (&self.direct, &self.cluster);
        println!(
            "\nNode → pod {} directly vs through ClusterIP {}: {} rounds, each path in turn \
             (alternating order); per round and path one {} MiB transfer, {} echo round \
             trips of {ECHO_MESSAGE} B, {} HTTP requests for {HTTP_BODY} B on fresh \
             connections.\n",
            self.pod_ip,
            self.cluster_ip,
            options.rounds,
            options.bulk >> 20,
            options.echoes,
            options.requests,
        );
        println!("| Measure | Direct (pod IP) | ClusterIP | ClusterIP ÷ direct |");
        println!("|---|---:|---:|---:|");
        let rate = |name: &str, a: f64, b: f64| {
            println!("| {name} | {a:.0} | {b:.0} | {:.3} |", b / a);
        };
        let time = |name: &str, a: Duration, b: Duration| {
            println!(
                "| {name} | {:.1} | {:.1} | {:.3} |",
                us(a),
                us(b),
                b.as_secs_f64() / a.as_secs_f64().max(f64::EPSILON)
            );
        };
        rate(
            "Bulk download, MiB/s (median of rounds)",
            median(&d.throughput),
            median(&c.throughput),
        );
        rate(
            "Bulk download, MiB/s (worst round)",
            min(&d.throughput),
            min(&c.throughput),
        );
        time(
            "Echo round trip p50, µs",
            percentile(&d.echo, 0.5),
            percentile(&c.echo, 0.5),
        );
        time(
            "Echo round trip p99, µs",
            percentile(&d.echo, 0.99),
            percentile(&c.echo, 0.99),
        );
        time(
            "TCP connect p50, µs",
            percentile(&d.connect, 0.5),
            percentile(&c.connect, 0.5),
        );
        time(
            "TCP connect p99, µs",
            percentile(&d.connect, 0.99),
            percentile(&c.connect, 0.99),
        );
        time(
            "HTTP GET (new connection) p50, µs",
            percentile(&d.request, 0.5),
            percentile(&c.request, 0.5),
        );
        time(
            "HTTP GET (new connection) p99, µs",
            percentile(&d.request, 0.99),
            percentile(&c.request, 0.99),
        );
        rate(
            "HTTP requests/s (sequential)",
            d.requests_per_second(),
            c.requests_per_second(),
        );
        let ratio = median(&c.throughput) / median(&d.throughput);
        println!(
            "\nAim: ClusterIP throughput ≥ 95% of direct: {:.1}% ({}).",
            ratio * 100.0,
            if ratio >= 0.95 { "met" } else { "NOT met" }
        );
    }
}

fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
