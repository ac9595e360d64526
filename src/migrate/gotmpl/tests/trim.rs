//! Trim markers and comments: which text survives, exactly as Go's lexer
//! leaves it.

use super::*;

#[test]
fn trim_markers_drop_ascii_space_next_to_the_action() {
    let cases = [
        ("a {{- 3 -}} b", r#"[T("a") A(3) T("b")]"#),
        ("a {{3}} b", r#"[T("a ") A(3) T(" b")]"#),
        ("a \t\r\n{{- 3}} b", r#"[T("a") A(3) T(" b")]"#),
        ("a {{3 -}} \t\r\n b", r#"[T("a ") A(3) T("b")]"#),
        ("a\t{{-\t.\t-}}\tb", r#"[T("a") A(.) T("b")]"#),
        ("a\n{{- .\n-}}\nb", r#"[T("a") A(.) T("b")]"#),
        ("a {{-\n. -}} b", r#"[T("a") A(.) T("b")]"#),
        ("{{3  -}}  x", r#"[A(3) T("x")]"#),
        ("x{{.}}{{- \"y\" -}}z", r#"[T("x") A(.) A("y") T("z")]"#),
        // Text made only of spaces disappears entirely.
        ("{{1 -}}  \n  {{- 2}}", "[A(1) A(2)]"),
        // Only ASCII spaces are trimmed: a no-break space stays.
        (
            "a\u{a0} {{- 1 -}} \u{a0}b",
            r#"[T("a\u{a0}") A(1) T("\u{a0}b")]"#,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(root(src), want, "{src:?}");
    }
}

#[test]
fn a_dash_without_a_space_is_a_minus_sign() {
    assert_eq!(root("a  {{-3}}  b"), r#"[T("a  ") A(-3) T("  b")]"#);
    assert_eq!(root("a {{- -3 -}} b"), r#"[T("a") A(-3) T("b")]"#);
    assert_eq!(error("{{3-}}").message, r#"bad number syntax: "3-""#);
    assert_eq!(error("{{-}}").message, r#"illegal number syntax: "-""#);
    assert_eq!(error("{{- -}}").message, r#"illegal number syntax: "-""#);
}

#[test]
fn trim_markers_alone_leave_an_empty_action() {
    assert_eq!(error("{{- }}").message, "missing value for command");
    assert_eq!(error("{{ -}}").message, "missing value for command");
}

#[test]
fn comments_with_and_without_trim_markers() {
    let cases = [
        ("a {{/* c */}} b", r#"[T("a ") C(" c ") T(" b")]"#),
        ("a {{- /* c */ -}} b", r#"[T("a") C(" c ") T("b")]"#),
        ("a {{- /* c */}} b", r#"[T("a") C(" c ") T(" b")]"#),
        ("a {{/* c */ -}} b", r#"[T("a ") C(" c ") T("b")]"#),
        ("{{/* a */}}{{/* b */}}", r#"[C(" a ") C(" b ")]"#),
        ("{{/**/}}", r#"[C("")]"#),
        ("{{/* }} {{ */}}", r#"[C(" }} {{ ")]"#),
        ("{{/* a */}}\n  {{- \"x\" }}", r#"[C(" a ") A("x")]"#),
        (
            "{{- /* comment */ -}}\n{{- define \"x\" -}}\n  X\n{{- end -}}\n{{template \"x\"}}",
            r#"[C(" comment ") Tpl("x"; -)]"#,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(root(src), want, "{src:?}");
    }
}

#[test]
fn a_comment_must_fill_its_action() {
    let cases = [
        ("{{ /* c */ }}", r#"unexpected "/" in command"#),
        ("{{/* c */ }}", "comment ends before closing delimiter"),
        ("{{/*c*/-}}", "comment ends before closing delimiter"),
        ("{{/*c*/  -}}", "comment ends before closing delimiter"),
        ("{{/* c */ x}}", "comment ends before closing delimiter"),
        ("{{/* c", "unclosed comment"),
        // `{{-/*`: no space after the dash, so not a trim marker: a minus.
        ("{{-/* c */}}", r#"illegal number syntax: "-""#),
    ];
    for (src, want) in cases {
        assert_eq!(error(src).message, want, "{src:?}");
    }
}

#[test]
fn trimming_after_a_define_applies_to_the_file_text() {
    let t = parse_confd("{{define \"d\" -}}\n  body\n{{- end -}}\n\nafter").expect("parses");
    assert_eq!(dump(&t.root), r#"[T("after")]"#);
    assert_eq!(dump(&t.defines[0].body), r#"[T("body")]"#);
}

#[test]
fn text_positions_are_after_trimming() {
    let t = parse_confd("é{{ 1 -}}\n  tail").expect("parses");
    match &t.root.nodes[..] {
        [
            Node::Text { pos: p1, .. },
            Node::Action { pos: p2, .. },
            Node::Text { pos: p3, text },
        ] => {
            assert_eq!(*p1, Pos::new(1, 1));
            assert_eq!(*p2, Pos::new(1, 2));
            assert_eq!((*p3, text.as_str()), (Pos::new(2, 3), "tail"));
        }
        other => panic!("{other:?}"),
    }
}
