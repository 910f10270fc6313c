//! kubectl (the real one, from PATH) against a `mast server` on SQLite: `get`,
//! `create -f`, `delete -f`, with kubectl's default flags (validation included).

mod common;

use std::time::Duration;

use common::{Backend, Finished, Server, unique_name};

/// No single kubectl call may take longer than this.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `kubectl --kubeconfig <server's> <args>` to completion (with a deadline).
fn kubectl(server: &Server, args: &[&str]) -> Finished {
    server.run_kubectl(args, KUBECTL_TIMEOUT)
}

/// Like [`kubectl`], and the call must succeed.
fn kubectl_ok(server: &Server, args: &[&str]) -> String {
    let run = kubectl(server, args);
    if !run.status.success() {
        server.fail(&format!(
            "kubectl {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        ));
    }
    run.stdout
}

fn manifest(namespace: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {namespace}
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: {namespace}
data:
  index.html: hello from mast
"#
    )
}

#[test]
fn get_namespaces() {
    let server = Server::start(Backend::Sqlite);
    let out = kubectl_ok(&server, &["get", "namespaces"]);
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for wanted in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            names.contains(&wanted),
            "`kubectl get namespaces` lists {wanted}:\n{out}"
        );
    }
    assert!(
        out.lines().next().is_some_and(|h| h.starts_with("NAME")),
        "a table with a header:\n{out}"
    );
}

#[test]
fn create_get_delete_from_file() {
    let server = Server::start(Backend::Sqlite);
    let ns = unique_name("kubectl");
    // The namespace from a file of its own: `kubectl create namespace` is tested on its
    // own below, and `kubectl delete -f` of a namespace would wait for its finalization.
    let ns_file = server.dir().join("namespace.yaml");
    std::fs::write(
        &ns_file,
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .expect("write the namespace manifest");
    let out = kubectl_ok(
        &server,
        &[
            "create",
            "-f",
            ns_file.to_str().expect("temp paths are UTF-8"),
        ],
    );
    assert!(out.contains(&format!("namespace/{ns} created")), "{out}");

    let file = server.dir().join("app.yaml");
    std::fs::write(&file, manifest(&ns)).expect("write the manifest");
    let file_arg = file.to_str().expect("temp paths are UTF-8");

    let out = kubectl_ok(&server, &["create", "-f", file_arg]);
    for wanted in [
        "deployment.apps/web created",
        "service/web created",
        "configmap/web-config created",
    ] {
        assert!(
            out.contains(wanted),
            "`kubectl create -f` says {wanted:?}:\n{out}"
        );
    }

    let out = kubectl_ok(&server, &["get", "deploy,svc,cm", "-n", &ns, "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("`-o json` prints JSON");
    let items: Vec<(String, String)> = list["items"]
        .as_array()
        .expect("a List with items")
        .iter()
        .map(|item| {
            (
                item["kind"].as_str().unwrap_or_default().to_string(),
                item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    for (kind, name) in [
        ("Deployment", "web"),
        ("Service", "web"),
        ("ConfigMap", "web-config"),
    ] {
        assert!(
            items.contains(&(kind.to_string(), name.to_string())),
            "`kubectl get deploy,svc,cm -o json` shows {kind}/{name}: {items:?}"
        );
    }
    let deploy = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["kind"] == "Deployment"))
        .expect("the deployment is listed");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    let out = kubectl_ok(&server, &["get", "deployments", "-n", &ns]);
    assert!(
        out.lines()
            .any(|line| line.split_whitespace().next() == Some("web")),
        "`kubectl get deployments` lists web:\n{out}"
    );

    let run = kubectl(&server, &["get", "pods", "-A"]);
    assert!(
        run.status.success(),
        "`kubectl get pods -A` succeeds\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );

    let out = kubectl_ok(&server, &["delete", "-f", file_arg]);
    for wanted in [
        "deployment.apps \"web\" deleted",
        "service \"web\" deleted",
        "configmap \"web-config\" deleted",
    ] {
        assert!(
            out.contains(wanted),
            "`kubectl delete -f` says {wanted:?}:\n{out}"
        );
    }

    let run = kubectl(&server, &["get", "cm", "web-config", "-n", &ns]);
    assert!(
        !run.status.success(),
        "`kubectl get cm` of a deleted configmap fails:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("NotFound"),
        "kubectl reports NotFound:\n{}",
        run.stderr
    );
    let run = kubectl(&server, &["get", "deploy", "web", "-n", &ns]);
    assert!(
        !run.status.success() && run.stderr.contains("NotFound"),
        "the deployment is gone too:\n{}",
        run.stderr
    );
}
