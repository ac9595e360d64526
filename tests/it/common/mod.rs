//! Shared harness for the end-to-end tests: a temporary confdir, helpers to
//! write resources, templates and data, and a runner for the built `confd`
//! binary that captures its exit status and output.

#![allow(dead_code)]

pub mod confd;
pub mod consul;
pub mod dns;
pub mod dnsmasq;
pub mod etcd;
pub mod haproxy;
pub mod ops;
pub mod redis;
pub mod vault;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn confd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_confd")
}

/// A command running confd with `args` in `dir`, with a clean environment
/// (PATH only) and no stdin.
pub fn confd_command<I>(dir: &Path, args: I) -> Command
where
    I: IntoIterator,
    I::Item: AsRef<OsStr>,
{
    let mut command = Command::new(confd_bin());
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    command
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary confdir (`conf.d/`, `templates/`) plus an `out/` folder for
/// destinations, removed when dropped.
pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub env: BTreeMap<String, String>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit status, showing the output when it differs.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The one stderr line containing `needle`; fails when there is none.
    pub fn line_with(&self, needle: &str) -> String {
        match self.stderr.lines().find(|l| l.contains(needle)) {
            Some(line) => line.to_string(),
            None => panic!(
                "no stderr line contains {needle:?}\n--- stderr\n{}",
                self.stderr
            ),
        }
    }
}

impl Scenario {
    /// An empty confdir with `conf.d/`, `templates/` and `out/`.
    pub fn new() -> Scenario {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["conf.d", "templates", "out"] {
            fs::create_dir_all(dir.path().join(sub)).expect("create dir");
        }
        Scenario {
            dir,
            env: BTreeMap::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn confdir(&self) -> String {
        self.path().display().to_string()
    }

    /// `out/<name>` inside the scenario.
    pub fn out(&self, name: &str) -> PathBuf {
        self.path().join("out").join(name)
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, text).expect("write file");
        path
    }

    pub fn template(&self, name: &str, text: &str) {
        self.write(&format!("templates/{name}"), text);
    }

    /// Writes `conf.d/<name>.toml` with src `<name>.tmpl`, dest `out/<dest>`,
    /// the given keys and extra TOML lines.
    pub fn resource(&self, name: &str, dest: &str, keys: &[&str], extra: &str) -> PathBuf {
        let keys: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
        let text = format!(
            "[template]\nsrc = \"{name}.tmpl\"\ndest = {:?}\nkeys = [{}]\n{extra}",
            self.out(dest).display().to_string(),
            keys.join(", ")
        );
        self.write(&format!("conf.d/{name}.toml"), &text)
    }

    pub fn set_env(&mut self, name: &str, value: &str) -> &mut Scenario {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// A command running confd in the scenario folder with a clean
    /// environment (PATH and the scenario's variables only).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = confd_command(self.path(), args);
        command.envs(&self.env);
        command
    }

    /// Runs confd to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().expect("confd runs"))
    }

    /// Runs `confd -onetime -backend env -confdir <scenario> ARGS…`.
    pub fn onetime_env(&self, args: &[&str]) -> Run {
        let confdir = self.confdir();
        let mut all = vec!["-onetime", "-backend", "env", "-confdir", confdir.as_str()];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Names in `out/`, sorted (to prove no stage file was left behind).
    pub fn out_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path().join("out"))
            .expect("out dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Makes the scenario readable by every user (for runs as `nobody`).
    pub fn open_to_everyone(&self) {
        for entry in walk(self.path()) {
            let mode = if entry.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(&entry, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        fs::set_permissions(self.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Polls `path` every millisecond until its content satisfies `what`;
/// returns how long that took, or `None` past `limit`.
pub fn poll_file(path: &Path, limit: Duration, what: impl Fn(&str) -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if fs::read_to_string(path).is_ok_and(|t| what(&t)) {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The content of `path`; panics naming the file when it cannot be read.
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A free TCP port on 127.0.0.1 (bound then released; whoever needs it binds
/// it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits up to `limit` for `child` to exit; kills (and reaps) it otherwise
/// and returns `None`.
pub fn wait_for_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Waits up to `limit` for a server just spawned as `child` to pass `ready`
/// (polled every `every`). The error names `what`, says whether it exited or
/// only never got ready, and carries `log()` for the failure message.
pub fn await_ready(
    child: &mut std::process::Child,
    what: &str,
    limit: Duration,
    every: Duration,
    mut ready: impl FnMut() -> bool,
    log: impl Fn() -> String,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited at start ({status}): {}", log()));
        }
        std::thread::sleep(every);
    }
    Err(format!(
        "{what} did not become ready within {limit:?}: {}",
        log()
    ))
}

/// Kills a server by PID (SIGKILL) and reaps it, if it runs.
pub fn kill_child(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends `signal` (e.g. "TERM", "HUP") to a child process.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}
