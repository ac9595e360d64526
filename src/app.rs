//! The entry point of one invocation: parses the command line, runs the
//! chosen mode (one-shot, daemon, `check`) and maps the result to the exit
//! status: 0 every resource in sync, 1 a resource failed, 2 bad usage or bad
//! configuration (nothing was attempted).

use std::ffi::OsString;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::cli::{self, Command};
use crate::setup::{self, Setup};
use crate::{check, daemon, logging};

/// Every resource is in sync.
pub const EXIT_OK: u8 = 0;
/// At least one resource failed (or a one-shot run was interrupted).
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or configuration; nothing was attempted.
pub const EXIT_CONFIG: u8 = 2;

/// First pause between two `-wait-keys` attempts.
const WAIT_KEYS_FIRST_DELAY: Duration = Duration::from_millis(200);
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
        Some(Command::Migrate(args)) => crate::migrate::run(&args),
        Some(Command::Announce(args)) => crate::announce::run(&args),
        Some(Command::Completions(args)) => print_completions(args.shell),
        Some(Command::Man) => print_man_page(),
        None => run_sync(cli.flags),
    }
}

/// `confd completions SHELL`: the script, on stdout.
fn print_completions(shell: clap_complete::Shell) -> u8 {
    let mut command = cli::definition();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "confd", &mut script);
    write_stdout(&script)
}

/// `confd man`: the man page in roff, on stdout.
fn print_man_page() -> u8 {
    let command = cli::definition();
    let mut page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(command.clone()).render(&mut page) {
        eprintln!(
            "confd: cannot render the man page: {}",
            crate::error::io_reason(&e)
        );
        return EXIT_FAILED;
    }
    // The page covers the top-level flags; each subcommand gets a section
    // of its own with its arguments.
    for sub in command.get_subcommands() {
        page.extend_from_slice(subcommand_section(sub).as_bytes());
    }
    write_stdout(&page)
}

/// A man page section (roff) for `confd SUB`: what it does and its
/// arguments.
fn subcommand_section(sub: &clap::Command) -> String {
    let roff = |text: &str| text.replace('\\', "\\e").replace('-', "\\-");
    let mut out = format!(".SH \"CONFD {}\"\n", sub.get_name().to_uppercase());
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        out.push_str(&roff(&about.to_string()));
        out.push('\n');
    }
    for arg in sub.get_arguments() {
        if arg.is_hide_set() || arg.get_id() == "help" {
            continue;
        }
        let name = match (arg.get_long(), arg.get_value_names()) {
            (Some(long), _) => format!("\\fB\\-\\-{}\\fR", roff(long)),
            (None, Some(names)) => {
                let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                format!("\\fI{}\\fR", names.join(" "))
            }
            (None, None) => format!("\\fI{}\\fR", arg.get_id()),
        };
        out.push_str(&format!(".TP\n{name}\n"));
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            out.push_str(&roff(&help.to_string()));
            out.push('\n');
        }
    }
    out
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is
/// not an error worth a message.
fn write_stdout(bytes: &[u8]) -> u8 {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!(
                "confd: cannot write to stdout: {}",
                crate::error::io_reason(&e)
            );
            EXIT_FAILED
        }
    }
}

fn run_sync(flags: cli::Flags) -> u8 {
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
    // Settings first, so the rest is logged at the configured level.
    let settings = match crate::config::resolve(flags.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("confd: {e}");
            return EXIT_CONFIG;
        }
    };
    logging::apply(settings.log_level, settings.log_format);
    let setup = {
        // Building a backend client needs the runtime (it may spawn).
        let _entered = runtime.enter();
        match setup::build(&flags, None) {
            Ok(setup) => setup,
            Err(errors) => {
                for e in &errors {
                    eprintln!("confd: {e}");
                }
                return EXIT_CONFIG;
            }
        }
    };
    let status = runtime.block_on(async {
        if setup.settings.onetime {
            if setup.settings.metrics_addr.is_some() {
                tracing::warn!("-metrics-addr is ignored with -onetime");
            }
            run_onetime(setup).await
        } else {
            let ops = match crate::ops::start(&setup) {
                Ok(ops) => ops,
                Err(e) => {
                    eprintln!("confd: {e}");
                    return EXIT_CONFIG;
                }
            };
            let rebuild: daemon::Rebuild =
                Box::new(|previous: &Setup| setup::build(&previous.flags, Some(previous)));
            match daemon::run_with_signals(setup, rebuild, ops).await {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    tracing::error!(error = %e, "cannot install signal handlers");
                    EXIT_FAILED
                }
            }
        }
    });
    // Do not wait for what is still running in the background (a render
    // stuck past its timeout, the wait for it): the work is over.
    runtime.shutdown_background();
    status
}

/// One pass; with `-wait-keys`, passes that failed only for want of data are
/// retried with growing pauses until the deadline. SIGTERM or SIGINT stops
/// it at once: the pass is dropped, which removes its stage file and kills
/// the check or reload command running (with its process group).
async fn run_onetime(mut setup: Setup) -> u8 {
    let mut controls = match daemon::signals() {
        Ok(controls) => controls,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return EXIT_FAILED;
        }
    };
    let wait_keys = setup.settings.wait_keys;
    let work = async {
        let deadline = wait_keys.map(|d| Instant::now() + d);
        let mut backoff = Backoff::new(WAIT_KEYS_FIRST_DELAY, WAIT_KEYS_MAX_DELAY);
        loop {
            let report = setup.engine.run_pass().await;
            for diff in report.diffs() {
                print!("{diff}");
            }
            if report.all_ok() {
                return EXIT_OK;
            }
            let remaining = deadline.and_then(|d| d.checked_duration_since(Instant::now()));
            let only_data_missing = report.failures().all(|(_, f)| f.data_related);
            match remaining {
                Some(remaining) if only_data_missing && !remaining.is_zero() => {
                    let pause = backoff.next_within(remaining);
                    tracing::info!(retry_in = ?pause, "waiting for keys (-wait-keys)");
                    tokio::time::sleep(pause).await;
                }
                _ => return EXIT_FAILED,
            }
        }
    };
    // SIGHUP means nothing to a one-shot run; only a stop interrupts it.
    let stop = async {
        while let Some(control) = controls.recv().await {
            if control == daemon::Control::Stop {
                return;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        status = work => status,
        () = stop => {
            tracing::error!("interrupted: stopping without finishing the pass; destinations are left as they were");
            EXIT_FAILED
        }
    }
}
