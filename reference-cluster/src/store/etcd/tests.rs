//! These tests run against a real etcd: each starts its own `etcd` process on free loopback
//! ports with a temporary data directory. Without the binary they print why and pass
//! vacuously, so the suite still runs on machines without etcd. `KUBEPROOF_ETCD_BIN` overrides
//! where the binary is looked for.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::store::conformance::{self, Fixture};

/// An etcd process that is killed (and reaped) when dropped.
pub(crate) struct EtcdProcess {
    child: Child,
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KUBEPROOF_ETCD_BIN") {
        return Some(PathBuf::from(path));
    }
    let default = PathBuf::from("/usr/bin/etcd");
    if default.exists() {
        return Some(default);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("etcd"))
            .find(|candidate| candidate.exists())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl EtcdProcess {
    /// Starts etcd and waits until it answers; `None` (after saying why) without a binary.
    pub(crate) async fn start() -> Option<EtcdProcess> {
        let Some(binary) = etcd_binary() else {
            eprintln!("skipping: no etcd binary (install etcd-server or set KUBEPROOF_ETCD_BIN)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = Command::new(&binary)
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut process = EtcdProcess {
            child,
            endpoint,
            dir,
        };
        process.wait_ready().await;
        Some(process)
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("etcd exited with {status}:\n{}", self.log());
            }
            if self.connect().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not ready after 30s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    pub(crate) async fn connect(&self) -> StoreResult<EtcdStore> {
        let opts = EtcdOptions {
            connect_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        EtcdStore::connect(std::slice::from_ref(&self.endpoint), opts).await
    }

    async fn raw_client(&self) -> Client {
        Client::connect([&self.endpoint], None).await.unwrap()
    }
}

async fn fixture() -> Option<Fixture> {
    let etcd = EtcdProcess::start().await?;
    let store = etcd.connect().await.unwrap();
    Some(Fixture::new(Arc::new(store), etcd))
}

conformance::conformance_suite!(fixture);

#[tokio::test]
async fn keys_values_and_revisions_are_etcds_own() {
    let Some(etcd) = EtcdProcess::start().await else {
        return;
    };
    let store = etcd.connect().await.unwrap();
    let created = store
        .create("/registry/pods/default/a", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let mut raw = etcd.raw_client().await;
    let response = raw.get("/registry/pods/default/a", None).await.unwrap();
    let kv = &response.kvs()[0];
    assert_eq!(kv.value(), b"{}");
    assert_eq!(kv.mod_revision(), created.mod_revision);
    assert_eq!(kv.create_revision(), created.create_revision);
    assert_eq!(
        response.header().unwrap().revision(),
        store.current_revision().await.unwrap()
    );
}

#[tokio::test]
async fn compaction_by_another_client_is_reported_with_its_revision() {
    let Some(etcd) = EtcdProcess::start().await else {
        return;
    };
    let store = etcd.connect().await.unwrap();
    let mut last = 0;
    for i in 0..5 {
        last = store
            .create(&format!("/x/{i}"), Bytes::from_static(b"v"))
            .await
            .unwrap()
            .mod_revision;
    }
    let mut raw = etcd.raw_client().await;
    raw.compact(last - 1, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    assert_eq!(store.compacted_revision(), 0, "not observed yet");
    assert_eq!(
        store.list("/x/", None, Some(last - 2), 0).await.err(),
        Some(StoreError::Expired {
            requested: last - 2,
            oldest: last - 1
        })
    );
    assert_eq!(store.compacted_revision(), last - 1);
    assert!(matches!(
        store.watch("/x/", last - 3).await,
        Err(StoreError::Expired { .. })
    ));
    assert_eq!(
        store
            .list("/x/", None, Some(last - 1), 0)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
}

#[tokio::test]
async fn an_unreachable_etcd_is_unavailable() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let opts = EtcdOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(500),
        user: None,
    };
    let started = Instant::now();
    let result = EtcdStore::connect(&[endpoint], opts).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn prefix_ranges_cover_exactly_the_prefix() {
    assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
    assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    assert_eq!(prefix_end(b""), vec![0]);
    assert_eq!(range_start("/a/", None), b"/a/".to_vec());
    assert_eq!(range_start("/a/", Some("/a/x")), b"/a/x\0".to_vec());
    // A start_after before the prefix range does not widen it.
    assert_eq!(range_start("/b/", Some("/a/x")), b"/b/".to_vec());
    assert_eq!(range_start("", None), vec![0]);
}
