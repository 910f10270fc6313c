//! The Events section every describer ends with: the events whose involvedObject is
//! the object (kubectl's `searchEvents`: a field selector on name, namespace, kind and
//! uid), ordered by last timestamp with kubectl's own (unstable) sort.

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use super::text::Out;

/// Which events involve an object: kubectl's field selector terms (`None`: not
/// constrained).
#[derive(Debug, Clone, Default)]
pub struct Involved<'a> {
    pub name: &'a str,
    /// `""` for cluster-scoped objects (events then come from every namespace).
    pub namespace: &'a str,
    pub kind: Option<&'a str>,
    pub uid: Option<&'a str>,
}

/// The events involving an object, in the server's list order (which the stable sort
/// in [`section`] keeps for equal times). A failed search shows no events, as kubectl
/// ignores its error.
pub async fn search(client: &kube::Client, involved: &Involved<'_>) -> Vec<Event> {
    let mut terms = vec![
        format!("involvedObject.name={}", involved.name),
        format!("involvedObject.namespace={}", involved.namespace),
    ];
    if let Some(kind) = involved.kind.filter(|k| !k.is_empty()) {
        terms.push(format!("involvedObject.kind={kind}"));
    }
    if let Some(uid) = involved.uid.filter(|u| !u.is_empty()) {
        terms.push(format!("involvedObject.uid={uid}"));
    }
    let api: Api<Event> = if involved.namespace.is_empty() {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), involved.namespace)
    };
    match api
        .list(&ListParams::default().fields(&terms.join(",")))
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            tracing::debug!(error = %e, "listing events");
            Vec::new()
        }
    }
}

/// When an event last happened: its `lastTimestamp` (kubectl's `SortableEvents`).
fn last_seen(event: &Event) -> i128 {
    event
        .last_timestamp
        .as_ref()
        .map_or(i128::MIN, |t| t.0.as_nanosecond())
}

/// Writes `Events:` and the table (kubectl's `DescribeEvents`).
pub fn section(out: &mut Out, events: Option<Vec<Event>>) {
    let Some(mut events) = events else {
        return;
    };
    if events.is_empty() {
        out.write(0, "Events:\t<none>\n");
        return;
    }
    out.flush();
    // kubectl's sort is Go's `sort.Sort`: not stable, so ties (events in the same
    // second) come out in its order only if sorted by the same algorithm.
    super::gosort::sort(&mut events, |a, b| last_seen(a) < last_seen(b));
    out.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    out.write(1, "----\t------\t----\t----\t-------\n");
    for e in &events {
        let first = match &e.event_time {
            Some(t) => crate::ctl::describe::ago(t.0),
            None => ago_or_unknown(e.first_timestamp.as_ref().map(|t| t.0)),
        };
        let interval = if let Some(series) = &e.series {
            format!(
                "{} (x{} over {first})",
                ago_or_unknown(series.last_observed_time.as_ref().map(|t| t.0)),
                series.count.unwrap_or(0)
            )
        } else if e.count.unwrap_or(0) > 1 {
            format!(
                "{} (x{} over {first})",
                ago_or_unknown(e.last_timestamp.as_ref().map(|t| t.0)),
                e.count.unwrap_or(0)
            )
        } else {
            first
        };
        let source = e
            .source
            .as_ref()
            .and_then(|s| s.component.as_deref())
            .filter(|c| !c.is_empty())
            .or(e.reporting_component.as_deref())
            .unwrap_or("");
        out.write(
            1,
            &format!(
                "{}\t{}\t{interval}\t{source}\t{}\n",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("").trim()
            ),
        );
    }
}

fn ago_or_unknown(t: Option<k8s_openapi::jiff::Timestamp>) -> String {
    t.map_or_else(|| "<unknown>".to_string(), crate::ctl::describe::ago)
}
