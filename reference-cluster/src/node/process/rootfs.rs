//! Images whose root file system is a directory (`ImageSource::RootFs`): finding executables
//! inside it, giving each container attempt its own writable layer (overlayfs, else a copy),
//! the kubelet's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, and the steps the
//! child takes between fork and exec to make the directory its root (see `PROCESS.md`).

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::volumes::Mount;

/// Where the host's root is while the container's is being set up (removed before exec).
const OLD_ROOT: &str = "/.kubeproof-old-root";

/// Symlinks followed per lookup at most, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// `path` (absolute, inside the image) resolved inside `root`: `..` never climbs above it and
/// symlinks, absolute ones included, are followed as the container would see them. The
/// in-root path of what it names, if that exists.
pub fn lookup(root: &Path, path: &str) -> Option<String> {
    let mut todo: VecDeque<String> = components(path);
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        let host = root.join(cur.join("/"));
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            let target = target.to_string_lossy();
            cur.pop();
            if target.starts_with('/') {
                cur.clear();
            }
            for (i, t) in components(&target).into_iter().enumerate() {
                todo.insert(i, t);
            }
        }
    }
    Some(format!("/{}", cur.join("/")))
}

fn components(p: &str) -> VecDeque<String> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// The executable `name` of an image rooted at `root`, searching `path` for a bare name; the
/// in-root path to exec, or containerd's message when there is none.
pub fn find_executable(root: &Path, name: &str, path: &str) -> Result<String, String> {
    // The path as named is what gets exec'd: the kernel follows its links inside the root,
    // and a multi-call binary such as busybox still sees the name it was called by.
    let executable = |p: &str| {
        let found = lookup(root, p)?;
        let meta = std::fs::metadata(root.join(found.trim_start_matches('/'))).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then(|| p.to_string())
    };
    if name.contains('/') {
        return executable(name)
            .ok_or_else(|| format!("exec: {name:?}: stat {name}: no such file or directory"));
    }
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .find_map(|d| executable(&format!("{d}/{name}")))
        .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
}

/// Lays out a minimal busybox image in `dir`: a copy of `binary` as `bin/busybox` with every
/// applet linked to it in `bin/`, `etc/passwd` and `etc/group` (root and nobody, as the
/// busybox image has), and empty `tmp` (1777), `root`, `home`, `proc`, `dev`, `sys`, `var`.
/// Idempotent; the copy keeps the image working when the host's busybox is replaced.
pub fn build_busybox(binary: &Path, dir: &Path) -> std::io::Result<()> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let copy = bin.join("busybox");
    if !copy.exists() {
        let tmp = bin.join(".busybox.tmp");
        std::fs::copy(binary, &tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &copy)?;
    }
    // The applets are listed by the original, not by the copy just written: a process forked
    // meanwhile by another thread may still hold the copy's write descriptor until its exec,
    // and running the copy would then fail with ETXTBSY ("Text file busy").
    let out = std::process::Command::new(binary).arg("--list").output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{} --list failed; is it a busybox binary?",
            binary.display()
        )));
    }
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let name = name.trim();
        if name.is_empty() || name.contains('/') || name == "busybox" {
            continue;
        }
        let link = bin.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("busybox", &link)?;
        }
    }
    for d in ["etc", "root", "home", "proc", "dev", "sys", "var", "usr"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
    ];
    for (name, content) in files {
        let p = dir.join(name);
        if !p.exists() {
            std::fs::write(p, content)?;
        }
    }
    Ok(())
}

/// Copies the tree `src` to `dst` (created), keeping modes and symlinks as they are.
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    std::fs::create_dir_all(dst)?;
    std::fs::set_permissions(dst, meta.permissions())?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let t = e.file_type()?;
        if t.is_dir() {
            copy_tree(&from, &to)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if t.is_file() {
            std::fs::copy(&from, &to)?;
        }
        // Sockets, fifos and device nodes are not part of an image's files.
    }
    Ok(())
}

/// Whether overlayfs accepts an upper directory under `scratch` (not on every file system,
/// e.g. not on another overlay): tried once in a throwaway mount namespace.
pub fn overlay_works(scratch: &Path) -> bool {
    let base = scratch.join(".overlay-check");
    let _ = std::fs::remove_dir_all(&base);
    let dirs = ["lower", "upper", "work", "merged"].map(|d| base.join(d));
    if dirs.iter().any(|d| std::fs::create_dir_all(d).is_err()) {
        return false;
    }
    let Some(true_bin) = super::images::find_on_path("true", super::images::DEFAULT_PATH) else {
        return false;
    };
    let Ok(opts) = overlay_options(&dirs[0], &dirs[1], &dirs[2]) else {
        return false;
    };
    let Ok(target) = cstring(&dirs[3]) else {
        return false;
    };
    let mut cmd = std::process::Command::new(true_bin);
    // SAFETY: only syscalls on strings prepared above.
    unsafe {
        cmd.pre_exec(move || {
            unshare(CloneFlags::CLONE_NEWNS)?;
            private_root()?;
            mount(
                Some(c"overlay"),
                target.as_c_str(),
                Some(c"overlay"),
                MsFlags::empty(),
                Some(opts.as_c_str()),
            )?;
            Ok(())
        });
    }
    let ok = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_dir_all(&base);
    ok
}

fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> std::io::Result<CString> {
    let mut o = b"lowerdir=".to_vec();
    o.extend_from_slice(lower.as_os_str().as_bytes());
    o.extend_from_slice(b",upperdir=");
    o.extend_from_slice(upper.as_os_str().as_bytes());
    o.extend_from_slice(b",workdir=");
    o.extend_from_slice(work.as_os_str().as_bytes());
    CString::new(o).map_err(std::io::Error::other)
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

fn private_root() -> nix::Result<()> {
    mount(
        None::<&CStr>,
        c"/",
        None::<&CStr>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&CStr>,
    )
}

/// A container attempt's writable layer over the image directory.
#[derive(Clone, Debug)]
pub enum Layer {
    /// overlayfs: the image is the lower directory, writes go to `upper`.
    Overlay {
        upper: PathBuf,
        work: PathBuf,
        merged: PathBuf,
    },
    /// A copy of the image made for this attempt.
    Copy(PathBuf),
}

impl Layer {
    /// The layer of one attempt under `dir` (created; a copy is made now).
    pub fn create(image: &Path, dir: &Path, overlay: bool) -> std::io::Result<Layer> {
        let _ = std::fs::remove_dir_all(dir);
        if overlay {
            let l = Layer::Overlay {
                upper: dir.join("upper"),
                work: dir.join("work"),
                merged: dir.join("merged"),
            };
            if let Layer::Overlay {
                upper,
                work,
                merged,
            } = &l
            {
                for d in [upper, work, merged] {
                    std::fs::create_dir_all(d)?;
                }
            }
            return Ok(l);
        }
        let root = dir.join("root");
        copy_tree(image, &root)?;
        Ok(Layer::Copy(root))
    }
}

/// What a root is made of, prepared by the runtime before the fork.
#[derive(Clone, Debug)]
pub struct RootPlan {
    /// The image directory (never written).
    pub image: PathBuf,
    pub layer: Layer,
    /// Host files bound over in-root paths: `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub files: Vec<(PathBuf, String)>,
    /// `securityContext.readOnlyRootFilesystem`.
    pub read_only: bool,
}

/// One step of building the root in the child, everything already a C string.
enum Op {
    /// mkdir, an existing one is fine.
    Mkdir(CString),
    /// An empty file to mount over, an existing one is fine.
    Touch(CString),
    /// A bind mount, recursive, remounted read-only when asked; `optional` ones may fail.
    Bind {
        source: CString,
        target: CString,
        read_only: bool,
        optional: bool,
    },
    /// A new file system (`proc`, `tmpfs`).
    Fs {
        fstype: &'static CStr,
        target: CString,
        flags: MsFlags,
        data: Option<&'static CStr>,
        /// Bound from the host when the new one is refused.
        fallback: Option<CString>,
    },
    Symlink {
        to: &'static CStr,
        link: &'static CStr,
    },
}

/// [`RootPlan`] plus the container's mounts and working directory, as the child runs them.
pub struct PreparedRoot {
    /// The overlay mount (target, options), when the layer is one.
    overlay: Option<(CString, CString)>,
    new_root: CString,
    old_in_new: CString,
    ops: Vec<Op>,
    read_only: bool,
}

/// Host devices a container gets, bound into a fresh `/dev` tmpfs.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn in_old(host: &Path) -> std::io::Result<CString> {
    // Relative paths (a relative data directory) mean nothing once the root has moved.
    let host = std::path::absolute(host)?;
    let mut b = OLD_ROOT.as_bytes().to_vec();
    b.extend_from_slice(host.as_os_str().as_bytes());
    CString::new(b).map_err(std::io::Error::other)
}

fn c(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(std::io::Error::other)
}

/// `mkdir -p` of `dir`'s ancestors and itself, in-root.
fn mkdirs(ops: &mut Vec<Op>, dir: &str) -> std::io::Result<()> {
    let mut cur = String::new();
    for comp in Path::new(dir).components() {
        if let Component::Normal(n) = comp {
            cur.push('/');
            cur.push_str(&n.to_string_lossy());
            ops.push(Op::Mkdir(c(&cur)?));
        }
    }
    Ok(())
}

fn parent_of(p: &str) -> String {
    Path::new(p)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

impl PreparedRoot {
    /// Everything the child needs: no allocation happens after the fork.
    pub fn new(plan: &RootPlan, mounts: &[Mount], cwd: Option<&str>) -> std::io::Result<Self> {
        let abs = std::path::absolute;
        let (overlay, new_root) = match &plan.layer {
            Layer::Overlay {
                upper,
                work,
                merged,
            } => (
                Some((
                    cstring(&abs(merged)?)?,
                    overlay_options(&abs(&plan.image)?, &abs(upper)?, &abs(work)?)?,
                )),
                abs(merged)?,
            ),
            Layer::Copy(dir) => (None, abs(dir)?),
        };
        let mut old_in_new = new_root.as_os_str().as_bytes().to_vec();
        old_in_new.extend_from_slice(OLD_ROOT.as_bytes());
        let mut ops = vec![
            Op::Mkdir(c("/proc")?),
            Op::Fs {
                fstype: c"proc",
                target: c("/proc")?,
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                data: None,
                fallback: Some(in_old(Path::new("/proc"))?),
            },
            Op::Mkdir(c("/dev")?),
            Op::Fs {
                fstype: c"tmpfs",
                target: c("/dev")?,
                flags: MsFlags::MS_NOSUID,
                data: Some(c"mode=755"),
                fallback: None,
            },
        ];
        for d in DEVICES {
            let target = c(&format!("/dev/{d}"))?;
            ops.push(Op::Touch(target.clone()));
            ops.push(Op::Bind {
                source: in_old(&Path::new("/dev").join(d))?,
                target,
                read_only: false,
                optional: d == "tty",
            });
        }
        ops.push(Op::Mkdir(c("/dev/pts")?));
        ops.push(Op::Bind {
            source: in_old(Path::new("/dev/pts"))?,
            target: c("/dev/pts")?,
            read_only: false,
            optional: true,
        });
        ops.push(Op::Mkdir(c("/dev/shm")?));
        ops.push(Op::Fs {
            fstype: c"tmpfs",
            target: c("/dev/shm")?,
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some(c"mode=1777"),
            fallback: None,
        });
        for (to, link) in [
            (c"pts/ptmx", c"/dev/ptmx"),
            (c"/proc/self/fd", c"/dev/fd"),
            (c"/proc/self/fd/0", c"/dev/stdin"),
            (c"/proc/self/fd/1", c"/dev/stdout"),
            (c"/proc/self/fd/2", c"/dev/stderr"),
        ] {
            ops.push(Op::Symlink { to, link });
        }
        // The kubelet's files first, so that a volume the pod mounts at the same path wins.
        let binds = plan
            .files
            .iter()
            .map(|(s, t)| (s.clone(), t.clone(), false))
            .chain(
                mounts
                    .iter()
                    .map(|m| (m.source.clone(), m.target.clone(), m.read_only)),
            );
        for (source, target, read_only) in binds {
            let target = if target.starts_with('/') {
                target
            } else {
                format!("/{target}")
            };
            if source.is_dir() {
                mkdirs(&mut ops, &target)?;
            } else {
                mkdirs(&mut ops, &parent_of(&target))?;
                ops.push(Op::Touch(c(&target)?));
            }
            ops.push(Op::Bind {
                source: in_old(&source)?,
                target: c(&target)?,
                read_only,
                optional: false,
            });
        }
        if let Some(w) = cwd {
            mkdirs(&mut ops, w)?;
        }
        Ok(PreparedRoot {
            overlay,
            new_root: cstring(&new_root)?,
            old_in_new: CString::new(old_in_new).map_err(std::io::Error::other)?,
            ops,
            read_only: plan.read_only,
        })
    }

    /// Runs in the child, in its new (private) mount namespace: mounts the layer, makes it
    /// the root with `pivot_root` (so that processes joining the namespace later, `exec`,
    /// land in it too) and detaches the host's root.
    pub fn enter(&self) -> nix::Result<()> {
        match &self.overlay {
            Some((target, opts)) => mount(
                Some(c"overlay"),
                target.as_c_str(),
                Some(c"overlay"),
                MsFlags::empty(),
                Some(opts.as_c_str()),
            )?,
            // pivot_root wants a mount point.
            None => mount(
                Some(self.new_root.as_c_str()),
                self.new_root.as_c_str(),
                None::<&CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&CStr>,
            )?,
        }
        ignore_exists(nix::unistd::mkdir(
            self.old_in_new.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o700),
        ))?;
        nix::unistd::pivot_root(self.new_root.as_c_str(), self.old_in_new.as_c_str())?;
        nix::unistd::chdir(c"/")?;
        for op in &self.ops {
            run_op(op)?;
        }
        let old = CString::from(c"/.kubeproof-old-root");
        umount2(old.as_c_str(), MntFlags::MNT_DETACH)?;
        // SAFETY: rmdir(2) on a NUL-terminated path.
        unsafe { nix::libc::rmdir(old.as_ptr()) };
        if self.read_only {
            mount(
                None::<&CStr>,
                c"/",
                None::<&CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&CStr>,
            )?;
        }
        Ok(())
    }
}

fn ignore_exists(r: nix::Result<()>) -> nix::Result<()> {
    match r {
        Err(nix::errno::Errno::EEXIST) => Ok(()),
        other => other,
    }
}

fn run_op(op: &Op) -> nix::Result<()> {
    match op {
        Op::Mkdir(p) => ignore_exists(nix::unistd::mkdir(
            p.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )),
        Op::Touch(p) => {
            // SAFETY: open(2) on a NUL-terminated path; the descriptor is closed at once.
            let fd = unsafe {
                nix::libc::open(
                    p.as_ptr(),
                    nix::libc::O_CREAT | nix::libc::O_WRONLY | nix::libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd >= 0 {
                // SAFETY: fd was just opened here.
                unsafe { nix::libc::close(fd) };
            }
            // A target that cannot be created fails at its mount, with that error.
            Ok(())
        }
        Op::Bind {
            source,
            target,
            read_only,
            optional,
        } => {
            let r = mount(
                Some(source.as_c_str()),
                target.as_c_str(),
                None::<&CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&CStr>,
            )
            .and_then(|()| {
                if *read_only {
                    mount(
                        None::<&CStr>,
                        target.as_c_str(),
                        None::<&CStr>,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                        None::<&CStr>,
                    )
                } else {
                    Ok(())
                }
            });
            if *optional {
                Ok(())
            } else {
                r
            }
        }
        Op::Fs {
            fstype,
            target,
            flags,
            data,
            fallback,
        } => {
            let r = mount(
                Some(*fstype),
                target.as_c_str(),
                Some(*fstype),
                *flags,
                *data,
            );
            match (r, fallback) {
                (Ok(()), _) => Ok(()),
                (Err(_), Some(source)) => mount(
                    Some(source.as_c_str()),
                    target.as_c_str(),
                    None::<&CStr>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&CStr>,
                ),
                (Err(e), None) => Err(e),
            }
        }
        Op::Symlink { to, link } => {
            // SAFETY: symlink(2) on two NUL-terminated strings.
            unsafe { nix::libc::symlink(to.as_ptr(), link.as_ptr()) };
            Ok(())
        }
    }
}

/// The kubelet's hosts file for `pod` (`managedHostsFileContent`): localhost entries, the
/// pod's address under its hostname (with its FQDN when it has a subdomain), then
/// `hostAliases`.
pub fn hosts_file(pod: &Pod, pod_ip: Option<&str>) -> String {
    let mut s = String::from("# Kubernetes-managed hosts file.\n");
    s.push_str("127.0.0.1\tlocalhost\n");
    s.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    s.push_str("fe00::0\tip6-localnet\n");
    s.push_str("fe00::0\tip6-mcastprefix\n");
    s.push_str("fe00::1\tip6-allnodes\n");
    s.push_str("fe00::2\tip6-allrouters\n");
    let host = hostname(pod);
    let spec = pod.spec.as_ref();
    if let Some(ip) = pod_ip.filter(|ip| !ip.is_empty()) {
        match spec
            .and_then(|s| s.subdomain.as_deref())
            .filter(|d| !d.is_empty())
        {
            Some(sub) => {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                s.push_str(&format!(
                    "{ip}\t{host}.{sub}.{ns}.svc.cluster.local\t{host}\n"
                ));
            }
            None => s.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    let aliases = spec.and_then(|s| s.host_aliases.as_ref());
    if let Some(aliases) = aliases.filter(|a| !a.is_empty()) {
        s.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.clone().unwrap_or_default().join("\t");
            s.push_str(&format!("{}\t{names}\n", a.ip));
        }
    }
    s
}

/// The pod's hostname: `spec.hostname`, else its name cut to 63 characters.
pub fn hostname(pod: &Pod) -> String {
    let from_spec = pod.spec.as_ref().and_then(|s| s.hostname.clone());
    let name = from_spec
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_string()
}

/// `resolv.conf` for `pod`: the host's (the bundled cluster runs no cluster DNS, and the
/// kubelet without `clusterDNS` falls back to the host's), or the pod's `dnsConfig` with
/// `dnsPolicy: None`.
pub fn resolv_conf(pod: &Pod, host: &str) -> String {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.dns_policy.as_deref()) != Some("None") {
        return host.to_string();
    }
    let mut s = String::new();
    if let Some(cfg) = spec.and_then(|s| s.dns_config.as_ref()) {
        for ns in cfg.nameservers.iter().flatten() {
            s.push_str(&format!("nameserver {ns}\n"));
        }
        if let Some(search) = cfg.searches.as_ref().filter(|v| !v.is_empty()) {
            s.push_str(&format!("search {}\n", search.join(" ")));
        }
        let opts: Vec<String> = cfg
            .options
            .iter()
            .flatten()
            .map(|o| match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or("")),
                None => o.name.clone().unwrap_or_default(),
            })
            .collect();
        if !opts.is_empty() {
            s.push_str(&format!("options {}\n", opts.join(" ")));
        }
    }
    s
}

/// Writes the pod's `/etc` files into `pod_dir` (`etc-hosts` as the kubelet names it,
/// `hostname`, `resolv.conf`) and returns them with their in-root paths.
pub fn etc_files(
    pod: &Pod,
    pod_dir: &Path,
    pod_ip: Option<&str>,
) -> std::io::Result<Vec<(PathBuf, String)>> {
    std::fs::create_dir_all(pod_dir)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [
        ("etc-hosts", hosts_file(pod, pod_ip), "/etc/hosts"),
        ("hostname", format!("{}\n", hostname(pod)), "/etc/hostname"),
        (
            "resolv.conf",
            resolv_conf(pod, &host_resolv),
            "/etc/resolv.conf",
        ),
    ];
    let mut out = Vec::new();
    for (name, content, target) in files {
        let p = pod_dir.join(name);
        std::fs::write(&p, content)?;
        out.push((p, target.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_stay_inside_the_root_and_follow_links_there() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("usr")).unwrap();
        std::fs::write(r.join("bin/busybox"), "#!/bin/true\n").unwrap();
        std::fs::set_permissions(
            r.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/bin", r.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("bin/escape")).unwrap();
        std::fs::write(r.join("bin/plain"), "data").unwrap();
        assert_eq!(lookup(r, "/usr/bin/sh").as_deref(), Some("/bin/busybox"));
        assert_eq!(lookup(r, "/../../bin/sh").as_deref(), Some("/bin/busybox"));
        assert_eq!(
            lookup(r, "/bin/escape"),
            None,
            "an absolute link stays in the root"
        );
        let path = "/usr/local/bin:/usr/bin";
        assert_eq!(find_executable(r, "sh", path).unwrap(), "/usr/bin/sh");
        assert_eq!(find_executable(r, "/bin/sh", path).unwrap(), "/bin/sh");
        assert_eq!(
            find_executable(r, "plain", "/bin").unwrap_err(),
            "exec: \"plain\": executable file not found in $PATH"
        );
        assert!(find_executable(r, "/nope", path)
            .unwrap_err()
            .contains("no such file or directory"));
    }

    #[test]
    fn the_busybox_rootfs_has_applets_users_and_tmp() {
        let Some(bb) =
            super::super::images::find_on_path("busybox", super::super::images::DEFAULT_PATH)
        else {
            eprintln!("skipped: no busybox on this host (apt-get install busybox-static)");
            return;
        };
        let d = tempfile::tempdir().unwrap();
        build_busybox(&bb, d.path()).unwrap();
        build_busybox(&bb, d.path()).expect("building again is a no-op");
        assert_eq!(find_executable(d.path(), "sh", "/bin").unwrap(), "/bin/sh");
        let passwd = std::fs::read_to_string(d.path().join("etc/passwd")).unwrap();
        assert!(passwd.starts_with("root:x:0:0:"));
        let mode = std::fs::metadata(d.path().join("tmp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777);
        let copy = tempfile::tempdir().unwrap();
        copy_tree(d.path(), &copy.path().join("c")).unwrap();
        assert_eq!(
            std::fs::read_link(copy.path().join("c/bin/sh")).unwrap(),
            Path::new("busybox")
        );
    }

    #[test]
    fn etc_files_follow_the_kubelet() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "ns"},
            "spec": {"containers": [], "subdomain": "web",
                     "hostAliases": [{"ip": "127.0.0.9", "hostnames": ["a", "b"]}],
                     "dnsPolicy": "None",
                     "dnsConfig": {"nameservers": ["127.0.0.53"], "searches": ["x.local"],
                                   "options": [{"name": "ndots", "value": "2"}]}}
        }))
        .unwrap();
        let hosts = hosts_file(&pod, Some("127.244.0.5"));
        assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("127.244.0.5\tweb-0.web.ns.svc.cluster.local\tweb-0\n"));
        assert!(hosts.ends_with("\n# Entries added by HostAliases.\n127.0.0.9\ta\tb\n"));
        assert_eq!(
            resolv_conf(&pod, "nameserver 1.1.1.1\n"),
            "nameserver 127.0.0.53\nsearch x.local\noptions ndots:2\n"
        );
        let plain: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": []}}))
                .unwrap();
        assert_eq!(
            resolv_conf(&plain, "nameserver 1.1.1.1\n"),
            "nameserver 1.1.1.1\n"
        );
        assert_eq!(hostname(&plain), "p");
        let d = tempfile::tempdir().unwrap();
        let files = etc_files(&plain, d.path(), None).unwrap();
        let targets: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(targets, ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);
        assert_eq!(std::fs::read_to_string(&files[1].0).unwrap(), "p\n");
    }
}
