//! Tests of the `go_` functions through real Tera templates, against the
//! strings Go 1.19 and Go confd 0.16 produce.
//!
//! `testdata/go_cases.json` holds cases whose `want` is what Go 1.19
//! printed for the same format and operands (`fmt.Sprintf`, `fmt.Sprint`,
//! `fmt.Sprintln`, text/template's `{{ X }}` and its builtins); errors as
//! text/template reported them, which must end with our message. Operands
//! are tagged: `{"i": 5}` an int, `{"f": 80}` a float64, `{"s": "x"}`,
//! `{"b": true}`, null, `{"ls": […]}` a `[]string`, `{"l": […]}` a
//! `[]interface{}`, `{"m": {…}}` a map, `{"kv": [k, v]}` a `memkv.KVPair`,
//! `{"srv": [target, port, priority, weight]}` a `*net.SRV`.

use std::sync::Arc;

use tera::{Context, Tera, Value};

use super::value::{kvpair, srv};
use crate::services::ServiceData;
use crate::snapshot::{Snapshot, View};
use crate::template::data::with_context;

fn tagged(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    let J::Object(map) = json else {
        return Value::none();
    };
    let Some((tag, inner)) = map.iter().next() else {
        return Value::none();
    };
    let strings = |v: &J| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    match tag.as_str() {
        "i" => Value::from(inner.as_i64().unwrap_or_default()),
        "f" => Value::from(inner.as_f64().unwrap_or_default()),
        "s" => Value::from(inner.as_str().unwrap_or_default()),
        "b" => Value::from(inner.as_bool().unwrap_or_default()),
        "ls" => Value::from(strings(inner)),
        "l" => Value::from(
            inner
                .as_array()
                .map(|a| a.iter().map(tagged).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
        "m" => {
            let mut out = std::collections::BTreeMap::new();
            if let Some(m) = inner.as_object() {
                for (k, v) in m {
                    out.insert(k.clone(), tagged(v));
                }
            }
            Value::from(out)
        }
        "kv" => {
            let parts = strings(inner);
            kvpair(&parts[0], &parts[1])
        }
        "srv" => {
            let target = inner[0].as_str().unwrap_or_default();
            let n = |i: usize| inner[i].as_u64().unwrap_or_default() as u16;
            srv(target, n(1), n(2), n(3))
        }
        other => panic!("unknown tag {other}"),
    }
}

fn engine(source: &str) -> Tera {
    let mut tera = Tera::new();
    tera.autoescape_on(Vec::<&'static str>::new());
    super::register(&mut tera);
    if let Err(e) = tera.add_raw_template("t", source) {
        panic!("{source}: {e}");
    }
    tera
}

/// Renders `source` with `vars` and the store `pairs` visible to the data
/// helpers; Err is the error's full text.
fn render_with(
    source: &str,
    vars: &[(&'static str, Value)],
    pairs: &[(&str, &str)],
) -> Result<String, String> {
    let tera = engine(source);
    let mut context = Context::new();
    for (name, value) in vars {
        context.insert(*name, value);
    }
    let snapshot = Arc::new(Snapshot::from_pairs(pairs.iter().copied()));
    let view = View::new(snapshot, "/", &["/".to_string()]);
    let (result, _) = with_context(view, Arc::new(ServiceData::default()), None, || {
        tera.render("t", &context)
    });
    result.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(" | {s}"));
            source = s.source();
        }
        text
    })
}

/// Renders a template that must succeed.
pub(super) fn ok(source: &str, vars: &[(&'static str, Value)], pairs: &[(&str, &str)]) -> String {
    match render_with(source, vars, pairs) {
        Ok(text) => text,
        Err(e) => panic!("{source}: {e}"),
    }
}

/// Renders a template that must fail; the error text.
pub(super) fn err(source: &str, vars: &[(&'static str, Value)], pairs: &[(&str, &str)]) -> String {
    match render_with(source, vars, pairs) {
        Ok(text) => panic!("{source}: expected an error, rendered {text:?}"),
        Err(e) => e,
    }
}

fn case_template(mode: &str, name: &str) -> String {
    let call = match mode {
        "printf" => return "{{ go_printf(format=f, args=a) }}".into(),
        "print" => return "{{ go_print(args=a) }}".into(),
        "println" => return "{{ go_println(args=a) }}".into(),
        "str" => return "{{ go_str(v=a[0]) }}".into(),
        _ => match name {
            "eq" => "go_eq(args=a)".to_string(),
            "ne" | "lt" | "le" | "gt" | "ge" => format!("go_{name}(a=a[0], b=a[1])"),
            "len" => "go_len(v=a[0])".into(),
            "index" => "go_index(v=a[0], keys=a[1:])".into(),
            "slice" => "go_slice(v=a[0], args=a[1:])".into(),
            "html" | "js" | "urlquery" | "and" | "or" => format!("go_{name}(args=a)"),
            "not" => "go_not(v=a[0])".into(),
            other => panic!("unknown function {other}"),
        },
    };
    format!("{{{{ go_str(v={call}) }}}}")
}

#[test]
fn go_1_19_cases() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("testdata/go_cases.json")).expect("valid test data");
    let mut failures = Vec::new();
    for case in &cases {
        let mode = case["mode"].as_str().unwrap_or_default();
        let format = case["format"].as_str().unwrap_or_default();
        let want = case["want"].as_str().unwrap_or_default();
        let args: Vec<Value> = case["args"]
            .as_array()
            .map(|a| a.iter().map(tagged).collect())
            .unwrap_or_default();
        let source = case_template(mode, format);
        let vars = [("f", Value::from(format)), ("a", Value::from(args))];
        match (want.strip_prefix("ERR "), render_with(&source, &vars, &[])) {
            (None, Ok(got)) if got == want => {}
            (Some(go_error), Err(got)) => {
                let first = got.lines().next().unwrap_or_default();
                let message = first.strip_prefix("error: ").unwrap_or(first);
                if message.is_empty() || !go_error.ends_with(message) {
                    failures.push(format!(
                        "{mode} {format} {}: Go {go_error:?}, we {got:?}",
                        case["args"]
                    ));
                }
            }
            (_, got) => failures.push(format!(
                "{mode} {format} {}: Go {want:?}, we {got:?}",
                case["args"]
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
