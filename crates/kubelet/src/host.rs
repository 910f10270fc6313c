//! What the kubelet learns about its machine: CPUs, memory, the data dir's filesystem,
//! OS and kernel, architecture, the node IP. Read once at start from `/proc`, `/sys`
//! and `/etc`; each file has a pure parser so the parsing is tested without the files.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;

/// Facts about the host, as the Node reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub hostname: String,
    pub cpus: u32,
    pub memory_kib: u64,
    /// Size of the data dir's filesystem, if it could be read.
    pub ephemeral_storage_bytes: Option<u64>,
    /// `amd64`, `arm64`, ... (Go's names, as upstream labels use).
    pub architecture: String,
    pub operating_system: String,
    pub os_image: String,
    pub kernel_version: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    /// The first non-loopback IPv4 address (127.0.0.1 when there is none).
    pub default_ip: IpAddr,
}

impl HostInfo {
    /// Reads the host; the data dir must exist (its filesystem is measured).
    pub fn detect(data_dir: &Path) -> HostInfo {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpus = parse_cpu_list(&read("/sys/devices/system/cpu/online"))
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .and_then(|n| u32::try_from(n.get()).ok())
            })
            .unwrap_or(1);
        let hostname = read("/proc/sys/kernel/hostname").trim().to_lowercase();
        HostInfo {
            hostname: if hostname.is_empty() {
                "localhost".into()
            } else {
                hostname
            },
            cpus,
            memory_kib: parse_meminfo_total_kib(&read("/proc/meminfo")).unwrap_or(0),
            ephemeral_storage_bytes: filesystem_size(data_dir),
            architecture: go_arch(std::env::consts::ARCH).to_string(),
            operating_system: "linux".into(),
            os_image: parse_os_release(&read("/etc/os-release"))
                .unwrap_or_else(|| "Linux".to_string()),
            kernel_version: read("/proc/sys/kernel/osrelease").trim().to_string(),
            machine_id: read("/etc/machine-id").trim().to_string(),
            // Root-only on most machines; upstream reports it empty then too.
            system_uuid: read("/sys/class/dmi/id/product_uuid").trim().to_string(),
            boot_id: read("/proc/sys/kernel/random/boot_id").trim().to_string(),
            default_ip: default_ipv4()
                .or_else(|| {
                    parse_fib_trie_local(&read("/proc/net/fib_trie"))
                        .into_iter()
                        .next()
                })
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        }
    }
}

/// Total size of the filesystem holding `path`.
fn filesystem_size(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    stat.f_blocks.checked_mul(stat.f_frsize)
}

/// The source address the kernel would use for the default route. Connecting a UDP
/// socket sends nothing; it only picks a route.
fn default_ipv4() -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// Go's name for a Rust target architecture (upstream's `kubernetes.io/arch` values).
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The number of CPUs in a kernel CPU list (`0-3,5,7-8`).
pub fn parse_cpu_list(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut count: u32 = 0;
    for part in text.split(',') {
        let n = match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().ok()?;
                let b: u32 = b.trim().parse().ok()?;
                b.checked_sub(a)?.checked_add(1)?
            }
            None => {
                part.trim().parse::<u32>().ok()?;
                1
            }
        };
        count = count.checked_add(n)?;
    }
    (count > 0).then_some(count)
}

/// `MemTotal` of `/proc/meminfo`, in KiB.
pub fn parse_meminfo_total_kib(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let mut words = rest.split_whitespace();
        let value: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") | None => Some(value),
            _ => None,
        }
    })
}

/// `PRETTY_NAME` of `/etc/os-release` (quotes removed).
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("PRETTY_NAME=")?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// The host's own non-loopback IPv4 addresses from `/proc/net/fib_trie`: an address
/// line (`|-- 10.0.0.5`) followed by `/32 host LOCAL`.
pub fn parse_fib_trie_local(text: &str) -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let mut previous: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(address) = trimmed.strip_prefix("|-- ") {
            previous = address.trim().parse().ok();
            continue;
        }
        if trimmed.starts_with("/32 host LOCAL")
            && let Some(ip) = previous
            && !ip.is_loopback()
            && !found.contains(&ip)
        {
            found.push(ip);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a-b"), None);
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:       24683396 kB\nMemFree:        20301848 kB\n";
        assert_eq!(parse_meminfo_total_kib(text), Some(24_683_396));
        assert_eq!(parse_meminfo_total_kib("MemFree: 1 kB"), None);
        assert_eq!(parse_meminfo_total_kib("MemTotal: x kB"), None);
    }

    #[test]
    fn os_release() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            parse_os_release(text).as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(
            parse_os_release("PRETTY_NAME=Alpine").as_deref(),
            Some("Alpine")
        );
        assert_eq!(parse_os_release("NAME=x"), None);
    }

    #[test]
    fn architectures() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("mips"), "mips");
    }

    #[test]
    fn fib_trie() {
        let text = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     |-- 172.17.0.0
        /16 link UNICAST
     |-- 172.17.0.2
        /32 host LOCAL
Local:
     |-- 172.17.0.2
        /32 host LOCAL
     |-- 10.1.2.3
        /32 host LOCAL
";
        assert_eq!(
            parse_fib_trie_local(text),
            vec![Ipv4Addr::new(172, 17, 0, 2), Ipv4Addr::new(10, 1, 2, 3)]
        );
    }

    #[test]
    fn detects_this_host() {
        let dir = std::env::temp_dir();
        let host = HostInfo::detect(&dir);
        assert!(host.cpus >= 1);
        assert!(host.memory_kib > 0);
        assert!(host.ephemeral_storage_bytes.is_some_and(|b| b > 0));
        assert_eq!(host.operating_system, "linux");
    }
}
