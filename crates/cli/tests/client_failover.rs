//! The `kubeclient` crate against real `mast server`s: a kubeconfig listing several
//! servers (the `mast.dev/servers` extension) works when the first is down, kubectl still
//! reads such a kubeconfig, and a kube-rs watcher keeps delivering events after the server
//! it watched through dies (kill -9) or hangs (SIGSTOP), another server on the same etcd
//! taking over.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, Server};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

/// How long anything a test waits on may take (a hang is noticed after the client's
/// 10 s read timeout, then the watcher backs off and resumes).
const DEADLINE: Duration = Duration::from_secs(60);

/// A kubeconfig whose cluster `server` is `servers[0]` and whose `mast.dev/servers`
/// extension lists them all.
fn kubeconfig(dir: &Path, servers: &[&str]) -> PathBuf {
    let list = servers
        .iter()
        .map(|s| format!("        - {s}\n"))
        .collect::<String>();
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: mast\n  cluster:\n    server: {first}\n    extensions:\n    \
         - name: mast.dev/servers\n      extension:\n        servers:\n{list}\
         users:\n- name: admin\n  user: {{}}\n\
         contexts:\n- name: mast\n  context:\n    cluster: mast\n    user: admin\n\
         current-context: mast\n",
        first = servers[0],
    );
    let path = dir.join(format!("kubeconfig-{}", common::unique_name("k")));
    std::fs::write(&path, text).expect("write the kubeconfig");
    path
}

/// A URL nothing listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_server_is_skipped() {
    let server = Server::start(Backend::Sqlite);
    let dir = tempfile::tempdir().expect("temp dir");
    let dead = dead_url();

    let path = kubeconfig(dir.path(), &[&dead, server.url()]);
    let config = kubeclient::ClientConfig::from_kubeconfig(&path).expect("read the kubeconfig");
    assert_eq!(config.servers().len(), 2);
    let client = config.client().expect("build the client");
    for _ in 0..3 {
        let namespaces = tokio::time::timeout(
            DEADLINE,
            Api::<Namespace>::all(client.clone()).list(&ListParams::default()),
        )
        .await
        .expect("an answer before the deadline")
        .expect("list namespaces past the dead server");
        assert!(
            namespaces
                .items
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("default")),
            "{:?}",
            namespaces.items
        );
    }

    // kubectl reads the same kind of file (it ignores the extension) when its one server
    // is the live one.
    let path = kubeconfig(dir.path(), &[server.url(), &dead]);
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&path)
        .args(["get", "--raw", "/version"])
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("gitVersion"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_survives_its_server_being_killed() {
    watch_survives(|server| server.kill_now()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_survives_its_server_hanging() {
    watch_survives(|server| server.send_signal("STOP")).await;
}

/// Two servers on one etcd; a watcher through the client (on the first server), then
/// `break_first` on that server; objects created afterwards still reach the watcher.
async fn watch_survives(break_first: impl FnOnce(&mut Server)) {
    let etcd = store::testing::EtcdCluster::start(1)
        .await
        .expect("start a 1-member etcd cluster");
    // Declared after `etcd`, so the servers stop before their store does.
    let mut first = Server::start(Backend::Etcd(etcd.endpoints()));
    let second = Server::start(Backend::Etcd(etcd.endpoints()));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = kubeconfig(dir.path(), &[first.url(), second.url()]);
    let client = kubeclient::ClientConfig::from_kubeconfig(&path)
        .expect("read the kubeconfig")
        .client()
        .expect("build the client");
    let api: Api<ConfigMap> = Api::namespaced(client, "default");

    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn({
        let api = api.clone();
        async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(item) = stream.next().await {
                if let Ok(object) = item
                    && let Some(name) = object.metadata.name
                    && seen_tx.send(name).is_err()
                {
                    return;
                }
            }
        }
    });
    let prefix = common::unique_name("cm");

    let before = format!("{prefix}-before");
    create(&api, &before).await;
    wait_for(&mut seen_rx, &before).await;

    break_first(&mut first);
    for i in 0..3 {
        let name = format!("{prefix}-after-{i}");
        create(&api, &name).await;
        wait_for(&mut seen_rx, &name).await;
    }
    watch.abort();
    // The second server saw the writes (the first is gone, so they went through it).
    let response = second.http(
        "GET",
        &format!("/api/v1/namespaces/default/configmaps/{prefix}-after-2"),
        &[],
        &[],
    );
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Creates a ConfigMap, retrying while the client fails over (a request on a connection
/// that just died fails; the next one goes to a live server).
async fn create(api: &Api<ConfigMap>, name: &str) {
    let object = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    let deadline = Instant::now() + DEADLINE;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(15),
            api.create(&PostParams::default(), &object),
        )
        .await;
        match attempt {
            Ok(Ok(_)) => return,
            // An earlier attempt may have gone through before its answer was lost.
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => return,
            Ok(Err(e)) if Instant::now() < deadline => eprintln!("create {name}: {e}; retrying"),
            Err(_) if Instant::now() < deadline => eprintln!("create {name}: no answer; retrying"),
            other => panic!("create {name} never succeeded: {other:?}"),
        }
    }
}

/// Waits until the watcher delivers `name`.
async fn wait_for(seen: &mut tokio::sync::mpsc::UnboundedReceiver<String>, name: &str) {
    let wait = async {
        while let Some(seen) = seen.recv().await {
            if seen == name {
                return true;
            }
        }
        false
    };
    let delivered = tokio::time::timeout(DEADLINE, wait).await;
    assert!(
        matches!(delivered, Ok(true)),
        "the watcher did not deliver {name} within {DEADLINE:?}"
    );
}
