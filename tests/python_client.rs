//! The official Python client (`kubernetes` on PyPI) works against the bundled cluster unchanged.

mod support;

use std::process::Command;

#[test]
fn official_python_client_works_unchanged() {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        eprintln!("SKIPPED: python3 with the `kubernetes` package is not installed (pip install kubernetes==32.0.1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::ClusterProcess::start(dir.path());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/python_client.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(cluster.kubeconfig())
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python client checks failed:\n{text}");
    assert!(text.contains("all checks passed"), "{text}");
}
