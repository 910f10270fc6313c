//! The userspace fallback: TCP listeners that accept connections and splice them to
//! an endpoint, round-robin (with ClientIP affinity when the service asks for it).
//!
//! Where it listens, and its limits (why nftables is the default):
//! - a service port's ClusterIP cannot be listened on (the address is on no
//!   interface, and `dummy` interfaces are unavailable), so each service port gets a
//!   *loopback twin*: ClusterIP `a.b.c.d` port P is served on `127.b.c.d:P` (all of
//!   127.0.0.0/8 is local on Linux). Only processes on this host reach it; pods do not.
//! - NodePorts listen on `0.0.0.0:<nodePort>`, so they answer on every address,
//!   from anywhere, but the endpoint sees the proxy's address, never the client's.
//! - TCP only; UDP and SCTP ports are skipped. Traffic policies `Local` are applied
//!   as the model computes them.
//! - a port without endpoints has no listener, so connections are refused at once.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::model::{Endpoint, Model, Protocol};

/// How long a connection to an endpoint may take before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Affinity entries kept at most per listener (bounded, like everything).
const MAX_AFFINITY_ENTRIES: usize = 65536;

/// The loopback twin of a ClusterIP: `a.b.c.d` → `127.b.c.d`.
pub fn loopback_twin(cluster_ip: Ipv4Addr) -> Ipv4Addr {
    let [_, b, c, d] = cluster_ip.octets();
    Ipv4Addr::new(127, b, c, d)
}

/// Where one listener sends its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Backends {
    endpoints: Vec<Endpoint>,
    affinity: Option<Duration>,
}

/// The addresses to listen on for a model, each with its backends (pure).
fn listeners(model: &Model) -> BTreeMap<SocketAddr, Backends> {
    let mut wanted = BTreeMap::new();
    for port in &model.ports {
        if port.id.protocol != Protocol::Tcp {
            continue;
        }
        let affinity = port
            .affinity_seconds
            .map(|s| Duration::from_secs(u64::from(s)));
        if !port.cluster_endpoints.is_empty() {
            let addr = SocketAddr::from((loopback_twin(port.cluster_ip), port.id.port));
            wanted.insert(
                addr,
                Backends {
                    endpoints: port.cluster_endpoints.clone(),
                    affinity,
                },
            );
        }
        if let Some(np) = port.node_port
            && !port.external_endpoints.is_empty()
        {
            wanted.insert(
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, np)),
                Backends {
                    endpoints: port.external_endpoints.clone(),
                    affinity,
                },
            );
        }
    }
    wanted
}

/// State shared by a listener's accept loop and the proxier.
#[derive(Debug)]
struct Shared {
    backends: Mutex<Backends>,
    next: AtomicUsize,
    /// Client address → (endpoint, last use).
    clients: Mutex<HashMap<IpAddr, (Endpoint, Instant)>>,
}

impl Shared {
    /// The endpoints to try for a client, best first: its affinity endpoint, then
    /// round-robin order starting at the next turn.
    fn order(&self, client: IpAddr) -> (Vec<Endpoint>, Option<Duration>) {
        let backends = match self.backends.lock() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let n = backends.endpoints.len();
        if n == 0 {
            return (Vec::new(), None);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut order: Vec<Endpoint> = (0..n)
            .map(|i| backends.endpoints[(start + i) % n])
            .collect();
        if let Some(timeout) = backends.affinity
            && let Ok(clients) = self.clients.lock()
            && let Some((ep, used)) = clients.get(&client)
            && used.elapsed() < timeout
            && let Some(i) = order.iter().position(|e| e == ep)
        {
            let ep = order.remove(i);
            order.insert(0, ep);
        }
        (order, backends.affinity)
    }

    fn remember(&self, client: IpAddr, ep: Endpoint, timeout: Duration) {
        if let Ok(mut clients) = self.clients.lock() {
            if clients.len() >= MAX_AFFINITY_ENTRIES {
                clients.retain(|_, (_, used)| used.elapsed() < timeout);
            }
            if clients.len() < MAX_AFFINITY_ENTRIES || clients.contains_key(&client) {
                clients.insert(client, (ep, Instant::now()));
            }
        }
    }
}

#[derive(Debug)]
struct Listener {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// Why a userspace sync was incomplete.
#[derive(Debug, thiserror::Error)]
pub enum UserspaceError {
    /// Some addresses could not be listened on (in use, or not local); the others work.
    #[error("cannot listen on {}", .0.iter().map(|(a, e)| format!("{a} ({e})")).collect::<Vec<_>>().join(", "))]
    Bind(Vec<(SocketAddr, std::io::Error)>),
}

/// The userspace proxier: one listener per (loopback twin | NodePort).
#[derive(Debug, Default)]
pub struct UserspaceProxier {
    listeners: BTreeMap<SocketAddr, Listener>,
}

impl UserspaceProxier {
    pub fn new() -> UserspaceProxier {
        UserspaceProxier::default()
    }

    /// The addresses listened on now.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.listeners.keys().copied().collect()
    }

    /// Opens, updates and closes listeners to match `model`. Open connections stay
    /// up when their listener goes (as conntrack entries do in the kernel path).
    pub async fn sync(&mut self, model: &Model) -> Result<(), UserspaceError> {
        let wanted = listeners(model);
        self.listeners.retain(|addr, listener| {
            let keep = wanted.contains_key(addr);
            if !keep {
                listener.task.abort();
            }
            keep
        });
        let mut failed = Vec::new();
        for (addr, backends) in wanted {
            if let Some(listener) = self.listeners.get(&addr) {
                match listener.shared.backends.lock() {
                    Ok(mut b) => *b = backends,
                    Err(poisoned) => *poisoned.into_inner() = backends,
                }
                continue;
            }
            match TcpListener::bind(addr).await {
                Ok(socket) => {
                    let shared = Arc::new(Shared {
                        backends: Mutex::new(backends),
                        next: AtomicUsize::new(0),
                        clients: Mutex::new(HashMap::new()),
                    });
                    let task = tokio::spawn(serve(socket, shared.clone()));
                    self.listeners.insert(addr, Listener { shared, task });
                }
                Err(e) => failed.push((addr, e)),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(UserspaceError::Bind(failed))
        }
    }

    /// Closes every listener.
    pub fn cleanup(&mut self) {
        for (_, listener) in std::mem::take(&mut self.listeners) {
            listener.task.abort();
        }
    }
}

impl Drop for UserspaceProxier {
    fn drop(&mut self) {
        self.cleanup();
    }
}

async fn serve(socket: TcpListener, shared: Arc<Shared>) {
    loop {
        match socket.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(splice(client, peer, shared.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "userspace proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn splice(mut client: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let (order, affinity) = shared.order(peer.ip());
    for ep in order {
        let target = SocketAddr::from((ep.ip, ep.port));
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(mut upstream)) => {
                if let Some(timeout) = affinity {
                    shared.remember(peer.ip(), ep, timeout);
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            Ok(Err(e)) => tracing::debug!(%target, error = %e, "endpoint refused; trying the next"),
            Err(_) => tracing::debug!(%target, "endpoint timed out; trying the next"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ServicePort, ServicePortName};

    fn port(protocol: Protocol, endpoints: Vec<Endpoint>, node_port: Option<u16>) -> ServicePort {
        ServicePort {
            id: ServicePortName {
                namespace: "default".into(),
                name: "web".into(),
                protocol,
                port: 80,
            },
            cluster_ip: Ipv4Addr::new(10, 43, 1, 2),
            node_port,
            affinity_seconds: None,
            cluster_endpoints: endpoints.clone(),
            external_endpoints: endpoints.clone(),
            endpoints,
            external_local: false,
        }
    }

    fn ep(last: u8) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(10, 42, 0, last),
            port: 8080,
        }
    }

    #[test]
    fn listeners_table() {
        // (name, ports, expected addresses)
        let cases: Vec<(&str, Vec<ServicePort>, Vec<&str>)> = vec![
            (
                "cluster ip twin",
                vec![port(Protocol::Tcp, vec![ep(2)], None)],
                vec!["127.43.1.2:80"],
            ),
            (
                "node port too",
                vec![port(Protocol::Tcp, vec![ep(2)], Some(30080))],
                vec!["0.0.0.0:30080", "127.43.1.2:80"],
            ),
            (
                "no endpoints: nothing",
                vec![port(Protocol::Tcp, vec![], Some(30080))],
                vec![],
            ),
            (
                "udp skipped",
                vec![port(Protocol::Udp, vec![ep(2)], None)],
                vec![],
            ),
        ];
        for (name, ports, want) in cases {
            let got: Vec<String> = listeners(&Model { ports })
                .keys()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn round_robin_and_affinity_order() {
        let shared = Shared {
            backends: Mutex::new(Backends {
                endpoints: vec![ep(2), ep(3), ep(4)],
                affinity: None,
            }),
            next: AtomicUsize::new(0),
            clients: Mutex::new(HashMap::new()),
        };
        let client: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        let firsts: Vec<u8> = (0..6)
            .map(|_| shared.order(client).0[0].ip.octets()[3])
            .collect();
        assert_eq!(firsts, [2, 3, 4, 2, 3, 4]);

        if let Ok(mut b) = shared.backends.lock() {
            b.affinity = Some(Duration::from_secs(60));
        }
        shared.remember(client, ep(3), Duration::from_secs(60));
        for _ in 0..4 {
            assert_eq!(shared.order(client).0[0], ep(3));
        }
    }
}
