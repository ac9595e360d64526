//! Go's parse-time errors, with their messages and where they point.

use super::*;

#[test]
fn errors_carry_go_messages_and_positions() {
    // (template, message, line, column)
    let cases: &[(&str, &str, usize, usize)] = &[
        ("{{ .A", "unclosed action", 1, 1),
        ("x\n{{ .A\n\n", "unclosed action", 2, 1),
        (
            "{{ if . }}",
            "unexpected EOF (the {{if}} at 1:1 has no {{end}})",
            1,
            11,
        ),
        (
            "{{ range . }}\n{{ with . }}",
            "unexpected EOF (the {{with}} at 2:1 has no {{end}})",
            2,
            13,
        ),
        (
            "{{ define \"a\" }}",
            "unexpected EOF (the {{define}} at 1:1 has no {{end}})",
            1,
            17,
        ),
        ("{{ end }}", "unexpected {{end}}", 1, 1),
        ("{{ else }}", "unexpected {{else}}", 1, 1),
        ("{{ else if . }}", "unexpected {{else}}", 1, 1),
        (
            "{{ if . }}{{ else }}{{ else }}{{ end }}",
            "expected end; found {{else}}",
            1,
            21,
        ),
        (
            "{{ range . }}a{{ else if .B }}b{{ end }}",
            "unexpected <if> in input",
            1,
            23,
        ),
        (
            "{{ with . }}a{{ else with .B }}b{{ end }}",
            "unexpected <with> in else",
            1,
            22,
        ),
        ("{{ if }}{{ end }}", "missing value for if", 1, 7),
        ("{{ range }}{{ end }}", "missing value for range", 1, 10),
        ("{{ with }}{{ end }}", "missing value for with", 1, 9),
        ("{{ }}", "missing value for command", 1, 4),
        ("{{ () }}", "missing value for parenthesized pipeline", 1, 5),
        (
            "{{ block \"b\" }}{{ end }}",
            "missing value for block clause",
            1,
            14,
        ),
        ("{{ 1 | | 2 }}", "unexpected \"|\" in command", 1, 8),
        ("{{ | 1 }}", "unexpected \"|\" in command", 1, 4),
        (
            "{{ 1 | 2 }}",
            "non executable command in pipeline stage 2",
            1,
            8,
        ),
        (
            "{{ printf \"%s\" | . }}",
            "non executable command in pipeline stage 2",
            1,
            18,
        ),
        (
            "{{ .A | \"a\" | nil }}",
            "non executable command in pipeline stage 2",
            1,
            9,
        ),
        ("{{ nofunc 1 }}", "function \"nofunc\" not defined", 1, 4),
        ("{{ $x }}", "undefined variable \"$x\"", 1, 4),
        ("{{ $x.A := 1 }}", "undefined variable \"$x\"", 1, 4),
        (
            "{{ $a, $b := 1 }}",
            "too many declarations in command",
            1,
            6,
        ),
        (
            "{{ with $a, $b := 1 }}{{ end }}",
            "too many declarations in with",
            1,
            11,
        ),
        (
            "{{ range $a, $b, $c := . }}{{ end }}",
            "too many declarations in range",
            1,
            16,
        ),
        (
            "{{ range $a, := . }}{{ end }}",
            "range can only initialize variables",
            1,
            14,
        ),
        ("{{ range $a, }}{{ end }}", "missing value for range", 1, 14),
        ("{{ true.X }}", "unexpected . after term \"true\"", 1, 8),
        (
            "{{ \"a\".X }}",
            "unexpected . after term \"\\\"a\\\"\"",
            1,
            7,
        ),
        ("{{ nil.X }}", "unexpected . after term \"nil\"", 1, 7),
        ("{{ ..X }}", "unexpected . after term \".\"", 1, 5),
        ("{{ 'a'.x }}", "unexpected . after term \"'a'\"", 1, 7),
        ("{{ (1 }}", "unclosed left paren", 1, 7),
        ("{{ 1) }}", "unexpected \")\" in command", 1, 5),
        // The lexer's complaint comes after the `)` token, which the parser
        // refuses first, as Go's does.
        ("{{ ) }}", "unexpected \")\" in command", 1, 4),
        ("{{ break 1 }}", "unexpected \"1\" in {{break}}", 1, 10),
        ("{{ end 1 }}", "unexpected \"1\" in end", 1, 8),
        ("{{ else 1 }}", "unexpected \"1\" in else", 1, 9),
        (
            "{{ define \"a\" . }}{{ end }}",
            "unexpected <.> in define clause",
            1,
            15,
        ),
        (
            "{{ define \"a\" }}{{ else }}{{ end }}",
            "unexpected {{else}} in define clause",
            1,
            17,
        ),
        (
            "{{ if . }}{{ define \"d\" }}{{ end }}{{ end }}",
            "unexpected <define> in command",
            1,
            14,
        ),
        (
            "{{ template . }}",
            "unexpected <.> in template clause",
            1,
            13,
        ),
        (
            "{{ template }}",
            "unexpected \"}}\" in template clause",
            1,
            13,
        ),
        (
            "{{ template \"a\" | printf }}",
            "unexpected \"|\" in template clause",
            1,
            17,
        ),
        ("{{ $x=1 }}", "bad character U+003D '='", 1, 6),
        ("{{ $- }}", "bad character U+002D '-'", 1, 5),
        ("{{ foo-}}", "bad character U+002D '-'", 1, 7),
        (
            "{{ printf \"%d\" 1# }}",
            "unexpected \"#\" in operand",
            1,
            17,
        ),
        ("{{ # }}", "unexpected \"#\" in command", 1, 4),
        (
            "{{ printf \"%s\" , }}",
            "unexpected \",\" in operand",
            1,
            16,
        ),
        (
            "{{ € }}",
            "unrecognized character in action: U+20AC '€'",
            1,
            4,
        ),
        ("{{ :x }}", "expected :=", 1, 4),
        ("{{ = }}", "unexpected \"=\" in command", 1, 4),
        (
            "{{ end abcdefghijklmnop }}",
            "unexpected \"abcdefghij\"... in end",
            1,
            8,
        ),
        (
            "{{ end \"abcdefghijklmnop\" }}",
            "unexpected \"\\\"abcdefghi\"... in end",
            1,
            8,
        ),
    ];
    for &(src, message, line, col) in cases {
        let e = error(src);
        assert_eq!(
            (e.message.as_str(), e.line, e.col),
            (message, line, col),
            "{src:?}"
        );
        assert_eq!(e.kind, ErrorKind::Go, "{src:?}");
    }
}

#[test]
fn lexing_errors_in_a_multi_line_action_name_its_start() {
    let e = error("x{{ printf\n  \"%d\" 1# }}");
    assert_eq!(e.message, "unexpected \"#\" in operand");
    let e = error("x{{ printf\n  \"%d\" $- }}");
    assert_eq!(
        e.message,
        "bad character U+002D '-' in action started at 1:2"
    );
    assert_eq!(e.pos(), Pos::new(2, 9));
}

#[test]
fn the_first_error_in_reading_order_wins() {
    // The parser reports the undefined variable before the lexer reaches
    // the unterminated string, as Go does.
    assert_eq!(
        error("{{ $nope }}{{ \"abc").message,
        "undefined variable \"$nope\""
    );
    assert_eq!(
        error("{{ .A }}{{ \"abc").message,
        "unterminated quoted string"
    );
}

#[test]
fn nesting_is_bounded_instead_of_exhausting_the_stack() {
    let deep = |n: usize| format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
    assert!(parse_confd(&deep(parser::MAX_NESTING)).is_ok());
    let e = error(&deep(parser::MAX_NESTING + 1));
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(
        e.message,
        format!("nested more than {} levels deep", parser::MAX_NESTING)
    );
    let ifs = |n: usize| format!("{}x{}", "{{ if . }}".repeat(n), "{{ end }}".repeat(n));
    assert!(parse_confd(&ifs(parser::MAX_NESTING)).is_ok());
    assert_eq!(
        error(&ifs(parser::MAX_NESTING + 1)).kind,
        ErrorKind::Unsupported
    );
    // A flood of unnested constructs is fine.
    let flat = "{{ if . }}x{{ end }}".repeat(10_000);
    assert_eq!(parse_confd(&flat).map(|t| t.root.nodes.len()), Ok(10_000));
}

#[test]
fn two_bodies_for_the_file_name_point_at_the_definition() {
    let e = parse(
        "main",
        "x\n{{define \"main\"}}M{{end}}body",
        &is_confd_function,
    )
    .expect_err("two bodies");
    assert_eq!(e.pos(), Pos::new(2, 1));
}
