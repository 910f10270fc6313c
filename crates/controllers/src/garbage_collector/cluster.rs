//! The collector's seam to the API server: which resources exist (from discovery),
//! and the few calls it makes on objects of any kind (get, delete, patch metadata).
//! Tests put a fake behind the same trait.

use std::collections::HashMap;
use std::future::Future;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::ApiResource;

use super::decide::Policy;
use super::graph::group_of;
use crate::error::{Error, ignore_not_found};

/// One served resource: how to reach it, and whether it lives in namespaces.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub api: ApiResource,
    pub namespaced: bool,
}

/// The served resources by group and kind (owner references name a kind; any served
/// version of its group will do, as upstream's REST mapper does).
#[derive(Clone, Debug, Default)]
pub struct Resources {
    by_kind: HashMap<(String, String), ResourceInfo>,
}

impl Resources {
    pub fn insert(&mut self, info: ResourceInfo) {
        let key = (info.api.group.clone(), info.api.kind.clone());
        self.by_kind.insert(key, info);
    }

    /// The resource of `kind` in the group of `api_version`.
    pub fn get(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.by_kind
            .get(&(group_of(api_version).to_string(), kind.to_string()))
    }
}

/// Where one object is.
#[derive(Clone, Debug)]
pub struct Target {
    pub resource: ResourceInfo,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl Target {
    pub fn new(resource: &ResourceInfo, namespace: &str, name: &str) -> Self {
        Target {
            resource: resource.clone(),
            namespace: if resource.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.resource.api.kind, self.name)
        } else {
            write!(
                f,
                "{} {}/{}",
                self.resource.api.kind, self.namespace, self.name
            )
        }
    }
}

/// The calls the collector makes. 404s are answered as "nothing there" (`get`) or as
/// done (`delete`, `patch_metadata`): the object being gone is never an error here.
pub trait Cluster: Send + Sync + 'static {
    /// The object's metadata, read live (never from a cache).
    fn get(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Option<ObjectMeta>, Error>> + Send;

    /// Deletes the object if it still has `uid` (and, if given, `resource_version`).
    fn delete(
        &self,
        target: &Target,
        uid: &str,
        resource_version: Option<&str>,
        policy: Policy,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// A JSON merge patch of the object (metadata changes, with a resourceVersion
    /// precondition inside the patch).
    fn patch_metadata(
        &self,
        target: &Target,
        patch: serde_json::Value,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The real API server, through dynamic (untyped) APIs.
#[derive(Clone)]
pub struct ApiCluster {
    client: Client,
}

impl std::fmt::Debug for ApiCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCluster").finish_non_exhaustive()
    }
}

impl ApiCluster {
    pub fn new(client: Client) -> Self {
        ApiCluster { client }
    }

    fn api(&self, target: &Target) -> Api<DynamicObject> {
        if target.resource.namespaced {
            Api::namespaced_with(self.client.clone(), &target.namespace, &target.resource.api)
        } else {
            Api::all_with(self.client.clone(), &target.resource.api)
        }
    }
}

impl Cluster for ApiCluster {
    async fn get(&self, target: &Target) -> Result<Option<ObjectMeta>, Error> {
        Ok(self
            .api(target)
            .get_opt(&target.name)
            .await?
            .map(|o| o.metadata))
    }

    async fn delete(
        &self,
        target: &Target,
        uid: &str,
        resource_version: Option<&str>,
        policy: Policy,
    ) -> Result<(), Error> {
        let params = DeleteParams {
            propagation_policy: Some(match policy {
                Policy::Background => PropagationPolicy::Background,
                Policy::Foreground => PropagationPolicy::Foreground,
                Policy::Orphan => PropagationPolicy::Orphan,
            }),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: resource_version.map(str::to_string),
            }),
            ..DeleteParams::default()
        };
        ignore_not_found(self.api(target).delete(&target.name, &params).await)?;
        Ok(())
    }

    async fn patch_metadata(&self, target: &Target, patch: serde_json::Value) -> Result<(), Error> {
        ignore_not_found(
            self.api(target)
                .patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await,
        )?;
        Ok(())
    }
}
