//! Durability of the embedded store against `kill -9`: a child process writes as fast as it can
//! and reports every acknowledged write; the test kills it mid-stream and checks that every
//! acknowledged write is there after recovery and that revisions carry on without reuse.
//!
//! The child is this same test binary, re-run with `--ignored --exact writer_child` and the
//! data directory in an environment variable; `writer_child` is ignored in normal runs
//! because on its own it only produces load for the parent to kill.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kubeproof_refcluster::store::embedded::{EmbeddedOptions, EmbeddedStore};
use kubeproof_refcluster::store::{Revision, Store};

const DIR_ENV: &str = "KUBEPROOF_STORE_CRASH_DIR";
const ACK: &str = "ACK ";

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        window: 1000,
        // Small, so the kill can also land during or right after a snapshot.
        snapshot_after_bytes: 64 * 1024,
    }
}

#[test]
#[ignore = "child half of acknowledged_writes_survive_kill_9"]
fn writer_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        panic!("run by acknowledged_writes_survive_kill_9 with {DIR_ENV} set");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(Path::new(&dir), options()).unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let writers: Vec<_> = (0..16)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let key = format!("/crash/w{w}/{i}");
                        let value = Bytes::from(format!("{w}-{i}-{}", "x".repeat(200)));
                        let kv = store.create(&key, value).await.unwrap();
                        // One write per line, so a line cut short by the kill is recognisable.
                        println!("{ACK}{key} {}", kv.mod_revision);
                        i += 1;
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "writer_child", "--nocapture"])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();

    // Collect acknowledgements until enough have arrived to span several snapshots.
    let mut acked: Vec<(String, Revision)> = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    while acked.len() < 3000 && started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some((key, revision)) = line.strip_prefix(ACK).and_then(|l| l.split_once(' ')) {
            acked.push((key.to_string(), revision.parse().unwrap()));
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines already written before the kill are acknowledged writes too.
    for line in lines.map_while(Result::ok) {
        if let Some((key, revision)) = line.strip_prefix(ACK).and_then(|l| l.split_once(' ')) {
            if let Ok(revision) = revision.parse() {
                acked.push((key.to_string(), revision));
            }
        }
    }
    assert!(
        acked.len() >= 100,
        "child acknowledged only {}",
        acked.len()
    );

    let store = EmbeddedStore::open(dir.path(), options()).unwrap();
    let current = store.current_revision().await.unwrap();
    for (key, revision) in &acked {
        let kv = store
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged write {key}@{revision} lost"));
        assert_eq!(kv.mod_revision, *revision, "{key}");
    }
    let highest = acked.iter().map(|(_, r)| *r).max().unwrap();
    assert!(current >= highest);
    // Recovered state is a prefix of the history: every revision up to `current` is a key.
    let all = store.list("/crash/", None, None, 0).await.unwrap();
    assert_eq!(all.items.len() as Revision, current);
    let next = store
        .create("/crash/after", Bytes::from_static(b"v"))
        .await
        .unwrap();
    assert_eq!(next.mod_revision, current + 1);
}
