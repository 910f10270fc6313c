//! Events, as upstream's `printEvent`: LAST SEEN TYPE REASON OBJECT MESSAGE, and with
//! `-o wide` SUBOBJECT SOURCE FIRST SEEN COUNT NAME (the wide columns sit among the
//! others, in upstream's order).
//!
//! Times fall back as upstream's do: first seen is `firstTimestamp`, else `eventTime`
//! (events written through the newer API); last seen is the series' last observation,
//! else `lastTimestamp`, else first seen. A singleton event without a count counts 1.

use serde_json::Value;

use super::format::{self, time_of};
use super::{Column, NAME_DOC, Printer, Row, int, name_cell, object, text};

pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
};

const COLUMNS: &[Column] = &[
    Column::new(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    Column::new(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    Column::new(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    Column::new("Object", "string", "The object that this event is about."),
    Column::new(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    )
    .wide(),
    Column::new(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    )
    .wide(),
    Column::new(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    Column::new(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    )
    .wide(),
    Column::new(
        "Count",
        "string",
        "The number of times this event has occurred.",
    )
    .wide(),
    Column {
        format: "name",
        ..Column::new("Name", "string", NAME_DOC).wide()
    },
];

fn row(event: &Value, now: i64) -> Row {
    let age = |field: &str| time_of(event.get(field)).map(|t| format::since_nanos(t, now));
    let first_seen =
        age("firstTimestamp").unwrap_or_else(|| format::since(event.get("eventTime"), now));
    let mut last_seen = age("lastTimestamp").unwrap_or_else(|| first_seen.clone());
    let mut count = int(event, "/count");
    if let Some(series) = object(event, "/series") {
        last_seen = format::since(series.get("lastObservedTime"), now);
        count = int(series, "/count");
    } else if count == 0 {
        count = 1;
    }

    let kind = text(event, "/involvedObject/kind").to_lowercase();
    let target = match text(event, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = first_non_empty(
        text(event, "/source/component"),
        text(event, "/reportingComponent"),
    );
    let instance = first_non_empty(
        text(event, "/source/host"),
        text(event, "/reportingInstance"),
    );
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    Row::cells(vec![
        Value::from(last_seen),
        Value::from(text(event, "/type")),
        Value::from(text(event, "/reason")),
        Value::from(target),
        Value::from(text(event, "/involvedObject/fieldPath")),
        Value::from(source),
        Value::from(text(event, "/message").trim()),
        Value::from(first_seen),
        Value::from(count),
        name_cell(event),
    ])
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-01T10:00:00Z.
    const NOW: i64 = 1_714_557_600;

    #[test]
    fn event_cases() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "kubelet back-off, repeated",
                json!({
                    "metadata": {"name": "web-0.17c2a", "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
                    "type": "Warning", "reason": "BackOff",
                    "message": "Back-off restarting failed container app in pod web-0\n",
                    "source": {"component": "kubelet", "host": "node-1"},
                    "firstTimestamp": "2024-05-01T09:00:00Z", "lastTimestamp": "2024-05-01T09:59:30Z",
                    "count": 42,
                }),
                json!([
                    "30s",
                    "Warning",
                    "BackOff",
                    "pod/web-0",
                    "spec.containers{app}",
                    "kubelet, node-1",
                    "Back-off restarting failed container app in pod web-0",
                    "60m",
                    42,
                    "web-0.17c2a"
                ]),
            ),
            (
                "scheduler, written through the events API",
                json!({
                    "metadata": {"name": "web-1.17c2b"},
                    "involvedObject": {"kind": "Pod", "name": "web-1"},
                    "type": "Normal", "reason": "Scheduled",
                    "message": "Successfully assigned default/web-1 to node-1",
                    "eventTime": "2024-05-01T09:57:00.123456Z",
                    "reportingComponent": "default-scheduler", "reportingInstance": "default-scheduler-cp-1",
                }),
                json!([
                    "2m59s",
                    "Normal",
                    "Scheduled",
                    "pod/web-1",
                    "",
                    "default-scheduler, default-scheduler-cp-1",
                    "Successfully assigned default/web-1 to node-1",
                    "2m59s",
                    1,
                    "web-1.17c2b"
                ]),
            ),
            (
                "series",
                json!({
                    "metadata": {"name": "node-1.17c2c"},
                    "involvedObject": {"kind": "Node", "name": "node-1"},
                    "type": "Normal", "reason": "NodeHasSufficientMemory",
                    "eventTime": "2024-05-01T08:00:00.000000Z",
                    "series": {"count": 7, "lastObservedTime": "2024-05-01T09:59:55.000000Z"},
                    "source": {"component": "kubelet"},
                }),
                json!([
                    "5s",
                    "Normal",
                    "NodeHasSufficientMemory",
                    "node/node-1",
                    "",
                    "kubelet",
                    "",
                    "120m",
                    7,
                    "node-1.17c2c"
                ]),
            ),
            (
                "no times, no name on the object",
                json!({
                    "metadata": {"name": "x"},
                    "involvedObject": {"kind": "Namespace"},
                    "count": 3,
                }),
                json!([
                    "<unknown>",
                    "",
                    "",
                    "namespace",
                    "",
                    "",
                    "",
                    "<unknown>",
                    3,
                    "x"
                ]),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(Value::from(row(&input, NOW).cells), want, "{name}");
        }
    }
}
