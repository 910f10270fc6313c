//! `mast logs`: a container's log through `pods/log`, which the API server proxies to
//! the pod's kubelet. `POD`, `TYPE/NAME` (a Deployment, ReplicaSet or Service picks
//! one of its pods as kubectl does) or `-l SELECTOR`; `-c`, `-f`, `--tail`,
//! `--previous`, `--timestamps`, `--since`, `--since-time`, `--limit-bytes`,
//! `--all-containers`, `--prefix`.

use std::cmp::Ordering;
use std::io::Write;
use std::time::Duration;

use clap::Args;
use futures::{AsyncReadExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, LogParams, WatchEvent, WatchParams};

use super::{Connection, Session};

/// kubectl's usage line when the arguments do not name a pod.
const USAGE: &str = "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'kubectl logs -h' for help and examples";
/// The annotation naming the container `logs` picks by default.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// Flags of `mast logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// `POD`, `TYPE/NAME`, and optionally the container.
    pub args: Vec<String>,
    /// The container (default: the pod's default container, else its first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Stream the log as it grows.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (-1: all; 10 with a selector).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// The previous, terminated instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Start each line with its RFC 3339 timestamp.
    #[arg(long)]
    pub timestamps: bool,
    /// Only lines newer than this (`5s`, `2m`, `3h`).
    #[arg(long, value_parser = crate::flags::duration)]
    pub since: Option<Duration>,
    /// Only lines after this RFC 3339 time.
    #[arg(long)]
    pub since_time: Option<String>,
    /// At most this many bytes.
    #[arg(long)]
    pub limit_bytes: Option<i64>,
    /// Every container of the pod(s).
    #[arg(long)]
    pub all_containers: bool,
    /// Start each line with `[pod/NAME/CONTAINER]`.
    #[arg(long)]
    pub prefix: bool,
    /// The pods whose labels match this selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// How long to wait for a pod of TYPE/NAME to appear.
    #[arg(long, value_parser = crate::flags::duration, default_value = "20s")]
    pub pod_running_timeout: Duration,
}

/// One log to print.
struct Request {
    pod: String,
    container: String,
    namespace: String,
}

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    match logs(&args).await {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("{}", super::error_line(&e));
            super::exit_reported()
        }
    }
}

async fn logs(args: &LogsArgs) -> anyhow::Result<()> {
    let selector = args.selector.clone().unwrap_or_default();
    let (object, inline_container) = match args.args.as_slice() {
        [] if selector.is_empty() => anyhow::bail!("{USAGE}"),
        [] => (None, None),
        [_] | [_, _] if !selector.is_empty() => {
            anyhow::bail!("only a selector (-l) or a POD name is allowed")
        }
        [object] => (Some(object.clone()), None),
        [object, container] => (Some(object.clone()), Some(container.clone())),
        _ => anyhow::bail!("{USAGE}"),
    };
    if args.container.is_some() && inline_container.is_some() {
        anyhow::bail!("only one of -c or an inline [CONTAINER] arg is allowed");
    }
    if args.since.is_some() && args.since_time.is_some() {
        anyhow::bail!("at most one of `sinceTime` or `sinceSeconds` may be specified");
    }
    if args.limit_bytes.is_some_and(|b| b <= 0) {
        anyhow::bail!("--limit-bytes must be greater than 0");
    }
    if args.tail < -1 {
        anyhow::bail!("--tail must be greater than or equal to -1");
    }
    let container = args.container.clone().or(inline_container);
    if args.all_containers
        && let Some(c) = &container
    {
        anyhow::bail!("--all-containers=true should not be specified with container name {c}");
    }
    let session = Session::connect(&args.connection)?;
    let pods_api: Api<Pod> = Api::namespaced(session.client.clone(), &session.namespace);
    let pods: Vec<Pod> = match object {
        Some(object) => vec![pod_for(&session, &object, args.pod_running_timeout).await?],
        None => {
            let list = pods_api
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            if list.is_empty() {
                eprintln!("No resources found in {} namespace.", session.namespace);
            }
            list
        }
    };
    let many_pods = pods.len() > 1 || !selector.is_empty();
    let mut requests = Vec::new();
    for pod in &pods {
        requests.extend(requests_for(
            pod,
            container.as_deref(),
            args.all_containers,
            many_pods,
        )?);
    }
    let mut params = LogParams {
        follow: args.follow,
        previous: args.previous,
        timestamps: args.timestamps,
        limit_bytes: args.limit_bytes,
        ..LogParams::default()
    };
    // With a selector kubectl shows the last 10 lines of each pod unless told.
    if !selector.is_empty() && args.tail == -1 {
        params.tail_lines = Some(10);
    } else if args.tail != -1 {
        params.tail_lines = Some(args.tail);
    }
    if let Some(since) = args.since {
        params.since_seconds = Some(since.as_secs_f64().ceil() as i64);
    }
    if let Some(text) = &args.since_time {
        let time: Timestamp = text
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid --since-time {text:?}: {e}"))?;
        params.since_time = Some(time);
    }
    let prefix = args.prefix;
    if args.follow && requests.len() > 1 {
        // Several followed logs interleave as lines arrive.
        let streams = requests
            .iter()
            .map(|r| stream(&session, r, &params, prefix));
        let results = futures::future::join_all(streams).await;
        return results.into_iter().collect();
    }
    for request in &requests {
        stream(&session, request, &params, prefix).await?;
    }
    Ok(())
}

/// The pod `object` names: `POD`, `pod/NAME`, or the first pod (as kubectl ranks
/// them for logs) of a Deployment, ReplicaSet or Service.
async fn pod_for(session: &Session, object: &str, timeout: Duration) -> anyhow::Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(session.client.clone(), &session.namespace);
    let (type_name, name) = match object.split_once('/') {
        Some((t, n)) => (t.to_string(), n.to_string()),
        None => ("pods".to_string(), object.to_string()),
    };
    let resource = session.resolve(&type_name).await?;
    let client = session.client.clone();
    let ns = session.namespace.as_str();
    let not_found = |e: kube::Error| -> anyhow::Error {
        match &e {
            kube::Error::Api(s) if s.code == 404 => anyhow::anyhow!(
                "error from server (NotFound): {} in namespace {ns:?}",
                s.message
            ),
            _ => e.into(),
        }
    };
    let selector = match (resource.api.group.as_str(), resource.api.kind.as_str()) {
        ("", "Pod") => return pods.get(&name).await.map_err(not_found),
        ("apps", "Deployment") => {
            let d = Api::<Deployment>::namespaced(client, ns)
                .get(&name)
                .await
                .map_err(not_found)?;
            super::describe::selector_string(&d.spec.selector)
        }
        ("apps", "ReplicaSet") => {
            let rs = Api::<ReplicaSet>::namespaced(client, ns)
                .get(&name)
                .await
                .map_err(not_found)?;
            super::describe::selector_string(&rs.spec.selector)
        }
        ("", "Service") => {
            let svc = Api::<Service>::namespaced(client, ns)
                .get(&name)
                .await
                .map_err(not_found)?;
            let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
            if selector.is_empty() {
                anyhow::bail!(
                    "cannot get the logs from *v1.Service: invalid service '{name}': Service is defined without a selector"
                );
            }
            selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        }
        (_, kind) => {
            anyhow::bail!("cannot get the logs from {kind}: selector for {kind} not implemented")
        }
    };
    let mut list = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    if list.is_empty() {
        list.push(wait_for_pod(&pods, &selector, timeout).await?);
    }
    list.sort_by(by_logging);
    let count = list.len();
    let first = list.swap_remove(0);
    if count > 1 {
        eprintln!(
            "Found {count} pods, using pod/{}",
            first.metadata.name.as_deref().unwrap_or("")
        );
    }
    Ok(first)
}

/// The first pod that appears with these labels, within `timeout`.
async fn wait_for_pod(pods: &Api<Pod>, selector: &str, timeout: Duration) -> anyhow::Result<Pod> {
    let wait = async {
        let stream = pods
            .watch(&WatchParams::default().labels(selector), "0")
            .await?;
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let WatchEvent::Added(pod) | WatchEvent::Modified(pod) = event? {
                return Ok(pod);
            }
        }
        anyhow::bail!("the watch of pods ended")
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| anyhow::anyhow!("timed out waiting for the condition"))?
}

/// kubectl's `podutils.ByLogging`: bound before unbound, Running before Unknown
/// before Pending, ready before not, ready longer first, more restarts first, older
/// first.
fn by_logging(a: &Pod, b: &Pod) -> Ordering {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let phase_rank = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Running") => 0,
        Some("Unknown") => 1,
        Some("Pending") => 2,
        _ => 0,
    };
    let by_phase = phase_rank(a).cmp(&phase_rank(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let ready_since = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .filter(|c| c.status == "True")
            .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
    };
    let (ra, rb) = (ready_since(a), ready_since(b));
    if ra.is_some() != rb.is_some() {
        return if ra.is_some() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    if let (Some(ta), Some(tb)) = (ra, rb)
        && ta != tb
    {
        // Ready for longer first; an unknown time last.
        return match (ta, tb) {
            (Some(x), Some(y)) => x.cmp(&y),
            (None, _) => Ordering::Greater,
            (_, None) => Ordering::Less,
        };
    }
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0)
    };
    let by_restarts = restarts(b).cmp(&restarts(a));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match (created(a), created(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

/// The logs to print for `pod`: the named container, every container, or the
/// default one (announced on stderr when the pod has others).
fn requests_for(
    pod: &Pod,
    container: Option<&str>,
    all: bool,
    quiet: bool,
) -> anyhow::Result<Vec<Request>> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let init: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    let main: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    let ephemeral: Vec<String> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    let request = |c: &str| Request {
        pod: name.clone(),
        container: c.to_string(),
        namespace: namespace.clone(),
    };
    if all {
        return Ok(init
            .iter()
            .chain(&main)
            .chain(&ephemeral)
            .map(|c| request(c))
            .collect());
    }
    let chosen = match container {
        Some(c) => c.to_string(),
        None => {
            let annotated = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CONTAINER))
                .filter(|c| !c.is_empty());
            let known = |c: &str| main.iter().chain(&init).chain(&ephemeral).any(|n| n == c);
            match annotated {
                Some(c) if known(c) => c.clone(),
                other => {
                    if let Some(c) = other {
                        eprintln!("Default container name {c:?} not found in pod {name}");
                    }
                    let first = main.first().cloned().unwrap_or_default();
                    if (main.len() > 1 || !init.is_empty() || !ephemeral.is_empty()) && !quiet {
                        let all: Vec<String> = main
                            .iter()
                            .cloned()
                            .chain(ephemeral.iter().map(|c| format!("{c} (ephem)")))
                            .chain(init.iter().map(|c| format!("{c} (init)")))
                            .collect();
                        eprintln!("Defaulted container {first:?} out of: {}", all.join(", "));
                    }
                    first
                }
            }
        }
    };
    if !main
        .iter()
        .chain(&init)
        .chain(&ephemeral)
        .any(|n| *n == chosen)
    {
        anyhow::bail!("container {chosen} is not valid for pod {name}");
    }
    Ok(vec![request(&chosen)])
}

/// Copies one log to stdout as it arrives, each line prefixed when asked.
async fn stream(
    session: &Session,
    request: &Request,
    params: &LogParams,
    prefix: bool,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(session.client.clone(), &request.namespace);
    let params = LogParams {
        container: Some(request.container.clone()),
        ..params.clone()
    };
    let reader = api.log_stream(&request.pod, &params).await?;
    futures::pin_mut!(reader);
    let tag = prefix.then(|| format!("[pod/{}/{}] ", request.pod, request.container));
    let mut buffer = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        let Some(tag) = &tag else {
            write_out(&buffer[..n])?;
            continue;
        };
        // Prefixes go on whole lines, so concurrent logs never split a line.
        pending.extend_from_slice(&buffer[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let mut out = tag.as_bytes().to_vec();
            out.extend_from_slice(&line);
            write_out(&out)?;
        }
    }
    if let Some(tag) = &tag
        && !pending.is_empty()
    {
        let mut out = tag.as_bytes().to_vec();
        out.extend_from_slice(&pending);
        write_out(&out)?;
    }
    Ok(())
}

fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}
