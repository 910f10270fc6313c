//! The Deployment's status, summed from its ReplicaSets' (`calculateStatus`), written
//! only when it changed. `kubectl get deploy` shows READY, UP-TO-DATE and AVAILABLE
//! from it, and `kubectl rollout status` waits on it.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

use super::DeploymentController;
use super::progress::{
    AVAILABLE, MINIMUM_AVAILABLE, MINIMUM_UNAVAILABLE, new_condition, set_condition,
};
use super::replicas::{self, desired};
use super::rolling::max_unavailable;
use crate::Error;

/// Upstream's counts are plain ints with `omitempty`: zero is not written.
fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The status the ReplicaSets `all` (the new one among them) add up to, with the
/// recorded conditions carried over and `Available` brought up to date.
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) -> Result<DeploymentStatus, Error> {
    let recorded = d.status.clone().unwrap_or_default();
    let rss = || all.iter().copied();
    let available = replicas::total_available(rss());
    // More available than wanted happens while scaling down; that is not negative
    // unavailability.
    let unavailable = (replicas::total_spec(rss()) - available).max(0);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(replicas::total_actual(rss())),
        updated_replicas: nonzero(new_rs.map_or(0, replicas::actual)),
        ready_replicas: nonzero(replicas::total_ready(rss())),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero(unavailable),
        terminating_replicas: replicas::total_terminating(rss()),
        collision_count: recorded.collision_count,
        conditions: recorded.conditions,
    };
    let condition = if available >= desired(d) - max_unavailable(d)? {
        new_condition(
            AVAILABLE,
            "True",
            MINIMUM_AVAILABLE,
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        new_condition(
            AVAILABLE,
            "False",
            MINIMUM_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, condition);
    Ok(status)
}

impl DeploymentController {
    /// Writes the Deployment's status (and its annotations, which the status
    /// subresource also takes, as upstream's), keeping `d` at the stored version.
    pub(super) async fn update_status(&self, d: &mut Deployment) -> Result<(), Error> {
        let namespace = d.metadata.namespace.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &namespace);
        *d = api.replace_status(&name, &PostParams::default(), d).await?;
        Ok(())
    }

    /// Writes `status` unless it is what the Deployment already records.
    pub(super) async fn write_status_if_changed(
        &self,
        d: &mut Deployment,
        status: DeploymentStatus,
    ) -> Result<(), Error> {
        if d.status.clone().unwrap_or_default() == status {
            return Ok(());
        }
        d.status = Some(status);
        self.update_status(d).await
    }

    /// Status without any rollout progress (`syncDeploymentStatus`): for scaling,
    /// paused and deleted Deployments.
    pub(super) async fn sync_deployment_status(
        &self,
        d: &mut Deployment,
        old: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<(), Error> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let status = calculate_status(d, &all, new_rs, super::progress::now())?;
        self.write_status_if_changed(d, status).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deployment::progress::condition;
    use crate::deployment::replicas::test_support::{rolling, rs};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn counts_come_from_the_replica_sets() {
        let mut d = rolling(5, json!(1), json!(1));
        d.metadata.generation = Some(3);
        d.status = Some(DeploymentStatus {
            collision_count: Some(2),
            ..DeploymentStatus::default()
        });
        let old = rs("old", 3, 3, 1);
        let mut new = rs("new", 3, 1, 2);
        if let Some(s) = new.status.as_mut() {
            s.ready_replicas = Some(2);
            s.replicas = 2;
        }
        let status = calculate_status(&d, &[&old, &new], Some(&new), at(10)).unwrap_or_default();
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.replicas, Some(5));
        assert_eq!(status.updated_replicas, Some(2));
        assert_eq!(status.ready_replicas, Some(5));
        assert_eq!(status.available_replicas, Some(4));
        assert_eq!(status.unavailable_replicas, Some(2));
        assert_eq!(status.collision_count, Some(2));
        let available = condition(&status, AVAILABLE).cloned().unwrap_or_default();
        assert_eq!(available.status.as_deref(), Some("True"), "4 >= 5 - 1");
        assert_eq!(available.reason.as_deref(), Some(MINIMUM_AVAILABLE));
    }

    #[test]
    fn availability_below_the_minimum_and_zeros_omitted() {
        let d = rolling(4, json!(1), json!(0));
        let new = rs("new", 4, 0, 2);
        let status = calculate_status(&d, &[&new], Some(&new), at(10)).unwrap_or_default();
        assert_eq!(status.available_replicas, None);
        assert_eq!(status.unavailable_replicas, Some(4));
        let available = condition(&status, AVAILABLE).cloned().unwrap_or_default();
        assert_eq!(available.status.as_deref(), Some("False"));
        assert_eq!(available.reason.as_deref(), Some(MINIMUM_UNAVAILABLE));
    }

    #[test]
    fn more_available_than_wanted_is_not_negative() {
        let d = rolling(1, json!(1), json!(0));
        let mut new = rs("new", 1, 1, 2);
        if let Some(s) = new.status.as_mut() {
            s.available_replicas = Some(3);
        }
        let status = calculate_status(&d, &[&new], Some(&new), at(10)).unwrap_or_default();
        assert_eq!(status.unavailable_replicas, None);
    }
}
