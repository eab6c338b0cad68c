//! Endpoints and EndpointSlice controllers, the `kubernetes` service's endpoints, the
//! ServiceAccount controller and the root CA publisher, against the bundled cluster.

#[path = "controllers_support.rs"]
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const T: Duration = Duration::from_secs(30);

fn pod(name: &str, app: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "nginx",
        "ports": [{"name": "http", "containerPort": 8080}]}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    obj(json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": spec}))
}

fn service(name: &str, app: &str, extra: serde_json::Value) -> Service {
    let mut spec = json!({
        "selector": {"app": app},
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9090, "targetPort": 9090}
        ]
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    obj(json!({"metadata": {"name": name, "labels": {"team": "blue"}}, "spec": spec}))
}

/// Sets the pod's IP (and readiness) as a kubelet would.
async fn run_pod(client: &kube::Client, ns: &str, name: &str, ip: &str, ready: bool) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut status = ready_status(ip);
    if !ready {
        status["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    }
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

async fn slices_of(client: &kube::Client, ns: &str, svc: &str) -> Vec<EndpointSlice> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await
        .unwrap()
        .items
}

fn ips(list: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>) -> Vec<String> {
    let mut v: Vec<String> = list.iter().flatten().map(|a| a.ip.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn endpoints_and_slices_follow_pod_readiness_and_termination() {
    let env = Env::start().await;
    let ns = env.namespace("eps").await;
    wait_default_sa(&env.client, &ns).await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    for (name, node) in [
        ("a", Some("node-0")),
        ("b", Some("node-1")),
        ("c", Some("node-2")),
    ] {
        pods.create(&PostParams::default(), &pod(name, "web", node))
            .await
            .unwrap();
    }
    // A pod of another app, and one without an IP yet.
    pods.create(&PostParams::default(), &pod("other", "db", Some("node-0")))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("d", "web", None))
        .await
        .unwrap();
    run_pod(&env.client, &ns, "a", "10.1.0.1", true).await;
    run_pod(&env.client, &ns, "b", "10.1.0.2", true).await;
    run_pod(&env.client, &ns, "c", "10.1.0.3", false).await;
    run_pod(&env.client, &ns, "other", "10.1.0.9", true).await;
    let svcs: Api<Service> = Api::namespaced(env.client.clone(), &ns);
    svcs.create(&PostParams::default(), &service("web", "web", json!({})))
        .await
        .unwrap();

    let eps: Api<Endpoints> = Api::namespaced(env.client.clone(), &ns);
    let e = eventually(T, "endpoints with 2 ready and 1 not ready", || async {
        let e = eps.get_opt("web").await.ok().flatten()?;
        let s = e.subsets.clone()?;
        (s.len() == 1
            && ips(&s[0].addresses).len() == 2
            && ips(&s[0].not_ready_addresses).len() == 1)
            .then_some(e)
    })
    .await;
    let subset = &e.subsets.as_ref().unwrap()[0];
    assert_eq!(ips(&subset.addresses), ["10.1.0.1", "10.1.0.2"]);
    assert_eq!(ips(&subset.not_ready_addresses), ["10.1.0.3"]);
    let mut ports: Vec<(String, i32)> = subset
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.port))
        .collect();
    ports.sort();
    assert_eq!(
        ports,
        [("http".to_string(), 8080), ("metrics".to_string(), 9090)]
    );
    let a = subset
        .addresses
        .as_ref()
        .unwrap()
        .iter()
        .find(|x| x.ip == "10.1.0.1")
        .unwrap();
    assert_eq!(a.node_name.as_deref(), Some("node-0"));
    assert_eq!(a.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
    assert_eq!(e.labels().get("team").map(String::as_str), Some("blue"));
    assert!(e
        .annotations()
        .contains_key("endpoints.kubernetes.io/last-change-trigger-time"));

    let slices = eventually(T, "one slice with 3 endpoints", || async {
        let s = slices_of(&env.client, &ns, "web").await;
        (s.len() == 1 && s[0].endpoints.len() == 3).then_some(s)
    })
    .await;
    let slice = &slices[0];
    assert_eq!(slice.address_type, "IPv4");
    assert!(slice.name_any().starts_with("web-"));
    assert_eq!(
        slice
            .labels()
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    assert_eq!(slice.labels().get("team").map(String::as_str), Some("blue"));
    let owner = &slice.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Service", "web", Some(true))
    );
    let cond = |s: &EndpointSlice, pod: &str| {
        let e = s
            .endpoints
            .iter()
            .find(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
            .unwrap();
        let c = e.conditions.clone().unwrap();
        (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
    };
    assert_eq!(cond(slice, "a"), (true, true, false));
    assert_eq!(cond(slice, "c"), (false, false, false));

    // c becomes ready; a starts terminating (it is bound, so it keeps its grace period).
    run_pod(&env.client, &ns, "c", "10.1.0.3", true).await;
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    eventually(
        T,
        "a gone from Endpoints, terminating in the slice",
        || async {
            let e = eps.get("web").await.ok()?;
            let s = e.subsets.clone()?;
            let ok_eps = s.len() == 1
                && ips(&s[0].addresses) == ["10.1.0.2", "10.1.0.3"]
                && s[0].not_ready_addresses.is_none();
            let slices = slices_of(&env.client, &ns, "web").await;
            let ok_slice = slices.len() == 1
                && cond(&slices[0], "a") == (false, true, true)
                && cond(&slices[0], "c") == (true, true, false);
            (ok_eps && ok_slice).then_some(())
        },
    )
    .await;

    // Deleting the Service removes its Endpoints and (through the owner reference) slices.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually(T, "endpoints and slices removed", || async {
        let gone = eps.get_opt("web").await.ok()?.is_none();
        (gone && slices_of(&env.client, &ns, "web").await.is_empty()).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn publish_not_ready_slice_limits_truncation_and_manual_endpoints() {
    let env = Env::start_with(|c| {
        c.max_endpoints_per_slice = 4;
        c.max_endpoints_per_endpoints = 5;
    })
    .await;
    let ns = env.namespace("eps-many").await;
    wait_default_sa(&env.client, &ns).await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    for i in 0..7 {
        let name = format!("p{i}");
        pods.create(&PostParams::default(), &pod(&name, "many", None))
            .await
            .unwrap();
        run_pod(&env.client, &ns, &name, &format!("10.2.0.{i}"), i < 3).await;
    }
    let svcs: Api<Service> = Api::namespaced(env.client.clone(), &ns);
    svcs.create(
        &PostParams::default(),
        &service("many", "many", json!({"publishNotReadyAddresses": true})),
    )
    .await
    .unwrap();
    let eps: Api<Endpoints> = Api::namespaced(env.client.clone(), &ns);
    let e = eventually(T, "truncated endpoints", || async {
        let e = eps.get_opt("many").await.ok().flatten()?;
        e.annotations()
            .contains_key("endpoints.kubernetes.io/over-capacity")
            .then_some(e)
    })
    .await;
    assert_eq!(
        e.annotations()["endpoints.kubernetes.io/over-capacity"],
        "truncated"
    );
    let s = &e.subsets.unwrap()[0];
    assert_eq!(
        ips(&s.addresses).len(),
        5,
        "all published as ready, cut to 5"
    );
    assert!(s.not_ready_addresses.is_none());
    let slices = eventually(T, "7 endpoints in slices of at most 4", || async {
        let s = slices_of(&env.client, &ns, "many").await;
        (s.iter().map(|x| x.endpoints.len()).sum::<usize>() == 7).then_some(s)
    })
    .await;
    let mut sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [3, 4]);
    assert!(slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .all(|e| e.conditions.as_ref().unwrap().ready == Some(true)));

    // A Service without selector: Endpoints are the user's to write and are left alone.
    let manual: Service =
        obj(json!({"metadata": {"name": "external"}, "spec": {"ports": [{"port": 5432}]}}));
    svcs.create(&PostParams::default(), &manual).await.unwrap();
    let by_hand: Endpoints = obj(json!({"metadata": {"name": "external"},
        "subsets": [{"addresses": [{"ip": "192.168.1.10"}], "ports": [{"port": 5432}]}]}));
    eps.create(&PostParams::default(), &by_hand).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kept = eps.get("external").await.unwrap();
    assert_eq!(ips(&kept.subsets.unwrap()[0].addresses), ["192.168.1.10"]);
    assert!(slices_of(&env.client, &ns, "external")
        .await
        .iter()
        .all(|s| s
            .labels()
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str)
            != Some("endpointslice-controller.k8s.io")));
    env.stop().await;
}

#[tokio::test]
async fn every_namespace_gets_a_default_account_and_the_root_ca() {
    let env = Env::start().await;
    let ca = env.cluster.pki.ca.cert_pem.clone();
    let ns = env.namespace("fresh").await;
    for namespace in [ns.as_str(), "default", "kube-system"] {
        let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), namespace);
        eventually(T, "the default service account", || async {
            sas.get_opt("default").await.ok().flatten()
        })
        .await;
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), namespace);
        let cm = eventually(T, "kube-root-ca.crt", || async {
            cms.get_opt("kube-root-ca.crt").await.ok().flatten()
        })
        .await;
        assert_eq!(cm.data.unwrap()["ca.crt"], ca);
        assert!(
            cm.metadata.annotations.unwrap()["kubernetes.io/description"]
                .starts_with("Contains a CA bundle")
        );
    }
    // Deleted: recreated. Edited: put back.
    let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &ns);
    let old_uid = sas.get("default").await.unwrap().uid();
    sas.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually(T, "a new default service account", || async {
        let sa = sas.get_opt("default").await.ok().flatten()?;
        (sa.uid() != old_uid).then_some(())
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    cms.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"ca.crt": "forged", "extra": "x"}})),
    )
    .await
    .unwrap();
    eventually(T, "the CA put back", || async {
        let cm = cms.get("kube-root-ca.crt").await.ok()?;
        let data = cm.data?;
        (data.get("ca.crt") == Some(&ca) && !data.contains_key("extra")).then_some(())
    })
    .await;
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    eventually(T, "the CA map recreated", || async {
        cms.get_opt("kube-root-ca.crt").await.ok().flatten()
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn the_kubernetes_service_points_at_the_api_server() {
    let env = Env::start().await;
    let port = env.cluster.addr.port() as i32;
    let eps: Api<Endpoints> = Api::namespaced(env.client.clone(), "default");
    let e = eventually(T, "default/kubernetes endpoints", || async {
        eps.get_opt("kubernetes").await.ok().flatten()
    })
    .await;
    let s = &e.subsets.unwrap()[0];
    assert_eq!(ips(&s.addresses), [env.cluster.addr.ip().to_string()]);
    let p = &s.ports.as_ref().unwrap()[0];
    assert_eq!(
        (p.name.as_deref(), p.port, p.protocol.as_deref()),
        (Some("https"), port, Some("TCP"))
    );
    let slices: Api<EndpointSlice> = Api::namespaced(env.client.clone(), "default");
    let slice = eventually(T, "the kubernetes slice", || async {
        slices.get_opt("kubernetes").await.ok().flatten()
    })
    .await;
    assert_eq!(slice.labels()["kubernetes.io/service-name"], "kubernetes");
    assert_eq!(
        slice.endpoints[0].addresses,
        [env.cluster.addr.ip().to_string()]
    );
    assert_eq!(slice.ports.unwrap()[0].port, Some(port));
    env.stop().await;
}
