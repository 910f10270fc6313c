//! Rule-sync cost for 1000 Services × 10 endpoints: script generation alone, then
//! generation + `nft -f` inside a network namespace this benchmark creates (a full
//! replace, an unchanged incremental sync, and an incremental sync after one endpoint
//! changed). Prints figures; asserts nothing about time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proxy::model::{Endpoint, Model, Protocol, ServicePort, ServicePortName};
use proxy::nftables::NftProxier;
use proxy::{RuleOptions, rules};

const SERVICES: u32 = 1000;
const ENDPOINTS: u32 = 10;

fn model() -> Model {
    let ports = (0..SERVICES)
        .map(|s| {
            let endpoints: Vec<Endpoint> = (0..ENDPOINTS)
                .map(|e| Endpoint {
                    ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 42, 0, 0)) + s * ENDPOINTS + e),
                    port: 8080,
                })
                .collect();
            ServicePort {
                id: ServicePortName {
                    namespace: "bench".into(),
                    name: format!("svc-{s:04}"),
                    protocol: Protocol::Tcp,
                    port: 80,
                },
                cluster_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 43, 0, 0)) + s + 1),
                node_port: (s % 10 == 0).then(|| 30000 + u16::try_from(s).unwrap_or(0)),
                affinity_seconds: (s % 10 == 1).then_some(10800),
                cluster_endpoints: endpoints.clone(),
                external_endpoints: endpoints.clone(),
                endpoints,
                external_local: false,
            }
        })
        .collect();
    Model { ports }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let options = RuleOptions {
        cluster_cidr: Some("10.42.0.0/16".parse()?),
        nodeport_addresses: Vec::new(),
    };
    let mut model = model();
    println!(
        "proxy sync: {} services x {} endpoints ({} endpoints, 10% with NodePorts, 10% with affinity)",
        SERVICES,
        ENDPOINTS,
        model.endpoint_count()
    );

    let rounds = 5;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes = rules::script(&model, &options, None).text.len();
    }
    println!(
        "  generate (full script):            {:8.1} ms  ({} KiB)",
        ms(start.elapsed()) / f64::from(rounds),
        bytes / 1024
    );

    let ns = common::Netns::new("mpx-bench")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut proxier = NftProxier::new(ns.nft(), options.clone());
        let report = |what: &str, s: proxy::nftables::SyncStats, total: Duration| {
            println!(
                "  {what:<34} {:8.1} ms  (generate {:.1} ms + nft -f {:.1} ms, {} KiB)",
                ms(total),
                ms(s.generate),
                ms(s.apply),
                s.bytes / 1024
            );
        };
        let start = Instant::now();
        let s = proxier.sync(&model).await?;
        report("first sync (full replace):", s, start.elapsed());

        let start = Instant::now();
        let s = proxier.sync(&model).await?;
        report("re-sync, nothing changed:", s, start.elapsed());

        if let Some(port) = model.ports.get_mut(500) {
            port.endpoints.pop();
            port.cluster_endpoints.pop();
            port.external_endpoints.pop();
        }
        let start = Instant::now();
        let s = proxier.sync(&model).await?;
        report("re-sync, one endpoint removed:", s, start.elapsed());

        let mut restarted = NftProxier::new(ns.nft(), options.clone());
        let start = Instant::now();
        let s = restarted.sync(&model).await?;
        report("restart (full replace of a table):", s, start.elapsed());

        let start = Instant::now();
        restarted.cleanup().await?;
        println!(
            "  delete the table:                  {:8.1} ms",
            ms(start.elapsed())
        );
        anyhow::Ok(())
    })
}
