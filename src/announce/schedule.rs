//! When `confd announce` acts: a pure state machine over `(state, event,
//! now)`, so every timing rule is tested with plain instants.
//!
//! - The entry is refreshed every [`REFRESH_FRACTION`] of its TTL, so two
//!   refreshes can fail (or be late) before it expires.
//! - With a health check, the check runs every `-check-interval`, the first
//!   one before anything is written. While it fails nothing is written or
//!   refreshed, so the entry expires within one TTL and the host leaves;
//!   when it passes again the entry is refreshed (or written anew, if it
//!   expired) at once.
//! - A write that failed for want of an answer is retried after a growing
//!   pause ([`crate::backoff`]), never longer than a refresh period.

use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;

/// The entry is refreshed every TTL divided by this.
pub const REFRESH_FRACTION: u32 = 3;
/// First pause after a failed write.
pub const RETRY_START: Duration = Duration::from_millis(200);

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run the health check.
    Check,
    /// Write the entry (it is not there, as far as we know).
    Register,
    /// Refresh the entry written before.
    Refresh,
    /// Nothing until then.
    Wait(Instant),
}

/// How a write or refresh went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written or refreshed; the TTL the backend granted, when it says.
    Ok(Option<Duration>),
    /// The refresh found the entry gone (expired, or deleted by someone).
    Gone,
    /// No answer, or an answer that may change: try again later.
    Failed,
}

/// What a check result changed, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// As before.
    Same,
    /// It passes now (or for the first time).
    Recovered,
    /// It fails now (or from the start).
    Failing,
}

/// The schedule of one announcement.
#[derive(Debug)]
pub struct Schedule {
    refresh_every: Duration,
    check_interval: Option<Duration>,
    /// The last check passed (always true without a check).
    healthy: bool,
    /// No check has run yet.
    first_check: bool,
    check_due: Option<Instant>,
    /// The entry was written and not found gone since.
    registered: bool,
    /// When the next write or refresh is due (while healthy).
    write_due: Instant,
    retry: Backoff,
}

/// The refresh period for a TTL.
pub fn refresh_period(ttl: Duration) -> Duration {
    ttl / REFRESH_FRACTION
}

impl Schedule {
    /// A new announcement at `now`: the check first, if there is one, else
    /// the write.
    pub fn new(ttl: Duration, check_interval: Option<Duration>, now: Instant) -> Schedule {
        let refresh_every = refresh_period(ttl);
        Schedule {
            refresh_every,
            check_interval,
            healthy: check_interval.is_none(),
            first_check: true,
            check_due: check_interval.map(|_| now),
            registered: false,
            write_due: now,
            retry: Backoff::new(RETRY_START, refresh_every.max(RETRY_START)),
        }
    }

    /// The next step at `now`.
    pub fn next(&self, now: Instant) -> Step {
        if let Some(due) = self.check_due
            && due <= now
        {
            return Step::Check;
        }
        if self.healthy && self.write_due <= now {
            return if self.registered {
                Step::Refresh
            } else {
                Step::Register
            };
        }
        let write = self.healthy.then_some(self.write_due);
        match (self.check_due, write) {
            (Some(a), Some(b)) => Step::Wait(a.min(b)),
            (Some(a), None) => Step::Wait(a),
            (None, Some(b)) => Step::Wait(b),
            // Unreachable: without a check the schedule is always healthy.
            (None, None) => Step::Wait(now + self.refresh_every),
        }
    }

    /// The check ran at `now` and passed or not.
    pub fn checked(&mut self, passed: bool, now: Instant) -> Health {
        if let Some(interval) = self.check_interval {
            self.check_due = Some(now + interval);
        }
        let first = std::mem::take(&mut self.first_check);
        let was = self.healthy;
        self.healthy = passed;
        match (first, was, passed) {
            (_, false, true) => {
                // Back (or up for the first time): write at once.
                self.write_due = now;
                self.retry.reset();
                Health::Recovered
            }
            (true, _, false) | (false, true, false) => Health::Failing,
            _ => Health::Same,
        }
    }

    /// A write or refresh finished at `now`.
    pub fn wrote(&mut self, outcome: Written, now: Instant) {
        match outcome {
            Written::Ok(granted) => {
                if let Some(ttl) = granted.filter(|t| !t.is_zero()) {
                    self.refresh_every = refresh_period(ttl);
                }
                self.registered = true;
                self.retry.reset();
                self.write_due = now + self.refresh_every;
            }
            Written::Gone => {
                self.registered = false;
                self.write_due = now;
            }
            Written::Failed => {
                self.write_due = now + self.retry.next_delay().min(self.refresh_every);
            }
        }
    }

    /// Whether the entry was written and not found gone since.
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// Whether the last check passed (always, without a check).
    pub fn healthy(&self) -> bool {
        self.healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(9);
    const CHECK: Duration = Duration::from_secs(2);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_check_it_writes_at_once_then_refreshes_every_third_of_the_ttl() {
        let start = Instant::now();
        let mut s = Schedule::new(TTL, None, start);
        assert_eq!(s.next(start), Step::Register);
        s.wrote(Written::Ok(None), start);
        assert_eq!(s.next(start), Step::Wait(start + secs(3)));
        tokio::time::advance(secs(3)).await;
        let now = Instant::now();
        assert_eq!(s.next(now), Step::Refresh);
        s.wrote(Written::Ok(None), now);
        assert_eq!(s.next(now), Step::Wait(now + secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_check_runs_first_and_a_failing_one_writes_nothing() {
        let start = Instant::now();
        let mut s = Schedule::new(TTL, Some(CHECK), start);
        assert_eq!(s.next(start), Step::Check);
        assert_eq!(s.checked(false, start), Health::Failing);
        // Only the next check is due: no write while failing.
        assert_eq!(s.next(start), Step::Wait(start + CHECK));
        tokio::time::advance(CHECK).await;
        let now = Instant::now();
        assert_eq!(s.next(now), Step::Check);
        assert_eq!(s.checked(false, now), Health::Same);
        assert_eq!(s.next(now), Step::Wait(now + CHECK));
        assert!(!s.registered());
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_starts_failing_stops_refreshes_and_a_pass_refreshes_at_once() {
        let start = Instant::now();
        let mut s = Schedule::new(TTL, Some(CHECK), start);
        assert_eq!(s.checked(true, start), Health::Recovered);
        assert_eq!(s.next(start), Step::Register);
        s.wrote(Written::Ok(None), start);
        // Checks every 2 s, refreshes every 3 s.
        assert_eq!(s.next(start), Step::Wait(start + CHECK));
        tokio::time::advance(CHECK).await;
        let t2 = Instant::now();
        assert_eq!(s.next(t2), Step::Check);
        assert_eq!(s.checked(false, t2), Health::Failing);
        // The refresh that was due at 3 s never comes: only checks.
        for _ in 0..10 {
            let now = Instant::now();
            assert_eq!(s.next(now), Step::Wait(now + CHECK));
            tokio::time::advance(CHECK).await;
            let now = Instant::now();
            assert_eq!(s.next(now), Step::Check);
            assert_eq!(s.checked(false, now), Health::Same);
        }
        let now = Instant::now();
        tokio::time::advance(CHECK).await;
        let back = Instant::now();
        assert!(back > now);
        assert_eq!(s.checked(true, back), Health::Recovered);
        // Still believed registered: refresh, which finds it gone (expired).
        assert_eq!(s.next(back), Step::Refresh);
        s.wrote(Written::Gone, back);
        assert_eq!(s.next(back), Step::Register);
        s.wrote(Written::Ok(None), back);
        assert!(s.registered());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_writes_back_off_within_a_refresh_period_and_reset_on_success() {
        let start = Instant::now();
        let mut s = Schedule::new(TTL, None, start);
        let mut previous = Duration::ZERO;
        for attempt in 0..8 {
            let now = Instant::now();
            assert_eq!(s.next(now), Step::Register, "attempt {attempt}");
            s.wrote(Written::Failed, now);
            let Step::Wait(until) = s.next(now) else {
                panic!("attempt {attempt}: no wait");
            };
            let pause = until - now;
            assert!(pause <= secs(3), "attempt {attempt}: {pause:?}");
            assert!(
                pause >= RETRY_START * 8 / 10,
                "attempt {attempt}: {pause:?}"
            );
            if attempt == 3 {
                // 200 ms doubled three times, ±20 %.
                assert!(pause > previous, "{pause:?} after {previous:?}");
            }
            previous = pause;
            tokio::time::sleep_until(until).await;
        }
        let now = Instant::now();
        s.wrote(Written::Ok(None), now);
        assert_eq!(s.next(now), Step::Wait(now + secs(3)));
        // The next failure starts from the first pause again.
        tokio::time::advance(secs(3)).await;
        let now = Instant::now();
        s.wrote(Written::Failed, now);
        let Step::Wait(until) = s.next(now) else {
            panic!("no wait");
        };
        assert!(until - now < RETRY_START * 12 / 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_granted_ttl_sets_the_refresh_period() {
        let start = Instant::now();
        let mut s = Schedule::new(secs(1), None, start);
        // etcd v3 grants at least its minimum lease TTL.
        s.wrote(Written::Ok(Some(secs(6))), start);
        assert_eq!(s.next(start), Step::Wait(start + secs(2)));
        s.wrote(Written::Ok(Some(Duration::ZERO)), start);
        assert_eq!(s.next(start), Step::Wait(start + secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_is_never_later_than_a_third_of_the_ttl_while_healthy() {
        // Simulate a minute of checks and refreshes and record the gaps
        // between writes: the entry never gets near its expiry.
        let start = Instant::now();
        let mut s = Schedule::new(TTL, Some(CHECK), start);
        let mut last_write: Option<Instant> = None;
        let mut longest = Duration::ZERO;
        while Instant::now() - start < secs(60) {
            let now = Instant::now();
            match s.next(now) {
                Step::Check => {
                    s.checked(true, now);
                }
                Step::Register | Step::Refresh => {
                    if let Some(last) = last_write {
                        longest = longest.max(now - last);
                    }
                    last_write = Some(now);
                    s.wrote(Written::Ok(None), now);
                }
                Step::Wait(until) => tokio::time::sleep_until(until).await,
            }
        }
        assert_eq!(longest, secs(3));
    }
}
