//! The scheduler inside `mast server`, against its API: spreading over equal nodes, a
//! pod that fits nowhere waiting with upstream's reasons until a node fits, and no
//! over-commit when many pods arrive at once. Nodes are plain Node objects (nobody runs
//! their pods).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Backend, Server, unique_name};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

/// How long a test waits for the scheduler to act.
const DEADLINE: Duration = Duration::from_secs(30);

async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("create the namespace");
}

/// A Ready node with `cpu` cores; `labels` and `taints` as given.
async fn create_node(
    client: &kube::Client,
    name: &str,
    cpu: u32,
    labels: serde_json::Value,
    taints: serde_json::Value,
) {
    let mut all_labels = json!({"kubernetes.io/hostname": name});
    if let Some(extra) = labels.as_object() {
        for (k, v) in extra {
            all_labels[k] = v.clone();
        }
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"taints": taints},
        "status": {
            "capacity": {"cpu": cpu.to_string(), "memory": "64Gi", "pods": "110"},
            "allocatable": {"cpu": cpu.to_string(), "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))
    .expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create the node");
}

async fn create_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    cpu: &str,
    spec_extra: serde_json::Value,
) {
    let mut spec = json!({
        "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}],
    });
    if let Some(extra) = spec_extra.as_object() {
        for (k, v) in extra {
            spec[k] = v.clone();
        }
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "spread"}},
        "spec": spec,
    }))
    .expect("pod");
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
}

/// Waits until the scheduler has seen `node` (and so every node created before it: a
/// watch delivers in order): a probe pod pinned to it gets bound; then the probe goes.
/// Without this, pods created right after the nodes could be scheduled while the
/// scheduler's node watch still lags behind its pod watch.
async fn wait_until_scheduler_sees(client: &kube::Client, ns: &str, node: &str) {
    let probe = format!("probe-{node}");
    create_pod(
        client,
        ns,
        &probe,
        "1m",
        json!({"nodeSelector": {"kubernetes.io/hostname": node}}),
    )
    .await;
    wait_for_placement(client, ns, "the probe pod bound", |p| {
        p.get(node).is_some_and(|pods| pods.contains(&probe))
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.delete(&probe, &kube::api::DeleteParams::default().grace_period(0))
        .await
        .expect("delete the probe");
    wait_for_placement(client, ns, "the probe pod gone", |p| {
        p.values().all(|pods| !pods.contains(&probe))
    })
    .await;
}

/// Pods of the namespace by node name ("" for unbound).
async fn placement(client: &kube::Client, ns: &str) -> BTreeMap<String, Vec<String>> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list pods");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in pods.items {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        out.entry(node)
            .or_default()
            .push(pod.metadata.name.unwrap_or_default());
    }
    out
}

/// Waits until `check` holds on the namespace's placement; panics with it at the deadline.
async fn wait_for_placement(
    client: &kube::Client,
    ns: &str,
    what: &str,
    check: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = placement(client, ns).await;
        if check(&now) {
            return now;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; placement: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn bound(placement: &BTreeMap<String, Vec<String>>) -> usize {
    placement
        .iter()
        .filter(|(node, _)| !node.is_empty())
        .map(|(_, pods)| pods.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_spread_evenly_and_a_pod_that_fits_nowhere_waits_for_a_node() {
    let server = Server::start_with_scheduler(Backend::Sqlite);
    let client = server.client().await;
    let ns = unique_name("sched");
    create_namespace(&client, &ns).await;
    let prefix = unique_name("n");
    for i in 0..3 {
        create_node(&client, &format!("{prefix}-{i}"), 4, json!({}), json!([])).await;
    }
    wait_until_scheduler_sees(&client, &ns, &format!("{prefix}-2")).await;
    for i in 0..6 {
        create_pod(&client, &ns, &format!("web-{i}"), "500m", json!({})).await;
    }
    let spread = wait_for_placement(&client, &ns, "6 pods bound", |p| bound(p) == 6).await;
    for i in 0..3 {
        let on = spread.get(&format!("{prefix}-{i}")).map_or(0, Vec::len);
        assert_eq!(on, 2, "two pods per equal node: {spread:?}");
    }

    // Fits nowhere: stays Pending with upstream's reasons.
    create_pod(&client, &ns, "huge", "16", json!({})).await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let message = loop {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=huge,reason=FailedScheduling"))
            .await
            .expect("list events");
        if let Some(message) = list.items.first().and_then(|e| e.message.clone()) {
            break message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no FailedScheduling event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        message.starts_with("0/3 nodes are available: 3 Insufficient cpu."),
        "{message}"
    );
    // The condition is written beside the event, not necessarily before it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let condition = loop {
        let huge = pods.get("huge").await.expect("get the pod");
        let found = huge
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled"));
        if let Some(condition) = found {
            break condition;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no PodScheduled condition"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_deref()),
        ("False", Some("Unschedulable"))
    );

    // explain-scheduling tells the same story, node by node.
    let explained = std::process::Command::new(env!("CARGO_BIN_EXE_mast"))
        .args(["explain-scheduling", "huge", "-n", &ns, "--kubeconfig"])
        .arg(server.kubeconfig_path())
        .output()
        .expect("run mast explain-scheduling");
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(
        explained.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&explained.stderr)
    );
    assert!(text.contains("not bound"), "{text}");
    assert_eq!(
        text.matches("NodeResourcesFit: Insufficient cpu").count(),
        3,
        "each node's verdict: {text}"
    );
    assert!(
        text.contains("No node fits: 0/3 nodes are available: 3 Insufficient cpu."),
        "{text}"
    );

    // A node it still does not fit on: tried again, and the same event counts it (at
    // least twice: other changes may trigger more attempts).
    create_node(&client, &format!("{prefix}-small"), 4, json!({}), json!([])).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=huge,reason=FailedScheduling"))
            .await
            .expect("list events");
        let counted = list.items.len() == 1
            && list.items[0].count.is_some_and(|c| c >= 2)
            && list.items[0].message.as_deref()
                == Some("0/4 nodes are available: 4 Insufficient cpu.");
        if counted {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "one FailedScheduling event, counted again: {:?}",
            list.items
                .iter()
                .map(|e| (e.count, e.message.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A node it fits on appears: it is placed there.
    let big = format!("{prefix}-big");
    create_node(&client, &big, 32, json!({}), json!([])).await;
    wait_for_placement(&client, &ns, "the huge pod on the big node", |p| {
        p.get(&big)
            .is_some_and(|pods| pods.contains(&"huge".to_string()))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_of_one_replicaset_spread_over_equal_nodes() {
    let server = Server::start_with_scheduler(Backend::Sqlite);
    let client = server.client().await;
    let ns = unique_name("sched");
    create_namespace(&client, &ns).await;
    let prefix = unique_name("n");
    for i in 0..3 {
        create_node(&client, &format!("{prefix}-{i}"), 4, json!({}), json!([])).await;
    }
    wait_until_scheduler_sees(&client, &ns, &format!("{prefix}-2")).await;
    // The ReplicaSet's pods, as its controller would make them (no controller runs
    // here): owned by it, and asking for nothing, so only spreading separates nodes.
    let rs: k8s_openapi::api::apps::v1::ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))
    .expect("replicaset");
    let rs = Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &rs)
        .await
        .expect("create the replicaset");
    let owner = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
        "uid": rs.metadata.uid, "controller": true, "blockOwnerDeletion": true,
    }]);
    for i in 0..6 {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("web-{i}"), "namespace": ns,
                         "labels": {"app": "web"}, "ownerReferences": owner},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }))
        .expect("pod");
        Api::<Pod>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &pod)
            .await
            .expect("create a replica");
    }
    let spread = wait_for_placement(&client, &ns, "6 replicas bound", |p| bound(p) == 6).await;
    for i in 0..3 {
        let on = spread.get(&format!("{prefix}-{i}")).map_or(0, Vec::len);
        assert_eq!(on, 2, "two replicas per equal node: {spread:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_affinity_and_taints_are_honoured() {
    let server = Server::start_with_scheduler(Backend::Sqlite);
    let client = server.client().await;
    let ns = unique_name("sched");
    create_namespace(&client, &ns).await;
    let prefix = unique_name("n");
    let plain = format!("{prefix}-plain");
    let ssd = format!("{prefix}-ssd");
    let tainted = format!("{prefix}-tainted");
    create_node(&client, &plain, 8, json!({}), json!([])).await;
    create_node(&client, &ssd, 8, json!({"disk": "ssd"}), json!([])).await;
    create_node(
        &client,
        &tainted,
        8,
        json!({"disk": "ssd"}),
        json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]),
    )
    .await;
    create_pod(
        &client,
        &ns,
        "selector",
        "100m",
        json!({"nodeSelector": {"disk": "ssd"}}),
    )
    .await;
    create_pod(
        &client,
        &ns,
        "affinity",
        "100m",
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]
        }}}}),
    )
    .await;
    create_pod(
        &client,
        &ns,
        "tolerant",
        "100m",
        json!({
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
        }),
    )
    .await;
    let placed = wait_for_placement(&client, &ns, "3 pods bound", |p| bound(p) == 3).await;
    let node_of = |pod: &str| {
        placed
            .iter()
            .find(|(_, pods)| pods.iter().any(|p| p == pod))
            .map(|(node, _)| node.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        node_of("selector"),
        ssd,
        "nodeSelector, and the taint keeps it off the tainted node"
    );
    assert_eq!(node_of("affinity"), plain, "required affinity NotIn ssd");
    assert!(
        node_of("tolerant") == ssd || node_of("tolerant") == tainted,
        "a tolerating pod may use the tainted node: {placed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_over_commit_when_many_pods_arrive_at_once() {
    let server = Server::start_with_scheduler(Backend::Sqlite);
    let client = server.client().await;
    let ns = unique_name("sched");
    create_namespace(&client, &ns).await;
    let prefix = unique_name("n");
    for i in 0..10 {
        create_node(&client, &format!("{prefix}-{i}"), 10, json!({}), json!([])).await;
    }
    wait_until_scheduler_sees(&client, &ns, &format!("{prefix}-9")).await;
    // 200 pods of 1 CPU over 100 CPUs: 100 fit, 100 must stay Pending.
    let creates = (0..200).map(|i| {
        let client = client.clone();
        let ns = ns.clone();
        async move { create_pod(&client, &ns, &format!("p-{i:03}"), "1", json!({})).await }
    });
    futures::future::join_all(creates).await;
    let placed = wait_for_placement(&client, &ns, "100 pods bound", |p| bound(p) == 100).await;
    for (node, pods) in &placed {
        if !node.is_empty() {
            assert!(
                pods.len() <= 10,
                "{node} over-committed with {} pods",
                pods.len()
            );
        }
    }
    // The rest were tried and refused (PodScheduled=False), and none got bound.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let list = pods.list(&ListParams::default()).await.expect("list pods");
        let refused = list
            .items
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c.type_ == "PodScheduled" && c.status == "False")
                    })
            })
            .count();
        if refused == 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{refused} of 100 refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = placement(&client, &ns).await;
    assert_eq!(bound(&after), 100, "{after:?}");
    for (node, pods) in &after {
        if !node.is_empty() {
            assert!(
                pods.len() <= 10,
                "{node} over-committed with {} pods",
                pods.len()
            );
        }
    }
}
