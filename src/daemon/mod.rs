//! The long-running mode: one event loop that decides when passes run and
//! for which resources. Its stages:
//!
//! - [`schedule`]: a pure function of (state, event, now) saying which
//!   resources are due (coalescing, bursts, polling ticks, retries);
//! - [`kept`]: with `-watch`, the data of every watched prefix kept between
//!   passes and updated from watch events;
//! - [`workers`]: one watch task per distinct prefix (never one per
//!   resource) and one per `service(...)` query, restarted if they end;
//! - this module: the loop over those events and the controls (SIGHUP
//!   reloads through the same setup as startup, SIGTERM/SIGINT stop).
//!
//! A backend that is down at start or goes away never stops the daemon: the
//! outage is logged once, passes are retried with capped exponential backoff
//! and jitter, and the destinations keep their last good content meanwhile.

pub mod kept;
pub(crate) mod memory;
pub mod schedule;
pub mod workers;

#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::PassReport;
use crate::ops::{Ops, WatchEvent};
use crate::setup::Setup;
use crate::snapshot::is_within;
use kept::{Applied, Kept};
use schedule::Schedule;
use workers::{Notice, Workers};

/// What the outside asks of a running daemon (signals, or a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Read the configuration again (SIGHUP).
    Reload,
    /// Finish the pass in progress and stop (SIGTERM, SIGINT); a second
    /// stop while a pass runs abandons it (stage files are removed and
    /// commands killed on the way out).
    Stop,
}

/// Builds a new setup from the running one (SIGHUP): the same function that
/// built the first one, so a reload applies everything a restart would.
pub type Rebuild = Box<dyn Fn(&Setup) -> Result<Setup, Vec<crate::error::ConfigError>>>;

/// Forwards SIGHUP, SIGTERM and SIGINT as [`Control`]s.
pub fn signals() -> std::io::Result<mpsc::UnboundedReceiver<Control>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = terminate.recv() => Control::Stop,
                _ = interrupt.recv() => Control::Stop,
                _ = hangup.recv() => Control::Reload,
            };
            if sender.send(control).is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}

/// The daemon's state between events.
struct Daemon {
    setup: Setup,
    rebuild: Rebuild,
    schedule: Schedule,
    kept: Kept,
    workers: Workers,
    /// Receives every pass's report (tests).
    observer: Option<mpsc::UnboundedSender<PassReport>>,
    /// systemd notification, metrics and health, when asked for.
    ops: Option<Ops>,
}

/// Runs the daemon until a [`Control::Stop`] (or until every control
/// sender is gone), reporting to `ops` if given.
pub async fn run(
    mut setup: Setup,
    rebuild: Rebuild,
    mut controls: mpsc::UnboundedReceiver<Control>,
    observer: Option<mpsc::UnboundedSender<PassReport>>,
    ops: Option<Ops>,
) {
    setup
        .engine
        .set_metrics(ops.as_ref().map(|ops| ops.metrics().clone()));
    let (sender, mut notices) = mpsc::unbounded_channel();
    let mut daemon = Daemon {
        schedule: schedule_for(&setup, Instant::now()),
        setup,
        rebuild,
        kept: Kept::default(),
        workers: Workers::new(sender),
        observer,
        ops,
    };
    daemon.start();
    if daemon.run_due_or_stop(&mut controls).await {
        return daemon.stop();
    }
    daemon.follow();

    loop {
        let wake = daemon.schedule.next_wake();
        let beat = daemon.ops.as_ref().map(Ops::next_beat);
        tokio::select! {
            // The beat comes from this loop, so a loop that stops turning
            // stops the watchdog pings and fails /health.
            _ = sleep_until_opt(beat) => daemon.beat(),
            control = controls.recv() => match control {
                Some(Control::Reload) => {
                    if daemon.reload(&mut controls).await {
                        break;
                    }
                }
                Some(Control::Stop) | None => break,
            },
            Some(notice) = notices.recv() => {
                daemon.on_notice(notice);
                // Let the other watches woken by the same change (one file
                // edit wakes every prefix's watch) report it too, so one
                // pass, and one read, serves them all.
                tokio::task::yield_now().await;
                while let Ok(notice) = notices.try_recv() {
                    daemon.on_notice(notice);
                }
                // A change that is due now renders now, not at the timer's
                // next tick.
                if daemon.schedule.next_wake().is_some_and(|wake| wake <= Instant::now())
                    && daemon.run_due_or_stop(&mut controls).await
                {
                    break;
                }
            }
            ended = daemon.workers.ended() => {
                if let Some(ops) = &daemon.ops {
                    ops.watch_restarted(daemon.setup.engine.backend().name());
                }
                let kept = &daemon.kept;
                daemon.workers.restart(
                    ended,
                    daemon.setup.engine.backend(),
                    daemon.setup.engine.catalog().client(),
                    |root| kept.index_of(root),
                );
            }
            _ = sleep_until_opt(wake) => {
                if daemon.run_due_or_stop(&mut controls).await {
                    break;
                }
            }
        }
    }
    daemon.stop()
}

async fn sleep_until_opt(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// A schedule with every resource of `setup` due now.
fn schedule_for(setup: &Setup, now: Instant) -> Schedule {
    let waits = setup
        .engine
        .resources()
        .map(|r| r.wait.or(setup.settings.wait))
        .collect();
    let interval = (!watching(setup)).then_some(setup.settings.interval);
    Schedule::new(waits, interval, now)
}

fn watching(setup: &Setup) -> bool {
    setup.settings.watch && setup.engine.backend().can_watch()
}

impl Daemon {
    /// Logs the mode and starts the backend's change notification before
    /// the first read (a failure is reported by the watches themselves).
    fn start(&self) {
        let backend = self.setup.engine.backend();
        if watching(&self.setup) {
            tracing::info!(backend = backend.name(), prefixes = %self.setup.engine.roots().join(","), "watching for changes");
            if let Err(e) = backend.prepare_watch() {
                tracing::debug!(error = %e, "cannot start change notification yet");
            }
        } else {
            if self.setup.settings.watch {
                tracing::info!(
                    backend = backend.name(),
                    "this backend has no change notification; polling instead"
                );
            }
            tracing::info!(
                backend = backend.name(),
                interval = self.setup.settings.interval.as_secs(),
                "polling"
            );
        }
    }

    /// Keeps one watch per prefix (when watching) and one blocking query
    /// per service query the templates made.
    fn follow(&mut self) {
        let engine = &self.setup.engine;
        let roots: &[String] = if watching(&self.setup) {
            engine.roots()
        } else {
            &[]
        };
        let kept = &self.kept;
        self.workers
            .follow_prefixes(engine.backend(), roots, |root| kept.index_of(root));
        if let Some(client) = engine.catalog().client() {
            for dropped in self
                .workers
                .follow_services(client, &engine.catalog().queries())
            {
                engine.catalog().forget(&dropped);
            }
        }
    }

    fn stop(mut self) {
        if let Some(ops) = &self.ops {
            ops.stopping();
        }
        self.workers.stop_all();
        tracing::info!("stopping");
    }

    /// The resources that read `key`, or (with `tree`) anything at or below it.
    fn resources_reading(&self, key: &str, tree: bool) -> Vec<usize> {
        self.setup
            .engine
            .resources()
            .enumerate()
            .filter(|(_, r)| {
                r.roots()
                    .iter()
                    .any(|root| is_within(key, root) || (tree && is_within(root, key)))
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn beat(&self) {
        if let Some(ops) = &self.ops {
            ops.beat(Instant::now());
        }
    }

    /// Takes in a watch's notice (and counts it).
    fn on_notice(&mut self, notice: Notice) {
        let event = match &notice {
            Notice::Changed { .. } => WatchEvent::Change,
            Notice::Resync { .. } => WatchEvent::Resync,
            Notice::Service { .. } => WatchEvent::Service,
            Notice::Failed { .. } => WatchEvent::Failure,
        };
        self.on_notice_inner(notice);
        if let Some(ops) = &self.ops {
            let engine = &self.setup.engine;
            ops.watch_event(engine.backend().name(), event, engine.backend_down());
        }
    }

    fn on_notice_inner(&mut self, notice: Notice) {
        let now = Instant::now();
        match notice {
            Notice::Changed {
                root,
                index,
                changes,
            } => {
                let affected = match self.kept.apply(&root, index, changes.as_deref()) {
                    Applied::Covered => return,
                    Applied::Stale => self.resources_reading(&root, true),
                    Applied::Keys(keys) => {
                        let mut affected: Vec<usize> = Vec::new();
                        for (key, tree) in keys {
                            for i in self.resources_reading(&key, tree) {
                                if !affected.contains(&i) {
                                    affected.push(i);
                                }
                            }
                        }
                        affected
                    }
                };
                tracing::debug!(prefix = %root, index, resources = affected.len(), "change");
                for i in affected {
                    self.schedule.changed(i, now);
                }
            }
            Notice::Resync { root } => {
                tracing::info!(prefix = %root, "backend history compacted; reading the prefix again");
                self.kept.invalidate(&root);
                for i in self.resources_reading(&root, true) {
                    self.schedule.changed(i, now);
                }
            }
            Notice::Service { query, instances } => {
                let affected = self
                    .setup
                    .engine
                    .set_service_instances(query.clone(), instances);
                if !affected.is_empty() {
                    tracing::debug!(%query, resources = affected.len(), "service instances changed");
                }
                for i in affected {
                    self.schedule.changed(i, now);
                }
            }
            Notice::Failed { root, error } => {
                // Changes may be missed while the watch is down: read the
                // prefix again once the backend answers.
                self.kept.invalidate(&root);
                self.setup.engine.note_backend_error(&error);
                self.schedule.backend_failed(now);
            }
        }
    }

    /// Runs the due pass while still taking controls: a stop lets the pass
    /// finish and then stops (returns true); a second stop abandons it. A
    /// reload asked for meanwhile runs after the pass.
    async fn run_due_or_stop(&mut self, controls: &mut mpsc::UnboundedReceiver<Control>) -> bool {
        let mut stopping = false;
        let mut reload = false;
        let ops = self.ops.clone();
        {
            let pass = self.run_due();
            tokio::pin!(pass);
            loop {
                tokio::select! {
                    () = &mut pass => break,
                    _ = sleep_until_opt(ops.as_ref().map(Ops::next_beat)) => {
                        if let Some(ops) = &ops {
                            ops.beat(Instant::now());
                        }
                    }
                    control = controls.recv() => match control {
                        Some(Control::Stop) | None if stopping => {
                            tracing::warn!("stopping now; the pass in progress is abandoned");
                            return true;
                        }
                        Some(Control::Stop) | None => {
                            tracing::info!("stopping once the pass in progress ends");
                            if let Some(ops) = &ops {
                                ops.stopping();
                            }
                            stopping = true;
                        }
                        Some(Control::Reload) => reload = true,
                    },
                }
            }
        }
        if stopping {
            return true;
        }
        if reload {
            return Box::pin(self.reload(controls)).await;
        }
        false
    }

    /// Runs one pass for every resource whose window has closed.
    async fn run_due(&mut self) {
        let due = self.schedule.take_due(Instant::now());
        if due.is_empty() {
            return;
        }
        let report = if watching(&self.setup) {
            self.pass_from_kept(&due).await
        } else {
            self.setup.engine.run_pass_for(Some(&due)).await
        };
        for diff in report.diffs() {
            print!("{diff}");
        }
        let read_ok = report.index.is_some();
        if let Some(ops) = &self.ops {
            ops.pass(&report, self.setup.engine.backend_down());
        }
        if let Some(observer) = &self.observer {
            let _ = observer.send(report);
        }
        memory::release_free();
        self.follow();
        self.schedule.pass_done(&due, read_ok, Instant::now());
    }

    /// A pass over `due` from the kept data, reading first (in one read)
    /// every watched prefix they need whose data is not current.
    async fn pass_from_kept(&mut self, due: &[usize]) -> PassReport {
        let engine = &mut self.setup.engine;
        let due_roots: Vec<String> = engine
            .resources()
            .enumerate()
            .filter(|(i, _)| due.contains(i))
            .flat_map(|(_, r)| r.roots())
            .collect();
        let needed = self.kept.stale_among(engine.roots(), &due_roots);
        if !needed.is_empty() {
            let fetched = match engine.read(&needed).await {
                Ok(fetched) => fetched,
                Err(e) => return engine.failed_read_report(due, e),
            };
            let went_back = self.kept.store_read(&needed, &fetched);
            for root in &needed {
                self.workers.note_read(root, self.kept.index_of(root));
            }
            // A watch waiting for an index the store will never reach again
            // starts over from this read.
            for root in &went_back {
                self.workers.stop_prefix(root);
            }
            if !went_back.is_empty() {
                self.follow();
            }
        }
        let engine = &mut self.setup.engine;
        engine
            .sync_from(Some(due), self.kept.data(), self.kept.latest_index())
            .await
    }

    /// SIGHUP: builds the whole setup again, exactly as at startup; a new
    /// configuration that is not valid keeps the running one whole. Returns
    /// true when a stop arrived during the first pass of the new setup.
    async fn reload(&mut self, controls: &mut mpsc::UnboundedReceiver<Control>) -> bool {
        tracing::info!("SIGHUP: reloading configuration");
        if let Some(ops) = &self.ops {
            ops.reloading();
        }
        let new = match (self.rebuild)(&self.setup) {
            Ok(new) => new,
            Err(errors) => {
                for e in &errors {
                    tracing::error!(error = %e, "invalid configuration");
                }
                tracing::error!("reload failed; keeping the running configuration");
                self.reloaded();
                return false;
            }
        };
        let same_backend = Arc::ptr_eq(new.engine.backend(), self.setup.engine.backend());
        if !same_backend {
            self.workers.stop_all();
        }
        crate::logging::apply(new.settings.log_level, new.settings.log_format);
        let old = std::mem::replace(&mut self.setup, new);
        let Setup { engine, .. } = old;
        self.setup.engine.inherit(engine, same_backend);
        // Read every prefix again: the set of prefixes, or their contents
        // while the backend changed, may differ.
        self.kept = Kept::default();
        self.schedule = schedule_for(&self.setup, Instant::now());
        self.start();
        if Box::pin(self.run_due_or_stop(controls)).await {
            return true;
        }
        self.follow();
        self.reloaded();
        false
    }

    /// Tells systemd the reload is over (READY=1), with the resources now
    /// running.
    fn reloaded(&self) {
        if let Some(ops) = &self.ops {
            let engine = &self.setup.engine;
            let names = engine.resources().map(|r| r.name.clone()).collect();
            ops.reloaded(engine.backend().name(), names);
        }
    }
}

/// Runs the daemon with the process's signals as controls, reporting to
/// `ops` if given; fails only when the signal handlers cannot be installed.
pub async fn run_with_signals(
    setup: Setup,
    rebuild: Rebuild,
    ops: Option<Ops>,
) -> std::io::Result<()> {
    memory::one_arena();
    run(setup, rebuild, signals()?, None, ops).await;
    Ok(())
}
