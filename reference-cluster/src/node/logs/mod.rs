//! Container logs of the `sim` runtime, shared between the fleet (which starts and stops
//! containers) and the kubelet server (which reads them).
//!
//! A sim container writes nothing on its own schedule: each attempt's [`Script`] knows when
//! every line is due (start, annotation lines, ticks, exit), and lines are written into the
//! attempt's [`LogBuffer`] when somebody reads, up to that moment. The output is therefore the
//! same as if it had been written live, yet idle containers cost nothing. What the lines say is
//! documented in `SIM.md`.

pub mod buffer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use self::buffer::{format_line, ByteBudget, LogBuffer, LogLimits, LogLine};
use super::clock::Clock;
use super::exec::script::Program;

/// Where a container's logs are found: namespace, pod name, container name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogKey {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// When one attempt writes what.
#[derive(Clone, Debug)]
pub struct Script {
    pub pod: String,
    pub container: String,
    pub attempt: u32,
    /// When the container starts running.
    pub running_at: Instant,
    /// `sim.kubeproof.dev/logs`: written right after the start line.
    pub lines: Vec<String>,
    /// `sim.kubeproof.dev/log-every`.
    pub every: Option<Duration>,
    /// When and with which code it exits, once known.
    pub exit: Option<(Instant, i32)>,
    /// The container's command, when the interpreter runs it: then the log is exactly what it
    /// prints (no start, annotation, tick or exit lines).
    pub program: Option<Program>,
}

/// One attempt: its script and what of it has been written.
#[derive(Clone, Debug)]
struct Attempt {
    id: String,
    script: Script,
    buffer: LogBuffer,
    started: bool,
    ticks: u64,
    exited: bool,
    /// The latest instant lines were written up to, once it started.
    read_until: Option<Instant>,
}

impl Attempt {
    /// Whether the attempt ever runs (an attempt stopped while being created writes nothing).
    fn runs(&self) -> bool {
        self.script
            .exit
            .is_none_or(|(at, _)| at >= self.script.running_at)
    }

    fn tick_at(&self, n: u64) -> Option<Instant> {
        let nanos = self.script.every?.as_nanos().checked_mul(u128::from(n))?;
        let offset = Duration::from_nanos(u64::try_from(nanos).ok()?);
        self.script.running_at.checked_add(offset)
    }

    /// Writes every line due by `now`.
    fn catch_up(&mut self, now: Instant, clock: &Clock) {
        if !self.runs() || self.exited {
            return;
        }
        if self.script.program.is_some() {
            self.catch_up_program(now, clock);
            return;
        }
        let s = &self.script;
        if !self.started {
            if s.running_at > now {
                return;
            }
            let at = clock.wall(s.running_at);
            self.buffer.push(
                at,
                format!("{} {} started (attempt {})", s.pod, s.container, s.attempt),
            );
            for line in &s.lines {
                self.buffer.push(at, line.clone());
            }
            self.started = true;
        }
        self.read_until = Some(self.read_until.map_or(now, |r| r.max(now)));
        let end = self.script.exit.map(|(at, _)| at);
        let until = end.map_or(now, |e| e.min(now));
        if let Some(every) = self.script.every {
            // Lines older than the ring holds are never written at all, so a long-idle
            // follower does not make the sim write millions of ticks.
            let due = (until
                .saturating_duration_since(self.script.running_at)
                .as_nanos()
                / every.as_nanos().max(1)) as u64;
            let keep = self.buffer_capacity_lines();
            if due > self.ticks + keep {
                self.ticks = due - keep;
            }
            while let Some(at) = self.tick_at(self.ticks + 1) {
                if at > until || end.is_some_and(|e| at >= e) {
                    break;
                }
                self.ticks += 1;
                let text = format!(
                    "{} {} tick {}",
                    self.script.pod, self.script.container, self.ticks
                );
                self.buffer.push(clock.wall(at), text);
            }
        }
        if let Some((at, code)) = self.script.exit {
            if at <= now {
                let text = format!(
                    "{} {} exited with code {code}",
                    self.script.pod, self.script.container
                );
                self.buffer.push(clock.wall(at), text);
                self.exited = true;
            }
        }
    }

    /// Writes what the container's command printed by `now` (and before its exit or stop,
    /// lines at that very instant included: `echo bye; exit 1` writes `bye`).
    fn catch_up_program(&mut self, now: Instant, clock: &Clock) {
        let running_at = self.script.running_at;
        if running_at > now {
            return;
        }
        self.started = true;
        self.read_until = Some(self.read_until.map_or(now, |r| r.max(now)));
        let until = self.script.exit.map_or(now, |(at, _)| at.min(now));
        let keep = self.buffer_capacity_lines();
        if let Some(program) = self.script.program.as_mut() {
            for (offset, text) in program.lines_until(until - running_at, keep) {
                self.buffer.push(clock.wall(running_at + offset), text);
            }
        }
        if self.script.exit.is_some_and(|(at, _)| at <= now) {
            self.exited = true;
        }
    }

    fn buffer_capacity_lines(&self) -> u64 {
        self.buffer.limits().max_lines as u64
    }

    /// When the next line is due, if one is.
    fn next_line_at(&self) -> Option<Instant> {
        if !self.runs() || self.exited {
            return None;
        }
        if !self.started {
            return Some(self.script.running_at);
        }
        let exit = self.script.exit.map(|(at, _)| at);
        if let Some(program) = &self.script.program {
            let line = program
                .next_line_at()
                .map(|d| self.script.running_at + d)
                .filter(|t| exit.is_none_or(|e| *t <= e));
            return match (line, exit) {
                (Some(t), Some(e)) => Some(t.min(e)),
                (t, e) => t.or(e),
            };
        }
        let tick = self
            .tick_at(self.ticks + 1)
            .filter(|t| exit.is_none_or(|e| *t < e));
        match (tick, exit) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (t, e) => t.or(e),
        }
    }

    /// Nothing more will be written.
    fn finished(&self) -> bool {
        self.exited || !self.runs()
    }
}

/// Why a log cannot be read; the messages are the kubelet's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogError {
    /// No attempt of this container has run on this node.
    NotAvailable(String),
    /// `previous=true`, but the container has not been restarted.
    NoPrevious(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::NotAvailable(m) | LogError::NoPrevious(m) => f.write_str(m),
        }
    }
}

/// What to read of a container's log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRequest {
    pub previous: bool,
    /// Only lines written at or after this time (`sinceSeconds`, `sinceTime`).
    pub since: Option<k8s_openapi::jiff::Timestamp>,
    /// Only the last this many lines (`tailLines`).
    pub tail: Option<u64>,
}

/// Lines read from one attempt, and how to go on following it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogView {
    /// The attempt's container ID.
    pub id: String,
    pub lines: Vec<LogLine>,
    /// Where a follower continues.
    pub next_seq: u64,
    /// When the next line is due, if one is.
    pub next_due: Option<Instant>,
    /// The attempt will write nothing more (it exited, or it is gone).
    pub finished: bool,
}

struct Entry {
    pod_uid: String,
    current: Attempt,
    previous: Option<Attempt>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<LogKey, Entry>,
    /// Container ID → where its attempt is.
    ids: HashMap<String, LogKey>,
    by_pod: HashMap<String, Vec<LogKey>>,
}

impl Inner {
    fn attempt_mut(&mut self, id: &str) -> Option<&mut Attempt> {
        let key = self.ids.get(id)?;
        let e = self.entries.get_mut(key)?;
        if e.current.id == id {
            Some(&mut e.current)
        } else {
            e.previous.as_mut().filter(|p| p.id == id)
        }
    }

    fn forget_ids(&mut self, e: &Entry) {
        self.ids.remove(&e.current.id);
        if let Some(p) = &e.previous {
            self.ids.remove(&p.id);
        }
    }
}

/// Every sim container's log in a fleet: the current attempt and the one before it, as the
/// kubelet keeps them for `previous=true`. Cloning shares the store.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    clock: Clock,
    limits: LogLimits,
}

impl LogStore {
    pub fn new(limits: LogLimits) -> LogStore {
        LogStore::with_clock(limits, Clock::new())
    }

    /// A store whose timestamps come from `clock` (tests pin wall time).
    pub fn with_clock(limits: LogLimits, clock: Clock) -> LogStore {
        LogStore {
            inner: Arc::new(Mutex::new(Inner::default())),
            clock,
            limits,
        }
    }

    /// A new attempt of `key`'s container, with ID `id`; the attempt before it becomes the
    /// previous one. A different pod UID (a new pod of the same name) starts afresh.
    pub fn begin(&self, key: LogKey, pod_uid: &str, id: &str, script: Script) {
        let attempt = Attempt {
            id: id.to_string(),
            script,
            buffer: LogBuffer::new(self.limits),
            started: false,
            ticks: 0,
            exited: false,
            read_until: None,
        };
        let mut inner = self.inner.lock();
        inner.ids.insert(id.to_string(), key.clone());
        let old = inner.entries.remove(&key);
        let previous = match old {
            Some(old) if old.pod_uid == pod_uid => {
                if let Some(p) = &old.previous {
                    inner.ids.remove(&p.id);
                }
                Some(old.current)
            }
            Some(old) => {
                inner.forget_ids(&old);
                inner.ids.insert(id.to_string(), key.clone());
                None
            }
            None => None,
        };
        let keys = inner.by_pod.entry(pod_uid.to_string()).or_default();
        if !keys.contains(&key) {
            keys.push(key.clone());
        }
        inner.entries.insert(
            key,
            Entry {
                pod_uid: pod_uid.to_string(),
                current: attempt,
                previous,
            },
        );
    }

    /// A new attempt whose lines come from a real process (the `process` runtime) through
    /// [`LogStore::push_line`] instead of a script; it is finished once
    /// [`LogStore::end_live`] is called.
    pub fn begin_live(&self, key: LogKey, pod_uid: &str, id: &str, attempt: u32) {
        let script = Script {
            pod: key.pod.clone(),
            container: key.container.clone(),
            attempt,
            running_at: Instant::now(),
            lines: Vec::new(),
            every: None,
            exit: None,
            program: None,
        };
        self.begin(key, pod_uid, id, script);
        // Marked started so that no scripted start line is ever written.
        if let Some(a) = self.inner.lock().attempt_mut(id) {
            a.started = true;
        }
    }

    /// Appends a line a live attempt wrote at `at`.
    pub fn push_line(&self, id: &str, at: k8s_openapi::jiff::Timestamp, text: String) {
        if let Some(a) = self.inner.lock().attempt_mut(id) {
            a.buffer.push(at, text);
        }
    }

    /// A live attempt's process has exited: followers stop after its last line.
    pub fn end_live(&self, id: &str) {
        if let Some(a) = self.inner.lock().attempt_mut(id) {
            a.exited = true;
        }
    }

    /// The attempt `id` exits at `at` with `code`, unless it was already due to exit earlier.
    pub fn set_exit(&self, id: &str, at: Instant, code: i32) {
        let mut inner = self.inner.lock();
        if let Some(a) = inner.attempt_mut(id) {
            if a.script.exit.is_none_or(|(old, _)| at < old) && !a.exited {
                // A reader may already have written lines past `at` (the fleet's clock reading
                // can be older than the reader's); the exit line still comes last.
                a.script.exit = Some((a.read_until.map_or(at, |r| at.max(r)), code));
            }
        }
    }

    /// Forgets every log of the pod (its sandbox is gone).
    pub fn remove_pod(&self, pod_uid: &str) {
        let mut inner = self.inner.lock();
        for key in inner.by_pod.remove(pod_uid).unwrap_or_default() {
            if let Some(e) = inner.entries.remove(&key) {
                if e.pod_uid == pod_uid {
                    inner.forget_ids(&e);
                } else {
                    inner.entries.insert(key, e);
                }
            }
        }
    }

    /// Reads the current (or previous) attempt of `key` as of `now`, choosing the attempt as the
    /// kubelet does from the container's status.
    pub fn read(&self, key: &LogKey, req: &LogRequest, now: Instant) -> Result<LogView, LogError> {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.entries.get_mut(key) else {
            return Err(LogError::NotAvailable(format!(
                "container {:?} in pod {:?} is not available",
                key.container, key.pod
            )));
        };
        // The kubelet reads `lastState.terminated` for `previous`, and shows it as the current
        // log while the next attempt waits: that is the newest attempt once it has exited, and
        // the one before it while the newest has not exited (or not started, for the current
        // log).
        entry.current.catch_up(now, &self.clock);
        let use_previous = if req.previous {
            !entry.current.finished()
        } else {
            entry.previous.is_some() && !entry.current.started && !entry.current.finished()
        };
        let attempt = if use_previous {
            entry.previous.as_mut().ok_or_else(|| {
                LogError::NoPrevious(format!(
                    "previous terminated container {:?} in pod {:?} not found",
                    key.container, key.pod
                ))
            })?
        } else {
            &mut entry.current
        };
        attempt.catch_up(now, &self.clock);
        Ok(LogView {
            id: attempt.id.clone(),
            lines: attempt.buffer.select(req.since, req.tail),
            next_seq: attempt.buffer.next_seq(),
            next_due: attempt.next_line_at(),
            finished: attempt.finished(),
        })
    }

    /// Lines of attempt `id` from sequence number `from` on, as of `now`; an attempt that is
    /// gone reads as finished with nothing more.
    pub fn follow(&self, id: &str, from: u64, now: Instant) -> LogView {
        let mut inner = self.inner.lock();
        match inner.attempt_mut(id) {
            Some(a) => {
                a.catch_up(now, &self.clock);
                LogView {
                    id: id.to_string(),
                    lines: a.buffer.after(from),
                    next_seq: a.buffer.next_seq(),
                    next_due: a.next_line_at(),
                    finished: a.finished(),
                }
            }
            None => LogView {
                id: id.to_string(),
                lines: Vec::new(),
                next_seq: from,
                next_due: None,
                finished: true,
            },
        }
    }

    /// The clock the store's timestamps come from.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// How many container attempts hold logs.
    pub fn attempt_count(&self) -> usize {
        self.inner.lock().ids.len()
    }
}

#[cfg(test)]
mod tests;
