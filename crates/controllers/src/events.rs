//! Events about objects (`kubectl describe` shows them), recorded in the background.
//!
//! Reconciles never wait for an event: they hand it to a bounded channel and one task
//! writes them; when the API server is slow and the channel is full, events are
//! dropped rather than slowing the controllers. An identical event (same object,
//! reason and message) counts up the existing one, as upstream's aggregation does.
//! They are old-style core/v1 Events, as client-go's recorder writes them: no
//! `eventTime`, which would make the API server require the new-style fields.

use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;

/// Events waiting to be written before new ones are dropped.
const BACKLOG: usize = 1024;

/// Normal or Warning, as upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Event>,
    component: String,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the writer task.
    pub fn new(client: Client, component: &str) -> Self {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        tokio::spawn(write_events(client, receiver));
        Recorder {
            sender,
            component: component.to_string(),
        }
    }

    /// Records an event about `object`; never waits.
    pub fn record<K>(&self, object: &K, kind: EventType, reason: &str, message: impl Into<String>)
    where
        K: Resource<DynamicType = ()>,
    {
        let message = message.into();
        let meta = object.meta();
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone().unwrap_or_default();
        let mut hasher = DefaultHasher::new();
        (&meta.uid, reason, &message).hash(&mut hasher);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:016x}", hasher.finish())),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                name: Some(name),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(format!("{kind:?}")),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now.clone()),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            ..Event::default()
        };
        if self.sender.try_send(event).is_err() {
            tracing::debug!(reason, "event dropped: the backlog is full");
        }
    }
}

async fn write_events(client: Client, mut receiver: mpsc::Receiver<Event>) {
    while let Some(event) = receiver.recv().await {
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let name = event.metadata.name.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        let result = match api.create(&PostParams::default(), &event).await {
            Err(kube::Error::Api(status)) if status.code == 409 => match api.get(&name).await {
                Ok(existing) => {
                    let patch = serde_json::json!({
                        "count": existing.count.unwrap_or(1) + 1,
                        "lastTimestamp": event.last_timestamp,
                    });
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                        .map(|_| ())
                }
                Err(e) => Err(e),
            },
            other => other.map(|_| ()),
        };
        if let Err(e) = result {
            tracing::debug!(event = %name, error = %e, "recording an event");
        }
    }
}
