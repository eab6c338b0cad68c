//! An acknowledged write is never lost: concurrent writers, kill -9 of the API server process,
//! restart on the same data directory, every write that got a 2xx is there, and every object
//! that is there is whole.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use support::ClusterProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = ClusterProcess::start(dir.path());
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let acked = Arc::new(parking_lot::Mutex::new(BTreeMap::<String, String>::new()));

    let mut writers = Vec::new();
    for w in 0..8 {
        let api = api.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let payload = format!("{name}:{}", "x".repeat(200));
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    data: Some([("payload".to_string(), payload.clone())].into()),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => {
                        acked.lock().insert(name, payload);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the writers get going, then kill the server mid-stream.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().len() < 300 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill9();
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
    let acked = acked.lock().clone();
    assert!(
        acked.len() >= 300,
        "writers got only {} acknowledgements before the kill",
        acked.len()
    );

    let cluster = ClusterProcess::start(dir.path());
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let stored: BTreeMap<String, String> = api
        .list(&ListParams::default())
        .await
        .expect("list after restart")
        .items
        .into_iter()
        .filter_map(|cm| {
            // Only the writers' objects (`w<writer>-<n>`), not what the cluster keeps there
            // itself (the controller-manager publishes kube-root-ca.crt in every namespace).
            let name = cm.metadata.name.filter(|n| n.starts_with('w'))?;
            let payload = cm
                .data
                .and_then(|d| d.get("payload").cloned())
                .unwrap_or_default();
            Some((name, payload))
        })
        .collect();
    let missing: Vec<&String> = acked.keys().filter(|k| !stored.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for (name, payload) in &stored {
        assert_eq!(
            payload,
            &format!("{name}:{}", "x".repeat(200)),
            "object {name} is not whole"
        );
    }
    eprintln!(
        "durability: {} acknowledged writes before kill -9, {} objects after restart (the rest were in flight)",
        acked.len(),
        stored.len()
    );
}
