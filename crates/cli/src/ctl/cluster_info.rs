//! `mast cluster-info`: the cluster at a glance. The masters come from the API
//! servers' identity Leases (`kube-system`, `apiserver.kubernetes.io/identity`): each
//! renews its own, so one whose Lease expired is shown as gone. The leaders come from
//! the scheduler's and controller-manager's election Leases, the nodes from the Node
//! objects, the store's backend and health from the server's `/readyz?verbose`.

use std::time::Duration;

use clap::Args;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};

use super::describe::tabwriter::align;
use super::{Connection, Session};
use apiserver::identity;

/// The election Leases of the components that run one leader at a time.
const LEADER_LEASES: &[&str] = &["kube-scheduler", "kube-controller-manager"];

/// Flags of `mast cluster-info`.
#[derive(Debug, Args)]
pub struct ClusterInfoArgs {
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(args: ClusterInfoArgs) -> anyhow::Result<()> {
    match report(&args).await {
        Ok((text, complete)) => {
            print!("{text}");
            if !complete {
                super::exit_reported();
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("{}", super::error_line(&e));
            super::exit_reported()
        }
    }
}

/// How long each section may take: an API server without its store answers slowly.
const SECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A section's text, or the error that replaced it.
async fn section<F>(fetch: F) -> Result<String, String>
where
    F: std::future::Future<Output = anyhow::Result<String>>,
{
    match tokio::time::timeout(SECTION_TIMEOUT, fetch).await {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(super::error_line(&e)),
        Err(_) => Err(format!(
            "error: no answer within {}s",
            SECTION_TIMEOUT.as_secs()
        )),
    }
}

/// The whole report, and whether every section could be read.
async fn report(args: &ClusterInfoArgs) -> anyhow::Result<(String, bool)> {
    let session = Session::connect(&args.connection)?;
    let client = &session.client;
    let path = match &args.connection.kubeconfig {
        Some(path) => path.clone(),
        None => crate::clients::default_kubeconfig()?,
    };
    let servers = kubeclient::ClientConfig::from_kubeconfig(&path)
        .map(|c| {
            c.servers()
                .iter()
                .map(|s| s.to_string().trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let system: Api<Lease> = Api::namespaced(client.clone(), identity::NAMESPACE);
    // Every section at once, each bounded, so one slow answer delays none of the others.
    let (masters, leaders, nodes, versions, store) = tokio::join!(
        section(masters_section(&system)),
        section(leaders_section(&system)),
        section(nodes_section(client)),
        section(versions_section(client)),
        section(store_section(client)),
    );
    let mut text = format!(
        "Kubernetes control plane is running at {}\n",
        servers.join(", ")
    );
    let mut complete = true;
    for (title, body) in [
        ("Masters", masters),
        ("Leaders", leaders),
        ("Nodes", nodes),
        ("Versions", versions),
        ("Store", store),
    ] {
        text.push_str(&format!("\n{title}:\n"));
        match body {
            Ok(body) => text.push_str(&body),
            Err(line) => {
                complete = false;
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    Ok((text, complete))
}

async fn masters_section(system: &Api<Lease>) -> anyhow::Result<String> {
    let selector = format!("{}={}", identity::IDENTITY_LABEL, identity::IDENTITY_VALUE);
    let masters = system
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    Ok(masters_table(&masters, Timestamp::now()))
}

async fn leaders_section(system: &Api<Lease>) -> anyhow::Result<String> {
    let mut table = String::from("COMPONENT\tHOLDER\tRENEWED\tTRANSITIONS\n");
    for name in LEADER_LEASES {
        let row = match system.get_opt(name).await? {
            Some(lease) => leader_row(name, &lease, Timestamp::now()),
            None => format!("{name}\t<none>\t<unknown>\t0\n"),
        };
        table.push_str(&row);
    }
    Ok(align(&table, 3))
}

async fn nodes_section(client: &kube::Client) -> anyhow::Result<String> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    Ok(nodes_table(&nodes))
}

async fn versions_section(client: &kube::Client) -> anyhow::Result<String> {
    let server: serde_json::Value = super::get_json(client, "/version").await?;
    Ok(format!(
        "Client Version: {}\nServer Version: {}\n",
        apiserver::discovery::version()["gitVersion"]
            .as_str()
            .unwrap_or(""),
        server["gitVersion"].as_str().unwrap_or("")
    ))
}

async fn store_section(client: &kube::Client) -> anyhow::Result<String> {
    let (backend, health) = store_health(client).await;
    Ok(align(
        &format!("Backend:\t{backend}\nHealth:\t{health}\n"),
        1,
    ))
}

/// How long ago `time` was, in kubectl's age format.
fn since(time: Option<&MicroTime>, now: Timestamp) -> String {
    match time {
        Some(t) => api::tables::format::human_duration(now.duration_since(t.0).as_nanos()),
        None => "<unknown>".to_string(),
    }
}

/// Whether a Lease's holder let it lapse: not renewed within its duration.
fn expired(lease: &Lease, now: Timestamp) -> bool {
    let spec = lease.spec.clone().unwrap_or_default();
    let Some(renewed) = spec.renew_time else {
        return true;
    };
    let duration = i128::from(spec.lease_duration_seconds.unwrap_or(0)) * 1_000_000_000;
    now.duration_since(renewed.0).as_nanos() > duration
}

/// One row per API server: its address, version, store, last renewal, and whether
/// it is alive.
fn masters_table(masters: &[Lease], now: Timestamp) -> String {
    let mut table = String::from("NAME\tADDRESS\tVERSION\tSTORE\tRENEWED\tSTATUS\n");
    for lease in masters {
        let annotation = |key: &str| {
            lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .cloned()
                .unwrap_or_else(|| "<unknown>".to_string())
        };
        let renewed = lease.spec.as_ref().and_then(|s| s.renew_time.as_ref());
        let status = if expired(lease, now) { "Gone" } else { "Ready" };
        table.push_str(&format!(
            "{}\t{}\t{}\t{}\t{} ago\t{status}\n",
            lease.metadata.name.as_deref().unwrap_or(""),
            annotation(identity::ADDRESS_ANNOTATION),
            annotation(identity::VERSION_ANNOTATION),
            annotation(identity::BACKEND_ANNOTATION),
            since(renewed, now),
        ));
    }
    if masters.is_empty() {
        return "No API server identity leases found.\n".to_string();
    }
    align(&table, 3)
}

/// A leader election Lease's row: its holder (`<none>` when released or expired),
/// its last renewal and how often leadership changed hands.
fn leader_row(name: &str, lease: &Lease, now: Timestamp) -> String {
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty() && !expired(lease, now))
        .unwrap_or_else(|| "<none>".to_string());
    format!(
        "{name}\t{holder}\t{} ago\t{}\n",
        since(spec.renew_time.as_ref(), now),
        spec.lease_transitions.unwrap_or(0)
    )
}

/// One row per node: Ready or NotReady (and SchedulingDisabled), kubelet version.
fn nodes_table(nodes: &[Node]) -> String {
    if nodes.is_empty() {
        return "No nodes registered.\n".to_string();
    }
    let mut table = String::from("NAME\tSTATUS\tVERSION\n");
    for node in nodes {
        let status = node.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str());
        let mut state = match ready {
            Some("True") => "Ready".to_string(),
            Some(_) => "NotReady".to_string(),
            None => "Unknown".to_string(),
        };
        if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            state.push_str(",SchedulingDisabled");
        }
        table.push_str(&format!(
            "{}\t{state}\t{}\n",
            node.metadata.name.as_deref().unwrap_or(""),
            status
                .node_info
                .map(|i| i.kubelet_version)
                .unwrap_or_default()
        ));
    }
    align(&table, 3)
}

/// The store's backend and health from the server's `/readyz?verbose`: its check is
/// named after the backend (`[+]sqlite ok`, `[-]etcd failed: …`).
async fn store_health(client: &kube::Client) -> (String, String) {
    let request = match http::Request::get("/readyz?verbose").body(Vec::new()) {
        Ok(r) => r,
        Err(e) => return ("<unknown>".to_string(), format!("unknown ({e})")),
    };
    let text = match client.request_text(request).await {
        Ok(text) => text,
        // A failing check answers 503 with the same list.
        Err(kube::Error::Api(status)) => status.message.clone(),
        Err(e) => return ("<unknown>".to_string(), format!("unknown ({e})")),
    };
    parse_store_check(&text)
}

/// The backend and verdict in a `/readyz?verbose` text.
fn parse_store_check(text: &str) -> (String, String) {
    for line in text.lines() {
        for (mark, healthy) in [("[+]", true), ("[-]", false)] {
            let Some(rest) = line.strip_prefix(mark) else {
                continue;
            };
            let name = rest.split_whitespace().next().unwrap_or("");
            if name != "sqlite" && name != "etcd" {
                continue;
            }
            let verdict = if healthy {
                "ok".to_string()
            } else {
                rest[name.len()..].trim().to_string()
            };
            return (name.to_string(), verdict);
        }
    }
    (
        "<unknown>".to_string(),
        "unknown (no store check in /readyz)".to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lease(value: serde_json::Value) -> Lease {
        serde_json::from_value(value).expect("a lease")
    }

    #[test]
    fn store_checks() {
        assert_eq!(
            parse_store_check("[+]ping ok\n[+]sqlite ok\nreadyz check passed\n"),
            ("sqlite".to_string(), "ok".to_string())
        );
        assert_eq!(
            parse_store_check("[+]ping ok\n[-]etcd failed: unavailable\nreadyz check failed\n"),
            ("etcd".to_string(), "failed: unavailable".to_string())
        );
    }

    #[test]
    fn masters_live_and_gone() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().expect("a time");
        let master = |name: &str, renewed: &str| {
            lease(json!({
                "metadata": {"name": name, "annotations": {
                    identity::ADDRESS_ANNOTATION: "10.0.0.1:6443",
                    identity::VERSION_ANNOTATION: "v1.37.0",
                    identity::BACKEND_ANNOTATION: "etcd"}},
                "spec": {"renewTime": renewed, "leaseDurationSeconds": 15},
            }))
        };
        let table = masters_table(
            &[
                master("apiserver-a", "2026-01-01T00:00:58.000000Z"),
                master("apiserver-b", "2026-01-01T00:00:00.000000Z"),
            ],
            now,
        );
        assert_eq!(
            table,
            "NAME          ADDRESS         VERSION   STORE   RENEWED   STATUS\n\
             apiserver-a   10.0.0.1:6443   v1.37.0   etcd    2s ago    Ready\n\
             apiserver-b   10.0.0.1:6443   v1.37.0   etcd    60s ago   Gone\n"
        );
        let leader = lease(
            json!({"spec": {"holderIdentity": "m1_x", "leaseDurationSeconds": 2,
            "renewTime": "2026-01-01T00:00:59.500000Z", "leaseTransitions": 3}}),
        );
        assert_eq!(
            leader_row("kube-scheduler", &leader, now),
            "kube-scheduler\tm1_x\t0s ago\t3\n"
        );
        let lapsed = lease(
            json!({"spec": {"holderIdentity": "m1_x", "leaseDurationSeconds": 2,
            "renewTime": "2026-01-01T00:00:50.000000Z"}}),
        );
        assert!(leader_row("kube-scheduler", &lapsed, now).contains("<none>"));
    }
}
