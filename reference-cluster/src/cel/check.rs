//! A light static check standing in for cel-go's type checker, which the `cel` crate does not
//! have: undeclared identifiers and functions, fields a schema does not declare, operators and
//! functions applied to types they have no overload for, and the result type. Where a type is
//! not known it is `dyn` and nothing is reported, so the check rejects only what cel-go
//! would certainly reject too. Messages and positions follow cel-go (`ERROR: <input>:1:6: …`).

use std::collections::BTreeSet;

use cel::common::ast::{EntryExpr, Expr, LiteralValue, SelectExpr, SourceInfo};
use cel::IdedExpr;

use super::types::Ty;

/// Type names an expression may use as values (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "duration",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "timestamp",
    "type",
    "uint",
];

pub struct Outcome {
    pub ty: Ty,
    /// The declared variables the expression reads (`oldSelf` makes a transition rule).
    pub references: BTreeSet<String>,
    /// cel-go style issues, each with the character offset it points at.
    pub issues: Vec<(usize, String)>,
}

struct Checker<'a> {
    info: &'a SourceInfo,
    declared: &'a [(String, Ty)],
    /// Comprehension variables, innermost last.
    locals: Vec<(String, Ty)>,
    references: BTreeSet<String>,
    issues: Vec<(usize, String)>,
}

pub fn check(expr: &IdedExpr, info: &SourceInfo, declared: &[(String, Ty)]) -> Outcome {
    let mut c = Checker {
        info,
        declared,
        locals: Vec::new(),
        references: BTreeSet::new(),
        issues: Vec::new(),
    };
    let ty = c.expr(expr);
    c.issues.sort_by_key(|(at, _)| *at);
    Outcome {
        ty,
        references: c.references,
        issues: c.issues,
    }
}

/// `a.b.c` as the name it spells, for namespaced functions such as `sets.contains`.
fn qualified_name(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(SelectExpr {
            operand,
            field,
            test: false,
        }) => qualified_name(operand).map(|base| format!("{base}.{field}")),
        _ => None,
    }
}

impl Checker<'_> {
    fn report(&mut self, id: u64, message: String) {
        let at = self
            .info
            .offset_for(id)
            .map(|(start, _)| start as usize)
            .unwrap_or(0);
        self.issues.push((at, message));
    }

    fn lookup(&mut self, name: &str) -> Option<Ty> {
        if let Some((_, t)) = self.locals.iter().rev().find(|(n, _)| n == name) {
            return Some(t.clone());
        }
        let found = self.declared.iter().find(|(n, _)| n == name)?.1.clone();
        self.references.insert(name.to_string());
        Some(found)
    }

    fn is_declared(&self, name: &str) -> bool {
        self.locals.iter().any(|(n, _)| n == name) || self.declared.iter().any(|(n, _)| n == name)
    }

    fn expr(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Expr::Unspecified => Ty::Dyn,
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => match self.lookup(name) {
                Some(t) => t,
                None if TYPE_NAMES.contains(&name.as_str()) => Ty::Type,
                None => {
                    self.report(
                        e.id,
                        format!("undeclared reference to '{name}' (in container '')"),
                    );
                    Ty::Dyn
                }
            },
            Expr::Select(s) => {
                let operand = self.expr(&s.operand);
                let field = self.select(e.id, &operand, &s.field);
                if s.test {
                    Ty::Bool
                } else {
                    field
                }
            }
            Expr::Call(call) => {
                self.call(e.id, &call.func_name, call.target.as_deref(), &call.args)
            }
            Expr::List(l) => {
                let mut elem: Option<Ty> = None;
                for item in &l.elements {
                    let t = self.expr(item);
                    elem = Some(match elem {
                        None => t,
                        Some(prev) => Ty::join(&prev, &t),
                    });
                }
                Ty::list(elem.unwrap_or(Ty::Dyn))
            }
            Expr::Map(m) => {
                let mut key: Option<Ty> = None;
                let mut val: Option<Ty> = None;
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        let k = self.expr(&me.key);
                        let v = self.expr(&me.value);
                        key = Some(key.map_or(k.clone(), |p| Ty::join(&p, &k)));
                        val = Some(val.map_or(v.clone(), |p| Ty::join(&p, &v)));
                    }
                }
                Ty::map(key.unwrap_or(Ty::Dyn), val.unwrap_or(Ty::Dyn))
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.expr(&f.value);
                    }
                }
                Ty::Dyn
            }
            Expr::Comprehension(c) => {
                let range = self.expr(&c.iter_range);
                let (first, second) = match &range {
                    Ty::List(t) => match c.iter_var2 {
                        Some(_) => (Ty::Int, (**t).clone()),
                        None => ((**t).clone(), Ty::Dyn),
                    },
                    Ty::Map(k, v) => ((**k).clone(), (**v).clone()),
                    Ty::Dyn => (Ty::Dyn, Ty::Dyn),
                    other => {
                        self.report(
                            c.iter_range.id,
                            format!(
                                "expression of type '{other}' cannot be the range of a comprehension (must be list, map, or dynamic)"
                            ),
                        );
                        (Ty::Dyn, Ty::Dyn)
                    }
                };
                let accu_init = self.expr(&c.accu_init);
                self.locals.push((c.accu_var.clone(), accu_init.clone()));
                self.locals.push((c.iter_var.clone(), first));
                if let Some(v2) = &c.iter_var2 {
                    self.locals.push((v2.clone(), second));
                }
                self.expr(&c.loop_cond);
                let step = self.expr(&c.loop_step);
                self.locals
                    .truncate(self.locals.len() - 1 - usize::from(c.iter_var2.is_some()));
                self.locals.pop();
                // `map` and `filter` start from `[]` and grow it: the step knows the element.
                let accu = match (&accu_init, &step) {
                    (Ty::List(e), Ty::List(_)) if e.is_dyn() => step,
                    _ => accu_init,
                };
                self.locals.push((c.accu_var.clone(), accu));
                let result = self.expr(&c.result);
                self.locals.pop();
                result
            }
        }
    }

    fn select(&mut self, id: u64, operand: &Ty, field: &str) -> Ty {
        match operand {
            Ty::Object(fields) => match fields.get(field) {
                Some(t) => t.clone(),
                None => {
                    self.report(id, format!("undefined field '{field}'"));
                    Ty::Dyn
                }
            },
            Ty::Map(_, v) => (**v).clone(),
            t if t.is_primitive() || matches!(t, Ty::List(_) | Ty::Null) => {
                self.report(id, format!("type '{t}' does not support field selection"));
                Ty::Dyn
            }
            _ => Ty::Dyn,
        }
    }

    fn no_overload(&mut self, id: u64, name: &str, target: Option<&Ty>, args: &[Ty]) -> Ty {
        let list = args
            .iter()
            .map(Ty::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let applied = match target {
            Some(t) => format!("{t}.({list})"),
            None => format!("({list})"),
        };
        self.report(
            id,
            format!("found no matching overload for '{name}' applied to '{applied}'"),
        );
        Ty::Dyn
    }

    fn call(&mut self, id: u64, name: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) -> Ty {
        // `sets.contains(..)` parses as a member call on the identifier `sets`.
        if let Some(t) = target {
            if let Some(ns) = qualified_name(t) {
                let root = ns.split('.').next().unwrap_or_default();
                let full = format!("{ns}.{name}");
                if !self.is_declared(root) && signature(&full, None, &[]).is_some() {
                    let arg_tys: Vec<Ty> = args.iter().map(|a| self.expr(a)).collect();
                    return match signature(&full, None, &arg_tys) {
                        Some(Ok(t)) => t,
                        _ => self.no_overload(id, &full, None, &arg_tys),
                    };
                }
            }
        }
        if name == "_?._" {
            let operand = args.first().map(|a| self.expr(a)).unwrap_or(Ty::Dyn);
            let field = match args.get(1).map(|a| &a.expr) {
                Some(Expr::Literal(LiteralValue::String(s))) => s.inner().to_string(),
                _ => return Ty::Optional(Box::new(Ty::Dyn)),
            };
            let inner = match operand {
                Ty::Optional(t) => *t,
                other => other,
            };
            return Ty::Optional(Box::new(self.select(id, &inner, &field)));
        }
        let target_ty = target.map(|t| self.expr(t));
        let arg_tys: Vec<Ty> = args.iter().map(|a| self.expr(a)).collect();
        if let Some(t) = operator(name, &arg_tys) {
            return match t {
                Ok(t) => t,
                Err(()) => self.no_overload(id, name, None, &arg_tys),
            };
        }
        match signature(name, target_ty.as_ref(), &arg_tys) {
            Some(Ok(t)) => t,
            Some(Err(())) => self.no_overload(id, name, target_ty.as_ref(), &arg_tys),
            None => {
                self.report(
                    id,
                    format!("undeclared reference to '{name}' (in container '')"),
                );
                Ty::Dyn
            }
        }
    }
}

/// Operators: `None` if `name` is not one, `Err` for operand types it has no overload for.
fn operator(name: &str, args: &[Ty]) -> Option<Result<Ty, ()>> {
    let dynamic = args.iter().any(Ty::is_dyn);
    let arith = |allowed: &dyn Fn(&Ty, &Ty) -> Option<Ty>| -> Result<Ty, ()> {
        match args {
            [a, b] if a.is_dyn() || b.is_dyn() => Ok(Ty::Dyn),
            [a, b] => allowed(a, b).ok_or(()),
            _ => Ok(Ty::Dyn),
        }
    };
    let same_numeric = |a: &Ty, b: &Ty| (a == b && a.is_numeric()).then(|| a.clone());
    Some(match name {
        "_&&_" | "_||_" | "!_" | "@not_strictly_false" => {
            if args.iter().all(|t| matches!(t, Ty::Bool | Ty::Dyn)) {
                Ok(Ty::Bool)
            } else {
                Err(())
            }
        }
        "_==_" | "_!=_" => match args {
            [a, b] if a.is_primitive() && b.is_primitive() && a != b => {
                if a.is_numeric() && b.is_numeric() {
                    Ok(Ty::Bool)
                } else {
                    Err(())
                }
            }
            _ => Ok(Ty::Bool),
        },
        "_<_" | "_<=_" | "_>_" | "_>=_" => match args {
            _ if dynamic => Ok(Ty::Bool),
            [a, b] if a.is_numeric() && b.is_numeric() => Ok(Ty::Bool),
            [a, b] if a == b && a.is_primitive() => Ok(Ty::Bool),
            [a, b] if a.is_primitive() || b.is_primitive() => Err(()),
            [Ty::List(_) | Ty::Map(..) | Ty::Object(_), _]
            | [_, Ty::List(_) | Ty::Map(..) | Ty::Object(_)] => Err(()),
            _ => Ok(Ty::Bool),
        },
        "@in" => Ok(Ty::Bool),
        "-_" => match args {
            [t] if t.is_dyn() || matches!(t, Ty::Int | Ty::Double | Ty::Duration) => Ok(t.clone()),
            _ => Err(()),
        },
        "_+_" => arith(&|a, b| match (a, b) {
            (Ty::String, Ty::String) => Some(Ty::String),
            (Ty::Bytes, Ty::Bytes) => Some(Ty::Bytes),
            (Ty::List(x), Ty::List(y)) if x.is_dyn() => Some(Ty::List(y.clone())),
            (Ty::List(x), Ty::List(y)) => Some(Ty::list(Ty::join(x, y))),
            (Ty::Duration, Ty::Duration) => Some(Ty::Duration),
            (Ty::Timestamp, Ty::Duration) | (Ty::Duration, Ty::Timestamp) => Some(Ty::Timestamp),
            _ => same_numeric(a, b),
        }),
        "_-_" => arith(&|a, b| match (a, b) {
            (Ty::Timestamp, Ty::Timestamp) => Some(Ty::Duration),
            (Ty::Timestamp, Ty::Duration) => Some(Ty::Timestamp),
            (Ty::Duration, Ty::Duration) => Some(Ty::Duration),
            _ => same_numeric(a, b),
        }),
        "_*_" | "_/_" => arith(&|a, b| same_numeric(a, b)),
        "_%_" => arith(&|a, b| (a == b && matches!(a, Ty::Int | Ty::Uint)).then(|| a.clone())),
        "_[_]" => match args {
            [Ty::List(t), Ty::Int | Ty::Uint | Ty::Dyn] => Ok((**t).clone()),
            [Ty::List(_), _] => Err(()),
            [Ty::Map(_, v), _] => Ok((**v).clone()),
            [t, _] if t.is_primitive() || matches!(t, Ty::Null) => Err(()),
            _ => Ok(Ty::Dyn),
        },
        "_[?_]" => match args {
            [Ty::List(t), _] | [Ty::Map(_, t), _] => Ok(Ty::Optional(t.clone())),
            _ => Ok(Ty::Optional(Box::new(Ty::Dyn))),
        },
        "_?_:_" => match args {
            [Ty::Bool | Ty::Dyn, a, b] => Ok(Ty::join(a, b)),
            _ => Err(()),
        },
        _ => return None,
    })
}

/// Receiver kinds a member function accepts; `None` for functions the check knows nothing
/// about the receiver of.
fn receivers(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "contains" | "startsWith" | "endsWith" | "matches" | "lowerAscii" | "upperAscii"
        | "trim" | "split" | "replace" | "substring" | "charAt" | "find" | "findAll" | "format" => {
            &["string"]
        }
        "indexOf" | "lastIndexOf" => &["string", "list"],
        "reverse" => &["string", "list"],
        "join" | "isSorted" | "sum" | "min" | "max" => &["list"],
        "size" => &["string", "bytes", "list", "map"],
        "getFullYear" | "getMonth" | "getDate" | "getDayOfMonth" | "getDayOfWeek"
        | "getDayOfYear" => &["timestamp"],
        "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds" => &["timestamp", "duration"],
        "hasValue" | "value" | "or" | "orValue" => &["optional"],
        "isLessThan" | "isGreaterThan" | "compareTo" | "add" | "sub" | "asInteger"
        | "asApproximateFloat" | "sign" | "isInteger" => &["quantity"],
        // The authorizer library: declared so policies using it compile; evaluating it is
        // not supported.
        "path" | "group" | "resource" | "subresource" | "namespace" | "name" | "check"
        | "serviceAccount" | "allowed" | "errored" | "reason" | "error" => &["authorizer"],
        _ => return None,
    })
}

fn kind(t: &Ty) -> &'static str {
    match t {
        Ty::String => "string",
        Ty::Bytes => "bytes",
        Ty::List(_) => "list",
        Ty::Map(..) => "map",
        Ty::Timestamp => "timestamp",
        Ty::Duration => "duration",
        Ty::Optional(_) => "optional",
        Ty::Opaque("kubernetes.Quantity") => "quantity",
        _ => "other",
    }
}

fn elem(t: Option<&Ty>) -> Ty {
    match t {
        Some(Ty::List(e)) => (**e).clone(),
        Some(Ty::Optional(e)) => (**e).clone(),
        _ => Ty::Dyn,
    }
}

/// The result type of a function the environment declares; `None` for an unknown function,
/// `Err` when the receiver's type has no overload.
pub fn signature(name: &str, target: Option<&Ty>, args: &[Ty]) -> Option<Result<Ty, ()>> {
    if let Some(t) = target {
        let allowed = receivers(name)?;
        if !t.is_dyn() && !allowed.contains(&kind(t)) {
            return Some(Err(()));
        }
    }
    let is_string = matches!(target, Some(Ty::String));
    let ty = match (name, target.is_some()) {
        ("size", _) => Ty::Int,
        ("contains" | "startsWith" | "endsWith" | "matches", _) => Ty::Bool,
        (
            "lowerAscii" | "upperAscii" | "trim" | "replace" | "substring" | "charAt" | "find"
            | "format" | "join",
            true,
        ) => Ty::String,
        ("reverse", true) if is_string => Ty::String,
        ("reverse", true) => target.cloned().unwrap_or(Ty::Dyn),
        ("indexOf" | "lastIndexOf", true) => Ty::Int,
        ("split" | "findAll", true) => Ty::list(Ty::String),
        ("isSorted", true) => Ty::Bool,
        ("sum" | "min" | "max", true) => elem(target),
        (
            "getFullYear" | "getMonth" | "getDate" | "getDayOfMonth" | "getDayOfWeek"
            | "getDayOfYear" | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds",
            true,
        ) => Ty::Int,
        ("hasValue", true) => Ty::Bool,
        ("value" | "orValue", true) => elem(target),
        ("or", true) => target.cloned().unwrap_or(Ty::Dyn),
        ("isLessThan" | "isGreaterThan" | "isInteger", true) => Ty::Bool,
        ("compareTo" | "asInteger" | "sign", true) => Ty::Int,
        ("asApproximateFloat", true) => Ty::Double,
        ("add" | "sub", true) => Ty::Opaque("kubernetes.Quantity"),
        ("allowed" | "errored", true) => Ty::Bool,
        ("reason" | "error", true) => Ty::String,
        (
            "path" | "group" | "resource" | "subresource" | "namespace" | "name" | "check"
            | "serviceAccount",
            true,
        ) => Ty::Dyn,
        ("int", false) => Ty::Int,
        ("uint", false) => Ty::Uint,
        ("double", false) => Ty::Double,
        ("string", false) => Ty::String,
        ("bool", false) => Ty::Bool,
        ("bytes", false) => Ty::Bytes,
        ("duration", false) => Ty::Duration,
        ("timestamp", false) => Ty::Timestamp,
        ("dyn", false) => Ty::Dyn,
        ("type", false) => Ty::Type,
        ("optional.of" | "optional.ofNonZeroValue", false) => {
            Ty::Optional(Box::new(args.first().cloned().unwrap_or(Ty::Dyn)))
        }
        ("optional.none", false) => Ty::Optional(Box::new(Ty::Dyn)),
        ("sets.contains" | "sets.equivalent" | "sets.intersects", false) => Ty::Bool,
        ("strings.quote", false) => Ty::String,
        ("quantity", false) => Ty::Opaque("kubernetes.Quantity"),
        ("isQuantity", false) => Ty::Bool,
        _ => return None,
    };
    Some(Ok(ty))
}

/// cel-go's rendering of issues: `ERROR: <input>:line:col: message` and the source line with
/// a caret under the column.
pub fn render(source: &str, issues: &[(usize, String)]) -> String {
    issues
        .iter()
        .map(|(offset, message)| {
            let mut line_no = 1;
            let mut line_start = 0;
            for (i, ch) in source.char_indices() {
                if source[..i].chars().count() >= *offset {
                    break;
                }
                if ch == '\n' {
                    line_no += 1;
                    line_start = i + 1;
                }
            }
            let line = source[line_start..].lines().next().unwrap_or_default();
            let start_chars = source[..line_start].chars().count();
            let col = offset.saturating_sub(start_chars);
            format!(
                "ERROR: <input>:{line_no}:{}: {message}\n | {line}\n | {}^",
                col + 1,
                ".".repeat(col)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate renders parse errors as cel-go does except for the margin of its snippet.
pub fn render_parse_errors(text: &str) -> String {
    text.replace("\n| ", "\n | ")
}
