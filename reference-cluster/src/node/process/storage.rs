//! What a pod of the process runtime holds on disk, for local ephemeral storage eviction
//! (`node::local_storage`): its `emptyDir` and `configMap` volume directories, its containers'
//! log files and its `etc-hosts`, measured like the kubelet's `du`-based volume metrics
//! (allocated blocks, so a sparse file counts what it really takes).
//!
//! The walk runs on the agent loop every eviction monitoring period, so it is bounded: it never
//! follows symlinks, never leaves the file system the directory is on (a bind or other mount
//! inside is skipped), and stops after [`MAX_ENTRIES`] entries per pod, reporting what it
//! counted so far (a lower bound; the next period looks again).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use crate::node::local_storage::{ContainerStorage, PodStorage};

/// Entries looked at per pod and pass at most.
pub const MAX_ENTRIES: usize = 100_000;

/// Bytes allocated under `dir` (itself included), without following symlinks or crossing
/// into another file system; `budget` is decremented per entry and the walk stops at zero.
pub fn disk_usage(dir: &Path, budget: &mut usize) -> i64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = allocated(&top);
    if !top.is_dir() {
        return total;
    }
    // Depth-first with an explicit stack: deep trees cannot overflow ours.
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if *budget == 0 {
                return total;
            }
            *budget -= 1;
            // `DirEntry::metadata` does not follow symlinks.
            let Ok(m) = e.metadata() else {
                continue;
            };
            if m.dev() != dev {
                continue;
            }
            total = total.saturating_add(allocated(&m));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

fn allocated(m: &std::fs::Metadata) -> i64 {
    (m.blocks().saturating_mul(512)).min(i64::MAX as u64) as i64
}

/// The pod's use under its directory `pod_dir` (volumes in `volumes/<name>`, logs in
/// `<container>/<attempt>.log*`, `etc-hosts`). Volumes other than `emptyDir` and `configMap`
/// are not walked: the eviction checks never count them. Writable layers are not measured
/// (see PROCESS.md).
pub fn measure(pod_dir: &Path, pod: &Pod, containers: &[&str]) -> PodStorage {
    let mut budget = MAX_ENTRIES;
    let mut out = PodStorage::default();
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref());
    for v in volumes.unwrap_or_default() {
        if v.empty_dir.is_none() && v.config_map.is_none() {
            continue;
        }
        let used = disk_usage(&pod_dir.join("volumes").join(&v.name), &mut budget);
        out.volumes.insert(v.name.clone(), used);
    }
    for name in containers {
        out.containers.push(ContainerStorage {
            name: name.to_string(),
            logs: logs_of(&pod_dir.join(name), &mut budget),
            rootfs: 0,
        });
    }
    out.etc_hosts = std::fs::symlink_metadata(pod_dir.join("etc-hosts"))
        .map(|m| allocated(&m))
        .unwrap_or(0);
    out
}

/// The container's log files (`<attempt>.log`, rotated `<attempt>.log.<n>`) in `dir`; other
/// entries there are not its logs.
fn logs_of(dir: &Path, budget: &mut usize) -> i64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0i64;
    for e in entries.flatten() {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let name = e.file_name();
        let is_log = name.to_str().is_some_and(|n| {
            n.split_once(".log").is_some_and(|(attempt, rest)| {
                attempt.bytes().all(|b| b.is_ascii_digit())
                    && (rest.is_empty() || rest.starts_with('.'))
            })
        });
        match e.metadata() {
            Ok(m) if is_log && m.is_file() => total = total.saturating_add(allocated(&m)),
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(path: &Path, bytes: usize) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![7u8; bytes]).unwrap();
    }

    #[test]
    fn volumes_logs_and_hosts_are_measured_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let pod_dir = dir.path().join("pod");
        let outside = dir.path().join("outside");
        write(&outside.join("big"), 8 << 20);
        write(&pod_dir.join("volumes/data/f"), 2 << 20);
        write(&pod_dir.join("volumes/data/sub/g"), 1 << 20);
        std::os::unix::fs::symlink(&outside, pod_dir.join("volumes/data/link")).unwrap();
        write(&pod_dir.join("volumes/secret/s"), 4 << 20);
        write(&pod_dir.join("app/0.log"), 300 << 10);
        write(&pod_dir.join("app/0.log.1"), 100 << 10);
        write(&pod_dir.join("app/notes"), 1 << 20);
        write(&pod_dir.join("etc-hosts"), 100);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "app"}],
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "secret", "secret": {"secretName": "s"}},
                ],
            },
        }))
        .unwrap();
        let s = measure(&pod_dir, &pod, &["app", "gone"]);
        let data = s.volumes["data"];
        // Blocks, not lengths: the files' 3Mi plus directories, never the 8Mi behind the link.
        assert!((3 << 20..4 << 20).contains(&data), "{data}");
        assert!(!s.volumes.contains_key("secret"));
        let logs = s.containers[0].logs;
        assert!((400 << 10..500 << 10).contains(&logs), "{logs}");
        assert_eq!(s.containers[1].logs, 0);
        assert!(s.etc_hosts > 0);
    }

    #[test]
    fn the_walk_stops_at_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            write(&dir.path().join(format!("f{i}")), 4096);
        }
        let mut budget = 3;
        let partial = disk_usage(dir.path(), &mut budget);
        assert_eq!(budget, 0);
        let mut all = 100;
        assert!(partial < disk_usage(dir.path(), &mut all));
        assert_eq!(disk_usage(&dir.path().join("missing"), &mut all), 0);
    }
}
