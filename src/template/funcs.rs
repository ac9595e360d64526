//! confd's template filters and functions beyond the data helpers, under the
//! names confd users know (`base`, `split`, `json`, `atoi`, `seq`, `add`, …).
//! Each fails with a message naming the helper and the bad input instead of
//! printing confd's `<no value>`, and each first checks the render's limits
//! (`data::check_limits`), which is what lets a loop calling them be stopped.
//! `range` replaces Tera's own function of that name for the same reason.

use std::collections::BTreeMap;

use base64::Engine as _;
use tera::{Error, Kwargs, State, StringInput, TeraResult, Value};

use super::data::check_limits;

/// Longest list `seq` builds, so a typo cannot exhaust memory.
const MAX_SEQ_LEN: i64 = 1_000_000;

/// Longest list `range` builds: Tera's own limit, kept so that templates
/// behave as Tera documents.
const MAX_RANGE_LEN: i128 = 100_000;

/// Go's `path.Base`: the last element; `"."` for an empty path, `"/"` for slashes only.
pub(crate) fn path_base(path: &str) -> String {
    base_of(path).to_string()
}

/// [`path_base`] as a part of `path` (or a constant), so that the `base`
/// filter, called once per host in the usual template, copies the name once.
fn base_of(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Go's `path.Dir`: everything but the last element, cleaned.
pub(crate) fn path_dir(path: &str) -> String {
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "",
    };
    go_clean(dir)
}

/// Go's `path.Clean` (relative paths stay relative, empty becomes ".").
pub(crate) fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

pub(crate) fn base(value: &str, _: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    Ok(Value::from(base_of(value)))
}

pub(crate) fn dir(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(path_dir(value))
}

/// `split(on=SEP)`; Tera's own spelling `split(pat=SEP)` keeps working.
pub(crate) fn split(value: &str, kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    check_limits()?;
    let separator = match kwargs.get::<&str>("on")? {
        Some(sep) => sep,
        None => kwargs
            .must_get::<&str>("pat")
            .map_err(|_| Error::message("split: missing separator, write split(on=\"…\")"))?,
    };
    Ok(go_split(value, separator))
}

/// Go's `strings.Split`: an empty separator splits after each UTF-8
/// character (so `""` gives no parts), where Rust's `split("")` also yields
/// an empty part at each end; an empty input with a separator is one empty
/// part, as in Rust.
fn go_split(value: &str, separator: &str) -> Vec<String> {
    if separator.is_empty() {
        return value.chars().map(String::from).collect();
    }
    value.split(separator).map(str::to_string).collect()
}

pub(crate) fn to_upper(value: StringInput, _: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    Ok(value.inherit_safety(value.as_str().to_uppercase()))
}

pub(crate) fn to_lower(value: StringInput, _: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    Ok(value.inherit_safety(value.as_str().to_lowercase()))
}

pub(crate) fn contains(value: &str, kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let needle = kwargs.must_get::<&str>("substr")?;
    Ok(value.contains(needle))
}

pub(crate) fn trim_suffix(value: &str, kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    let suffix = kwargs.must_get::<&str>("suffix")?;
    Ok(value.strip_suffix(suffix).unwrap_or(value).to_string())
}

pub(crate) fn base64_encode(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(value))
}

pub(crate) fn base64_decode(value: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| Error::message(format!("base64Decode: {value:?} is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::message("base64Decode: the decoded bytes are not UTF-8 text"))
}

/// Parses an integer the way Go's `strconv.Atoi` does (optional sign, base 10).
fn parse_int(helper: &str, text: &str) -> TeraResult<i64> {
    text.parse::<i64>()
        .map_err(|_| Error::message(format!("{helper}: {text:?} is not an integer")))
}

pub(crate) fn atoi(value: &str, _: Kwargs, _: &State) -> TeraResult<i64> {
    check_limits()?;
    parse_int("atoi", value)
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(value: &str, _: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(Error::message(format!(
            "parseBool: {other:?} is not a boolean (1, t, true, 0, f, false, …)"
        ))),
    }
}

/// Converts parsed JSON to a template value; objects keep sorted keys so that
/// iterating over them is deterministic, and integers up to 64 bits stay exact.
fn json_to_value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::none(),
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::from(items.into_iter().map(json_to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, json_to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

fn parse_json(helper: &str, text: &str) -> TeraResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| Error::message(format!("{helper}: invalid JSON: {e}")))
}

/// `json`: parses a JSON object.
pub(crate) fn json(value: &str, _: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    match parse_json("json", value)? {
        object @ serde_json::Value::Object(_) => Ok(json_to_value(object)),
        _ => Err(Error::message(
            "json: the value is not a JSON object (use jsonArray for arrays)",
        )),
    }
}

/// `jsonArray`: parses a JSON array.
pub(crate) fn json_array(value: &str, _: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    match parse_json("jsonArray", value)? {
        array @ serde_json::Value::Array(_) => Ok(json_to_value(array)),
        _ => Err(Error::message(
            "jsonArray: the value is not a JSON array (use json for objects)",
        )),
    }
}

fn string_items(helper: &str, value: &Value) -> TeraResult<Vec<String>> {
    let items = value
        .as_array()
        .ok_or_else(|| Error::message(format!("{helper}: expected a list of strings")))?;
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::message(format!("{helper}: expected a list of strings")))
        })
        .collect()
}

/// `sortByLength`: strings, shortest first; equal lengths sorted by text so
/// the output never depends on input order.
pub(crate) fn sort_by_length(value: Value, _: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    check_limits()?;
    let mut items = string_items("sortByLength", &value)?;
    items.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    Ok(items)
}

/// `sortKVByLength`: `{key, value}` pairs, shortest key first.
pub(crate) fn sort_kv_by_length(value: Value, _: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let items = value
        .as_array()
        .ok_or_else(|| Error::message("sortKVByLength: expected a list of {key, value} pairs"))?;
    let mut keyed: Vec<(String, Value)> = items
        .iter()
        .map(|item| {
            item.as_map()
                .and_then(|m| m.get(&tera::value::Key::Str("key")))
                .and_then(Value::as_str)
                .map(|k| (k.to_string(), item.clone()))
                .ok_or_else(|| {
                    Error::message("sortKVByLength: expected a list of {key, value} pairs")
                })
        })
        .collect::<TeraResult<_>>()?;
    keyed.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
    Ok(Value::from(
        keyed.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    ))
}

/// An integer argument, given as a number or as a decimal string (store values
/// are strings, so `getv(...) | add(b=1)` works without `atoi`).
fn int_value(helper: &str, name: &str, value: Option<&Value>) -> TeraResult<i64> {
    let value =
        value.ok_or_else(|| Error::message(format!("{helper}: missing argument `{name}`")))?;
    if let Some(text) = value.as_str() {
        return parse_int(helper, text.trim());
    }
    value
        .as_i64()
        .ok_or_else(|| Error::message(format!("{helper}: `{name}` must be an integer")))
}

fn kwarg<'k>(kwargs: &'k Kwargs, name: &'k str) -> TeraResult<Option<Value>> {
    kwargs.get::<Value>(name)
}

/// The integer operations shared by the function and filter forms.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl Arith {
    fn name(self) -> &'static str {
        match self {
            Arith::Add => "add",
            Arith::Sub => "sub",
            Arith::Mul => "mul",
            Arith::Div => "div",
            Arith::Mod => "mod",
        }
    }

    fn apply(self, a: i64, b: i64) -> TeraResult<i64> {
        let name = self.name();
        if matches!(self, Arith::Div | Arith::Mod) && b == 0 {
            return Err(Error::message(format!("{name}: division by zero")));
        }
        let result = match self {
            Arith::Add => a.checked_add(b),
            Arith::Sub => a.checked_sub(b),
            Arith::Mul => a.checked_mul(b),
            Arith::Div => a.checked_div(b),
            Arith::Mod => a.checked_rem(b),
        };
        result.ok_or_else(|| Error::message(format!("{name}: {a} and {b} overflow 64 bits")))
    }

    /// `add(a=X, b=Y)`.
    pub(crate) fn function(self) -> impl Fn(Kwargs, &State) -> TeraResult<i64> + Send + Sync {
        move |kwargs, _| {
            check_limits()?;
            let a = int_value(self.name(), "a", kwarg(&kwargs, "a")?.as_ref())?;
            let b = int_value(self.name(), "b", kwarg(&kwargs, "b")?.as_ref())?;
            self.apply(a, b)
        }
    }

    /// `X | add(b=Y)`.
    pub(crate) fn filter(self) -> impl Fn(Value, Kwargs, &State) -> TeraResult<i64> + Send + Sync {
        move |value, kwargs, _| {
            check_limits()?;
            let a = int_value(self.name(), "value", Some(&value))?;
            let b = int_value(self.name(), "b", kwarg(&kwargs, "b")?.as_ref())?;
            self.apply(a, b)
        }
    }
}

/// `seq(first=A, last=B)`: the integers A..=B (empty when A > B, as confd).
pub(crate) fn seq(kwargs: Kwargs, _: &State) -> TeraResult<Vec<i64>> {
    check_limits()?;
    let first = int_value("seq", "first", kwarg(&kwargs, "first")?.as_ref())?;
    let last = int_value("seq", "last", kwarg(&kwargs, "last")?.as_ref())?;
    if last >= first && last.saturating_sub(first) >= MAX_SEQ_LEN {
        return Err(Error::message(format!(
            "seq: {first}..{last} is longer than {MAX_SEQ_LEN} items"
        )));
    }
    Ok((first..=last).collect())
}

/// `map(pairs=[k1, v1, k2, v2, …])` as confd's `map k1 v1 k2 v2`, or
/// `map(k1=v1, k2=v2)` in Tera's keyword style. Keys are sorted.
pub(crate) fn make_map(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(pairs) = kwargs.get::<Value>("pairs")? {
        let items = pairs
            .as_array()
            .ok_or_else(|| Error::message("map: `pairs` must be a list [key, value, …]"))?;
        if items.len() % 2 != 0 {
            return Err(Error::message(
                "map: `pairs` needs an even number of items (key, value, …)",
            ));
        }
        for pair in items.chunks(2) {
            let key = pair[0]
                .as_str()
                .ok_or_else(|| Error::message("map: keys must be strings"))?;
            map.insert(key.to_string(), pair[1].clone());
        }
    } else {
        for (key, value) in kwargs.iter() {
            let key = key
                .as_str()
                .ok_or_else(|| Error::message("map: keys must be strings"))?;
            map.insert(key.to_string(), value.clone());
        }
    }
    Ok(Value::from(map))
}

/// `lookupIP(name=H)`: every address H resolves to, sorted and de-duplicated
/// so that DNS round-robin never changes the rendered file; `[]` for a name
/// that does not exist, an error when no name server answers in time (an
/// empty list would drop every address from the file).
pub(crate) fn lookup_ip(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    check_limits()?;
    let name = kwargs.must_get::<&str>("name")?;
    let addresses =
        crate::dns::lookup_ip(name).map_err(|e| Error::message(format!("lookupIP: {e}")))?;
    Ok(addresses.into_iter().map(|a| a.to_string()).collect())
}

/// `lookupSRV(service=S, proto=P, name=N)`: the SRV records of
/// `_S._P.N` (or of `N` alone when service and proto are empty) as
/// `{target, port, priority, weight}`, sorted so that DNS shuffling never
/// changes the rendered file.
pub(crate) fn lookup_srv(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let service = kwargs.get::<&str>("service")?.unwrap_or("");
    let proto = kwargs.get::<&str>("proto")?.unwrap_or("");
    let name = kwargs.must_get::<&str>("name")?;
    let records = crate::dns::lookup_srv(service, proto, name)
        .map_err(|e| Error::message(format!("lookupSRV: {e}")))?;
    Ok(Value::from(
        records
            .into_iter()
            .map(|r| {
                let mut map = BTreeMap::new();
                map.insert("target", Value::from(r.target));
                map.insert("port", Value::from(r.port));
                map.insert("priority", Value::from(r.priority));
                map.insert("weight", Value::from(r.weight));
                Value::from(map)
            })
            .collect::<Vec<_>>(),
    ))
}

/// `fileExists(path=P)`.
pub(crate) fn file_exists(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let path = kwargs.must_get::<&str>("path")?;
    Ok(std::path::Path::new(path).exists())
}

/// `datetime()`: the current time, RFC 3339 in UTC.
pub(crate) fn datetime(_: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    Ok(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string())
}

/// `range(end=E[, start=S][, step_by=N])`: Tera's own function, with the
/// same arguments, results and messages, plus the limit check. Nested loops
/// over `range` are the usual shape of a runaway template, and this makes
/// each pass of the outer loop a point where the render can be stopped.
pub(crate) fn range(kwargs: Kwargs, _: &State) -> TeraResult<Vec<i128>> {
    check_limits()?;
    let start = kwargs.get::<i128>("start")?.unwrap_or_default();
    let end = kwargs.must_get::<i128>("end")?;
    let step_by = kwargs.get::<i128>("step_by")?.unwrap_or(1);
    if start > end && step_by > 0 {
        return Err(Error::message(
            "Function `range` was called with a `start` argument greater than the `end` one",
        ));
    }
    if step_by == 0 {
        return Err(Error::message(
            "Function `range` was called with a `step_by` argument of 0",
        ));
    }
    let overflow =
        || Error::message("Function `range` was called with arguments that overflow i128");
    let len = if step_by > 0 {
        let span = end.checked_sub(start).ok_or_else(overflow)?;
        span.checked_add(step_by - 1).ok_or_else(overflow)? / step_by
    } else if start <= end {
        0
    } else {
        let step = step_by.checked_neg().ok_or_else(overflow)?;
        let span = start.checked_sub(end).ok_or_else(overflow)?;
        span.checked_add(step - 1).ok_or_else(overflow)? / step
    };
    if len > MAX_RANGE_LEN {
        return Err(Error::message(format!(
            "Function `range` would produce {len} elements, which exceeds the limit of {MAX_RANGE_LEN}"
        )));
    }
    // `len` is at most MAX_RANGE_LEN here, and every element fits: the
    // checked arithmetic above bounded the span.
    Ok((0..len).map(|i| start + i * step_by).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_dir_follow_go_path() {
        assert_eq!(path_base("/services/web/a.example.com"), "a.example.com");
        assert_eq!(path_base("/services/web/"), "web");
        assert_eq!(path_base(""), ".");
        assert_eq!(path_base("///"), "/");
        assert_eq!(path_base("plain"), "plain");
        assert_eq!(path_dir("/services/web/a"), "/services/web");
        assert_eq!(path_dir("/a"), "/");
        assert_eq!(path_dir("a"), ".");
        assert_eq!(path_dir("/a/b/"), "/a/b");
        assert_eq!(path_dir(""), ".");
    }

    #[test]
    fn split_follows_go_strings_split() {
        let split = |value: &str, separator: &str| go_split(value, separator);
        assert_eq!(split("a,b,,c", ","), ["a", "b", "", "c"]);
        assert_eq!(split(",a,", ","), ["", "a", ""]);
        assert_eq!(split("abc", "::"), ["abc"]);
        assert_eq!(split("a::b", "::"), ["a", "b"]);
        // strings.Split("", ",") is [""]; strings.Split("", "") is [].
        assert_eq!(split("", ","), [""]);
        assert!(split("", "").is_empty());
        // strings.Split("héllo", "") is one part per UTF-8 character.
        assert_eq!(split("héllo", ""), ["h", "é", "l", "l", "o"]);
        assert_eq!(split("日本", ""), ["日", "本"]);
    }

    #[test]
    fn arithmetic_rejects_division_by_zero_and_overflow() {
        assert_eq!(Arith::Add.apply(2, 3).ok(), Some(5));
        assert_eq!(Arith::Mod.apply(7, 3).ok(), Some(1));
        assert!(Arith::Div.apply(1, 0).is_err());
        assert!(Arith::Mod.apply(1, 0).is_err());
        assert!(Arith::Mul.apply(i64::MAX, 2).is_err());
        assert!(Arith::Div.apply(i64::MIN, -1).is_err());
    }

    #[test]
    fn json_keeps_64_bit_integers_exact() {
        let v = json_to_value(serde_json::json!({"big": 9007199254740993u64, "neg": i64::MIN}));
        let map = v.as_map().expect("object");
        assert_eq!(
            map.get(&tera::value::Key::Str("big"))
                .and_then(Value::as_u64),
            Some(9007199254740993)
        );
        assert_eq!(
            map.get(&tera::value::Key::Str("neg"))
                .and_then(Value::as_i64),
            Some(i64::MIN)
        );
    }
}
