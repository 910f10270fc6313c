//! The rule generator: model in, `nft -f` script out. A pure function, so every rule
//! is tested without a kernel and the same model always gives the same script.
//!
//! The table `ip mast-proxy` follows kube-proxy's nftables mode (facts, not code):
//!
//! - `nat-prerouting` (pods, other hosts) and `nat-output` (this host) jump to
//!   `services`, which looks `daddr . l4proto . dport` up in the verdict map
//!   `service-ips`, and `l4proto . dport` of traffic to a node address in
//!   `service-nodeports`;
//! - `svc-<port>` picks an endpoint: a client with a live affinity entry goes back to
//!   its endpoint, anyone else goes round-robin (`numgen inc mod N` into a verdict map,
//!   the design's choice where upstream draws at random);
//! - `ext-<port>` is the NodePort entry: it marks for masquerade (or, under
//!   `externalTrafficPolicy: Local`, keeps the client address and picks among local
//!   endpoints);
//! - `ep-<port>/<ip>/<port>` DNATs to one endpoint, marks hairpin traffic (a pod
//!   reaching itself through its service) and records affinity;
//! - marked packets are masqueraded in `nat-postrouting` (mark 0x4000, as upstream);
//! - a service port without endpoints is rejected at once (ICMP port unreachable,
//!   which a TCP connect reports as "connection refused") from filter chains hooked
//!   before DNAT, in prerouting and output, through `no-endpoint-services` and
//!   `no-endpoint-nodeports`.
//!
//! Two kinds of script: a *full* one deletes and recreates the table in one
//! transaction (first sync, restart, recovery); an *incremental* one flushes every
//! rule and map and deletes only the chains and sets that are gone, so the affinity
//! sets (with their timeouts running) survive a sync. Both leave the same rules.

use std::collections::BTreeSet;

use crate::cidr::Ipv4Cidr;
use crate::model::{Endpoint, Model, ServicePort};

/// The nftables table the proxy owns (family `ip`).
pub const TABLE: &str = "mast-proxy";
/// The packet mark asking `nat-postrouting` to masquerade (upstream's value).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// Maps every script flushes and refills.
const MAPS: [&str; 4] = [
    "service-ips",
    "service-nodeports",
    "no-endpoint-services",
    "no-endpoint-nodeports",
];

/// What the rules depend on besides the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleOptions {
    /// The pod network: ClusterIP traffic from outside it is masqueraded. Without it,
    /// only traffic from this host's own addresses is.
    pub cluster_cidr: Option<Ipv4Cidr>,
    /// Node addresses NodePorts answer on; empty means every local address except
    /// 127.0.0.0/8 (as upstream's nftables mode, which has no localhost NodePorts).
    pub nodeport_addresses: Vec<Ipv4Cidr>,
}

/// The names of the per-service objects a script leaves in the table: what the next
/// incremental script must delete when they are no longer wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    pub chains: BTreeSet<String>,
    pub sets: BTreeSet<String>,
}

/// A script and what it leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub text: String,
    pub objects: Objects,
}

/// The script turning the table into what `model` asks for. With `previous` (what the
/// last successful script left), the script is incremental; without, it is full.
pub fn script(model: &Model, options: &RuleOptions, previous: Option<&Objects>) -> Script {
    let body = Body::new(model, options);
    let mut text = String::with_capacity(body.text.len() + 4096);
    // Declaring the table first makes the flush or delete below valid on a host where
    // it does not exist yet.
    text.push_str(&format!("table ip {TABLE} {{}}\n"));
    match previous {
        None => text.push_str(&format!("delete table ip {TABLE}\n")),
        Some(previous) => {
            text.push_str(&format!("flush table ip {TABLE}\n"));
            for map in MAPS {
                text.push_str(&format!("flush map ip {TABLE} {map}\n"));
            }
            text.push_str(&format!("flush set ip {TABLE} nodeport-addresses\n"));
            for chain in previous.chains.difference(&body.objects.chains) {
                text.push_str(&format!("delete chain ip {TABLE} {chain}\n"));
            }
            for set in previous.sets.difference(&body.objects.sets) {
                text.push_str(&format!("delete set ip {TABLE} {set}\n"));
            }
        }
    }
    text.push_str(&format!("table ip {TABLE} {{\n"));
    text.push_str(&body.text);
    text.push_str("}\n");
    Script {
        text,
        objects: body.objects,
    }
}

/// The script removing the table (clean exit); valid whether or not it exists.
pub fn delete_script() -> String {
    format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")
}

fn svc_chain(port: &ServicePort) -> String {
    format!("svc-{}", port.id)
}

fn ext_chain(port: &ServicePort) -> String {
    format!("ext-{}", port.id)
}

fn ep_chain(port: &ServicePort, ep: &Endpoint) -> String {
    format!("ep-{}/{}/{}", port.id, ep.ip, ep.port)
}

/// The timeout is part of the name: a set's timeout cannot change in place, so a new
/// timeout makes a new set (and the old one is deleted as stale).
fn affinity_set(port: &ServicePort, ep: &Endpoint, seconds: u32) -> String {
    format!("aff-{}/{}/{}/{seconds}", port.id, ep.ip, ep.port)
}

/// The table's content, built once per script.
struct Body {
    text: String,
    objects: Objects,
}

impl Body {
    fn new(model: &Model, options: &RuleOptions) -> Body {
        let mut body = Body {
            // About 450 bytes of rules per endpoint.
            text: String::with_capacity(4096 + model.endpoint_count() * 450),
            objects: Objects::default(),
        };
        body.fixed(model, options);
        for port in &model.ports {
            body.port(port, options);
        }
        body
    }

    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.text.push('\t');
        }
        self.text.push_str(text);
        self.text.push('\n');
    }

    fn chain(&mut self, name: &str, rules: &[String]) {
        self.line(1, &format!("chain {name} {{"));
        for rule in rules {
            self.line(2, rule);
        }
        self.line(1, "}");
    }

    fn map(&mut self, name: &str, ty: &str, elements: &[String]) {
        self.line(1, &format!("map {name} {{"));
        self.line(2, &format!("type {ty}"));
        self.elements(elements);
        self.line(1, "}");
    }

    fn elements(&mut self, elements: &[String]) {
        if let Some((last, rest)) = elements.split_last() {
            self.line(2, "elements = {");
            for element in rest {
                self.line(3, &format!("{element},"));
            }
            self.line(3, last);
            self.line(2, "}");
        }
    }

    /// The maps, base chains and helper chains every table has.
    fn fixed(&mut self, model: &Model, options: &RuleOptions) {
        // Traffic for a NodePort: to one of the node's addresses.
        let nodeports = if options.nodeport_addresses.is_empty() {
            "fib daddr type local ip daddr != 127.0.0.0/8"
        } else {
            "ip daddr @nodeport-addresses fib daddr type local"
        };

        let mut service_ips = Vec::new();
        let mut service_nodeports = Vec::new();
        let mut no_endpoint_services = Vec::new();
        let mut no_endpoint_nodeports = Vec::new();
        for port in &model.ports {
            let proto = port.id.protocol.nft();
            let key = format!("{} . {proto} . {}", port.cluster_ip, port.id.port);
            if port.endpoints.is_empty() {
                no_endpoint_services.push(format!("{key} : goto reject-chain"));
                if let Some(np) = port.node_port {
                    no_endpoint_nodeports.push(format!("{proto} . {np} : goto reject-chain"));
                }
            } else {
                service_ips.push(format!("{key} : goto {}", svc_chain(port)));
                if let Some(np) = port.node_port {
                    service_nodeports.push(format!("{proto} . {np} : goto {}", ext_chain(port)));
                }
            }
        }
        let cluster = "ipv4_addr . inet_proto . inet_service : verdict";
        let node = "inet_proto . inet_service : verdict";
        self.map("service-ips", cluster, &service_ips);
        self.map("service-nodeports", node, &service_nodeports);
        self.map("no-endpoint-services", cluster, &no_endpoint_services);
        self.map("no-endpoint-nodeports", node, &no_endpoint_nodeports);

        self.line(1, "set nodeport-addresses {");
        self.line(2, "type ipv4_addr");
        self.line(2, "flags interval");
        let addresses: BTreeSet<Ipv4Cidr> = options.nodeport_addresses.iter().copied().collect();
        let addresses: Vec<String> = addresses.iter().map(Ipv4Cidr::to_string).collect();
        self.elements(&addresses);
        self.line(1, "}");

        // Filter chains run before DNAT (priority dstnat - 10), so a service without
        // endpoints is refused even though nothing would translate it.
        for (chain, hook) in [
            ("filter-prerouting", "prerouting"),
            ("filter-output", "output"),
        ] {
            self.chain(
                chain,
                &[
                    format!("type filter hook {hook} priority -110; policy accept;"),
                    "ct state new jump endpoints-check".into(),
                ],
            );
        }
        self.chain(
            "endpoints-check",
            &[
                "ip daddr . meta l4proto . th dport vmap @no-endpoint-services".into(),
                format!("{nodeports} meta l4proto . th dport vmap @no-endpoint-nodeports"),
            ],
        );
        self.chain("reject-chain", &["reject".into()]);

        // Numbers, not `dstnat`/`srcnat`: nft 1.0.6 refuses `dstnat` on the output hook.
        for (chain, hook) in [("nat-prerouting", "prerouting"), ("nat-output", "output")] {
            self.chain(
                chain,
                &[
                    format!("type nat hook {hook} priority -100; policy accept;"),
                    "jump services".into(),
                ],
            );
        }
        self.chain(
            "nat-postrouting",
            &[
                "type nat hook postrouting priority 100; policy accept;".into(),
                "jump masquerading".into(),
            ],
        );
        self.chain(
            "services",
            &[
                "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
                format!("{nodeports} meta l4proto . th dport vmap @service-nodeports"),
            ],
        );
        let mark = format!("{MASQUERADE_MARK:#x}");
        self.chain(
            "mark-for-masquerade",
            &[format!("meta mark set meta mark | {mark}")],
        );
        // The mark is cleared before masquerading so it does not leak into whatever
        // else looks at it (a tunnel, policy routing).
        self.chain(
            "masquerading",
            &[
                format!("meta mark & {mark} == 0 return"),
                format!("meta mark set meta mark ^ {mark}"),
                "masquerade fully-random".into(),
            ],
        );
    }

    /// The chains and sets of one service port.
    fn port(&mut self, port: &ServicePort, options: &RuleOptions) {
        if port.endpoints.is_empty() {
            return;
        }
        let proto = port.id.protocol.nft();
        let svc = svc_chain(port);
        // Traffic that would not find its way back through this node unless its source
        // is rewritten: from outside the pod network, or from this host itself.
        let mut rules = vec![match &options.cluster_cidr {
            Some(cidr) => format!(
                "ip daddr {} {proto} dport {} ip saddr != {cidr} jump mark-for-masquerade",
                port.cluster_ip, port.id.port
            ),
            None => "fib saddr type local jump mark-for-masquerade".into(),
        }];
        rules.extend(dispatch(port, &port.cluster_endpoints));
        self.chain(&svc, &rules);
        self.objects.chains.insert(svc.clone());

        if port.node_port.is_some() {
            let ext = ext_chain(port);
            let rules = if port.external_local {
                // The client's address is kept; traffic from this host still goes to
                // any endpoint (and is masqueraded), as upstream does.
                let mut rules = vec![
                    "fib saddr type local jump mark-for-masquerade".to_string(),
                    format!("fib saddr type local goto {svc}"),
                ];
                rules.extend(dispatch(port, &port.external_endpoints));
                rules
            } else {
                vec!["jump mark-for-masquerade".into(), format!("goto {svc}")]
            };
            self.chain(&ext, &rules);
            self.objects.chains.insert(ext);
        }

        for ep in &port.endpoints {
            let chain = ep_chain(port, ep);
            let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", ep.ip)];
            if let Some(seconds) = port.affinity_seconds {
                let set = affinity_set(port, ep, seconds);
                self.line(1, &format!("set {set} {{"));
                self.line(2, "type ipv4_addr");
                self.line(2, "flags dynamic,timeout");
                self.line(2, &format!("timeout {seconds}s"));
                self.line(1, "}");
                rules.push(format!("update @{set} {{ ip saddr }}"));
                self.objects.sets.insert(set);
            }
            rules.push(format!(
                "meta l4proto {proto} dnat to {}:{}",
                ep.ip, ep.port
            ));
            self.chain(&chain, &rules);
            self.objects.chains.insert(chain);
        }
    }
}

/// Rules choosing one of `endpoints`: affinity first, then round-robin. No endpoints
/// here while the port has some elsewhere (a `Local` traffic policy with none on this
/// node) drops, as upstream does.
fn dispatch(port: &ServicePort, endpoints: &[Endpoint]) -> Vec<String> {
    let mut rules = Vec::new();
    if let Some(seconds) = port.affinity_seconds {
        for ep in endpoints {
            rules.push(format!(
                "ip saddr @{} goto {}",
                affinity_set(port, ep, seconds),
                ep_chain(port, ep)
            ));
        }
    }
    match endpoints {
        [] => rules.push("drop".into()),
        [only] => rules.push(format!("goto {}", ep_chain(port, only))),
        many => {
            let targets: Vec<String> = many
                .iter()
                .enumerate()
                .map(|(i, ep)| format!("{i} : goto {}", ep_chain(port, ep)))
                .collect();
            rules.push(format!(
                "numgen inc mod {} vmap {{ {} }}",
                many.len(),
                targets.join(", ")
            ));
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::{Protocol, ServicePortName};

    fn ep(last: u8) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(10, 42, 0, last),
            port: 8080,
        }
    }

    fn port(name: &str, endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            id: ServicePortName {
                namespace: "default".into(),
                name: name.into(),
                protocol: Protocol::Tcp,
                port: 80,
            },
            cluster_ip: Ipv4Addr::new(10, 43, 0, 10),
            node_port: None,
            affinity_seconds: None,
            cluster_endpoints: endpoints.clone(),
            external_endpoints: endpoints.clone(),
            endpoints,
            external_local: false,
        }
    }

    fn options() -> RuleOptions {
        RuleOptions {
            cluster_cidr: Some("10.42.0.0/16".parse().expect("cidr")),
            nodeport_addresses: Vec::new(),
        }
    }

    fn full(ports: Vec<ServicePort>) -> Script {
        script(&Model { ports }, &options(), None)
    }

    /// The rules of one chain, trimmed, from a script's text.
    fn chain<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let header = format!("chain {name} {{");
        let mut lines = text.lines().map(str::trim);
        let mut found = Vec::new();
        if lines.by_ref().any(|l| l == header) {
            for line in lines {
                if line == "}" {
                    break;
                }
                found.push(line);
            }
        }
        found
    }

    #[test]
    fn endpoints_table() {
        // (name, endpoints, lines the script must hold, text it must not)
        type Case = (
            &'static str,
            Vec<Endpoint>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "no endpoints: rejected, no chains",
                vec![],
                vec!["10.43.0.10 . tcp . 80 : goto reject-chain"],
                vec!["chain svc-", "chain ep-", "numgen"],
            ),
            (
                "one endpoint: straight to it",
                vec![ep(2)],
                vec![
                    "10.43.0.10 . tcp . 80 : goto svc-default/web/tcp/80",
                    "goto ep-default/web/tcp/80/10.42.0.2/8080",
                    "meta l4proto tcp dnat to 10.42.0.2:8080",
                    "ip saddr 10.42.0.2 jump mark-for-masquerade",
                ],
                vec!["numgen", ": goto reject-chain"],
            ),
            (
                "three endpoints: round-robin",
                vec![ep(4), ep(2), ep(3)],
                vec![
                    "numgen inc mod 3 vmap { 0 : goto ep-default/web/tcp/80/10.42.0.4/8080, \
                     1 : goto ep-default/web/tcp/80/10.42.0.2/8080, \
                     2 : goto ep-default/web/tcp/80/10.42.0.3/8080 }",
                    "meta l4proto tcp dnat to 10.42.0.3:8080",
                ],
                vec!["@aff-"],
            ),
        ];
        for (name, endpoints, present, absent) in cases {
            let text = full(vec![port("web", endpoints)]).text;
            let lines: Vec<&str> = text
                .lines()
                .map(|l| l.trim().trim_end_matches(','))
                .collect();
            for want in present {
                assert!(lines.contains(&want), "{name}: missing {want:?} in\n{text}");
            }
            for unwanted in absent {
                assert!(
                    !text.contains(unwanted),
                    "{name}: has {unwanted:?} in\n{text}"
                );
            }
        }
    }

    #[test]
    fn cluster_ip_masquerade_depends_on_the_cluster_cidr() {
        let model = Model {
            ports: vec![port("web", vec![ep(2)])],
        };
        let with = script(&model, &options(), None).text;
        assert_eq!(
            chain(&with, "svc-default/web/tcp/80")[0],
            "ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade"
        );
        let without = script(&model, &RuleOptions::default(), None).text;
        assert_eq!(
            chain(&without, "svc-default/web/tcp/80")[0],
            "fib saddr type local jump mark-for-masquerade"
        );
    }

    #[test]
    fn affinity() {
        let mut p = port("web", vec![ep(2), ep(3)]);
        p.affinity_seconds = Some(60);
        let out = full(vec![p]);
        assert_eq!(
            chain(&out.text, "svc-default/web/tcp/80")[1..],
            [
                "ip saddr @aff-default/web/tcp/80/10.42.0.2/8080/60 goto ep-default/web/tcp/80/10.42.0.2/8080",
                "ip saddr @aff-default/web/tcp/80/10.42.0.3/8080/60 goto ep-default/web/tcp/80/10.42.0.3/8080",
                "numgen inc mod 2 vmap { 0 : goto ep-default/web/tcp/80/10.42.0.2/8080, 1 : goto ep-default/web/tcp/80/10.42.0.3/8080 }",
            ]
        );
        assert_eq!(
            chain(&out.text, "ep-default/web/tcp/80/10.42.0.3/8080"),
            [
                "ip saddr 10.42.0.3 jump mark-for-masquerade",
                "update @aff-default/web/tcp/80/10.42.0.3/8080/60 { ip saddr }",
                "meta l4proto tcp dnat to 10.42.0.3:8080",
            ]
        );
        assert!(out.text.contains(
            "\tset aff-default/web/tcp/80/10.42.0.2/8080/60 {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 60s\n\t}\n"
        ));
        assert_eq!(out.objects.sets.len(), 2);
    }

    #[test]
    fn node_ports() {
        let mut cluster = port("web", vec![ep(2)]);
        cluster.node_port = Some(30080);
        let mut local = port("local", vec![ep(2), ep(3)]);
        local.node_port = Some(30081);
        local.external_local = true;
        local.external_endpoints = vec![ep(3)];
        let mut empty = port("empty", vec![]);
        empty.node_port = Some(30082);
        let text = full(vec![cluster, local, empty]).text;
        assert!(text.contains("tcp . 30080 : goto ext-default/web/tcp/80"));
        assert!(text.contains("tcp . 30081 : goto ext-default/local/tcp/80"));
        assert!(text.contains("tcp . 30082 : goto reject-chain"));
        assert_eq!(
            chain(&text, "ext-default/web/tcp/80"),
            ["jump mark-for-masquerade", "goto svc-default/web/tcp/80"]
        );
        assert_eq!(
            chain(&text, "ext-default/local/tcp/80"),
            [
                "fib saddr type local jump mark-for-masquerade",
                "fib saddr type local goto svc-default/local/tcp/80",
                "goto ep-default/local/tcp/80/10.42.0.3/8080",
            ]
        );
        assert_eq!(
            chain(&text, "services")[1],
            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
        );

        let mut opts = options();
        opts.nodeport_addresses = vec!["192.168.0.0/24".parse().expect("cidr")];
        let text = script(&Model::default(), &opts, None).text;
        assert!(text.contains("\t\telements = {\n\t\t\t192.168.0.0/24\n\t\t}\n"));
        assert_eq!(
            chain(&text, "services")[1],
            "ip daddr @nodeport-addresses fib daddr type local meta l4proto . th dport vmap @service-nodeports"
        );
    }

    #[test]
    fn local_policy_without_local_endpoints_drops() {
        let mut p = port("web", vec![ep(2)]);
        p.cluster_endpoints = vec![];
        let text = full(vec![p]).text;
        assert_eq!(chain(&text, "svc-default/web/tcp/80")[1], "drop");
    }

    #[test]
    fn full_and_incremental_scripts() {
        let mut a = port("a", vec![ep(2), ep(3)]);
        a.affinity_seconds = Some(10800);
        let b = port("b", vec![ep(4)]);
        let first = full(vec![a.clone(), b.clone()]);
        assert!(first.text.starts_with(
            "table ip mast-proxy {}\ndelete table ip mast-proxy\ntable ip mast-proxy {\n"
        ));
        // Same model twice: the same script.
        assert_eq!(first, full(vec![a.clone(), b]));

        // b goes away, a loses an endpoint: exactly their objects are deleted.
        a.endpoints = vec![ep(2)];
        a.cluster_endpoints = vec![ep(2)];
        a.external_endpoints = vec![ep(2)];
        let next = script(&Model { ports: vec![a] }, &options(), Some(&first.objects));
        let head: Vec<&str> = next
            .text
            .lines()
            .skip(1)
            .take_while(|l| !l.ends_with('{'))
            .collect();
        assert_eq!(
            head,
            [
                "flush table ip mast-proxy",
                "flush map ip mast-proxy service-ips",
                "flush map ip mast-proxy service-nodeports",
                "flush map ip mast-proxy no-endpoint-services",
                "flush map ip mast-proxy no-endpoint-nodeports",
                "flush set ip mast-proxy nodeport-addresses",
                "delete chain ip mast-proxy ep-default/a/tcp/80/10.42.0.3/8080",
                "delete chain ip mast-proxy ep-default/b/tcp/80/10.42.0.4/8080",
                "delete chain ip mast-proxy svc-default/b/tcp/80",
                "delete set ip mast-proxy aff-default/a/tcp/80/10.42.0.3/8080/10800",
            ]
        );
        assert_eq!(
            next.objects.chains.iter().collect::<Vec<_>>(),
            ["ep-default/a/tcp/80/10.42.0.2/8080", "svc-default/a/tcp/80"]
        );
    }

    #[test]
    fn udp_ports_use_their_protocol() {
        let mut p = port("dns", vec![ep(2)]);
        p.id.protocol = Protocol::Udp;
        let text = full(vec![p]).text;
        assert!(text.contains("10.43.0.10 . udp . 80 : goto svc-default/dns/udp/80"));
        assert!(text.contains("meta l4proto udp dnat to 10.42.0.2:8080"));
    }
}
