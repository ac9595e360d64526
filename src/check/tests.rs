//! `confd check` over a confdir with several problems at once, printed in
//! each format.

use std::path::Path;

use super::*;
use crate::cli::CheckFormat;

/// A confdir with two resources sharing a template that calls a helper with
/// a misspelt argument and reads a key the fixtures lack, a template that
/// does not compile, a resource file with an unknown key, and a resource
/// whose JSON output is broken.
fn confdir(dir: &Path) {
    let write = |relative: &str, text: &str| {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    let resource = |name: &str, src: &str, extra: &str| {
        write(
            &format!("conf.d/{name}.toml"),
            &format!(
                "[template]\nsrc = \"{src}\"\ndest = \"/nonexistent/{name}\"\nkeys = [\"/app\"]\n{extra}"
            ),
        )
    };
    write(
        "templates/app.tmpl",
        "port {{ getv(key=\"/app/port\") }}\nhost {{ getv(key=\"/app/host\", defualt=\"x\") }}\n",
    );
    resource("a", "app.tmpl", "");
    resource("b", "app.tmpl", "");
    write("templates/broken.tmpl", "ok\n{% if %}\n");
    resource("c", "broken.tmpl", "");
    write(
        "conf.d/d.toml",
        "[template]\nsrc = \"x.tmpl\"\ndest = \"/x\"\nkeys = [\"/a\"]\nbogus = 1\n",
    );
    write(
        "templates/cfg.json.tmpl",
        "{\n  \"port\": {{ getv(key=\"/app/port\") }},\n}\n",
    );
    resource("e", "cfg.json.tmpl", "format = \"json\"\n");
    write("fixtures.yaml", "app:\n  port: 80\n");
}

fn lines(format: CheckFormat, fixtures: bool) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    confdir(dir.path());
    let args = CheckArgs {
        confdir: dir.path().to_path_buf(),
        files: if fixtures {
            vec![dir.path().join("fixtures.yaml")]
        } else {
            Vec::new()
        },
        prefix: None,
        format,
    };
    let root = dir.path().display().to_string();
    problems(&args)
        .iter()
        .map(|p| p.format(format).replace(&root, "C"))
        .collect()
}

#[test]
fn text_reports_every_problem_in_order() {
    assert_eq!(
        lines(CheckFormat::Text, true),
        [
            "C/conf.d/d.toml:5:1: unknown field `bogus`, expected one of `src`, `dest`, `keys`, `prefix`, `mode`, `owner`, `uid`, `group`, `gid`, `check_cmd`, `reload_cmd`, `min_keys`, `max_shrink`, `command_timeout`, `wait`, `render_timeout`, `max_output_size`, `format`",
            "C/templates/app.tmpl:2:31: getv: unknown argument `defualt` of the function (it takes key, default)",
            "C/templates/app.tmpl:2:9: getv: key /app/host not found (give default=\"…\" to allow a missing key) (resource a.toml)",
            "C/templates/app.tmpl:2:9: getv: key /app/host not found (give default=\"…\" to allow a missing key) (resource b.toml)",
            "C/templates/broken.tmpl:2:7: Found `%}` but expected one of: integer, float, string, bool, ident, `-`, `not`, `<`, `{`, `[` or `(`",
            "C/templates/cfg.json.tmpl: the rendered text is not valid JSON (rendered line 3, column 1): key must be a string (resource e.toml)",
        ]
    );
}

#[test]
fn without_fixtures_only_parsing_compiling_and_arguments() {
    assert_eq!(
        lines(CheckFormat::Text, false)
            .iter()
            .map(|l| l.split(": ").next().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "C/conf.d/d.toml:5:1",
            "C/templates/app.tmpl:2:31",
            "C/templates/broken.tmpl:2:7"
        ]
    );
}

#[test]
fn github_annotations() {
    let out = lines(CheckFormat::Github, true);
    assert_eq!(out.len(), 6, "{out:?}");
    assert!(
        out[0].starts_with("::error file=C/conf.d/d.toml,line=5,col=1::unknown field `bogus`"),
        "{}",
        out[0]
    );
    assert_eq!(
        out[1],
        "::error file=C/templates/app.tmpl,line=2,col=31::getv: unknown argument `defualt` of the function (it takes key, default)"
    );
    assert_eq!(
        out[5],
        "::error file=C/templates/cfg.json.tmpl::the rendered text is not valid JSON (rendered line 3, column 1): key must be a string (resource e.toml)"
    );
}

#[test]
fn json_lines_parse_back_with_every_field() {
    let out = lines(CheckFormat::Json, true);
    assert_eq!(out.len(), 6, "{out:?}");
    let parsed: Vec<serde_json::Value> = out
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        parsed[2],
        serde_json::json!({
            "file": "C/templates/app.tmpl", "line": 2, "col": 9, "severity": "error",
            "message": "getv: key /app/host not found (give default=\"…\" to allow a missing key)", "resource": "a.toml"
        })
    );
    assert_eq!(parsed[0]["resource"], serde_json::Value::Null);
    assert_eq!(parsed[5]["line"], serde_json::Value::Null);
    assert!(parsed.iter().all(|p| p["severity"] == "error"));
}

#[test]
fn broken_fixture_file_is_reported_at_its_line() {
    for (name, text, line) in [
        ("f.yaml", "a: 1\nb: [1, 2\n", 3),
        ("f.json", "{\n  \"a\": 1,\n}\n", 3),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        confdir(dir.path());
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("write");
        let args = CheckArgs {
            confdir: dir.path().to_path_buf(),
            files: vec![file.clone()],
            prefix: None,
            format: CheckFormat::Json,
        };
        let found = problems(&args);
        let fixture = found
            .iter()
            .find(|p| p.file == file.display().to_string())
            .expect("the fixture file is named");
        assert_eq!(fixture.line, Some(line), "{fixture:?}");
        assert!(fixture.col.is_some(), "{fixture:?}");
    }
}
