//! The node port range (`--service-node-port-range`), with upstream's static band at
//! its bottom that dynamic allocation leaves to requested ports while it can (KEP-3668).

use std::fmt;
use std::str::FromStr;

use super::RangeError;
use super::pool::Slots;

/// A contiguous range of node ports, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    base: u16,
    /// Number of ports (at least one).
    size: u32,
}

impl PortRange {
    /// The index of `port`, if in range.
    pub fn index_of(&self, port: i32) -> Option<u32> {
        let offset = u32::try_from(port.checked_sub(i32::from(self.base))?).ok()?;
        (offset < self.size).then_some(offset)
    }

    /// The port at `index`.
    pub fn port(&self, index: u32) -> Option<i32> {
        (index < self.size).then(|| i32::from(self.base) + i32::try_from(index).unwrap_or(0))
    }
}

impl Slots for PortRange {
    fn len(&self) -> u32 {
        self.size
    }

    /// Upstream's node port `calculateRangeOffset`: `min(max(16, size / 32), 128)`,
    /// none for ranges of 16 ports or fewer.
    fn static_band(&self) -> u32 {
        if self.size <= 16 {
            0
        } else {
            (self.size / 32).clamp(16, 128)
        }
    }

    fn reserved(&self, _index: u32) -> bool {
        false
    }

    fn name(&self, index: u32) -> String {
        self.port(index).map(|p| p.to_string()).unwrap_or_default()
    }
}

impl FromStr for PortRange {
    type Err = RangeError;

    /// `30000-32767`, or a single port.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || RangeError::Ports(text.to_string());
        let trimmed = text.trim();
        let (low, high) = match trimmed.split_once('-') {
            Some((low, high)) => (low.trim(), high.trim()),
            None => (trimmed, trimmed),
        };
        let low: u16 = low.parse().map_err(|_| bad())?;
        let high: u16 = high.parse().map_err(|_| bad())?;
        if low == 0 || high < low {
            return Err(bad());
        }
        Ok(Self {
            base: low,
            size: u32::from(high - low) + 1,
        })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = u32::from(self.base) + self.size - 1;
        write!(f, "{}-{last}", self.base)
    }
}

impl Default for PortRange {
    /// Upstream's default, 30000-32767.
    fn default() -> Self {
        Self {
            base: 30000,
            size: 2768,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let cases = [
            ("30000-32767", Some("30000-32767")),
            (" 30000 - 30010 ", Some("30000-30010")),
            ("31000", Some("31000-31000")),
            ("32767-30000", None),
            ("0-10", None),
            ("30000-70000", None),
            ("ports", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<PortRange>().ok().map(|r| r.to_string());
            assert_eq!(got.as_deref(), want, "{text}");
        }
        assert_eq!(
            PortRange::default(),
            "30000-32767".parse().expect("default")
        );
    }

    #[test]
    fn range_math() {
        let r = PortRange::default();
        assert_eq!(r.len(), 2768);
        assert_eq!(r.static_band(), 86);
        let cases = [
            (29999, None),
            (30000, Some(0)),
            (32767, Some(2767)),
            (32768, None),
            (-1, None),
        ];
        for (port, want) in cases {
            assert_eq!(r.index_of(port), want, "{port}");
        }
        assert_eq!(r.port(0), Some(30000));
        assert_eq!(r.port(2768), None);
        assert_eq!(r.name(5), "30005");
        let small: PortRange = "30000-30009".parse().expect("small");
        assert_eq!(small.static_band(), 0);
        let huge: PortRange = "1-65535".parse().expect("huge");
        assert_eq!(huge.static_band(), 128);
    }
}
