//! kube-rs works against the bundled cluster unchanged: typed Api CRUD, errors, watcher,
//! reflector, server-side apply, dynamic API via discovery, pagination.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::ResourceExt;
use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};
use serde_json::json;

async fn start() -> (tempfile::TempDir, RunningCluster, kube::Client) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::for_tests(dir.path())
    };
    let cluster = RunningCluster::start(cfg).await.expect("cluster starts");
    let client = cluster.client().await.expect("client");
    (dir, cluster, client)
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap();
}

fn cm(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "t"}}, "data": data}),
    )
    .unwrap()
}

#[tokio::test]
async fn crud_and_errors_follow_upstream() {
    let (_dir, cluster, client) = start().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );
    namespace(&client, "crud").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "crud");
    let created = api
        .create(&PostParams::default(), &cm("a", json!({"k": "v"})))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1 = created.resource_version().unwrap();

    let dup = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    match dup {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
            assert_eq!(s.message, "configmaps \"a\" already exists");
        }
        other => panic!("unexpected {other:?}"),
    }
    let missing = api.get("nope").await.unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
        "{missing:?}"
    );

    let mut updated = created.clone();
    updated.data = Some([("k".to_string(), "v2".to_string())].into());
    let after = api
        .replace("a", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_ne!(after.resource_version().unwrap(), rv1);
    // The same stale object again: 409 Conflict.
    let stale = api
        .replace("a", &PostParams::default(), &updated)
        .await
        .unwrap_err();
    assert!(
        matches!(stale, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{stale:?}"
    );

    // Strict field validation rejects an unknown field.
    let pp = PostParams {
        field_manager: None,
        dry_run: false,
    };
    let raw: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "dry"}, "data": {"x": "1"}})).unwrap();
    let dry = api
        .create(
            &PostParams {
                dry_run: true,
                ..pp.clone()
            },
            &raw,
        )
        .await
        .unwrap();
    assert_eq!(dry.name_any(), "dry");
    assert!(
        api.get_opt("dry").await.unwrap().is_none(),
        "dry-run must not persist"
    );

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    cluster.shutdown().await;
}

#[tokio::test]
async fn pagination_is_consistent() {
    let (_dir, cluster, client) = start().await;
    namespace(&client, "pages").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "pages");
    for i in 0..25 {
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i:02}"), json!({})),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(10);
    let mut pages = 0;
    loop {
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|c| c.name_any()));
        // Writes between pages do not show up in the paginated snapshot.
        api.create(
            &PostParams::default(),
            &cm(&format!("late-{pages}"), json!({})),
        )
        .await
        .unwrap();
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = ListParams::default().limit(10).continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(names, expected);
    let labelled = api
        .list(
            &ListParams::default()
                .labels("app=t")
                .fields("metadata.name=cm-03"),
        )
        .await
        .unwrap();
    assert_eq!(labelled.items.len(), 1);
    cluster.shutdown().await;
}

#[tokio::test]
async fn watcher_and_reflector_see_every_change() {
    let (_dir, cluster, client) = start().await;
    namespace(&client, "w").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
    let (reader, writer) = reflector::store();
    let rf = reflector(writer, watcher(api.clone(), watcher::Config::default()));
    let handle = tokio::spawn(async move {
        rf.applied_objects().for_each(|_| async {}).await;
    });
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    // Wait for the initial (empty) list before changing anything.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await {
            Ok(Ok(Some(watcher::Event::InitDone))) => break,
            Ok(Ok(Some(_))) => {}
            other => panic!("initial list failed: {other:?}"),
        }
    }
    api.create(&PostParams::default(), &cm("x", json!({"a": "1"})))
        .await
        .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    api.delete("x", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 3 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await {
            Ok(Ok(Some(watcher::Event::Apply(c)))) => {
                seen.push(format!("apply:{}", c.data.unwrap_or_default()["a"]))
            }
            Ok(Ok(Some(watcher::Event::Delete(c)))) => {
                seen.push(format!("delete:{}", c.name_any()))
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("watch ended: {other:?}"),
        }
    }
    assert_eq!(seen, vec!["apply:1", "apply:2", "delete:x"]);
    api.create(&PostParams::default(), &cm("y", json!({})))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reader.state().len() != 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        reader
            .state()
            .iter()
            .map(|c| c.name_any())
            .collect::<Vec<_>>(),
        vec!["y"]
    );
    handle.abort();
    cluster.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_tracks_managers_and_conflicts() {
    let (_dir, cluster, client) = start().await;
    namespace(&client, "ssa").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "ssa");
    let dep = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}},
    });
    let applied = api
        .patch("web", &PatchParams::apply("alice"), &Patch::Apply(&dep))
        .await
        .unwrap();
    assert_eq!(applied.spec.as_ref().unwrap().replicas, Some(2));
    let managers: Vec<String> = applied
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["alice"]);
    let mut bob = dep.clone();
    bob["spec"]["replicas"] = json!(5);
    let err = api
        .patch("web", &PatchParams::apply("bob"), &Patch::Apply(&bob))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("conflict with \"alice\""),
                "{}",
                s.message
            );
            assert!(s.message.contains(".spec.replicas"), "{}", s.message);
        }
        other => panic!("unexpected {other:?}"),
    }
    let forced = api
        .patch(
            "web",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&bob),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(5));
    cluster.shutdown().await;
}

#[tokio::test]
async fn discovery_lists_builtin_and_custom_resources() {
    let (_dir, cluster, client) = start().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}}]}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, _) in group.recommended_resources() {
            found.push(format!("{}/{}", ar.group, ar.plural));
        }
    }
    for want in [
        "/pods",
        "apps/deployments",
        "example.com/gadgets",
        "coordination.k8s.io/leases",
    ] {
        assert!(
            found.iter().any(|f| f == want),
            "{want} not discovered in {found:?}"
        );
    }
    let (ar, _) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.plural == "gadgets")
        .unwrap();
    let gadgets: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &ar);
    let obj: kube::api::DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"n": 3}})).unwrap();
    gadgets.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(gadgets.get("g1").await.unwrap().data["spec"]["n"], 3);
    cluster.shutdown().await;
}
