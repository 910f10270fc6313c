//! The small kinds: Namespaces, Nodes, ServiceAccounts, Leases and core/v1 Events.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace};

use super::errors::FieldError;
use super::formats;
use super::meta::{self, MetaRules};
use super::path::Path;

/// Namespaces are cluster-scoped DNS labels.
pub const NAMESPACE_META: MetaRules = MetaRules {
    name: formats::name_is_dns_label,
    namespaced: Some(false),
    core_finalizers: true,
};

/// Nodes are cluster-scoped DNS subdomains.
pub const NODE_META: MetaRules = MetaRules {
    name: formats::name_is_dns_subdomain,
    namespaced: Some(false),
    core_finalizers: true,
};

/// ServiceAccounts and Leases are namespaced DNS subdomains.
pub const SUBDOMAIN_META: MetaRules = MetaRules {
    name: formats::name_is_dns_subdomain,
    namespaced: Some(true),
    core_finalizers: true,
};

/// Events, like kinds without their own rules, only get the REST layer's generic
/// metadata checks: any name that fits in a URL path segment.
pub const EVENT_META: MetaRules = MetaRules {
    name: formats::name_is_path_segment,
    namespaced: Some(true),
    core_finalizers: false,
};

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// Upstream's `ValidateNamespace`: metadata, and `spec.finalizers` are qualified or
/// standard names (reported on the list's path).
pub fn namespace(ns: &Namespace) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&ns.metadata, &NAMESPACE_META);
    let path = Path::new("spec").child("finalizers");
    let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.as_ref());
    for f in finalizers.into_iter().flatten() {
        for msg in formats::is_qualified_name(f) {
            errs.push(FieldError::invalid(&path, f, &msg));
        }
        errs.extend(meta::kube_finalizer_name(f, &path));
    }
    errs
}

/// Upstream's `ValidateLeaseSpec`.
pub fn lease(l: &Lease) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&l.metadata, &SUBDOMAIN_META);
    let Some(spec) = &l.spec else {
        return errs;
    };
    let path = Path::new("spec");
    if let Some(d) = spec.lease_duration_seconds
        && d <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions
        && t < 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(strategy) = spec.strategy.as_deref()
        && strategy != "OldestEmulationVersion"
    {
        errs.push(FieldError::not_supported(
            &path.child("strategy"),
            strategy,
            &["OldestEmulationVersion"],
        ));
    }
    let preferred = spec.preferred_holder.as_deref().unwrap_or("");
    if !preferred.is_empty() && spec.strategy.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

fn at_most(value: &str, limit: usize, name: &str) -> Option<FieldError> {
    (value.len() > limit).then(|| {
        FieldError::invalid(
            &Path::new(name),
            "",
            &format!("can have at most {limit} characters"),
        )
    })
}

/// Upstream's legacy (core/v1) event validation plus the generic metadata checks.
pub fn event(e: &Event) -> Vec<FieldError> {
    let mut errs = meta::object_meta(&e.metadata, &EVENT_META);
    let ns = e.metadata.namespace.as_deref().unwrap_or("");
    let involved_ns = e.involved_object.namespace.as_deref().unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            &Path::new("involvedObject").child("namespace"),
            involved_ns,
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        // An old-style event: its namespace follows the involved object's.
        let ok = if involved_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == involved_ns
        };
        if !ok {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        // In core/v1 the reporting controller travels as `reportingComponent`, and
        // upstream names it `source` in errors.
        let controller = e.reporting_component.as_deref().unwrap_or("");
        if controller.is_empty() {
            errs.push(FieldError::required(&Path::new("source"), ""));
        }
        errs.extend(meta::label_name(controller, &Path::new("source")));
        let instance = e.reporting_instance.as_deref().unwrap_or("");
        if instance.is_empty() {
            errs.push(FieldError::required(&Path::new("reportingInstance"), ""));
        }
        errs.extend(at_most(
            instance,
            REPORTING_INSTANCE_LIMIT,
            "reportingInstance",
        ));
        let action = e.action.as_deref().unwrap_or("");
        if action.is_empty() {
            errs.push(FieldError::required(&Path::new("action"), ""));
        }
        errs.extend(at_most(action, ACTION_LIMIT, "action"));
        let reason = e.reason.as_deref().unwrap_or("");
        if reason.is_empty() {
            errs.push(FieldError::required(&Path::new("reason"), ""));
        }
        errs.extend(at_most(reason, REASON_LIMIT, "reason"));
        errs.extend(at_most(
            e.message.as_deref().unwrap_or(""),
            NOTE_LIMIT,
            "message",
        ));
    }
    if !ns.is_empty() {
        for msg in formats::is_dns1123_subdomain(ns) {
            errs.push(FieldError::invalid(&Path::new("namespace"), ns, &msg));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn namespace_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"metadata": {"name": "team-a"}, "spec": {"finalizers": ["kubernetes"]}}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "team.a"}}),
                vec!["metadata.name: Invalid value: \"team.a\": must not contain dots"],
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["custom"]}}),
                vec![
                    "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
                ],
            ),
        ];
        for (input, want) in cases {
            let ns: Namespace = serde_json::from_value(input.clone()).expect("namespace");
            let got: Vec<String> = namespace(&ns).iter().map(FieldError::message).collect();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn lease_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
                vec![
                    "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                    "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
                ],
            ),
            (
                json!({"metadata": {"name": "l"}, "spec": {"preferredHolder": "b"}}),
                vec![
                    "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
                ],
            ),
        ];
        for (input, want) in cases {
            let l: Lease = serde_json::from_value(input.clone()).expect("lease");
            let got: Vec<String> = lease(&l).iter().map(FieldError::message).collect();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn event_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"metadata": {"name": "web.17a2b", "namespace": "default"}, "involvedObject": {"kind": "Pod", "namespace": "default"}}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "Any_Name:ok", "namespace": "default"}, "involvedObject": {}}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"namespace": "b"}}),
                vec![
                    "involvedObject.namespace: Invalid value: \"b\": does not match event.namespace",
                ],
            ),
            (
                json!({"metadata": {"name": "a/b", "namespace": "default"}, "involvedObject": {}}),
                vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"],
            ),
            (
                json!({"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"namespace": "default"},
                       "eventTime": "2024-01-01T00:00:00.000000Z", "reportingComponent": "kubelet", "reportingInstance": "n1",
                       "action": "Pulling"}),
                vec!["reason: Required value"],
            ),
        ];
        for (input, want) in cases {
            let e: Event = serde_json::from_value(input.clone()).expect("event");
            let got: Vec<String> = event(&e).iter().map(FieldError::message).collect();
            assert_eq!(got, want, "{input}");
        }
    }
}
