//! `mast dns` against a real `mast server`: Services and EndpointSlices made through the
//! API are answered over UDP and TCP on a loopback port; changes show up; with
//! `--ensure-service` the process creates `kube-system/kube-dns` (10.43.0.10) and
//! publishes itself as its endpoint, and withdraws on SIGTERM.
//!
//! The upstream resolv.conf is an empty temp file, so names outside the zone are refused
//! at once (no internet here). Every wait polls against a deadline; the processes go
//! when the test ends, however it ends.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Server, unique_name};
use dns::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use dns::proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// A running `mast dns`, killed on drop (its log printed if the test failed).
struct DnsProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl DnsProcess {
    fn start(kubeconfig: &Path, dir: &Path, listen: SocketAddr, extra: &[&str]) -> DnsProcess {
        let resolv = dir.join("resolv.conf");
        std::fs::write(&resolv, "# no upstream here\n").expect("write resolv.conf");
        let log = dir.join(format!("dns-{}.log", listen.port()));
        let log_file = File::create(&log).expect("create the dns log");
        let log_file_2 = log_file.try_clone().expect("clone the log handle");
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("dns")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--resolv-conf")
            .arg(&resolv)
            .arg("--exit-with-parent")
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file_2)
            .spawn()
            .expect("spawn mast dns");
        DnsProcess { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit (killing it after the deadline).
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("mast dns did not exit on SIGTERM\n{}", self.log());
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for DnsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- mast dns log ---\n{}\n--- end ---", self.log());
        }
    }
}

/// A loopback address with a port free for both UDP and TCP right now.
fn free_addr() -> SocketAddr {
    for _ in 0..32 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let addr = udp.local_addr().expect("addr");
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no port free for both UDP and TCP");
}

fn query_bytes(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(0x2a2a, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    message.to_vec().expect("encode")
}

async fn udp(server: SocketAddr, name: &str, qtype: RecordType) -> Option<Message> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket
        .send_to(&query_bytes(name, qtype), server)
        .await
        .ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

async fn tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Option<Message> {
    let mut stream = tokio::net::TcpStream::connect(server).await.ok()?;
    let bytes = query_bytes(name, qtype);
    let len = u16::try_from(bytes.len()).ok()?;
    stream.write_all(&len.to_be_bytes()).await.ok()?;
    stream.write_all(&bytes).await.ok()?;
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.ok()?;
    Message::from_vec(&answer).ok()
}

/// The answer section as sorted `TYPE data` lines, or the response code.
fn summary(message: &Message) -> Result<Vec<String>, ResponseCode> {
    if message.metadata.response_code != ResponseCode::NoError {
        return Err(message.metadata.response_code);
    }
    let mut out: Vec<String> = message
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    out.sort();
    Ok(out)
}

/// Polls until `name`/`qtype` over `transport` summarizes to `want`.
async fn expect_answer(
    dns: &DnsProcess,
    addr: SocketAddr,
    tcp_transport: bool,
    name: &str,
    qtype: RecordType,
    want: Result<Vec<&str>, ResponseCode>,
) {
    let want = want.map(|w| w.into_iter().map(str::to_string).collect::<Vec<_>>());
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    while Instant::now() < deadline {
        let answer = if tcp_transport {
            tcp(addr, name, qtype).await
        } else {
            udp(addr, name, qtype).await
        };
        if let Some(message) = answer {
            let got = summary(&message);
            if got == want {
                return;
            }
            last = Some(got);
        }
        tokio::time::sleep(POLL).await;
    }
    panic!(
        "{name} {qtype}: wanted {want:?}, last got {last:?}\n--- dns log ---\n{}",
        dns.log()
    );
}

async fn create<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let object: K = serde_json::from_value(value).expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_services_and_endpoint_slices_from_the_api() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let ns = unique_name("dns");
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"metadata": {"name": ns}}),
    )
    .await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    create(
        &services,
        json!({
            "metadata": {"name": "web"},
            "spec": {"clusterIP": "10.43.100.20", "ports": [{"name": "http", "port": 80}]}
        }),
    )
    .await;
    create(
        &services,
        json!({
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}
        }),
    )
    .await;
    create(
        &services,
        json!({
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}
        }),
    )
    .await;
    create(
        &Api::<EndpointSlice>::namespaced(client.clone(), &ns),
        json!({
            "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"], "conditions": {"ready": false}}
            ]
        }),
    )
    .await;

    let addr = free_addr();
    let mut dns = DnsProcess::start(
        server.kubeconfig_path(),
        server.dir(),
        addr,
        &[
            "--ensure-service",
            "--node-ip",
            "192.0.2.77",
            "--node-name",
            "n1",
        ],
    );
    use RecordType::*;
    let web = format!("web.{ns}.svc.cluster.local.");
    expect_answer(&dns, addr, false, &web, A, Ok(vec!["A 10.43.100.20"])).await;
    expect_answer(
        &dns,
        addr,
        true,
        &web.to_uppercase(),
        A,
        Ok(vec!["A 10.43.100.20"]),
    )
    .await;
    expect_answer(
        &dns,
        addr,
        true,
        &format!("_http._tcp.{web}"),
        SRV,
        Ok(vec![&format!("SRV 0 100 80 {web}")]),
    )
    .await;
    let db = format!("db.{ns}.svc.cluster.local.");
    expect_answer(&dns, addr, false, &db, A, Ok(vec!["A 10.42.0.5"])).await;
    expect_answer(
        &dns,
        addr,
        false,
        &format!("db-0.{db}"),
        A,
        Ok(vec!["A 10.42.0.5"]),
    )
    .await;
    expect_answer(
        &dns,
        addr,
        false,
        &format!("_pg._tcp.{db}"),
        SRV,
        Ok(vec![&format!("SRV 0 100 5432 db-0.{db}")]),
    )
    .await;
    expect_answer(
        &dns,
        addr,
        false,
        &format!("ext.{ns}.svc.cluster.local."),
        A,
        Ok(vec!["CNAME example.com."]),
    )
    .await;
    expect_answer(
        &dns,
        addr,
        false,
        &format!("nope.{ns}.svc.cluster.local."),
        A,
        Err(ResponseCode::NXDomain),
    )
    .await;
    expect_answer(
        &dns,
        addr,
        false,
        &format!("{ns}.svc.cluster.local."),
        A,
        Ok(vec![]),
    )
    .await;
    expect_answer(
        &dns,
        addr,
        false,
        "nope.svc.cluster.local.",
        A,
        Err(ResponseCode::NXDomain),
    )
    .await;
    expect_answer(
        &dns,
        addr,
        false,
        "example.com.",
        A,
        Err(ResponseCode::Refused),
    )
    .await;

    // The DNS Service itself, and this process as its endpoint.
    expect_answer(
        &dns,
        addr,
        false,
        "kube-dns.kube-system.svc.cluster.local.",
        A,
        Ok(vec!["A 10.43.0.10"]),
    )
    .await;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    let slice = slices
        .get("kube-dns-192-0-2-77")
        .await
        .expect("the dns slice");
    let ports: Vec<Option<i32>> = slice.ports.iter().flatten().map(|p| p.port).collect();
    assert_eq!(ports, [Some(i32::from(addr.port())); 2]);
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), "kube-system")
        .get("kube-dns")
        .await
        .expect("kube-dns endpoints");
    let ips: Vec<String> = endpoints
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten().map(|a| a.ip.clone()))
        .collect();
    assert_eq!(ips, ["192.0.2.77"]);

    // Changes show up: a new service is answered, a deleted one is gone.
    let created = Instant::now();
    create(
        &services,
        json!({
            "metadata": {"name": "late"},
            "spec": {"clusterIP": "10.43.100.21", "ports": [{"port": 80}]}
        }),
    )
    .await;
    let late = format!("late.{ns}.svc.cluster.local.");
    expect_answer(&dns, addr, false, &late, A, Ok(vec!["A 10.43.100.21"])).await;
    eprintln!(
        "timing: service created to answered over DNS {:?}",
        created.elapsed()
    );
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete web");
    expect_answer(&dns, addr, false, &web, A, Err(ResponseCode::NXDomain)).await;

    // SIGTERM withdraws this instance's endpoint; the Service stays.
    assert!(dns.terminate().success(), "{}", dns.log());
    assert!(
        slices
            .get_opt("kube-dns-192-0-2-77")
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        Api::<Service>::namespaced(client.clone(), "kube-system")
            .get_opt("kube-dns")
            .await
            .expect("read")
            .is_some()
    );
}
