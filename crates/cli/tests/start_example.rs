//! The README's first command, after its install and build steps (issue 10's
//! acceptance): `scripts/example.sh` with this build's `mast`, in a network namespace
//! this test creates (no route out). It starts `mast up` (server and agent in one
//! process: SQLite, the kubelet's own containerd, runc, CNI, the nftables proxy, DNS),
//! imports the example images, applies `examples/web.yaml`, waits for the rollout and
//! prints six answers of the `web` Service.
//!
//! Asserted:
//! - the six answers come from the three pods in turn (round-robin: 2 each, the
//!   second three in the order of the first three);
//! - after `example.sh … stop` (SIGINT to `mast up`, as Ctrl-C): no mast or containerd
//!   process and no shim is left, and in the namespace no nftables table, no route of
//!   the cluster or service ranges and no pod bridge;
//! - a second start keeps the cluster's state (the same Deployment, by uid) and the
//!   Service answers again; a second stop is as clean.
//!
//! The time from `mast up` to a Ready node is printed (`timing:` lines, see
//! docs/benchmarks.md), not asserted: speed is for measurements, not tests.

#[allow(dead_code)]
#[path = "../benches/common/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail, ensure};

const NODE_IP: &str = "192.168.77.1";

/// Runs `scripts/example.sh MAST [stop]` with the test's data dir and node flags; its
/// stdout, or an error with both outputs.
fn example(world: &netns::World, stop: bool) -> anyhow::Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/example.sh");
    let resolv = world.dir().join("resolv.conf");
    std::fs::write(&resolv, "# no upstream in the namespace\n")?;
    let flags = format!(
        "--node-ip {NODE_IP} --node-name up-node --cgroup-root {} --resolv-conf {}",
        world.cgroup_root(),
        resolv.display()
    );
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_mast"))
        .env("MAST_DATA_DIR", world.dir())
        .env("MAST_UP_FLAGS", flags);
    if stop {
        command.arg("stop");
    }
    let out = command.output().context("running scripts/example.sh")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "--- example.sh{} ---\n{stdout}",
        if stop { " stop" } else { "" }
    );
    if !out.status.success() {
        let log = std::fs::read_to_string(world.dir().join("mast.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        bail!(
            "example.sh failed ({}): {}\n--- mast.log (last lines, newest first) ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail.join("\n")
        );
    }
    Ok(stdout)
}

/// The pod names of the "  N: NAME" answer lines, in order.
fn answers(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| {
            let (n, name) = l.trim().split_once(": ")?;
            n.parse::<u32>().ok().map(|_| name.trim().to_string())
        })
        .collect()
}

fn check_round_robin(output: &str) -> anyhow::Result<()> {
    let names = answers(output);
    ensure!(names.len() == 6, "six answers expected: {names:?}");
    let mut counts = BTreeMap::new();
    for name in &names {
        ensure!(name.starts_with("web-"), "not a web pod: {name:?}");
        *counts.entry(name.clone()).or_insert(0) += 1;
    }
    ensure!(
        counts.len() == 3 && counts.values().all(|n| *n == 2),
        "three pods, two answers each: {counts:?}"
    );
    ensure!(
        names[..3] == names[3..],
        "the same rotation twice: {names:?}"
    );
    Ok(())
}

/// "  ✓ node up-node Ready (…)   0.50 s" → 0.50.
fn ready_after(world: &netns::World) -> anyhow::Result<f64> {
    let out = std::fs::read_to_string(world.dir().join("up.out"))?;
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("node up-node Ready"))
        .context("no Ready line in mast up's output")?;
    let figure = line
        .split_whitespace()
        .rev()
        .nth(1)
        .context("no time on the Ready line")?;
    Ok(figure.parse()?)
}

/// The uid of the web Deployment, through `mast get -o json`.
fn deployment_uid(world: &netns::World) -> anyhow::Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_mast"))
        .args(["get", "deployment", "web", "-o", "json", "--kubeconfig"])
        .arg(world.dir().join("kubeconfig"))
        .output()?;
    ensure!(
        out.status.success(),
        "mast get: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let object: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    object["metadata"]["uid"]
        .as_str()
        .map(str::to_string)
        .context("no uid")
}

/// What a stopped `mast up` must not leave in the namespace or on the host.
fn leftovers(world: &netns::World) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    let tables = netns::run("nft", &["list", "tables"])?;
    if !tables.trim().is_empty() {
        left.push(format!("nftables tables: {}", tables.trim()));
    }
    for line in netns::run("ip", &["route", "show", "table", "all"])?.lines() {
        if line.contains("10.42.") || line.contains("10.43.") {
            left.push(format!("route: {line}"));
        }
    }
    if netns::run("ip", &["link", "show", cri::cni::BRIDGE]).is_ok() {
        left.push(format!("link {}", cri::cni::BRIDGE));
    }
    let dir = world.dir().as_os_str().as_encoded_bytes().to_vec();
    let socket = world.socket();
    let socket = socket.as_os_str().as_encoded_bytes();
    let processes = netns::processes(|args| {
        args.iter()
            .any(|a| a.windows(dir.len()).any(|w| w == dir.as_slice()) || *a == socket)
    });
    if !processes.is_empty() {
        left.push(format!("processes {processes:?}"));
    }
    if world.containerd_pid().is_some() || !world.shim_pids().is_empty() {
        left.push("containerd or shims".to_string());
    }
    Ok(left)
}

#[test]
fn readme_first_command_serves_the_example_and_stops_clean() -> anyhow::Result<()> {
    let world = netns::World::new("mast-up")?.with_kubelet_dir("kubelet");
    world.enter()?;
    world.add_node_address(NODE_IP)?;
    let result = scenario(&world);
    if result.is_err() {
        // Whatever happened, mast up gets its Ctrl-C before the world goes.
        let _ = example(&world, true);
    }
    let residue = world.residue();
    drop(world);
    let left = residue.check();
    result?;
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

fn scenario(world: &netns::World) -> anyhow::Result<()> {
    let first = example(world, false)?;
    check_round_robin(&first)?;
    eprintln!(
        "timing: mast up to a Ready node {:.2} s",
        ready_after(world)?
    );
    let uid = deployment_uid(world)?;

    example(world, true)?;
    let left = leftovers(world)?;
    ensure!(left.is_empty(), "after the first stop: {left:?}");

    let second = example(world, false)?;
    eprintln!(
        "timing: mast up again (state kept) to a Ready node {:.2} s",
        ready_after(world)?
    );
    ensure!(
        deployment_uid(world)? == uid,
        "the Deployment is not the one created before the restart"
    );
    check_round_robin(&second)?;

    example(world, true)?;
    let left = leftovers(world)?;
    ensure!(left.is_empty(), "after the second stop: {left:?}");
    Ok(())
}

#[test]
fn answers_are_read_from_the_numbered_lines() {
    let out = "six requests…:\n  1: web-a\n  2: web-b\nThe cluster keeps running\n  10: web-c\n";
    assert_eq!(answers(out), ["web-a", "web-b", "web-c"]);
}
