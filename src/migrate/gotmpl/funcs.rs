//! The function names a confd 0.16 template may call: Go's builtins plus
//! confd's function map. Go checks names at parse time ("function "x" not
//! defined"), so the parser needs this set to refuse what confd refuses.

/// Go 1.19 text/template's builtin functions.
pub const GO_BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// confd 0.16's functions (`newFuncMap` and memkv's store functions), always
/// defined.
pub const CONFD_FUNCTIONS: &[&str] = &[
    // resource/template/template_funcs.go
    "base",
    "split",
    "json",
    "jsonArray",
    "dir",
    "map",
    "getenv",
    "join",
    "datetime",
    "toUpper",
    "toLower",
    "contains",
    "replace",
    "trimSuffix",
    "lookupIP",
    "lookupIPV4",
    "lookupIPV6",
    "lookupSRV",
    "fileExists",
    "base64Encode",
    "base64Decode",
    "parseBool",
    "reverse",
    "sortByLength",
    "sortKVByLength",
    "add",
    "sub",
    "div",
    "mod",
    "mul",
    "seq",
    "atoi",
    // memkv's store
    "exists",
    "ls",
    "lsdir",
    "get",
    "gets",
    "getv",
    "getvs",
];

/// confd 0.16's decrypting variants, defined only when confd runs with a
/// PGP private key.
pub const CONFD_CRYPT_FUNCTIONS: &[&str] = &["cget", "cgets", "cgetv", "cgetvs"];

/// Whether a confd 0.16 template (run without a PGP key) can call `name`:
/// a Go builtin or a confd function.
pub fn is_confd_function(name: &str) -> bool {
    GO_BUILTINS.contains(&name) || CONFD_FUNCTIONS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_and_confd_helpers_are_known_and_nothing_else() {
        for name in [
            "printf",
            "eq",
            "index",
            "getv",
            "lsdir",
            "sortKVByLength",
            "atoi",
        ] {
            assert!(is_confd_function(name), "{name}");
        }
        for name in ["cget", "break", "continue", "Getv", "upper", ""] {
            assert!(!is_confd_function(name), "{name}");
        }
    }
}
