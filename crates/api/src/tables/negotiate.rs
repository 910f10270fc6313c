//! Whether a request's `Accept` header asks for a Table.
//!
//! kubectl sends
//! `application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json`:
//! ranked choices, the first one the server can produce wins. Upstream ranks the media
//! ranges by quality (`q`, default 1), keeping the order they were sent in among
//! equals, and skips the ones it cannot serve.

/// Reads an `Accept` header: `Some("v1")` or `Some("v1beta1")` when the preferred
/// media range the server can produce is a `meta.k8s.io` Table (JSON or YAML), `None`
/// when it is the plain object (or nothing acceptable was asked for at all).
pub fn wants_table(accept: &str) -> Option<&'static str> {
    let mut ranges: Vec<MediaRange<'_>> = accept
        .split(',')
        .filter_map(MediaRange::parse)
        .filter(|r| r.quality > 0.0)
        .collect();
    // Stable: equal qualities keep the client's order.
    ranges.sort_by(|a, b| b.quality.total_cmp(&a.quality));
    for range in &ranges {
        if !range.serializable() {
            continue;
        }
        match range.param("as") {
            None => return None,
            Some("Table") => {
                if range.param("g") != Some("meta.k8s.io") {
                    continue;
                }
                match range.param("v") {
                    Some("v1") => return Some("v1"),
                    Some("v1beta1") => return Some("v1beta1"),
                    _ => continue,
                }
            }
            // Another transformation (PartialObjectMetadata, ...): not a Table.
            Some(_) => return None,
        }
    }
    None
}

/// One media range of an `Accept` header.
#[derive(Debug)]
struct MediaRange<'a> {
    kind: &'a str,
    subtype: &'a str,
    params: Vec<(&'a str, &'a str)>,
    quality: f64,
}

impl<'a> MediaRange<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split(';');
        let media = parts.next()?.trim();
        let (kind, subtype) = media.split_once('/')?;
        let mut params = Vec::new();
        let mut quality = 1.0;
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let key = key.trim();
            let value = value.trim().trim_matches('"');
            if key.eq_ignore_ascii_case("q") {
                quality = value.parse().unwrap_or(0.0);
            } else {
                params.push((key, value));
            }
        }
        Some(Self {
            kind: kind.trim(),
            subtype: subtype.trim(),
            params,
            quality,
        })
    }

    fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Whether the server writes this media type: JSON or YAML, or a wildcard.
    fn serializable(&self) -> bool {
        let kind = self.kind.to_ascii_lowercase();
        let subtype = self.subtype.to_ascii_lowercase();
        match (kind.as_str(), subtype.as_str()) {
            ("*", "*") => true,
            ("application", sub) => matches!(sub, "*" | "json" | "yaml"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        let cases = [
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                Some("v1"),
            ),
            (
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                Some("v1beta1"),
            ),
            (
                "application/json; as=Table; v=v1; g=meta.k8s.io",
                Some("v1"),
            ),
            ("application/yaml;as=Table;v=v1;g=meta.k8s.io", Some("v1")),
            // The server speaks no protobuf: the next choice wins.
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io",
                Some("v1beta1"),
            ),
            // Unknown Table versions and groups are skipped.
            (
                "application/json;as=Table;v=v2;g=meta.k8s.io,application/json",
                None,
            ),
            (
                "application/json;as=Table;v=v1;g=example.com,application/json;as=Table;v=v1;g=meta.k8s.io",
                Some("v1"),
            ),
            // The plain object ranked first.
            (
                "application/json,application/json;as=Table;v=v1;g=meta.k8s.io",
                None,
            ),
            (
                "application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io",
                Some("v1"),
            ),
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io;q=0,application/json",
                None,
            ),
            (
                "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
                None,
            ),
            ("application/json", None),
            ("*/*", None),
            ("", None),
        ];
        for (accept, want) in cases {
            assert_eq!(wants_table(accept), want, "{accept}");
        }
    }
}
