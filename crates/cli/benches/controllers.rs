//! Controller-manager benchmark: a `mast server` (API server and scheduler, controllers
//! off), a separate `mast controller-manager`, and a `mast kubelet --runtime fake
//! --hollow-nodes 100` (kubemark-style nodes: pods go Running and Ready at once, no
//! processes), so that the controller-manager's memory can be read alone.
//!
//! ```text
//! cargo bench -p mast --bench controllers            # 100 nodes, 1000 replicas
//! cargo bench -p mast --bench controllers -- --quick # 20 nodes, 100 replicas
//! ```
//!
//! Measured, from the client's side (polling the Deployment's status every 20 ms):
//! 1. creation: from the create call to `availableReplicas == replicas` with every
//!    counter settled (observedGeneration, updated, ready, available);
//! 2. rolling update (default strategy: 25% surge, 25% unavailable): from the image
//!    change to the same settled state on the new template, no old pods left;
//! 3. the controller-manager's VmRSS (and peak) after the run, and CPU seconds used.
//!
//! Prints a Markdown table (paste it into docs/benchmarks.md).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{POLL_INTERVAL, Process, START_TIMEOUT, client, cpu_seconds, mib, start_server};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// Longest a phase may take before the run is declared stuck.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

struct Scenario {
    nodes: usize,
    replicas: i32,
}

#[tokio::main]
async fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let scenario = if quick {
        Scenario {
            nodes: 20,
            replicas: 100,
        }
    } else {
        Scenario {
            nodes: 100,
            replicas: 1000,
        }
    };
    let dir = tempfile::Builder::new()
        .prefix("mast-bench-controllers-")
        .tempdir()
        .context("creating a temp dir")?;
    let mut server =
        start_server(dir.path(), &["--disable-controller-manager".to_string()]).await?;
    let mut controllers = Process::spawn(
        "mast controller-manager",
        Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig),
        dir.path().join("controller-manager.log"),
    )?;
    let mut kubelet = Process::spawn(
        "mast kubelet",
        Command::new(env!("CARGO_BIN_EXE_mast"))
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .args(["--node-name", "hollow", "--runtime", "fake", "--port", "0"])
            .args(["--hollow-nodes", &scenario.nodes.to_string()])
            .arg("--data-dir")
            .arg(dir.path().join("kubelet")),
        dir.path().join("kubelet.log"),
    )?;
    let client = client(&server.kubeconfig).await?;

    // Every hollow node Ready with a podCIDR (which the controller-manager assigns).
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let list = nodes.list(&ListParams::default()).await?.items;
        let ready = list
            .iter()
            .filter(|n| n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some())
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready == scenario.nodes {
            break;
        }
        server.process.check_alive(deadline, "the hollow nodes")?;
        controllers.check_alive(deadline, "the hollow nodes")?;
        kubelet.check_alive(deadline, "the hollow nodes")?;
        tokio::time::sleep(POLL_INTERVAL).await;
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": scenario.replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "web", "image": "busybox:1"}]},
            },
        },
    }))?;
    let cpu_before = cpu_seconds(&controllers.pid())?;
    let start = Instant::now();
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    wait_settled(&deployments, scenario.replicas, &mut controllers).await?;
    let created = start.elapsed();

    let start = Instant::now();
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:2"}]}}}});
    deployments
        .patch("bench", &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    wait_settled(&deployments, scenario.replicas, &mut controllers).await?;
    let rolled = start.elapsed();
    let cpu = cpu_seconds(&controllers.pid())? - cpu_before;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory = controllers.memory()?;
    let complaints = controllers.complaints();
    println!(
        "\nmast controller-manager ({} build) with {} hollow nodes (mast kubelet --runtime fake), SQLite, {} cores\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        scenario.nodes,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| {}-replica Deployment: create → all available | {:.2} s |",
        scenario.replicas,
        created.as_secs_f64()
    );
    println!(
        "| rolling update (25% surge / 25% unavailable) → all available | {:.2} s |",
        rolled.as_secs_f64()
    );
    println!("| controller-manager CPU over both phases | {cpu:.2} s |");
    println!(
        "| controller-manager RSS after the run (peak) | {} ({}) |",
        mib(memory.rss),
        mib(memory.peak)
    );
    if !complaints.is_empty() {
        println!(
            "\ncontroller-manager warnings ({}), first: {}",
            complaints.len(),
            complaints[0]
        );
    }
    Ok(())
}

/// Waits until the Deployment's status shows every replica updated and available on
/// the current generation, and no old replicas left.
async fn wait_settled(
    deployments: &Api<Deployment>,
    replicas: i32,
    controllers: &mut Process,
) -> Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let d = deployments.get("bench").await?;
        let status = d.status.clone().unwrap_or_default();
        let settled = status.observed_generation >= d.metadata.generation
            && status.replicas == Some(replicas)
            && status.updated_replicas == Some(replicas)
            && status.ready_replicas == Some(replicas)
            && status.available_replicas == Some(replicas);
        if settled {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the deployment did not settle in {PHASE_TIMEOUT:?}: {status:?}");
        }
        controllers.check_alive(deadline, "the deployment")?;
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
