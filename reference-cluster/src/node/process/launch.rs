//! Starting one process the way a container runtime would: its own session and process group
//! (so the whole tree can be signalled), its own mount and UTS namespaces with the pod's
//! volumes bound at their `mountPath` (when the host allows), or joining a running
//! container's namespaces (exec, exec probes and hooks).

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::images::{find_on_path, is_executable, ImageSource, DEFAULT_PATH};
use super::volumes::Mount;

/// How a command name becomes an executable for one image.
#[derive(Clone, Debug)]
pub struct Resolver {
    pub source: ImageSource,
    /// The busybox applet directory and its applets.
    pub applets: Option<(PathBuf, std::collections::BTreeSet<String>)>,
}

impl Resolver {
    /// The `PATH` an image sets: the applets first for busybox images.
    pub fn image_path(&self) -> String {
        match &self.applets {
            Some((dir, _)) => format!("{}:{DEFAULT_PATH}", dir.display()),
            None => DEFAULT_PATH.to_string(),
        }
    }

    /// The executable for `name` under `path`, or containerd's message when there is none.
    pub fn resolve(&self, name: &str, path: &str) -> Result<PathBuf, String> {
        match &self.source {
            // The in-root path: it is exec'd once the directory is the process's root.
            ImageSource::RootFs { dir } => {
                return super::rootfs::find_executable(dir, name, path).map(PathBuf::from)
            }
            ImageSource::BusyboxRootFs { binary } => {
                return Err(format!(
                    "the busybox root file system of {} was not built",
                    binary.display()
                ))
            }
            ImageSource::Busybox { .. } | ImageSource::Host => {}
        }
        if name.contains('/') {
            // Inside a busybox image `/bin/sh` is the applet, not the host's shell.
            if let Some((dir, names)) = &self.applets {
                let base = name.rsplit('/').next().unwrap_or(name);
                let parent = Path::new(name)
                    .parent()
                    .and_then(|p| p.to_str())
                    .unwrap_or("");
                if names.contains(base)
                    && matches!(parent, "/bin" | "/usr/bin" | "/sbin" | "/usr/sbin")
                {
                    return Ok(dir.join(base));
                }
            }
            let p = PathBuf::from(name);
            return if is_executable(&p) {
                Ok(p)
            } else {
                Err(format!(
                    "exec: {name:?}: stat {name}: no such file or directory"
                ))
            };
        }
        find_on_path(name, path)
            .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
    }
}

/// containerd's wording for a container whose process could not start.
pub fn start_error_message(cause: &str) -> String {
    format!(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: {cause}: unknown"
    )
}

/// Where the new process's namespaces come from.
pub enum Namespaces {
    /// The host's: no isolation (namespaces unavailable).
    Host,
    /// Fresh mount and UTS namespaces with these mounts and this hostname; with `root`, that
    /// root file system (the mounts then go inside it).
    New {
        mounts: Vec<Mount>,
        hostname: String,
        root: Option<super::rootfs::RootPlan>,
    },
    /// Those of the running process `pid` (a container being exec'd into).
    Join(i32),
}

/// Everything needed to start one process.
pub struct Launch {
    pub program: PathBuf,
    pub argv0: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub namespaces: Namespaces,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// Make the (already dup'ed) stdin the controlling terminal: `exec -t`.
    pub controlling_tty: bool,
    /// The container's cgroup, joined before anything else so its limits hold from the
    /// first instruction.
    pub cgroup: Option<std::sync::Arc<super::cgroup::ContainerCgroup>>,
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

struct PreparedMount {
    source: CString,
    target: CString,
    read_only: bool,
}

/// Host paths made as mount targets, with how many containers use each: one container's end
/// must not remove a target another is about to mount (a restart of the same container, or
/// another pod mounting the same path).
static MADE: std::sync::LazyLock<parking_lot::Mutex<HashMap<PathBuf, usize>>> =
    std::sync::LazyLock::new(Default::default);

/// Creates missing mount targets on the host (directories, or empty files for file sources);
/// returns what it made or shares with other containers, for [`remove_targets`].
pub fn make_targets(mounts: &[Mount]) -> Vec<PathBuf> {
    let mut made = MADE.lock();
    let mut created = Vec::new();
    for m in mounts {
        let t = Path::new(&m.target);
        if t.exists() {
            created.extend(
                t.ancestors()
                    .filter(|p| made.contains_key(*p))
                    .map(Path::to_path_buf),
            );
            continue;
        }
        let mut missing = Vec::new();
        let mut cur = t.parent();
        while let Some(p) = cur {
            if p.exists() {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        let ok = if m.source.is_dir() {
            std::fs::create_dir_all(t).is_ok()
        } else {
            std::fs::create_dir_all(t.parent().unwrap_or(Path::new("/"))).is_ok()
                && std::fs::write(t, b"").is_ok()
        };
        if ok {
            created.push(t.to_path_buf());
            created.extend(missing);
        }
    }
    for p in &created {
        *made.entry(p.clone()).or_insert(0) += 1;
    }
    created
}

/// Removes what [`make_targets`] made, deepest first, once no container uses it and it is
/// still empty.
pub fn remove_targets(created: &[PathBuf]) {
    let mut made = MADE.lock();
    for p in created {
        if let Some(n) = made.get_mut(p) {
            *n -= 1;
            if *n > 0 {
                continue;
            }
            made.remove(p);
        }
        if p.is_dir() {
            let _ = std::fs::remove_dir(p);
        } else if std::fs::metadata(p).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Starts `l` as a tokio child in its own session.
pub fn spawn(l: Launch) -> std::io::Result<tokio::process::Child> {
    let mut cmd = std::process::Command::new(&l.program);
    cmd.arg0(&l.argv0)
        .args(&l.args)
        .env_clear()
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .stdin(l.stdin)
        .stdout(l.stdout)
        .stderr(l.stderr);
    // Everything the child does between fork and exec is prepared here: it may not allocate.
    let cwd = l
        .cwd
        .as_deref()
        .map(|c| cstring(Path::new(c)))
        .transpose()?;
    let tty = l.controlling_tty;
    if let Some(cg) = &l.cgroup {
        let procs = cg.open_procs()?;
        // SAFETY: the closure only writes to descriptors opened above.
        unsafe {
            cmd.pre_exec(move || super::cgroup::join(&procs));
        }
    }
    match l.namespaces {
        Namespaces::Host => unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid()?;
                finish_in_child(tty, cwd.as_deref())
            });
        },
        Namespaces::New {
            mounts,
            hostname,
            root: Some(plan),
        } => {
            let root = super::rootfs::PreparedRoot::new(&plan, &mounts, l.cwd.as_deref())?;
            let host = std::ffi::OsString::from(hostname);
            // SAFETY: the closure only makes syscalls on strings prepared above.
            unsafe {
                cmd.pre_exec(move || {
                    nix::unistd::setsid()?;
                    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)?;
                    private_mounts()?;
                    root.enter()?;
                    nix::unistd::sethostname(&host)?;
                    finish_in_child(tty, cwd.as_deref())
                });
            }
        }
        Namespaces::New {
            mounts,
            hostname,
            root: None,
        } => {
            let prepared = mounts
                .iter()
                .map(|m| {
                    Ok(PreparedMount {
                        source: cstring(&m.source)?,
                        target: cstring(Path::new(&m.target))?,
                        read_only: m.read_only,
                    })
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            let host = std::ffi::OsString::from(hostname);
            unsafe {
                cmd.pre_exec(move || {
                    nix::unistd::setsid()?;
                    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)?;
                    private_mounts()?;
                    for m in &prepared {
                        mount(
                            Some(m.source.as_c_str()),
                            m.target.as_c_str(),
                            None::<&std::ffi::CStr>,
                            MsFlags::MS_BIND | MsFlags::MS_REC,
                            None::<&std::ffi::CStr>,
                        )?;
                        if m.read_only {
                            mount(
                                None::<&std::ffi::CStr>,
                                m.target.as_c_str(),
                                None::<&std::ffi::CStr>,
                                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                                None::<&std::ffi::CStr>,
                            )?;
                        }
                    }
                    nix::unistd::sethostname(&host)?;
                    finish_in_child(tty, cwd.as_deref())
                });
            }
        }
        Namespaces::Join(pid) => {
            let mnt = File::open(format!("/proc/{pid}/ns/mnt"))?;
            let uts = File::open(format!("/proc/{pid}/ns/uts"))?;
            unsafe {
                cmd.pre_exec(move || {
                    nix::unistd::setsid()?;
                    setns(&mnt, CloneFlags::CLONE_NEWNS)?;
                    setns(&uts, CloneFlags::CLONE_NEWUTS)?;
                    finish_in_child(tty, cwd.as_deref())
                });
            }
        }
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(false);
    cmd.spawn()
}

/// In the child, after its namespaces and mounts: makes the pty the controlling terminal
/// (`tty`) and enters the working directory. Shared by every namespace set-up.
fn finish_in_child(tty: bool, cwd: Option<&std::ffi::CStr>) -> std::io::Result<()> {
    if tty {
        set_controlling_tty()?;
    }
    if let Some(c) = cwd {
        nix::unistd::chdir(c)?;
    }
    Ok(())
}

/// In a child's new mount namespace: mounts made from here on must not propagate back to the
/// host.
fn private_mounts() -> nix::Result<()> {
    mount(
        None::<&std::ffi::CStr>,
        c"/",
        None::<&std::ffi::CStr>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&std::ffi::CStr>,
    )
}

fn set_controlling_tty() -> std::io::Result<()> {
    // SAFETY: an ioctl on fd 0, which the child has just made the pty's slave side.
    let r = unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this host lets us create mount and UTS namespaces (root with CAP_SYS_ADMIN, not
/// blocked by seccomp): tried once with a child that exits at once.
pub fn namespaces_work() -> bool {
    let Some(true_bin) = find_on_path("true", DEFAULT_PATH) else {
        return false;
    };
    let mut cmd = std::process::Command::new(true_bin);
    unsafe {
        cmd.pre_exec(|| {
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)?;
            Ok(())
        });
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The exit code a shell would report: the code, or 128 + the signal.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_on_the_path_and_busybox_paths_map_to_applets() {
        let dir = tempfile::tempdir().unwrap();
        let applet = dir.path().join("sh");
        std::fs::write(&applet, "#!/bin/true\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&applet, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = Resolver {
            source: ImageSource::Busybox {
                binary: "/bin/busybox".into(),
            },
            applets: Some((dir.path().to_path_buf(), ["sh".to_string()].into())),
        };
        let path = r.image_path();
        assert!(path.starts_with(dir.path().to_str().unwrap()));
        assert_eq!(r.resolve("sh", &path).unwrap(), applet);
        assert_eq!(r.resolve("/bin/sh", &path).unwrap(), applet);
        assert_eq!(
            r.resolve("no-such-tool", &path).unwrap_err(),
            "exec: \"no-such-tool\": executable file not found in $PATH"
        );
        assert!(r
            .resolve("/nope/x", &path)
            .unwrap_err()
            .contains("no such file or directory"));
        assert!(start_error_message("x").starts_with("failed to create containerd task"));
    }
}
