//! `mast explain-scheduling POD`: why a pod is (or would be) placed where it is. It
//! reads the cluster's nodes and bound pods, runs the scheduler's framework on them for
//! the pod (as if it were not bound yet), and prints each node's filter verdict with
//! its reason, each plugin's score per feasible node, and the winner. The framework is
//! pure, so this is the scheduler's own reasoning, not an imitation of it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use scheduler::framework::cache::Cache;
use scheduler::framework::queue::pod_key;
use scheduler::framework::{Code, Decision, PodInfo, SchedulerState};

/// Flags of `mast explain-scheduling`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// The kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The scheduler configuration to explain with (default: upstream's plugins).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub async fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => path.clone(),
        None => crate::clients::default_kubeconfig()?,
    };
    let client = crate::clients::from_kubeconfig(&kubeconfig, &[])?;
    let framework = crate::scheduler::framework(args.config.as_deref())?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let pod = pods
        .get_opt(&args.pod)
        .await?
        .with_context(|| format!("pod {}/{} not found", args.namespace, args.pod))?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing nodes")?;
    let all_pods = Api::<Pod>::all(client)
        .list(&ListParams::default())
        .await
        .context("listing pods")?;

    let key = pod_key(&pod);
    let mut cache = Cache::default();
    for node in nodes.items {
        cache.add_node(node);
    }
    for other in all_pods.items.into_iter().filter(|p| pod_key(p) != key) {
        cache.add_pod(other);
    }
    let bound_to = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let mut unbound = pod.clone();
    if let Some(spec) = unbound.spec.as_mut() {
        spec.node_name = None;
    }
    let info = PodInfo::new(unbound);
    let decision = framework
        .schedule(&info, &cache.snapshot(), &mut SchedulerState::new(1))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print!(
        "{}",
        render(&args.namespace, &args.pod, bound_to.as_deref(), &decision)
    );
    Ok(())
}

/// The explanation as text.
fn render(namespace: &str, name: &str, bound_to: Option<&str>, decision: &Decision) -> String {
    let mut out = format!("Pod {namespace}/{name}: ");
    match bound_to {
        Some(node) => out.push_str(&format!("bound to {node}\n")),
        None => out.push_str("not bound\n"),
    }
    out.push_str(&format!(
        "\nFilters ({} of {} nodes examined):\n",
        decision.verdicts.len(),
        decision.num_all_nodes
    ));
    let width = decision
        .verdicts
        .iter()
        .map(|v| v.node.len())
        .max()
        .unwrap_or(4)
        .max(4);
    for verdict in &decision.verdicts {
        let status = &verdict.status;
        let line = match status.code {
            Code::Success => "fits".to_string(),
            _ => format!("{}: {}", status.plugin, status.reasons.join(", ")),
        };
        out.push_str(&format!("  {:width$}  {line}\n", verdict.node));
    }
    if !decision.scores.is_empty() {
        out.push_str("\nScores (plugin normalized×weight):\n");
        for node in &decision.scores {
            let parts: Vec<String> = node
                .plugins
                .iter()
                .map(|p| format!("{} {}×{}", p.plugin, p.normalized, p.weight))
                .collect();
            out.push_str(&format!(
                "  {:width$}  total {:>4}  {}\n",
                node.node,
                node.total,
                parts.join(", ")
            ));
        }
    }
    match (&decision.selected, decision.failure_message()) {
        (Some(node), _) => out.push_str(&format!("\nWinner: {node}\n")),
        (None, Some(message)) => out.push_str(&format!("\nNo node fits: {message}\n")),
        (None, None) => out.push_str("\nNo node fits.\n"),
    }
    out
}
