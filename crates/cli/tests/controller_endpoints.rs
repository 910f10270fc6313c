//! The Endpoints, EndpointSlice and node IPAM controllers inside `mast server`.
//! (The last step also relies on the garbage collector removing owned slices.)
//!
//! There is no kubelet: the test binds pods to a Node object it created and sets
//! their status itself through `pods/status` (phase, IP, Ready condition), as a
//! kubelet would. Node heartbeats are not faked, so the node lifecycle controller is
//! given grace periods far longer than the test. Every wait polls live reads against
//! a deadline; the server (and its temp dir) goes when the test ends, however it ends.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Backend, Server, unique_name};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
/// Keeps the node lifecycle controller from marking the heartbeat-less node (and so
/// its pods) unready while the test runs.
const QUIET_NODE_LIFECYCLE: &[&str] = &[
    "--node-monitor-grace-period",
    "1h",
    "--node-startup-grace-period",
    "1h",
];

/// Polls `check` until it returns `Ok`; fails with its last `Err` and the server log.
async fn eventually<T, F, Fut>(server: &Server, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(state) => state,
        };
        if Instant::now() > deadline {
            server.fail(&format!("timed out waiting for {what}; last seen: {last}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the namespace");
}

async fn create_node(client: &kube::Client, name: &str, labels: serde_json::Value) -> Node {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }))
    .expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create the node")
}

/// A pod bound to `node`, labelled app=`app`; `with_http_port` declares the
/// container port named `http` (8080).
async fn create_pod(pods: &Api<Pod>, name: &str, app: &str, node: &str, with_http_port: bool) {
    let ports = if with_http_port {
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    } else {
        json!([])
    };
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "ports": ports}],
        },
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
}

/// Sets the pod's status as its kubelet would: Running with `ip`, Ready or not.
async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        }],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("set the pod's status");
}

/// The Endpoints as (ready IPs, not-ready IPs, per IP the "name:port" it serves).
type EndpointsView = (
    BTreeSet<String>,
    BTreeSet<String>,
    BTreeMap<String, BTreeSet<String>>,
);

fn view_endpoints(endpoints: &Endpoints) -> EndpointsView {
    let (mut ready, mut not_ready, mut ports) = (BTreeSet::new(), BTreeSet::new(), BTreeMap::new());
    for subset in endpoints.subsets.iter().flatten() {
        let served: BTreeSet<String> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| format!("{}:{}", p.name.as_deref().unwrap_or(""), p.port))
            .collect();
        for (list, into) in [
            (&subset.addresses, &mut ready),
            (&subset.not_ready_addresses, &mut not_ready),
        ] {
            for address in list.iter().flatten() {
                into.insert(address.ip.clone());
                ports
                    .entry(address.ip.clone())
                    .or_insert_with(BTreeSet::new)
                    .extend(served.iter().cloned());
            }
        }
    }
    (ready, not_ready, ports)
}

/// Every endpoint of the service's slices: IP -> (ready, serving, terminating, the
/// slice's "name:port"s, zone).
type SlicesView = BTreeMap<String, (bool, bool, bool, BTreeSet<String>, Option<String>)>;

fn view_slices(slices: &[EndpointSlice]) -> SlicesView {
    let mut view = SlicesView::new();
    for slice in slices {
        let ports: BTreeSet<String> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}:{}",
                    p.name.as_deref().unwrap_or(""),
                    p.port.unwrap_or(0)
                )
            })
            .collect();
        for endpoint in slice.endpoints.iter().flatten() {
            let c = endpoint.conditions.clone().unwrap_or_default();
            for ip in &endpoint.addresses {
                view.insert(
                    ip.clone(),
                    (
                        c.ready.unwrap_or(false),
                        c.serving.unwrap_or(false),
                        c.terminating.unwrap_or(false),
                        ports.clone(),
                        endpoint.zone.clone(),
                    ),
                );
            }
        }
    }
    view
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn kubectl(server: &Server, args: &[&str]) -> String {
    let run = server.run_kubectl(args, KUBECTL_TIMEOUT);
    if !run.status.success() {
        server.fail(&format!("kubectl {args:?} failed: {}", run.stderr));
    }
    run.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_the_selected_pods() {
    let server = Server::start_control_plane(Backend::Sqlite, QUIET_NODE_LIFECYCLE);
    let client = server.client().await;
    let ns = unique_name("ep");
    create_namespace(&client, &ns).await;
    let node = unique_name("node");
    create_node(
        &client,
        &node,
        json!({"topology.kubernetes.io/zone": "zone-a"}),
    )
    .await;

    // A service without a selector: its hand-made Endpoints are the user's.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    let manual_service: Service = serde_json::from_value(json!({
        "metadata": {"name": "manual"},
        "spec": {"ports": [{"port": 80}]},
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &manual_service)
        .await
        .expect("create the selector-less service");
    let manual: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "192.168.7.7"}], "ports": [{"port": 80}]}],
    }))
    .expect("endpoints");
    let manual = endpoints
        .create(&PostParams::default(), &manual)
        .await
        .expect("create hand-made endpoints");

    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "web", "port": 80, "targetPort": 8081},
                {"name": "http", "port": 8000, "targetPort": "http"},
            ],
        },
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create the service");

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for (name, ip) in [
        ("p1", "10.42.0.11"),
        ("p2", "10.42.0.12"),
        ("p3", "10.42.0.13"),
    ] {
        create_pod(&pods, name, "web", &node, true).await;
        set_status(&pods, name, ip, true).await;
    }
    // No port named `http`: it serves the numeric target port only.
    create_pod(&pods, "p4", "web", &node, false).await;
    set_status(&pods, "p4", "10.42.0.14", true).await;
    // Another app's pod is never an endpoint of `web`.
    create_pod(&pods, "other", "api", &node, true).await;
    set_status(&pods, "other", "10.42.0.99", true).await;

    let both = set(&["http:8080", "web:8081"]);
    let numeric = set(&["web:8081"]);
    let ep = eventually(
        &server,
        "the Endpoints to list the four ready pods",
        || async {
            let ep = endpoints.get_opt("web").await.map_err(|e| e.to_string())?;
            let ep = ep.ok_or("no Endpoints yet")?;
            let (ready, not_ready, ports) = view_endpoints(&ep);
            let want_ports: BTreeMap<String, BTreeSet<String>> = [
                ("10.42.0.11".to_string(), both.clone()),
                ("10.42.0.12".to_string(), both.clone()),
                ("10.42.0.13".to_string(), both.clone()),
                ("10.42.0.14".to_string(), numeric.clone()),
            ]
            .into();
            if ready == set(&["10.42.0.11", "10.42.0.12", "10.42.0.13", "10.42.0.14"])
                && not_ready.is_empty()
                && ports == want_ports
            {
                Ok(ep)
            } else {
                Err(format!("{ready:?} {not_ready:?} {ports:?}"))
            }
        },
    )
    .await;
    let labels = ep.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("tier").map(String::as_str),
        Some("front"),
        "service labels are copied"
    );
    let address = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .find(|a| a.ip == "10.42.0.11")
        .cloned()
        .expect("p1's address");
    assert_eq!(address.node_name.as_deref(), Some(node.as_str()));
    let target = address.target_ref.expect("a targetRef");
    assert_eq!(
        (target.kind.as_deref(), target.name.as_deref()),
        (Some("Pod"), Some("p1"))
    );
    assert!(target.uid.is_some());

    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let by_service = ListParams::default().labels("kubernetes.io/service-name=web");
    let slices_of_web = || async {
        slices
            .list(&by_service)
            .await
            .map(|l| l.items)
            .map_err(|e| e.to_string())
    };
    let ready_slice =
        |ports: &BTreeSet<String>| (true, true, false, ports.clone(), Some("zone-a".to_string()));
    let listed = eventually(
        &server,
        "the slices to list the four ready pods",
        || async {
            let listed = slices_of_web().await?;
            let view = view_slices(&listed);
            let want: SlicesView = [
                ("10.42.0.11".to_string(), ready_slice(&both)),
                ("10.42.0.12".to_string(), ready_slice(&both)),
                ("10.42.0.13".to_string(), ready_slice(&both)),
                ("10.42.0.14".to_string(), ready_slice(&numeric)),
            ]
            .into();
            if view == want {
                Ok(listed)
            } else {
                Err(format!("{view:?}"))
            }
        },
    )
    .await;
    // One slice per port resolution, each owned by the service and named after it.
    assert_eq!(listed.len(), 2, "{listed:?}");
    let service_uid = services.get("web").await.expect("the service").metadata.uid;
    for slice in &listed {
        assert_eq!(slice.address_type, "IPv4");
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        assert!(name.starts_with("web-"), "{name}");
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("endpointslice-controller.k8s.io")
        );
        let owner = slice
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "Service")
            .expect("an owner reference to the service");
        assert_eq!(Some(&owner.uid), service_uid.as_ref());
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
    }

    let shown = kubectl(&server, &["get", "endpoints", "web", "-n", &ns]);
    assert!(
        shown.contains("10.42.0.11:"),
        "kubectl shows the addresses:\n{shown}"
    );

    // p2 turns not ready.
    set_status(&pods, "p2", "10.42.0.12", false).await;
    eventually(&server, "p2 to move to notReadyAddresses", || async {
        let ep = endpoints.get("web").await.map_err(|e| e.to_string())?;
        let (ready, not_ready, _) = view_endpoints(&ep);
        if ready == set(&["10.42.0.11", "10.42.0.13", "10.42.0.14"])
            && not_ready == set(&["10.42.0.12"])
        {
            Ok(())
        } else {
            Err(format!("{ready:?} {not_ready:?}"))
        }
    })
    .await;
    eventually(
        &server,
        "p2's slice endpoint to be neither ready nor serving",
        || async {
            let view = view_slices(&slices_of_web().await?);
            match view.get("10.42.0.12") {
                Some((false, false, false, ..)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // p3 is deleted: bound to a node, it terminates first (no kubelet finishes it).
    pods.delete("p3", &DeleteParams::default())
        .await
        .expect("delete p3");
    eventually(&server, "terminating p3 to leave the Endpoints", || async {
        let ep = endpoints.get("web").await.map_err(|e| e.to_string())?;
        let (ready, not_ready, _) = view_endpoints(&ep);
        if ready == set(&["10.42.0.11", "10.42.0.14"]) && not_ready == set(&["10.42.0.12"]) {
            Ok(())
        } else {
            Err(format!("{ready:?} {not_ready:?}"))
        }
    })
    .await;
    eventually(
        &server,
        "terminating p3 to stay in its slice as serving but not ready",
        || async {
            let view = view_slices(&slices_of_web().await?);
            match view.get("10.42.0.13") {
                Some((false, true, true, ..)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    pods.delete(
        "p3",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("finish deleting p3");
    eventually(&server, "p3 to leave the slices", || async {
        let view = view_slices(&slices_of_web().await?);
        let ips: BTreeSet<String> = view.keys().cloned().collect();
        if ips == set(&["10.42.0.11", "10.42.0.12", "10.42.0.14"]) {
            Ok(())
        } else {
            Err(format!("{ips:?}"))
        }
    })
    .await;

    // Endpoints deleted by hand come back.
    endpoints
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete the Endpoints");
    eventually(&server, "the Endpoints to be recreated", || async {
        let ep = endpoints.get_opt("web").await.map_err(|e| e.to_string())?;
        let (ready, not_ready, _) = view_endpoints(&ep.ok_or("not yet")?);
        if ready == set(&["10.42.0.11", "10.42.0.14"]) && not_ready == set(&["10.42.0.12"]) {
            Ok(())
        } else {
            Err(format!("{ready:?} {not_ready:?}"))
        }
    })
    .await;

    // The hand-made Endpoints of the selector-less service were never touched.
    let manual_now = endpoints
        .get("manual")
        .await
        .expect("the hand-made endpoints");
    assert_eq!(
        manual_now.metadata.resource_version,
        manual.metadata.resource_version
    );

    // The service goes: so do its Endpoints.
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete the service");
    eventually(&server, "the Endpoints to go with the service", || async {
        match endpoints.get_opt("web").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(ep) => Err(format!("still there: {:?}", view_endpoints(&ep))),
        }
    })
    .await;
    // Its slices go through their ownerReference (the garbage collector's work).
    eventually(&server, "the slices to go with the service", || async {
        let left = slices_of_web().await?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{} left", left.len()))
        }
    })
    .await;
}

fn pod_cidr(node: &Node) -> Option<String> {
    node.spec.as_ref().and_then(|s| s.pod_cidr.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ipam_gives_every_node_its_own_cidr() {
    let server = Server::start_control_plane(Backend::Sqlite, QUIET_NODE_LIFECYCLE);
    let client = server.client().await;
    let nodes: Api<Node> = Api::all(client.clone());

    // A node registered with a CIDR already keeps it, and nobody else gets it.
    let preset = unique_name("preset");
    let mut node: Node = serde_json::from_value(json!({
        "metadata": {"name": preset},
        "spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]},
    }))
    .expect("node");
    node = nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create the preset node");
    assert_eq!(pod_cidr(&node).as_deref(), Some("10.42.1.0/24"));

    let names: Vec<String> = (0..3).map(|_| unique_name("n")).collect();
    for name in &names {
        create_node(&client, name, json!({})).await;
    }
    let cidrs_of = |wanted: Vec<String>| {
        let nodes = nodes.clone();
        async move {
            let mut cidrs = BTreeMap::new();
            for name in &wanted {
                let node = nodes.get(name).await.map_err(|e| e.to_string())?;
                let cidr = pod_cidr(&node).ok_or(format!("{name} has no podCIDR yet"))?;
                let listed = node.spec.and_then(|s| s.pod_cidrs).unwrap_or_default();
                if listed != vec![cidr.clone()] {
                    return Err(format!(
                        "{name}: podCIDRs {listed:?} disagree with podCIDR {cidr}"
                    ));
                }
                cidrs.insert(name.clone(), cidr);
            }
            Ok(cidrs)
        }
    };
    let first = eventually(&server, "the three nodes to get podCIDRs", || {
        cidrs_of(names.clone())
    })
    .await;
    assert_distinct_node_cidrs(&first, "10.42.1.0/24");

    // One goes, another comes: still no two nodes share a CIDR.
    nodes
        .delete(&names[0], &DeleteParams::default())
        .await
        .expect("delete a node");
    let newcomer = unique_name("n");
    create_node(&client, &newcomer, json!({})).await;
    let now = vec![names[1].clone(), names[2].clone(), newcomer.clone()];
    let second = eventually(&server, "the new node to get a podCIDR", || {
        cidrs_of(now.clone())
    })
    .await;
    assert_distinct_node_cidrs(&second, "10.42.1.0/24");
    assert_eq!(second[&names[1]], first[&names[1]], "CIDRs never move");
    assert_eq!(second[&names[2]], first[&names[2]]);
}

/// Distinct /24s of 10.42.0.0/16, none of them `taken`.
fn assert_distinct_node_cidrs(cidrs: &BTreeMap<String, String>, taken: &str) {
    let values: BTreeSet<&String> = cidrs.values().collect();
    assert_eq!(values.len(), cidrs.len(), "duplicate podCIDRs: {cidrs:?}");
    for cidr in values {
        assert!(
            cidr.starts_with("10.42.") && cidr.ends_with(".0/24"),
            "{cidr}"
        );
        assert_ne!(cidr, taken, "{cidrs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_range_is_reported_and_a_freed_cidr_is_handed_out_again() {
    let mut args = QUIET_NODE_LIFECYCLE.to_vec();
    // Room for two nodes only.
    args.extend([
        "--cluster-cidr",
        "10.99.0.0/30",
        "--node-cidr-mask-size",
        "31",
    ]);
    let server = Server::start_control_plane(Backend::Sqlite, &args);
    let client = server.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let names: Vec<String> = (0..3).map(|_| unique_name("full")).collect();
    for name in &names[..2] {
        create_node(&client, name, json!({})).await;
    }
    let have_cidrs = |wanted: Vec<String>| {
        let nodes = nodes.clone();
        async move {
            let mut cidrs = BTreeSet::new();
            for name in &wanted {
                let node = nodes.get(name).await.map_err(|e| e.to_string())?;
                cidrs.insert(pod_cidr(&node).ok_or(format!("{name} has none yet"))?);
            }
            Ok(cidrs)
        }
    };
    let first_two = eventually(&server, "two nodes to get CIDRs", || {
        have_cidrs(names[..2].to_vec())
    })
    .await;
    assert_eq!(first_two, set(&["10.99.0.0/31", "10.99.0.2/31"]));

    create_node(&client, &names[2], json!({})).await;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let about_third = ListParams::default().fields(&format!("involvedObject.name={}", names[2]));
    eventually(
        &server,
        "a CIDRNotAvailable event on the third node",
        || async {
            let listed = events.list(&about_third).await.map_err(|e| e.to_string())?;
            let reasons: Vec<String> = listed
                .items
                .iter()
                .filter_map(|e| e.reason.clone())
                .collect();
            if reasons.iter().any(|r| r == "CIDRNotAvailable") {
                Ok(())
            } else {
                Err(format!("{reasons:?}"))
            }
        },
    )
    .await;
    let third = nodes.get(&names[2]).await.expect("the third node");
    assert_eq!(pod_cidr(&third), None, "no CIDR when the range is full");

    // A node goes: the waiting one gets its CIDR without waiting for a retry.
    let freed = pod_cidr(&nodes.get(&names[0]).await.expect("the first node"));
    nodes
        .delete(&names[0], &DeleteParams::default())
        .await
        .expect("delete the first node");
    let now = eventually(&server, "the third node to get the freed CIDR", || {
        have_cidrs(names[1..].to_vec())
    })
    .await;
    assert_eq!(now, set(&["10.99.0.0/31", "10.99.0.2/31"]));
    let third = nodes.get(&names[2]).await.expect("the third node");
    assert_eq!(pod_cidr(&third), freed);
}
