//! The contract every [`Store`] backend keeps, as executable checks.
//!
//! Each public function checks one property on a fresh store and panics with a precise
//! message when it does not hold. Revisions are compared relatively, never as absolute
//! numbers: SQLite starts at 0, etcd at 1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::error::{Error, Revision};
use crate::types::{Event, EventKind, Guard, KeyValue};
use crate::{MAX_VALUE_SIZE, Store, WatchStream};

/// How long any single wait for a watch event may take before the check fails.
const EVENT_DEADLINE: Duration = Duration::from_secs(20);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Receives exactly `n` events, failing on an error item, an early end, or the deadline.
pub async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        match tokio::time::timeout(EVENT_DEADLINE, stream.next()).await {
            Ok(Some(Ok(event))) => events.push(event),
            Ok(Some(Err(e))) => panic!("watch failed after {} events: {e}", events.len()),
            Ok(None) => panic!("watch ended after {} of {n} events", events.len()),
            Err(_) => panic!(
                "no watch event within {EVENT_DEADLINE:?}; got {} of {n}: {events:?}",
                events.len()
            ),
        }
    }
    events
}

/// Asserts that the next event is a put of `key` at `revision`: proof that nothing
/// unexpected (a duplicate, an out-of-prefix key) was queued before it.
async fn expect_next_is(stream: &mut WatchStream, key: &str, revision: Revision) {
    let event = next_events(stream, 1).await.remove(0);
    assert_eq!(
        (event.kv.key.as_ref(), event.revision()),
        (key.as_bytes(), revision),
        "expected the marker write {key}@{revision} next, got {event:?}"
    );
}

/// Asserts that starting a watch at `from` reports compaction, from the call or as the
/// stream's first item.
async fn expect_watch_compacted<S: Store>(store: &S, prefix: &[u8], from: Revision) {
    match store.watch(prefix, from).await {
        Err(Error::Compacted { .. }) => {}
        Err(e) => panic!("watch from compacted revision {from}: expected Compacted, got {e}"),
        Ok(mut stream) => match tokio::time::timeout(EVENT_DEADLINE, stream.next()).await {
            Ok(Some(Err(Error::Compacted { .. }))) => {}
            other => {
                panic!("watch from compacted revision {from}: expected Compacted, got {other:?}")
            }
        },
    }
}

/// An event as the checks compare it: kind, key, value, revision, previous value and
/// previous mod revision.
type EventShape = (EventKind, Bytes, Bytes, Revision, Option<(Bytes, Revision)>);

fn shape(event: &Event) -> EventShape {
    (
        event.kind,
        event.kv.key.clone(),
        event.kv.value.clone(),
        event.revision(),
        event
            .prev
            .as_ref()
            .map(|p| (p.value.clone(), p.mod_revision)),
    )
}

/// Create, read, update, delete, re-create; revisions move as etcd's do.
pub async fn crud_and_revisions<S: Store>(store: &S) {
    let start = store.current_revision().await.expect("current revision");
    let created = store
        .create(b"/crud/a", b("1"), None)
        .await
        .expect("create");
    assert!(
        created > start,
        "create revision {created} must exceed {start}"
    );
    assert_eq!(store.current_revision().await.expect("revision"), created);
    assert_eq!(
        store.get(b"/crud/a").await.expect("get"),
        KeyValue {
            key: b("/crud/a"),
            value: b("1"),
            create_revision: created,
            mod_revision: created
        }
    );

    let updated = store
        .update(b"/crud/a", b("2"), created, None)
        .await
        .expect("update");
    assert!(updated > created);
    let kv = store.get(b"/crud/a").await.expect("get");
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (b("2"), created, updated),
        "an update keeps the create revision and moves the mod revision"
    );

    let deleted = store
        .delete(b"/crud/a", Some(updated), None)
        .await
        .expect("delete");
    assert!(deleted.revision > updated);
    assert_eq!(
        deleted.prev,
        KeyValue {
            key: b("/crud/a"),
            value: b("2"),
            create_revision: created,
            mod_revision: updated
        },
        "delete returns the value it removed"
    );
    assert!(matches!(
        store.get(b"/crud/a").await,
        Err(Error::NotFound { .. })
    ));

    let recreated = store
        .create(b"/crud/a", b("3"), None)
        .await
        .expect("re-create");
    assert!(recreated > deleted.revision);
    let kv = store.get(b"/crud/a").await.expect("get");
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (recreated, recreated),
        "a re-created key starts a new life"
    );
}

/// Failed writes report why, and change neither data nor revision.
pub async fn write_errors_change_nothing<S: Store>(store: &S) {
    let rev = store.create(b"/err/a", b("1"), None).await.expect("create");
    let before = store.current_revision().await.expect("revision");

    match store.create(b"/err/a", b("x"), None).await {
        Err(Error::AlreadyExists { key }) => assert_eq!(key, "/err/a"),
        other => panic!("create of an existing key: {other:?}"),
    }
    match store.update(b"/err/missing", b("x"), rev, None).await {
        Err(Error::NotFound { key }) => assert_eq!(key, "/err/missing"),
        other => panic!("update of a missing key: {other:?}"),
    }
    match store.update(b"/err/missing", b("x"), 0, None).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("update with expected revision 0 must not create: {other:?}"),
    }
    match store.delete(b"/err/missing", None, None).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("delete of a missing key: {other:?}"),
    }
    match store.update(b"/err/a", b("x"), rev - 1, None).await {
        Err(Error::Conflict {
            key,
            expected_revision,
            current_revision,
        }) => assert_eq!(
            (key.as_str(), expected_revision, current_revision),
            ("/err/a", rev - 1, rev)
        ),
        other => panic!("update with a stale revision: {other:?}"),
    }
    match store.delete(b"/err/a", Some(rev + 1000), None).await {
        Err(Error::Conflict {
            current_revision, ..
        }) => assert_eq!(current_revision, rev),
        other => panic!("delete with a wrong revision: {other:?}"),
    }

    assert_eq!(
        store.current_revision().await.expect("revision"),
        before,
        "failed writes must not consume revisions"
    );
    let kv = store.get(b"/err/a").await.expect("get");
    assert_eq!((kv.value, kv.mod_revision), (b("1"), rev));
    assert!(matches!(
        store.get(b"/err/missing").await,
        Err(Error::NotFound { .. })
    ));
}

/// The extra guard is checked atomically with every kind of write.
pub async fn guards<S: Store>(store: &S) {
    let lease = b"/guard/lease";
    let held = store
        .create(lease, b("leader-a"), None)
        .await
        .expect("lease");
    let guard = || Some(Guard::new(Bytes::from_static(lease), held));

    let a = store
        .create(b"/guard/a", b("1"), guard())
        .await
        .expect("guarded create");
    let a = store
        .update(b"/guard/a", b("2"), a, guard())
        .await
        .expect("guarded update");

    let taken = store
        .update(lease, b("leader-b"), held, None)
        .await
        .expect("lease taken over");
    let stale = |result: Result<(), Error>, what: &str| match result {
        Err(Error::GuardFailed {
            key,
            expected_revision,
            current_revision,
        }) => assert_eq!(
            (key.as_str(), expected_revision, current_revision),
            ("/guard/lease", held, taken),
            "{what}"
        ),
        other => panic!("{what} with a stale guard: {other:?}"),
    };
    stale(
        store.create(b"/guard/b", b("1"), guard()).await.map(drop),
        "create",
    );
    stale(
        store
            .update(b"/guard/a", b("3"), a, guard())
            .await
            .map(drop),
        "update",
    );
    stale(
        store.delete(b"/guard/a", Some(a), guard()).await.map(drop),
        "delete",
    );
    assert!(
        matches!(store.get(b"/guard/b").await, Err(Error::NotFound { .. })),
        "a write whose guard failed must not happen"
    );
    assert_eq!(
        store.get(b"/guard/a").await.expect("get").value,
        b("2"),
        "a write whose guard failed must not happen"
    );

    let fresh = Some(Guard::new(Bytes::from_static(lease), taken));
    store
        .delete(b"/guard/a", Some(a), fresh.clone())
        .await
        .expect("delete with the current guard");

    // Revision 0 guards absence.
    let absent = || Some(Guard::new(Bytes::from_static(b"/guard/none"), 0));
    store
        .create(b"/guard/c", b("1"), absent())
        .await
        .expect("guard on an absent key at revision 0");
    let present = Some(Guard::new(Bytes::from_static(lease), 0));
    match store.create(b"/guard/d", b("1"), present).await {
        Err(Error::GuardFailed {
            current_revision, ..
        }) => assert_eq!(current_revision, taken),
        other => panic!("absence guard on a present key: {other:?}"),
    }

    // A deleted guard key is at revision 0.
    store
        .delete(lease, None, None)
        .await
        .expect("release lease");
    match store.create(b"/guard/e", b("1"), fresh).await {
        Err(Error::GuardFailed {
            current_revision, ..
        }) => assert_eq!(current_revision, 0),
        other => panic!("guard on a deleted key: {other:?}"),
    }
}

/// Revisions are unique and strictly increasing, for sequential and concurrent writers.
pub async fn revisions_are_ordered<S: Store>(store: &S) {
    let mut last = store.current_revision().await.expect("revision");
    let start = last + 1;
    for i in 0..20 {
        let rev = store
            .create(format!("/order/seq/{i:02}").as_bytes(), b("x"), None)
            .await
            .expect("create");
        assert!(rev > last, "revision {rev} after {last}");
        last = rev;
    }
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..10 {
                let key = format!("/order/par/{t}/{i}");
                revs.push(
                    store
                        .create(key.as_bytes(), b("x"), None)
                        .await
                        .expect("create"),
                );
            }
            revs
        }));
    }
    let mut all: Vec<Revision> = (start..=last).collect();
    for task in tasks {
        let revs = task.await.expect("writer task");
        assert!(
            revs.windows(2).all(|w| w[0] < w[1]),
            "one writer's revisions must increase: {revs:?}"
        );
        all.extend(revs);
    }
    all.sort_unstable();
    let unique = all.len();
    all.dedup();
    assert_eq!(all.len(), unique, "two writes got the same revision");

    let mut watch = store.watch(b"/order/", start).await.expect("watch");
    let events = next_events(&mut watch, all.len()).await;
    let seen: Vec<Revision> = events.iter().map(Event::revision).collect();
    assert_eq!(
        seen, all,
        "a watch delivers every write once, in revision order"
    );
}

/// A watch from a past revision replays exactly the events since then: none missing,
/// none twice, in order, with previous values; then it continues live.
pub async fn watch_replays_missed_events<S: Store>(store: &S) {
    let start = store.current_revision().await.expect("revision") + 1;
    let mut expected: Vec<EventShape> = Vec::new();
    let mut values: BTreeMap<&str, (Bytes, Revision)> = BTreeMap::new();
    // A script of writes inside and outside the watched prefix.
    let script: &[(&str, &str, Option<&str>)] = &[
        ("create", "/w/a", Some("a1")),
        ("create", "/wx", Some("outside")),
        ("create", "/w/b", Some("b1")),
        ("update", "/w/a", Some("a2")),
        ("create", "/v/a", Some("outside")),
        ("delete", "/w/b", None),
        ("create", "/w/b", Some("b2")),
        ("update", "/w/b", Some("b3")),
        ("delete", "/w/a", None),
    ];
    for (op, key, value) in script {
        let inside = key.starts_with("/w/");
        let event = match *op {
            "create" => {
                let value = b(value.expect("value"));
                let rev = store
                    .create(key.as_bytes(), value.clone(), None)
                    .await
                    .expect("create");
                values.insert(key, (value.clone(), rev));
                (EventKind::Put, b(key), value, rev, None)
            }
            "update" => {
                let value = b(value.expect("value"));
                let (prev, prev_rev) = values[key].clone();
                let rev = store
                    .update(key.as_bytes(), value.clone(), prev_rev, None)
                    .await
                    .expect("update");
                values.insert(key, (value.clone(), rev));
                (EventKind::Put, b(key), value, rev, Some((prev, prev_rev)))
            }
            _ => {
                let (prev, prev_rev) = values.remove(key).expect("known key");
                let deleted = store
                    .delete(key.as_bytes(), None, None)
                    .await
                    .expect("delete");
                (
                    EventKind::Delete,
                    b(key),
                    Bytes::new(),
                    deleted.revision,
                    Some((prev, prev_rev)),
                )
            }
        };
        if inside {
            expected.push(event);
        }
    }

    let mut watch = store
        .watch(b"/w/", start)
        .await
        .expect("watch from the past");
    let got: Vec<EventShape> = next_events(&mut watch, expected.len())
        .await
        .iter()
        .map(shape)
        .collect();
    assert_eq!(got, expected, "replay from revision {start}");

    // From the middle: exactly the suffix.
    let middle = expected[2].3;
    let mut from_middle = store
        .watch(b"/w/", middle)
        .await
        .expect("watch from the middle");
    let got: Vec<EventShape> = next_events(&mut from_middle, expected.len() - 2)
        .await
        .iter()
        .map(shape)
        .collect();
    assert_eq!(got, expected[2..], "replay from revision {middle}");

    // And then live, with nothing in between.
    let marker = store
        .create(b"/w/marker", b("m"), None)
        .await
        .expect("marker");
    expect_next_is(&mut watch, "/w/marker", marker).await;
    expect_next_is(&mut from_middle, "/w/marker", marker).await;
}

/// A watch started while writers are busy sees every write at or after its start
/// revision exactly once, in order.
pub async fn watch_during_concurrent_writes<S: Store>(store: &S) {
    const WRITERS: usize = 8;
    const WRITES: usize = 40;
    let mut tasks = Vec::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS + 1));
    for t in 0..WRITERS {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/conc/{t}");
            let mut revs = vec![
                store
                    .create(key.as_bytes(), b("0"), None)
                    .await
                    .expect("create"),
            ];
            barrier.wait().await;
            for i in 1..WRITES {
                let last = *revs.last().expect("a revision");
                let rev = store
                    .update(key.as_bytes(), b(&i.to_string()), last, None)
                    .await
                    .expect("update of a key only this task writes");
                revs.push(rev);
            }
            revs
        }));
    }
    barrier.wait().await;
    // Start in the thick of it, from a revision some writers have already passed.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let from = store.current_revision().await.expect("revision");
    let mut watch = store.watch(b"/conc/", from).await.expect("watch");
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("writer"));
    }
    acked.retain(|&rev| rev >= from);
    acked.sort_unstable();
    let got: Vec<Revision> = next_events(&mut watch, acked.len())
        .await
        .iter()
        .map(Event::revision)
        .collect();
    assert_eq!(got, acked, "events from revision {from}");
    let marker = store
        .create(b"/conc/marker", b("m"), None)
        .await
        .expect("marker");
    expect_next_is(&mut watch, "/conc/marker", marker).await;
}

/// Revision 0 means "from now": earlier writes are not replayed.
pub async fn watch_from_now<S: Store>(store: &S) {
    store
        .create(b"/now/old", b("1"), None)
        .await
        .expect("create");
    let mut watch = store.watch(b"/now/", 0).await.expect("watch");
    let rev = store
        .create(b"/now/new", b("2"), None)
        .await
        .expect("create");
    expect_next_is(&mut watch, "/now/new", rev).await;
}

/// Delete events carry the deleted value; put events of updates carry the old one.
pub async fn watch_reports_deletes_with_previous_value<S: Store>(store: &S) {
    let mut watch = store.watch(b"/del/", 0).await.expect("watch");
    let created = store
        .create(b"/del/k", b("v1"), None)
        .await
        .expect("create");
    let updated = store
        .update(b"/del/k", b("v2"), created, None)
        .await
        .expect("update");
    let deleted = store.delete(b"/del/k", None, None).await.expect("delete");
    let events = next_events(&mut watch, 3).await;
    assert_eq!(events[0].prev, None, "a create has no previous value");
    assert_eq!(events[0].kv.create_revision, created);
    assert_eq!(
        events[1]
            .prev
            .as_ref()
            .map(|p| (&p.value, p.mod_revision, p.create_revision)),
        Some((&b("v1"), created, created))
    );
    assert_eq!(events[1].kv.create_revision, created);
    assert_eq!(events[2].kind, EventKind::Delete);
    assert_eq!(
        (events[2].kv.key.as_ref(), events[2].revision()),
        (b"/del/k".as_slice(), deleted.revision)
    );
    assert_eq!(
        events[2].prev.as_ref().map(|p| (&p.value, p.mod_revision)),
        Some((&b("v2"), updated))
    );
}

/// Compaction removes history below its revision and nothing the present needs.
pub async fn compaction<S: Store>(store: &S) {
    let r1 = store
        .create(b"/cmp/k", b("v1"), None)
        .await
        .expect("create");
    let r2 = store
        .update(b"/cmp/k", b("v2"), r1, None)
        .await
        .expect("update");
    let gone = store
        .create(b"/cmp/gone", b("x"), None)
        .await
        .expect("create");
    let r3 = store
        .update(b"/cmp/k", b("v3"), r2, None)
        .await
        .expect("update");
    store
        .delete(b"/cmp/gone", None, None)
        .await
        .expect("delete");
    let r4 = store
        .create(b"/cmp/k2", b("w"), None)
        .await
        .expect("create");

    store.compact(r3).await.expect("compact");

    match store.list(b"/cmp/", r1, 0, None).await {
        Err(Error::Compacted {
            requested_revision,
            compact_revision,
        }) => assert_eq!((requested_revision, compact_revision), (r1, r3)),
        other => panic!("list below the compaction point: {other:?}"),
    }
    expect_watch_compacted(store, b"/cmp/", r1).await;
    expect_watch_compacted(store, b"/cmp/", r3 - 1).await;

    let at_r3 = store
        .list(b"/cmp/", r3, 0, None)
        .await
        .expect("list at compaction point");
    let shape: Vec<(Bytes, Bytes)> = at_r3
        .items
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(
        shape,
        vec![(b("/cmp/gone"), b("x")), (b("/cmp/k"), b("v3"))]
    );
    let now = store.list(b"/cmp/", 0, 0, None).await.expect("list now");
    let keys: Vec<Bytes> = now.items.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(keys, vec![b("/cmp/k"), b("/cmp/k2")]);
    assert_eq!(store.count(b"/cmp/").await.expect("count"), 2);
    let kv = store.get(b"/cmp/k").await.expect("get");
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (b("v3"), r1, r3)
    );

    // History after the compaction point is intact, previous values included.
    let mut watch = store
        .watch(b"/cmp/", r3 + 1)
        .await
        .expect("watch after compaction");
    let events = next_events(&mut watch, 2).await;
    assert_eq!(events[0].kind, EventKind::Delete);
    assert_eq!(
        events[0].prev.as_ref().map(|p| (&p.value, p.mod_revision)),
        Some((&b("x"), gone))
    );
    assert_eq!(events[1].revision(), r4);

    match store.compact(r2).await {
        Err(Error::Compacted {
            compact_revision, ..
        }) => assert_eq!(compact_revision, r3),
        other => panic!("compacting below the compaction point: {other:?}"),
    }
    let current = store.current_revision().await.expect("revision");
    match store.compact(current + 100).await {
        Err(Error::FutureRevision { .. }) => {}
        other => panic!("compacting a future revision: {other:?}"),
    }

    // A key deleted before a compaction can be created again with a fresh history.
    store.compact(current).await.expect("compact to now");
    let again = store
        .create(b"/cmp/gone", b("y"), None)
        .await
        .expect("re-create");
    let kv = store.get(b"/cmp/gone").await.expect("get");
    assert_eq!((kv.value, kv.create_revision), (b("y"), again));
    let updated = store
        .update(b"/cmp/k", b("v4"), r3, None)
        .await
        .expect("update after compaction");
    let mut watch = store.watch(b"/cmp/k", updated).await.expect("watch");
    let event = next_events(&mut watch, 1).await.remove(0);
    assert_eq!(
        event.prev.as_ref().map(|p| (&p.value, p.mod_revision)),
        Some((&b("v3"), r3)),
        "the previous value of a key compacted to its latest row is still known"
    );
}

/// A list at a past revision sees the store exactly as it was then.
pub async fn snapshot_reads<S: Store>(store: &S) {
    let r1 = store
        .create(b"/snap/a", b("a1"), None)
        .await
        .expect("create");
    let r2 = store
        .create(b"/snap/b", b("b1"), None)
        .await
        .expect("create");
    let r3 = store
        .update(b"/snap/a", b("a2"), r1, None)
        .await
        .expect("update");
    let r4 = store
        .delete(b"/snap/b", None, None)
        .await
        .expect("delete")
        .revision;
    let r5 = store
        .create(b"/snap/c", b("c1"), None)
        .await
        .expect("create");

    let at = |rev: Revision| async move {
        let page = store.list(b"/snap/", rev, 0, None).await.expect("list");
        let items: Vec<(Bytes, Bytes, Revision, Revision)> = page
            .items
            .iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value.clone(),
                    kv.create_revision,
                    kv.mod_revision,
                )
            })
            .collect();
        (page.revision, items)
    };
    let cases = [
        (r1, vec![(b("/snap/a"), b("a1"), r1, r1)]),
        (
            r2,
            vec![
                (b("/snap/a"), b("a1"), r1, r1),
                (b("/snap/b"), b("b1"), r2, r2),
            ],
        ),
        (
            r3,
            vec![
                (b("/snap/a"), b("a2"), r1, r3),
                (b("/snap/b"), b("b1"), r2, r2),
            ],
        ),
        (r4, vec![(b("/snap/a"), b("a2"), r1, r3)]),
        (
            r5,
            vec![
                (b("/snap/a"), b("a2"), r1, r3),
                (b("/snap/c"), b("c1"), r5, r5),
            ],
        ),
    ];
    for (rev, want) in cases {
        assert_eq!(at(rev).await, (rev, want.clone()), "list at revision {rev}");
    }
    let (latest_rev, latest) = at(0).await;
    assert_eq!(latest_rev, r5, "a latest read reports its revision");
    assert_eq!(latest.len(), 2);
    match store.list(b"/snap/", r5 + 1000, 0, None).await {
        Err(Error::FutureRevision {
            requested_revision, ..
        }) => assert_eq!(requested_revision, r5 + 1000),
        other => panic!("list at a future revision: {other:?}"),
    }
}

/// Paging through a snapshot gives exactly that snapshot, whatever is written between
/// pages; `more` is exact.
pub async fn paging_is_consistent<S: Store>(store: &S) {
    let mut original = BTreeMap::new();
    for i in 0..25 {
        let key = format!("/page/{i:02}");
        let value = b(&format!("v{i}"));
        store
            .create(key.as_bytes(), value.clone(), None)
            .await
            .expect("create");
        original.insert(b(&key), value);
    }
    store
        .create(b"/pagex", b("outside"), None)
        .await
        .expect("create");

    let mut seen = BTreeMap::new();
    let mut start_after: Option<Bytes> = None;
    let mut revision = 0;
    let mut sizes = Vec::new();
    loop {
        let page = store
            .list(b"/page/", revision, 10, start_after.as_deref())
            .await
            .expect("page");
        if revision == 0 {
            revision = page.revision;
        }
        assert_eq!(
            page.revision, revision,
            "every page reads the same snapshot"
        );
        sizes.push((page.items.len(), page.more));
        for kv in &page.items {
            seen.insert(kv.key.clone(), kv.value.clone());
        }
        // Churn between pages: none of it may show up.
        let n = sizes.len();
        store
            .create(format!("/page/{n:02}-new").as_bytes(), b("new"), None)
            .await
            .expect("create");
        store
            .delete(format!("/page/{:02}", 24 - n).as_bytes(), None, None)
            .await
            .expect("delete");
        let Some(last) = page.items.last() else { break };
        if !page.more {
            break;
        }
        start_after = Some(last.key.clone());
    }
    assert_eq!(sizes, vec![(10, true), (10, true), (5, false)]);
    assert_eq!(seen, original);

    let live = store.count(b"/page/").await.expect("count") as usize;
    let exact = store.list(b"/page/", 0, live, None).await.expect("list");
    assert_eq!(
        (exact.items.len(), exact.more),
        (live, false),
        "limit == remaining: no more"
    );
    let short = store
        .list(b"/page/", 0, live - 1, None)
        .await
        .expect("list");
    assert_eq!((short.items.len(), short.more), (live - 1, true));
    let beyond = store
        .list(b"/page/", 0, 10, Some(b"/page/zz"))
        .await
        .expect("list");
    assert_eq!((beyond.items.len(), beyond.more), (0, false));
}

/// A prefix matches by bytes: `/a/` never matches `/ab` or `/a`.
pub async fn prefix_isolation<S: Store>(store: &S) {
    for key in [
        "/iso/a",
        "/iso/a/1",
        "/iso/a/2",
        "/iso/ab",
        "/iso/ab/1",
        "/iso/b/1",
    ] {
        store
            .create(key.as_bytes(), b("x"), None)
            .await
            .expect("create");
    }
    let start = store.current_revision().await.expect("revision");
    let keys = |page: crate::ListPage| page.items.into_iter().map(|kv| kv.key).collect::<Vec<_>>();
    assert_eq!(
        keys(store.list(b"/iso/a/", 0, 0, None).await.expect("list")),
        vec![b("/iso/a/1"), b("/iso/a/2")]
    );
    assert_eq!(store.count(b"/iso/a/").await.expect("count"), 2);
    assert_eq!(store.count(b"/iso/a").await.expect("count"), 5);
    assert_eq!(store.count(b"/iso/").await.expect("count"), 6);
    assert_eq!(store.count(b"/none/").await.expect("count"), 0);

    let mut watch = store.watch(b"/iso/a/", start + 1).await.expect("watch");
    store
        .update(b"/iso/ab", b("y"), start - 2, None)
        .await
        .expect("update");
    store
        .update(b"/iso/a", b("y"), start - 5, None)
        .await
        .expect("update");
    store
        .create(b"/iso/ab/2", b("y"), None)
        .await
        .expect("create");
    let inside = store
        .create(b"/iso/a/3", b("y"), None)
        .await
        .expect("create");
    expect_next_is(&mut watch, "/iso/a/3", inside).await;
}

/// Values up to exactly [`MAX_VALUE_SIZE`] are stored; one byte more is refused.
pub async fn size_limit<S: Store>(store: &S) {
    let biggest = Bytes::from(vec![b'x'; MAX_VALUE_SIZE]);
    let rev = store
        .create(b"/size/max", biggest.clone(), None)
        .await
        .expect("value of exactly the limit");
    assert_eq!(store.get(b"/size/max").await.expect("get").value, biggest);

    let too_big = Bytes::from(vec![b'x'; MAX_VALUE_SIZE + 1]);
    match store.create(b"/size/over", too_big.clone(), None).await {
        Err(Error::TooLarge { key, size, limit }) => {
            assert_eq!(
                (key.as_str(), size, limit),
                ("/size/over", MAX_VALUE_SIZE + 1, MAX_VALUE_SIZE)
            )
        }
        other => panic!("create over the limit: {other:?}"),
    }
    match store.update(b"/size/max", too_big, rev, None).await {
        Err(Error::TooLarge { .. }) => {}
        other => panic!("update over the limit: {other:?}"),
    }
    assert!(matches!(
        store.get(b"/size/over").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store.get(b"/size/max").await.expect("get").mod_revision,
        rev
    );
}

/// 16 tasks increment one counter with compare-and-swap; the counter ends at exactly
/// the number of updates that succeeded, and every loser saw a real conflict.
pub async fn compare_and_swap_race<S: Store>(store: &S) {
    const TASKS: usize = 16;
    const ATTEMPTS: usize = 25;
    store
        .create(b"/race/counter", b("0"), None)
        .await
        .expect("create");
    let successes = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (store, successes, conflicts) = (store.clone(), successes.clone(), conflicts.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..ATTEMPTS {
                let kv = store.get(b"/race/counter").await.expect("get");
                let n: u64 = std::str::from_utf8(&kv.value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("a number");
                match store
                    .update(
                        b"/race/counter",
                        b(&(n + 1).to_string()),
                        kv.mod_revision,
                        None,
                    )
                    .await
                {
                    Ok(_) => {
                        successes.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(Error::Conflict {
                        current_revision, ..
                    }) => {
                        assert!(
                            current_revision > kv.mod_revision,
                            "a conflict means it moved on"
                        );
                        conflicts.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("unexpected error in the race: {e}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("racer");
    }
    let successes = successes.load(Ordering::SeqCst);
    let conflicts = conflicts.load(Ordering::SeqCst);
    let final_value = store.get(b"/race/counter").await.expect("get").value;
    assert_eq!(
        final_value,
        b(&successes.to_string()),
        "counter == successful updates"
    );
    assert_eq!(successes + conflicts, (TASKS * ATTEMPTS) as u64);
    assert!(successes > 0);
}
