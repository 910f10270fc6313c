//! `mast apply`, `get`, `scale` and `delete` (the built binary) against a real
//! `mast server`: apply from files, directories and stdin, get's tables compared with
//! kubectl's output for the same command on the same server, `get -w`, scaling,
//! deleting by name, label and file, and one-line errors for bad input.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Backend, Server, run_to_end, unique_name};
use serde_json::Value;

/// No single command may take longer than this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the cluster gets to reach a state a test waits for.
const DEADLINE: Duration = Duration::from_secs(30);

/// One finished command.
#[derive(Debug, PartialEq)]
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The single line of stderr, checked to be a single line.
    fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        lines[0]
    }
}

/// Runs `program args… --kubeconfig K` to completion (killed at the deadline), with
/// `stdin` as its input.
fn run(server: &Server, program: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(program);
    if program == "kubectl" {
        command.arg("--kubeconfig").arg(server.kubeconfig_path());
        command.args(args);
    } else {
        command.args(args);
        command.arg("--kubeconfig").arg(server.kubeconfig_path());
    }
    let finished = run_to_end(&mut command, server.dir(), stdin, COMMAND_TIMEOUT)
        .unwrap_or_else(|| server.fail(&format!("{program} {args:?} did not finish in time")));
    Run {
        success: finished.status.success(),
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

fn mast(server: &Server, args: &[&str]) -> Run {
    run(server, env!("CARGO_BIN_EXE_mast"), args, None)
}

fn mast_stdin(server: &Server, args: &[&str], stdin: &str) -> Run {
    run(server, env!("CARGO_BIN_EXE_mast"), args, Some(stdin))
}

/// `mast args…`, which must succeed; its stdout.
fn mast_ok(server: &Server, args: &[&str]) -> String {
    let result = mast(server, args);
    if !result.success {
        server.fail(&format!("mast {args:?} failed: {result:?}"));
    }
    result.stdout
}

/// One object through `mast get TYPE NAME -o json` (None when it does not exist).
fn object(server: &Server, kind: &str, name: &str) -> Option<Value> {
    let result = mast(server, &["get", kind, name, "-o", "json"]);
    if !result.success {
        assert!(result.stderr.contains("(NotFound)"), "{result:?}");
        return None;
    }
    Some(serde_json::from_str(&result.stdout).expect("get -o json prints JSON"))
}

/// Polls `check` until it holds; fails with the server log at the deadline.
fn eventually(server: &Server, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        if Instant::now() > deadline {
            server.fail(&format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a manifest");
    path.display().to_string()
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}, tier: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: nginx:1.25
        ports: [{{containerPort: 80}}]
"
    )
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 80}}]
"
    )
}

fn config_map(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n\
         data: {{key: value}}\n"
    )
}

#[test]
fn apply_from_files_directories_and_stdin() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let dir = server.dir().join("manifests");
    std::fs::create_dir_all(dir.join("nested")).expect("mkdir");

    // One file with two documents.
    let web = write(
        server.dir(),
        "web.yaml",
        &format!("{}---\n{}", deployment("web", 1), service("web")),
    );
    let out = mast_ok(&server, &["apply", "-f", &web]);
    assert_eq!(
        out,
        "deployment.apps/web serverside-applied\nservice/web serverside-applied\n"
    );
    let stored = object(&server, "deployment", "web").expect("applied");
    assert_eq!(stored["spec"]["replicas"], 1);
    // -o json leaves managedFields out, as kubectl does; the fields are mast's.
    assert!(
        stored["metadata"].get("managedFields").is_none(),
        "{stored}"
    );
    let full = mast_ok(
        &server,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    );
    let full: Value = serde_json::from_str(&full).expect("JSON");
    assert_eq!(
        full["metadata"]["managedFields"][0]["manager"], "mast",
        "{full}"
    );

    // Re-applying the same file changes nothing (the controllers do write the status).
    let generation = stored["metadata"]["generation"].clone();
    assert_eq!(mast_ok(&server, &["apply", "-f", &web]), out);
    let again = object(&server, "deployment", "web").expect("still there");
    assert_eq!(again["metadata"]["generation"], generation);
    let map = write(server.dir(), "map.yaml", &config_map("same", "a: b"));
    mast_ok(&server, &["apply", "-f", &map]);
    let version =
        object(&server, "cm", "same").expect("applied")["metadata"]["resourceVersion"].clone();
    assert_eq!(
        mast_ok(&server, &["apply", "-f", &map]),
        "configmap/same serverside-applied\n"
    );
    let same = object(&server, "cm", "same").expect("still there");
    assert_eq!(same["metadata"]["resourceVersion"], version);

    // A directory: its manifests in name order, other files ignored, -R for nested.
    write(&dir, "b.yaml", &config_map("dir-b", "group: dir"));
    write(
        &dir,
        "a.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dir-a"}}"#,
    );
    write(&dir, "notes.txt", "not a manifest");
    write(
        &dir.join("nested"),
        "c.yml",
        &config_map("dir-c", "group: dir"),
    );
    let dir_arg = dir.display().to_string();
    assert_eq!(
        mast_ok(&server, &["apply", "-f", &dir_arg]),
        "configmap/dir-a serverside-applied\nconfigmap/dir-b serverside-applied\n"
    );
    assert!(object(&server, "cm", "dir-c").is_none());
    assert_eq!(
        mast_ok(&server, &["apply", "-R", "-f", &dir_arg]),
        "configmap/dir-a serverside-applied\nconfigmap/dir-b serverside-applied\n\
         configmap/dir-c serverside-applied\n"
    );

    // Stdin: a JSON List.
    let list = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-1"}},
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-2","namespace":"kube-system"}}]}"#;
    let result = mast_stdin(&server, &["apply", "-f", "-"], list);
    assert!(result.success, "{result:?}");
    assert_eq!(
        result.stdout,
        "configmap/in-1 serverside-applied\nconfigmap/in-2 serverside-applied\n"
    );
    let in_2 = mast_ok(
        &server,
        &["get", "cm", "in-2", "-n", "kube-system", "-o", "name"],
    );
    assert_eq!(in_2, "configmap/in-2\n");

    // --dry-run=server stores nothing.
    let dry = mast_stdin(
        &server,
        &["apply", "--dry-run=server", "-f", "-"],
        &config_map("dry", ""),
    );
    assert_eq!(
        dry.stdout,
        "configmap/dry serverside-applied (server dry run)\n"
    );
    assert!(object(&server, "cm", "dry").is_none());

    // Another manager changing a field mast owns: a conflict, unless forced.
    let changed = write(server.dir(), "web-3.yaml", &deployment("web", 3));
    let conflict = mast(
        &server,
        &["apply", "--field-manager", "other", "-f", &changed],
    );
    assert!(!conflict.success, "{conflict:?}");
    assert_eq!(
        conflict.error_line(),
        "error: Apply failed with 1 conflict: conflict with \"mast\": .spec.replicas"
    );
    assert_eq!(
        object(&server, "deploy", "web").expect("there")["spec"]["replicas"],
        1
    );
    let forced = mast_ok(
        &server,
        &[
            "apply",
            "--field-manager",
            "other",
            "--force-conflicts",
            "-f",
            &changed,
        ],
    );
    assert_eq!(forced, "deployment.apps/web serverside-applied\n");
    assert_eq!(
        object(&server, "deploy", "web").expect("there")["spec"]["replicas"],
        3
    );

    // A failing object is reported on one line; the others are still applied.
    let mixed = format!(
        "{}---\napiVersion: v1\nkind: Foo\nmetadata: {{name: x}}\n---\n{}",
        config_map("Bad_Name", ""),
        config_map("after-bad", "")
    );
    let result = mast_stdin(&server, &["apply", "-f", "-"], &mixed);
    assert!(!result.success);
    assert_eq!(result.stdout, "configmap/after-bad serverside-applied\n");
    let errors: Vec<&str> = result.stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{result:?}");
    assert!(
        errors[0].starts_with("Error from server (Invalid): ConfigMap \"Bad_Name\" is invalid"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        "error: resource mapping not found for name: \"x\" namespace: \"\" from \"STDIN\": \
         no matches for kind \"Foo\" in version \"v1\""
    );
}

/// Runs the same command through mast and kubectl until their outputs agree (ages may
/// tick over between the two runs), and fails with both if they never do.
fn same_as_kubectl(server: &Server, args: &[&str]) {
    let mut last = None;
    for _ in 0..3 {
        let ours = mast(server, args);
        let theirs = run(server, "kubectl", args, None);
        if ours == theirs {
            assert!(
                !ours.stdout.is_empty() || !ours.stderr.is_empty(),
                "{args:?} printed nothing"
            );
            return;
        }
        last = Some((ours, theirs));
    }
    let (ours, theirs) = last.expect("ran at least once");
    panic!(
        "mast and kubectl differ on {args:?}\n--- mast ({}) ---\n{}{}--- kubectl ({}) ---\n{}{}",
        ours.success, ours.stdout, ours.stderr, theirs.success, theirs.stdout, theirs.stderr
    );
}

/// A hollow kubelet (`--runtime fake`) for `server`, killed on drop.
struct Kubelet(Child);

impl Kubelet {
    fn start(server: &Server, name: &str) -> Kubelet {
        let dir = server.dir().join(format!("kubelet-{name}"));
        std::fs::create_dir_all(&dir).expect("kubelet dir");
        let log = File::create(dir.join("kubelet.log")).expect("kubelet log");
        let child = Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(server.kubeconfig_path())
            .args([
                "--runtime",
                "fake",
                "--hollow-nodes",
                "1",
                "--node-name",
                name,
            ])
            .args(["--port", "0", "--exit-with-parent"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn mast kubelet");
        Kubelet(child)
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn get_prints_what_kubectl_prints() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let _kubelet = Kubelet::start(&server, &unique_name("node"));
    let manifests = format!("{}---\n{}", deployment("web", 2), service("web"));
    let web = write(server.dir(), "web.yaml", &manifests);
    mast_ok(&server, &["apply", "-f", &web]);
    mast_ok(
        &server,
        &[
            "apply",
            "-f",
            &write(
                server.dir(),
                "ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: empty}\n",
            ),
        ],
    );
    eventually(&server, "two available replicas with pod IPs", || {
        let Some(d) = object(&server, "deployment", "web") else {
            return false;
        };
        let pods = mast_ok(&server, &["get", "pods", "-l", "app=web", "-o", "json"]);
        let pods: Value = serde_json::from_str(&pods).expect("a List");
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        d["status"]["availableReplicas"] == 2
            && d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && items.len() == 2
            && items
                .iter()
                .all(|p| p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string())
    });

    for args in [
        &["get", "deployments"][..],
        &["get", "pods", "-o", "wide"],
        &["get", "svc", "-A"],
        &["get", "deploy,rs"],
        &["get", "pods", "-l", "app=web"],
        &["get", "deploy,svc", "-o", "name"],
        &["get", "deploy/web", "svc/web"],
        &["get", "all"],
        &["get", "nodes"],
        &["get", "deploy", "--show-labels"],
        &["get", "deploy", "-L", "tier", "--no-headers"],
        &["get", "deployment", "web", "-o", "json"],
        &["get", "svc", "-o", "json"],
        &["get", "deployment", "web", "-o", "yaml"],
        &["get", "pods", "-o", "yaml"],
        &["get", "-f", &web],
        &["get", "pods", "-n", "empty"],
        &["get", "pods", "-n", "empty", "-o", "json"],
        &["get", "nodes", "-l", "no=such"],
        &["get", "deploy", "web", "nope"],
        &["get", "foo"],
    ] {
        same_as_kubectl(&server, args);
    }

    // -o yaml parses back to the object -o json shows.
    let yaml = mast_ok(&server, &["get", "deployment", "web", "-o", "yaml"]);
    let ours: Value = serde_yaml::from_str(&yaml).expect("get -o yaml prints YAML");
    assert_eq!(Some(ours), object(&server, "deployment", "web"));
    let list: Value = serde_yaml::from_str(&mast_ok(&server, &["get", "deploy,svc", "-o", "yaml"]))
        .expect("a YAML List");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
}

/// Lines a child prints, read on a thread so that waits can have deadlines.
struct Lines {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Lines {
    fn spawn(mut command: Command) -> Lines {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the watcher");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { child, lines }
    }

    /// The next line, within the deadline.
    fn next(&self, server: &Server, what: &str) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| server.fail(&format!("no line for {what} in time")))
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn columns(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn get_watch_prints_a_row_per_change() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    mast_ok(
        &server,
        &[
            "apply",
            "-f",
            &write(
                server.dir(),
                "a.yaml",
                &config_map("watched-a", "watch: me"),
            ),
        ],
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_mast"));
    command
        .args(["get", "configmaps", "-w", "-l", "watch=me", "--kubeconfig"])
        .arg(server.kubeconfig_path());
    let watch = Lines::spawn(command);
    assert_eq!(
        columns(&watch.next(&server, "the header")),
        ["NAME", "DATA", "AGE"]
    );
    assert_eq!(
        columns(&watch.next(&server, "the first row"))[..2],
        ["watched-a", "1"]
    );

    // A change made after the watch started shows up as a row, aligned with the table.
    let b = config_map("watched-b", "watch: me");
    mast_ok(
        &server,
        &["apply", "-f", &write(server.dir(), "b.yaml", &b)],
    );
    let row = watch.next(&server, "the added object");
    assert_eq!(columns(&row)[..2], ["watched-b", "1"]);
    assert!(row.starts_with("watched-b   1      "), "{row:?}");
    // Objects outside the selector are not shown; a deletion is a row too.
    mast_ok(
        &server,
        &[
            "apply",
            "-f",
            &write(server.dir(), "c.yaml", &config_map("other", "watch: not")),
        ],
    );
    mast_ok(&server, &["delete", "configmap", "watched-a"]);
    assert_eq!(
        columns(&watch.next(&server, "the deletion"))[..2],
        ["watched-a", "1"]
    );

    // -o name of one object: its changes only, not the state printed first again.
    let mut command = Command::new(env!("CARGO_BIN_EXE_mast"));
    command
        .args([
            "get",
            "configmap/watched-b",
            "-w",
            "-o",
            "name",
            "--kubeconfig",
        ])
        .arg(server.kubeconfig_path());
    let named = Lines::spawn(command);
    assert_eq!(
        named.next(&server, "the current object"),
        "configmap/watched-b"
    );
    let updated = config_map("watched-b", "watch: me").replace("key: value", "key: changed");
    mast_ok(
        &server,
        &["apply", "-f", &write(server.dir(), "b2.yaml", &updated)],
    );
    assert_eq!(named.next(&server, "the update"), "configmap/watched-b");
    assert!(
        named
            .lines
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "one line per change"
    );
}

#[test]
fn scale_and_delete_then_bad_input() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let web = write(server.dir(), "web.yaml", &deployment("web", 1));
    mast_ok(&server, &["apply", "-f", &web]);
    let replicas = |name: &str| {
        object(&server, "deployment", name).expect("there")["spec"]["replicas"].clone()
    };

    // Both spellings, through the scale subresource.
    assert_eq!(
        mast_ok(&server, &["scale", "deployment/web", "--replicas=3"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(replicas("web"), 3);
    assert_eq!(
        mast_ok(&server, &["scale", "deploy", "web", "--replicas", "2"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(replicas("web"), 2);
    let wrong = mast(
        &server,
        &[
            "scale",
            "deploy/web",
            "--replicas=5",
            "--current-replicas=4",
        ],
    );
    assert!(!wrong.success);
    assert_eq!(
        wrong.error_line(),
        "error: Expected replicas to be 4, was 2"
    );
    assert_eq!(replicas("web"), 2);
    mast_ok(
        &server,
        &[
            "scale",
            "deploy/web",
            "--replicas=4",
            "--current-replicas=2",
        ],
    );
    assert_eq!(replicas("web"), 4);
    assert_eq!(
        mast_ok(&server, &["scale", "-f", &web, "--replicas=0"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(replicas("web"), 0);

    // Delete by name: gone when the command returns (it waits).
    assert_eq!(
        mast_ok(&server, &["delete", "deployment", "web"]),
        "deployment.apps \"web\" deleted\n"
    );
    assert!(object(&server, "deployment", "web").is_none());

    // By label: exactly the matching objects.
    let maps = format!(
        "{}---\n{}---\n{}",
        config_map("l-1", "group: doomed"),
        config_map("l-2", "group: doomed"),
        config_map("l-3", "group: kept")
    );
    mast_ok(
        &server,
        &["apply", "-f", &write(server.dir(), "maps.yaml", &maps)],
    );
    assert_eq!(
        mast_ok(&server, &["delete", "cm", "-l", "group=doomed"]),
        "configmap \"l-1\" deleted\nconfigmap \"l-2\" deleted\n"
    );
    assert_eq!(
        mast_ok(&server, &["get", "cm", "-l", "group", "-o", "name"]),
        "configmap/l-3\n"
    );
    assert_eq!(
        mast_ok(&server, &["delete", "cm", "-l", "group=doomed"]),
        "No resources found\n"
    );

    // By file.
    let file = write(
        server.dir(),
        "two.yaml",
        &format!("{}---\n{}", config_map("f-1", ""), service("f-svc")),
    );
    mast_ok(&server, &["apply", "-f", &file]);
    assert_eq!(
        mast_ok(&server, &["delete", "-f", &file]),
        "configmap \"f-1\" deleted\nservice \"f-svc\" deleted\n"
    );
    assert!(object(&server, "cm", "f-1").is_none());
    assert!(object(&server, "svc", "f-svc").is_none());

    // Not found: an error unless ignored.
    let missing = mast(&server, &["delete", "cm", "f-1"]);
    assert!(!missing.success);
    assert_eq!(
        missing.error_line(),
        "Error from server (NotFound): configmaps \"f-1\" not found"
    );
    let ignored = mast(&server, &["delete", "cm", "f-1", "--ignore-not-found"]);
    assert!(ignored.success && ignored.stdout.is_empty(), "{ignored:?}");

    // Bad input: one line, a failure exit, no panic.
    let bad_yaml = write(server.dir(), "bad.yaml", "kind: [unclosed\n");
    let missing_file = server.dir().join("missing.yaml").display().to_string();
    for (args, line) in [
        (
            &["get", "foo"][..],
            "error: the server doesn't have a resource type \"foo\"",
        ),
        (
            &["get", "deploy", "nope"],
            "Error from server (NotFound): deployments.apps \"nope\" not found",
        ),
        (
            &["get", "pods", "-o", "bogus"],
            "error: unable to match a printer suitable for the output format \"bogus\", allowed formats are: json,name,wide,yaml",
        ),
        (
            &["get", "deploy/web", "pods"],
            "error: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'mast get resource/<resource_name>' instead of 'mast get resource resource/<resource_name>'",
        ),
        (
            &["apply", "-f", &missing_file],
            &format!("error: the path \"{missing_file}\" does not exist"),
        ),
        (
            &["scale", "deploy", "web"],
            "error: required flag(s) \"replicas\" not set",
        ),
        (
            &["delete", "cm"],
            "error: resource(s) were provided, but no name was specified",
        ),
        (
            &["delete", "cm", "x", "--cascade=sideways"],
            "error: invalid cascade value (sideways). Must be \"background\", \"foreground\", or \"orphan\".",
        ),
    ] {
        let result = mast(&server, args);
        assert!(!result.success, "{args:?}: {result:?}");
        assert_eq!(result.error_line(), line, "{args:?}");
    }
    let result = mast(&server, &["apply", "-f", &bad_yaml]);
    assert!(!result.success);
    assert!(
        result
            .error_line()
            .starts_with(&format!("error: error parsing {bad_yaml}: ")),
        "{result:?}"
    );
}
