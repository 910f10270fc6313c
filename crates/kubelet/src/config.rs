//! The kubelet's configuration, with upstream's defaults, and the small parsers its
//! flags need (Go-style durations, resource quantities).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Which container runtime runs the pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeKind {
    /// CRI over gRPC (containerd): at this endpoint (`unix:///run/containerd/containerd.sock`),
    /// or, without one, a containerd the kubelet runs itself in `DATA_DIR/containerd`.
    Cri { endpoint: Option<String> },
    /// No processes: pods run on paper (tests, hollow nodes).
    Fake,
}

/// Everything a kubelet (or a set of hollow kubelets) runs with.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Where the kubelet keeps its files; its filesystem is the node's ephemeral storage.
    pub data_dir: PathBuf,
    pub runtime: RuntimeKind,
    /// The InternalIP to publish; the first non-loopback IPv4 address when unset.
    pub node_ip: Option<IpAddr>,
    /// Where the kubelet's HTTP endpoints listen.
    pub address: IpAddr,
    /// 0 picks a free port; the port actually bound is published in the Node.
    pub port: u16,
    /// Overrides the Node's spec.podCIDR (which the IPAM controller assigns).
    pub pod_cidr: Option<String>,
    /// CPU capacity (a quantity: `4`, `3500m`); the host's CPU count when unset.
    pub cpu: Option<String>,
    /// Memory capacity (a quantity: `8Gi`); MemTotal when unset.
    pub memory: Option<String>,
    pub max_pods: u32,
    pub node_lease_duration_seconds: i32,
    pub node_lease_renew_interval: Duration,
    /// How often the node status is recomputed (and posted if it changed).
    pub node_status_update_frequency: Duration,
    /// How often the node status is posted even when nothing changed.
    pub node_status_report_frequency: Duration,
    /// How often every pod worker resyncs without an event.
    pub sync_frequency: Duration,
    /// How often runtime pods no API object accounts for are cleaned up.
    pub housekeeping_interval: Duration,
    /// Every node's pods come from here: traffic from it to elsewhere is masqueraded,
    /// and what no node's bridge claims is blackholed.
    pub cluster_cidr: String,
    /// Service virtual IPs: routed to `lo` (dropped) unless the proxy translates them.
    pub service_cidr: String,
    /// The cgroup (cgroupfs path) pods' cgroups go under: `ROOT/pod<uid>`.
    pub cgroup_root: String,
    /// Set up IP forwarding, masquerading and the cluster/service routes (CRI runtime).
    pub manage_host_network: bool,
    /// The cluster DNS service's IPs: ClusterFirst pods' nameservers.
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster's DNS domain, for pods' search paths.
    pub cluster_domain: String,
    /// The host's resolver configuration, which `Default` DNS pods get.
    pub resolv_conf: PathBuf,
    /// On a clean exit, stop and remove every pod too (`mast up`: nothing may outlive
    /// it); otherwise pods keep running and a restarted kubelet adopts them.
    pub remove_pods_on_exit: bool,
}

impl Default for KubeletConfig {
    /// Upstream's defaults (KubeletConfiguration v1beta1).
    fn default() -> Self {
        KubeletConfig {
            data_dir: PathBuf::from("/var/lib/mast/kubelet"),
            runtime: RuntimeKind::Fake,
            node_ip: None,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 10250,
            pod_cidr: None,
            cpu: None,
            memory: None,
            max_pods: 110,
            node_lease_duration_seconds: 40,
            node_lease_renew_interval: Duration::from_secs(10),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(5 * 60),
            sync_frequency: Duration::from_secs(60),
            housekeeping_interval: Duration::from_secs(60),
            cluster_cidr: "10.42.0.0/16".into(),
            service_cidr: "10.43.0.0/16".into(),
            cgroup_root: "/kubepods".into(),
            manage_host_network: true,
            // Upstream has no default; this is the DNS Service's well-known address
            // (k3s's), the tenth of the service CIDR.
            cluster_dns: vec![IpAddr::V4(Ipv4Addr::new(10, 43, 0, 10))],
            cluster_domain: "cluster.local".into(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            remove_pods_on_exit: false,
        }
    }
}

/// A flag value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Not a Go-style duration (`10s`, `500ms`, `1m30s`) nor a number of seconds.
    #[error("invalid duration {0:?}: use a number with a unit (e.g. 10s, 500ms, 1m30s)")]
    Duration(String),
    /// Not a resource quantity of the expected kind.
    #[error("invalid {what} quantity {value:?}")]
    Quantity { what: &'static str, value: String },
}

/// A Go-style duration (`300ms`, `10s`, `1m30s`, `2h`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::Duration(text.to_string());
    let text = text.trim();
    if text.is_empty() {
        return Err(err());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return duration_from_secs(seconds).ok_or_else(err);
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if number_len == 0 {
            return Err(err());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| err())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    duration_from_secs(total).ok_or_else(err)
}

fn duration_from_secs(seconds: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(seconds).ok()
}

/// A byte quantity (`8Gi`, `512M`, `1073741824`) in bytes.
pub fn parse_bytes(text: &str) -> Result<u128, ConfigError> {
    let err = || ConfigError::Quantity {
        what: "memory",
        value: text.to_string(),
    };
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(err());
    }
    let number: u128 = text[..digits].parse().map_err(|_| err())?;
    let multiplier: u128 = match &text[digits..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return Err(err()),
    };
    number.checked_mul(multiplier).ok_or_else(err)
}

/// A CPU quantity (`4`, `0.5`, `3500m`) in millicores.
pub fn parse_millicores(text: &str) -> Result<u64, ConfigError> {
    let err = || ConfigError::Quantity {
        what: "cpu",
        value: text.to_string(),
    };
    let text = text.trim();
    let millis = if let Some(m) = text.strip_suffix('m') {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        m.parse::<u64>().map_err(|_| err())?
    } else {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(err());
        }
        let cores: f64 = text.parse().map_err(|_| err())?;
        if !cores.is_finite() || cores > 1e12 {
            return Err(err());
        }
        (cores * 1000.0).round() as u64
    };
    if millis == 0 {
        return Err(err());
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("10s", Some(Duration::from_secs(10))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("2h", Some(Duration::from_secs(7200))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("7", Some(Duration::from_secs(7))),
            ("", None),
            ("s", None),
            ("10x", None),
            ("-1s", None),
            ("-3", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input).ok(), want, "{input}");
        }
    }

    #[test]
    fn byte_quantities() {
        let cases = [
            ("8Gi", Some(8u128 << 30)),
            ("512M", Some(512_000_000)),
            ("1024", Some(1024)),
            ("100Ki", Some(102_400)),
            ("Gi", None),
            ("1.5Gi", None),
            ("8GB", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bytes(input).ok(), want, "{input}");
        }
    }

    #[test]
    fn cpu_quantities() {
        let cases = [
            ("4", Some(4000)),
            ("0.5", Some(500)),
            ("3500m", Some(3500)),
            ("0", None),
            ("m", None),
            ("-1", None),
            ("1e3", None),
            ("abc", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_millicores(input).ok(), want, "{input}");
        }
    }
}
