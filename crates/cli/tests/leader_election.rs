//! Leader election (crates/leader) against a real `mast server`, started without its own
//! scheduler and controller-manager so that nothing else elects. Each test runs its
//! electors in-process with the default timing (lease 2 s, renew deadline 1.5 s,
//! retry 250 ms) and prints the failover times it measured.
//!
//! Time bounds here are the protocol's (a Lease must not be taken before it expired; a
//! release hands over on the follower's next attempt), with slack for a loaded machine.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use leader::{ElectionConfig, Elector, FenceLayer, FenceSlot};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use common::{Backend, Server, unique_name};

const LEASE_DURATION: Duration = Duration::from_secs(2);
const RENEW_DEADLINE: Duration = Duration::from_millis(1500);
const RETRY_PERIOD: Duration = Duration::from_millis(250);
/// For a busy 2-core machine: scheduling delays, a slow first request.
const SLACK: Duration = Duration::from_millis(750);
/// How long the first leader may take to appear.
const FIRST_LEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// One elector running in this process.
struct Candidate {
    identity: String,
    leading: watch::Receiver<bool>,
    fence: FenceSlot,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Candidate {
    fn start(client: kube::Client, lease: &str, identity: &str) -> Self {
        let config = ElectionConfig {
            identity: identity.to_string(),
            ..ElectionConfig::new(lease)
        };
        assert_eq!(
            (
                config.lease_duration,
                config.renew_deadline,
                config.retry_period
            ),
            (LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD),
            "the test assumes the default timing"
        );
        let elector = Elector::new(client, config).expect("elector");
        let leading = elector.leading();
        let fence = elector.fence();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(elector.run(async move {
            let _ = stopped.await;
        }));
        Candidate {
            identity: identity.to_string(),
            leading,
            fence,
            stop: Some(stop),
            task,
        }
    }

    fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Graceful stop: the elector releases the Lease and returns.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the elector stops within 10s")
            .expect("the elector task did not panic");
    }
}

impl Drop for Candidate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches every change of both candidates' `leading` and records whether they were ever
/// true at once. A crashed candidate's receiver closes; from then on it counts as not
/// leading (its process would be gone).
struct Overlap {
    both: Arc<AtomicBool>,
    changes: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Overlap {
    fn watch(a: &Candidate, b: &Candidate) -> Self {
        let both = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(AtomicU64::new(0));
        let (mut ra, mut rb) = (a.leading.clone(), b.leading.clone());
        let (seen_both, counted) = (both.clone(), changes.clone());
        let task = tokio::spawn(async move {
            let (mut a_alive, mut b_alive) = (true, true);
            loop {
                let a_leads = a_alive && *ra.borrow_and_update();
                let b_leads = b_alive && *rb.borrow_and_update();
                if a_leads && b_leads {
                    seen_both.store(true, Ordering::SeqCst);
                }
                tokio::select! {
                    r = ra.changed(), if a_alive => a_alive = r.is_ok(),
                    r = rb.changed(), if b_alive => b_alive = r.is_ok(),
                    else => return,
                }
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        Overlap {
            both,
            changes,
            task,
        }
    }

    fn check(self) {
        self.task.abort();
        assert!(
            !self.both.load(Ordering::SeqCst),
            "two electors reported leading at the same time"
        );
        assert!(
            self.changes.load(Ordering::SeqCst) > 0,
            "the overlap monitor saw no change at all"
        );
    }
}

async fn lease(client: &kube::Client, name: &str) -> Lease {
    Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get(name)
        .await
        .expect("get the lease")
}

fn holder(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

fn transitions(lease: &Lease) -> i32 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0)
}

/// Polls until exactly one of `candidates` leads; returns its index.
async fn wait_for_one_leader(candidates: &[&Candidate], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let leaders: Vec<usize> = (0..candidates.len())
            .filter(|i| candidates[*i].is_leading())
            .collect();
        assert!(leaders.len() <= 1, "several leaders at once: {leaders:?}");
        if let [one] = leaders[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `candidate` leads; returns how long that took.
async fn time_until_leading(candidate: &mut Candidate, within: Duration) -> Duration {
    let start = Instant::now();
    tokio::time::timeout(within, candidate.leading.wait_for(|l| *l))
        .await
        .unwrap_or_else(|_| panic!("{} did not lead within {within:?}", candidate.identity))
        .expect("the elector is running");
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_graceful_handover_within_a_second() {
    let server = Server::start_with(Backend::Sqlite, &[]);
    let client = server.client().await;
    let name = unique_name("election");
    let mut a = Candidate::start(client.clone(), &name, "candidate-a");
    let mut b = Candidate::start(client.clone(), &name, "candidate-b");
    let overlap = Overlap::watch(&a, &b);

    let first = wait_for_one_leader(&[&a, &b], FIRST_LEADER_TIMEOUT).await;
    let (leader, follower) = if first == 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let held = lease(&client, &name).await;
    assert_eq!(holder(&held), leader.identity);
    let spec = held.spec.clone().expect("spec");
    assert_eq!(spec.lease_duration_seconds, Some(2));
    assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());
    let term = transitions(&held);
    assert_eq!(leader.fence.current().transitions, term);
    assert_eq!(leader.fence.current().holder, leader.identity);

    // Well past a lease duration, the leader keeps the Lease by renewing it.
    let watch_until = Instant::now() + LEASE_DURATION * 2;
    while Instant::now() < watch_until {
        assert!(leader.is_leading() && !follower.is_leading());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let renewed = lease(&client, &name).await;
    assert_eq!(holder(&renewed), leader.identity);
    assert_ne!(
        renewed.spec.as_ref().and_then(|s| s.renew_time.clone()),
        spec.renew_time,
        "the leader did not renew"
    );

    let stopping = Instant::now();
    leader.stop().await;
    assert!(!leader.is_leading());
    let handover = time_until_leading(follower, Duration::from_secs(5)).await;
    let since_stop = stopping.elapsed();
    println!(
        "graceful handover: the follower led {handover:?} after the leader's release \
         ({since_stop:?} after the stop was asked)"
    );
    assert!(
        since_stop < Duration::from_secs(1),
        "graceful handover took {since_stop:?}"
    );
    let taken = lease(&client, &name).await;
    assert_eq!(holder(&taken), follower.identity);
    assert_eq!(transitions(&taken), term + 1);
    assert_eq!(follower.fence.current().transitions, term + 1);
    // The former leader keeps its (now stale) fence.
    assert_eq!(leader.fence.current().transitions, term);

    follower.stop().await;
    let released = lease(&client, &name).await;
    assert_eq!(holder(&released), "");
    assert_eq!(
        released
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds),
        Some(1)
    );
    overlap.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_after_the_lease_duration() {
    let server = Server::start_with(Backend::Sqlite, &[]);
    let client = server.client().await;
    let name = unique_name("election");
    let mut a = Candidate::start(client.clone(), &name, "candidate-a");
    let mut b = Candidate::start(client.clone(), &name, "candidate-b");
    let overlap = Overlap::watch(&a, &b);

    let first = wait_for_one_leader(&[&a, &b], FIRST_LEADER_TIMEOUT).await;
    let (leader, follower) = if first == 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // Let the follower observe a few renewals, as it would in a running cluster.
    tokio::time::sleep(RETRY_PERIOD * 4).await;
    assert!(!follower.is_leading());
    let term = transitions(&lease(&client, &name).await);

    // A crash: the elector vanishes without releasing.
    leader.task.abort();
    let took = time_until_leading(follower, LEASE_DURATION + Duration::from_secs(5)).await;
    println!("crash failover: the follower led {took:?} after the leader died");
    // The follower's clock started when it last saw a renewal, at most one retry period
    // before the crash: taking over sooner would mean trusting an unexpired Lease.
    assert!(
        took >= LEASE_DURATION - RETRY_PERIOD,
        "took over an unexpired lease after {took:?}"
    );
    assert!(
        took <= LEASE_DURATION + RETRY_PERIOD * 2 + SLACK,
        "crash failover took {took:?}"
    );
    let taken = lease(&client, &name).await;
    assert_eq!(holder(&taken), follower.identity);
    assert_eq!(transitions(&taken), term + 1);
    follower.stop().await;
    overlap.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_steps_down_within_the_renew_deadline_when_the_api_server_dies() {
    let mut server = Server::start_with(Backend::Sqlite, &[]);
    let client = server.client().await;
    let name = unique_name("election");
    let mut only = Candidate::start(client.clone(), &name, "candidate-a");
    time_until_leading(&mut only, FIRST_LEADER_TIMEOUT).await;
    let fence = only.fence.current();

    server.kill_now();
    let killed = Instant::now();
    tokio::time::timeout(RENEW_DEADLINE + SLACK, only.leading.wait_for(|l| !*l))
        .await
        .unwrap_or_else(|_| panic!("still leading {:?} after the kill", killed.elapsed()))
        .expect("the elector is running");
    let took = killed.elapsed();
    println!("api server killed: the leader stepped down after {took:?}");
    assert_eq!(only.fence.current(), fence, "the fence must not change");
    // It keeps competing rather than exiting.
    assert!(!only.task.is_finished());
    only.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_steps_down_within_the_renew_deadline_when_the_api_server_hangs() {
    let server = Server::start_with(Backend::Sqlite, &[]);
    let client = server.client().await;
    let name = unique_name("election");
    let mut only = Candidate::start(client.clone(), &name, "candidate-a");
    time_until_leading(&mut only, FIRST_LEADER_TIMEOUT).await;

    // SIGSTOP: connections stay open and requests are never answered.
    server.send_signal("STOP");
    let stopped = Instant::now();
    let stepped_down =
        tokio::time::timeout(RENEW_DEADLINE + SLACK, only.leading.wait_for(|l| !*l)).await;
    let took = stopped.elapsed();
    // Resume before asserting, so that the server's Drop and the release do not wait on
    // a stopped process.
    server.send_signal("CONT");
    stepped_down
        .unwrap_or_else(|_| panic!("still leading {took:?} after the server hung"))
        .expect("the elector is running");
    println!("api server hung: the leader stepped down after {took:?}");

    // Once the server answers again, nobody else took the Lease: same holder, same term.
    time_until_leading(&mut only, LEASE_DURATION * 5).await;
    let back = lease(&client, &name).await;
    assert_eq!(holder(&back), only.identity);
    assert_eq!(transitions(&back), only.fence.current().transitions);
    only.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_fenced_writes_are_rejected() {
    let server = Server::start_with(Backend::Sqlite, &[]);
    let client = server.client().await;
    let name = unique_name("election");
    let mut a = Candidate::start(client.clone(), &name, "candidate-a");
    time_until_leading(&mut a, FIRST_LEADER_TIMEOUT).await;

    // What a component builds: its own client with the elector's fence on every write.
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(server.kubeconfig_path()).expect("kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let fenced_client = |slot: FenceSlot| {
        kube::client::ClientBuilder::try_from(config.clone())
            .expect("client builder")
            .with_layer(&FenceLayer::new(slot))
            .build()
    };
    let a_maps: Api<ConfigMap> = Api::default_namespaced(fenced_client(a.fence.clone()));
    let map = |name: &str| ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    a_maps
        .create(&PostParams::default(), &map("while-leading"))
        .await
        .expect("the leader's fenced write is accepted");
    assert_eq!(a.fence.rejections(), 0);

    // b takes over after a's graceful stop; a's client still carries a's old fence.
    let mut b = Candidate::start(client.clone(), &name, "candidate-b");
    a.stop().await;
    time_until_leading(&mut b, Duration::from_secs(5)).await;
    let rejected = a_maps
        .create(&PostParams::default(), &map("after-deposed"))
        .await
        .expect_err("a deposed leader's write must be rejected");
    match &rejected {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409, "{status:?}");
            assert!(status.message.starts_with("write fenced"), "{status:?}");
        }
        other => panic!("expected a 409, got {other}"),
    }
    assert_eq!(a.fence.rejections(), 1);

    let b_maps: Api<ConfigMap> = Api::default_namespaced(fenced_client(b.fence.clone()));
    b_maps
        .create(&PostParams::default(), &map("new-leader"))
        .await
        .expect("the new leader's fenced write is accepted");
    assert_eq!(b.fence.rejections(), 0);
    b.stop().await;
}
