//! `mast apiserver`: the API server alone, until SIGINT or SIGTERM.

use tokio::signal::unix::{SignalKind, signal};

use crate::server::ServerArgs;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let running = apiserver::start(&args.config()).await?;
    serve_until_stopped(running, &args, std::future::ready(())).await
}

/// Waits for a signal (or the parent's end), runs `before_stop` (the in-process
/// components hand their Leases over through this very server), then stops the API
/// server.
pub async fn serve_until_stopped(
    mut running: apiserver::Running,
    args: &ServerArgs,
    before_stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = running.wait() => return Ok(result?),
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = parent_gone(), if args.exit_with_parent => {
            tracing::info!("parent process gone");
        }
    }
    tracing::info!("shutting down");
    before_stop.await;
    // Open watches would hold a graceful stop forever; give them a moment, then go.
    match tokio::time::timeout(std::time::Duration::from_secs(5), running.stop()).await {
        Ok(result) => Ok(result?),
        Err(_) => Ok(()),
    }
}

/// Resolves when this process is reparented (its parent died). Polling is the safe
/// way to learn it without a signal handler set up through libc.
async fn parent_gone() {
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}
