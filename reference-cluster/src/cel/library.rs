//! The Kubernetes CEL libraries the `cel` crate lacks: lists (`isSorted`, `sum`, `min`, `max`,
//! `indexOf`, `lastIndexOf`), regex (`find`, `findAll`), sets (`sets.contains`,
//! `sets.equivalent`, `sets.intersects`) and quantity (`quantity`, `isQuantity` and the
//! methods of `kubernetes.Quantity`), as `k8s.io/apiserver/pkg/cel/library` and cel-go's
//! `ext.Sets` define them.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use cel::common::types::{Type, DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::objects::Opaque;
use cel::{DeclarationError, Env, ExecutionError, Value as Cel};

use crate::resources::quantity::Quantity as K8sQuantity;

const QUANTITY: &str = "kubernetes.Quantity";

fn quantity_type() -> Type {
    Type::new_opaque_type(QUANTITY)
}

/// Wraps a function over converted values into the crate's overload signature.
macro_rules! value_fn {
    ($name:ident, $imp:path) => {
        fn $name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
            let values = args
                .iter()
                .map(|a| Cel::try_from(a.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            let out = $imp(&values)?;
            let boxed: Box<dyn Val> = out.try_into()?;
            Ok(CowVal::from(boxed as Box<dyn Val + 'v>))
        }
    };
}

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    env.add_member_overload(
        "find",
        "string_find_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_string_int",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    for (name, f) in [
        (
            "sets.contains",
            sets_contains as cel::common::functions::Function,
        ),
        ("sets.equivalent", sets_equivalent),
        ("sets.intersects", sets_intersects),
    ] {
        env.add_overload(name, name, vec![LIST_TYPE, LIST_TYPE], f)?;
    }
    env.add_overload(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        quantity,
    )?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    for (name, f) in [
        (
            "isInteger",
            q_is_integer as cel::common::functions::Function,
        ),
        ("asInteger", q_as_integer),
        ("asApproximateFloat", q_as_float),
        ("sign", q_sign),
    ] {
        env.add_member_overload(
            name,
            &format!("quantity_{name}"),
            quantity_type(),
            vec![],
            f,
        )?;
    }
    for (name, f) in [
        ("isLessThan", q_less as cel::common::functions::Function),
        ("isGreaterThan", q_greater),
        ("compareTo", q_compare),
        ("add", q_add),
        ("sub", q_sub),
    ] {
        env.add_member_overload(
            name,
            &format!("quantity_{name}_quantity"),
            quantity_type(),
            vec![quantity_type()],
            f,
        )?;
    }
    for (name, f) in [
        ("add", q_add as cel::common::functions::Function),
        ("sub", q_sub),
    ] {
        env.add_member_overload(
            name,
            &format!("quantity_{name}_int"),
            quantity_type(),
            vec![INT_TYPE],
            f,
        )?;
    }
    Ok(())
}

fn err(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn list<'a>(v: &'a Cel, function: &str) -> Result<&'a [Cel], ExecutionError> {
    match v {
        Cel::List(items) => Ok(items.as_slice()),
        other => Err(err(
            function,
            format!("no such overload for {:?}", other.type_of()),
        )),
    }
}

fn string<'a>(v: &'a Cel, function: &str) -> Result<&'a str, ExecutionError> {
    match v {
        Cel::String(s) => Ok(s.as_str()),
        other => Err(err(
            function,
            format!("no such overload for {:?}", other.type_of()),
        )),
    }
}

/// CEL ordering: numbers across types, otherwise only values of one type.
pub fn compare(a: &Cel, b: &Cel) -> Option<Ordering> {
    match (a, b) {
        (Cel::Int(x), Cel::Int(y)) => Some(x.cmp(y)),
        (Cel::UInt(x), Cel::UInt(y)) => Some(x.cmp(y)),
        (Cel::Int(x), Cel::UInt(y)) => Some(i128::from(*x).cmp(&i128::from(*y))),
        (Cel::UInt(x), Cel::Int(y)) => Some(i128::from(*x).cmp(&i128::from(*y))),
        (Cel::Float(_), _) | (_, Cel::Float(_)) => {
            let f = |v: &Cel| match v {
                Cel::Int(i) => Some(*i as f64),
                Cel::UInt(u) => Some(*u as f64),
                Cel::Float(f) => Some(*f),
                _ => None,
            };
            f(a)?.partial_cmp(&f(b)?)
        }
        (Cel::String(x), Cel::String(y)) => Some(x.cmp(y)),
        (Cel::Bool(x), Cel::Bool(y)) => Some(x.cmp(y)),
        (Cel::Bytes(x), Cel::Bytes(y)) => Some(x.cmp(y)),
        (Cel::Duration(x), Cel::Duration(y)) => Some(x.cmp(y)),
        (Cel::Timestamp(x), Cel::Timestamp(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// CEL equality as lists and sets need it: numbers equal across types.
pub fn equal(a: &Cel, b: &Cel) -> bool {
    match (a, b) {
        (Cel::List(x), Cel::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q))
        }
        (
            Cel::Int(_) | Cel::UInt(_) | Cel::Float(_),
            Cel::Int(_) | Cel::UInt(_) | Cel::Float(_),
        ) => compare(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

fn uncomparable(function: &str) -> ExecutionError {
    err(function, "no such overload")
}

fn is_sorted_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let items = list(&args[0], "isSorted")?;
    for w in items.windows(2) {
        match compare(&w[0], &w[1]) {
            Some(Ordering::Greater) => return Ok(Cel::Bool(false)),
            Some(_) => {}
            None => return Err(uncomparable("isSorted")),
        }
    }
    Ok(Cel::Bool(true))
}

fn sum_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let items = list(&args[0], "sum")?;
    let Some(first) = items.first() else {
        return Ok(Cel::Int(0));
    };
    let overflow = || err("sum", "integer overflow");
    let mut acc = first.clone();
    for item in &items[1..] {
        acc = match (&acc, item) {
            (Cel::Int(a), Cel::Int(b)) => Cel::Int(a.checked_add(*b).ok_or_else(overflow)?),
            (Cel::UInt(a), Cel::UInt(b)) => Cel::UInt(a.checked_add(*b).ok_or_else(overflow)?),
            (Cel::Float(a), Cel::Float(b)) => Cel::Float(a + b),
            (Cel::Duration(a), Cel::Duration(b)) => {
                Cel::Duration(a.checked_add(b).ok_or_else(overflow)?)
            }
            _ => return Err(uncomparable("sum")),
        };
    }
    match acc {
        Cel::Int(_) | Cel::UInt(_) | Cel::Float(_) | Cel::Duration(_) => Ok(acc),
        _ => Err(uncomparable("sum")),
    }
}

fn extreme(args: &[Cel], function: &str, want: Ordering) -> Result<Cel, ExecutionError> {
    let items = list(&args[0], function)?;
    let Some(first) = items.first() else {
        return Err(err(function, format!("{function} called on empty list")));
    };
    let mut best = first;
    for item in &items[1..] {
        match compare(item, best) {
            Some(o) if o == want => best = item,
            Some(_) => {}
            None => return Err(uncomparable(function)),
        }
    }
    if compare(best, best).is_none() {
        return Err(uncomparable(function));
    }
    Ok(best.clone())
}

fn min_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    extreme(args, "min", Ordering::Less)
}

fn max_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    extreme(args, "max", Ordering::Greater)
}

fn index_of_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let items = list(&args[0], "indexOf")?;
    Ok(Cel::Int(
        items
            .iter()
            .position(|i| equal(i, &args[1]))
            .map_or(-1, |i| i as i64),
    ))
}

fn last_index_of_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let items = list(&args[0], "lastIndexOf")?;
    Ok(Cel::Int(
        items
            .iter()
            .rposition(|i| equal(i, &args[1]))
            .map_or(-1, |i| i as i64),
    ))
}

fn regex(pattern: &str, function: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| err(function, format!("invalid regex: {e}")))
}

fn find_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let s = string(&args[0], "find")?;
    let re = regex(string(&args[1], "find")?, "find")?;
    Ok(Cel::String(Arc::new(
        re.find(s)
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
    )))
}

fn find_all_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let s = string(&args[0], "findAll")?;
    let re = regex(string(&args[1], "findAll")?, "findAll")?;
    let limit = match args.get(2) {
        Some(Cel::Int(n)) if *n >= 0 => *n as usize,
        _ => usize::MAX,
    };
    Ok(Cel::List(Arc::new(
        re.find_iter(s)
            .take(limit)
            .map(|m| Cel::String(Arc::new(m.as_str().to_string())))
            .collect(),
    )))
}

fn contains_all(haystack: &[Cel], needles: &[Cel]) -> bool {
    needles.iter().all(|n| haystack.iter().any(|h| equal(h, n)))
}

fn sets_contains_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    Ok(Cel::Bool(contains_all(
        list(&args[0], "sets.contains")?,
        list(&args[1], "sets.contains")?,
    )))
}

fn sets_equivalent_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let a = list(&args[0], "sets.equivalent")?;
    let b = list(&args[1], "sets.equivalent")?;
    Ok(Cel::Bool(contains_all(a, b) && contains_all(b, a)))
}

fn sets_intersects_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let a = list(&args[0], "sets.intersects")?;
    let b = list(&args[1], "sets.intersects")?;
    Ok(Cel::Bool(a.iter().any(|x| b.iter().any(|y| equal(x, y)))))
}

/// A `resource.Quantity` as a CEL value; equality is numeric, as upstream's `Cmp`.
struct Quantity(K8sQuantity);

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({})", self.0.canonical())
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.0.nanos == other.0.nanos
    }
}

impl Eq for Quantity {}

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        QUANTITY
    }
}

fn as_quantity(v: &Cel, function: &str) -> Result<K8sQuantity, ExecutionError> {
    match v {
        Cel::Opaque(o) => o
            .downcast_ref::<Quantity>()
            .map(|q| q.0)
            .ok_or_else(|| err(function, "no such overload")),
        Cel::Int(i) => Ok(K8sQuantity {
            nanos: i128::from(*i) * 1_000_000_000,
            format: crate::resources::quantity::Format::DecimalSI,
        }),
        _ => Err(err(function, "no such overload")),
    }
}

fn quantity_value(q: K8sQuantity) -> Cel {
    Cel::Opaque(Arc::new(Quantity(q)))
}

fn quantity_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let s = string(&args[0], "quantity")?;
    K8sQuantity::parse(s)
        .map(quantity_value)
        .map_err(|e| err("quantity", e))
}

fn is_quantity_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    Ok(Cel::Bool(
        K8sQuantity::parse(string(&args[0], "isQuantity")?).is_ok(),
    ))
}

const NANO: i128 = 1_000_000_000;

fn q_is_integer_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let q = as_quantity(&args[0], "isInteger")?;
    let whole = q.nanos % NANO == 0 && i64::try_from(q.nanos / NANO).is_ok();
    Ok(Cel::Bool(whole))
}

fn q_as_integer_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let q = as_quantity(&args[0], "asInteger")?;
    if q.nanos % NANO != 0 {
        return Err(err(
            "asInteger",
            "cannot convert value to integer without loss of precision",
        ));
    }
    i64::try_from(q.nanos / NANO)
        .map(Cel::Int)
        .map_err(|_| err("asInteger", "int64 overflow"))
}

fn q_as_float_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let q = as_quantity(&args[0], "asApproximateFloat")?;
    Ok(Cel::Float(q.nanos as f64 / NANO as f64))
}

fn q_sign_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    let q = as_quantity(&args[0], "sign")?;
    Ok(Cel::Int(q.nanos.signum() as i64))
}

fn q_cmp(args: &[Cel], function: &str) -> Result<Ordering, ExecutionError> {
    let a = as_quantity(&args[0], function)?;
    let b = as_quantity(&args[1], function)?;
    Ok(a.nanos.cmp(&b.nanos))
}

fn q_less_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    Ok(Cel::Bool(q_cmp(args, "isLessThan")? == Ordering::Less))
}

fn q_greater_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    Ok(Cel::Bool(
        q_cmp(args, "isGreaterThan")? == Ordering::Greater,
    ))
}

fn q_compare_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    Ok(Cel::Int(match q_cmp(args, "compareTo")? {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }))
}

fn q_arith(args: &[Cel], function: &str, sign: i128) -> Result<Cel, ExecutionError> {
    let a = as_quantity(&args[0], function)?;
    let b = as_quantity(&args[1], function)?;
    let nanos = a
        .nanos
        .checked_add(sign * b.nanos)
        .ok_or_else(|| err(function, "overflow"))?;
    Ok(quantity_value(K8sQuantity {
        nanos,
        format: a.format,
    }))
}

fn q_add_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    q_arith(args, "add", 1)
}

fn q_sub_impl(args: &[Cel]) -> Result<Cel, ExecutionError> {
    q_arith(args, "sub", -1)
}

value_fn!(is_sorted, is_sorted_impl);
value_fn!(sum, sum_impl);
value_fn!(min, min_impl);
value_fn!(max, max_impl);
value_fn!(index_of, index_of_impl);
value_fn!(last_index_of, last_index_of_impl);
value_fn!(find, find_impl);
value_fn!(find_all, find_all_impl);
value_fn!(sets_contains, sets_contains_impl);
value_fn!(sets_equivalent, sets_equivalent_impl);
value_fn!(sets_intersects, sets_intersects_impl);
value_fn!(quantity, quantity_impl);
value_fn!(is_quantity, is_quantity_impl);
value_fn!(q_is_integer, q_is_integer_impl);
value_fn!(q_as_integer, q_as_integer_impl);
value_fn!(q_as_float, q_as_float_impl);
value_fn!(q_sign, q_sign_impl);
value_fn!(q_less, q_less_impl);
value_fn!(q_greater, q_greater_impl);
value_fn!(q_compare, q_compare_impl);
value_fn!(q_add, q_add_impl);
value_fn!(q_sub, q_sub_impl);

#[cfg(test)]
mod tests {
    use crate::cel::program::{bind, error_text, parse, run};
    use crate::cel::value::{from_json, to_json};
    use serde_json::{json, Value};

    fn eval(src: &str) -> Result<Value, String> {
        let program = parse(src)?;
        let vars = vec![(
            "self",
            bind(from_json(&json!({"xs": [3, 1, 2], "name": "Web-App_01"}))),
        )];
        run(&program, vars)
            .map(|v| to_json(&v))
            .map_err(|e| error_text(&e))
    }

    fn is_true(src: &str) {
        assert_eq!(eval(src), Ok(json!(true)), "{src}");
    }

    #[test]
    fn kubernetes_list_functions() {
        is_true("[1, 2, 2, 5].isSorted() && !self.xs.isSorted() && [].isSorted()");
        is_true("['a', 'b'].isSorted()");
        is_true("self.xs.sum() == 6 && [1.5, 2.0].sum() == 3.5 && [].sum() == 0");
        is_true("self.xs.min() == 1 && self.xs.max() == 3 && ['b', 'a'].min() == 'a'");
        is_true(
            "self.xs.indexOf(2) == 2 && [1, 2, 1].lastIndexOf(1) == 2 && self.xs.indexOf(9) == -1",
        );
        assert_eq!(
            eval("[].max()"),
            Err("max: max called on empty list".into())
        );
        assert!(eval("[1, 'a'].isSorted()").is_err());
    }

    #[test]
    fn kubernetes_regex_functions() {
        assert_eq!(eval("'abc 123 def 456'.find('[0-9]+')"), Ok(json!("123")));
        assert_eq!(eval("'abc'.find('[0-9]+')"), Ok(json!("")));
        assert_eq!(
            eval("'a1 b2 c3'.findAll('[a-z][0-9]')"),
            Ok(json!(["a1", "b2", "c3"]))
        );
        assert_eq!(
            eval("'a1 b2 c3'.findAll('[a-z][0-9]', 2)"),
            Ok(json!(["a1", "b2"]))
        );
        assert!(eval("'x'.find('(')").unwrap_err().contains("invalid regex"));
    }

    #[test]
    fn sets_functions() {
        is_true("sets.contains([1, 2, 3], [3, 1]) && !sets.contains([1], [2])");
        is_true("sets.contains([1, 2], [2.0])");
        is_true("sets.equivalent([1, 2, 2], [2, 1]) && !sets.equivalent([1], [1, 3])");
        is_true("sets.intersects([1, 2], [2, 9]) && !sets.intersects([1], [])");
    }

    #[test]
    fn quantity_functions() {
        is_true("quantity('1500m').isGreaterThan(quantity('1')) && quantity('1Gi').isLessThan(quantity('2G'))");
        is_true("quantity('1k') == quantity('1000') && quantity('1') != quantity('2')");
        is_true("quantity('2').asInteger() == 2 && quantity('500m').asApproximateFloat() == 0.5");
        is_true("quantity('500m').add(quantity('500m')).isInteger() && quantity('3').sub(1).asInteger() == 2");
        is_true("quantity('1').compareTo(quantity('2')) == -1 && quantity('-5').sign() == -1");
        is_true("isQuantity('10Mi') && !isQuantity('ten')");
        assert!(eval("quantity('ten')").is_err());
        assert!(eval("quantity('1500m').asInteger()")
            .unwrap_err()
            .contains("loss of precision"));
    }

    #[test]
    fn standard_and_strings_functions_are_available() {
        is_true(
            "self.name.lowerAscii() == 'web-app_01' && self.name.upperAscii().startsWith('WEB')",
        );
        is_true("'a,b,c'.split(',') == ['a', 'b', 'c'] && ['a', 'b'].join('-') == 'a-b'");
        is_true("'  x '.trim() == 'x' && 'aaa'.replace('a', 'b', 2) == 'bba' && 'hello'.indexOf('l') == 2");
        is_true("self.name.matches('^[A-Za-z0-9_-]+$') && self.name.contains('App') && self.name.endsWith('01')");
        is_true("size(self.xs) == 3 && self.xs.all(x, x > 0) && self.xs.exists_one(x, x == 2)");
        is_true("self.xs.map(x, x * 2).filter(x, x > 2) == [6, 4]");
        is_true("int('42') == 42 && double('1.5') == 1.5 && string(7) == '7'");
        is_true("duration('1h') > duration('59m') && timestamp('2024-01-01T00:00:00Z') < timestamp('2024-06-01T00:00:00Z')");
        is_true("has(self.name) && !has(self.other)");
    }
}
