//! The scheduling loop: kube-rs watches feed the cache (nodes, bound pods) and the
//! queue (pods without a node for our scheduler name); one cycle at a time pops a pod,
//! runs the framework over a snapshot, assumes the pod on the chosen node and binds it
//! through `pods/binding` in the background (forgetting the assumption if the binding
//! fails). Pods that fit nowhere get a FailedScheduling event and the PodScheduled=False
//! condition and wait in the queue until a node changes or a pod goes.
//!
//! The loop only takes pods while `leading` says so; the watches run regardless, so a
//! new leader starts with a warm cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Event, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Mutex, Notify, watch};

use crate::framework::cache::Cache;
use crate::framework::queue::{MAX_UNSCHEDULABLE_DURATION, SchedulingQueue, pod_key};
use crate::framework::{Decision, Framework, PodInfo, SchedulerState};

/// The loop's shared state.
struct Shared {
    cache: Mutex<Cache>,
    queue: Mutex<SchedulingQueue>,
    wake: Notify,
}

/// Why the scheduler stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("scheduler configuration: {0}")]
    Config(String),
}

/// Runs the scheduler for `framework`'s scheduler name until the process ends.
pub async fn run(
    client: Client,
    framework: Framework,
    mut leading: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let shared = Arc::new(Shared {
        cache: Mutex::new(Cache::default()),
        queue: Mutex::new(SchedulingQueue::default()),
        wake: Notify::new(),
    });
    let scheduler_name = framework.scheduler_name().to_string();
    tokio::spawn(watch_nodes(client.clone(), shared.clone()));
    tokio::spawn(watch_pods(client.clone(), shared.clone(), scheduler_name));
    tokio::spawn(housekeeping(shared.clone()));
    let framework = Arc::new(framework);
    let mut state = SchedulerState::new(seed());
    loop {
        if !*leading.borrow() {
            if leading.changed().await.is_err() {
                return Ok(());
            }
            continue;
        }
        let now = Instant::now();
        let next = {
            let mut queue = shared.queue.lock().await;
            queue.pop(now)
        };
        let Some(queued) = next else {
            let sleep_until = shared.queue.lock().await.next_ready(now);
            let nap = sleep_until
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
                _ = leading.changed() => {}
            }
            continue;
        };
        schedule_one(&client, &shared, &framework, &mut state, queued).await;
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

async fn schedule_one(
    client: &Client,
    shared: &Arc<Shared>,
    framework: &Framework,
    state: &mut SchedulerState,
    queued: crate::framework::queue::QueuedPod,
) {
    let pod = queued.pod.clone();
    let info = Arc::new(PodInfo::new((*pod).clone()));
    let nodes = shared.cache.lock().await.snapshot();
    let decision = match framework.schedule(&info, &nodes, state) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(pod = %pod_name(&pod), error = %e, "scheduling failed");
            let message = e.to_string();
            record_failure(client, &pod, &message).await;
            shared
                .queue
                .lock()
                .await
                .requeue_unschedulable(pod, queued.attempts, Instant::now());
            return;
        }
    };
    let Some(node) = decision.selected.clone() else {
        let message = decision
            .failure_message()
            .unwrap_or_else(|| "no node fits".to_string());
        record_failure(client, &pod, &message).await;
        shared
            .queue
            .lock()
            .await
            .requeue_unschedulable(pod, queued.attempts, Instant::now());
        return;
    };
    let key = pod_key(&pod);
    if let Err(e) = shared.cache.lock().await.assume(info.clone(), &node) {
        tracing::warn!(pod = %key, error = %e, "assuming the pod");
    }
    shared.queue.lock().await.done(&key);
    let client = client.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        match bind(&client, &pod, &node).await {
            Ok(()) => {
                if let Err(e) = shared
                    .cache
                    .lock()
                    .await
                    .finish_binding(&key, Instant::now())
                {
                    tracing::debug!(pod = %key, error = %e, "finishing the binding");
                }
                record_scheduled(&client, &pod, &node, &decision).await;
            }
            Err(e) => {
                tracing::warn!(pod = %pod_name(&pod), node, error = %e, "binding failed");
                if let Err(e) = shared.cache.lock().await.forget(&key) {
                    tracing::debug!(pod = %key, error = %e, "forgetting the pod");
                }
                if !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409) {
                    shared
                        .queue
                        .lock()
                        .await
                        .requeue_backoff(pod, queued.attempts, Instant::now());
                }
                shared.wake.notify_one();
            }
        }
    });
}

async fn bind(client: &Client, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    pods.create_subresource::<Binding, serde_json::Value>(
        "binding",
        &name,
        &PostParams::default(),
        &binding,
    )
    .await?;
    Ok(())
}

/// The Scheduled event, as upstream words it.
async fn record_scheduled(client: &Client, pod: &Pod, node: &str, _decision: &Decision) {
    let message = format!("Successfully assigned {} to {node}", pod_name(pod));
    emit_event(client, pod, "Normal", "Scheduled", &message).await;
}

/// FailedScheduling and PodScheduled=False with reason Unschedulable.
async fn record_failure(client: &Client, pod: &Pod, message: &str) {
    emit_event(client, pod, "Warning", "FailedScheduling", message).await;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": now_time(),
    }]}});
    if let Err(e) = pods
        .patch_status(
            &name,
            &PatchParams::default(),
            &kube::api::Patch::Strategic(patch),
        )
        .await
    {
        tracing::debug!(pod = %pod_name(pod), error = %e, "setting PodScheduled");
    }
}

async fn emit_event(client: &Client, pod: &Pod, kind: &str, reason: &str, message: &str) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let now = now_time();
    // One event per pod and reason, counted, as upstream's event aggregation does: a
    // pod that keeps failing updates its FailedScheduling event instead of adding one
    // per attempt.
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let event_name = format!(
        "{name}.{}.{}",
        uid.get(..8).unwrap_or(&uid),
        reason.to_ascii_lowercase()
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(event_name.clone()),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: Some(namespace.clone()),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(kind.into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now.clone()),
        event_time: Some(MicroTime(now.0)),
        reporting_component: Some("default-scheduler".into()),
        reporting_instance: Some("default-scheduler".into()),
        action: Some(
            if reason == "Scheduled" {
                "Binding"
            } else {
                "Scheduling"
            }
            .into(),
        ),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("default-scheduler".into()),
            host: None,
        }),
        ..Event::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let result = match events.create(&PostParams::default(), &event).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Seen before: count it again, with the latest message.
            match events.get(&event_name).await {
                Ok(existing) => {
                    let patch = serde_json::json!({
                        "count": existing.count.unwrap_or(1) + 1,
                        "message": message,
                        "lastTimestamp": now,
                    });
                    events
                        .patch(
                            &event_name,
                            &PatchParams::default(),
                            &kube::api::Patch::Merge(patch),
                        )
                        .await
                        .map(|_| ())
                }
                Err(e) => Err(e),
            }
        }
        other => other.map(|_| ()),
    };
    if let Err(e) = result {
        tracing::debug!(pod = %pod_name(pod), error = %e, "recording an event");
    }
}

fn now_time() -> Time {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Time(
        k8s_openapi::jiff::Timestamp::from_second(secs)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// `namespace/name`, for logs.
fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Upstream's periodic chores: assumed pods whose binding the watch never confirmed
/// expire (every second), and pods parked as unschedulable for too long get another
/// try (every 30 s).
async fn housekeeping(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        let now = Instant::now();
        let expired = shared.cache.lock().await.cleanup_expired(now);
        for key in &expired {
            tracing::warn!(pod = %key, "assumed pod expired before its binding was seen");
        }
        if ticks.is_multiple_of(30) {
            let moved = shared
                .queue
                .lock()
                .await
                .flush_unschedulable_older_than(now, MAX_UNSCHEDULABLE_DURATION);
            if moved > 0 {
                shared.wake.notify_one();
            }
        }
    }
}

/// Nodes into the cache; every node change may make a waiting pod fit.
async fn watch_nodes(client: Client, shared: Arc<Shared>) {
    let api: Api<Node> = Api::all(client);
    // With backoff: an unreachable API server must not turn the loop into a spin.
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "node watch");
                continue;
            }
        };
        let mut cache = shared.cache.lock().await;
        match event {
            watcher::Event::Apply(node) | watcher::Event::InitApply(node) => {
                cache.update_node(node)
            }
            watcher::Event::Delete(node) => {
                cache.remove_node(node.metadata.name.as_deref().unwrap_or(""));
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
        drop(cache);
        shared
            .queue
            .lock()
            .await
            .move_all_to_active_or_backoff(Instant::now());
        shared.wake.notify_one();
    }
}

/// Pods: bound ones into the cache, pending ones for this scheduler into the queue.
async fn watch_pods(client: Client, shared: Arc<Shared>, scheduler_name: String) {
    let api: Api<Pod> = Api::all(client);
    // With backoff: an unreachable API server must not turn the loop into a spin.
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "pod watch");
                continue;
            }
        };
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                let bound = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some_and(|n| !n.is_empty());
                let finished = matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                );
                if bound {
                    shared.queue.lock().await.delete(&pod_key(&pod));
                    let mut cache = shared.cache.lock().await;
                    if finished {
                        cache.remove_pod(&pod_key(&pod));
                    } else {
                        cache.update_pod(pod);
                    }
                } else if ours(&pod, &scheduler_name) && pod.metadata.deletion_timestamp.is_none() {
                    shared.queue.lock().await.add(Arc::new(pod), Instant::now());
                    shared.wake.notify_one();
                }
            }
            watcher::Event::Delete(pod) => {
                shared.queue.lock().await.delete(&pod_key(&pod));
                shared.cache.lock().await.remove_pod(&pod_key(&pod));
                shared
                    .queue
                    .lock()
                    .await
                    .move_all_to_active_or_backoff(Instant::now());
                shared.wake.notify_one();
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

fn ours(pod: &Pod, scheduler_name: &str) -> bool {
    pod.spec
        .as_ref()
        .map(|s| s.scheduler_name.as_deref().unwrap_or("default-scheduler") == scheduler_name)
        .unwrap_or(false)
}
