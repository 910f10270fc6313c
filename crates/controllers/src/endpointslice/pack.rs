//! Which slices to create, update and delete so that a service's slices hold the
//! desired endpoints, changing as few as possible (upstream's `reconcileByAddressType`,
//! `reconcileByPortMapping` and `finalize`). Pure: the controller writes the plan.
//!
//! Per address type and port set: existing slices keep the endpoints still wanted
//! (updated in place when their conditions moved), lose the others, and go when
//! emptied; the new endpoints fill slices already being updated, then the best
//! fitting unchanged slice, then new slices of at most `max` endpoints. A service
//! without endpoints keeps one empty placeholder slice. A create paired with a
//! delete becomes an update of the slice that would go.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::desired::{self, Group, Groups};
use crate::endpoints::pods::IpFamily;

/// Upstream's `--max-endpoints-per-slice` default.
pub(crate) const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The writes that bring the slices where they should be.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// New slices (named through `generateName`).
    pub(crate) create: Vec<EndpointSlice>,
    /// Slices replaced whole; they carry the resourceVersion they were read at.
    pub(crate) update: Vec<EndpointSlice>,
    pub(crate) delete: Vec<EndpointSlice>,
}

impl Plan {
    pub(crate) fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    fn extend(&mut self, other: Plan) {
        self.create.extend(other.create);
        self.update.extend(other.update);
        self.delete.extend(other.delete);
    }
}

/// The plan for `service`, whose managed slices (none being deleted) are `existing`.
pub(crate) fn plan(
    service: &Service,
    existing: &[Arc<EndpointSlice>],
    desired: &BTreeMap<IpFamily, Groups>,
    max: usize,
) -> Plan {
    let mut sorted: Vec<&EndpointSlice> = existing.iter().map(Arc::as_ref).collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut plan = Plan::default();
    let mut by_family: BTreeMap<IpFamily, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in sorted {
        // Slices of an address type the service no longer has go.
        match IpFamily::from_name(&slice.address_type).filter(|f| desired.contains_key(f)) {
            Some(family) => by_family.entry(family).or_default().push(slice),
            None => plan.delete.push(slice.clone()),
        }
    }
    for (family, groups) in desired {
        let slices = by_family.remove(family).unwrap_or_default();
        plan.extend(by_address_type(
            service,
            *family,
            &slices,
            groups,
            max.max(1),
        ));
    }
    plan
}

fn by_address_type(
    service: &Service,
    family: IpFamily,
    existing: &[&EndpointSlice],
    groups: &Groups,
    max: usize,
) -> Plan {
    let mut plan = Plan::default();
    let mut by_ports: BTreeMap<desired::PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if desired::owned_by(slice, service) {
            let key = desired::ports_key(slice.ports.as_deref().unwrap_or_default());
            by_ports.entry(key).or_default().push(slice);
        } else {
            // A slice of an older service of the same name.
            plan.delete.push((*slice).clone());
        }
    }
    for (key, group) in groups {
        let slices = by_ports.get(key).map(Vec::as_slice).unwrap_or_default();
        plan.extend(by_port_set(service, family, slices, group, max));
    }
    for (key, slices) in &by_ports {
        if !groups.contains_key(key) {
            plan.delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }
    // With nothing left, one empty slice says "no endpoints" (rather than "not
    // synced yet"); an existing placeholder stays as it is.
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        let placeholder = desired::new_slice(service, family, Vec::new());
        if plan.delete.len() == 1 && same_placeholder(&plan.delete[0], &placeholder) {
            plan.delete.clear();
        } else {
            plan.create.push(placeholder);
        }
    }
    finalize(service, &mut plan);
    plan
}

/// Upstream's `reconcileByPortMapping` for one port set.
fn by_port_set(
    service: &Service,
    family: IpFamily,
    existing: &[&EndpointSlice],
    group: &Group,
    max: usize,
) -> Plan {
    let labels = desired::labels(service);
    let mut wanted = group.endpoints.clone();
    let mut slices: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut to_update = BTreeSet::new();
    let mut unchanged = BTreeSet::new();
    let mut to_delete = BTreeSet::new();

    // 1. Existing slices keep the endpoints still wanted, in their current version.
    for slice in existing {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let mut kept = Vec::new();
        let mut moved = false;
        for endpoint in endpoints(slice) {
            if let Some(want) = wanted.remove(&desired::endpoint_key(endpoint)) {
                moved |= want != *endpoint;
                kept.push(want);
            }
        }
        let labels_moved = slice.metadata.labels.clone().unwrap_or_default() != labels;
        let mut copy = (*slice).clone();
        if moved || kept.len() != endpoints(slice).len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
            } else {
                copy.endpoints = Some(kept);
                copy.metadata.labels = Some(labels.clone());
                to_update.insert(name.clone());
            }
        } else if labels_moved {
            copy.metadata.labels = Some(labels.clone());
            to_update.insert(name.clone());
        } else {
            unchanged.insert(name.clone());
        }
        slices.insert(name, copy);
    }

    // 2. New endpoints first fill slices that are written anyway, fullest first.
    if !wanted.is_empty() && !to_update.is_empty() {
        let mut names: Vec<&String> = to_update.iter().collect();
        names.sort_by_key(|n| std::cmp::Reverse(slices.get(*n).map_or(0, |s| endpoints(s).len())));
        for name in names {
            if let Some(slice) = slices.get_mut(name) {
                fill(slice, &mut wanted, max);
            }
        }
    }

    // 3. Then the unchanged slice they fit in best, then new slices.
    let mut create = Vec::new();
    while !wanted.is_empty() {
        let fitting = if wanted.len() < max {
            best_fit(&slices, &unchanged, wanted.len(), max)
        } else {
            None
        };
        match fitting {
            Some(name) => {
                if let Some(slice) = slices.get_mut(&name) {
                    fill(slice, &mut wanted, max);
                }
                unchanged.remove(&name);
                to_update.insert(name);
            }
            None => {
                let mut slice = desired::new_slice(service, family, group.ports.clone());
                fill(&mut slice, &mut wanted, max);
                create.push(slice);
            }
        }
    }

    let pick = |names: &BTreeSet<String>| -> Vec<EndpointSlice> {
        names
            .iter()
            .filter_map(|n| slices.get(n).cloned())
            .collect()
    };
    Plan {
        create,
        update: pick(&to_update),
        delete: pick(&to_delete),
    }
}

fn fill(
    slice: &mut EndpointSlice,
    wanted: &mut BTreeMap<desired::EndpointKey, Endpoint>,
    max: usize,
) {
    let list = slice.endpoints.get_or_insert_with(Vec::new);
    while list.len() < max {
        let Some((_, endpoint)) = wanted.pop_first() else {
            return;
        };
        list.push(endpoint);
    }
}

/// The unchanged slice with the least room that still takes `count` more
/// (upstream's `getSliceToFill`).
fn best_fit(
    slices: &BTreeMap<String, EndpointSlice>,
    unchanged: &BTreeSet<String>,
    count: usize,
    max: usize,
) -> Option<String> {
    unchanged
        .iter()
        .filter_map(|name| {
            let room = max.checked_sub(endpoints(slices.get(name)?).len() + count)?;
            Some((room, name))
        })
        .min_by_key(|(room, _)| *room)
        .map(|(_, name)| name.clone())
}

/// Turns creates into updates of slices about to be deleted (same service, same
/// address type): fewer writes, and names stay stable.
fn finalize(service: &Service, plan: &mut Plan) {
    let mut i = 0;
    while i < plan.delete.len() {
        let reusable = desired::owned_by(&plan.delete[i], service)
            && plan
                .create
                .last()
                .is_some_and(|c| c.address_type == plan.delete[i].address_type);
        if !reusable {
            i += 1;
            continue;
        }
        let (Some(mut slice), old) = (plan.create.pop(), plan.delete.remove(i)) else {
            break;
        };
        slice.metadata.name = old.metadata.name;
        slice.metadata.generate_name = None;
        slice.metadata.resource_version = old.metadata.resource_version;
        plan.update.push(slice);
    }
}

/// A slice's endpoints (absent when empty).
pub(crate) fn endpoints(slice: &EndpointSlice) -> &[Endpoint] {
    slice.endpoints.as_deref().unwrap_or_default()
}

/// Whether `slice` is the placeholder this service would get (upstream's
/// `placeholderSliceCompare`: names and versions aside).
fn same_placeholder(slice: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    let labels = |s: &EndpointSlice| s.metadata.labels.clone().unwrap_or_default();
    let owners = |s: &EndpointSlice| s.metadata.owner_references.clone().unwrap_or_default();
    let ports = |s: &EndpointSlice| s.ports.clone().unwrap_or_default();
    slice.metadata.namespace == placeholder.metadata.namespace
        && labels(slice) == labels(placeholder)
        && owners(slice) == owners(placeholder)
        && slice.address_type == placeholder.address_type
        && endpoints(slice) == endpoints(placeholder)
        && ports(slice) == ports(placeholder)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::endpoints::pods::tests::{pod, service, service_port};

    fn svc() -> Service {
        service(vec![
            service_port("web", 80, IntOrString::Int(8081)),
            service_port("http", 8000, IntOrString::String("http".into())),
        ])
    }

    fn pods(n: usize, ready: bool) -> Vec<Arc<Pod>> {
        (0..n)
            .map(|i| {
                Arc::new(pod(
                    &format!("p{i:04}"),
                    &format!("10.1.{}.{}", i / 200, i % 200 + 1),
                    ready,
                ))
            })
            .collect()
    }

    fn want(service: &Service, selected: &[Arc<Pod>]) -> BTreeMap<IpFamily, Groups> {
        desired::desired(service, selected, |_| None).by_family
    }

    fn want_with_nodes(service: &Service, selected: &[Arc<Pod>]) -> BTreeMap<IpFamily, Groups> {
        let node = Arc::new(k8s_openapi::api::core::v1::Node::default());
        desired::desired(service, selected, move |_| Some(node.clone())).by_family
    }

    /// Applies a plan as the API server would (names for creates, versions bumped).
    fn apply(
        existing: &[Arc<EndpointSlice>],
        plan: Plan,
        counter: &mut u32,
    ) -> Vec<Arc<EndpointSlice>> {
        let mut by_name: BTreeMap<String, EndpointSlice> = existing
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), (**s).clone()))
            .collect();
        for slice in plan.delete {
            by_name.remove(&slice.metadata.name.unwrap_or_default());
        }
        for mut slice in plan.update.into_iter().chain(plan.create) {
            *counter += 1;
            let name = slice
                .metadata
                .name
                .clone()
                .unwrap_or_else(|| format!("web-{counter:05}"));
            slice.metadata.name = Some(name.clone());
            slice.metadata.resource_version = Some(counter.to_string());
            by_name.insert(name, slice);
        }
        by_name.into_values().map(Arc::new).collect()
    }

    fn endpoint_count(slices: &[Arc<EndpointSlice>]) -> usize {
        slices.iter().map(|s| endpoints(s).len()).sum()
    }

    #[test]
    fn endpoints_pack_into_slices_of_at_most_the_maximum() {
        let service = svc();
        let selected = pods(250, true);
        let desired = want_with_nodes(&service, &selected);
        let plan = plan(&service, &[], &desired, MAX_ENDPOINTS_PER_SLICE);
        let sizes: Vec<usize> = plan.create.iter().map(|s| endpoints(s).len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert!(plan.update.is_empty() && plan.delete.is_empty());
        for slice in &plan.create {
            assert_eq!(slice.ports.as_ref().map(Vec::len), Some(2));
            assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        }

        let mut counter = 0;
        let slices = apply(&[], plan, &mut counter);
        let again = super::plan(&service, &slices, &desired, MAX_ENDPOINTS_PER_SLICE);
        assert!(
            again.is_empty(),
            "an unchanged service writes nothing: {again:?}"
        );
    }

    #[test]
    fn different_port_resolutions_go_into_different_slices() {
        let service = svc();
        let mut selected = pods(3, true);
        let mut bare = pod("bare", "10.2.0.1", true);
        if let Some(spec) = bare.spec.as_mut() {
            spec.containers[0].ports = None;
        }
        selected.push(Arc::new(bare));
        let plan = plan(&service, &[], &want_with_nodes(&service, &selected), 100);
        let mut shapes: Vec<(usize, usize)> = plan
            .create
            .iter()
            .map(|s| (s.ports.as_ref().map_or(0, Vec::len), endpoints(s).len()))
            .collect();
        shapes.sort();
        assert_eq!(shapes, vec![(1, 1), (2, 3)]);
    }

    #[test]
    fn a_condition_change_updates_one_slice_in_place() {
        let service = svc();
        let mut selected = pods(150, true);
        let desired = want_with_nodes(&service, &selected);
        let mut counter = 0;
        let slices = apply(&[], plan(&service, &[], &desired, 100), &mut counter);
        assert_eq!(slices.len(), 2);

        selected[7] = Arc::new(pod("p0007", "10.1.0.8", false));
        let changed = plan(
            &service,
            &slices,
            &want_with_nodes(&service, &selected),
            100,
        );
        assert!(changed.create.is_empty() && changed.delete.is_empty());
        assert_eq!(changed.update.len(), 1);
        let updated = &changed.update[0];
        assert!(
            updated.metadata.resource_version.is_some(),
            "updates are conditional"
        );
        let p7 = updated
            .endpoints
            .iter()
            .flatten()
            .find(|e| e.addresses == vec!["10.1.0.8".to_string()])
            .and_then(|e| e.conditions.as_ref())
            .and_then(|c| c.ready);
        assert_eq!(p7, Some(false));
    }

    #[test]
    fn removed_endpoints_shrink_slices_and_new_ones_fill_the_best_fit() {
        let service = svc();
        let selected = pods(180, true);
        let mut counter = 0;
        let slices = apply(
            &[],
            plan(&service, &[], &want_with_nodes(&service, &selected), 100),
            &mut counter,
        );
        // 100 + 80; five more fit into the slice of 80 without touching the other.
        let more = pods(185, true);
        let grown = plan(&service, &slices, &want_with_nodes(&service, &more), 100);
        assert!(grown.create.is_empty(), "{grown:?}");
        assert_eq!(grown.update.len(), 1);
        assert_eq!(endpoints(&grown.update[0]).len(), 85);

        // Everything gone: the slices go, replaced by (updated into) one placeholder.
        let empty = plan(&service, &slices, &want_with_nodes(&service, &[]), 100);
        let after = apply(&slices, empty, &mut counter);
        assert_eq!(after.len(), 1);
        assert_eq!(endpoint_count(&after), 0);
        assert_eq!(after[0].ports, None);
        let settled = plan(&service, &after, &want_with_nodes(&service, &[]), 100);
        assert!(settled.is_empty(), "the placeholder stays: {settled:?}");
    }

    #[test]
    fn a_new_service_gets_a_placeholder_and_pods_reuse_it() {
        let service = svc();
        let first = plan(&service, &[], &want(&service, &[]), 100);
        assert_eq!(first.create.len(), 1);
        assert!(endpoints(&first.create[0]).is_empty());
        let mut counter = 0;
        let slices = apply(&[], first, &mut counter);
        let name = slices[0].metadata.name.clone();

        let selected = pods(2, true);
        let filled = plan(
            &service,
            &slices,
            &want_with_nodes(&service, &selected),
            100,
        );
        // The placeholder (other ports) would go and a new slice come: one update.
        assert!(
            filled.create.is_empty() && filled.delete.is_empty(),
            "{filled:?}"
        );
        assert_eq!(filled.update.len(), 1);
        assert_eq!(filled.update[0].metadata.name, name);
        assert_eq!(endpoints(&filled.update[0]).len(), 2);
        assert_eq!(filled.update[0].ports.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn slices_of_an_older_service_or_another_family_go() {
        let service = svc();
        let selected = pods(2, true);
        let mut counter = 0;
        let slices = apply(
            &[],
            plan(&service, &[], &want_with_nodes(&service, &selected), 100),
            &mut counter,
        );
        let mut reborn = service.clone();
        reborn.metadata.uid = Some("new-uid".into());
        let replaced = plan(&reborn, &slices, &want_with_nodes(&reborn, &selected), 100);
        assert_eq!(replaced.delete.len(), 1);
        assert_eq!(replaced.create.len(), 1);
        assert!(replaced.update.is_empty());

        let mut v6 = (*slices[0]).clone();
        v6.address_type = "IPv6".into();
        let mixed = vec![slices[0].clone(), Arc::new(v6)];
        let cleaned = plan(&service, &mixed, &want_with_nodes(&service, &selected), 100);
        assert_eq!(cleaned.delete.len(), 1);
        assert_eq!(cleaned.delete[0].address_type, "IPv6");
        assert!(cleaned.create.is_empty() && cleaned.update.is_empty());
    }

    #[test]
    fn label_changes_update_every_slice() {
        let service = svc();
        let selected = pods(120, true);
        let mut counter = 0;
        let slices = apply(
            &[],
            plan(&service, &[], &want_with_nodes(&service, &selected), 100),
            &mut counter,
        );
        let mut relabelled = service.clone();
        relabelled.metadata.labels = Some([("tier".to_string(), "back".to_string())].into());
        let plan = plan(
            &relabelled,
            &slices,
            &want_with_nodes(&relabelled, &selected),
            100,
        );
        assert_eq!(plan.update.len(), 2);
        assert!(plan.update.iter().all(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("tier"))
                .is_some_and(|t| t == "back")
        }));
    }
}
