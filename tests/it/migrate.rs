//! `confd migrate` against the bytes Go confd 0.16 renders: the corpus in
//! `tests/migrate/` (its README says what each case covers and how the
//! expected bytes were made).
//!
//! `go_confd_bytes::<case>` (one test per case folder): copy the case's
//! `confdir/` and `data.yaml` into a temporary work folder, run
//! `confd migrate confdir migrated` there (exit 0, or the status the case's
//! `migrate-status` names), then
//! `confd -onetime -backend file -file data.yaml -confdir migrated` in the
//! same folder, and compare `out/` with the case's `expected/` byte for byte.
//! A case whose `expected/ERROR` holds Go confd's error is a template Go
//! confd fails to render: the converted one must fail too (exit 1, nothing
//! written to `out/`). Both runs see the same small environment as the Go
//! confd did ([`ENVIRONMENT`]).
//!
//! `corpus_is_complete` checks the corpus itself, without converting
//! anything: every case has its templates, data, resources (which this
//! project's resource parser accepts) and expected bytes or error, and each
//! case folder has its test here.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::confd::{Confd, RUN_LIMIT};
use crate::common::{Run, confd_command, repo_root};

/// The variables both confds run with (besides `PATH`): the integration
/// cases read `HOSTNAME`, `edge-helpers` reads the `MIGRATE_*` ones, and a
/// fixed zone keeps `datetime` out of the host's settings.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("HOSTNAME", "localhost"),
    ("MIGRATE_TEST", "value"),
    ("MIGRATE_EMPTY", ""),
    ("TZ", "UTC"),
];

/// Declares the case folders: [`CASES`] and one test per case in
/// [`go_confd_bytes`]. A folder `error-atoi` is written `error_atoi` here.
macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case folder under `tests/migrate/`, spelled with `_` for `-`.
        const CASES: &[&str] = &[$(stringify!($name)),*];

        /// One test per case: `confd migrate`, then a render of the result,
        /// compared with what Go confd 0.16 rendered.
        mod go_confd_bytes {
            $(
                #[test]
                fn $name() {
                    super::check_case(&stringify!($name).replace('_', "-"));
                }
            )*
        }
    };
}

cases! {
    // confd 0.16's own integration cases
    basic,
    exists,
    iteration,
    nested,
    manykeys,
    // the examples of confd 0.16's docs/templates.md
    docs,
    // templates in the style of real deployments
    haproxy,
    nginx,
    patroni,
    redis_sentinel,
    kafka_zookeeper,
    json_output,
    yaml_output,
    // edges of the language and of confd's helpers
    edge_getv,
    edge_store,
    edge_values,
    edge_literals,
    edge_helpers,
    // templates Go confd 0.16 fails on
    error_atoi,
    error_base64,
    error_break_outside_range,
    error_call,
    error_compare,
    error_div_zero,
    error_field_of_string,
    error_getv_missing,
    error_index_range,
    error_json,
    error_nil_command,
    error_nil_field,
    error_parsebool,
    error_template_undefined,
    error_trailing_slash,
    error_unclosed_action,
    error_undefined_function,
    error_wrong_argument_type,
}

/// `tests/migrate/`.
fn corpus() -> PathBuf {
    repo_root().join("tests").join("migrate")
}

/// What Go confd 0.16 did with a case.
enum Expected {
    /// It wrote these files (name under `out/` → bytes).
    Files(Vec<(String, Vec<u8>)>),
    /// It failed with this message and wrote nothing.
    Error(String),
}

fn expected(case: &Path) -> Expected {
    let dir = case.join("expected");
    let error = dir.join("ERROR");
    if error.exists() {
        return Expected::Error(read_text(&error).trim_end().to_string());
    }
    let files = file_names(&dir)
        .into_iter()
        .map(|name| {
            let bytes = read_bytes(&dir.join(&name));
            (name, bytes)
        })
        .collect();
    Expected::Files(files)
}

/// The exit status `confd migrate` must give for a case: the number in its
/// `migrate-status` file (a template Go cannot even parse needs a manual
/// step: 1), else 0.
fn migrate_status(case: &Path) -> i32 {
    let file = case.join("migrate-status");
    if !file.exists() {
        return 0;
    }
    let text = read_text(&file);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: not an exit status: {text:?}", file.display()))
}

/// Runs one case end to end (see the module documentation).
fn check_case(name: &str) {
    let case = corpus().join(name);
    assert!(case.is_dir(), "{} is missing", case.display());
    let work = tempfile::tempdir().expect("work folder");
    let logs = tempfile::tempdir().expect("log folder");
    copy_tree(&case.join("confdir"), &work.path().join("confdir"));
    fs::copy(case.join("data.yaml"), work.path().join("data.yaml")).expect("copy data.yaml");
    fs::create_dir(work.path().join("out")).expect("create out/");

    let migrate = run(
        work.path(),
        logs.path(),
        &["migrate", "confdir", "migrated"],
    );
    let status = migrate_status(&case);
    assert_eq!(
        migrate.code,
        status,
        "{name}: `confd migrate confdir migrated` exited {} (expected {status})\n{}",
        migrate.code,
        output(&migrate)
    );
    // conf.d is copied unchanged, and the source is left as it was.
    let conf_d = case.join("confdir").join("conf.d");
    assert_same_tree(&conf_d, &work.path().join("migrated").join("conf.d"), name);
    assert_same_tree(
        &case.join("confdir"),
        &work.path().join("confdir"),
        &format!("{name} (the source confdir after migrate)"),
    );

    let render = run(
        work.path(),
        logs.path(),
        &[
            "-onetime",
            "-backend",
            "file",
            "-file",
            "data.yaml",
            "-confdir",
            "migrated",
        ],
    );
    let written = file_names(&work.path().join("out"));
    let templates = converted_templates(&work.path().join("migrated"));
    match expected(&case) {
        Expected::Error(reason) => {
            assert!(
                render.code == 1 && written.is_empty(),
                "{name}: Go confd 0.16 fails on this template ({reason}); the converted one \
                 must fail too (exit 1, nothing written), but confd exited {} and wrote {written:?}\n{}\n{templates}",
                render.code,
                output(&render),
            );
        }
        Expected::Files(files) => {
            let mut problems = Vec::new();
            if render.code != 0 {
                problems.push(format!("confd exited {}\n{}", render.code, output(&render)));
            }
            let expected_names: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
            let written_names: BTreeSet<&str> = written.iter().map(String::as_str).collect();
            if expected_names != written_names {
                problems.push(format!(
                    "out/ holds {written_names:?}, Go confd 0.16 wrote {expected_names:?}"
                ));
            }
            for (file, bytes) in &files {
                let path = work.path().join("out").join(file);
                let Ok(actual) = fs::read(&path) else {
                    continue;
                };
                if &actual != bytes {
                    problems.push(format!(
                        "out/{file}:\n{}",
                        describe_difference(bytes, &actual)
                    ));
                }
            }
            assert!(
                problems.is_empty(),
                "{name}: the converted templates do not render what Go confd 0.16 rendered\n\n{}\n\n{templates}",
                problems.join("\n\n")
            );
        }
    }
}

/// Runs confd in `dir` with [`ENVIRONMENT`], bounded by [`RUN_LIMIT`], its
/// output captured in files under `logs`.
fn run(dir: &Path, logs: &Path, args: &[&str]) -> Run {
    let mut command: Command = confd_command(dir, args);
    command.envs(ENVIRONMENT.iter().copied());
    Confd::spawn_command(command, logs).finish(RUN_LIMIT)
}

fn output(run: &Run) -> String {
    format!("--- stdout\n{}--- stderr\n{}", run.stdout, run.stderr)
}

/// The converted templates, for a failure message.
fn converted_templates(confdir: &Path) -> String {
    let dir = confdir.join("templates");
    if !dir.is_dir() {
        return format!("(no {})", dir.display());
    }
    let mut text = String::new();
    for name in file_names(&dir) {
        let body = fs::read(dir.join(&name)).unwrap_or_default();
        text.push_str(&format!(
            "--- converted templates/{name}\n{}\n",
            String::from_utf8_lossy(&body)
        ));
    }
    text
}

/// A readable account of how `actual` differs from `expected`: where the
/// first difference is (with both sides escaped, so spaces, tabs and line
/// ends show) and a unified diff by lines.
fn describe_difference(expected: &[u8], actual: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let line = expected[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let column = at
        - expected[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    let window = |bytes: &[u8]| {
        let start = at.saturating_sub(20);
        let end = (at + 40).min(bytes.len());
        format!("{:?}", String::from_utf8_lossy(&bytes[start.min(end)..end]))
    };
    let expected_text = String::from_utf8_lossy(expected);
    let actual_text = String::from_utf8_lossy(actual);
    let diff = similar::TextDiff::from_lines(expected_text.as_ref(), actual_text.as_ref())
        .unified_diff()
        .context_radius(3)
        .header("Go confd 0.16", "converted")
        .to_string();
    format!(
        "first difference at byte {at} (line {line}, column {column}); {} bytes expected, {} rendered\n  \
         expected …{}…\n  rendered …{}…\n{diff}",
        expected.len(),
        actual.len(),
        window(expected),
        window(actual),
    )
}

/// Asserts that two folders hold the same files with the same bytes.
fn assert_same_tree(expected: &Path, actual: &Path, what: &str) {
    let left = tree(expected);
    let right = tree(actual);
    let left_names: Vec<&String> = left.iter().map(|(n, _)| n).collect();
    let right_names: Vec<&String> = right.iter().map(|(n, _)| n).collect();
    assert_eq!(
        left_names,
        right_names,
        "{what}: {} and {} hold different files",
        expected.display(),
        actual.display()
    );
    for ((name, a), (_, b)) in left.iter().zip(&right) {
        assert!(
            a == b,
            "{what}: {name} differs between {} and {}\n{}",
            expected.display(),
            actual.display(),
            describe_difference(a, b)
        );
    }
}

/// Every file under `dir` (relative path → bytes), sorted; empty when `dir`
/// does not exist.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    if !dir.is_dir() {
        return files;
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.expect("walk folder");
        if entry.file_type().is_file() {
            let relative = entry
                .path()
                .strip_prefix(dir)
                .expect("below the folder")
                .display()
                .to_string();
            files.push((relative, read_bytes(entry.path())));
        }
    }
    files
}

fn copy_tree(from: &Path, to: &Path) {
    for (relative, bytes) in tree(from) {
        let path = to.join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create folder");
        fs::write(&path, bytes).expect("copy file");
    }
}

/// The names of the entries of `dir`, sorted (empty when it does not exist).
fn file_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn read_bytes(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The corpus itself, checked without converting anything (so it holds
/// before `confd migrate` exists): see the module documentation.
#[test]
fn corpus_is_complete() {
    let root = corpus();
    let folders: BTreeSet<String> = file_names(&root)
        .into_iter()
        .filter(|n| root.join(n).is_dir())
        .collect();
    let listed: BTreeSet<String> = CASES.iter().map(|c| c.replace('_', "-")).collect();
    assert_eq!(
        folders, listed,
        "the case folders under tests/migrate/ and the cases! list in tests/it/migrate.rs differ"
    );
    let readme = read_text(&root.join("README.md"));

    let mut problems = Vec::new();
    for name in &folders {
        for problem in case_problems(&root.join(name)) {
            problems.push(format!("tests/migrate/{name}: {problem}"));
        }
        if !readme.contains(&format!("`{name}`")) {
            problems.push(format!(
                "tests/migrate/README.md does not describe `{name}`"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What is wrong with one case folder (nothing when it is complete).
fn case_problems(case: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in file_names(case) {
        if !["confdir", "data.yaml", "expected", "migrate-status"].contains(&entry.as_str()) {
            problems.push(format!("unexpected entry {entry}"));
        }
    }
    if case.join("migrate-status").exists() {
        let text = read_text(&case.join("migrate-status"));
        if !["0\n", "1\n", "2\n"].contains(&text.as_str()) {
            problems.push(format!(
                "migrate-status holds {text:?}, not one exit status line"
            ));
        }
    }

    // The resources, as this project reads them.
    let confdir = case.join("confdir");
    let (resources, errors) = confd::resource::load_each(&confdir, "");
    problems.extend(errors.iter().map(|e| e.to_string()));
    if resources.is_empty() && errors.is_empty() {
        problems.push("confdir/conf.d holds no resource".to_string());
    }
    let mut dests = BTreeSet::new();
    let mut sources = BTreeSet::new();
    for resource in &resources {
        if !resource.src.is_file() {
            problems.push(format!(
                "{}: template {} is missing",
                resource.name,
                resource.src.display()
            ));
        }
        sources.insert(resource.src.clone());
        let dest = &resource.dest;
        match (dest.parent(), dest.file_name()) {
            (Some(parent), Some(file)) if parent == Path::new("out") => {
                if !dests.insert(file.to_string_lossy().into_owned()) {
                    problems.push(format!(
                        "{}: dest {} is written twice",
                        resource.name,
                        dest.display()
                    ));
                }
            }
            _ => problems.push(format!(
                "{}: dest {} is not out/<name>",
                resource.name,
                dest.display()
            )),
        }
    }
    for template in file_names(&confdir.join("templates")) {
        if !sources.contains(&confdir.join("templates").join(&template)) {
            problems.push(format!("templates/{template} is no resource's src"));
        }
    }

    // The data, in a form both file backends read alike.
    match fs::read_to_string(case.join("data.yaml")) {
        Ok(text) => match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
            Ok(value @ serde_yaml_ng::Value::Mapping(_)) => {
                data_problems(&value, "", &mut problems)
            }
            Ok(_) => problems.push("data.yaml is not a mapping".to_string()),
            Err(e) => problems.push(format!("data.yaml: {e}")),
        },
        Err(e) => problems.push(format!("data.yaml: {e}")),
    }

    // The expected bytes, or Go confd's error.
    let expected_dir = case.join("expected");
    let names = file_names(&expected_dir);
    if names.iter().any(|n| n == "ERROR") {
        let reason = read_text(&expected_dir.join("ERROR"));
        if names.len() != 1 {
            problems.push(format!("expected/ holds ERROR and other files: {names:?}"));
        }
        if resources.len() != 1 {
            problems.push("a case Go confd fails on has exactly one resource".to_string());
        }
        if reason.trim().is_empty() || !reason.ends_with('\n') || reason.trim_end().contains('\n') {
            problems.push(format!("expected/ERROR is not one line: {reason:?}"));
        }
    } else {
        let names: BTreeSet<String> = names.into_iter().collect();
        if names != dests {
            problems.push(format!(
                "expected/ holds {names:?}, the resources write {dests:?}"
            ));
        }
        if case.join("migrate-status").exists() {
            problems.push("migrate-status is for the cases Go confd fails on".to_string());
        }
    }
    problems
}

/// Data both file backends flatten alike: keys that are strings (Go's
/// stops at any other) and no null values (Go's drops the key, this
/// project's reads an empty value).
fn data_problems(value: &serde_yaml_ng::Value, path: &str, problems: &mut Vec<String>) {
    use serde_yaml_ng::Value;
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                match key {
                    Value::String(key) => data_problems(child, &format!("{path}/{key}"), problems),
                    other => problems.push(format!(
                        "data.yaml: key {other:?} under {path:?} is not a string (quote it)"
                    )),
                }
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                data_problems(child, &format!("{path}/{i}"), problems);
            }
        }
        Value::Null => problems.push(format!("data.yaml: {path} is null")),
        Value::Tagged(_) => problems.push(format!("data.yaml: {path} is tagged")),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}
