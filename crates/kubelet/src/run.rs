//! Starting a kubelet: check the configuration, read the host, bind the HTTP port
//! (its number goes into the Node), then run the loops side by side until shutdown:
//! node registration and status, the node watch (pod CIDR), lease renewal, the pod
//! watch with its workers, housekeeping, and the HTTP server.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{ConfigError, KubeletConfig};
use crate::host::HostInfo;
use crate::runtime::Runtime;
use crate::state::Shared;

/// Why the kubelet could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no node to run")]
    NoNodes,
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Invalid(String),
    #[error("creating the data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("listening on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
}

/// Checks what the API server would refuse later, so a bad flag fails at start.
fn validate(config: &KubeletConfig, host: &HostInfo) -> Result<(), RunError> {
    crate::node::resources(config, host)?;
    if config.node_lease_duration_seconds <= 0 {
        return Err(RunError::Invalid(
            "the node lease duration must be greater than 0 seconds".into(),
        ));
    }
    let intervals = [
        (
            "node lease renew interval",
            config.node_lease_renew_interval,
        ),
        (
            "node status update frequency",
            config.node_status_update_frequency,
        ),
        ("sync frequency", config.sync_frequency),
        ("housekeeping interval", config.housekeeping_interval),
    ];
    for (what, value) in intervals {
        if value < Duration::from_millis(1) {
            return Err(RunError::Invalid(format!(
                "the {what} must be at least 1ms"
            )));
        }
    }
    if let Some(cidr) = &config.pod_cidr {
        cidr.parse::<crate::ipam::Cidr>()
            .map_err(|e| RunError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// How long each container gets to stop when the kubelet removes every pod on exit:
/// short, because someone is waiting at a terminal for Ctrl-C to finish.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Stops and removes every pod the runtime holds, all at once; failures are logged
/// (there is nothing to retry on exit).
async fn remove_every_pod(runtime: &dyn Runtime) {
    let pods = match runtime.list_pods().await {
        Ok(pods) => pods,
        Err(e) => {
            tracing::warn!(error = %e, "listing pods to remove on exit");
            return;
        }
    };
    let removals = pods.iter().map(|pod| async move {
        let result = match runtime.stop_pod(&pod.uid, EXIT_GRACE).await {
            Ok(()) => runtime.remove_pod(&pod.uid).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(pod = %format!("{}/{}", pod.namespace, pod.name), error = %e, "removing a pod on exit");
        }
    });
    futures::future::join_all(removals).await;
    tracing::info!(pods = pods.len(), "removed every pod on exit");
}

/// Runs the kubelet for `nodes` (one, or many hollow ones) until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: KubeletConfig,
    nodes: Vec<(String, Arc<dyn Runtime>)>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    if nodes.is_empty() {
        return Err(RunError::NoNodes);
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|source| RunError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let host = HostInfo::detect(&config.data_dir);
    validate(&config, &host)?;
    let address = SocketAddr::new(config.address, config.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| RunError::Bind { address, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| RunError::Bind { address, source })?
        .port();
    let shared = Arc::new(Shared::new(client, config, host, port, nodes));
    tracing::info!(
        nodes = shared.nodes.len(),
        first = %shared.nodes.first().map(|n| n.name.as_str()).unwrap_or(""),
        port,
        node_ip = %shared.node_ip,
        runtime = ?shared.nodes.first().map(|n| n.runtime.version()),
        "kubelet starting"
    );
    crate::node::apply_pod_cidr_flag(&shared).await;

    // Dropping the set on return aborts every loop (and, through the pod watch, the
    // pod workers).
    let mut tasks = JoinSet::new();
    tasks.spawn(crate::node::run_status_loop(shared.clone()));
    tasks.spawn(crate::node::watch_nodes(shared.clone()));
    tasks.spawn(crate::lease::run(shared.clone()));
    let (synced, synced_rx) = watch::channel(false);
    tasks.spawn(crate::pods::watch_pods(shared.clone(), synced));
    tasks.spawn(crate::pods::housekeeping(shared.clone(), synced_rx));
    tasks.spawn(crate::pods::pleg(shared.clone()));

    let serve = axum::serve(listener, crate::server::router(shared.clone()));
    // Not a graceful stop: a followed log would hold it open.
    let result = tokio::select! {
        result = serve.into_future() => result.map_err(RunError::Serve),
        () = shutdown => Ok(()),
    };
    tasks.shutdown().await;
    if shared.config.remove_pods_on_exit {
        for node in &shared.nodes {
            remove_every_pod(node.runtime.as_ref()).await;
        }
    }
    // Pods keep running (unless just removed); what the runtimes hold on the host (our
    // containerd, network rules) is released.
    for node in &shared.nodes {
        node.runtime.shutdown().await;
    }
    tracing::info!("kubelet stopped");
    result
}
