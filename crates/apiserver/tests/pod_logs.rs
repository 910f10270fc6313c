//! `pods/NAME/log` through the router in process, proxied to a fake kubelet on a
//! loopback port: options mapped to the kubelet's query, the default container,
//! upstream's errors as Statuses, and a followed log that streams and stops when the
//! client goes away. (mast's real kubelet is driven by crates/cli/tests/kubectl_logs.rs.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use apiserver::{AppState, router};
use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use store::{AnyStore, DatastoreConfig};
use tokio::sync::{Notify, mpsc};
use tower::ServiceExt;

/// How long any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(10);

/// What the fake kubelet shares with the test.
struct Kubelet {
    /// Releases the followed log's second line.
    gate: Notify,
    /// Told when a followed log's stream is dropped (its client went away).
    dropped: mpsc::UnboundedSender<()>,
}

/// Signals `dropped` when the followed stream is dropped.
struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// `/containerLogs/NS/POD/CONTAINER`: the container's name picks the behaviour.
async fn container_logs(
    State(kubelet): State<Arc<Kubelet>>,
    Path((_ns, _pod, container)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    match container.as_str() {
        "waiting" => (
            StatusCode::BAD_REQUEST,
            "container \"waiting\" in pod \"multi\" is waiting to start: ContainerCreating",
        )
            .into_response(),
        "gone" => (StatusCode::NOT_FOUND, "no such container").into_response(),
        "boom" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        // A line, then the body breaks off (the kubelet died mid-log).
        "broken" => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"partial\n")),
                Err(std::io::Error::other("kubelet died")),
            ];
            // The break waits until the line is on the wire.
            let stream = futures::stream::iter(chunks).then(|chunk| async move {
                if chunk.is_err() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                chunk
            });
            Body::from_stream(stream).into_response()
        }
        "follow" => {
            let guard = DropSignal(kubelet.dropped.clone());
            let stream = futures::stream::unfold(
                (0u32, kubelet.clone(), guard),
                |(step, kubelet, guard)| async move {
                    let line = match step {
                        0 => "first\n".to_string(),
                        1 => {
                            kubelet.gate.notified().await;
                            "last\n".to_string()
                        }
                        // Keeps writing, so the server notices when the client is gone.
                        n => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            format!("tick {n}\n")
                        }
                    };
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(line)),
                        (step + 1, kubelet, guard),
                    ))
                },
            );
            (
                [(header::CONTENT_TYPE, "text/plain")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        // Echoes what the API server asked for.
        _ => ([(header::CONTENT_TYPE, "text/plain")], format!("{uri}\n")).into_response(),
    }
}

/// Starts the fake kubelet; returns its address, its state and the drop signals.
async fn fake_kubelet() -> (SocketAddr, Arc<Kubelet>, mpsc::UnboundedReceiver<()>) {
    let (dropped, drops) = mpsc::unbounded_channel();
    let kubelet = Arc::new(Kubelet {
        gate: Notify::new(),
        dropped,
    });
    let app = Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            axum::routing::get(container_logs),
        )
        .with_state(kubelet.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake kubelet");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, kubelet, drops)
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("address").port()
}

struct Fixture {
    app: Router,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
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

    async fn request(&self, method: Method, uri: &str, accept: &str, body: Value) -> Response {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, accept)
            .header(header::CONTENT_TYPE, "application/json")
            .body(if body.is_null() {
                Body::empty()
            } else {
                Body::from(body.to_string())
            })
            .expect("request");
        self.app.clone().oneshot(request).await.expect("response")
    }

    async fn create(&self, uri: &str, body: Value) {
        let response = self
            .request(Method::POST, uri, "application/json", body)
            .await;
        let status = response.status();
        let text = text(response).await;
        assert_eq!(status, StatusCode::CREATED, "POST {uri}: {text}");
    }

    /// A node whose kubelet listens at 127.0.0.1:`port`, as the kubelet reports it.
    async fn node(&self, name: &str, addresses: Value, port: u16) {
        self.create(
            "/api/v1/nodes",
            json!({"metadata": {"name": name}, "status": {
                "addresses": addresses,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            }}),
        )
        .await;
    }

    async fn pod(&self, name: &str, node: &str, spec: Value) {
        let mut spec = spec;
        if !node.is_empty() {
            spec["nodeName"] = json!(node);
        }
        self.create(
            "/api/v1/namespaces/default/pods",
            json!({"metadata": {"name": name}, "spec": spec}),
        )
        .await;
    }

    /// GET pods/NAME/log?QUERY: status, content type, body.
    async fn log(&self, name: &str, query: &str) -> (StatusCode, String, String) {
        self.log_accepting(name, query, "application/json, */*")
            .await
    }

    async fn log_accepting(
        &self,
        name: &str,
        query: &str,
        accept: &str,
    ) -> (StatusCode, String, String) {
        let uri = format!("/api/v1/namespaces/default/pods/{name}/log?{query}");
        let response =
            tokio::time::timeout(WAIT, self.request(Method::GET, &uri, accept, Value::Null))
                .await
                .expect("the log answers in time");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = tokio::time::timeout(WAIT, text(response))
            .await
            .expect("the log ends in time");
        (status, content_type, body)
    }
}

async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn one_container(name: &str) -> Value {
    json!({"containers": [{"name": name, "image": "nginx"}]})
}

/// A Status: its code, reason and message.
fn status_of(body: &str) -> (i64, String, String) {
    let status: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(status["kind"], "Status", "{body}");
    (
        status["code"].as_i64().unwrap_or_default(),
        status["reason"].as_str().unwrap_or_default().to_string(),
        status["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn options_reach_the_kubelet_of_the_pods_node() {
    let (addr, _kubelet, _drops) = fake_kubelet().await;
    let f = Fixture::new().await;
    f.node(
        "n1",
        json!([{"type": "Hostname", "address": "n1.invalid"}, {"type": "InternalIP", "address": "127.0.0.1"}]),
        addr.port(),
    )
    .await;
    f.pod("web", "n1", one_container("app")).await;

    // The only container is the default; nothing set, nothing sent.
    let (status, content_type, body) = f.log("web", "").await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (
            StatusCode::OK,
            "text/plain",
            "/containerLogs/default/web/app\n"
        )
    );

    // Every option, mapped to the kubelet's names (kubectl's booleans are `true`).
    let (status, _, body) = f
        .log(
            "web",
            "container=app&follow=true&previous=true&timestamps=true&tailLines=5&limitBytes=100&sinceSeconds=30",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        "/containerLogs/default/web/app?follow=true&previous=true&timestamps=true&sinceSeconds=30&tailLines=5&limitBytes=100\n"
    );

    // Upstream's query booleans: a bare name is true; "0" and "false" are false.
    let (_, _, body) = f.log("web", "follow&previous=0&timestamps=False").await;
    assert_eq!(body, "/containerLogs/default/web/app?follow=true\n");

    // sinceTime becomes the seconds since then, rounded up.
    let ten_seconds_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs()
        - 10;
    let query = format!("sinceTime={}", rfc3339(ten_seconds_ago).replace(':', "%3A"));
    let (status, _, body) = f.log("web", &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seconds: i64 = body
        .trim()
        .strip_prefix("/containerLogs/default/web/app?sinceSeconds=")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{body}"));
    assert!((10..=13).contains(&seconds), "{body}");

    // The log is text whatever the client accepts.
    let (status, content_type, _) = f.log_accepting("web", "", "text/plain").await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "text/plain")
    );
}

/// Unix seconds as RFC 3339 in UTC, `YYYY-MM-DDTHH:MM:SSZ` (days to civil date, as
/// in Howard Hinnant's algorithm), so the test needs no time crate.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[tokio::test]
async fn containers_options_and_nodes_fail_as_upstream() {
    let (addr, _kubelet, _drops) = fake_kubelet().await;
    let f = Fixture::new().await;
    f.node(
        "n1",
        json!([{"type": "InternalIP", "address": "127.0.0.1"}]),
        addr.port(),
    )
    .await;
    f.pod("web", "n1", one_container("app")).await;
    f.pod(
        "multi",
        "n1",
        json!({
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "containers": [
                {"name": "app", "image": "nginx"},
                {"name": "waiting", "image": "nginx"},
                {"name": "gone", "image": "nginx"},
                {"name": "boom", "image": "nginx"},
                {"name": "broken", "image": "nginx"},
            ],
        }),
    )
    .await;

    let expect = |(status, _, body): (StatusCode, String, String), code: u16, reason: &str| {
        assert_eq!(status.as_u16(), code, "{body}");
        let (c, r, message) = status_of(&body);
        assert_eq!((c, r.as_str()), (i64::from(code), reason), "{body}");
        message
    };

    // Containers: several and none named; an unknown one; an init container is fine.
    assert_eq!(
        expect(f.log("multi", "").await, 400, "BadRequest"),
        "a container name must be specified for pod multi, choose one of: [setup app waiting gone boom broken]"
    );
    assert_eq!(
        expect(f.log("multi", "container=nope").await, 400, "BadRequest"),
        "container nope is not valid for pod multi"
    );
    let (status, _, body) = f.log("multi", "container=setup").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "/containerLogs/default/multi/setup\n")
    );

    // Options, validated before anything else.
    assert_eq!(
        expect(f.log("web", "tailLines=-1").await, 422, "Invalid"),
        "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(
        expect(f.log("web", "limitBytes=0").await, 422, "Invalid"),
        "PodLogOptions \"web\" is invalid: limitBytes: Invalid value: 0: must be greater than 0"
    );
    assert_eq!(
        expect(f.log("web", "sinceSeconds=0").await, 422, "Invalid"),
        "PodLogOptions \"web\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0"
    );
    let message = expect(
        f.log("web", "sinceSeconds=5&sinceTime=2024-01-01T00%3A00%3A00Z")
            .await,
        422,
        "Invalid",
    );
    assert!(
        message.contains("at most one of `sinceTime` or `sinceSeconds` may be specified"),
        "{message}"
    );
    expect(f.log("web", "tailLines=ten").await, 400, "BadRequest");
    expect(f.log("web", "sinceTime=yesterday").await, 400, "BadRequest");

    // The kubelet's refusals, as upstream relays them.
    assert_eq!(
        expect(f.log("multi", "container=waiting").await, 400, "BadRequest"),
        "container \"waiting\" in pod \"multi\" is waiting to start: ContainerCreating"
    );
    assert_eq!(
        expect(f.log("multi", "container=gone").await, 404, "NotFound"),
        "the server could not find the requested resource ( pods/log multi)"
    );
    assert_eq!(
        expect(f.log("multi", "container=boom").await, 500, "InternalError"),
        "Internal error occurred: boom"
    );

    // A kubelet that breaks off mid-log: what arrived, as a complete response.
    let (status, _, body) = f.log("multi", "container=broken").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "partial\n"));

    // A pod not scheduled yet has no log: 204, as upstream.
    f.pod("pending", "", one_container("app")).await;
    let (status, _, body) = f.log("pending", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));

    // No such pod; a node that does not exist; one without an address; one whose
    // kubelet does not listen.
    assert_eq!(
        expect(f.log("ghost", "").await, 404, "NotFound"),
        "pods \"ghost\" not found"
    );
    f.pod("orphan", "missing", one_container("app")).await;
    assert_eq!(
        expect(f.log("orphan", "").await, 404, "NotFound"),
        "nodes \"missing\" not found"
    );
    f.node(
        "dns-only",
        json!([{"type": "InternalDNS", "address": "x.invalid"}]),
        1,
    )
    .await;
    f.pod("nowhere", "dns-only", one_container("app")).await;
    assert_eq!(
        expect(f.log("nowhere", "").await, 500, "InternalError"),
        "no preferred addresses found; known addresses: [{InternalDNS x.invalid}]"
    );
    let port = closed_port().await;
    f.node(
        "down",
        json!([{"type": "InternalIP", "address": "127.0.0.1"}]),
        port,
    )
    .await;
    f.pod("stranded", "down", one_container("app")).await;
    let message = expect(f.log("stranded", "").await, 500, "InternalError");
    assert!(
        message.starts_with(&format!(
            "Get \"http://127.0.0.1:{port}/containerLogs/default/stranded/app\": dial tcp 127.0.0.1:{port}: connect:"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_followed_log_streams_and_stops_when_the_client_leaves() {
    let (addr, kubelet, mut drops) = fake_kubelet().await;
    let f = Fixture::new().await;
    f.node(
        "n1",
        json!([{"type": "InternalIP", "address": "127.0.0.1"}]),
        addr.port(),
    )
    .await;
    f.pod("tail", "n1", one_container("follow")).await;

    let response = tokio::time::timeout(
        WAIT,
        f.request(
            Method::GET,
            "/api/v1/namespaces/default/pods/tail/log?follow=true",
            "application/json, */*",
            Value::Null,
        ),
    )
    .await
    .expect("headers in time");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();

    // The first line arrives while the kubelet still holds back the last one.
    let first = tokio::time::timeout(WAIT, body.next())
        .await
        .expect("the first line in time")
        .expect("a chunk")
        .expect("no error");
    assert_eq!(first, Bytes::from_static(b"first\n"));

    kubelet.gate.notify_one();
    let mut seen = String::new();
    while !seen.contains("last\n") {
        let chunk = tokio::time::timeout(WAIT, body.next())
            .await
            .expect("the last line in time")
            .expect("a chunk")
            .expect("no error");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("last\n"), "{seen}");

    // The client leaves: the connection to the kubelet closes and its stream ends.
    drop(body);
    tokio::time::timeout(WAIT, drops.recv())
        .await
        .expect("the kubelet's stream dropped in time")
        .expect("a drop signal");
}
