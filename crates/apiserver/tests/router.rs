//! The router in process, over a SQLite store in a temp dir: the protocol details that
//! the client-library suites (crates/cli/tests) do not reach — limits, media types,
//! discovery negotiation, namespaces terminating, graceful pod deletion.

use apiserver::{AppState, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use store::{AnyStore, DatastoreConfig};
use tower::ServiceExt;

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

/// Sends a request; returns the status, the content type and the body.
async fn send(
    f: &Fixture,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> (StatusCode, String, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = f
        .app
        .clone()
        .oneshot(request.body(body.into()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    (status, content_type, body)
}

/// Sends `body` as JSON (no body for `Value::Null`); parses the answer.
async fn send_json(f: &Fixture, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, _, bytes) = send(
        f,
        method,
        uri,
        &[("content-type", "application/json")],
        text,
    )
    .await;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_statuses() {
    let f = fixture().await;
    let big = vec![b' '; 3 * 1024 * 1024 + 10];
    let (status, _, body) = send(
        &f,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        &[("content-type", "application/json")],
        big,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_status(
        &serde_json::from_slice(&body).expect("status"),
        413,
        "RequestEntityTooLarge",
    );

    for (content_type, text) in [
        ("application/json", "{\"metadata\": "),
        ("application/yaml", "metadata: [unclosed"),
        ("application/json", "[1, 2]"),
    ] {
        let (status, _, body) = send(
            &f,
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            &[("content-type", content_type)],
            text,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_status(
            &serde_json::from_slice(&body).expect("status"),
            400,
            "BadRequest",
        );
    }

    // A field of the wrong type is the client's error too, not a 500.
    let (status, body) = send_json(
        &f,
        Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        json!({"metadata": {"name": "d"}, "spec": {"replicas": "three"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn yaml_in_and_out() {
    let f = fixture().await;
    let (status, content_type, body) = send(
        &f,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        &[
            ("content-type", "application/yaml"),
            ("accept", "application/yaml"),
        ],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  greeting: hello\n",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(content_type, "application/yaml");
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.contains("greeting: hello"), "{text}");
    assert!(text.contains("resourceVersion:"), "{text}");
}

#[tokio::test]
async fn discovery_answers_in_the_form_asked_for() {
    let f = fixture().await;
    let kubectl_accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let (status, content_type, body) = send(
        &f,
        Method::GET,
        "/apis",
        &[("accept", kubectl_accept)],
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.contains("as=APIGroupDiscoveryList"),
        "{content_type}"
    );
    let list: Value = serde_json::from_slice(&body).expect("json");
    let groups: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|g| g["metadata"]["name"].as_str())
        .collect();
    assert_eq!(groups, ["apps", "coordination.k8s.io", "discovery.k8s.io"]);

    let (_, content_type, body) = send(&f, Method::GET, "/apis", &[], Body::empty()).await;
    assert_eq!(content_type, "application/json");
    let plain: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(plain["kind"], "APIGroupList");

    let (_, _, body) = send(&f, Method::GET, "/api/v1", &[], Body::empty()).await;
    let resources: Value = serde_json::from_slice(&body).expect("json");
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for expected in [
        "pods",
        "pods/status",
        "pods/binding",
        "namespaces/finalize",
        "configmaps",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let f = fixture().await;
    let (status, body) = send_json(&f, Method::GET, "/api/v1/widgets", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_status(&body, 404, "NotFound");
    let (status, body) = send_json(
        &f,
        Method::PUT,
        "/api/v1/namespaces/default/configmaps",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_status(&body, 405, "MethodNotAllowed");
    let (status, _) = send_json(
        &f,
        Method::GET,
        "/api/v1/namespaces/default/configmaps/x/scale",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_namespace_terminates_and_refuses_new_content() {
    let f = fixture().await;
    let (status, _) = send_json(
        &f,
        Method::POST,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "doomed"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, ns) =
        send_json(&f, Method::DELETE, "/api/v1/namespaces/doomed", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ns["status"]["phase"], "Terminating", "{ns}");
    assert!(ns["metadata"]["deletionTimestamp"].is_string(), "{ns}");
    let (status, body) = send_json(
        &f,
        Method::POST,
        "/api/v1/namespaces/doomed/configmaps",
        json!({"metadata": {"name": "late"}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_status(&body, 403, "Forbidden");

    // The namespace controller's last step: clearing spec.finalizers removes it.
    let mut finalized = ns.clone();
    finalized["spec"]["finalizers"] = json!([]);
    let (status, _) = send_json(
        &f,
        Method::PUT,
        "/api/v1/namespaces/doomed/finalize",
        finalized,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send_json(&f, Method::GET, "/api/v1/namespaces/doomed", Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bound_pod_is_deleted_gracefully() {
    let f = fixture().await;
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    let (status, created) =
        send_json(&f, Method::POST, "/api/v1/namespaces/default/pods", pod).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"]["phase"], "Pending");
    let (status, body) = send_json(
        &f,
        Method::POST,
        "/api/v1/namespaces/default/pods/p/binding",
        json!({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, pending) = send_json(
        &f,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/p",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        pending["metadata"]["deletionGracePeriodSeconds"], 30,
        "{pending}"
    );
    let (status, still) = send_json(
        &f,
        Method::GET,
        "/api/v1/namespaces/default/pods/p",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(still["metadata"]["deletionTimestamp"].is_string());

    // The kubelet reports status while the pod terminates: the pod stays.
    let mut terminating = still.clone();
    terminating["status"]["phase"] = json!("Running");
    let (status, body) = send_json(
        &f,
        Method::PUT,
        "/api/v1/namespaces/default/pods/p/status",
        terminating,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = send_json(
        &f,
        Method::GET,
        "/api/v1/namespaces/default/pods/p",
        Value::Null,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a status update must not end the grace period"
    );

    // The kubelet's final delete, with grace 0, removes it.
    let (status, _) = send_json(
        &f,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/p",
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send_json(
        &f,
        Method::GET,
        "/api/v1/namespaces/default/pods/p",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn generation_follows_the_spec_only() {
    let f = fixture().await;
    let deployment = json!({
        "metadata": {"name": "d", "labels": {"a": "1"}},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    });
    let base = "/apis/apps/v1/namespaces/default/deployments";
    let (status, created) = send_json(&f, Method::POST, base, deployment).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);

    let path = format!("{base}/d");
    let relabeled = merge(&f, &path, json!({"metadata": {"labels": {"b": "2"}}})).await;
    assert_eq!(
        relabeled["metadata"]["generation"], 1,
        "labels are not spec"
    );
    let scaled = merge(&f, &path, json!({"spec": {"replicas": 4}})).await;
    assert_eq!(scaled["metadata"]["generation"], 2);
    let ignored = merge(&f, &path, json!({"status": {"replicas": 9}})).await;
    assert_eq!(ignored["metadata"]["generation"], 2);
    assert!(
        ignored["status"].get("replicas").is_none(),
        "status is written through /status only"
    );
}

async fn merge(f: &Fixture, path: &str, patch: Value) -> Value {
    let (status, _, body) = send(
        f,
        Method::PATCH,
        path,
        &[("content-type", "application/merge-patch+json")],
        patch.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_without_a_resource_version_all_succeed() {
    let f = std::sync::Arc::new(fixture().await);
    let (status, _) = send_json(
        &f,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "shared"}, "data": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let patch = json!({"data": {format!("k{i}"): "v"}}).to_string();
            let (status, _, body) = send(
                &f,
                Method::PATCH,
                "/api/v1/namespaces/default/configmaps/shared",
                &[("content-type", "application/merge-patch+json")],
                patch,
            )
            .await;
            (status, String::from_utf8_lossy(&body).into_owned())
        }));
    }
    for task in tasks {
        let (status, body) = task.await.expect("patch task");
        assert_eq!(
            status,
            StatusCode::OK,
            "a patch without a resourceVersion retries races: {body}"
        );
    }
    let (_, shared) = send_json(
        &f,
        Method::GET,
        "/api/v1/namespaces/default/configmaps/shared",
        Value::Null,
    )
    .await;
    assert_eq!(
        shared["data"].as_object().map(|d| d.len()),
        Some(24),
        "{shared}"
    );

    // A patch that names a stale resourceVersion is the client's conflict.
    let stale = json!({"metadata": {"resourceVersion": "1"}, "data": {"late": "v"}}).to_string();
    let (status, _, _) = send(
        &f,
        Method::PATCH,
        "/api/v1/namespaces/default/configmaps/shared",
        &[("content-type", "application/merge-patch+json")],
        stale,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
