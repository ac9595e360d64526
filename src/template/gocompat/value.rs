//! How Go sees a template value: the contract's mapping from Tera values to
//! the Go types confd's templates handle (`string`, `int`, `float64`, `bool`,
//! nil, slices, maps, `memkv.KVPair`, `*net.SRV`, `time.Time`), and the
//! constructors of the marked maps that stand for Go structs.
//!
//! Go structs have no Tera counterpart, so they travel as maps carrying a
//! marker entry whose key no backend, JSON document or template literal
//! produces in practice (it starts with U+0001). The printing and comparison
//! code looks for the marker to print `{/key value}` rather than a map.

use tera::Value;
use tera::value::{Key, Map};

/// The marker entry of a `memkv.KVPair` (what confd's `get`, `gets` and
/// `sortKVByLength` return): a map `{"Key": K, "Value": V, KVPAIR_MARKER: true}`.
pub const KVPAIR_MARKER: &str = "\u{1}go:memkv.KVPair";
/// The marker entry of a `*net.SRV` (what confd's `lookupSRV` returns): a map
/// `{"Target", "Port", "Priority", "Weight", SRV_MARKER: true}`.
pub const SRV_MARKER: &str = "\u{1}go:*net.SRV";
/// The whole of a value that is not there at all (Go's invalid
/// `reflect.Value`): a map key that is missing, or the data of a template
/// run without any (confd runs its templates with nil data). It prints and
/// tests as nil, and a field of it is missing too, where a field of a nil
/// that is there (a JSON `null`) is an error, as in Go.
pub const MISSING_MARKER: &str = "\u{1}go:missing";

/// A missing value (see [`MISSING_MARKER`]).
pub fn missing() -> Value {
    let mut map = Map::new();
    map.insert(key(MISSING_MARKER), Value::from(true));
    Value::from(map)
}

/// Whether `value` is [`missing`].
pub fn is_missing(value: &Value) -> bool {
    value
        .as_map()
        .is_some_and(|map| map.contains_key(&key(MISSING_MARKER)))
}
/// The marker entry of a `time.Time` (what confd's `datetime` returns); its
/// value is the instant as RFC 3339 with nanoseconds and the UTC offset, e.g.
/// `2024-05-01T12:00:00.5+02:00`.
pub const TIME_MARKER: &str = "\u{1}go:time.Time";
/// Beside [`TIME_MARKER`]: the zone's abbreviation (`UTC`, `CEST`), which Go
/// prints and an offset alone cannot give.
pub const TIME_ZONE_KEY: &str = "\u{1}go:zone";

/// A value as Go's `fmt` and `text/template` classify it.
#[derive(Debug, Clone, Copy)]
pub enum Go<'a> {
    /// Go's nil (a nil interface): Tera's none, or undefined.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` (any signed integer).
    Int(i64),
    /// `uint64`, for integers above `i64::MAX` only.
    Uint(u64),
    /// `float64`.
    Float(f64),
    /// `string`.
    Str(&'a str),
    /// A slice (`[]string`, `[]interface{}`, `[]int`).
    Slice(&'a [Value]),
    /// `map[string]interface{}`.
    Map(&'a Map),
    /// `memkv.KVPair`.
    KvPair(&'a Map),
    /// `*net.SRV`.
    Srv(&'a Map),
    /// `time.Time`.
    Time(&'a Map),
    /// Bytes have no Go counterpart in confd's templates; printed as a string.
    Bytes(&'a [u8]),
}

impl<'a> Go<'a> {
    /// Classifies a Tera value.
    pub fn of(value: &'a Value) -> Go<'a> {
        if value.is_none() || value.is_undefined() || is_missing(value) {
            return Go::Nil;
        }
        if let Some(b) = value.as_bool() {
            return Go::Bool(b);
        }
        if let Some(s) = value.as_str() {
            return Go::Str(s);
        }
        if value.is_f64() {
            return Go::Float(value.as_f64().unwrap_or(f64::NAN));
        }
        if let Some(i) = value.as_i64() {
            return Go::Int(i);
        }
        if let Some(u) = value.as_u64() {
            return Go::Uint(u);
        }
        if let Some(i) = value.as_i128() {
            // Wider than any Go integer: the nearest Go can hold.
            return Go::Float(i as f64);
        }
        if let Some(u) = value.as_u128() {
            return Go::Float(u as f64);
        }
        if let Some(items) = value.as_array() {
            return Go::Slice(items);
        }
        if let Some(map) = value.as_map() {
            if map.contains_key(&Key::Str(KVPAIR_MARKER)) {
                return Go::KvPair(map);
            }
            if map.contains_key(&Key::Str(SRV_MARKER)) {
                return Go::Srv(map);
            }
            if map.contains_key(&Key::Str(TIME_MARKER)) {
                return Go::Time(map);
            }
            return Go::Map(map);
        }
        Go::Bytes(value.as_bytes().unwrap_or_default())
    }

    /// Go's type name, as `%T` and `fmt`'s error forms (`%!d(string=x)`) print
    /// it. Slices of strings are taken for `[]string` (what `split`, `ls`,
    /// `getvs` return) and other slices for `[]interface {}` (JSON arrays).
    pub fn type_name(&self) -> &'static str {
        match self {
            Go::Nil => "<nil>",
            Go::Bool(_) => "bool",
            Go::Int(_) => "int",
            Go::Uint(_) => "uint64",
            Go::Float(_) => "float64",
            Go::Str(_) => "string",
            Go::Slice(items) => {
                if !items.is_empty() && items.iter().all(Value::is_string) {
                    "[]string"
                } else if !items.is_empty() && items.iter().all(|v| v.as_i64().is_some()) {
                    "[]int"
                } else if !items.is_empty()
                    && items.iter().all(|v| matches!(Go::of(v), Go::KvPair(_)))
                {
                    "[]memkv.KVPair"
                } else {
                    "[]interface {}"
                }
            }
            Go::Map(_) => "map[string]interface {}",
            Go::KvPair(_) => "memkv.KVPair",
            Go::Srv(_) => "*net.SRV",
            Go::Time(_) => "time.Time",
            Go::Bytes(_) => "[]uint8",
        }
    }
}

/// A map key for a name known only at run time (Tera's maps are keyed by
/// `Key<'static>`).
pub fn key(name: &str) -> Key<'static> {
    Key::String(name.into())
}

/// A string field of a marked map ("" when absent).
pub fn field_str<'m>(map: &'m Map, name: &str) -> &'m str {
    map.get(&key(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// An integer field of a marked map (0 when absent).
pub fn field_int(map: &Map, name: &str) -> i64 {
    map.get(&key(name))
        .and_then(Value::as_i64)
        .unwrap_or_default()
}

/// A `memkv.KVPair`.
pub fn kvpair(key: &str, value: &str) -> Value {
    let mut map = Map::new();
    map.insert(Key::Str("Key"), Value::from(key));
    map.insert(Key::Str("Value"), Value::from(value));
    map.insert(Key::Str(KVPAIR_MARKER), Value::from(true));
    Value::from(map)
}

/// A `*net.SRV`.
pub fn srv(target: &str, port: u16, priority: u16, weight: u16) -> Value {
    let mut map = Map::new();
    map.insert(Key::Str("Target"), Value::from(target));
    map.insert(Key::Str("Port"), Value::from(port));
    map.insert(Key::Str("Priority"), Value::from(priority));
    map.insert(Key::Str("Weight"), Value::from(weight));
    map.insert(Key::Str(SRV_MARKER), Value::from(true));
    Value::from(map)
}

/// A map's entries sorted as Go's `fmt` and `range` order them: strings
/// lexically by bytes, numbers numerically. The marker entries of structs
/// are never part of a Go map, so they are left out.
pub fn sorted_entries(map: &Map) -> Vec<(&Key<'static>, &Value)> {
    let mut entries: Vec<(&Key<'static>, &Value)> = map
        .iter()
        .filter(|(k, _)| !k.as_str().is_some_and(|s| s.starts_with('\u{1}')))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}
