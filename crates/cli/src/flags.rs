//! Parsers shared by the subcommands' flags.

use std::time::Duration;

/// A Go-style duration flag (`500ms`, `10s`, `1m30s`), as Kubernetes components take
/// them; the kubelet's parser is the one definition.
pub fn duration(text: &str) -> Result<Duration, String> {
    kubelet::config::parse_duration(text).map_err(|e| e.to_string())
}
