//! Images with their own root file system on the `process` runtime, end to end: a row of an
//! image-table file maps an image to a directory (a busybox root laid out for the test); its
//! pods see that directory as `/` (not the host's files), write into a layer of their own
//! (the image directory never changes), get their volumes and the kubelet's `/etc` files
//! inside, and `pods/exec` and exec probes run in the same root. Without mount namespaces such
//! an image is refused as a failed create. Without busybox or root the tests print why and
//! return.

#[path = "node_support/process.rs"]
mod process_support;
#[path = "node_support/mod.rs"]
mod support;

use std::path::Path;

use kubeproof_refcluster::node::process::images::{find_on_path, ImageTable, DEFAULT_PATH};
use kubeproof_refcluster::node::process::{launch, rootfs};
use process_support::{no_busybox, start_with, Env};
use serde_json::{json, Value};
use support::create_config_map;

const IMAGE: &str = "example.com/rooted:1.0";

/// A busybox root in `dir/image` with a marker file and its own `/etc/os-release`, and an
/// image-table file `dir/images.yaml` mapping [`IMAGE`] to it.
fn image_and_table(dir: &Path) -> std::path::PathBuf {
    let busybox = find_on_path("busybox", DEFAULT_PATH).expect("busybox");
    let image = dir.join("image");
    rootfs::build_busybox(&busybox, &image).unwrap();
    std::fs::write(image.join("image-marker"), "from the image\n").unwrap();
    std::fs::write(
        image.join("etc/os-release"),
        "NAME=\"kubeproof test image\"\n",
    )
    .unwrap();
    let table = dir.join("images.yaml");
    std::fs::write(
        &table,
        "images:\n- image: example.com/rooted\n  rootfs: image\n  cmd: [sh]\n  env: {FROM_IMAGE: \"yes\"}\n",
    )
    .unwrap();
    table
}

/// Why this host cannot give containers their own root, if it cannot.
fn no_root_support() -> Option<&'static str> {
    no_busybox().or_else(|| {
        (!launch::namespaces_work()).then_some(
            "root file systems need mount namespaces: run the tests as root with CAP_SYS_ADMIN",
        )
    })
}

/// A process cluster whose image table has [`IMAGE`]; `overlay` off makes each attempt's
/// writable layer a copy.
async fn start(overlay: bool, namespaces: bool) -> (Env, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let table = image_and_table(files.path());
    let env = start_with(|fleet| {
        let p = fleet.process.as_mut().unwrap();
        p.images = ImageTable::detect().with_file(&table).unwrap();
        p.rootfs_overlay = overlay;
        p.namespaces = namespaces;
    })
    .await;
    (env, files)
}

async fn sh(env: &Env, pod: &str, script: &str) -> (String, String) {
    let (out, err, _) = env.exec(pod, &["sh", "-c", script]).await;
    (out, err)
}

fn rooted_pod() -> Value {
    json!({
        "containers": [{
            "name": "c",
            "image": IMAGE,
            "command": ["sh", "-c",
                "echo written > /written && mkdir -p /work/sub && cd /work/sub && pwd && sleep 3600"],
            "workingDir": "/work",
            "readinessProbe": {"exec": {"command": ["cat", "/image-marker"]}, "periodSeconds": 1},
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/config"},
                {"name": "scratch", "mountPath": "/deep/scratch"},
            ],
        }],
        "volumes": [
            {"name": "cfg", "configMap": {"name": "rooted-cfg"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    })
}

async fn a_container_sees_its_image_as_root(overlay: bool) {
    if let Some(reason) = no_root_support() {
        eprintln!("skipped: {reason}");
        return;
    }
    let (env, files) = start(overlay, true).await;
    let image = files.path().join("image");
    let before = list(&image);
    create_config_map(
        &env.client,
        "rooted-cfg",
        json!({"key": "from the config map"}),
    )
    .await;
    env.create("rooted", rooted_pod()).await;
    env.until_status(
        "rooted",
        "ready (the exec probe found /image-marker)",
        |cs| cs["ready"] == json!(true),
    )
    .await;

    // The image's files, not the host's.
    let (os, _) = sh(&env, "rooted", "cat /etc/os-release").await;
    assert_eq!(os, "NAME=\"kubeproof test image\"\n");
    let (root, _) = sh(&env, "rooted", "ls /").await;
    let root: Vec<&str> = root.lines().collect();
    for want in [
        "bin",
        "config",
        "deep",
        "dev",
        "etc",
        "image-marker",
        "proc",
        "tmp",
        "written",
    ] {
        assert!(root.contains(&want), "/ lists {want}: {root:?}");
    }
    let host_only = std::fs::read_dir("/")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            !image.join(n).exists()
                && !["proc", "dev", "work", "config", "deep"].contains(&n.as_str())
        });
    if let Some(name) = host_only {
        assert!(
            !root.contains(&name.as_str()),
            "the host's /{name} is not visible: {root:?}"
        );
    }
    // exec runs inside the same root, in the working directory, with the image's env.
    assert_eq!(sh(&env, "rooted", "cat /written").await.0, "written\n");
    assert_eq!(
        sh(&env, "rooted", "pwd; echo $FROM_IMAGE").await.0,
        "/work\nyes\n"
    );
    assert_eq!(env.logs("rooted", false).await, "/work/sub\n");
    // Volumes at their mountPath inside the root.
    assert_eq!(
        sh(&env, "rooted", "cat /config/key").await.0,
        "from the config map"
    );
    let (out, err) = sh(
        &env,
        "rooted",
        "echo scratch > /deep/scratch/f && cat /deep/scratch/f",
    )
    .await;
    assert_eq!(out, "scratch\n", "{err}");
    // The kubelet's /etc files; devices.
    let (hosts, _) = sh(&env, "rooted", "cat /etc/hosts").await;
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n"),
        "{hosts}"
    );
    assert!(hosts.contains("\trooted\n"), "{hosts}");
    assert_eq!(
        sh(&env, "rooted", "cat /etc/hostname; hostname").await.0,
        "rooted\nrooted\n"
    );
    let (dev, err) = sh(
        &env,
        "rooted",
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && ls /proc/self/fd >/dev/null && echo ok",
    )
    .await;
    assert_eq!(dev, "4\n4\nok\n", "{err}");
    // An unknown command is looked up in the root, not on the host.
    let (_, _, status) = env.exec("rooted", &["bash", "-c", "true"]).await;
    let message = status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.contains("executable file not found in $PATH"),
        "{message}"
    );

    // The write went to this attempt's layer in the pod directory.
    let pods = env.dir.path().join("nodes/pods");
    let pod_dir = std::fs::read_dir(&pods)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let layer = pod_dir.join("c/rootfs-0");
    let overlaid = overlay && rootfs::overlay_works(&env.dir.path().join("check"));
    let written = layer.join(if overlaid {
        "upper/written"
    } else {
        "root/written"
    });
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "written\n");
    // Nothing the container wrote reached the image directory.
    assert_eq!(list(&image), before, "the image directory is unchanged");
    assert!(!image.join("written").exists());
    env.finish().await;
}

/// Every path under `dir`, sorted.
fn list(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_sees_its_image_as_root_with_an_overlay_layer() {
    a_container_sees_its_image_as_root(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_sees_its_image_as_root_with_a_copied_layer() {
    a_container_sees_its_image_as_root(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mount_namespaces_a_rooted_image_fails_to_create() {
    if let Some(reason) = no_busybox() {
        eprintln!("skipped: {reason}");
        return;
    }
    // Namespaces off stands for a host without them (not root, or seccomp).
    let (env, _files) = start(true, false).await;
    env.create(
        "refused",
        json!({"restartPolicy": "Never",
               "containers": [{"name": "c", "image": IMAGE, "command": ["sh", "-c", "cat /etc/os-release"]}]}),
    )
    .await;
    let cs = env
        .until_status("refused", "a CreateContainerError", |cs| {
            ["state", "lastState"].iter().any(|s| {
                ["waiting", "terminated"]
                    .iter()
                    .any(|k| cs[s][k]["reason"] == "CreateContainerError")
            })
        })
        .await;
    let text = cs.to_string();
    assert!(text.contains("needs mount namespaces"), "{text}");
    assert!(
        env.logs("refused", false).await.is_empty(),
        "nothing ran on the host's files"
    );
    env.finish().await;
}
