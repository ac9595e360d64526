//! The one retry pause every retry loop uses (reads, watches, restarted
//! workers, `-wait-keys`): capped exponential growth with ±20 % jitter, reset
//! after a success, so a fleet restarting with its backend does not retry in
//! step and a returning backend is caught up with quickly.

use std::time::Duration;

/// A capped exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    start: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `start`, doubling up to `max`.
    pub const fn new(start: Duration, max: Duration) -> Self {
        Backoff {
            start,
            max,
            current: start,
        }
    }

    /// The next pause (jittered), and grows the one after it.
    pub fn next_delay(&mut self) -> Duration {
        let delay = jitter(self.current);
        self.current = self.current.saturating_mul(2).min(self.max);
        delay
    }

    /// The next pause without jitter, capped by `remaining` (a deadline),
    /// and grows the one after it.
    pub fn next_within(&mut self, remaining: Duration) -> Duration {
        self.next_delay().min(remaining)
    }

    /// Back to the first pause, after a success.
    pub fn reset(&mut self) {
        self.current = self.start;
    }
}

/// `base` ± 20 %.
fn jitter(base: Duration) -> Duration {
    // A fresh random state per call is a cheap, good-enough random source.
    let random = ahash::RandomState::new().hash_one(0u8);
    let factor = 0.8 + (random % 400) as f64 / 1000.0;
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_up_to_the_cap_within_twenty_percent() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        for expected in [100u64, 200, 400, 800, 1000, 1000] {
            let d = backoff.next_delay();
            let (low, high) = (expected * 8 / 10, expected * 12 / 10);
            assert!(
                d >= Duration::from_millis(low) && d < Duration::from_millis(high),
                "{d:?} not within 20% of {expected} ms"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(120));
    }

    #[test]
    fn a_deadline_caps_the_pause() {
        let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(5));
        assert_eq!(
            backoff.next_within(Duration::from_millis(10)),
            Duration::from_millis(10)
        );
    }
}
