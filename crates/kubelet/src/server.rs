//! The kubelet's HTTP endpoints (plain HTTP for now): `/healthz`, `/pods` (a PodList of
//! the pods this process runs), `/metrics` (Prometheus text) and
//! `/containerLogs/{namespace}/{pod}/{container}`. One server serves every node of the
//! process; hollow nodes all publish its port.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::runtime::{LogOptions, RuntimeError};
use crate::state::Shared;

/// The routes, over `shared` (built by a function so tests need no socket).
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route("/metrics", get(metrics))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .with_state(shared)
}

async fn pods(State(shared): State<Arc<Shared>>) -> Response {
    let list = serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": shared.pods(),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        list.to_string(),
    )
        .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(shared.gauges()),
    )
        .into_response()
}

/// The query of `/containerLogs` (upstream's names).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    follow: Option<String>,
    tail_lines: Option<String>,
    since_seconds: Option<String>,
    timestamps: Option<String>,
    previous: Option<String>,
    limit_bytes: Option<String>,
}

fn flag(value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(format!("invalid boolean {other:?}")),
    }
}

fn number(name: &str, value: Option<&str>) -> Result<Option<u64>, String> {
    value
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: {v:?} is not a non-negative integer"))
        })
        .transpose()
}

impl LogQuery {
    fn options(&self) -> Result<LogOptions, String> {
        let since = number("sinceSeconds", self.since_seconds.as_deref())?
            .map(|s| SystemTime::now() - Duration::from_secs(s));
        Ok(LogOptions {
            follow: flag(self.follow.as_deref())?,
            tail_lines: number("tailLines", self.tail_lines.as_deref())?,
            since,
            timestamps: flag(self.timestamps.as_deref())?,
            previous: flag(self.previous.as_deref())?,
            limit_bytes: number("limitBytes", self.limit_bytes.as_deref())?,
        })
    }
}

fn text(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

async fn container_logs(
    State(shared): State<Arc<Shared>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    let options = match query.options() {
        Ok(o) => o,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let Some((node, object)) = shared.find_pod(&namespace, &pod) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod} not found on this node"),
        );
    };
    let uid = object.metadata.uid.clone().unwrap_or_default();
    match node
        .runtime
        .container_logs(&uid, &container, &options)
        .await
    {
        Ok(stream) => (
            [(header::CONTENT_TYPE, "text/plain")],
            Body::from_stream(stream),
        )
            .into_response(),
        Err(RuntimeError::NotFound { what }) => {
            text(StatusCode::NOT_FOUND, format!("{what} not found"))
        }
        Err(RuntimeError::BadRequest(message)) => text(StatusCode::BAD_REQUEST, message),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::to_bytes;
    use axum::http::Request;
    use k8s_openapi::api::core::v1::Pod;
    use tower::ServiceExt;

    use super::*;
    use crate::config::KubeletConfig;
    use crate::host::HostInfo;
    use crate::runtime::{ContainerConfig, ContainerKind, Runtime, SandboxConfig};

    async fn shared_with_a_pod() -> Arc<Shared> {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let runtime = Arc::new(crate::runtime::fake::FakeRuntime::new("n1"));
        runtime.update_pod_cidr("10.1.0.0/24").await.expect("cidr");
        let sandbox = SandboxConfig {
            uid: "u1".into(),
            namespace: "default".into(),
            name: "web".into(),
            ..SandboxConfig::default()
        };
        let id = runtime.run_pod_sandbox(&sandbox).await.expect("sandbox");
        let container = ContainerConfig {
            name: "app".into(),
            image: "nginx".into(),
            kind: ContainerKind::App,
            attempt: 0,
            command: vec![],
            args: vec![],
            env: vec![],
            working_dir: None,
            log_path: "app/0.log".into(),
            pull_policy: crate::runtime::PullPolicy::IfNotPresent,
            mounts: vec![],
            resources: crate::runtime::Resources::default(),
        };
        runtime
            .start_container(&id, &sandbox, &container)
            .await
            .expect("start");
        let host = HostInfo::detect(&std::env::temp_dir());
        let shared = Arc::new(Shared::new(
            client,
            KubeletConfig::default(),
            host,
            10250,
            vec![("n1".into(), runtime as Arc<dyn Runtime>)],
        ));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
            }]}
        }))
        .expect("pod");
        let (sender, _) = tokio::sync::watch::channel(Some(Arc::new(pod)));
        shared.nodes[0].workers().insert("u1".into(), sender);
        shared
    }

    async fn get(shared: Arc<Shared>, uri: &str) -> (StatusCode, String) {
        let response = router(shared)
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn endpoints() {
        let shared = shared_with_a_pod().await;
        assert_eq!(
            get(shared.clone(), "/healthz").await,
            (StatusCode::OK, "ok".into())
        );

        let (status, body) = get(shared.clone(), "/pods").await;
        assert_eq!(status, StatusCode::OK);
        let list: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(list["kind"], "PodList");
        assert_eq!(list["items"][0]["metadata"]["name"], "web");

        let (status, body) = get(shared.clone(), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("\nkubelet_running_pods 1\n"), "{body}");
        assert!(body.contains("\nkubelet_running_containers 1\n"), "{body}");
        assert!(body.contains("\nmast_kubelet_pod_workers 1\n"), "{body}");

        let (status, body) = get(shared.clone(), "/containerLogs/default/web/app").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("container app of pod default/web"), "{body}");
        let (status, body) =
            get(shared.clone(), "/containerLogs/default/web/app?tailLines=0").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
        let (status, _) = get(
            shared.clone(),
            "/containerLogs/default/web/app?sinceSeconds=x",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = get(
            shared.clone(),
            "/containerLogs/default/web/app?previous=true",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = get(shared.clone(), "/containerLogs/default/web/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get(shared, "/containerLogs/default/other/app").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
