//! The DNS server: hickory's UDP and TCP listeners on one address, and a request
//! handler that answers the cluster zone from the current [`Model`] and forwards the
//! rest upstream.
//!
//! Until the watch has listed the cluster once, questions about the zone get SERVFAIL
//! (clients retry) rather than an NXDOMAIN their resolvers would cache.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::{DNSClass, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use crate::forward::{ForwardError, Upstream};
use crate::model::Model;
use crate::resolve::{Answer, Outcome, Zone, resolve};

/// How long a TCP connection may stay idle between requests.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// The EDNS version this server speaks.
const EDNS_VERSION: u8 = 0;
/// Attempts at finding a port free for both UDP and TCP when asked for port 0.
const BIND_ATTEMPTS: usize = 16;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(String),
}

/// The model queries read, swapped whole by the watch.
#[derive(Debug, Default)]
pub struct SharedModel {
    model: RwLock<Arc<Model>>,
    synced: AtomicBool,
}

impl SharedModel {
    /// A model that is ready to serve (hand-built models, tests).
    pub fn ready(model: Model) -> Arc<SharedModel> {
        let shared = Arc::new(SharedModel::default());
        shared.replace(model);
        shared.set_synced();
        shared
    }

    pub fn current(&self) -> Arc<Model> {
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, model: Model) {
        *self.model.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(model);
    }

    /// The cluster has been listed once: the zone can be answered.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

/// The request handler.
#[derive(Debug)]
pub struct Handler {
    model: Arc<SharedModel>,
    zone: Zone,
    upstream: Upstream,
}

impl Handler {
    pub fn new(model: Arc<SharedModel>, zone: Zone, upstream: Upstream) -> Handler {
        Handler {
            model,
            zone,
            upstream,
        }
    }

    /// The answer to a well-formed query, or an error code.
    async fn answer(&self, request: &Request) -> Result<Reply, ResponseCode> {
        if request.metadata.op_code != OpCode::Query {
            return Err(ResponseCode::NotImp);
        }
        if request.metadata.message_type != MessageType::Query {
            return Err(ResponseCode::FormErr);
        }
        let [query] = request.queries.queries() else {
            return Err(ResponseCode::FormErr);
        };
        if query.query_class() != DNSClass::IN {
            return Err(ResponseCode::Refused);
        }
        let qname = query.original().name();
        let qtype = query.query_type();
        let model = self.model.current();
        match resolve(&model, &self.zone, qname, qtype) {
            Outcome::Authoritative(_) if !self.model.is_synced() => Err(ResponseCode::ServFail),
            Outcome::Authoritative(mut answer) => {
                if let Some(target) = answer.chase.take() {
                    let chased = self.upstream.lookup(&target, qtype).await;
                    answer.answers.extend(chased);
                }
                Ok(Reply::Authoritative(answer))
            }
            Outcome::NotOurs => match self.upstream.forward(request.as_slice()).await {
                Ok(message) => Ok(Reply::Forwarded(message)),
                Err(ForwardError::NoUpstream) => Err(ResponseCode::Refused),
                Err(e) => {
                    tracing::debug!(name = %qname, error = %e, "forwarding");
                    Err(ResponseCode::ServFail)
                }
            },
        }
    }
}

enum Reply {
    Authoritative(Answer),
    Forwarded(Message),
}

// hickory's trait is written with async-trait.
#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let request_edns = request.edns.as_ref();
        let mut response_edns = None;
        if let Some(edns) = request_edns {
            let mut ours = Edns::new();
            ours.set_max_payload(edns.max_payload().max(512));
            ours.set_version(EDNS_VERSION);
            response_edns = Some(ours);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let bad_version = request_edns.is_some_and(|e| e.version() > EDNS_VERSION);
        let reply = if bad_version {
            Err(ResponseCode::BADVERS)
        } else {
            self.answer(request).await
        };
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let empty: [Record; 0] = [];
        let sent = match &reply {
            Ok(Reply::Authoritative(answer)) => {
                metadata.authoritative = true;
                metadata.response_code = answer.rcode;
                let response = builder.build(
                    metadata,
                    answer.answers.iter(),
                    answer.authorities.iter(),
                    empty.iter(),
                    answer.additionals.iter(),
                );
                response_handle.send_response(response).await
            }
            Ok(Reply::Forwarded(message)) => {
                // The upstream's flags and code, our id and question.
                let mut relayed = message.metadata;
                relayed.id = request.metadata.id;
                relayed.authoritative = false;
                relayed.recursion_available = true;
                relayed.truncation = false;
                let response = builder.build(
                    relayed,
                    message.answers.iter(),
                    message.authorities.iter(),
                    empty.iter(),
                    message
                        .additionals
                        .iter()
                        .filter(|r| r.record_type() != hickory_server::proto::rr::RecordType::OPT),
                );
                response_handle.send_response(response).await
            }
            Err(code) => {
                metadata.response_code = *code;
                response_handle
                    .send_response(builder.build_no_records(metadata))
                    .await
            }
        };
        sent.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "sending a response");
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        })
    }
}

/// A running server.
pub struct Running {
    /// Where it answers, UDP and TCP (the port actually bound).
    pub addr: SocketAddr,
    server: Server<Handler>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // hickory's Server has no Debug.
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Stops accepting and waits for the listeners to finish.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        self.server
            .shutdown_gracefully()
            .await
            .map_err(|e| ServerError::Serve(e.to_string()))
    }

    /// Runs until the listeners fail.
    pub async fn wait(mut self) -> Result<(), ServerError> {
        self.server
            .block_until_done()
            .await
            .map_err(|e| ServerError::Serve(e.to_string()))
    }
}

/// Binds UDP and TCP on `addr` (port 0: one free port for both) and serves.
pub async fn serve(addr: SocketAddr, handler: Handler) -> Result<Running, ServerError> {
    let (udp, tcp) = bind(addr).await?;
    let bound = udp
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
    tracing::info!(addr = %bound, "dns listening (udp, tcp)");
    Ok(Running {
        addr: bound,
        server,
    })
}

async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ServerError> {
    let err = |addr, source| ServerError::Bind { addr, source };
    if addr.port() != 0 {
        let udp = UdpSocket::bind(addr).await.map_err(|e| err(addr, e))?;
        let tcp = TcpListener::bind(addr).await.map_err(|e| err(addr, e))?;
        return Ok((udp, tcp));
    }
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind(addr).await.map_err(|e| err(addr, e))?;
        let chosen = udp.local_addr().map_err(|e| err(addr, e))?;
        match TcpListener::bind(chosen).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // The port is free for UDP but taken for TCP: try another.
            Err(e) => last = Some(err(chosen, e)),
        }
    }
    Err(last.unwrap_or_else(|| err(addr, std::io::Error::other("no free port"))))
}
