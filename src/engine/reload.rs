//! Reload batching: resources written in a pass queue their `reload_cmd`,
//! and each distinct command runs once, after every file of the pass is in
//! place (ten resources feeding one HAProxy reload it once, not ten times).

use std::time::Duration;

use crate::command;
use crate::ops::{CommandKind, Metrics};

/// One distinct reload command waiting for the end of the pass, with the
/// resources that asked for it.
struct Pending {
    command: String,
    timeout: Duration,
    /// Positions of the asking resources in the pass's list.
    positions: Vec<usize>,
}

/// The reload commands a pass has queued, in first-asked order.
#[derive(Default)]
pub struct Reloads {
    pending: Vec<Pending>,
}

/// A reload that failed, and the positions of the resources it fails.
pub struct FailedReload {
    /// The positions of the resources that asked for it.
    pub positions: Vec<usize>,
    /// Why, on one line.
    pub message: String,
}

impl Reloads {
    /// Queues `command` (already expanded) for the resource at `position`.
    pub fn queue(&mut self, command: String, timeout: Duration, position: usize) {
        match self.pending.iter_mut().find(|r| r.command == command) {
            Some(pending) => {
                pending.positions.push(position);
                // The most patient resource's limit: one reload serves all.
                pending.timeout = pending.timeout.max(timeout);
            }
            None => self.pending.push(Pending {
                command,
                timeout,
                positions: vec![position],
            }),
        }
    }

    /// Runs each queued command once; `name` names a position for the log.
    /// Returns the reloads that failed.
    /// Durations and successful reloads go to `metrics`, if given.
    pub async fn run(
        self,
        name: impl Fn(usize) -> String,
        metrics: Option<&Metrics>,
    ) -> Vec<FailedReload> {
        let mut failed = Vec::new();
        for reload in self.pending {
            let names: Vec<String> = reload.positions.iter().map(|&p| name(p)).collect();
            let started = tokio::time::Instant::now();
            let ran = command::run_shell(&reload.command, reload.timeout).await;
            if let Some(metrics) = metrics {
                metrics.command_took(CommandKind::Reload, started.elapsed());
                if ran.is_ok() {
                    names.iter().for_each(|n| metrics.reloaded(n));
                }
            }
            match ran {
                Ok(output) => tracing::info!(
                    resources = %names.join(","),
                    command = %reload.command,
                    output = %output.trim(),
                    "reloaded"
                ),
                Err(e) => failed.push(FailedReload {
                    positions: reload.positions,
                    message: format!("reload_cmd failed after the new file was written: {e}"),
                }),
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shared_command_runs_once_for_all_its_resources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let command = format!("echo x >> {}", log.display());
        let mut reloads = Reloads::default();
        reloads.queue(command.clone(), Duration::from_secs(5), 0);
        reloads.queue(command, Duration::from_secs(5), 2);
        reloads.queue("exit 3".to_string(), Duration::from_secs(5), 1);
        let metrics = Metrics::new();
        let failed = reloads.run(|p| format!("r{p}"), Some(&metrics)).await;
        assert_eq!(std::fs::read_to_string(&log).expect("log"), "x\n");
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].positions, vec![1]);
        assert!(
            failed[0].message.contains("exit status 3"),
            "{}",
            failed[0].message
        );
        let text = metrics.encode();
        assert!(
            text.contains("confd_reloads_total{resource=\"r0\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("confd_reloads_total{resource=\"r2\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("resource=\"r1\""), "{text}");
        assert!(
            text.contains("confd_command_duration_seconds_count{kind=\"reload\"} 2\n"),
            "{text}"
        );
    }
}
