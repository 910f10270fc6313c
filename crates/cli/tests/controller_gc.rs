//! The garbage collector and the namespace controller inside `mast server`.
//!
//! Owners and dependents are ConfigMaps, Secrets and Leases wired together by hand
//! with ownerReferences: kinds no other controller acts on, so whatever happens to
//! them is the collector's doing. Every wait polls live reads against a deadline.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{Backend, Server, unique_name};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// How long one step may take to converge.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// No single kubectl call may take longer than this.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(90);

/// Polls `check` until it returns `Ok`; panics with its last `Err` at the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(state) => state,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `kubectl --kubeconfig <server's> <args>`; panics (with the server log) if it
/// fails or outlives its deadline.
fn kubectl(server: &Server, args: &[&str]) -> String {
    let run = server.run_kubectl(args, KUBECTL_TIMEOUT);
    if !run.status.success() {
        server.fail(&format!(
            "kubectl {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        ));
    }
    run.stdout
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the namespace");
}

/// A reference to `owner`, blocking its foreground deletion or not.
fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().expect("owner name"),
        uid: owner.meta().uid.clone().expect("owner uid"),
        block_owner_deletion: Some(block),
        controller: None,
    }
}

fn uids(refs: &Option<Vec<OwnerReference>>) -> Vec<String> {
    refs.iter().flatten().map(|r| r.uid.clone()).collect()
}

/// One test namespace's ConfigMaps and Secrets.
struct Env {
    configmaps: Api<ConfigMap>,
    secrets: Api<Secret>,
}

impl Env {
    fn new(client: &kube::Client, ns: &str) -> Self {
        Env {
            configmaps: Api::namespaced(client.clone(), ns),
            secrets: Api::namespaced(client.clone(), ns),
        }
    }

    async fn configmap(
        &self,
        name: &str,
        owners: Vec<OwnerReference>,
        finalizers: &[&str],
    ) -> ConfigMap {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
            "data": {"k": "v"},
        }))
        .expect("configmap");
        self.configmaps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap_or_else(|e| panic!("create configmap {name}: {e}"))
    }

    async fn secret(&self, name: &str, owners: Vec<OwnerReference>) -> Secret {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": owners},
            "stringData": {"k": "v"},
        }))
        .expect("secret");
        self.secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("create secret {name}: {e}"))
    }

    async fn configmap_gone(&self, name: &str) {
        let api = &self.configmaps;
        eventually(&format!("configmap {name} to be deleted"), || async move {
            match api.get_opt(name).await {
                Ok(None) => Ok(()),
                Ok(Some(cm)) => Err(format!("still there: {:?}", cm.metadata)),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    async fn secret_gone(&self, name: &str) {
        let api = &self.secrets;
        eventually(&format!("secret {name} to be deleted"), || async move {
            match api.get_opt(name).await {
                Ok(None) => Ok(()),
                Ok(Some(s)) => Err(format!("still there: {:?}", s.metadata)),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// Waits until the ConfigMap exists with exactly these owner uids.
    async fn configmap_owned_by(&self, name: &str, want: &[&str]) {
        let api = &self.configmaps;
        eventually(
            &format!("configmap {name} to be owned by {want:?}"),
            || async move {
                let cm = api
                    .get_opt(name)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "it was deleted".to_string())?;
                let have = uids(&cm.metadata.owner_references);
                if have == want {
                    Ok(())
                } else {
                    Err(format!("owners {have:?}"))
                }
            },
        )
        .await
    }
}

fn uid_of<K: Resource>(object: &K) -> &str {
    object.meta().uid.as_deref().expect("a uid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_garbage_collector_follows_owner_references_and_propagation_policies() {
    let server = Server::start_control_plane(Backend::Sqlite, &[]);
    let client = server.client().await;
    let ns = unique_name("gc");
    create_namespace(&client, &ns).await;
    let env = Env::new(&client, &ns);

    // Background (the default): dependents whose only owner went are deleted; one
    // with another owner only loses the reference.
    let owner = env.configmap("bg-owner", vec![], &[]).await;
    let keeper = env.configmap("bg-keeper", vec![], &[]).await;
    env.configmap("bg-dep", vec![owner_ref(&owner, false)], &[])
        .await;
    env.secret("bg-secret", vec![owner_ref(&owner, true)]).await;
    env.configmap(
        "bg-shared",
        vec![owner_ref(&owner, false), owner_ref(&keeper, false)],
        &[],
    )
    .await;
    env.configmaps
        .delete("bg-owner", &DeleteParams::default())
        .await
        .expect("delete the owner");
    env.configmap_gone("bg-dep").await;
    env.secret_gone("bg-secret").await;
    env.configmap_owned_by("bg-shared", &[uid_of(&keeper)])
        .await;

    // A dependent of an owner that never existed is collected.
    let ghost = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "never-was".into(),
        uid: "00000000-0000-4000-8000-000000000000".into(),
        ..OwnerReference::default()
    };
    env.configmap("ghost-dep", vec![ghost], &[]).await;
    env.configmap_gone("ghost-dep").await;

    // Orphan through the API: the owner goes, its dependent stays without the reference.
    let owner = env.configmap("orphan-owner", vec![], &[]).await;
    env.configmap("orphan-dep", vec![owner_ref(&owner, true)], &[])
        .await;
    env.configmaps
        .delete("orphan-owner", &DeleteParams::orphan())
        .await
        .expect("delete the owner, orphaning");
    env.configmap_gone("orphan-owner").await;
    env.configmap_owned_by("orphan-dep", &[]).await;

    // Orphan through kubectl.
    let owner = env.configmap("kubectl-owner", vec![], &[]).await;
    env.secret("kubectl-dep", vec![owner_ref(&owner, false)])
        .await;
    kubectl(
        &server,
        &[
            "delete",
            "configmap",
            "kubectl-owner",
            "-n",
            &ns,
            "--cascade=orphan",
        ],
    );
    env.configmap_gone("kubectl-owner").await;
    let secret = env
        .secrets
        .get("kubectl-dep")
        .await
        .expect("the orphan stays");
    assert!(
        uids(&secret.metadata.owner_references).is_empty(),
        "{:?}",
        secret.metadata
    );

    // Foreground: the owner stays (marked) while a blocking dependent exists. The
    // blocking dependent holds a finalizer of its own, so it outlives its deletion.
    let owner = env.configmap("fg-owner", vec![], &[]).await;
    env.configmap(
        "fg-blocker",
        vec![owner_ref(&owner, true)],
        &["example.com/hold"],
    )
    .await;
    env.configmap("fg-free", vec![owner_ref(&owner, false)], &[])
        .await;
    env.configmaps
        .delete("fg-owner", &DeleteParams::foreground())
        .await
        .expect("delete the owner in the foreground");
    env.configmap_gone("fg-free").await;
    let configmaps = &env.configmaps;
    eventually(
        "the blocking dependent to be marked for deletion",
        || async move {
            let cm = configmaps
                .get("fg-blocker")
                .await
                .map_err(|e| e.to_string())?;
            cm.metadata
                .deletion_timestamp
                .map(|_| ())
                .ok_or("not marked".to_string())
        },
    )
    .await;
    let waiting = env
        .configmaps
        .get("fg-owner")
        .await
        .expect("the owner waits");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        waiting.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    env.configmaps
        .patch(
            "fg-blocker",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release the blocking dependent");
    env.configmap_gone("fg-blocker").await;
    env.configmap_gone("fg-owner").await;

    // A cluster-scoped owner: a Node's Lease in kube-node-lease goes with the Node.
    let node_name = unique_name("gc-node");
    let node: Node =
        serde_json::from_value(json!({"metadata": {"name": node_name}})).expect("node");
    let node = Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create the node");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": node_name, "ownerReferences": [owner_ref(&node, false)]},
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": 40},
    }))
    .expect("lease");
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create the lease");
    Api::<Node>::all(client.clone())
        .delete(&node_name, &DeleteParams::default())
        .await
        .expect("delete the node");
    let leases = &leases;
    let node_name = &node_name;
    eventually("the node's lease to be deleted", || async move {
        match leases.get_opt(node_name).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("still there".to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;

    // The keeper was never anyone's dependent: untouched throughout.
    assert!(
        env.configmaps
            .get_opt("bg-keeper")
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_its_content_then_the_namespace() {
    // The node of the last case has no kubelet: it must not be declared lost (and its
    // pods evicted) while the test runs.
    let server = Server::start_control_plane(
        Backend::Sqlite,
        &[
            "--node-monitor-grace-period",
            "1h",
            "--node-startup-grace-period",
            "1h",
        ],
    );
    let client = server.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());

    // With kubectl, which waits until the namespace is gone.
    let ns = unique_name("ns-del");
    create_namespace(&client, &ns).await;
    fill_namespace(&client, &ns).await;
    kubectl(&server, &["delete", "namespace", &ns, "--timeout=60s"]);
    assert!(
        namespaces
            .get_opt(&ns)
            .await
            .expect("get the namespace")
            .is_none(),
        "kubectl returned, so the namespace is gone"
    );
    let left = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list");
    assert!(
        left.items.is_empty(),
        "content left behind: {:?}",
        left.items
    );

    // Content held by a finalizer keeps the namespace Terminating, with conditions
    // that say why, until the finalizer goes.
    let ns = unique_name("ns-held");
    create_namespace(&client, &ns).await;
    fill_namespace(&client, &ns).await;
    let env = Env::new(&client, &ns);
    env.configmap("held", vec![], &["example.com/hold"]).await;
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete the namespace");
    env.secret_gone("secret").await;
    let namespaces = &namespaces;
    let name = &ns;
    let terminating = eventually("the namespace to report what holds it", || async move {
        let current = namespaces.get(name).await.map_err(|e| e.to_string())?;
        let status = current.status.clone().unwrap_or_default();
        let held = status.conditions.iter().flatten().any(|c| {
            c.type_ == "NamespaceFinalizersRemaining"
                && c.status == "True"
                && c.message
                    .as_deref()
                    .is_some_and(|m| m.contains("example.com/hold in 1 resource instances"))
        });
        if held {
            Ok(current)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    let status = terminating.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Terminating"));
    let remaining = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "NamespaceContentRemaining")
        .expect("the content condition");
    assert_eq!(remaining.status, "True");
    assert_eq!(
        remaining.message.as_deref(),
        Some("Some resources are remaining: configmaps. has 1 resource instances")
    );
    env.configmaps
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release the held configmap");
    eventually("the namespace to be deleted", || async move {
        match namespaces.get_opt(name).await {
            Ok(None) => Ok(()),
            Ok(Some(ns)) => Err(format!("{:?}", ns.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;

    // A pod bound to a node waits for its kubelet; until it is gone, the rest of the
    // content stays (pods go first) and the namespace says what remains.
    let ns = unique_name("ns-pods");
    create_namespace(&client, &ns).await;
    let env = Env::new(&client, &ns);
    env.configmap("config", vec![], &[]).await;
    let node_name = unique_name("ns-node");
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": node_name},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create the node");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bound"},
        "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the bound pod");
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete the namespace");
    let name = &ns;
    eventually(
        "the namespace to report its terminating pod",
        || async move {
            let current = namespaces.get(name).await.map_err(|e| e.to_string())?;
            let status = current.status.unwrap_or_default();
            let waiting = status.conditions.iter().flatten().any(|c| {
                c.type_ == "NamespaceContentRemaining"
                    && c.message.as_deref()
                        == Some("Some resources are remaining: pods. has 1 resource instances")
            });
            if waiting {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await;
    let terminating = pods
        .get("bound")
        .await
        .expect("the pod waits for its kubelet");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert!(
        env.configmaps
            .get_opt("config")
            .await
            .expect("get")
            .is_some(),
        "other content waits for the pods"
    );
    // The kubelet's part: the containers stopped, the pod goes.
    pods.delete(
        "bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("finish the pod's deletion");
    env.configmap_gone("config").await;
    eventually("the namespace to be deleted", || async move {
        match namespaces.get_opt(name).await {
            Ok(None) => Ok(()),
            Ok(Some(ns)) => Err(format!("{:?}", ns.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

/// A ConfigMap, a Secret, a Service and a pod no node will run (no nodes exist).
async fn fill_namespace(client: &kube::Client, ns: &str) {
    let env = Env::new(client, ns);
    env.configmap("config", vec![], &[]).await;
    env.secret("secret", vec![]).await;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "svc"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
    }))
    .expect("service");
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &service)
        .await
        .expect("create the service");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "pod"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod");
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
}
