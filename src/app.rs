//! Wires the stages together for one invocation and maps the result to the
//! exit status: 0 every resource in sync, 1 a resource failed, 2 bad usage or
//! bad configuration (nothing was attempted).

use std::ffi::OsString;
use std::time::{Duration, Instant};

use crate::cli::{self, Command};
use crate::config::{self, Settings};
use crate::engine::{Engine, Outcome, PassReport};
use crate::sync::SyncOptions;
use crate::{backend, check, daemon, logging, resource};

/// Every resource is in sync.
pub const EXIT_OK: u8 = 0;
/// At least one resource failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or configuration; nothing was attempted.
pub const EXIT_CONFIG: u8 = 2;

/// Longest pause between two `-wait-keys` attempts.
const WAIT_KEYS_MAX_DELAY: Duration = Duration::from_secs(5);

/// Runs confd with these process arguments and returns the exit status.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_CONFIG } else { EXIT_OK };
        }
    };
    match cli.command {
        Some(Command::Check(args)) => check::run(&args),
        None => run_sync(cli.flags),
    }
}

fn run_sync(flags: cli::Flags) -> u8 {
    let settings = match config::resolve(flags.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("confd: {e}");
            return EXIT_CONFIG;
        }
    };
    logging::init(settings.log_level, settings.log_format);

    let (resources, errors) = resource::load_all(&settings.confdir, &settings.prefix);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("confd: {e}");
        }
        return EXIT_CONFIG;
    }
    if resources.is_empty() {
        tracing::warn!(confdir = %settings.confdir.display(), "no template resources found in conf.d");
    }
    let backend = match settings.backend_config().and_then(|c| backend::build(&c)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("confd: {e}");
            return EXIT_CONFIG;
        }
    };
    let options = SyncOptions {
        noop: settings.noop,
        sync_only: settings.sync_only,
        keep_stage_file: settings.keep_stage_file,
    };
    let services = match crate::services::ServiceClient::new(&settings.services_config()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("confd: {e}");
            return EXIT_CONFIG;
        }
    };
    let mut engine = Engine::new(resources, backend, options).with_services(services);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("confd: cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    runtime.block_on(async {
        if settings.onetime {
            run_onetime(&mut engine, &settings).await
        } else {
            daemon::run(engine, settings, flags).await
        }
    })
}

/// Prints `-noop` diffs to stdout, where users (and `| less`) expect them.
pub(crate) fn print_diffs(report: &PassReport) {
    for (_, outcome) in &report.outcomes {
        if let Outcome::WouldUpdate(diff) = outcome {
            print!("{diff}");
        }
    }
}

/// One pass; with `-wait-keys`, passes that failed only for want of data are
/// retried with growing pauses until the deadline.
async fn run_onetime(engine: &mut Engine, settings: &Settings) -> u8 {
    let deadline = settings.wait_keys.map(|d| Instant::now() + d);
    let mut delay = Duration::from_millis(200);
    loop {
        let report = engine.run_pass().await;
        print_diffs(&report);
        if report.all_ok() {
            return EXIT_OK;
        }
        let remaining = deadline.and_then(|d| d.checked_duration_since(Instant::now()));
        let only_data_missing = report.failures().all(|(_, f)| f.data_related);
        match remaining {
            Some(remaining) if only_data_missing && !remaining.is_zero() => {
                let pause = delay.min(remaining);
                tracing::info!(retry_in = ?pause, "waiting for keys (-wait-keys)");
                tokio::time::sleep(pause).await;
                delay = (delay * 2).min(WAIT_KEYS_MAX_DELAY);
            }
            _ => return EXIT_FAILED,
        }
    }
}
