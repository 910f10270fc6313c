//! ConfigMaps, Secrets and ServiceAccounts, as upstream's `printConfigMap`,
//! `printSecret` and `printServiceAccount`: NAME DATA AGE, NAME TYPE DATA AGE, and
//! NAME SECRETS AGE, the counts being numbers of keys (or secret references).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Column, Printer, Row, age_cell, items, map_len, name_cell, text};

pub(super) const CONFIG_MAP: Printer = Printer {
    columns: CONFIG_MAP_COLUMNS,
    row: config_map_row,
};

pub(super) const SECRET: Printer = Printer {
    columns: SECRET_COLUMNS,
    row: secret_row,
};

pub(super) const SERVICE_ACCOUNT: Printer = Printer {
    columns: SERVICE_ACCOUNT_COLUMNS,
    row: service_account_row,
};

const CONFIG_MAP_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    Column::age(),
];

const SECRET_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    Column::new(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    Column::age(),
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    Column::age(),
];

fn config_map_row(cm: &Value, now: i64) -> Row {
    let keys = map_len(cm, "/data") + map_len(cm, "/binaryData");
    Row::cells(vec![name_cell(cm), Value::from(keys), age_cell(cm, now)])
}

fn secret_row(secret: &Value, now: i64) -> Row {
    // Upstream counts the internal form, where stringData has been merged into data.
    let keys: BTreeSet<&String> = ["data", "stringData"]
        .iter()
        .filter_map(|field| secret.get(field).and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .collect();
    Row::cells(vec![
        name_cell(secret),
        Value::from(text(secret, "/type")),
        Value::from(keys.len()),
        age_cell(secret, now),
    ])
}

fn service_account_row(sa: &Value, now: i64) -> Row {
    Row::cells(vec![
        name_cell(sa),
        Value::from(items(sa, "/secrets").len()),
        age_cell(sa, now),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-01T10:00:00Z.
    const NOW: i64 = 1_714_557_600;

    type RowFn = fn(&Value, i64) -> Row;

    #[test]
    fn config_cases() {
        let created = "2024-05-01T09:58:00Z";
        let cases: Vec<(&str, RowFn, Value, Value)> = vec![
            (
                "config map with data and binary data",
                config_map_row,
                json!({"metadata": {"name": "settings", "creationTimestamp": created},
                    "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AAE="}}),
                json!(["settings", 3, "2m"]),
            ),
            (
                "empty config map",
                config_map_row,
                json!({"metadata": {"name": "kube-root-ca", "creationTimestamp": created}}),
                json!(["kube-root-ca", 0, "2m"]),
            ),
            (
                "opaque secret",
                secret_row,
                json!({"metadata": {"name": "db", "creationTimestamp": created}, "type": "Opaque",
                    "data": {"user": "YWRtaW4=", "password": "czNjcjN0"}}),
                json!(["db", "Opaque", 2, "2m"]),
            ),
            (
                "secret with string data overlapping data",
                secret_row,
                json!({"metadata": {"name": "tls", "creationTimestamp": created}, "type": "kubernetes.io/tls",
                    "data": {"tls.crt": "Y2VydA=="}, "stringData": {"tls.crt": "cert", "tls.key": "key"}}),
                json!(["tls", "kubernetes.io/tls", 2, "2m"]),
            ),
            (
                "service account with a secret",
                service_account_row,
                json!({"metadata": {"name": "builder", "creationTimestamp": created},
                    "secrets": [{"name": "builder-token"}]}),
                json!(["builder", 1, "2m"]),
            ),
            (
                "default service account",
                service_account_row,
                json!({"metadata": {"name": "default", "creationTimestamp": created}}),
                json!(["default", 0, "2m"]),
            ),
        ];
        for (name, row, input, want) in cases {
            assert_eq!(Value::from(row(&input, NOW).cells), want, "{name}");
        }
    }
}
