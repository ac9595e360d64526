//! Token-level tests: what each piece of text lexes to, trimming included.

use super::*;

fn kinds_and_texts(src: &str) -> Vec<(Kind, String)> {
    let lexed = lex(
        src,
        Keywords {
            break_ok: true,
            continue_ok: true,
        },
    );
    lexed
        .tokens
        .iter()
        .map(|t| match t.kind {
            Kind::Error => (
                t.kind,
                lexed.error.clone().map(|e| e.message).unwrap_or_default(),
            ),
            _ => (t.kind, src[t.start..t.end].to_string()),
        })
        .collect()
}

fn kinds(src: &str) -> Vec<Kind> {
    kinds_and_texts(src).into_iter().map(|(k, _)| k).collect()
}

#[test]
fn text_and_actions() {
    use Kind::*;
    assert_eq!(
        kinds_and_texts("a {{ .X }} b"),
        vec![
            (Text, "a ".to_string()),
            (LeftDelim, "{{".to_string()),
            (Space, " ".to_string()),
            (Field, ".X".to_string()),
            (Space, " ".to_string()),
            (RightDelim, "}}".to_string()),
            (Text, " b".to_string()),
            (Eof, "".to_string()),
        ]
    );
    assert_eq!(kinds(""), vec![Eof]);
}

#[test]
fn trim_markers_cut_the_neighbouring_text() {
    use Kind::*;
    assert_eq!(
        kinds_and_texts("a \n{{- 3 -}}\t b"),
        vec![
            (Text, "a".to_string()),
            (LeftDelim, "{{".to_string()),
            (Number, "3".to_string()),
            (RightDelim, "}}".to_string()),
            (Text, "b".to_string()),
            (Eof, "".to_string()),
        ]
    );
    // No space after the dash: a negative number, nothing trimmed.
    assert_eq!(kinds_and_texts("a {{-3}}")[0], (Text, "a ".to_string()));
    assert_eq!(kinds_and_texts("a {{-3}}")[2], (Number, "-3".to_string()));
}

#[test]
fn every_token_kind() {
    use Kind::*;
    let src = "{{$x := .A.B | printf \"%d\" `r` 'c' 1.5 (nil) true $ . , = 1+2i}}";
    assert_eq!(
        kinds(src),
        vec![
            LeftDelim,
            Variable,
            Space,
            Declare,
            Space,
            Field,
            Field,
            Space,
            Pipe,
            Space,
            Identifier,
            Space,
            String,
            Space,
            RawString,
            Space,
            CharConstant,
            Space,
            Number,
            Space,
            LeftParen,
            Nil,
            RightParen,
            Space,
            Bool,
            Space,
            Variable,
            Space,
            Dot,
            Space,
            Char,
            Space,
            Assign,
            Space,
            Complex,
            RightDelim,
            Eof,
        ]
    );
}

#[test]
fn keywords_and_the_break_continue_switch() {
    use Kind::*;
    let src = "{{if}}{{else}}{{end}}{{range}}{{with}}{{define}}{{template}}{{block}}{{break}}{{continue}}";
    let words: Vec<Kind> = kinds(src).into_iter().filter(|k| k.is_keyword()).collect();
    assert_eq!(
        words,
        vec![
            If, Else, End, Range, With, Define, Template, Block, Break, Continue
        ]
    );
    let plain = lex(
        "{{break}}{{continue}}",
        Keywords {
            break_ok: false,
            continue_ok: false,
        },
    );
    let plain: Vec<Kind> = plain.tokens.iter().map(|t| t.kind).collect();
    assert_eq!(
        plain,
        vec![
            LeftDelim, Identifier, RightDelim, LeftDelim, Identifier, RightDelim, Eof
        ]
    );
}

#[test]
fn comments_are_one_token_and_trim_too() {
    use Kind::*;
    assert_eq!(
        kinds_and_texts("a {{- /* x */ -}} b"),
        vec![
            (Text, "a".to_string()),
            (Comment, "/* x */".to_string()),
            (Text, "b".to_string()),
            (Eof, "".to_string()),
        ]
    );
}

#[test]
fn a_single_space_before_a_trimming_delimiter_is_not_a_token() {
    use Kind::*;
    assert_eq!(kinds("{{3 -}}"), vec![LeftDelim, Number, RightDelim, Eof]);
    assert_eq!(
        kinds("{{3  -}}"),
        vec![LeftDelim, Number, Space, RightDelim, Eof]
    );
}

#[test]
fn lexing_errors_end_the_tokens() {
    let cases = [
        ("{{ \"abc", "unterminated quoted string", 3),
        ("{{ `abc", "unterminated raw quoted string", 3),
        ("{{ 'a", "unterminated character constant", 3),
        ("{{ .A", "unclosed action", 0),
        ("{{/* x", "unclosed comment", 2),
        ("{{/* x */ }}", "comment ends before closing delimiter", 9),
        ("{{ (1 }}", "unclosed left paren", 6),
        ("{{ ) }}", "unexpected right paren U+0029 ')'", 3),
        ("{{ :x }}", "expected :=", 3),
        ("{{ 1a }}", "bad number syntax: \"1a\"", 3),
        ("{{ $x=1 }}", "bad character U+003D '='", 5),
        ("{{ \u{1} }}", "unrecognized character in action: U+0001", 3),
    ];
    for (src, message, offset) in cases {
        let lexed = lex(
            src,
            Keywords {
                break_ok: true,
                continue_ok: true,
            },
        );
        assert_eq!(
            lexed.tokens.last().map(|t| t.kind),
            Some(Kind::Error),
            "{src:?}"
        );
        let error = lexed.error.expect("an error");
        assert_eq!(
            (error.message.as_str(), error.offset),
            (message, offset),
            "{src:?}"
        );
    }
}
