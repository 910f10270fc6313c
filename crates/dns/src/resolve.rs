//! The answer to one question, from a [`Model`] snapshot: the cluster zone as the CoreDNS
//! kubernetes plugin serves it (the Kubernetes DNS specification, schema 1.1.0). Pure.
//!
//! Names under the zone (`cluster.local`):
//! - `SVC.NS.svc.ZONE`: A/AAAA → the cluster IPs, or a headless service's ready
//!   endpoints; ExternalName → CNAME; SRV → one per port (target the service, or each
//!   endpoint of a headless service).
//! - `EP.SVC.NS.svc.ZONE`: one endpoint, named by its hostname or dashed IP.
//! - `_PORT._PROTO.SVC.NS.svc.ZONE`: SRV (and A/AAAA) of a named port.
//! - `A-B-C-D.NS.pod.ZONE`: the IP itself (CoreDNS's `pods insecure`, what kubeadm
//!   configures).
//! - `NS.svc.ZONE`, `svc.ZONE`, the apex: NODATA when the namespace exists, else
//!   NXDOMAIN; the apex has SOA and NS; `ns.dns.ZONE` is the DNS server itself;
//!   `dns-version.ZONE` TXT is the schema version.
//! - Anything else under the zone: NXDOMAIN. Negative answers carry the zone's SOA.
//!
//! Reverse names (`in-addr.arpa`, `ip6.arpa`) of known cluster and endpoint IPs get PTR;
//! other reverse names, and names outside the zone, are [`Outcome::NotOurs`]: the
//! server forwards them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use crate::model::{Endpoint, Kind, Model, ServiceEntry};

/// CoreDNS's default TTL for the kubernetes plugin's records.
pub const DEFAULT_TTL: u32 = 5;
/// The DNS schema version `dns-version.ZONE` TXT reports, and its TTL (CoreDNS's).
const SCHEMA_VERSION: &str = "1.1.0";
const SCHEMA_TTL: u32 = 28800;
/// The SOA's timers, as CoreDNS sets them.
const SOA_REFRESH: i32 = 7200;
const SOA_RETRY: i32 = 1800;
const SOA_EXPIRE: i32 = 86400;
/// How many in-zone CNAME hops are followed (ExternalName to ExternalName).
const MAX_CHASE: usize = 8;

/// The zone served, and what answers about itself need.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Lowercase labels of the zone, left to right (`["cluster", "local"]`).
    labels: Vec<String>,
    origin: Name,
    pub ttl: u32,
    /// The DNS service's address, for `ns.dns.ZONE` and the NS glue.
    pub nameserver: Option<IpAddr>,
}

/// Why a zone cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("invalid cluster domain {domain:?}: {message}")]
    Invalid { domain: String, message: String },
}

impl Zone {
    /// The zone `domain` (`cluster.local`, with or without the trailing dot).
    pub fn new(domain: &str, nameserver: Option<IpAddr>) -> Result<Zone, ZoneError> {
        let trimmed = domain.trim().trim_end_matches('.').to_lowercase();
        let invalid = |message: &str| ZoneError::Invalid {
            domain: domain.to_string(),
            message: message.to_string(),
        };
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        let origin =
            Name::from_ascii(format!("{trimmed}.")).map_err(|e| invalid(&e.to_string()))?;
        Ok(Zone {
            labels: trimmed.split('.').map(str::to_string).collect(),
            origin,
            ttl: DEFAULT_TTL,
            nameserver,
        })
    }

    /// `PREFIX.ZONE.` as a name; None if it is no valid name.
    fn name(&self, prefix: &[&str]) -> Option<Name> {
        let mut text = prefix.join(".");
        if !text.is_empty() {
            text.push('.');
        }
        text.push_str(&self.labels.join("."));
        text.push('.');
        Name::from_ascii(text).ok()
    }

    fn soa(&self, serial: u32) -> Option<Record> {
        let soa = SOA::new(
            self.name(&["ns", "dns"])?,
            self.name(&["hostmaster"])?,
            serial,
            SOA_REFRESH,
            SOA_RETRY,
            SOA_EXPIRE,
            self.ttl,
        );
        Some(Record::from_rdata(
            self.origin.clone(),
            self.ttl,
            RData::SOA(soa),
        ))
    }
}

/// What the resolver says about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ours: answer with this.
    Authoritative(Answer),
    /// Not ours (outside the zone, or an unknown reverse name): forward it.
    NotOurs,
}

/// An authoritative answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// A CNAME target outside the zone that the caller may resolve upstream and append.
    pub chase: Option<Name>,
}

impl Answer {
    fn negative(zone: &Zone, model: &Model, rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            answers: Vec::new(),
            authorities: zone.soa(model.serial).into_iter().collect(),
            additionals: Vec::new(),
            chase: None,
        }
    }

    fn positive(answers: Vec<Record>, additionals: Vec<Record>) -> Answer {
        Answer {
            rcode: ResponseCode::NoError,
            answers,
            authorities: Vec::new(),
            additionals,
            chase: None,
        }
    }

    pub fn is_nxdomain(&self) -> bool {
        self.rcode == ResponseCode::NXDomain
    }
}

/// What a name under `svc` holds, before it is shaped by the query type.
enum Found {
    NxDomain,
    /// The name exists, with these hosts (possibly none: NODATA).
    Hosts(Vec<Host>),
    Cname(String),
}

/// One address a name resolves to, with its SRV view.
struct Host {
    ip: IpAddr,
    /// The SRV target: the service name, or the endpoint's own name.
    target: Vec<String>,
    /// The SRV port; None where the name has no port (A/AAAA only).
    port: Option<u16>,
}

/// Answers `qname`/`qtype` from `model`.
pub fn resolve(model: &Model, zone: &Zone, qname: &Name, qtype: RecordType) -> Outcome {
    resolve_depth(model, zone, qname, qtype, 0)
}

fn resolve_depth(
    model: &Model,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    depth: usize,
) -> Outcome {
    let labels: Vec<String> = qname
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    if let Some(ip) = reverse_ip(&labels) {
        return reverse(model, zone, qname, qtype, ip);
    }
    let Some(base) = labels
        .len()
        .checked_sub(zone.labels.len())
        .filter(|&n| labels[n..] == zone.labels[..])
        .map(|n| &labels[..n])
    else {
        return Outcome::NotOurs;
    };
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let nodata = || Outcome::Authoritative(Answer::negative(zone, model, ResponseCode::NoError));
    let nxdomain = || Outcome::Authoritative(Answer::negative(zone, model, ResponseCode::NXDomain));
    match base.as_slice() {
        [] => apex(model, zone, qname, qtype),
        ["dns-version"] if qtype == RecordType::TXT => {
            let txt = TXT::new(vec![SCHEMA_VERSION.to_string()]);
            Outcome::Authoritative(Answer::positive(
                vec![Record::from_rdata(
                    qname.clone(),
                    SCHEMA_TTL,
                    RData::TXT(txt),
                )],
                Vec::new(),
            ))
        }
        // Names that exist without the asked type (or as empty non-terminals).
        ["dns-version"] | ["dns"] | ["svc"] | ["pod"] => nodata(),
        ["ns", "dns"] => {
            let records = zone
                .nameserver
                .into_iter()
                .filter_map(|ip| address(qname, ip, qtype, zone.ttl))
                .collect::<Vec<_>>();
            if records.is_empty() {
                nodata()
            } else {
                Outcome::Authoritative(Answer::positive(records, Vec::new()))
            }
        }
        [ns, "svc"] | [ns, "pod"] => {
            if model.has_namespace(ns) {
                nodata()
            } else {
                nxdomain()
            }
        }
        [pod, ns, "pod"] => {
            let ip = pod_ip(pod);
            match ip {
                Some(ip) if model.has_namespace(ns) => shape(
                    model,
                    zone,
                    qname,
                    qtype,
                    Found::Hosts(vec![Host {
                        ip,
                        target: Vec::new(),
                        port: None,
                    }]),
                    depth,
                ),
                _ => nxdomain(),
            }
        }
        [svc, ns, "svc"] => {
            let found = service(model, ns, svc, None, None);
            shape(model, zone, qname, qtype, found, depth)
        }
        [endpoint, svc, ns, "svc"] => {
            let found = service(model, ns, svc, Some(endpoint), None);
            shape(model, zone, qname, qtype, found, depth)
        }
        [port, proto, svc, ns, "svc"] => {
            let wanted = (strip_underscore(port), strip_underscore(proto));
            let found = service(model, ns, svc, None, Some(wanted));
            shape(model, zone, qname, qtype, found, depth)
        }
        _ => nxdomain(),
    }
}

/// The zone's apex: SOA, NS (with glue), NODATA for the rest.
fn apex(model: &Model, zone: &Zone, qname: &Name, qtype: RecordType) -> Outcome {
    match qtype {
        RecordType::SOA => {
            let mut answer = Answer::positive(Vec::new(), Vec::new());
            if let Some(mut soa) = zone.soa(model.serial) {
                soa.name = qname.clone();
                answer.answers.push(soa);
            }
            Outcome::Authoritative(answer)
        }
        RecordType::NS => {
            let Some(ns) = zone.name(&["ns", "dns"]) else {
                return Outcome::Authoritative(Answer::negative(
                    zone,
                    model,
                    ResponseCode::NoError,
                ));
            };
            let glue = zone
                .nameserver
                .into_iter()
                .filter_map(|ip| {
                    let qtype = if ip.is_ipv4() {
                        RecordType::A
                    } else {
                        RecordType::AAAA
                    };
                    address(&ns, ip, qtype, zone.ttl)
                })
                .collect();
            let record = Record::from_rdata(qname.clone(), zone.ttl, RData::NS(NS(ns)));
            Outcome::Authoritative(Answer::positive(vec![record], glue))
        }
        _ => Outcome::Authoritative(Answer::negative(zone, model, ResponseCode::NoError)),
    }
}

/// What `[endpoint.]svc.ns.svc` (or `_port._proto.svc.ns.svc`) holds.
fn service(
    model: &Model,
    ns: &str,
    svc: &str,
    endpoint: Option<&str>,
    port: Option<(&str, &str)>,
) -> Found {
    let Some(entry) = model.service(ns, svc) else {
        return Found::NxDomain;
    };
    let service_name = vec![svc.to_string(), ns.to_string(), "svc".to_string()];
    let endpoint_name = |ep: &Endpoint| {
        let mut name = vec![ep.name.clone()];
        name.extend(service_name.iter().cloned());
        name
    };
    let port_matches = |p: &crate::model::Port| match port {
        None => true,
        Some((name, proto)) => p.name == name && p.protocol == proto,
    };
    let hosts: Vec<Host> = match (&entry.kind, endpoint) {
        // CoreDNS publishes the CNAME whatever the port labels say; an endpoint name
        // under an ExternalName has nothing.
        (Kind::ExternalName(target), None) => return Found::Cname(target.clone()),
        (Kind::ExternalName(_), Some(_)) => return Found::NxDomain,
        (_, Some(wanted)) => entry
            .endpoints
            .iter()
            .filter(|ep| ep.name == wanted)
            .flat_map(|ep| endpoint_hosts(ep, endpoint_name(ep), &port_matches))
            .collect(),
        (Kind::Headless, None) => entry
            .endpoints
            .iter()
            .flat_map(|ep| endpoint_hosts(ep, endpoint_name(ep), &port_matches))
            .collect(),
        (Kind::ClusterIp(ips), None) => cluster_ip_hosts(entry, ips, &service_name, &port_matches),
    };
    if hosts.is_empty() {
        // No endpoint of that name, no port of that name, or a headless service with
        // no ready endpoint: CoreDNS answers NXDOMAIN for all three.
        Found::NxDomain
    } else {
        Found::Hosts(hosts)
    }
}

fn endpoint_hosts(
    ep: &Endpoint,
    target: Vec<String>,
    port_matches: &dyn Fn(&crate::model::Port) -> bool,
) -> Vec<Host> {
    if ep.ports.is_empty() {
        // A slice without ports (a headless service without ports) still has addresses.
        return vec![Host {
            ip: ep.ip,
            target,
            port: None,
        }];
    }
    ep.ports
        .iter()
        .filter(|p| port_matches(p))
        .map(|p| Host {
            ip: ep.ip,
            target: target.clone(),
            port: Some(p.port),
        })
        .collect()
}

fn cluster_ip_hosts(
    entry: &ServiceEntry,
    ips: &[IpAddr],
    service_name: &[String],
    port_matches: &dyn Fn(&crate::model::Port) -> bool,
) -> Vec<Host> {
    let mut hosts = Vec::new();
    for port in entry.ports.iter().filter(|p| port_matches(p)) {
        for ip in ips {
            hosts.push(Host {
                ip: *ip,
                target: service_name.to_vec(),
                port: Some(port.port),
            });
        }
    }
    hosts
}

/// Shapes what a name holds into the answer for `qtype`.
fn shape(
    model: &Model,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    found: Found,
    depth: usize,
) -> Outcome {
    let hosts = match found {
        Found::NxDomain => {
            return Outcome::Authoritative(Answer::negative(zone, model, ResponseCode::NXDomain));
        }
        Found::Cname(target) => return cname(model, zone, qname, qtype, &target, depth),
        Found::Hosts(hosts) => hosts,
    };
    let mut answers: Vec<Record> = Vec::new();
    let mut additionals: Vec<Record> = Vec::new();
    match qtype {
        RecordType::A | RecordType::AAAA => {
            for host in &hosts {
                if let Some(record) = address(qname, host.ip, qtype, zone.ttl) {
                    push_unique(&mut answers, record);
                }
            }
        }
        RecordType::SRV => {
            // One SRV per (target, port): a dual-stack service's two IPs share one.
            let mut targets: Vec<(Name, u16)> = Vec::new();
            for host in &hosts {
                let target = zone.name(&host.target.iter().map(String::as_str).collect::<Vec<_>>());
                let (Some(port), Some(target)) = (host.port, target) else {
                    continue;
                };
                let family = if host.ip.is_ipv4() {
                    RecordType::A
                } else {
                    RecordType::AAAA
                };
                if let Some(record) = address(&target, host.ip, family, zone.ttl) {
                    push_unique(&mut additionals, record);
                }
                if !targets.contains(&(target.clone(), port)) {
                    targets.push((target, port));
                }
            }
            // CoreDNS: the weights of one priority split 100 evenly.
            let count = u16::try_from(targets.len()).unwrap_or(u16::MAX).max(1);
            let weight = (100 / count).max(1);
            for (target, port) in targets {
                let srv = SRV::new(0, weight, port, target);
                answers.push(Record::from_rdata(qname.clone(), zone.ttl, RData::SRV(srv)));
            }
        }
        _ => {}
    }
    if answers.is_empty() {
        // The name exists; the type does not (AAAA of an IPv4 service, TXT, …).
        Outcome::Authoritative(Answer::negative(zone, model, ResponseCode::NoError))
    } else {
        Outcome::Authoritative(Answer::positive(answers, additionals))
    }
}

/// An ExternalName's CNAME, followed inside the zone; a target outside is left for the
/// caller to resolve.
fn cname(
    model: &Model,
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    target: &str,
    depth: usize,
) -> Outcome {
    if qtype == RecordType::SRV {
        // CoreDNS drops external names from SRV answers.
        return Outcome::Authoritative(Answer::negative(zone, model, ResponseCode::NoError));
    }
    let Ok(target) = Name::from_ascii(format!("{target}.")) else {
        return Outcome::Authoritative(Answer::negative(zone, model, ResponseCode::NXDomain));
    };
    let record = Record::from_rdata(qname.clone(), zone.ttl, RData::CNAME(CNAME(target.clone())));
    let mut answer = Answer::positive(vec![record], Vec::new());
    if qtype == RecordType::CNAME {
        return Outcome::Authoritative(answer);
    }
    if depth >= MAX_CHASE {
        return Outcome::Authoritative(answer);
    }
    match resolve_depth(model, zone, &target, qtype, depth + 1) {
        Outcome::Authoritative(next) => {
            answer.answers.extend(next.answers);
            answer.additionals.extend(next.additionals);
            answer.chase = next.chase;
        }
        Outcome::NotOurs => answer.chase = Some(target),
    }
    Outcome::Authoritative(answer)
}

/// A PTR for a known cluster or endpoint IP; unknown ones go upstream.
fn reverse(model: &Model, zone: &Zone, qname: &Name, qtype: RecordType, ip: IpAddr) -> Outcome {
    let Some(owner) = model.owner_of(&ip) else {
        return Outcome::NotOurs;
    };
    if qtype != RecordType::PTR {
        return Outcome::NotOurs;
    }
    let mut labels: Vec<&str> = Vec::new();
    if let Some(ep) = &owner.endpoint {
        labels.push(ep);
    }
    labels.extend([owner.service.as_str(), owner.namespace.as_str(), "svc"]);
    let Some(target) = zone.name(&labels) else {
        return Outcome::NotOurs;
    };
    let record = Record::from_rdata(qname.clone(), zone.ttl, RData::PTR(PTR(target)));
    Outcome::Authoritative(Answer::positive(vec![record], Vec::new()))
}

/// The IP of a reverse name (`5.0.42.10.in-addr.arpa`, 32 nibbles `.ip6.arpa`).
fn reverse_ip(labels: &[String]) -> Option<IpAddr> {
    match labels {
        [a, b, c, d, arpa, root] if arpa == "in-addr" && root == "arpa" => {
            let octet = |s: &String| s.parse::<u8>().ok();
            Some(IpAddr::V4(Ipv4Addr::new(
                octet(d)?,
                octet(c)?,
                octet(b)?,
                octet(a)?,
            )))
        }
        [nibbles @ .., ip6, root] if ip6 == "ip6" && root == "arpa" && nibbles.len() == 32 => {
            let mut value: u128 = 0;
            for nibble in nibbles.iter().rev() {
                let digit = u8::from_str_radix(nibble, 16).ok()?;
                if nibble.len() != 1 {
                    return None;
                }
                value = (value << 4) | u128::from(digit);
            }
            Some(IpAddr::V6(Ipv6Addr::from(value)))
        }
        _ => None,
    }
}

/// `10-42-0-5` → 10.42.0.5; `fd00--1` → fd00::1 (CoreDNS's pod names).
fn pod_ip(label: &str) -> Option<IpAddr> {
    if label.matches('-').count() == 3 && !label.contains("--") {
        label
            .replace('-', ".")
            .parse::<Ipv4Addr>()
            .ok()
            .map(IpAddr::V4)
    } else {
        label
            .replace('-', ":")
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
    }
}

fn strip_underscore(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}

/// An A or AAAA record for `ip` if it is of the family `qtype` asks for.
fn address(owner: &Name, ip: IpAddr, qtype: RecordType, ttl: u32) -> Option<Record> {
    let data = match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
        (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
        _ => return None,
    };
    Some(Record::from_rdata(owner.clone(), ttl, data))
}

fn push_unique(records: &mut Vec<Record>, record: Record) {
    if !records.contains(&record) {
        records.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Port};

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn port(name: &str, protocol: &str, port: u16) -> Port {
        Port {
            name: name.into(),
            protocol: protocol.into(),
            port,
        }
    }

    fn endpoint(address: &str, name: Option<&str>, ports: Vec<Port>) -> Endpoint {
        let ip = ip(address);
        Endpoint {
            ip,
            name: name.map_or_else(|| crate::model::dashed(&ip), str::to_string),
            ports,
        }
    }

    /// prod: web (ClusterIP, dual-stack, http+metrics), db (headless, two ready
    /// endpoints), empty (headless, none ready), ext (ExternalName out of the zone),
    /// alias (ExternalName to web); quiet: a namespace with nothing in it.
    fn model() -> Model {
        let mut m = Model::default();
        m.serial = 42;
        m.add_namespace("quiet");
        m.add_service(
            "prod",
            "web",
            ServiceEntry {
                kind: Kind::ClusterIp(vec![ip("10.43.0.20"), ip("fd00:43::20")]),
                ports: vec![port("http", "tcp", 80), port("metrics", "tcp", 9090)],
                endpoints: vec![endpoint("10.42.0.9", None, vec![port("http", "tcp", 8080)])],
            },
        );
        m.add_service(
            "prod",
            "db",
            ServiceEntry {
                kind: Kind::Headless,
                ports: vec![port("pg", "tcp", 5432)],
                endpoints: vec![
                    endpoint("10.42.0.5", Some("db-0"), vec![port("pg", "tcp", 5432)]),
                    endpoint("10.42.1.6", None, vec![port("pg", "tcp", 5432)]),
                ],
            },
        );
        m.add_service(
            "prod",
            "empty",
            ServiceEntry {
                kind: Kind::Headless,
                ports: vec![],
                endpoints: vec![],
            },
        );
        m.add_service(
            "prod",
            "ext",
            ServiceEntry {
                kind: Kind::ExternalName("example.com".into()),
                ports: vec![],
                endpoints: vec![],
            },
        );
        m.add_service(
            "prod",
            "alias",
            ServiceEntry {
                kind: Kind::ExternalName("web.prod.svc.cluster.local".into()),
                ports: vec![],
                endpoints: vec![],
            },
        );
        m
    }

    fn zone() -> Zone {
        Zone::new("cluster.local", Some(ip("10.43.0.10"))).expect("zone")
    }

    fn ask(qname: &str, qtype: RecordType) -> Outcome {
        let name = Name::from_ascii(qname).expect("name");
        resolve(&model(), &zone(), &name, qtype)
    }

    /// The answer section as text, sorted: `TYPE data` per record.
    fn rendered(records: &[Record]) -> Vec<String> {
        let mut out: Vec<String> = records
            .iter()
            .map(|r| format!("{} {}", r.record_type(), r.data))
            .collect();
        out.sort();
        out
    }

    #[derive(Debug, PartialEq)]
    enum Want {
        Answers(&'static [&'static str]),
        NoData,
        NxDomain,
        NotOurs,
    }

    #[test]
    fn table() {
        use RecordType::*;
        use Want::*;
        let cases: &[(&str, RecordType, Want)] = &[
            // ClusterIP services.
            ("web.prod.svc.cluster.local.", A, Answers(&["A 10.43.0.20"])),
            (
                "web.prod.svc.cluster.local.",
                AAAA,
                Answers(&["AAAA fd00:43::20"]),
            ),
            ("WEB.Prod.SVC.Cluster.Local.", A, Answers(&["A 10.43.0.20"])),
            ("web.prod.svc.cluster.local.", TXT, NoData),
            ("web.prod.svc.cluster.local.", MX, NoData),
            (
                "web.prod.svc.cluster.local.",
                SRV,
                Answers(&[
                    "SRV 0 50 80 web.prod.svc.cluster.local.",
                    "SRV 0 50 9090 web.prod.svc.cluster.local.",
                ]),
            ),
            (
                "_http._tcp.web.prod.svc.cluster.local.",
                SRV,
                Answers(&["SRV 0 100 80 web.prod.svc.cluster.local."]),
            ),
            (
                "_HTTP._TCP.web.prod.svc.cluster.local.",
                A,
                Answers(&["A 10.43.0.20"]),
            ),
            ("_http._udp.web.prod.svc.cluster.local.", SRV, NxDomain),
            ("_nope._tcp.web.prod.svc.cluster.local.", SRV, NxDomain),
            // An endpoint of a ClusterIP service, by its dashed IP.
            (
                "10-42-0-9.web.prod.svc.cluster.local.",
                A,
                Answers(&["A 10.42.0.9"]),
            ),
            // Headless services.
            (
                "db.prod.svc.cluster.local.",
                A,
                Answers(&["A 10.42.0.5", "A 10.42.1.6"]),
            ),
            ("db.prod.svc.cluster.local.", AAAA, NoData),
            (
                "db-0.db.prod.svc.cluster.local.",
                A,
                Answers(&["A 10.42.0.5"]),
            ),
            (
                "DB-0.db.prod.svc.cluster.local.",
                A,
                Answers(&["A 10.42.0.5"]),
            ),
            (
                "10-42-1-6.db.prod.svc.cluster.local.",
                A,
                Answers(&["A 10.42.1.6"]),
            ),
            ("db-9.db.prod.svc.cluster.local.", A, NxDomain),
            (
                "_pg._tcp.db.prod.svc.cluster.local.",
                SRV,
                Answers(&[
                    "SRV 0 50 5432 10-42-1-6.db.prod.svc.cluster.local.",
                    "SRV 0 50 5432 db-0.db.prod.svc.cluster.local.",
                ]),
            ),
            ("empty.prod.svc.cluster.local.", A, NxDomain),
            // ExternalName.
            (
                "ext.prod.svc.cluster.local.",
                A,
                Answers(&["CNAME example.com."]),
            ),
            (
                "ext.prod.svc.cluster.local.",
                CNAME,
                Answers(&["CNAME example.com."]),
            ),
            ("ext.prod.svc.cluster.local.", SRV, NoData),
            (
                "alias.prod.svc.cluster.local.",
                A,
                Answers(&["A 10.43.0.20", "CNAME web.prod.svc.cluster.local."]),
            ),
            // Unknown names, and NODATA for names that exist.
            ("nope.prod.svc.cluster.local.", A, NxDomain),
            ("web.nope.svc.cluster.local.", A, NxDomain),
            ("prod.svc.cluster.local.", A, NoData),
            ("quiet.svc.cluster.local.", A, NoData),
            ("nope.svc.cluster.local.", A, NxDomain),
            ("svc.cluster.local.", A, NoData),
            ("cluster.local.", A, NoData),
            (
                "cluster.local.",
                SOA,
                Answers(&[
                    "SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5",
                ]),
            ),
            ("cluster.local.", NS, Answers(&["NS ns.dns.cluster.local."])),
            ("ns.dns.cluster.local.", A, Answers(&["A 10.43.0.10"])),
            ("dns-version.cluster.local.", TXT, Answers(&["TXT 1.1.0"])),
            ("foo.cluster.local.", A, NxDomain),
            ("a.b.web.prod.svc.cluster.local.", A, NxDomain),
            ("x.y.z.a.b.web.prod.svc.cluster.local.", A, NxDomain),
            // Pods (insecure mode).
            (
                "10-42-0-77.prod.pod.cluster.local.",
                A,
                Answers(&["A 10.42.0.77"]),
            ),
            ("10-42-0-77.nope.pod.cluster.local.", A, NxDomain),
            ("not-an-ip.prod.pod.cluster.local.", A, NxDomain),
            // Search-list expansions a pod's resolver tries are just unknown names.
            (
                "web.prod.svc.cluster.local.prod.svc.cluster.local.",
                A,
                NxDomain,
            ),
            ("example.com.prod.svc.cluster.local.", A, NxDomain),
            // Reverse.
            (
                "20.0.43.10.in-addr.arpa.",
                PTR,
                Answers(&["PTR web.prod.svc.cluster.local."]),
            ),
            (
                "5.0.42.10.in-addr.arpa.",
                PTR,
                Answers(&["PTR db-0.db.prod.svc.cluster.local."]),
            ),
            ("1.1.168.192.in-addr.arpa.", PTR, NotOurs),
            // Outside the zone.
            ("example.com.", A, NotOurs),
            ("cluster.local.example.com.", A, NotOurs),
            ("local.", A, NotOurs),
        ];
        for (qname, qtype, want) in cases {
            let got = match ask(qname, *qtype) {
                Outcome::NotOurs => NotOurs,
                Outcome::Authoritative(a) if a.rcode == ResponseCode::NXDomain => {
                    assert!(a.answers.is_empty(), "{qname} {qtype}");
                    assert_eq!(rendered(&a.authorities).len(), 1, "{qname}: SOA");
                    NxDomain
                }
                Outcome::Authoritative(a) if a.answers.is_empty() => {
                    assert_eq!(a.rcode, ResponseCode::NoError);
                    assert_eq!(
                        a.authorities.first().map(Record::record_type),
                        Some(SOA),
                        "{qname}: NODATA carries the SOA"
                    );
                    NoData
                }
                Outcome::Authoritative(a) => {
                    let rendered = rendered(&a.answers);
                    let want_text = match want {
                        Answers(w) => w.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                        _ => Vec::new(),
                    };
                    assert_eq!(rendered, want_text, "{qname} {qtype}");
                    continue;
                }
            };
            assert_eq!(&got, want, "{qname} {qtype}");
        }
    }

    #[test]
    fn answers_keep_the_question_case_and_ttl() {
        let Outcome::Authoritative(a) = ask("Web.Prod.svc.cluster.local.", RecordType::A) else {
            panic!("ours");
        };
        assert_eq!(a.answers[0].name.to_ascii(), "Web.Prod.svc.cluster.local.");
        assert_eq!(a.answers[0].ttl, DEFAULT_TTL);
        assert!(!a.answers[0].name.is_wildcard());
    }

    #[test]
    fn srv_answers_carry_target_addresses() {
        let Outcome::Authoritative(a) = ask("_pg._tcp.db.prod.svc.cluster.local.", RecordType::SRV)
        else {
            panic!("ours");
        };
        let extra: Vec<String> = a
            .additionals
            .iter()
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert!(extra.contains(&"db-0.db.prod.svc.cluster.local. 10.42.0.5".to_string()));
        assert_eq!(extra.len(), 2);
    }

    #[test]
    fn negative_answers_carry_the_soa() {
        let Outcome::Authoritative(a) = ask("nope.prod.svc.cluster.local.", RecordType::A) else {
            panic!("ours");
        };
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        let soa = &a.authorities[0];
        assert_eq!(soa.name.to_ascii(), "cluster.local.");
        assert_eq!(soa.ttl, DEFAULT_TTL);
    }

    #[test]
    fn external_names_outside_the_zone_are_left_to_chase() {
        let Outcome::Authoritative(a) = ask("ext.prod.svc.cluster.local.", RecordType::A) else {
            panic!("ours");
        };
        assert_eq!(a.chase.map(|n| n.to_ascii()), Some("example.com.".into()));
    }

    #[test]
    fn another_cluster_domain() {
        let zone = Zone::new("Corp.Example.", None).expect("zone");
        let name = Name::from_ascii("web.prod.svc.corp.example.").expect("name");
        let Outcome::Authoritative(a) = resolve(&model(), &zone, &name, RecordType::A) else {
            panic!("ours");
        };
        assert_eq!(rendered(&a.answers), ["A 10.43.0.20"]);
        let outside = Name::from_ascii("web.prod.svc.cluster.local.").expect("name");
        assert_eq!(
            resolve(&model(), &zone, &outside, RecordType::A),
            Outcome::NotOurs
        );
        assert!(Zone::new(" ", None).is_err());
    }

    #[test]
    fn reverse_names() {
        let labels = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            reverse_ip(&labels("4.3.2.1.in-addr.arpa")),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(reverse_ip(&labels("3.2.1.in-addr.arpa")), None);
        assert_eq!(reverse_ip(&labels("x.3.2.1.in-addr.arpa")), None);
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(reverse_ip(&labels(v6)), Some(ip("fd00::1")));
    }
}
