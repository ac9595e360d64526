//! What confd knows about its own health, and the timing rules built on it:
//! when systemd hears READY=1, when the watchdog is pinged, and whether the
//! event loop still counts as alive. Pure state changed by the daemon loop;
//! the HTTP handlers and the notifier only read it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::{Outcome, PassReport};

/// How long a resource failing from the start may hold READY=1 back: after
/// this long since startup, READY=1 is sent anyway (systemd's default start
/// timeout is 90 s) and the failure stays visible in STATUS=, `/ready` and
/// the metrics.
pub const READY_BOUND: Duration = Duration::from_secs(60);
/// The event loop beats at least this often (more often when systemd's
/// watchdog asks for it).
pub const BEAT: Duration = Duration::from_secs(1);
/// `/health` fails once the loop has missed this many beats.
pub const MISSED_BEATS: u32 = 5;

/// The loop's beat: when the next one is due and when the watchdog wants
/// its next ping (at half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises).
#[derive(Debug, Clone)]
pub struct Beat {
    interval: Duration,
    watchdog_every: Option<Duration>,
    next_watchdog: Instant,
    last: Instant,
}

impl Beat {
    /// A beat for a watchdog period (if any), starting at `now`.
    pub fn new(watchdog: Option<Duration>, now: Instant) -> Self {
        let watchdog_every = watchdog.map(|w| (w / 2).max(Duration::from_millis(1)));
        Beat {
            interval: watchdog_every.map_or(BEAT, |w| w.min(BEAT)),
            watchdog_every,
            next_watchdog: now,
            last: now,
        }
    }

    /// When the loop should beat next.
    pub fn next(&self) -> Instant {
        self.last + self.interval
    }

    /// The loop beat at `now`; true when the watchdog is to be pinged.
    pub fn beat(&mut self, now: Instant) -> bool {
        self.last = now;
        match self.watchdog_every {
            Some(every) if now >= self.next_watchdog => {
                self.next_watchdog = now + every;
                true
            }
            _ => false,
        }
    }

    /// True while the loop's last beat is recent enough.
    pub fn alive(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) <= self.interval * MISSED_BEATS
    }
}

/// The resources' state as the passes left it.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    first_pass_done: bool,
    ready_sent: bool,
    /// Every resource of the running configuration.
    resources: Vec<String>,
    /// Failing resources and the step that failed.
    failing: BTreeMap<String, &'static str>,
    backend: String,
    backend_down: bool,
}

impl Health {
    /// Nothing has run yet.
    pub fn new(now: Instant, backend: &str, resources: Vec<String>) -> Self {
        Health {
            started: now,
            first_pass_done: false,
            ready_sent: false,
            resources,
            failing: BTreeMap::new(),
            backend: backend.to_string(),
            backend_down: false,
        }
    }

    /// Takes in a pass's outcomes.
    pub fn pass(&mut self, report: &PassReport) {
        self.first_pass_done = true;
        for (name, outcome) in &report.outcomes {
            match outcome {
                Outcome::Failed(f) => {
                    self.failing.insert(name.clone(), f.step.label());
                }
                _ => {
                    self.failing.remove(name);
                }
            }
        }
    }

    /// A reload replaced the resources; returns the ones that are gone.
    pub fn replace_resources(&mut self, backend: &str, resources: Vec<String>) -> Vec<String> {
        let gone: Vec<String> = self
            .resources
            .iter()
            .filter(|r| !resources.contains(r))
            .cloned()
            .collect();
        self.failing.retain(|name, _| resources.contains(name));
        self.resources = resources;
        self.backend = backend.to_string();
        gone
    }

    /// Records whether the backend answers.
    pub fn set_backend_down(&mut self, down: bool) {
        self.backend_down = down;
    }

    /// `/ready`: the first pass completed and no resource is failing.
    pub fn ready(&self) -> bool {
        self.first_pass_done() && self.failing.is_empty()
    }

    /// The failing resources and their failing steps.
    pub fn failing(&self) -> &BTreeMap<String, &'static str> {
        &self.failing
    }

    /// Whether the first pass completed (with no resources there is no
    /// pass to wait for).
    pub fn first_pass_done(&self) -> bool {
        self.first_pass_done || self.resources.is_empty()
    }

    /// True once, when READY=1 is due: the first pass wrote everything it
    /// could and nothing fails, or a failure has lasted [`READY_BOUND`]
    /// since startup.
    pub fn take_ready(&mut self, now: Instant) -> bool {
        if self.ready_sent || !self.first_pass_done() {
            return false;
        }
        let due =
            self.failing.is_empty() || now.saturating_duration_since(self.started) >= READY_BOUND;
        self.ready_sent = due;
        due
    }

    /// The one-line summary for STATUS= (and the log).
    pub fn summary(&self) -> String {
        let total = self.resources.len();
        let backend = format!(
            "backend {} {}",
            self.backend,
            if self.backend_down { "down" } else { "up" }
        );
        if !self.first_pass_done() {
            return format!("first pass over {}; {backend}", resources(total));
        }
        if self.failing.is_empty() {
            return format!("{} in sync; {backend}", resources(total));
        }
        let mut names: Vec<String> = self
            .failing
            .iter()
            .take(3)
            .map(|(name, step)| format!("{name} ({step})"))
            .collect();
        if self.failing.len() > 3 {
            names.push(format!("{} more", self.failing.len() - 3));
        }
        format!(
            "{} in sync, {} failing: {}; {backend}",
            total.saturating_sub(self.failing.len()),
            self.failing.len(),
            names.join(", ")
        )
    }
}

/// "1 resource", "2 resources".
fn resources(n: usize) -> String {
    if n == 1 {
        "1 resource".to_string()
    } else {
        format!("{n} resources")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Failure;

    fn report(outcomes: &[(&str, Option<Failure>)]) -> PassReport {
        PassReport {
            outcomes: outcomes
                .iter()
                .map(|(name, failure)| {
                    let outcome = failure.clone().map_or(Outcome::Updated, Outcome::Failed);
                    (name.to_string(), outcome)
                })
                .collect(),
            index: Some(1),
            backend_error: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_is_pinged_at_half_its_period_and_the_loop_beats_every_second() {
        let start = Instant::now();
        let mut beat = Beat::new(Some(Duration::from_secs(6)), start);
        let mut pings = Vec::new();
        for _ in 0..10 {
            tokio::time::sleep_until(beat.next()).await;
            if beat.beat(Instant::now()) {
                pings.push((Instant::now() - start).as_secs());
            }
        }
        assert_eq!(pings, vec![1, 4, 7, 10]);
        // A short watchdog makes the loop beat faster than once a second.
        let fast = Beat::new(Some(Duration::from_millis(400)), start);
        assert_eq!(fast.next() - start, Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_stops_beating_is_no_longer_alive() {
        let mut beat = Beat::new(None, Instant::now());
        assert!(!beat.beat(Instant::now()), "no watchdog, no ping");
        tokio::time::advance(BEAT * MISSED_BEATS).await;
        assert!(beat.alive(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!beat.alive(Instant::now()));
        beat.beat(Instant::now());
        assert!(beat.alive(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn ready_waits_for_the_first_pass_and_for_failures_up_to_the_bound() {
        let start = Instant::now();
        let mut health = Health::new(start, "etcd", vec!["a".into(), "b".into()]);
        assert!(!health.take_ready(start), "no pass yet");
        health.pass(&report(&[("a", None), ("b", Some(Failure::compile("x")))]));
        assert!(!health.ready());
        assert!(!health.take_ready(Instant::now()));
        tokio::time::advance(READY_BOUND - Duration::from_millis(1)).await;
        assert!(!health.take_ready(Instant::now()), "before the bound");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(health.take_ready(Instant::now()), "at the bound");
        assert!(!health.take_ready(Instant::now()), "sent once");
        assert!(!health.ready(), "still failing");
        assert_eq!(
            health.summary(),
            "1 in sync, 1 failing: b (render); backend etcd up"
        );
        health.pass(&report(&[("b", None)]));
        assert!(health.ready());
    }

    #[tokio::test(start_paused = true)]
    async fn ready_is_sent_at_once_when_the_first_pass_succeeds() {
        let mut health = Health::new(Instant::now(), "file", vec!["a".into()]);
        health.pass(&report(&[("a", None)]));
        assert!(health.take_ready(Instant::now()));
        assert_eq!(health.summary(), "1 resource in sync; backend file up");
    }

    #[test]
    fn with_no_resources_there_is_no_first_pass_to_wait_for() {
        let mut health = Health::new(Instant::now(), "env", Vec::new());
        assert!(health.ready());
        assert!(health.take_ready(Instant::now()));
        assert_eq!(health.summary(), "0 resources in sync; backend env up");
    }

    #[test]
    fn a_reload_forgets_removed_resources() {
        let mut health = Health::new(Instant::now(), "file", vec!["a".into(), "b".into()]);
        health.pass(&report(&[("a", Some(Failure::compile("x"))), ("b", None)]));
        let gone = health.replace_resources("file", vec!["b".into()]);
        assert_eq!(gone, vec!["a".to_string()]);
        assert!(health.ready());
    }
}
