//! `mast nginx-config` with a real nginx: the generated file passes `nginx -t`; nginx
//! in front of two `mast server`s answers kubectl, and keeps answering after one of the
//! servers is killed. nginx runs in the foreground in the test's temp dir and is killed
//! on every exit path (its guard's Drop).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Server};

const DEADLINE: Duration = Duration::from_secs(30);

fn mast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mast"))
        .args(args)
        .output()
        .expect("run mast")
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is installed (scripts/install-deps.sh)")
}

/// A free loopback port (bound and released; nginx binds it right after).
fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("local address")
}

/// `mast nginx-config` output for `servers`, listening on `listen`, written to DIR/nginx.conf.
fn write_config(dir: &Path, servers: &str, listen: &str) -> PathBuf {
    let output = mast(&["nginx-config", "--servers", servers, "--listen", listen]);
    assert!(
        output.status.success(),
        "mast nginx-config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, &output.stdout).expect("write nginx.conf");
    path
}

/// A running nginx, killed and reaped on drop.
struct Nginx {
    child: Child,
    log: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, config: &Path, listen: SocketAddr) -> Self {
        let log = dir.join("nginx.log");
        let log_file = std::fs::File::create(&log).expect("create the nginx log");
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(config)
            .args(["-e", "stderr"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .spawn()
            .expect("spawn nginx");
        let mut nginx = Nginx { child, log };
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(listen).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", nginx.log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx never listened:\n{}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        common::terminate(&mut self.child, std::time::Duration::from_secs(5));
        if std::thread::panicking() {
            eprintln!("--- nginx log ---\n{}\n--- end ---", self.log());
        }
    }
}

#[test]
fn the_generated_config_passes_nginx_t() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = free_address().to_string();
    // Addresses only: `nginx -t` resolves upstream names, and test hosts have no DNS.
    let config = write_config(
        dir.path(),
        "127.0.0.1:6443,[::1]:6443,10.0.0.3:6443",
        &listen,
    );
    let text = std::fs::read_to_string(&config).expect("read nginx.conf");
    assert!(text.contains("proxy_next_upstream_tries 3;"), "{text}");
    let output = Command::new(nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&config)
        .args(["-e", "stderr"])
        .output()
        .expect("run nginx -t");
    assert!(
        output.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn bad_addresses_are_refused_in_one_line() {
    for servers in ["10.0.0.1", "10.0.0.1:0", "http://10.0.0.1:6443", "a b:1"] {
        let output = mast(&["nginx-config", "--servers", servers]);
        assert!(!output.status.success(), "{servers} was accepted");
        assert!(output.stdout.is_empty(), "{servers}: printed a config");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not HOST:PORT"), "{servers}: {stderr}");
    }
    let output = mast(&[
        "nginx-config",
        "--servers",
        "127.0.0.1:1",
        "--listen",
        "6444",
    ]);
    assert!(
        !output.status.success(),
        "a listen address without host was accepted"
    );
}

#[test]
fn nginx_keeps_answering_after_a_server_dies() {
    let mut first = Server::start(Backend::Sqlite);
    let second = Server::start(Backend::Sqlite);
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = |server: &Server| server.url().trim_start_matches("http://").to_string();
    let servers = format!("{},{}", authority(&first), authority(&second));
    let listen = free_address();
    let config = write_config(dir.path(), &servers, &listen.to_string());
    let _nginx = Nginx::start(dir.path(), &config, listen);

    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mast\n  cluster:\n    \
             server: http://{listen}\nusers:\n- name: admin\n  user: {{}}\ncontexts:\n\
             - name: mast\n  context:\n    cluster: mast\n    user: admin\n\
             current-context: mast\n"
        ),
    )
    .expect("write the kubeconfig");
    let version = |round: usize| {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "--raw", "/version", "--request-timeout", "10s"])
            .output()
            .expect("run kubectl");
        assert!(
            output.status.success(),
            "request {round} through nginx failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("gitVersion"));
    };
    for round in 0..4 {
        version(round);
    }
    first.kill_now();
    for round in 0..20 {
        version(round);
    }
}
