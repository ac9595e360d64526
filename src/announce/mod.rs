//! `confd announce`: a host registers itself under a key and keeps the
//! registration alive, for as long as its health check passes.
//!
//! The entry is written with a TTL (an etcd v2 TTL key, an etcd v3 lease, a
//! Consul session) and refreshed every third of it ([`schedule`]). While the
//! check fails nothing is refreshed, so the entry expires and the host
//! leaves; when it passes again the entry is written back at once. SIGTERM
//! or SIGINT withdraws it (deleting the key, revoking the lease or
//! destroying the session) and exits 0. A process that dies leaves an entry
//! that expires within one TTL.
//!
//! Exit statuses as the main command's: 0 a clean stop, 1 the backend
//! refused the first write (or the withdrawal failed), 2 bad usage.

mod args;
mod check;
mod consul;
mod etcd;
mod etcdv3;
mod etcdv3_grpc;
mod registrar;
pub mod schedule;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::time::Instant;

pub use args::AnnounceArgs;
pub use check::HealthCheck;
use registrar::{Refreshed, Registrar};
use schedule::{Health, Schedule, Step, Written};

use crate::app::{EXIT_CONFIG, EXIT_FAILED, EXIT_OK};
use crate::backend::etcdv3::EtcdV3Api;
use crate::backend::{BackendConfig, BackendKind};
use crate::config::parse_duration;
use crate::daemon::{self, Control};
use crate::error::ConfigError;
use crate::logging;

/// The longest TTL accepted (a registration that outlives its host by more
/// than a day is a typo).
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long the withdrawal on SIGTERM may take before giving up (the entry
/// then expires by itself).
pub const WITHDRAW_LIMIT: Duration = Duration::from_secs(5);

/// A validated announcement.
struct Announcement {
    backend: BackendKind,
    registrar: Box<dyn Registrar>,
    key: String,
    value: String,
    ttl: Duration,
    check: Option<(HealthCheck, Duration)>,
}

/// Reads and checks the flags; every problem is a usage error naming its flag.
fn announcement(args: &AnnounceArgs) -> Result<Announcement, ConfigError> {
    let settings = crate::config::resolve(args.connection_flags())?;
    logging::apply(settings.log_level, settings.log_format);
    let backend = settings.backend;
    if !backend.is_networked() {
        return Err(ConfigError::setting(
            "-backend",
            format!(
                "confd announce writes to etcd, etcdv3 or consul, not to the {backend} backend"
            ),
        ));
    }
    let key = crate::snapshot::clean_key(&args.key);
    if key == "/" || args.key.trim().is_empty() {
        return Err(ConfigError::setting(
            "-key",
            "needs a key, e.g. /members/web1",
        ));
    }
    let ttl = parse_duration(&args.ttl)
        .map_err(|e| ConfigError::setting("-ttl", format!("{:?}: {e}", args.ttl)))?;
    let min_ttl = match backend {
        BackendKind::Consul => consul::MIN_TTL,
        _ => Duration::from_secs(1),
    };
    if ttl.subsec_nanos() != 0 || ttl < min_ttl || ttl > MAX_TTL {
        return Err(ConfigError::setting(
            "-ttl",
            format!(
                "{:?}: must be whole seconds from {} to 24h for the {backend} backend",
                args.ttl,
                humantime::format_duration(min_ttl)
            ),
        ));
    }
    let interval = parse_duration(&args.check_interval).map_err(|e| {
        ConfigError::setting("-check-interval", format!("{:?}: {e}", args.check_interval))
    })?;
    if interval < Duration::from_millis(100) || interval > MAX_TTL {
        return Err(ConfigError::setting(
            "-check-interval",
            format!("{:?}: must be from 100ms to 24h", args.check_interval),
        ));
    }
    let check = match (&args.check_http, &args.check_cmd) {
        (Some(url), _) => Some(HealthCheck::http(url)?),
        (None, Some(command)) if !command.trim().is_empty() => {
            Some(HealthCheck::Command(command.clone()))
        }
        (None, Some(_)) => return Err(ConfigError::setting("-check-cmd", "is empty")),
        (None, None) => None,
    };
    let registrar: Box<dyn Registrar> = match settings.backend_config()? {
        BackendConfig::Etcd(http) => {
            Box::new(etcd::EtcdRegistrar::new(&http, &key, &args.value, ttl)?)
        }
        BackendConfig::EtcdV3(http, EtcdV3Api::Grpc) => Box::new(
            etcdv3_grpc::EtcdV3GrpcRegistrar::new(&http, &key, &args.value, ttl)?,
        ),
        BackendConfig::EtcdV3(http, EtcdV3Api::Gateway) => {
            Box::new(etcdv3::EtcdV3Registrar::new(&http, &key, &args.value, ttl)?)
        }
        BackendConfig::Consul(config) => Box::new(consul::ConsulRegistrar::new(
            &config,
            &key,
            &args.value,
            ttl,
        )?),
        _ => unreachable_backend(backend)?,
    };
    Ok(Announcement {
        backend,
        registrar,
        key,
        value: args.value.clone(),
        ttl,
        check: check.map(|c| (c, interval)),
    })
}

fn unreachable_backend(backend: BackendKind) -> Result<Box<dyn Registrar>, ConfigError> {
    Err(ConfigError::setting(
        "-backend",
        format!("confd announce cannot write to the {backend} backend"),
    ))
}

/// Runs `confd announce` and returns the exit status.
pub fn run(args: &AnnounceArgs) -> u8 {
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
    let announcement = {
        // Building a client needs the runtime.
        let _entered = runtime.enter();
        match announcement(args) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("confd: {e}");
                return EXIT_CONFIG;
            }
        }
    };
    let status = runtime.block_on(async {
        match daemon::signals() {
            Ok(controls) => keep_announcing(announcement, controls).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot install signal handlers");
                EXIT_FAILED
            }
        }
    });
    runtime.shutdown_background();
    status
}

/// Waits for a stop (SIGTERM, SIGINT); SIGHUP means nothing here.
async fn stopped(controls: &mut tokio::sync::mpsc::UnboundedReceiver<Control>) {
    while let Some(control) = controls.recv().await {
        if control == Control::Stop {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// The loop: check, write, refresh, until stopped.
async fn keep_announcing(
    mut a: Announcement,
    mut controls: tokio::sync::mpsc::UnboundedReceiver<Control>,
) -> u8 {
    let (key, value, backend) = (a.key.clone(), a.value.clone(), a.backend.name());
    tracing::info!(%backend, %key, %value, ttl = ?a.ttl, "announcing");
    let interval = a.check.as_ref().map(|(_, i)| *i);
    let mut schedule = Schedule::new(a.ttl, interval, Instant::now());
    // A check may not hold up refreshes for longer than a refresh period.
    let check_limit = interval
        .unwrap_or_default()
        .min(schedule::refresh_period(a.ttl))
        .max(Duration::from_millis(100));
    let mut ever_written = false;
    loop {
        let step = schedule.next(Instant::now());
        let work = async {
            match step {
                Step::Wait(until) => {
                    tokio::time::sleep_until(until).await;
                    None
                }
                Step::Check => {
                    let result = match &a.check {
                        Some((check, _)) => check.run(check_limit).await,
                        None => Ok(()),
                    };
                    Some(Outcome::Checked(result))
                }
                Step::Register => Some(Outcome::Wrote(
                    a.registrar.register().await.map(Refreshed::Alive),
                    true,
                )),
                Step::Refresh => Some(Outcome::Wrote(a.registrar.refresh().await, false)),
            }
        };
        let outcome = tokio::select! {
            outcome = work => outcome,
            () = stopped(&mut controls) => break,
        };
        let now = Instant::now();
        match outcome {
            None => {}
            Some(Outcome::Checked(result)) => {
                let passed = result.is_ok();
                match (schedule.checked(passed, now), result) {
                    (Health::Recovered, _) => {
                        tracing::info!(%key, "health check passes; announcing")
                    }
                    (Health::Failing, Err(why)) => tracing::warn!(
                        %key, reason = %why,
                        "health check fails; no longer refreshing, the key expires within its TTL"
                    ),
                    (Health::Same, Err(why)) => {
                        tracing::debug!(%key, reason = %why, "health check still fails")
                    }
                    _ => {}
                }
            }
            Some(Outcome::Wrote(Ok(Refreshed::Alive(granted)), fresh)) => {
                if fresh {
                    tracing::info!(%key, %value, "announced");
                } else {
                    tracing::debug!(%key, "refreshed");
                }
                ever_written = true;
                schedule.wrote(Written::Ok(granted), now);
            }
            Some(Outcome::Wrote(Ok(Refreshed::Gone), _)) => {
                tracing::warn!(%key, "the entry expired or was deleted; writing it again");
                schedule.wrote(Written::Gone, now);
            }
            Some(Outcome::Wrote(Err(e), _)) => {
                if !ever_written && !e.transient {
                    tracing::error!(%key, error = %e, "could not announce");
                    return EXIT_FAILED;
                }
                tracing::warn!(%key, error = %e, "write failed; retrying");
                schedule.wrote(Written::Failed, now);
            }
        }
    }
    match tokio::time::timeout(WITHDRAW_LIMIT, a.registrar.withdraw()).await {
        Ok(Ok(())) => {
            tracing::info!(%key, "withdrawn; stopping");
            EXIT_OK
        }
        Ok(Err(e)) => {
            tracing::error!(%key, error = %e, "could not withdraw; the key expires within its TTL");
            EXIT_FAILED
        }
        Err(_) => {
            tracing::error!(%key, limit = ?WITHDRAW_LIMIT, "no answer to the withdrawal; the key expires within its TTL");
            EXIT_FAILED
        }
    }
}

/// What one step of the loop gave.
enum Outcome {
    Checked(Result<(), String>),
    /// A write (`true`: a new one) or a refresh.
    Wrote(Result<Refreshed, crate::backend::BackendError>, bool),
}
