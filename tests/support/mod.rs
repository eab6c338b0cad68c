//! Shared helpers of the root integration tests: run `kubeproof cluster up` as a real process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `kubeproof cluster up` child process on a data directory.
pub struct ClusterProcess {
    pub child: Child,
    pub data_dir: PathBuf,
}

impl ClusterProcess {
    /// Starts the cluster on `data_dir` (any free port) and waits until its kubeconfig exists
    /// and `/readyz` answers.
    pub fn start(data_dir: &Path) -> ClusterProcess {
        let kubeconfig = data_dir.join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let child = Command::new(env!("CARGO_BIN_EXE_kubeproof"))
            .args([
                "cluster",
                "up",
                "--api-port",
                "0",
                "--nodes",
                "2",
                "--data-dir",
            ])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubeproof binary starts");
        let started = Instant::now();
        let mut child = child;
        while !kubeconfig.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("kubeproof cluster up exited before it was ready: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the cluster did not write its kubeconfig within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ClusterProcess {
            child,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        kube::Client::try_from(config).expect("client")
    }

    /// kill -9: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.child.wait().expect("wait")
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
