//! IPv4 CIDRs as the proxy's flags give them (`--cluster-cidr`, `--nodeport-addresses`).
//! Parsed once, so the rule generator only ever prints checked values.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Why a CIDR was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    /// Not `a.b.c.d/n` with n ≤ 32.
    #[error("invalid CIDR {0:?} (want an IPv4 a.b.c.d/n)")]
    Invalid(String),
}

/// An IPv4 network; the address is kept as given (nftables masks it itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Whether `ip` lies inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(ip) & mask == u32::from(self.address) & mask
    }

    /// The network with its host bits cleared (what nftables prints back).
    pub fn network(&self) -> Ipv4Cidr {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        Ipv4Cidr {
            address: Ipv4Addr::from(u32::from(self.address) & mask),
            prefix: self.prefix,
        }
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || CidrError::Invalid(text.to_string());
        let (address, prefix) = text.trim().split_once('/').ok_or_else(err)?;
        let address: Ipv4Addr = address.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        if prefix > 32 {
            return Err(err());
        }
        Ok(Ipv4Cidr { address, prefix }.network())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_contains() {
        let cidr: Ipv4Cidr = "10.42.7.1/16".parse().expect("valid");
        assert_eq!(cidr.to_string(), "10.42.0.0/16");
        assert!(cidr.contains(Ipv4Addr::new(10, 42, 255, 1)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 43, 0, 1)));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "fd00::/8",
            "x/8",
            "10.0.0.0/8; drop",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }
}
