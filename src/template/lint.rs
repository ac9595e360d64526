//! A static pass over a template's source that finds keyword arguments
//! confd's own helpers do not take (`getv(key="/a", defualt="x")`), with
//! no data: Tera reports unknown functions and filters when it compiles a
//! template, but a helper reads its arguments by name and silently ignores
//! any other, so a misspelt `default` would only show up as a missing key
//! once the data is gone.
//!
//! Tera does not expose its syntax tree, so this pass reads the tags itself:
//! inside `{{ … }}` and `{% … %}` (not comments, not `{% raw %}` blocks) it
//! tokenizes strings, names and punctuation, and for every call of a known
//! helper (`name(` as a function, `| name(` as a filter) collects the names
//! written as `name=` directly inside its parentheses. Helpers not in
//! [`SIGNATURES`] (Tera's own, `map`, which takes any name, and the
//! converter's `go_*` helpers) are not checked.

use super::diagnostic::Diagnostic;
use crate::error::line_col;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Function,
    Filter,
}

/// Every confd helper whose arguments are known, with those arguments. Kept
/// next to the helpers' documentation (README, template helpers); a test
/// compiles a call of each one with all of its arguments.
const SIGNATURES: &[(Kind, &str, &[&str])] = &[
    (Kind::Function, "getv", &["key", "default"]),
    (Kind::Function, "get", &["key"]),
    (Kind::Function, "gets", &["key"]),
    (Kind::Function, "getvs", &["key"]),
    (Kind::Function, "exists", &["key"]),
    (Kind::Function, "ls", &["key"]),
    (Kind::Function, "lsdir", &["key"]),
    (Kind::Function, "getenv", &["key", "default"]),
    (Kind::Function, "service", &["name", "tag", "passing"]),
    (Kind::Function, "seq", &["first", "last"]),
    (Kind::Function, "lookupIP", &["name"]),
    (Kind::Function, "lookupSRV", &["service", "proto", "name"]),
    (Kind::Function, "fileExists", &["path"]),
    (Kind::Function, "datetime", &[]),
    (Kind::Function, "range", &["start", "end", "step_by"]),
    (Kind::Function, "add", &["a", "b"]),
    (Kind::Function, "sub", &["a", "b"]),
    (Kind::Function, "mul", &["a", "b"]),
    (Kind::Function, "div", &["a", "b"]),
    (Kind::Function, "mod", &["a", "b"]),
    (Kind::Filter, "add", &["b"]),
    (Kind::Filter, "sub", &["b"]),
    (Kind::Filter, "mul", &["b"]),
    (Kind::Filter, "div", &["b"]),
    (Kind::Filter, "mod", &["b"]),
    (Kind::Filter, "base", &[]),
    (Kind::Filter, "dir", &[]),
    (Kind::Filter, "split", &["on", "pat"]),
    (Kind::Filter, "json", &[]),
    (Kind::Filter, "jsonArray", &[]),
    (Kind::Filter, "toUpper", &[]),
    (Kind::Filter, "toLower", &[]),
    (Kind::Filter, "contains", &["substr"]),
    (Kind::Filter, "trimSuffix", &["suffix"]),
    (Kind::Filter, "base64Encode", &[]),
    (Kind::Filter, "base64Decode", &[]),
    (Kind::Filter, "atoi", &[]),
    (Kind::Filter, "parseBool", &[]),
    (Kind::Filter, "sortByLength", &[]),
    (Kind::Filter, "sortKVByLength", &[]),
];

/// A helper of this kind and name with its arguments, when it is listed.
type Signature = (Kind, &'static str, &'static [&'static str]);

fn signature(kind: Kind, name: &str) -> Option<Signature> {
    SIGNATURES
        .iter()
        .find(|(k, n, _)| *k == kind && *n == name)
        .copied()
}

/// The unknown keyword arguments of confd's helpers in `source`, each at
/// the argument's line and column.
pub(crate) fn unknown_arguments(name: &str, source: &str) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (start, body) in tags(source) {
        check_tag(&tokens(body, start), &mut |offset, message| {
            found.push(Diagnostic {
                file: name.to_string(),
                at: Some(line_col(source, offset)),
                message,
            })
        });
    }
    found
}

/// The bodies of `{{ … }}` and `{% … %}` tags with their byte offsets,
/// skipping `{# … #}` comments and what lies between `{% raw %}` and
/// `{% endraw %}`.
fn tags(source: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = 0;
    let mut in_raw = false;
    while let Some(found) = source[rest..].find('{') {
        let open = rest + found;
        let close = match source.get(open + 1..open + 2) {
            Some("{") => "}}",
            Some("%") => "%}",
            Some("#") => "#}",
            _ => {
                rest = open + 1;
                continue;
            }
        };
        let body_start = open + 2;
        let Some(length) = find_close(&source[body_start..], close) else {
            break;
        };
        let body = &source[body_start..body_start + length];
        rest = body_start + length + 2;
        let words: Vec<&str> = body
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace())
            .split_whitespace()
            .collect();
        if close == "%}" && words.first() == Some(&"raw") {
            in_raw = true;
        } else if close == "%}" && words.first() == Some(&"endraw") {
            in_raw = false;
        } else if close != "#}" && !in_raw {
            out.push((body_start, body));
        }
    }
    out
}

/// Where `close` ends a tag body, ignoring it inside string literals.
fn find_close(body: &str, close: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q != b'`' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if matches!(b, b'"' | b'\'' | b'`') && close != "#}" => quote = Some(b),
            None if body[i..].starts_with(close) => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, PartialEq)]
enum Token<'s> {
    Name(&'s str),
    Punct(&'s str),
    Other,
}

/// Names, punctuation (`==`-style pairs kept whole) and everything else
/// (strings, numbers) as one opaque token, each with its absolute offset.
fn tokens(body: &str, base: usize) -> Vec<(usize, Token<'_>)> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if matches!(b, b'"' | b'\'' | b'`') {
            i += 1;
            while i < bytes.len() && bytes[i] != b {
                if bytes[i] == b'\\' && b != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push((base + start, Token::Other));
        } else if b.is_ascii_alphabetic() || b == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((base + start, Token::Name(&body[start..i])));
        } else if b.is_ascii_digit() || !b.is_ascii() {
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || !bytes[i].is_ascii()) {
                i += 1;
            }
            out.push((base + start, Token::Other));
        } else {
            let pair = body.get(i..i + 2).unwrap_or("");
            let len = if matches!(pair, "==" | "!=" | "<=" | ">=" | "::") {
                2
            } else {
                1
            };
            i += len;
            out.push((base + start, Token::Punct(&body[start..i])));
        }
    }
    out
}

/// An open bracket: a call of a known helper, or anything else.
struct Frame {
    call: Option<Signature>,
    /// Right after `(` or `,`: a `name=` here is a keyword argument.
    at_argument: bool,
}

fn check_tag(tokens: &[(usize, Token<'_>)], report: &mut impl FnMut(usize, String)) {
    let mut stack: Vec<Frame> = Vec::new();
    for (i, (offset, token)) in tokens.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| &tokens[p].1);
        let next = tokens.get(i + 1).map(|t| &t.1);
        match token {
            Token::Punct("(" | "[" | "{") => {
                let call = match (token, previous) {
                    (Token::Punct("("), Some(Token::Name(name))) => {
                        let before = i.checked_sub(2).map(|p| &tokens[p].1);
                        let kind = match before {
                            Some(Token::Punct("|")) | Some(Token::Name("filter")) => {
                                Some(Kind::Filter)
                            }
                            // A method, a macro (`m::f(`), a test (`is f(`).
                            Some(Token::Punct("." | "::")) | Some(Token::Name("is")) => None,
                            _ => Some(Kind::Function),
                        };
                        kind.and_then(|k| signature(k, name))
                    }
                    _ => None,
                };
                stack.push(Frame {
                    call,
                    at_argument: true,
                });
                continue;
            }
            Token::Punct(")" | "]" | "}") => {
                stack.pop();
            }
            Token::Punct(",") => {
                if let Some(frame) = stack.last_mut() {
                    frame.at_argument = true;
                }
                continue;
            }
            Token::Name(arg) if next == Some(&Token::Punct("=")) => {
                if let Some(Frame {
                    call: Some((kind, helper, args)),
                    at_argument: true,
                }) = stack.last()
                    && !args.contains(arg)
                {
                    let what = match kind {
                        Kind::Function => "function",
                        Kind::Filter => "filter",
                    };
                    let takes = if args.is_empty() {
                        "it takes no arguments".to_string()
                    } else {
                        format!("it takes {}", args.join(", "))
                    };
                    report(
                        *offset,
                        format!("{helper}: unknown argument `{arg}` of the {what} ({takes})"),
                    );
                }
            }
            _ => {}
        }
        if let Some(frame) = stack.last_mut() {
            frame.at_argument = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(source: &str) -> Vec<String> {
        unknown_arguments("t.tmpl", source)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn misspelt_argument_is_found_at_its_position() {
        assert_eq!(
            found("a\n  {{ getv(key=\"/a\", defualt=\"x\") }}"),
            [
                "t.tmpl:2:21: getv: unknown argument `defualt` of the function (it takes key, default)"
            ]
        );
    }

    #[test]
    fn filters_nested_calls_and_blocks() {
        let source = "{% for x in lsdir(kye=\"/a\") | split(sep=\",\") %}{{ x | add(a=1) }}{% endfor %}\n{{ getv(key=getenv(key=\"K\", dflt=\"\")) }}";
        let out = found(source);
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(
            out[0].starts_with("t.tmpl:1:19: lsdir: unknown argument `kye`"),
            "{out:?}"
        );
        assert!(
            out[1].contains("split: unknown argument `sep` of the filter (it takes on, pat)"),
            "{out:?}"
        );
        assert!(
            out[2].contains("add: unknown argument `a` of the filter (it takes b)"),
            "{out:?}"
        );
        assert!(
            out[3].starts_with("t.tmpl:2:29: getenv: unknown argument `dflt`"),
            "{out:?}"
        );
    }

    #[test]
    fn correct_and_unchecked_calls_pass() {
        let source = concat!(
            "{# getv(nope=1) #}{% raw %}{{ getv(nope=1) }}{% endraw %}",
            "{{ getv(key=\"/a\", default=\"}}\") }}{{ \"getv(nope=1)\" }}",
            "{{ add(a=1, b=2) | add(b=1) }}{{ map(anything=1) }}",
            "{{ x | join(sep=\",\") }}{{ x | get(key=\"k\") }}{% if a == b %}{% endif %}",
            "{% set m = {\"k\": getv(key=\"/k\")} %}{{ [1, 2] | length }}",
        );
        assert_eq!(found(source), Vec::<String>::new());
    }

    #[test]
    fn every_signature_names_a_registered_helper() {
        // A name Tera does not know would fail to compile: the table names
        // the helpers as registered, functions and filters apart.
        let compiler = super::super::TemplateCompiler::new();
        for (kind, name, args) in SIGNATURES {
            let list: Vec<String> = args.iter().map(|a| format!("{a}=1")).collect();
            let source = match kind {
                Kind::Function => format!("{{{{ {name}({}) }}}}", list.join(", ")),
                Kind::Filter => format!("{{{{ 1 | {name}({}) }}}}", list.join(", ")),
            };
            assert!(compiler.compile("s.tmpl", &source).is_ok(), "{source}");
        }
    }
}
