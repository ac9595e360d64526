//! Running in production: what confd tells its supervisor and its
//! monitoring. One [`Ops`] handle, given to the daemon loop, is the only way
//! in: the loop reports passes, watch events, reloads, its own beat and the
//! stop through it, and the engine records timings into its [`Metrics`].
//! Out of it come:
//!
//! - [`notify`]: systemd's READY=1, STATUS=, RELOADING=1, STOPPING=1 and
//!   WATCHDOG=1, when `NOTIFY_SOCKET` is set;
//! - [`http`]: `/metrics`, `/health` and `/ready`, with `-metrics-addr`;
//! - [`health`]: the state and timing rules both read.
//!
//! A one-shot run (`-onetime`) has neither: it is over before a scrape or a
//! readiness check could matter, and under systemd it belongs in a
//! `Type=oneshot` unit, whose readiness is its exit.

pub mod health;
pub mod http;
pub mod metrics;
pub mod notify;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use tokio::time::Instant;

use crate::engine::PassReport;
pub use health::{Beat, Health};
pub use metrics::{CommandKind, Metrics, WatchEvent};
pub use notify::Notifier;

/// What a daemon of `setup` was asked for: a notifier when systemd set
/// `NOTIFY_SOCKET`, the listener of `-metrics-addr` (bound now, so an
/// address in use is an error before anything runs; served on the current
/// runtime). `None` when neither was asked for.
pub fn start(setup: &crate::setup::Setup) -> Result<Option<Ops>, String> {
    let notifier = match Notifier::from_env() {
        Some(Ok(notifier)) => Some(notifier),
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot notify systemd");
            None
        }
        None => None,
    };
    let listener = match &setup.settings.metrics_addr {
        Some(addr) => Some((http::bind(addr)?, addr)),
        None => None,
    };
    if notifier.is_none() && listener.is_none() {
        return Ok(None);
    }
    let engine = &setup.engine;
    let names = engine.resources().map(|r| r.name.clone()).collect();
    let ops = Ops::new(notifier, engine.backend().name(), names);
    if let Some((listener, addr)) = listener {
        tracing::info!(address = %addr, "serving /metrics, /health and /ready");
        tokio::spawn(http::serve(listener, ops.clone()));
    }
    Ok(Some(ops))
}

/// The handle the daemon loop reports through; cheap to clone.
#[derive(Clone, Debug)]
pub struct Ops {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    metrics: Arc<Metrics>,
    notifier: Option<Notifier>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    health: Health,
    beat: Beat,
    stopping: bool,
}

impl Ops {
    /// A handle for a daemon over `resources` read from `backend`, notifying
    /// systemd through `notifier` if there is one.
    pub fn new(notifier: Option<Notifier>, backend: &str, resources: Vec<String>) -> Self {
        let now = Instant::now();
        let watchdog = notifier.as_ref().and_then(Notifier::watchdog);
        let ops = Ops {
            inner: Arc::new(Inner {
                metrics: Arc::new(Metrics::new()),
                notifier,
                state: Mutex::new(State {
                    health: Health::new(now, backend, resources),
                    beat: Beat::new(watchdog, now),
                    stopping: false,
                }),
            }),
        };
        ops.status();
        ops
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent field by field; a panic elsewhere
        // must not take the health endpoints down with it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self, message: &str) {
        if let Some(notifier) = &self.inner.notifier {
            notifier.send(message);
        }
    }

    fn status(&self) {
        let summary = self.state().health.summary();
        self.notify(&notify::status_line(&summary));
    }

    /// The metrics the engine records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// When the loop should call [`Ops::beat`] next.
    pub fn next_beat(&self) -> Instant {
        self.state().beat.next()
    }

    /// The event loop is alive: pings the watchdog when it is due, and
    /// sends READY=1 once [`health::READY_BOUND`] has passed.
    pub fn beat(&self, now: Instant) {
        let (ping, ready) = {
            let mut state = self.state();
            let ping = state.beat.beat(now);
            (ping, state.health.take_ready(now))
        };
        if ping {
            self.notify("WATCHDOG=1");
        }
        if ready {
            self.ready_now();
        }
    }

    fn ready_now(&self) {
        let summary = self.state().health.summary();
        tracing::info!(status = %summary, "ready");
        self.notify(&format!("READY=1\n{}", notify::status_line(&summary)));
    }

    /// A pass ended; `backend_down` is the backend's state after it.
    pub fn pass(&self, report: &PassReport, backend_down: bool) {
        self.inner.metrics.pass(report, SystemTime::now());
        let (ready, now_ready) = {
            let mut state = self.state();
            state.health.pass(report);
            state.health.set_backend_down(backend_down);
            (
                state.health.take_ready(Instant::now()),
                state.health.ready(),
            )
        };
        self.inner.metrics.set_ready(now_ready);
        if ready {
            self.ready_now();
        } else {
            self.status();
        }
    }

    /// A watch reported `event`; `backend_down` is the backend's state after it.
    pub fn watch_event(&self, backend: &str, event: WatchEvent, backend_down: bool) {
        self.inner.metrics.watch_event(backend, event);
        let changed = {
            let mut state = self.state();
            let before = state.health.summary();
            state.health.set_backend_down(backend_down);
            state.health.summary() != before
        };
        if changed {
            self.status();
        }
    }

    /// A watch of `backend` was started again after its task ended.
    pub fn watch_restarted(&self, backend: &str) {
        self.inner.metrics.reconnect(backend);
    }

    /// SIGHUP: a reload begins (Type=notify-reload wants RELOADING=1 with
    /// the monotonic time, then READY=1 when it is done).
    pub fn reloading(&self) {
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
            notify::monotonic_usec()
        ));
    }

    /// The reload is done (or was refused; the running setup stays): the
    /// new set of resources, then READY=1.
    pub fn reloaded(&self, backend: &str, resources: Vec<String>) {
        let gone = self.state().health.replace_resources(backend, resources);
        self.inner.metrics.forget_resources(&gone);
        let summary = self.state().health.summary();
        self.notify(&format!("READY=1\n{}", notify::status_line(&summary)));
    }

    /// The daemon is stopping (sent once).
    pub fn stopping(&self) {
        let first = !std::mem::replace(&mut self.state().stopping, true);
        if first {
            self.notify("STOPPING=1\nSTATUS=stopping");
        }
    }

    /// `/health`: the loop beat recently.
    pub fn alive(&self) -> bool {
        self.state().beat.alive(Instant::now())
    }

    /// `/ready`: `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), NotReady> {
        let state = self.state();
        if state.health.ready() {
            return Ok(());
        }
        Err(NotReady {
            failing: state
                .health
                .failing()
                .iter()
                .map(|(name, step)| (name.clone(), *step))
                .collect(),
            first_pass_done: state.health.first_pass_done(),
        })
    }
}

/// Why `/ready` says no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// The failing resources and their failing steps.
    pub failing: Vec<(String, &'static str)>,
    /// False until the first pass completed.
    pub first_pass_done: bool,
}
