//! The long-running mode: a pass at start, then a pass every `-interval`,
//! until SIGTERM or SIGINT, which let the pass in progress finish and exit 0.
//! A failing resource is logged and retried at the next pass; it never stops
//! the daemon or the other resources.

use tokio::signal::unix::{SignalKind, signal};

use crate::app::{EXIT_FAILED, EXIT_OK, print_diffs};
use crate::config::Settings;
use crate::engine::Engine;

/// Runs passes until asked to stop; returns the exit status.
pub async fn run(engine: &mut Engine, settings: &Settings) -> u8 {
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return EXIT_FAILED;
        }
    };
    if settings.watch {
        tracing::info!(
            backend = settings.backend.name(),
            interval = settings.interval.as_secs(),
            "this backend has no change notification yet; polling instead"
        );
    }
    loop {
        let report = engine.run_pass().await;
        print_diffs(&report);
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("stopping");
    EXIT_OK
}
