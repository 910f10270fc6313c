use std::sync::Arc;

use super::*;
use crate::registry::{Registry, SchedulerConfiguration};
use crate::testing::{NodeBuilder, PodBuilder, container};

fn default_framework() -> Framework {
    SchedulerConfiguration::default()
        .build(&Registry::default())
        .expect("default profile")
        .remove(0)
}

fn snapshot(nodes: Vec<NodeInfo>) -> Vec<Arc<NodeInfo>> {
    nodes.into_iter().map(Arc::new).collect()
}

#[test]
fn feasible_nodes_formula() {
    let cases = [
        (0, 0, 0),
        (0, 10, 10),
        (0, 99, 99),
        (0, 100, 100),
        (0, 1000, 420), // 50 - 8 = 42%
        (0, 5000, 500), // 50 - 40 = 10%
        (0, 6000, 300), // 50 - 48 = 2%, floored at 5%
        (0, 200, 100),  // 49% of 200 = 98, raised to the minimum of 100
        (30, 1000, 300),
        (1, 1000, 100), // below the minimum of 100 nodes
        (100, 5000, 5000),
        (0, 10000, 500), // 5%
    ];
    for (percentage, nodes, want) in cases {
        assert_eq!(
            num_feasible_nodes_to_find(percentage, nodes),
            want,
            "{percentage}% of {nodes}"
        );
    }
}

#[test]
fn no_fit_message_counts_and_sorts_reasons() {
    let pod = PodBuilder::new("big")
        .container(container("2", "1Gi"))
        .info();
    let nodes = snapshot(vec![
        NodeBuilder::new("small-1").capacity("1", "8Gi", 110).info(),
        NodeBuilder::new("small-2").capacity("1", "8Gi", 110).info(),
        NodeBuilder::new("tainted")
            .capacity("8", "8Gi", 110)
            .taint("dedicated", "infra", "NoSchedule")
            .info(),
    ]);
    let decision = default_framework()
        .schedule(&pod, &nodes, &mut SchedulerState::new(1))
        .expect("cycle runs");
    assert_eq!(decision.selected, None);
    assert_eq!(decision.verdicts.len(), 3);
    assert_eq!(decision.verdicts[0].status.plugin, "NodeResourcesFit");
    assert_eq!(decision.verdicts[2].status.plugin, "TaintToleration");
    assert_eq!(
        decision.failure_message().as_deref(),
        Some(
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: infra}, 2 Insufficient cpu."
        )
    );
}

#[test]
fn every_reason_of_a_node_is_counted() {
    let statuses = [
        Status::new(
            Code::Unschedulable,
            ["Insufficient cpu", "Insufficient memory"],
        ),
        Status::new(Code::Unschedulable, ["Insufficient cpu"]),
        Status::success(),
    ];
    assert_eq!(
        fit_error_message(3, &statuses),
        "0/3 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."
    );
    assert_eq!(fit_error_message(0, &[]), "0/0 nodes are available:");
}

#[test]
fn picks_the_best_scored_node() {
    let pod = PodBuilder::new("p").container(container("1", "1Gi")).info();
    let busy = PodBuilder::new("busy")
        .uid("b")
        .container(container("3", "6Gi"))
        .build();
    let nodes = snapshot(vec![
        NodeBuilder::new("busy")
            .capacity("4", "8Gi", 110)
            .info_with(vec![busy]),
        NodeBuilder::new("idle").capacity("4", "8Gi", 110).info(),
        NodeBuilder::new("cordoned")
            .capacity("16", "64Gi", 110)
            .unschedulable()
            .info(),
    ]);
    let decision = default_framework()
        .schedule(&pod, &nodes, &mut SchedulerState::new(7))
        .expect("cycle runs");
    assert_eq!(decision.selected.as_deref(), Some("idle"));
    assert_eq!(decision.feasible(), 2);
    assert_eq!(decision.scores.len(), 2);
    let idle = decision
        .scores
        .iter()
        .find(|s| s.node == "idle")
        .expect("idle scored");
    let busy = decision
        .scores
        .iter()
        .find(|s| s.node == "busy")
        .expect("busy scored");
    assert!(idle.total > busy.total, "{idle:?} vs {busy:?}");
    assert_eq!(idle.plugins.len(), 5);
    let sum: i64 = idle.plugins.iter().map(|p| p.normalized * p.weight).sum();
    assert_eq!(sum, idle.total);
    assert_eq!(decision.failure_message(), None);
}

#[test]
fn single_feasible_node_is_not_scored() {
    let pod = PodBuilder::new("p").node_name("b").info();
    let nodes = snapshot(vec![
        NodeBuilder::new("a").capacity("1", "1Gi", 110).info(),
        NodeBuilder::new("b").capacity("1", "1Gi", 110).info(),
    ]);
    let d = default_framework()
        .schedule(&pod, &nodes, &mut SchedulerState::new(0))
        .expect("cycle runs");
    assert_eq!(d.selected.as_deref(), Some("b"));
    assert!(d.scores.is_empty());
}

#[test]
fn ties_are_broken_among_all_equal_nodes() {
    let pod = PodBuilder::new("p")
        .container(container("100m", "1Mi"))
        .info();
    let nodes = snapshot(
        (0..4)
            .map(|i| {
                NodeBuilder::new(&format!("n{i}"))
                    .capacity("4", "8Gi", 110)
                    .info()
            })
            .collect(),
    );
    let fw = default_framework();
    let mut state = SchedulerState::new(42);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let d = fw.schedule(&pod, &nodes, &mut state).expect("cycle runs");
        seen.insert(d.selected.expect("a node"));
    }
    assert_eq!(
        seen.len(),
        4,
        "every equal node gets picked sometimes: {seen:?}"
    );
}

#[test]
fn no_nodes_is_an_error() {
    let pod = PodBuilder::new("p").info();
    assert_eq!(
        default_framework().schedule(&pod, &[], &mut SchedulerState::new(0)),
        Err(ScheduleError::NoNodes)
    );
}

#[test]
fn large_clusters_are_sampled_and_the_start_rotates() {
    let pod = PodBuilder::new("p")
        .container(container("100m", "1Mi"))
        .info();
    let nodes = snapshot(
        (0..1000)
            .map(|i| {
                NodeBuilder::new(&format!("n{i}"))
                    .capacity("4", "8Gi", 110)
                    .info()
            })
            .collect(),
    );
    let fw = default_framework();
    let mut state = SchedulerState::new(3);
    let d = fw.schedule(&pod, &nodes, &mut state).expect("cycle runs");
    assert_eq!(d.verdicts.len(), 420);
    assert_eq!(d.scores.len(), 420);
    assert_eq!(state.next_start_node_index, 420);
    let d = fw.schedule(&pod, &nodes, &mut state).expect("cycle runs");
    assert_eq!(d.verdicts[0].node, "n420");
    assert_eq!(state.next_start_node_index, 840);
}

#[test]
fn owner_siblings_spread_over_equal_nodes() {
    let fw = default_framework();
    let mut state = SchedulerState::new(9);
    let mut infos: Vec<NodeInfo> = (0..3)
        .map(|i| {
            NodeBuilder::new(&format!("n{i}"))
                .capacity("4", "8Gi", 110)
                .info()
        })
        .collect();
    for i in 0..6 {
        let pod = PodBuilder::new(&format!("web-{i}"))
            .uid(&format!("u{i}"))
            .owner("ReplicaSet", "rs")
            .container(container("100m", "100Mi"))
            .info();
        let nodes = snapshot(infos.clone());
        let chosen = fw
            .schedule(&pod, &nodes, &mut state)
            .expect("cycle runs")
            .selected
            .expect("fits");
        let node = infos
            .iter_mut()
            .find(|n| n.name() == chosen)
            .expect("chosen node exists");
        node.add_pod(Arc::new(pod));
    }
    for n in &infos {
        assert_eq!(n.pods().len(), 2, "{}", n.name());
    }
}
