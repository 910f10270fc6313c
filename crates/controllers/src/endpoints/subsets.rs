//! Endpoints subsets in canonical form (upstream's `RepackSubsets` and
//! `truncateEndpoints`): one subset per distinct set of addresses, carrying every port
//! those addresses offer, everything sorted, so that equal states compare equal and an
//! unchanged service writes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

/// The most addresses one Endpoints object holds (upstream's `maxCapacity`); beyond,
/// it is truncated and annotated.
pub(crate) const MAX_ADDRESSES: usize = 1000;

/// An address's identity: its IP and the pod it belongs to.
type AddressKey = (String, Option<String>);

/// A port's identity, all of its fields; `None` stands for "no ports" (headless
/// services without ports), which must not drop the addresses.
type PortKey = Option<(Option<String>, i32, Option<String>, Option<String>)>;

fn address_key(address: &EndpointAddress) -> AddressKey {
    (
        address.ip.clone(),
        address.target_ref.as_ref().and_then(|r| r.uid.clone()),
    )
}

fn port_key(port: &EndpointPort) -> PortKey {
    Some((
        port.name.clone().filter(|n| !n.is_empty()),
        port.port,
        port.protocol.clone(),
        port.app_protocol.clone(),
    ))
}

/// Regroups `subsets` canonically: per port, the addresses offering it (ready wins
/// when an address is listed both ways); then per distinct address set, its ports;
/// all sorted.
pub(crate) fn repack(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut addresses: BTreeMap<AddressKey, &EndpointAddress> = BTreeMap::new();
    let mut ports: BTreeMap<PortKey, (Option<&EndpointPort>, BTreeMap<AddressKey, bool>)> =
        BTreeMap::new();
    for subset in subsets {
        let subset_ports: Vec<Option<&EndpointPort>> = match subset.ports.as_deref() {
            Some(list) if !list.is_empty() => list.iter().map(Some).collect(),
            _ => vec![None],
        };
        let listed = [
            (subset.addresses.as_deref().unwrap_or_default(), true),
            (
                subset.not_ready_addresses.as_deref().unwrap_or_default(),
                false,
            ),
        ];
        for port in subset_ports {
            let key = port.and_then(port_key);
            let (_, members) = ports.entry(key).or_insert_with(|| (port, BTreeMap::new()));
            for (list, ready) in listed {
                for address in list {
                    let key = address_key(address);
                    addresses.entry(key.clone()).or_insert(address);
                    let entry = members.entry(key).or_insert(ready);
                    *entry |= ready;
                }
            }
        }
    }

    // Group the ports by the exact set of addresses (with readiness) offering them.
    let mut groups: BTreeMap<Vec<(AddressKey, bool)>, Vec<&EndpointPort>> = BTreeMap::new();
    for (port, members) in ports.values() {
        if members.is_empty() {
            continue;
        }
        let set: Vec<(AddressKey, bool)> = members.iter().map(|(k, r)| (k.clone(), *r)).collect();
        let entry = groups.entry(set).or_default();
        if let Some(port) = port {
            entry.push(port);
        }
    }

    groups
        .into_iter()
        .map(|(set, group_ports)| {
            let pick = |ready: bool| -> Vec<EndpointAddress> {
                set.iter()
                    .filter(|(_, r)| *r == ready)
                    .filter_map(|(key, _)| addresses.get(key).map(|a| (*a).clone()))
                    .collect()
            };
            let mut group_ports: Vec<EndpointPort> = group_ports.into_iter().cloned().collect();
            group_ports.sort_by_key(port_key);
            EndpointSubset {
                addresses: non_empty(pick(true)),
                not_ready_addresses: non_empty(pick(false)),
                ports: non_empty(group_ports),
            }
        })
        .collect()
}

/// Cuts the subsets to [`MAX_ADDRESSES`] addresses as upstream does: not-ready
/// addresses go first; if the ready ones alone are too many, they are cut too, each
/// subset keeping its share (rounded up, the last subsets taking what is left).
/// Subsets left without addresses go. Returns whether anything was cut.
pub(crate) fn truncate(subsets: &mut Vec<EndpointSubset>) -> bool {
    let count = |list: &Option<Vec<EndpointAddress>>| list.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if ready + not_ready <= MAX_ADDRESSES {
        return false;
    }
    let cut_ready = ready > MAX_ADDRESSES;
    let (budget, total) = if cut_ready {
        (MAX_ADDRESSES, ready)
    } else {
        (MAX_ADDRESSES - ready, not_ready)
    };
    let mut left = budget;
    for subset in subsets.iter_mut() {
        let list = if cut_ready {
            subset.not_ready_addresses = None;
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        let here = count(list);
        let share = (here * budget).div_ceil(total.max(1)).min(left);
        if let Some(addresses) = list.as_mut() {
            addresses.truncate(share);
        }
        left -= count(list);
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
    }
    subsets.retain(|s| s.addresses.is_some() || s.not_ready_addresses.is_some());
    true
}

/// The subsets as they compare: empty lists as absent, pods' resourceVersions
/// ignored (upstream's `endpointSubsetsEqualIgnoreResourceVersion`).
pub(crate) fn normalized(subsets: Option<&[EndpointSubset]>) -> Vec<EndpointSubset> {
    let clean = |list: &Option<Vec<EndpointAddress>>| {
        non_empty(
            list.iter()
                .flatten()
                .cloned()
                .map(|mut a| {
                    if let Some(r) = a.target_ref.as_mut() {
                        r.resource_version = None;
                    }
                    a
                })
                .collect(),
        )
    };
    subsets
        .unwrap_or_default()
        .iter()
        .map(|s| EndpointSubset {
            addresses: clean(&s.addresses),
            not_ready_addresses: clean(&s.not_ready_addresses),
            ports: non_empty(s.ports.clone().unwrap_or_default()),
        })
        .collect()
}

fn non_empty<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;

    use super::*;

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            target_ref: Some(ObjectReference {
                uid: Some(format!("uid-{ip}")),
                ..ObjectReference::default()
            }),
            ..EndpointAddress::default()
        }
    }

    fn port(name: &str, number: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            port: number,
            protocol: Some("TCP".into()),
            ..EndpointPort::default()
        }
    }

    fn subset(ready: &[&str], not_ready: &[&str], ports: &[EndpointPort]) -> EndpointSubset {
        EndpointSubset {
            addresses: non_empty(ready.iter().map(|ip| addr(ip)).collect()),
            not_ready_addresses: non_empty(not_ready.iter().map(|ip| addr(ip)).collect()),
            ports: non_empty(ports.to_vec()),
        }
    }

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn addresses_with_the_same_ports_share_one_subset() {
        let http = port("http", 8080);
        let dns = port("dns", 53);
        // One subset per pod and port, as the controller builds them.
        let input = vec![
            subset(&["10.0.0.2"], &[], std::slice::from_ref(&http)),
            subset(&["10.0.0.1"], &[], std::slice::from_ref(&http)),
            subset(&["10.0.0.1"], &[], std::slice::from_ref(&dns)),
            subset(&["10.0.0.2"], &[], std::slice::from_ref(&dns)),
            subset(&[], &["10.0.0.3"], std::slice::from_ref(&http)),
            subset(&[], &["10.0.0.3"], std::slice::from_ref(&dns)),
        ];
        let packed = repack(&input);
        assert_eq!(packed.len(), 1, "{packed:?}");
        assert_eq!(ips(&packed[0].addresses), vec!["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&packed[0].not_ready_addresses), vec!["10.0.0.3"]);
        let names: Vec<_> = packed[0]
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.name.as_deref())
            .collect();
        assert_eq!(names, vec!["dns", "http"]);
    }

    #[test]
    fn different_port_sets_make_different_subsets_and_order_does_not_matter() {
        let http = port("http", 8080);
        let other = port("http", 9000);
        let a = vec![
            subset(&["10.0.0.1"], &[], std::slice::from_ref(&http)),
            subset(&["10.0.0.2"], &[], std::slice::from_ref(&other)),
            subset(&["10.0.0.3"], &[], std::slice::from_ref(&http)),
        ];
        let mut b = a.clone();
        b.reverse();
        let packed = repack(&a);
        assert_eq!(packed, repack(&b), "canonical whatever the input order");
        assert_eq!(packed.len(), 2);
        let by_port: Vec<(i32, Vec<&str>)> = packed
            .iter()
            .map(|s| (s.ports.as_ref().map_or(0, |p| p[0].port), ips(&s.addresses)))
            .collect();
        assert!(by_port.contains(&(8080, vec!["10.0.0.1", "10.0.0.3"])));
        assert!(by_port.contains(&(9000, vec!["10.0.0.2"])));
        assert_eq!(repack(&packed), packed, "repacking is idempotent");
    }

    #[test]
    fn ready_wins_and_portless_addresses_stay() {
        let input = vec![
            subset(&["10.0.0.1"], &[], &[]),
            subset(&[], &["10.0.0.1", "10.0.0.2"], &[]),
        ];
        let packed = repack(&input);
        assert_eq!(packed.len(), 1);
        assert_eq!(ips(&packed[0].addresses), vec!["10.0.0.1"]);
        assert_eq!(ips(&packed[0].not_ready_addresses), vec!["10.0.0.2"]);
        assert_eq!(packed[0].ports, None);
        assert!(repack(&[]).is_empty());
    }

    fn many(prefix: u32, n: u32) -> Vec<String> {
        (0..n)
            .map(|i| format!("10.{prefix}.{}.{}", i / 250, i % 250 + 1))
            .collect()
    }

    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn truncation_cuts_not_ready_first_then_ready_proportionally() {
        let ready = many(1, 900);
        let not_ready = many(2, 300);
        let mut subsets = vec![subset(&refs(&ready), &refs(&not_ready), &[port("p", 1)])];
        assert!(truncate(&mut subsets));
        assert_eq!(ips(&subsets[0].addresses).len(), 900);
        assert_eq!(ips(&subsets[0].not_ready_addresses).len(), 100);

        let a = many(3, 1200);
        let b = many(4, 400);
        let mut subsets = vec![
            subset(&refs(&a), &refs(&many(5, 10)), &[port("p", 1)]),
            subset(&refs(&b), &[], &[port("p", 2)]),
        ];
        assert!(truncate(&mut subsets));
        assert_eq!(ips(&subsets[0].addresses).len(), 750);
        assert_eq!(ips(&subsets[1].addresses).len(), 250);
        assert_eq!(subsets[0].not_ready_addresses, None);

        // Cutting ready addresses drops all not-ready ones, and subsets left empty.
        let mut subsets = vec![
            subset(&refs(&many(6, 1001)), &[], &[port("p", 1)]),
            subset(&[], &["10.7.0.1"], &[port("p", 2)]),
        ];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses).len(), 1000);

        let mut small = vec![subset(&["10.0.0.1"], &["10.0.0.2"], &[])];
        assert!(!truncate(&mut small));
        assert_eq!(ips(&small[0].not_ready_addresses), vec!["10.0.0.2"]);
    }

    #[test]
    fn normalizing_ignores_empty_lists_and_pod_versions() {
        let mut with_rv = subset(&["10.0.0.1"], &[], &[port("p", 1)]);
        if let Some(r) = with_rv
            .addresses
            .as_mut()
            .and_then(|a| a[0].target_ref.as_mut())
        {
            r.resource_version = Some("7".into());
        }
        with_rv.not_ready_addresses = Some(vec![]);
        let plain = subset(&["10.0.0.1"], &[], &[port("p", 1)]);
        assert_eq!(
            normalized(Some(&[with_rv])),
            normalized(Some(std::slice::from_ref(&plain)))
        );
        assert_eq!(normalized(Some(&[])), normalized(None));
    }
}
