//! Scalars written the way upstream's JSON writes them: base64 for `[]byte`, RFC 3339
//! for times.

/// The standard base64 alphabet (RFC 4648 section 4).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding, as Go's `encoding/json` writes `[]byte`.
pub(super) fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let group = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // A chunk of n bytes carries n + 1 significant sextets.
        for i in 0..4 {
            if i <= chunk.len() {
                let sextet = (group >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[sextet as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `0000-01-01T00:00:00Z`: Go refuses to write years before 0 in JSON.
const MIN_SECONDS: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`: nor after 9999.
const MAX_SECONDS: i64 = 253_402_300_799;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// `meta/v1.Time`: seconds only (upstream drops the nanoseconds when decoding), e.g.
/// `2024-05-06T07:08:09Z`. Fails outside the years 0 to 9999, as Go's encoder does.
pub(super) fn format_time(seconds: i64) -> Result<String, ()> {
    let (date, time) = split(seconds)?;
    Ok(format!("{date}T{time}Z"))
}

/// `meta/v1.MicroTime`: the nanoseconds truncated toward zero to microseconds, then
/// normalized as Go's `time.Unix` does, e.g. `2024-05-06T07:08:09.123456Z`.
pub(super) fn format_micro_time(seconds: i64, nanos: i32) -> Result<String, ()> {
    let micros = i128::from(nanos / 1_000) * 1_000;
    let total = i128::from(seconds) * NANOS_PER_SECOND + micros;
    let whole = i64::try_from(total.div_euclid(NANOS_PER_SECOND)).map_err(|_| ())?;
    let fraction = total.rem_euclid(NANOS_PER_SECOND) / 1_000;
    let (date, time) = split(whole)?;
    Ok(format!("{date}T{time}.{fraction:06}Z"))
}

/// The date (`YYYY-MM-DD`) and time of day (`hh:mm:ss`) of a Unix time in UTC.
fn split(seconds: i64) -> Result<(String, String), ()> {
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
        return Err(());
    }
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Ok((
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            of_day / 3_600,
            of_day % 3_600 / 60,
            of_day % 60
        ),
    ))
}

/// The proleptic Gregorian date of a day count from 1970-01-01.
///
/// Counting in 400-year eras that start on March 1st puts the leap day at the end of
/// each year, so month lengths follow a fixed pattern (153 days per five months).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Days from 0000-03-01 to 1970-01-01.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 is March, 11 is February.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }

    #[test]
    fn times_are_rfc_3339_in_utc() {
        assert_eq!(format_time(0).as_deref(), Ok("1970-01-01T00:00:00Z"));
        assert_eq!(
            format_time(951_782_400).as_deref(),
            Ok("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            format_time(1_715_000_000).as_deref(),
            Ok("2024-05-06T12:53:20Z")
        );
        assert_eq!(format_time(-1).as_deref(), Ok("1969-12-31T23:59:59Z"));
        assert_eq!(
            format_time(MIN_SECONDS).as_deref(),
            Ok("0000-01-01T00:00:00Z")
        );
        assert_eq!(
            format_time(MAX_SECONDS).as_deref(),
            Ok("9999-12-31T23:59:59Z")
        );
        assert_eq!(format_time(MIN_SECONDS - 1), Err(()));
        assert_eq!(format_time(MAX_SECONDS + 1), Err(()));
        assert_eq!(format_time(i64::MIN), Err(()));
        assert_eq!(format_time(i64::MAX), Err(()));
    }

    #[test]
    fn micro_times_keep_six_digits_truncated() {
        assert_eq!(
            format_micro_time(1_715_000_000, 123_456_789).as_deref(),
            Ok("2024-05-06T12:53:20.123456Z")
        );
        assert_eq!(
            format_micro_time(0, 0).as_deref(),
            Ok("1970-01-01T00:00:00.000000Z")
        );
        // Negative nanoseconds borrow from the seconds, as time.Unix normalizes them.
        assert_eq!(
            format_micro_time(0, -1_000).as_deref(),
            Ok("1969-12-31T23:59:59.999999Z")
        );
        assert_eq!(
            format_micro_time(0, 1_500_000_000).as_deref(),
            Ok("1970-01-01T00:00:01.500000Z")
        );
        assert_eq!(format_micro_time(i64::MAX, i32::MAX), Err(()));
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Walk day by day from 1900 to 2300 and check the calendar by hand.
        let mut days = -25_567; // 1900-01-01
        let mut expected = (1900, 1, 1);
        while expected.0 < 2300 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (y, m, d) = expected;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let length = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            expected = if d < length {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            days += 1;
        }
    }
}
