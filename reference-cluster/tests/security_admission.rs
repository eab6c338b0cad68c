//! The admission chain through real HTTPS: PodSecurity levels with upstream's messages and
//! warnings, admission webhooks served by a local HTTPS server (a mutating one injecting a
//! sidecar before a validating one that insists on it; one reached through a Service), dry
//! runs, ResourceQuota charging and release, and the built-in mutating plugins' defaults.

mod security_support;

use std::convert::Infallible;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use security_support::*;
use serde_json::{json, Value};

fn privileged_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": true}}]}})
}

fn restricted_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "nginx", "securityContext": {
                        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
}

#[tokio::test]
async fn pod_security_levels_enforce_warn_and_admit() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    namespace(
        admin,
        "locked",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let r = admin
        .post("/api/v1/namespaces/locked/pods", &privileged_pod("priv"))
        .await;
    assert_eq!(r.code, 403, "{:?}", r.body);
    assert_eq!(r.body["reason"], "Forbidden");
    assert_eq!(
        r.message(),
        r#"pods "priv" is forbidden: violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    let ok = admin
        .post(
            "/api/v1/namespaces/locked/pods",
            &restricted_pod("compliant"),
        )
        .await;
    assert_eq!(ok.code, 201, "{:?}", ok.body);
    // Workloads are only warned about, never refused.
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": true}}]}}}});
    let r = admin
        .post("/apis/apps/v1/namespaces/locked/deployments", &dep)
        .await;
    assert_eq!(r.code, 201, "{:?}", r.body);
    namespace(
        admin,
        "warned",
        json!({"pod-security.kubernetes.io/warn": "baseline"}),
    )
    .await;
    let r = admin
        .post("/api/v1/namespaces/warned/pods", &privileged_pod("loud"))
        .await;
    assert_eq!(r.code, 201);
    assert_eq!(
        r.warnings(),
        vec![
            r#"299 - "would violate PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)""#
        ]
    );
    // Tightening a namespace warns about the pods already there.
    let r = admin
        .request("PATCH", "/api/v1/namespaces/warned", Some(&json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})), &[])
        .await;
    assert_eq!(r.code, 200);
    assert!(
        r.warnings().iter().any(|w| w.contains("existing pods in namespace \\\"warned\\\" violate the new PodSecurity enforce level \\\"baseline:latest\\\"")),
        "{:?}",
        r.warnings()
    );
    let r = admin
        .request("PATCH", "/api/v1/namespaces/warned", Some(&json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "strictest"}}})), &[])
        .await;
    assert_eq!(r.code, 422, "{:?}", r.body);
    env.cluster.shutdown().await;
}

/// A CA and a serving certificate for the webhook server.
fn webhook_certificates(names: &[&str]) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "webhook-ca");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    leaf.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

type Calls = Arc<Mutex<Vec<(String, bool)>>>;

/// Answers AdmissionReviews by path, recording (path, dryRun) of every call.
fn answer(path: &str, review: &Value) -> Value {
    let uid = review
        .pointer("/request/uid")
        .cloned()
        .unwrap_or(Value::Null);
    let pod = review
        .pointer("/request/object")
        .cloned()
        .unwrap_or(Value::Null);
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_sidecar = containers.iter().any(|c| c["name"] == "sidecar");
    let response = match path {
        "/sidecar" => {
            let ops = if has_sidecar {
                json!([])
            } else {
                json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "sidecar", "image": "envoyproxy/envoy:v1.31"}}])
            };
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": STANDARD.encode(ops.to_string())})
        }
        "/require-sidecar" => {
            if pod.pointer("/metadata/labels/deny") == Some(&json!("true")) {
                json!({"uid": uid, "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "pods labelled deny=true are refused"}})
            } else if !has_sidecar {
                json!({"uid": uid, "allowed": false, "status": {"code": 422, "reason": "Invalid", "message": "no sidecar: the mutating webhook did not run first"}})
            } else {
                json!({"uid": uid, "allowed": true, "warnings": ["sidecar checked"]})
            }
        }
        _ => json!({"uid": uid, "allowed": false}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

async fn serve_webhooks(cert_pem: &str, key_pem: &str, calls: Calls) -> u16 {
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let calls = calls.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let dry = review.pointer("/request/dryRun") == Some(&json!(true));
                        calls.lock().push((path.clone(), dry));
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                            answer(&path, &review).to_string(),
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn webhooks_mutate_then_validate_in_order() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    let (ca, cert, key) = webhook_certificates(&["hooks.webhooks.svc"]);
    let calls: Calls = Default::default();
    let port = serve_webhooks(&cert, &key, calls.clone()).await;
    // The mutating webhook is reached through a Service whose Endpoints point at the server.
    namespace(admin, "webhooks", json!({})).await;
    admin
        .create("/api/v1/namespaces/webhooks/services", &json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "hooks"}, "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}))
        .await;
    admin
        .create("/api/v1/namespaces/webhooks/endpoints", &json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "hooks"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]}))
        .await;
    let rules = json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]);
    let selector = json!({"matchLabels": {"webhooks": "on"}});
    admin
        .create("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", &json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "sidecar-injector"},
            "webhooks": [{"name": "sidecar.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"service": {"namespace": "webhooks", "name": "hooks", "path": "/sidecar", "port": 443}, "caBundle": STANDARD.encode(&ca)},
                "rules": rules, "namespaceSelector": selector, "timeoutSeconds": 5}]}))
        .await;
    admin
        .create("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", &json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "sidecar-required"},
            "webhooks": [{"name": "require-sidecar.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/require-sidecar"), "caBundle": STANDARD.encode(&ca)},
                "rules": rules, "namespaceSelector": selector, "timeoutSeconds": 5}]}))
        .await;
    namespace(admin, "hooked", json!({"webhooks": "on"})).await;

    let created = admin
        .post("/api/v1/namespaces/hooked/pods", &pod("web"))
        .await;
    assert_eq!(created.code, 201, "{:?}", created.body);
    let names: Vec<&str> = created.body["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["c", "sidecar"],
        "the mutating webhook injected its sidecar"
    );
    assert_eq!(created.warnings(), vec![r#"299 - "sidecar checked""#]);
    assert_eq!(
        *calls.lock(),
        vec![
            ("/sidecar".to_string(), false),
            ("/require-sidecar".to_string(), false)
        ],
        "mutating before validating"
    );

    let mut denied = pod("refused");
    denied["metadata"]["labels"] = json!({"deny": "true"});
    let r = admin.post("/api/v1/namespaces/hooked/pods", &denied).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"admission webhook "require-sidecar.example.com" denied the request: pods labelled deny=true are refused"#
    );
    assert_eq!(
        admin
            .get("/api/v1/namespaces/hooked/pods/refused")
            .await
            .code,
        404
    );

    // Dry runs reach webhooks without side effects, flagged as dry runs, and store nothing.
    calls.lock().clear();
    let r = admin
        .request(
            "POST",
            "/api/v1/namespaces/hooked/pods?dryRun=All",
            Some(&pod("trial")),
            &[],
        )
        .await;
    assert_eq!(r.code, 201);
    assert_eq!(
        *calls.lock(),
        vec![
            ("/sidecar".to_string(), true),
            ("/require-sidecar".to_string(), true)
        ]
    );
    assert_eq!(
        admin.get("/api/v1/namespaces/hooked/pods/trial").await.code,
        404
    );

    // Namespaces the selectors do not match are not sent to the webhooks.
    calls.lock().clear();
    assert_eq!(
        admin
            .post("/api/v1/namespaces/default/pods", &pod("plain"))
            .await
            .code,
        201
    );
    assert!(calls.lock().is_empty());
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn webhook_failure_policy_and_dry_run_side_effects() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    let (ca, _, _) = webhook_certificates(&["nowhere"]);
    // Nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = |name: &str, policy: &str, side_effects: &str| {
        json!({
        "name": name, "admissionReviewVersions": ["v1"], "sideEffects": side_effects, "failurePolicy": policy,
        "clientConfig": {"url": format!("https://127.0.0.1:{dead}/x"), "caBundle": STANDARD.encode(&ca)},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "objectSelector": {"matchLabels": {"hook": name}}, "timeoutSeconds": 2})
    };
    admin
        .create("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", &json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "unreachable"},
            "webhooks": [hook("ignored.example.com", "Ignore", "None"), hook("fatal.example.com", "Fail", "None"),
                         hook("effects.example.com", "Ignore", "Some")]}))
        .await;
    let cm = |name: &str, hook: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"hook": hook}}});
    let cms = "/api/v1/namespaces/default/configmaps";
    assert_eq!(
        admin.post(cms, &cm("a", "ignored.example.com")).await.code,
        201,
        "failurePolicy Ignore fails open"
    );
    let r = admin.post(cms, &cm("b", "fatal.example.com")).await;
    assert_eq!(r.code, 500);
    assert!(r.message().starts_with(r#"Internal error occurred: failed calling webhook "fatal.example.com": failed to call webhook: Post "https://127.0.0.1:"#), "{}", r.message());
    let r = admin
        .request(
            "POST",
            &format!("{cms}?dryRun=All"),
            Some(&cm("c", "effects.example.com")),
            &[],
        )
        .await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.message(),
        r#"admission webhook "effects.example.com" does not support dry run"#
    );
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn resource_quota_charges_and_releases() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    namespace(admin, "capped", json!({})).await;
    admin
        .create(
            "/api/v1/namespaces/capped/resourcequotas",
            &json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "compute"}, "spec": {"hard": {"pods": "2", "configmaps": "20"}}}),
        )
        .await;
    let counted = eventually(10, || async move {
        admin
            .get("/api/v1/namespaces/capped/resourcequotas/compute")
            .await
            .body["status"]["hard"]["pods"]
            == json!("2")
    })
    .await;
    assert!(counted, "the quota controller fills in the status");
    let pods = "/api/v1/namespaces/capped/pods";
    assert_eq!(admin.post(pods, &pod("p1")).await.code, 201);
    assert_eq!(admin.post(pods, &pod("p2")).await.code, 201);
    let r = admin.post(pods, &pod("p3")).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"pods "p3" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"#
    );
    let q = admin
        .get("/api/v1/namespaces/capped/resourcequotas/compute")
        .await
        .body;
    assert_eq!(q["status"]["used"]["pods"], "2");
    // A dry run is checked against the quota but charges nothing.
    let r = admin
        .request("POST", &format!("{pods}?dryRun=All"), Some(&pod("p4")), &[])
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(admin.delete(&format!("{pods}/p1")).await.code, 200);
    let released = eventually(10, || async move {
        admin
            .get("/api/v1/namespaces/capped/resourcequotas/compute")
            .await
            .body["status"]["used"]["pods"]
            == json!("1")
    })
    .await;
    assert!(released, "deleting a pod releases its quota");
    assert_eq!(admin.post(pods, &pod("p3")).await.code, 201);
    env.cluster.shutdown().await;
}

/// Writes `obj` to the store under `key` as another API server sharing it would: not through
/// this server, which learns of it only from its watch.
async fn write_behind_the_servers_back(env: &Env, key: &str, obj: &Value) {
    let bytes = bytes::Bytes::from(serde_json::to_vec(obj).unwrap());
    let store = &env.cluster.raw_store;
    match store.get(key).await.unwrap() {
        Some(kv) => store.update(key, bytes, kv.mod_revision).await.unwrap(),
        None => store.create(key, bytes).await.unwrap(),
    };
}

#[tokio::test]
async fn admission_sees_objects_other_servers_write() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    namespace(admin, "shared", json!({})).await;
    // A LimitRange admission has never seen from this server's own writes.
    write_behind_the_servers_back(
        &env,
        "/registry/limitranges/shared/defaults",
        &json!({"apiVersion": "v1", "kind": "LimitRange",
                "metadata": {"name": "defaults", "namespace": "shared", "uid": "lr-1"},
                "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "150m"}}]}}),
    )
    .await;
    let mut n = 0;
    let defaulted = eventually(10, || {
        n += 1;
        let name = format!("p{n}");
        async move {
            let r = admin
                .post("/api/v1/namespaces/shared/pods", &pod(&name))
                .await;
            r.body["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "150m"
        }
    })
    .await;
    assert!(
        defaulted,
        "the LimitRange reaches admission through the watch"
    );

    // A quota whose limit another server lowered: whether or not the watch has brought the
    // change yet, the next pod is refused, since charging a stale quota conflicts and the
    // retry reads the store.
    admin
        .create(
            "/api/v1/namespaces/shared/resourcequotas",
            &json!({"apiVersion": "v1", "kind": "ResourceQuota",
                    "metadata": {"name": "pods"}, "spec": {"hard": {"pods": "100"}}}),
        )
        .await;
    let quota_uri = "/api/v1/namespaces/shared/resourcequotas/pods";
    let counted = eventually(10, || async move {
        admin.get(quota_uri).await.body["status"]["used"]["pods"] == json!(n.to_string())
    })
    .await;
    assert!(counted, "the quota controller counts the {n} pods");
    let mut lowered = admin.get(quota_uri).await.body;
    lowered["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let limit = json!(n.to_string());
    lowered["spec"]["hard"]["pods"] = limit.clone();
    lowered["status"]["hard"]["pods"] = limit;
    write_behind_the_servers_back(&env, "/registry/resourcequotas/shared/pods", &lowered).await;
    let r = admin
        .post("/api/v1/namespaces/shared/pods", &pod("one-too-many"))
        .await;
    assert_eq!(r.code, 403, "{:?}", r.body);
    assert!(
        r.message().contains("exceeded quota: pods"),
        "{}",
        r.message()
    );
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn built_in_plugins_default_and_guard() {
    let env = start(|_, _| {}).await;
    let admin = &env.admin;
    namespace(admin, "shop", json!({})).await;
    admin
        .create("/api/v1/namespaces/shop/limitranges", &json!({"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": "defaults"},
            "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m"}, "default": {"cpu": "200m"}, "max": {"cpu": "1"}}]}}))
        .await;
    let mut p = pod("app");
    p["spec"]["priorityClassName"] = json!("system-cluster-critical");
    let created = admin.post("/api/v1/namespaces/shop/pods", &p).await;
    assert_eq!(created.code, 201, "{:?}", created.body);
    let spec = &created.body["spec"];
    // LimitRanger
    assert_eq!(
        spec["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}})
    );
    assert_eq!(
        created.body["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu request for container c; cpu limit for container c"
    );
    // ServiceAccount
    assert_eq!(spec["serviceAccountName"], "default");
    let volume = spec["volumes"][0]["name"].as_str().unwrap();
    assert!(volume.starts_with("kube-api-access-"), "{volume}");
    assert_eq!(
        spec["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    // Priority
    assert_eq!(spec["priority"], 2_000_000_000);
    // DefaultTolerationSeconds
    let tolerations: Vec<&str> = spec["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        tolerations,
        vec![
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable"
        ]
    );
    // LimitRanger's validating half.
    let mut greedy = pod("greedy");
    greedy["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "2"}});
    let r = admin.post("/api/v1/namespaces/shop/pods", &greedy).await;
    assert_eq!(r.code, 403, "{:?}", r.body);
    assert_eq!(
        r.message(),
        r#"pods "greedy" is forbidden: maximum cpu usage per Container is 1, but limit is 2"#
    );
    let mut unknown = pod("unknown-class");
    unknown["spec"]["priorityClassName"] = json!("gold");
    let r = admin.post("/api/v1/namespaces/shop/pods", &unknown).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"pods "unknown-class" is forbidden: no PriorityClass with name gold was found"#
    );
    let mut lost = pod("lost");
    lost["spec"]["serviceAccountName"] = json!("ghost");
    let r = admin.post("/api/v1/namespaces/shop/pods", &lost).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"pods "lost" is forbidden: error looking up service account shop/ghost: serviceaccount "ghost" not found"#
    );
    // NamespaceLifecycle
    let r = admin.delete("/api/v1/namespaces/default").await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"namespaces "default" is forbidden: this namespace may not be deleted"#
    );
    // NodeRestriction: a node identity may change only its own Node.
    let node = as_user(&env.cluster, "system:node:node-0", &["system:nodes"]).await;
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    assert_eq!(
        node.request("PATCH", "/api/v1/nodes/node-0", Some(&label), &[])
            .await
            .code,
        200
    );
    admin
        .create(
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-9"}}),
        )
        .await;
    let r = node
        .request("PATCH", "/api/v1/nodes/node-9", Some(&label), &[])
        .await;
    assert_eq!(r.code, 403, "{:?}", r.body);
    assert_eq!(
        r.message(),
        r#"nodes "node-9" is forbidden: node "node-0" is not allowed to modify node "node-9""#
    );
    env.cluster.shutdown().await;
}
