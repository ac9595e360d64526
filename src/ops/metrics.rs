//! The Prometheus metrics confd keeps (`confd_*`, documented in the README's
//! table): one [`Metrics`] value shared by the daemon loop, the engine and
//! the `/metrics` handler. Recording is a few atomic operations, so it is
//! always on once the daemon has an [`Ops`](super::Ops); nothing is encoded
//! until a scrape asks.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::engine::{Outcome, PassReport, Step};

/// Label pairs; a handful per series, so a vector is the simplest set.
type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Render times range from well under a millisecond to the render limit.
const RENDER_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];
/// Check and reload commands: a config test takes milliseconds, a service
/// reload seconds, a stuck one its whole timeout.
const COMMAND_BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn command_histogram() -> Histogram {
    Histogram::new(COMMAND_BUCKETS)
}

/// Which command a duration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// A resource's `check_cmd`.
    Check,
    /// A (batched) `reload_cmd`.
    Reload,
}

impl CommandKind {
    fn label(self) -> &'static str {
        match self {
            CommandKind::Check => "check",
            CommandKind::Reload => "reload",
        }
    }
}

/// What a watch worker reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEvent {
    /// Keys changed under a watched prefix.
    Change,
    /// The backend's history was compacted; the prefix is read again.
    Resync,
    /// A `service(...)` query's instances changed.
    Service,
    /// The watch failed (it is restarted with backoff).
    Failure,
}

impl WatchEvent {
    fn label(self) -> &'static str {
        match self {
            WatchEvent::Change => "change",
            WatchEvent::Resync => "resync",
            WatchEvent::Service => "service",
            WatchEvent::Failure => "failure",
        }
    }
}

/// Every metric family, registered once under the `confd_` prefix.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    passes: Counter,
    renders: Family<Labels, Counter>,
    writes: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    failing: Family<Labels, Gauge>,
    last_sync: Family<Labels, Gauge<f64, AtomicU64>>,
    render_seconds: Histogram,
    command_seconds: Histograms,
    backend_reads: Family<Labels, Counter>,
    backend_errors: Family<Labels, Counter>,
    backend_reconnects: Family<Labels, Counter>,
    backend_up: Family<Labels, Gauge>,
    watch_events: Family<Labels, Counter>,
    ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn resource(name: &str) -> Labels {
    vec![("resource", name.to_string())]
}

fn backend(name: &str) -> Labels {
    vec![("backend", name.to_string())]
}

impl Metrics {
    /// Registers every family (with the build's version and commit).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("confd");
        let m = Metrics {
            registry: Registry::default(),
            passes: Counter::default(),
            renders: Family::default(),
            writes: Family::default(),
            reloads: Family::default(),
            failures: Family::default(),
            failing: Family::default(),
            last_sync: Family::default(),
            render_seconds: Histogram::new(RENDER_BUCKETS),
            command_seconds: Family::new_with_constructor(command_histogram),
            backend_reads: Family::default(),
            backend_errors: Family::default(),
            backend_reconnects: Family::default(),
            backend_up: Family::default(),
            watch_events: Family::default(),
            ready: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "passes",
            "Passes run (each over the resources that were due)",
            m.passes.clone(),
        );
        r.register(
            "renders",
            "Templates rendered, per resource",
            m.renders.clone(),
        );
        r.register(
            "writes",
            "Destinations replaced with new content, per resource",
            m.writes.clone(),
        );
        r.register(
            "reloads",
            "reload_cmd runs that succeeded, per resource",
            m.reloads.clone(),
        );
        r.register("failures", "Resource failures, per resource and failing step (backend, render, guard, check, write, reload)", m.failures.clone());
        r.register(
            "resource_failing",
            "1 while the resource's last pass failed",
            m.failing.clone(),
        );
        r.register(
            "last_sync_timestamp_seconds",
            "Unix time of the resource's last pass that left its destination in sync",
            m.last_sync.clone(),
        );
        r.register(
            "render_duration_seconds",
            "Time to render one template",
            m.render_seconds.clone(),
        );
        r.register(
            "command_duration_seconds",
            "Time a check_cmd or reload_cmd ran, per kind",
            m.command_seconds.clone(),
        );
        r.register(
            "backend_reads",
            "Reads of the backend, per backend",
            m.backend_reads.clone(),
        );
        r.register(
            "backend_errors",
            "Failed backend reads and watches, per backend",
            m.backend_errors.clone(),
        );
        r.register(
            "backend_reconnects",
            "Times the backend answered again after an outage, and watch tasks started again, per backend",
            m.backend_reconnects.clone(),
        );
        r.register(
            "backend_up",
            "1 while the backend answers, 0 during an outage",
            m.backend_up.clone(),
        );
        r.register(
            "watch_events",
            "Events reported by watches, per backend and kind (change, resync, service, failure)",
            m.watch_events.clone(),
        );
        r.register(
            "ready",
            "1 once the first pass completed and no resource is failing",
            m.ready.clone(),
        );
        let build: Family<Labels, Gauge> = Family::default();
        build
            .get_or_create(&vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                (
                    "commit",
                    option_env!("CONFD_COMMIT").unwrap_or("unknown").to_string(),
                ),
            ])
            .set(1);
        r.register(
            "build_info",
            "The running build: version and commit (always 1)",
            build,
        );
        Metrics { registry, ..m }
    }

    /// The registry in the OpenMetrics text format (what Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Counts one pass and each resource's outcome in it.
    pub fn pass(&self, report: &PassReport, now: SystemTime) {
        self.passes.inc();
        let unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for (name, outcome) in &report.outcomes {
            let labels = resource(name);
            let rendered = match outcome {
                Outcome::Failed(f) => !matches!(f.step, Step::Backend | Step::Render | Step::Guard),
                _ => true,
            };
            if rendered {
                self.renders.get_or_create(&labels).inc();
            }
            match outcome {
                Outcome::Failed(f) => {
                    // A failed reload_cmd runs after the new file is in place.
                    if f.step == Step::Reload {
                        self.writes.get_or_create(&labels).inc();
                    }
                    self.failures
                        .get_or_create(&vec![
                            ("resource", name.clone()),
                            ("step", f.step.label().to_string()),
                        ])
                        .inc();
                    self.failing.get_or_create(&labels).set(1);
                }
                Outcome::Updated | Outcome::Unchanged | Outcome::WouldUpdate(_) => {
                    if *outcome == Outcome::Updated {
                        self.writes.get_or_create(&labels).inc();
                    }
                    self.failing.get_or_create(&labels).set(0);
                    self.last_sync.get_or_create(&labels).set(unix);
                }
            }
        }
    }

    /// Forgets the per-resource gauges of resources a reload removed (their
    /// counters stay: they are totals of what happened).
    pub fn forget_resources(&self, gone: &[String]) {
        for name in gone {
            self.failing.remove(&resource(name));
            self.last_sync.remove(&resource(name));
        }
    }

    /// A successful reload command run for `resource`.
    pub fn reloaded(&self, resource_name: &str) {
        self.reloads.get_or_create(&resource(resource_name)).inc();
    }

    /// How long one template took to render.
    pub fn render_took(&self, took: Duration) {
        self.render_seconds.observe(took.as_secs_f64());
    }

    /// How long a check or reload command ran.
    pub fn command_took(&self, kind: CommandKind, took: Duration) {
        self.command_seconds
            .get_or_create(&vec![("kind", kind.label().to_string())])
            .observe(took.as_secs_f64());
    }

    /// A read of `backend_name`, successful or not.
    pub fn backend_read(&self, backend_name: &str) {
        self.backend_reads
            .get_or_create(&backend(backend_name))
            .inc();
    }

    /// A failed read or watch of `backend_name`.
    pub fn backend_error(&self, backend_name: &str) {
        self.backend_errors
            .get_or_create(&backend(backend_name))
            .inc();
        self.backend_up.get_or_create(&backend(backend_name)).set(0);
    }

    /// `backend_name` answered.
    pub fn backend_ok(&self, backend_name: &str) {
        self.backend_up.get_or_create(&backend(backend_name)).set(1);
    }

    /// `backend_name` answered after an outage, or a watch task of it was
    /// started again.
    pub fn reconnect(&self, backend_name: &str) {
        self.backend_reconnects
            .get_or_create(&backend(backend_name))
            .inc();
    }

    /// An event from a watch of `backend_name`.
    pub fn watch_event(&self, backend_name: &str, event: WatchEvent) {
        self.watch_events
            .get_or_create(&vec![
                ("backend", backend_name.to_string()),
                ("kind", event.label().to_string()),
            ])
            .inc();
    }

    /// Whether confd is ready (see [`super::health`]).
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Failure;

    #[test]
    fn a_pass_counts_renders_writes_and_failures_by_step() {
        let metrics = Metrics::new();
        let report = PassReport {
            outcomes: vec![
                ("new".to_string(), Outcome::Updated),
                ("same".to_string(), Outcome::Unchanged),
                ("refused".to_string(), Failure::guard("too few keys").into()),
                ("checked".to_string(), Failure::reload("exit 1").into()),
            ],
            index: Some(3),
            backend_error: None,
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        metrics.pass(&report, at);
        let text = metrics.encode();
        for line in [
            "confd_passes_total 1\n",
            "confd_writes_total{resource=\"new\"} 1\n",
            "confd_renders_total{resource=\"same\"} 1\n",
            // A reload failure happened after the render; a guard's before.
            "confd_renders_total{resource=\"checked\"} 1\n",
            "confd_failures_total{resource=\"refused\",step=\"guard\"} 1\n",
            "confd_failures_total{resource=\"checked\",step=\"reload\"} 1\n",
            "confd_writes_total{resource=\"checked\"} 1\n",
            "confd_resource_failing{resource=\"refused\"} 1\n",
            "confd_resource_failing{resource=\"new\"} 0\n",
            "confd_last_sync_timestamp_seconds{resource=\"same\"} 1700000000.0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        for absent in [
            "confd_renders_total{resource=\"refused\"}",
            "confd_writes_total{resource=\"same\"}",
            "confd_last_sync_timestamp_seconds{resource=\"refused\"}",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        metrics.forget_resources(&["refused".to_string()]);
        assert!(
            !metrics
                .encode()
                .contains("confd_resource_failing{resource=\"refused\"}")
        );
    }
}
