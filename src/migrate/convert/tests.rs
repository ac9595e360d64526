//! The converter construct by construct: each Go template is converted,
//! rendered by this project's engine against a small store, and compared
//! with what Go 1.19 text/template and confd 0.16 print (the corpus in
//! tests/migrate holds the same behaviours checked against Go confd's bytes).

use std::sync::Arc;

use super::convert;
use crate::migrate::detect::MARKER;
use crate::snapshot::{Snapshot, View};
use crate::template::TemplateCompiler;

const STORE: &[(&str, &str)] = &[
    ("/app/name", "shop"),
    ("/app/port", "8080"),
    (
        "/app/cfg",
        r#"{"ttl": 30, "big": 8000000, "tags": ["a", "b"], "none": null}"#,
    ),
    ("/hosts/b/ip", "10.0.0.2"),
    ("/hosts/a/ip", "10.0.0.1"),
    ("/list", "c,a,b"),
];

/// Converts `go` and renders the result; panics if the conversion reported
/// a problem.
fn render(go: &str) -> Result<String, String> {
    let (tera, problems) = convert("t.tmpl", go);
    assert!(problems.is_empty(), "problems: {problems:?}\n{tera}");
    render_tera(&tera)
}

fn render_tera(tera: &str) -> Result<String, String> {
    let template = TemplateCompiler::new()
        .compile("t.tmpl", tera)
        .map_err(|e| format!("compile: {e}\n{tera}"))?;
    let snapshot = Arc::new(Snapshot::from_pairs(STORE.iter().copied()));
    let view = View::new(snapshot, "", &["/".to_string()]);
    template.render(view).map_err(|e| e.to_string())
}

fn ok(go: &str) -> String {
    match render(go) {
        Ok(text) => text,
        Err(e) => panic!("{go:?} failed: {e}"),
    }
}

#[test]
fn text_and_trimming_are_go_s() {
    assert_eq!(ok("a  {{- \"b\" -}}  \n c"), "abc");
    assert_eq!(ok("x {{/* a comment */}} y"), "x  y");
    assert_eq!(ok("x\n{{- /* trimmed */ -}}\ny"), "xy");
    assert_eq!(ok("{{-3}}"), "-3");
    // Tera's own delimiters in text stay text.
    assert_eq!(ok("{% raw %} {# x #} {{ \"{\" }}"), "{% raw %} {# x #} {");
    assert_eq!(ok("obj = {"), "obj = {");
}

#[test]
fn literals_print_as_go_prints_them() {
    assert_eq!(
        ok("{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ 2.50 }} {{ -7 }}"),
        "97 31 1000 2.5 -7"
    );
    assert_eq!(
        ok("{{ `raw \\n \"q\"` }}|{{ \"esc\\t\\\"\" }}"),
        "raw \\n \"q\"|esc\t\""
    );
    assert_eq!(ok("{{ true }} {{ print nil }}"), "true <nil>");
    // An int parameter takes the int reading of a constant.
    assert_eq!(ok("{{ add 16 1e3 }}"), "1016");
}

#[test]
fn pipelines_pass_the_value_as_the_last_argument() {
    assert_eq!(ok("{{ \"/app/name\" | getv }}"), "shop");
    assert_eq!(ok("{{ (getv \"/app/name\") | toUpper }}"), "SHOP");
    assert_eq!(ok("{{ getv \"/app/name\" | printf \"[%s]\" }}"), "[shop]");
    assert_eq!(ok("{{ getv \"/missing\" \"dflt\" }}"), "dflt");
}

#[test]
fn variables_follow_go_scoping() {
    assert_eq!(
        ok("{{ $x := \"out\" }}{{ if true }}{{ $x := \"in\" }}{{ $x }}{{ end }}-{{ $x }}"),
        "in-out"
    );
    assert_eq!(
        ok(
            "{{ $n := 0 }}{{ range split (getv \"/list\") \",\" }}{{ $n = add $n 1 }}{{ end }}{{ $n }}"
        ),
        "3"
    );
    assert_eq!(
        ok("{{ $ }}|{{ . }}|{{ .Missing.Field }}"),
        "<no value>|<no value>|<no value>"
    );
}

#[test]
fn range_visits_lists_maps_and_else() {
    assert_eq!(
        ok("{{ range $i, $v := split (getv \"/list\") \",\" }}{{ $i }}={{ $v }} {{ end }}"),
        "0=c 1=a 2=b "
    );
    assert_eq!(
        ok("{{ range $k, $v := json (getv \"/app/cfg\") }}{{ $k }}:{{ $v }} {{ end }}"),
        "big:8e+06 none:<no value> tags:[a b] ttl:30 "
    );
    assert_eq!(
        ok("{{ range ls \"/nothing\" }}x{{ else }}empty{{ end }}"),
        "empty"
    );
    assert_eq!(
        ok("{{ range lsdir \"/hosts\" }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}"),
        "a"
    );
    assert_eq!(
        ok("{{ range gets \"/hosts/*/ip\" }}{{ .Key }}={{ .Value }};{{ end }}"),
        "/hosts/a/ip=10.0.0.1;/hosts/b/ip=10.0.0.2;"
    );
}

#[test]
fn if_with_and_else_chains() {
    assert_eq!(
        ok(
            "{{ if eq (getv \"/app/port\") \"80\" }}a{{ else if eq (getv \"/app/port\") \"8080\" \"8443\" }}b{{ else }}c{{ end }}"
        ),
        "b"
    );
    assert_eq!(
        ok("{{ with getv \"/app/name\" }}[{{ . }}]{{ end }}"),
        "[shop]"
    );
    assert_eq!(
        ok("{{ with getv \"/missing\" \"\" }}x{{ else }}none{{ end }}"),
        "none"
    );
    // `and` does not evaluate what comes after a false argument.
    assert_eq!(
        ok("{{ if and (exists \"/missing\") (getv \"/missing\") }}x{{ else }}y{{ end }}"),
        "y"
    );
    assert_eq!(
        ok("{{ or \"\" \"second\" }} {{ and 1 0 }} {{ not \"\" }}"),
        "second 0 true"
    );
}

#[test]
fn defined_templates_run_with_their_own_dot_and_dollar() {
    let go = "{{ define \"t\" }}<{{ . }}|{{ $ }}>{{ end }}{{ template \"t\" \"arg\" }}{{ template \"t\" }}{{ block \"b\" 7 }}({{ . }}){{ end }}";
    assert_eq!(ok(go), "<arg|arg><<no value>|<no value>>(7)");
}

#[test]
fn go_formatting_of_values() {
    assert_eq!(
        ok("{{ printf \"%5s|%-4d|%x|%q|%t\" \"ab\" 7 255 \"q\" true }}"),
        "   ab|7   |ff|\"q\"|true"
    );
    assert_eq!(
        ok(
            "{{ (json (getv \"/app/cfg\")).big }} {{ printf \"%d\" (json (getv \"/app/cfg\")).ttl }}"
        ),
        "8e+06 %!d(float64=30)"
    );
    assert_eq!(ok("{{ get \"/app/name\" }}"), "{/app/name shop}");
}

#[test]
fn what_cannot_be_converted_is_reported_at_its_place_and_fails_when_rendered() {
    let (tera, problems) = convert("t.tmpl", "ok\n  {{ call (getv \"/k\") }}");
    assert_eq!(problems.len(), 1);
    assert_eq!((problems[0].line, problems[0].col), (2, 6));
    assert!(problems[0].message.contains("call"), "{:?}", problems[0]);
    let error = render_tera(&tera).expect_err("fails");
    assert!(error.contains("t.tmpl:2:6"), "{error}");

    let (_, problems) = convert("t.tmpl", "{{ nil }}");
    assert!(problems[0].message.contains("nil is not a command"));

    let nested =
        "{{ range ls \"/\" }}{{ $x := 1 }}{{ range ls \"/\" }}{{ $x = 2 }}{{ end }}{{ end }}";
    let (_, problems) = convert("t.tmpl", nested);
    assert!(
        problems[0].message.contains("enclosing range"),
        "{problems:?}"
    );
}

#[test]
fn a_template_go_cannot_parse_keeps_its_text_and_fails_with_the_reason() {
    let (tera, problems) = convert("t.tmpl", "a {{ if }}");
    assert_eq!(problems.len(), 1);
    assert!(tera.starts_with(MARKER));
    assert!(tera.contains("a {{ if }}"), "the original is kept: {tera}");
    let error = render_tera(&tera).expect_err("fails");
    assert!(error.contains("not converted"), "{error}");
}

#[test]
fn recursive_templates_expand_as_deep_as_the_data_goes() {
    let go = "{{ define \"down\" }}{{ . }}{{ if lt . 3 }}{{ template \"down\" (add . 1) }}{{ end }}{{ end }}{{ template \"down\" 0 }}";
    assert_eq!(ok(go), "0123");
}

#[test]
fn in_place_sorts_change_the_variable_as_go_does() {
    let go = "{{ $l := split \"ccc,a,bb\" \",\" }}{{ $s := sortByLength $l }}{{ $l }}";
    assert_eq!(ok(go), "[a bb ccc]");
    // confd's reverse leaves gets's list type alone.
    assert_eq!(
        ok("{{ range reverse (gets \"/hosts/*/ip\") }}{{ .Value }} {{ end }}"),
        "10.0.0.1 10.0.0.2 "
    );
}
