//! Authentication through real HTTPS: requests without credentials, malformed, forged and
//! expired tokens, and certificates from another CA or past their validity all get a 401
//! `Status` — never a 5xx, a TLS failure or a hang — while the public paths stay open; with
//! anonymous auth on, RBAC decides what `system:anonymous` may see.

mod security_support;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kubeproof_refcluster::pki::Pki;
use kubeproof_refcluster::security::authn::TokenIssuer;
use security_support::*;
use serde_json::json;

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn unauthorized(client: &Client, what: &str) {
    let r = tokio::time::timeout(Duration::from_secs(10), client.get(PODS))
        .await
        .unwrap_or_else(|_| panic!("{what}: the request hung"));
    assert_eq!(r.code, 401, "{what}: {:?}", r.body);
    assert_eq!(
        r.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
        "{what}"
    );
}

/// A certificate for `user` signed by the cluster CA but expired a day ago.
fn expired_certificate(pki_dir: &std::path::Path, user: &str) -> (String, String) {
    let ca_cert = std::fs::read_to_string(pki_dir.join("ca.crt")).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(pki_dir.join("ca.key")).unwrap())
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn bad_credentials_get_401_never_5xx() {
    let env = start(|cfg, dir| {
        let path = dir.join("tokens.csv");
        std::fs::write(&path, "good-static-token,bot,7,\"automation\"\n").unwrap();
        cfg.apiserver.token_auth_file = Some(path);
    })
    .await;
    let cluster = &env.cluster;
    let admin = &env.admin;
    admin
        .create(
            "/api/v1/namespaces/default/serviceaccounts",
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
        )
        .await;
    let good = service_account_token(admin, "default", "robot", json!({})).await;

    // No credentials: 401, except for the public paths.
    let anon = anonymous(cluster).await;
    unauthorized(&anon, "no credentials").await;
    for open in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(anon.get(open).await.code, 200, "{open} is public");
    }
    assert_eq!(anon.get("/apis").await.code, 401);

    // Malformed and forged tokens.
    let (h, c, _sig) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        )
    };
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&c).unwrap()).unwrap();
    claims["sub"] = json!("system:serviceaccount:kube-system:admin");
    let tampered = format!(
        "{h}.{}.{}",
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        good.rsplit('.').next().unwrap()
    );
    let other_key_dir = tempfile::tempdir().unwrap();
    let other_issuer = TokenIssuer::load_or_create(
        other_key_dir.path(),
        "https://kubernetes.default.svc.cluster.local",
    )
    .unwrap();
    let sa = admin
        .get("/api/v1/namespaces/default/serviceaccounts/robot")
        .await
        .body;
    let now = chrono::Utc::now().timestamp();
    let forged = other_issuer
        .token_request(&json!({}), &sa, None, now)
        .unwrap()["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Our own key, but the token expired an hour ago.
    let our_issuer = TokenIssuer::load_or_create(
        &env.dir.path().join("pki"),
        "https://kubernetes.default.svc.cluster.local",
    )
    .unwrap();
    let expired = our_issuer
        .token_request(
            &json!({"spec": {"expirationSeconds": 600}}),
            &sa,
            None,
            now - 7200,
        )
        .unwrap()["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong_audience = our_issuer
        .token_request(&json!({"spec": {"audiences": ["vault"]}}), &sa, None, now)
        .unwrap()["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: Vec<(&str, String)> = vec![
        ("random string", "not-a-token".into()),
        ("three dots of garbage", "a.b.c".into()),
        ("bad base64", "!!!.???.***".into()),
        (
            "JSON that is not a JWT header",
            format!(
                "{}.{}.x",
                URL_SAFE_NO_PAD.encode("[]"),
                URL_SAFE_NO_PAD.encode("{}")
            ),
        ),
        ("oversized", "x".repeat(20_000)),
        ("tampered claims", tampered),
        ("signed by another key", forged),
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("non-ASCII", "tökén".into()),
    ];
    for (what, token) in &cases {
        let client = with_token(cluster, token).await;
        unauthorized(&client, what).await;
        // A bad credential is refused even where no credential would be let in.
        assert_eq!(client.get("/healthz").await.code, 401, "{what} on /healthz");
    }
    // The issuer publishes the key the tokens are signed with.
    let jwks = admin.get("/openid/v1/jwks").await;
    assert_eq!(jwks.code, 200);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&h).unwrap()).unwrap();
    assert_eq!(jwks.body["keys"][0]["kid"], header["kid"]);
    let discovery = admin.get("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery.body["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    // The good ones work.
    assert_eq!(
        with_token(cluster, &good).await.get("/apis").await.code,
        200
    );
    let bot = with_token(cluster, "good-static-token").await;
    let me = bot
        .post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await;
    assert_eq!(
        me.body["status"]["userInfo"],
        json!({"username": "bot", "uid": "7", "groups": ["automation", "system:authenticated"]})
    );

    // A deleted service account takes its tokens with it.
    assert_eq!(
        admin
            .delete("/api/v1/namespaces/default/serviceaccounts/robot")
            .await
            .code,
        200
    );
    unauthorized(
        &with_token(cluster, &good).await,
        "token of a deleted service account",
    )
    .await;

    // Certificates: another CA's (even claiming system:masters), and our CA's expired one.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
    let foreign = other.issue_client("mallory", &["system:masters"]).unwrap();
    let client = with_certificate(cluster, &foreign.cert_pem, &foreign.key_pem).await;
    unauthorized(&client, "certificate from another CA").await;
    let (cert, key) = expired_certificate(&env.dir.path().join("pki"), "old-admin");
    unauthorized(
        &with_certificate(cluster, &cert, &key).await,
        "expired certificate",
    )
    .await;
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn anonymous_requests_are_judged_by_rbac_when_enabled() {
    let env = start(|cfg, _| cfg.apiserver.anonymous_auth = true).await;
    let anon = anonymous(&env.cluster).await;
    for open in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(
            anon.get(open).await.code,
            200,
            "{open} is open to system:public-info-viewer"
        );
    }
    let r = anon.get(PODS).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    let r = anon.get("/metrics").await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.message(),
        r#"forbidden: User "system:anonymous" cannot get path "/metrics""#
    );
    // A bad token is still a 401, not an anonymous request.
    unauthorized(
        &with_token(&env.cluster, "nope").await,
        "bad token with anonymous on",
    )
    .await;
    env.cluster.shutdown().await;
}

#[tokio::test]
async fn user_kubeconfigs_carry_new_identities() {
    let env = start(|_, _| {}).await;
    let yaml =
        kubeproof_refcluster::cluster::user_kubeconfig(env.dir.path(), "quinn", &["qa", "ops"])
            .unwrap();
    let quinn = client_from_kubeconfig(&yaml).await;
    let me = quinn
        .post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await;
    assert_eq!(me.code, 201);
    assert_eq!(
        me.body["status"]["userInfo"],
        json!({"username": "quinn", "groups": ["qa", "ops", "system:authenticated"]})
    );
    assert_eq!(
        quinn.get(PODS).await.code,
        403,
        "a new identity holds no roles"
    );
    let missing = tempfile::tempdir().unwrap();
    let err = kubeproof_refcluster::cluster::user_kubeconfig(missing.path(), "x", &[]).unwrap_err();
    assert!(err.to_string().contains("no cluster in"), "{err}");
    env.cluster.shutdown().await;
}
