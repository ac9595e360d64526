//! text/template's own functions and evaluation rules with Go 1.19's
//! semantics: printing an action's value (`go_str`), truth (`go_truth`),
//! `and`/`or`/`not`, the comparisons, `len`, `index`, `slice`, the `print`
//! family, the escapers, field access (`go_field`) and ranging (`go_items`).
//!
//! Errors carry Go's own text after `error calling NAME: ` as text/template
//! reports them, so a converted template fails where confd fails, saying
//! the same thing.

use tera::{Error, Kwargs, State, TeraResult, Value};

use super::fmt::{sprint, sprintf, sprintln, template_print};
use super::quote::{html_escape, js_escape, url_query_escape};
use super::value::{Go, is_missing, missing, sorted_entries};
use crate::template::data::check_limits;

pub(super) fn call_error(name: &str, message: impl std::fmt::Display) -> Error {
    Error::message(format!("error calling {name}: {message}"))
}

/// A list argument (`args=[…]`).
pub(super) fn list(kwargs: &Kwargs, name: &str) -> TeraResult<Vec<Value>> {
    match kwargs.get::<Value>(name)? {
        None => Ok(Vec::new()),
        Some(v) => match v.as_array() {
            Some(items) => Ok(items.to_vec()),
            None => Err(Error::message(format!(
                "`{name}` must be a list, got {}",
                v.name()
            ))),
        },
    }
}

/// The value argument `v=`; a missing one is Go's nil.
pub(super) fn value_arg(kwargs: &Kwargs, name: &str) -> TeraResult<Value> {
    Ok(kwargs.get::<Value>(name)?.unwrap_or_else(Value::none))
}

/// Go's template truth (`isTrue`): false for nil, false, 0, 0.0, "" and
/// empty slices and maps; structs are always true.
pub fn truth(value: &Value) -> bool {
    match Go::of(value) {
        Go::Nil => false,
        Go::Bool(b) => b,
        Go::Int(i) => i != 0,
        Go::Uint(u) => u != 0,
        Go::Float(f) => f != 0.0,
        Go::Str(s) => !s.is_empty(),
        Go::Bytes(b) => !b.is_empty(),
        Go::Slice(items) => !items.is_empty(),
        Go::Map(map) => !sorted_entries(map).is_empty(),
        Go::KvPair(_) | Go::Srv(_) | Go::Time(_) => true,
    }
}

/// `go_str(v=X)`: what `{{ X }}` prints.
pub fn go_str(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(template_print(&value_arg(&kwargs, "v")?))
}

/// `go_truth(v=X)`.
pub fn go_truth(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    Ok(truth(&value_arg(&kwargs, "v")?))
}

/// `go_not(v=X)`.
pub fn go_not(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    Ok(!truth(&value_arg(&kwargs, "v")?))
}

/// `go_and(args=[…])`: the first false argument, or the last.
pub fn go_and(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let args = list(&kwargs, "args")?;
    pick(args, "and", false)
}

/// `go_or(args=[…])`: the first true argument, or the last.
pub fn go_or(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let args = list(&kwargs, "args")?;
    pick(args, "or", true)
}

fn pick(args: Vec<Value>, name: &str, stop_when: bool) -> TeraResult<Value> {
    let count = args.len();
    let mut last = None;
    for arg in args {
        if truth(&arg) == stop_when {
            return Ok(arg);
        }
        last = Some(arg);
    }
    last.ok_or_else(|| {
        Error::message(format!(
            "wrong number of args for {name}: want at least 1 got {count}"
        ))
    })
}

/// The Go type a pointer points to, for messages about `*net.SRV`.
fn deref_type_name(go: &Go) -> &'static str {
    match go {
        Go::Srv(_) => "net.SRV",
        other => other.type_name(),
    }
}

/// `go_len(v=X)`: bytes of a string, elements of a slice or map.
pub fn go_len(kwargs: Kwargs, _: &State) -> TeraResult<i64> {
    check_limits()?;
    let v = value_arg(&kwargs, "v")?;
    let n = match Go::of(&v) {
        Go::Str(s) => s.len(),
        Go::Bytes(b) => b.len(),
        Go::Slice(items) => items.len(),
        Go::Map(map) => sorted_entries(map).len(),
        Go::Nil => return Err(call_error("len", "len of nil pointer")),
        other => {
            return Err(call_error(
                "len",
                format!("len of type {}", deref_type_name(&other)),
            ));
        }
    };
    Ok(n as i64)
}

/// Go's `indexArg`: an integer index within `0..=cap`.
fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x: i128 = match Go::of(index) {
        Go::Int(i) => i128::from(i),
        Go::Uint(u) => i128::from(u as i64),
        Go::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(item: Value, keys: &[Value]) -> Result<Value, String> {
    if matches!(Go::of(&item), Go::Nil) {
        return Err("index of untyped nil".into());
    }
    let mut item = item;
    for key in keys {
        let next = match Go::of(&item) {
            Go::Nil => return Err("index of nil pointer".into()),
            Go::Slice(items) => {
                let x = index_arg(key, items.len())?;
                items
                    .get(x)
                    .cloned()
                    .ok_or("reflect: slice index out of range")?
            }
            Go::Str(s) => {
                let x = index_arg(key, s.len())?;
                // A string's element is a byte (uint8).
                let byte = s
                    .as_bytes()
                    .get(x)
                    .ok_or("reflect: string index out of range")?;
                Value::from(*byte)
            }
            Go::Map(map) => match Go::of(key) {
                Go::Str(k) => map
                    .get(&super::value::key(k))
                    .cloned()
                    .unwrap_or_else(Value::none),
                Go::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            other => {
                return Err(format!(
                    "can't index item of type {}",
                    deref_type_name(&other)
                ));
            }
        };
        item = next;
    }
    Ok(item)
}

/// `go_index(v=X, keys=[…])`: Go's `index X k1 k2…`; a missing map key
/// gives nil (printed `<no value>`).
pub fn go_index(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let item = value_arg(&kwargs, "v")?;
    let keys = list(&kwargs, "keys")?;
    index(item, &keys).map_err(|e| call_error("index", e))
}

fn slice(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    let go = Go::of(item);
    if matches!(go, Go::Nil) {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match go {
        Go::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Go::Slice(items) => items.len(),
        other => {
            return Err(format!(
                "can't slice item of type {}",
                deref_type_name(&other)
            ));
        }
    };
    // Go checks against the capacity, which for the slices templates get is
    // their length.
    let mut idx = [0, len, len];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match go {
        Go::Str(s) => Value::from(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).as_ref()),
        Go::Slice(items) => Value::from(items[idx[0]..idx[1]].to_vec()),
        _ => Value::none(),
    })
}

/// `go_slice(v=X, args=[…])`: Go's `slice X i j k`.
pub fn go_slice(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let item = value_arg(&kwargs, "v")?;
    let args = list(&kwargs, "args")?;
    slice(&item, &args).map_err(|e| call_error("slice", e))
}

/// `go_print(args=[…])`: `fmt.Sprint`.
pub fn go_print(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(sprint(&list(&kwargs, "args")?))
}

/// `go_println(args=[…])`: `fmt.Sprintln`.
pub fn go_println(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(sprintln(&list(&kwargs, "args")?))
}

/// `go_printf(format=F, args=[…])`: `fmt.Sprintf`.
pub fn go_printf(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    let format = kwargs.must_get::<&str>("format")?;
    Ok(sprintf(format, &list(&kwargs, "args")?))
}

/// text/template's `evalArgs`: one string argument as it is, else
/// `fmt.Sprint` of the arguments with nil as `<no value>` and pointers
/// followed.
fn eval_args(args: &[Value]) -> String {
    if let [one] = args
        && let Some(s) = one.as_str()
    {
        return s.to_string();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|arg| match Go::of(arg) {
            Go::Nil => Value::from("<no value>"),
            _ => arg.clone(),
        })
        .collect();
    let mut out = String::new();
    let mut prev_string = false;
    // Sprint's spacing on the printable values; pointers print as their
    // struct (printableValue follows them).
    for (i, arg) in printable.iter().enumerate() {
        let is_string = arg.is_string();
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        match Go::of(arg) {
            Go::Srv(_) => out.push_str(&template_print(arg)),
            _ => out.push_str(&sprint(std::slice::from_ref(arg))),
        }
        prev_string = is_string;
    }
    out
}

/// `go_html(args=[…])`.
pub fn go_html(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(html_escape(&eval_args(&list(&kwargs, "args")?)))
}

/// `go_js(args=[…])`.
pub fn go_js(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(js_escape(&eval_args(&list(&kwargs, "args")?)))
}

/// `go_urlquery(args=[…])`.
pub fn go_urlquery(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(url_query_escape(&eval_args(&list(&kwargs, "args")?)))
}

fn field(value: &Value, name: &str) -> Result<Value, String> {
    // A field of something missing is missing (`.nokey.x` prints
    // `<no value>`), but a field of a nil that is there (a JSON null) is
    // Go's nil pointer error.
    if is_missing(value) {
        return Ok(missing());
    }
    let go = Go::of(value);
    let found = match go {
        Go::Nil => return Err(format!("nil pointer evaluating interface {{}}.{name}")),
        Go::Map(map) => {
            return Ok(map
                .get(&super::value::key(name))
                .cloned()
                .unwrap_or_else(missing));
        }
        Go::KvPair(map) if matches!(name, "Key" | "Value") => {
            map.get(&super::value::key(name)).cloned()
        }
        Go::Srv(map) if matches!(name, "Target" | "Port" | "Priority" | "Weight") => {
            map.get(&super::value::key(name)).cloned()
        }
        Go::Time(map) => super::time::method(map, name),
        _ => None,
    };
    found.ok_or_else(|| format!("can't evaluate field {name} in type {}", go.type_name()))
}

/// `go_nodata()`: the data confd runs a template with (none at all), and
/// what `{{template "t"}}` passes without a pipeline.
pub fn go_nodata(_: Kwargs, _: &State) -> TeraResult<Value> {
    Ok(missing())
}

/// `go_field(v=X, name=N)`: Go's `X.N` (a struct field, a map key, or one
/// of `time.Time`'s methods without arguments).
pub fn go_field(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let value = value_arg(&kwargs, "v")?;
    let name = kwargs.must_get::<&str>("name")?;
    field(&value, name).map_err(Error::message)
}

/// `go_items(v=X)`: what `range X` visits, as `[key, element]` pairs: a
/// slice's indexes, a map's keys in sorted order; nothing for nil.
pub fn go_items(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let value = value_arg(&kwargs, "v")?;
    let items: Vec<Value> = match Go::of(&value) {
        Go::Nil => Vec::new(),
        Go::Slice(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| Value::from(vec![Value::from(i), item.clone()]))
            .collect(),
        Go::Map(map) => sorted_entries(map)
            .into_iter()
            .map(|(k, v)| Value::from(vec![k.as_value(), v.clone()]))
            .collect(),
        _ => {
            return Err(Error::message(format!(
                "range can't iterate over {}",
                sprint(std::slice::from_ref(&value))
            )));
        }
    };
    Ok(Value::from(items))
}
