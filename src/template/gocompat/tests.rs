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
    crate::template::register_helpers(&mut tera);
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

/// The store of the confd comparison: what confd's file backend makes of
/// a YAML file with these keys.
const STORE: &[(&str, &str)] = &[
    ("/a/b", "1"),
    ("/a/c/d", "2"),
    ("/a/c/e", "3"),
    ("/top", "t"),
    ("/top2", "t2"),
    ("/svc/web1", "10.0.0.9"),
    ("/svc/web2", "10.0.0.10"),
    ("/svc/w", "x"),
    (
        "/json",
        r#"{"port": 8080, "big": 8000000, "f": 1.5, "n": null, "s": "str", "l": [1, "a", true], "o": {"k": 1e21}}"#,
    ),
    ("/arr", r#"[1, 2.5, "x", null, {"a": 1}]"#),
    ("/names", "ccc,a,bb,b,dd,e,ffff,gg,h,iii,jj,k,l,mm,n"),
];

/// A Go template and its Tera conversion, line by line; the expected lines
/// are what Go confd 0.16 rendered from the Go template and `STORE`.
const CONFD_LINES: &[(&str, &str, &str)] = &[
    (
        r#"ls/: {{ ls "/" }}"#,
        r#"ls/: {{ go_str(v=go_ls(key="/")) }}"#,
        "ls/: [arr json names top top2]",
    ),
    (
        r#"lsdir/: {{ lsdir "/" }}"#,
        r#"lsdir/: {{ go_str(v=go_lsdir(key="/")) }}"#,
        "lsdir/: []",
    ),
    (
        r#"{{ ls "/a" }} {{ ls "/a/" }} {{ ls "/a/b" }} {{ ls "/a/c" }} {{ ls "/nope" }} {{ ls "a" }}"#,
        r#"{{ go_str(v=go_ls(key="/a")) }} {{ go_str(v=go_ls(key="/a/")) }} {{ go_str(v=go_ls(key="/a/b")) }} {{ go_str(v=go_ls(key="/a/c")) }} {{ go_str(v=go_ls(key="/nope")) }} {{ go_str(v=go_ls(key="a")) }}"#,
        "[b c] [b c] [b] [d e] [] []",
    ),
    (
        r#"{{ lsdir "/a" }} {{ lsdir "/a/" }} {{ lsdir "/a/b" }}"#,
        r#"{{ go_str(v=go_lsdir(key="/a")) }} {{ go_str(v=go_lsdir(key="/a/")) }} {{ go_str(v=go_lsdir(key="/a/b")) }}"#,
        "[c] [c] []",
    ),
    (
        r#"{{ exists "/a/b" }} {{ exists "/a" }} {{ exists "/a/b/" }} {{ exists "/nope" }}"#,
        r#"{{ go_str(v=go_exists(key="/a/b")) }} {{ go_str(v=go_exists(key="/a")) }} {{ go_str(v=go_exists(key="/a/b/")) }} {{ go_str(v=go_exists(key="/nope")) }}"#,
        "true false false false",
    ),
    (
        r#"{{ getv "/a/b" }} {{ getv "/a/b/" "def" }} {{ getv "/nope" "" }}|"#,
        r#"{{ go_getv(key="/a/b") }} {{ go_getv(key="/a/b/", default="def") }} {{ go_getv(key="/nope", default="") }}|"#,
        "1 def |",
    ),
    (
        r#"{{ get "/a/b" }} {{ (get "/a/c/d").Key }}={{ (get "/a/c/d").Value }}"#,
        r#"{{ go_str(v=go_get(key="/a/b")) }} {{ go_field(v=go_get(key="/a/c/d"), name="Key") }}={{ go_field(v=go_get(key="/a/c/d"), name="Value") }}"#,
        "{/a/b 1} /a/c/d=2",
    ),
    (
        r#"{{ gets "/a/*" }} {{ gets "/a/*/*" }} {{ gets "*" }} {{ gets "/svc/web*" }}"#,
        r#"{{ go_str(v=go_gets(pattern="/a/*")) }} {{ go_str(v=go_gets(pattern="/a/*/*")) }} {{ go_str(v=go_gets(pattern="*")) }} {{ go_str(v=go_gets(pattern="/svc/web*")) }}"#,
        "[{/a/b 1}] [{/a/c/d 2} {/a/c/e 3}] [] [{/svc/web1 10.0.0.9} {/svc/web2 10.0.0.10}]",
    ),
    (
        r#"{{ getvs "/svc/*" }} {{ getvs "/a/c/*" }}"#,
        r#"{{ go_str(v=go_getvs(pattern="/svc/*")) }} {{ go_str(v=go_getvs(pattern="/a/c/*")) }}"#,
        "[10.0.0.10 10.0.0.9 x] [2 3]",
    ),
    (
        r#"{{ $j := json (getv "/json") }}{{ $j }} {{ $j.port }} {{ $j.big }} {{ $j.f }} {{ $j.n }} {{ $j.l }} {{ $j.o }} {{ $j.missing }} {{ printf "%v %d %T" $j.port $j.port $j.port }}"#,
        r#"{% set j = go_json(s=go_getv(key="/json")) %}{{ go_str(v=j) }} {{ go_str(v=go_field(v=j, name="port")) }} {{ go_str(v=go_field(v=j, name="big")) }} {{ go_str(v=go_field(v=j, name="f")) }} {{ go_str(v=go_field(v=j, name="n")) }} {{ go_str(v=go_field(v=j, name="l")) }} {{ go_str(v=go_field(v=j, name="o")) }} {{ go_str(v=go_field(v=j, name="missing")) }} {{ go_printf(format="%v %d %T", args=[go_field(v=j, name="port"), go_field(v=j, name="port"), go_field(v=j, name="port")]) }}"#,
        "map[big:8e+06 f:1.5 l:[1 a true] n:<nil> o:map[k:1e+21] port:8080 s:str] 8080 8e+06 1.5 <no value> [1 a true] map[k:1e+21] <no value> 8080 %!d(float64=8080) float64",
    ),
    (
        r#"{{ $a := jsonArray (getv "/arr") }}{{ $a }} {{ index $a 1 }} {{ len $a }}"#,
        r#"{% set a = go_jsonArray(s=go_getv(key="/arr")) %}{{ go_str(v=a) }} {{ go_str(v=go_index(v=a, keys=[1])) }} {{ go_str(v=go_len(v=a)) }}"#,
        "[1 2.5 x <nil> map[a:1]] 2.5 5",
    ),
    (
        r#"{{ map "a" 1 "b" "x" }} {{ $m := map "k" 2 }}{{ $m.k }} {{ index $m "k" }}"#,
        r#"{{ go_str(v=go_map(args=["a", 1, "b", "x"])) }} {% set m = go_map(args=["k", 2]) %}{{ go_str(v=go_field(v=m, name="k")) }} {{ go_str(v=go_index(v=m, keys=["k"])) }}"#,
        "map[a:1 b:x] 2 2",
    ),
    (
        r#"{{ seq 1 3 }} {{ seq 3 1 }} {{ atoi "42" }} {{ atoi "-7" }} {{ atoi "+5" }}"#,
        r#"{{ go_str(v=seq(first=1, last=3)) }} {{ go_str(v=seq(first=3, last=1)) }} {{ go_str(v=go_atoi(s="42")) }} {{ go_str(v=go_atoi(s="-7")) }} {{ go_str(v=go_atoi(s="+5")) }}"#,
        "[1 2 3] [] 42 -7 5",
    ),
    (
        r#"{{ add 1 2 }} {{ sub 1 2 }} {{ mul 3 4 }} {{ div 7 2 }} {{ div -7 2 }} {{ mod -7 2 }} {{ mod 7 -2 }} {{ add 9223372036854775807 1 }}"#,
        r#"{{ go_str(v=go_add(a=1, b=2)) }} {{ go_str(v=go_sub(a=1, b=2)) }} {{ go_str(v=go_mul(a=3, b=4)) }} {{ go_str(v=go_div(a=7, b=2)) }} {{ go_str(v=go_div(a=-7, b=2)) }} {{ go_str(v=go_mod(a=-7, b=2)) }} {{ go_str(v=go_mod(a=7, b=-2)) }} {{ go_str(v=go_add(a=9223372036854775807, b=1)) }}"#,
        "3 -1 12 3 -3 -1 1 -9223372036854775808",
    ),
    (
        r#"{{ split "a,b,,c" "," }} {{ split "" "," }} {{ len (split "" "") }} {{ split "héllo" "" }} {{ join (split "a,b" ",") "-" }}"#,
        r#"{{ go_str(v="a,b,,c" | split(on=",")) }} {{ go_str(v="" | split(on=",")) }} {{ go_str(v=go_len(v="" | split(on=""))) }} {{ go_str(v="héllo" | split(on="")) }} {{ "a,b" | split(on=",") | join(sep="-") }}"#,
        "[a b  c] [] 0 [h é l l o] a-b",
    ),
    (
        r#"{{ base "/a/b/" }} {{ dir "/a/b/" }} {{ base "" }} {{ dir "" }} {{ base "///" }} {{ dir "a" }}"#,
        r#"{{ "/a/b/" | base }} {{ "/a/b/" | dir }} {{ "" | base }} {{ "" | dir }} {{ "///" | base }} {{ "a" | dir }}"#,
        "b /a/b . . / .",
    ),
    (
        r#"{{ toUpper "straße σς" }} {{ toLower "ΣΑΣ İ" }} {{ replace "aaaa" "a" "b" 2 }} {{ replace "aaaa" "a" "b" -1 }} {{ replace "ab" "" "-" -1 }} {{ contains "abc" "bc" }} {{ trimSuffix "a.conf" ".conf" }}"#,
        r#"{{ go_toUpper(s="straße σς") }} {{ go_toLower(s="ΣΑΣ İ") }} {{ go_replace(s="aaaa", old="a", new="b", n=2) }} {{ go_replace(s="aaaa", old="a", new="b", n=-1) }} {{ go_replace(s="ab", old="", new="-", n=-1) }} {{ go_str(v="abc" | contains(substr="bc")) }} {{ "a.conf" | trimSuffix(suffix=".conf") }}"#,
        "STRAßE ΣΣ σασ i bbaa bbbb -a-b- true a",
    ),
    (
        r#"{{ base64Encode "hi" }} {{ base64Decode "aGk=" }} {{ base64Decode "aG\nk=" }} {{ parseBool "T" }} {{ parseBool "0" }}"#,
        r#"{{ "hi" | base64Encode }} {{ go_base64Decode(s="aGk=") }} {{ go_base64Decode(s="aG
k=") }} {{ go_str(v=go_parseBool(s="T")) }} {{ go_str(v=go_parseBool(s="0")) }}"#,
        "aGk= hi hi true false",
    ),
    (
        r#"{{ sortByLength (split (getv "/names") ",") }}"#,
        r#"{{ go_str(v=go_sortByLength(v=go_getv(key="/names") | split(on=","))) }}"#,
        "[l a b e n h k bb dd gg mm jj iii ccc ffff]",
    ),
    (
        r#"{{ sortKVByLength (gets "/*") }}"#,
        r#"{{ go_str(v=go_sortKVByLength(v=go_gets(pattern="/*"))) }}"#,
        r#"[{/arr [1, 2.5, "x", null, {"a": 1}]} {/top t} {/json {"port": 8080, "big": 8000000, "f": 1.5, "n": null, "s": "str", "l": [1, "a", true], "o": {"k": 1e21}}} {/top2 t2} {/names ccc,a,bb,b,dd,e,ffff,gg,h,iii,jj,k,l,mm,n}]"#,
    ),
    (
        r#"{{ reverse (split "a,b,c" ",") }} {{ reverse (jsonArray "[1,2]") }} {{ reverse "abc" }}"#,
        r#"{{ go_str(v=go_reverse(v="a,b,c" | split(on=","))) }} {{ go_str(v=go_reverse(v=go_jsonArray(s="[1,2]"))) }} {{ go_str(v=go_reverse(v="abc")) }}"#,
        "[c b a] [1 2] abc",
    ),
    (
        r#"{{ fileExists "/etc" }} {{ fileExists "/nope/x" }} {{ fileExists "" }} {{ lookupIP "127.0.0.1" }}"#,
        r#"{{ go_str(v=go_fileExists(path="/etc")) }} {{ go_str(v=go_fileExists(path="/nope/x")) }} {{ go_str(v=go_fileExists(path="")) }} {{ go_str(v=go_lookupIP(name="127.0.0.1")) }}"#,
        "true false false [127.0.0.1]",
    ),
];

#[test]
fn confd_0_16_helpers() {
    let mut failures = Vec::new();
    for (go, tera, want) in CONFD_LINES {
        match render_with(tera, &[], STORE) {
            Ok(got) if got == *want => {}
            got => failures.push(format!("{go}\n  confd: {want:?}\n  we:    {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Errors: the Tera call and the end of Go confd 0.16's error for the same
/// Go call (after `executing "x.tmpl" at <…>: `).
const CONFD_ERRORS: &[(&str, &str)] = &[
    (
        r#"{{ go_getv(key="/nope") }}"#,
        "error calling getv: key does not exist: /nope",
    ),
    (
        r#"{{ go_getv(key="/a/b/") }}"#,
        "error calling getv: key does not exist: /a/b/",
    ),
    (
        r#"{{ go_get(key="/nope") }}"#,
        "error calling get: key does not exist: /nope",
    ),
    (
        r#"{{ go_atoi(s="4x") }}"#,
        r#"error calling atoi: strconv.Atoi: parsing "4x": invalid syntax"#,
    ),
    (
        r#"{{ go_atoi(s="99999999999999999999") }}"#,
        r#"error calling atoi: strconv.Atoi: parsing "99999999999999999999": value out of range"#,
    ),
    (
        r#"{{ go_map(args=["a"]) }}"#,
        "error calling map: invalid map call",
    ),
    (
        r#"{{ go_map(args=[1, 2]) }}"#,
        "error calling map: map keys must be strings",
    ),
    (
        r#"{{ go_div(a=1, b=0) }}"#,
        "error calling div: runtime error: integer divide by zero",
    ),
    (
        r#"{{ go_mod(a=1, b=0) }}"#,
        "error calling mod: runtime error: integer divide by zero",
    ),
    (
        r#"{{ go_base64Decode(s="a*b=") }}"#,
        "error calling base64Decode: illegal base64 data at input byte 1",
    ),
    (
        r#"{{ go_base64Decode(s="aGk") }}"#,
        "error calling base64Decode: illegal base64 data at input byte 0",
    ),
    (
        r#"{{ go_gets(pattern="/a/[") }}"#,
        "error calling gets: syntax error in pattern",
    ),
    (
        r#"{{ go_getvs(pattern="/x[") }}"#,
        "error calling getvs: syntax error in pattern",
    ),
    (
        r#"{{ go_parseBool(s="yes") }}"#,
        r#"error calling parseBool: strconv.ParseBool: parsing "yes": invalid syntax"#,
    ),
    (
        r#"{{ go_json(s="[1]") }}"#,
        "error calling json: json: cannot unmarshal array into Go value of type map[string]interface {}",
    ),
    (
        r#"{{ go_jsonArray(s="{}") }}"#,
        "error calling jsonArray: json: cannot unmarshal object into Go value of type []interface {}",
    ),
    (
        r#"{{ go_sortByLength(v=go_jsonArray(s="[1]")) }}"#,
        "wrong type for value; expected []string; got []interface {}",
    ),
];

#[test]
fn confd_0_16_errors() {
    for (tera, want) in CONFD_ERRORS {
        let got = err(tera, &[], STORE);
        let first = got.lines().next().unwrap_or_default();
        assert_eq!(first.strip_prefix("error: "), Some(*want), "{tera}");
    }
    // A malformed pattern is only reported when the store has a key to try.
    assert_eq!(
        ok(r#"{{ go_str(v=go_gets(pattern="/a/[")) }}"#, &[], &[]),
        "[]"
    );
}

/// Field access, ranging and truth; expected output from Go confd 0.16.
#[test]
fn fields_ranges_and_truth_like_confd() {
    let j = r#"{% set j = go_json(s=go_getv(key="/json")) %}"#;
    assert_eq!(
        ok(
            &format!(
                "{j}{{% for p in go_items(v=j) %}}{{{{ p[0] }}}}={{{{ go_str(v=p[1]) }}}};{{% endfor %}}"
            ),
            &[],
            STORE
        ),
        "big=8e+06;f=1.5;l=[1 a true];n=<no value>;o=map[k:1e+21];port=8080;s=str;"
    );
    assert_eq!(
        ok(
            r#"{% for p in go_items(v=go_jsonArray(s=go_getv(key="/arr"))) %}{{ p[0] }}:{{ go_str(v=p[1]) }};{% endfor %}"#,
            &[],
            STORE
        ),
        "0:1;1:2.5;2:x;3:<no value>;4:map[a:1];"
    );
    assert_eq!(
        ok(
            &format!(
                r#"{j}{{{{ go_str(v=go_field(v=go_field(v=j, name="missing"), name="deeper")) }}}}"#
            ),
            &[],
            STORE
        ),
        "<no value>"
    );
    assert_eq!(ok(r#"{{ go_items(v=none) | length }}"#, &[], STORE), "0");
    let range_int = err(r#"{{ go_items(v=5) }}"#, &[], STORE);
    assert!(
        range_int.starts_with("error: range can't iterate over 5"),
        "{range_int}"
    );
    let range_str = err(r#"{{ go_items(v="ab") }}"#, &[], STORE);
    assert!(
        range_str.starts_with("error: range can't iterate over ab"),
        "{range_str}"
    );
    let on_string = err(r#"{{ go_field(v="a", name="Foo") }}"#, &[], STORE);
    assert!(
        on_string.starts_with("error: can't evaluate field Foo in type string"),
        "{on_string}"
    );
    let on_pair = err(
        r#"{{ go_field(v=go_get(key="/a/b"), name="Foo") }}"#,
        &[],
        STORE,
    );
    assert!(
        on_pair.starts_with("error: can't evaluate field Foo in type memkv.KVPair"),
        "{on_pair}"
    );
    // {{ if (json …).n }}y{{ else }}n{{ end }}{{ if get "/a/b" }}Y{{ end }}
    assert_eq!(
        ok(
            &format!(
                r#"{j}{{% if go_truth(v=go_field(v=j, name="n")) %}}y{{% else %}}n{{% endif %}}{{% if go_truth(v=go_get(key="/a/b")) %}}Y{{% endif %}}"#
            ),
            &[],
            STORE
        ),
        "nY"
    );
}

#[test]
fn datetime_is_a_go_time() {
    let out = ok(
        r#"{% set d = go_datetime() %}{{ go_str(v=d) }}|{{ go_time_format(t=d, layout="2006") }}|{{ go_str(v=go_field(v=d, name="Year")) }}"#,
        &[],
        STORE,
    );
    let mut parts = out.split('|');
    let (Some(printed), Some(year), Some(field_year)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("{out}");
    };
    // 2026-11-30 11:13:24.123456789 +0000 UTC m=+0.000012345
    assert!(printed.starts_with(year), "{printed}");
    assert!(printed.contains(" +0000 UTC m=+"), "{printed}");
    assert_eq!(year, field_year);
    assert_eq!(
        ok(
            r#"{{ go_time_format(t="2024-03-05T07:08:09.5Z", layout="Mon Jan _2 15:04:05.000 MST 2006") }}"#,
            &[],
            &[]
        ),
        "Tue Mar  5 07:08:09.500 UTC 2024"
    );
}

#[test]
fn reverse_and_kv_sort_keep_pairs() {
    assert_eq!(
        ok(
            r#"{{ go_str(v=go_reverse(v=go_gets(pattern="/a/c/*"))) }} {{ go_str(v=go_reverse(v=none)) }}"#,
            &[],
            STORE
        ),
        "[{/a/c/e 3} {/a/c/d 2}] <no value>"
    );
}
