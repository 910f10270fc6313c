//! `mast describe`: kubectl's describers. `TYPE [NAME…]`, `TYPE/NAME…`, `-l`, `-A`;
//! each object is read again and laid out as kubectl 1.32 lays it out, with the
//! events that involve it.
//!
//! Layout: [`tabwriter`] (Go's text/tabwriter) and [`text`] (kubectl's shared
//! formats) make the text; [`events`] finds and prints events; one module per group
//! of kinds ([`pod`], [`apps`], [`service`], [`node`], [`misc`] with the generic
//! describer for every other kind); [`containers`], [`volumes`] and [`quantity`] are
//! the pieces pods and templates share.

pub mod apps;
pub mod containers;
pub mod events;
pub mod gosort;
pub mod misc;
pub mod node;
pub mod pod;
pub mod quantity;
pub mod service;
pub mod tabwriter;
pub mod text;
pub mod volumes;

use clap::Args;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams};

use super::{Connection, Resource, Session};
use events::Involved;

/// Flags of `mast describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// `TYPE [NAME…]`, `TYPE/NAME…`, or `TYPE1,TYPE2`.
    pub resources: Vec<String>,
    /// Only objects whose labels match this selector (`app=web`, `tier in (a,b)`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Objects in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show the events involving each object.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub show_events: bool,
}

/// One object to describe.
#[derive(Debug, Clone)]
struct Target {
    resource: Resource,
    namespace: Option<String>,
    name: String,
}

pub async fn run(args: DescribeArgs) -> anyhow::Result<()> {
    let session = Session::connect(&args.connection)?;
    if args.resources.is_empty() {
        anyhow::bail!(
            "You must specify the type of resource to describe. Use \"kubectl api-resources\" for a complete list of supported resources."
        );
    }
    let selector = args.selector.clone().unwrap_or_default();
    let (types, names) = split_args(&args.resources)?;
    if !selector.is_empty() && !matches!(names, Names::None) {
        anyhow::bail!("name cannot be provided when a selector is specified");
    }
    let namespace = (!args.all_namespaces).then(|| session.namespace.clone());
    let mut errors = Vec::new();
    let mut targets = Vec::new();
    match names {
        // `TYPE[,TYPE]`: every object of each type.
        Names::None => {
            for t in &types {
                let resource = session.resolve(t).await?;
                let api = session.api(&resource, namespace.as_deref());
                match api.list(&ListParams::default().labels(&selector)).await {
                    Ok(list) => targets.extend(list.items.into_iter().map(|o| Target {
                        resource: resource.clone(),
                        namespace: o.metadata.namespace.clone(),
                        name: o.metadata.name.clone().unwrap_or_default(),
                    })),
                    Err(e) => errors.push(super::error_line(&e.into())),
                }
            }
        }
        Names::Same(names) => {
            let resource = session.resolve(&types[0]).await?;
            for name in names {
                targets.push(Target {
                    resource: resource.clone(),
                    namespace: Some(session.namespace.clone()),
                    name,
                });
            }
        }
        Names::Each(pairs) => {
            for (t, name) in pairs {
                targets.push(Target {
                    resource: session.resolve(&t).await?,
                    namespace: Some(session.namespace.clone()),
                    name,
                });
            }
        }
    }
    let mixed_types = {
        let mut kinds: Vec<&str> = targets
            .iter()
            .map(|t| t.resource.api.kind.as_str())
            .collect();
        kinds.dedup();
        kinds.len() > 1
    };
    let mut outputs = Vec::new();
    for target in &targets {
        match describe(&session, target, args.show_events).await {
            Ok(text) => outputs.push(text),
            Err(e) => {
                let is_404 = matches!(&e, kube::Error::Api(s) if s.code == 404);
                // kubectl's one `TYPE NAME` that is not found describes every object
                // whose name starts with NAME instead.
                if is_404 && args.resources.len() == 2 && !args.resources[0].contains('/') {
                    match describe_prefixed(&session, target, args.show_events).await {
                        Ok(Some(text)) => {
                            print!("{text}");
                            return Ok(());
                        }
                        Ok(None) => {}
                        Err(e) => errors.push(super::error_line(&e.into())),
                    }
                }
                let line = super::error_line(&e.into());
                if !errors.contains(&line) {
                    errors.push(line);
                }
            }
        }
    }
    // Like kubectl's builder, a missing object among several types prints nothing else.
    if !mixed_types || errors.is_empty() {
        print!("{}", outputs.join("\n\n"));
    }
    if targets.is_empty() && errors.is_empty() {
        match &namespace {
            None => eprintln!("No resources found"),
            Some(ns) => eprintln!("No resources found in {ns} namespace."),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    for line in &errors {
        eprintln!("{line}");
    }
    super::exit_reported()
}

/// How names were given.
enum Names {
    None,
    /// `TYPE NAME…`.
    Same(Vec<String>),
    /// `TYPE/NAME…`.
    Each(Vec<(String, String)>),
}

/// The types and names in the arguments, as kubectl's resource builder reads them.
fn split_args(args: &[String]) -> anyhow::Result<(Vec<String>, Names)> {
    if args.iter().all(|a| a.contains('/')) {
        let mut pairs = Vec::new();
        for a in args {
            let (t, name) = a.split_once('/').unwrap_or((a, ""));
            if t.is_empty() || name.is_empty() {
                anyhow::bail!(
                    "arguments in resource/name form must have a single resource and name"
                );
            }
            pairs.push((t.to_string(), name.to_string()));
        }
        let types = pairs.iter().map(|(t, _)| t.clone()).collect();
        return Ok((types, Names::Each(pairs)));
    }
    if args.iter().any(|a| a.contains('/')) {
        anyhow::bail!(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'"
        );
    }
    let types: Vec<String> = args[0]
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if args.len() == 1 {
        return Ok((types, Names::None));
    }
    if types.len() > 1 {
        anyhow::bail!("you may only specify a single resource type");
    }
    Ok((types, Names::Same(args[1..].to_vec())))
}

/// Every object of the target's type whose name starts with the target's name, each
/// followed by a newline (kubectl's `DescribeMatchingResources`); `None` if none does.
async fn describe_prefixed(
    session: &Session,
    target: &Target,
    show_events: bool,
) -> Result<Option<String>, kube::Error> {
    let api = session.api(&target.resource, target.namespace.as_deref());
    let list = api.list(&ListParams::default()).await?;
    let mut text = String::new();
    for o in list.items {
        let name = o.metadata.name.clone().unwrap_or_default();
        if !name.starts_with(&target.name) {
            continue;
        }
        let one = Target {
            resource: target.resource.clone(),
            namespace: o.metadata.namespace.clone(),
            name,
        };
        text.push_str(&describe(session, &one, show_events).await?);
        text.push('\n');
    }
    Ok((!text.is_empty()).then_some(text))
}

/// Reads `target` and describes it with its kind's describer.
async fn describe(
    session: &Session,
    target: &Target,
    show_events: bool,
) -> Result<String, kube::Error> {
    let client = &session.client;
    let ns = target.namespace.as_deref().unwrap_or(&session.namespace);
    let name = target.name.as_str();
    let events_for = |kind: Option<&'static str>, meta: &kube::api::ObjectMeta| {
        let namespace = meta.namespace.clone().unwrap_or_default();
        let uid = meta.uid.clone();
        let name = name.to_string();
        async move {
            if !show_events {
                return None;
            }
            Some(
                events::search(
                    client,
                    &Involved {
                        name: &name,
                        namespace: &namespace,
                        kind,
                        uid: uid.as_deref(),
                    },
                )
                .await,
            )
        }
    };
    let api = &target.resource.api;
    Ok(match (api.group.as_str(), api.kind.as_str()) {
        ("", "Pod") => {
            let pod = Api::<Pod>::namespaced(client.clone(), ns).get(name).await?;
            // kubectl asks for a pod's events without their kind.
            let events = events_for(None, &pod.metadata).await;
            pod::describe(&pod, events)
        }
        ("apps", "Deployment") => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            let events = events_for(Some("Deployment"), &d.metadata).await;
            let owned = apps::owned_replicasets(client, &d).await.ok();
            apps::describe_deployment(&d, owned.as_ref(), events)
        }
        ("apps", "ReplicaSet") => {
            let rs = Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            let selector = selector_string(&rs.spec.selector);
            let phases = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default().labels(&selector))
                .await
                .map(|list| apps::pod_phases(&list.items, rs.metadata.uid.as_deref().unwrap_or("")))
                .map_err(|e| e.to_string());
            let events = events_for(Some("ReplicaSet"), &rs.metadata).await;
            apps::describe_replicaset(&rs, phases, events)
        }
        ("", "Service") => {
            let svc = Api::<Service>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            let slices = Api::<EndpointSlice>::namespaced(client.clone(), ns)
                .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let events = events_for(Some("Service"), &svc.metadata).await;
            service::describe_service(&svc, &slices, events)
        }
        ("", "Endpoints") => {
            let ep = Api::<Endpoints>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            let events = events_for(Some("Endpoints"), &ep.metadata).await;
            service::describe_endpoints(&ep, events)
        }
        ("", "Node") => {
            let node = Api::<Node>::all(client.clone()).get(name).await?;
            let pods = Api::<Pod>::all(client.clone())
                .list(&ListParams::default().fields(&format!(
                    "spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed"
                )))
                .await?
                .items;
            let lease = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
                .get(name)
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) => s.message,
                    other => other.to_string(),
                });
            let events = if show_events {
                // Kubelets name a node by its name where controllers use its uid.
                let uid = node.metadata.uid.clone().unwrap_or_default();
                let mut found = Vec::new();
                for uid in [uid.as_str(), name] {
                    let involved = Involved {
                        name,
                        namespace: "",
                        kind: Some("Node"),
                        uid: Some(uid),
                    };
                    found.extend(events::search(client, &involved).await);
                }
                Some(found)
            } else {
                None
            };
            node::describe(&node, &pods, lease, events)
        }
        ("", "Namespace") => {
            let ns = Api::<Namespace>::all(client.clone()).get(name).await?;
            misc::describe_namespace(&ns)
        }
        ("", "ConfigMap") => {
            let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            let events = events_for(Some("ConfigMap"), &cm.metadata).await;
            misc::describe_configmap(&cm, events)
        }
        ("", "Secret") => {
            let secret = Api::<Secret>::namespaced(client.clone(), ns)
                .get(name)
                .await?;
            misc::describe_secret(&secret)
        }
        (_, kind) => {
            let api: Api<DynamicObject> = session.api(&target.resource, Some(ns));
            let object = api.get(name).await?;
            let kind = kind.to_string();
            let events = if show_events {
                let involved = Involved {
                    name,
                    namespace: object.metadata.namespace.as_deref().unwrap_or(""),
                    kind: Some(&kind),
                    uid: object.metadata.uid.as_deref(),
                };
                Some(events::search(client, &involved).await)
            } else {
                None
            };
            let json = serde_json::to_value(&object).unwrap_or_default();
            misc::describe_generic(&json, events)
        }
    })
}

/// How long ago `ts` was, as kubectl prints ages.
pub fn ago(ts: Timestamp) -> String {
    super::age(Some(&Time(ts)))
}

/// Upstream's `LabelSelectorAsSelector(s).String()`: `""` for an empty selector.
pub fn selector_string(selector: &LabelSelector) -> String {
    api::selectors::LabelSelector::from_api(selector)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Upstream's `metav1.FormatLabelSelector`: the selector, `<none>` when empty,
/// `<error>` when it does not convert.
pub fn format_label_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_string();
    };
    match api::selectors::LabelSelector::from_api(selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s.to_string(),
        Err(_) => "<error>".to_string(),
    }
}
