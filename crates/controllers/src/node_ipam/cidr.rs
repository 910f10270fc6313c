//! IPv4 CIDRs, as node IPAM needs them: parse `a.b.c.d/n`, split a range into
//! equal subnets, and find which subnets a CIDR covers. Addresses are `u32`s; sizes
//! and indexes `u64`s, so that a /0 (2^32 addresses) does not overflow.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::str::FromStr;

/// An IPv4 network: its first address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

/// Why a text is not an IPv4 CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// An IPv6 CIDR (node IPAM allocates IPv4 only).
    #[error("{0:?} is an IPv6 CIDR; only IPv4 is supported")]
    Ipv6(String),
    /// Not `a.b.c.d/n` with n at most 32.
    #[error("{0:?} is not an IPv4 CIDR (expected a.b.c.d/n, n <= 32)")]
    Malformed(String),
}

impl Ipv4Cidr {
    /// The network of `address` with `prefix` bits (host bits cleared, as Go's
    /// `ParseCIDR` does); `None` when `prefix` is over 32.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Ipv4Cidr {
            network: u32::from(address) & mask(prefix),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn first(&self) -> u64 {
        u64::from(self.network)
    }

    fn last(&self) -> u64 {
        self.first() + (1u64 << (32 - self.prefix)) - 1
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// How many subnets of length `prefix` this splits into; `None` when `prefix` is
    /// shorter than this network's or over 32.
    pub fn subnet_count(&self, prefix: u8) -> Option<u64> {
        (self.prefix..=32)
            .contains(&prefix)
            .then(|| 1u64 << (prefix - self.prefix))
    }

    /// The `index`th subnet of length `prefix`.
    pub fn subnet(&self, prefix: u8, index: u64) -> Option<Ipv4Cidr> {
        if index >= self.subnet_count(prefix)? {
            return None;
        }
        let network = self.first() + (index << (32 - prefix));
        Some(Ipv4Cidr {
            network: u32::try_from(network).ok()?,
            prefix,
        })
    }

    /// The indexes of the `prefix`-long subnets that `other` overlaps (empty when it
    /// lies outside, or `prefix` does not split this network).
    pub fn subnets_overlapping(&self, prefix: u8, other: &Ipv4Cidr) -> Range<u64> {
        if self.subnet_count(prefix).is_none() || !self.overlaps(other) {
            return 0..0;
        }
        let shift = 32 - prefix;
        let low = self.first().max(other.first()) - self.first();
        let high = self.last().min(other.last()) - self.first();
        (low >> shift)..(high >> shift) + 1
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let malformed = || CidrError::Malformed(text.to_string());
        let (address, prefix) = text.trim().split_once('/').ok_or_else(malformed)?;
        if address.contains(':') {
            return Err(CidrError::Ipv6(text.to_string()));
        }
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let prefix: u8 = prefix.parse().map_err(|_| malformed())?;
        let address: Ipv4Addr = address.parse().map_err(|_| malformed())?;
        Ipv4Cidr::new(address, prefix).ok_or_else(malformed)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        text.parse().expect("a valid CIDR")
    }

    #[test]
    fn parsing_accepts_ipv4_cidrs_and_clears_host_bits() {
        assert_eq!(cidr("10.42.0.0/16").to_string(), "10.42.0.0/16");
        assert_eq!(cidr("10.42.7.9/16").to_string(), "10.42.0.0/16");
        assert_eq!(cidr(" 192.168.1.0/24 ").prefix(), 24);
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(cidr("1.2.3.4/32").to_string(), "1.2.3.4/32");
        for bad in [
            "10.42.0.0",
            "10.42.0.0/",
            "10.42.0.0/33",
            "10.42.0/16",
            "10.42.0.0/+8",
            "x/8",
            "10.42.0.0/1a",
            "10.42.0.0/008",
        ] {
            assert!(
                matches!(bad.parse::<Ipv4Cidr>(), Err(CidrError::Malformed(_))),
                "{bad:?} must be refused"
            );
        }
        assert!(matches!(
            "fd00::/64".parse::<Ipv4Cidr>(),
            Err(CidrError::Ipv6(_))
        ));
    }

    #[test]
    fn a_range_splits_into_equal_subnets() {
        let range = cidr("10.42.0.0/16");
        assert_eq!(range.subnet_count(24), Some(256));
        assert_eq!(range.subnet_count(16), Some(1));
        assert_eq!(range.subnet_count(8), None);
        assert_eq!(range.subnet_count(33), None);
        assert_eq!(range.subnet(24, 0), Some(cidr("10.42.0.0/24")));
        assert_eq!(range.subnet(24, 5), Some(cidr("10.42.5.0/24")));
        assert_eq!(range.subnet(24, 255), Some(cidr("10.42.255.0/24")));
        assert_eq!(range.subnet(24, 256), None);
        assert_eq!(range.subnet(26, 3), Some(cidr("10.42.0.192/26")));
        let everything = cidr("0.0.0.0/0");
        assert_eq!(everything.subnet_count(16), Some(65536));
        assert_eq!(everything.subnet(16, 65535), Some(cidr("255.255.0.0/16")));
    }

    #[test]
    fn overlapping_subnets_are_found_whatever_the_size() {
        let range = cidr("10.42.0.0/16");
        assert_eq!(range.subnets_overlapping(24, &cidr("10.42.3.0/24")), 3..4);
        // A bigger block covers several subnets; a smaller one, part of one.
        assert_eq!(range.subnets_overlapping(24, &cidr("10.42.4.0/22")), 4..8);
        assert_eq!(
            range.subnets_overlapping(24, &cidr("10.42.9.128/25")),
            9..10
        );
        // Outside, or straddling the edge.
        assert_eq!(range.subnets_overlapping(24, &cidr("10.43.0.0/24")), 0..0);
        assert_eq!(range.subnets_overlapping(24, &cidr("10.0.0.0/8")), 0..256);
        assert!(range.overlaps(&cidr("10.42.255.255/32")));
        assert!(!range.overlaps(&cidr("10.41.255.255/32")));
    }
}
