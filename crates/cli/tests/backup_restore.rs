//! The backup and restore procedures of docs/operations.md, run as written:
//!
//! - SQLite: the Python `sqlite3` backup one-liner copies the database while the
//!   server runs and writes (its WAL holding the recent commits); the copy, restored
//!   into a new data dir, starts a server that has every object written before the
//!   backup with its resourceVersion, and of the writes racing the backup exactly a
//!   consistent prefix.
//! - etcd: `etcdctl snapshot save` against a live member, `etcdctl snapshot restore`
//!   into three new members' data dirs, etcd started on them and a server on that
//!   cluster: the objects are there with their resourceVersions.
//!
//! The commands are checked to appear in the document, so the two cannot drift apart.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, Server, http_exchange, unique_name};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use tempfile::TempDir;

/// docs/operations.md's SQLite backup command, followed there by SOURCE and TARGET.
const SQLITE_BACKUP: &str = r#"python3 -c 'import sys, sqlite3; src = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True); dst = sqlite3.connect(sys.argv[2]); src.backup(dst); dst.close(); src.close()'"#;

/// How long a server or etcd gets to come up, and a tool to finish.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// How long a stopped server gets to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Objects written before each backup.
const OBJECTS: usize = 40;

fn operations_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
    std::fs::read_to_string(&path).expect("read docs/operations.md")
}

/// Runs a command to completion within the deadline; panics with its output on failure.
fn run(command: &mut Command, what: &str) -> String {
    let output = Command::new("timeout")
        .arg(format!("{}s", DEADLINE.as_secs()))
        .arg(command.get_program())
        .args(command.get_args())
        .envs(
            command
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{what} failed: {text}");
    text
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("owner".to_string(), name.to_string())])),
        ..ConfigMap::default()
    }
}

/// Creates `count` ConfigMaps named `<prefix>-<i>`; returns name → resourceVersion.
async fn create_config_maps(
    api: &Api<ConfigMap>,
    prefix: &str,
    count: usize,
) -> BTreeMap<String, u64> {
    let mut created = BTreeMap::new();
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let cm = api
            .create(&PostParams::default(), &config_map(&name))
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        created.insert(name, revision(&cm));
    }
    created
}

fn revision(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("a numeric resourceVersion")
}

/// Every ConfigMap in `default` whose name starts with `prefix`: name → resourceVersion.
async fn config_maps(api: &Api<ConfigMap>, prefix: &str) -> BTreeMap<String, u64> {
    api.list(&ListParams::default())
        .await
        .expect("list config maps")
        .items
        .iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .map(|cm| (cm.metadata.name.clone().unwrap_or_default(), revision(cm)))
        .collect()
}

/// A `mast server` (API server only) on a data dir the test chose, killed on drop.
struct ServerOnDataDir {
    child: Option<Child>,
    kubeconfig: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl ServerOnDataDir {
    fn start(data_dir: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mast-restored-")
            .tempdir()
            .expect("create a temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("server.log");
        let log_file = File::create(&log).expect("create the server log");
        let log_file_2 = log_file.try_clone().expect("clone the log handle");
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("server")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
            .args(["--disable-scheduler", "--disable-controller-manager"])
            .arg("--exit-with-parent")
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file_2)
            .spawn()
            .expect("spawn mast server");
        let mut server = ServerOnDataDir {
            child: Some(child),
            kubeconfig,
            log,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the restored server exited with {status}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let ready = self.authority().is_some_and(|authority| {
                http_exchange(&authority, "GET", "/readyz", &[], &[]).is_ok_and(|r| r.status == 200)
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the restored server is not ready:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(POLL);
        }
    }

    /// `host:port` from the kubeconfig, once written.
    fn authority(&self) -> Option<String> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).ok()?;
        let server = kubeconfig
            .clusters
            .first()?
            .cluster
            .as_ref()?
            .server
            .clone()?;
        Some(
            server
                .strip_prefix("http://")?
                .trim_end_matches('/')
                .to_string(),
        )
    }

    async fn client(&self) -> kube::Client {
        common::client_from_kubeconfig(&self.kubeconfig).await
    }
}

impl Drop for ServerOnDataDir {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- restored server log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_while_running_and_restore_into_a_new_data_dir() {
    assert!(
        operations_doc().contains(SQLITE_BACKUP),
        "docs/operations.md no longer holds the SQLite backup command this test runs"
    );
    let mut server = Server::start(Backend::Sqlite);
    let database = server.dir().join("data/db/state.db");
    assert!(
        database.exists(),
        "the database is not at DATA_DIR/db/state.db"
    );
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let before = create_config_maps(&api, "before", OBJECTS).await;

    // A writer races the backup, so that the backup sees a database being written.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (api, stop) = (api.clone(), stop.clone());
        tokio::spawn(async move {
            let mut written = BTreeMap::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("during-{i}");
                let cm = api
                    .create(&PostParams::default(), &config_map(&name))
                    .await
                    .unwrap_or_else(|e| panic!("create {name}: {e}"));
                written.insert(name, revision(&cm));
                i += 1;
            }
            written
        })
    };
    let mut wal = database.clone().into_os_string();
    wal.push("-wal");
    let wal_size = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        wal_size > 0,
        "the WAL should hold the recent commits while the server runs"
    );
    let backup_dir = TempDir::new().expect("a temp dir for the backup");
    let backup = backup_dir.path().join("mast-backup.db");
    let command = format!("{SQLITE_BACKUP} \"$1\" \"$2\"");
    let backup_started = Instant::now();
    run(
        Command::new("sh")
            .args(["-c", &command, "sh"])
            .arg(&database)
            .arg(&backup),
        "the SQLite backup",
    );
    let backup_took = backup_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = writer.await.expect("the writer task");
    // A write after the backup: the restore must not have it.
    let after = create_config_maps(&api, "after", 1).await;
    assert!(
        server.stop_gracefully(STOP_TIMEOUT),
        "the server did not stop"
    );

    // Restore: the copy becomes DATA_DIR/db/state.db of a fresh data dir.
    let restored_dir = TempDir::new().expect("a temp dir for the restored data dir");
    let restored_db = restored_dir.path().join("data/db/state.db");
    std::fs::create_dir_all(restored_db.parent().expect("a parent")).expect("mkdir db");
    std::fs::copy(&backup, &restored_db).expect("copy the backup into place");
    let restored = ServerOnDataDir::start(&restored_dir.path().join("data"));
    let api: Api<ConfigMap> = Api::default_namespaced(restored.client().await);

    assert_eq!(
        config_maps(&api, "before-").await,
        before,
        "every object written before the backup, with its resourceVersion"
    );
    assert!(config_maps(&api, "after-").await.is_empty(), "{after:?}");
    // Of the racing writes, the backup holds a prefix: all up to some revision.
    let kept = config_maps(&api, "during-").await;
    let cut = kept.values().max().copied().unwrap_or(0);
    let expected: BTreeMap<String, u64> = during
        .iter()
        .filter(|(_, rv)| **rv <= cut)
        .map(|(n, rv)| (n.clone(), *rv))
        .collect();
    assert_eq!(kept, expected, "the backup is one consistent snapshot");
    // New writes continue above every restored revision.
    let newest = before.values().chain(kept.values()).max().copied();
    let next = create_config_maps(&api, "restored", 1).await;
    assert!(
        next.values().all(|rv| Some(*rv) > newest),
        "a write after the restore got an older revision: {next:?} vs {newest:?}"
    );
    println!(
        "figure: sqlite backup of a running server took {backup_took:?} ({} of {} racing writes kept, WAL {wal_size} bytes)",
        kept.len(),
        during.len()
    );
}

/// etcd members started on restored data dirs, killed on drop.
struct RestoredEtcd {
    children: Vec<Child>,
    client_urls: Vec<String>,
    logs: Vec<PathBuf>,
}

impl Drop for RestoredEtcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for log in &self.logs {
                eprintln!(
                    "--- {} ---\n{}",
                    log.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_snapshot_save_and_restore_into_a_new_cluster() {
    let doc = operations_doc();
    for step in [
        "etcdctl --endpoints",
        "snapshot save",
        "snapshot restore",
        "--initial-cluster",
        "--initial-advertise-peer-urls",
    ] {
        assert!(doc.contains(step), "docs/operations.md lacks `{step}`");
    }
    let etcd = store::testing::EtcdCluster::start(1)
        .await
        .expect("start etcd");
    let mut server = Server::start(Backend::Etcd(etcd.endpoints()));
    let api: Api<ConfigMap> = Api::default_namespaced(server.client().await);
    let before = create_config_maps(&api, "before", OBJECTS).await;

    // Snapshot the live member while the server runs.
    let backup_dir = TempDir::new().expect("a temp dir for the snapshot");
    let snapshot = backup_dir.path().join("mast-etcd.snapshot");
    run(
        Command::new("etcdctl")
            .arg("--endpoints")
            .arg(etcd.endpoints().join(","))
            .args(["snapshot", "save"])
            .arg(&snapshot),
        "etcdctl snapshot save",
    );
    let after = create_config_maps(&api, "after", 1).await;
    assert!(
        server.stop_gracefully(STOP_TIMEOUT),
        "the server did not stop"
    );
    drop(etcd);

    // Restore the snapshot into three new members, as for an HA cluster.
    let dir = TempDir::new().expect("a temp dir for the restored members");
    let ports = free_ports(6);
    let names = ["e1", "e2", "e3"];
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
    let client = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
    let initial_cluster = (0..3)
        .map(|i| format!("{}={}", names[i], peer(i)))
        .collect::<Vec<_>>()
        .join(",");
    let token = unique_name("restored");
    for (i, name) in names.iter().enumerate() {
        run(
            Command::new("etcdctl")
                .args(["snapshot", "restore"])
                .arg(&snapshot)
                .args(["--name", name])
                .arg("--data-dir")
                .arg(dir.path().join(name))
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-token", &token])
                .args(["--initial-advertise-peer-urls", &peer(i)]),
            "etcdctl snapshot restore",
        );
    }
    let mut members = RestoredEtcd {
        children: Vec::new(),
        client_urls: (0..3).map(client).collect(),
        logs: Vec::new(),
    };
    for (i, name) in names.iter().enumerate() {
        let log = dir.path().join(format!("{name}.log"));
        let log_file = File::create(&log).expect("create the etcd log");
        let child = Command::new("etcd")
            .args(["--name", name])
            .arg("--data-dir")
            .arg(dir.path().join(name))
            .args(["--listen-client-urls", &client(i)])
            .args(["--advertise-client-urls", &client(i)])
            .args(["--listen-peer-urls", &peer(i)])
            .args(["--initial-advertise-peer-urls", &peer(i)])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-token", &token])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn etcd (Debian's etcd-server)");
        members.children.push(child);
        members.logs.push(log);
    }
    let endpoints = members.client_urls.join(",");
    let deadline = Instant::now() + DEADLINE;
    while !Command::new("etcdctl")
        .args(["--endpoints", &endpoints, "--dial-timeout", "1s"])
        .args(["endpoint", "health"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            Instant::now() < deadline,
            "the restored etcd is not healthy"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let restored = Server::start(Backend::Etcd(members.client_urls.clone()));
    let api: Api<ConfigMap> = Api::default_namespaced(restored.client().await);
    assert_eq!(
        config_maps(&api, "before-").await,
        before,
        "every object in the snapshot, with its resourceVersion"
    );
    assert!(config_maps(&api, "after-").await.is_empty(), "{after:?}");
    let newest = before.values().max().copied();
    let next = create_config_maps(&api, "restored", 1).await;
    assert!(
        next.values().all(|rv| Some(*rv) > newest),
        "a write after the restore got an older revision: {next:?} vs {newest:?}"
    );
}
