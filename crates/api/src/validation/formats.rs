//! String format checks from upstream's `util/validation` and `api/validate/content`:
//! DNS names, label keys and values, port names, config keys and friends. Each returns
//! upstream's list of problem descriptions (empty when the value is fine), so callers can
//! wrap them in field errors exactly as upstream does. The regexes upstream uses are
//! matched here by hand (no regex crate); the messages still quote them verbatim.

use std::net::IpAddr;

/// Upstream's `EmptyError()`.
pub const EMPTY_ERROR: &str = "must be non-empty";

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const HTTP_HEADER_FMT: &str = "[-A-Za-z0-9]+";
const HTTP_HEADER_ERR: &str = "a valid HTTP header must consist of alphanumeric characters or '-'";
const PERCENT_FMT: &str = "[0-9]+%";
const PERCENT_ERR: &str =
    "a valid percent string must be a numeric string followed by an ending '%'";

/// Longest DNS-1123 label.
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Longest label value, and longest name part of a label key.
pub const LABEL_VALUE_MAX: usize = 63;

/// Upstream's `MaxLenError` from `util/validation` (used by the DNS name checks).
pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Upstream's `MaxLenError` from `api/validate/content` (used by the label checks),
/// which counts bytes.
fn max_len_bytes_error(n: usize) -> String {
    format!("must be no more than {n} bytes")
}

/// Upstream's `RegexError`.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let quoted: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        quoted.join(" or ")
    )
}

/// Upstream's `InclusiveRangeError`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn dns_label_shape(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    lower_alnum(first) && lower_alnum(last) && s.chars().all(|c| lower_alnum(c) || c == '-')
}

/// DNS labels joined by dots, each label without a length limit.
fn subdomain_shape(s: &str) -> bool {
    s.split('.').all(dns_label_shape)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn dns1035_shape(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && dns_label_shape(s)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn label_name_shape(s: &str) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Upstream's `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !dns_label_shape(value) {
        if subdomain_shape(value) {
            // A valid subdomain but not a label: the length was checked, so it has dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

fn dns1123_subdomain(value: &str, max_len_msg: fn(usize) -> String) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_msg(DNS1123_SUBDOMAIN_MAX));
    }
    if !subdomain_shape(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream's `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    dns1123_subdomain(value, max_len_error)
}

/// Upstream's `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !dns1035_shape(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Upstream's `IsQualifiedName` (now `content.IsLabelKey`): an optional DNS subdomain
/// prefix and `/`, then a name of at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                for msg in dns1123_subdomain(prefix, max_len_bytes_error) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > LABEL_VALUE_MAX {
        errs.push(format!(
            "name part {}",
            max_len_bytes_error(LABEL_VALUE_MAX)
        ));
    }
    if !label_name_shape(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream's `IsValidLabelValue` (`content.IsLabelValue`).
pub fn is_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_bytes_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !label_name_shape(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Upstream's `hasChDirPrefix`.
fn chdir_prefix(value: &str) -> Option<String> {
    if value == "." {
        Some("must not be '.'".to_string())
    } else if value == ".." {
        Some("must not be '..'".to_string())
    } else if value.starts_with("..") {
        Some("must not start with '..'".to_string())
    } else {
        None
    }
}

/// Upstream's `IsConfigMapKey`: a key of a ConfigMap or Secret.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    let shape = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !shape {
        errs.push(regex_error(
            CONFIG_KEY_ERR,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(chdir_prefix(value));
    errs
}

/// Upstream's `IsValidPortName`: an IANA_SVC_NAME.
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    let charset = !port.is_empty() && port.chars().all(|c| lower_alnum(c) || c == '-');
    if !charset {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// Upstream's `IsValidPortNum`: 1 through 65535.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Upstream's `IsInRange`.
pub fn is_in_range(value: i64, lo: i64, hi: i64) -> Vec<String> {
    if (lo..=hi).contains(&value) {
        Vec::new()
    } else {
        vec![inclusive_range_error(lo, hi)]
    }
}

/// Upstream's `IsRelaxedEnvVarName`, the rule since RelaxedEnvironmentVariableValidation
/// went GA: any printable ASCII except `=`.
pub fn is_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push(format!("environment variable name {EMPTY_ERROR}"));
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .into(),
        );
    }
    errs
}

/// Upstream's `IsHTTPHeaderName`.
pub fn is_http_header_name(value: &str) -> Vec<String> {
    let ok = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            HTTP_HEADER_ERR,
            HTTP_HEADER_FMT,
            &["X-Header-Name"],
        )]
    }
}

/// The number in a valid percent string such as `25%`.
pub fn percent_value(value: &str) -> Option<i64> {
    let digits = value.strip_suffix('%')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Saturate: a huge percentage is still "a percentage", just above 100.
    Some(digits.parse().unwrap_or(i64::MAX))
}

/// Upstream's `IsValidPercent`.
pub fn is_valid_percent(value: &str) -> Vec<String> {
    if percent_value(value).is_some() {
        Vec::new()
    } else {
        vec![regex_error(PERCENT_ERR, PERCENT_FMT, &["1%", "93%"])]
    }
}

/// Upstream's `IsValidIP` message, or `None` for a valid address.
pub fn is_valid_ip(value: &str) -> Option<IpAddr> {
    value.parse::<IpAddr>().ok()
}

/// The detail upstream attaches to an unparsable IP address.
pub const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// Upstream's `IsFullyQualifiedDomainName` minus the field wrapping: the messages for a
/// name that must be a domain with at least two labels (a trailing dot is allowed).
pub fn is_fully_qualified_domain_name(name: &str) -> Vec<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![errs.join(",")];
    }
    if name.split('.').count() < 2 {
        return vec!["should be a domain with at least two segments separated by dots".into()];
    }
    for label in name.split('.') {
        let errs = is_dns1123_label(label);
        if !errs.is_empty() {
            return vec![errs.join(",")];
        }
    }
    Vec::new()
}

/// Upstream's `IsValidPathSegmentName`: what every object name must be so that it fits
/// in a URL path segment.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    is_valid_path_segment_prefix(name)
}

/// Upstream's `IsValidPathSegmentPrefix`.
fn is_valid_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// Upstream's `ValidateNameFunc`: checks an object name; `prefix` says the name is a
/// `generateName` prefix, which may end in a dash.
pub type NameFn = fn(&str, bool) -> Vec<String>;

/// Upstream's `maskTrailingDash`, reproduced as written (it replaces the last two
/// characters with `a`).
fn mask_trailing_dash(name: &str) -> String {
    if name.ends_with('-') {
        let keep = name.len().saturating_sub(2);
        format!("{}a", &name[..keep])
    } else {
        name.to_string()
    }
}

/// Upstream's `NameIsDNSSubdomain`.
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        is_dns1123_subdomain(name)
    }
}

/// Upstream's `NameIsDNSLabel`.
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_label(&mask_trailing_dash(name))
    } else {
        is_dns1123_label(name)
    }
}

/// Upstream's `NameIsDNS1035Label`.
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1035_label(&mask_trailing_dash(name))
    } else {
        is_dns1035_label(name)
    }
}

/// Upstream's `path.ValidatePathSegmentName`.
pub fn name_is_path_segment(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_valid_path_segment_prefix(name)
    } else {
        is_valid_path_segment_name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn subdomains() {
        let long = "a".repeat(254);
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("example.com", vec![]),
            ("a", vec![]),
            ("1-2.b-3", vec![]),
            ("Foo_", vec![SUBDOMAIN_MSG.to_string()]),
            ("a..b", vec![SUBDOMAIN_MSG.to_string()]),
            ("-a", vec![SUBDOMAIN_MSG.to_string()]),
            ("a.", vec![SUBDOMAIN_MSG.to_string()]),
            ("", vec![SUBDOMAIN_MSG.to_string()]),
            (&long, vec![max_len_error(253)]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1123_subdomain(input), want, "{input}");
        }
    }

    #[test]
    fn labels() {
        // Upstream joins "'x', " pieces with " or ", hence the double space.
        assert_eq!(
            regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"]
            ),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        assert_eq!(
            regex_error("m", "f", &[]),
            "m (regex used for validation is 'f')"
        );
        let cases: Vec<(&str, usize, Option<&str>)> = vec![
            ("web", 0, None),
            ("a-1", 0, None),
            ("a.b", 1, Some("must not contain dots")),
            ("Web", 1, None),
            ("-a", 1, None),
        ];
        for (input, n, first) in cases {
            let errs = is_dns1123_label(input);
            assert_eq!(errs.len(), n, "{input}: {errs:?}");
            if let Some(first) = first {
                assert_eq!(errs[0], first);
            }
        }
        assert_eq!(is_dns1123_label(&"a".repeat(64)), vec![max_len_error(63)]);
        assert!(is_dns1035_label("a1").is_empty());
        assert_eq!(is_dns1035_label("1a").len(), 1);
    }

    #[test]
    fn qualified_names() {
        let ok = [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "simple/simple",
            "now.with.dots/simple",
            "Uppercase_Is_OK_123",
            "example.com/Uppercase_Is_OK_123",
        ];
        for k in ok {
            assert!(is_qualified_name(k).is_empty(), "{k}");
        }
        let long_name = "a".repeat(64);
        let long_prefix = format!("{}/abc", "a".repeat(254));
        let bad: [(&str, usize); 9] = [
            ("nospecialchars%^=@", 1),
            ("cantendwithadash-", 1),
            ("only/one/slash", 1),
            ("Example.com/abc", 1),
            ("example.com/", 2),
            ("/simple", 1),
            (&long_name, 1),
            (&long_prefix, 1),
            ("", 2),
        ];
        for (k, n) in bad {
            let errs = is_qualified_name(k);
            assert_eq!(errs.len(), n, "{k}: {errs:?}");
        }
        assert_eq!(
            is_qualified_name("a/b/c")[0],
            "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        );
        assert_eq!(is_qualified_name("/x")[0], "prefix part must be non-empty");
    }

    #[test]
    fn label_values() {
        for v in ["", "simple", "1234", "a_b.c-d"] {
            assert!(is_label_value(v).is_empty(), "{v}");
        }
        for v in ["-a", "a-", ".a", "a b", "rā"] {
            assert_eq!(is_label_value(v).len(), 1, "{v}");
        }
        assert_eq!(
            is_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 bytes"]
        );
    }

    #[test]
    fn config_keys() {
        for k in ["a", "key.name", "KEY_NAME", "key-name", ".dotfile"] {
            assert!(is_config_map_key(k).is_empty(), "{k}");
        }
        let cases = [
            (".", "must not be '.'"),
            ("..", "must not be '..'"),
            ("..a", "must not start with '..'"),
        ];
        for (k, want) in cases {
            assert_eq!(is_config_map_key(k), vec![want.to_string()], "{k}");
        }
        assert_eq!(is_config_map_key("a/b").len(), 1);
        assert_eq!(is_config_map_key("").len(), 1);
    }

    #[test]
    fn port_names_and_numbers() {
        for p in ["http", "h2c", "a-b"] {
            assert!(is_valid_port_name(p).is_empty(), "{p}");
        }
        let cases = [
            ("123", vec!["must contain at least one letter (a-z)"]),
            ("a--b", vec!["must not contain consecutive hyphens"]),
            ("-ab", vec!["must not begin or end with a hyphen"]),
            (
                "HTTP",
                vec![
                    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    "must contain at least one letter (a-z)",
                ],
            ),
            (
                "abcdefghijklmnop",
                vec!["must be no more than 15 characters"],
            ),
        ];
        for (p, want) in cases {
            assert_eq!(is_valid_port_name(p), want, "{p}");
        }
        assert!(is_valid_port_num(1).is_empty());
        assert!(is_valid_port_num(65535).is_empty());
        assert_eq!(
            is_valid_port_num(0),
            vec!["must be between 1 and 65535, inclusive"]
        );
        assert_eq!(is_valid_port_num(65536).len(), 1);
    }

    #[test]
    fn env_names_headers_percents() {
        assert!(is_env_var_name("MY_VAR").is_empty());
        assert!(is_env_var_name("1.weird-but:ok").is_empty());
        assert_eq!(is_env_var_name("A=B").len(), 1);
        assert_eq!(is_env_var_name("").len(), 1);
        assert!(is_http_header_name("X-Header").is_empty());
        assert_eq!(is_http_header_name("X Header").len(), 1);
        assert_eq!(percent_value("25%"), Some(25));
        assert_eq!(percent_value("25"), None);
        assert_eq!(percent_value("%"), None);
        assert!(is_valid_percent("100%").is_empty());
        assert_eq!(is_valid_percent("1.5%").len(), 1);
    }

    #[test]
    fn names_by_kind() {
        assert!(name_is_dns_subdomain("web-1", false).is_empty());
        assert!(name_is_dns_subdomain("web-", true).is_empty());
        assert_eq!(name_is_dns_subdomain("web-", false).len(), 1);
        assert!(name_is_dns_label("ns", false).is_empty());
        assert_eq!(
            name_is_dns_label("a.b", false),
            vec!["must not contain dots"]
        );
        assert_eq!(name_is_dns1035_label("1svc", false).len(), 1);
        assert!(name_is_path_segment("Any_Thing:1", false).is_empty());
        assert_eq!(name_is_path_segment("..", false), vec!["may not be '..'"]);
        assert_eq!(
            name_is_path_segment("a/b%c", false),
            vec!["may not contain '/'", "may not contain '%'"]
        );
        assert!(name_is_path_segment(".", true).is_empty());
    }

    #[test]
    fn domains_and_ips() {
        assert!(is_fully_qualified_domain_name("a.example.com.").is_empty());
        assert_eq!(
            is_fully_qualified_domain_name("localhost"),
            vec!["should be a domain with at least two segments separated by dots"]
        );
        assert!(is_valid_ip("10.0.0.1").is_some());
        assert!(is_valid_ip("2001:db8::1").is_some());
        assert!(is_valid_ip("10.0.0").is_none());
    }
}
