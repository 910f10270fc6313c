//! Pod IPs from the node's pod CIDR, the way CNI's host-local plugin hands them out:
//! the network address, the gateway (the first host address, which the bridge takes)
//! and the IPv4 broadcast address are never given; allocation goes round-robin from
//! the last address given, so a freed address is not reused at once.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A CIDR that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid CIDR {0:?}")]
    InvalidCidr(String),
    /// The range has no address a pod can take.
    #[error("CIDR {0} is too small for pods")]
    TooSmall(String),
}

/// An IPv4 or IPv6 network, `address/prefix`, with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u128,
    prefix: u8,
    v6: bool,
}

impl Cidr {
    fn bits(&self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    /// How many addresses the network holds (saturating for huge IPv6 ranges).
    fn size(&self) -> u128 {
        let host_bits = u32::from(self.bits() - self.prefix);
        1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
    }

    fn address(&self, offset: u128) -> IpAddr {
        let value = self.network.wrapping_add(offset);
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(value))
        } else {
            IpAddr::V4(Ipv4Addr::from(value as u32))
        }
    }

    /// The offset of `ip` inside this network, if it is inside.
    fn offset(&self, ip: IpAddr) -> Option<u128> {
        let value = match (ip, self.v6) {
            (IpAddr::V4(v4), false) => u128::from(u32::from(v4)),
            (IpAddr::V6(v6), true) => u128::from(v6),
            _ => return None,
        };
        let offset = value.checked_sub(self.network)?;
        (offset < self.size()).then_some(offset)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.offset(ip).is_some()
    }
}

impl FromStr for Cidr {
    type Err = IpamError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || IpamError::InvalidCidr(text.to_string());
        let (address, prefix) = text.trim().split_once('/').ok_or_else(err)?;
        let address: IpAddr = address.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        let (value, v6) = match address {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
            IpAddr::V6(v6) => (u128::from(v6), true),
        };
        let bits = if v6 { 128 } else { 32 };
        if prefix > bits {
            return Err(err());
        }
        let host_bits = u32::from(bits - prefix);
        let mask = 1u128
            .checked_shl(host_bits)
            .map(|m| m - 1)
            .unwrap_or(u128::MAX);
        Ok(Cidr {
            network: value & !mask,
            prefix,
            v6,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address(0), self.prefix)
    }
}

/// Hands out the addresses of one pod CIDR.
#[derive(Debug, Clone)]
pub struct Allocator {
    cidr: Cidr,
    /// Offsets in use.
    used: HashSet<u128>,
    /// The offset given last; the search for a free one starts after it.
    last: u128,
    first: u128,
    /// One past the last usable offset.
    end: u128,
}

impl Allocator {
    pub fn new(cidr: Cidr) -> Result<Self, IpamError> {
        let size = cidr.size();
        // Skip the network address and the gateway; IPv4 also loses its broadcast.
        let first = 2;
        let end = if cidr.v6 {
            size
        } else {
            size.saturating_sub(1)
        };
        if end <= first {
            return Err(IpamError::TooSmall(cidr.to_string()));
        }
        Ok(Allocator {
            cidr,
            used: HashSet::new(),
            last: first - 1,
            first,
            end,
        })
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// A free address, or None when the range is full.
    pub fn allocate(&mut self) -> Option<IpAddr> {
        let usable = self.end - self.first;
        // At most `used + 1` probes: there are only that many taken addresses to skip.
        let probes = (self.used.len() as u128 + 1).min(usable);
        let mut candidate = self.last;
        for _ in 0..probes {
            candidate = if candidate + 1 >= self.end {
                self.first
            } else {
                candidate + 1
            };
            if self.used.insert(candidate) {
                self.last = candidate;
                return Some(self.cidr.address(candidate));
            }
        }
        None
    }

    /// Gives `ip` back; addresses outside the range (an older CIDR's) are ignored.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(offset) = self.cidr.offset(ip) {
            self.used.remove(&offset);
        }
    }

    /// Marks `ip` as taken (a pod that already has it); false if outside or taken.
    pub fn reserve(&mut self, ip: IpAddr) -> bool {
        match self.cidr.offset(ip) {
            Some(offset) if offset >= self.first && offset < self.end => self.used.insert(offset),
            _ => false,
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn parses_and_normalizes() {
        let c: Cidr = "10.244.1.7/24".parse().expect("cidr");
        assert_eq!(c.to_string(), "10.244.1.0/24");
        assert!(c.contains(ip("10.244.1.255")));
        assert!(!c.contains(ip("10.244.2.0")));
        assert!(!c.contains(ip("fd00::1")));
        let v6: Cidr = "fd00:10::/64".parse().expect("cidr");
        assert_eq!(v6.to_string(), "fd00:10::/64");
        assert!(v6.contains(ip("fd00:10::abcd")));
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/24", "10.0.0.0/-1", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn skips_network_gateway_and_broadcast() {
        let mut a = Allocator::new("10.0.0.0/29".parse().expect("cidr")).expect("alloc");
        let got: Vec<IpAddr> = std::iter::from_fn(|| a.allocate()).collect();
        let want: Vec<IpAddr> = (2..=6).map(|i| ip(&format!("10.0.0.{i}"))).collect();
        assert_eq!(got, want);
        assert_eq!(a.allocate(), None);
        assert_eq!(a.in_use(), 5);
    }

    #[test]
    fn frees_and_goes_round_robin() {
        let mut a = Allocator::new("10.0.0.0/29".parse().expect("cidr")).expect("alloc");
        let first = a.allocate().expect("first");
        let second = a.allocate().expect("second");
        a.release(first);
        // Not the freed address at once: the next one after the last given.
        assert_eq!(a.allocate(), Some(ip("10.0.0.4")));
        a.release(second);
        a.release(ip("192.168.0.1"));
        assert_eq!(a.in_use(), 1);
        // Wraps around and finds the freed ones again.
        let rest: Vec<IpAddr> = std::iter::from_fn(|| a.allocate()).collect();
        assert_eq!(rest.len(), 4);
        assert!(rest.contains(&first) && rest.contains(&second));
    }

    #[test]
    fn reserve_marks_existing_addresses() {
        let mut a = Allocator::new("10.0.0.0/30".parse().expect("cidr")).expect("alloc");
        assert!(a.reserve(ip("10.0.0.2")));
        assert!(!a.reserve(ip("10.0.0.2")));
        assert!(!a.reserve(ip("10.0.0.0")));
        assert_eq!(a.allocate(), None);
    }

    #[test]
    fn too_small_ranges() {
        for cidr in ["10.0.0.0/31", "10.0.0.0/32", "10.0.0.0/30"] {
            let c: Cidr = cidr.parse().expect("cidr");
            let usable = Allocator::new(c).map(|mut a| a.allocate().is_some());
            assert_eq!(usable.unwrap_or(false), cidr == "10.0.0.0/30", "{cidr}");
        }
    }

    #[test]
    fn ipv6_ranges_are_huge_but_cheap() {
        let mut a = Allocator::new("fd00::/64".parse().expect("cidr")).expect("alloc");
        assert_eq!(a.allocate(), Some(ip("fd00::2")));
        assert_eq!(a.allocate(), Some(ip("fd00::3")));
        let all: Allocator = Allocator::new("::/0".parse().expect("cidr")).expect("alloc");
        assert_eq!(all.in_use(), 0);
    }
}
