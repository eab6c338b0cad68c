//! `pods/attach` with the `process` runtime: a bundled cluster with one node agent whose
//! containers are real busybox processes; kube-rs `Api::attach` and `kubectl attach` reach the
//! container's own stdin and output (PROCESS.md, "Attach"). Needs busybox and, for the kubectl
//! part, kubectl 1.32 on the PATH; without them the tests print why and return.

#[path = "node_support/process.rs"]
mod process_support;
#[path = "node_support/mod.rs"]
mod support;

use std::time::Duration;

use kube::api::{AttachParams, TerminalSize};
use kubeproof_refcluster::node::process::images::find_on_path;
use process_support::start_or_skip;
use serde_json::json;
use support::{eventually, kubectl, kubectl_with_input, spawn_kubectl};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Reads from `r` until what was read contains `want`; what was read, or a panic naming it.
async fn read_until(r: &mut (impl AsyncRead + Unpin), want: &str) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains(want) {
            let n = r.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        read.is_ok() && text.contains(want),
        "wanted {want:?} from the container, read {text:?}"
    );
    text
}

const READER: &str = "while read l; do echo got:$l; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_attach_reaches_the_main_process_stdin_and_output() {
    let Some(env) = start_or_skip().await else {
        return;
    };
    let pods = env.pods();
    env.create(
        "reader",
        json!({"containers": [{"name": "c", "image": "busybox", "stdin": true,
            "command": ["sh", "-c", READER]}]}),
    )
    .await;
    env.running("reader").await;

    let params = AttachParams::default()
        .container("c")
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let mut first = pods.attach("reader", &params).await.expect("attach");
    let mut stdin = first.stdin().unwrap();
    let mut stdout = first.stdout().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    read_until(&mut stdout, "got:hello\n").await;
    stdin.write_all(b"again\n").await.unwrap();
    read_until(&mut stdout, "got:again\n").await;
    // The client leaves without closing stdin: the container keeps reading it.
    drop((stdin, stdout));
    first.abort();

    let mut second = pods.attach("reader", &params).await.expect("attach again");
    let mut stdin = second.stdin().unwrap();
    let mut stdout = second.stdout().unwrap();
    stdin.write_all(b"twice\n").await.unwrap();
    let text = read_until(&mut stdout, "got:twice\n").await;
    assert_eq!(
        text, "got:twice\n",
        "only output from the moment of attaching"
    );
    drop((stdin, stdout));
    second.abort();

    // The log file and `kubectl logs` still get every line.
    let logs = eventually(Duration::from_secs(10), || async {
        let l = env.logs("reader", false).await;
        l.contains("got:twice").then_some(l)
    })
    .await
    .expect("attached output is logged too");
    assert_eq!(logs, "got:hello\ngot:again\ngot:twice\n");

    // A tty: one stream through the container's pty, whose size follows the client's.
    env.create(
        "term",
        json!({"containers": [{"name": "c", "image": "busybox", "stdin": true, "tty": true,
            "command": ["sh", "-c", "while read l; do echo got:$l:$TERM; stty size; done"]}]}),
    )
    .await;
    env.running("term").await;
    let mut t = pods
        .attach("term", &AttachParams::interactive_tty().container("c"))
        .await
        .expect("attach with a tty");
    let mut size = t.terminal_size().unwrap();
    let mut stdin = t.stdin().unwrap();
    let mut stdout = t.stdout().unwrap();
    use futures::SinkExt as _;
    size.send(TerminalSize {
        width: 91,
        height: 27,
    })
    .await
    .unwrap();
    // The terminal echoes the input, then the shell answers; a tty ends lines with CR LF.
    // kube-rs sends the size and stdin from two queues, in either order: until the size has
    // arrived the pty has none (busybox `stty size` then fails), so the line is sent again.
    let want = "got:hi:xterm\r\n27 91\r\n";
    let mut seen = String::new();
    for _ in 0..50 {
        stdin.write_all(b"hi\r").await.unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(Ok(n @ 1..)) =
            tokio::time::timeout(Duration::from_millis(200), stdout.read(&mut buf)).await
        {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        if seen.contains(want) {
            break;
        }
    }
    assert!(
        seen.contains(want),
        "wanted {want:?} from the container, read {seen:?}"
    );
    drop((stdin, stdout, size));
    t.abort();

    // A container that does not run has nothing to attach to.
    env.create(
        "absent",
        json!({"containers": [{"name": "c", "image": "example.com/no/such:1"}]}),
    )
    .await;
    env.until_status("absent", "waiting", |cs| cs["state"]["waiting"].is_object())
        .await;
    // As upstream, the API server upgrades first and relays the kubelet's refusal as a Status.
    let mut refused = pods.attach("absent", &params).await.expect("upgraded");
    let status = refused
        .take_status()
        .unwrap()
        .await
        .expect("a final status");
    let message = status.message.unwrap_or_default();
    assert_eq!(status.status.as_deref(), Some("Failure"), "{message}");
    assert!(message.contains("container not found (\"c\")"), "{message}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_attach_pipes_stdin_and_stdin_once_closes_it() {
    let Some(env) = start_or_skip().await else {
        return;
    };
    if find_on_path("kubectl", &std::env::var("PATH").unwrap_or_default()).is_none() {
        eprintln!("skipped: kubectl is not on the PATH");
        env.finish().await;
        return;
    }
    let kc = env.cluster.kubeconfig_path().to_path_buf();

    // stdinOnce: the piped line's end closes the container's stdin, so its loop ends and the
    // session follows the output to the container's exit.
    env.create(
        "once",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
            "stdin": true, "stdinOnce": true, "command": ["sh", "-c", READER]}]}),
    )
    .await;
    env.running("once").await;
    let (code, out, err) =
        kubectl_with_input(&kc, &["attach", "-i", "once", "-c", "c"], b"piped line\n").await;
    assert_eq!(code, Some(0), "{out} / {err}");
    assert_eq!(out, "got:piped line\n", "{err}");
    let cs = env
        .until_status("once", "completion", |cs| {
            cs["state"]["terminated"].is_object()
        })
        .await;
    assert_eq!(cs["state"]["terminated"]["reason"], "Completed", "{cs}");

    // Without stdinOnce the end of kubectl's input detaches; the container keeps running and
    // keeps its stdin for the next session.
    env.create(
        "keeper",
        json!({"containers": [{"name": "c", "image": "busybox", "stdin": true,
            "command": ["sh", "-c", READER]}]}),
    )
    .await;
    env.running("keeper").await;
    let (code, _, err) = kubectl(&kc, &["attach", "-i", "keeper", "-c", "c"]).await;
    assert_eq!(code, Some(0), "end of input ends the session: {err}");
    let mut child = spawn_kubectl(&kc, &["attach", "-i", "keeper", "-c", "c"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"still open\n").await.unwrap();
    read_until(&mut stdout, "got:still open\n").await;
    drop(stdin);
    let done = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("kubectl attach ends with its input")
        .unwrap();
    assert_eq!(done.code(), Some(0));
    let cs = env.running("keeper").await;
    assert_eq!(cs["restartCount"], 0, "{cs}");

    // Without -i: the output from now on, until the container exits.
    env.create(
        "ticker",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
            "command": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo tick $i; sleep 0.25; done"]}]}),
    )
    .await;
    env.running("ticker").await;
    eventually(Duration::from_secs(10), || async {
        env.logs("ticker", false)
            .await
            .contains("tick 1\n")
            .then_some(())
    })
    .await
    .expect("the ticker has begun");
    let (code, out, err) = kubectl(&kc, &["attach", "ticker", "-c", "c"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("tick 12\n"), "{out}");
    assert!(
        !out.lines().any(|l| l == "tick 1"),
        "no output from before attaching: {out}"
    );

    // -t on a container without a tty: kubectl says so and attaches without one.
    env.create(
        "plain",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
            "stdin": true, "stdinOnce": true, "command": ["sh", "-c", READER]}]}),
    )
    .await;
    env.running("plain").await;
    let (_, out, err) =
        kubectl_with_input(&kc, &["attach", "-i", "-t", "plain", "-c", "c"], b"x\n").await;
    assert!(
        err.contains("Unable to use a TTY - container c did not allocate one"),
        "{err}"
    );
    assert_eq!(out, "got:x\n", "{err}");
    env.finish().await;
}
