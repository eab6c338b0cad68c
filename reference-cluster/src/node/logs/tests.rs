use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn key(c: &str) -> LogKey {
    LogKey {
        namespace: "default".into(),
        pod: "web".into(),
        container: c.into(),
    }
}

fn script(attempt: u32, running_at: Instant) -> Script {
    Script {
        pod: "web".into(),
        container: "app".into(),
        attempt,
        running_at,
        lines: vec!["hello".into(), "world".into()],
        every: Some(ms(100)),
        exit: None,
        program: None,
    }
}

fn setup(limits: LogLimits) -> (LogStore, Instant) {
    let t0 = Instant::now();
    let wall = Timestamp::from_second(1_800_000_000).unwrap();
    (LogStore::with_clock(limits, Clock::pinned(t0, wall)), t0)
}

fn texts(v: &LogView) -> Vec<String> {
    v.lines.iter().map(|l| l.text.clone()).collect()
}

#[test]
fn lines_appear_when_they_are_due() {
    let (store, t0) = setup(LogLimits::default());
    store.begin(key("app"), "u1", "c1", script(0, t0 + ms(50)));
    let all = LogRequest::default();
    let early = store.read(&key("app"), &all, t0 + ms(10)).unwrap();
    assert!(early.lines.is_empty());
    assert_eq!(early.next_due, Some(t0 + ms(50)));
    let v = store.read(&key("app"), &all, t0 + ms(260)).unwrap();
    assert_eq!(
        texts(&v),
        [
            "web app started (attempt 0)",
            "hello",
            "world",
            "web app tick 1",
            "web app tick 2"
        ]
    );
    assert_eq!(v.next_due, Some(t0 + ms(350)));
    assert!(!v.finished);
    assert_eq!(
        v.lines[3].at,
        Timestamp::from_nanosecond(1_800_000_000_150_000_000).unwrap(),
        "a tick's time is its due time, not the read time"
    );
    store.set_exit("c1", t0 + ms(300), 3);
    let v = store.read(&key("app"), &all, t0 + ms(1000)).unwrap();
    assert_eq!(
        texts(&v)[4..],
        ["web app tick 2", "web app exited with code 3"]
    );
    assert!(v.finished && v.next_due.is_none());
    store.set_exit("c1", t0 + ms(200), 9);
    assert_eq!(
        store
            .read(&key("app"), &all, t0 + ms(2000))
            .unwrap()
            .lines
            .len(),
        6,
        "an attempt that has exited does not exit again"
    );
}

#[test]
fn a_restart_keeps_the_previous_attempt() {
    let (store, t0) = setup(LogLimits::default());
    let mut first = script(0, t0);
    first.every = None;
    first.exit = Some((t0 + ms(100), 1));
    store.begin(key("app"), "u1", "c1", first);
    let prev = LogRequest {
        previous: true,
        ..Default::default()
    };
    assert_eq!(
        store.read(&key("app"), &prev, t0).unwrap_err().to_string(),
        "previous terminated container \"app\" in pod \"web\" not found"
    );
    // Exited and waiting to restart: both reads show the attempt that exited.
    let backoff = store.read(&key("app"), &prev, t0 + ms(200)).unwrap();
    assert_eq!(
        backoff.lines.last().unwrap().text,
        "web app exited with code 1"
    );
    assert_eq!(
        store
            .read(&key("app"), &LogRequest::default(), t0 + ms(200))
            .unwrap(),
        backoff
    );
    let mut second = script(1, t0 + ms(500));
    second.every = None;
    store.begin(key("app"), "u1", "c2", second);
    let creating = store
        .read(&key("app"), &LogRequest::default(), t0 + ms(300))
        .unwrap();
    assert_eq!(
        creating.id, "c1",
        "until the new attempt runs, the last one is shown"
    );
    let p = store.read(&key("app"), &prev, t0 + ms(600)).unwrap();
    assert_eq!(
        texts(&p),
        [
            "web app started (attempt 0)",
            "hello",
            "world",
            "web app exited with code 1"
        ]
    );
    let cur = store
        .read(&key("app"), &LogRequest::default(), t0 + ms(600))
        .unwrap();
    assert_eq!(texts(&cur)[0], "web app started (attempt 1)");
    // A new pod with the same name starts without history.
    store.begin(key("app"), "u2", "c3", script(0, t0 + ms(700)));
    assert!(store.read(&key("app"), &prev, t0 + ms(800)).is_err());
    store.remove_pod("u1");
    assert!(
        store
            .read(&key("app"), &LogRequest::default(), t0 + ms(800))
            .is_ok(),
        "removing the old pod leaves the new one"
    );
    store.remove_pod("u2");
    assert_eq!(
        store
            .read(&key("app"), &LogRequest::default(), t0)
            .unwrap_err()
            .to_string(),
        "container \"app\" in pod \"web\" is not available"
    );
    assert_eq!(store.attempt_count(), 0);
}

#[test]
fn tail_since_and_follow_read_the_same_lines() {
    let (store, t0) = setup(LogLimits::default());
    store.begin(key("app"), "u1", "c1", script(0, t0));
    let tail = LogRequest {
        tail: Some(2),
        ..Default::default()
    };
    let v = store.read(&key("app"), &tail, t0 + ms(1000)).unwrap();
    assert_eq!(texts(&v), ["web app tick 9", "web app tick 10"]);
    let since = LogRequest {
        since: Some(Timestamp::from_nanosecond(1_800_000_000_850_000_000).unwrap()),
        ..Default::default()
    };
    let v = store.read(&key("app"), &since, t0 + ms(1000)).unwrap();
    assert_eq!(texts(&v), ["web app tick 9", "web app tick 10"]);
    let more = store.follow(&v.id, v.next_seq, t0 + ms(1250));
    assert_eq!(texts(&more), ["web app tick 11", "web app tick 12"]);
    assert!(!more.finished);
    let gone = store.follow("no-such-id", 0, t0);
    assert!(gone.finished && gone.lines.is_empty());
}

#[test]
fn long_idle_periods_write_only_what_the_ring_holds() {
    let (store, t0) = setup(LogLimits {
        max_lines: 5,
        max_bytes: 1 << 20,
    });
    let mut s = script(0, t0);
    s.every = Some(ms(1));
    store.begin(key("app"), "u1", "c1", s);
    let v = store
        .read(
            &key("app"),
            &LogRequest::default(),
            t0 + Duration::from_secs(3600),
        )
        .unwrap();
    assert_eq!(v.lines.len(), 5);
    assert_eq!(v.lines[4].text, "web app tick 3600000");
}

#[test]
fn an_attempt_stopped_before_running_writes_nothing() {
    let (store, t0) = setup(LogLimits::default());
    store.begin(key("app"), "u1", "c1", script(0, t0 + ms(100)));
    store.set_exit("c1", t0 + ms(50), 137);
    let v = store
        .read(&key("app"), &LogRequest::default(), t0 + ms(500))
        .unwrap();
    assert!(v.lines.is_empty() && v.finished);
}

#[test]
fn an_exit_never_lands_before_lines_already_read() {
    let (store, t0) = setup(LogLimits::default());
    store.begin(key("app"), "u1", "c1", script(0, t0));
    let all = LogRequest::default();
    store.read(&key("app"), &all, t0 + ms(450)).unwrap();
    store.set_exit("c1", t0 + ms(250), 0);
    let v = store.read(&key("app"), &all, t0 + ms(500)).unwrap();
    let last_two: Vec<_> = v.lines[v.lines.len() - 2..].to_vec();
    assert_eq!(last_two[0].text, "web app tick 4");
    assert_eq!(last_two[1].text, "web app exited with code 0");
    assert!(last_two[1].at >= last_two[0].at);
}
