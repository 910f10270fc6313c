//! The server on a real socket (127.0.0.1, a free port), UDP and TCP, with a
//! hand-built model and a fake upstream: what a pod's resolver sees on the wire.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns::forward::Upstream;
use dns::model::{Endpoint, Kind, Model, Port, ServiceEntry};
use dns::server::{Handler, SharedModel, serve};
use dns::{Running, Zone};
use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

fn model(endpoints: usize) -> Model {
    let mut m = Model::default();
    m.add_service(
        "default",
        "web",
        ServiceEntry {
            kind: Kind::ClusterIp(vec![ip("10.43.0.20")]),
            ports: vec![Port {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 80,
            }],
            endpoints: vec![],
        },
    );
    let many = (0..endpoints)
        .map(|i| {
            let ip = ip(&format!("10.42.{}.{}", i / 250, i % 250 + 1));
            Endpoint {
                ip,
                name: dns::model::dashed(&ip),
                ports: vec![],
            }
        })
        .collect();
    m.add_service(
        "default",
        "many",
        ServiceEntry {
            kind: Kind::Headless,
            ports: vec![],
            endpoints: many,
        },
    );
    m
}

/// A fake upstream: answers every A question with 192.0.2.99.
async fn fake_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::response(query.metadata.id, OpCode::Query);
            reply.metadata.recursion_available = true;
            for q in &query.queries {
                reply.add_query(q.clone());
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    60,
                    RData::A(A("192.0.2.99".parse().expect("ip"))),
                ));
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    addr
}

async fn start(model: Arc<SharedModel>, upstream: Upstream) -> Running {
    let zone = Zone::new("cluster.local", Some(ip("10.43.0.10"))).expect("zone");
    serve(
        "127.0.0.1:0".parse().expect("addr"),
        Handler::new(model, zone, upstream),
    )
    .await
    .expect("serve")
}

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        message.set_edns(e);
    }
    message.to_vec().expect("encode")
}

async fn udp(server: SocketAddr, name: &str, qtype: RecordType, edns: bool) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket
        .send_to(&query(name, qtype, edns), server)
        .await
        .expect("send");
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("an answer within 5 s")
        .expect("recv");
    Message::from_vec(&buf[..n]).expect("decode")
}

async fn tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let bytes = query(name, qtype, false);
    let len = u16::try_from(bytes.len()).expect("len");
    stream.write_all(&len.to_be_bytes()).await.expect("write");
    stream.write_all(&bytes).await.expect("write");
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut len))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.expect("read");
    Message::from_vec(&answer).expect("decode")
}

fn addresses(message: &Message) -> Vec<String> {
    let mut out: Vec<String> = message
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| r.data.to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn answers_the_zone_over_udp_and_tcp() {
    let server = start(
        SharedModel::ready(model(3)),
        Upstream::new(vec![], Duration::from_secs(1)),
    )
    .await;
    let addr = server.addr;

    for edns in [false, true] {
        let a = udp(addr, "web.default.svc.cluster.local.", RecordType::A, edns).await;
        assert_eq!(a.metadata.id, 0x4242);
        assert_eq!(a.metadata.message_type, MessageType::Response);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert!(a.metadata.authoritative);
        assert_eq!(addresses(&a), ["10.43.0.20"]);
        assert_eq!(a.answers[0].ttl, 5);
        assert_eq!(a.edns.is_some(), edns, "EDNS answered in kind");
    }

    let a = tcp(addr, "WEB.Default.SVC.cluster.local.", RecordType::A).await;
    assert_eq!(addresses(&a), ["10.43.0.20"]);
    assert_eq!(
        a.queries[0].name().to_ascii(),
        "WEB.Default.SVC.cluster.local.",
        "the question comes back as asked"
    );

    let srv = tcp(
        addr,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(srv.answers.len(), 1);
    assert_eq!(
        srv.answers[0].data.to_string(),
        "0 100 80 web.default.svc.cluster.local."
    );
    assert_eq!(srv.additionals[0].data.to_string(), "10.43.0.20");

    let headless = udp(
        addr,
        "many.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(
        addresses(&headless),
        ["10.42.0.1", "10.42.0.2", "10.42.0.3"]
    );

    let nx = udp(
        addr,
        "nope.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.answers.is_empty());
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);

    let nodata = udp(addr, "default.svc.cluster.local.", RecordType::A, false).await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);

    // Outside the zone with no upstream: refused at once.
    let started = Instant::now();
    let refused = udp(addr, "example.com.", RecordType::A, false).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(started.elapsed() < Duration::from_secs(1));

    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn big_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let server = start(
        SharedModel::ready(model(100)),
        Upstream::new(vec![], Duration::from_secs(1)),
    )
    .await;
    let small = udp(
        server.addr,
        "many.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert!(small.metadata.truncation, "100 A records exceed 512 bytes");
    let whole = tcp(
        server.addr,
        "many.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert!(!whole.metadata.truncation);
    assert_eq!(whole.answers.len(), 100);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn forwards_outside_names_and_fails_fast_when_upstream_is_silent() {
    let upstream = fake_upstream().await;
    let server = start(
        SharedModel::ready(model(0)),
        Upstream::new(vec![upstream], Duration::from_secs(2)),
    )
    .await;
    for answer in [
        udp(server.addr, "example.com.", RecordType::A, false).await,
        tcp(server.addr, "example.com.", RecordType::A).await,
    ] {
        assert_eq!(answer.metadata.id, 0x4242);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(!answer.metadata.authoritative);
        assert_eq!(addresses(&answer), ["192.0.2.99"]);
    }
    server.shutdown().await.expect("shutdown");

    // An upstream that never answers: SERVFAIL within the forward deadline.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let server = start(
        SharedModel::ready(model(0)),
        Upstream::new(
            vec![silent.local_addr().expect("addr")],
            Duration::from_millis(300),
        ),
    )
    .await;
    let started = Instant::now();
    let failed = udp(server.addr, "example.com.", RecordType::A, false).await;
    assert_eq!(failed.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(2));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn zone_questions_wait_for_the_first_list() {
    let shared = Arc::new(SharedModel::default());
    let server = start(
        shared.clone(),
        Upstream::new(vec![], Duration::from_secs(1)),
    )
    .await;
    let early = udp(
        server.addr,
        "web.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(
        early.metadata.response_code,
        ResponseCode::ServFail,
        "no NXDOMAIN to cache"
    );
    shared.replace(model(0));
    shared.set_synced();
    let later = udp(
        server.addr,
        "web.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(addresses(&later), ["10.43.0.20"]);
    server.shutdown().await.expect("shutdown");
}
