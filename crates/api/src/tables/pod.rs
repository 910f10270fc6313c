//! Pods, as upstream's `printPod`: NAME READY STATUS RESTARTS AGE | IP NODE
//! NOMINATED NODE READINESS GATES.
//!
//! STATUS is the pod's phase (or `status.reason`), overridden in turn by a scheduling
//! gate, by the first init container that has not finished (`Init:1/3`,
//! `Init:CrashLoopBackOff`, `Init:Error`), then by the containers' own waiting or
//! terminated reasons (`ContainerCreating`, `CrashLoopBackOff`, `Completed`), and
//! finally by deletion (`Terminating`, or `Unknown` for a pod on a lost node).
//! Sidecars (init containers with `restartPolicy: Always`) count as containers once
//! started.

use serde_json::{Value, json};

use super::format::{self, time_of};
use super::{Column, Printer, Row, age_cell, flag, int, items, name_cell, object, text};

pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
};

const COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Column::new(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    Column::age(),
    Column::new(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    )
    .wide(),
    Column::new(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    )
    .wide(),
    Column::new(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    )
    .wide(),
    Column::new(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    )
    .wide(),
];

/// `status.reason` set by the node lifecycle controller on pods of an unreachable node.
const NODE_LOST: &str = "NodeLost";

fn row(pod: &Value, now: i64) -> Row {
    let status = pod.get("status").unwrap_or(&Value::Null);
    let init_specs = items(pod, "/spec/initContainers");
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .rev()
            .find(|c| text(c, "/name") == name)
            .is_some_and(|c| text(c, "/restartPolicy") == "Always")
    };

    let total = items(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| text(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<i128> = None;
    let mut last_sidecar_restart: Option<i128> = None;

    let phase = text(status, "/phase");
    let mut reason = match text(status, "/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let conditions = items(status, "/conditions");
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (i, container) in items(status, "/initContainerStatuses").iter().enumerate() {
        let count = int(container, "/restartCount");
        let finished = last_finished(container);
        restarts += count;
        keep_latest(&mut last_restart, finished);
        let sidecar = is_sidecar(text(container, "/name"));
        if sidecar {
            sidecar_restarts += count;
            keep_latest(&mut last_sidecar_restart, finished);
        }
        let terminated = object(container, "/state/terminated");
        let waiting_reason = object(container, "/state/waiting")
            .map(|w| text(w, "/reason"))
            .unwrap_or("");
        if terminated.is_some_and(|t| int(t, "/exitCode") == 0) {
            continue;
        }
        if sidecar && flag(container, "/started") {
            if flag(container, "/ready") {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match text(t, "/reason") {
                "" => format!("Init:{}", exit_description(t)),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        // Backwards, so the first container's state is the one that shows.
        for container in items(status, "/containerStatuses").iter().rev() {
            restarts += int(container, "/restartCount");
            keep_latest(&mut last_restart, last_finished(container));
            let waiting_reason = object(container, "/state/waiting")
                .map(|w| text(w, "/reason"))
                .unwrap_or("");
            let terminated = object(container, "/state/terminated");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match text(t, "/reason") {
                    "" => exit_description(t),
                    r => r.to_string(),
                };
            } else if flag(container, "/ready") && object(container, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A container that completed while another still runs: the pod is running.
        if reason == "Completed" && has_running {
            // Upstream's hasPodReadyCondition: any Ready condition that is True.
            let pod_ready = conditions
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if deleting && text(status, "/reason") == NODE_LOST {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", format::since_nanos(t, now)),
        _ => restarts.to_string(),
    };

    let pod_ip = items(status, "/podIPs")
        .first()
        .map(|ip| text(ip, "/ip"))
        // Upstream's conversion fills podIPs from podIP when only the latter is set.
        .unwrap_or_else(|| text(status, "/podIP"));
    let gates = items(pod, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passing = gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, "/conditionType");
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == wanted)
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{passing}/{}", gates.len())
    };

    let mut row = Row::cells(vec![
        name_cell(pod),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts_cell),
        age_cell(pod, now),
        Value::from(or_none(pod_ip)),
        Value::from(or_none(text(pod, "/spec/nodeName"))),
        Value::from(or_none(text(status, "/nominatedNodeName"))),
        Value::from(gates_cell),
    ]);
    row.conditions = match phase {
        "Succeeded" => vec![completed(
            "Succeeded",
            "The pod has completed successfully.",
        )],
        "Failed" => vec![completed("Failed", "The pod failed.")],
        _ => Vec::new(),
    };
    row
}

/// When the container last terminated (`lastState.terminated.finishedAt`).
fn last_finished(container: &Value) -> Option<i128> {
    object(container, "/lastState/terminated").and_then(|t| time_of(t.get("finishedAt")))
}

/// Keeps the later of two restart times.
fn keep_latest(latest: &mut Option<i128>, candidate: Option<i128>) {
    if let Some(t) = candidate
        && latest.is_none_or(|l| l < t)
    {
        *latest = Some(t);
    }
}

/// A termination without a reason: `Signal:9` or `ExitCode:1`.
fn exit_description(terminated: &Value) -> String {
    match int(terminated, "/signal") {
        0 => format!("ExitCode:{}", int(terminated, "/exitCode")),
        signal => format!("Signal:{signal}"),
    }
}

/// Whether the first pod condition of this type is `True` (upstream's
/// `isPodInitializedConditionTrue`).
fn condition_true(conditions: &[Value], kind: &str) -> bool {
    conditions
        .iter()
        .find(|c| text(c, "/type") == kind)
        .is_some_and(|c| text(c, "/status") == "True")
}

/// A `TableRowCondition` marking a finished pod.
fn completed(reason: &str, message: &str) -> Value {
    json!({"type": "Completed", "status": "True", "reason": reason, "message": message})
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-01T10:00:00Z.
    const NOW: i64 = 1_714_557_600;

    fn pod(extra_metadata: Value, spec: Value, status: Value) -> Value {
        let mut metadata = json!({
            "name": "web-0", "namespace": "default",
            "creationTimestamp": "2024-05-01T09:00:00Z",
        });
        if let (Some(m), Some(extra)) = (metadata.as_object_mut(), extra_metadata.as_object()) {
            m.extend(extra.clone());
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status})
    }

    fn one_container() -> Value {
        json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}]})
    }

    fn cells(pod: &Value) -> Vec<Value> {
        row(pod, NOW).cells
    }

    #[test]
    fn pod_cases() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "running and ready",
                pod(
                    json!({}),
                    one_container(),
                    json!({
                        "phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                            "state": {"running": {"startedAt": "2024-05-01T09:00:05Z"}}}],
                    }),
                ),
                json!([
                    "web-0", "1/1", "Running", "0", "60m", "10.1.0.5", "node-1", "<none>", "<none>"
                ]),
            ),
            (
                "pending, unscheduled",
                pod(
                    json!({}),
                    json!({"containers": [{"name": "app", "image": "nginx"}]}),
                    json!({"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
                ),
                json!([
                    "web-0", "0/1", "Pending", "0", "60m", "<none>", "<none>", "<none>", "<none>"
                ]),
            ),
            (
                "scheduling gated",
                pod(
                    json!({}),
                    json!({"containers": [{"name": "app", "image": "nginx"}]}),
                    json!({"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ),
                json!([
                    "web-0",
                    "0/1",
                    "SchedulingGated",
                    "0",
                    "60m",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "container creating",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false,
                        "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
                ),
                json!([
                    "web-0",
                    "0/1",
                    "ContainerCreating",
                    "0",
                    "60m",
                    "<none>",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "crash loop back-off",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Running", "podIP": "10.1.0.5",
                        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 5,
                            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                "message": "back-off 2m40s restarting failed container"}},
                            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                "startedAt": "2024-05-01T09:56:00Z",
                                "finishedAt": "2024-05-01T09:56:48Z"}}}]}),
                ),
                json!([
                    "web-0",
                    "0/1",
                    "CrashLoopBackOff",
                    "5 (3m12s ago)",
                    "60m",
                    "10.1.0.5",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "image pull error",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false,
                        "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}]}),
                ),
                json!([
                    "web-0",
                    "0/1",
                    "ErrImagePull",
                    "0",
                    "60m",
                    "<none>",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "completed",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "ready": false,
                        "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                            "finishedAt": "2024-05-01T09:10:00Z"}}}]}),
                ),
                json!([
                    "web-0",
                    "0/1",
                    "Completed",
                    "0",
                    "60m",
                    "<none>",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "failed with an error",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Failed", "containerStatuses": [{"name": "app", "ready": false,
                        "restartCount": 0, "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
                ),
                json!([
                    "web-0", "0/1", "Error", "0", "60m", "<none>", "node-1", "<none>", "<none>"
                ]),
            ),
            (
                "killed without a reason",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                        "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
                ),
                json!([
                    "web-0", "0/1", "Signal:9", "0", "60m", "<none>", "node-1", "<none>", "<none>"
                ]),
            ),
            (
                "exit code without a reason",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                        "state": {"terminated": {"exitCode": 3}}}]}),
                ),
                json!([
                    "web-0",
                    "0/1",
                    "ExitCode:3",
                    "0",
                    "60m",
                    "<none>",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "one completed, one running and ready",
                pod(
                    json!({}),
                    json!({"nodeName": "node-1", "containers": [
                        {"name": "job", "image": "busybox"}, {"name": "app", "image": "nginx"}]}),
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [
                            {"name": "job", "ready": false, "restartCount": 0,
                                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                            {"name": "app", "ready": true, "restartCount": 0,
                                "state": {"running": {}}}]}),
                ),
                json!([
                    "web-0", "1/2", "Running", "0", "60m", "<none>", "node-1", "<none>", "<none>"
                ]),
            ),
            (
                "one completed, one running, pod not ready",
                pod(
                    json!({}),
                    json!({"nodeName": "node-1", "containers": [
                        {"name": "job", "image": "busybox"}, {"name": "app", "image": "nginx"}]}),
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                        "containerStatuses": [
                            {"name": "job", "ready": false,
                                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                            {"name": "app", "ready": true, "state": {"running": {}}}]}),
                ),
                json!([
                    "web-0", "1/2", "NotReady", "0", "60m", "<none>", "node-1", "<none>", "<none>"
                ]),
            ),
            (
                "terminating",
                pod(
                    json!({"deletionTimestamp": "2024-05-01T09:59:30Z", "deletionGracePeriodSeconds": 30}),
                    one_container(),
                    json!({"phase": "Running", "podIPs": [{"ip": "10.1.0.5"}],
                        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                            "state": {"running": {}}}]}),
                ),
                json!([
                    "web-0",
                    "1/1",
                    "Terminating",
                    "0",
                    "60m",
                    "10.1.0.5",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "deleted after completing: not terminating",
                pod(
                    json!({"deletionTimestamp": "2024-05-01T09:59:30Z"}),
                    one_container(),
                    json!({"phase": "Succeeded", "containerStatuses": [{"name": "app",
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                json!([
                    "web-0",
                    "0/1",
                    "Completed",
                    "0",
                    "60m",
                    "<none>",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "lost node",
                pod(
                    json!({"deletionTimestamp": "2024-05-01T09:59:30Z"}),
                    one_container(),
                    json!({"phase": "Running", "reason": "NodeLost",
                        "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]}),
                ),
                json!([
                    "web-0", "1/1", "Unknown", "0", "60m", "<none>", "node-1", "<none>", "<none>"
                ]),
            ),
            (
                "evicted",
                pod(
                    json!({}),
                    one_container(),
                    json!({"phase": "Failed", "reason": "Evicted",
                        "message": "The node was low on resource: memory."}),
                ),
                json!([
                    "web-0", "0/1", "Evicted", "0", "60m", "<none>", "node-1", "<none>", "<none>"
                ]),
            ),
            (
                "readiness gates and a nominated node",
                pod(
                    json!({}),
                    json!({"containers": [{"name": "app", "image": "nginx"}],
                        "readinessGates": [{"conditionType": "example.com/lb"},
                                           {"conditionType": "example.com/dns"}]}),
                    json!({"phase": "Pending", "nominatedNodeName": "node-2", "conditions": [
                        {"type": "example.com/lb", "status": "True"},
                        {"type": "example.com/dns", "status": "False"}]}),
                ),
                json!([
                    "web-0", "0/1", "Pending", "0", "60m", "<none>", "<none>", "node-2", "1/2"
                ]),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(Value::from(cells(&input)), want, "{name}");
        }
    }

    fn init_pod(init_statuses: Value, container_statuses: Value, conditions: Value) -> Value {
        pod(
            json!({}),
            json!({"nodeName": "node-1",
                "initContainers": [{"name": "migrate", "image": "app"}, {"name": "warm", "image": "app"}],
                "containers": [{"name": "app", "image": "app"}]}),
            json!({"phase": "Pending", "conditions": conditions,
                "initContainerStatuses": init_statuses, "containerStatuses": container_statuses}),
        )
    }

    #[test]
    fn init_container_cases() {
        let waiting_app = json!([{"name": "app", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}}}]);
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "first init container running",
                init_pod(
                    json!([
                        {"name": "migrate", "restartCount": 0, "state": {"running": {}}},
                        {"name": "warm", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]),
                    waiting_app.clone(),
                    json!([{"type": "Initialized", "status": "False"}]),
                ),
                "Init:0/2",
                "0",
            ),
            (
                "second init container running",
                init_pod(
                    json!([
                        {"name": "migrate", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "warm", "state": {"running": {}}}]),
                    waiting_app.clone(),
                    json!([]),
                ),
                "Init:1/2",
                "0",
            ),
            (
                "init container failed",
                init_pod(
                    json!([
                        {"name": "migrate", "restartCount": 3,
                            "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                "finishedAt": "2024-05-01T09:58:00Z"}}},
                        {"name": "warm", "state": {"waiting": {"reason": "PodInitializing"}}}]),
                    waiting_app.clone(),
                    json!([]),
                ),
                "Init:Error",
                "3 (2m ago)",
            ),
            (
                "init container crash-looping",
                init_pod(
                    json!([
                        {"name": "migrate", "restartCount": 4,
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                "finishedAt": "2024-05-01T09:59:10Z"}}},
                        {"name": "warm", "state": {"waiting": {"reason": "PodInitializing"}}}]),
                    waiting_app.clone(),
                    json!([]),
                ),
                "Init:CrashLoopBackOff",
                "4 (50s ago)",
            ),
            (
                "init container killed",
                init_pod(
                    json!([{"name": "migrate", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]),
                    waiting_app.clone(),
                    json!([]),
                ),
                "Init:Signal:9",
                "0",
            ),
            (
                "init container exited without a reason",
                init_pod(
                    json!([{"name": "migrate", "state": {"terminated": {"exitCode": 2}}}]),
                    waiting_app.clone(),
                    json!([]),
                ),
                "Init:ExitCode:2",
                "0",
            ),
            (
                "initialized: the main container shows, init restarts do not count",
                init_pod(
                    json!([
                        {"name": "migrate", "restartCount": 2,
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "warm", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]),
                    json!([{"name": "app", "ready": false, "restartCount": 0,
                        "state": {"waiting": {"reason": "ContainerCreating"}}}]),
                    json!([{"type": "Initialized", "status": "True"}]),
                ),
                "ContainerCreating",
                "0",
            ),
        ];
        for (name, input, status, restarts) in cases {
            let got = cells(&input);
            assert_eq!(got[2], status, "{name}");
            assert_eq!(got[3], restarts, "{name}");
            assert_eq!(got[1], "0/1", "{name}");
        }
    }

    #[test]
    fn sidecar_counts_as_a_container() {
        let p = pod(
            json!({}),
            json!({"nodeName": "node-1",
                "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
                "containers": [{"name": "app", "image": "app"}]}),
            json!({"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T09:30:00Z"}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
        );
        let got = cells(&p);
        assert_eq!(got[1], "2/2");
        assert_eq!(got[2], "Running");
        assert_eq!(got[3], "1 (30m ago)");
    }

    #[test]
    fn finished_pods_carry_a_row_condition() {
        let done = pod(json!({}), one_container(), json!({"phase": "Succeeded"}));
        assert_eq!(
            row(&done, NOW).conditions,
            vec![
                json!({"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."})
            ]
        );
        let failed = pod(json!({}), one_container(), json!({"phase": "Failed"}));
        assert_eq!(row(&failed, NOW).conditions[0]["reason"], "Failed");
        let running = pod(json!({}), one_container(), json!({"phase": "Running"}));
        assert!(row(&running, NOW).conditions.is_empty());
    }

    #[test]
    fn restarts_take_the_latest_termination() {
        let p = pod(
            json!({}),
            json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "restartCount": 1, "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T08:00:00Z"}}},
                {"name": "b", "restartCount": 2, "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T09:55:00Z"}}}]}),
        );
        assert_eq!(cells(&p)[3], "3 (5m ago)");
    }
}
