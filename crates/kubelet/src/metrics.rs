//! Counters the kubelet keeps, rendered as Prometheus text on `/metrics`. Gauges (pods,
//! workers) are counted from the live state at scrape time instead.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters, shared by every node of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    pub lease_renewals: AtomicU64,
    pub lease_renewal_errors: AtomicU64,
    pub node_registrations: AtomicU64,
    pub node_status_updates: AtomicU64,
    pub node_status_errors: AtomicU64,
    pub pod_syncs: AtomicU64,
    pub pod_sync_errors: AtomicU64,
    pub pod_status_writes: AtomicU64,
    pub pods_deleted: AtomicU64,
    pub orphans_removed: AtomicU64,
}

/// Gauges read from the live state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    pub nodes: usize,
    pub registered_nodes: usize,
    pub pod_workers: usize,
    pub running_pods: usize,
    pub running_containers: usize,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters and `gauges`.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: usize| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            );
        };
        gauge(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox.",
            gauges.running_pods,
        );
        gauge(
            "kubelet_running_containers",
            "Number of running containers.",
            gauges.running_containers,
        );
        gauge(
            "mast_kubelet_pod_workers",
            "Number of pod workers (one per pod the kubelet tracks).",
            gauges.pod_workers,
        );
        gauge(
            "mast_kubelet_nodes",
            "Number of nodes this process runs (more than one for hollow nodes).",
            gauges.nodes,
        );
        gauge(
            "mast_kubelet_registered_nodes",
            "Number of this process's nodes registered with the API server.",
            gauges.registered_nodes,
        );
        let counters = [
            (
                "mast_kubelet_lease_renewals_total",
                "Node lease renewals that succeeded.",
                &self.lease_renewals,
            ),
            (
                "mast_kubelet_lease_renewal_errors_total",
                "Node lease renewals that failed.",
                &self.lease_renewal_errors,
            ),
            (
                "mast_kubelet_node_registrations_total",
                "Nodes registered (created or taken over).",
                &self.node_registrations,
            ),
            (
                "mast_kubelet_node_status_updates_total",
                "Node status updates written.",
                &self.node_status_updates,
            ),
            (
                "mast_kubelet_node_status_errors_total",
                "Node registrations or status updates that failed.",
                &self.node_status_errors,
            ),
            (
                "mast_kubelet_pod_syncs_total",
                "Pod worker syncs.",
                &self.pod_syncs,
            ),
            (
                "mast_kubelet_pod_sync_errors_total",
                "Pod worker syncs that failed.",
                &self.pod_sync_errors,
            ),
            (
                "mast_kubelet_pod_status_writes_total",
                "Pod status updates written.",
                &self.pod_status_writes,
            ),
            (
                "mast_kubelet_pods_deleted_total",
                "Terminated pods the kubelet deleted from the API.",
                &self.pods_deleted,
            ),
            (
                "mast_kubelet_orphaned_pods_removed_total",
                "Runtime pods without an API object that were removed.",
                &self.orphans_removed,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.lease_renewals);
        Metrics::inc(&m.lease_renewals);
        let text = m.render(Gauges {
            running_pods: 3,
            ..Gauges::default()
        });
        assert!(
            text.contains("\nmast_kubelet_lease_renewals_total 2\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE kubelet_running_pods gauge\nkubelet_running_pods 3\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split(' ');
            assert!(parts.next().is_some_and(|n| !n.is_empty()));
            assert!(
                parts.next().is_some_and(|v| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }
}
