//! The HTTP server: the router (built by a function, so tests can drive it without a
//! socket), startup (store, watch caches, default namespaces, kubeconfig) and graceful
//! shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use serde_json::json;
use store::{AnyStore, DatastoreConfig};

use crate::codec::{self, MAX_BODY_BYTES};
use crate::error::ApiError;
use crate::path::Route;
use crate::state::AppState;
use crate::{discovery, handlers, kubeconfig, openapi, path};

/// How the API server starts.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    /// 0 picks a free port; the kubeconfig names the one bound.
    pub port: u16,
    /// None: SQLite in the data dir. `http://h:p,…`: etcd.
    pub datastore_endpoint: Option<String>,
    pub write_kubeconfig: Option<PathBuf>,
    /// Events each resource's watch cache keeps for watches that resume.
    pub watch_cache_size: usize,
    pub admission: crate::admission::Admission,
    /// Where Services' cluster IPs and node ports come from.
    pub services: crate::allocator::ServiceRanges,
    /// The address the `kubernetes` Service's endpoints name; None: the bind address,
    /// or this host's address toward its default route when bound to every address.
    pub advertise_address: Option<IpAddr>,
}

/// Namespaces that exist from the start, as upstream.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The router over a started state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { axum::Json(discovery::version()) }),
        )
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(crate::health::ready))
        .route("/metrics", get(metrics))
        .route("/openapi/v3", get(|| async { openapi::index() }))
        .route("/api", get(core_discovery))
        .route(
            "/apis",
            get(|headers: HeaderMap| async move { discovery::groups(&headers) }),
        )
        .fallback(api_request)
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> Response {
    codec::with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        state.metrics().render().into_bytes(),
    )
}

async fn core_discovery(headers: HeaderMap) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    discovery::core(&headers, &host)
}

/// Everything under /api/ and /apis/.
async fn api_request(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let path = uri.path();
    if path.starts_with("/openapi/v3/") && method == Method::GET {
        return openapi::group_version(path);
    }
    if !path.starts_with("/api/") && !path.starts_with("/apis/") {
        return ApiError::NotFound {
            message: format!("the server could not find the requested resource ({path})"),
            details: None,
        }
        .into_response();
    }
    let route = match path::parse(path) {
        Ok(route) => route,
        Err(e) => return e.into_response(),
    };
    match route {
        Route::Group(group) => discovery::group(&group),
        Route::GroupVersion { group, version } => discovery::group_version(&group, &version),
        Route::Resource(target) => {
            let span = tracing::debug_span!("request", %method, path);
            let _enter = span.enter();
            let body = match axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES + 1).await {
                Ok(body) => body,
                Err(_) => {
                    return ApiError::TooLarge(format!(
                        "the request body is over the limit of {MAX_BODY_BYTES} bytes"
                    ))
                    .into_response();
                }
            };
            handlers::dispatch(&state, &method, target, &headers, &query, body).await
        }
    }
}

/// Creates the system namespaces that are missing.
pub async fn bootstrap(state: &AppState) -> Result<(), ApiError> {
    let Some(namespaces) = api::registry::find("", "v1", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let object = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": crate::meta::now(),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        match state
            .objects()
            .create(namespaces, &namespaces.key(None, name), object)
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A running server: where it listens, and how to stop it.
#[derive(Debug)]
pub struct Running {
    pub address: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets open requests finish (watches end), and waits.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| std::io::Error::other(format!("server task: {e}")))?
    }

    /// Waits until the server stops by itself (it only does on an I/O error).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task)
            .await
            .map_err(|e| std::io::Error::other(format!("server task: {e}")))?
    }
}

/// Opens the store, starts the caches, creates the system namespaces, binds, writes
/// the kubeconfig, and serves in the background.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let datastore =
        DatastoreConfig::from_endpoint(&config.data_dir, config.datastore_endpoint.as_deref())
            .map_err(|e| anyhow::anyhow!("--datastore-endpoint: {e}"))?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!("creating the data dir {}: {e}", config.data_dir.display()))?;
    let store = AnyStore::open(datastore)
        .await
        .map_err(|e| anyhow::anyhow!("opening the store: {e}"))?;
    tracing::info!(backend = store.backend_name(), "store open");
    let state = AppState::with_services(
        store,
        config.watch_cache_size,
        config.admission,
        config.services,
    );
    bootstrap(&state)
        .await
        .map_err(|e| anyhow::anyhow!("creating the system namespaces: {e}"))?;
    let listener = tokio::net::TcpListener::bind((config.bind_address, config.port))
        .await
        .map_err(|e| anyhow::anyhow!("binding {}:{}: {e}", config.bind_address, config.port))?;
    let address = listener.local_addr()?;
    if let Some(path) = &config.write_kubeconfig {
        write_kubeconfig(path, address)?;
    }
    tracing::info!(%address, "API server listening");
    let advertise = SocketAddr::new(advertise_address(config), address.port());
    // The identity Lease first: other servers then never take this one for gone.
    let identity = crate::identity::Identity::new(advertise, state.backend());
    if let Err(e) = crate::identity::renew(&state, &identity).await {
        tracing::warn!(error = %e, "writing the API server identity lease");
    }
    if let Err(e) = crate::kubernetes_service::reconcile(&state, advertise).await {
        tracing::warn!(error = %e, "creating the kubernetes service");
    }
    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    state.allocators().spawn_repairs(
        crate::allocator::repair::REPAIR_INTERVAL,
        crate::allocator::repair::LEAK_GRACE,
        stop.clone(),
    );
    crate::kubernetes_service::spawn(state.clone(), advertise, stop.clone());
    crate::identity::spawn(state.clone(), identity, stop.clone());
    let ending = state.clone();
    let mut stopping = stop.clone();
    tokio::spawn(async move {
        let _ = stopping.wait_for(|s| *s).await;
        ending.end_watches();
    });
    let app = router(state);
    // Without TCP_NODELAY a watch event that follows another within the peer's delayed
    // ACK waits for it (Nagle): measured 40 ms at p99 instead of under 1 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(Running {
        address,
        shutdown,
        task,
    })
}

/// The address other hosts reach this API server at: the flag, else the bind address,
/// else (bound to every address) the source address of this host's default route —
/// what a peer would see — else loopback.
pub fn advertise_address(config: &Config) -> IpAddr {
    if let Some(ip) = config.advertise_address {
        return ip;
    }
    if !config.bind_address.is_unspecified() {
        return config.bind_address;
    }
    default_route_address().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// Connecting a UDP socket sends nothing; it only asks the kernel which source address
/// it would route from. 192.0.2.1 is a documentation address: any routed one works.
fn default_route_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect(("192.0.2.1", 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn write_kubeconfig(path: &Path, address: SocketAddr) -> anyhow::Result<()> {
    // A wildcard bind is reached on loopback from this machine.
    let host = match address.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let server = format!("http://{host}:{}", address.port());
    kubeconfig::write(path, &server)
        .map_err(|e| anyhow::anyhow!("writing the kubeconfig {}: {e}", path.display()))
}
