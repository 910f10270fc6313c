//! Deleting everything in a namespace: every namespaced resource the API server
//! serves (found by discovery), pods first.
//!
//! Upstream's `namespacedResourcesDeleter`: per resource, a deletecollection (or a
//! list and one delete per object where deletecollection is not served), with
//! propagationPolicy Background, then a live list of what is left (pods waiting for
//! their kubelet, objects held by finalizers). Pods go first and everything else only
//! once no pod is left (upstream's ordered namespace deletion), so nothing a running
//! pod uses disappears under it.

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};

use super::conditions::ContentReport;

/// One namespaced resource to empty.
#[derive(Debug, Clone)]
pub struct Deletable {
    pub api: ApiResource,
    pub delete_collection: bool,
}

/// Deletes what the namespace holds; reports what is left and what failed.
pub async fn delete_all(client: &Client, namespace: &str) -> ContentReport {
    let mut report = ContentReport::default();
    let resources = match discover(client).await {
        Ok(r) => r,
        Err(e) => {
            report.discovery_failure = Some(e.to_string());
            return report;
        }
    };
    let (pods, rest) = deletion_order(resources);
    for resource in &pods {
        delete_resource(client, namespace, resource, &mut report).await;
    }
    if !report.remaining.is_empty() {
        // Pods still terminating: the rest waits for them.
        return report;
    }
    for resource in &rest {
        delete_resource(client, namespace, resource, &mut report).await;
    }
    report
}

/// Namespaced resources that can be listed and deleted, at each group's preferred
/// version.
async fn discover(client: &Client) -> Result<Vec<Deletable>, kube::Error> {
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => d,
        Err(_) => Discovery::new(client.clone()).run().await?,
    };
    Ok(discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter_map(|(api, caps)| deletable(api, &caps))
        .collect())
}

fn deletable(api: ApiResource, caps: &ApiCapabilities) -> Option<Deletable> {
    let usable = caps.scope == Scope::Namespaced
        && caps.supports_operation(verbs::DELETE)
        && caps.supports_operation(verbs::LIST);
    usable.then(|| Deletable {
        delete_collection: caps.supports_operation(verbs::DELETE_COLLECTION),
        api,
    })
}

/// Pods, then everything else.
pub fn deletion_order(resources: Vec<Deletable>) -> (Vec<Deletable>, Vec<Deletable>) {
    resources
        .into_iter()
        .partition(|r| r.api.group.is_empty() && r.api.plural == "pods")
}

/// Upstream's name for a resource in conditions: `pods.`, `leases.coordination.k8s.io`.
pub fn resource_name(api: &ApiResource) -> String {
    format!("{}.{}", api.plural, api.group)
}

/// Deletes one resource's objects in the namespace and records what is left.
async fn delete_resource(
    client: &Client,
    namespace: &str,
    resource: &Deletable,
    report: &mut ContentReport,
) {
    let name = resource_name(&resource.api);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource.api);
    let params = DeleteParams::background();
    let deleted = if resource.delete_collection {
        api.delete_collection(&params, &ListParams::default())
            .await
            .map(|_| ())
    } else {
        delete_each(&api, &params).await
    };
    if let Err(e) = deleted {
        report.failures.push(format!("{name}: {e}"));
        return;
    }
    match api.list(&ListParams::default()).await {
        Ok(left) if !left.items.is_empty() => {
            report.remaining.insert(name, left.items.len());
            for finalizer in left
                .items
                .iter()
                .flat_map(|o| o.metadata.finalizers.iter().flatten())
            {
                *report.finalizers.entry(finalizer.clone()).or_default() += 1;
            }
        }
        Ok(_) => {}
        Err(e) => report.failures.push(format!("{name}: {e}")),
    }
}

/// Where deletecollection is not served: one delete per object (already gone is fine).
async fn delete_each(api: &Api<DynamicObject>, params: &DeleteParams) -> Result<(), kube::Error> {
    for object in api.list(&ListParams::default()).await?.items {
        let Some(name) = object.metadata.name.as_deref() else {
            continue;
        };
        match api.delete(name, params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(scope: Scope, ops: &[&str]) -> ApiCapabilities {
        ApiCapabilities {
            scope,
            subresources: Vec::new(),
            operations: ops.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn erase<K: kube::Resource<DynamicType = ()>>() -> ApiResource {
        ApiResource::erase::<K>(&())
    }

    #[test]
    fn only_namespaced_listable_deletable_resources_are_emptied() {
        use k8s_openapi::api::core::v1::{ConfigMap, Node};
        let all = [verbs::LIST, verbs::DELETE, verbs::DELETE_COLLECTION];
        let cm =
            deletable(erase::<ConfigMap>(), &caps(Scope::Namespaced, &all)).expect("configmaps");
        assert!(cm.delete_collection);
        let one_by_one = deletable(
            erase::<ConfigMap>(),
            &caps(Scope::Namespaced, &[verbs::LIST, verbs::DELETE]),
        )
        .expect("still deletable");
        assert!(!one_by_one.delete_collection);
        assert!(deletable(erase::<Node>(), &caps(Scope::Cluster, &all)).is_none());
        assert!(
            deletable(
                erase::<ConfigMap>(),
                &caps(Scope::Namespaced, &[verbs::LIST])
            )
            .is_none()
        );
    }

    #[test]
    fn pods_go_first() {
        use k8s_openapi::api::coordination::v1::Lease;
        use k8s_openapi::api::core::v1::{ConfigMap, Pod};
        let of = |api| Deletable {
            api,
            delete_collection: true,
        };
        let (first, then) = deletion_order(vec![
            of(erase::<ConfigMap>()),
            of(erase::<Pod>()),
            of(erase::<Lease>()),
        ]);
        let names = |v: &[Deletable]| v.iter().map(|r| resource_name(&r.api)).collect::<Vec<_>>();
        assert_eq!(names(&first), ["pods."]);
        assert_eq!(names(&then), ["configmaps.", "leases.coordination.k8s.io"]);
    }
}
