//! Upstream's small formatters for table cells: `duration.HumanDuration`,
//! `translateTimestampSince`, `labels.FormatLabels`, label selector strings, and the
//! "a,b,c + 3 more..." lists.
//!
//! Times are nanoseconds since the Unix epoch (`i128`), so sub-second timestamps
//! (`metav1.MicroTime`) and whole-second clocks compare without rounding.

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::selectors::LabelSelector;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_MINUTE: i128 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i128 = 60 * NANOS_PER_MINUTE;

/// Go's zero time (0001-01-01T00:00:00Z) in Unix seconds; upstream prints it as unset.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Parses a timestamp as the API writes them (RFC 3339, `metav1.Time` or
/// `metav1.MicroTime`) into nanoseconds since the Unix epoch. Unparseable text and Go's
/// zero time give `None`, which upstream's printers show as `<unknown>`.
pub fn parse_time(text: &str) -> Option<i128> {
    let ts: Timestamp = text.trim().parse().ok()?;
    let nanos = ts.as_nanosecond();
    (nanos != i128::from(GO_ZERO_TIME) * NANOS_PER_SECOND).then_some(nanos)
}

/// [`parse_time`] of a JSON field that may be absent or null.
pub(super) fn time_of(value: Option<&Value>) -> Option<i128> {
    value.and_then(Value::as_str).and_then(parse_time)
}

/// Upstream's `translateTimestampSince`: the age of a timestamp field at `now` (Unix
/// seconds), or `<unknown>` when it is unset.
pub fn since(value: Option<&Value>, now: i64) -> String {
    match time_of(value) {
        Some(t) => since_nanos(t, now),
        None => "<unknown>".to_string(),
    }
}

/// The age of `t` (nanoseconds since the epoch) at `now` (Unix seconds).
pub(super) fn since_nanos(t: i128, now: i64) -> String {
    human_duration(i128::from(now) * NANOS_PER_SECOND - t)
}

/// Upstream's `duration.HumanDuration`: two or three significant figures ("45s",
/// "3m12s", "17m", "5h3m", "36h", "2d3h", "300d", "3y40d", "9y"); a clock up to two
/// seconds behind reads "0s", anything further ahead `<invalid>`.
pub fn human_duration(nanos: i128) -> String {
    // Go truncates toward zero at every step, as Rust's integer division does.
    let seconds = nanos / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / NANOS_PER_MINUTE;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / NANOS_PER_HOUR;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// A timestamp field as Go's `Time.UTC().Format(time.RFC3339)` writes it (whole
/// seconds, `Z`); an unset time is Go's zero time, as upstream prints it.
pub(super) fn rfc3339(value: Option<&Value>) -> String {
    let seconds = time_of(value)
        .and_then(|t| i64::try_from(t.div_euclid(NANOS_PER_SECOND)).ok())
        .unwrap_or(GO_ZERO_TIME);
    match Timestamp::from_second(seconds) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// Upstream's `labels.FormatLabels`: `k=v` pairs, sorted, comma-separated; `<none>`
/// when there are none.
pub(super) fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs.join(",")
}

/// Upstream's `LabelSelectorAsSelector(selector).String()` for a `LabelSelector`
/// field: "" for an absent or empty selector, `None` when it does not convert (an
/// unknown operator, an invalid key or value).
pub(super) fn selector_string(selector: Option<&Value>) -> Option<String> {
    let Some(selector) = selector.filter(|v| !v.is_null()) else {
        return Some(String::new());
    };
    let typed: meta::LabelSelector = serde_json::from_value(selector.clone()).ok()?;
    LabelSelector::from_api(&typed).ok().map(|s| s.to_string())
}

/// Upstream's `metav1.FormatLabelSelector`: the selector string, `<none>` when empty,
/// `<error>` when it does not convert.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        None => "<error>".to_string(),
        Some(s) if s.is_empty() => "<none>".to_string(),
        Some(s) => s,
    }
}

/// The first `max` entries, comma-separated, then " + N more..." for the rest, as
/// upstream's endpoint and port lists are cut.
pub(super) fn join_capped(all: &[String], max: usize) -> String {
    let shown = all
        .iter()
        .take(max)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",");
    if all.len() > max {
        format!("{shown} + {} more...", all.len() - max)
    } else {
        shown
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts go in brackets.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secs(s: i128) -> i128 {
        s * NANOS_PER_SECOND
    }

    #[test]
    fn human_duration_cases() {
        let cases: [(i128, &str); 28] = [
            (secs(-3), "<invalid>"),
            (secs(-2), "<invalid>"),
            (-NANOS_PER_SECOND - 1, "0s"),
            (secs(-1), "0s"),
            (-1, "0s"),
            (0, "0s"),
            (secs(5), "5s"),
            (secs(119), "119s"),
            (secs(120), "2m"),
            (secs(192), "3m12s"),
            (secs(599), "9m59s"),
            (secs(600), "10m"),
            (secs(3 * 3600 - 1), "179m"),
            (secs(3 * 3600), "3h"),
            (secs(5 * 3600 + 3 * 60 + 59), "5h3m"),
            (secs(8 * 3600), "8h"),
            (secs(47 * 3600 + 3599), "47h"),
            (secs(48 * 3600), "2d"),
            (secs(51 * 3600), "2d3h"),
            (secs(7 * 86400 + 23 * 3600), "7d23h"),
            (secs(8 * 86400), "8d"),
            (secs(729 * 86400), "729d"),
            (secs(730 * 86400), "2y"),
            (secs(3 * 365 * 86400 + 40 * 86400), "3y40d"),
            (secs(3 * 365 * 86400), "3y"),
            (secs(8 * 365 * 86400 - 1), "7y364d"),
            (secs(8 * 365 * 86400), "8y"),
            (secs(20 * 365 * 86400), "20y"),
        ];
        for (nanos, want) in cases {
            assert_eq!(human_duration(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn since_cases() {
        let now = 1_714_557_600; // 2024-05-01T10:00:00Z
        let cases = [
            (json!("2024-05-01T09:59:55Z"), "5s"),
            (json!("2024-05-01T11:59:55+02:00"), "5s"),
            (json!("2024-05-01T09:56:48Z"), "3m12s"),
            (json!("2024-04-29T07:00:00Z"), "2d3h"),
            (json!("2024-05-01T09:59:59.500000Z"), "0s"),
            (json!("2024-05-01T10:00:01Z"), "0s"),
            (json!("2024-05-01T10:00:05Z"), "<invalid>"),
            (json!("0001-01-01T00:00:00Z"), "<unknown>"),
            (json!("yesterday"), "<unknown>"),
            (json!(null), "<unknown>"),
        ];
        for (value, want) in cases {
            assert_eq!(since(Some(&value), now), want, "{value}");
        }
        assert_eq!(since(None, now), "<unknown>");
    }

    #[test]
    fn rfc3339_cases() {
        let cases = [
            (json!("2024-05-01T10:00:00Z"), "2024-05-01T10:00:00Z"),
            (
                json!("2024-05-01T12:00:00.75+02:00"),
                "2024-05-01T10:00:00Z",
            ),
            (json!(null), "0001-01-01T00:00:00Z"),
        ];
        for (value, want) in cases {
            assert_eq!(rfc3339(Some(&value)), want, "{value}");
        }
    }

    #[test]
    fn label_and_selector_cases() {
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(Some(&json!({}))), "<none>");
        assert_eq!(
            format_labels(Some(&json!({"tier": "web", "app": "shop"}))),
            "app=shop,tier=web"
        );

        let cases = [
            (json!(null), Some(""), "<none>"),
            (json!({}), Some(""), "<none>"),
            (
                json!({"matchLabels": {"app": "web"}}),
                Some("app=web"),
                "app=web",
            ),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["b", "a"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ]}),
                Some("app=web,!canary,tier in (a,b)"),
                "app=web,!canary,tier in (a,b)",
            ),
            (
                json!({"matchExpressions": [{"key": "x", "operator": "Near"}]}),
                None,
                "<error>",
            ),
        ];
        for (selector, want, formatted) in cases {
            assert_eq!(
                selector_string(Some(&selector)).as_deref(),
                want,
                "{selector}"
            );
            assert_eq!(format_label_selector(Some(&selector)), formatted);
        }
    }

    #[test]
    fn capped_lists() {
        let list = |n: usize| -> Vec<String> { (1..=n).map(|i| format!("e{i}")).collect() };
        assert_eq!(join_capped(&list(0), 3), "");
        assert_eq!(join_capped(&list(3), 3), "e1,e2,e3");
        assert_eq!(join_capped(&list(6), 3), "e1,e2,e3 + 3 more...");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }
}
