//! Prometheus metrics, written by hand in the text format: requests and latency by verb
//! and resource, client watchers and store watches per resource, store calls by
//! operation, fenced writes by Lease and outcome.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::registry::RESOURCES;

/// Latency bucket bounds, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// At most this many distinct Leases get a fenced-writes series of their own; the
/// rest share `lease="other"`. The Lease name comes from a client's header, and a
/// client must not be able to grow /metrics without bound.
const MAX_FENCE_LEASES: usize = 64;

/// Shared metrics; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    store_calls: Mutex<BTreeMap<&'static str, u64>>,
    /// Per (Lease `namespace/name`, accepted or rejected): fenced writes.
    fenced_writes: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Per resource plural: client watches open, store watches open.
    watchers: BTreeMap<&'static str, AtomicI64>,
    store_watches: BTreeMap<&'static str, AtomicI64>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Which gauge a [`GaugeGuard`] holds up.
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    Watchers,
    StoreWatches,
}

/// Increments a per-resource gauge while alive.
#[derive(Debug)]
pub struct GaugeGuard {
    metrics: Metrics,
    gauge: Gauge,
    resource: &'static str,
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        if let Some(g) = self.metrics.gauge(self.gauge, self.resource) {
            g.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        let gauges = || {
            RESOURCES
                .iter()
                .map(|r| (r.plural, AtomicI64::new(0)))
                .collect()
        };
        Self {
            inner: Arc::new(Inner {
                watchers: gauges(),
                store_watches: gauges(),
                ..Inner::default()
            }),
        }
    }

    pub fn request(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        if let Ok(mut m) = self.inner.requests.lock() {
            *m.entry((verb.to_string(), resource.to_string(), code))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.inner.latency.lock() {
            let h = m
                .entry((verb.to_string(), resource.to_string()))
                .or_insert_with(|| Histogram {
                    counts: vec![0; BUCKETS.len()],
                    ..Histogram::default()
                });
            let secs = elapsed.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    pub fn store_call(&self, op: &'static str) {
        if let Ok(mut m) = self.inner.store_calls.lock() {
            *m.entry(op).or_default() += 1;
        }
    }

    /// Counts one fenced store write: done under a matching Lease (`accepted`), or
    /// refused because the Lease names another holder or term, or is gone.
    pub fn fenced_write(&self, lease: &str, accepted: bool) {
        let result = if accepted { "accepted" } else { "rejected" };
        if let Ok(mut m) = self.inner.fenced_writes.lock() {
            let known = m.keys().any(|(l, _)| l == lease);
            let leases = m
                .keys()
                .map(|(l, _)| l.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let lease = if known || leases < MAX_FENCE_LEASES {
                lease
            } else {
                "other"
            };
            *m.entry((lease.to_string(), result)).or_default() += 1;
        }
    }

    /// Counts one open watch of `gauge`'s kind on `resource` until the guard drops.
    pub fn hold(&self, gauge: Gauge, resource: &'static str) -> GaugeGuard {
        if let Some(g) = self.gauge(gauge, resource) {
            g.fetch_add(1, Ordering::Relaxed);
        }
        GaugeGuard {
            metrics: self.clone(),
            gauge,
            resource,
        }
    }

    pub fn gauge_value(&self, gauge: Gauge, resource: &str) -> i64 {
        self.gauge(gauge, resource)
            .map(|g| g.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn gauge(&self, gauge: Gauge, resource: &str) -> Option<&AtomicI64> {
        match gauge {
            Gauge::Watchers => self.inner.watchers.get(resource),
            Gauge::StoreWatches => self.inner.store_watches.get(resource),
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP mast_http_requests_total API requests by verb, resource and code.\n");
        out.push_str("# TYPE mast_http_requests_total counter\n");
        if let Ok(m) = self.inner.requests.lock() {
            for ((verb, resource, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "mast_http_requests_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP mast_http_request_duration_seconds API request latency by verb and resource.\n",
        );
        out.push_str("# TYPE mast_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.inner.latency.lock() {
            for ((verb, resource), h) in m.iter() {
                let labels = format!("verb=\"{verb}\",resource=\"{resource}\"");
                for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                    let _ = writeln!(
                        out,
                        "mast_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "mast_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "mast_http_request_duration_seconds_sum{{{labels}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "mast_http_request_duration_seconds_count{{{labels}}} {}",
                    h.count
                );
            }
        }
        for (name, help, map) in [
            (
                "mast_watchers",
                "Client watches served from each resource's watch cache.",
                &self.inner.watchers,
            ),
            (
                "mast_store_watches_open",
                "Store watches open per resource (the watch cache holds one).",
                &self.inner.store_watches,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (resource, g) in map {
                let _ = writeln!(
                    out,
                    "{name}{{resource=\"{resource}\"}} {}",
                    g.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP mast_store_calls_total Store calls by operation.\n");
        out.push_str("# TYPE mast_store_calls_total counter\n");
        if let Ok(m) = self.inner.store_calls.lock() {
            for (op, n) in m.iter() {
                let _ = writeln!(out, "mast_store_calls_total{{operation=\"{op}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP mast_apiserver_fenced_writes_total Leader-fenced store writes by lease and result.\n",
        );
        out.push_str("# TYPE mast_apiserver_fenced_writes_total counter\n");
        if let Ok(m) = self.inner.fenced_writes.lock() {
            for ((lease, result), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "mast_apiserver_fenced_writes_total{{lease=\"{}\",result=\"{result}\"}} {n}",
                    label_value(lease)
                );
            }
        }
        out
    }
}

/// A label value escaped for the text format (a Lease name in a header may hold `"`).
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::new();
        m.request("get", "pods", 200, Duration::from_millis(3));
        m.store_call("get");
        let guard = m.hold(Gauge::Watchers, "pods");
        let text = m.render();
        assert!(
            text.contains(
                "mast_http_requests_total{verb=\"get\",resource=\"pods\",code=\"200\"} 1"
            )
        );
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.0025\"} 0"));
        assert!(text.contains("mast_watchers{resource=\"pods\"} 1"));
        assert!(text.contains("mast_store_calls_total{operation=\"get\"} 1"));
        drop(guard);
        assert_eq!(m.gauge_value(Gauge::Watchers, "pods"), 0);
    }

    #[test]
    fn fenced_writes_by_lease_and_result_with_a_bounded_label_set() {
        let m = Metrics::new();
        m.fenced_write("kube-system/kube-scheduler", true);
        m.fenced_write("kube-system/kube-scheduler", true);
        m.fenced_write("kube-system/kube-scheduler", false);
        m.fenced_write("ns/a\"b", false);
        for i in 0..MAX_FENCE_LEASES {
            m.fenced_write(&format!("ns/l{i}"), false);
        }
        m.fenced_write("kube-system/kube-scheduler", true);
        let text = m.render();
        assert!(text.contains(
            "mast_apiserver_fenced_writes_total{lease=\"kube-system/kube-scheduler\",result=\"accepted\"} 3"
        ));
        assert!(text.contains(
            "mast_apiserver_fenced_writes_total{lease=\"kube-system/kube-scheduler\",result=\"rejected\"} 1"
        ));
        assert!(text.contains("lease=\"ns/a\\\"b\""), "{text}");
        // Two leases were known; the rest of the 64 fill the set and the last spill.
        assert!(
            text.contains(
                "mast_apiserver_fenced_writes_total{lease=\"other\",result=\"rejected\"} 2"
            )
        );
    }
}
