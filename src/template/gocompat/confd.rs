//! confd 0.16's non-data helpers where this project's native ones differ in
//! behaviour, value shape or error text (see the table in the module docs
//! of `gocompat`): Go's int arithmetic, `json`/`jsonArray` with float64
//! numbers, `map`, `atoi`, `parseBool`, `reverse`, the length sorts with Go's
//! unstable order, `lookupIP`/`lookupSRV` as confd sorts them, `fileExists`,
//! `base64Decode`, `toUpper`/`toLower` (Go's per-character mapping) and
//! `replace` with its count.

use std::collections::BTreeMap;

use base64::Engine as _;
use tera::Map;
use tera::{Error, Kwargs, State, TeraResult, Value};

use super::confd_data::string_arg;
use super::sort::go_sort;
use super::value::{Go, field_int, field_str, kvpair, srv};
use crate::template::data::check_limits;

fn call_error(name: &str, message: impl std::fmt::Display) -> Error {
    Error::message(format!("error calling {name}: {message}"))
}

/// A Go `int` parameter: integers only, as text/template passes them.
fn int_arg(kwargs: &Kwargs, name: &str) -> TeraResult<i64> {
    let value = kwargs
        .get::<Value>(name)?
        .ok_or_else(|| Error::message(format!("missing argument `{name}`")))?;
    match Go::of(&value) {
        Go::Int(i) => Ok(i),
        // A uint64 above i64::MAX wraps into Go's int, as a conversion would.
        Go::Uint(u) => Ok(u as i64),
        Go::Nil => Err(Error::message("invalid value; expected int")),
        other => Err(Error::message(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        ))),
    }
}

/// Go's `int` operators, which wrap on overflow; dividing by zero is Go's
/// runtime panic, which text/template reports as the call's error.
#[derive(Debug, Clone, Copy)]
pub enum GoArith {
    /// `add`.
    Add,
    /// `sub`.
    Sub,
    /// `mul`.
    Mul,
    /// `div`: truncates toward zero.
    Div,
    /// `mod`: the sign follows the dividend.
    Mod,
}

impl GoArith {
    fn name(self) -> &'static str {
        match self {
            GoArith::Add => "add",
            GoArith::Sub => "sub",
            GoArith::Mul => "mul",
            GoArith::Div => "div",
            GoArith::Mod => "mod",
        }
    }

    /// Go's result of `a op b`.
    pub fn apply(self, a: i64, b: i64) -> Result<i64, String> {
        if matches!(self, GoArith::Div | GoArith::Mod) && b == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(match self {
            GoArith::Add => a.wrapping_add(b),
            GoArith::Sub => a.wrapping_sub(b),
            GoArith::Mul => a.wrapping_mul(b),
            // MinInt64 / -1 is MinInt64 in Go, and the remainder 0.
            GoArith::Div => a.wrapping_div(b),
            GoArith::Mod => a.wrapping_rem(b),
        })
    }

    /// `go_add(a=, b=)` and the others.
    pub fn function(self) -> impl Fn(Kwargs, &State) -> TeraResult<i64> + Send + Sync {
        move |kwargs, _| {
            check_limits()?;
            let a = int_arg(&kwargs, "a")?;
            let b = int_arg(&kwargs, "b")?;
            self.apply(a, b).map_err(|e| call_error(self.name(), e))
        }
    }
}

/// Parsed JSON as Go's `encoding/json` gives it to a template: every
/// number a float64, objects as maps (iterated in key order).
fn json_to_go(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::none(),
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::from(items.into_iter().map(json_to_go).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, json_to_go(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Go's name for the JSON value a document starts with, as its
/// `UnmarshalTypeError` says (`cannot unmarshal array into Go value of type
/// map[string]interface {}`).
fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn parse_json(helper: &str, text: &str) -> TeraResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| call_error(helper, format!("invalid JSON: {e}")))
}

/// `go_json(s=S)`: confd's `json`, `map[string]interface{}`; `null` gives
/// Go's nil map.
pub fn go_json(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let text = string_arg(&kwargs, "s")?;
    match parse_json("json", &text)? {
        serde_json::Value::Null => Ok(Value::from(Map::new())),
        object @ serde_json::Value::Object(_) => Ok(json_to_go(object)),
        other => Err(call_error(
            "json",
            format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            ),
        )),
    }
}

/// `go_jsonArray(s=S)`: confd's `jsonArray`, `[]interface{}`.
pub fn go_json_array(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let text = string_arg(&kwargs, "s")?;
    match parse_json("jsonArray", &text)? {
        serde_json::Value::Null => Ok(Value::from(Vec::<Value>::new())),
        array @ serde_json::Value::Array(_) => Ok(json_to_go(array)),
        other => Err(call_error(
            "jsonArray",
            format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(&other)
            ),
        )),
    }
}

/// `go_map(args=[k1, v1, …])`: confd's `CreateMap`.
pub fn go_map(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let args = kwargs.get::<Value>("args")?.unwrap_or_else(Value::none);
    let items = args.as_array().unwrap_or_default();
    if items.len() % 2 != 0 {
        return Err(call_error("map", "invalid map call"));
    }
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    for pair in items.chunks(2) {
        let key = pair[0]
            .as_str()
            .ok_or_else(|| call_error("map", "map keys must be strings"))?;
        map.insert(key.to_string(), pair[1].clone());
    }
    Ok(Value::from(map))
}

/// Go's `strconv.Atoi`, with its error text.
pub fn atoi(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            go_quote(text)
        ));
    }
    text.parse::<i64>().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            go_quote(text)
        )
    })
}

fn go_quote(text: &str) -> String {
    super::quote::quote(text.as_bytes(), false)
}

/// `go_atoi(s=S)`.
pub fn go_atoi(kwargs: Kwargs, _: &State) -> TeraResult<i64> {
    check_limits()?;
    let text = string_arg(&kwargs, "s")?;
    atoi(&text).map_err(|e| call_error("atoi", e))
}

/// `go_parseBool(s=S)`: `strconv.ParseBool`, with its error text.
pub fn go_parse_bool(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let text = string_arg(&kwargs, "s")?;
    match text.as_str() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(call_error(
            "parseBool",
            format!(
                "strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(other)
            ),
        )),
    }
}

/// Which of confd's slice types a value is, for the helpers declared on
/// `[]string` and `[]memkv.KVPair`.
fn is_string_slice(items: &[Value]) -> bool {
    items.iter().all(Value::is_string)
}

fn is_kv_slice(items: &[Value]) -> bool {
    items.iter().all(|v| matches!(Go::of(v), Go::KvPair(_)))
}

/// `go_reverse(v=X)`: confd's `Reverse`, which reverses a `[]string` or a
/// `[]memkv.KVPair` and returns anything else unchanged. Go reverses in
/// place, so the list the argument names is reversed too: the converter
/// assigns the result back to a variable it reversed.
pub fn go_reverse(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let value = kwargs.get::<Value>("v")?.unwrap_or_else(Value::none);
    match value.as_array() {
        Some(items) if is_string_slice(items) || is_kv_slice(items) => {
            let mut items = items.to_vec();
            items.reverse();
            Ok(Value::from(items))
        }
        _ => Ok(value),
    }
}

/// text/template's refusal of an argument of the wrong Go type.
fn wrong_slice(expected: &str, value: &Value) -> Error {
    Error::message(format!(
        "wrong type for value; expected {expected}; got {}",
        Go::of(value).type_name()
    ))
}

/// `go_sortByLength(v=X)`: confd's `SortByLength`, Go 1.19's unstable
/// `sort.Sort` by byte length.
pub fn go_sort_by_length(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    check_limits()?;
    let value = kwargs.get::<Value>("v")?.unwrap_or_else(Value::none);
    let items = match value.as_array() {
        Some(items) if is_string_slice(items) => items,
        _ => return Err(wrong_slice("[]string", &value)),
    };
    let mut strings: Vec<String> = items
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    go_sort(&mut strings, |a, b| a.len() < b.len());
    Ok(strings)
}

/// `go_sortKVByLength(v=X)`: confd's `SortKVByLength`, by the keys' byte
/// length, Go 1.19's unstable `sort.Sort`.
pub fn go_sort_kv_by_length(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let value = kwargs.get::<Value>("v")?.unwrap_or_else(Value::none);
    let items = match value.as_array() {
        Some(items) if is_kv_slice(items) => items,
        _ => return Err(wrong_slice("[]memkv.KVPair", &value)),
    };
    let mut pairs: Vec<(String, String)> = items
        .iter()
        .filter_map(|v| {
            v.as_map().map(|m| {
                (
                    field_str(m, "Key").to_string(),
                    field_str(m, "Value").to_string(),
                )
            })
        })
        .collect();
    go_sort(&mut pairs, |a, b| a.0.len() < b.0.len());
    Ok(Value::from(
        pairs.iter().map(|(k, v)| kvpair(k, v)).collect::<Vec<_>>(),
    ))
}

/// confd's `LookupIP`: the addresses as strings in `sort.Strings` order
/// (so `10.0.0.10` before `10.0.0.9`); none for a name that does not exist.
fn lookup_ip_strings(name: &str) -> TeraResult<Vec<String>> {
    // A resolver that does not answer fails the render (confd would render
    // an empty list and drop every address from the file).
    let addresses = crate::dns::lookup_ip(name).map_err(|e| call_error("lookupIP", e))?;
    let mut out: Vec<String> = addresses.into_iter().map(|a| a.to_string()).collect();
    out.sort();
    Ok(out)
}

/// `go_lookupIP(name=H)`.
pub fn go_lookup_ip(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    check_limits()?;
    lookup_ip_strings(&string_arg(&kwargs, "name")?)
}

/// `go_lookupIPV4(name=H)`: confd's filter on `.`.
pub fn go_lookup_ipv4(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    check_limits()?;
    let all = lookup_ip_strings(&string_arg(&kwargs, "name")?)?;
    Ok(all.into_iter().filter(|a| a.contains('.')).collect())
}

/// `go_lookupIPV6(name=H)`: confd's filter on `:`.
pub fn go_lookup_ipv6(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    check_limits()?;
    let all = lookup_ip_strings(&string_arg(&kwargs, "name")?)?;
    Ok(all.into_iter().filter(|a| a.contains(':')).collect())
}

/// `go_lookupSRV(service=S, proto=P, name=N)`: confd's `LookupSRV`,
/// `*net.SRV`s with Go's fully qualified targets (`host.example.com.`),
/// sorted by `sort.Sort` on the text target + port + priority + weight.
pub fn go_lookup_srv(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let service = string_arg(&kwargs, "service")?;
    let proto = string_arg(&kwargs, "proto")?;
    let name = string_arg(&kwargs, "name")?;
    let records =
        crate::dns::lookup_srv(&service, &proto, &name).map_err(|e| call_error("lookupSRV", e))?;
    let mut values: Vec<Value> = records
        .into_iter()
        .map(|r| srv(&format!("{}.", r.target), r.port, r.priority, r.weight))
        .collect();
    let text = |v: &Value| -> String {
        v.as_map().map_or_else(String::new, |m| {
            format!(
                "{}{}{}{}",
                field_str(m, "Target"),
                field_int(m, "Port"),
                field_int(m, "Priority"),
                field_int(m, "Weight")
            )
        })
    };
    go_sort(&mut values, |a, b| text(a) < text(b));
    Ok(Value::from(values))
}

/// `go_fileExists(path=P)`: confd's `IsFileExist`, false only when `stat`
/// says the file does not exist (a permission error counts as existing).
pub fn go_file_exists(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let path = string_arg(&kwargs, "path")?;
    Ok(match std::fs::metadata(&path) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    })
}

/// `go_base64Decode(s=S)`: Go's `base64.StdEncoding.DecodeString`, which
/// skips `\r` and `\n` and wants exact padding.
pub fn go_base64_decode(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    let text = string_arg(&kwargs, "s")?;
    let stripped: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stripped.as_bytes())
        .map_err(|e| {
            let at = match e {
                base64::DecodeError::InvalidByte(at, _)
                | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                _ => stripped.len() / 4 * 4,
            };
            call_error(
                "base64Decode",
                format!("illegal base64 data at input byte {at}"),
            )
        })?;
    String::from_utf8(bytes).map_err(|_| {
        call_error(
            "base64Decode",
            "the decoded bytes are not UTF-8 text, which a template cannot hold",
        )
    })
}

/// Go's `unicode.ToUpper`/`ToLower`: one character for one (simple case
/// mapping), where Rust's string methods apply the full mapping (`ß` →
/// `SS`) and context (final sigma).
fn map_chars(text: &str, upper: bool) -> String {
    text.chars()
        .map(|c| {
            if c == '\u{130}' && !upper {
                // İ's simple lowercase is i; its full one adds a dot above.
                return 'i';
            }
            let mut mapped = if upper {
                c.to_uppercase().collect::<Vec<char>>()
            } else {
                c.to_lowercase().collect::<Vec<char>>()
            };
            if mapped.len() == 1 {
                mapped.pop().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// `go_toUpper(s=S)`: `strings.ToUpper`.
pub fn go_to_upper(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(map_chars(&string_arg(&kwargs, "s")?, true))
}

/// `go_toLower(s=S)`: `strings.ToLower`.
pub fn go_to_lower(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(map_chars(&string_arg(&kwargs, "s")?, false))
}

/// `go_replace(s=S, old=O, new=N, n=COUNT)`: `strings.Replace`; a negative
/// count replaces every occurrence.
pub fn go_replace(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    let text = string_arg(&kwargs, "s")?;
    let old = string_arg(&kwargs, "old")?;
    let new = string_arg(&kwargs, "new")?;
    let n = int_arg(&kwargs, "n")?;
    Ok(match usize::try_from(n) {
        Ok(n) => text.replacen(&old, &new, n),
        Err(_) => text.replace(&old, &new),
    })
}
