//! Which ReplicaSets a Deployment owns (upstream's `ClaimReplicaSets`): those with its
//! controller reference that its selector still matches. Orphans its selector matches
//! are adopted; owned ones it stopped matching are released.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::DeploymentController;
use super::replicas::{name, uid};
use crate::Error;
use crate::claim::Claim;
use crate::selector;

/// Upstream's `ClaimObject` for a ReplicaSet of the Deployment.
pub fn decide(d: &Deployment, rs: &ReplicaSet, matches: bool) -> Claim {
    crate::claim::decide(&d.metadata, &rs.metadata, matches)
}

impl DeploymentController {
    /// The ReplicaSets the Deployment owns after adopting and releasing.
    pub(super) async fn claim_replica_sets(
        &self,
        d: &Deployment,
    ) -> Result<Vec<ReplicaSet>, Error> {
        let namespace = d.metadata.namespace.clone().unwrap_or_default();
        let spec_selector = d.spec.selector.clone();
        let mut owned = Vec::new();
        let mut may_adopt: Option<bool> = None;
        for rs in self.ctx.replica_sets.list_namespace(&namespace) {
            let matches = selector::matches(&spec_selector, rs.metadata.labels.as_ref())
                .map_err(Error::Invalid)?;
            match decide(d, &rs, matches) {
                Claim::Keep => owned.push((*rs).clone()),
                Claim::Ignore => {}
                Claim::Release => self.release(d, &rs).await?,
                Claim::Adopt => {
                    // Checked once per claim, against the API rather than the cache:
                    // a Deployment deleted and re-created under the same name must
                    // not take the old one's ReplicaSets.
                    let allowed = match may_adopt {
                        Some(allowed) => allowed,
                        None => *may_adopt.insert(self.can_adopt(d).await?),
                    };
                    if !allowed {
                        continue;
                    }
                    if let Some(adopted) = self.adopt(d, &rs).await? {
                        owned.push(adopted);
                    }
                }
            }
        }
        Ok(owned)
    }

    /// Whether the live Deployment is this one and not being deleted
    /// (`RecheckDeletionTimestamp`).
    async fn can_adopt(&self, d: &Deployment) -> Result<bool, Error> {
        let fresh = self
            .deployments_api(d)
            .get(d.metadata.name.as_deref().unwrap_or(""))
            .await?;
        if fresh.metadata.uid != d.metadata.uid {
            return Err(Error::Invalid(format!(
                "original Deployment {}/{} is gone: got uid {:?}, wanted {:?}",
                d.metadata.namespace.as_deref().unwrap_or(""),
                d.metadata.name.as_deref().unwrap_or(""),
                fresh.metadata.uid,
                d.metadata.uid
            )));
        }
        Ok(fresh.metadata.deletion_timestamp.is_none())
    }

    /// Adds our controller reference; the ReplicaSet's uid in the patch makes it apply
    /// only to the object we looked at. None when it is gone.
    async fn adopt(&self, d: &Deployment, rs: &ReplicaSet) -> Result<Option<ReplicaSet>, Error> {
        let patch = json!({
            "metadata": {
                "ownerReferences": [{
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": d.metadata.name,
                    "uid": d.metadata.uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
                "uid": uid(rs),
            }
        });
        let result = self
            .replica_sets_api(d)
            .patch(name(rs), &PatchParams::default(), &Patch::Strategic(patch))
            .await;
        crate::ignore_not_found(result)
    }

    /// Drops our owner reference from a ReplicaSet the selector no longer matches.
    async fn release(&self, d: &Deployment, rs: &ReplicaSet) -> Result<(), Error> {
        let patch = json!({
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": d.metadata.uid}],
                "uid": uid(rs),
            }
        });
        let result = self
            .replica_sets_api(d)
            .patch(name(rs), &PatchParams::default(), &Patch::Strategic(patch))
            .await;
        crate::ignore_not_found(result).map(|_| ())
    }

    pub(super) fn replica_sets_api(&self, d: &Deployment) -> Api<ReplicaSet> {
        Api::namespaced(
            self.ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    pub(super) fn deployments_api(&self, d: &Deployment) -> Api<Deployment> {
        Api::namespaced(
            self.ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or(""),
        )
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    use super::*;
    use crate::deployment::replicas::test_support::{rolling, rs};

    fn owned_by(uid: &str, controller: bool) -> ReplicaSet {
        let mut r = rs("x", 1, 1, 1);
        r.metadata.namespace = Some("default".into());
        r.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: Some(true),
        }]);
        r
    }

    #[test]
    fn claims_follow_owner_and_selector() {
        let mut d = rolling(1, json!(1), json!(0));
        d.metadata.uid = Some("me".into());
        let mut orphan = rs("x", 1, 1, 1);
        orphan.metadata.namespace = Some("default".into());
        let mut deleting_orphan = orphan.clone();
        deleting_orphan.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        let cases = [
            ("ours and matching", owned_by("me", true), true, Claim::Keep),
            (
                "ours, not matching",
                owned_by("me", true),
                false,
                Claim::Release,
            ),
            (
                "someone else's",
                owned_by("other", true),
                true,
                Claim::Ignore,
            ),
            (
                "a non-controller owner is an orphan",
                owned_by("other", false),
                true,
                Claim::Adopt,
            ),
            ("orphan matching", orphan.clone(), true, Claim::Adopt),
            ("orphan not matching", orphan.clone(), false, Claim::Ignore),
            ("orphan being deleted", deleting_orphan, true, Claim::Ignore),
        ];
        for (what, set, matches, want) in cases {
            assert_eq!(decide(&d, &set, matches), want, "{what}");
        }
        d.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(decide(&d, &owned_by("me", true), false), Claim::Ignore);
        assert_eq!(decide(&d, &orphan, true), Claim::Ignore);
    }
}
