//! The node's pod network: a CNI conflist for a Linux bridge with host-local IPAM over
//! the node's podCIDR, written where containerd's CRI plugin looks for it.
//!
//! containerd loads the first conflist of its conf dir and reloads when the dir changes,
//! so writing the file is all it takes; the runtime's `NetworkReady` condition turns
//! true once it is loaded. Loopback needs no entry: containerd sets `lo` up itself.
//! There is no `ipMasq`: it needs iptables, which these machines lack; masquerading is
//! nftables' job. `portmap` (hostPort) is optional for the same reason: the Debian
//! plugin drives iptables.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::json;

/// The conflist's file name; containerd loads the lexically first file.
pub const CONFLIST_NAME: &str = "10-mast.conflist";
/// The CNI spec version the conflist declares (Debian's plugins 1.1 speak it).
pub const CNI_VERSION: &str = "1.0.0";
/// The Linux bridge pods are attached to.
pub const BRIDGE: &str = "mast0";

/// Errors of the CNI config writer.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// The pod CIDR does not parse or leaves no room for a gateway and pods.
    #[error("invalid pod CIDR {cidr:?}: {reason}")]
    InvalidCidr {
        /// What was given.
        cidr: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Writing the conflist failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// An IP network in CIDR notation, host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub network: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.88.0.0/24` or `fd00::/64`; host bits must be zero.
    pub fn parse(cidr: &str) -> Result<Cidr, CniError> {
        let invalid = |reason| CniError::InvalidCidr {
            cidr: cidr.to_owned(),
            reason,
        };
        let (addr, prefix) = cidr.split_once('/').ok_or_else(|| invalid("no /prefix"))?;
        let network: IpAddr = addr.parse().map_err(|_| invalid("bad address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid("bad prefix length"))?;
        // Room for the network address, the gateway, at least one pod and (v4) broadcast.
        let (bits, max) = match network {
            IpAddr::V4(a) => (u128::from(u32::from(a)), (32u8, 30u8)),
            IpAddr::V6(a) => (u128::from(a), (128u8, 126u8)),
        };
        let (width, max_prefix) = max;
        if prefix > width {
            return Err(invalid("prefix longer than the address"));
        }
        if prefix > max_prefix {
            return Err(invalid("too small for a gateway and pods"));
        }
        let host_bits = u32::from(width - prefix);
        let host_mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        if bits & host_mask != 0 {
            return Err(invalid("host bits set"));
        }
        Ok(Cidr { network, prefix })
    }

    /// The first address after the network address: the bridge's, pods' gateway.
    pub fn gateway(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
        }
    }

    /// The default route's destination in this family.
    fn default_route(&self) -> &'static str {
        match self.network {
            IpAddr::V4(_) => "0.0.0.0/0",
            IpAddr::V6(_) => "::/0",
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A bridge network over one pod CIDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeNetwork {
    /// The CNI network name.
    pub name: String,
    /// The Linux bridge's name (at most 15 bytes).
    pub bridge: String,
    /// The node's pod CIDR; the bridge takes its first address.
    pub subnet: Cidr,
    /// Where host-local keeps its allocations; `None` is its default,
    /// `/var/lib/cni/networks` (shared by every runtime on the host).
    pub ipam_data_dir: Option<PathBuf>,
    /// Add the portmap plugin (hostPort); it needs iptables.
    pub port_map: bool,
    /// The MTU of bridge and veths; `None` lets the plugin choose.
    pub mtu: Option<u32>,
}

impl BridgeNetwork {
    /// Network `mast` on bridge `mast0` for `pod_cidr`, no portmap.
    pub fn new(pod_cidr: &str) -> Result<Self, CniError> {
        Ok(BridgeNetwork {
            name: "mast".to_owned(),
            bridge: BRIDGE.to_owned(),
            subnet: Cidr::parse(pod_cidr)?,
            ipam_data_dir: None,
            port_map: false,
            mtu: None,
        })
    }

    /// The conflist document.
    pub fn conflist(&self) -> serde_json::Value {
        let mut ipam = json!({
            "type": "host-local",
            "ranges": [[{
                "subnet": self.subnet.to_string(),
                "gateway": self.subnet.gateway().to_string(),
            }]],
            "routes": [{ "dst": self.subnet.default_route() }],
        });
        if let Some(dir) = &self.ipam_data_dir {
            ipam["dataDir"] = json!(dir);
        }
        let mut bridge = json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": ipam,
        });
        if let Some(mtu) = self.mtu {
            bridge["mtu"] = json!(mtu);
        }
        let mut plugins = vec![bridge];
        if self.port_map {
            plugins.push(json!({ "type": "portmap", "capabilities": { "portMappings": true } }));
        }
        json!({ "cniVersion": CNI_VERSION, "name": self.name, "plugins": plugins })
    }

    /// Writes the conflist into `conf_dir` as [`CONFLIST_NAME`], atomically (the
    /// runtime watches the directory); returns its path.
    pub fn write(&self, conf_dir: &Path) -> Result<PathBuf, CniError> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CniError::Write { path, source }
        };
        std::fs::create_dir_all(conf_dir).map_err(write_err(conf_dir))?;
        let path = conf_dir.join(CONFLIST_NAME);
        // A dot file without a CNI extension: never loaded half-written.
        let tmp = conf_dir.join(format!(".{CONFLIST_NAME}.tmp"));
        let text = format!("{:#}\n", self.conflist());
        std::fs::write(&tmp, text).map_err(write_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(write_err(&path))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.88.0.0/24").expect("valid");
        assert_eq!(c.gateway().to_string(), "10.88.0.1");
        assert_eq!(c.to_string(), "10.88.0.0/24");
        let v6 = Cidr::parse("fd00:10::/64").expect("valid");
        assert_eq!(v6.gateway().to_string(), "fd00:10::1");
        for bad in [
            "10.88.0.0",
            "10.88.0.1/24",
            "10.88.0.0/31",
            "10.88.0.0/33",
            "x/24",
            "10.88.0.0/x",
            "fd00::/127",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert!(Cidr::parse("0.0.0.0/0").is_ok());
    }

    #[test]
    fn conflist_shape() {
        let mut net = BridgeNetwork::new("10.244.1.0/24").expect("valid");
        net.ipam_data_dir = Some(PathBuf::from("/data/cni/networks"));
        let doc = net.conflist();
        assert_eq!(doc["name"], "mast");
        assert_eq!(doc["plugins"].as_array().map(Vec::len), Some(1));
        let bridge = &doc["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], "10.244.1.1");
        assert_eq!(bridge["ipam"]["dataDir"], "/data/cni/networks");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");

        net.port_map = true;
        assert_eq!(net.conflist()["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn write_replaces_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf_dir = dir.path().join("net.d");
        let net = BridgeNetwork::new("10.88.0.0/24").expect("valid");
        let path = net.write(&conf_dir).expect("write");
        net.write(&conf_dir).expect("rewrite");
        let text = std::fs::read_to_string(&path).expect("read");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(doc, net.conflist());
        let names: Vec<_> = std::fs::read_dir(&conf_dir)
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(CONFLIST_NAME)]);
    }
}
