//! The election against an in-memory Lease, on tokio's paused clock: every timing
//! below is exact, and nothing sleeps for real.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::coordination::v1::Lease;
use kube::core::Status;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, advance, sleep_until, timeout};

use crate::elector::{Event, State, step};
use crate::{ElectionConfig, Elector, LeaseApi, LeaseError};

/// How the fake API server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    /// Every call fails at once (connection refused).
    Down,
    /// Every call hangs forever (a stopped process).
    Hung,
}

type Interference = Box<dyn FnOnce(&mut Store) + Send>;

#[derive(Default)]
struct Store {
    lease: Option<Lease>,
    revision: u64,
    mode: Option<Mode>,
    /// Runs once, right after the next get answered: another writer racing us.
    after_get: Option<Interference>,
}

impl Store {
    fn put(&mut self, mut lease: Lease) -> Lease {
        self.revision += 1;
        lease.metadata.resource_version = Some(self.revision.to_string());
        self.lease = Some(lease.clone());
        lease
    }
}

/// One Lease with resourceVersion checks, shared by every elector of a test.
#[derive(Clone, Default)]
struct FakeLeases {
    store: Arc<Mutex<Store>>,
}

impl std::fmt::Debug for FakeLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeLeases")
    }
}

impl FakeLeases {
    fn set_mode(&self, mode: Mode) {
        self.store.lock().expect("lock").mode = Some(mode);
    }

    fn lease(&self) -> Option<Lease> {
        self.store.lock().expect("lock").lease.clone()
    }

    fn holder(&self) -> String {
        self.lease()
            .and_then(|l| l.spec?.holder_identity)
            .unwrap_or_default()
    }

    fn transitions(&self) -> i32 {
        self.lease()
            .and_then(|l| l.spec?.lease_transitions)
            .unwrap_or(-1)
    }

    fn interfere_after_get(&self, f: impl FnOnce(&mut Store) + Send + 'static) {
        self.store.lock().expect("lock").after_get = Some(Box::new(f));
    }

    /// Fails or hangs per the mode; `None` means answer.
    async fn gate(&self) -> Result<(), LeaseError> {
        let mode = self.store.lock().expect("lock").mode.unwrap_or(Mode::Up);
        match mode {
            Mode::Up => Ok(()),
            Mode::Down => Err(LeaseError::Request {
                name: self.key(),
                source: kube::Error::Api(
                    Status::failure("connection refused", "ServiceUnavailable")
                        .with_code(503)
                        .boxed(),
                ),
            }),
            Mode::Hung => futures::future::pending().await,
        }
    }
}

impl LeaseApi for FakeLeases {
    fn key(&self) -> String {
        "kube-system/test".to_string()
    }

    async fn get(&self) -> Result<Option<Lease>, LeaseError> {
        self.gate().await?;
        let mut store = self.store.lock().expect("lock");
        let answer = store.lease.clone();
        if let Some(interfere) = store.after_get.take() {
            interfere(&mut store);
        }
        Ok(answer)
    }

    async fn create(&self, lease: Lease) -> Result<Lease, LeaseError> {
        self.gate().await?;
        let mut store = self.store.lock().expect("lock");
        if store.lease.is_some() {
            return Err(LeaseError::Conflict { name: self.key() });
        }
        Ok(store.put(lease))
    }

    async fn replace(&self, lease: Lease) -> Result<Lease, LeaseError> {
        self.gate().await?;
        let mut store = self.store.lock().expect("lock");
        let current = store
            .lease
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone());
        if current.is_none() || current != lease.metadata.resource_version {
            return Err(LeaseError::Conflict { name: self.key() });
        }
        Ok(store.put(lease))
    }
}

fn config(identity: &str) -> ElectionConfig {
    ElectionConfig {
        namespace: "kube-system".to_string(),
        name: "test".to_string(),
        identity: identity.to_string(),
        ..ElectionConfig::new("test")
    }
}

const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_millis(1500);
const RETRY: Duration = Duration::from_millis(250);

fn following() -> State {
    State::Following { observed: None }
}

fn is_leading(state: &State) -> bool {
    matches!(state, State::Leading { .. })
}

#[tokio::test(start_paused = true)]
async fn acquires_a_missing_lease_by_creating_it() {
    let fake = FakeLeases::default();
    let a = config("a");
    let step = step(&fake, &a, following(), Instant::now()).await;
    assert_eq!(step.event, Some(Event::Acquired { transitions: 0 }));
    assert!(is_leading(&step.state));
    let spec = fake.lease().and_then(|l| l.spec).expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(2));
    assert_eq!(spec.lease_transitions, Some(0));
    assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());
    assert_eq!(step.next, Instant::now() + RETRY);
}

#[tokio::test(start_paused = true)]
async fn a_leader_renews_and_keeps_acquire_time_and_transitions() {
    let fake = FakeLeases::default();
    let a = config("a");
    let first = step(&fake, &a, following(), Instant::now()).await;
    let before = fake.lease().expect("lease");
    advance(RETRY).await;
    let second = step(&fake, &a, first.state, Instant::now()).await;
    assert_eq!(second.event, None);
    assert!(is_leading(&second.state));
    let after = fake.lease().expect("lease");
    assert_ne!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
    let (before, after) = (before.spec.expect("spec"), after.spec.expect("spec"));
    assert_eq!(after.acquire_time, before.acquire_time);
    assert_eq!(after.lease_transitions, Some(0));
    assert_eq!(after.holder_identity.as_deref(), Some("a"));
}

#[tokio::test(start_paused = true)]
async fn a_follower_takes_over_only_after_the_lease_duration_it_observed() {
    let fake = FakeLeases::default();
    let (a, b) = (config("a"), config("b"));
    step(&fake, &a, following(), Instant::now()).await;
    // a's renewTime is wall-clock "now"; pretend a's clock is an hour behind, which
    // must not make b think the Lease expired long ago.
    {
        let mut store = fake.store.lock().expect("lock");
        let mut lease = store.lease.clone().expect("lease");
        let spec = lease.spec.as_mut().expect("spec");
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        store.put(lease);
    }
    let first_seen = Instant::now();
    let mut b_state = following();
    loop {
        let now = Instant::now();
        let s = step(&fake, &b, b_state, now).await;
        b_state = s.state;
        if let Some(event) = s.event {
            assert_eq!(event, Event::Acquired { transitions: 1 });
            break;
        }
        assert!(now < first_seen + LEASE, "b did not take over at {now:?}");
        sleep_until(s.next).await;
    }
    let waited = Instant::now() - first_seen;
    assert!(
        waited >= LEASE && waited <= LEASE + RETRY,
        "took over after {waited:?}"
    );
    assert_eq!(fake.holder(), "b");
    assert_eq!(fake.transitions(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_renewed_lease_is_never_taken() {
    let fake = FakeLeases::default();
    let (a, b) = (config("a"), config("b"));
    let mut a_state = step(&fake, &a, following(), Instant::now()).await.state;
    let mut b_state = following();
    // Ten lease durations of a renewing and b trying every period.
    for _ in 0..80 {
        let sa = step(&fake, &a, a_state, Instant::now()).await;
        assert_eq!(sa.event, None);
        a_state = sa.state;
        let sb = step(&fake, &b, b_state, Instant::now()).await;
        assert_eq!(sb.event, None);
        b_state = sb.state;
        advance(RETRY).await;
    }
    assert_eq!(fake.holder(), "a");
    assert_eq!(fake.transitions(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_empty_holder_is_taken_at_once_and_counts_a_transition() {
    let fake = FakeLeases::default();
    let (a, b) = (config("a"), config("b"));
    let leading = step(&fake, &a, following(), Instant::now()).await.state;
    let State::Leading { lease, .. } = leading else {
        panic!("a does not lead");
    };
    // b first sees a holding it, so b's clock starts now.
    let b_state = step(&fake, &b, following(), Instant::now()).await.state;
    assert_eq!(fake.holder(), "a");
    let mut released = lease.clone();
    let spec = released.spec.as_mut().expect("spec");
    spec.holder_identity = Some(String::new());
    spec.lease_duration_seconds = Some(1);
    fake.replace(released).await.expect("release");

    let s = step(&fake, &b, b_state, Instant::now()).await;
    assert_eq!(s.event, Some(Event::Acquired { transitions: 1 }));
    assert_eq!(fake.holder(), "b");
}

#[tokio::test(start_paused = true)]
async fn a_write_race_is_lost_to_whoever_wrote_first() {
    let fake = FakeLeases::default();
    let (a, b, c) = (config("a"), config("b"), config("c"));
    // Creation race: b sees no Lease, then c creates it before b does.
    let c_racer = c.clone();
    fake.interfere_after_get(move |store| {
        let mut lease = Lease::default();
        lease.metadata.name = Some("test".to_string());
        lease.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(c_racer.identity.clone()),
            lease_duration_seconds: Some(2),
            lease_transitions: Some(0),
            ..Default::default()
        });
        store.put(lease);
    });
    let s = step(&fake, &b, following(), Instant::now()).await;
    assert_eq!(s.event, None, "b must not lead after losing the create");
    assert_eq!(fake.holder(), "c");

    // Replace race on an expired Lease: a reads it, b writes first, a's write conflicts.
    advance(LEASE * 2).await;
    let a_seen = step(&fake, &a, following(), Instant::now()).await;
    assert_eq!(a_seen.event, None, "a's first look starts its clock");
    advance(LEASE + RETRY).await;
    let b_config = b.clone();
    fake.interfere_after_get(move |store| {
        let mut lease = store.lease.clone().expect("lease");
        let spec = lease.spec.as_mut().expect("spec");
        spec.holder_identity = Some(b_config.identity.clone());
        spec.lease_transitions = Some(1);
        store.put(lease);
    });
    let s = step(&fake, &a, a_seen.state, Instant::now()).await;
    assert_eq!(s.event, None, "a must not lead after a conflicting write");
    assert!(!is_leading(&s.state));
    assert_eq!(fake.holder(), "b");
    assert_eq!(fake.transitions(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_steps_down_at_the_renew_deadline() {
    for mode in [Mode::Down, Mode::Hung] {
        let fake = FakeLeases::default();
        let a = config("a");
        let acquired = step(&fake, &a, following(), Instant::now()).await;
        let renewed_at = Instant::now();
        fake.set_mode(mode);
        let mut state = acquired.state;
        let mut next = acquired.next;
        let lost_at = loop {
            sleep_until(next).await;
            let s = step(&fake, &a, state, Instant::now()).await;
            state = s.state;
            next = s.next;
            if let Some(event) = s.event {
                assert!(matches!(event, Event::Lost { .. }), "{event:?}");
                break Instant::now();
            }
            assert!(is_leading(&state));
        };
        assert_eq!(
            lost_at - renewed_at,
            RENEW,
            "{mode:?}: stepped down after {:?}",
            lost_at - renewed_at
        );
        assert!(!is_leading(&state));
    }
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_lease_was_taken_steps_down_on_the_conflict() {
    let fake = FakeLeases::default();
    let a = config("a");
    let state = step(&fake, &a, following(), Instant::now()).await.state;
    {
        let mut store = fake.store.lock().expect("lock");
        let mut lease = store.lease.clone().expect("lease");
        let spec = lease.spec.as_mut().expect("spec");
        spec.holder_identity = Some("b".to_string());
        spec.lease_transitions = Some(1);
        store.put(lease);
    }
    let s = step(&fake, &a, state, Instant::now()).await;
    assert!(matches!(s.event, Some(Event::Lost { .. })), "{:?}", s.event);
    assert_eq!(fake.holder(), "b");
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_landed_unseen_is_recognised_as_ours() {
    let fake = FakeLeases::default();
    let a = config("a");
    let state = step(&fake, &a, following(), Instant::now()).await.state;
    // Our own renewal landed but its answer was lost: the Lease moved on, still ours.
    {
        let mut store = fake.store.lock().expect("lock");
        let lease = store.lease.clone().expect("lease");
        store.put(lease);
    }
    let s = step(&fake, &a, state, Instant::now()).await;
    assert_eq!(s.event, None);
    assert!(is_leading(&s.state));
    let s = step(&fake, &a, s.state, s.next).await;
    assert_eq!(s.event, None);
    assert!(is_leading(&s.state));
    assert_eq!(fake.transitions(), 0);
}

/// A running elector on the fake, with its shutdown trigger and receivers.
struct Running {
    leading: watch::Receiver<bool>,
    fence: crate::FenceSlot,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(fake: &FakeLeases, identity: &str) -> Self {
        let elector = Elector::with_api(fake.clone(), config(identity)).expect("elector");
        let leading = elector.leading();
        let fence = elector.fence();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(elector.run(async move {
            let _ = stopped.await;
        }));
        Running {
            leading,
            fence,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the elector stops in time")
            .expect("the elector task did not panic");
    }
}

async fn wait_leading(rx: &mut watch::Receiver<bool>, within: Duration) -> Duration {
    let start = Instant::now();
    timeout(within, rx.wait_for(|l| *l))
        .await
        .expect("became leader in time")
        .expect("elector alive");
    Instant::now() - start
}

#[tokio::test(start_paused = true)]
async fn run_hands_over_on_release_and_counts_transitions() {
    let fake = FakeLeases::default();
    let mut a = Running::start(&fake, "a");
    wait_leading(&mut a.leading, RETRY).await;
    assert_eq!(a.fence.current().header_value(), "kube-system/test/0/a");

    let mut b = Running::start(&fake, "b");
    // b must not lead while a renews.
    advance(LEASE * 3).await;
    assert!(!*b.leading.borrow());
    assert_eq!(b.fence.current().header_value(), "kube-system/test/0/b");

    let a_leading = a.leading.clone();
    let a_fence = a.fence.clone();
    a.stop().await;
    assert!(
        !*a_leading.borrow(),
        "a still claims to lead after stopping"
    );
    let spec = fake.lease().and_then(|l| l.spec).expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(""));
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert_eq!(spec.lease_transitions, Some(0));
    // The fence of a former leader is never cleared.
    assert_eq!(a_fence.current().header_value(), "kube-system/test/0/a");

    let took = wait_leading(&mut b.leading, Duration::from_secs(1)).await;
    assert!(took <= RETRY, "handover took {took:?}");
    assert_eq!(fake.transitions(), 1);
    assert_eq!(b.fence.current().header_value(), "kube-system/test/1/b");

    let mut a = Running::start(&fake, "a2");
    b.stop().await;
    wait_leading(&mut a.leading, Duration::from_secs(1)).await;
    assert_eq!(fake.transitions(), 2);
    assert_eq!(a.fence.current().header_value(), "kube-system/test/2/a2");
    a.stop().await;
}

#[tokio::test(start_paused = true)]
async fn run_steps_down_when_the_server_hangs_and_recovers_after() {
    let fake = FakeLeases::default();
    let mut a = Running::start(&fake, "a");
    wait_leading(&mut a.leading, RETRY).await;
    let hung_at = Instant::now();
    fake.set_mode(Mode::Hung);
    timeout(LEASE, a.leading.wait_for(|l| !*l))
        .await
        .expect("stepped down in time")
        .expect("elector alive");
    let after = Instant::now() - hung_at;
    assert!(after <= RENEW, "stepped down after {after:?}");
    // Its fence is kept for writes still in flight.
    assert_eq!(a.fence.current().header_value(), "kube-system/test/0/a");

    // The server comes back and nobody else took the Lease: a leads again, same term.
    fake.set_mode(Mode::Up);
    wait_leading(&mut a.leading, LEASE * 2).await;
    assert_eq!(fake.transitions(), 0);
    a.stop().await;
    assert_eq!(fake.holder(), "");
}

#[tokio::test(start_paused = true)]
async fn a_crashed_leader_is_replaced_after_the_lease_duration_and_never_two_lead() {
    let fake = FakeLeases::default();
    let mut a = Running::start(&fake, "a");
    wait_leading(&mut a.leading, RETRY).await;
    let mut b = Running::start(&fake, "b");
    advance(LEASE).await;

    // Both receivers, watched by one task: at no change may both say true.
    let (ra, rb) = (a.leading.clone(), b.leading.clone());
    let both = tokio::spawn(async move {
        let (mut ra, mut rb) = (ra, rb);
        loop {
            if *ra.borrow_and_update() && *rb.borrow_and_update() {
                return true;
            }
            tokio::select! {
                r = ra.changed() => if r.is_err() { return false },
                r = rb.changed() => if r.is_err() { return false },
            }
        }
    });

    // A crash: the task dies without releasing.
    a.task.abort();
    let took = wait_leading(&mut b.leading, LEASE * 2).await;
    assert!(
        took >= LEASE - RETRY && took <= LEASE + RETRY * 2,
        "took over {took:?} after the crash"
    );
    assert_eq!(fake.holder(), "b");
    b.stop().await;
    assert!(
        !both.await.expect("monitor"),
        "both claimed to lead at once"
    );
}
