//! The API server's client to kubelets: where a node's kubelet listens (from its Node
//! object), the `/containerLogs` request for a set of log options, and one plain
//! HTTP/1.1 GET whose body streams back.
//!
//! One connection per request: a followed log holds its connection for as long as the
//! client reads, so pooling would gain nothing. The connection lives exactly as long as
//! the returned body; dropping the body (the API client went away) closes it, and the
//! kubelet then stops following.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The kubelet port when a Node does not report one (upstream's default).
pub const DEFAULT_PORT: u16 = 10250;
/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kubelet may take to answer with its status line and headers. The body
/// has no limit: a followed log streams until the container stops or the client leaves.
const HEADERS_TIMEOUT: Duration = Duration::from_secs(30);
/// Node address types, most preferred first. Upstream's default prefers Hostname, but
/// a node's host name often does not resolve from the masters; kubeadm configures
/// InternalIP first for that reason, and so do we.
const ADDRESS_TYPES: [&str; 3] = ["InternalIP", "ExternalIP", "Hostname"];

/// Why a kubelet could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Node reports no address of a usable type.
    #[error("no preferred addresses found; known addresses: [{known}]")]
    NoAddress { known: String },
    /// No TCP connection (refused, unreachable, timed out); worded as Go's net/http,
    /// which is what clients of upstream see.
    #[error("Get \"{url}\": dial tcp {authority}: {why}")]
    Connect {
        url: String,
        authority: String,
        why: String,
    },
    /// The connection broke before the response headers arrived.
    #[error("Get \"{url}\": {source}")]
    Http { url: String, source: hyper::Error },
    /// The kubelet accepted the connection but did not answer in time.
    #[error("Get \"{url}\": no response headers within {HEADERS_TIMEOUT:?}")]
    Timeout { url: String },
    /// The request could not be built (a path that is not a valid URI).
    #[error("building the request to {url}: {why}")]
    Request { url: String, why: String },
}

/// Where a kubelet listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// The kubelet of `node` (a Node object): its preferred address and
    /// `status.daemonEndpoints.kubeletEndpoint.Port`, or the default port.
    pub fn of_node(node: &Value) -> Result<Self, Error> {
        let addresses: Vec<(&str, &str)> = node
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| Some((a["type"].as_str()?, a["address"].as_str()?)))
            .collect();
        let host = ADDRESS_TYPES
            .iter()
            .find_map(|wanted| {
                addresses
                    .iter()
                    .find(|(kind, address)| kind == wanted && !address.is_empty())
            })
            .map(|(_, address)| address.to_string())
            .ok_or_else(|| Error::NoAddress {
                known: addresses
                    .iter()
                    .map(|(kind, address)| format!("{{{kind} {address}}}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            })?;
        let port = node
            .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_PORT);
        Ok(Self { host, port })
    }

    /// `host:port`, with an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// The options of a container log, as the kubelet's `/containerLogs` takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
}

/// `/containerLogs/NS/POD/CONTAINER?…`: only the options that are set, as upstream
/// builds it. Names are DNS labels or subdomains, so they need no escaping.
pub fn container_logs_path(
    namespace: &str,
    pod: &str,
    container: &str,
    options: &LogOptions,
) -> String {
    let mut query = Vec::new();
    for (set, name) in [
        (options.follow, "follow"),
        (options.previous, "previous"),
        (options.timestamps, "timestamps"),
    ] {
        if set {
            query.push(format!("{name}=true"));
        }
    }
    for (value, name) in [
        (options.since_seconds, "sinceSeconds"),
        (options.tail_lines, "tailLines"),
        (options.limit_bytes, "limitBytes"),
    ] {
        if let Some(value) = value {
            query.push(format!("{name}={value}"));
        }
    }
    let mut path = format!("/containerLogs/{namespace}/{pod}/{container}");
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

/// A kubelet's answer: its status and its body, streaming. The connection closes when
/// the body is dropped.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Body,
}

impl Reply {
    /// The body as text, at most `limit` bytes of it (an error answer, say); a body that
    /// breaks off yields what arrived.
    pub async fn text(self, limit: usize) -> String {
        let mut bytes = Vec::new();
        let mut stream = self.body.into_data_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            let room = limit.saturating_sub(bytes.len());
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() >= limit {
                break;
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Aborts the connection task when the body that needs it goes away.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// GET `path_and_query` from the kubelet at `endpoint`, over plain HTTP/1.1.
pub async fn get(endpoint: &Endpoint, path_and_query: &str) -> Result<Reply, Error> {
    let authority = endpoint.authority();
    let url = format!("http://{authority}{path_and_query}");
    let connect = TcpStream::connect((endpoint.host.as_str(), endpoint.port));
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err(Error::Connect {
                url,
                authority,
                why: format!("connect: {e}"),
            });
        }
        Err(_) => {
            return Err(Error::Connect {
                url,
                authority,
                why: "i/o timeout".into(),
            });
        }
    };
    // Log lines should leave as soon as they are written.
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| Error::Http {
            url: url.clone(),
            source,
        })?;
    let task = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    }));
    let request = Request::get(path_and_query)
        .header(header::HOST, &authority)
        .header(header::USER_AGENT, "mast-apiserver")
        .body(Body::empty())
        .map_err(|e| Error::Request {
            url: url.clone(),
            why: e.to_string(),
        })?;
    let response = match tokio::time::timeout(HEADERS_TIMEOUT, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(source)) => return Err(Error::Http { url, source }),
        Err(_) => return Err(Error::Timeout { url }),
    };
    let status = response.status();
    // The guard rides inside the body stream: the connection lives while it is read.
    let chunks = Body::new(response.into_body())
        .into_data_stream()
        .map(move |chunk| {
            let _connection = &task;
            chunk
        })
        // A kubelet that breaks off mid-body ends the log there, as upstream's copy
        // loop does: the client gets a complete response with what arrived.
        .take_while(|chunk| {
            if let Err(e) = chunk {
                tracing::debug!(error = %e, "kubelet body broke off");
            }
            futures::future::ready(chunk.is_ok())
        });
    Ok(Reply {
        status,
        body: Body::from_stream(chunks),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn endpoints_prefer_internal_ip_then_hostname() {
        let node = json!({"status": {
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "10.0.0.5"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}},
        }});
        let endpoint = Endpoint::of_node(&node).expect("endpoint");
        assert_eq!(endpoint.authority(), "10.0.0.5:10255");

        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        let endpoint = Endpoint::of_node(&node).expect("endpoint");
        assert_eq!(endpoint.authority(), format!("n1:{DEFAULT_PORT}"));

        let node = json!({"status": {"addresses": [{"type": "InternalIP", "address": "fd00::1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}});
        let endpoint = Endpoint::of_node(&node).expect("endpoint");
        assert_eq!(endpoint.authority(), "[fd00::1]:10250");

        let node =
            json!({"status": {"addresses": [{"type": "InternalDNS", "address": "n1.local"}]}});
        let e = Endpoint::of_node(&node).expect_err("no usable address");
        assert_eq!(
            e.to_string(),
            "no preferred addresses found; known addresses: [{InternalDNS n1.local}]"
        );
    }

    #[test]
    fn log_paths_carry_only_the_set_options() {
        let path = container_logs_path("ns", "web", "app", &LogOptions::default());
        assert_eq!(path, "/containerLogs/ns/web/app");
        let options = LogOptions {
            follow: true,
            previous: true,
            timestamps: true,
            since_seconds: Some(30),
            tail_lines: Some(0),
            limit_bytes: Some(512),
        };
        assert_eq!(
            container_logs_path("ns", "web", "app", &options),
            "/containerLogs/ns/web/app?follow=true&previous=true&timestamps=true&sinceSeconds=30&tailLines=0&limitBytes=512"
        );
    }
}
