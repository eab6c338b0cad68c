//! `kubectl top` (kubectl 1.32) against the bundled cluster: the resource metrics API reports
//! what simulated containers use.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: busy
spec:
  replicas: 2
  selector:
    matchLabels: {app: busy}
  template:
    metadata:
      labels: {app: busy}
      annotations:
        sim.kubeproof.dev/cpu-usage: 250m
        sim.kubeproof.dev/memory-usage: 100Mi
    spec:
      containers:
      - name: app
        image: nginx
        resources: {requests: {cpu: 100m, memory: 64Mi}}
"#;

fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs kubectl until `accept` likes its output.
fn until(kubeconfig: &std::path::Path, args: &[&str], accept: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let (ok, out, err) = kubectl(kubeconfig, args, None);
        if ok && accept(&out) {
            return out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "kubectl {} never gave the expected output; last:\n{out}{err}",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn kubectl_top_shows_simulated_usage() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::ClusterProcess::start(dir.path());
    let kc = cluster.kubeconfig();
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", "-"], Some(DEPLOYMENT));
    assert!(ok, "{err}");

    let pods = until(&kc, &["top", "pods", "-l", "app=busy"], |out| {
        out.lines().filter(|l| l.starts_with("busy-")).count() == 2
    });
    let header: Vec<&str> = pods.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "CPU(cores)", "MEMORY(bytes)"], "{pods}");
    for line in pods.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cols[1..], ["250m", "100Mi"], "{pods}");
    }

    let containers = until(
        &kc,
        &["top", "pods", "-l", "app=busy", "--containers"],
        |out| out.contains(" app "),
    );
    assert!(
        containers.lines().next().unwrap().contains("POD"),
        "{containers}"
    );

    // Each node's usage is the sum of its pods': 500m over the two nodes.
    let nodes = until(&kc, &["top", "nodes"], |out| out.lines().count() == 3);
    let total: i64 = nodes
        .lines()
        .skip(1)
        .map(|l| {
            let cpu = l.split_whitespace().nth(1).unwrap();
            match cpu.strip_suffix('m') {
                Some(m) => m.parse::<i64>().unwrap(),
                None => cpu.parse::<i64>().unwrap() * 1000,
            }
        })
        .sum();
    assert_eq!(total, 500, "{nodes}");
    assert!(
        nodes.lines().next().unwrap().contains("CPU(cores)"),
        "{nodes}"
    );
}
