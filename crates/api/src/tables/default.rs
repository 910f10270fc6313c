//! Every kind without its own printer, as upstream's default table convertor: NAME and
//! CREATED AT, the creation time as an RFC 3339 date (kubectl shows dates as they
//! are, not as an age).

use serde_json::Value;

use super::{CREATION_DOC, Column, Printer, Row, format, name_cell};

pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
};

const COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Created At", "date", CREATION_DOC),
];

fn row(object: &Value, _now: i64) -> Row {
    Row::cells(vec![
        name_cell(object),
        Value::from(format::rfc3339(
            object.pointer("/metadata/creationTimestamp"),
        )),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn default_cases() {
        let cases = [
            (
                json!({"metadata": {"name": "scale", "creationTimestamp": "2024-05-01T09:00:00Z"}}),
                json!(["scale", "2024-05-01T09:00:00Z"]),
            ),
            (
                json!({"metadata": {"name": "fresh"}}),
                json!(["fresh", "0001-01-01T00:00:00Z"]),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Value::from(row(&input, 0).cells), want, "{input}");
        }
        let t = crate::tables::table(
            "PriorityClass",
            &[],
            json!({}),
            crate::tables::IncludeObject::None,
            0,
        );
        assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["columnDefinitions"][1]["priority"], 0);
    }
}
