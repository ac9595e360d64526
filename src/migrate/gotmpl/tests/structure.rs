//! Pipelines, operands, variables, control structures and named templates.

use super::*;

#[test]
fn pipelines_and_commands() {
    let cases = [
        (r#"{{ getv "/k" }}"#, r#"[A(getv "/k")]"#),
        (
            r#"{{ getv "/k" "default" }}"#,
            r#"[A(getv "/k" "default")]"#,
        ),
        (r#"{{ "/k" | getv }}"#, r#"[A("/k" | getv)]"#),
        (
            r#"{{ getv "/k" | toUpper | printf "%q" }}"#,
            r#"[A(getv "/k" | toUpper | printf "%q")]"#,
        ),
        (
            r#"{{ (getv "/k") | toUpper }}"#,
            r#"[A((getv "/k") | toUpper)]"#,
        ),
        (
            r#"{{ printf "%d" (add 1 2) }}"#,
            r#"[A(printf "%d" (add 1 2))]"#,
        ),
        ("{{ . | printf \"%s\" }}", r#"[A(. | printf "%s")]"#),
        ("{{ .A | .B }}", "[A(.A | .B)]"),
        (
            "{{ if and .A (or .B .C) (not .D) }}x{{ end }}",
            r#"[If(and .A (or .B .C) (not .D); [T("x")]; -)]"#,
        ),
        (r#"{{ eq .A "a" "b" "c" }}"#, r#"[A(eq .A "a" "b" "c")]"#),
        (
            "{{ printf \"%s\"\n  \"multi\"\n  \"line\" }}",
            r#"[A(printf "%s" "multi" "line")]"#,
        ),
        // Go accepts a trailing `|`.
        ("{{ 1 | }}", "[A(1)]"),
        ("{{ ( 1 ) }}", "[A((1))]"),
    ];
    for (src, want) in cases {
        assert_eq!(root(src), want, "{src:?}");
    }
}

#[test]
fn fields_variables_and_chains() {
    let cases = [
        ("{{ .A.B.C }}", "[A(.A.B.C)]"),
        ("{{ $ }}", "[A($)]"),
        ("{{ $.A }}", "[A($.A)]"),
        ("{{ $x := . }}{{ $x.A.B }}", "[A($x := .) A($x.A.B)]"),
        ("{{ (index $ 0).Key }}", "[A((index $ 0).Key)]"),
        ("{{ (index . 0).Key.Sub }}", "[A((index . 0).Key.Sub)]"),
        ("{{ (.A).B }}", "[A((.A).B)]"),
        ("{{ getv.X }}", "[A(getv.X)]"),
        // A space makes the field a separate argument.
        ("{{ (.A) .B }}", "[A((.A) .B)]"),
        ("{{ .Fé }}", "[A(.Fé)]"),
    ];
    for (src, want) in cases {
        assert_eq!(root(src), want, "{src:?}");
    }
    match first_arg("{{ (index . 0).Key.Sub }}") {
        Arg::Chain { base, fields, pos } => {
            assert!(matches!(*base, Arg::Pipe { .. }));
            assert_eq!(fields, ["Key", "Sub"]);
            assert_eq!(pos, Pos::new(1, 4));
        }
        other => panic!("{other:?}"),
    }
    match first_arg("{{ $.A.B }}") {
        Arg::Variable { name, fields, .. } => assert_eq!(
            (name.as_str(), fields),
            ("$", vec!["A".to_string(), "B".to_string()])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn declarations_and_assignments() {
    let cases = [
        ("{{ $x := 1 }}{{ $x }}", "[A($x := 1) A($x)]"),
        ("{{$x:=1}}", "[A($x := 1)]"),
        ("{{ $x := 1 }}{{ $x = 2 }}", "[A($x := 1) A($x = 2)]"),
        // Go accepts both at parse time; they fail when run.
        ("{{ $x = 1 }}", "[A($x = 1)]"),
        ("{{ $x := $x }}", "[A($x := $x)]"),
        ("{{ $ := 1 }}", "[A($ := 1)]"),
        ("{{ ($x := 1) }}{{ $x }}", "[A(($x := 1)) A($x)]"),
        ("{{ $x := 1 }}{{ $x . }}", "[A($x := 1) A($x .)]"),
        (
            "{{ range $i, $v := . }}{{ $i }}{{ $v }}{{ end }}",
            "[Range($i, $v := .; [A($i) A($v)]; -)]",
        ),
        (
            r#"{{ range $x := 1 | printf "%d" }}{{ end }}"#,
            r#"[Range($x := 1 | printf "%d"; []; -)]"#,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(root(src), want, "{src:?}");
    }
    let t = parse_confd("{{ $x = 1 }}").expect("parses");
    match &t.root.nodes[0] {
        Node::Action { pipe, .. } => {
            assert!(pipe.is_assign);
            assert_eq!(pipe.decl[0].name, "$x");
            assert_eq!(pipe.decl[0].pos, Pos::new(1, 4));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn variables_live_until_the_end_of_their_control_structure() {
    // In scope: in the body and, as Go has it, in the else branch too.
    assert_eq!(
        root("{{ if 1 }}{{ $y := 2 }}{{ else }}{{ $y }}{{ end }}"),
        "[If(1; [A($y := 2)]; [A($y)])]"
    );
    assert_eq!(
        root("{{ range $v := . }}{{ $v }}{{ else }}{{ $v }}{{ end }}"),
        "[Range($v := .; [A($v)]; [A($v)])]"
    );
    assert_eq!(
        root("{{ $x := 1 }}{{ if . }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "[A($x := 1) If(.; [A($x = 2)]; -) A($x)]"
    );
    // Out of scope after {{end}}.
    for src in [
        "{{ if $x := 1 }}{{ $x }}{{ end }}{{ $x }}",
        "{{ with $x := .A }}{{ $x }}{{ end }}{{ $x }}",
        "{{ range $i, $v := . }}{{ end }}{{ $i }}",
        "{{ if . }}{{ $x := 1 }}{{ end }}{{ $x }}",
        "{{ $x }}",
        "{{ template \"x\" $x }}",
    ] {
        assert_eq!(
            error(src).message,
            "undefined variable \"$x\"".replace("$x", var_in(src)),
            "{src}"
        );
    }
}

/// The variable an out-of-scope case uses last.
fn var_in(src: &str) -> &str {
    if src.contains("$i") { "$i" } else { "$x" }
}

#[test]
fn if_else_if_chains_nest_as_in_go() {
    assert_eq!(
        root("{{if .}}a{{else if .B}}b{{else}}c{{end}}"),
        r#"[If(.; [T("a")]; [If(.B; [T("b")]; [T("c")])])]"#
    );
    assert_eq!(
        root("{{if .}}a{{else if .B}}b{{else if .C}}c{{end}}"),
        r#"[If(.; [T("a")]; [If(.B; [T("b")]; [If(.C; [T("c")]; -)])])]"#
    );
    assert_eq!(
        root("{{with .}}a{{else}}b{{end}}"),
        r#"[With(.; [T("a")]; [T("b")])]"#
    );
    assert_eq!(
        root("{{range .}}a{{else}}b{{end}}"),
        r#"[Range(.; [T("a")]; [T("b")])]"#
    );
}

#[test]
fn break_and_continue_inside_range() {
    assert_eq!(
        root("{{range .}}{{break}}{{continue}}{{end}}"),
        "[Range(.; [Br Co]; -)]"
    );
    assert_eq!(
        root("{{range .}}{{if .}}{{break}}{{end}}{{end}}"),
        "[Range(.; [If(.; [Br]; -)]; -)]"
    );
    for src in [
        "{{break}}",
        "{{if .}}{{break}}{{end}}",
        "{{range .}}{{.}}{{else}}{{break}}{{end}}",
        "{{range .}}{{block \"x\" .}}{{break}}{{end}}{{end}}",
    ] {
        assert_eq!(error(src).message, "{{break}} outside {{range}}", "{src}");
    }
    assert_eq!(
        error("{{if .}}{{continue}}{{end}}").message,
        "{{continue}} outside {{range}}"
    );
}

#[test]
fn define_template_and_block() {
    let t = parse_confd(r#"{{define "a"}}A{{.}}{{end}}{{template "a"}}{{template "a" .}}"#)
        .expect("parses");
    assert_eq!(dump(&t.root), r#"[Tpl("a"; -) Tpl("a"; .)]"#);
    let a = t.define("a").expect("defined");
    assert_eq!(
        (dump(&a.body), a.kind, a.pos),
        (
            r#"[T("A") A(.)]"#.to_string(),
            DefineKind::Define,
            Pos::new(1, 1)
        )
    );

    let t = parse_confd(r#"x{{block "b" .}}B{{$}}{{end}}after"#).expect("parses");
    assert_eq!(dump(&t.root), r#"[T("x") Block("b"; .) T("after")]"#);
    let b = t.define("b").expect("defined");
    assert_eq!(
        (dump(&b.body), b.kind, b.pos),
        (
            r#"[T("B") A($)]"#.to_string(),
            DefineKind::Block,
            Pos::new(1, 2)
        )
    );

    let t = parse_confd("{{define `raw`}}R{{end}}").expect("parses");
    assert_eq!(t.defines.len(), 1);
    assert_eq!(t.defines[0].name, "raw");
}

#[test]
fn named_templates_have_their_own_scope() {
    assert_eq!(
        error("{{$x := 1}}{{define \"d\"}}{{$x}}{{end}}").message,
        "undefined variable \"$x\""
    );
    assert_eq!(
        error("{{$x := 1}}{{block \"b\" .}}{{$x}}{{end}}").message,
        "undefined variable \"$x\""
    );
    // The file's variables are still there after the definition.
    assert_eq!(
        root("{{$x := 1}}{{define \"d\"}}{{end}}{{$x}}"),
        "[A($x := 1) A($x)]"
    );
    // The block's argument is evaluated in the caller's scope.
    assert_eq!(
        root("{{$x := 1}}{{block \"b\" $x}}{{.}}{{end}}"),
        r#"[A($x := 1) Block("b"; $x)]"#
    );
}

#[test]
fn duplicate_definitions_follow_go() {
    let e = error(r#"{{define "a"}}A{{end}}{{define "a"}}B{{end}}"#);
    assert_eq!(
        e.message,
        r#"template: multiple definition of template "a""#
    );
    assert_eq!(e.pos(), Pos::new(1, 23));
    // An empty definition gives way, whichever comes first.
    let t = parse_confd(r#"{{define "a"}} {{end}}{{define "a"}}B{{end}}"#).expect("parses");
    assert_eq!(dump(&t.define("a").expect("a").body), r#"[T("B")]"#);
    let t =
        parse_confd(r#"{{define "a"}}A{{end}}{{define "a"}}{{/* c */}} {{end}}"#).expect("parses");
    assert_eq!(dump(&t.define("a").expect("a").body), r#"[T("A")]"#);
}

#[test]
fn a_definition_named_like_the_file_meets_its_body() {
    let named = |src: &str| parse("main", src, &is_confd_function);
    // Empty body: Go runs the definition instead.
    let t = named(r#"{{define "main"}}M{{end}}"#).expect("parses");
    assert_eq!(dump(&t.root), r#"[T("M")]"#);
    let t = named(r#"{{define "main"}} {{end}}body"#).expect("parses");
    assert_eq!(dump(&t.root), r#"[T("body")]"#);
    assert_eq!(
        dump(&t.define("main").expect("main").body),
        r#"[T("body")]"#
    );
    let e = named(r#"{{define "main"}}M{{end}}body"#).expect_err("two bodies");
    assert_eq!(
        e.message,
        r#"template: multiple definition of template "main""#
    );
}

#[test]
fn control_structures_record_where_they_start() {
    let t = parse_confd("a\n  {{ if .A }}x{{ else if .B }}y{{ end }}").expect("parses");
    let Node::If(outer) = &t.root.nodes[1] else {
        panic!("{:?}", t.root.nodes);
    };
    assert_eq!(outer.pos, Pos::new(2, 3));
    assert_eq!(outer.pipe.pos, Pos::new(2, 9));
    let inner = outer.else_.as_ref().expect("else");
    let Node::If(inner) = &inner.nodes[0] else {
        panic!("{inner:?}");
    };
    assert_eq!(inner.pos, Pos::new(2, 15));
    assert_eq!(inner.pipe.cmds[0].pos, Pos::new(2, 26));
}
