//! The layout the kubelet gives ConfigMap, Secret, downward API and projected volumes, so a
//! running container sees a new version of the whole set at once:
//!
//! ```text
//! <volume>/..2026_11_28_01_40_00.123456789   one version of the payload (real files)
//! <volume>/..data -> ..2026_11_28_01_40_00.123456789
//! <volume>/<key>  -> ..data/<key>             what the container opens
//! ```
//!
//! A new version is written into a fresh hidden directory and published by renaming a
//! temporary symlink over `..data`, a single atomic step; the previous version's directory is
//! removed afterwards. The volume directory itself never changes, so a bind mount of it (taken
//! when the container started) keeps showing the current version. Paths are relative symlinks,
//! so they resolve the same inside the container's mount namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Files a volume holds: relative path → (content, mode).
pub type Files = Vec<(String, Vec<u8>, u32)>;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// What [`write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The published version already held exactly these files and modes: nothing changed.
    Unchanged,
    /// A new version was published.
    Written,
}

/// One writer at a time in this process: a container start and the periodic resync may both
/// publish a pod's volume, and each must see the other's `..data` finished.
static WRITE_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Publishes `files` as the content of the volume at `dir` (created when missing), unless the
/// current version already holds the same paths, bytes and modes.
pub fn write(dir: &Path, files: &Files) -> Result<Outcome, String> {
    let payload = validate(files)?;
    let _guard = WRITE_LOCK.lock();
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the volume directory {}: {e}", dir.display()))?;
    let tops: BTreeSet<String> = payload
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p).to_string())
        .collect();
    if let Some(current) = published(dir) {
        if same_content(&dir.join(&current), &payload) && links_in_place(dir, &tops) {
            return Ok(Outcome::Unchanged);
        }
    }
    let version = new_version_dir(dir)?;
    let result = publish(dir, &version, &payload, &tops);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir.join(&version));
    }
    result.map(|()| Outcome::Written)
}

/// Relative, `..`-free paths that do not start with `..` (that name space is the writer's);
/// a later duplicate wins.
fn validate(files: &Files) -> Result<BTreeMap<String, (&[u8], u32)>, String> {
    let mut out = BTreeMap::new();
    for (rel, data, mode) in files {
        let bad = rel.is_empty()
            || rel.starts_with('/')
            || rel.starts_with("..")
            || rel.split('/').any(|p| p == ".." || p.is_empty());
        if bad {
            return Err(format!(
                "invalid path {rel:?}: must be relative, may not contain '..' and may not start with '..'"
            ));
        }
        out.insert(rel.clone(), (data.as_slice(), *mode & 0o7777));
    }
    Ok(out)
}

/// The name of the version `..data` points at, when there is one.
fn published(dir: &Path) -> Option<String> {
    let target = std::fs::read_link(dir.join(DATA)).ok()?;
    let name = target.to_str()?.to_string();
    (name.starts_with("..") && !name.contains('/')).then_some(name)
}

/// Whether the version directory holds exactly `payload` (every regular file, nothing more).
fn same_content(version: &Path, payload: &BTreeMap<String, (&[u8], u32)>) -> bool {
    let mut found = BTreeSet::new();
    if !collect_files(version, version, &mut found) {
        return false;
    }
    if found.len() != payload.len() || !payload.keys().all(|k| found.contains(k)) {
        return false;
    }
    payload.iter().all(|(rel, (data, mode))| {
        let p = version.join(rel);
        let same_mode = std::fs::metadata(&p)
            .map(|m| m.permissions().mode() & 0o7777 == *mode)
            .unwrap_or(false);
        same_mode && std::fs::read(&p).map(|d| d == *data).unwrap_or(false)
    })
}

/// Relative paths of the regular files under `dir`; false when it cannot be read.
fn collect_files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => {
                if !collect_files(root, &p, out) {
                    return false;
                }
            }
            Ok(_) => {
                if let Ok(rel) = p.strip_prefix(root) {
                    out.insert(rel.to_string_lossy().into_owned());
                }
            }
            Err(_) => return false,
        }
    }
    true
}

fn link_target(top: &str) -> PathBuf {
    Path::new(DATA).join(top)
}

/// Whether every top-level name is the symlink into `..data` and no other user-visible entry
/// is left.
fn links_in_place(dir: &Path, tops: &BTreeSet<String>) -> bool {
    let linked = tops
        .iter()
        .all(|t| std::fs::read_link(dir.join(t)).is_ok_and(|l| l == link_target(t)));
    linked && visible_entries(dir).iter().all(|n| tops.contains(n))
}

/// Names in the volume directory a container is meant to see (not the writer's `..` ones).
fn visible_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(".."))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates an empty, uniquely named version directory, `..<UTC time>.<nanoseconds>`.
fn new_version_dir(dir: &Path) -> Result<String, String> {
    for _ in 0..16 {
        let now = chrono::Utc::now();
        let name = format!(
            "..{}.{:09}{:03}",
            now.format("%Y_%m_%d_%H_%M_%S"),
            now.timestamp_subsec_nanos(),
            rand::random::<u16>() % 1000
        );
        match std::fs::create_dir(dir.join(&name)) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "cannot create a new version of the volume {}: {e}",
                    dir.display()
                ))
            }
        }
    }
    Err(format!(
        "cannot find a free version directory name in the volume {}",
        dir.display()
    ))
}

fn publish(
    dir: &Path,
    version: &str,
    payload: &BTreeMap<String, (&[u8], u32)>,
    tops: &BTreeSet<String>,
) -> Result<(), String> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        format!("cannot {what} {} in a volume: {e}", p.display())
    };
    let root = dir.join(version);
    for (rel, (data, mode)) in payload {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        }
        std::fs::write(&p, data).map_err(|e| io("write", &p, e))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
            .map_err(|e| io("set the mode of", &p, e))?;
    }
    // The switch: a symlink made aside and renamed over `..data` replaces it in one step.
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).map_err(|e| io("create", &tmp, e))?;
    std::fs::rename(&tmp, dir.join(DATA)).map_err(|e| io("publish", &tmp, e))?;
    for top in tops {
        let p = dir.join(top);
        if std::fs::read_link(&p).is_ok_and(|l| l == link_target(top)) {
            continue;
        }
        remove_entry(&p);
        std::os::unix::fs::symlink(link_target(top), &p).map_err(|e| io("create", &p, e))?;
    }
    for name in visible_entries(dir) {
        if !tops.contains(&name) {
            remove_entry(&dir.join(name));
        }
    }
    // Older versions (and whatever an interrupted write left) go; only `..data` and the
    // version it names stay.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("..") && name != DATA && name != version {
                remove_entry(&e.path());
            }
        }
    }
    Ok(())
}

fn remove_entry(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_layout_is_a_version_directory_behind_data_and_key_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let v = tmp.path().join("volumes/cfg");
        let files: Files = vec![
            ("a".into(), b"1".to_vec(), 0o600),
            ("d/b".into(), b"2".to_vec(), 0o644),
        ];
        assert_eq!(write(&v, &files).unwrap(), Outcome::Written);
        let version = std::fs::read_link(v.join(DATA)).unwrap();
        let version = version.to_str().unwrap().to_string();
        assert!(version.starts_with("..20"), "{version}");
        assert_eq!(hidden(&v), vec![version.clone()]);
        assert_eq!(
            std::fs::read_link(v.join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            std::fs::read_link(v.join("d")).unwrap(),
            Path::new("..data/d")
        );
        assert!(v.join(&version).join("a").is_file());
        assert_eq!(std::fs::read_to_string(v.join("d/b")).unwrap(), "2");
        let mode = std::fs::metadata(v.join("a")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!v.join(DATA_TMP).exists());
    }

    #[test]
    fn a_change_swaps_data_and_removes_the_stale_version_and_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let v = tmp.path().join("cfg");
        write(&v, &vec![("a".into(), b"1".to_vec(), 0o644)]).unwrap();
        let first = std::fs::read_link(v.join(DATA)).unwrap();
        // A reader that opened the old version keeps it; new opens see the new one.
        let held = v.join(&first);
        assert!(held.is_dir());
        let out = write(
            &v,
            &vec![
                ("a".into(), b"2".to_vec(), 0o644),
                ("c".into(), b"3".to_vec(), 0o644),
            ],
        )
        .unwrap();
        assert_eq!(out, Outcome::Written);
        let second = std::fs::read_link(v.join(DATA)).unwrap();
        assert_ne!(first, second);
        assert!(!held.exists(), "the previous version is removed");
        assert_eq!(hidden(&v), vec![second.to_string_lossy().into_owned()]);
        assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "2");
        assert_eq!(std::fs::read_to_string(v.join("c")).unwrap(), "3");
        write(&v, &vec![("c".into(), b"3".to_vec(), 0o644)]).unwrap();
        assert!(
            std::fs::symlink_metadata(v.join("a")).is_err(),
            "a removed key goes"
        );
        // A mode change alone is a change too.
        let out = write(&v, &vec![("c".into(), b"3".to_vec(), 0o400)]).unwrap();
        assert_eq!(out, Outcome::Written);
        // An optional source that vanished leaves an empty volume.
        write(&v, &Vec::new()).unwrap();
        assert!(std::fs::symlink_metadata(v.join("c")).is_err());
        assert!(v.join(DATA).is_dir());
    }

    #[test]
    fn unchanged_content_is_not_swapped() {
        let tmp = tempfile::tempdir().unwrap();
        let v = tmp.path().join("cfg");
        let files: Files = vec![
            ("x/y".into(), b"same".to_vec(), 0o644),
            ("z".into(), b"".to_vec(), 0o644),
        ];
        write(&v, &files).unwrap();
        let before = std::fs::read_link(v.join(DATA)).unwrap();
        assert_eq!(write(&v, &files).unwrap(), Outcome::Unchanged);
        assert_eq!(std::fs::read_link(v.join(DATA)).unwrap(), before);
        // A broken user-visible link is repaired even when the data is the same.
        std::fs::remove_file(v.join("z")).unwrap();
        assert_eq!(write(&v, &files).unwrap(), Outcome::Written);
        assert_eq!(std::fs::read_to_string(v.join("z")).unwrap(), "");
    }

    #[test]
    fn an_old_flat_volume_and_leftovers_are_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let v = tmp.path().join("cfg");
        std::fs::create_dir_all(v.join("..2020_01_01_00_00_00.1")).unwrap();
        std::fs::create_dir_all(v.join("old-dir")).unwrap();
        std::fs::write(v.join("a"), b"flat").unwrap();
        std::os::unix::fs::symlink("nowhere", v.join(DATA_TMP)).unwrap();
        write(&v, &vec![("a".into(), b"new".to_vec(), 0o644)]).unwrap();
        assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "new");
        assert!(!v.join("old-dir").exists());
        assert_eq!(hidden(&v).len(), 1);
        assert!(std::fs::symlink_metadata(v.join(DATA_TMP)).is_err());
    }

    #[test]
    fn bad_paths_are_refused_without_touching_the_volume() {
        let tmp = tempfile::tempdir().unwrap();
        let v = tmp.path().join("cfg");
        write(&v, &vec![("a".into(), b"1".to_vec(), 0o644)]).unwrap();
        for bad in ["../x", "/etc/x", "..data", "a//b", "d/../e", ""] {
            let err = write(&v, &vec![(bad.into(), vec![], 0o644)]).unwrap_err();
            assert!(err.contains("invalid path"), "{bad}: {err}");
        }
        assert_eq!(std::fs::read_to_string(v.join("a")).unwrap(), "1");
    }
}
