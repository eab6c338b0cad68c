//! The built-in command interpreter sim containers "run" for `kubectl exec`: no processes, a
//! handful of busybox-like commands whose output depends only on the pod (see `SIM.md`, Exec).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::script::{Event, Program};

/// What a sim container knows about itself when a command runs in it.
#[derive(Clone, Debug)]
pub struct Shell {
    /// The pod name, which is also the container's hostname.
    pub pod: String,
    /// `PATH`, `HOSTNAME`, the container's literal `env` values and `HOME`, in `env` order.
    pub env: Vec<(String, String)>,
    /// The longest a `sleep` waits, so a forgotten `sleep 3600` cannot pin a test.
    pub max_sleep: Duration,
}

/// The image's `PATH`, as most images set it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Shell {
    /// The shell of container env `env` (name, literal value) in pod `pod`.
    pub fn new(pod: &str, env: Vec<(String, String)>, max_sleep: Duration) -> Shell {
        let mut all = vec![
            ("PATH".to_string(), DEFAULT_PATH.to_string()),
            ("HOSTNAME".to_string(), pod.to_string()),
        ];
        all.extend(env);
        all.push(("HOME".to_string(), "/root".to_string()));
        Shell {
            pod: pod.to_string(),
            env: all,
            max_sleep,
        }
    }

    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        // The last definition wins, as when a container's env repeats a name.
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A command's standard streams: output as chunks, stdin as chunks until EOF (`None` when the
/// exec did not ask for stdin, which reads as an immediate EOF).
pub struct Io {
    pub out: mpsc::Sender<(Stream, Bytes)>,
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Bytes read from stdin but not consumed yet (`sh` reads line by line).
    pending: Vec<u8>,
}

impl Io {
    pub fn new(out: mpsc::Sender<(Stream, Bytes)>, stdin: Option<mpsc::Receiver<Bytes>>) -> Io {
        Io {
            out,
            stdin,
            pending: Vec::new(),
        }
    }

    /// Writes `data`; false when nobody reads any more (the client left).
    async fn write(&self, stream: Stream, data: impl Into<Bytes>) -> bool {
        self.out.send((stream, data.into())).await.is_ok()
    }

    async fn read(&mut self) -> Option<Bytes> {
        if !self.pending.is_empty() {
            return Some(Bytes::from(std::mem::take(&mut self.pending)));
        }
        self.stdin.as_mut()?.recv().await
    }

    /// The next line of stdin without its newline; the rest at EOF; `None` after EOF.
    async fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            match self.stdin.as_mut() {
                Some(rx) => match rx.recv().await {
                    Some(chunk) => self.pending.extend_from_slice(&chunk),
                    None => self.stdin = None,
                },
                None if self.pending.is_empty() => return None,
                None => {
                    let rest = std::mem::take(&mut self.pending);
                    return Some(String::from_utf8_lossy(&rest).into_owned());
                }
            }
        }
    }
}

/// How an exec ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and exited with this code.
    Exited(i32),
    /// No such executable: the runtime refuses to start it (an error, not an exit code).
    NotFound(String),
    /// The client went away before the command finished.
    Abandoned,
}

/// Commands that exist as executables in the sim image (`/bin/<name>` works too).
const EXECUTABLES: &[&str] = &[
    "cat", "echo", "env", "false", "hostname", "printenv", "printf", "sh", "sleep", "true",
];

pub(crate) fn executable(arg0: &str) -> Option<&'static str> {
    let name = [
        "/usr/local/bin/",
        "/usr/bin/",
        "/bin/",
        "/usr/sbin/",
        "/sbin/",
    ]
    .iter()
    .find_map(|dir| arg0.strip_prefix(dir))
    .unwrap_or(arg0);
    EXECUTABLES.iter().copied().find(|e| *e == name)
}

/// Runs `argv` as the container runtime would start it.
pub async fn run(shell: &Shell, argv: &[String], io: &mut Io) -> Outcome {
    let Some(arg0) = argv.first() else {
        return Outcome::NotFound(String::new());
    };
    let Some(name) = executable(arg0) else {
        return Outcome::NotFound(arg0.clone());
    };
    match command(shell, name, &argv[1..], io).await {
        Flow::Next(code) | Flow::Exit(code) => Outcome::Exited(code),
        Flow::Gone => Outcome::Abandoned,
    }
}

/// What happens after a command.
enum Flow {
    Next(i32),
    /// `exit`: the shell stops with this code.
    Exit(i32),
    Gone,
}

macro_rules! write_or_gone {
    ($io:expr, $stream:expr, $data:expr) => {
        if !$io.write($stream, $data).await {
            return Flow::Gone;
        }
    };
}

async fn command(shell: &Shell, name: &str, args: &[String], io: &mut Io) -> Flow {
    match name {
        "cat" if args.is_empty() || args.iter().any(|a| a == "-") => cat(shell, args, io).await,
        "sleep" => sleep(shell, args, io).await,
        "sh" => sh(shell, args, io).await,
        _ => {
            let out = simple(shell, name, args)
                .unwrap_or_else(|| unreachable!("{name} is listed in EXECUTABLES"));
            if !out.stdout.is_empty() {
                write_or_gone!(io, Stream::Stdout, out.stdout);
            }
            if !out.stderr.is_empty() {
                write_or_gone!(io, Stream::Stderr, out.stderr);
            }
            Flow::Next(out.code)
        }
    }
}

/// What a command that needs neither stdin nor time writes, and its exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Runs one of the commands that only print (`echo`, `printf`, `hostname`, `env`, `printenv`,
/// `true`, `false`, `cat` of files); `None` for any other command. Shared by `kubectl exec` and
/// the container command interpreter (`script.rs`) so both print the same.
pub(crate) fn simple(shell: &Shell, name: &str, args: &[String]) -> Option<Output> {
    let ok = |stdout: String| Output {
        stdout,
        ..Output::default()
    };
    Some(match name {
        "echo" => ok(echo_text(args)),
        "printf" => match args.split_first() {
            Some((format, rest)) => ok(printf_text(format, rest)),
            None => Output {
                stderr: "printf: usage: printf FORMAT [ARGUMENT...]\n".into(),
                code: 1,
                ..Output::default()
            },
        },
        "hostname" => ok(format!("{}\n", shell.pod)),
        "env" | "printenv" if args.is_empty() => ok(shell
            .env
            .iter()
            .map(|(n, v)| format!("{n}={v}\n"))
            .collect()),
        "printenv" => {
            let mut out = ok(String::new());
            for name in args {
                match shell.var(name) {
                    Some(v) => out.stdout.push_str(&format!("{v}\n")),
                    None => out.code = 1,
                }
            }
            out
        }
        "env" => Output {
            stderr: "env: running a command through env is not simulated\n".into(),
            code: 125,
            ..Output::default()
        },
        "true" | ":" => ok(String::new()),
        "false" => Output {
            code: 1,
            ..Output::default()
        },
        "cat" => {
            let mut out = ok(String::new());
            for file in args {
                match file.as_str() {
                    // A container's stdin is empty unless it asks for one.
                    "-" => {}
                    "/etc/hostname" => out.stdout.push_str(&format!("{}\n", shell.pod)),
                    other => {
                        out.stderr.push_str(&format!(
                            "cat: can't open '{other}': No such file or directory\n"
                        ));
                        out.code = 1;
                    }
                }
            }
            out
        }
        _ => return None,
    })
}

/// busybox `echo`: `-n` drops the newline, `-e` interprets backslash escapes.
fn echo_text(args: &[String]) -> String {
    let (mut newline, mut escapes, mut rest) = (true, false, args);
    while let Some(flag) = rest.first().filter(|a| {
        a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| matches!(c, 'n' | 'e' | 'E'))
    }) {
        for c in flag[1..].chars() {
            match c {
                'n' => newline = false,
                'e' => escapes = true,
                _ => escapes = false,
            }
        }
        rest = &rest[1..];
    }
    let mut text = rest.join(" ");
    if escapes {
        let (t, stop) = unescape(&text);
        text = t;
        if stop {
            return text;
        }
    }
    if newline {
        text.push('\n');
    }
    text
}

/// Backslash escapes as `printf` and `echo -e` read them; the flag is set by `\c` (stop here).
fn unescape(s: &str) -> (String, bool) {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('a') => out.push('\u{7}'),
            Some('c') => return (out, true),
            Some('0') => {
                let mut code = 0u32;
                for _ in 0..3 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.extend(char::from_u32(code));
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    (out, false)
}

/// busybox `printf`: `%s`, `%d`/`%i`, `%c`, `%b` and `%%` with optional `-` and width, backslash
/// escapes in the format; the format is reused while arguments remain, missing ones read as
/// empty (or 0).
pub(crate) fn printf_text(format: &str, args: &[String]) -> String {
    let (format, _) = unescape(format);
    let mut out = String::new();
    let mut next = 0;
    loop {
        let mut used = false;
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut left = false;
            let mut width = String::new();
            while let Some(&f) = chars.peek() {
                match f {
                    '-' => left = true,
                    '0'..='9' => width.push(f),
                    _ => break,
                }
                chars.next();
            }
            let Some(conv) = chars.next() else {
                out.push('%');
                break;
            };
            let mut arg = || {
                used = true;
                next += 1;
                args.get(next - 1).cloned().unwrap_or_default()
            };
            let text = match conv {
                '%' => "%".to_string(),
                's' => arg(),
                'b' => unescape(&arg()).0,
                'c' => arg().chars().next().map(String::from).unwrap_or_default(),
                'd' | 'i' => {
                    let a = arg();
                    a.trim().parse::<i64>().unwrap_or(0).to_string()
                }
                other => format!("%{other}"),
            };
            let width: usize = width.parse().unwrap_or(0);
            let pad = " ".repeat(width.saturating_sub(text.chars().count()));
            if left {
                out.push_str(&text);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&text);
            }
        }
        if !used || next >= args.len() {
            return out;
        }
    }
}

/// `sleep`'s arguments (summed, with busybox's `s`/`m`/`h`/`d` suffixes) as a duration;
/// `Ok(None)` for `sleep infinity`; `Err` is the message busybox prints.
pub(crate) fn sleep_duration(args: &[String]) -> Result<Option<Duration>, String> {
    if args.is_empty() {
        return Err("sleep: missing operand".into());
    }
    let mut total = 0.0f64;
    for arg in args {
        if arg == "infinity" || arg == "inf" {
            return Ok(None);
        }
        let (number, unit) = match arg.char_indices().last() {
            Some((i, c @ ('s' | 'm' | 'h' | 'd'))) => (&arg[..i], c),
            _ => (arg.as_str(), 's'),
        };
        let scale = match unit {
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            _ => 1.0,
        };
        match number
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            Some(v) => total += v * scale,
            None => return Err(format!("sleep: invalid number '{arg}'")),
        }
    }
    // Anything beyond a century is as good as forever, and stays within Duration.
    Ok((total < 3.2e9).then(|| Duration::from_secs_f64(total)))
}

async fn cat(shell: &Shell, args: &[String], io: &mut Io) -> Flow {
    let stdin_only = [String::from("-")];
    let files = if args.is_empty() { &stdin_only } else { args };
    let mut code = 0;
    for file in files {
        if file == "-" {
            while let Some(chunk) = io.read().await {
                write_or_gone!(io, Stream::Stdout, chunk);
            }
            continue;
        }
        let out = simple(shell, "cat", std::slice::from_ref(file)).unwrap_or_default();
        if !out.stdout.is_empty() {
            write_or_gone!(io, Stream::Stdout, out.stdout);
        }
        if !out.stderr.is_empty() {
            write_or_gone!(io, Stream::Stderr, out.stderr);
        }
        code = code.max(out.code);
    }
    Flow::Next(code)
}

async fn sleep(shell: &Shell, args: &[String], io: &mut Io) -> Flow {
    let wait = match sleep_duration(args) {
        Ok(d) => d.unwrap_or(shell.max_sleep).min(shell.max_sleep),
        Err(message) => {
            write_or_gone!(io, Stream::Stderr, format!("{message}\n"));
            return Flow::Next(1);
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(wait) => Flow::Next(0),
        _ = io.out.closed() => Flow::Gone,
    }
}

/// `sh -c SCRIPT`, or `sh` reading its script from stdin line by line.
async fn sh(shell: &Shell, args: &[String], io: &mut Io) -> Flow {
    let mut last = 0;
    match args.first().map(String::as_str) {
        Some("-c") => {
            let Some(script) = args.get(1) else {
                write_or_gone!(io, Stream::Stderr, "sh: -c requires an argument\n");
                return Flow::Next(2);
            };
            if let Some(program) = Program::compound(shell, script) {
                return run_program(shell, program, io).await;
            }
            return match run_script(shell, script, &mut last, io).await {
                Flow::Next(c) | Flow::Exit(c) => Flow::Next(c),
                Flow::Gone => Flow::Gone,
            };
        }
        Some(other) => {
            write_or_gone!(
                io,
                Stream::Stderr,
                format!("sh: can't open '{other}': No such file or directory\n")
            );
            return Flow::Next(2);
        }
        None => {}
    }
    while let Some(line) = io.read_line().await {
        match run_script(shell, &line, &mut last, io).await {
            Flow::Next(_) => {}
            Flow::Exit(c) => return Flow::Next(c),
            Flow::Gone => return Flow::Gone,
        }
    }
    Flow::Next(last)
}

/// Runs a script with loops or `if`s through the container command interpreter, in real time:
/// each line is written when it is due, and the whole run lasts at most `max_sleep` (then it
/// ends with 0, as a capped `sleep` does). Its output all goes to stdout.
async fn run_program(shell: &Shell, mut program: Program, io: &mut Io) -> Flow {
    let start = tokio::time::Instant::now();
    loop {
        let (at, line, code) = match program.next(shell.max_sleep) {
            Event::Line { at, text } => (at, Some(text), None),
            Event::Exit { at, code } => (at, None, Some(code)),
            Event::Forever | Event::Idle { .. } => (shell.max_sleep, None, Some(0)),
        };
        tokio::select! {
            _ = tokio::time::sleep_until(start + at.min(shell.max_sleep)) => {}
            _ = io.out.closed() => return Flow::Gone,
        }
        if let Some(text) = line {
            write_or_gone!(io, Stream::Stdout, format!("{text}\n"));
        }
        if let Some(code) = code {
            return Flow::Next(code);
        }
    }
}

/// Runs one script (a line of `;`, `&&` and `||` separated commands); `last` is `$?`.
async fn run_script(shell: &Shell, script: &str, last: &mut i32, io: &mut Io) -> Flow {
    let tokens = match tokenize(script) {
        Ok(t) => t,
        Err(e) => {
            write_or_gone!(io, Stream::Stderr, format!("sh: syntax error: {e}\n"));
            *last = 2;
            return Flow::Next(2);
        }
    };
    let mut skip = false;
    let mut words: Vec<Word> = Vec::new();
    let mut items = tokens.into_iter().peekable();
    loop {
        let token = items.next();
        let (end_of_command, op) = match &token {
            Some(Token::Word(w)) => {
                words.push(w.clone());
                (false, None)
            }
            Some(Token::Op(op)) => (true, Some(*op)),
            None => (true, None),
        };
        // An empty line neither runs anything nor ends a pending `&&`/`||`.
        if !end_of_command || (words.is_empty() && op == Some(Op::Newline)) {
            continue;
        }
        if !words.is_empty() && !skip {
            let argv: Vec<String> = words.iter().map(|w| w.expand(shell, *last)).collect();
            match builtin_or_command(shell, &argv, io).await {
                Flow::Next(c) => *last = c,
                other => return other,
            }
        } else if words.is_empty() && op.is_some() {
            write_or_gone!(
                io,
                Stream::Stderr,
                format!(
                    "sh: syntax error: unexpected \"{}\"\n",
                    op.unwrap_or(Op::Seq).text()
                )
            );
            *last = 2;
            return Flow::Next(2);
        }
        words.clear();
        // A skipped command leaves `$?` alone, so `false && b || c` runs c, as in POSIX sh.
        skip = match op {
            Some(Op::And) => *last != 0,
            Some(Op::Or) => *last == 0,
            Some(Op::Seq | Op::Newline) => false,
            None => return Flow::Next(*last),
        };
    }
}

async fn builtin_or_command(shell: &Shell, argv: &[String], io: &mut Io) -> Flow {
    let name = argv[0].as_str();
    if name == "exit" {
        return match argv.get(1) {
            None => Flow::Exit(0),
            Some(n) => match n.parse::<i64>() {
                Ok(n) => Flow::Exit((n & 0xff) as i32),
                Err(_) => {
                    write_or_gone!(
                        io,
                        Stream::Stderr,
                        format!("sh: exit: Illegal number: {n}\n")
                    );
                    Flow::Exit(2)
                }
            },
        };
    }
    match executable(name) {
        Some(exe) => Box::pin(command(shell, exe, &argv[1..], io)).await,
        None => {
            write_or_gone!(io, Stream::Stderr, format!("sh: {name}: not found\n"));
            Flow::Next(127)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Seq,
    And,
    Or,
    /// A line break: ends a command like `;`, but may also stand alone (empty lines).
    Newline,
}

impl Op {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Op::Seq => ";",
            Op::And => "&&",
            Op::Or => "||",
            Op::Newline => "newline",
        }
    }
}

/// Pieces of a word: literal text, or a variable to expand (`$NAME`, `${NAME}`, `$?`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Var(String),
    /// `$((EXPR))`: integer arithmetic.
    Arith(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) Vec<Piece>);

impl Word {
    fn text(&mut self, c: char) {
        match self.0.last_mut() {
            Some(Piece::Text(t)) => t.push(c),
            _ => self.0.push(Piece::Text(c.to_string())),
        }
    }

    /// The word's text when it has no variables (a command name, a keyword).
    pub(crate) fn literal(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }

    pub(crate) fn expand(&self, shell: &Shell, last: i32) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Var(v) if v == "?" => last.to_string(),
                Piece::Var(v) => shell.var(v).unwrap_or("").to_string(),
                // A bad expression reads as 0 rather than aborting the script.
                Piece::Arith(e) => arithmetic(e, shell, last).unwrap_or(0).to_string(),
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Word(Word),
    Op(Op),
}

/// Splits a script into words and operators, honouring quotes, backslashes and `#` comments.
/// Redirections, subshells and command substitution are refused rather than taken as text.
pub(crate) fn tokenize(script: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = script.chars().peekable();
    let mut word: Option<Word> = None;
    let flush = |word: &mut Option<Word>, tokens: &mut Vec<Token>| {
        if let Some(w) = word.take() {
            tokens.push(Token::Word(w));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => flush(&mut word, &mut tokens),
            '\n' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Op(Op::Newline));
            }
            '<' | '>' | '(' | ')' | '`' => {
                return Err(format!(
                    "{c:?} is not simulated (no redirections or subshells)"
                ))
            }
            '#' if word.is_none() => break,
            ';' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::Op(Op::Seq));
            }
            '&' | '|' => {
                if chars.peek() != Some(&c) {
                    return Err(format!("{c:?} alone is not simulated (only && and ||)"));
                }
                chars.next();
                flush(&mut word, &mut tokens);
                tokens.push(Token::Op(if c == '&' { Op::And } else { Op::Or }));
            }
            '\'' => {
                let w = word.get_or_insert_with(Word::default);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.text(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(Word::default);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => w.text(e),
                            Some(other) => {
                                w.text('\\');
                                w.text(other);
                            }
                            None => return Err("unterminated quoted string".into()),
                        },
                        Some('$') => variable(&mut chars, w)?,
                        Some('`') => return Err("command substitution is not simulated".into()),
                        Some(c) => w.text(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '\\' => {
                if let Some(e) = chars.next() {
                    word.get_or_insert_with(Word::default).text(e);
                }
            }
            '$' => variable(&mut chars, word.get_or_insert_with(Word::default))?,
            c => word.get_or_insert_with(Word::default).text(c),
        }
    }
    flush(&mut word, &mut tokens);
    Ok(tokens)
}

fn variable(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    w: &mut Word,
) -> Result<(), String> {
    match chars.peek().copied() {
        Some('(') => {
            chars.next();
            if chars.next_if_eq(&'(').is_none() {
                return Err("command substitution is not simulated".into());
            }
            let mut expr = String::new();
            let mut depth = 0u32;
            loop {
                match chars.next() {
                    Some(')') if depth == 0 => {
                        if chars.next_if_eq(&')').is_none() {
                            return Err("$((…)) must end with ))".into());
                        }
                        break;
                    }
                    Some(c) => {
                        match c {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => {}
                        }
                        expr.push(c);
                    }
                    None => return Err("unterminated $((…))".into()),
                }
            }
            w.0.push(Piece::Arith(expr));
        }
        Some('?') => {
            chars.next();
            w.0.push(Piece::Var("?".into()));
        }
        Some('{') => {
            chars.next();
            let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
            w.0.push(Piece::Var(name));
        }
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {
            let mut name = String::new();
            while let Some(c) = chars
                .peek()
                .copied()
                .filter(|c| *c == '_' || c.is_ascii_alphanumeric())
            {
                name.push(c);
                chars.next();
            }
            w.0.push(Piece::Var(name));
        }
        _ => w.text('$'),
    }
    Ok(())
}

/// `$((EXPR))`: integers, variables (with or without `$`), `+ - * / %`, unary minus and
/// parentheses, with C precedence; `None` for anything else or a division by zero.
fn arithmetic(expr: &str, shell: &Shell, last: i32) -> Option<i64> {
    let mut tokens = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(d) = chars.next_if(|d| d.is_ascii_digit()) {
                n.push(d);
            }
            tokens.push(n);
        } else if c == '$' || c == '_' || c.is_ascii_alphabetic() {
            chars.next();
            if c == '$' && chars.next_if_eq(&'?').is_some() {
                tokens.push(last.to_string());
                continue;
            }
            let mut name = if c == '$' {
                String::new()
            } else {
                c.to_string()
            };
            while let Some(d) = chars.next_if(|d| *d == '_' || d.is_ascii_alphanumeric()) {
                name.push(d);
            }
            let value = shell.var(&name).unwrap_or("0").trim();
            tokens.push(if value.is_empty() { "0" } else { value }.to_string());
        } else if "+-*/%()".contains(c) {
            chars.next();
            tokens.push(c.to_string());
        } else {
            return None;
        }
    }
    // The evaluator recurses per token; a bound keeps a hostile expression off the stack.
    if tokens.len() > 256 {
        return None;
    }
    let mut pos = 0;
    let value = sum(&tokens, &mut pos)?;
    (pos == tokens.len()).then_some(value)
}

fn sum(t: &[String], pos: &mut usize) -> Option<i64> {
    let mut v = product(t, pos)?;
    while let Some(op) = t.get(*pos).filter(|o| *o == "+" || *o == "-") {
        *pos += 1;
        let r = product(t, pos)?;
        v = if op == "+" {
            v.wrapping_add(r)
        } else {
            v.wrapping_sub(r)
        };
    }
    Some(v)
}

fn product(t: &[String], pos: &mut usize) -> Option<i64> {
    let mut v = unary(t, pos)?;
    while let Some(op) = t
        .get(*pos)
        .filter(|o| ["*", "/", "%"].contains(&o.as_str()))
    {
        *pos += 1;
        let r = unary(t, pos)?;
        v = match op.as_str() {
            "*" => v.wrapping_mul(r),
            "/" => v.checked_div(r)?,
            _ => v.checked_rem(r)?,
        };
    }
    Some(v)
}

fn unary(t: &[String], pos: &mut usize) -> Option<i64> {
    let token = t.get(*pos)?;
    *pos += 1;
    match token.as_str() {
        "-" => unary(t, pos).map(i64::wrapping_neg),
        "+" => unary(t, pos),
        "(" => {
            let v = sum(t, pos)?;
            if t.get(*pos)? != ")" {
                return None;
            }
            *pos += 1;
            Some(v)
        }
        n => n.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell() -> Shell {
        Shell::new(
            "web-0",
            vec![("GREETING".into(), "hi there".into())],
            Duration::from_millis(50),
        )
    }

    /// Runs `argv` with `stdin` (closed after it is sent) and returns stdout, stderr, outcome.
    async fn exec(argv: &[&str], stdin: Option<&str>) -> (String, String, Outcome) {
        let (tx, mut rx) = mpsc::channel(16);
        let stdin_rx = stdin.map(|text| {
            let (itx, irx) = mpsc::channel(4);
            let text = text.to_string();
            tokio::spawn(async move {
                for part in text.split_inclusive('\n') {
                    let _ = itx.send(Bytes::from(part.to_string())).await;
                }
            });
            irx
        });
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let shell = shell();
        let run = tokio::spawn(async move {
            let mut io = Io::new(tx, stdin_rx);
            run(&shell, &argv, &mut io).await
        });
        let (mut out, mut err) = (String::new(), String::new());
        while let Some((stream, data)) = rx.recv().await {
            let s = std::str::from_utf8(&data).unwrap();
            match stream {
                Stream::Stdout => out.push_str(s),
                Stream::Stderr => err.push_str(s),
            }
        }
        (out, err, run.await.unwrap())
    }

    #[tokio::test]
    async fn simple_commands_print_what_the_pod_says() {
        assert_eq!(
            exec(&["echo", "hello", "world"], None).await,
            ("hello world\n".into(), "".into(), Outcome::Exited(0))
        );
        assert_eq!(exec(&["echo", "-n", "x"], None).await.0, "x");
        assert_eq!(exec(&["hostname"], None).await.0, "web-0\n");
        assert_eq!(
            exec(&["/bin/cat", "/etc/hostname"], None).await.0,
            "web-0\n"
        );
        assert_eq!(
            exec(&["env"], None).await.0,
            format!("PATH={DEFAULT_PATH}\nHOSTNAME=web-0\nGREETING=hi there\nHOME=/root\n")
        );
        assert_eq!(exec(&["printenv", "GREETING"], None).await.0, "hi there\n");
        assert_eq!(exec(&["true"], None).await.2, Outcome::Exited(0));
        assert_eq!(exec(&["false"], None).await.2, Outcome::Exited(1));
        assert_eq!(exec(&["sleep", "0.01"], None).await.2, Outcome::Exited(0));
        let (_, err, outcome) = exec(&["cat", "/etc/shadow"], None).await;
        assert_eq!(
            err,
            "cat: can't open '/etc/shadow': No such file or directory\n"
        );
        assert_eq!(outcome, Outcome::Exited(1));
    }

    #[tokio::test]
    async fn unknown_executables_and_exit_are_not_found_outside_a_shell() {
        assert_eq!(
            exec(&["nope", "x"], None).await.2,
            Outcome::NotFound("nope".into())
        );
        assert_eq!(
            exec(&["exit", "3"], None).await.2,
            Outcome::NotFound("exit".into())
        );
    }

    #[tokio::test]
    async fn cat_echoes_stdin_until_eof() {
        assert_eq!(exec(&["cat"], Some("a\nb\n")).await.0, "a\nb\n");
        assert_eq!(
            exec(&["cat"], None).await,
            ("".into(), "".into(), Outcome::Exited(0))
        );
    }

    #[tokio::test]
    async fn sh_sequences_quotes_variables_and_exit_codes() {
        let sh = |s: &'static str| async move { exec(&["sh", "-c", s], None).await };
        assert_eq!(sh("exit 3").await.2, Outcome::Exited(3));
        assert_eq!(sh("echo a; echo b").await.0, "a\nb\n");
        assert_eq!(sh("false && echo no; echo $?").await.0, "1\n");
        assert_eq!(sh("false || echo yes").await.0, "yes\n");
        assert_eq!(sh("false && echo b || echo c").await.0, "c\n");
        assert_eq!(
            sh("true && echo one && exit 4; echo never").await,
            ("one\n".into(), "".into(), Outcome::Exited(4))
        );
        assert_eq!(
            sh("echo \"$GREETING\" '$HOSTNAME' ${HOSTNAME}").await.0,
            "hi there $HOSTNAME web-0\n"
        );
        assert_eq!(sh("echo a\\ b # comment").await.0, "a b\n");
        let (_, err, outcome) = sh("nope; echo $?").await;
        assert_eq!(err, "sh: nope: not found\n");
        assert_eq!(outcome, Outcome::Exited(0));
        assert_eq!(sh("nope").await.2, Outcome::Exited(127));
        assert_eq!(sh("exit 256").await.2, Outcome::Exited(0));
        assert_eq!(sh("echo 'open").await.2, Outcome::Exited(2));
        assert_eq!(sh("echo a | cat").await.2, Outcome::Exited(2));
        assert_eq!(
            exec(&["/bin/sh", "-c", "sh -c 'exit 5'"], None).await.2,
            Outcome::Exited(5)
        );
    }

    #[tokio::test]
    async fn printf_lines_and_refused_syntax() {
        let sh = |s: &'static str| async move { exec(&["sh", "-c", s], None).await };
        assert_eq!(
            exec(&["printf", "%s-%d\\n", "a", "1", "b"], None).await.0,
            "a-1\nb-0\n"
        );
        assert_eq!(
            sh("echo a\n\necho b").await.0,
            "a\nb\n",
            "a newline ends a command"
        );
        assert_eq!(sh("false &&\n echo no").await.0, "");
        assert_eq!(sh("echo -e 'x\\ty'").await.0, "x\ty\n");
        assert_eq!(
            sh("echo $((2 + 3 * (4 - 1) % 5)) $((-$? - 1)) $((1 / 0)) $((GREETING))")
                .await
                .0,
            "6 -1 0 0\n"
        );
        assert_eq!(
            sh("for i in 1 2; do echo $i; sleep 0.01; done\nif true; then exit 6; fi").await,
            ("1\n2\n".into(), "".into(), Outcome::Exited(6))
        );
        let (out, _, outcome) = sh("while true; do echo y; sleep 0.01; done").await;
        assert_eq!(
            out,
            "y\n".repeat(6),
            "a line per round until max_sleep (0 to 50ms)"
        );
        assert_eq!(outcome, Outcome::Exited(0), "bounded by max_sleep");
        for refused in [
            "echo a > f",
            "echo $(hostname)",
            "echo `hostname`",
            "(echo a)",
        ] {
            let (_, err, outcome) = sh(refused).await;
            assert!(err.starts_with("sh: syntax error:"), "{refused}: {err}");
            assert_eq!(outcome, Outcome::Exited(2), "{refused}");
        }
        assert_eq!(
            exec(&["sleep", "infinity"], None).await.2,
            Outcome::Exited(0),
            "capped"
        );
        assert_eq!(
            sleep_duration(&["1m".into(), "0.5".into()]),
            Ok(Some(Duration::from_secs_f64(60.5)))
        );
        assert!(sleep_duration(&["1x".into()]).is_err());
    }

    #[tokio::test]
    async fn sh_without_c_runs_stdin_line_by_line() {
        let (out, _, outcome) = exec(
            &["sh"],
            Some("echo one\ncat /etc/hostname\nexit 7\necho no\n"),
        )
        .await;
        assert_eq!(out, "one\nweb-0\n");
        assert_eq!(outcome, Outcome::Exited(7));
    }

    #[tokio::test]
    async fn sleep_is_bounded_by_max_sleep() {
        // max_sleep is 50ms: an hour-long sleep must still finish.
        let done =
            tokio::time::timeout(Duration::from_secs(10), exec(&["sleep", "3600"], None)).await;
        assert_eq!(done.expect("sleep is capped").2, Outcome::Exited(0));
        assert_eq!(exec(&["sleep", "x"], None).await.2, Outcome::Exited(1));
    }
}
