//! The behaviour every [`Store`] backend must share, as async checks run against each one.
//!
//! Checks work relative to the store's revision when they start, because etcd begins at
//! revision 1 with no writes while the in-process backends begin at 0. Each backend's test
//! module instantiates the whole suite with [`conformance_suite!`] and a fixture function that
//! returns a fresh store (or `None`, after printing why, when the backend cannot run here).

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::{Event, EventKind, EventStream, KeyValue, Revision, Store, StoreError};

/// A store under test plus whatever must outlive it (temp dir, etcd process).
pub(crate) struct Fixture {
    // Declared first so the store is dropped before the things it runs on.
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

impl Fixture {
    pub fn new(store: Arc<dyn Store>, guard: impl Any + Send) -> Self {
        Fixture {
            store,
            _guard: Box::new(guard),
        }
    }
}

/// Instantiates every shared check as a test, given `async fn() -> Option<Fixture>`.
macro_rules! conformance_suite {
    ($fixture:path) => {
        $crate::store::conformance::conformance_suite!(@tests $fixture;
            revisions_increment_by_one_per_write,
            create_then_get,
            update_is_compare_and_swap,
            delete_honours_preconditions,
            list_filters_orders_and_paginates,
            list_at_old_revisions,
            paginated_list_is_a_consistent_snapshot,
            watch_replays_then_streams_live_events,
            watch_from_a_future_revision_waits,
            compaction_expires_older_reads,
            concurrent_compare_and_swap_loses_no_update,
            watch_has_no_gap_under_concurrent_writers,
        );
    };
    (@tests $fixture:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                if let Some(fixture) = $fixture().await {
                    $crate::store::conformance::$check(::std::sync::Arc::clone(&fixture.store)).await;
                }
            }
        )*
    };
}
pub(crate) use conformance_suite;

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

const PATIENCE: Duration = Duration::from_secs(20);

async fn next_event(stream: &mut EventStream) -> Event {
    match tokio::time::timeout(PATIENCE, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended early"),
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

async fn assert_quiet(stream: &mut EventStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
        panic!("expected no more events, got {item:?}");
    }
}

fn kv(key: &str, value: &str, create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: bytes(value),
        create_revision,
        mod_revision,
    }
}

pub(crate) async fn revisions_increment_by_one_per_write(store: Arc<dyn Store>) {
    let base = store.current_revision().await.unwrap();
    let created = store.create("/c/a", bytes("1")).await.unwrap();
    assert_eq!(created.mod_revision, base + 1);
    assert_eq!(store.current_revision().await.unwrap(), base + 1);
    // Failed writes consume no revision.
    assert!(store.create("/c/a", bytes("x")).await.is_err());
    assert!(store.update("/c/a", bytes("x"), base).await.is_err());
    assert!(store.delete("/c/missing", None).await.is_err());
    assert_eq!(store.current_revision().await.unwrap(), base + 1);
    let updated = store.update("/c/a", bytes("2"), base + 1).await.unwrap();
    assert_eq!(updated.mod_revision, base + 2);
    let deleted = store.delete("/c/a", None).await.unwrap();
    assert_eq!(deleted.mod_revision, base + 3);
    assert_eq!(store.current_revision().await.unwrap(), base + 3);
}

pub(crate) async fn create_then_get(store: Arc<dyn Store>) {
    assert_eq!(store.get("/g/a").await.unwrap(), None);
    let created = store.create("/g/a", bytes("hello")).await.unwrap();
    let rev = created.mod_revision;
    assert_eq!(created, kv("/g/a", "hello", rev, rev));
    assert_eq!(store.get("/g/a").await.unwrap(), Some(created));
    assert_eq!(
        store.create("/g/a", bytes("again")).await,
        Err(StoreError::AlreadyExists("/g/a".into()))
    );
    assert_eq!(store.get("/g/a").await.unwrap().unwrap().value, "hello");
    // A key is not a prefix match for a longer key.
    assert_eq!(store.get("/g").await.unwrap(), None);
}

pub(crate) async fn update_is_compare_and_swap(store: Arc<dyn Store>) {
    let created = store.create("/u/a", bytes("1")).await.unwrap();
    let c = created.mod_revision;
    let updated = store.update("/u/a", bytes("2"), c).await.unwrap();
    assert_eq!(updated, kv("/u/a", "2", c, c + 1));
    assert_eq!(
        store.update("/u/a", bytes("3"), c).await,
        Err(StoreError::Conflict {
            key: "/u/a".into(),
            expected: c,
            actual: c + 1
        })
    );
    assert_eq!(store.get("/u/a").await.unwrap(), Some(updated));
    assert_eq!(
        store.update("/u/missing", bytes("x"), c).await,
        Err(StoreError::NotFound("/u/missing".into()))
    );
    assert_eq!(
        store.update("/u/missing", bytes("x"), 0).await,
        Err(StoreError::NotFound("/u/missing".into()))
    );
}

pub(crate) async fn delete_honours_preconditions(store: Arc<dyn Store>) {
    let c = store.create("/d/a", bytes("1")).await.unwrap().mod_revision;
    let u = store
        .update("/d/a", bytes("2"), c)
        .await
        .unwrap()
        .mod_revision;
    assert_eq!(
        store.delete("/d/a", Some(c)).await,
        Err(StoreError::Conflict {
            key: "/d/a".into(),
            expected: c,
            actual: u
        })
    );
    assert_eq!(
        store.delete("/d/missing", None).await,
        Err(StoreError::NotFound("/d/missing".into()))
    );
    let deleted = store.delete("/d/a", Some(u)).await.unwrap();
    assert_eq!(deleted, kv("/d/a", "2", c, u + 1));
    assert_eq!(store.get("/d/a").await.unwrap(), None);
    assert_eq!(
        store.update("/d/a", bytes("3"), u + 1).await,
        Err(StoreError::NotFound("/d/a".into()))
    );
    assert_eq!(
        store.delete("/d/a", None).await,
        Err(StoreError::NotFound("/d/a".into()))
    );
    // Re-creating starts a new incarnation with its own create revision.
    let again = store.create("/d/a", bytes("4")).await.unwrap();
    assert_eq!(again.create_revision, u + 2);
    let gone = store.delete("/d/a", None).await.unwrap();
    assert_eq!(gone, kv("/d/a", "4", u + 2, u + 3));
}

pub(crate) async fn list_filters_orders_and_paginates(store: Arc<dyn Store>) {
    // Created out of order, with neighbours that share a string prefix but not the "/p/" one.
    for key in [
        "/p/k3", "/p/k0", "/q/x", "/p/k4", "/p", "/pz", "/p/k1", "/p/k2",
    ] {
        store.create(key, bytes(key)).await.unwrap();
    }
    let keys = |items: &[KeyValue]| items.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();
    let all = store.list("/p/", None, None, 0).await.unwrap();
    assert_eq!(
        keys(&all.items),
        vec!["/p/k0", "/p/k1", "/p/k2", "/p/k3", "/p/k4"]
    );
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision().await.unwrap());
    assert_eq!(all.items[2].value, "/p/k2");

    let first = store.list("/p/", None, None, 2).await.unwrap();
    assert_eq!(keys(&first.items), vec!["/p/k0", "/p/k1"]);
    assert!(first.more);
    let second = store
        .list("/p/", Some("/p/k1"), Some(first.revision), 2)
        .await
        .unwrap();
    assert_eq!(keys(&second.items), vec!["/p/k2", "/p/k3"]);
    assert!(second.more);
    assert_eq!(second.revision, first.revision);
    let third = store
        .list("/p/", Some("/p/k3"), Some(first.revision), 2)
        .await
        .unwrap();
    assert_eq!(keys(&third.items), vec!["/p/k4"]);
    assert!(!third.more);

    let exact = store.list("/p/", None, None, 5).await.unwrap();
    assert_eq!(exact.items.len(), 5);
    assert!(!exact.more, "nothing remains after exactly `limit` items");
    let past_end = store.list("/p/", Some("/p/k4"), None, 0).await.unwrap();
    assert!(past_end.items.is_empty() && !past_end.more);
    let empty = store.list("/nothing/", None, None, 0).await.unwrap();
    assert!(empty.items.is_empty() && !empty.more);
}

pub(crate) async fn list_at_old_revisions(store: Arc<dyn Store>) {
    let r1 = store
        .create("/h/a", bytes("a1"))
        .await
        .unwrap()
        .mod_revision;
    let r2 = store
        .update("/h/a", bytes("a2"), r1)
        .await
        .unwrap()
        .mod_revision;
    let r3 = store
        .create("/h/b", bytes("b1"))
        .await
        .unwrap()
        .mod_revision;
    let r4 = store.delete("/h/a", None).await.unwrap().mod_revision;
    let at = |rev| {
        let store = Arc::clone(&store);
        async move {
            let list = store.list("/h/", None, Some(rev), 0).await.unwrap();
            assert_eq!(list.revision, rev);
            list.items
        }
    };
    assert_eq!(at(r1).await, vec![kv("/h/a", "a1", r1, r1)]);
    assert_eq!(at(r2).await, vec![kv("/h/a", "a2", r1, r2)]);
    assert_eq!(
        at(r3).await,
        vec![kv("/h/a", "a2", r1, r2), kv("/h/b", "b1", r3, r3)]
    );
    assert_eq!(at(r4).await, vec![kv("/h/b", "b1", r3, r3)]);
    assert_eq!(at(r1 - 1).await, vec![]);
    assert!(matches!(
        store.list("/h/", None, Some(r4 + 100), 0).await,
        Err(StoreError::Unavailable(_))
    ));
}

pub(crate) async fn paginated_list_is_a_consistent_snapshot(store: Arc<dyn Store>) {
    for i in 0..6 {
        store
            .create(&format!("/s/k{i}"), bytes("old"))
            .await
            .unwrap();
    }
    let first = store.list("/s/", None, None, 3).await.unwrap();
    assert!(first.more);
    // Changes after the first page must not leak into the following pages.
    let k4 = store.get("/s/k4").await.unwrap().unwrap();
    store
        .update("/s/k4", bytes("new"), k4.mod_revision)
        .await
        .unwrap();
    store.delete("/s/k5", None).await.unwrap();
    store.create("/s/k3a", bytes("new")).await.unwrap();
    let rest = store
        .list("/s/", Some("/s/k2"), Some(first.revision), 0)
        .await
        .unwrap();
    let seen: Vec<(String, Bytes)> = rest
        .items
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("/s/k3".to_string(), bytes("old")),
            ("/s/k4".to_string(), bytes("old")),
            ("/s/k5".to_string(), bytes("old")),
        ]
    );
    let latest = store.list("/s/", Some("/s/k2"), None, 0).await.unwrap();
    let latest_keys: Vec<&str> = latest.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(latest_keys, vec!["/s/k3", "/s/k3a", "/s/k4"]);
}

pub(crate) async fn watch_replays_then_streams_live_events(store: Arc<dyn Store>) {
    let base = store.current_revision().await.unwrap();
    let r1 = store.create("/w/a", bytes("1")).await.unwrap().mod_revision;
    store.create("/wx/a", bytes("other")).await.unwrap();
    let mut stream = store.watch("/w/", base).await.unwrap();
    let r3 = store
        .update("/w/a", bytes("2"), r1)
        .await
        .unwrap()
        .mod_revision;
    let r4 = store.delete("/w/a", None).await.unwrap().mod_revision;
    store.create("/x/b", bytes("other")).await.unwrap();
    let r6 = store.create("/w/b", bytes("3")).await.unwrap().mod_revision;

    let created = next_event(&mut stream).await;
    assert_eq!(created.kind, EventKind::Put);
    assert_eq!(created.kv, kv("/w/a", "1", r1, r1));
    assert_eq!(created.prev, None);

    let updated = next_event(&mut stream).await;
    assert_eq!(updated.kind, EventKind::Put);
    assert_eq!(updated.kv, kv("/w/a", "2", r1, r3));
    assert_eq!(updated.prev, Some(kv("/w/a", "1", r1, r1)));

    let deleted = next_event(&mut stream).await;
    assert_eq!(deleted.kind, EventKind::Delete);
    assert_eq!(deleted.revision(), r4);
    assert_eq!(deleted.kv, kv("/w/a", "2", r1, r4));
    assert_eq!(deleted.prev, Some(kv("/w/a", "2", r1, r3)));

    let recreated = next_event(&mut stream).await;
    assert_eq!(recreated.kv, kv("/w/b", "3", r6, r6));
    assert_quiet(&mut stream).await;

    // A second watch from the middle replays only what follows.
    let mut later = store.watch("/w/", r3).await.unwrap();
    assert_eq!(next_event(&mut later).await.revision(), r4);
    assert_eq!(next_event(&mut later).await.revision(), r6);
}

pub(crate) async fn watch_from_a_future_revision_waits(store: Arc<dyn Store>) {
    let base = store.current_revision().await.unwrap();
    let mut stream = store.watch("/f/", base + 2).await.unwrap();
    for key in ["/f/a", "/f/b", "/f/c"] {
        store.create(key, bytes(key)).await.unwrap();
    }
    let event = next_event(&mut stream).await;
    assert_eq!(event.revision(), base + 3);
    assert_eq!(event.kv.key, "/f/c");
    assert_quiet(&mut stream).await;
}

pub(crate) async fn compaction_expires_older_reads(store: Arc<dyn Store>) {
    let r1 = store
        .create("/k/a", bytes("a1"))
        .await
        .unwrap()
        .mod_revision;
    let r2 = store
        .update("/k/a", bytes("a2"), r1)
        .await
        .unwrap()
        .mod_revision;
    let r3 = store
        .create("/k/b", bytes("b1"))
        .await
        .unwrap()
        .mod_revision;
    let r4 = store
        .update("/k/b", bytes("b2"), r3)
        .await
        .unwrap()
        .mod_revision;
    let r5 = store
        .update("/k/a", bytes("a3"), r2)
        .await
        .unwrap()
        .mod_revision;
    store.compact(r4).await.unwrap();
    assert_eq!(store.compacted_revision(), r4);

    assert_eq!(
        store.list("/k/", None, Some(r3), 0).await.err(),
        Some(StoreError::Expired {
            requested: r3,
            oldest: r4
        })
    );
    let at_r4 = store.list("/k/", None, Some(r4), 0).await.unwrap();
    assert_eq!(
        at_r4.items,
        vec![kv("/k/a", "a2", r1, r2), kv("/k/b", "b2", r3, r4)]
    );
    let latest = store.list("/k/", None, None, 0).await.unwrap();
    assert_eq!(
        latest.items,
        vec![kv("/k/a", "a3", r1, r5), kv("/k/b", "b2", r3, r4)]
    );

    assert_eq!(
        store.watch("/k/", r3).await.err(),
        Some(StoreError::Expired {
            requested: r3,
            oldest: r4
        })
    );
    let mut stream = store.watch("/k/", r4).await.unwrap();
    assert_eq!(next_event(&mut stream).await.revision(), r5);

    // Compacting to an older revision again is a no-op.
    store.compact(r2).await.unwrap();
    assert_eq!(store.compacted_revision(), r4);
    assert_eq!(
        store.get("/k/b").await.unwrap(),
        Some(kv("/k/b", "b2", r3, r4))
    );
}

pub(crate) async fn concurrent_compare_and_swap_loses_no_update(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 25;
    let base = store
        .create("/cas/n", bytes("0"))
        .await
        .unwrap()
        .mod_revision;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..INCREMENTS {
                loop {
                    let current = store.get("/cas/n").await.unwrap().unwrap();
                    let n: usize = std::str::from_utf8(&current.value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    match store
                        .update("/cas/n", bytes(&(n + 1).to_string()), current.mod_revision)
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = TASKS * INCREMENTS;
    let last = store.get("/cas/n").await.unwrap().unwrap();
    assert_eq!(last.value, bytes(&total.to_string()));
    assert_eq!(last.mod_revision, base + total as Revision);
    assert_eq!(last.create_revision, base);
}

pub(crate) async fn watch_has_no_gap_under_concurrent_writers(store: Arc<dyn Store>) {
    const WRITERS: usize = 4;
    const WRITES: usize = 250;
    let base = store.current_revision().await.unwrap();
    let end = base + (WRITERS * WRITES) as Revision;
    let mut from_start = store.watch("/gap/", base).await.unwrap();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let key = format!("/gap/w{w}");
            let mut rev = store.create(&key, bytes("0")).await.unwrap().mod_revision;
            for i in 1..WRITES {
                let value = bytes(&i.to_string());
                rev = store.update(&key, value, rev).await.unwrap().mod_revision;
            }
        }));
    }
    // Join mid-way, from a revision far enough back that the watch starts with a replay and
    // continues with live events while the writers are still running.
    let observed = tokio::time::timeout(PATIENCE, async {
        loop {
            let observed = store.current_revision().await.unwrap();
            if observed >= base + 400 {
                return observed;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("writers make progress");
    let from = observed - 150;
    let mut mid_way = store.watch("/gap/", from).await.unwrap();
    let mut only_w0 = store.watch("/gap/w0", from).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < (end - from) as usize {
        seen.push(next_event(&mut mid_way).await.revision());
    }
    assert_eq!(seen, ((from + 1)..=end).collect::<Vec<_>>());
    assert_quiet(&mut mid_way).await;

    let mut all = Vec::new();
    while all.len() < (end - base) as usize {
        all.push(next_event(&mut from_start).await.revision());
    }
    assert_eq!(all, ((base + 1)..=end).collect::<Vec<_>>());

    for writer in writers {
        writer.await.unwrap();
    }
    // The per-key watch sees exactly that writer's remaining writes, in order.
    let w0 = store
        .list("/gap/w0", None, Some(from), 0)
        .await
        .unwrap()
        .items
        .first()
        .map_or(0, |kv| {
            std::str::from_utf8(&kv.value)
                .unwrap()
                .parse::<usize>()
                .unwrap()
                + 1
        });
    let mut values = Vec::new();
    let mut revisions = BTreeSet::new();
    while values.len() < WRITES - w0 {
        let event = next_event(&mut only_w0).await;
        assert!(revisions.insert(event.revision()));
        values.push(
            std::str::from_utf8(&event.kv.value)
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
    }
    assert_eq!(values, (w0..WRITES).collect::<Vec<_>>());
    assert_quiet(&mut only_w0).await;
}

/// For the in-process backends: the very first write of an empty store is revision 1.
pub(crate) async fn first_write_is_revision_one(store: &dyn Store) {
    assert_eq!(store.current_revision().await.unwrap(), 0);
    assert_eq!(store.compacted_revision(), 0);
    let mut stream = store.watch("/", 0).await.unwrap();
    let created = store.create("/a", bytes("1")).await.unwrap();
    assert_eq!((created.create_revision, created.mod_revision), (1, 1));
    assert_eq!(next_event(&mut stream).await.revision(), 1);
    assert_eq!(store.current_revision().await.unwrap(), 1);
}

/// For the in-process backends with a window of `window` events.
pub(crate) async fn watch_before_window_is_expired(store: &dyn Store, window: usize) {
    let writes = window as Revision + 3;
    for i in 0..writes {
        store.create(&format!("/e/{i}"), bytes("x")).await.unwrap();
    }
    // Events 4..=writes are in the window, so the oldest `from` it can serve is 3.
    assert_eq!(
        store.watch("/e/", 2).await.err(),
        Some(StoreError::Expired {
            requested: 2,
            oldest: 3
        })
    );
    let mut stream = store.watch("/e/", 3).await.unwrap();
    assert_eq!(next_event(&mut stream).await.revision(), 4);
}

/// For the in-process backends, whose watchers buffer at most `buffer` live events.
pub(crate) async fn slow_watcher_is_cut_off(store: &dyn Store, buffer: usize) {
    let base = store.current_revision().await.unwrap();
    let mut slow = store.watch("/slow/", base).await.unwrap();
    let writes = tokio::time::timeout(PATIENCE, async {
        for i in 0..buffer * 4 {
            store
                .create(&format!("/slow/{i}"), bytes("x"))
                .await
                .unwrap();
        }
    });
    writes
        .await
        .expect("writers are never blocked by a watcher");
    let mut delivered = Vec::new();
    let end = loop {
        match tokio::time::timeout(PATIENCE, slow.next()).await {
            Ok(Some(Ok(event))) => delivered.push(event.revision()),
            Ok(Some(Err(e))) => break e,
            Ok(None) => panic!("stream ended without an error"),
            Err(_) => panic!("stream neither ended nor errored"),
        }
    };
    let expected: Vec<Revision> = (base + 1..=base + buffer as Revision).collect();
    assert_eq!(delivered, expected);
    assert_eq!(
        end,
        StoreError::Expired {
            requested: base + buffer as Revision,
            oldest: base + buffer as Revision + 1
        }
    );
    assert!(tokio::time::timeout(PATIENCE, slow.next())
        .await
        .unwrap()
        .is_none());
}
