//! Leader fencing at the API server, against a real `mast server` on SQLite and on etcd.
//!
//! A write carrying `x-mast-fence: NAMESPACE/NAME/TRANSITIONS/HOLDER` goes through only
//! while that Lease names that holder and transition count: a deposed leader's writes
//! (create, patch, delete, binding, scale, deletecollection, finalizer updates) get 409
//! and change nothing, a malformed header gets 400, and renews of the Lease by its
//! holder never make the holder's own writes fail.
//!
//! Everything goes through the harness's raw HTTP client, so the header is sent exactly
//! as written here.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Backend, Server, http_exchange, unique_name};

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
const METRIC: &str = "mast_apiserver_fenced_writes_total";
const LEASE_LABEL: &str = "kube-system/kube-scheduler";

/// How long the concurrent part may take before the test gives up on it.
const CONCURRENT_DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn fenced_writes_sqlite() {
    let server = Server::start(Backend::Sqlite);
    fenced_writes(&server);
}

#[test]
fn fenced_writes_etcd() {
    let etcd = common::start_etcd();
    // Declared after `etcd`, so the server stops before its store does.
    let server = Server::start(Backend::Etcd(etcd.endpoints()));
    fenced_writes(&server);
}

#[test]
fn renews_never_fail_the_holders_writes_sqlite() {
    let server = Server::start(Backend::Sqlite);
    renews_never_fail_the_holders_writes(&server);
}

#[test]
fn renews_never_fail_the_holders_writes_etcd() {
    let etcd = common::start_etcd();
    let server = Server::start(Backend::Etcd(etcd.endpoints()));
    renews_never_fail_the_holders_writes(&server);
}

/// One JSON request; the answer's code and body (Null if it is not JSON).
fn send(
    server: &Server,
    method: &str,
    path: &str,
    fence: Option<&str>,
    content_type: &str,
    body: &Value,
) -> (u16, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).expect("encode the body")
    };
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(f) = fence {
        headers.push(("x-mast-fence", f));
    }
    let response = server.http(method, path, &headers, &body);
    let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

fn post(server: &Server, path: &str, fence: Option<&str>, body: Value) -> (u16, Value) {
    send(server, "POST", path, fence, "application/json", &body)
}

fn put(server: &Server, path: &str, fence: Option<&str>, body: Value) -> (u16, Value) {
    send(server, "PUT", path, fence, "application/json", &body)
}

fn patch(server: &Server, path: &str, fence: Option<&str>, body: Value) -> (u16, Value) {
    send(
        server,
        "PATCH",
        path,
        fence,
        "application/merge-patch+json",
        &body,
    )
}

fn delete(server: &Server, path: &str, fence: Option<&str>) -> (u16, Value) {
    send(
        server,
        "DELETE",
        path,
        fence,
        "application/json",
        &Value::Null,
    )
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    send(server, "GET", path, None, "application/json", &Value::Null)
}

/// Asserts the code of an answer, showing the body when it differs.
#[track_caller]
fn expect(what: &str, code: u16, answer: &(u16, Value)) {
    assert_eq!(answer.0, code, "{what}: answered {} {}", answer.0, answer.1);
}

/// The fenced-writes counter for the scheduler's Lease with this result (0 if absent).
fn fenced_metric(server: &Server, result: &str) -> f64 {
    let prefix = format!("{METRIC}{{lease=\"{LEASE_LABEL}\",result=\"{result}\"}} ");
    server
        .metrics()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|v| v.trim().parse().expect("a numeric sample"))
        .unwrap_or(0.0)
}

fn set_lease(server: &Server, holder: &str, transitions: i32) {
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
        "spec": {
            "holderIdentity": holder,
            "leaseTransitions": transitions,
            "leaseDurationSeconds": 2,
        },
    });
    let answer = if get(server, LEASE).0 == 404 {
        post(server, LEASES, None, body)
    } else {
        put(server, LEASE, None, body)
    };
    assert!(
        matches!(answer.0, 200 | 201),
        "writing the lease answered {} {}",
        answer.0,
        answer.1
    );
}

fn configmap(name: &str, labels: Value, finalizers: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels, "finalizers": finalizers},
        "data": {"v": "1"},
    })
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    })
}

fn binding(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    })
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    })
}

fn fenced_writes(server: &Server) {
    let ns = unique_name("fence");
    expect(
        "create the namespace",
        201,
        &post(
            server,
            "/api/v1/namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        ),
    );
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let cm = |name: &str| format!("{cms}/{name}");
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let deployments = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    set_lease(server, "A", 1);
    let a1 = Some("kube-system/kube-scheduler/1/A");

    // The holder's writes, every kind of them, go through.
    expect(
        "fenced create",
        201,
        &post(server, &cms, a1, configmap("kept", json!({}), json!([]))),
    );
    expect(
        "fenced patch",
        200,
        &patch(server, &cm("kept"), a1, json!({"data": {"v": "2"}})),
    );
    expect(
        "fenced create",
        201,
        &post(server, &cms, a1, configmap("doomed", json!({}), json!([]))),
    );
    expect("fenced delete", 200, &delete(server, &cm("doomed"), a1));
    expect("the deleted object", 404, &get(server, &cm("doomed")));
    expect(
        "fenced pod create",
        201,
        &post(server, &pods, a1, pod("p1")),
    );
    expect(
        "fenced binding",
        201,
        &post(server, &format!("{pods}/p1/binding"), a1, binding("p1")),
    );
    let (_, bound) = get(server, &format!("{pods}/p1"));
    assert_eq!(bound["spec"]["nodeName"], "node-1", "{bound}");
    // A delete held by a finalizer, then the update releasing it, which deletes.
    expect(
        "fenced create",
        201,
        &post(
            server,
            &cms,
            a1,
            configmap("held", json!({}), json!(["example.com/hold"])),
        ),
    );
    expect(
        "fenced delete of a held object",
        200,
        &delete(server, &cm("held"), a1),
    );
    expect(
        "fenced release of the finalizer",
        200,
        &patch(
            server,
            &cm("held"),
            a1,
            json!({"metadata": {"finalizers": null}}),
        ),
    );
    expect("the released object", 404, &get(server, &cm("held")));
    expect(
        "fenced deployment create",
        201,
        &post(server, &deployments, a1, deployment("web")),
    );
    expect(
        "fenced scale",
        200,
        &patch(
            server,
            &format!("{deployments}/web/scale"),
            a1,
            json!({"spec": {"replicas": 3}}),
        ),
    );
    for name in ["batch-1", "batch-2"] {
        expect(
            "fenced create",
            201,
            &post(
                server,
                &cms,
                a1,
                configmap(name, json!({"batch": "x"}), json!([])),
            ),
        );
    }
    expect(
        "fenced deletecollection",
        200,
        &delete(server, &format!("{cms}?labelSelector=batch%3Dx"), a1),
    );
    expect("a collected object", 404, &get(server, &cm("batch-1")));
    let accepted = fenced_metric(server, "accepted");
    // kept (create, patch), doomed (create, delete), p1 (create, binding), held (create,
    // mark, update, delete), web (create, scale), batch (2 creates, 2 deletes).
    assert_eq!(accepted, 16.0, "accepted fenced writes");
    assert_eq!(fenced_metric(server, "rejected"), 0.0);

    // Unfenced writes stay unfenced, and a read ignores the header.
    expect(
        "an unfenced pod create",
        201,
        &post(server, &pods, None, pod("p2")),
    );
    expect(
        "an unfenced create",
        201,
        &post(
            server,
            &cms,
            None,
            configmap("gone-later", json!({"batch": "y"}), json!([])),
        ),
    );
    let reads = send(
        server,
        "GET",
        &cm("kept"),
        Some("not a fence"),
        "application/json",
        &Value::Null,
    );
    expect("a read with a malformed fence", 200, &reads);

    // The Lease changes hands: A's writes are refused and change nothing.
    set_lease(server, "B", 2);
    let before_kept = get(server, &cm("kept")).1;
    let message = "write fenced: lease kube-system/kube-scheduler is held by \"B\" (transitions 2), not by \"A\" (transitions 1)";
    let refused = [
        (
            "create",
            post(server, &cms, a1, configmap("late", json!({}), json!([]))),
        ),
        (
            "patch",
            patch(server, &cm("kept"), a1, json!({"data": {"v": "3"}})),
        ),
        ("delete", delete(server, &cm("kept"), a1)),
        (
            "binding",
            post(server, &format!("{pods}/p2/binding"), a1, binding("p2")),
        ),
        (
            "scale",
            patch(
                server,
                &format!("{deployments}/web/scale"),
                a1,
                json!({"spec": {"replicas": 5}}),
            ),
        ),
        (
            "deletecollection",
            delete(server, &format!("{cms}?labelSelector=batch%3Dy"), a1),
        ),
    ];
    for (verb, answer) in &refused {
        expect(&format!("deposed {verb}"), 409, answer);
        assert_eq!(answer.1["reason"], "Conflict", "{verb}: {}", answer.1);
        assert_eq!(answer.1["message"], message, "{verb}: {}", answer.1);
    }
    expect("the refused create", 404, &get(server, &cm("late")));
    assert_eq!(
        get(server, &cm("kept")).1,
        before_kept,
        "the refused patch or delete wrote"
    );
    let (_, p2) = get(server, &format!("{pods}/p2"));
    assert!(
        p2["spec"].get("nodeName").is_none(),
        "the refused binding wrote: {p2}"
    );
    let (_, web) = get(server, &format!("{deployments}/web"));
    assert_eq!(web["spec"]["replicas"], 3, "the refused scale wrote");
    expect(
        "the refused deletecollection",
        200,
        &get(server, &cm("gone-later")),
    );
    assert_eq!(fenced_metric(server, "rejected"), refused.len() as f64);
    assert_eq!(fenced_metric(server, "accepted"), accepted);

    // The same transition count with another holder, and the right holder with an old
    // transition count, are refused too; the new holder's fence passes.
    let answer = patch(
        server,
        &cm("kept"),
        Some("kube-system/kube-scheduler/2/A"),
        json!({"data": {"v": "4"}}),
    );
    expect("a fence with the wrong holder", 409, &answer);
    let answer = patch(
        server,
        &cm("kept"),
        Some("kube-system/kube-scheduler/1/B"),
        json!({"data": {"v": "4"}}),
    );
    expect("a fence from an old term", 409, &answer);
    let answer = patch(
        server,
        &cm("kept"),
        Some("kube-system/kube-scheduler/2/B"),
        json!({"data": {"v": "4"}}),
    );
    expect("the new holder's patch", 200, &answer);
    assert_eq!(answer.1["data"]["v"], "4");

    // A malformed fence is the client's error; a missing Lease fences everything.
    for bad in [
        "kube-system/kube-scheduler/x/A",
        "kube-system/kube-scheduler/1",
        "a b/c/1/d",
    ] {
        let answer = post(
            server,
            &cms,
            Some(bad),
            configmap("bad", json!({}), json!([])),
        );
        expect(&format!("a malformed fence {bad:?}"), 400, &answer);
        assert_eq!(answer.1["reason"], "BadRequest", "{}", answer.1);
        assert!(
            answer.1["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("invalid x-mast-fence header")),
            "{}",
            answer.1
        );
    }
    expect("the malformed create", 404, &get(server, &cm("bad")));
    let answer = post(
        server,
        &cms,
        Some("kube-system/no-such-lease/1/A"),
        configmap("orphan", json!({}), json!([])),
    );
    expect("a fence naming a missing lease", 409, &answer);
    assert_eq!(
        answer.1["message"],
        "write fenced: lease kube-system/no-such-lease does not exist"
    );
    expect(
        "the create under a missing lease",
        404,
        &get(server, &cm("orphan")),
    );
    assert!(
        server.log().contains("fenced write rejected"),
        "rejections are logged"
    );
}

/// The holder renews its Lease in a tight loop while its fenced writes run: every one of
/// them succeeds, because a write whose guard lost to a renew re-reads the Lease and
/// goes again.
fn renews_never_fail_the_holders_writes(server: &Server) {
    let ns = unique_name("renew");
    expect(
        "create the namespace",
        201,
        &post(
            server,
            "/api/v1/namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        ),
    );
    set_lease(server, "C", 3);
    let authority = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let renews = Arc::new(AtomicUsize::new(0));
    let renewer = {
        let stop = stop.clone();
        let renews = renews.clone();
        let authority = authority.clone();
        thread::spawn(move || -> Result<(), String> {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
                    "spec": {
                        "holderIdentity": "C",
                        "leaseTransitions": 3,
                        "leaseDurationSeconds": 2,
                        "renewTime": format!("2030-01-01T00:00:{:02}.{:06}Z", i % 60, i % 1_000_000),
                    },
                });
                let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                let answer = http_exchange(
                    &authority,
                    "PUT",
                    LEASE,
                    &[("Content-Type", "application/json")],
                    &body,
                )
                .map_err(|e| format!("renew {i}: {e}"))?;
                if answer.status != 200 {
                    return Err(format!(
                        "renew {i} answered {}: {}",
                        answer.status,
                        answer.text()
                    ));
                }
                renews.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    // Let the renewer get going so the writes overlap renews from the start.
    let started = Instant::now();
    while renews.load(Ordering::Relaxed) < 5 {
        assert!(
            started.elapsed() < CONCURRENT_DEADLINE,
            "the renewer never renewed"
        );
        thread::yield_now();
    }
    let before = renews.load(Ordering::Relaxed);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let authority = authority.clone();
            let ns = ns.clone();
            thread::spawn(move || -> Result<usize, String> {
                let fence = "kube-system/kube-scheduler/3/C";
                let cms = format!("/api/v1/namespaces/{ns}/configmaps");
                let mut done = 0;
                for i in 0..40 {
                    let name = format!("w{w}-{i}");
                    let create = serde_json::to_vec(&configmap(&name, json!({}), json!([])))
                        .map_err(|e| e.to_string())?;
                    let steps: [(&str, String, &str, Vec<u8>, u16); 3] = [
                        ("POST", cms.clone(), "application/json", create, 201),
                        (
                            "PATCH",
                            format!("{cms}/{name}"),
                            "application/merge-patch+json",
                            br#"{"data":{"v":"2"}}"#.to_vec(),
                            200,
                        ),
                        (
                            "DELETE",
                            format!("{cms}/{name}"),
                            "application/json",
                            Vec::new(),
                            200,
                        ),
                    ];
                    for (method, path, content_type, body, code) in steps {
                        let answer = http_exchange(
                            &authority,
                            method,
                            &path,
                            &[("Content-Type", content_type), ("x-mast-fence", fence)],
                            &body,
                        )
                        .map_err(|e| format!("{method} {path}: {e}"))?;
                        if answer.status != code {
                            return Err(format!(
                                "{method} {path} under renews answered {}: {}",
                                answer.status,
                                answer.text()
                            ));
                        }
                        done += 1;
                    }
                }
                Ok(done)
            })
        })
        .collect();
    let mut written = 0;
    let mut failures = Vec::new();
    for writer in writers {
        match writer.join() {
            Ok(Ok(n)) => written += n,
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("a writer panicked".to_string()),
        }
    }
    let during = renews.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let renewer = renewer.join();
    assert!(
        failures.is_empty(),
        "fenced writes failed under renews: {failures:?}"
    );
    match renewer {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("the renewer failed: {e}"),
        Err(_) => panic!("the renewer panicked"),
    }
    assert_eq!(written, 2 * 40 * 3);
    // The writes really raced renews: the Lease moved many times while they ran.
    assert!(during >= 20, "only {during} renews overlapped the writes");
    assert!(fenced_metric(server, "accepted") >= written as f64);
    assert_eq!(fenced_metric(server, "rejected"), 0.0);
}
