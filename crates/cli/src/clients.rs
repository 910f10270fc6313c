//! How the node components (kubelet, proxy, DNS, agent) and the tools build their API
//! client: the `kubeclient` crate (failover over several API servers, dead connections
//! noticed within seconds), from a kubeconfig and optional `--server` flags.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A client from a kubeconfig; `servers` (the `--server` flags), when not empty, replace
/// the kubeconfig's.
pub fn from_kubeconfig(path: &Path, servers: &[http::Uri]) -> anyhow::Result<kube::Client> {
    let config = kubeclient::ClientConfig::from_kubeconfig(path)?.with_servers(servers.to_vec());
    tracing::debug!(servers = ?config.servers(), "API servers");
    Ok(config.client()?)
}

/// The kubeconfig kubectl would use: the first file in `$KUBECONFIG`, else
/// `~/.kube/config`.
pub fn default_kubeconfig() -> anyhow::Result<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    let home =
        std::env::var_os("HOME").context("no kubeconfig (use --kubeconfig or set KUBECONFIG)")?;
    Ok(PathBuf::from(home).join(".kube/config"))
}

/// Clap's parser for one `--server` URL (lists are split on commas by clap).
pub fn server(text: &str) -> Result<http::Uri, String> {
    kubeclient::parse_server(text.trim()).map_err(|e| e.to_string())
}
