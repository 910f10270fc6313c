//! Acceptance test for issue 4 (kubectl compatibility): the real kubectl from PATH drives
//! `mast server` through the kubeconfig the server writes, with kubectl's default flags —
//! client validation included, `--validate=false` nowhere.
//!
//! Each scenario is a plain fn taking a running [`Server`]; `backend_tests!` turns it into
//! `<scenario>::sqlite` and `<scenario>::etcd` (a fresh 1-member etcd cluster). Every
//! scenario works in a namespace of its own, and cluster-scoped objects get unique names,
//! so the tests run in parallel.
//!
//! The expectations are what upstream Kubernetes answers and kubectl 1.32 prints. A
//! scenario does not stop at the first unmet expectation: its [`Session`] records each one
//! and the scenario fails at its end listing all of them, so one run shows every deviation.
//! Only setup steps that everything after them depends on fail at once.
//!
//! `mast server` runs no controllers, scheduler or kubelet yet, so what they would write
//! is written here by hand: pod and deployment statuses through `/status`, bindings
//! through `pods/<name>/binding`, and the ReplicaSets a deployment's rollout history is
//! made of. When controllers join `mast server`, those scenarios must keep them away
//! from their objects (or expect what the controllers write).

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::{Server, unique_name};

/// No single kubectl call may take longer than this.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a test waits for a condition (a watch line, a background kubectl).
const CONDITION_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a running kubectl is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Generates `<scenario>::sqlite` and `<scenario>::etcd` for `fn <scenario>(&Server)`.
macro_rules! backend_tests {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn sqlite() {
                let server = crate::common::Server::start(crate::common::Backend::Sqlite);
                super::$scenario(&server);
            }

            #[test]
            fn etcd() {
                let etcd = crate::common::start_etcd();
                // Declared after `etcd`, so the server stops before its store does.
                let server = crate::common::Server::start(crate::common::Backend::Etcd(
                    etcd.endpoints(),
                ));
                super::$scenario(&server);
            }
        }
    )*};
}

backend_tests!(
    discovery,
    client_side_apply,
    server_side_apply,
    pod_tables,
    workload_tables,
    node_tables_and_describe,
    service_and_config_tables,
    imperative_updates,
    describe,
    get_all_watch_wait_delete,
    create_commands,
    logs_and_errors,
);

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// `kubectl version`, `api-resources`, `api-versions`, `explain`.
fn discovery(server: &Server) {
    let s = Session::new(server, "discovery");

    let out = s.ok(&["version"]);
    s.check(
        out.lines().any(|l| l.starts_with("Client Version: v1.")),
        || format!("`kubectl version` prints the client version:\n{out}"),
    );
    let server_version = out
        .lines()
        .find_map(|l| l.strip_prefix("Server Version: "))
        .map(str::to_string);
    s.check(
        server_version
            .as_deref()
            .is_some_and(|v| v.starts_with("v1.")),
        || format!("`kubectl version` prints `Server Version: v1.<minor>...`:\n{out}"),
    );
    let version = s.json(&["version", "-o", "json"]);
    s.check_eq(
        "`kubectl version -o json` .serverVersion.major",
        at(&version, "/serverVersion/major"),
        &json!("1"),
    );
    s.check(
        at(&version, "/serverVersion/minor")
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        || format!("`kubectl version -o json` has a serverVersion.minor: {version}"),
    );
    if let Some(v) = &server_version {
        s.check_eq(
            "`kubectl version -o json` .serverVersion.gitVersion",
            at(&version, "/serverVersion/gitVersion"),
            &json!(v),
        );
    }

    let table = s.table(&["api-resources"]);
    s.check_columns(
        &table,
        &["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "kubectl api-resources",
    );
    for (name, shortnames, api_version, namespaced, kind) in [
        ("pods", "po", "v1", "true", "Pod"),
        ("services", "svc", "v1", "true", "Service"),
        ("endpoints", "ep", "v1", "true", "Endpoints"),
        ("configmaps", "cm", "v1", "true", "ConfigMap"),
        ("secrets", "", "v1", "true", "Secret"),
        ("events", "ev", "v1", "true", "Event"),
        ("namespaces", "ns", "v1", "false", "Namespace"),
        ("nodes", "no", "v1", "false", "Node"),
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
        ("leases", "", "coordination.k8s.io/v1", "true", "Lease"),
        (
            "endpointslices",
            "",
            "discovery.k8s.io/v1",
            "true",
            "EndpointSlice",
        ),
    ] {
        s.check_row_where(
            &table,
            &[("NAME", name), ("APIVERSION", api_version)],
            &[
                ("SHORTNAMES", shortnames),
                ("NAMESPACED", namespaced),
                ("KIND", kind),
            ],
            "kubectl api-resources",
        );
    }
    let wide = s.table(&["api-resources", "-o", "wide"]);
    s.check_columns(
        &wide,
        &[
            "NAME",
            "SHORTNAMES",
            "APIVERSION",
            "NAMESPACED",
            "KIND",
            "VERBS",
            "CATEGORIES",
        ],
        "kubectl api-resources -o wide",
    );
    // `kubectl get all` expands the `all` category from discovery.
    for name in ["pods", "services", "deployments", "replicasets"] {
        let row = wide.find(&[("NAME", name)]);
        let verbs = row.and_then(|r| wide.cell(r, "VERBS")).unwrap_or_default();
        for verb in [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ] {
            s.check(
                verbs
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .any(|v| v == verb),
                || format!("`kubectl api-resources -o wide`: {name} has verb {verb}: {verbs:?}"),
            );
        }
        let categories = row
            .and_then(|r| wide.cell(r, "CATEGORIES"))
            .unwrap_or_default();
        s.check(
            categories
                .split(|c: char| !c.is_ascii_alphabetic())
                .any(|c| c == "all"),
            || {
                format!(
                    "`kubectl api-resources -o wide`: {name} is in category all: {categories:?}"
                )
            },
        );
    }
    let cluster_scoped = s.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    let cluster_scoped: BTreeSet<&str> = cluster_scoped.lines().collect();
    for (name, wanted) in [("nodes", true), ("namespaces", true), ("pods", false)] {
        s.check(cluster_scoped.contains(name) == wanted, || {
            format!(
                "`kubectl api-resources --namespaced=false -o name` lists {name}: {wanted} \
                 (got {cluster_scoped:?})"
            )
        });
    }

    let out = s.ok(&["api-versions"]);
    let versions: Vec<&str> = out.lines().collect();
    for wanted in [
        "v1",
        "apps/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
    ] {
        s.check(versions.contains(&wanted), || {
            format!("`kubectl api-versions` lists {wanted}:\n{out}")
        });
    }
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    s.check_eq("`kubectl api-versions` is sorted", &versions, &sorted);

    // `kubectl explain` reads the OpenAPI v3 documents.
    let out = s.ok(&["explain", "deployments.spec.replicas"]);
    for (label, value) in [
        ("GROUP:", "apps"),
        ("KIND:", "Deployment"),
        ("VERSION:", "v1"),
    ] {
        s.check(
            out.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [label, value]),
            || {
                format!(
                    "`kubectl explain deployments.spec.replicas` prints {label} {value}:\n{out}"
                )
            },
        );
    }
    s.check_contains(
        "kubectl explain deployments.spec.replicas",
        &out,
        "FIELD: replicas <integer>",
    );
    let out = s.ok(&["explain", "pods.spec.containers.ports"]);
    s.check_contains(
        "kubectl explain pods.spec.containers.ports",
        &out,
        "FIELD: ports <[]ContainerPort>",
    );
    s.finish();
}

const APPLY_V1: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    team: a
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
      - name: web
        image: nginx:1.27
        env:
        - name: A
          value: "1"
        - name: C
          value: "3"
        ports:
        - name: http
          containerPort: 80
        - name: admin
          containerPort: 8080
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "infinity"]
        ports:
        - name: metrics
          containerPort: 9000
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: "1"
  b: "2"
"#;

/// [`APPLY_V1`] with replicas 2 -> 3, image nginx:1.27 -> 1.28, env B added (between A
/// and C), port 8080 removed, config key b removed and c added.
const APPLY_V2: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    team: a
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.28
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
        - name: C
          value: "3"
        ports:
        - name: http
          containerPort: 80
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "infinity"]
        ports:
        - name: metrics
          containerPort: 9000
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: "1"
  c: "3"
"#;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Client-side `kubectl apply`: create with the last-applied annotation, then three-way
/// strategic merge patches that change exactly what the manifest changed.
fn client_side_apply(server: &Server) {
    let s = Session::new(server, "csa");
    let v1 = s.file("v1.yaml", APPLY_V1);
    let v2 = s.file("v2.yaml", APPLY_V2);
    let v3 = s.file(
        "v3.yaml",
        &APPLY_V2.replacen("    app: web\n    team: a\n", "    app: web\n", 1),
    );

    let out = s.ok(&["apply", "-f", &v1]);
    s.check_contains("first kubectl apply", &out, "deployment.apps/web created");
    s.check_contains("first kubectl apply", &out, "configmap/settings created");
    let created = s.json(&["get", "deployment", "web", "-o", "json"]);
    let applied = last_applied(&s, &created);
    s.check_eq(
        "the last-applied annotation after create: .spec.replicas",
        at(&applied, "/spec/replicas"),
        &json!(2),
    );
    s.check_eq(
        "the last-applied annotation after create: .kind",
        at(&applied, "/kind"),
        &json!("Deployment"),
    );
    s.check_eq(
        "generation after create",
        at(&created, "/metadata/generation"),
        &json!(1),
    );

    let out = s.ok(&["apply", "-f", &v1]);
    s.check_contains(
        "kubectl apply of the same manifest",
        &out,
        "deployment.apps/web unchanged",
    );
    s.check_contains(
        "kubectl apply of the same manifest",
        &out,
        "configmap/settings unchanged",
    );

    // Changes made by others, which apply must leave alone.
    s.ok(&["label", "deployment", "web", "extra=kept"]);
    s.ok(&["annotate", "deployment", "web", "note=kept"]);
    let before = s.json(&["get", "deployment", "web", "-o", "json"]);

    let out = s.ok(&["apply", "-f", &v2]);
    s.check_contains(
        "kubectl apply of the edited manifest",
        &out,
        "deployment.apps/web configured",
    );
    s.check_contains(
        "kubectl apply of the edited manifest",
        &out,
        "configmap/settings configured",
    );
    let after = s.json(&["get", "deployment", "web", "-o", "json"]);
    let mut expected = at(&before, "/spec").clone();
    if let Some(spec) = expected.as_object_mut() {
        spec.insert("replicas".into(), json!(3));
    }
    if let Some(web) = expected.pointer_mut("/template/spec/containers/0") {
        web["image"] = json!("nginx:1.28");
        web["env"] = json!([
            {"name": "A", "value": "1"},
            {"name": "B", "value": "2"},
            {"name": "C", "value": "3"},
        ]);
        web["ports"] = json!([{"name": "http", "containerPort": 80, "protocol": "TCP"}]);
    }
    s.check_eq(
        "the stored spec after re-applying (replicas, image, env B, port 8080 changed; \
         nothing else)",
        at(&after, "/spec"),
        &expected,
    );
    s.check_eq(
        "labels after re-applying",
        at(&after, "/metadata/labels"),
        &json!({"app": "web", "team": "a", "extra": "kept"}),
    );
    s.check_eq(
        "the annotation set by another client after re-applying",
        at(&after, "/metadata/annotations/note"),
        &json!("kept"),
    );
    s.check_eq(
        "generation after one spec change",
        at(&after, "/metadata/generation"),
        &json!(2),
    );
    s.check_eq(
        "the last-applied annotation after re-applying: .spec.replicas",
        at(&last_applied(&s, &after), "/spec/replicas"),
        &json!(3),
    );
    let settings = s.json(&["get", "configmap", "settings", "-o", "json"]);
    s.check_eq(
        "configmap data after re-applying",
        at(&settings, "/data"),
        &json!({"a": "1", "c": "3"}),
    );

    // Dropping a label from the manifest removes it; the one added by others stays.
    let out = s.ok(&["apply", "-f", &v3]);
    s.check_contains(
        "kubectl apply without the team label",
        &out,
        "deployment.apps/web configured",
    );
    let last = s.json(&["get", "deployment", "web", "-o", "json"]);
    s.check_eq(
        "labels after applying a manifest without `team`",
        at(&last, "/metadata/labels"),
        &json!({"app": "web", "extra": "kept"}),
    );
    s.check_eq(
        "the spec after a metadata-only apply",
        at(&last, "/spec"),
        at(&after, "/spec"),
    );

    // Switching to Recreate: the strategy is patched with `$retainKeys`, which drops the
    // defaulted rollingUpdate (the server would refuse Recreate with it).
    let v4 = s.file(
        "v4.yaml",
        &APPLY_V2
            .replacen("    app: web\n    team: a\n", "    app: web\n", 1)
            .replacen(
                "  replicas: 3\n",
                "  replicas: 3\n  strategy:\n    type: Recreate\n",
                1,
            ),
    );
    let out = s.ok(&["apply", "-f", &v4]);
    s.check_contains(
        "kubectl apply with strategy Recreate",
        &out,
        "deployment.apps/web configured",
    );
    let recreate = s.json(&["get", "deployment", "web", "-o", "json"]);
    s.check_eq(
        "the strategy after applying type Recreate",
        at(&recreate, "/spec/strategy"),
        &json!({"type": "Recreate"}),
    );
    s.check_eq(
        "the template after applying type Recreate",
        at(&recreate, "/spec/template"),
        at(&after, "/spec/template"),
    );
    s.finish();
}

/// The parsed `last-applied-configuration` annotation of `object`.
fn last_applied(s: &Session, object: &Value) -> Value {
    let text = at(object, "/metadata/annotations")
        .get(LAST_APPLIED)
        .and_then(Value::as_str);
    match text.map(serde_json::from_str::<Value>) {
        Some(Ok(value)) => value,
        Some(Err(e)) => {
            s.fail(format!("{LAST_APPLIED} is not JSON: {e}: {text:?}"));
            Value::Null
        }
        None => {
            s.fail(format!(
                "the object has no {LAST_APPLIED} annotation: {}",
                at(object, "/metadata")
            ));
            Value::Null
        }
    }
}

const SSA_V1: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels:
    app: api
spec:
  replicas: 2
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: api
        image: registry.example/api:1
        ports:
        - containerPort: 8080
"#;

const SSA_V2: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels:
    app: api
spec:
  replicas: 3
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: api
        image: registry.example/api:2
        env:
        - name: LOG
          value: debug
        ports:
        - containerPort: 8080
"#;

/// Another manager's partial intent: five replicas.
const SSA_SCALER: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 5
"#;

/// `kubectl apply --server-side`: create, update, conflicts between managers.
fn server_side_apply(server: &Server) {
    let s = Session::new(server, "ssa");
    let v1 = s.file("v1.yaml", SSA_V1);
    let v2 = s.file("v2.yaml", SSA_V2);
    let scaler = s.file("scaler.yaml", SSA_SCALER);
    let get = [
        "get",
        "deployment",
        "api",
        "-o",
        "json",
        "--show-managed-fields",
    ];

    let out = s.ok(&["apply", "--server-side", "-f", &v1]);
    s.check_contains(
        "kubectl apply --server-side (create)",
        &out,
        "deployment.apps/api serverside-applied",
    );
    let created = s.json(&get);
    s.check_eq(
        "replicas after the server-side create",
        at(&created, "/spec/replicas"),
        &json!(2),
    );
    s.check(
        at(&created, "/metadata/annotations")
            .get(LAST_APPLIED)
            .is_none(),
        || "server-side apply does not write the last-applied annotation".to_string(),
    );
    let kubectl_entry = managed_fields_entry(&created, "kubectl");
    s.check_eq(
        "the managedFields entry of kubectl: operation",
        at(&kubectl_entry, "/operation"),
        &json!("Apply"),
    );
    s.check_eq(
        "the managedFields entry of kubectl: apiVersion",
        at(&kubectl_entry, "/apiVersion"),
        &json!("apps/v1"),
    );
    s.check_eq(
        "the managedFields entry of kubectl: fieldsType",
        at(&kubectl_entry, "/fieldsType"),
        &json!("FieldsV1"),
    );
    s.check(
        at(&kubectl_entry, "/fieldsV1/f:spec/f:replicas").is_object(),
        || format!("kubectl manages .spec.replicas: {kubectl_entry}"),
    );

    let out = s.ok(&["apply", "--server-side", "-f", &v2]);
    s.check_contains(
        "kubectl apply --server-side (update)",
        &out,
        "deployment.apps/api serverside-applied",
    );
    let updated = s.json(&get);
    s.check_eq(
        "replicas after the server-side update",
        at(&updated, "/spec/replicas"),
        &json!(3),
    );
    s.check_eq(
        "the container after the server-side update",
        at(&updated, "/spec/template/spec/containers/0/image"),
        &json!("registry.example/api:2"),
    );
    s.check_eq(
        "env after the server-side update",
        at(&updated, "/spec/template/spec/containers/0/env"),
        &json!([{"name": "LOG", "value": "debug"}]),
    );
    s.check_eq(
        "generation after the server-side update",
        at(&updated, "/metadata/generation"),
        &json!(2),
    );

    let run = s.fails(
        &[
            "apply",
            "--server-side",
            "--field-manager=autoscaler",
            "-f",
            &scaler,
        ],
        &[
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas",
            "--force-conflicts",
        ],
    );
    s.check(!run.stdout.contains("serverside-applied"), || {
        format!("a conflicting apply reports no success: {}", run.stdout)
    });
    s.check_eq(
        "replicas after the conflicting apply",
        at(&s.json(&get), "/spec/replicas"),
        &json!(3),
    );

    let out = s.ok(&[
        "apply",
        "--server-side",
        "--field-manager=autoscaler",
        "--force-conflicts",
        "-f",
        &scaler,
    ]);
    s.check_contains(
        "kubectl apply --server-side --force-conflicts",
        &out,
        "deployment.apps/api serverside-applied",
    );
    let forced = s.json(&get);
    s.check_eq(
        "replicas after the forced apply",
        at(&forced, "/spec/replicas"),
        &json!(5),
    );
    s.check_eq(
        "the image after the forced apply of replicas only",
        at(&forced, "/spec/template/spec/containers/0/image"),
        &json!("registry.example/api:2"),
    );
    let autoscaler = managed_fields_entry(&forced, "autoscaler");
    s.check(
        at(&autoscaler, "/fieldsV1/f:spec/f:replicas").is_object(),
        || format!("the autoscaler manages .spec.replicas after forcing: {autoscaler}"),
    );
    let kubectl_entry = managed_fields_entry(&forced, "kubectl");
    s.check(
        at(&kubectl_entry, "/fieldsV1/f:spec/f:replicas").is_null(),
        || format!("kubectl lost .spec.replicas to the autoscaler: {kubectl_entry}"),
    );
    s.check(
        at(&kubectl_entry, "/fieldsV1/f:spec/f:template").is_object(),
        || format!("kubectl still manages the template: {kubectl_entry}"),
    );

    // A key the only manager stops applying is removed.
    let cm_v1 = s.file(
        "cm-v1.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\ndata:\n  a: \"1\"\n  b: \"2\"\n",
    );
    let cm_v2 = s.file(
        "cm-v2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\ndata:\n  b: \"3\"\n",
    );
    let out = s.ok(&["apply", "--server-side", "-f", &cm_v1]);
    s.check_contains(
        "kubectl apply --server-side of a configmap",
        &out,
        "configmap/flags serverside-applied",
    );
    s.ok(&["apply", "--server-side", "-f", &cm_v2]);
    s.check_eq(
        "configmap data after applying it without key a",
        at(
            &s.json(&["get", "configmap", "flags", "-o", "json"]),
            "/data",
        ),
        &json!({"b": "3"}),
    );
    s.finish();
}

/// The managedFields entry of `manager` (Null if none).
fn managed_fields_entry(object: &Value, manager: &str) -> Value {
    at(object, "/metadata/managedFields")
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["manager"] == manager))
        .cloned()
        .unwrap_or(Value::Null)
}

/// `kubectl get pods` tables, and the STATUS column following kubectl's rules.
fn pod_tables(server: &Server) {
    let s = Session::new(server, "pods");
    let names = ["pending", "running", "crash", "done", "creating", "doomed"];
    let manifest: Vec<String> = names
        .iter()
        .map(|name| pod_manifest(name, "app: demo", "busybox:1.36"))
        .collect();
    let file = s.file("pods.yaml", &manifest.join("---\n"));
    s.must(&["create", "-f", &file]);

    s.bind("running", "node-a");
    s.bind("doomed", "node-a");
    s.patch_status(
        "pod",
        "running",
        &json!({
            "phase": "Running",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [container_status(true, 0, json!({"running": {"startedAt": "2025-01-01T00:00:00Z"}}))],
        }),
    );
    s.patch_status(
        "pod",
        "crash",
        &json!({
            "phase": "Running",
            "containerStatuses": [container_status(false, 4, json!({"waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off 1m20s restarting failed container",
            }}))],
        }),
    );
    s.patch_status(
        "pod",
        "done",
        &json!({
            "phase": "Succeeded",
            "containerStatuses": [container_status(false, 0, json!({"terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": "2025-01-01T00:00:00Z",
                "finishedAt": "2025-01-01T00:00:05Z",
            }}))],
        }),
    );
    s.patch_status(
        "pod",
        "creating",
        &json!({
            "phase": "Pending",
            "containerStatuses": [container_status(false, 0, json!({"waiting": {"reason": "ContainerCreating"}}))],
        }),
    );
    // A bound pod is deleted gracefully: it stays, Terminating, until its kubelet is done.
    let out = s.ok(&["delete", "pod", "doomed", "--wait=false"]);
    s.check_contains("kubectl delete pod doomed", &out, "pod \"doomed\" deleted");
    let doomed = s.json(&["get", "pod", "doomed", "-o", "json"]);
    s.check(
        at(&doomed, "/metadata/deletionTimestamp").is_string(),
        || format!("a deleted bound pod has a deletionTimestamp: {doomed}"),
    );
    s.check_eq(
        "deletionGracePeriodSeconds of a deleted bound pod",
        at(&doomed, "/metadata/deletionGracePeriodSeconds"),
        &json!(30),
    );

    let table = s.table(&["get", "pods"]);
    s.check_columns(
        &table,
        &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "kubectl get pods",
    );
    for (name, ready, status, restarts) in [
        ("pending", "0/1", "Pending", "0"),
        ("running", "1/1", "Running", "0"),
        ("crash", "0/1", "CrashLoopBackOff", "4"),
        ("done", "0/1", "Completed", "0"),
        ("creating", "0/1", "ContainerCreating", "0"),
        ("doomed", "0/1", "Terminating", "0"),
    ] {
        s.check_row(
            &table,
            name,
            &[("READY", ready), ("STATUS", status), ("RESTARTS", restarts)],
            "kubectl get pods",
        );
    }
    s.check_eq("rows of `kubectl get pods`", &table.len(), &names.len());

    let wide = s.table(&["get", "pods", "-o", "wide"]);
    s.check_columns(
        &wide,
        &[
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES",
        ],
        "kubectl get pods -o wide",
    );
    s.check_row(
        &wide,
        "running",
        &[
            ("STATUS", "Running"),
            ("IP", "10.244.0.5"),
            ("NODE", "node-a"),
            ("NOMINATED NODE", "<none>"),
            ("READINESS GATES", "<none>"),
        ],
        "kubectl get pods -o wide",
    );
    s.check_row(
        &wide,
        "pending",
        &[("IP", "<none>"), ("NODE", "<none>")],
        "kubectl get pods -o wide",
    );

    let one = s.table(&["get", "pod", "crash"]);
    s.check_eq("rows of `kubectl get pod crash`", &one.len(), &1);
    s.check_row(
        &one,
        "crash",
        &[("STATUS", "CrashLoopBackOff")],
        "kubectl get pod crash",
    );

    // kubectl adds label columns from the row objects the server embeds.
    let labels = s.table(&["get", "pods", "--show-labels"]);
    s.check_row(
        &labels,
        "running",
        &[("LABELS", "app=demo")],
        "kubectl get pods --show-labels",
    );
    let labels = s.table(&["get", "pods", "-L", "app"]);
    s.check_row(
        &labels,
        "done",
        &[("APP", "demo")],
        "kubectl get pods -L app",
    );

    let custom = s.table(&[
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,PHASE:.status.phase,NODE:.spec.nodeName",
    ]);
    s.check_row(
        &custom,
        "done",
        &[("PHASE", "Succeeded"), ("NODE", "<none>")],
        "kubectl get pods -o custom-columns",
    );
    s.check_row(
        &custom,
        "running",
        &[("PHASE", "Running"), ("NODE", "node-a")],
        "kubectl get pods -o custom-columns",
    );

    let running = s.ok(&[
        "get",
        "pods",
        "--field-selector=status.phase=Running",
        "-o",
        "name",
    ]);
    let running: BTreeSet<&str> = running.lines().collect();
    s.check_eq(
        "`kubectl get pods --field-selector=status.phase=Running -o name`",
        &running,
        &BTreeSet::from(["pod/crash", "pod/running"]),
    );
    s.finish();
}

/// A container status of the single container `app` of [`pod_manifest`].
fn container_status(ready: bool, restarts: u32, state: Value) -> Value {
    json!({
        "name": "app",
        "image": "busybox:1.36",
        "imageID": "",
        "ready": ready,
        "started": ready,
        "restartCount": restarts,
        "state": state,
    })
}

fn pod_manifest(name: &str, labels: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    {labels}\n\
         spec:\n  containers:\n  - name: app\n    image: {image}\n"
    )
}

const WEB_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
  annotations:
    deployment.kubernetes.io/revision: "2"
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
      - name: web
        image: nginx:1.27
        env:
        - name: MODE
          value: prod
      - name: sidecar
        image: busybox:1.36
"#;

/// A ReplicaSet of deployment `web` (uid `uid`) at `revision` running `image`.
fn web_replicaset(name: &str, hash: &str, revision: u32, image: &str, uid: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
  labels:
    app: web
    pod-template-hash: "{hash}"
  annotations:
    deployment.kubernetes.io/revision: "{revision}"
  ownerReferences:
  - apiVersion: apps/v1
    kind: Deployment
    name: web
    uid: {uid}
    controller: true
    blockOwnerDeletion: true
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
      pod-template-hash: "{hash}"
  template:
    metadata:
      labels:
        app: web
        pod-template-hash: "{hash}"
    spec:
      containers:
      - name: web
        image: {image}
        env:
        - name: MODE
          value: prod
      - name: sidecar
        image: busybox:1.36
"#
    )
}

/// Deployments and replicasets tables (with their status set through /status), and
/// `kubectl wait --for=condition=Available`.
fn workload_tables(server: &Server) {
    let s = Session::new(server, "workloads");
    let file = s.file("web.yaml", WEB_DEPLOYMENT);
    s.must(&["create", "-f", &file]);
    let uid = s.must(&["get", "deployment", "web", "-o", "jsonpath={.metadata.uid}"]);
    let file = s.file(
        "rs.yaml",
        &web_replicaset("web-7c5b9f", "7c5b9f", 2, "nginx:1.27", &uid),
    );
    s.must(&["create", "-f", &file]);

    let table = s.table(&["get", "deployments"]);
    s.check_columns(
        &table,
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "kubectl get deployments",
    );
    s.check_row(
        &table,
        "web",
        &[("READY", "0/2"), ("UP-TO-DATE", "0"), ("AVAILABLE", "0")],
        "kubectl get deployments (no status yet)",
    );

    // `kubectl wait` started before the condition holds, so it has to watch for it.
    let waiter = s.spawn(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=30s",
    ]);
    let now = rfc3339(SystemTime::now());
    s.patch_status(
        "deployment",
        "web",
        &json!({
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "unavailableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"web-7c5b9f\" has successfully progressed.",
                 "lastUpdateTime": now, "lastTransitionTime": now},
            ],
        }),
    );
    let run = waiter.finish();
    s.check(run.success(), || {
        format!(
            "kubectl wait --for=condition=Available succeeds: {}",
            run.report()
        )
    });
    s.check_contains(
        "kubectl wait --for=condition=Available deployment/web",
        &run.stdout,
        "deployment.apps/web condition met",
    );

    let table = s.table(&["get", "deployments"]);
    s.check_row(
        &table,
        "web",
        &[("READY", "1/2"), ("UP-TO-DATE", "2"), ("AVAILABLE", "1")],
        "kubectl get deployments",
    );
    let wide = s.table(&["get", "deployment", "web", "-o", "wide"]);
    s.check_columns(
        &wide,
        &[
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ],
        "kubectl get deployment web -o wide",
    );
    s.check_row(
        &wide,
        "web",
        &[
            ("READY", "1/2"),
            ("CONTAINERS", "web,sidecar"),
            ("IMAGES", "nginx:1.27,busybox:1.36"),
            ("SELECTOR", "app=web"),
        ],
        "kubectl get deployment web -o wide",
    );

    let table = s.table(&["get", "replicasets"]);
    s.check_columns(
        &table,
        &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "kubectl get replicasets",
    );
    s.check_row(
        &table,
        "web-7c5b9f",
        &[("DESIRED", "2"), ("CURRENT", "0"), ("READY", "0")],
        "kubectl get replicasets (no status yet)",
    );
    s.patch_status(
        "replicaset",
        "web-7c5b9f",
        &json!({"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1,
                "availableReplicas": 1, "observedGeneration": 1}),
    );
    let wide = s.table(&["get", "rs", "-o", "wide"]);
    s.check_columns(
        &wide,
        &[
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ],
        "kubectl get rs -o wide",
    );
    s.check_row(
        &wide,
        "web-7c5b9f",
        &[
            ("DESIRED", "2"),
            ("CURRENT", "2"),
            ("READY", "1"),
            ("CONTAINERS", "web,sidecar"),
            ("IMAGES", "nginx:1.27,busybox:1.36"),
            ("SELECTOR", "app=web,pod-template-hash=7c5b9f"),
        ],
        "kubectl get rs -o wide",
    );

    // Two kinds in one call: one table each.
    let tables = s.tables(&["get", "deployments,replicasets"]);
    let first_names: Vec<String> = tables
        .iter()
        .map(|t| t.rows.first().map(|r| r[0].clone()).unwrap_or_default())
        .collect();
    s.check_eq(
        "the first rows of `kubectl get deployments,replicasets`",
        &first_names,
        &vec![
            "deployment.apps/web".to_string(),
            "replicaset.apps/web-7c5b9f".to_string(),
        ],
    );
    s.finish();
}

fn node_manifest(name: &str, roles: &[&str], ready: &str) -> String {
    let role_labels: String = roles
        .iter()
        .map(|r| format!("    node-role.kubernetes.io/{r}: \"\"\n"))
        .collect();
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels:
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
{role_labels}status:
  capacity:
    cpu: "4"
    memory: 8Gi
    pods: "110"
  allocatable:
    cpu: "4"
    memory: 8Gi
    pods: "110"
  conditions:
  - type: Ready
    status: "{ready}"
    reason: KubeletReady
    message: kubelet is posting ready status
    lastHeartbeatTime: "2025-01-01T00:00:00Z"
    lastTransitionTime: "2025-01-01T00:00:00Z"
  addresses:
  - type: InternalIP
    address: 192.0.2.10
  - type: Hostname
    address: {name}
  nodeInfo:
    machineID: 4f1c0a7e
    systemUUID: 4f1c0a7e
    bootID: 0b5b0d9e
    kernelVersion: 6.1.0-18-amd64
    osImage: Debian GNU/Linux 12 (bookworm)
    containerRuntimeVersion: containerd://1.6.20
    kubeletVersion: v1.32.4
    kubeProxyVersion: v1.32.4
    operatingSystem: linux
    architecture: amd64
"#
    )
}

/// Nodes created with their status (as a kubelet registers): tables, cordon, describe.
fn node_tables_and_describe(server: &Server) {
    let s = Session::new(server, "nodes");
    let ready = unique_name("node");
    let lost = unique_name("node");
    let file = s.file(
        "nodes.yaml",
        &format!(
            "{}---\n{}",
            node_manifest(&ready, &["control-plane", "worker"], "True"),
            node_manifest(&lost, &[], "Unknown")
        ),
    );
    let out = s.must(&["create", "-f", &file]);
    s.check_contains(
        "kubectl create -f nodes",
        &out,
        &format!("node/{ready} created"),
    );
    let stored = s.json(&["get", "node", &ready, "-o", "json"]);
    s.check_eq(
        "a node's status kept on create",
        at(&stored, "/status/nodeInfo/kubeletVersion"),
        &json!("v1.32.4"),
    );

    let table = s.table(&["get", "nodes"]);
    s.check_columns(
        &table,
        &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "kubectl get nodes",
    );
    s.check_row(
        &table,
        &ready,
        &[
            ("STATUS", "Ready"),
            ("ROLES", "control-plane,worker"),
            ("VERSION", "v1.32.4"),
        ],
        "kubectl get nodes",
    );
    s.check_row(
        &table,
        &lost,
        &[("STATUS", "NotReady"), ("ROLES", "<none>")],
        "kubectl get nodes",
    );
    let wide = s.table(&["get", "node", &ready, "-o", "wide"]);
    s.check_columns(
        &wide,
        &[
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME",
        ],
        "kubectl get node -o wide",
    );
    s.check_row(
        &wide,
        &ready,
        &[
            ("INTERNAL-IP", "192.0.2.10"),
            ("EXTERNAL-IP", "<none>"),
            ("OS-IMAGE", "Debian GNU/Linux 12 (bookworm)"),
            ("KERNEL-VERSION", "6.1.0-18-amd64"),
            ("CONTAINER-RUNTIME", "containerd://1.6.20"),
        ],
        "kubectl get node -o wide",
    );

    let out = s.ok(&["cordon", &ready]);
    s.check_contains("kubectl cordon", &out, &format!("node/{ready} cordoned"));
    s.check_row(
        &s.table(&["get", "node", &ready]),
        &ready,
        &[("STATUS", "Ready,SchedulingDisabled")],
        "kubectl get node after cordon",
    );
    let out = s.ok(&["uncordon", &ready]);
    s.check_contains(
        "kubectl uncordon",
        &out,
        &format!("node/{ready} uncordoned"),
    );
    s.check_row(
        &s.table(&["get", "node", &ready]),
        &ready,
        &[("STATUS", "Ready")],
        "kubectl get node after uncordon",
    );

    // describe lists the node's pods (a field selector on spec.nodeName and status.phase).
    let file = s.file(
        "pod.yaml",
        &pod_manifest("on-node", "app: node", "busybox:1.36"),
    );
    s.must(&["create", "-f", &file]);
    s.bind("on-node", &ready);
    let out = s.ok(&["describe", "node", &ready]);
    let what = "kubectl describe node";
    s.check_field(what, &out, "Name", &ready);
    s.check_field(what, &out, "Roles", "control-plane,worker");
    s.check_field_present(what, &out, "Labels");
    s.check_field_present(what, &out, "Conditions");
    s.check_field_present(what, &out, "Events");
    for wanted in [
        "InternalIP:  192.0.2.10",
        "Kernel Version:",
        "6.1.0-18-amd64",
        "Container Runtime Version:",
    ] {
        s.check_contains(what, &out, wanted);
    }
    s.check(
        out.lines()
            .any(|l| l.starts_with("Non-terminated Pods:") && l.contains("(1 in total)")),
        || format!("`{what}` counts one pod on the node:\n{out}"),
    );
    s.check(
        out.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() > 2 && words[0] == s.ns && words[1] == "on-node"
        }),
        || format!("`{what}` lists the pod bound to it:\n{out}"),
    );
    s.finish();
}

/// Tables of services, endpoints, namespaces, leases, events, configmaps, secrets.
fn service_and_config_tables(server: &Server) {
    let s = Session::new(server, "tables");
    let manifest = r#"apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: edge
spec:
  type: NodePort
  ports:
  - name: http
    port: 80
    nodePort: 30080
  - name: dns
    port: 53
    protocol: UDP
    nodePort: 30053
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector:
    app: db
  ports:
  - port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: manual
subsets:
- addresses:
  - ip: 10.244.1.2
  - ip: 10.244.1.3
  ports:
  - port: 8080
---
apiVersion: v1
kind: Endpoints
metadata:
  name: empty
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: lock
spec:
  holderIdentity: node-1
  leaseDurationSeconds: 15
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: "1"
  b: "2"
binaryData:
  blob: AAEC
---
apiVersion: v1
kind: Secret
metadata:
  name: tls
type: kubernetes.io/tls
data:
  tls.crt: Y2VydA==
  tls.key: a2V5
"#;
    let file = s.file("objects.yaml", manifest);
    s.must(&["create", "-f", &file]);
    // `stringData` is a write-only Secret field; the server folds it into `data`.
    let creds = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ntype: Opaque\n\
                 stringData:\n  user: admin\n  password: s3cret\n";
    let file = s.file("creds.yaml", creds);
    let creds_created = s.says(&["create", "-f", &file], "secret/creds created");
    if creds_created {
        s.check_eq(
            "data of a secret created with stringData",
            at(&s.json(&["get", "secret", "creds", "-o", "json"]), "/data"),
            &json!({"user": "YWRtaW4=", "password": "czNjcmV0"}),
        );
    }
    let event = format!(
        r#"apiVersion: v1
kind: Event
metadata:
  name: web-0.started
involvedObject:
  apiVersion: v1
  kind: Pod
  name: web-0
  namespace: {ns}
reason: Started
message: Started container web
type: Normal
count: 1
firstTimestamp: "{time}"
lastTimestamp: "{time}"
source:
  component: kubelet
"#,
        ns = s.ns,
        time = rfc3339(SystemTime::now() - Duration::from_secs(2)),
    );
    let file = s.file("event.yaml", &event);
    s.must(&["create", "-f", &file]);

    let table = s.table(&["get", "services"]);
    s.check_columns(
        &table,
        &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        "kubectl get services",
    );
    let web = s.json(&["get", "service", "web", "-o", "json"]);
    let cluster_ip = at(&web, "/spec/clusterIP")
        .as_str()
        .unwrap_or("")
        .to_string();
    // Allocated from the default service CIDR, 10.43.0.0/16, as upstream allocates.
    let allocated = cluster_ip
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.octets()[..2] == [10, 43]);
    s.check_eq(
        "a ClusterIP service's address is allocated from 10.43.0.0/16",
        &allocated,
        &true,
    );
    s.check_eq(
        "clusterIPs follows clusterIP",
        at(&web, "/spec/clusterIPs"),
        &json!([cluster_ip]),
    );
    let edge = s.json(&["get", "service", "edge", "-o", "json"]);
    let edge_ip = at(&edge, "/spec/clusterIP")
        .as_str()
        .unwrap_or("")
        .to_string();
    s.check_row(
        &table,
        "web",
        &[
            ("TYPE", "ClusterIP"),
            ("CLUSTER-IP", &cluster_ip),
            ("EXTERNAL-IP", "<none>"),
            ("PORT(S)", "80/TCP"),
        ],
        "kubectl get services",
    );
    s.check_row(
        &table,
        "edge",
        &[
            ("TYPE", "NodePort"),
            ("CLUSTER-IP", &edge_ip),
            ("EXTERNAL-IP", "<none>"),
            ("PORT(S)", "80:30080/TCP,53:30053/UDP"),
        ],
        "kubectl get services",
    );
    s.check_row(
        &table,
        "db",
        &[
            ("TYPE", "ClusterIP"),
            ("CLUSTER-IP", "None"),
            ("PORT(S)", "5432/TCP"),
        ],
        "kubectl get services",
    );
    let wide = s.table(&["get", "services", "-o", "wide"]);
    s.check_row(
        &wide,
        "web",
        &[("SELECTOR", "app=web")],
        "kubectl get services -o wide",
    );
    s.check_row(
        &wide,
        "edge",
        &[("SELECTOR", "<none>")],
        "kubectl get services -o wide",
    );

    let table = s.table(&["get", "endpoints"]);
    s.check_columns(
        &table,
        &["NAME", "ENDPOINTS", "AGE"],
        "kubectl get endpoints",
    );
    s.check_row(
        &table,
        "manual",
        &[("ENDPOINTS", "10.244.1.2:8080,10.244.1.3:8080")],
        "kubectl get endpoints",
    );
    s.check_row(
        &table,
        "empty",
        &[("ENDPOINTS", "<none>")],
        "kubectl get endpoints",
    );

    let table = s.table(&["get", "namespaces"]);
    s.check_columns(&table, &["NAME", "STATUS", "AGE"], "kubectl get namespaces");
    for name in [s.ns.as_str(), "default", "kube-system"] {
        s.check_row(
            &table,
            name,
            &[("STATUS", "Active")],
            "kubectl get namespaces",
        );
    }

    let table = s.table(&["get", "leases"]);
    s.check_columns(&table, &["NAME", "HOLDER", "AGE"], "kubectl get leases");
    s.check_row(
        &table,
        "lock",
        &[("HOLDER", "node-1")],
        "kubectl get leases",
    );

    let table = s.table(&["get", "events"]);
    s.check_columns(
        &table,
        &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "kubectl get events",
    );
    s.check_row_where(
        &table,
        &[("REASON", "Started")],
        &[
            ("TYPE", "Normal"),
            ("OBJECT", "pod/web-0"),
            ("MESSAGE", "Started container web"),
        ],
        "kubectl get events",
    );
    let last_seen = table
        .find(&[("REASON", "Started")])
        .and_then(|r| table.cell(r, "LAST SEEN"))
        .unwrap_or_default();
    s.check(is_age(last_seen), || {
        format!("`kubectl get events`: LAST SEEN is an age: {last_seen:?}")
    });

    let table = s.table(&["get", "configmaps"]);
    s.check_columns(&table, &["NAME", "DATA", "AGE"], "kubectl get configmaps");
    s.check_row(
        &table,
        "settings",
        &[("DATA", "3")],
        "kubectl get configmaps",
    );

    let table = s.table(&["get", "secrets"]);
    s.check_columns(
        &table,
        &["NAME", "TYPE", "DATA", "AGE"],
        "kubectl get secrets",
    );
    if creds_created {
        s.check_row(
            &table,
            "creds",
            &[("TYPE", "Opaque"), ("DATA", "2")],
            "kubectl get secrets",
        );
    }
    s.check_row(
        &table,
        "tls",
        &[("TYPE", "kubernetes.io/tls"), ("DATA", "2")],
        "kubectl get secrets",
    );
    s.finish();
}

/// `kubectl edit`, `set image`, `label`, `annotate`, `scale`, `rollout
/// pause|resume|restart|undo|history` on a deployment.
fn imperative_updates(server: &Server) {
    let s = Session::new(server, "imperative");
    let file = s.file("web.yaml", WEB_DEPLOYMENT);
    s.must(&["create", "-f", &file]);
    let get = ["get", "deployment", "web", "-o", "json"];
    let original = s.json(&get);

    // kubectl edit: the editor changes the replicas in kubectl's YAML.
    let editor = s.file(
        "edit.sh",
        "#!/bin/sh\nset -e\nsed -i -e 's/^  replicas: 2$/  replicas: 3/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755))
        .expect("make the editor script executable");
    let run = s.kubectl_env(&["edit", "deployment/web"], &[("KUBE_EDITOR", &editor)]);
    s.check(run.success(), || {
        format!("kubectl edit succeeds: {}", run.report())
    });
    s.check_contains("kubectl edit", &run.stdout, "deployment.apps/web edited");
    let edited = s.json(&get);
    s.check_eq(
        "replicas after kubectl edit",
        at(&edited, "/spec/replicas"),
        &json!(3),
    );
    s.check_eq(
        "the template after kubectl edit of the replicas",
        at(&edited, "/spec/template"),
        at(&original, "/spec/template"),
    );
    let run = s.kubectl_env(&["edit", "deployment/web"], &[("KUBE_EDITOR", "true")]);
    s.check(run.success(), || {
        format!("kubectl edit without changes succeeds: {}", run.report())
    });
    s.check_contains(
        "kubectl edit without changes",
        &format!("{}{}", run.stdout, run.stderr),
        "Edit cancelled, no changes made.",
    );

    let out = s.ok(&["set", "image", "deployment/web", "web=nginx:2"]);
    s.check_contains(
        "kubectl set image",
        &out,
        "deployment.apps/web image updated",
    );
    let updated = s.json(&get);
    let mut expected = at(&edited, "/spec/template").clone();
    if let Some(web) = expected.pointer_mut("/spec/containers/0") {
        web["image"] = json!("nginx:2");
    }
    s.check_eq(
        "the template after kubectl set image web=nginx:2 (only that image changed)",
        at(&updated, "/spec/template"),
        &expected,
    );

    let out = s.ok(&["label", "deployment", "web", "tier=frontend"]);
    s.check_contains("kubectl label", &out, "deployment.apps/web labeled");
    s.fails(
        &["label", "deployment", "web", "tier=backend"],
        &["'tier' already has a value (frontend), and --overwrite is false"],
    );
    s.ok(&["label", "deployment", "web", "tier=backend", "--overwrite"]);
    s.check_eq(
        "labels after kubectl label --overwrite",
        at(&s.json(&get), "/metadata/labels"),
        &json!({"app": "web", "tier": "backend"}),
    );
    let out = s.ok(&["label", "deployment", "web", "tier-"]);
    s.check_contains("kubectl label tier-", &out, "deployment.apps/web unlabeled");
    s.check_eq(
        "labels after kubectl label tier-",
        at(&s.json(&get), "/metadata/labels"),
        &json!({"app": "web"}),
    );

    let out = s.ok(&["annotate", "deployment", "web", "owner=alice"]);
    s.check_contains("kubectl annotate", &out, "deployment.apps/web annotated");
    s.check_eq(
        "the annotation after kubectl annotate",
        at(&s.json(&get), "/metadata/annotations/owner"),
        &json!("alice"),
    );
    let out = s.ok(&["annotate", "deployment", "web", "owner-"]);
    s.check_contains(
        "kubectl annotate owner-",
        &out,
        "deployment.apps/web annotated",
    );
    s.check_eq(
        "annotations after kubectl annotate owner-",
        at(&s.json(&get), "/metadata/annotations"),
        &json!({"deployment.kubernetes.io/revision": "2"}),
    );

    // kubectl patch (strategic by default) with the `$patch` directives.
    let out = s.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"metadata":{"labels":{"$patch":"replace","app":"web","stage":"canary"}}}"#,
    ]);
    s.check_contains(
        "kubectl patch ($patch: replace)",
        &out,
        "deployment.apps/web patched",
    );
    s.check_eq(
        "labels after a patch with `$patch: replace`",
        at(&s.json(&get), "/metadata/labels"),
        &json!({"app": "web", "stage": "canary"}),
    );
    let before_delete = s.json(&get);
    let out = s.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#,
    ]);
    s.check_contains(
        "kubectl patch ($patch: delete)",
        &out,
        "deployment.apps/web patched",
    );
    let mut expected = at(&before_delete, "/spec/template/spec/containers").clone();
    if let Some(containers) = expected.as_array_mut() {
        containers.retain(|c| c["name"] != "sidecar");
    }
    s.check_eq(
        "containers after a patch deleting the sidecar",
        at(&s.json(&get), "/spec/template/spec/containers"),
        &expected,
    );

    let out = s.ok(&["scale", "deployment", "web", "--replicas=5"]);
    s.check_contains("kubectl scale", &out, "deployment.apps/web scaled");
    s.check_eq(
        "replicas after kubectl scale",
        at(&s.json(&get), "/spec/replicas"),
        &json!(5),
    );
    s.fails(
        &[
            "scale",
            "deployment/web",
            "--current-replicas=4",
            "--replicas=6",
        ],
        &["Expected replicas to be 4, was 5"],
    );
    s.check_eq(
        "replicas after a scale with a wrong precondition",
        at(&s.json(&get), "/spec/replicas"),
        &json!(5),
    );

    let out = s.ok(&["rollout", "pause", "deployment/web"]);
    s.check_contains("kubectl rollout pause", &out, "deployment.apps/web paused");
    s.check_eq(
        "spec.paused after kubectl rollout pause",
        at(&s.json(&get), "/spec/paused"),
        &json!(true),
    );
    // Without ReplicaSets of the deployment there is no history to go back to.
    s.fails(
        &["rollout", "undo", "deployment/web"],
        &["no rollout history found for deployment \"web\""],
    );

    // The history a deployment controller would have left: two owned ReplicaSets.
    let uid = s.must(&["get", "deployment", "web", "-o", "jsonpath={.metadata.uid}"]);
    let file = s.file(
        "history.yaml",
        &format!(
            "{}---\n{}",
            web_replicaset("web-5b6c7d", "5b6c7d", 1, "nginx:1.27", &uid),
            web_replicaset("web-8e9f0a", "8e9f0a", 2, "nginx:2", &uid)
        ),
    );
    s.must(&["create", "-f", &file]);
    let out = s.ok(&["rollout", "history", "deployment/web"]);
    for revision in ["1", "2"] {
        s.check(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(revision)),
            || format!("`kubectl rollout history` lists revision {revision}:\n{out}"),
        );
    }
    s.fails(
        &["rollout", "undo", "deployment/web"],
        &["you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"],
    );

    let out = s.ok(&["rollout", "resume", "deployment/web"]);
    s.check_contains(
        "kubectl rollout resume",
        &out,
        "deployment.apps/web resumed",
    );
    let resumed = s.json(&get);
    s.check(
        matches!(
            at(&resumed, "/spec/paused"),
            Value::Null | Value::Bool(false)
        ),
        || {
            format!(
                "spec.paused is unset after resume: {}",
                at(&resumed, "/spec")
            )
        },
    );

    let out = s.ok(&["rollout", "restart", "deployment/web"]);
    s.check_contains(
        "kubectl rollout restart",
        &out,
        "deployment.apps/web restarted",
    );
    let restarted = s.json(&get);
    let restarted_at = at(
        &restarted,
        "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt",
    );
    s.check(
        restarted_at.as_str().is_some_and(looks_like_rfc3339),
        || format!("the template has a kubectl.kubernetes.io/restartedAt time: {restarted_at}"),
    );
    s.check_eq(
        "the containers after kubectl rollout restart",
        at(&restarted, "/spec/template/spec"),
        at(&resumed, "/spec/template/spec"),
    );

    // Back to revision 1: its template, without the ReplicaSet's hash label.
    let out = s.ok(&["rollout", "undo", "deployment/web"]);
    s.check_contains(
        "kubectl rollout undo",
        &out,
        "deployment.apps/web rolled back",
    );
    let rolled_back = s.json(&get);
    s.check_eq(
        "the image after kubectl rollout undo",
        at(&rolled_back, "/spec/template/spec/containers/0/image"),
        &json!("nginx:1.27"),
    );
    s.check_eq(
        "the template labels after kubectl rollout undo",
        at(&rolled_back, "/spec/template/metadata/labels"),
        &json!({"app": "web"}),
    );
    s.check(
        at(&rolled_back, "/spec/template/metadata/annotations")
            .get("kubectl.kubernetes.io/restartedAt")
            .is_none(),
        || "revision 1's template has no restartedAt annotation".to_string(),
    );
    s.finish();
}

/// `kubectl describe` of a pod, a deployment, a replicaset and a service.
fn describe(server: &Server) {
    let s = Session::new(server, "describe");
    let file = s.file("web.yaml", WEB_DEPLOYMENT);
    s.must(&["create", "-f", &file]);
    let uid = s.must(&["get", "deployment", "web", "-o", "jsonpath={.metadata.uid}"]);
    let file = s.file(
        "rs.yaml",
        &web_replicaset("web-7c5b9f", "7c5b9f", 2, "nginx:1.27", &uid),
    );
    s.must(&["create", "-f", &file]);
    let rs_uid = s.must(&[
        "get",
        "replicaset",
        "web-7c5b9f",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels:
    app: web
    pod-template-hash: "7c5b9f"
  ownerReferences:
  - apiVersion: apps/v1
    kind: ReplicaSet
    name: web-7c5b9f
    uid: {rs_uid}
    controller: true
spec:
  containers:
  - name: web
    image: nginx:1.27
"#
    );
    let file = s.file("pod.yaml", &pod);
    s.must(&["create", "-f", &file]);
    s.patch_status(
        "pod",
        "web-0",
        &json!({"phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}]}),
    );
    let pod_uid = s.must(&["get", "pod", "web-0", "-o", "jsonpath={.metadata.uid}"]);
    let time = rfc3339(SystemTime::now() - Duration::from_secs(3));
    let others = format!(
        r#"apiVersion: v1
kind: Event
metadata:
  name: web-0.scheduled
involvedObject:
  apiVersion: v1
  kind: Pod
  name: web-0
  namespace: {ns}
  uid: {pod_uid}
reason: Scheduled
message: Successfully assigned web-0 to node-a
type: Normal
count: 1
firstTimestamp: "{time}"
lastTimestamp: "{time}"
source:
  component: default-scheduler
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
spec:
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Endpoints
metadata:
  name: web
  labels:
    app: web
subsets:
- addresses:
  - ip: 10.244.1.7
  ports:
  - name: http
    port: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-x1y2z
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
- addresses:
  - 10.244.1.7
  conditions:
    ready: true
ports:
- name: http
  port: 8080
  protocol: TCP
"#,
        ns = s.ns
    );
    let file = s.file("others.yaml", &others);
    s.must(&["create", "-f", &file]);

    let out = s.ok(&["describe", "pod", "web-0"]);
    let what = "kubectl describe pod";
    s.check_field(what, &out, "Name", "web-0");
    s.check_field(what, &out, "Namespace", &s.ns);
    s.check_field(what, &out, "Labels", "app=web");
    s.check_field(what, &out, "Status", "Running");
    s.check_field(what, &out, "IP", "10.244.1.7");
    s.check_field(what, &out, "Controlled By", "ReplicaSet/web-7c5b9f");
    s.check_field_present(what, &out, "Containers");
    s.check_field_present(what, &out, "Events");
    // The pod's events, found by an involvedObject field selector.
    s.check(
        out.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.starts_with(&["Normal", "Scheduled"])
                && words.contains(&"default-scheduler")
                && l.contains("Successfully assigned web-0 to node-a")
        }),
        || format!("`{what}` lists the pod's event:\n{out}"),
    );

    let out = s.ok(&["describe", "deployment", "web"]);
    let what = "kubectl describe deployment";
    s.check_field(what, &out, "Name", "web");
    s.check_field(what, &out, "Namespace", &s.ns);
    s.check_field(what, &out, "Labels", "app=web");
    s.check_field(what, &out, "Selector", "app=web");
    s.check_field(
        what,
        &out,
        "Replicas",
        "2 desired | 0 updated | 0 total | 0 available | 0 unavailable",
    );
    s.check_field(what, &out, "StrategyType", "RollingUpdate");
    s.check_field(
        what,
        &out,
        "RollingUpdateStrategy",
        "25% max unavailable, 25% max surge",
    );
    s.check_field_present(what, &out, "Pod Template");
    s.check_field_present(what, &out, "Events");
    s.check_contains(what, &out, "nginx:1.27");

    let out = s.ok(&["describe", "replicaset", "web-7c5b9f"]);
    let what = "kubectl describe replicaset";
    s.check_field(what, &out, "Name", "web-7c5b9f");
    s.check_field(what, &out, "Namespace", &s.ns);
    s.check_field(what, &out, "Selector", "app=web,pod-template-hash=7c5b9f");
    s.check_field(what, &out, "Labels", "app=web");
    s.check_field(what, &out, "Controlled By", "Deployment/web");
    s.check_field(what, &out, "Replicas", "0 current / 2 desired");
    // The pods it owns, found by its selector.
    s.check_field(
        what,
        &out,
        "Pods Status",
        "1 Running / 0 Waiting / 0 Succeeded / 0 Failed",
    );
    s.check_field_present(what, &out, "Events");

    let out = s.ok(&["describe", "service", "web"]);
    let what = "kubectl describe service";
    s.check_field(what, &out, "Name", "web");
    s.check_field(what, &out, "Namespace", &s.ns);
    s.check_field(what, &out, "Labels", "app=web");
    s.check_field(what, &out, "Selector", "<none>");
    s.check_field(what, &out, "Type", "ClusterIP");
    s.check_field(what, &out, "Port", "http  80/TCP");
    s.check_field(what, &out, "TargetPort", "8080/TCP");
    s.check_field(what, &out, "Endpoints", "10.244.1.7:8080");
    s.check_field_present(what, &out, "Events");
    s.finish();
}

/// `kubectl get all`, `get -w`, `wait --for=...` and `delete -l`.
fn get_all_watch_wait_delete(server: &Server) {
    let s = Session::new(server, "all");
    let mut manifest = vec![
        pod_manifest("p1", "app: x", "busybox:1.36"),
        pod_manifest("p2", "app: x", "busybox:1.36"),
        pod_manifest("p3", "app: other", "busybox:1.36"),
    ];
    manifest.push(
        r#"apiVersion: v1
kind: Service
metadata:
  name: front
spec:
  selector:
    app: x
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: front
spec:
  replicas: 1
  selector:
    matchLabels:
      app: x
  template:
    metadata:
      labels:
        app: x
    spec:
      containers:
      - name: app
        image: busybox:1.36
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: front-6f7c8
spec:
  replicas: 1
  selector:
    matchLabels:
      app: x
      pod-template-hash: 6f7c8
  template:
    metadata:
      labels:
        app: x
        pod-template-hash: 6f7c8
    spec:
      containers:
      - name: app
        image: busybox:1.36
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c1
  labels:
    app: x
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c2
  labels:
    app: other
"#
        .to_string(),
    );
    let file = s.file("objects.yaml", &manifest.join("---\n"));
    s.must(&["create", "-f", &file]);

    let tables = s.tables(&["get", "all"]);
    let expected: [(&str, &[&str], &[&str]); 4] = [
        (
            "pods",
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["pod/p1", "pod/p2", "pod/p3"],
        ),
        (
            "services",
            &[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            &["service/front"],
        ),
        (
            "deployments",
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            &["deployment.apps/front"],
        ),
        (
            "replicasets",
            &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            &["replicaset.apps/front-6f7c8"],
        ),
    ];
    s.check_eq(
        "the number of tables `kubectl get all` prints (pods, services, deployments, \
         replicasets; no configmaps)",
        &tables.len(),
        &expected.len(),
    );
    for (table, (kind, columns, names)) in tables.iter().zip(expected) {
        let what = format!("kubectl get all: the {kind} table");
        s.check_columns(table, columns, &what);
        let got: Vec<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
        s.check_eq(&format!("{what}: names"), &got, &names.to_vec());
        for name in names {
            s.check_row(table, name, &[], &what);
        }
    }
    if let Some(pods) = tables.first() {
        s.check_row(
            pods,
            "pod/p1",
            &[("READY", "0/1"), ("STATUS", "Pending")],
            "kubectl get all: the pods table",
        );
    }

    // kubectl get -w: the initial table, then a row per change.
    let mut watch = s.watch(&["get", "pods", "-w"]);
    let line = watch.wait_for(|l| l.starts_with("p3 "));
    s.check(line.is_some(), || {
        format!(
            "`kubectl get pods -w` lists p3 first:\n{}",
            watch.transcript()
        )
    });
    let file = s.file(
        "pw.yaml",
        &pod_manifest("pw", "app: watched", "busybox:1.36"),
    );
    s.must(&["create", "-f", &file]);
    let line = watch.wait_for(|l| l.starts_with("pw "));
    s.check(
        line.as_deref().is_some_and(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() == 5 && words[1] == "0/1" && words[2] == "Pending" && is_age(words[4])
        }),
        || {
            format!(
                "`kubectl get pods -w` prints the new pod's row (pw 0/1 Pending 0 <age>):\n{}",
                watch.transcript()
            )
        },
    );
    s.patch_status(
        "pod",
        "pw",
        &json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [container_status(true, 0, json!({"running": {"startedAt": "2025-01-01T00:00:00Z"}}))],
        }),
    );
    let line = watch.wait_for(|l| l.starts_with("pw ") && l.contains("Running"));
    s.check(
        line.as_deref()
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("1/1")),
        || {
            format!(
                "`kubectl get pods -w` prints the pod's update (pw 1/1 Running):\n{}",
                watch.transcript()
            )
        },
    );
    drop(watch);

    // kubectl wait: a condition that holds, one that never does, a jsonpath, and one that
    // comes true while it watches.
    s.patch_status(
        "pod",
        "p1",
        &json!({"conditions": [{"type": "Ready", "status": "False"}]}),
    );
    let out = s.ok(&[
        "wait",
        "--for=condition=Ready=false",
        "pod/p1",
        "--timeout=10s",
    ]);
    s.check_contains(
        "kubectl wait --for=condition=Ready=false",
        &out,
        "pod/p1 condition met",
    );
    s.fails(
        &["wait", "--for=condition=Ready", "pod/p3", "--timeout=1s"],
        &["timed out waiting for the condition on pods/p3"],
    );
    let out = s.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/pw",
        "--timeout=10s",
    ]);
    s.check_contains("kubectl wait --for=jsonpath", &out, "pod/pw condition met");
    let waiter = s.spawn(&[
        "wait",
        "--for=condition=Available",
        "deployment/front",
        "--timeout=30s",
    ]);
    let now = rfc3339(SystemTime::now());
    s.patch_status(
        "deployment",
        "front",
        &json!({"conditions": [{"type": "Available", "status": "True",
            "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
            "lastUpdateTime": now, "lastTransitionTime": now}]}),
    );
    let run = waiter.finish();
    s.check(run.success(), || {
        format!(
            "kubectl wait for a deployment condition succeeds: {}",
            run.report()
        )
    });
    s.check_contains(
        "kubectl wait --for=condition=Available deployment/front",
        &run.stdout,
        "deployment.apps/front condition met",
    );

    // kubectl delete -l removes exactly the labelled objects.
    let out = s.ok(&["delete", "pods,configmaps", "-l", "app=x"]);
    for wanted in [
        "pod \"p1\" deleted",
        "pod \"p2\" deleted",
        "configmap \"c1\" deleted",
    ] {
        s.check_contains("kubectl delete pods,configmaps -l app=x", &out, wanted);
    }
    for unwanted in ["p3", "pw", "c2"] {
        s.check(!out.contains(&format!("\"{unwanted}\"")), || {
            format!("`kubectl delete -l app=x` leaves {unwanted} alone:\n{out}")
        });
    }
    let left = s.ok(&["get", "pods,configmaps", "-o", "name"]);
    let left: BTreeSet<&str> = left
        .lines()
        .filter(|l| *l != "configmap/kube-root-ca.crt")
        .collect();
    s.check_eq(
        "pods and configmaps left after `kubectl delete -l app=x`",
        &left,
        &BTreeSet::from(["pod/p3", "pod/pw", "configmap/c2"]),
    );
    let run = s.kubectl(&["delete", "pods", "-l", "app=nothing"]);
    s.check(run.success(), || {
        format!(
            "kubectl delete -l matching nothing succeeds: {}",
            run.report()
        )
    });
    s.check_contains(
        "kubectl delete -l matching nothing",
        &run.stdout,
        "No resources found",
    );
    s.finish();
}

/// `kubectl create deployment|configmap|secret generic|namespace` (kubectl sends these
/// bodies as protobuf).
fn create_commands(server: &Server) {
    let s = Session::new(server, "create");

    // Each stored object is checked only if its create worked, so that one failure is
    // reported once.
    let args = [
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
    ];
    if s.says(&args, "deployment.apps/web created") {
        let web = s.json(&["get", "deployment", "web", "-o", "json"]);
        for (what, pointer, want) in [
            ("labels", "/metadata/labels", json!({"app": "web"})),
            ("replicas", "/spec/replicas", json!(2)),
            (
                "selector",
                "/spec/selector",
                json!({"matchLabels": {"app": "web"}}),
            ),
            (
                "template labels",
                "/spec/template/metadata/labels",
                json!({"app": "web"}),
            ),
            (
                "container name",
                "/spec/template/spec/containers/0/name",
                json!("nginx"),
            ),
            (
                "container image",
                "/spec/template/spec/containers/0/image",
                json!("nginx:1.27"),
            ),
            (
                "container ports",
                "/spec/template/spec/containers/0/ports",
                json!([{"containerPort": 80, "protocol": "TCP"}]),
            ),
            (
                "defaulted strategy",
                "/spec/strategy/type",
                json!("RollingUpdate"),
            ),
        ] {
            s.check_eq(
                &format!("{what} of the created deployment"),
                at(&web, pointer),
                &want,
            );
        }
    }

    let args = [
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
        "--from-literal=b=two",
    ];
    if s.says(&args, "configmap/settings created") {
        s.check_eq(
            "data of the created configmap",
            at(
                &s.json(&["get", "configmap", "settings", "-o", "json"]),
                "/data",
            ),
            &json!({"a": "1", "b": "two"}),
        );
    }

    let args = [
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
        "--from-literal=password=s3cret",
    ];
    if s.says(&args, "secret/creds created") {
        let secret = s.json(&["get", "secret", "creds", "-o", "json"]);
        s.check_eq(
            "type of the created secret",
            at(&secret, "/type"),
            &json!("Opaque"),
        );
        s.check_eq(
            "data of the created secret",
            at(&secret, "/data"),
            &json!({"user": "YWRtaW4=", "password": "czNjcmV0"}),
        );
    }

    let namespace = unique_name("created");
    let args = ["create", "namespace", &namespace];
    if s.says(&args, &format!("namespace/{namespace} created")) {
        s.check_eq(
            "phase of the created namespace",
            at(
                &s.json(&["get", "namespace", &namespace, "-o", "json"]),
                "/status/phase",
            ),
            &json!("Active"),
        );
    }
    s.finish();
}

/// `kubectl logs` of a pod not on a node yet, and errors as kubectl prints them.
fn logs_and_errors(server: &Server) {
    let s = Session::new(server, "errors");
    let file = s.file(
        "pod.yaml",
        &pod_manifest("quiet", "app: quiet", "busybox:1.36"),
    );
    s.must(&["create", "-f", &file]);
    // Not scheduled (no scheduler here), so nothing ran: an empty log, as upstream
    // answers 204 No Content for a pod without a node.
    let out = s.ok(&["logs", "quiet"]);
    s.check_eq("the log of an unscheduled pod", out.as_str(), "");
    // kubectl words this one itself (`error: error from server (NotFound): pods "missing"
    // not found in namespace "..."`).
    s.fails(
        &["logs", "missing"],
        &["(NotFound): pods \"missing\" not found"],
    );

    s.fails(
        &["get", "deployment", "x"],
        &["Error from server (NotFound): deployments.apps \"x\" not found"],
    );
    s.fails(
        &["delete", "configmap", "nope"],
        &["Error from server (NotFound): configmaps \"nope\" not found"],
    );

    let bad_name = s.file(
        "bad-name.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\ndata:\n  a: \"1\"\n",
    );
    s.fails(
        &["create", "-f", &bad_name],
        &[
            "The ConfigMap \"Bad_Name\" is invalid: ",
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must \
             consist of lower case alphanumeric characters",
        ],
    );
    let negative = s.file(
        "negative.yaml",
        &WEB_DEPLOYMENT.replacen("  replicas: 2\n", "  replicas: -1\n", 1),
    );
    s.fails(
        &["create", "-f", &negative],
        &[
            "The Deployment \"web\" is invalid: ",
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ],
    );
    // Unknown fields: rejected with kubectl's default (strict) validation, done by the
    // server; a warning with --validate=warn.
    let unknown = s.file(
        "unknown.yaml",
        &WEB_DEPLOYMENT.replacen("  replicas: 2\n", "  replicas: 2\n  bogus: 1\n", 1),
    );
    s.fails(
        &["create", "-f", &unknown],
        &[
            "Error from server (BadRequest): error when creating",
            "strict decoding error: unknown field \"spec.bogus\"",
        ],
    );
    let run = s.kubectl(&["create", "--validate=warn", "-f", &unknown]);
    s.check(run.success(), || {
        format!(
            "kubectl create --validate=warn with an unknown field succeeds: {}",
            run.report()
        )
    });
    s.check_contains(
        "kubectl create --validate=warn with an unknown field",
        &run.stderr,
        "unknown field \"spec.bogus\"",
    );

    let config = s.file(
        "config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  a: \"1\"\n",
    );
    s.must(&["create", "-f", &config]);
    s.fails(
        &["create", "-f", &config],
        &[
            "Error from server (AlreadyExists): error when creating",
            "configmaps \"config\" already exists",
        ],
    );

    // A replace carrying an old resourceVersion.
    let stale = s.must(&["get", "configmap", "config", "-o", "json"]);
    let mut stale: Value = serde_json::from_str(&stale).expect("`kubectl get -o json` prints JSON");
    s.ok(&["label", "configmap", "config", "changed=yes"]);
    stale["data"]["a"] = json!("2");
    let stale = s.file("stale.json", &stale.to_string());
    s.fails(
        &["replace", "-f", &stale],
        &[
            "Error from server (Conflict): error when replacing",
            "Operation cannot be fulfilled on configmaps \"config\": the object has been \
             modified; please apply your changes to the latest version and try again",
        ],
    );
    s.check_eq(
        "data after the stale replace",
        at(
            &s.json(&["get", "configmap", "config", "-o", "json"]),
            "/data",
        ),
        &json!({"a": "1"}),
    );
    s.finish();
}

// ---------------------------------------------------------------------------------------
// The kubectl session: runs kubectl in a namespace and records unmet expectations.
// ---------------------------------------------------------------------------------------

/// One finished kubectl run.
#[derive(Debug)]
struct Run {
    command: String,
    /// The exit code; `None` if kubectl was killed.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn report(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// A scenario's kubectl session: its namespace, its files, and its unmet expectations.
#[derive(Debug)]
struct Session<'s> {
    server: &'s Server,
    ns: String,
    dir: PathBuf,
    failures: RefCell<Vec<String>>,
}

impl<'s> Session<'s> {
    /// Creates a namespace `<prefix>-<unique>` for the scenario.
    fn new(server: &'s Server, prefix: &str) -> Self {
        let ns = unique_name(prefix);
        let dir = server.dir().join(&ns);
        std::fs::create_dir_all(&dir).expect("create the scenario's directory");
        let session = Session {
            server,
            ns,
            dir,
            failures: RefCell::new(Vec::new()),
        };
        // From a file: `kubectl create namespace` is a checked step of its own.
        let file = session.file(
            "namespace.yaml",
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
                session.ns
            ),
        );
        session.must(&["create", "-f", &file]);
        session
    }

    /// Writes `content` to `name` in the scenario's directory; returns its path.
    fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, content).expect("write a file for kubectl");
        path.to_str().expect("temp paths are UTF-8").to_string()
    }

    /// `kubectl` with the server's kubeconfig, in the scenario's namespace.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(self.server.kubeconfig_path())
            .arg("--cache-dir")
            .arg(self.server.dir().join("kubectl-cache"))
            .arg("--request-timeout=30s")
            .args(["--namespace", &self.ns])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        command
    }

    fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_env(args, &[])
    }

    /// Runs kubectl to completion (within [`KUBECTL_TIMEOUT`]).
    fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.spawn_env(args, env).finish_within(KUBECTL_TIMEOUT)
    }

    /// Starts kubectl in the background.
    fn spawn(&self, args: &[&str]) -> Background<'_> {
        self.spawn_env(args, &[])
    }

    fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Background<'_> {
        let id = unique_name("kubectl");
        let stdout = self.dir.join(format!("{id}.out"));
        let stderr = self.dir.join(format!("{id}.err"));
        let child = self
            .command(args, env)
            .stdout(File::create(&stdout).expect("create kubectl's stdout file"))
            .stderr(File::create(&stderr).expect("create kubectl's stderr file"))
            .spawn()
            .expect("run kubectl from PATH");
        Background {
            server: self.server,
            child: Some(child),
            command: format!("kubectl {}", args.join(" ")),
            stdout,
            stderr,
        }
    }

    /// Starts kubectl with its stdout read line by line (for `get -w`).
    fn watch(&self, args: &[&str]) -> Watch {
        let mut child = self
            .command(args, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl from PATH");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("kubectl's stdout is piped");
        let stderr = child.stderr.take().expect("kubectl's stderr is piped");
        for (stream, prefix) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, ""),
            (Box::new(stderr), "stderr: "),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(format!("{prefix}{line}")).is_err() {
                        break;
                    }
                }
            });
        }
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// kubectl must succeed; returns its stdout. A failure is recorded.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.kubectl(args);
        if run.success() {
            self.check_quiet(&run);
        } else {
            self.fail(format!("expected success: {}", run.report()));
        }
        run.stdout
    }

    /// kubectl must succeed and print `wanted`; returns whether it succeeded.
    fn says(&self, args: &[&str], wanted: &str) -> bool {
        let run = self.kubectl(args);
        if !run.success() {
            self.fail(format!("expected success: {}", run.report()));
            return false;
        }
        self.check_quiet(&run);
        self.check_contains(&format!("kubectl {}", args.join(" ")), &run.stdout, wanted);
        true
    }

    /// A successful everyday command prints nothing on stderr: no warnings from the
    /// server, no complaints from kubectl. Only warnings upstream prints too are allowed.
    fn check_quiet(&self, run: &Run) {
        let unexpected: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| {
                !line.starts_with("WARNING: version difference between client")
                    && !line.starts_with("Warning: v1 Endpoints is deprecated")
            })
            .collect();
        if !unexpected.is_empty() {
            self.fail(format!(
                "expected nothing on stderr from a successful command: {}",
                run.report()
            ));
        }
    }

    /// kubectl must succeed, or the scenario cannot go on: a setup step.
    fn must(&self, args: &[&str]) -> String {
        let run = self.kubectl(args);
        if !run.success() {
            self.abort(&format!("a setup step failed: {}", run.report()));
        }
        run.stdout
    }

    /// kubectl must exit with 1 and print each of `stderr_has` on stderr.
    fn fails(&self, args: &[&str], stderr_has: &[&str]) -> Run {
        let run = self.kubectl(args);
        if run.code != Some(1) {
            self.fail(format!("expected exit code 1: {}", run.report()));
        }
        for wanted in stderr_has {
            if !run.stderr.contains(wanted) {
                self.fail(format!(
                    "expected stderr to contain {wanted:?}: {}",
                    run.report()
                ));
            }
        }
        run
    }

    /// kubectl's output parsed as JSON (Null, recorded, if it fails or is not JSON).
    fn json(&self, args: &[&str]) -> Value {
        let run = self.kubectl(args);
        if !run.success() {
            self.fail(format!("expected success: {}", run.report()));
            return Value::Null;
        }
        self.check_quiet(&run);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            self.fail(format!("expected JSON ({e}): {}", run.report()));
            Value::Null
        })
    }

    /// The tables kubectl printed (one per kind).
    fn tables(&self, args: &[&str]) -> Vec<Table> {
        Table::parse_all(&self.ok(args))
    }

    /// The table kubectl printed (empty, recorded, if none).
    fn table(&self, args: &[&str]) -> Table {
        let mut tables = self.tables(args);
        if tables.len() != 1 {
            self.fail(format!(
                "`kubectl {}` prints one table, not {}",
                args.join(" "),
                tables.len()
            ));
        }
        if tables.is_empty() {
            Table::default()
        } else {
            tables.swap_remove(0)
        }
    }

    /// Sets `kind/name`'s status through the status subresource.
    fn patch_status(&self, kind: &str, name: &str, status: &Value) {
        let patch = json!({ "status": status }).to_string();
        let out = self.ok(&[
            "patch",
            kind,
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ]);
        self.check_contains(
            &format!("kubectl patch {kind} {name} --subresource=status"),
            &out,
            "patched",
        );
    }

    /// Binds pod `name` to `node`, as a scheduler does.
    fn bind(&self, name: &str, node: &str) {
        let body = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        })
        .to_string();
        let path = format!("/api/v1/namespaces/{}/pods/{name}/binding", self.ns);
        let response = self.server.http(
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        if response.status != 201 {
            self.abort(&format!(
                "binding {name} to {node} answered {}: {}",
                response.status,
                response.text()
            ));
        }
    }

    fn fail(&self, message: String) {
        self.failures.borrow_mut().push(message);
    }

    fn check(&self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(message());
        }
    }

    fn check_eq<T: PartialEq + Debug + ?Sized>(&self, what: &str, got: &T, want: &T) {
        if got != want {
            self.fail(format!("{what}:\n  expected {want:?}\n       got {got:?}"));
        }
    }

    fn check_contains(&self, what: &str, text: &str, wanted: &str) {
        if !text.contains(wanted) {
            self.fail(format!("`{what}` prints {wanted:?}; got:\n{text}"));
        }
    }

    /// `describe` output has a top-level line `<label>: <value>`.
    fn check_field(&self, what: &str, text: &str, label: &str, value: &str) {
        let got = describe_field(text, label);
        if got != Some(value) {
            self.fail(format!(
                "`{what}` prints `{label}: {value}`, got {got:?}:\n{text}"
            ));
        }
    }

    /// `describe` output has a top-level line `<label>:`.
    fn check_field_present(&self, what: &str, text: &str, label: &str) {
        if describe_field(text, label).is_none() {
            self.fail(format!("`{what}` prints `{label}:`:\n{text}"));
        }
    }

    fn check_columns(&self, table: &Table, want: &[&str], what: &str) {
        let got: Vec<&str> = table.columns.iter().map(String::as_str).collect();
        if got != want {
            self.fail(format!(
                "`{what}` columns:\n  expected {want:?}\n       got {got:?}\n{}",
                table.text
            ));
        }
    }

    /// The row whose NAME is `name` has these cells, and an AGE if the table has one.
    fn check_row(&self, table: &Table, name: &str, cells: &[(&str, &str)], what: &str) {
        self.check_row_where(table, &[("NAME", name)], cells, what);
    }

    fn check_row_where(
        &self,
        table: &Table,
        key: &[(&str, &str)],
        cells: &[(&str, &str)],
        what: &str,
    ) {
        let Some(row) = table.find(key) else {
            self.fail(format!("`{what}` has a row {key:?}:\n{}", table.text));
            return;
        };
        for (column, want) in cells {
            let got = table.cell(row, column);
            if got != Some(*want) {
                self.fail(format!(
                    "`{what}`, row {key:?}: {column} is {want:?}, got {got:?}:\n{}",
                    table.text
                ));
            }
        }
        if let Some(age) = table.cell(row, "AGE")
            && !is_age(age)
        {
            self.fail(format!(
                "`{what}`, row {key:?}: AGE {age:?} is an age:\n{}",
                table.text
            ));
        }
    }

    /// Fails now, with everything recorded so far.
    fn abort(&self, message: &str) -> ! {
        let recorded = self.failures.take();
        panic!(
            "{message}\n\nunmet expectations before it ({}):\n\n{}",
            recorded.len(),
            recorded.join("\n\n")
        );
    }

    /// Ends the scenario: it fails if any expectation was unmet. (Dropping the session
    /// does the same, so a forgotten `finish` loses nothing.)
    fn finish(self) {
        drop(self);
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let failures = self.failures.take();
        if failures.is_empty() {
            return;
        }
        let report = format!(
            "{} unmet expectation(s) in namespace {}:\n\n{}",
            failures.len(),
            self.ns,
            failures.join("\n\n")
        );
        if std::thread::panicking() {
            eprintln!("before the panic: {report}");
        } else {
            panic!("{report}");
        }
    }
}

/// A kubectl running in the background, killed if dropped unfinished.
#[derive(Debug)]
struct Background<'s> {
    server: &'s Server,
    child: Option<Child>,
    command: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Background<'_> {
    /// Waits for kubectl to exit (within [`CONDITION_TIMEOUT`]).
    fn finish(self) -> Run {
        self.finish_within(CONDITION_TIMEOUT)
    }

    fn finish_within(mut self, timeout: Duration) -> Run {
        let mut child = self
            .child
            .take()
            .expect("a background kubectl finishes once");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll kubectl") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.server
                    .fail(&format!("`{}` did not finish in {timeout:?}", self.command));
            }
            std::thread::sleep(POLL_INTERVAL);
        };
        Run {
            command: self.command.clone(),
            code: status.code(),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Background<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A kubectl whose output is read as it comes; killed on drop.
#[derive(Debug)]
struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    /// The first line from now on that satisfies `wanted`, within [`CONDITION_TIMEOUT`].
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + CONDITION_TIMEOUT;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if wanted(&line) {
                return Some(line);
            }
        }
    }

    /// Everything read so far.
    fn transcript(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Output parsing
// ---------------------------------------------------------------------------------------

/// A table as kubectl prints it: columns aligned at their header's offset.
#[derive(Debug, Default)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    /// The printed text, for messages.
    text: String,
}

impl Table {
    /// The tables in kubectl's output, separated by blank lines.
    fn parse_all(text: &str) -> Vec<Table> {
        let mut tables = Vec::new();
        let mut block: Vec<&str> = Vec::new();
        for line in text.lines().chain([""]) {
            if line.trim().is_empty() {
                if !block.is_empty() {
                    tables.push(Table::parse(&block));
                    block.clear();
                }
            } else {
                block.push(line);
            }
        }
        tables
    }

    /// Columns start where the header has a word after two or more spaces (kubectl pads
    /// with at least three); header names may contain single spaces ("NOMINATED NODE").
    fn parse(lines: &[&str]) -> Table {
        let header = lines[0].as_bytes();
        let starts: Vec<usize> = (0..header.len())
            .filter(|&i| {
                header[i] != b' '
                    && (i == 0 || (i >= 2 && header[i - 1] == b' ' && header[i - 2] == b' '))
            })
            .collect();
        let cells = |line: &str| -> Vec<String> {
            starts
                .iter()
                .enumerate()
                .map(|(n, &start)| {
                    let cell = match starts.get(n + 1) {
                        Some(&end) => line.get(start..end.min(line.len())),
                        None => line.get(start..),
                    };
                    cell.unwrap_or_default().trim().to_string()
                })
                .collect()
        };
        Table {
            columns: cells(lines[0]),
            rows: lines[1..].iter().map(|line| cells(line)).collect(),
            text: lines.join("\n"),
        }
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    /// The first row whose cells match every `(column, value)` of `key`.
    fn find(&self, key: &[(&str, &str)]) -> Option<&[String]> {
        self.rows
            .iter()
            .find(|row| key.iter().all(|(c, v)| self.cell(row, c) == Some(*v)))
            .map(Vec::as_slice)
    }

    fn cell<'t>(&self, row: &'t [String], column: &str) -> Option<&'t str> {
        let index = self.columns.iter().position(|c| c == column)?;
        row.get(index).map(String::as_str)
    }
}

/// The value of a top-level `Label:  value` line of `kubectl describe`.
fn describe_field<'t>(text: &'t str, label: &str) -> Option<&'t str> {
    text.lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(':').map(str::trim))
}

/// Whether `text` is an age as kubectl prints one (`5s`, `2m3s`, `4h`, `12d`, ...).
fn is_age(text: &str) -> bool {
    let mut digits = 0;
    let mut units = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if "smhdy".contains(c) && digits > 0 {
            digits = 0;
            units += 1;
        } else {
            return false;
        }
    }
    units > 0 && digits == 0
}

/// `value.pointer(pointer)`, Null if absent.
fn at<'v>(value: &'v Value, pointer: &str) -> &'v Value {
    static NULL: Value = Value::Null;
    value.pointer(pointer).unwrap_or(&NULL)
}

/// `time` as RFC 3339 in UTC with seconds, as Kubernetes writes timestamps.
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let days = i64::try_from(secs / 86_400).expect("a plausible date");
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `YYYY-MM-DDTHH:MM:SS` followed by a zone (`Z` or an offset).
fn looks_like_rfc3339(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 20
        && bytes.iter().take(19).enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
}

#[test]
fn rfc3339_formats_known_dates() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)),
        "2000-02-29T01:01:01Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(1_735_689_599)),
        "2024-12-31T23:59:59Z"
    );
    assert!(looks_like_rfc3339(&rfc3339(SystemTime::now())));
}

#[test]
fn tables_parse_by_header_offsets() {
    let text = "NAME      READY   STATUS    RESTARTS      AGE   NOMINATED NODE\n\
                web-0     1/1     Running   3 (5s ago)    10s   <none>\n\
                web-1     0/1     Pending   0             2m    \n\
                \n\
                NAME          TYPE\n\
                service/web   ClusterIP\n";
    let tables = Table::parse_all(text);
    assert_eq!(tables.len(), 2);
    let pods = &tables[0];
    assert_eq!(
        pods.columns,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "NOMINATED NODE"
        ]
    );
    let row = pods.find(&[("NAME", "web-0")]).expect("web-0 is a row");
    assert_eq!(pods.cell(row, "RESTARTS"), Some("3 (5s ago)"));
    assert_eq!(pods.cell(row, "NOMINATED NODE"), Some("<none>"));
    let row = pods.find(&[("NAME", "web-1")]).expect("web-1 is a row");
    assert_eq!(pods.cell(row, "NOMINATED NODE"), Some(""));
    assert_eq!(tables[1].rows, [["service/web", "ClusterIP"]]);
    assert!(is_age("10s") && is_age("2m3s") && is_age("400d"));
    assert!(!is_age("") && !is_age("s") && !is_age("10") && !is_age("<unknown>"));
}
