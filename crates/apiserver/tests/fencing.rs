//! Leader fencing through the router in process, over SQLite: the renew race at full
//! speed (no sockets in between), and a deposed leader's writes on an object held by a
//! finalizer. crates/cli/tests/fencing.rs covers every verb against a real server on
//! SQLite and etcd.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use apiserver::{AppState, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use store::{AnyStore, DatastoreConfig};
use tower::ServiceExt;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
const CMS: &str = "/api/v1/namespaces/default/configmaps";

struct Fixture {
    app: Router,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DatastoreConfig::from_endpoint(dir.path(), None).expect("config");
    let store = AnyStore::open(config).await.expect("open store");
    let state = AppState::new(store, 100);
    apiserver::server::bootstrap(&state)
        .await
        .expect("bootstrap");
    Fixture {
        app: router(state),
        _dir: dir,
    }
}

/// One JSON request (merge patch for PATCH), optionally fenced.
async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    fence: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let content_type = if method == Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type);
    if let Some(f) = fence {
        request = request.header(api::fence::HEADER, f);
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    let response = app
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn lease(holder: &str, transitions: i32, renew: u64) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
        "spec": {
            "holderIdentity": holder,
            "leaseTransitions": transitions,
            "leaseDurationSeconds": 2,
            "renewTime": format!("2030-01-01T00:00:{:02}.{:06}Z", renew % 60, renew % 1_000_000),
        },
    })
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_racing_the_holders_writes_never_fail_them() {
    let f = fixture().await;
    let (code, _) = send(&f.app, Method::POST, LEASES, None, lease("holder-1", 4, 0)).await;
    assert_eq!(code, StatusCode::CREATED);
    let stop = Arc::new(AtomicBool::new(false));
    let renews = Arc::new(AtomicUsize::new(0));
    let renewer = {
        let app = f.app.clone();
        let stop = stop.clone();
        let renews = renews.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (code, body) =
                    send(&app, Method::PUT, LEASE, None, lease("holder-1", 4, i)).await;
                assert_eq!(code, StatusCode::OK, "renew {i}: {body}");
                renews.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let fence = "kube-system/kube-scheduler/4/holder-1";
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let app = f.app.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let name = format!("w{w}-{i}");
                    let path = format!("{CMS}/{name}");
                    let steps = [
                        (
                            Method::POST,
                            CMS.to_string(),
                            configmap(&name),
                            StatusCode::CREATED,
                        ),
                        (
                            Method::PATCH,
                            path.clone(),
                            json!({"data": {"v": "2"}}),
                            StatusCode::OK,
                        ),
                        (Method::DELETE, path, Value::Null, StatusCode::OK),
                    ];
                    for (method, uri, body, expected) in steps {
                        let (code, answer) =
                            send(&app, method.clone(), &uri, Some(fence), body).await;
                        assert_eq!(code, expected, "{method} {uri} under renews: {answer}");
                    }
                }
            })
        })
        .collect();
    let before = renews.load(Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("a fenced writer failed");
    }
    let during = renews.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    renewer.await.expect("the renewer failed");
    assert!(during >= 20, "only {during} renews overlapped the writes");
}

#[tokio::test]
async fn a_deposed_leader_cannot_release_or_delete_a_held_object() {
    let f = fixture().await;
    let (code, _) = send(&f.app, Method::POST, LEASES, None, lease("a", 1, 0)).await;
    assert_eq!(code, StatusCode::CREATED);
    let a = Some("kube-system/kube-scheduler/1/a");
    let mut held = configmap("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let (code, _) = send(&f.app, Method::POST, CMS, a, held).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, marked) = send(
        &f.app,
        Method::DELETE,
        &format!("{CMS}/held"),
        a,
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );

    // Another process takes over; `a` wakes up and tries to finish its work.
    let (code, _) = send(&f.app, Method::PUT, LEASE, None, lease("b", 2, 1)).await;
    assert_eq!(code, StatusCode::OK);
    let release = json!({"metadata": {"finalizers": null}});
    let (code, status) = send(
        &f.app,
        Method::PATCH,
        &format!("{CMS}/held"),
        a,
        release.clone(),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{status}");
    assert_eq!(status["reason"], "Conflict");
    let (code, still) = send(
        &f.app,
        Method::GET,
        &format!("{CMS}/held"),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(still, marked, "the refused release changed the object");

    // The new leader finishes it: the update releasing the last finalizer deletes.
    let b = Some("kube-system/kube-scheduler/2/b");
    let (code, _) = send(&f.app, Method::PATCH, &format!("{CMS}/held"), b, release).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = send(
        &f.app,
        Method::GET,
        &format!("{CMS}/held"),
        None,
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // A lease deleted outright fences every writer.
    let (code, _) = send(&f.app, Method::DELETE, LEASE, None, Value::Null).await;
    assert_eq!(code, StatusCode::OK);
    let (code, status) = send(&f.app, Method::POST, CMS, b, configmap("late")).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(
        status["message"],
        "write fenced: lease kube-system/kube-scheduler does not exist"
    );
}
