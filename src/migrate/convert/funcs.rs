//! How each function a confd template can call is written in Tera: Go's
//! builtins and confd 0.16's helpers, each as a call of a `go_*` helper of
//! `template::gocompat` (Go's or confd's exact semantics) or of this
//! project's native helper where the two agree byte for byte. The table
//! follows the decision table in `template::gocompat`'s module docs.

/// What the converter knows of a value's type, to skip wrappers where Tera's
/// own behaviour is already Go's (printing a string, testing a bool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string: prints as Go prints it.
    Str,
    /// A bool: Tera's truth is Go's.
    Bool,
    /// What `gets` returns: memkv's named type `KVPairs`, which confd's
    /// `reverse` does not recognise and so leaves as it is.
    KvPairs,
    /// Anything else, or unknown.
    Any,
}

/// How a Tera form is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `tera(params[0]=arg0, …)`.
    Call,
    /// `(arg0 | tera(params[1]=arg1, …))`: this project's filter, whose
    /// input is the first argument.
    Filter,
}

/// A function's Tera form: `tera(params[0]=arg0, …, rest=[remaining…])`.
#[derive(Debug, Clone, Copy)]
pub struct Form {
    /// The Tera function or filter.
    pub tera: &'static str,
    /// A call or a filter.
    pub style: Style,
    /// Keyword names of the positional arguments, in order; a call may give
    /// fewer (optional trailing arguments, such as getv's default).
    pub params: &'static [&'static str],
    /// The keyword taking the remaining arguments as a list, for variadic
    /// functions.
    pub rest: Option<&'static str>,
    /// What it returns.
    pub kind: Kind,
}

const fn form(
    tera: &'static str,
    params: &'static [&'static str],
    rest: Option<&'static str>,
    kind: Kind,
) -> Form {
    Form {
        tera,
        style: Style::Call,
        params,
        rest,
        kind,
    }
}

const fn filter(tera: &'static str, params: &'static [&'static str], kind: Kind) -> Form {
    Form {
        tera,
        style: Style::Filter,
        params,
        rest: None,
        kind,
    }
}

/// The confd helpers that change their argument in place in Go (a list held
/// in a variable is changed for later uses too).
pub const IN_PLACE: [&str; 3] = ["reverse", "sortByLength", "sortKVByLength"];

/// The confd helpers whose parameters are Go `int`s: a number constant
/// passed to them is read as an integer (`add 16 1e3` is 1016).
pub const INT_PARAMS: [&str; 6] = ["add", "sub", "mul", "div", "mod", "seq"];

/// The Tera form of Go builtin or confd helper `name`; `None` for the
/// builtins the converter writes itself (`and`, `or`, `not`) or cannot
/// (`call`).
pub fn lookup(name: &str) -> Option<Form> {
    use Kind::{Any, Bool, Str};
    Some(match name {
        // Go's builtins.
        "eq" => form("go_eq", &[], Some("args"), Bool),
        "ne" => form("go_ne", &["a", "b"], None, Bool),
        "lt" => form("go_lt", &["a", "b"], None, Bool),
        "le" => form("go_le", &["a", "b"], None, Bool),
        "gt" => form("go_gt", &["a", "b"], None, Bool),
        "ge" => form("go_ge", &["a", "b"], None, Bool),
        "len" => form("go_len", &["v"], None, Any),
        "index" => form("go_index", &["v"], Some("keys"), Any),
        "slice" => form("go_slice", &["v"], Some("args"), Any),
        "print" => form("go_print", &[], Some("args"), Str),
        "printf" => form("go_printf", &["format"], Some("args"), Str),
        "println" => form("go_println", &[], Some("args"), Str),
        "html" => form("go_html", &[], Some("args"), Str),
        "js" => form("go_js", &[], Some("args"), Str),
        "urlquery" => form("go_urlquery", &[], Some("args"), Str),
        // confd 0.16's helpers.
        "getv" => form("go_getv", &["key", "default"], None, Str),
        "getvs" => form("go_getvs", &["pattern"], None, Any),
        "get" => form("go_get", &["key"], None, Any),
        "gets" => form("go_gets", &["pattern"], None, Kind::KvPairs),
        "exists" => form("go_exists", &["key"], None, Bool),
        "ls" => form("go_ls", &["key"], None, Any),
        "lsdir" => form("go_lsdir", &["key"], None, Any),
        "base" => filter("base", &["path"], Str),
        "dir" => filter("dir", &["path"], Str),
        "split" => filter("split", &["s", "on"], Any),
        "join" => filter("join", &["list", "sep"], Str),
        "json" => form("go_json", &["s"], None, Any),
        "jsonArray" => form("go_jsonArray", &["s"], None, Any),
        "map" => form("go_map", &[], Some("args"), Any),
        "toUpper" => form("go_toUpper", &["s"], None, Str),
        "toLower" => form("go_toLower", &["s"], None, Str),
        "replace" => form("go_replace", &["s", "old", "new", "n"], None, Str),
        "contains" => filter("contains", &["s", "substr"], Bool),
        "trimSuffix" => filter("trimSuffix", &["s", "suffix"], Str),
        "atoi" => form("go_atoi", &["s"], None, Any),
        "seq" => form("seq", &["first", "last"], None, Any),
        "add" => form("go_add", &["a", "b"], None, Any),
        "sub" => form("go_sub", &["a", "b"], None, Any),
        "mul" => form("go_mul", &["a", "b"], None, Any),
        "div" => form("go_div", &["a", "b"], None, Any),
        "mod" => form("go_mod", &["a", "b"], None, Any),
        "base64Encode" => filter("base64Encode", &["s"], Str),
        "base64Decode" => form("go_base64Decode", &["s"], None, Str),
        "lookupIP" => form("go_lookupIP", &["name"], None, Any),
        "lookupIPV4" => form("go_lookupIPV4", &["name"], None, Any),
        "lookupIPV6" => form("go_lookupIPV6", &["name"], None, Any),
        "lookupSRV" => form("go_lookupSRV", &["service", "proto", "name"], None, Any),
        "fileExists" => form("go_fileExists", &["path"], None, Bool),
        "getenv" => form("getenv", &["key", "default"], None, Str),
        "datetime" => form("go_datetime", &[], None, Any),
        "reverse" => form("go_reverse", &["v"], None, Any),
        "sortByLength" => form("go_sortByLength", &["v"], None, Any),
        "sortKVByLength" => form("go_sortKVByLength", &["v"], None, Any),
        "parseBool" => form("go_parseBool", &["s"], None, Bool),
        _ => return None,
    })
}
