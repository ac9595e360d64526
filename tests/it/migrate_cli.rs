//! `confd migrate` as a command: what it refuses (exit 2, nothing written),
//! what it reports (exit 1, `file:line:col`), `-noop`, `-force`, running it
//! twice, and the hint that `confd check` and a run give for a confdir whose
//! templates are still Go's.

use std::fs;
use std::path::Path;

use crate::common::Scenario;

/// A Go confdir: one resource rendering a Go template.
fn go_confdir(s: &Scenario, template: &str) {
    s.template("app.tmpl", template);
    s.resource("app", "app.conf", &["/app"], "");
}

fn migrate(s: &Scenario, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    s.run(&all)
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(&p).display().to_string())
        .collect();
    names.sort();
    names
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walkdir(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn converts_then_renders_and_a_second_run_changes_nothing() {
    let s = Scenario::new();
    go_confdir(&s, "name={{ getv \"/app/name\" }}\n");
    let dest = s.path().join("migrated");
    let dest_text = dest.display().to_string();
    let run = migrate(&s, &[&s.confdir(), &dest_text]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("1 template(s) converted"),
        "{}",
        run.stderr
    );
    let converted = fs::read_to_string(dest.join("templates/app.tmpl")).expect("converted");
    assert!(
        converted.contains("go_getv(key=\"/app/name\")"),
        "{converted}"
    );
    assert_eq!(
        fs::read(dest.join("conf.d/app.toml")).expect("copied"),
        fs::read(s.path().join("conf.d/app.toml")).expect("source"),
        "conf.d is copied unchanged"
    );

    // Migrating the migrated confdir converts nothing twice.
    let again = s.path().join("again");
    let again_text = again.display().to_string();
    let run = migrate(&s, &[&dest_text, &again_text]);
    run.expect_code(0);
    assert!(run.stderr.contains("already Tera"), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(again.join("templates/app.tmpl")).expect("copied"),
        converted
    );
}

#[test]
fn refuses_what_it_cannot_do_and_writes_nothing() {
    let s = Scenario::new();
    go_confdir(&s, "{{ getv \"/app/name\" }}");
    let nowhere = s.path().join("no-such-confdir").display().to_string();
    let dest = s.path().join("dest");
    let dest_text = dest.display().to_string();
    let run = migrate(&s, &[&nowhere, &dest_text]);
    run.expect_code(2);
    assert!(run.stderr.contains("no conf.d/"), "{}", run.stderr);
    assert!(!dest.exists());

    fs::create_dir_all(&dest).expect("dest");
    fs::write(dest.join("keep.txt"), "mine").expect("file");
    let run = migrate(&s, &[&s.confdir(), &dest_text]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("not empty") && run.stderr.contains("-force"),
        "{}",
        run.stderr
    );
    assert_eq!(files_under(&dest), vec!["keep.txt"]);

    let run = migrate(&s, &["-force", &s.confdir(), &dest_text]);
    run.expect_code(0);
    assert!(dest.join("templates/app.tmpl").exists());
    assert_eq!(
        fs::read_to_string(dest.join("keep.txt")).expect("kept"),
        "mine"
    );

    // In place needs -force too.
    let run = migrate(&s, &[&s.confdir(), &s.confdir()]);
    run.expect_code(2);
}

#[test]
fn noop_prints_the_converted_templates_and_writes_nothing() {
    let s = Scenario::new();
    go_confdir(&s, "{{ range lsdir \"/app\" }}{{ . }}{{ end }}");
    let dest = s.path().join("dest");
    let run = migrate(&s, &["-noop", &s.confdir(), &dest.display().to_string()]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("templates/app.tmpl (converted)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("go_lsdir(key=\"/app\")"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("conf.d/app.toml (copied)"),
        "{}",
        run.stdout
    );
    assert!(!dest.exists(), "-noop wrote something");
}

#[test]
fn what_needs_a_person_is_reported_at_its_place_and_never_renders() {
    let s = Scenario::new();
    go_confdir(&s, "ok\n  {{ call (getv \"/app/fn\") }}\n");
    let dest = s.path().join("dest");
    let dest_text = dest.display().to_string();
    let run = migrate(&s, &[&s.confdir(), &dest_text]);
    run.expect_code(1);
    let line = run.line_with("app.tmpl:2:6:");
    assert!(line.contains("call"), "{line}");
    // The converted template fails at that place instead of writing a file.
    s.write("data.yaml", "app:\n  fn: x\n");
    let data = s.path().join("data.yaml").display().to_string();
    let render = s.run(&[
        "-onetime", "-backend", "file", "-file", &data, "-confdir", &dest_text,
    ]);
    render.expect_code(1);
    assert!(
        render.stderr.contains("could not convert"),
        "{}",
        render.stderr
    );
    assert!(!s.out("app.conf").exists());
}

#[test]
fn an_unmigrated_confdir_says_to_run_confd_migrate() {
    let s = Scenario::new();
    go_confdir(&s, "{{ range lsdir \"/app\" }}{{ . }}{{ end }}");
    let run = s.run(&["check", "-confdir", &s.confdir()]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("confd migrate") || run.stderr.contains("confd migrate"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = s.onetime_env(&[]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("Go text/template") && run.stderr.contains("confd migrate"),
        "{}",
        run.stderr
    );
}
