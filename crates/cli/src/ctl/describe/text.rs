//! The text kubectl's describers write: indentation levels of two spaces, tab-aligned
//! "Label:\tvalue" lines, and the shared formats (label and annotation lists,
//! tolerations, taints, RFC 1123 times, booleans as `True`/`False`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::tabwriter::TabWriter;

/// Annotations longer than this are cut, as kubectl's `maxAnnotationLen`.
const MAX_ANNOTATION_LEN: usize = 140;
/// kubectl never shows this one.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// What Go prints for an unset `metav1.Time` in RFC 1123 form.
const GO_ZERO_TIME: &str = "Mon, 01 Jan 0001 00:00:00 +0000";

/// One describer's output, aligned as kubectl's `tabbedString` aligns it (Go's
/// tabwriter, padding 2).
#[derive(Debug)]
pub struct Out {
    sink: Sink,
}

/// Where text goes: through the tab writer, or as written (kubectl prints a
/// revision's pod template with its tabs left in).
#[derive(Debug)]
enum Sink {
    Aligned(TabWriter),
    Raw(String),
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

impl Out {
    pub fn new() -> Self {
        Self {
            sink: Sink::Aligned(TabWriter::new(2)),
        }
    }

    /// Text kept as written, tabs and all.
    pub fn raw() -> Self {
        Self {
            sink: Sink::Raw(String::new()),
        }
    }

    fn push(&mut self, text: &str) {
        match &mut self.sink {
            Sink::Aligned(w) => w.write(text),
            Sink::Raw(s) => s.push_str(text),
        }
    }

    /// `text` indented by `level` steps of two spaces (kubectl's `PrefixWriter.Write`).
    pub fn write(&mut self, level: usize, text: &str) {
        self.push(&"  ".repeat(level));
        self.push(&escape_terminal(text));
    }

    /// `text` and a newline, unindented (`PrefixWriter.WriteLine`).
    pub fn line(&mut self, text: &str) {
        self.push(&escape_terminal(text));
        self.push("\n");
    }

    /// Aligns what came so far on its own (kubectl flushes before an events table).
    pub fn flush(&mut self) {
        if let Sink::Aligned(w) = &mut self.sink {
            w.flush();
        }
    }

    pub fn finish(self) -> String {
        match self.sink {
            Sink::Aligned(w) => w.finish(),
            Sink::Raw(s) => s,
        }
    }
}

/// kubectl's `EscapeTerminal`: nothing an object holds may drive the terminal.
fn escape_terminal(text: &str) -> String {
    if !text.contains(['\x1b', '\r']) {
        return text.to_string();
    }
    text.replace('\x1b', "^[").replace('\r', "\\r")
}

/// The `Name:` and `Namespace:` lines most describers open with.
pub fn name_and_namespace(out: &mut Out, meta: &ObjectMeta) {
    out.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    out.write(
        0,
        &format!("Namespace:\t{}\n", meta.namespace.as_deref().unwrap_or("")),
    );
}

/// The `Labels:` and `Annotations:` blocks, in that order.
pub fn labels_and_annotations(out: &mut Out, meta: &ObjectMeta) {
    labels(out, "", "Labels", meta.labels.as_ref());
    annotations(out, "Annotations", meta.annotations.as_ref());
}

/// `Title:\tk=v` lines, one label per line, sorted; `<none>` when empty
/// (`printLabelsMultilineWithIndent`).
pub fn labels(out: &mut Out, indent: &str, title: &str, labels: Option<&BTreeMap<String, String>>) {
    out.write(0, &format!("{indent}{title}:\t"));
    let labels = labels.filter(|l| !l.is_empty());
    let Some(labels) = labels else {
        out.line("<none>");
        return;
    };
    for (i, (key, value)) in labels.iter().enumerate() {
        if i != 0 {
            out.write(0, &format!("{indent}\t"));
        }
        out.write(0, &format!("{key}={value}\n"));
    }
}

/// `Annotations:\tk: v` lines, sorted, long or multi-line values on lines of their own
/// (`printAnnotationsMultiline`).
pub fn annotations(out: &mut Out, title: &str, annotations: Option<&BTreeMap<String, String>>) {
    out.write(0, &format!("{title}:\t"));
    let keys: Vec<&String> = annotations
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| *k != LAST_APPLIED)
        .collect();
    if keys.is_empty() {
        out.line("<none>");
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        if i != 0 {
            out.write(0, "\t");
        }
        let raw = annotations
            .and_then(|a| a.get(*key))
            .map_or("", String::as_str);
        let value = raw.strip_suffix('\n').unwrap_or(raw);
        if value.len() + key.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            out.write(0, &format!("{key}:\n"));
            for part in value.split('\n') {
                out.write(
                    0,
                    &format!("\t  {}\n", shorten(part, MAX_ANNOTATION_LEN - 2)),
                );
            }
        } else {
            out.write(0, &format!("{key}: {value}\n"));
        }
    }
}

/// The first `max` bytes and "..." (Go slices bytes; a cut inside a character is
/// moved back to its start).
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `Tolerations:\tkey=value:Effect op=Exists for 300s` lines, sorted by key.
pub fn tolerations(out: &mut Out, indent: &str, title: &str, tolerations: Option<&[Toleration]>) {
    out.write(0, &format!("{indent}{title}:\t"));
    let mut sorted: Vec<&Toleration> = tolerations.into_iter().flatten().collect();
    if sorted.is_empty() {
        out.line("<none>");
        return;
    }
    // Go's sort.Slice: unstable, so ties keep kubectl's order only this way.
    super::gosort::sort(&mut sorted, |a, b| {
        a.key.as_deref().unwrap_or("") < b.key.as_deref().unwrap_or("")
    });
    for (i, t) in sorted.iter().enumerate() {
        if i != 0 {
            out.write(0, &format!("{indent}\t"));
        }
        let key = t.key.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        let mut text = key.to_string();
        if !value.is_empty() {
            text.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            text.push_str(&format!(":{effect}"));
        }
        // `operator: Exists` with no value tolerates everything matching the key.
        if t.operator.as_deref() == Some("Exists") && value.is_empty() {
            if !key.is_empty() || !effect.is_empty() {
                text.push_str(" op=Exists");
            } else {
                text.push_str("op=Exists");
            }
        }
        if let Some(seconds) = t.toleration_seconds {
            text.push_str(&format!(" for {seconds}s"));
        }
        out.write(0, &format!("{text}\n"));
    }
}

/// `Taints:\tkey=value:Effect` lines, sorted by effect then key.
pub fn taints(out: &mut Out, title: &str, taints: Option<&[Taint]>) {
    out.write(0, &format!("{title}:\t"));
    let mut sorted: Vec<&Taint> = taints.into_iter().flatten().collect();
    if sorted.is_empty() {
        out.line("<none>");
        return;
    }
    super::gosort::sort(&mut sorted, |a, b| {
        format!("{},{}", a.effect, a.key) < format!("{},{}", b.effect, b.key)
    });
    for (i, t) in sorted.iter().enumerate() {
        if i != 0 {
            out.write(0, "\t");
        }
        out.write(0, &format!("{}\n", taint_string(t)));
    }
}

/// Upstream's `Taint.ToString`.
pub fn taint_string(t: &Taint) -> String {
    match t.value.as_deref() {
        None | Some("") => format!("{}:{}", t.key, t.effect),
        Some(value) => format!("{}={value}:{}", t.key, t.effect),
    }
}

/// A timestamp as Go's `time.RFC1123Z` (`Mon, 02 Jan 2006 15:04:05 -0700`). kubectl
/// prints local time; this prints UTC, which is what these machines run on.
pub fn rfc1123z(time: Option<&Time>) -> String {
    time.map_or_else(|| GO_ZERO_TIME.to_string(), |t| format_timestamp(t.0))
}

/// [`rfc1123z`] for the microsecond timestamps of Leases and events.
pub fn rfc1123z_micro(time: Option<&MicroTime>) -> String {
    time.map_or_else(|| GO_ZERO_TIME.to_string(), |t| format_timestamp(t.0))
}

fn format_timestamp(ts: Timestamp) -> String {
    ts.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// Go's `%v` of a bool in kubectl's `printBool`.
pub fn bool_title(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// kubectl's `stringOrNone`.
pub fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_annotations_as_kubectl_lays_them_out() {
        let mut out = Out::new();
        out.write(0, "Name:\tweb\n");
        labels(
            &mut out,
            "",
            "Labels",
            Some(&map(&[("b", "2"), ("a", "1")])),
        );
        annotations(
            &mut out,
            "Annotations",
            Some(&map(&[
                (LAST_APPLIED, "{}"),
                ("x", "y"),
                ("long", &"v".repeat(150)),
            ])),
        );
        labels(&mut out, "  ", "Labels", None);
        let text = out.finish();
        let expected = format!(
            "Name:         web\nLabels:       a=1\n              b=2\nAnnotations:  long:\n                {}...\n              x: y\n  Labels:     <none>\n",
            "v".repeat(138)
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn tolerations_and_taints() {
        let mut out = Out::new();
        let t = vec![
            Toleration {
                key: Some("node.kubernetes.io/unreachable".into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(300),
                ..Default::default()
            },
            Toleration {
                operator: Some("Exists".into()),
                ..Default::default()
            },
        ];
        tolerations(&mut out, "", "Tolerations", Some(&t));
        taints(
            &mut out,
            "Taints",
            Some(&[Taint {
                key: "k".into(),
                value: Some("v".into()),
                effect: "NoSchedule".into(),
                ..Default::default()
            }]),
        );
        assert_eq!(
            out.finish(),
            "Tolerations:  op=Exists\n              node.kubernetes.io/unreachable:NoExecute op=Exists for 300s\nTaints:       k=v:NoSchedule\n"
        );
    }

    #[test]
    fn times_in_rfc1123z() {
        let t: Timestamp = "2026-11-25T13:22:38Z".parse().expect("a time");
        assert_eq!(rfc1123z(Some(&Time(t))), "Wed, 25 Nov 2026 13:22:38 +0000");
        assert_eq!(rfc1123z(None), GO_ZERO_TIME);
    }
}
