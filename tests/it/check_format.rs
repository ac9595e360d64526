//! `confd check -format text|github|json` end to end, unknown helpers and
//! arguments without data, missing keys with fixtures, and a resource's
//! `format = "json" | "yaml" | "toml"` at check time and at sync time (the
//! dest left untouched when the rendered text does not parse).

use crate::common::{Scenario, read};

/// Runs `confd check -confdir <scenario> ARGS…`.
fn check(s: &Scenario, args: &[&str]) -> crate::common::Run {
    let confdir = s.confdir();
    let mut all = vec!["check", "-confdir", confdir.as_str()];
    all.extend_from_slice(args);
    s.run(&all)
}

/// The scenario's paths replaced by `C`, so lines can be compared whole.
fn relative(s: &Scenario, text: &str) -> Vec<String> {
    text.lines().map(|l| l.replace(&s.confdir(), "C")).collect()
}

/// Two resources, a template with a misspelt argument and one calling an
/// unknown helper; no data anywhere.
fn without_data() -> Scenario {
    let s = Scenario::new();
    s.template("a.tmpl", "x\n  {{ getv(key=\"/a\", defualt=\"d\") }}\n");
    s.resource("a", "a.txt", &["/a"], "");
    s.template(
        "b.tmpl",
        "{% for h in lsdir(key=\"/b\") %}\n{{ h | nosuch }}\n{% endfor %}\n",
    );
    s.resource("b", "b.txt", &["/b"], "");
    s
}

#[test]
fn unknown_helper_and_argument_are_found_without_fixtures() {
    let s = without_data();
    let run = check(&s, &[]);
    run.expect_code(1);
    let lines = relative(&s, &run.stdout);
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(
        lines[0],
        "C/templates/a.tmpl:2:21: getv: unknown argument `defualt` of the function (it takes key, default)"
    );
    assert!(
        lines[1].starts_with("C/templates/b.tmpl:2:"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("nosuch"), "{}", lines[1]);
}

#[test]
fn github_format_annotates_each_line_and_env_selects_json() {
    let mut s = without_data();
    let run = check(&s, &["-format", "github"]);
    run.expect_code(1);
    let lines = relative(&s, &run.stdout);
    assert_eq!(
        lines[0],
        "::error file=C/templates/a.tmpl,line=2,col=21::getv: unknown argument `defualt` of the function (it takes key, default)"
    );
    assert!(
        lines[1].starts_with("::error file=C/templates/b.tmpl,line=2,col="),
        "{}",
        lines[1]
    );

    s.set_env("CONFD_CHECK_FORMAT", "json");
    let run = check(&s, &[]);
    run.expect_code(1);
    let objects: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["line"], 2);
    assert_eq!(objects[0]["col"], 21);
    assert_eq!(objects[0]["severity"], "error");
    assert_eq!(
        objects[0]["file"],
        format!("{}/templates/a.tmpl", s.confdir())
    );

    let run = check(&s, &["-format", "xml"]);
    run.expect_code(2);
    assert!(run.stderr.contains("xml"), "{}", run.stderr);
}

#[test]
fn missing_key_with_fixtures_is_reported_at_its_position() {
    let s = Scenario::new();
    s.template(
        "m.tmpl",
        "port {{ getv(key=\"/app/port\") }}\nhost   {{ getv(key=\"/app/host\") }}\n",
    );
    s.resource("m", "m.txt", &["/app"], "");
    let fixtures = s.write("fixtures.yaml", "app:\n  port: 80\n");
    let fixtures = fixtures.display().to_string();
    // Without fixtures nothing is rendered: the template is fine.
    check(&s, &[]).expect_code(0);
    let run = check(&s, &["-file", &fixtures, "-format", "json"]);
    run.expect_code(1);
    let problem: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("JSON");
    assert_eq!(problem["line"], 2);
    assert_eq!(problem["col"], 11);
    assert_eq!(problem["resource"], "m.toml");
    assert!(
        problem["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/app/host"),
        "{problem}"
    );
    assert!(!s.out("m.txt").exists());
}

/// One resource rendering `body` (with `/app/port` = 80) as `format`.
fn formatted(format: &str, body: &str) -> (Scenario, String) {
    let s = Scenario::new();
    s.template("cfg.tmpl", body);
    s.resource(
        "cfg",
        "cfg.out",
        &["/app"],
        &format!("format = \"{format}\"\n"),
    );
    let data = s
        .write("data.yaml", "app:\n  port: 80\n")
        .display()
        .to_string();
    (s, data)
}

const GOOD: [(&str, &str); 3] = [
    ("json", "{\n  \"port\": {{ getv(key=\"/app/port\") }}\n}\n"),
    (
        "yaml",
        "port: {{ getv(key=\"/app/port\") }}\nhosts: [a, b]\n",
    ),
    ("toml", "[app]\nport = {{ getv(key=\"/app/port\") }}\n"),
];

/// Broken at rendered line 3 (JSON, TOML) and 4 (YAML).
const BAD: [(&str, &str); 3] = [
    (
        "json",
        "{\n  \"port\": {{ getv(key=\"/app/port\") }},\n  \"hosts\": [a]\n}\n",
    ),
    (
        "yaml",
        "port: {{ getv(key=\"/app/port\") }}\nhosts:\n  - a\n - b\n",
    ),
    (
        "toml",
        "[app]\nport = {{ getv(key=\"/app/port\") }}\nhost = \n",
    ),
];

#[test]
fn declared_format_is_checked_by_confd_check() {
    for (format, body) in GOOD {
        let (s, data) = formatted(format, body);
        check(&s, &["-file", &data]).expect_code(0);
    }
    for ((format, body), wrong) in BAD.into_iter().zip([3, 4, 3]) {
        let (s, data) = formatted(format, body);
        // Without fixtures there is no rendered text to parse.
        check(&s, &[]).expect_code(0);
        let run = check(&s, &["-file", &data]);
        run.expect_code(1);
        let lines = relative(&s, &run.stdout);
        assert_eq!(lines.len(), 1, "{format}: {}", run.stdout);
        let label = format.to_uppercase();
        assert!(
            lines[0].starts_with(&format!(
                "C/templates/cfg.tmpl: the rendered text is not valid {label} (rendered line {wrong}, column "
            )),
            "{format}: {}",
            lines[0]
        );
        assert!(lines[0].ends_with("(resource cfg.toml)"), "{}", lines[0]);
    }
}

#[test]
fn declared_format_guards_the_dest_at_sync_time() {
    for (format, body) in GOOD {
        let (s, data) = formatted(format, body);
        let confdir = s.confdir();
        s.run(&[
            "-onetime", "-backend", "file", "-file", &data, "-confdir", &confdir,
        ])
        .expect_code(0);
        assert!(read(&s.out("cfg.out")).contains("80"), "{format}");
    }
    for ((format, body), wrong) in BAD.into_iter().zip([3, 4, 3]) {
        let (s, data) = formatted(format, body);
        let dest = s.write("out/cfg.out", "previous\n");
        let confdir = s.confdir();
        let run = s.run(&[
            "-onetime", "-backend", "file", "-file", &data, "-confdir", &confdir,
        ]);
        run.expect_code(1);
        let line = run.line_with("step=validate");
        let label = format.to_uppercase();
        assert!(
            line.contains(&format!("not valid {label} (rendered line {wrong}")),
            "{format}: {line}"
        );
        assert!(line.contains("cfg.tmpl"), "{line}");
        assert_eq!(read(&dest), "previous\n", "{format}: dest touched");
        assert_eq!(
            s.out_entries(),
            ["cfg.out"],
            "{format}: a stage file was left"
        );
        // Waiting for data cannot fix a template: -wait-keys gives up at once.
        let started = std::time::Instant::now();
        let run = s.run(&[
            "-onetime",
            "-wait-keys",
            "30s",
            "-backend",
            "file",
            "-file",
            &data,
            "-confdir",
            &confdir,
        ]);
        run.expect_code(1);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{format}: waited"
        );
        assert_eq!(read(&dest), "previous\n");
    }
}
