//! Probes and lifecycle hooks, as upstream's `validateProbe` and `validateHandler`:
//! exactly one handler, well-formed ports and paths, non-negative timings.

use k8s_openapi::api::core::v1::{
    ExecAction, GRPCAction, HTTPGetAction, Lifecycle, LifecycleHandler, Probe, SleepAction,
    TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::validation::errors::FieldError;
use crate::validation::formats;
use crate::validation::meta::nonnegative;
use crate::validation::path::Path;

/// The handler kinds common to probes and lifecycle hooks.
struct Handler<'a> {
    exec: Option<&'a ExecAction>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a TCPSocketAction>,
    grpc: Option<&'a GRPCAction>,
    sleep: Option<&'a SleepAction>,
}

/// Upstream's `ValidatePortNumOrName`.
pub fn port_num_or_name(port: &IntOrString, path: &Path) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => formats::is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|msg| FieldError::invalid(path, *n, &msg))
            .collect(),
        IntOrString::String(name) => formats::is_valid_port_name(name)
            .into_iter()
            .map(|msg| FieldError::invalid(path, name, &msg))
            .collect(),
    }
}

fn http_get(action: &HTTPGetAction, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if action.path.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(port_num_or_name(&action.port, &path.child("port")));
    let scheme = action.scheme.as_deref().unwrap_or("");
    if !matches!(scheme, "HTTP" | "HTTPS") {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in action.http_headers.iter().flatten() {
        for msg in formats::is_http_header_name(&header.name) {
            errs.push(FieldError::invalid(
                &path.child("httpHeaders"),
                &header.name,
                &msg,
            ));
        }
    }
    errs
}

fn sleep(action: &SleepAction, grace: Option<i64>, path: &Path) -> Vec<FieldError> {
    match grace {
        Some(grace) if action.seconds < 0 || action.seconds > grace => vec![FieldError::invalid(
            path,
            action.seconds,
            &format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
        )],
        _ => Vec::new(),
    }
}

/// Upstream's `validateHandler`: exactly one handler type, each checked.
fn handler(h: &Handler<'_>, grace: Option<i64>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    let mut one = |name: &str, errs: &mut Vec<FieldError>| {
        count += 1;
        if count > 1 {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            true
        }
    };
    if let Some(exec) = h.exec
        && one("exec", &mut errs)
        && exec.command.as_ref().is_none_or(Vec::is_empty)
    {
        errs.push(FieldError::required(
            &path.child("exec").child("command"),
            "",
        ));
    }
    if let Some(action) = h.http_get
        && one("httpGet", &mut errs)
    {
        errs.extend(http_get(action, &path.child("httpGet")));
    }
    if let Some(action) = h.tcp_socket
        && one("tcpSocket", &mut errs)
    {
        errs.extend(port_num_or_name(
            &action.port,
            &path.child("tcpSocket").child("port"),
        ));
    }
    if let Some(action) = h.grpc
        && one("grpc", &mut errs)
    {
        errs.extend(port_num_or_name(
            &IntOrString::Int(action.port),
            &path.child("grpc").child("port"),
        ));
    }
    if let Some(action) = h.sleep
        && one("sleep", &mut errs)
    {
        errs.extend(sleep(action, grace, &path.child("sleep")));
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// Which probe is being checked: liveness and startup probes must succeed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
    /// `startupProbe`.
    Startup,
}

/// Upstream's `validateProbe` plus the per-kind rules.
pub fn probe(
    p: Option<&Probe>,
    kind: ProbeKind,
    grace: Option<i64>,
    path: &Path,
) -> Vec<FieldError> {
    let Some(p) = p else {
        return Vec::new();
    };
    let h = Handler {
        exec: p.exec.as_ref(),
        http_get: p.http_get.as_ref(),
        tcp_socket: p.tcp_socket.as_ref(),
        grpc: p.grpc.as_ref(),
        sleep: None,
    };
    let mut errs = handler(&h, grace, path);
    let timings = [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ];
    for (name, value) in timings {
        errs.extend(nonnegative(
            i64::from(value.unwrap_or(0)),
            &path.child(name),
        ));
    }
    if let Some(tgps) = p.termination_grace_period_seconds
        && tgps <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            tgps,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let success = p.success_threshold.unwrap_or(0);
            if success != 1 {
                errs.push(FieldError::invalid(
                    &path.child("successThreshold"),
                    success,
                    "must be 1",
                ));
            }
        }
        ProbeKind::Readiness => {
            if let Some(tgps) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    &path.child("terminationGracePeriodSeconds"),
                    tgps,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
    errs
}

fn lifecycle_handler(h: &LifecycleHandler, grace: Option<i64>, path: &Path) -> Vec<FieldError> {
    let h = Handler {
        exec: h.exec.as_ref(),
        http_get: h.http_get.as_ref(),
        tcp_socket: h.tcp_socket.as_ref(),
        grpc: None,
        sleep: h.sleep.as_ref(),
    };
    handler(&h, grace, path)
}

/// Upstream's `validateLifecycle`.
pub fn lifecycle(l: &Lifecycle, grace: Option<i64>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(h) = &l.post_start {
        errs.extend(lifecycle_handler(h, grace, &path.child("postStart")));
    }
    if let Some(h) = &l.pre_stop {
        errs.extend(lifecycle_handler(h, grace, &path.child("preStop")));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(v: serde_json::Value, kind: ProbeKind) -> Vec<String> {
        let p: Probe = serde_json::from_value(v).expect("probe");
        probe(Some(&p), kind, Some(30), &Path::new("p"))
            .iter()
            .map(FieldError::message)
            .collect()
    }

    const DEFAULTS: [(&str, i32); 3] = [
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("failureThreshold", 3),
    ];

    fn with_defaults(mut v: serde_json::Value) -> serde_json::Value {
        for (k, n) in DEFAULTS {
            v[k] = json!(n);
        }
        v["successThreshold"] = json!(1);
        v
    }

    #[test]
    fn probe_cases() {
        let cases: Vec<(serde_json::Value, ProbeKind, Vec<&str>)> = vec![
            (
                with_defaults(json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}})),
                ProbeKind::Liveness,
                vec![],
            ),
            (
                with_defaults(json!({})),
                ProbeKind::Readiness,
                vec!["p: Required value: must specify a handler type"],
            ),
            (
                with_defaults(json!({"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}})),
                ProbeKind::Readiness,
                vec!["p.tcpSocket: Forbidden: may not specify more than 1 handler type"],
            ),
            (
                with_defaults(json!({"exec": {}})),
                ProbeKind::Readiness,
                vec!["p.exec.command: Required value"],
            ),
            (
                with_defaults(json!({"httpGet": {"path": "/", "port": "HTTP", "scheme": "FTP"}})),
                ProbeKind::Readiness,
                vec![
                    "p.httpGet.port: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    "p.httpGet.port: Invalid value: \"HTTP\": must contain at least one letter (a-z)",
                    "p.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"",
                ],
            ),
            (
                json!({"tcpSocket": {"port": 0}, "successThreshold": 2, "periodSeconds": -1}),
                ProbeKind::Liveness,
                vec![
                    "p.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                    "p.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
                    "p.successThreshold: Invalid value: 2: must be 1",
                ],
            ),
            (
                with_defaults(json!({"grpc": {"port": 9000}, "terminationGracePeriodSeconds": 5})),
                ProbeKind::Readiness,
                vec![
                    "p.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes",
                ],
            ),
        ];
        for (input, kind, want) in cases {
            assert_eq!(check(input.clone(), kind), want, "{input}");
        }
    }

    #[test]
    fn lifecycle_sleep_is_bounded_by_grace_period() {
        let l: Lifecycle = serde_json::from_value(json!({"preStop": {"sleep": {"seconds": 60}}}))
            .expect("lifecycle");
        let got: Vec<String> = lifecycle(&l, Some(30), &Path::new("l"))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            got,
            vec![
                "l.preStop.sleep: Invalid value: 60: must be non-negative and less than terminationGracePeriodSeconds (30)"
            ]
        );
    }
}
