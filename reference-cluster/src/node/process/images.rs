//! The image table: which "image" a process container runs. There is no registry and no image
//! store; an image name maps to a way of finding executables on the host, or to a directory
//! that becomes the container's root file system (see `PROCESS.md`). Users add rows with an
//! image-table file (`table_file.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::node::sim::stages::normalize_image;

/// Where an image's executables come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A busybox binary: every applet it lists is linked into a per-table `bin` directory, which
    /// leads the container's `PATH`; `/bin/sh`-style absolute paths of applets map to it too.
    Busybox { binary: PathBuf },
    /// The host itself: the host's `PATH`, absolute paths as they are.
    Host,
    /// A directory that becomes the container's root file system (with mount namespaces
    /// only); executables are looked up inside it.
    RootFs { dir: PathBuf },
    /// A root file system the runtime lays out from a busybox binary when it starts
    /// (`<root>/images/busybox-rootfs`, see `rootfs::build_busybox`), then run as `RootFs`.
    BusyboxRootFs { binary: PathBuf },
}

impl ImageSource {
    /// Whether containers of this image need their own root (and so mount namespaces).
    pub fn needs_root(&self) -> bool {
        matches!(
            self,
            ImageSource::RootFs { .. } | ImageSource::BusyboxRootFs { .. }
        )
    }
}

/// One row of the table: the repository (`docker.io/library/busybox`, tags and digests
/// ignored), its source and its image config (`ENTRYPOINT`, `CMD`, `ENV`, `WORKDIR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRule {
    pub repository: String,
    pub source: ImageSource,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
}

/// The rows, first match wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageTable {
    pub rules: Vec<ImageRule>,
}

/// A host `PATH` like the one images set.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl ImageTable {
    /// The default table: `busybox` and `registry.k8s.io/pause` run on the host's busybox
    /// (when it has one at `busybox`), `kubeproof/host` runs host executables.
    pub fn with_busybox(busybox: Option<PathBuf>) -> ImageTable {
        let mut rules = Vec::new();
        if let Some(binary) = busybox {
            rules.push(ImageRule {
                repository: "docker.io/library/busybox".into(),
                source: ImageSource::Busybox {
                    binary: binary.clone(),
                },
                entrypoint: Vec::new(),
                cmd: vec!["sh".into()],
                env: Vec::new(),
                working_dir: None,
            });
            // The pause image only sleeps until it is stopped.
            rules.push(ImageRule {
                repository: "registry.k8s.io/pause".into(),
                source: ImageSource::Busybox { binary },
                entrypoint: vec!["sleep".into()],
                cmd: vec!["2147483647".into()],
                env: Vec::new(),
                working_dir: None,
            });
        }
        rules.push(ImageRule {
            repository: "docker.io/kubeproof/host".into(),
            source: ImageSource::Host,
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: Vec::new(),
            working_dir: None,
        });
        ImageTable { rules }
    }

    /// The default table with the host's busybox found on `PATH`.
    pub fn detect() -> ImageTable {
        ImageTable::with_busybox(find_on_path("busybox", DEFAULT_PATH))
    }

    /// The rows of the image-table file `path` in front of this table's, so they override
    /// built-in rows of the same image.
    pub fn with_file(mut self, path: &Path) -> Result<ImageTable, String> {
        let rows = super::table_file::load(path)?;
        self.rules.splice(0..0, rows);
        Ok(self)
    }

    /// The rule for `image`, if the table maps it.
    pub fn resolve(&self, image: &str) -> Option<&ImageRule> {
        let repo = repository(image);
        self.rules.iter().find(|r| r.repository == repo)
    }
}

/// `docker.io/library/busybox` for `busybox:1.36`, `busybox@sha256:…` or `docker.io/busybox`.
pub fn repository(image: &str) -> String {
    let full = normalize_image(image);
    if let Some(i) = full.find('@') {
        return full[..i].to_string();
    }
    let last_slash = full.rfind('/').unwrap_or(0);
    match full[last_slash..].rfind(':') {
        Some(i) => full[..last_slash + i].to_string(),
        None => full,
    }
}

/// The first executable `name` in the `:`-separated `path`.
pub fn find_on_path(name: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Links every applet of `binary` into `dir` (idempotent); returns the applet names.
pub fn install_applets(binary: &Path, dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let out = std::process::Command::new(binary).arg("--list").output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{} --list failed",
            binary.display()
        )));
    }
    std::fs::create_dir_all(dir)?;
    let mut names = BTreeSet::new();
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let name = name.trim();
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(binary, &link)?;
        }
        names.insert(name.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_ignore_tags_digests_and_default_registries() {
        assert_eq!(repository("busybox"), "docker.io/library/busybox");
        assert_eq!(repository("busybox:1.36"), "docker.io/library/busybox");
        assert_eq!(
            repository("docker.io/library/busybox@sha256:abc"),
            "docker.io/library/busybox"
        );
        assert_eq!(
            repository("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause"
        );
        assert_eq!(repository("localhost:5000/app:v1"), "localhost:5000/app");
        let t = ImageTable::with_busybox(Some("/bin/busybox".into()));
        assert!(t.resolve("busybox:latest").is_some());
        assert_eq!(
            t.resolve("registry.k8s.io/pause:3.10").unwrap().entrypoint,
            ["sleep"]
        );
        assert_eq!(
            t.resolve("kubeproof/host").unwrap().source,
            ImageSource::Host
        );
        assert!(t.resolve("nginx").is_none());
        assert!(ImageTable::with_busybox(None).resolve("busybox").is_none());
    }
}
