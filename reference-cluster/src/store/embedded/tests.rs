use std::fs::OpenOptions;
use std::io::Write as _;
use std::sync::Arc;

use futures::StreamExt;

use super::*;
use crate::store::conformance::{self, Fixture};

fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, EmbeddedOptions::default()).unwrap()
}

fn value(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

async fn fixture() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    Some(Fixture::new(Arc::new(store), dir))
}

conformance::conformance_suite!(fixture);

#[tokio::test]
async fn first_write_is_revision_one() {
    let dir = tempfile::tempdir().unwrap();
    conformance::first_write_is_revision_one(&open(dir.path())).await;
}

#[tokio::test]
async fn watch_from_before_the_window_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        window: 5,
        ..Default::default()
    };
    let store = EmbeddedStore::open(dir.path(), opts).unwrap();
    conformance::watch_before_window_is_expired(&store, 5).await;
}

/// Writes a known history: /a created then updated, /b created then deleted, /c created.
async fn write_history(store: &EmbeddedStore) {
    let a = store.create("/r/a", value("a1")).await.unwrap();
    store
        .update("/r/a", value("a2"), a.mod_revision)
        .await
        .unwrap();
    store.create("/r/b", value("b1")).await.unwrap();
    store.delete("/r/b", None).await.unwrap();
    store.create("/r/c", value("c1")).await.unwrap();
}

#[tokio::test]
async fn restart_keeps_data_history_and_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        write_history(&store).await;
        store.list("/r/", None, None, 0).await.unwrap()
    };
    let store = open(dir.path());
    assert_eq!(store.current_revision().await.unwrap(), 5);
    let after = store.list("/r/", None, None, 0).await.unwrap();
    assert_eq!(after.items, before.items);
    assert_eq!(after.revision, 5);
    // History survives too: at revision 3, /a was updated and /b existed.
    let at3 = store.list("/r/", None, Some(3), 0).await.unwrap();
    let keys: Vec<_> = at3.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, vec!["/r/a", "/r/b"]);
    // A watcher can resume from before the restart.
    let mut stream = store.watch("/r/", 3).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().revision(), 4);
    // Revisions continue, never reused.
    let next = store.create("/r/d", value("d1")).await.unwrap();
    assert_eq!(next.mod_revision, 6);
    assert_eq!(stream.next().await.unwrap().unwrap().revision(), 5);
    assert_eq!(stream.next().await.unwrap().unwrap().revision(), 6);
}

#[tokio::test]
async fn restart_after_snapshots_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        window: 100,
        snapshot_after_bytes: 2048,
    };
    {
        let store = EmbeddedStore::open(dir.path(), opts.clone()).unwrap();
        for i in 0..300 {
            store
                .create(&format!("/s/{i:03}"), value(&"x".repeat(40)))
                .await
                .unwrap();
        }
        let stats = store.stats();
        assert!(stats.snapshots > 0, "{stats:?}");
        assert!(stats.log_bytes < 2048 + 200, "{stats:?}");
    }
    let snapshot_revision = snapshot::revision_of(&dir.path().join(snapshot::FILE))
        .unwrap()
        .unwrap();
    let store = EmbeddedStore::open(dir.path(), opts).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 300);
    let all = store.list("/s/", None, None, 0).await.unwrap();
    assert_eq!(all.items.len(), 300);
    assert_eq!(all.items[299].mod_revision, 300);
    // Replay from the log (after the snapshot) is available; before it, the window starts.
    assert!(matches!(
        store.watch("/s/", snapshot_revision - 1).await,
        Err(StoreError::Expired { .. })
    ));
    if snapshot_revision < 300 {
        let mut stream = store.watch("/s/", snapshot_revision).await.unwrap();
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.revision(), snapshot_revision + 1);
    }
}

#[tokio::test]
async fn a_snapshot_preserves_history_and_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = Vec::new();
    {
        let store = open(dir.path());
        write_history(&store).await;
        for at in 1..=5 {
            before.push(store.list("/r/", None, Some(at), 0).await.unwrap().items);
        }
        // Compacting to 1 drops nothing visible but writes a snapshot and empties the log.
        store.compact(1).await.unwrap();
        assert_eq!(store.stats().log_bytes, 0);
    }
    let store = open(dir.path());
    assert_eq!(store.compacted_revision(), 1);
    for at in 1..=5 {
        let items = store.list("/r/", None, Some(at), 0).await.unwrap().items;
        assert_eq!(items, before[at as usize - 1], "at revision {at}");
    }
    assert_eq!(store.get("/r/b").await.unwrap(), None);
    assert_eq!(
        store
            .create("/r/b", value("b2"))
            .await
            .unwrap()
            .create_revision,
        6
    );
}

async fn ten_keys(dir: &Path) {
    let store = open(dir);
    for i in 0..10 {
        store.create(&format!("/t/{i}"), value("v")).await.unwrap();
    }
}

#[tokio::test]
async fn a_torn_last_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    ten_keys(dir.path()).await;
    let log = dir.path().join(LOG_FILE);
    let len = fs::metadata(&log).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let store = open(dir.path());
    assert!(store.stats().recovered_dropped_bytes > 0);
    assert_eq!(store.current_revision().await.unwrap(), 9);
    assert_eq!(
        store.list("/t/", None, None, 0).await.unwrap().items.len(),
        9
    );
    assert_eq!(store.get("/t/9").await.unwrap(), None);
    // The log is usable again: the next write takes the freed revision and survives.
    assert_eq!(
        store
            .create("/t/9", value("again"))
            .await
            .unwrap()
            .mod_revision,
        10
    );
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.stats().recovered_dropped_bytes, 0);
    assert_eq!(store.get("/t/9").await.unwrap().unwrap().value, "again");
}

#[tokio::test]
async fn garbage_after_the_last_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    ten_keys(dir.path()).await;
    let log = dir.path().join(LOG_FILE);
    let len = fs::metadata(&log).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&[0x17, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();
    drop(file);

    let store = open(dir.path());
    assert_eq!(store.stats().recovered_dropped_bytes, 11);
    assert_eq!(fs::metadata(&log).unwrap().len(), len);
    assert_eq!(store.current_revision().await.unwrap(), 10);
    assert_eq!(
        store.list("/t/", None, None, 0).await.unwrap().items.len(),
        10
    );
}

#[tokio::test]
async fn a_corrupted_last_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    ten_keys(dir.path()).await;
    let log = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&log).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&log, &bytes).unwrap();

    let store = open(dir.path());
    assert_eq!(store.current_revision().await.unwrap(), 9);
    assert_eq!(store.get("/t/8").await.unwrap().unwrap().mod_revision, 9);
}

#[tokio::test]
async fn a_damaged_snapshot_is_refused_not_guessed_at() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        write_history(&store).await;
        store.compact(5).await.unwrap();
    }
    let path = dir.path().join(snapshot::FILE);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        EmbeddedStore::open(dir.path(), EmbeddedOptions::default()),
        Err(StoreError::Internal(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_covers_many_writes_per_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .create(&format!("/gc/{i}"), value("v"))
                    .await
                    .unwrap()
                    .mod_revision
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.unwrap());
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=200).collect::<Vec<_>>());
    let stats = store.stats();
    assert_eq!(stats.writes, 200);
    assert!(
        stats.fsyncs < stats.writes,
        "expected batching, got {stats:?}"
    );
    assert_eq!(stats.fsyncs, stats.batches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_of_one_key_admit_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create("/one", value(&i.to_string())).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(kv) => {
                won += 1;
                assert_eq!(kv.mod_revision, 1);
            }
            Err(e) => assert_eq!(e, StoreError::AlreadyExists("/one".into())),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.current_revision().await.unwrap(), 1);
    assert_eq!(store.stats().rejected, 49);
}

#[tokio::test]
async fn compaction_bounds_the_directory_and_expires_old_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let big = "x".repeat(1024);
    let mut revisions = Vec::new();
    for i in 0..10 {
        revisions.push(
            store
                .create(&format!("/big/{i}"), value(&big))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    for round in 0..100 {
        for (i, rev) in revisions.iter_mut().enumerate() {
            let v = value(&format!("{round}{big}"));
            *rev = store
                .update(&format!("/big/{i}"), v, *rev)
                .await
                .unwrap()
                .mod_revision;
        }
    }
    let grown = dir_size(dir.path());
    assert!(grown > 1_000_000, "1010 writes of 1 KiB: {grown} bytes");

    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    let compacted = dir_size(dir.path());
    assert!(
        compacted < 32 * 1024,
        "10 live keys of ~1 KiB should need far less than {compacted} bytes"
    );
    assert_eq!(store.stats().log_bytes, 0);
    assert_eq!(
        store.list("/big/", None, Some(current - 1), 0).await.err(),
        Some(StoreError::Expired {
            requested: current - 1,
            oldest: current
        })
    );
    assert_eq!(
        store
            .list("/big/", None, None, 0)
            .await
            .unwrap()
            .items
            .len(),
        10
    );

    drop(store);
    let store = open(dir.path());
    assert_eq!(store.compacted_revision(), current);
    assert_eq!(store.current_revision().await.unwrap(), current);
    assert!(matches!(
        store.list("/big/", None, Some(current - 1), 0).await,
        Err(StoreError::Expired { .. })
    ));
    let latest = store.list("/big/", None, None, 0).await.unwrap();
    assert!(latest.items.iter().all(|kv| kv.value.starts_with(b"99x")));
}

#[tokio::test]
async fn a_failed_append_poisons_the_store_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create("/p/kept", value("1")).await.unwrap();
    store.shared.fail_appends.store(true, Ordering::Relaxed);
    assert!(matches!(
        store.create("/p/lost", value("1")).await,
        Err(StoreError::Unavailable(_))
    ));
    store.shared.fail_appends.store(false, Ordering::Relaxed);
    // Poisoned for good, even though the disk "works" again.
    assert!(matches!(
        store.create("/p/later", value("1")).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.compact(1).await,
        Err(StoreError::Unavailable(_))
    ));
    // Reads still answer from the last good state.
    assert_eq!(store.get("/p/lost").await.unwrap(), None);
    assert_eq!(store.current_revision().await.unwrap(), 1);
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.current_revision().await.unwrap(), 1);
    assert_eq!(store.get("/p/lost").await.unwrap(), None);
    assert_eq!(
        store
            .create("/p/next", value("1"))
            .await
            .unwrap()
            .mod_revision,
        2
    );
}
