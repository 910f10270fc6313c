//! Runs the official Kubernetes Python client's acceptance suite
//! (`tests/python/api_client.py`) against a `mast server` on SQLite and on a real
//! 1-member etcd. The server runs with `--watch-cache-size 64`, which the suite's
//! 410 test relies on.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Server};

/// The suite takes well under 30 s; this only stops a hung run.
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);

/// The server flags the suite expects.
const SERVER_ARGS: &[&str] = &["--watch-cache-size", "64"];

fn run_suite(server: &mut Server) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/api_client.py");
    let output_path = server.dir().join("python-suite.log");
    let output = File::create(&output_path).expect("create the suite's log file");
    let mut child = Command::new("python3")
        .arg(&script)
        .env("KUBECONFIG", server.kubeconfig_path())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("clone the log handle"))
        .stderr(output)
        .spawn()
        .expect("run python3 (scripts/install-deps.sh installs the kubernetes package)");

    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the python suite") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&output_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => {
            // Keep the per-test lines in the test's captured output.
            println!("{log}");
        }
        Some(status) => server.fail(&format!(
            "the Python client suite failed ({status}):\n{log}"
        )),
        None => server.fail(&format!(
            "the Python client suite did not finish in {SUITE_TIMEOUT:?}:\n{log}"
        )),
    }
    assert!(server.is_running(), "the server survived the suite");
}

#[test]
fn python_client_on_sqlite() {
    let mut server = Server::start_with(Backend::Sqlite, SERVER_ARGS);
    run_suite(&mut server);
}

#[tokio::test]
async fn python_client_on_etcd() {
    let etcd = store::testing::EtcdCluster::start(1)
        .await
        .expect("start a 1-member etcd cluster");
    // Declared after `etcd`, so the server stops before its store does.
    let mut server = Server::start_with(Backend::Etcd(etcd.endpoints()), SERVER_ARGS);
    // The suite is a blocking child process; keep it off the async runtime's thread.
    tokio::task::spawn_blocking(move || {
        run_suite(&mut server);
        drop(server);
    })
    .await
    .expect("the suite runner does not panic");
}
