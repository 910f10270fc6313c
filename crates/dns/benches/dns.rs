//! Figures for the cluster DNS: how long a model rebuild takes (the watch rebuilds the
//! whole model per change batch), how long one resolution takes, and queries per second
//! over UDP on loopback with several clients in flight.
//!
//! `cargo bench -p mast-dns --bench dns` (add `-- --quick` for a short run). Prints
//! figures; asserts nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns::forward::Upstream;
use dns::proto::op::{Message, MessageType, OpCode, Query};
use dns::proto::rr::{Name, RecordType};
use dns::resolve::{Outcome, resolve};
use dns::server::{Handler, SharedModel};
use dns::{Model, Zone};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

fn objects(services: usize) -> (Vec<Namespace>, Vec<Service>, Vec<EndpointSlice>) {
    let namespaces: Vec<Namespace> = (0..10)
        .map(|i| {
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("ns{i}")}}))
        })
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    let mut svcs = Vec::with_capacity(services);
    let mut slices = Vec::with_capacity(services);
    for i in 0..services {
        let ns = format!("ns{}", i % 10);
        let ip = Ipv4Addr::from(0x0a2b_0000_u32 + 10 + i as u32);
        svcs.push(serde_json::json!({
            "metadata": {"name": format!("svc{i}"), "namespace": ns},
            "spec": {"clusterIP": ip.to_string(), "ports": [{"name": "http", "port": 80}]}
        }));
        let endpoints: Vec<serde_json::Value> = (0..3)
            .map(|e| {
                let ip = Ipv4Addr::from(0x0a2a_0000_u32 + (i as u32) * 3 + e + 2);
                serde_json::json!({"addresses": [ip.to_string()], "conditions": {"ready": true}})
            })
            .collect();
        slices.push(serde_json::json!({
            "metadata": {"name": format!("svc{i}-x"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": format!("svc{i}")}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }));
    }
    let svcs = svcs
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let slices = slices
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    (namespaces, svcs, slices)
}

fn query(id: u16, name: &Name) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name.clone(), RecordType::A));
    message.to_vec().unwrap_or_default()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let services = if quick { 1_000 } else { 10_000 };
    let (ns, svc, eps) = objects(services);

    let rounds = 5;
    let started = Instant::now();
    let mut model = Model::default();
    for _ in 0..rounds {
        model = Model::build(&ns, &svc, &eps);
    }
    println!(
        "model rebuild: {services} services + {services} slices (3 endpoints each): {:?} per rebuild",
        started.elapsed() / rounds
    );

    let zone = match Zone::new("cluster.local", None) {
        Ok(zone) => zone,
        Err(e) => return eprintln!("{e}"),
    };
    let names: Vec<Name> = (0..1000)
        .filter_map(|i| Name::from_ascii(format!("svc{i}.ns{}.svc.cluster.local.", i % 10)).ok())
        .collect();
    let lookups = if quick { 100_000 } else { 1_000_000 };
    let started = Instant::now();
    let mut answered = 0usize;
    for i in 0..lookups {
        if let Outcome::Authoritative(a) =
            resolve(&model, &zone, &names[i % names.len()], RecordType::A)
        {
            answered += a.answers.len();
        }
    }
    let elapsed = started.elapsed();
    println!(
        "resolve (A, ClusterIP): {:?} per lookup ({answered} answers)",
        elapsed / u32::try_from(lookups).unwrap_or(u32::MAX)
    );

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("{e}"),
    };
    runtime.block_on(async move {
        let handler = Handler::new(
            SharedModel::ready(model),
            zone,
            Upstream::new(Vec::new(), Duration::from_secs(1)),
        );
        let addr: SocketAddr = (IpAddr::V4(Ipv4Addr::LOCALHOST), 0).into();
        let running = match dns::serve(addr, handler).await {
            Ok(running) => running,
            Err(e) => return eprintln!("{e}"),
        };
        let server = running.addr;
        let clients = 8;
        let per_client = if quick { 2_000 } else { 20_000 };
        let names = Arc::new(names);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let names = names.clone();
            tasks.push(tokio::spawn(async move {
                let Ok(socket) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
                    return 0;
                };
                if socket.connect(server).await.is_err() {
                    return 0;
                }
                let mut buf = vec![0u8; 1500];
                let mut ok = 0;
                for i in 0..per_client {
                    let id = u16::try_from(i % 65536).unwrap_or(0);
                    let bytes = query(id, &names[(c * per_client + i) % names.len()]);
                    if socket.send(&bytes).await.is_err() {
                        continue;
                    }
                    if let Ok(Ok(_)) =
                        tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await
                    {
                        ok += 1;
                    }
                }
                ok
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap_or(0);
        }
        let elapsed = started.elapsed();
        println!(
            "udp loopback, {clients} clients one query in flight each: {total} answers in {elapsed:?} = {:.0} queries/s",
            total as f64 / elapsed.as_secs_f64()
        );
        let _ = running.shutdown().await;
    });
}
