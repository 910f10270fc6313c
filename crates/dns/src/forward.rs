//! Names outside the cluster zone go to the host's resolvers (`nameserver` lines of
//! `/etc/resolv.conf`), as CoreDNS's `forward . /etc/resolv.conf` does: the query's
//! bytes over UDP (TCP when the answer comes back truncated), the answer relayed.
//!
//! It never blocks for long: each query has one deadline for all upstreams; without an
//! upstream the server refuses at once, and after several queries in a row got nothing
//! the upstreams count as down for a while, failing queries at once (no internet here:
//! a pod's resolver must not hang on every lookup of an outside name).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one forwarded query may take, over all upstreams.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Queries in a row without an answer before the upstreams count as down.
const FAILURES_BEFORE_DOWN: u32 = 3;
/// How long they then count as down (queries fail at once meanwhile).
const DOWN_FOR: Duration = Duration::from_secs(5);
/// The largest UDP answer taken (EDNS payloads beyond this are rare).
const MAX_UDP: usize = 4096;

/// Why a query could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No upstream is configured: the server answers REFUSED.
    #[error("no upstream resolver")]
    NoUpstream,
    /// The upstreams failed recently; not tried again yet.
    #[error("upstream resolvers are down")]
    Down,
    /// No upstream answered before the deadline.
    #[error("no upstream answered within {0:?}")]
    Timeout(Duration),
    /// An upstream answered with something that is not a DNS message.
    #[error("upstream {server}: {message}")]
    Bad { server: SocketAddr, message: String },
    /// Sockets failed (unreachable network, refused).
    #[error("upstream {server}: {source}")]
    Io {
        server: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The upstream resolvers.
#[derive(Debug)]
pub struct Upstream {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    failures: AtomicU32,
    down_until: Mutex<Option<Instant>>,
}

/// What `resolv.conf` says (the parts DNS clients use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Parses `resolv.conf` text: `nameserver`, `search` (the last one wins, `domain` too),
/// `options`; comments start with `#` or `;`.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // Scoped IPv6 addresses (fe80::1%eth0) cannot be used from here.
                if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                    conf.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => {
                conf.search = words.map(str::to_string).collect();
            }
            Some("options") => conf.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    conf
}

impl Upstream {
    /// Forwards to `servers` (port 53 unless given), each query within `timeout`.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> Upstream {
        Upstream {
            servers,
            timeout,
            failures: AtomicU32::new(0),
            down_until: Mutex::new(None),
        }
    }

    /// The nameservers of a resolv.conf file, without `exclude` (this server itself:
    /// forwarding to it would loop). A missing file gives no upstream.
    pub fn from_resolv_conf(
        path: &std::path::Path,
        exclude: &[SocketAddr],
        timeout: Duration,
    ) -> Upstream {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let servers = parse_resolv_conf(&text)
            .nameservers
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .filter(|addr| !exclude.contains(addr))
            .collect();
        Upstream::new(servers, timeout)
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Sends the raw query `query` upstream; the answer as a message.
    pub async fn forward(&self, query: &[u8]) -> Result<Message, ForwardError> {
        if self.servers.is_empty() {
            return Err(ForwardError::NoUpstream);
        }
        {
            let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
            match *down {
                Some(until) if Instant::now() < until => return Err(ForwardError::Down),
                Some(_) => *down = None,
                None => {}
            }
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut last = ForwardError::Timeout(self.timeout);
        for server in &self.servers {
            match tokio::time::timeout_at(deadline, exchange(*server, query)).await {
                Ok(Ok(message)) => {
                    self.failures.store(0, Ordering::Relaxed);
                    return Ok(message);
                }
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = ForwardError::Timeout(self.timeout);
                    break;
                }
            }
        }
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= FAILURES_BEFORE_DOWN {
            self.failures.store(0, Ordering::Relaxed);
            let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
            *down = Some(Instant::now() + DOWN_FOR);
            tracing::warn!(error = %last, down_for = ?DOWN_FOR, "upstream resolvers not answering");
        }
        Err(last)
    }

    /// The records answering `name`/`qtype` upstream (an ExternalName's target);
    /// nothing when the upstream cannot tell.
    pub async fn lookup(&self, name: &Name, qtype: RecordType) -> Vec<Record> {
        let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name.clone(), qtype));
        let Ok(bytes) = message.to_vec() else {
            return Vec::new();
        };
        match self.forward(&bytes).await {
            Ok(answer) => answer.answers,
            Err(e) => {
                tracing::debug!(name = %name, error = %e, "chasing an external name");
                Vec::new()
            }
        }
    }
}

/// A query id: it only has to differ from query to query.
fn rand_id() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = nanos ^ NEXT.fetch_add(0x9e37, Ordering::Relaxed);
    (mixed & 0xffff) as u16
}

/// One query to one server: UDP, then TCP if the answer was truncated.
async fn exchange(server: SocketAddr, query: &[u8]) -> Result<Message, ForwardError> {
    let io = |source| ForwardError::Io { server, source };
    let bad = |message: String| ForwardError::Bad { server, message };
    let id = query
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| bad("query too short".into()))?;
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    // Connected: only the server's datagrams arrive, and ICMP errors surface.
    socket.connect(server).await.map_err(io)?;
    socket.send(query).await.map_err(io)?;
    let mut buf = vec![0u8; MAX_UDP];
    let message = loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        let Ok(message) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        // Stray or late answers to other queries are skipped.
        if message.metadata.id == id && message.metadata.message_type == MessageType::Response {
            break message;
        }
    };
    if !message.metadata.truncation {
        return Ok(message);
    }
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let len = u16::try_from(query.len()).map_err(|_| bad("query too long".into()))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(io)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(io)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.map_err(io)?;
    Message::from_vec(&answer).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let conf = parse_resolv_conf(
            "# generated\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\n\
             nameserver 192.0.2.1 ; second\nsearch a.example b.example\n\
             options ndots:2 timeout:1\noptions rotate\n",
        );
        assert_eq!(
            conf.nameservers,
            vec![
                "10.255.255.53".parse::<IpAddr>().expect("ip"),
                "192.0.2.1".parse().expect("ip")
            ]
        );
        assert_eq!(conf.search, ["a.example", "b.example"]);
        assert_eq!(conf.options, ["ndots:2", "timeout:1", "rotate"]);
        assert_eq!(parse_resolv_conf(""), ResolvConf::default());
    }

    #[tokio::test]
    async fn no_upstream_refuses_at_once() {
        let upstream = Upstream::new(Vec::new(), DEFAULT_TIMEOUT);
        assert!(matches!(
            upstream.forward(&[0, 1, 0, 0]).await,
            Err(ForwardError::NoUpstream)
        ));
    }

    #[tokio::test]
    async fn silent_upstreams_time_out_then_count_as_down() {
        // A socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = silent.local_addr().expect("addr");
        let upstream = Upstream::new(vec![addr], Duration::from_millis(50));
        let mut query = Message::new(7, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(
            Name::from_ascii("example.com.").expect("name"),
            RecordType::A,
        ));
        let bytes = query.to_vec().expect("encode");
        for _ in 0..FAILURES_BEFORE_DOWN {
            assert!(matches!(
                upstream.forward(&bytes).await,
                Err(ForwardError::Timeout(_))
            ));
        }
        let started = Instant::now();
        assert!(matches!(
            upstream.forward(&bytes).await,
            Err(ForwardError::Down)
        ));
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "fails at once"
        );
    }
}
