//! A pod's API status from what the runtime reports, after upstream's
//! `generateAPIPodStatus`: phase, the kubelet's conditions (with transition times that
//! only move when a condition flips), IPs, start time, container statuses. Fields the
//! kubelet does not own (qosClass, nominatedNodeName, other writers' conditions) carry
//! over from the current status, so building twice from the same facts gives the same
//! status and nothing is written.

use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus as ApiPodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::runtime::{self, ContainerState, SandboxState};

/// The conditions the kubelet writes (upstream's `PodConditionsByKubelet`).
const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// What a status is built from.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub pod: &'a Pod,
    /// The runtime's view; None before the sandbox exists or after removal.
    pub runtime: Option<&'a runtime::PodStatus>,
    pub host_ip: &'a str,
    /// The kubelet is done with the pod (deleted and stopped): the phase is terminal.
    pub terminal: bool,
    pub now: &'a Time,
    /// Probe results by container ID (containers with probes count as not ready or
    /// not started until their probes say otherwise).
    pub probes: Option<&'a super::probe::Results>,
    /// Why containers wait to (re)start, by container name: (reason, message), e.g.
    /// CrashLoopBackOff, ErrImagePull, ImagePullBackOff.
    pub waiting: Option<&'a Waiting>,
}

/// Waiting reasons and messages by container name.
pub type Waiting = std::collections::HashMap<String, (String, String)>;

/// Whether the phase is one a pod never leaves.
pub fn is_terminal_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded" | "Failed"))
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// An init container with restartPolicy Always: a sidecar, which keeps running.
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// Where the pod's init containers stand.
#[derive(Debug, Default, PartialEq, Eq)]
struct InitProgress {
    /// Init containers not (yet) done, by name.
    incomplete: Vec<String>,
    /// A regular init container failed and will not be retried (restartPolicy Never).
    failed: bool,
}

fn init_progress(o: &Observed<'_>) -> InitProgress {
    let mut progress = InitProgress::default();
    let never = restart_policy(o.pod) == "Never";
    let spec = o.pod.spec.as_ref();
    for container in spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[])
    {
        let latest = o.runtime.and_then(|r| r.container(&container.name).0);
        let done = match latest.map(|c| &c.state) {
            Some(ContainerState::Running { .. }) => is_sidecar(container),
            Some(ContainerState::Exited { exit_code, .. }) if !is_sidecar(container) => {
                if *exit_code != 0 && never {
                    progress.failed = true;
                }
                *exit_code == 0
            }
            _ => false,
        };
        if !done {
            progress.incomplete.push(container.name.clone());
        }
    }
    progress
}

/// The pod phase (upstream's `getPhase`).
fn phase(o: &Observed<'_>, init: &InitProgress, statuses: &[ApiContainerStatus]) -> String {
    let current = o.pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if is_terminal_phase(current) {
        // Terminal phases are final.
        return current.unwrap_or("Failed").to_string();
    }
    if init.failed {
        return "Failed".into();
    }
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for status in statuses {
        match status.state.as_ref() {
            Some(ApiState {
                running: Some(_), ..
            }) => running += 1,
            Some(ApiState {
                terminated: Some(t),
                ..
            }) => {
                if t.exit_code == 0 {
                    succeeded += 1
                } else {
                    failed += 1
                }
            }
            // Waiting to restart after dying (CrashLoopBackOff): counts as stopped
            // with its last exit, as upstream's getPhase does.
            _ => match status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
            {
                Some(t) if t.exit_code == 0 => succeeded += 1,
                Some(_) => failed += 1,
                None => waiting += 1,
            },
        }
    }
    if o.terminal {
        return if failed == 0 && waiting == 0 && running == 0 && init.incomplete.is_empty() {
            "Succeeded"
        } else {
            "Failed"
        }
        .into();
    }
    if !init.incomplete.is_empty() || waiting > 0 {
        return "Pending".into();
    }
    if running > 0 {
        return "Running".into();
    }
    if succeeded + failed > 0 {
        return match restart_policy(o.pod) {
            "Never" if failed == 0 => "Succeeded",
            "Never" => "Failed",
            "OnFailure" if failed == 0 => "Succeeded",
            _ => "Running",
        }
        .into();
    }
    "Pending".into()
}

fn terminated(
    container_id: Option<&str>,
    started_at: std::time::SystemTime,
    finished_at: std::time::SystemTime,
    exit_code: i32,
    reason: &str,
    message: &str,
) -> ContainerStateTerminated {
    ContainerStateTerminated {
        container_id: container_id.map(str::to_string),
        exit_code,
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
        started_at: Some(crate::time::from_system(started_at)),
        finished_at: Some(crate::time::from_system(finished_at)),
        signal: None,
    }
}

fn api_state(status: &runtime::ContainerStatus) -> ApiState {
    match &status.state {
        ContainerState::Running { started_at } => ApiState {
            running: Some(ContainerStateRunning {
                started_at: Some(crate::time::from_system(*started_at)),
            }),
            ..ApiState::default()
        },
        ContainerState::Exited {
            started_at,
            finished_at,
            exit_code,
            reason,
            message,
        } => ApiState {
            terminated: Some(terminated(
                Some(&status.id),
                *started_at,
                *finished_at,
                *exit_code,
                reason,
                message,
            )),
            ..ApiState::default()
        },
        ContainerState::Created => waiting("ContainerCreating", None),
        ContainerState::Unknown => waiting("ContainerStatusUnknown", None),
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ApiState {
    ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: message.map(str::to_string),
        }),
        ..ApiState::default()
    }
}

/// One container's status. `waiting_reason` is shown while it has not started.
fn container_status(
    o: &Observed<'_>,
    container: &Container,
    init: bool,
    waiting_reason: &str,
) -> ApiContainerStatus {
    let image = container.image.clone().unwrap_or_default();
    let (latest, previous) = o
        .runtime
        .map(|r| r.container(&container.name))
        .unwrap_or((None, None));
    let last_state = previous.map(api_state).and_then(|s| {
        // Only a terminated earlier attempt is a "last state".
        s.terminated.is_some().then_some(s)
    });
    let reason = o
        .waiting
        .and_then(|w| w.get(&container.name))
        .filter(|_| !o.terminal);
    let Some(latest) = latest else {
        let state = if let Some((reason, message)) = reason {
            waiting(reason, (!message.is_empty()).then_some(message.as_str()))
        } else if o.terminal {
            // Never started, and now never will: upstream's wording.
            ApiState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some("ContainerStatusUnknown".into()),
                    message: Some(
                        "The container could not be located when the pod was terminated".into(),
                    ),
                    ..ContainerStateTerminated::default()
                }),
                ..ApiState::default()
            }
        } else {
            waiting(waiting_reason, None)
        };
        return ApiContainerStatus {
            name: container.name.clone(),
            image,
            image_id: String::new(),
            ready: false,
            started: Some(false),
            restart_count: 0,
            state: Some(state),
            last_state: Some(last_state.unwrap_or_default()),
            ..ApiContainerStatus::default()
        };
    };
    let sidecar = init && is_sidecar(container);
    let probed = o
        .probes
        .and_then(|p| p.get(&latest.id))
        .copied()
        .unwrap_or_default();
    let (ready, started) = match &latest.state {
        // Without a startup probe a running container has started; without a
        // readiness probe a started one is ready (upstream's defaults).
        ContainerState::Running { .. } => {
            let started = container.startup_probe.is_none() || probed.started == Some(true);
            let ready_by_probe = container.readiness_probe.is_none() || probed.ready == Some(true);
            ((!init || sidecar) && started && ready_by_probe, started)
        }
        ContainerState::Exited { exit_code, .. } => (init && !sidecar && *exit_code == 0, false),
        ContainerState::Created | ContainerState::Unknown => (false, false),
    };
    let mut state = api_state(latest);
    let mut last_state = last_state.unwrap_or_default();
    // A dead container about to be restarted (or failing to be) waits, and what it
    // died of becomes the last state (upstream's reason cache).
    if let Some((reason, message)) =
        reason.filter(|_| !matches!(latest.state, ContainerState::Running { .. }))
    {
        if state.terminated.is_some() {
            last_state = state;
        }
        state = waiting(reason, (!message.is_empty()).then_some(message.as_str()));
    }
    ApiContainerStatus {
        name: container.name.clone(),
        image,
        image_id: latest.image_ref.clone(),
        container_id: Some(latest.id.clone()),
        ready,
        started: Some(started),
        restart_count: i32::try_from(latest.attempt).unwrap_or(i32::MAX),
        state: Some(state),
        last_state: Some(last_state),
        ..ApiContainerStatus::default()
    }
}

/// A condition whose transition time carries over from `existing` while unchanged.
fn condition(
    o: &Observed<'_>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let previous = o
        .pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let transition = previous
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| o.now.clone());
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(transition),
        last_probe_time: None,
        observed_generation: o.pod.metadata.generation,
    }
}

/// `[a b]`, as upstream lists container names in condition messages.
fn name_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

/// The pod's status.
pub fn build(o: &Observed<'_>) -> ApiPodStatus {
    let pod = o.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let mut status = pod.status.clone().unwrap_or_default();
    let init = init_progress(o);

    let init_statuses: Vec<ApiContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_status(o, c, true, "PodInitializing"))
        .collect();
    let app_waiting = if init.incomplete.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let app_statuses: Vec<ApiContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(o, c, false, app_waiting))
        .collect();

    let phase = phase(o, &init, &app_statuses);
    let completed = is_terminal_phase(Some(&phase));

    let sandbox_ready = o
        .runtime
        .is_some_and(|r| r.sandbox.state == SandboxState::Ready)
        && !completed;
    let mut unready: Vec<String> = app_statuses
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.clone())
        .collect();
    for (c, s) in spec.init_containers.iter().flatten().zip(&init_statuses) {
        if is_sidecar(c) && !s.ready {
            unready.push(c.name.clone());
        }
    }
    let containers_ready = unready.is_empty() && !completed;
    let (ready_reason, ready_message) = if completed {
        (Some("PodCompleted"), None)
    } else if !unready.is_empty() {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                name_list(&unready)
            )),
        )
    } else {
        (None, None)
    };
    let gate_problem = readiness_gate_problem(pod);
    let ready = containers_ready && gate_problem.is_none();

    let mut conditions: Vec<PodCondition> = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    conditions.push(condition(
        o,
        "PodReadyToStartContainers",
        sandbox_ready,
        None,
        None,
    ));
    let initialized = init.incomplete.is_empty();
    conditions.push(if initialized {
        condition(
            o,
            "Initialized",
            true,
            completed.then_some("PodCompleted"),
            None,
        )
    } else {
        condition(
            o,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                name_list(&init.incomplete)
            )),
        )
    });
    conditions.push(match (&gate_problem, containers_ready) {
        (Some(message), true) => condition(
            o,
            "Ready",
            false,
            Some("ReadinessGatesNotReady"),
            Some(message.clone()),
        ),
        _ => condition(o, "Ready", ready, ready_reason, ready_message.clone()),
    });
    conditions.push(condition(
        o,
        "ContainersReady",
        containers_ready,
        ready_reason,
        ready_message,
    ));
    // The scheduler's (or the binding's) PodScheduled stays as it is.
    let scheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "True")
        .cloned()
        .unwrap_or_else(|| condition(o, "PodScheduled", true, None, None));
    conditions.push(scheduled);

    let host_network = spec.host_network.unwrap_or(false);
    let sandbox_ip = o
        .runtime
        .and_then(|r| r.sandbox.ip)
        .map(|ip| ip.to_string());
    let pod_ip = if host_network {
        Some(o.host_ip.to_string())
    } else {
        // A stopped pod keeps the address it had, as upstream reports it.
        sandbox_ip.or_else(|| status.pod_ip.clone())
    };

    status.phase = Some(phase);
    status.conditions = Some(conditions);
    status.host_ip = Some(o.host_ip.to_string());
    status.host_ips = Some(vec![HostIP {
        ip: o.host_ip.to_string(),
    }]);
    status.pod_ips = pod_ip.clone().map(|ip| vec![PodIP { ip }]);
    status.pod_ip = pod_ip;
    if status.start_time.is_none() {
        status.start_time = Some(o.now.clone());
    }
    status.init_container_statuses = (!init_statuses.is_empty()).then_some(init_statuses);
    status.container_statuses = Some(app_statuses);
    status.observed_generation = pod.metadata.generation;
    status
}

/// Why the readiness gates hold the pod back, if they do.
fn readiness_gate_problem(pod: &Pod) -> Option<String> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_deref()?;
    let conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    let mut problems = Vec::new();
    for gate in gates {
        match conditions.iter().find(|c| c.type_ == gate.condition_type) {
            None => problems.push(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                gate.condition_type
            )),
            Some(c) if c.status != "True" => problems.push(format!(
                "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                gate.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use k8s_openapi::api::core::v1::PodReadinessGate;

    use super::*;
    use crate::runtime::{ContainerStatus, PodStatus, SandboxStatus};

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).expect("time"))
    }

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    fn web_pod() -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 1},
            "spec": {
                "nodeName": "n1",
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]
            },
            "status": {
                "phase": "Pending",
                "qosClass": "BestEffort",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]
            }
        }))
    }

    fn container(name: &str, attempt: u32, state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            id: format!("fake://{name}-{attempt}"),
            name: name.into(),
            attempt,
            image: "img".into(),
            image_ref: "docker.io/library/img@sha256:00".into(),
            state,
        }
    }

    fn t(second: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(second)
    }

    fn exited(code: i32) -> ContainerState {
        ContainerState::Exited {
            started_at: t(10),
            finished_at: t(11),
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: String::new(),
        }
    }

    fn running_runtime() -> PodStatus {
        PodStatus {
            sandbox: SandboxStatus {
                id: "s".into(),
                attempt: 0,
                state: SandboxState::Ready,
                ip: Some("10.244.1.5".parse().expect("ip")),
                created_at: t(5),
            },
            containers: vec![
                container("setup", 0, exited(0)),
                container("app", 0, ContainerState::Running { started_at: t(12) }),
                container("log", 0, ContainerState::Running { started_at: t(12) }),
            ],
        }
    }

    fn observed<'a>(pod: &'a Pod, runtime: Option<&'a PodStatus>, now: &'a Time) -> Observed<'a> {
        Observed {
            pod,
            runtime,
            host_ip: "192.168.1.10",
            terminal: false,
            now,
            probes: None,
            waiting: None,
        }
    }

    fn cond<'a>(status: &'a ApiPodStatus, type_: &str) -> &'a PodCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .expect("condition")
    }

    #[test]
    fn a_pod_before_its_sandbox() {
        let pod = web_pod();
        let now = at(1000);
        let s = build(&observed(&pod, None, &now));
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
        let init = cond(&s, "Initialized");
        assert_eq!(init.status, "False");
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        assert_eq!(
            cond(&s, "Ready").message.as_deref(),
            Some("containers with unready status: [app log]")
        );
        let app = &s.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(
            app.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("PodInitializing")
        );
        assert_eq!(s.pod_ip, None);
        assert_eq!(s.start_time, Some(now.clone()));
        assert_eq!(s.host_ip.as_deref(), Some("192.168.1.10"));
        // Fields the kubelet does not own are kept.
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(
            cond(&s, "PodScheduled").last_transition_time,
            Some(Time("2024-01-01T00:00:00Z".parse().expect("timestamp")))
        );
    }

    #[test]
    fn a_running_pod() {
        let pod = web_pod();
        let rt = running_runtime();
        let now = at(2000);
        let s = build(&observed(&pod, Some(&rt), &now));
        assert_eq!(s.phase.as_deref(), Some("Running"));
        for c in [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ] {
            assert_eq!(cond(&s, c).status, "True", "{c}");
        }
        let order: Vec<&str> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.5"));
        assert_eq!(
            s.pod_ips.as_ref().map(|v| v[0].ip.as_str()),
            Some("10.244.1.5")
        );
        assert_eq!(s.observed_generation, Some(1));
        let apps = s.container_statuses.as_ref().expect("statuses");
        assert_eq!(apps.len(), 2);
        let app = &apps[0];
        assert!(app.ready);
        assert_eq!(app.started, Some(true));
        assert_eq!(app.restart_count, 0);
        assert_eq!(app.image, "nginx:1.27");
        assert_eq!(app.container_id.as_deref(), Some("fake://app-0"));
        assert!(app.state.as_ref().is_some_and(|s| s.running.is_some()));
        let init = &s.init_container_statuses.as_ref().expect("init")[0];
        assert!(init.ready);
        let terminated = init
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!(terminated.reason.as_deref(), Some("Completed"));
    }

    #[test]
    fn building_twice_changes_nothing() {
        let mut pod = web_pod();
        let rt = running_runtime();
        let first = build(&observed(&pod, Some(&rt), &at(2000)));
        pod.status = Some(first.clone());
        let second = build(&observed(&pod, Some(&rt), &at(3000)));
        assert_eq!(
            serde_json::to_value(&first).expect("json"),
            serde_json::to_value(&second).expect("json")
        );
    }

    #[test]
    fn transition_times_move_only_on_flips() {
        let mut pod = web_pod();
        let before = build(&observed(&pod, None, &at(1000)));
        pod.status = Some(before);
        let rt = running_runtime();
        let after = build(&observed(&pod, Some(&rt), &at(2000)));
        assert_eq!(cond(&after, "Ready").last_transition_time, Some(at(2000)));
        assert_eq!(after.start_time, Some(at(1000)));
    }

    #[test]
    fn a_terminated_pod() {
        let mut pod = web_pod();
        let mut rt = running_runtime();
        pod.status = Some(build(&observed(&pod, Some(&rt), &at(2000))));
        rt.sandbox.state = SandboxState::NotReady;
        for c in &mut rt.containers {
            if matches!(c.state, ContainerState::Running { .. }) {
                c.state = exited(0);
            }
        }
        let now = at(3000);
        let o = Observed {
            terminal: true,
            ..observed(&pod, Some(&rt), &now)
        };
        let s = build(&o);
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
        assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
        // The address stays in the final status.
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.5"));
        // With nothing in the runtime any more, the address is still remembered, and
        // containers never seen count as failed.
        let mut gone = pod.clone();
        gone.status = Some(ApiPodStatus {
            phase: Some("Running".into()),
            ..s.clone()
        });
        let o = Observed {
            terminal: true,
            runtime: None,
            ..observed(&gone, None, &now)
        };
        let s = build(&o);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.5"));
    }

    #[test]
    fn restarts_show_counts_and_last_state() {
        let pod = web_pod();
        let mut rt = running_runtime();
        rt.containers.retain(|c| c.name != "app");
        rt.containers.push(container("app", 0, exited(1)));
        rt.containers.push(container(
            "app",
            1,
            ContainerState::Running { started_at: t(20) },
        ));
        let s = build(&observed(&pod, Some(&rt), &at(2000)));
        let app = &s.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(app.restart_count, 1);
        let last = app
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("last state");
        assert_eq!(last.exit_code, 1);
        assert_eq!(last.reason.as_deref(), Some("Error"));
    }

    #[test]
    fn phases_by_restart_policy() {
        let cases = [
            ("Always", 0, "Running"),
            ("Always", 1, "Running"),
            ("OnFailure", 0, "Succeeded"),
            ("OnFailure", 1, "Running"),
            ("Never", 0, "Succeeded"),
            ("Never", 1, "Failed"),
        ];
        for (policy, code, want) in cases {
            let mut pod = web_pod();
            if let Some(spec) = pod.spec.as_mut() {
                spec.restart_policy = Some(policy.into());
            }
            let mut rt = running_runtime();
            for c in &mut rt.containers {
                if c.name != "setup" {
                    c.state = exited(code);
                }
            }
            let s = build(&observed(&pod, Some(&rt), &at(2000)));
            assert_eq!(s.phase.as_deref(), Some(want), "{policy} exit {code}");
        }
        // A failed init container fails a Never pod.
        let mut pod = web_pod();
        if let Some(spec) = pod.spec.as_mut() {
            spec.restart_policy = Some("Never".into());
        }
        let rt = PodStatus {
            containers: vec![container("setup", 0, exited(2))],
            ..running_runtime()
        };
        let s = build(&observed(&pod, Some(&rt), &at(2000)));
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn host_network_pods_use_the_host_ip() {
        let mut pod = web_pod();
        if let Some(spec) = pod.spec.as_mut() {
            spec.host_network = Some(true);
        }
        let mut rt = running_runtime();
        rt.sandbox.ip = None;
        let s = build(&observed(&pod, Some(&rt), &at(2000)));
        assert_eq!(s.pod_ip.as_deref(), Some("192.168.1.10"));
    }

    #[test]
    fn readiness_gates_hold_ready_back() {
        let mut pod = web_pod();
        if let Some(spec) = pod.spec.as_mut() {
            spec.readiness_gates = Some(vec![PodReadinessGate {
                condition_type: "example.com/lb".into(),
            }]);
        }
        let rt = running_runtime();
        let s = build(&observed(&pod, Some(&rt), &at(2000)));
        assert_eq!(cond(&s, "ContainersReady").status, "True");
        let ready = cond(&s, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
        // Someone else's condition is kept, and satisfies the gate.
        let mut with_gate = pod.clone();
        let mut status = s.clone();
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(PodCondition {
                type_: "example.com/lb".into(),
                status: "True".into(),
                ..PodCondition::default()
            });
        with_gate.status = Some(status);
        let s = build(&observed(&with_gate, Some(&rt), &at(2000)));
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "example.com/lb").status, "True");
    }

    #[test]
    fn sidecars_run_alongside() {
        let mut pod = web_pod();
        if let Some(spec) = pod.spec.as_mut() {
            spec.init_containers = Some(vec![Container {
                name: "proxy".into(),
                image: Some("envoy".into()),
                restart_policy: Some("Always".into()),
                ..Container::default()
            }]);
        }
        let mut rt = running_runtime();
        rt.containers[0] = container("proxy", 0, ContainerState::Running { started_at: t(11) });
        let s = build(&observed(&pod, Some(&rt), &at(2000)));
        assert_eq!(cond(&s, "Initialized").status, "True");
        assert_eq!(cond(&s, "Ready").status, "True");
        let proxy = &s.init_container_statuses.as_ref().expect("init")[0];
        assert!(proxy.ready);
        assert_eq!(proxy.started, Some(true));
    }
}
