//! The nftables data path end to end, in network namespaces this test creates: a
//! "node" namespace with a bridge (10.42.0.1/24, plus 192.168.200.1 as the node
//! address), and three "pod" namespaces on it running a TCP server that answers with
//! its own address. The proxier programs the node's table; connections are made from
//! the node (host-originated: the output hook) and from a pod (prerouting, hairpin).
//!
//! The node routes the service CIDR to the bridge: a host-originated connection needs
//! a route for its destination before the output hook can translate it (a blackhole
//! route fails `connect` with EINVAL first).

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use common::Netns;
use proxy::model::{Endpoint, Model, Protocol, ServicePort, ServicePortName};
use proxy::nftables::NftProxier;
use proxy::{Ipv4Cidr, RuleOptions};

const PODS: [u8; 3] = [2, 3, 4];

struct Cluster {
    // Pods first: they are deleted before the node that holds their bridge.
    pods: Vec<Netns>,
    node: Netns,
}

impl Cluster {
    async fn new() -> anyhow::Result<Cluster> {
        let node = Netns::new("mpx-node")?;
        node.ip(&["link", "add", "br0", "type", "bridge"])?;
        node.ip(&["addr", "add", "10.42.0.1/24", "dev", "br0"])?;
        node.ip(&["addr", "add", "192.168.200.1/24", "dev", "br0"])?;
        node.ip(&["link", "set", "br0", "up"])?;
        node.ip(&["route", "add", "10.43.0.0/16", "dev", "br0"])?;
        node.exec(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
        let mut pods = Vec::new();
        for last in PODS {
            let pod = Netns::new("mpx-pod")?;
            let veth = format!("v{last}");
            node.ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &pod.name,
            ])?;
            node.ip(&["link", "set", &veth, "master", "br0", "up"])?;
            // A pod reaching itself through its service comes back out of its own port.
            node.ip(&[
                "link",
                "set",
                &veth,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ])?;
            let ip = format!("10.42.0.{last}/24");
            pod.ip(&["addr", "add", &ip, "dev", "eth0"])?;
            pod.ip(&["link", "set", "eth0", "up"])?;
            pod.ip(&["route", "add", "default", "via", "10.42.0.1"])?;
            let listener = pod.within(|| std::net::TcpListener::bind(("0.0.0.0", 8080)))??;
            listener.set_nonblocking(true)?;
            tokio::spawn(serve(tokio::net::TcpListener::from_std(listener)?, last));
            pods.push(pod);
        }
        Ok(Cluster { pods, node })
    }

    /// `count` connections to `addr` from `from`; the pods that answered, counted.
    async fn connect(
        ns: &Netns,
        addr: SocketAddr,
        count: usize,
    ) -> anyhow::Result<BTreeMap<u8, usize>> {
        let name = ns.name.clone();
        let results = ns.within(move || {
            (0..count)
                .map(|_| {
                    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                    let mut answer = String::new();
                    stream.read_to_string(&mut answer)?;
                    Ok::<_, std::io::Error>(answer)
                })
                .collect::<Result<Vec<String>, _>>()
        })?;
        let answers = results.with_context(|| format!("connecting to {addr} from {name}"))?;
        let mut seen = BTreeMap::new();
        for answer in answers {
            let last: u8 = answer.trim().parse().context("answer")?;
            *seen.entry(last).or_default() += 1;
        }
        Ok(seen)
    }

    /// The error one connection from `ns` to `addr` gets.
    fn refused(ns: &Netns, addr: SocketAddr) -> anyhow::Result<ErrorKind> {
        match ns.within(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)))? {
            Ok(_) => bail!("{addr} accepted a connection"),
            Err(e) => Ok(e.kind()),
        }
    }
}

/// Answers every connection with the pod's last address byte.
async fn serve(listener: tokio::net::TcpListener, last: u8) {
    use tokio::io::AsyncWriteExt;
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.write_all(format!("{last}\n").as_bytes()).await;
    }
}

fn port(name: &str, ip: [u8; 4], eps: &[u8], node_port: Option<u16>) -> ServicePort {
    let endpoints: Vec<Endpoint> = eps
        .iter()
        .map(|last| Endpoint {
            ip: Ipv4Addr::new(10, 42, 0, *last),
            port: 8080,
        })
        .collect();
    ServicePort {
        id: ServicePortName {
            namespace: "default".into(),
            name: name.into(),
            protocol: Protocol::Tcp,
            port: 80,
        },
        cluster_ip: Ipv4Addr::from(ip),
        node_port,
        affinity_seconds: None,
        cluster_endpoints: endpoints.clone(),
        external_endpoints: endpoints.clone(),
        endpoints,
        external_local: false,
    }
}

fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(ip), port))
}

fn assert_spread(seen: &BTreeMap<u8, usize>, pods: &[u8], each: usize, what: &str) {
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        pods,
        "{what}: {seen:?}"
    );
    for (pod, n) in seen {
        assert!(n.abs_diff(each) <= 1, "{what}: pod {pod} got {n}: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_refusal_node_ports_and_removal() -> anyhow::Result<()> {
    let cluster = Cluster::new().await?;
    let node = &cluster.node;
    let options = RuleOptions {
        cluster_cidr: Some("10.42.0.0/16".parse::<Ipv4Cidr>()?),
        nodeport_addresses: Vec::new(),
    };
    let web = [10, 43, 0, 10];
    let empty = [10, 43, 0, 11];
    let sticky_ip = [10, 43, 0, 12];
    let mut sticky = port("sticky", sticky_ip, &PODS, None);
    sticky.affinity_seconds = Some(600);
    let mut model = Model {
        ports: vec![
            port("empty", empty, &[], Some(30081)),
            sticky,
            port("web", web, &PODS, Some(30080)),
        ],
    };
    let mut proxier = NftProxier::new(node.nft(), options);
    proxier.sync(&model).await?;

    // Round-robin from the node: 30 connections, 10 ± 1 per endpoint.
    let seen = Cluster::connect(node, addr(web, 80), 30).await?;
    assert_spread(&seen, &PODS, 10, "ClusterIP from the node");

    // No endpoints: refused at once (not a timeout), on the ClusterIP and the NodePort.
    assert_eq!(
        Cluster::refused(node, addr(empty, 80))?,
        ErrorKind::ConnectionRefused
    );
    assert_eq!(
        Cluster::refused(node, addr([192, 168, 200, 1], 30081))?,
        ErrorKind::ConnectionRefused
    );

    // NodePort on the node's address, from the node itself.
    let seen = Cluster::connect(node, addr([192, 168, 200, 1], 30080), 30).await?;
    assert_spread(&seen, &PODS, 10, "NodePort from the node");

    // ClientIP affinity: one client, one endpoint.
    let seen = Cluster::connect(node, addr(sticky_ip, 80), 10).await?;
    assert_eq!(seen.len(), 1, "affinity: {seen:?}");

    // From a pod (prerouting), including back to itself (hairpin, masqueraded).
    let seen = Cluster::connect(&cluster.pods[0], addr(web, 80), 6).await?;
    assert_spread(&seen, &PODS, 2, "ClusterIP from a pod");

    // An endpoint leaves: out of rotation.
    model.ports[2] = port("web", web, &PODS[..2], Some(30080));
    proxier.sync(&model).await?;
    let seen = Cluster::connect(node, addr(web, 80), 30).await?;
    assert_spread(&seen, &PODS[..2], 15, "after removing an endpoint");

    // Endpoints come to the empty service: it answers.
    model.ports[0] = port("empty", empty, &PODS[2..], Some(30081));
    proxier.sync(&model).await?;
    let seen = Cluster::connect(node, addr(empty, 80), 3).await?;
    assert_spread(&seen, &PODS[2..], 3, "service given an endpoint");

    // The service is deleted: its rules go, its ClusterIP no longer answers.
    model.ports.remove(2);
    proxier.sync(&model).await?;
    let listed = node.nft().list_table().await?;
    assert!(!listed.contains("default/web/"), "{listed}");
    assert!(
        Cluster::refused(node, addr(web, 80)).is_ok(),
        "deleted service still answers"
    );

    proxier.cleanup().await?;
    assert!(node.nft().list_table().await.is_err());
    Ok(())
}
