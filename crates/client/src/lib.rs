//! How every mast component builds its `kube::Client`: one or several API servers, failover
//! between them, and dead connections noticed within seconds.
//!
//! Layout:
//! - [`ClientConfig`]: the servers (from a kubeconfig, flags, or a plain list), the
//!   kubeconfig's credentials and TLS settings, the timeouts; [`ClientConfig::service`]
//!   builds the HTTP stack (so callers can add layers, e.g. fencing headers, before
//!   [`kube::Client::new`]), [`ClientConfig::client`] the client itself.
//! - [`connector`]: the hyper connector that picks a live server for each new connection
//!   and puts keepalive and a read timeout on it.
//!
//! Several servers in a kubeconfig: the cluster's `server` stays one URL (so kubectl reads
//! the file as it is) and the others go in a cluster extension kubectl ignores:
//!
//! ```yaml
//! clusters:
//! - name: mast
//!   cluster:
//!     server: http://10.0.0.1:6443
//!     extensions:
//!     - name: mast.dev/servers
//!       extension:
//!         servers: [http://10.0.0.1:6443, http://10.0.0.2:6443]
//! ```
//!
//! Failover is per connection, not per request: a request on a connection that dies
//! fails (kube-rs watchers retry with backoff and resume from their resourceVersion), and
//! the next connection goes to a server that answers.

pub mod connector;

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use tower::util::BoxService;
use tower::{BoxError, ServiceBuilder};

pub use connector::{ConnectError, FailoverConnector};

/// The name of the kubeconfig cluster extension listing all the API servers.
pub const SERVERS_EXTENSION: &str = "mast.dev/servers";
/// How long one server gets to accept a connection before the next one is tried.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a read may wait for data before the connection is given up. API servers
/// send watch bookmarks every 3 s, so only a dead or hung server stays silent this long.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP stack under a `kube::Client`: base URI, credentials, extra headers, hyper's
/// pooled client over the failover connector.
pub type Service =
    BoxService<http::Request<kube::client::Body>, http::Response<hyper::body::Incoming>, BoxError>;

/// Why a client could not be configured or built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or parsed.
    #[error("reading the kubeconfig {path}")]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig's context, cluster or user could not be used.
    #[error("using the kubeconfig {path}")]
    UseKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig's current context names no cluster with a server.
    #[error("kubeconfig {path}: the current context's cluster has no server")]
    NoClusterServer { path: PathBuf },
    /// The `mast.dev/servers` extension is not a list of URLs.
    #[error("kubeconfig {path}: extension {SERVERS_EXTENSION}: {reason}")]
    Extension { path: PathBuf, reason: String },
    /// A server URL is not an `http://` or `https://` URL with a host.
    #[error("invalid API server URL {url:?}: {reason}")]
    InvalidServer { url: String, reason: String },
    /// The server list is empty.
    #[error("no API server given")]
    NoServers,
    /// kube-rs refused the credentials or TLS settings.
    #[error("building the client")]
    Build(#[source] kube::Error),
}

/// Everything needed to build a client (see the crate docs).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    servers: Vec<Uri>,
    /// Credentials, TLS roots, default namespace, extra headers; its `cluster_url` is
    /// replaced by the first server when the stack is built.
    kube: kube::Config,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl ClientConfig {
    /// The current context's cluster and user from a kubeconfig file; the servers are the
    /// cluster's `server` followed by those in its `mast.dev/servers` extension.
    pub fn from_kubeconfig(path: &Path) -> Result<Self, Error> {
        let file =
            kube::config::Kubeconfig::read_from(path).map_err(|source| Error::ReadKubeconfig {
                path: path.to_path_buf(),
                source,
            })?;
        let servers = kubeconfig_servers(&file, path)?;
        let kube = kube::Config::try_from(file).map_err(|source| Error::UseKubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::with_kube_config(servers, kube))
    }

    /// Plain HTTP to `servers`, no credentials (loopback and tests).
    pub fn for_servers(servers: Vec<Uri>) -> Self {
        let first = servers
            .first()
            .cloned()
            .unwrap_or_else(|| Uri::from_static("http://127.0.0.1:6443"));
        Self::with_kube_config(servers, kube::Config::new(first))
    }

    fn with_kube_config(servers: Vec<Uri>, kube: kube::Config) -> Self {
        ClientConfig {
            servers,
            kube,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// Replaces the servers (`--server` flags); an empty list keeps the current ones, so
    /// an unset flag can be passed as is.
    pub fn with_servers(mut self, servers: Vec<Uri>) -> Self {
        if !servers.is_empty() {
            self.servers = servers;
        }
        self
    }

    /// Sets how long each server gets to accept a connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long a read may wait for data before the connection is dropped.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The API servers, in the order first tried.
    pub fn servers(&self) -> &[Uri] {
        &self.servers
    }

    /// The namespace namespaced requests default to.
    pub fn default_namespace(&self) -> &str {
        &self.kube.default_namespace
    }

    /// The HTTP stack a `kube::Client` runs on; add layers, then [`kube::Client::new`].
    /// Needs a tokio runtime (hyper's pool runs a timer).
    pub fn service(&self) -> Result<Service, Error> {
        let first = self.servers.first().ok_or(Error::NoServers)?;
        let mut config = self.kube.clone();
        config.cluster_url = first.clone();
        let connector =
            FailoverConnector::new(&self.servers, self.connect_timeout, Some(self.read_timeout));
        // TLS when the URL says https; plain TCP passes through otherwise.
        let connector = config
            .rustls_https_connector_with_connector(connector)
            .map_err(Error::Build)?;
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Idle pooled connections are closed well before the read timeout would fire
            // on them (the pool's reaper runs every idle-timeout), so a read timeout always
            // means a server that owes an answer.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.read_timeout / 3)
            .build(connector);
        let auth = config.auth_layer().map_err(Error::Build)?;
        let headers = config.extra_headers_layer().map_err(Error::Build)?;
        let stack = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(auth)
            .layer(headers)
            .map_err(BoxError::from)
            .service(http);
        Ok(BoxService::new(stack))
    }

    /// A client over [`ClientConfig::service`]. Needs a tokio runtime.
    pub fn client(&self) -> Result<kube::Client, Error> {
        Ok(kube::Client::new(self.service()?, self.default_namespace()))
    }
}

/// `http://a:1,http://b:2` (spaces and empty items ignored) as URLs; at least one.
pub fn parse_servers(list: &str) -> Result<Vec<Uri>, Error> {
    let servers = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_server)
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(Error::NoServers);
    }
    Ok(servers)
}

/// One `http://host:port` or `https://host:port` URL (no path: requests carry their own).
pub fn parse_server(text: &str) -> Result<Uri, Error> {
    let invalid = |reason: &str| Error::InvalidServer {
        url: text.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = text
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("the scheme must be http or https")),
        None => return Err(invalid("missing scheme (http:// or https://)")),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => {}
        _ => return Err(invalid("missing host")),
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("a server URL has no path or query"));
    }
    Ok(uri)
}

/// The current context's cluster's servers: `server`, then the extension's, without
/// repeats.
fn kubeconfig_servers(file: &kube::config::Kubeconfig, path: &Path) -> Result<Vec<Uri>, Error> {
    let no_server = || Error::NoClusterServer {
        path: path.to_path_buf(),
    };
    let context_name = file.current_context.as_deref().ok_or_else(no_server)?;
    let cluster_name = file
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.as_str())
        .ok_or_else(no_server)?;
    let cluster = file
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(no_server)?;
    let mut servers = Vec::new();
    if let Some(server) = &cluster.server {
        servers.push(parse_server(server)?);
    }
    let extension = cluster
        .extensions
        .iter()
        .flatten()
        .find(|e| e.name == SERVERS_EXTENSION);
    if let Some(extension) = extension {
        let extra = extension_servers(&extension.extension).map_err(|reason| Error::Extension {
            path: path.to_path_buf(),
            reason,
        })?;
        for server in extra {
            if !servers.contains(&server) {
                servers.push(server);
            }
        }
    }
    if servers.is_empty() {
        return Err(no_server());
    }
    Ok(servers)
}

/// The extension's value: `{servers: [URL, …]}` (the documented form), a bare list, or
/// a comma-separated string.
fn extension_servers(value: &serde_json::Value) -> Result<Vec<Uri>, String> {
    let list = match value {
        serde_json::Value::Object(map) => map
            .get("servers")
            .ok_or_else(|| "expected a `servers` list".to_string())?,
        other => other,
    };
    match list {
        serde_json::Value::String(text) => parse_servers(text).map_err(|e| e.to_string()),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::String(text) => parse_server(text).map_err(|e| e.to_string()),
                other => Err(format!("expected a URL string, found {other}")),
            })
            .collect(),
        other => Err(format!("expected a list of URLs, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<Uri> {
        list.iter().map(|s| s.parse().expect("test URL")).collect()
    }

    #[test]
    fn parses_server_lists() {
        assert_eq!(
            parse_servers("http://a:1,http://b:2").expect("two servers"),
            uris(&["http://a:1", "http://b:2"])
        );
        assert_eq!(
            parse_servers(" http://a:1 , ,https://[::1]:6443/ ").expect("spaces and empty items"),
            uris(&["http://a:1", "https://[::1]:6443/"])
        );
        let cases = [
            ("", "no API server"),
            (" , ", "no API server"),
            ("a:1", "missing scheme"),
            ("ftp://a:1", "http or https"),
            ("http://a:1/api", "no path"),
            ("http://a:1,b:2", "missing scheme"),
            ("http://", "invalid API server URL"),
        ];
        for (input, message) in cases {
            let error = parse_servers(input).expect_err(input).to_string();
            assert!(error.contains(message), "{input:?}: {error}");
        }
    }

    fn kubeconfig(dir: &Path, cluster: &str) -> PathBuf {
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n    namespace: team\n\
             - name: other\n  context:\n    cluster: unused\n    user: u\n\
             clusters:\n- name: unused\n  cluster:\n    server: http://unused:1\n\
             - name: k\n  cluster:\n{cluster}\n\
             users:\n- name: u\n  user:\n    token: secret\n"
        );
        let path = dir.join("kubeconfig");
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    #[test]
    fn kubeconfig_servers_come_from_server_and_extension() {
        let dir = tempfile::tempdir().expect("temp dir");
        let forms = [
            "      extension:\n        servers: [http://a:1, http://b:2, http://c:3]",
            "      extension: [http://b:2, http://c:3]",
            "      extension: http://b:2,http://c:3",
        ];
        for form in forms {
            let cluster = format!(
                "    server: http://a:1\n    extensions:\n    - name: other/thing\n      \
                 extension: {{provider: x}}\n    - name: mast.dev/servers\n{form}"
            );
            let config =
                ClientConfig::from_kubeconfig(&kubeconfig(dir.path(), &cluster)).expect(form);
            assert_eq!(
                config.servers(),
                uris(&["http://a:1", "http://b:2", "http://c:3"]),
                "{form}"
            );
            assert_eq!(config.default_namespace(), "team");
        }
        // Without the extension: the one server; flags replace it, an empty flag does not.
        let path = kubeconfig(dir.path(), "    server: http://a:1");
        let config = ClientConfig::from_kubeconfig(&path).expect("one server");
        assert_eq!(config.servers(), uris(&["http://a:1"]));
        let config = config.with_servers(Vec::new());
        assert_eq!(config.servers(), uris(&["http://a:1"]));
        let config = config.with_servers(uris(&["http://x:9", "http://y:9"]));
        assert_eq!(config.servers(), uris(&["http://x:9", "http://y:9"]));
    }

    #[test]
    fn bad_kubeconfig_extensions_are_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cases = [
            ("      extension: {servers: [42]}", "expected a URL string"),
            (
                "      extension: {list: [http://b:2]}",
                "expected a `servers` list",
            ),
            ("      extension: {servers: [b:2]}", "missing scheme"),
        ];
        for (form, message) in cases {
            let cluster = format!(
                "    server: http://a:1\n    extensions:\n    - name: mast.dev/servers\n{form}"
            );
            let error = ClientConfig::from_kubeconfig(&kubeconfig(dir.path(), &cluster))
                .expect_err(form)
                .to_string();
            assert!(error.contains(SERVERS_EXTENSION), "{error}");
            assert!(error.contains(message), "{form}: {error}");
        }
        let missing = ClientConfig::from_kubeconfig(&dir.path().join("absent"));
        assert!(
            matches!(missing, Err(Error::ReadKubeconfig { .. })),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn service_needs_a_server() {
        let error = ClientConfig::for_servers(Vec::new()).service().err();
        assert!(matches!(error, Some(Error::NoServers)), "{error:?}");
    }
}
