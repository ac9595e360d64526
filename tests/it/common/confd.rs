//! A spawned confd daemon for the backend tests: [`Confd`] runs the binary
//! with its stdout and stderr in files of their own and kills it when
//! dropped, so a failing test never leaves a daemon behind; [`args`] and
//! [`onetime`] build and run the usual command lines. Every wait is bounded.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Run, Scenario, poll_file, send_signal, wait_for_exit, wait_until};

/// The longest a one-shot run may take before the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);
/// The longest a daemon may take to render its first files.
pub const START_LIMIT: Duration = Duration::from_secs(10);
/// The longest a daemon may take to pick up a change.
pub const CHANGE_LIMIT: Duration = Duration::from_secs(5);
/// How long confd may take to stop after SIGTERM.
pub const STOP_LIMIT: Duration = Duration::from_secs(5);

/// `-backend <backend> -node <node>… -confdir <s>` followed by `extra`.
pub fn args<N: AsRef<str>>(
    s: &Scenario,
    backend: &str,
    nodes: &[N],
    extra: &[&str],
) -> Vec<String> {
    let mut all = vec!["-backend".to_string(), backend.to_string()];
    for node in nodes {
        all.push("-node".to_string());
        all.push(node.as_ref().to_string());
    }
    all.push("-confdir".to_string());
    all.push(s.confdir());
    all.extend(extra.iter().map(|a| a.to_string()));
    all
}

/// Runs `confd -backend <backend> -node <node>… -confdir <s> -onetime
/// EXTRA…` to completion, bounded by [`RUN_LIMIT`].
pub fn onetime<N: AsRef<str>>(s: &Scenario, backend: &str, nodes: &[N], extra: &[&str]) -> Run {
    let mut all = vec!["-onetime"];
    all.extend_from_slice(extra);
    Confd::spawn(s, &args(s, backend, nodes, &all)).finish(RUN_LIMIT)
}

/// A spawned confd with its output captured in files; killed when dropped,
/// so a failing test never leaves a daemon behind.
pub struct Confd {
    child: Child,
    log: PathBuf,
    out: PathBuf,
}

impl Confd {
    /// Starts confd with `args` in the scenario folder (see
    /// [`Scenario::command`]).
    pub fn spawn(s: &Scenario, args: &[String]) -> Confd {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Confd::spawn_command(s.command(&args), s.path())
    }

    /// Starts `command` with its stdout and stderr in files in `dir`.
    pub fn spawn_command(mut command: Command, dir: &Path) -> Confd {
        // Files of their own: a daemon may still be running from earlier.
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, Ordering::SeqCst);
        let log = dir.join(format!("confd-{n}.stderr"));
        let out = dir.join(format!("confd-{n}.stdout"));
        let child = command
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&log).expect("stderr file"))
            .spawn()
            .expect("confd starts");
        Confd { child, log, out }
    }

    /// Everything confd wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many stderr lines contain `needle`.
    pub fn lines_with(&self, needle: &str) -> usize {
        self.stderr().lines().filter(|l| l.contains(needle)).count()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (bounded) until a stderr line contains `needle`; panics with
    /// the log otherwise.
    pub fn expect_log(&self, needle: &str, limit: Duration) {
        if !wait_until(limit, || self.stderr().contains(needle)) {
            panic!(
                "no stderr line contains {needle:?} within {limit:?}\n--- stderr\n{}",
                self.stderr()
            );
        }
    }

    /// Waits (bounded) until `path` holds exactly `expected`; panics with the
    /// file and the log otherwise. Returns how long it took.
    pub fn expect_file(&self, path: &Path, expected: &str, limit: Duration) -> Duration {
        match poll_file(path, limit, |t| t == expected) {
            Some(took) => took,
            None => panic!(
                "{} did not become {expected:?} within {limit:?}; it holds {:?}\n--- stderr\n{}",
                path.display(),
                fs::read_to_string(path).ok(),
                self.stderr()
            ),
        }
    }

    /// Waits (bounded) until `path` satisfies `what`; panics otherwise.
    pub fn expect_file_where(
        &self,
        path: &Path,
        description: &str,
        limit: Duration,
        what: impl Fn(&str) -> bool,
    ) -> Duration {
        match poll_file(path, limit, what) {
            Some(took) => took,
            None => panic!(
                "{} did not come to {description} within {limit:?}; it holds {:?}\n--- stderr\n{}",
                path.display(),
                fs::read_to_string(path).ok(),
                self.stderr()
            ),
        }
    }

    /// Waits (bounded) for a one-shot run to end and collects what it printed.
    pub fn finish(mut self, limit: Duration) -> Run {
        let status = wait_for_exit(&mut self.child, limit);
        let stderr = self.stderr();
        let stdout = fs::read_to_string(&self.out).unwrap_or_default();
        match status {
            Some(status) => Run {
                code: status.code().unwrap_or(-1),
                stdout,
                stderr,
            },
            None => panic!("confd did not exit within {limit:?}\n--- stderr\n{stderr}"),
        }
    }

    /// Sends `signal` (e.g. "HUP", "STOP") to the daemon.
    pub fn signal(&self, signal: &str) {
        send_signal(&self.child, signal);
    }

    /// SIGTERM, then a bounded wait for the exit.
    pub fn terminate(mut self, limit: Duration) -> Option<ExitStatus> {
        send_signal(&self.child, "TERM");
        wait_for_exit(&mut self.child, limit)
    }
}

impl Drop for Confd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
