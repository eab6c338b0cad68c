use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::*;
use crate::security::UserInfo;

fn attrs(op: Operation) -> Attributes {
    Attributes::core(
        op,
        "pods",
        "Pod",
        "dev",
        "p",
        UserInfo::new("alice", &["dev", "system:authenticated"]),
    )
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "dev", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
}

fn config(kind: &str, webhooks: Value) -> Value {
    json!({"kind": kind, "metadata": {"name": "cfg"}, "webhooks": webhooks})
}

fn hook_json(name: &str, url: &str, ca: &str, extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": STANDARD.encode(ca)},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 2,
    });
    if let (Some(h), Some(e)) = (h.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            h.insert(k.clone(), v.clone());
        }
    }
    h
}

#[test]
fn rules_scope_and_selectors_decide_which_requests_go_out() {
    let cfg = config(
        "ValidatingWebhookConfiguration",
        json!([
            {"name": "a", "clientConfig": {"url": "https://x"}, "rules": [
                {"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["*"], "resources": ["pods", "pods/status"], "scope": "Namespaced"}
            ], "namespaceSelector": {"matchLabels": {"team": "a"}}, "objectSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}},
            {"name": "b", "clientConfig": {"url": "https://x"}, "rules": [
                {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"], "scope": "Cluster"}
            ]},
        ]),
    );
    let hooks = Webhook::from_configuration(&cfg).unwrap();
    let team_a = BTreeMap::from([("team".to_string(), "a".to_string())]);
    let other = BTreeMap::new();
    let p = pod();
    assert!(hooks[0].matches(&attrs(Operation::Create), Some(&p), None, &team_a));
    assert!(!hooks[0].matches(&attrs(Operation::Create), Some(&p), None, &other));
    assert!(!hooks[0].matches(&attrs(Operation::Delete), None, Some(&p), &team_a));
    assert!(hooks[0].matches(
        &attrs(Operation::Update).with_subresource("status"),
        Some(&p),
        None,
        &team_a
    ));
    assert!(!hooks[0].matches(
        &attrs(Operation::Update).with_subresource("exec"),
        Some(&p),
        None,
        &team_a
    ));
    let unlabelled = json!({"metadata": {"name": "p"}});
    assert!(!hooks[0].matches(&attrs(Operation::Create), Some(&unlabelled), None, &team_a));
    // The old object's labels count too (a label being removed still reaches the webhook).
    assert!(hooks[0].matches(
        &attrs(Operation::Update),
        Some(&unlabelled),
        Some(&p),
        &team_a
    ));
    assert!(!hooks[1].matches(&attrs(Operation::Create), Some(&p), None, &other));
    let node = Attributes::core(
        Operation::Update,
        "nodes",
        "Node",
        "",
        "n",
        UserInfo::new("u", &[]),
    )
    .with_subresource("status");
    assert!(hooks[1].matches(&node, None, None, &other));
}

#[test]
fn review_requests_have_upstream_shape() {
    let mut a = attrs(Operation::Create);
    a.dry_run = true;
    let r = review_request("u-1", &a, Some(&pod()), None, None);
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
    let req = &r["request"];
    assert_eq!(req["uid"], "u-1");
    assert_eq!(
        req["kind"],
        json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    assert_eq!(
        req["resource"],
        json!({"group": "", "version": "v1", "resource": "pods"})
    );
    assert_eq!(req["operation"], "CREATE");
    assert_eq!(
        req["userInfo"],
        json!({"username": "alice", "groups": ["dev", "system:authenticated"]})
    );
    assert_eq!(req["oldObject"], Value::Null);
    assert_eq!(req["dryRun"], true);
    assert_eq!(
        req["options"],
        json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"})
    );
    assert!(req.get("subResource").is_none());
}

#[test]
fn denials_and_bad_answers_are_interpreted_like_upstream() {
    let hooks = Webhook::from_configuration(&config(
        "ValidatingWebhookConfiguration",
        json!([
            {"name": "policy.example.com", "clientConfig": {"url": "https://x"}}
        ]),
    ))
    .unwrap();
    let h = &hooks[0];
    let deny = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
        "uid": "u", "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "no latest tags"}}});
    let a = interpret_response(h, "u", deny.to_string().as_bytes()).unwrap();
    let r = a.rejection.unwrap();
    assert_eq!((r.code, r.reason), (403, "Forbidden"));
    assert_eq!(
        r.message,
        r#"admission webhook "policy.example.com" denied the request: no latest tags"#
    );
    let bare = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": false}});
    let r = interpret_response(h, "u", bare.to_string().as_bytes())
        .unwrap()
        .rejection
        .unwrap();
    assert_eq!(
        (r.code, r.message.as_str()),
        (
            400,
            r#"admission webhook "policy.example.com" denied the request without explanation"#
        )
    );
    assert!(interpret_response(h, "other", deny.to_string().as_bytes())
        .unwrap_err()
        .contains("expected response.uid=\"other\""));
    assert!(interpret_response(h, "u", b"not json").is_err());
    let patching = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
        "uid": "u", "allowed": true, "patchType": "JSONPatch", "patch": STANDARD.encode("[]")}});
    assert!(interpret_response(h, "u", patching.to_string().as_bytes())
        .unwrap_err()
        .contains("may not return patches"));
}

/// A local HTTPS admission webhook server with a few behaviours chosen by path.
async fn serve(pki: &crate::pki::Pki) -> SocketAddr {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pki.server.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut pki.server.key_pem.as_bytes())
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
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_string();
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                        answer(&path, &review).await.to_string(),
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

async fn answer(path: &str, review: &Value) -> Value {
    let uid = review
        .pointer("/request/uid")
        .cloned()
        .unwrap_or(Value::Null);
    let containers = review
        .pointer("/request/object/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let response = match path {
        "/deny" => {
            json!({"uid": uid, "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "pods must not run as alice"}})
        }
        "/warn" => {
            json!({"uid": uid, "allowed": true, "warnings": ["image tag is latest"], "auditAnnotations": {"checked": "yes"}})
        }
        "/sidecar" => {
            let has_sidecar = review
                .pointer("/request/object/spec/containers")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["name"] == "sidecar"));
            let ops = if has_sidecar {
                json!([])
            } else {
                json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "sidecar", "image": "envoy"}}])
            };
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": STANDARD.encode(ops.to_string())})
        }
        "/label" => {
            // Records how many containers it saw, to show reinvocation after the sidecar.
            let ops = json!([{"op": "add", "path": "/metadata/labels/containers-seen", "value": containers.to_string()}]);
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": STANDARD.encode(ops.to_string())})
        }
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            json!({"uid": uid, "allowed": true})
        }
        _ => json!({"uid": uid, "allowed": true}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

fn req<'a>(a: &'a Attributes, labels: &'a BTreeMap<String, String>) -> Request<'a> {
    Request {
        attrs: a,
        old_object: None,
        namespace_labels: labels,
        options: None,
    }
}

#[tokio::test]
async fn webhooks_over_https_deny_mutate_warn_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::pki::Pki::load_or_create(dir.path(), &["127.0.0.1".parse().unwrap()]).unwrap();
    let addr = serve(&pki).await;
    let ca = pki.ca.cert_pem.as_str();
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", addr.port());
    let labels = BTreeMap::new();
    let a = attrs(Operation::Create);

    // A mutating webhook injects a sidecar; an IfNeeded webhook that ran before it is re-run.
    let mutating = Webhook::from_configuration(&config(
        "MutatingWebhookConfiguration",
        json!([
            hook_json(
                "label.example.com",
                &url("/label"),
                ca,
                json!({"reinvocationPolicy": "IfNeeded"})
            ),
            hook_json("sidecar.example.com", &url("/sidecar"), ca, json!({})),
        ]),
    ))
    .unwrap();
    let mut obj = pod();
    let out = run_mutating(&mutating, &req(&a, &labels), &mut obj, &NoServices)
        .await
        .unwrap();
    assert_eq!(
        obj["spec"]["containers"][1],
        json!({"name": "sidecar", "image": "envoy"})
    );
    assert_eq!(
        obj["metadata"]["labels"]["containers-seen"], "2",
        "reinvoked after the sidecar was added"
    );
    assert!(out
        .audit_annotations
        .contains_key("mutation.webhook.admission.k8s.io/round_1_index_0"));

    // Validating webhooks: a denial carries the webhook's status; warnings pass through.
    let validating = Webhook::from_configuration(&config(
        "ValidatingWebhookConfiguration",
        json!([
            hook_json("warn.example.com", &url("/warn"), ca, json!({})),
            hook_json("deny.example.com", &url("/deny"), ca, json!({})),
        ]),
    ))
    .unwrap();
    let err = run_validating(&validating, &req(&a, &labels), Some(&obj), &NoServices)
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        r#"admission webhook "deny.example.com" denied the request: pods must not run as alice"#
    );
    let out = run_validating(&validating[..1], &req(&a, &labels), Some(&obj), &NoServices)
        .await
        .unwrap();
    assert_eq!(out.warnings, vec!["image tag is latest"]);
    assert_eq!(out.audit_annotations["warn.example.com/checked"], "yes");

    // Timeouts and unreachable servers fail closed or open per failurePolicy.
    let slow = Webhook::from_configuration(&config(
        "ValidatingWebhookConfiguration",
        json!([hook_json(
            "slow.example.com",
            &url("/slow"),
            ca,
            json!({"timeoutSeconds": 1})
        ),]),
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let err = run_validating(&slow, &req(&a, &labels), Some(&obj), &NoServices)
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(err.code, 500);
    assert!(err.message.starts_with(r#"Internal error occurred: failed calling webhook "slow.example.com": failed to call webhook: Post ""#), "{}", err.message);
    assert!(
        err.message
            .ends_with("?timeout=1s\": context deadline exceeded"),
        "{}",
        err.message
    );
    let mut ignore = slow.clone();
    ignore[0].failure_policy = FailurePolicy::Ignore;
    assert!(
        run_validating(&ignore, &req(&a, &labels), Some(&obj), &NoServices)
            .await
            .is_ok()
    );

    // A caBundle that does not sign the server's certificate is a failed call.
    let other_dir = tempfile::tempdir().unwrap();
    let other = crate::pki::Pki::load_or_create(other_dir.path(), &[]).unwrap();
    let wrong_ca = Webhook::from_configuration(&config(
        "ValidatingWebhookConfiguration",
        json!([hook_json(
            "tls.example.com",
            &url("/warn"),
            &other.ca.cert_pem,
            json!({})
        ),]),
    ))
    .unwrap();
    let err = run_validating(&wrong_ca, &req(&a, &labels), Some(&obj), &NoServices)
        .await
        .unwrap_err();
    assert!(err.message.contains("tls:"), "{}", err.message);

    // Dry-run requests only reach webhooks without side effects.
    let mut unknown = validating[..1].to_vec();
    unknown[0].side_effects = "Unknown".into();
    let mut dry = a.clone();
    dry.dry_run = true;
    let err = run_validating(&unknown, &req(&dry, &labels), Some(&obj), &NoServices)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            r#"admission webhook "warn.example.com" does not support dry run"#
        )
    );
}
