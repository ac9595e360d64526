//! Go compatibility: template functions that give templates converted from
//! Go's text/template (`confd migrate`) the exact runtime semantics of Go
//! 1.19's text/template and fmt, and of confd 0.16's helpers, so that they
//! render byte for byte what Go confd renders.
//!
//! Every function is registered on every template under a `go_` name (never
//! clashing with this project's own helpers) and takes keyword arguments.
//!
//! # Values
//!
//! | Go | Tera |
//! |---|---|
//! | `string` | string |
//! | `int` (and the other integers) | integer (I64; U64 above `i64::MAX`) |
//! | `float64` (JSON numbers) | F64, always, even when integral |
//! | `bool` | bool |
//! | nil (nil interface, missing map key) | none |
//! | slices | array |
//! | `map[string]interface{}` | map (printed and ranged in key order) |
//! | `memkv.KVPair` | map `{Key, Value}` + [`KVPAIR_MARKER`] |
//! | `*net.SRV` | map `{Target, Port, Priority, Weight}` + [`SRV_MARKER`] |
//! | `time.Time` | map whose [`TIME_MARKER`] entry is RFC 3339 with nanoseconds |
//!
//! # text/template
//!
//! | Go | Tera call |
//! |---|---|
//! | `{{ X }}` (X not known to be a string) | `{{ go_str(v=X) }}`: `<no value>` for nil, `{target 80 10 5}` for an SRV |
//! | `if X`, `with X` | `go_truth(v=X)` |
//! | `and A B`, `or A B`, `not A` | `go_and(args=[A, B])`, `go_or(args=[A, B])`, `go_not(v=A)` (values; short-circuit is the converter's) |
//! | `eq A B C`, `ne A B` | `go_eq(args=[A, B, C])`, `go_ne(a=A, b=B)` |
//! | `lt le gt ge A B` | `go_lt(a=A, b=B)` … `go_ge(a=A, b=B)` |
//! | `len X` | `go_len(v=X)` |
//! | `index X K1 K2` | `go_index(v=X, keys=[K1, K2])` |
//! | `slice X I J` | `go_slice(v=X, args=[I, J])` |
//! | `print`, `println`, `printf F …` | `go_print(args=[…])`, `go_println(args=[…])`, `go_printf(format=F, args=[…])` |
//! | `html`, `js`, `urlquery` | `go_html(args=[…])`, `go_js(args=[…])`, `go_urlquery(args=[…])` |
//! | `.` and `$` of a template run without data | `go_nodata()`: missing, unlike a JSON `null` |
//! | `X.Name` | `go_field(v=X, name="Name")` (KVPair, SRV, map key, `time.Time` methods without arguments) |
//! | `range X` | `for pair in go_items(v=X)`: `pair[0]` the key or index, `pair[1]` the element |
//! | `(datetime).Format L` | `go_time_format(t=T, layout=L)` |
//!
//! # confd 0.16's helpers: the form the converter emits
//!
//! "native" means this project's helper gives confd's output for every
//! input confd accepts; a `go_` function exists where it does not.
//!
//! | confd | emit | why |
//! |---|---|---|
//! | `getv K`, `getv K D` | `go_getv(key=K)`, `go_getv(key=K, default=D)` | memkv looks keys up exactly (`/a/` misses `/a`); error `key does not exist: K` |
//! | `get K` | `go_get(key=K)` | a `memkv.KVPair` (`.Key`, `.Value`, prints `{K V}`) |
//! | `gets P` | `go_gets(pattern=P)` | KVPairs; `path.Match` on the whole key (`*` alone matches nothing), `syntax error in pattern` |
//! | `getvs P` | `go_getvs(pattern=P)` | same matching as `gets`; values sorted |
//! | `exists K` | `go_exists(key=K)` | exact key |
//! | `ls K` | `go_ls(key=K)` | memkv's `List`: a leaf lists its own name, `/` lists only top-level leaves |
//! | `lsdir K` | `go_lsdir(key=K)` | memkv's `ListDir`: `/` lists nothing |
//! | `getenv N`, `getenv N D` | native `getenv(key=N)`, `getenv(key=N, default=D)` | same |
//! | `base X`, `dir X` | native `X \| base`, `X \| dir` | `path.Base`, `path.Dir` |
//! | `split S SEP` | native `S \| split(on=SEP)` | `strings.Split` |
//! | `join L SEP` | native `L \| join(sep=SEP)` | same for `[]string` |
//! | `json S` | `go_json(s=S)` | numbers are float64 (`1e+06`, `80`); `null` is an empty map |
//! | `jsonArray S` | `go_jsonArray(s=S)` | as `json` |
//! | `map K1 V1 …` | `go_map(args=[K1, V1, …])` | confd's `invalid map call`, `map keys must be strings` |
//! | `toUpper S`, `toLower S` | `go_toUpper(s=S)`, `go_toLower(s=S)` | one character for one (`ß` stays `ß`, no final sigma) |
//! | `replace S OLD NEW N` | `go_replace(s=S, old=OLD, new=NEW, n=N)` | the count `N` (negative: all) |
//! | `contains S SUB` | native `S \| contains(substr=SUB)` | same |
//! | `trimSuffix S SUF` | native `S \| trimSuffix(suffix=SUF)` | same |
//! | `atoi S` | `go_atoi(s=S)` | `strconv.Atoi: parsing "x": invalid syntax` |
//! | `parseBool S` | `go_parseBool(s=S)` | `strconv.ParseBool` error text |
//! | `seq A B` | native `seq(first=A, last=B)` | same (A > B: empty) |
//! | `add sub mul div mod A B` | `go_add(a=A, b=B)` … `go_mod(a=A, b=B)` | Go ints: wrap on overflow, `div` truncates, `mod` takes the dividend's sign, by zero: `runtime error: integer divide by zero` |
//! | `base64Encode S` | native `S \| base64Encode` | same |
//! | `base64Decode S` | `go_base64Decode(s=S)` | skips `\r`/`\n`, exact padding, `illegal base64 data at input byte N` |
//! | `reverse L` | `go_reverse(v=L)` | only `[]string` and KVPairs reversed, anything else as is; Go reverses in place: for a variable, assign back (`set L = go_reverse(v=L)`) |
//! | `sortByLength L` | `go_sortByLength(v=L)` | Go 1.19's unstable `sort.Sort`: ties in Go's order; in place in Go, as `reverse` |
//! | `sortKVByLength L` | `go_sortKVByLength(v=L)` | as `sortByLength`, on the keys |
//! | `lookupIP H` | `go_lookupIP(name=H)` | `sort.Strings` order of the text (`10.0.0.10` < `10.0.0.9`); also `go_lookupIPV4`, `go_lookupIPV6` |
//! | `lookupSRV S P N` | `go_lookupSRV(service=S, proto=P, name=N)` | `*net.SRV` with the trailing dot, sorted on target+port+priority+weight as text |
//! | `fileExists P` | `go_fileExists(path=P)` | only "does not exist" is false |
//! | `datetime` | `go_datetime()` | a `time.Time`: prints `2006-01-02 15:04:05.999999999 +0000 UTC m=+0.001` |
//!
//! # Deviations and limits
//!
//! - Times are UTC: confd prints the host's local zone (identical on UTC
//!   hosts). The `m=+…` monotonic reading counts from the first time helper
//!   called, not from the program's start; it differs at every run anyway.
//! - `lookupIP`/`lookupSRV`: a resolver that does not answer fails the
//!   render (confd renders an empty list, dropping every address); a name
//!   that does not exist gives `[]` as in confd.
//! - Slices of strings from `jsonArray` look like `[]string`: `reverse` and
//!   `sortByLength` accept them (Go: `[]interface {}`, left as is / refused).
//! - A pointer inside a slice or map (`{{ lookupSRV … }}` printed whole) is
//!   an address in Go; here the struct `&{…}`.
//! - `printf`: `%#v` (Go syntax) of anything but strings prints plain
//!   `%v`; `%p` gives the error form.
//! - Printable characters (`%q`, `js`) follow ICU's Unicode version, Go
//!   1.19 Unicode 13: characters assigned since differ.
//! - `slice` bounds are checked against the length (Go: the capacity).
//! - `json`/`jsonArray` of text that is not JSON fail with serde's message,
//!   not Go's (`invalid character 'o' looking for …`); the wrong kind of
//!   document gives Go's `cannot unmarshal array into Go value …`.
//! - `(datetime).Month` and `.Weekday` are their English names (what
//!   `{{ }}` prints); `printf "%d"` of them is Go's number, not ours.
//! - `base64Decode` of bytes that are not UTF-8 fails (a template holds
//!   text); Go writes the bytes.

mod builtins;
mod compare;
mod confd;
mod confd_data;
mod float;
mod fmt;
mod quote;
mod sort;
mod time;
mod value;

#[cfg(test)]
mod tests;

use tera::Tera;

pub use value::{KVPAIR_MARKER, SRV_MARKER, TIME_MARKER, TIME_ZONE_KEY};

/// Registers every `go_` function on `tera`.
pub(crate) fn register(tera: &mut Tera) {
    tera.register_function("go_str", builtins::go_str);
    tera.register_function("go_truth", builtins::go_truth);
    tera.register_function("go_and", builtins::go_and);
    tera.register_function("go_or", builtins::go_or);
    tera.register_function("go_not", builtins::go_not);
    tera.register_function("go_eq", compare::go_eq);
    tera.register_function("go_ne", compare::go_ne);
    tera.register_function("go_lt", compare::go_lt);
    tera.register_function("go_le", compare::go_le);
    tera.register_function("go_gt", compare::go_gt);
    tera.register_function("go_ge", compare::go_ge);
    tera.register_function("go_len", builtins::go_len);
    tera.register_function("go_index", builtins::go_index);
    tera.register_function("go_slice", builtins::go_slice);
    tera.register_function("go_print", builtins::go_print);
    tera.register_function("go_println", builtins::go_println);
    tera.register_function("go_printf", builtins::go_printf);
    tera.register_function("go_html", builtins::go_html);
    tera.register_function("go_js", builtins::go_js);
    tera.register_function("go_urlquery", builtins::go_urlquery);
    tera.register_function("go_field", builtins::go_field);
    tera.register_function("go_nodata", builtins::go_nodata);
    tera.register_function("go_items", builtins::go_items);

    tera.register_function("go_getv", confd_data::go_getv);
    tera.register_function("go_get", confd_data::go_get);
    tera.register_function("go_gets", confd_data::go_gets);
    tera.register_function("go_getvs", confd_data::go_getvs);
    tera.register_function("go_exists", confd_data::go_exists);
    tera.register_function("go_ls", confd_data::go_ls);
    tera.register_function("go_lsdir", confd_data::go_lsdir);

    tera.register_function("go_json", confd::go_json);
    tera.register_function("go_jsonArray", confd::go_json_array);
    tera.register_function("go_map", confd::go_map);
    tera.register_function("go_atoi", confd::go_atoi);
    tera.register_function("go_parseBool", confd::go_parse_bool);
    tera.register_function("go_reverse", confd::go_reverse);
    tera.register_function("go_sortByLength", confd::go_sort_by_length);
    tera.register_function("go_sortKVByLength", confd::go_sort_kv_by_length);
    tera.register_function("go_lookupIP", confd::go_lookup_ip);
    tera.register_function("go_lookupIPV4", confd::go_lookup_ipv4);
    tera.register_function("go_lookupIPV6", confd::go_lookup_ipv6);
    tera.register_function("go_lookupSRV", confd::go_lookup_srv);
    tera.register_function("go_fileExists", confd::go_file_exists);
    tera.register_function("go_base64Decode", confd::go_base64_decode);
    tera.register_function("go_toUpper", confd::go_to_upper);
    tera.register_function("go_toLower", confd::go_to_lower);
    tera.register_function("go_replace", confd::go_replace);
    for (name, op) in [
        ("go_add", confd::GoArith::Add),
        ("go_sub", confd::GoArith::Sub),
        ("go_mul", confd::GoArith::Mul),
        ("go_div", confd::GoArith::Div),
        ("go_mod", confd::GoArith::Mod),
    ] {
        tera.register_function(name, op.function());
    }

    tera.register_function("go_datetime", time::go_datetime);
    tera.register_function("go_time_format", time::go_time_format);
}
