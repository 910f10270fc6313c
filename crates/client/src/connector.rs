//! The failover connector: hyper asks it for a connection to "the" API server (every
//! request carries the first server's URI, so all connections share one pool key) and it
//! decides where the bytes actually go.
//!
//! Each new connection tries the servers in order, starting from the last one that
//! worked, giving each a short connect timeout. Every connection it hands out has TCP
//! keepalive (a peer that vanishes without FIN is noticed within seconds of idleness),
//! TCP_USER_TIMEOUT (the same for unacknowledged writes), TCP_NODELAY, and a read
//! timeout: a read left waiting longer than that fails, which is how a hung server
//! (SIGSTOP, a wedged process that still ACKs) is noticed. API servers send watch
//! bookmarks every few seconds, so a healthy watch is never silent that long.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Idle time before the first keepalive probe.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(2);
/// Time between keepalive probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// Unanswered probes before the kernel gives up on the connection.
const KEEPALIVE_PROBES: u32 = 3;
/// How long written data may stay unacknowledged: keepalive only covers idle
/// connections, this covers the ones with data in flight (idle + probes, so both agree).
const USER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The connector was given no servers.
    #[error("no API servers to connect to")]
    NoServers,
    /// Every server failed; the reasons, one per server, in the order tried.
    #[error("no API server reachable: {}", .0.join("; "))]
    AllFailed(Vec<String>),
}

/// One server: where to connect, and its URL for the logs.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    url: String,
}

impl Target {
    fn from_uri(uri: &Uri) -> Self {
        let host = uri
            .host()
            .unwrap_or("localhost")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        Target {
            host,
            port,
            url: uri.to_string().trim_end_matches('/').to_string(),
        }
    }
}

/// State every clone of a connector (and every connection it made) shares.
#[derive(Debug)]
struct Shared {
    servers: Vec<Target>,
    /// The index of the server new connections try first.
    current: AtomicUsize,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
}

impl Shared {
    /// A connection to `index` went silent: start the next connections one further,
    /// unless another connection already moved on.
    fn suspect(&self, index: usize) {
        let next = (index + 1) % self.servers.len();
        if next != index
            && self
                .current
                .compare_exchange(index, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            tracing::info!(
                server = %self.servers[index].url,
                next = %self.servers[next].url,
                "API server silent past the read timeout; new connections try the next one first"
            );
        }
    }
}

/// A hyper connector over a fixed list of API servers (see the module docs).
#[derive(Debug, Clone)]
pub struct FailoverConnector {
    shared: Arc<Shared>,
}

impl FailoverConnector {
    /// A connector over `servers` (tried in this order at first).
    pub fn new(servers: &[Uri], connect_timeout: Duration, read_timeout: Option<Duration>) -> Self {
        FailoverConnector {
            shared: Arc::new(Shared {
                servers: servers.iter().map(Target::from_uri).collect(),
                current: AtomicUsize::new(0),
                connect_timeout,
                read_timeout,
            }),
        }
    }

    /// The URL of the server new connections try first.
    pub fn current(&self) -> Option<&str> {
        let index = self.shared.current.load(Ordering::Acquire);
        self.shared.servers.get(index).map(|t| t.url.as_str())
    }

    /// Connects to the first server that answers, starting from the current one.
    pub async fn connect(&self) -> Result<ServerStream, ConnectError> {
        let shared = &self.shared;
        let count = shared.servers.len();
        if count == 0 {
            return Err(ConnectError::NoServers);
        }
        let start = shared.current.load(Ordering::Acquire) % count;
        let mut failures = Vec::new();
        for offset in 0..count {
            let index = (start + offset) % count;
            let target = &shared.servers[index];
            let attempt = tokio::time::timeout(shared.connect_timeout, connect_tcp(target)).await;
            let error = match attempt {
                Ok(Ok(stream)) => {
                    if index != start {
                        tracing::info!(
                            from = %shared.servers[start].url,
                            to = %target.url,
                            "failing over to another API server"
                        );
                    }
                    shared.current.store(index, Ordering::Release);
                    return Ok(ServerStream::new(stream, Arc::clone(shared), index));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no connection within {:?}", shared.connect_timeout),
            };
            tracing::debug!(server = %target.url, error = %error, "API server unreachable");
            failures.push(format!("{}: {error}", target.url));
        }
        Err(ConnectError::AllFailed(failures))
    }
}

/// A TCP connection to `target` (each of its addresses in turn), tuned as the module
/// docs say.
async fn connect_tcp(target: &Target) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for address in tokio::net::lookup_host((target.host.as_str(), target.port)).await? {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                tune(&stream)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn tune(stream: &TcpStream) -> io::Result<()> {
    // Requests are small and latency matters more than packet count.
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES),
    )?;
    socket.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    Ok(())
}

impl tower::Service<Uri> for FailoverConnector {
    type Response = ServerStream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<ServerStream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// The URI is ignored: it names the pool, the server list names the targets.
    fn call(&mut self, _uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.connect().await })
    }
}

/// A connection made by [`FailoverConnector`], with its read timeout.
#[derive(Debug)]
pub struct ServerStream {
    io: TokioIo<TcpStream>,
    shared: Arc<Shared>,
    index: usize,
    /// Armed while a read waits; reset whenever bytes (or EOF) arrive.
    deadline: Pin<Box<Sleep>>,
    armed: bool,
}

impl ServerStream {
    fn new(stream: TcpStream, shared: Arc<Shared>, index: usize) -> Self {
        ServerStream {
            io: TokioIo::new(stream),
            shared,
            index,
            deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        }
    }
}

impl Read for ServerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let Some(timeout) = this.shared.read_timeout else {
                    return Poll::Pending;
                };
                if !this.armed {
                    this.deadline.as_mut().reset(Instant::now() + timeout);
                    this.armed = true;
                }
                match this.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.armed = false;
                        this.shared.suspect(this.index);
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "no data from {} within {timeout:?}",
                                this.shared.servers[this.index].url
                            ),
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl Write for ServerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

impl Connection for ServerStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::ClientConfig;

    /// A deadline for anything a test waits on.
    const WAIT: Duration = Duration::from_secs(10);

    async fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        (listener, address)
    }

    fn url(address: SocketAddr) -> Uri {
        format!("http://{address}").parse().expect("test URL")
    }

    /// Accepts one connection within the deadline.
    async fn accepts(listener: &TcpListener) -> TcpStream {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("a connection within the deadline")
            .expect("accept");
        stream
    }

    /// Serves HTTP/1.1 on `listener`, answering every request with `body`.
    fn serve(listener: TcpListener, body: &'static str) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                        if request.windows(4).any(|w| w == b"\r\n\r\n") {
                            request.clear();
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\
                                 content-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if stream.write_all(response.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        })
    }

    #[tokio::test]
    async fn connections_fail_over_and_stay_on_the_server_that_worked() {
        let (first, first_address) = listener().await;
        let (second, second_address) = listener().await;
        let connector = FailoverConnector::new(
            &[url(first_address), url(second_address)],
            Duration::from_secs(1),
            None,
        );

        // Both up: the first is used.
        let _a = connector.connect().await.expect("connect");
        accepts(&first).await;
        assert_eq!(
            connector.current(),
            Some(url(first_address).to_string().trim_end_matches('/'))
        );

        // The first gone: the second, and it becomes the one tried first.
        drop(first);
        let _b = connector
            .connect()
            .await
            .expect("connect with the first down");
        accepts(&second).await;
        let second_url = url(second_address).to_string();
        assert_eq!(connector.current(), Some(second_url.trim_end_matches('/')));

        // The first back: connections stay on the second while it works…
        let first = TcpListener::bind(first_address)
            .await
            .expect("rebind the first");
        let _c = connector.connect().await.expect("connect with both up");
        accepts(&second).await;
        // …and go back to the first when the second goes.
        drop(second);
        let _d = connector
            .connect()
            .await
            .expect("connect with the second down");
        accepts(&first).await;

        // Both gone: an error naming both.
        drop(first);
        let error = connector
            .connect()
            .await
            .expect_err("no server up")
            .to_string();
        assert!(error.contains(&first_address.to_string()), "{error}");
        assert!(error.contains(&second_address.to_string()), "{error}");
    }

    #[tokio::test]
    async fn requests_go_to_the_live_server() {
        let (dead, dead_address) = listener().await;
        drop(dead);
        let (live, live_address) = listener().await;
        let server = serve(live, "live");
        let client = ClientConfig::for_servers(vec![url(dead_address), url(live_address)])
            .client()
            .expect("client");
        for _ in 0..3 {
            let request = http::Request::get("/version")
                .body(Vec::new())
                .expect("request");
            let text = tokio::time::timeout(WAIT, client.request_text(request))
                .await
                .expect("an answer within the deadline")
                .expect("request through the failover connector");
            assert_eq!(text, "live");
        }
        server.abort();
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_is_passed_over() {
        let (silent, silent_address) = listener().await;
        let (live, live_address) = listener().await;
        let config = ClientConfig::for_servers(vec![url(silent_address), url(live_address)])
            .with_read_timeout(Duration::from_millis(300));
        let client = config.client().expect("client");
        // The silent server accepts and reads, but never answers.
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                held.push(stream);
            }
        });
        let server = serve(live, "live");

        let request = http::Request::get("/version")
            .body(Vec::new())
            .expect("request");
        let started = Instant::now();
        let result = tokio::time::timeout(WAIT, client.request_text(request))
            .await
            .expect("the read timeout fires before the test deadline");
        let error = result.expect_err("no answer from a silent server");
        assert!(started.elapsed() >= Duration::from_millis(300), "{error}");

        // The next connection skips the server that went silent.
        let request = http::Request::get("/version")
            .body(Vec::new())
            .expect("request");
        let text = tokio::time::timeout(WAIT, client.request_text(request))
            .await
            .expect("an answer within the deadline")
            .expect("the next request goes to the live server");
        assert_eq!(text, "live");
        hold.abort();
        server.abort();
    }
}
