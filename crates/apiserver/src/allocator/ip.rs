//! The service IP range (`--service-cidr`): IPv4 CIDR arithmetic, the addresses held
//! back for the API server's own Service and cluster DNS, and upstream's split into a
//! lower band for static (requested) addresses and an upper band dynamic allocation
//! prefers (KEP-3070).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::RangeError;
use super::pool::Slots;

/// Upstream's bound on an IPv4 service CIDR's mask ("too large" below it).
const MIN_PREFIX: u8 = 12;
/// Below /30 nothing is left once the network and broadcast addresses are taken out.
const MAX_PREFIX: u8 = 30;
/// Index of cluster DNS's conventional address (`.10` of the range), held back from
/// dynamic allocation so that the DNS Service can always claim it.
const DNS_INDEX: u32 = 9;

/// An IPv4 service CIDR. Index 0 is the first usable address (network + 1), which is
/// the `kubernetes` Service's; the network and broadcast addresses are never handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: u32,
    prefix: u8,
}

impl IpRange {
    /// The number of usable addresses (all but network and broadcast).
    pub fn size(&self) -> u32 {
        (1u32 << (32 - u32::from(self.prefix))) - 2
    }

    /// The address at `index`, if in range.
    pub fn address(&self, index: u32) -> Option<Ipv4Addr> {
        (index < self.size()).then(|| Ipv4Addr::from(self.network + 1 + index))
    }

    /// The index of `ip`, if it is a usable address of the range.
    pub fn index_of(&self, ip: Ipv4Addr) -> Option<u32> {
        let offset = u32::from(ip).checked_sub(self.network + 1)?;
        (offset < self.size()).then_some(offset)
    }

    /// Whether `ip` is a usable address of the range.
    pub fn contains(&self, ip: &str) -> bool {
        ip.parse().ok().and_then(|ip| self.index_of(ip)).is_some()
    }

    /// The API server's own Service address: the first usable one, as upstream.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    /// The conventional cluster DNS address (`.10`), if the range holds it.
    pub fn dns_ip(&self) -> Option<Ipv4Addr> {
        self.address(DNS_INDEX)
    }
}

impl Slots for IpRange {
    fn len(&self) -> u32 {
        self.size()
    }

    /// Upstream's `calculateRangeOffset`: `min(max(16, cidr size / 16), 256)`, none
    /// for ranges of 16 addresses or fewer.
    fn static_band(&self) -> u32 {
        let whole = 1u32 << (32 - u32::from(self.prefix));
        if whole <= 16 {
            0
        } else {
            (whole / 16).clamp(16, 256)
        }
    }

    fn reserved(&self, index: u32) -> bool {
        index == 0 || index == DNS_INDEX
    }

    fn name(&self, index: u32) -> String {
        self.address(index)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

impl FromStr for IpRange {
    type Err = RangeError;

    /// `10.43.0.0/16`; host bits are masked off as Go's `ParseCIDR` does.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || RangeError::Cidr(text.to_string());
        let (address, prefix) = text.trim().split_once('/').ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let address: std::net::IpAddr = address.parse().map_err(|_| bad())?;
        let std::net::IpAddr::V4(address) = address else {
            return Err(RangeError::NotIpv4(text.to_string()));
        };
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&prefix) {
            return Err(RangeError::PrefixLength {
                cidr: text.to_string(),
                min: MIN_PREFIX,
                max: MAX_PREFIX,
            });
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        Ok(Self {
            network: u32::from(address) & mask,
            prefix,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

impl Default for IpRange {
    /// k3s's default service CIDR, 10.43.0.0/16.
    fn default() -> Self {
        Self {
            network: u32::from(Ipv4Addr::new(10, 43, 0, 0)),
            prefix: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> IpRange {
        text.parse().expect("range")
    }

    #[test]
    fn parses_and_masks() {
        let cases = [
            ("10.43.0.0/16", Ok("10.43.0.0/16")),
            ("10.43.7.9/16", Ok("10.43.0.0/16")),
            ("192.168.5.0/29", Ok("192.168.5.0/29")),
            ("10.0.0.0/8", Err("mask")),
            ("10.0.0.0/31", Err("mask")),
            ("fd00::/112", Err("IPv4")),
            ("10.43.0.0", Err("CIDR")),
            ("10.43.0.300/16", Err("CIDR")),
        ];
        for (text, want) in cases {
            match (text.parse::<IpRange>(), want) {
                (Ok(r), Ok(w)) => assert_eq!(r.to_string(), w, "{text}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(IpRange::default(), range("10.43.0.0/16"));
    }

    #[test]
    fn range_math() {
        let r = range("10.43.0.0/16");
        assert_eq!(r.size(), 65534);
        assert_eq!(r.kubernetes_service_ip(), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(r.dns_ip(), Some(Ipv4Addr::new(10, 43, 0, 10)));
        assert_eq!(r.address(0), Some(Ipv4Addr::new(10, 43, 0, 1)));
        assert_eq!(r.address(65533), Some(Ipv4Addr::new(10, 43, 255, 254)));
        assert_eq!(r.address(65534), None);
        let cases = [
            ("10.43.0.0", None),
            ("10.43.0.1", Some(0)),
            ("10.43.1.0", Some(255)),
            ("10.43.255.254", Some(65533)),
            ("10.43.255.255", None),
            ("10.44.0.1", None),
            ("10.42.255.255", None),
        ];
        for (ip, want) in cases {
            assert_eq!(r.index_of(ip.parse().expect("ip")), want, "{ip}");
        }
        assert!(r.contains("10.43.200.7") && !r.contains("10.99.0.1") && !r.contains("x"));
        assert_eq!(r.static_band(), 256);
        assert_eq!(range("10.0.0.0/12").static_band(), 256);
        assert_eq!(range("10.0.0.0/24").static_band(), 16);
        assert_eq!(range("10.0.0.0/28").static_band(), 0);
        let tiny = range("10.0.0.0/30");
        assert_eq!(tiny.size(), 2);
        assert_eq!(tiny.dns_ip(), None);
    }

    #[test]
    fn reserved_addresses() {
        let r = range("10.43.0.0/16");
        let reserved: Vec<String> = (0..r.size())
            .filter(|i| r.reserved(*i))
            .map(|i| r.name(i))
            .collect();
        assert_eq!(reserved, ["10.43.0.1", "10.43.0.10"]);
    }
}
