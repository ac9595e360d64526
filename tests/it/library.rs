//! The template library (`templates/*/`) and the runnable examples
//! (`examples/*/run.sh`), run against the built binary.
//!
//! For every template folder: `confd check` against its fixtures exits 0; a
//! `-onetime -backend file` render into a temporary dest is byte for byte the
//! folder's `expected.*`; and, when the program is installed, the program
//! itself accepts the output (`haproxy -c`, `nginx -t`, `keepalived -t`).
//! Every example's `run.sh` exits 0.
//!
//! Everything is written under temporary directories, and every child process
//! runs with a time limit (its whole process group is killed past it).

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every folder under `templates/`; `every_folder_is_tested` keeps this honest.
const TEMPLATES: &[&str] = &["app-ini", "haproxy", "keepalived", "nginx"];

/// Every folder under `examples/` that has a `run.sh`.
const EXAMPLES: &[&str] = &[
    "env-database",
    "file-haproxy",
    "guard-min-keys",
    "haproxy-consul",
    "haproxy-etcd",
    "haproxy-keepalived",
    "haproxy-redis-vault",
    "haproxy-swarm-dns",
    "membership-etcd",
    "redis-haproxy",
    "vault-database",
];

/// Time limit for one confd run or one validation.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Time limit for one example script (it runs confd several times).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn confd() -> &'static str {
    env!("CARGO_BIN_EXE_confd")
}

/// What a finished (or killed) child left behind.
struct Outcome {
    /// The exit code; `None` when it was killed by a signal or timed out.
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn describe(&self, what: &str) -> String {
        let status = if self.timed_out {
            "timed out".to_string()
        } else {
            match self.code {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            }
        };
        format!(
            "{what}: {status}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        )
    }
}

/// A command with no stdin and no `CONFD_*` variables inherited from the
/// environment running the tests (they would act as flags).
fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CONFD_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs `cmd` in its own process group, capturing its output in anonymous
/// temporary files (no pipe to fill up), and kills the group past `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> Outcome {
    let out = tempfile::tempfile().expect("temporary file for stdout");
    let err = tempfile::tempfile().expect("temporary file for stderr");
    cmd.stdout(out.try_clone().expect("clone stdout handle"))
        .stderr(err.try_clone().expect("clone stderr handle"))
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // The child leads its own group: take its children down with it.
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(format!("-{}", child.id()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            break child.wait().expect("wait for killed child");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.code(),
        timed_out,
        stdout: read_all(out),
        stderr: read_all(err),
    }
}

fn read_all(mut file: fs::File) -> String {
    let mut text = String::new();
    file.rewind().expect("rewind captured output");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read captured output");
    text.push_str(&String::from_utf8_lossy(&bytes));
    text
}

/// Whether `program` is an executable file in a `PATH` directory.
fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
    })
}

/// Whether the tests run as root: files this process creates belong to it.
fn running_as_root(scratch: &Path) -> bool {
    let probe = scratch.join(".uid-probe");
    fs::write(&probe, b"").expect("write uid probe");
    let uid = fs::metadata(&probe).expect("stat uid probe").uid();
    let _ = fs::remove_file(probe);
    uid == 0
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    entries
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create copy directory");
    for entry in sorted_entries(from) {
        let target = to.join(entry.file_name().expect("entry name"));
        if entry.is_dir() {
            copy_dir(&entry, &target);
        } else {
            fs::copy(&entry, &target).unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} to {}: {e}",
                    entry.display(),
                    target.display()
                )
            });
        }
    }
}

/// A `key = "value"` line's value, for the simple one-line strings the
/// library's resources use.
fn string_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(key)?.trim_start();
    let value = rest.strip_prefix('=')?.trim();
    value.strip_prefix('"')?.strip_suffix('"')
}

/// How a template folder's output is validated by its own program.
struct Program {
    /// The executable; validation is skipped when it is not installed.
    tool: &'static str,
    /// Whether the resource's check_cmd may run in the tests. `nginx -t`
    /// opens `/run/nginx.pid` and `/var/log/nginx/*`, which tests must not
    /// touch, so its validation below rewrites those paths instead.
    check_cmd_in_tests: bool,
}

fn program_for(name: &str) -> Option<Program> {
    match name {
        "haproxy" => Some(Program {
            tool: "haproxy",
            check_cmd_in_tests: true,
        }),
        "nginx" => Some(Program {
            tool: "nginx",
            check_cmd_in_tests: false,
        }),
        "keepalived" => Some(Program {
            tool: "keepalived",
            // The fixtures name eth0, which `keepalived -t` wants to exist.
            check_cmd_in_tests: Path::new("/sys/class/net/eth0").exists(),
        }),
        _ => None,
    }
}

/// A network interface of this machine other than loopback, if any.
fn local_interface() -> Option<String> {
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Runs the program's own configuration test on `output`, if it is installed.
fn validate_with_program(name: &str, output: &Path, scratch: &Path) {
    let Some(program) = program_for(name) else {
        return;
    };
    if !on_path(program.tool) {
        eprintln!(
            "{name}: {} is not installed; skipping its validation",
            program.tool
        );
        return;
    }
    let mut cmd = match name {
        "haproxy" => {
            let mut cmd = command("haproxy");
            cmd.arg("-c").arg("-f").arg(output);
            cmd
        }
        "keepalived" => {
            // `keepalived -t` refuses an interface this machine lacks: test
            // a copy naming one it has when the fixture's (eth0) is missing.
            let text = fs::read_to_string(output).expect("read keepalived output");
            let local = match local_interface() {
                Some(name) if !Path::new("/sys/class/net/eth0").exists() => {
                    text.replace("interface eth0\n", &format!("interface {name}\n"))
                }
                _ => text,
            };
            let conf = scratch.join("keepalived-validate.conf");
            fs::write(&conf, local).expect("write keepalived validation copy");
            let mut cmd = command("keepalived");
            cmd.arg("-t").arg("-f").arg(conf);
            cmd
        }
        "nginx" => {
            // `nginx -t` binds the listen ports (80 needs root) and opens the
            // pid and log files: test a copy whose files live in scratch.
            if !running_as_root(scratch) {
                eprintln!("{name}: not root, so `nginx -t` cannot bind port 80; skipping");
                return;
            }
            let dir = scratch.join("nginx-validate");
            fs::create_dir_all(&dir).expect("create nginx validation directory");
            let text = fs::read_to_string(output).expect("read nginx output");
            let local = text
                .replace(
                    "/run/nginx.pid",
                    &dir.join("nginx.pid").display().to_string(),
                )
                .replace("/var/log/nginx/", &format!("{}/", dir.display()));
            let conf = dir.join("nginx.conf");
            fs::write(&conf, local).expect("write nginx validation copy");
            let mut cmd = command("nginx");
            cmd.arg("-t")
                .arg("-q")
                .arg("-e")
                .arg("stderr")
                .arg("-p")
                .arg(format!("{}/", dir.display()))
                .arg("-c")
                .arg(&conf);
            cmd
        }
        other => panic!("no validation defined for {other}"),
    };
    let outcome = run(&mut cmd, COMMAND_TIMEOUT);
    assert!(
        outcome.success(),
        "{}",
        outcome.describe(&format!("{} rejected {}", program.tool, output.display()))
    );
}

/// A template folder: one resource, its template(s), fixtures and expected output.
struct Folder {
    name: String,
    dir: PathBuf,
    resource: PathBuf,
    fixtures: PathBuf,
    expected: PathBuf,
}

fn folder(name: &str) -> Folder {
    let dir = repo().join("templates").join(name);
    assert!(
        dir.join("README.md").is_file(),
        "{name}: README.md is missing"
    );
    let resources: Vec<PathBuf> = sorted_entries(&dir.join("conf.d"))
        .into_iter()
        .filter(|p| p.extension() == Some(OsStr::new("toml")))
        .collect();
    assert_eq!(
        resources.len(),
        1,
        "{name}: expected one conf.d/*.toml, found {resources:?}"
    );
    let expected: Vec<PathBuf> = sorted_entries(&dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with("expected."))
        })
        .collect();
    assert_eq!(
        expected.len(),
        1,
        "{name}: expected one expected.* file, found {expected:?}"
    );
    let fixtures = dir.join("fixtures.yaml");
    assert!(fixtures.is_file(), "{name}: fixtures.yaml is missing");
    Folder {
        name: name.to_string(),
        resource: resources[0].clone(),
        expected: expected[0].clone(),
        fixtures,
        dir,
    }
}

/// Ends with exactly one newline and has no run of blank lines.
fn assert_tidy(what: &str, text: &str) {
    assert!(text.ends_with('\n'), "{what} does not end with a newline");
    assert!(!text.ends_with("\n\n"), "{what} ends with a blank line");
    if let Some(at) = text.find("\n\n\n") {
        let line = text[..at].lines().count() + 1;
        panic!("{what} has a run of blank lines after line {line}");
    }
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(expected: &str, actual: &str) -> String {
    let mut e = expected.split_inclusive('\n');
    let mut a = actual.split_inclusive('\n');
    for line in 1.. {
        match (e.next(), a.next()) {
            (None, None) => return "no line differs (bytes do)".to_string(),
            (x, y) if x == y => continue,
            (x, y) => return format!("line {line}: expected {x:?}, rendered {y:?}"),
        }
    }
    unreachable!()
}

/// `confd check` with the folder's fixtures, on an untouched copy.
fn check_folder(f: &Folder) {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let confdir = scratch.path().join("confd");
    copy_dir(&f.dir.join("conf.d"), &confdir.join("conf.d"));
    copy_dir(&f.dir.join("templates"), &confdir.join("templates"));
    for template in sorted_entries(&confdir.join("templates")) {
        let text = fs::read_to_string(&template).expect("read template");
        assert!(
            text.ends_with('\n') && !text.ends_with("\n\n"),
            "{}: the template must end with exactly one newline",
            template.display()
        );
    }
    let outcome = run(
        command(confd())
            .arg("check")
            .arg("-confdir")
            .arg(&confdir)
            .arg("-file")
            .arg(&f.fixtures),
        COMMAND_TIMEOUT,
    );
    assert!(
        outcome.success(),
        "{}",
        outcome.describe(&format!("{}: confd check", f.name))
    );
    assert_eq!(
        outcome.stdout, "",
        "{}: confd check reported problems",
        f.name
    );
}

/// Renders with the file backend into scratch and compares with expected.*.
fn render_folder(f: &Folder) {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let confdir = scratch.path().join("confd");
    let out = scratch.path().join("out");
    fs::create_dir_all(&out).expect("create output directory");
    copy_dir(&f.dir.join("templates"), &confdir.join("templates"));
    fs::create_dir_all(confdir.join("conf.d")).expect("create conf.d");

    let program = program_for(&f.name);
    let keep_check = program
        .as_ref()
        .is_some_and(|p| p.check_cmd_in_tests && on_path(p.tool));
    let text = fs::read_to_string(&f.resource).expect("read resource");
    let mut dest: Option<PathBuf> = None;
    let mut rewritten = String::new();
    for line in text.lines() {
        if let Some(value) = string_value(line, "dest") {
            let name = Path::new(value).file_name().expect("dest has a file name");
            let local = out.join(name);
            rewritten.push_str(&format!("dest = {:?}\n", local.display().to_string()));
            dest = Some(local);
        } else if string_value(line, "reload_cmd").is_some() {
            // Never reload a real service from a test.
        } else if string_value(line, "check_cmd").is_some() && !keep_check {
            // The program is not installed (or its check touches system files).
        } else {
            rewritten.push_str(line);
            rewritten.push('\n');
        }
    }
    let dest = dest.unwrap_or_else(|| panic!("{}: no dest line", f.resource.display()));
    let resource_name = f.resource.file_name().expect("resource file name");
    fs::write(confdir.join("conf.d").join(resource_name), rewritten).expect("write resource");

    let outcome = run(
        command(confd())
            .arg("-onetime")
            .arg("-backend")
            .arg("file")
            .arg("-file")
            .arg(&f.fixtures)
            .arg("-confdir")
            .arg(&confdir),
        COMMAND_TIMEOUT,
    );
    assert!(
        outcome.success(),
        "{}",
        outcome.describe(&format!("{}: confd -onetime", f.name))
    );

    let rendered = fs::read(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
    let expected = fs::read(&f.expected).expect("read expected output");
    if rendered != expected {
        let (e, r) = (
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&rendered),
        );
        panic!(
            "{}: the render differs from {} ({}); rendered:\n{r}",
            f.name,
            f.expected.display(),
            first_difference(&e, &r)
        );
    }
    assert_tidy(
        &format!("{}: the rendered file", f.name),
        &String::from_utf8_lossy(&rendered),
    );
    validate_with_program(&f.name, &dest, scratch.path());
}

fn template_folder(name: &str) {
    let f = folder(name);
    check_folder(&f);
    render_folder(&f);
}

#[test]
fn template_app_ini() {
    template_folder("app-ini");
}

#[test]
fn template_haproxy() {
    template_folder("haproxy");
}

#[test]
fn template_keepalived() {
    template_folder("keepalived");
}

#[test]
fn template_nginx() {
    template_folder("nginx");
}

fn example(name: &str) {
    let script = repo().join("examples").join(name).join("run.sh");
    assert!(script.is_file(), "{} is missing", script.display());
    assert!(
        repo()
            .join("examples")
            .join(name)
            .join("README.md")
            .is_file(),
        "examples/{name}/README.md is missing"
    );
    // The script's mktemp -d lands in our own temporary directory, and it
    // runs from there, to show it works from any working directory.
    let scratch = tempfile::tempdir().expect("temporary directory");
    let outcome = run(
        command("bash")
            .arg(&script)
            .current_dir(scratch.path())
            .env("TMPDIR", scratch.path())
            .env("CONFD", confd()),
        SCRIPT_TIMEOUT,
    );
    assert!(
        outcome.success(),
        "{}",
        outcome.describe(&format!("examples/{name}/run.sh"))
    );
    let left: Vec<PathBuf> = sorted_entries(scratch.path());
    assert!(
        left.is_empty(),
        "examples/{name}/run.sh left files behind: {left:?}"
    );
}

#[test]
fn example_env_database() {
    example("env-database");
}

#[test]
fn example_file_haproxy() {
    example("file-haproxy");
}

#[test]
fn example_guard_min_keys() {
    example("guard-min-keys");
}

#[test]
fn example_haproxy_consul() {
    example("haproxy-consul");
}

#[test]
fn example_haproxy_etcd() {
    example("haproxy-etcd");
}

#[test]
fn example_haproxy_keepalived() {
    example("haproxy-keepalived");
}

#[test]
fn example_haproxy_redis_vault() {
    example("haproxy-redis-vault");
}

#[test]
fn example_haproxy_swarm_dns() {
    example("haproxy-swarm-dns");
}

#[test]
fn example_vault_database() {
    example("vault-database");
}

#[test]
fn example_redis_haproxy() {
    example("redis-haproxy");
}

#[test]
fn every_folder_is_tested() {
    let folders = |dir: &str, needs: &str| -> Vec<String> {
        sorted_entries(&repo().join(dir))
            .into_iter()
            .filter(|p| p.is_dir() && (needs.is_empty() || p.join(needs).is_file()))
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        folders("templates", ""),
        TEMPLATES,
        "templates/ and TEMPLATES in tests/it/library.rs differ: add a test for the new folder"
    );
    assert_eq!(
        folders("examples", "run.sh"),
        EXAMPLES,
        "examples/*/run.sh and EXAMPLES in tests/it/library.rs differ: add a test for the new example"
    );
}

#[test]
fn example_membership_etcd() {
    example("membership-etcd");
}
