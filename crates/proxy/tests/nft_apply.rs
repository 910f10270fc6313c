//! The generated scripts against the real `nft`, inside a network namespace this test
//! creates: they load, list back as meant, re-apply to the same rules (incremental and
//! after a restart), drop what is gone, and the table goes on cleanup.

mod common;

use std::net::Ipv4Addr;

use common::Netns;
use proxy::model::{Endpoint, Model, Protocol, ServicePort, ServicePortName};
use proxy::nftables::NftProxier;
use proxy::{Ipv4Cidr, RuleOptions};

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

fn options() -> RuleOptions {
    RuleOptions {
        cluster_cidr: Some("10.42.0.0/16".parse::<Ipv4Cidr>().expect("cidr")),
        nodeport_addresses: Vec::new(),
    }
}

#[tokio::test]
async fn scripts_apply_list_and_clean_up() -> anyhow::Result<()> {
    let ns = Netns::new("mpx-apply")?;
    let mut sticky = port("sticky", [10, 43, 0, 12], &[2, 3], None);
    sticky.affinity_seconds = Some(60);
    let model = Model {
        ports: vec![
            port("empty", [10, 43, 0, 11], &[], Some(30081)),
            sticky,
            port("web", [10, 43, 0, 10], &[2, 3, 4], Some(30080)),
        ],
    };
    let mut proxier = NftProxier::new(ns.nft(), options());
    let first = proxier.sync(&model).await?;
    assert!(first.full);
    let listed = ns.nft().list_table().await?;
    for want in [
        "10.43.0.10 . tcp . 80 : goto svc-default/web/tcp/80",
        "10.43.0.11 . tcp . 80 : goto reject-chain",
        "tcp . 30080 : goto ext-default/web/tcp/80",
        "tcp . 30081 : goto reject-chain",
        "numgen inc mod 3 vmap { 0 : goto ep-default/web/tcp/80/10.42.0.2/8080, 1 : goto ep-default/web/tcp/80/10.42.0.3/8080, 2 : goto ep-default/web/tcp/80/10.42.0.4/8080 }",
        "meta l4proto tcp dnat to 10.42.0.4:8080",
        "set aff-default/sticky/tcp/80/10.42.0.3/8080/60 {",
        "update @aff-default/sticky/tcp/80/10.42.0.3/8080/60 { ip saddr }",
        "type filter hook output priority -110; policy accept;",
        "masquerade fully-random",
        "reject",
    ] {
        assert!(listed.contains(want), "missing {want:?} in\n{listed}");
    }

    // Incremental re-apply of the same model: the same rules.
    let again = proxier.sync(&model).await?;
    assert!(!again.full);
    assert_eq!(ns.nft().list_table().await?, listed);

    // A restarted proxy (full replace over the existing table): the same rules.
    let mut restarted = NftProxier::new(ns.nft(), options());
    assert!(restarted.sync(&model).await?.full);
    assert_eq!(ns.nft().list_table().await?, listed);

    // An affinity entry survives an incremental sync.
    ns.exec(&[
        "nft",
        "add",
        "element",
        "ip",
        "mast-proxy",
        "aff-default/sticky/tcp/80/10.42.0.3/8080/60",
        "{ 10.42.0.9 }",
    ])?;
    let fewer = Model {
        ports: vec![
            model.ports[1].clone(),
            port("web", [10, 43, 0, 10], &[2], None),
        ],
    };
    assert!(!restarted.sync(&fewer).await?.full);
    let listed = ns.nft().list_table().await?;
    assert!(listed.contains("10.42.0.9 expires"), "{listed}");
    for gone in [
        "default/empty/",
        "ep-default/web/tcp/80/10.42.0.3/8080",
        "ext-default/web/tcp/80",
        "numgen inc mod 3",
    ] {
        assert!(!listed.contains(gone), "{gone:?} still in\n{listed}");
    }
    assert!(listed.contains("goto ep-default/web/tcp/80/10.42.0.2/8080"));

    // Someone deletes a chain behind the proxy's back: the incremental script fails
    // and the proxier falls back to a full one.
    ns.exec(&["nft", "delete", "table", "ip", "mast-proxy"])?;
    ns.exec(&["nft", "add", "table", "ip", "mast-proxy"])?;
    assert!(restarted.sync(&fewer).await?.full);

    restarted.cleanup().await?;
    assert!(ns.nft().list_table().await.is_err(), "the table is gone");
    // Cleaning up twice is fine.
    restarted.cleanup().await?;
    Ok(())
}
