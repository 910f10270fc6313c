//! The etcd backend keeps working when a member dies: requests move to the surviving
//! members and an open watch resumes from where it was, with no gap and no duplicate.

use std::time::Duration;

use bytes::Bytes;
use store::testing::EtcdCluster;
use store::testing::conformance::next_events;
use store::{Error, EtcdConfig, EtcdStore, Store};

/// Which member currently leads, asked of member 0's view of the cluster.
async fn leader_index(cluster: &EtcdCluster) -> usize {
    let endpoints = cluster.endpoints();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let store = EtcdStore::connect(EtcdConfig::new(vec![endpoint.clone()]))
            .await
            .expect("connect to member");
        let status = store.client().status().await.expect("member status");
        let header = status.header().expect("status header");
        if status.leader() == header.member_id() {
            return i;
        }
    }
    panic!("no member reports itself leader");
}

/// Creates `key`, retrying while the cluster is unavailable. A create whose answer was
/// lost may have applied; the retry then finds it and checks it is ours.
async fn create_through_failover(store: &EtcdStore, key: &str, value: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match store
            .create(
                key.as_bytes(),
                Bytes::copy_from_slice(value.as_bytes()),
                None,
            )
            .await
        {
            Ok(_) => return,
            Err(Error::AlreadyExists { .. }) => {
                let kv = store
                    .get(key.as_bytes())
                    .await
                    .expect("get after ambiguous create");
                assert_eq!(
                    kv.value,
                    value.as_bytes(),
                    "{key} holds someone else's value"
                );
                return;
            }
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("create {key} during failover: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_death_of_the_leader() {
    let mut cluster = EtcdCluster::start(3).await.expect("start a 3-member etcd");
    let store = cluster.store().await.expect("connect to all members");
    let from = store.current_revision().await.expect("revision") + 1;
    let mut watch = store.watch(b"/failover/", from).await.expect("watch");

    const KEYS: usize = 60;
    for i in 0..KEYS {
        if i == KEYS / 3 {
            let leader = leader_index(&cluster).await;
            cluster.kill(leader);
        }
        create_through_failover(&store, &format!("/failover/{i:03}"), &format!("v{i}")).await;
    }

    let events = next_events(&mut watch, KEYS).await;
    let keys: Vec<String> = events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.kv.key).into_owned())
        .collect();
    let want: Vec<String> = (0..KEYS).map(|i| format!("/failover/{i:03}")).collect();
    assert_eq!(
        keys, want,
        "every create exactly once, in order, across the failover"
    );
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));
    let page = store
        .list(b"/failover/", 0, 0, None)
        .await
        .expect("list after failover");
    assert_eq!(page.items.len(), KEYS);
}

/// The member serving a watch dies; the watch resumes on another member from its next
/// revision. The watch's store first knows only the doomed member, so the watch is
/// certainly on it, then learns a second endpoint before the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_when_its_member_dies() {
    let mut cluster = EtcdCluster::start(3).await.expect("start a 3-member etcd");
    let endpoints = cluster.endpoints();
    let writer = EtcdStore::connect(EtcdConfig::new(vec![
        endpoints[1].clone(),
        endpoints[2].clone(),
    ]))
    .await
    .expect("connect writer");
    let watcher = EtcdStore::connect(EtcdConfig::new(vec![endpoints[0].clone()]))
        .await
        .expect("connect watcher");
    let from = writer.current_revision().await.expect("revision") + 1;
    let mut watch = watcher.watch(b"/resume/", from).await.expect("watch");

    let mut revisions = Vec::new();
    for i in 0..10 {
        let key = format!("/resume/before-{i}");
        revisions.push(
            writer
                .create(key.as_bytes(), Bytes::from("x"), None)
                .await
                .expect("create"),
        );
    }
    // Half of them are read before the kill, the rest must come after the resume.
    let before = next_events(&mut watch, 5).await;
    watcher
        .client()
        .add_endpoint(&endpoints[1])
        .await
        .expect("add endpoint");
    cluster.kill(0);
    for i in 0..10 {
        let key = format!("/resume/after-{i}");
        create_through_failover(&writer, &key, "x").await;
        revisions.push(writer.get(key.as_bytes()).await.expect("get").mod_revision);
    }
    let after = next_events(&mut watch, 15).await;
    let got: Vec<i64> = before.iter().chain(&after).map(|e| e.revision()).collect();
    assert_eq!(got, revisions, "no gap and no duplicate across the resume");
}
