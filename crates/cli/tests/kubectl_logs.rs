//! `kubectl logs` (the real kubectl, from PATH) against a `mast server` with its
//! scheduler and a real `mast kubelet --runtime fake`: the API server finds the pod's
//! node and proxies `pods/log` to that node's kubelet. Plain, `--tail`, `--timestamps`,
//! `--since`, `-c`, `--previous`, and `-f`, which streams until the pod stops.

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, FakeKubelet, Server, unique_name};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

/// How long the kubelet gets to run a pod, and kubectl to finish.
const DEADLINE: Duration = Duration::from_secs(60);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);

/// A kubectl process with its output going to files in the server's dir.
struct Kubectl {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    args: Vec<String>,
}

#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn spawn(server: &Server, args: &[&str]) -> Kubectl {
        let id = unique_name("kubectl");
        let stdout = server.dir().join(format!("{id}.out"));
        let stderr = server.dir().join(format!("{id}.err"));
        let child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(server.kubeconfig_path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create kubectl's stdout file"))
            .stderr(File::create(&stderr).expect("create kubectl's stderr file"))
            .spawn()
            .expect("run kubectl from PATH");
        Kubectl {
            child,
            stdout,
            stderr,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits for kubectl to exit; kills it and fails past the deadline.
    fn wait(mut self, server: &Server) -> Run {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll kubectl") {
                return Run {
                    status,
                    stdout: self.stdout(),
                    stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
                };
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                server.fail(&format!(
                    "kubectl {:?} did not finish in {DEADLINE:?}; stdout so far:\n{}",
                    self.args,
                    self.stdout()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kubectl ARGS`, which must succeed; its stdout.
fn kubectl_ok(server: &Server, args: &[&str]) -> String {
    let run = Kubectl::spawn(server, args).wait(server);
    if !run.status.success() {
        server.fail(&format!(
            "kubectl {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        ));
    }
    run.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_reads_the_kubelets_log() {
    let server = Server::start_with_scheduler(Backend::Sqlite);
    let client = server.client().await;
    let node = unique_name("logs-node");
    let mut kubelet = FakeKubelet::start(&server, &node, &["--pod-cidr", "10.42.7.0/24"]);

    let ns = unique_name("logs");
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create the namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for (name, containers) in [("web", vec!["app"]), ("duo", vec!["first", "second"])] {
        let containers: Vec<_> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "nginx:1.27"}))
            .collect();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": containers},
        }))
        .expect("pod");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create the pod");
    }

    // Both pods scheduled onto the kubelet's node and Running.
    let until = Instant::now() + DEADLINE;
    for name in ["web", "duo"] {
        loop {
            kubelet.check_running();
            let pod = pods.get_opt(name).await.ok().flatten();
            let phase = pod
                .as_ref()
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.clone());
            if phase.as_deref() == Some("Running") {
                let bound = pod.and_then(|p| p.spec).and_then(|s| s.node_name);
                assert_eq!(bound.as_deref(), Some(node.as_str()));
                break;
            }
            assert!(
                Instant::now() < until,
                "pod {name} is not Running: {phase:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    let line = |container: &str, pod: &str| {
        format!("fake runtime: container {container} of pod {ns}/{pod} started (no output)\n")
    };
    let web = line("app", "web");
    let n = ["-n", ns.as_str()];
    let logs = |extra: &[&str]| -> String {
        let mut args = vec!["logs"];
        args.extend_from_slice(&n);
        args.extend_from_slice(extra);
        kubectl_ok(&server, &args)
    };

    // The whole log, the last line of it, none of it, and since an hour ago.
    assert_eq!(logs(&["web"]), web);
    assert_eq!(logs(&["web", "--tail", "1"]), web);
    assert_eq!(logs(&["web", "--tail=0"]), "");
    assert_eq!(logs(&["web", "--since", "1h"]), web);
    assert_eq!(logs(&["pod/web", "-c", "app"]), web);

    // With timestamps: RFC 3339 first, then the line.
    let stamped = logs(&["web", "--timestamps"]);
    let (stamp, rest) = stamped.split_once(' ').expect("a timestamp and a line");
    assert!(
        stamp.len() >= 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{stamped}"
    );
    assert_eq!(rest, web);

    // Several containers: kubectl picks the first itself (or the one asked for).
    assert_eq!(logs(&["duo"]), line("first", "duo"));
    assert_eq!(logs(&["duo", "-c", "second"]), line("second", "duo"));
    let run = Kubectl::spawn(&server, &["logs", "-n", &ns, "duo", "-c", "third"]).wait(&server);
    assert!(!run.status.success(), "{run:?}");
    assert!(
        run.stderr
            .contains("container third is not valid for pod duo"),
        "{run:?}"
    );

    // No previous instance: the kubelet's refusal reaches the user.
    let run = Kubectl::spawn(&server, &["logs", "-n", &ns, "web", "--previous"]).wait(&server);
    assert!(!run.status.success(), "{run:?}");
    assert!(
        run.stderr.contains(
            "Error from server (BadRequest): previous terminated container \"app\" in pod \"web\" not found"
        ),
        "{run:?}"
    );

    // -f: the line arrives while the stream stays open; it ends when the pod stops.
    let follow = Kubectl::spawn(&server, &["logs", "-n", &ns, "web", "-f"]);
    let until = Instant::now() + DEADLINE;
    while follow.stdout() != web {
        kubelet.check_running();
        assert!(
            Instant::now() < until,
            "kubectl logs -f printed {:?}",
            follow.stdout()
        );
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut follow = follow;
    assert!(
        follow.child.try_wait().expect("poll kubectl").is_none(),
        "kubectl logs -f ended while the pod runs: {}",
        follow.stdout()
    );
    pods.delete("web", &DeleteParams::default())
        .await
        .expect("delete the pod");
    // Kubectl::wait fails the test if kubectl does not end by itself in time.
    let run = follow.wait(&server);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout, web);
}
