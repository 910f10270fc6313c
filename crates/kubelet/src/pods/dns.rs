//! A pod's resolv.conf, as upstream's kubelet composes it (`GetPodDNS`), handed to the
//! runtime in CRI's PodSandboxConfig.dns_config (containerd writes the sandbox's
//! /etc/resolv.conf from it):
//!
//! - `ClusterFirst` (the default): the cluster DNS service as the only nameserver,
//!   `search NS.svc.DOMAIN svc.DOMAIN DOMAIN` then the host's search domains,
//!   `options ndots:5`. With host networking it falls back to `Default`, unless the
//!   policy is `ClusterFirstWithHostNet`. Without a cluster DNS address configured it
//!   falls back to `Default` too (upstream also records a MissingClusterDNS event).
//! - `Default`: the host's resolv.conf (nameservers, search, options).
//! - `None`: nothing but the pod's `dnsConfig`.
//! - A pod's `dnsConfig` is merged last: nameservers and searches appended without
//!   duplicates, options merged by name (the pod's value wins).
//! - Then upstream's limits: at most 3 nameservers, 32 search domains, 2048 characters
//!   of search list.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

use crate::runtime::DnsConfig;

/// Upstream's `validation.MaxDNSNameservers`.
const MAX_NAMESERVERS: usize = 3;
/// Upstream's `MaxDNSSearchPaths` and `MaxDNSSearchListChars`.
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;
/// Upstream's `defaultDNSOptions` for cluster DNS.
const CLUSTER_OPTIONS: &[&str] = &["ndots:5"];

/// What the host's resolv.conf says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostResolv {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// Parses resolv.conf text as upstream's `parseResolvConf`: `nameserver`, `search`
/// (the last line wins; trailing dots trimmed, `.` dropped), `options` (all lines).
pub fn parse_resolv_conf(text: &str) -> HostResolv {
    let mut host = HostResolv::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => host.nameservers.extend(fields.next().map(str::to_string)),
            Some("search") => {
                host.searches = fields
                    .filter(|s| *s != ".")
                    .map(|s| s.trim_end_matches('.').to_string())
                    .collect();
            }
            Some("options") => host.options.extend(fields.map(str::to_string)),
            _ => {}
        }
    }
    host
}

/// The DNS configuration of `pod` on a kubelet configured with `config` (the host's
/// resolv.conf is read each time, as upstream does at each sandbox creation).
pub fn for_pod(config: &crate::config::KubeletConfig, pod: &Pod) -> DnsConfig {
    pod_dns(
        pod,
        &config.cluster_dns,
        &config.cluster_domain,
        &read_host_resolv(&config.resolv_conf),
    )
}

/// The host's resolv.conf (empty when it cannot be read).
pub fn read_host_resolv(path: &std::path::Path) -> HostResolv {
    parse_resolv_conf(&std::fs::read_to_string(path).unwrap_or_default())
}

/// What a pod's DNS is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Cluster,
    Host,
    Empty,
}

fn base(pod: &Pod, have_cluster_dns: bool) -> Base {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let cluster = match spec.and_then(|s| s.dns_policy.as_deref()) {
        Some("None") => return Base::Empty,
        Some("Default") => false,
        Some("ClusterFirstWithHostNet") => true,
        // ClusterFirst, and unset or unknown values (the API defaults to ClusterFirst).
        _ => !host_network,
    };
    if cluster && have_cluster_dns {
        Base::Cluster
    } else {
        Base::Host
    }
}

/// The pod's DNS configuration.
pub fn pod_dns(
    pod: &Pod,
    cluster_dns: &[IpAddr],
    cluster_domain: &str,
    host: &HostResolv,
) -> DnsConfig {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut config = match base(pod, !cluster_dns.is_empty()) {
        Base::Empty => DnsConfig::default(),
        Base::Host => DnsConfig {
            servers: host.nameservers.clone(),
            searches: host.searches.clone(),
            options: host.options.clone(),
        },
        Base::Cluster => {
            let domain = cluster_domain.trim_end_matches('.');
            let mut searches = if domain.is_empty() {
                Vec::new()
            } else {
                vec![
                    format!("{namespace}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.to_string(),
                ]
            };
            searches.extend(host.searches.iter().cloned());
            DnsConfig {
                servers: cluster_dns.iter().map(IpAddr::to_string).collect(),
                searches: dedup(searches),
                options: CLUSTER_OPTIONS.iter().map(|s| s.to_string()).collect(),
            }
        }
    };
    if let Some(extra) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        config
            .servers
            .extend(extra.nameservers.iter().flatten().cloned());
        config.servers = dedup(std::mem::take(&mut config.servers));
        config
            .searches
            .extend(extra.searches.iter().flatten().cloned());
        config.searches = dedup(std::mem::take(&mut config.searches));
        for option in extra.options.iter().flatten() {
            let Some(name) = option.name.as_deref() else {
                continue;
            };
            let text = match option.value.as_deref() {
                Some(value) if !value.is_empty() => format!("{name}:{value}"),
                _ => name.to_string(),
            };
            let same = |o: &String| o.split(':').next() == Some(name);
            match config.options.iter_mut().find(|o| same(o)) {
                Some(slot) => *slot = text,
                None => config.options.push(text),
            }
        }
    }
    fit_limits(&mut config);
    config
}

/// Upstream's `formDNSConfigFitsLimits`: extra nameservers and search domains are
/// dropped (upstream also records an event).
fn fit_limits(config: &mut DnsConfig) {
    config.servers.truncate(MAX_NAMESERVERS);
    config.searches.truncate(MAX_SEARCHES);
    let mut chars = 0;
    let mut keep = 0;
    for (i, search) in config.searches.iter().enumerate() {
        // Joined by single spaces in the file.
        chars += search.len() + usize::from(i > 0);
        if chars > MAX_SEARCH_CHARS {
            break;
        }
        keep = i + 1;
    }
    config.searches.truncate(keep);
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "prod"},
            "spec": spec,
        }))
        .expect("pod")
    }

    fn host() -> HostResolv {
        parse_resolv_conf(
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example. lab.example .\n\
             options timeout:1 attempts:2\n",
        )
    }

    fn cluster() -> Vec<IpAddr> {
        vec!["10.43.0.10".parse().expect("ip")]
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn host_resolv_conf_is_parsed_as_upstream() {
        let host = host();
        assert_eq!(host.nameservers, ["192.0.2.53", "192.0.2.54"]);
        assert_eq!(host.searches, ["corp.example", "lab.example"]);
        assert_eq!(host.options, ["timeout:1", "attempts:2"]);
    }

    #[test]
    fn policies() {
        let cluster_config = DnsConfig {
            servers: strings(&["10.43.0.10"]),
            searches: strings(&[
                "prod.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example",
            ]),
            options: strings(&["ndots:5"]),
        };
        let host_config = DnsConfig {
            servers: strings(&["192.0.2.53", "192.0.2.54"]),
            searches: strings(&["corp.example", "lab.example"]),
            options: strings(&["timeout:1", "attempts:2"]),
        };
        let cases = [
            (serde_json::json!({"containers": []}), &cluster_config),
            (
                serde_json::json!({"containers": [], "dnsPolicy": "ClusterFirst"}),
                &cluster_config,
            ),
            (
                serde_json::json!({"containers": [], "dnsPolicy": "Default"}),
                &host_config,
            ),
            (
                serde_json::json!({"containers": [], "hostNetwork": true}),
                &host_config,
            ),
            (
                serde_json::json!({"containers": [], "hostNetwork": true, "dnsPolicy": "ClusterFirst"}),
                &host_config,
            ),
            (
                serde_json::json!({"containers": [], "hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}),
                &cluster_config,
            ),
            (
                serde_json::json!({"containers": [], "dnsPolicy": "ClusterFirstWithHostNet"}),
                &cluster_config,
            ),
        ];
        for (spec, want) in cases {
            let got = pod_dns(&pod(spec.clone()), &cluster(), "cluster.local", &host());
            assert_eq!(&got, want, "{spec}");
        }
        // No cluster DNS configured: ClusterFirst falls back to the host's.
        let got = pod_dns(
            &pod(serde_json::json!({"containers": []})),
            &[],
            "cluster.local",
            &host(),
        );
        assert_eq!(got, host_config);
    }

    #[test]
    fn none_takes_only_the_pods_dns_config() {
        let got = pod_dns(
            &pod(
                serde_json::json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
                    "nameservers": ["1.1.1.1"],
                    "searches": ["a.example"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]
                }}),
            ),
            &cluster(),
            "cluster.local",
            &host(),
        );
        assert_eq!(
            got,
            DnsConfig {
                servers: strings(&["1.1.1.1"]),
                searches: strings(&["a.example"]),
                options: strings(&["ndots:2", "edns0"]),
            }
        );
        let empty = pod_dns(
            &pod(serde_json::json!({"containers": [], "dnsPolicy": "None"})),
            &cluster(),
            "cluster.local",
            &host(),
        );
        assert_eq!(empty, DnsConfig::default());
    }

    #[test]
    fn dns_config_merges_into_cluster_first() {
        let got = pod_dns(
            &pod(serde_json::json!({"containers": [], "dnsConfig": {
                "nameservers": ["10.43.0.10", "192.0.2.1"],
                "searches": ["svc.cluster.local", "extra.example"],
                "options": [{"name": "ndots", "value": "1"}, {"name": "single-request"}]
            }})),
            &cluster(),
            "cluster.local",
            &host(),
        );
        assert_eq!(got.servers, ["10.43.0.10", "192.0.2.1"]);
        assert_eq!(
            got.searches,
            [
                "prod.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example",
                "extra.example"
            ]
        );
        assert_eq!(got.options, ["ndots:1", "single-request"]);
    }

    #[test]
    fn limits() {
        let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        let got = pod_dns(
            &pod(
                serde_json::json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
                    "nameservers": ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"],
                    "searches": many,
                }}),
            ),
            &cluster(),
            "cluster.local",
            &host(),
        );
        assert_eq!(got.servers.len(), 3);
        assert_eq!(got.searches.len(), 32);
        let long: Vec<String> = (0..10).map(|i| format!("{i}{}", "x".repeat(250))).collect();
        let got = pod_dns(
            &pod(
                serde_json::json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {"searches": long}}),
            ),
            &cluster(),
            "cluster.local",
            &host(),
        );
        assert_eq!(
            got.searches.len(),
            8,
            "8 × 251 + 7 spaces ≤ 2048 < 9 × 251 + 8"
        );
    }

    #[test]
    fn other_cluster_domain() {
        let got = pod_dns(
            &pod(serde_json::json!({"containers": []})),
            &cluster(),
            "corp.internal.",
            &HostResolv::default(),
        );
        assert_eq!(
            got.searches,
            [
                "prod.svc.corp.internal",
                "svc.corp.internal",
                "corp.internal"
            ]
        );
    }
}
