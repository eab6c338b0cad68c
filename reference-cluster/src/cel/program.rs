//! Compiling and running expressions: the shared environment (standard library, strings
//! extension, Kubernetes libraries), the static check, a cache of parsed programs, and
//! evaluation errors worded as cel-go words them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use cel::common::value::Val;
use cel::{Context, Env, ExecutionError, Program, Value as Cel};

use super::check::{self, render, render_parse_errors};
use super::types::Ty;

fn build_env() -> Env {
    let mut env = Env::stdlib();
    // Both only fail on duplicate declarations, which a fixed set of libraries cannot have;
    // an environment without them still evaluates everything else.
    if let Err(e) = cel::extensions::strings(&mut env) {
        tracing::error!("registering the CEL strings extension: {e}");
    }
    if let Err(e) = super::library::register(&mut env) {
        tracing::error!("registering the Kubernetes CEL libraries: {e}");
    }
    env
}

pub fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(build_env())).clone()
}

/// A parsed program; the same source always parses the same, so programs are shared.
pub fn parse(source: &str) -> Result<Arc<Program>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Program>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(source) {
        return Ok(p.clone());
    }
    let program = Arc::new(
        env()
            .compile(source)
            .map_err(|e| render_parse_errors(&e.to_string()))?,
    );
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    if guard.len() > 4096 {
        guard.clear();
    }
    guard.insert(source.to_string(), program.clone());
    Ok(program)
}

pub struct Checked {
    pub program: Arc<Program>,
    pub ty: Ty,
    pub references: BTreeSet<String>,
}

/// Parses and checks `source` against the declared variables; the error is cel-go's issue
/// list (`ERROR: <input>:…`).
pub fn compile(source: &str, declared: &[(String, Ty)]) -> Result<Checked, String> {
    let program = parse(source)?;
    let outcome = check::check(program.expression(), program.source_info(), declared);
    if !outcome.issues.is_empty() {
        return Err(render(source, &outcome.issues));
    }
    Ok(Checked {
        program,
        ty: outcome.ty,
        references: outcome.references,
    })
}

/// Runs `program` with the given variables bound.
pub fn run(
    program: &Program,
    variables: Vec<(&str, Box<dyn Val + 'static>)>,
) -> Result<Cel, ExecutionError> {
    let mut ctx = Context::with_env(env());
    for (name, value) in variables {
        ctx.add_variable_as_val(name, value);
    }
    program.execute(&ctx)
}

/// A value bound as a variable.
pub fn bind(v: Cel) -> Box<dyn Val + 'static> {
    match Box::<dyn Val>::try_from(v) {
        Ok(b) => b,
        // Every value built from JSON converts; anything else is bound as null.
        Err(_) => Box::new(cel::common::types::CelNull),
    }
}

/// An evaluation error as cel-go reports it (`no such key: x`, `division by zero`, …).
pub fn error_text(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute(s): {name}"),
        ExecutionError::NoSuchOverload(o) => {
            let types = o.argument_types();
            let shown = if o.is_member_function() && !types.is_empty() {
                format!("{}.({})", types[0], types[1..].join(", "))
            } else {
                format!("({})", types.join(", "))
            };
            format!("no such overload: {} applied to {shown}", o.function())
        }
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => format!(
            "no such overload: {op} applied to ({}, {})",
            a.type_of(),
            b.type_of()
        ),
        ExecutionError::ValuesNotComparable(a, b) => {
            format!("no such overload: ({}, {})", a.type_of(), b.type_of())
        }
        ExecutionError::UnexpectedType { got, want } => {
            format!("no such overload: got '{got}', want '{want}'")
        }
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::IndexOutOfBounds(i) => match i {
            Cel::Int(n) => format!("index out of bounds: {n}"),
            Cel::UInt(n) => format!("index out of bounds: {n}"),
            other => format!("index out of bounds: {other:?}"),
        },
        ExecutionError::FunctionError { function, message } if function.is_empty() => {
            message.clone()
        }
        ExecutionError::FunctionError { function, message } => format!("{function}: {message}"),
        other => other.to_string(),
    }
}

/// Whether the error is one upstream words as a missing overload.
pub fn is_overload_error(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::NoSuchOverload(_)
            | ExecutionError::UnsupportedBinaryOperator(..)
            | ExecutionError::ValuesNotComparable(..)
            | ExecutionError::UnexpectedType { .. }
    )
}
