//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`), parsed and compared the way
//! upstream's `resource.Quantity` does, without floating point: a value is held as an
//! exact count of nano-units, rounded up (away from zero) to nano precision and capped
//! at 2^63-1 units, as upstream rounds and caps on parse.

use std::cmp::Ordering;
use std::fmt;

/// Upstream's `ErrFormatWrong`.
pub const ERR_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// Upstream's `ErrSuffix`.
pub const ERR_SUFFIX: &str = "unable to parse quantity's suffix";

const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// Upstream caps magnitudes at the largest int64.
const MAX_NANOS: i128 = (i64::MAX as i128) * NANOS_PER_UNIT;
/// Mantissas are kept below this many digits so that scaling cannot overflow an i128.
const MAX_MANTISSA_DIGITS: usize = 30;

/// How a quantity was written; canonical output keeps the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Powers of 1024: `Ki`, `Mi`, ….
    BinarySI,
    /// Powers of 1000 and no suffix: `m`, `k`, `M`, ….
    DecimalSI,
    /// `e3`, `E-2`.
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Why a string is not a quantity: one of upstream's two messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuantityError(pub &'static str);

/// The parts of a quantity string, as upstream's `parseQuantityString` splits them.
struct Parts<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match bytes.first() {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < bytes.len() && bytes[pos] == b'0' {
        pos += 1;
    }
    let whole_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let whole = &s[whole_start..pos];
    let mut fraction = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        fraction = &s[start..pos];
    }
    // The suffix: letters from the set, an optional sign, then digits only.
    let suffix_start = pos;
    while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < bytes.len() && matches!(bytes[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != bytes.len() {
        return Err(QuantityError(ERR_FORMAT_WRONG));
    }
    Ok(Parts {
        negative,
        whole,
        fraction,
        suffix: &s[suffix_start..],
    })
}

/// What a suffix multiplies by: a power of ten or of 1024.
enum Scale {
    Ten(i32),
    Binary(u32),
}

fn interpret(suffix: &str) -> Option<(Scale, Format)> {
    let decimal = |e| Some((Scale::Ten(e), Format::DecimalSI));
    let binary = |p| Some((Scale::Binary(p), Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i32 = rest.parse().ok()?;
            Some((Scale::Ten(exponent), Format::DecimalExponent))
        }
    }
}

impl Quantity {
    /// Parses a quantity string as upstream's `ParseQuantity`.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError(ERR_FORMAT_WRONG));
        }
        let parts = split(s)?;
        let (scale, format) = interpret(parts.suffix).ok_or(QuantityError(ERR_SUFFIX))?;
        let magnitude = magnitude_in_nanos(parts.whole, parts.fraction, scale);
        let nanos = if parts.negative {
            -magnitude
        } else {
            magnitude
        };
        Ok(Self { nanos, format })
    }

    /// The sign of the value.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Upstream's `MilliValue()`: the value in thousandths, rounded up.
    pub fn milli_value(&self) -> i128 {
        ceil_div_away(self.nanos, 1_000_000)
    }

    /// How the quantity was written.
    pub fn format(&self) -> Format {
        self.format
    }
}

/// `n / d` rounded away from zero.
fn ceil_div_away(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n < 0 {
        q - 1
    } else {
        q + 1
    }
}

/// Computes `whole.fraction × scale` in nano-units, rounded up and capped.
fn magnitude_in_nanos(whole: &str, fraction: &str, scale: Scale) -> i128 {
    // Collect the significant digits as one integer mantissa with a power-of-ten
    // exponent; digits past what an i128 can scale are dropped but remembered, so the
    // result still rounds up.
    let mut digits: String = format!("{whole}{fraction}");
    let mut exponent: i64 = -(fraction.len() as i64);
    let trimmed = digits.trim_start_matches('0').to_string();
    digits = trimmed;
    let mut dropped_nonzero = false;
    if digits.len() > MAX_MANTISSA_DIGITS {
        let extra = digits.len() - MAX_MANTISSA_DIGITS;
        dropped_nonzero = digits[MAX_MANTISSA_DIGITS..].bytes().any(|b| b != b'0');
        digits.truncate(MAX_MANTISSA_DIGITS);
        exponent += extra as i64;
    }
    if digits.is_empty() {
        return if dropped_nonzero { 1 } else { 0 };
    }
    let mut mantissa: i128 = digits.parse().unwrap_or(i128::MAX);
    let mut binary_power = 0;
    match scale {
        Scale::Ten(e) => exponent += i64::from(e),
        Scale::Binary(p) => binary_power = p,
    }
    // To nano-units.
    exponent += 9;
    for _ in 0..binary_power {
        match mantissa.checked_mul(1024) {
            Some(m) if m <= MAX_NANOS.saturating_mul(1000) => mantissa = m,
            _ => return MAX_NANOS,
        }
    }
    if exponent >= 0 {
        for _ in 0..exponent {
            mantissa = match mantissa.checked_mul(10) {
                Some(m) if m <= MAX_NANOS => m,
                _ => return MAX_NANOS,
            };
        }
        if dropped_nonzero {
            mantissa += 1;
        }
        mantissa.min(MAX_NANOS)
    } else {
        let mut value = mantissa;
        let mut remainder_nonzero = dropped_nonzero;
        for _ in 0..(-exponent) {
            if value == 0 {
                break;
            }
            remainder_nonzero |= value % 10 != 0;
            value /= 10;
        }
        if remainder_nonzero {
            value += 1;
        }
        value.min(MAX_NANOS)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    /// Compares values only; `1Ki` equals `1024`.
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Strips factors of `base` from `n`, returning what is left and how many were removed.
fn remove_factors(mut n: i128, base: i128) -> (i128, i32) {
    let mut times = 0;
    while n != 0 && n % base == 0 {
        n /= base;
        times += 1;
    }
    (n, times)
}

impl fmt::Display for Quantity {
    /// The canonical form upstream's `String()` produces: `1.5` is `1500m`, `1.5Gi` is
    /// `1536Mi`, `2000` is `2k`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            // Small or fractional binary values are shown in decimal, as upstream does to
            // avoid rounding.
            let small = self.nanos.abs() < 1024 * NANOS_PER_UNIT;
            let fractional = self.nanos % NANOS_PER_UNIT != 0;
            if small || fractional {
                format = Format::DecimalSI;
            }
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.abs();
        if format == Format::BinarySI {
            let (number, power) = remove_factors(magnitude / NANOS_PER_UNIT, 1024);
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .get(power as usize)
                .copied()
                .unwrap_or("");
            return write!(f, "{sign}{number}{suffix}");
        }
        let (mut number, removed) = remove_factors(magnitude, 10);
        let mut exponent = removed - 9;
        // Round the exponent down to a multiple of three.
        while exponent.rem_euclid(3) != 0 {
            number *= 10;
            exponent -= 1;
        }
        let suffix = if format == Format::DecimalExponent {
            if exponent == 0 {
                String::new()
            } else {
                format!("e{exponent}")
            }
        } else {
            match exponent {
                -9 => "n".into(),
                -6 => "u".into(),
                -3 => "m".into(),
                0 => String::new(),
                3 => "k".into(),
                6 => "M".into(),
                9 => "G".into(),
                12 => "T".into(),
                15 => "P".into(),
                18 => "E".into(),
                e => format!("e{e}"),
            }
        };
        write!(f, "{sign}{number}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).expect(s)
    }

    #[test]
    fn parses_and_canonicalizes() {
        let cases = [
            ("0", "0"),
            ("1", "1"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("1000m", "1"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("1Ki", "1Ki"),
            ("1024", "1024"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("128Mi", "128Mi"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1.5e3", "1500"),
            ("-1", "-1"),
            ("+2", "2"),
            ("100n", "100n"),
            ("0.0000000001", "1n"),
            ("1k", "1k"),
            ("1M", "1M"),
            ("3G", "3G"),
            ("1.", "1"),
            (".5", "500m"),
            ("12u", "12u"),
            ("1E", "1E"),
        ];
        for (input, want) in cases {
            assert_eq!(q(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        let cases = [
            ("", ERR_FORMAT_WRONG),
            ("abc", ERR_FORMAT_WRONG),
            ("1.5.5", ERR_FORMAT_WRONG),
            ("1 Gi", ERR_FORMAT_WRONG),
            ("1Gib", ERR_FORMAT_WRONG),
            ("1Mk", ERR_SUFFIX),
            ("1KK", ERR_SUFFIX),
            ("1e", ERR_SUFFIX),
            ("1x", ERR_FORMAT_WRONG),
        ];
        for (input, want) in cases {
            assert_eq!(Quantity::parse(input), Err(QuantityError(want)), "{input}");
        }
    }

    #[test]
    fn compares_across_formats() {
        assert_eq!(q("1Ki").cmp(&q("1024")), Ordering::Equal);
        assert!(q("500m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("0"));
        assert!(q("1e3") == q("1k").max(q("1e3")));
    }

    #[test]
    fn milli_values_round_up() {
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("-1n").milli_value(), -1);
        assert!(q("-1").is_negative());
        assert!(q("0m").is_zero());
    }

    #[test]
    fn caps_huge_values() {
        let big = q("100E");
        assert_eq!(big.to_string(), "9223372036854775807");
        assert_eq!(
            q("99999999999999999999999999999999999999").to_string(),
            big.to_string()
        );
    }
}
