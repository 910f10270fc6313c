//! Resource quantities as kubectl prints them: upstream's canonical form
//! (`Quantity.String()`), and sums of them, at milli-unit precision (what node and
//! pod resources use).

use api::validation::quantity::{Format, Quantity};

/// A quantity's value in thousandths and the notation it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub milli: i128,
    format: Format,
}

impl Amount {
    /// Upstream's zero `Quantity{}`, which prints as `0`.
    pub const ZERO: Amount = Amount {
        milli: 0,
        format: Format::DecimalSI,
    };

    /// Parses `text`; an unparseable quantity counts as zero.
    pub fn parse(text: &str) -> Amount {
        match Quantity::parse(text) {
            Ok(q) => Amount {
                milli: q.milli_value(),
                format: q.format(),
            },
            Err(_) => Amount::ZERO,
        }
    }

    /// Upstream's `Value()`: whole units, rounded up.
    pub fn value(&self) -> i128 {
        let q = self.milli / 1000;
        if self.milli % 1000 > 0 { q + 1 } else { q }
    }

    /// The sum, in this amount's notation (upstream's `Add` keeps the receiver's).
    pub fn plus(self, other: Amount) -> Amount {
        let format = if self.milli == 0 && self == Amount::ZERO {
            other.format
        } else {
            self.format
        };
        Amount {
            milli: self.milli + other.milli,
            format,
        }
    }

    /// The larger of the two (upstream's pod requests take init containers' peaks).
    pub fn max(self, other: Amount) -> Amount {
        if other.milli > self.milli {
            other
        } else {
            self
        }
    }

    /// Upstream's canonical `String()`: `1500m`, `2`, `128Mi`, `1Gi`, `1k`.
    pub fn canonical(&self) -> String {
        if self.milli == 0 {
            return "0".to_string();
        }
        let binary = self.format == Format::BinarySI
            && self.milli.abs() >= 1024 * 1000
            && self.milli % 1000 == 0;
        if binary {
            let (mantissa, times) = remove_factors(self.milli / 1000, 1024);
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .get(times as usize)
                .copied();
            if let Some(suffix) = suffix {
                return format!("{mantissa}{suffix}");
            }
        }
        let (mut mantissa, times) = remove_factors(self.milli, 10);
        let mut exponent = times - 3;
        match exponent.rem_euclid(3) {
            1 => {
                mantissa *= 10;
                exponent -= 1;
            }
            2 => {
                mantissa *= 100;
                exponent -= 2;
            }
            _ => {}
        }
        let suffix = match (self.format, exponent) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{mantissa}{suffix}")
    }
}

/// Divides `value` by `base` while it divides evenly; the result and the count.
fn remove_factors(value: i128, base: i128) -> (i128, i32) {
    let negative = value < 0;
    let mut result = value.abs();
    let mut times = 0;
    while result >= base && result % base == 0 {
        result /= base;
        times += 1;
    }
    (if negative { -result } else { result }, times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_as_upstream_prints_them() {
        for (input, want) in [
            ("0", "0"),
            ("2", "2"),
            ("100m", "100m"),
            ("1500m", "1500m"),
            ("2000m", "2"),
            ("0.5", "500m"),
            ("1.5k", "1500"),
            ("1000", "1k"),
            ("243497856600", "243497856600"),
            ("24684100Ki", "24684100Ki"),
            ("1024Mi", "1Gi"),
            ("512", "512"),
            ("1Ki", "1Ki"),
            ("1e3", "1e3"),
            ("110", "110"),
        ] {
            assert_eq!(Amount::parse(input).canonical(), want, "{input}");
        }
    }

    #[test]
    fn sums_keep_the_first_notation() {
        let sum = Amount::ZERO
            .plus(Amount::parse("64Mi"))
            .plus(Amount::parse("64Mi"));
        assert_eq!(sum.canonical(), "128Mi");
        let cpu = Amount::parse("100m").plus(Amount::parse("1"));
        assert_eq!(cpu.canonical(), "1100m");
        assert_eq!(Amount::parse("1500m").value(), 2);
    }
}
