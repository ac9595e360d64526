//! The announce loop on tokio's paused clock, against a registrar that
//! records when it was called and a check the test flips: refreshes every
//! third of the TTL, none while the check fails, a write as soon as it
//! passes, retries after errors, exit statuses, and the withdrawal on stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::registrar::{Refreshed, Registrar};
use super::{Announcement, HealthCheck, keep_announcing};
use crate::app::{EXIT_FAILED, EXIT_OK};
use crate::backend::{BackendError, BackendKind};
use crate::daemon::Control;

/// What the registrar was asked, and when (ms since the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Register(u128),
    Refresh(u128),
    Withdraw(u128),
}

/// How the fake backend answers.
#[derive(Default)]
struct Backend {
    calls: Vec<Call>,
    /// Answer writes with a transient error.
    down: bool,
    /// Refuse every write (not transient).
    refuse: bool,
    /// The entry expired (refreshes say Gone until the next register).
    expired: bool,
    /// The withdrawal fails.
    withdraw_fails: bool,
}

struct Fake {
    start: Instant,
    backend: Arc<Mutex<Backend>>,
}

impl Fake {
    fn ms(&self) -> u128 {
        (Instant::now() - self.start).as_millis()
    }

    fn error(&self, transient: bool) -> BackendError {
        BackendError {
            backend: "etcd",
            location: "fake".to_string(),
            message: "down".to_string(),
            transient,
        }
    }
}

#[async_trait]
impl Registrar for Fake {
    async fn register(&mut self) -> Result<Option<Duration>, BackendError> {
        let ms = self.ms();
        let mut b = self.backend.lock().expect("lock");
        b.calls.push(Call::Register(ms));
        if b.refuse || b.down {
            return Err(self.error(!b.refuse));
        }
        b.expired = false;
        Ok(None)
    }

    async fn refresh(&mut self) -> Result<Refreshed, BackendError> {
        let ms = self.ms();
        let mut b = self.backend.lock().expect("lock");
        b.calls.push(Call::Refresh(ms));
        if b.down {
            return Err(self.error(true));
        }
        Ok(if b.expired {
            Refreshed::Gone
        } else {
            Refreshed::Alive(None)
        })
    }

    async fn withdraw(&mut self) -> Result<(), BackendError> {
        let ms = self.ms();
        let mut b = self.backend.lock().expect("lock");
        b.calls.push(Call::Withdraw(ms));
        if b.withdraw_fails {
            return Err(self.error(true));
        }
        Ok(())
    }
}

struct Harness {
    backend: Arc<Mutex<Backend>>,
    up: Arc<AtomicBool>,
    stop: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<u8>,
}

/// The loop with a TTL of 9 s (refreshes every 3 s) and, with `check`, a
/// check every second.
fn start(check: bool) -> Harness {
    let backend = Arc::new(Mutex::new(Backend::default()));
    let up = Arc::new(AtomicBool::new(true));
    let announcement = Announcement {
        backend: BackendKind::Etcd,
        registrar: Box::new(Fake {
            start: Instant::now(),
            backend: backend.clone(),
        }),
        key: "/members/web1".to_string(),
        value: "10.0.0.5:80".to_string(),
        ttl: Duration::from_secs(9),
        check: check.then(|| (HealthCheck::Fake(up.clone()), Duration::from_secs(1))),
    };
    let (stop, controls) = mpsc::unbounded_channel();
    let task = tokio::spawn(keep_announcing(announcement, controls));
    Harness {
        backend,
        up,
        stop,
        task,
    }
}

impl Harness {
    fn calls(&self) -> Vec<Call> {
        self.backend.lock().expect("lock").calls.clone()
    }

    fn set(&self, change: impl FnOnce(&mut Backend)) {
        change(&mut self.backend.lock().expect("lock"));
    }

    async fn stop(self) -> (u8, Vec<Call>) {
        let _ = self.stop.send(Control::Stop);
        let status = self.task.await.expect("the loop ends");
        let calls = self.backend.lock().expect("lock").calls.clone();
        (status, calls)
    }
}

async fn run_for(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn refreshes_every_third_of_the_ttl_and_withdraws_on_stop() {
    let h = start(false);
    run_for(10_000).await;
    assert_eq!(
        h.calls(),
        vec![
            Call::Register(0),
            Call::Refresh(3000),
            Call::Refresh(6000),
            Call::Refresh(9000)
        ]
    );
    let (status, calls) = h.stop().await;
    assert_eq!(status, EXIT_OK);
    assert_eq!(calls.last(), Some(&Call::Withdraw(10_000)));
}

#[tokio::test(start_paused = true)]
async fn a_failing_check_stops_refreshes_and_a_passing_one_writes_at_once() {
    let h = start(true);
    run_for(3500).await;
    assert_eq!(h.calls(), vec![Call::Register(0), Call::Refresh(3000)]);
    h.up.store(false, Ordering::SeqCst);
    // The check at 4 s fails: no refresh at 6 s, 9 s, 12 s.
    run_for(10_000).await;
    assert_eq!(h.calls().len(), 2, "{:?}", h.calls());
    // Meanwhile the entry expired.
    h.set(|b| b.expired = true);
    h.up.store(true, Ordering::SeqCst);
    // The check at 14 s passes: refresh (gone), then register, at once.
    run_for(1000).await;
    assert_eq!(
        h.calls()[2..],
        [Call::Refresh(14_000), Call::Register(14_000)]
    );
    let (status, _) = h.stop().await;
    assert_eq!(status, EXIT_OK);
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_retried_with_growing_pauses_within_a_refresh_period() {
    let h = start(false);
    run_for(100).await;
    h.set(|b| b.down = true);
    run_for(20_000).await;
    let calls = h.calls();
    let times: Vec<u128> = calls
        .iter()
        .map(|c| match c {
            Call::Register(t) | Call::Refresh(t) | Call::Withdraw(t) => *t,
        })
        .collect();
    let gaps: Vec<u128> = times.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 6, "{calls:?}");
    // 200 ms ± 20 % first, never more than the 3 s refresh period.
    assert!((160..=240).contains(&gaps[0]), "{gaps:?}");
    assert!(gaps.iter().all(|g| *g <= 3000), "{gaps:?}");
    assert!(gaps[3] > gaps[0], "{gaps:?}");
    // Back: refreshed, then every 3 s again.
    h.set(|b| b.down = false);
    run_for(9_100).await;
    let after: Vec<u128> = h.calls()[calls.len()..]
        .iter()
        .map(|c| match c {
            Call::Refresh(t) => *t,
            other => panic!("{other:?}"),
        })
        .collect();
    // The pending retry (at most 3 s away) succeeds; then every 3 s.
    assert!(after.len() >= 3, "{after:?}");
    assert!(after.windows(2).all(|w| w[1] - w[0] == 3000), "{after:?}");
    let (status, _) = h.stop().await;
    assert_eq!(status, EXIT_OK);
}

#[tokio::test(start_paused = true)]
async fn a_refused_first_write_is_exit_1_and_a_transient_one_is_retried() {
    let h = start(false);
    h.set(|b| b.refuse = true);
    let status = tokio::time::timeout(Duration::from_secs(1), h.task)
        .await
        .expect("ends at once")
        .expect("no panic");
    assert_eq!(status, EXIT_FAILED);

    let h = start(false);
    h.set(|b| b.down = true);
    run_for(2_000).await;
    assert!(!h.task.is_finished(), "gave up on a transient error");
    assert!(h.calls().len() >= 3, "{:?}", h.calls());
    let (status, _) = h.stop().await;
    assert_eq!(status, EXIT_OK);
}

#[tokio::test(start_paused = true)]
async fn a_failed_withdrawal_is_exit_1() {
    let h = start(false);
    run_for(100).await;
    h.set(|b| b.withdraw_fails = true);
    let (status, calls) = h.stop().await;
    assert_eq!(status, EXIT_FAILED);
    assert_eq!(calls.last(), Some(&Call::Withdraw(100)));
}
