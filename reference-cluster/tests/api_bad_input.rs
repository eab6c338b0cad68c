//! Bad input never panics or answers 5xx: every malformed request gets a 4xx `Status`.

use kubeproof_refcluster::cluster::{ClusterConfig, RunningCluster, StoreConfig};

async fn send(
    client: &kube::Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("Content-Type", content_type)
        .body(body)
        .unwrap();
    // `send` gives the raw response whatever its status.
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("transport works");
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn malformed_requests_get_4xx_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = RunningCluster::start(ClusterConfig {
        store: StoreConfig::Memory,
        ..ClusterConfig::for_tests(dir.path())
    })
    .await
    .unwrap();
    let client = cluster.client().await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, _) = send(
        &client,
        "POST",
        cms,
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"present"}}"#.to_vec(),
    )
    .await;
    assert_eq!(code, 201);
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let cases: Vec<(&str, String, &str, Vec<u8>, u16)> = vec![
        (
            "POST",
            cms.into(),
            "application/json",
            b"{not json".to_vec(),
            400,
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            vec![0xff, 0xfe, 0x7b, 0x7d],
            400,
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            format!("{{\"data\": {deep}}}").into_bytes(),
            400,
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            vec![b' '; 4 * 1024 * 1024],
            413,
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}"#.to_vec(),
            400,
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#.to_vec(),
            422,
        ),
        (
            "POST",
            cms.into(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":1}}"#
                .to_vec(),
            400,
        ),
        (
            "POST",
            cms.into(),
            "application/yaml",
            b"a: [unclosed".to_vec(),
            400,
        ),
        ("POST", cms.into(), "text/plain", b"hello".to_vec(), 400),
        (
            "GET",
            format!("{cms}?labelSelector=a%20in%20(b"),
            "application/json",
            vec![],
            400,
        ),
        (
            "GET",
            format!("{cms}?fieldSelector=spec.nope%3Dx"),
            "application/json",
            vec![],
            400,
        ),
        (
            "GET",
            format!("{cms}?continue=!!!"),
            "application/json",
            vec![],
            400,
        ),
        (
            "GET",
            format!("{cms}?limit=abc"),
            "application/json",
            vec![],
            400,
        ),
        (
            "GET",
            format!("{cms}?resourceVersion=abc&resourceVersionMatch=Exact"),
            "application/json",
            vec![],
            400,
        ),
        (
            "GET",
            format!("{cms}?watch=true&resourceVersion=-5"),
            "application/json",
            vec![],
            400,
        ),
        (
            "GET",
            "/api/v1/nosuchthings".into(),
            "application/json",
            vec![],
            404,
        ),
        (
            "GET",
            "/apis/nosuch.group/v1/things".into(),
            "application/json",
            vec![],
            404,
        ),
        (
            "PATCH",
            format!("{cms}/missing"),
            "application/merge-patch+json",
            b"{}".to_vec(),
            404,
        ),
        (
            "PATCH",
            format!("{cms}/present"),
            "application/json-patch+json",
            b"[{\"op\":\"bogus\"}]".to_vec(),
            400,
        ),
        (
            "PATCH",
            format!("{cms}/present"),
            "application/merge-patch+json",
            b"{not json".to_vec(),
            400,
        ),
        (
            "PATCH",
            format!("{cms}/present"),
            "application/strategic-merge-patch+json",
            br#"{"data":{"$patch":"explode"}}"#.to_vec(),
            400,
        ),
        (
            "PATCH",
            format!("{cms}/present"),
            "application/x-unknown",
            b"{}".to_vec(),
            415,
        ),
        (
            "DELETE",
            format!("{cms}/missing?propagationPolicy=Sideways"),
            "application/json",
            vec![],
            422,
        ),
        (
            "DELETE",
            format!("{cms}/missing?gracePeriodSeconds=soon"),
            "application/json",
            vec![],
            400,
        ),
        (
            "POST",
            format!("{cms}?fieldValidation=Maybe"),
            "application/json",
            b"{}".to_vec(),
            400,
        ),
        (
            "POST",
            format!("{cms}?dryRun=Some"),
            "application/json",
            b"{}".to_vec(),
            400,
        ),
    ];
    for (method, uri, ct, body, want) in cases {
        let (code, status) = send(&client, method, &uri, ct, body).await;
        assert_eq!(
            code, want,
            "{method} {uri} ({ct}) answered {code}: {status}"
        );
        assert_eq!(
            status["kind"], "Status",
            "{method} {uri}: not a Status: {status}"
        );
        assert_eq!(status["code"], want, "{method} {uri}: {status}");
    }
    // The server is still healthy afterwards.
    let (code, _) = send(
        &client,
        "GET",
        "/api/v1/namespaces/default",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    cluster.shutdown().await;
}
