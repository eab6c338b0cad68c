//! A sim container's `command`/`args` run by the built-in interpreter (see `SIM.md`, Commands),
//! so that a pod written for busybox behaves alike on simulated nodes.
//!
//! The script is parsed once when the container starts and then stepped in simulated time: a
//! [`Program`] is a small machine whose `sleep` only moves its own clock forward, producing
//! timestamped log lines and, maybe, an exit. No thread or timer exists per container: the
//! runtime asks [`Program::outcome`] once for the exit it plans, and the log store steps a copy
//! lazily when somebody reads. A loop that comes back to its start in the same state repeats
//! forever, so the machine recognises it and skips whole rounds nobody would see.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::shell::{self, executable, tokenize, Op, Piece, Shell, Token, Word};

/// Commands without time that a script may run besides `sleep` (see `shell::simple`).
const PRINTING: &[&str] = &[
    "cat", "echo", "env", "false", "hostname", "printenv", "printf", "true",
];

/// Shell builtins the machine runs itself.
const BUILTINS: &[&str] = &["exit", "export", ":"];

/// Commands in a row without simulated time passing after which a script is taken as spinning
/// (a loop without `sleep`): it writes nothing more and never exits.
const BUSY_LIMIT: u32 = 10_000;

/// Commands [`Program::outcome`] runs before it takes a script that has not ended (nor settled
/// into a repeating loop) as running forever.
const OUTCOME_LIMIT: u64 = 100_000;

/// The longest partial line kept before it is written as a line of its own, as the CRI splits
/// long lines (16 KiB).
const MAX_LINE: usize = 16 * 1024;

type Block = Arc<Vec<(Op, Cmd)>>;

#[derive(Debug)]
enum Cmd {
    Simple(Vec<Word>),
    Loop {
        until: bool,
        cond: Block,
        body: Block,
        /// `while true` (`while :`, `until false`) without `exit` in its body: it never ends.
        endless: bool,
    },
    For {
        var: String,
        words: Vec<Word>,
        body: Block,
    },
    If {
        branches: Arc<Vec<(Block, Block)>>,
        otherwise: Option<Block>,
    },
}

const KEYWORDS: &[&str] = &["do", "done", "then", "elif", "else", "fi"];

/// How deeply loops and `if`s may nest: the parser and the checks recurse per level, and a pod
/// spec must not be able to overflow the fleet's stack.
const MAX_DEPTH: usize = 32;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn keyword(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => w.literal(),
            _ => None,
        }
    }

    fn op(&self) -> Option<Op> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(op)) => Some(*op),
            _ => None,
        }
    }

    fn skip_newlines(&mut self) {
        while self.op() == Some(Op::Newline) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), String> {
        if self.keyword() == Some(word) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected \"{word}\""))
        }
    }

    /// Commands up to one of the keywords `ends` (or the end of the script).
    fn list(&mut self, ends: &[&str]) -> Result<Block, String> {
        let mut items = Vec::new();
        let mut op = Op::Seq;
        loop {
            self.skip_newlines();
            match self.tokens.get(self.pos) {
                None => break,
                Some(Token::Word(w)) if w.literal().is_some_and(|k| ends.contains(&k)) => break,
                Some(Token::Op(o)) => return Err(format!("unexpected \"{}\"", o.text())),
                Some(Token::Word(_)) => {}
            }
            items.push((op, self.command()?));
            match self.op() {
                Some(o @ (Op::And | Op::Or)) => {
                    self.pos += 1;
                    self.skip_newlines();
                    if self.pos >= self.tokens.len() {
                        return Err(format!("unexpected end after \"{}\"", o.text()));
                    }
                    op = o;
                }
                Some(Op::Seq | Op::Newline) => {
                    self.pos += 1;
                    op = Op::Seq;
                }
                None => op = Op::Seq,
            }
        }
        if items.is_empty() && !ends.is_empty() {
            return Err("empty command list".into());
        }
        Ok(Arc::new(items))
    }

    fn command(&mut self) -> Result<Cmd, String> {
        if matches!(self.keyword(), Some("while" | "until" | "for" | "if")) {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err("loops and ifs nest too deeply".into());
            }
            let cmd = self.compound();
            self.depth -= 1;
            return cmd;
        }
        self.compound()
    }

    fn compound(&mut self) -> Result<Cmd, String> {
        match self.keyword() {
            Some(k @ ("while" | "until")) => {
                let until = k == "until";
                self.pos += 1;
                let cond = self.list(&["do"])?;
                self.expect("do")?;
                let body = self.list(&["done"])?;
                self.expect("done")?;
                let constant = match cond.as_slice() {
                    [(_, Cmd::Simple(words))] if words.len() == 1 => words[0].literal(),
                    _ => None,
                };
                let endless = match constant {
                    Some("true" | ":") => !until,
                    Some("false") => until,
                    _ => false,
                } && !exits(&body);
                Ok(Cmd::Loop {
                    until,
                    cond,
                    body,
                    endless,
                })
            }
            Some("for") => {
                self.pos += 1;
                let var = match self.keyword() {
                    Some(v) if is_name(v) => v.to_string(),
                    _ => return Err("bad for loop variable".into()),
                };
                self.pos += 1;
                self.skip_newlines();
                let mut words = Vec::new();
                if self.keyword() == Some("in") {
                    self.pos += 1;
                    while let Some(Token::Word(w)) = self.tokens.get(self.pos) {
                        words.push(w.clone());
                        self.pos += 1;
                    }
                }
                if matches!(self.op(), Some(Op::Seq | Op::Newline)) {
                    self.pos += 1;
                }
                self.skip_newlines();
                self.expect("do")?;
                let body = self.list(&["done"])?;
                self.expect("done")?;
                Ok(Cmd::For { var, words, body })
            }
            Some("if") => {
                self.pos += 1;
                let mut branches = Vec::new();
                let mut otherwise = None;
                loop {
                    let cond = self.list(&["then"])?;
                    self.expect("then")?;
                    let body = self.list(&["elif", "else", "fi"])?;
                    branches.push((cond, body));
                    match self.keyword() {
                        Some("elif") => self.pos += 1,
                        Some("else") => {
                            self.pos += 1;
                            otherwise = Some(self.list(&["fi"])?);
                            self.expect("fi")?;
                            break;
                        }
                        _ => {
                            self.expect("fi")?;
                            break;
                        }
                    }
                }
                Ok(Cmd::If {
                    branches: Arc::new(branches),
                    otherwise,
                })
            }
            Some(k) if KEYWORDS.contains(&k) => Err(format!("unexpected \"{k}\"")),
            _ => {
                let mut words = Vec::new();
                while let Some(Token::Word(w)) = self.tokens.get(self.pos) {
                    words.push(w.clone());
                    self.pos += 1;
                }
                Ok(Cmd::Simple(words))
            }
        }
    }
}

/// Whether `exit` appears anywhere in `block`.
fn exits(block: &Block) -> bool {
    block.iter().any(|(_, cmd)| match cmd {
        Cmd::Simple(words) => words[0].literal() == Some("exit"),
        Cmd::Loop { cond, body, .. } => exits(cond) || exits(body),
        Cmd::For { body, .. } => exits(body),
        Cmd::If {
            branches,
            otherwise,
        } => {
            branches.iter().any(|(c, b)| exits(c) || exits(b))
                || otherwise.as_ref().is_some_and(exits)
        }
    })
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `NAME=value` as a name and the value's word.
fn assignment(w: &Word) -> Option<(String, Word)> {
    let Some(Piece::Text(first)) = w.0.first() else {
        return None;
    };
    let (name, rest) = first.split_once('=')?;
    if !is_name(name) {
        return None;
    }
    let mut value = Vec::new();
    if !rest.is_empty() {
        value.push(Piece::Text(rest.to_string()));
    }
    value.extend(w.0[1..].iter().cloned());
    Some((name.to_string(), Word(value)))
}

/// Parses `script`, refusing anything the machine cannot run: unknown commands, commands named
/// by a variable, syntax it does not know.
fn parse(script: &str) -> Result<Block, String> {
    let tokens = tokenize(script)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let block = parser.list(&[])?;
    if let Some(k) = parser.keyword() {
        return Err(format!("unexpected \"{k}\""));
    }
    check(&block)?;
    Ok(block)
}

fn check(block: &Block) -> Result<(), String> {
    for (_, cmd) in block.iter() {
        match cmd {
            Cmd::Simple(words) => {
                if words.iter().all(|w| assignment(w).is_some()) {
                    continue;
                }
                if assignment(&words[0]).is_some() {
                    return Err("assignments before a command are not simulated".into());
                }
                let name = words[0]
                    .literal()
                    .ok_or("a command named by a variable is not simulated")?;
                if !BUILTINS.contains(&name) && command_name(name).is_none() {
                    return Err(format!("{name}: not simulated"));
                }
            }
            Cmd::Loop { cond, body, .. } => {
                check(cond)?;
                check(body)?;
            }
            Cmd::For { body, .. } => check(body)?,
            Cmd::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches.iter() {
                    check(cond)?;
                    check(body)?;
                }
                if let Some(o) = otherwise {
                    check(o)?;
                }
            }
        }
    }
    Ok(())
}

/// The executable a script may run by `name` (also by path, `/bin/echo`).
fn command_name(name: &str) -> Option<&'static str> {
    executable(name).filter(|e| *e == "sleep" || PRINTING.contains(e))
}

/// Where a loop or `if` is in its round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// About to test the condition; `true` once the body has run at least once.
    Head(bool),
    /// The condition has run: `$?` decides.
    Tested,
}

/// The state that decides everything a loop does from its head on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    env: Vec<(String, String)>,
    last: i32,
    partial: String,
}

#[derive(Clone, Debug)]
enum Frame {
    Block {
        block: Block,
        pos: usize,
    },
    Loop {
        until: bool,
        endless: bool,
        cond: Block,
        body: Block,
        phase: Phase,
        status: i32,
        /// The state at the previous head, when and after how many lines it was there.
        seen: Option<(Snapshot, Duration, u64)>,
        /// Once the head recurs in the same state: the round's length and lines.
        cycle: Option<(Duration, u64)>,
    },
    For {
        var: String,
        values: Vec<String>,
        next: usize,
        body: Block,
        status: i32,
    },
    If {
        branches: Arc<Vec<(Block, Block)>>,
        otherwise: Option<Block>,
        branch: usize,
        phase: Phase,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Exit(i32),
    /// `sleep infinity`, or a loop that spins without sleeping.
    Forever,
}

/// What a program does next, as offsets from when the container started running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A line of output (stdout and stderr go to the same log).
    Line { at: Duration, text: String },
    /// The script ended with this exit code.
    Exit { at: Duration, code: i32 },
    /// Nothing more will ever be written, and it never exits.
    Forever,
    /// Nothing happens before `until` (it sleeps past the horizon asked about).
    Idle { until: Duration },
}

/// A container command being run: the machine and what it has produced but not yet handed out.
#[derive(Clone, Debug)]
pub struct Program {
    shell: Shell,
    last: i32,
    stack: Vec<Frame>,
    offset: Duration,
    partial: String,
    queue: VecDeque<(Duration, String)>,
    /// Lines produced so far, for the length of a loop's round.
    lines: u64,
    /// Commands run since simulated time last moved.
    busy: u32,
    end: Option<End>,
    /// Fast-forward bound: whole rounds of a repeating loop before this are skipped, keeping
    /// `keep` lines' worth.
    horizon: Duration,
    keep: u64,
    /// Set once a loop is known to repeat forever.
    cycling: bool,
    peeked: Option<Event>,
}

impl Program {
    /// The program of `container` in `pod`: its `command` and `args`, with the kubelet's
    /// `$(VAR)` references to literal env values expanded. `None` when the interpreter cannot
    /// run it (no `command`, an unknown executable, a script it does not understand, stdin).
    pub fn for_container(pod: &Pod, container: &Container) -> Option<Program> {
        let command = container.command.as_ref().filter(|c| !c.is_empty())?;
        if container.stdin == Some(true) {
            return None;
        }
        let env: Vec<(String, String)> = container
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect();
        let argv: Vec<String> = command
            .iter()
            .chain(container.args.iter().flatten())
            .map(|a| expand_references(a, &env))
            .collect();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        Program::from_argv(Shell::new(name, env, Duration::ZERO), &argv)
    }

    /// The program that `argv` runs in a container with `shell`'s environment.
    pub fn from_argv(shell: Shell, argv: &[String]) -> Option<Program> {
        let name = executable(argv.first()?)?;
        let block = if name == "sh" {
            match argv.get(1).map(String::as_str) {
                // No stdin: `sh` reads an empty script and exits 0.
                None => Arc::new(Vec::new()),
                Some("-c") => parse(argv.get(2)?).ok()?,
                Some(_) => return None,
            }
        } else {
            command_name(name)?;
            let words = argv
                .iter()
                .map(|a| Word(vec![Piece::Text(a.clone())]))
                .collect();
            Arc::new(vec![(Op::Seq, Cmd::Simple(words))])
        };
        Some(Program {
            shell,
            last: 0,
            stack: vec![Frame::Block { block, pos: 0 }],
            offset: Duration::ZERO,
            partial: String::new(),
            queue: VecDeque::new(),
            lines: 0,
            busy: 0,
            end: None,
            horizon: Duration::ZERO,
            keep: 0,
            cycling: false,
            peeked: None,
        })
    }

    /// `sh -c SCRIPT` for `kubectl exec` when SCRIPT has loops or `if`s, which the line
    /// interpreter of `shell.rs` does not know; `None` for any other script.
    pub(crate) fn compound(shell: &Shell, script: &str) -> Option<Program> {
        let block = parse(script).ok()?;
        if block.iter().all(|(_, cmd)| matches!(cmd, Cmd::Simple(_))) {
            return None;
        }
        let mut program =
            Program::from_argv(shell.clone(), &["sh".into(), "-c".into(), script.into()])?;
        // Every line is written live, so no round may be skipped.
        program.keep = u64::MAX;
        Some(program)
    }

    /// When (after it starts running) and with which code the program exits; `None` when it
    /// never does. Runs a copy, so the program itself is untouched.
    pub fn outcome(&self) -> Option<(Duration, i32)> {
        let mut p = self.clone();
        let mut steps = 0u64;
        loop {
            while p.queue.pop_front().is_some() {}
            match p.end {
                Some(End::Exit(code)) => return Some((p.offset, code)),
                Some(End::Forever) => return None,
                None if p.cycling || steps >= OUTCOME_LIMIT => return None,
                None => {}
            }
            if matches!(p.stack.last(), Some(Frame::Loop { endless: true, .. })) {
                return None;
            }
            p.step();
            steps += 1;
        }
    }

    /// The next event, running the machine while nothing happens up to `horizon`.
    pub(crate) fn next(&mut self, horizon: Duration) -> Event {
        self.horizon = self.horizon.max(horizon);
        loop {
            if let Some((at, text)) = self.queue.pop_front() {
                return Event::Line { at, text };
            }
            match self.end {
                Some(End::Exit(code)) => {
                    return Event::Exit {
                        at: self.offset,
                        code,
                    }
                }
                Some(End::Forever) => return Event::Forever,
                None => {}
            }
            if self.offset > horizon {
                return Event::Idle { until: self.offset };
            }
            self.step();
        }
    }

    /// The lines written up to `until` that were not handed out yet. Of a loop repeating
    /// forever only about the last `keep` lines before `until` are produced at all.
    pub fn lines_until(&mut self, until: Duration, keep: u64) -> Vec<(Duration, String)> {
        self.keep = keep;
        let mut out = Vec::new();
        loop {
            let event = match self.peeked.take() {
                Some(Event::Idle { .. }) | None => self.next(until),
                Some(e) => e,
            };
            match event {
                Event::Line { at, text } if at <= until => out.push((at, text)),
                other => {
                    self.peeked = Some(other);
                    return out;
                }
            }
        }
    }

    /// When the next line may be due, after [`Program::lines_until`]; `None` when no more
    /// lines come.
    pub fn next_line_at(&self) -> Option<Duration> {
        match self.peeked {
            Some(Event::Line { at, .. }) | Some(Event::Idle { until: at }) => Some(at),
            _ => None,
        }
    }

    fn write(&mut self, text: &str) {
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.queue
                .push_back((self.offset, line[..i].trim_end_matches('\r').to_string()));
            self.lines += 1;
        }
        if self.partial.len() > MAX_LINE {
            self.flush();
        }
    }

    /// A partial last line is still written when the program ends or stops for good.
    fn flush(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.queue.push_back((self.offset, line));
            self.lines += 1;
        }
    }

    fn finish(&mut self, end: End) {
        self.flush();
        self.end = Some(end);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            env: self.shell.env.clone(),
            last: self.last,
            partial: self.partial.clone(),
        }
    }

    /// Runs one command or one move between blocks.
    fn step(&mut self) {
        if self.end.is_some() {
            return;
        }
        self.busy += 1;
        if self.busy > BUSY_LIMIT {
            self.finish(End::Forever);
            return;
        }
        let last = self.last;
        let Some(top) = self.stack.last_mut() else {
            self.finish(End::Exit(last));
            return;
        };
        match top {
            Frame::Block { block, pos } => {
                let Some(i) = (*pos < block.len()).then_some(*pos) else {
                    self.stack.pop();
                    return;
                };
                *pos += 1;
                let block = block.clone();
                let (op, cmd) = &block[i];
                let runs = match op {
                    Op::And => last == 0,
                    Op::Or => last != 0,
                    Op::Seq | Op::Newline => true,
                };
                if runs {
                    self.enter(cmd);
                }
            }
            Frame::Loop { phase, .. } if *phase == Phase::Tested => {
                let Frame::Loop {
                    until,
                    body,
                    phase,
                    status,
                    ..
                } = top
                else {
                    unreachable!()
                };
                if (last == 0) != *until {
                    *phase = Phase::Head(true);
                    let body = body.clone();
                    self.stack.push(Frame::Block {
                        block: body,
                        pos: 0,
                    });
                } else {
                    self.last = *status;
                    self.stack.pop();
                }
            }
            Frame::Loop { .. } => self.loop_head(),
            Frame::For {
                var,
                values,
                next,
                body,
                status,
            } => {
                if *next > 0 {
                    *status = last;
                }
                match values.get(*next).cloned() {
                    Some(v) => {
                        *next += 1;
                        let (var, body) = (var.clone(), body.clone());
                        self.assign(&var, v);
                        self.stack.push(Frame::Block {
                            block: body,
                            pos: 0,
                        });
                    }
                    None => {
                        self.last = *status;
                        self.stack.pop();
                    }
                }
            }
            Frame::If {
                branches,
                otherwise,
                branch,
                phase,
            } => match *phase {
                Phase::Head(false) => {
                    *phase = Phase::Tested;
                    let cond = branches[*branch].0.clone();
                    self.stack.push(Frame::Block {
                        block: cond,
                        pos: 0,
                    });
                }
                Phase::Tested => {
                    let chosen = if last == 0 {
                        Some(branches[*branch].1.clone())
                    } else if *branch + 1 < branches.len() {
                        *branch += 1;
                        *phase = Phase::Head(false);
                        return;
                    } else {
                        otherwise.clone()
                    };
                    *phase = Phase::Head(true);
                    match chosen {
                        Some(block) => self.stack.push(Frame::Block { block, pos: 0 }),
                        None => self.last = 0,
                    }
                }
                // The chosen branch has run: its `$?` is the `if`'s.
                Phase::Head(true) => {
                    self.stack.pop();
                }
            },
        }
    }

    /// A loop at its head: notice when it repeats, skip rounds before the horizon, then test.
    fn loop_head(&mut self) {
        let snapshot = self.snapshot();
        let (offset, lines, last) = (self.offset, self.lines, self.last);
        let (horizon, keep) = (self.horizon, self.keep);
        let Some(Frame::Loop {
            cond,
            phase,
            status,
            seen,
            cycle,
            ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        let Phase::Head(after_body) = *phase else {
            return;
        };
        if after_body {
            *status = last;
        }
        if cycle.is_none() {
            if let Some((prev, at, prev_lines)) = seen.as_ref() {
                if *prev == snapshot {
                    *cycle = Some((offset - *at, lines - prev_lines));
                }
            }
            *seen = Some((snapshot, offset, lines));
        }
        let mut skip = None;
        if let Some((period, per_round)) = *cycle {
            if period.is_zero() {
                self.finish(End::Forever);
                return;
            }
            // Leave enough rounds before the horizon to fill what the reader keeps.
            let leave = if per_round == 0 {
                0
            } else {
                keep.div_ceil(per_round).saturating_add(1)
            };
            let rounds = (horizon.saturating_sub(offset).as_nanos() / period.as_nanos()) as u64;
            let n = rounds.saturating_sub(leave);
            if n > 0 {
                skip = Some((period, per_round, n));
            }
        }
        *phase = Phase::Tested;
        let cond = cond.clone();
        let is_cycle = cycle.is_some();
        self.cycling |= is_cycle;
        if let Some((period, per_round, n)) = skip {
            let nanos = period.as_nanos().saturating_mul(u128::from(n));
            self.offset += Duration::from_nanos(nanos.min(u64::MAX as u128) as u64);
            self.lines += per_round.saturating_mul(n);
            // The head's record moves with the clock so the round's length stays right.
            if let Some(Frame::Loop { seen, .. }) = self.stack.last_mut() {
                if let Some((_, at, l)) = seen.as_mut() {
                    *at = self.offset;
                    *l = self.lines;
                }
            }
        }
        self.stack.push(Frame::Block {
            block: cond,
            pos: 0,
        });
    }

    fn enter(&mut self, cmd: &Cmd) {
        match cmd {
            Cmd::Simple(words) => self.simple(words),
            Cmd::Loop {
                until,
                cond,
                body,
                endless,
            } => self.stack.push(Frame::Loop {
                until: *until,
                endless: *endless,
                cond: cond.clone(),
                body: body.clone(),
                phase: Phase::Head(false),
                status: 0,
                seen: None,
                cycle: None,
            }),
            Cmd::For { var, words, body } => {
                let values = words
                    .iter()
                    .map(|w| w.expand(&self.shell, self.last))
                    .collect();
                self.stack.push(Frame::For {
                    var: var.clone(),
                    values,
                    next: 0,
                    body: body.clone(),
                    status: 0,
                });
            }
            Cmd::If {
                branches,
                otherwise,
            } => self.stack.push(Frame::If {
                branches: branches.clone(),
                otherwise: otherwise.clone(),
                branch: 0,
                phase: Phase::Head(false),
            }),
        }
    }

    fn assign(&mut self, name: &str, value: String) {
        match self.shell.env.iter_mut().rev().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.shell.env.push((name.to_string(), value)),
        }
    }

    fn simple(&mut self, words: &[Word]) {
        if words.iter().all(|w| assignment(w).is_some()) {
            for w in words {
                if let Some((name, value)) = assignment(w) {
                    let value = value.expand(&self.shell, self.last);
                    self.assign(&name, value);
                }
            }
            self.last = 0;
            return;
        }
        let argv: Vec<String> = words
            .iter()
            .map(|w| w.expand(&self.shell, self.last))
            .collect();
        let args = &argv[1..];
        match argv[0].as_str() {
            "exit" => {
                let code = match args.first() {
                    None => self.last,
                    Some(n) => match n.parse::<i64>() {
                        Ok(n) => (n & 0xff) as i32,
                        Err(_) => {
                            self.write(&format!("sh: exit: Illegal number: {n}\n"));
                            2
                        }
                    },
                };
                self.finish(End::Exit(code));
            }
            "export" => {
                for w in &words[1..] {
                    if let Some((name, value)) = assignment(w) {
                        let value = value.expand(&self.shell, self.last);
                        self.assign(&name, value);
                    }
                }
                self.last = 0;
            }
            name => match command_name(name) {
                Some("sleep") => match shell::sleep_duration(args) {
                    Ok(Some(d)) => {
                        self.offset += d;
                        if !d.is_zero() {
                            self.busy = 0;
                        }
                        self.last = 0;
                    }
                    Ok(None) => self.finish(End::Forever),
                    Err(message) => {
                        self.write(&format!("{message}\n"));
                        self.last = 1;
                    }
                },
                Some(exe) => {
                    let out = shell::simple(&self.shell, exe, args).unwrap_or_default();
                    self.write(&out.stdout);
                    self.write(&out.stderr);
                    self.last = out.code;
                }
                // `check` let only known commands through; `:` is `true`.
                None => self.last = 0,
            },
        }
    }
}

/// The kubelet's expansion of `$(VAR)` in `command` and `args`: references to the container's
/// (literal) env values are replaced, `$$` is a literal `$`, anything else is left as written.
fn expand_references(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|a| a.split_once(')'))
            .filter(|(name, _)| is_name(name))
        {
            match env.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn program(script: &str) -> Program {
        let shell = Shell::new(
            "web-0",
            vec![("NAME".into(), "kube".into())],
            Duration::ZERO,
        );
        Program::from_argv(shell, &["sh".into(), "-c".into(), script.into()])
            .unwrap_or_else(|| panic!("{script:?} is interpretable"))
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Every line up to `until`, with its second.
    fn lines(p: &mut Program, until: f64) -> Vec<(f64, String)> {
        p.lines_until(secs(until), 1000)
            .into_iter()
            .map(|(at, text)| (at.as_secs_f64(), text))
            .collect()
    }

    #[test]
    fn a_script_prints_sleeps_and_exits() {
        let mut p = program("echo hello; sleep 2; echo \"bye $NAME\"; exit 3");
        assert_eq!(p.outcome(), Some((secs(2.0), 3)));
        assert_eq!(lines(&mut p, 1.0), [(0.0, "hello".to_string())]);
        assert_eq!(p.next_line_at(), Some(secs(2.0)));
        assert_eq!(lines(&mut p, 5.0), [(2.0, "bye kube".to_string())]);
        assert_eq!(p.next_line_at(), None, "it exited");
    }

    #[test]
    fn the_exit_code_is_the_last_status_unless_exit_says() {
        assert_eq!(program("true").outcome(), Some((Duration::ZERO, 0)));
        assert_eq!(program("false").outcome(), Some((Duration::ZERO, 1)));
        assert_eq!(
            program("sleep 0.5; false || exit 4").outcome(),
            Some((secs(0.5), 4))
        );
        assert_eq!(program("exit 300").outcome(), Some((Duration::ZERO, 44)));
        assert_eq!(program("sleep 1m").outcome(), Some((secs(60.0), 0)));
        assert_eq!(program("sleep x").outcome(), Some((Duration::ZERO, 1)));
        assert_eq!(program("").outcome(), Some((Duration::ZERO, 0)));
    }

    #[test]
    fn sleeping_forever_or_looping_never_exits() {
        assert_eq!(program("echo up; sleep infinity").outcome(), None);
        assert_eq!(program("while true; do sleep 1; done").outcome(), None);
        assert_eq!(program("while :; do :; done").outcome(), None, "spins");
        assert_eq!(
            program("until false; do echo x; sleep 1; done").outcome(),
            None
        );
    }

    #[test]
    fn counters_count_and_endless_loops_are_known_at_once() {
        let mut p = program("i=0; while true; do echo \"tick $i\"; i=$((i+1)); sleep 1; done");
        assert_eq!(p.outcome(), None);
        let text: Vec<String> = lines(&mut p, 2.0).into_iter().map(|l| l.1).collect();
        assert_eq!(text, ["tick 0", "tick 1", "tick 2"]);
        let counted = program("for n in 1 2 3; do sleep $((n * 2)); done; exit $((n + 1))");
        assert_eq!(counted.outcome(), Some((secs(12.0), 4)));
        let leaves = program("i=0; while true; do i=$((i+1)); sleep 1; exit 5; done");
        assert_eq!(leaves.outcome(), Some((secs(1.0), 5)), "exit in the body");
    }

    #[test]
    fn a_loop_writes_a_line_per_round_and_old_rounds_are_skipped() {
        let mut p = program("while true; do echo tick; sleep 1; done");
        let first = lines(&mut p, 2.5);
        assert_eq!(first.len(), 3, "{first:?}");
        assert_eq!(first[2], (2.0, "tick".to_string()));
        // A reader that keeps 5 lines, a day later: only the last rounds are produced.
        let later = p.lines_until(secs(86_400.0), 5);
        assert!(later.len() < 20, "{}", later.len());
        assert_eq!(later.last().unwrap().0, secs(86_400.0));
        assert!(later.windows(2).all(|w| w[1].0 - w[0].0 == secs(1.0)));
    }

    #[test]
    fn for_if_and_variables_follow_sh() {
        let mut p = program(
            "for i in 1 2 3; do echo \"n=$i\"; done\nif false; then echo no; elif true; then echo yes; else echo no; fi\nX=a; export Y=$X-b; echo $X $Y",
        );
        let text: Vec<String> = lines(&mut p, 0.0).into_iter().map(|l| l.1).collect();
        assert_eq!(text, ["n=1", "n=2", "n=3", "yes", "a a-b"]);
        let mut q = program("i=0; for i in a b; do sleep 1; done; echo $i; false && echo no");
        assert_eq!(q.outcome(), Some((secs(2.0), 1)));
        assert_eq!(lines(&mut q, 3.0), [(2.0, "b".to_string())]);
    }

    #[test]
    fn printf_echo_and_partial_lines() {
        let mut p = program(
            "printf '%s=%d\\n' a 1 b 2; printf 'no newline'; echo -e 'x\\ty'; echo -n tail",
        );
        assert_eq!(p.outcome(), Some((Duration::ZERO, 0)));
        let text: Vec<String> = lines(&mut p, 0.0).into_iter().map(|l| l.1).collect();
        assert_eq!(text, ["a=1", "b=2", "no newlinex\ty", "tail"]);
        assert_eq!(
            shell::printf_text("[%-3s|%3s] %%", &["a".into(), "b".into()]),
            "[a  |  b] %"
        );
    }

    #[test]
    fn what_it_does_not_know_is_not_interpretable() {
        let shell = || Shell::new("p", Vec::new(), Duration::ZERO);
        for script in [
            "nginx -g 'daemon off;'",
            "echo a | grep a",
            "echo a > /tmp/x",
            "echo $(date)",
            "$CMD",
            "while true; do echo; done; done",
            "if true; then echo",
            "FOO=1 echo",
            "sh -c 'exit 1'",
            "trap 'exit 0' TERM; sleep 10",
            &"while true; do ".repeat(10_000),
            &format!("{}true{}", "if true; then ".repeat(40), "; fi".repeat(40)),
        ] {
            assert!(
                Program::from_argv(shell(), &["sh".into(), "-c".into(), script.into()]).is_none(),
                "{script}"
            );
        }
        assert!(Program::from_argv(shell(), &["nginx".into()]).is_none());
        assert!(Program::from_argv(shell(), &["exit".into(), "1".into()]).is_none());
        let direct = Program::from_argv(shell(), &["/bin/sleep".into(), "3".into()]).unwrap();
        assert_eq!(direct.outcome(), Some((secs(3.0), 0)));
        let echo = Program::from_argv(shell(), &["echo".into(), "$HOME".into()]).unwrap();
        assert_eq!(
            echo.clone().lines_until(Duration::ZERO, 10)[0].1,
            "$HOME",
            "no shell, no expansion"
        );
    }

    #[test]
    fn a_container_runs_command_and_args_with_kubelet_references() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "command": ["echo"], "args": ["$(GREETING)", "$$(x)", "$(MISSING)"],
                "env": [{"name": "GREETING", "value": "hi"}]}]}}))
        .unwrap();
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let mut p = Program::for_container(&pod, c).unwrap();
        assert_eq!(p.outcome(), Some((Duration::ZERO, 0)));
        assert_eq!(p.lines_until(Duration::ZERO, 10)[0].1, "hi $(x) $(MISSING)");
        let mut script = c.clone();
        script.command = Some(vec!["/bin/sh".into(), "-c".into()]);
        script.args = Some(vec!["echo $GREETING from $HOSTNAME; exit 2".into()]);
        let mut s = Program::for_container(&pod, &script).unwrap();
        assert_eq!(s.outcome(), Some((Duration::ZERO, 2)));
        assert_eq!(s.lines_until(Duration::ZERO, 10)[0].1, "hi from p");
        let mut plain = c.clone();
        plain.command = None;
        assert!(
            Program::for_container(&pod, &plain).is_none(),
            "the image's own command"
        );
        let mut attached = c.clone();
        attached.stdin = Some(true);
        assert!(Program::for_container(&pod, &attached).is_none());
    }
}
