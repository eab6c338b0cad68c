//! Memory and CPU limits of the `process` runtime through cgroups: a memory hog ends
//! `OOMKilled` with exit code 137, limits land in the container's cgroup files, exec joins the
//! container's cgroup, and the cgroup goes with the pod. Skipped, with the reason printed, on a
//! host without a usable cgroup memory controller (no root, no cgroup file system) or without
//! busybox.

#[path = "node_support/process.rs"]
mod process_support;
#[path = "node_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use kube::api::DeleteParams;
use kubeproof_refcluster::node::process::cgroup::{Cgroups, Layout};
use kubeproof_refcluster::resources::quantity::Quantity;
use process_support::{no_busybox, start_with};
use serde_json::{json, Value};
use support::eventually;

/// Why this host cannot run the test, if it cannot.
fn unusable() -> Option<String> {
    if let Some(reason) = no_busybox() {
        return Some(reason.into());
    }
    // Creating a runtime's cgroups is what the node agent does; this one is removed at once.
    match Cgroups::new("kubeproof", Duration::from_millis(100)) {
        Ok(c) => {
            c.remove_all();
            None
        }
        Err(e) => Some(e),
    }
}

/// The memory cgroup named in a `/proc/<pid>/cgroup` text, relative to the hierarchy root.
fn memory_cgroup(proc_cgroup: &str, layout: &Layout) -> Option<String> {
    proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let wanted = match layout {
            Layout::V2 { .. } => controllers.is_empty(),
            Layout::V1 { .. } => controllers.split(',').any(|c| c == "memory"),
        };
        wanted.then(|| path.trim().to_string())
    })
}

/// A pod on the process node with the one `container`, never restarted.
fn once(container: Value) -> Value {
    json!({"restartPolicy": "Never", "containers": [container]})
}

async fn scenario(layout: Layout) {
    // The caller checked for busybox.
    let env = start_with(|_| {}).await;
    let pods = env.pods();

    // A memory hog in 32Mi. `ulimit -v` is only a backstop so that a broken limit fails the
    // test instead of eating the machine: 256Mi of address space is far above the cgroup's
    // limit, which is set before the shell runs its first instruction.
    env.create(
        "hog",
        once(json!({"name": "c", "image": "busybox",
            "command": ["sh", "-c", "ulimit -v 262144; echo start; tail /dev/zero"],
            "resources": {"limits": {"memory": "32Mi"}}})),
    )
    .await;
    let cs = env
        .until_status("hog", "the OOM kill", |cs| {
            cs["state"]["terminated"].is_object()
        })
        .await;
    let ended = &cs["state"]["terminated"];
    assert_eq!(ended["reason"], "OOMKilled", "{cs}");
    assert_eq!(ended["exitCode"], 137, "{cs}");
    assert_eq!(cs["restartCount"], 0, "restartPolicy Never: {cs}");
    let phase = eventually(Duration::from_secs(20), || async {
        let p = pods.get("hog").await.ok()?;
        let phase = p.status?.phase?;
        (phase == "Failed").then_some(phase)
    })
    .await;
    assert_eq!(phase.as_deref(), Some("Failed"));

    // Limits in the cgroup files, read where the container says its cgroup is.
    let pod = env
        .create(
            "limited",
            once(json!({"name": "c", "image": "busybox",
                // A child, not the main process, holds 20 MB: tail keeps the last 20 MB of a
                // stream that never ends.
                "command": ["sh", "-c", "cat /proc/self/cgroup; \
                    (head -c 20000000 /dev/zero; exec sleep 3600) | tail -c 20000000 >/dev/null"],
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"},
                              "requests": {"cpu": "250m"}}})),
        )
        .await;
    let uid = pod.metadata.uid.clone().unwrap();
    env.running("limited").await;
    let printed = eventually(Duration::from_secs(20), || async {
        let text = env.logs("limited", false).await;
        text.contains(&format!("pod{uid}")).then_some(text)
    })
    .await
    .expect("the container prints a cgroup under its pod's");
    let path = memory_cgroup(&printed, &layout).expect("a memory cgroup line");
    let dir: PathBuf = layout.memory_dir(&path);
    let limit = std::fs::read_to_string(dir.join(layout.memory_limit_file())).unwrap();
    assert_eq!(limit.trim(), "67108864", "{}", dir.display());
    match &layout {
        Layout::V1 { cpu: Some(cpu), .. } => {
            let cpu_dir = cpu.join(path.trim_start_matches('/'));
            let read = |f: &str| std::fs::read_to_string(cpu_dir.join(f)).unwrap();
            assert_eq!(read("cpu.cfs_quota_us").trim(), "50000");
            assert_eq!(read("cpu.cfs_period_us").trim(), "100000");
            assert_eq!(read("cpu.shares").trim(), "256");
        }
        Layout::V2 { cpu: true, .. } => {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
            assert_eq!(read("cpu.max").trim(), "50000 100000");
            assert_eq!(read("cpu.weight").trim(), "10");
        }
        _ => {}
    }

    // `kubectl top` counts the whole cgroup: the child's 20 MB, not only the shell's RSS.
    let memory = eventually(Duration::from_secs(30), || async {
        let req =
            http::Request::get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/limited")
                .body(Vec::new())
                .unwrap();
        let m = env.client.request::<Value>(req).await.ok()?;
        let q = m["containers"][0]["usage"]["memory"].as_str()?;
        let bytes = Quantity::parse(q).ok()?.value();
        (bytes >= 20_000_000).then_some(bytes)
    })
    .await;
    eprintln!("{}: working set {memory:?} bytes", dir.display());
    assert!(
        memory.is_some_and(|b| b < 64 << 20),
        "the pod's metrics show the cgroup's working set: {memory:?}"
    );

    // `kubectl exec` runs inside the same cgroup.
    let (out, _, _) = env.exec("limited", &["cat", "/proc/self/cgroup"]).await;
    assert_eq!(memory_cgroup(&out, &layout).as_deref(), Some(path.as_str()));

    // The cgroup goes with the pod.
    pods.delete("limited", &DeleteParams::default())
        .await
        .unwrap();
    let gone = eventually(Duration::from_secs(30), || async {
        (!dir.exists()).then_some(())
    })
    .await;
    assert!(gone.is_some(), "{} is removed with its pod", dir.display());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hogs_are_oom_killed_and_limits_reach_the_cgroup() {
    if let Some(reason) = unusable() {
        eprintln!("skipped: no usable cgroups for container limits here: {reason}");
        return;
    }
    let layout = Layout::detect().unwrap();
    tokio::time::timeout(Duration::from_secs(240), scenario(layout))
        .await
        .expect("the scenario finishes within 240 s");
}

/// The hierarchy roots a runtime creates its cgroups in.
fn roots(layout: &Layout) -> Vec<PathBuf> {
    match layout {
        Layout::V2 { root, .. } => vec![root.clone()],
        Layout::V1 {
            memory,
            cpu,
            cpuacct,
        } => {
            let mut v = vec![memory.clone()];
            for d in [cpu, cpuacct].into_iter().flatten() {
                if !v.contains(d) {
                    v.push(d.clone());
                }
            }
            v
        }
    }
}

#[test]
fn cgroups_left_by_a_killed_agent_are_emptied_and_removed_by_the_next() {
    if let Some(reason) = unusable() {
        eprintln!("skipped: no usable cgroups for container limits here: {reason}");
        return;
    }
    let layout = Layout::detect().unwrap();
    // This process's pid with a start time it does not have: an agent that is gone, whose
    // pid was reused.
    let stale = format!("kubeproof/run-{}-1-0", std::process::id());
    let leaf = format!("{stale}/podu1/c1");
    let mut orphan = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    for root in roots(&layout) {
        std::fs::create_dir_all(root.join(&leaf)).unwrap();
        std::fs::write(
            root.join(&leaf).join("cgroup.procs"),
            orphan.id().to_string(),
        )
        .unwrap();
    }
    let next = Cgroups::new("kubeproof", Duration::from_millis(100)).expect("a new runtime starts");
    for root in roots(&layout) {
        assert!(
            !root.join(&stale).exists(),
            "{} is removed",
            root.join(&stale).display()
        );
    }
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        orphan.wait().unwrap().signal(),
        Some(9),
        "the orphan was killed"
    );
    next.remove_all();
}
