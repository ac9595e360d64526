//! Runs check and reload commands: through `/bin/sh -c`, in their own process
//! group, with a time limit after which the whole group is killed, and with
//! stdout and stderr captured for the log.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How long to wait for the output pipes after the command itself ended or
/// was killed (a grandchild that escaped the group may hold them open).
const PIPE_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Why a command did not succeed. The output is kept for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The shell could not be started.
    #[error("{command:?} could not be started: {reason}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        reason: String,
    },
    /// The command exited with a non-zero status or was killed by a signal.
    #[error("{command:?} failed ({status}){}", output_suffix(.output))]
    Failed {
        /// The command line.
        command: String,
        /// "exit status 1", "killed by signal 9", …
        status: String,
        /// stdout and stderr, interleaved by arrival per stream.
        output: String,
    },
    /// The command ran past its time limit and was killed.
    #[error("{command:?} did not finish within {} and was killed{}", humantime::format_duration(*.limit), output_suffix(.output))]
    TimedOut {
        /// The command line.
        command: String,
        /// The limit it exceeded.
        limit: Duration,
        /// What it printed before it was killed.
        output: String,
    },
}

fn output_suffix(output: &str) -> String {
    let trimmed = output.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("; output: {trimmed:?}")
    }
}

/// Kills a command's process group when dropped while armed.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Runs `command` with `/bin/sh -c`, returns its combined output on success.
pub async fn run_shell(command: &str, limit: Duration) -> Result<String, CommandError> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        // systemd's notification socket is confd's: a reload command
        // that speaks sd_notify must not report for confd.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            command: command.to_string(),
            reason: crate::error::io_reason(&e),
        })?;
    // Until the command has ended, dropping this call (a stop signal during
    // a one-shot run) kills the command's whole group, not only the shell.
    let mut group = GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let collect = async move {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(mut s) = stdout {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(mut s) = stderr {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        out.extend_from_slice(&err);
        String::from_utf8_lossy(&out).into_owned()
    };
    let collector = tokio::spawn(collect);

    let waited = tokio::time::timeout(limit, child.wait()).await;
    let timed_out = waited.is_err();
    if timed_out && let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let status = match waited {
        Ok(status) => status,
        Err(_) => child.wait().await,
    };
    group.0 = None;
    let output = match tokio::time::timeout(PIPE_DRAIN_LIMIT, collector).await {
        Ok(Ok(text)) => text,
        _ => String::new(),
    };
    if timed_out {
        return Err(CommandError::TimedOut {
            command: command.to_string(),
            limit,
            output,
        });
    }
    match status {
        Ok(status) if status.success() => Ok(output),
        Ok(status) => Err(CommandError::Failed {
            command: command.to_string(),
            status: describe_status(status),
            output,
        }),
        Err(e) => Err(CommandError::Spawn {
            command: command.to_string(),
            reason: crate::error::io_reason(&e),
        }),
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_string(),
    }
}

/// Fills `{{.src}}` / `{{ src }}` and `{{.dest}}` / `{{ dest }}` in a command,
/// as confd does for check_cmd and reload_cmd. The paths are shell-quoted when
/// they contain anything but safe characters.
pub fn expand(command: &str, src: Option<&str>, dest: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut rest = command;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = after[..close].trim();
        let inner = inner.strip_prefix('.').unwrap_or(inner);
        match (inner, src) {
            ("src", Some(src)) => out.push_str(&shell_quote(src)),
            ("dest", _) => out.push_str(&shell_quote(dest)),
            _ => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

fn shell_quote(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,%".contains(c));
    if safe {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_both_spellings() {
        assert_eq!(
            expand("check -f {{.src}} --into {{ dest }}", Some("/t/.a"), "/t/a"),
            "check -f /t/.a --into /t/a"
        );
        assert_eq!(expand("x {{ src }}", Some("/a b"), "/d"), "x '/a b'");
        assert_eq!(expand("reload {{.other}}", None, "/d"), "reload {{.other}}");
        assert_eq!(
            expand("unclosed {{.src", Some("/s"), "/d"),
            "unclosed {{.src"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn captures_output_and_status() {
        assert_eq!(
            run_shell("echo hi", Duration::from_secs(5)).await,
            Ok("hi\n".to_string())
        );
        match run_shell("echo oops >&2; exit 3", Duration::from_secs(5)).await {
            Err(CommandError::Failed { status, output, .. }) => {
                assert_eq!(status, "exit status 3");
                assert_eq!(output, "oops\n");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn kills_the_whole_group_on_timeout() {
        let started = std::time::Instant::now();
        let result = run_shell(
            "echo before; sleep 30; echo after",
            Duration::from_millis(300),
        )
        .await;
        match result {
            Err(CommandError::TimedOut { output, .. }) => assert_eq!(output, "before\n"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// A stop signal during a one-shot run drops the command's future: the
    /// command and what it started must die with it, not linger.
    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_call_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let call = run_shell(&command, Duration::from_secs(60));
        assert!(
            tokio::time::timeout(Duration::from_millis(500), call)
                .await
                .is_err(),
            "the command should still be running"
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z "))
        };
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "the background sleep outlived the dropped call");
    }
}
