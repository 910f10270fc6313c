//! The repair pass, as upstream's cluster IP and node port repair controllers: compares
//! the allocations with the Services at one store revision, frees allocations no Service
//! holds (an API server died between taking an item and writing its Service, or between
//! deleting a Service and releasing), and records allocations that are missing (data
//! restored from elsewhere, Services written before allocation existed). Every API
//! server runs it at start and then periodically; running it twice at once is harmless
//! (every write is conditional on the revision read).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use store::{AnyStore, Store};

use super::pool::{Entry, Holder, Pool};
use super::{Allocators, IPS, NODE_PORTS, service};
use crate::error::ApiError;
use crate::meta;

/// How often the pass runs after the first (upstream: every 3 minutes).
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(180);
/// How old an allocation no Service holds must be before it is freed: a Service create
/// takes its items before it writes the Service, and must not lose them meanwhile.
pub const LEAK_GRACE: Duration = Duration::from_secs(60);

/// What a pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Allocations freed because no Service holds them.
    pub freed: usize,
    /// Allocations written for Services that hold an item without one.
    pub recorded: usize,
    /// Allocations whose holder was corrected to the Service that holds the item.
    pub reassigned: usize,
}

/// Every value under `prefix` at `revision`.
async fn list_values(
    store: &AnyStore,
    prefix: &str,
    revision: i64,
) -> Result<Vec<bytes::Bytes>, store::Error> {
    let mut values = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store
            .list(prefix.as_bytes(), revision, 1000, after.as_deref())
            .await?;
        values.extend(page.items.iter().map(|kv| kv.value.clone()));
        match (page.more, page.items.last()) {
            (true, Some(last)) => after = Some(last.key.to_vec()),
            _ => return Ok(values),
        }
    }
}

impl Allocators {
    /// One pass; allocations no Service holds are freed once older than `grace`.
    pub async fn repair(&self, grace: Duration) -> Result<RepairReport, ApiError> {
        let Some(services) = api::registry::find("", "v1", "services") else {
            return Ok(RepairReport::default());
        };
        // One snapshot for all three reads, so that a Service and its allocations are
        // seen as of the same moment.
        let (ips, revision) = IPS.list(&self.store, 0).await?;
        let (ports, _) = NODE_PORTS.list(&self.store, revision).await?;
        let stored = list_values(&self.store, &services.prefix(), revision).await?;
        let mut wanted_ips: BTreeMap<String, Holder> = BTreeMap::new();
        let mut wanted_ports: BTreeMap<String, Holder> = BTreeMap::new();
        for value in stored {
            let Ok(svc) = serde_json::from_slice::<Service>(&value) else {
                continue;
            };
            let holder = Holder {
                namespace: svc.metadata.namespace.clone().unwrap_or_default(),
                name: svc.metadata.name.clone().unwrap_or_default(),
                uid: svc.metadata.uid.clone().unwrap_or_default(),
                allocated_at: meta::unix_now(),
            };
            for ip in service::allocated_ips(&svc) {
                let Some(canonical) = ip
                    .parse::<std::net::Ipv4Addr>()
                    .ok()
                    .filter(|a| self.ranges.cluster_ips.index_of(*a).is_some())
                else {
                    // Outside the range (the flag changed): not ours to track.
                    continue;
                };
                want(
                    &mut wanted_ips,
                    canonical.to_string(),
                    &holder,
                    "cluster IP",
                );
            }
            for port in service::allocated_node_ports(&svc) {
                if self.ranges.node_ports.index_of(port).is_some() {
                    want(&mut wanted_ports, port.to_string(), &holder, "node port");
                }
            }
        }
        let mut report = RepairReport::default();
        self.reconcile(IPS, ips, &wanted_ips, grace, &mut report)
            .await?;
        self.reconcile(NODE_PORTS, ports, &wanted_ports, grace, &mut report)
            .await?;
        if report != RepairReport::default() {
            tracing::info!(?report, "service allocations repaired");
        }
        Ok(report)
    }

    async fn reconcile(
        &self,
        pool: Pool,
        entries: Vec<Entry>,
        wanted: &BTreeMap<String, Holder>,
        grace: Duration,
        report: &mut RepairReport,
    ) -> Result<(), ApiError> {
        let now = meta::unix_now();
        let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        let mut seen = std::collections::BTreeSet::new();
        for entry in entries {
            seen.insert(entry.item.clone());
            match (wanted.get(&entry.item), &entry.holder) {
                (None, holder) => {
                    let taken_at = holder.as_ref().map_or(0, |h| h.allocated_at);
                    if now.saturating_sub(taken_at) >= grace
                        && pool
                            .delete(&self.store, &entry.item, entry.mod_revision)
                            .await?
                    {
                        tracing::info!(item = entry.item, "freed a leaked service allocation");
                        report.freed += 1;
                    }
                }
                (Some(owner), Some(holder)) if owner.uid == holder.uid => {}
                (Some(owner), _) => {
                    if pool
                        .reassign(&self.store, &entry.item, owner, entry.mod_revision)
                        .await?
                    {
                        report.reassigned += 1;
                    }
                }
            }
        }
        for (item, owner) in wanted {
            if !seen.contains(item) && pool.claim(&self.store, item, owner).await? {
                tracing::info!(item, service = %format!("{}/{}", owner.namespace, owner.name), "recorded a missing service allocation");
                report.recorded += 1;
            }
        }
        Ok(())
    }

    /// Runs a pass every `every` until `stop` turns true.
    pub fn spawn_repairs(
        &self,
        every: Duration,
        grace: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let allocators = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick fires at once: the pass at start.
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                if let Err(e) = allocators.repair(grace).await {
                    tracing::warn!(error = %e, "repairing service allocations");
                }
            }
        })
    }
}

/// Records that `item` is held by `holder`; two Services holding one item is a conflict
/// upstream reports as an event; here a warning (the first keeps it).
fn want(wanted: &mut BTreeMap<String, Holder>, item: String, holder: &Holder, what: &str) {
    match wanted.get(&item) {
        Some(first) if first.uid != holder.uid => {
            tracing::warn!(
                item,
                what,
                first = %format!("{}/{}", first.namespace, first.name),
                second = %format!("{}/{}", holder.namespace, holder.name),
                "two services hold the same {what}"
            );
        }
        Some(_) => {}
        None => {
            wanted.insert(item, holder.clone());
        }
    }
}
