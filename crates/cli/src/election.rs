//! Leader election for the leader-gated components (scheduler, controller-manager), as
//! the subcommands set it up: upstream's `--leader-elect*` flags, one Lease per
//! component in kube-system, and a client whose writes carry the component's fence.

use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Args};
use tokio::sync::watch;
use tower::Layer;

/// Upstream's leader-election flags, with defaults chosen for fast failover: a crashed
/// leader's Lease expires after 2 s and a follower polls every 250 ms, so a new leader
/// acts within about 2.5 s (upstream's 15 s / 10 s / 2 s give 15–17 s).
#[derive(Debug, Clone, Args)]
pub struct LeaderElectionArgs {
    /// Elect a leader before doing any work (`--leader-elect=false` to run alone).
    #[arg(
        long,
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub leader_elect: bool,
    /// How long a Lease holds without renewal before followers may take it.
    #[arg(long, default_value = "2s", value_parser = crate::flags::duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long a leader keeps trying to renew before it stops all leader work.
    #[arg(long, default_value = "1500ms", value_parser = crate::flags::duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often leaders renew and followers try to acquire.
    #[arg(long, default_value = "250ms", value_parser = crate::flags::duration)]
    pub leader_elect_retry_period: Duration,
}

impl LeaderElectionArgs {
    fn config(&self, lease: &str) -> leader::ElectionConfig {
        leader::ElectionConfig {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
            ..leader::ElectionConfig::new(lease)
        }
    }
}

/// A component's view of its election: whether it leads now, and the client its work
/// goes through (fenced when elected).
pub struct Gate {
    pub leading: watch::Receiver<bool>,
    pub client: kube::Client,
    elector: Option<tokio::task::JoinHandle<()>>,
    /// Kept so that an unelected component's `leading` never reports a closed channel.
    _always: Option<watch::Sender<bool>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("leading", &*self.leading.borrow())
            .field("elected", &self.elector.is_some())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Starts the election for `lease` (kube-system), or, with `--leader-elect=false`,
    /// a gate that always leads with a plain client. The elector runs until `stop` turns
    /// true, then releases the Lease if it holds it.
    pub fn start(
        args: &LeaderElectionArgs,
        lease: &str,
        connection: &kubeclient::ClientConfig,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Gate> {
        if !args.leader_elect {
            let (always, leading) = watch::channel(true);
            return Ok(Gate {
                leading,
                client: connection.client()?,
                elector: None,
                _always: Some(always),
            });
        }
        let config = args.config(lease);
        config
            .validate()
            .with_context(|| format!("leader election for {lease}"))?;
        let elector = leader::Elector::new(connection.client()?, config)?;
        let leading = elector.leading();
        let fence = leader::FenceLayer::new(elector.fence());
        let client = kube::Client::new(
            fence.layer(connection.service()?),
            connection.default_namespace().to_string(),
        );
        let task = tokio::spawn(elector.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        Ok(Gate {
            leading,
            client,
            elector: Some(task),
            _always: None,
        })
    }

    /// Waits (bounded) for the elector to release its Lease after `stop` was set.
    pub async fn finished(self) {
        if let Some(task) = self.elector {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}
