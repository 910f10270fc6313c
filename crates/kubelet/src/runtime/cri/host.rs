//! The node's side of pod networking, beyond what the CNI bridge does:
//!
//! - IP forwarding on, so pods reach beyond the bridge;
//! - nftables table `ip mast-kubelet`: traffic from the cluster CIDR to destinations
//!   outside it is masqueraded (pods talk to the world with the node's address);
//! - a blackhole route for the cluster CIDR: an address no node's bridge (a more
//!   specific route) claims goes nowhere rather than out of the default route;
//! - the service CIDR routed to `lo`: nothing unmatched leaves the host (a packet looped
//!   back to a non-local address is dropped), yet the host's own connections to a
//!   ClusterIP work. A blackhole would refuse them at `connect()`, because the route is
//!   looked up before the proxy's output-hook DNAT can rewrite the address; on `lo`,
//!   the DNAT happens and the packet is routed again to the endpoint.
//!
//! All of it is removed again on a clean exit.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The nftables table the kubelet owns.
pub const TABLE: &str = "mast-kubelet";

/// Why the host network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("invalid CIDR {0:?} (want an IPv4 a.b.c.d/n)")]
    Cidr(String),
    #[error("{what}: {message}")]
    Command { what: String, message: String },
    #[error("enabling IP forwarding: {0}")]
    Forwarding(#[source] std::io::Error),
}

/// The host rules for one cluster CIDR and one service CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNetwork {
    cluster_cidr: String,
    service_cidr: String,
}

/// Checks an IPv4 CIDR (the rules are `table ip`).
fn ipv4_cidr(text: &str) -> Result<String, HostError> {
    let err = || HostError::Cidr(text.to_string());
    let (address, prefix) = text.trim().split_once('/').ok_or_else(err)?;
    let _: std::net::Ipv4Addr = address.parse().map_err(|_| err())?;
    let prefix: u8 = prefix.parse().map_err(|_| err())?;
    if prefix > 32 {
        return Err(err());
    }
    Ok(text.trim().to_string())
}

async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), HostError> {
    let what = format!("{program} {}", args.join(" "));
    let failed = |message: String| HostError::Command {
        what: what.clone(),
        message,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl HostNetwork {
    pub fn new(cluster_cidr: &str, service_cidr: &str) -> Result<Self, HostError> {
        Ok(HostNetwork {
            cluster_cidr: ipv4_cidr(cluster_cidr)?,
            service_cidr: ipv4_cidr(service_cidr)?,
        })
    }

    /// The nftables script: the table is declared, flushed by deletion and made anew
    /// in one transaction, so applying it twice gives one copy.
    pub fn ruleset(&self) -> String {
        let cluster = &self.cluster_cidr;
        format!(
            "table ip {TABLE} {{}}\n\
             delete table ip {TABLE}\n\
             table ip {TABLE} {{\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr {cluster} ip daddr != {cluster} masquerade\n\
             \t}}\n\
             }}\n"
        )
    }

    /// Sets it all up (idempotent: a kubelet restarted after a kill re-applies it).
    pub async fn apply(&self) -> Result<(), HostError> {
        tokio::fs::write("/proc/sys/net/ipv4/ip_forward", "1\n")
            .await
            .map_err(HostError::Forwarding)?;
        run("nft", &["-f", "-"], Some(&self.ruleset())).await?;
        run(
            "ip",
            &["route", "replace", "blackhole", &self.cluster_cidr],
            None,
        )
        .await?;
        run(
            "ip",
            &["route", "replace", &self.service_cidr, "dev", "lo"],
            None,
        )
        .await?;
        tracing::info!(
            cluster_cidr = %self.cluster_cidr,
            service_cidr = %self.service_cidr,
            table = TABLE,
            "host network rules in place"
        );
        Ok(())
    }

    /// Removes the table and the routes; failures are logged (nothing to retry on exit).
    pub async fn remove(&self) {
        if let Err(e) = run("nft", &["delete", "table", "ip", TABLE], None).await {
            tracing::warn!(error = %e, "removing the nftables table");
        }
        let routes: [&[&str]; 2] = [
            &["route", "del", "blackhole", &self.cluster_cidr],
            &["route", "del", &self.service_cidr, "dev", "lo"],
        ];
        for args in routes {
            if let Err(e) = run("ip", args, None).await {
                tracing::warn!(error = %e, "removing a route");
            }
        }
    }
}

/// Deletes a network link if it exists (absent is fine; other failures are logged).
/// (Not checked under /sys/class/net: sysfs shows the network namespace it was
/// mounted in, not necessarily ours.)
pub async fn remove_link(name: &str) {
    match run("ip", &["link", "del", name], None).await {
        Err(HostError::Command { message, .. }) if message.contains("Cannot find device") => {}
        Err(e) => tracing::warn!(error = %e, link = name, "removing a link"),
        Ok(()) => tracing::info!(link = name, "link removed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked() {
        assert!(HostNetwork::new("10.42.0.0/16", "10.43.0.0/16").is_ok());
        for bad in [
            "10.42.0.0",
            "10.42.0.0/33",
            "fd00::/64",
            "x/8",
            "10.42.0.0/16; drop",
        ] {
            assert!(HostNetwork::new(bad, "10.43.0.0/16").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_ruleset_masquerades_leaving_traffic() {
        let rules = HostNetwork::new("10.42.0.0/16", "10.43.0.0/16")
            .expect("valid")
            .ruleset();
        assert!(rules.contains("ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 masquerade"));
        assert!(rules.starts_with("table ip mast-kubelet {}\ndelete table ip mast-kubelet\n"));
    }
}
