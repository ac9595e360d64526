//! Tests of the parser as a whole. Expected trees and messages were
//! checked against Go 1.19's `text/template/parse` on the same inputs.
//!
//! Trees are compared through a compact spelling ([`dump`]) that reads
//! like the template: `[T("a") A(getv "/k" | toUpper) If(.; [..]; -)]`.

mod errors;
mod literals;
mod structure;
mod templates;
mod trim;

use super::*;

/// Parses with confd's function names.
fn parse_confd(src: &str) -> Result<Template, ParseError> {
    parse("test.tmpl", src, &is_confd_function)
}

/// The root of a template that must parse, spelled by [`dump`].
fn root(src: &str) -> String {
    match parse_confd(src) {
        Ok(t) => dump(&t.root),
        Err(e) => panic!("{src:?} failed: {e}"),
    }
}

/// The error of a template that must not parse.
fn error(src: &str) -> ParseError {
    match parse_confd(src) {
        Ok(t) => panic!("{src:?} parsed: {}", dump(&t.root)),
        Err(e) => e,
    }
}

/// A list as `[node node …]`.
fn dump(list: &List) -> String {
    let nodes: Vec<String> = list.nodes.iter().map(dump_node).collect();
    format!("[{}]", nodes.join(" "))
}

fn dump_else(list: &Option<List>) -> String {
    list.as_ref().map_or_else(|| "-".to_string(), dump)
}

fn dump_node(node: &Node) -> String {
    match node {
        Node::Text { text, .. } => format!("T({text:?})"),
        Node::Comment { text, .. } => format!("C({text:?})"),
        Node::Action { pipe, .. } => format!("A({})", dump_pipe(pipe)),
        Node::If(c) => format!(
            "If({}; {}; {})",
            dump_pipe(&c.pipe),
            dump(&c.body),
            dump_else(&c.else_)
        ),
        Node::Range(c) => format!(
            "Range({}; {}; {})",
            dump_pipe(&c.pipe),
            dump(&c.body),
            dump_else(&c.else_)
        ),
        Node::With(c) => format!(
            "With({}; {}; {})",
            dump_pipe(&c.pipe),
            dump(&c.body),
            dump_else(&c.else_)
        ),
        Node::Template {
            name, pipe, block, ..
        } => format!(
            "{}({name:?}; {})",
            if *block { "Block" } else { "Tpl" },
            pipe.as_ref().map_or_else(|| "-".to_string(), dump_pipe)
        ),
        Node::Break(_) => "Br".to_string(),
        Node::Continue(_) => "Co".to_string(),
    }
}

fn dump_pipe(pipe: &Pipeline) -> String {
    let cmds: Vec<String> = pipe
        .cmds
        .iter()
        .map(|c| c.args.iter().map(dump_arg).collect::<Vec<_>>().join(" "))
        .collect();
    let cmds = cmds.join(" | ");
    if pipe.decl.is_empty() {
        return cmds;
    }
    let vars: Vec<&str> = pipe.decl.iter().map(|v| v.name.as_str()).collect();
    let op = if pipe.is_assign { "=" } else { ":=" };
    format!("{} {op} {cmds}", vars.join(", "))
}

fn dump_arg(arg: &Arg) -> String {
    match arg {
        Arg::Dot(_) => ".".to_string(),
        Arg::Nil(_) => "nil".to_string(),
        Arg::Bool { value, .. } => value.to_string(),
        Arg::Number(n) => n.text.clone(),
        Arg::String {
            value, raw: false, ..
        } => format!("{value:?}"),
        Arg::String {
            value, raw: true, ..
        } => format!("`{value}`"),
        Arg::Field { names, .. } => format!(".{}", names.join(".")),
        Arg::Variable { name, fields, .. } => std::iter::once(name.clone())
            .chain(fields.iter().cloned())
            .collect::<Vec<_>>()
            .join("."),
        Arg::Identifier { name, .. } => name.clone(),
        Arg::Chain { base, fields, .. } => format!("{}.{}", dump_arg(base), fields.join(".")),
        Arg::Pipe { pipe, .. } => format!("({})", dump_pipe(pipe)),
    }
}

/// The first argument of the first command of the first action.
fn first_arg(src: &str) -> Arg {
    let template = parse_confd(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
    let pipe = template.root.nodes.iter().find_map(|n| match n {
        Node::Action { pipe, .. } => Some(pipe.clone()),
        _ => None,
    });
    let pipe = pipe.unwrap_or_else(|| panic!("{src:?}: no action"));
    pipe.cmds[0].args[0].clone()
}

#[test]
fn the_public_entry_point_reports_line_and_column() {
    let e = parse("x.tmpl", "ok\n  {{ nope }}", &is_confd_function).expect_err("unknown function");
    assert_eq!(e.to_string(), "2:6: function \"nope\" not defined");
    assert_eq!(e.pos(), Pos::new(2, 6));
    assert_eq!(e.kind, ErrorKind::Go);
}

#[test]
fn the_function_set_is_the_callers() {
    let only_getv = |name: &str| name == "getv";
    assert!(parse("t", "{{ getv \"/a\" }}", &only_getv).is_ok());
    let e = parse("t", "{{ printf \"%d\" 1 }}", &only_getv).expect_err("printf unknown");
    assert_eq!(e.message, "function \"printf\" not defined");
}

#[test]
fn break_and_continue_are_functions_when_the_map_has_them() {
    let with_break = |name: &str| name == "break" || name == "continue";
    let t = parse("t", "{{ break }}{{ continue }}", &with_break).expect("plain calls");
    assert_eq!(dump(&t.root), "[A(break) A(continue)]");
    assert_eq!(error("{{ break }}").message, "{{break}} outside {{range}}");
}
