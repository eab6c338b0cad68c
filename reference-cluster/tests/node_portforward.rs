//! `kubectl port-forward` (kubectl 1.32: WebSocket tunnelling SPDY first, plain SPDY as the
//! fallback) and kube-rs `Api::portforward` (WebSocket `v4.channel.k8s.io`) through the API
//! server's `pods/portforward` to the fleet's kubelet server: against a `process` node whose
//! busybox `httpd` answers, and against a sim node, where nothing listens and the refusal
//! arrives in upstream's words. The process test needs busybox on the host
//! (`apt-get install busybox-static`); without it it says so and fails.

#[path = "node_support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kubeproof_refcluster::node::process::ProcessConfig;
use kubeproof_refcluster::node::FleetConfig;
use serde_json::json;
use support::{eventually, start, start_with, Env};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// A running `kubectl port-forward` and the local port it listens on.
struct Forward {
    child: Child,
    local: u16,
}

/// Starts `kubectl port-forward pod/<pod> :<port>` and waits for its "Forwarding from" line.
async fn port_forward(
    kubeconfig: &std::path::Path,
    pod: &str,
    port: u16,
    spdy_only: bool,
) -> Forward {
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig)
        .args([
            "port-forward",
            "--address",
            "127.0.0.1",
            &format!("pod/{pod}"),
            &format!(":{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if spdy_only {
        // kubectl's own switch for the SPDY upgrade it falls back to.
        cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
    }
    let mut child = cmd.spawn().expect("kubectl runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("kubectl port-forward starts listening")
        .unwrap()
        .unwrap_or_default();
    // "Forwarding from 127.0.0.1:40123 -> 8080"
    let local = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line of kubectl port-forward: {line:?}"));
    // Keep draining stdout ("Handling connection for …") so kubectl never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Forward { child, local }
}

/// `GET /` through `port` on loopback: the whole answer.
async fn http_get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the forwarded port accepts connections");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_string(&mut answer))
        .await
        .expect("the answer ends")
        .unwrap();
    answer
}

async fn running(env: &Env, name: &str) {
    let pods = env.pods();
    let ready = eventually(Duration::from_secs(40), || async {
        let p = pods.get(name).await.ok()?;
        let ready = p
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await;
    if ready.is_none() {
        let status = pods.get(name).await.map(|p| p.status);
        panic!("pod {name} did not become Ready: {status:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_and_kube_rs_reach_a_process_pods_http_server() {
    assert!(
        kubeproof_refcluster::node::process::images::find_on_path(
            "busybox",
            kubeproof_refcluster::node::process::images::DEFAULT_PATH
        )
        .is_some(),
        "this test runs a busybox pod: install busybox (apt-get install busybox-static)"
    );
    let nodes = tempfile::tempdir().unwrap();
    let mut fleet = FleetConfig::for_tests(1);
    fleet.process = Some(ProcessConfig::new(nodes.path()));
    let env = start_with(fleet).await;
    support::publish_root_ca(&env.client).await;
    env.create_pod(
        "web",
        "node-0",
        json!({}),
        json!({
            "containers": [{
                "name": "httpd",
                "image": "busybox",
                "command": ["sh", "-c",
                    "echo hello from the pod > /www/index.html && exec httpd -f -p $(POD_IP):8080 -h /www"],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                "volumeMounts": [{"name": "www", "mountPath": "/www"}]
            }],
            "volumes": [{"name": "www", "emptyDir": {}}]
        }),
    )
    .await;
    running(&env, "web").await;
    let kc = env.cluster.kubeconfig_path().to_path_buf();

    // kubectl 1.32 first offers the WebSocket tunnel; then its SPDY fallback on its own.
    for spdy_only in [false, true] {
        let mut fwd = port_forward(&kc, "web", 8080, spdy_only).await;
        for _ in 0..2 {
            let answer = http_get(fwd.local, "/").await;
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
            assert!(answer.ends_with("hello from the pod\n"), "{answer}");
        }
        let missing = http_get(fwd.local, "/nope").await;
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        let _ = fwd.child.kill().await;
    }

    // kube-rs: WebSocket v4.channel.k8s.io, one connection per port.
    let pods: Api<Pod> = env.pods();
    let mut pf = pods.portforward("web", &[8080]).await.expect("portforward");
    let mut stream = pf.take_stream(8080).unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut answer))
        .await
        .expect("kube-rs reads the whole answer")
        .unwrap();
    assert!(answer.ends_with("hello from the pod\n"), "{answer}");
    drop(stream);
    let error = pf.take_error(8080).unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), error)
            .await
            .ok(),
        Some(None),
        "no error for a port that answered"
    );
    pf.abort();

    // A port nobody listens on: the runtime's refusal on the error stream.
    let mut pf = pods.portforward("web", &[9999]).await.expect("portforward");
    let error = tokio::time::timeout(Duration::from_secs(10), pf.take_error(9999).unwrap())
        .await
        .expect("the refusal arrives")
        .expect("an error message");
    assert!(
        error.starts_with("error forwarding port 9999 to pod ")
            && error.contains(", uid : failed to execute portforward in network namespace \"host\": failed to connect to 127.244.")
            && error.ends_with(":9999: connect: connection refused"),
        "{error}"
    );
    pf.abort();
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_pods_refuse_port_forwards_in_upstreams_words() {
    let env = start(1).await;
    env.create_pod("web", "node-0", json!({}), json!({})).await;
    running(&env, "web").await;
    let pods = env.pods();

    let mut pf = pods.portforward("web", &[8080]).await.expect("portforward");
    let error = tokio::time::timeout(Duration::from_secs(10), pf.take_error(8080).unwrap())
        .await
        .expect("the refusal arrives")
        .expect("an error message");
    assert!(
        error.starts_with("error forwarding port 8080 to pod ")
            && error.contains(", uid : failed to execute portforward in network namespace \"/var/run/netns/cni-")
            && error.ends_with("IPv4: dial tcp4 127.0.0.1:8080: connect: connection refused IPv6 dial tcp6 [::1]:8080: connect: connection refused "),
        "{error}"
    );
    pf.abort();

    // kubectl prints the error and gives up on the pod, as against a real node.
    let kc = env.cluster.kubeconfig_path().to_path_buf();
    let mut fwd = port_forward(&kc, "web", 8080, false).await;
    let answer = http_get(fwd.local, "/").await;
    assert_eq!(answer, "", "nothing answers");
    let status = tokio::time::timeout(Duration::from_secs(20), fwd.child.wait())
        .await
        .expect("kubectl port-forward exits after the error")
        .unwrap();
    assert!(!status.success());
    let mut stderr = String::new();
    fwd.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains(&format!(
            "an error occurred forwarding {} -> 8080: error forwarding port 8080 to pod ",
            fwd.local
        )) && stderr.contains("error: lost connection to pod"),
        "{stderr}"
    );

    // Upstream's checks before any upgrade.
    let (code, _, err) = support::kubectl(&kc, &["port-forward", "pod/nope", ":80"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("pods \"nope\" not found"), "{err}");
    env.finish().await;
}
