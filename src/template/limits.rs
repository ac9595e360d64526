//! Limits on one render — how long it may run and how much text it may
//! produce — and what enforces them from inside the render: an output that
//! counts bytes, and a budget that the output and the helpers consult.
//!
//! Tera offers no hook into its interpreter, so a render can only be stopped
//! where it calls back into our code: each write of output (through
//! [`tera::Tera::render_to`]) and each call of one of our helpers, including
//! the `range` function, which is registered in place of Tera's own for that
//! purpose. A check fails the render with a [`LimitExceeded`] the caller sees
//! instead of Tera's report. A loop whose body writes nothing and calls
//! nothing never reaches a check; `bounded` (the async entry point) deals with
//! such renders from outside.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a render may run unless its resource says otherwise
/// (`render_timeout`). The largest render measured (`bench/README.md`, the
/// HAProxy template over 100,000 keys) takes about 0.1 s, so 10 s leaves two
/// orders of magnitude for slower hosts and DNS lookups in templates, while a
/// runaway template is reported within seconds.
pub const DEFAULT_RENDER_TIMEOUT: Duration = Duration::from_secs(10);

/// How much text a render may produce unless its resource says otherwise
/// (`max_output_size`). The same 100,000-key HAProxy render writes 2.7 MiB,
/// so 64 MiB leaves room for over twenty times that; the pass holds a few
/// outputs at once, so the cap also bounds the memory a runaway template can
/// take.
pub const DEFAULT_MAX_OUTPUT: usize = 64 * MIB;

/// The shortest `render_timeout` a resource may set: below this even a
/// trivial template can fail on a busy host.
pub const MIN_RENDER_TIMEOUT: Duration = Duration::from_millis(1);

/// The longest `render_timeout` a resource may set: a render that needs more
/// is a bug, and the daemon's pass (and SIGTERM's clean exit) waits for it.
pub const MAX_RENDER_TIMEOUT: Duration = Duration::from_secs(3600);

/// The largest `max_output_size` a resource may set: confd holds the whole
/// output in memory and compares it with dest byte for byte.
pub const MAX_OUTPUT_LIMIT: usize = 1024 * MIB;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// How the deadline is read: the clock once every this many checks, the
/// cancel flag at every check. The HAProxy bench template over 100,000 keys
/// makes 565,000 checks; a clock read took 48 ns on the host where that was
/// counted, so reading it at every check would add some 27 ms to a 0.1 s
/// render, and one read in 64 adds under 0.5 ms. A render whose checks come
/// every few microseconds still notices its deadline well within a
/// millisecond. `render_bounded` does not depend on it: it sets the cancel
/// flag when the timeout passes.
const CLOCK_EVERY: u32 = 64;

/// The limits of one render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenderLimits {
    /// Wall-clock time from the start of the render (`render_timeout`).
    pub timeout: Duration,
    /// Bytes of rendered text (`max_output_size`).
    pub max_output: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            timeout: DEFAULT_RENDER_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }
}

/// Which limit stopped or refused a render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// The render ran longer than `render_timeout` (the limit it had).
    Timeout(Duration),
    /// The render produced more than `max_output_size` bytes (the limit).
    Output(usize),
    /// An earlier render of the same template ran past its timeout and is
    /// still running: it could not be interrupted, and another one would only
    /// get stuck beside it.
    StillRunning,
    /// This many renders ran past their timeouts and are still running, the
    /// most confd lets stay stuck at once; no render starts until one ends.
    TooManyStuck(usize),
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Timeout(limit) => write!(
                f,
                "render did not finish within {} (render_timeout); dest left as it is",
                humantime::format_duration(*limit)
            ),
            LimitExceeded::Output(limit) => write!(
                f,
                "rendered more than {} (max_output_size); dest left as it is",
                crate::size::format_size(*limit as u64)
            ),
            LimitExceeded::StillRunning => f.write_str(
                "an earlier render of this template passed its render_timeout and is still \
                 running (it could not be interrupted); not rendering it again until that one \
                 ends; dest left as it is",
            ),
            LimitExceeded::TooManyStuck(count) => write!(
                f,
                "{count} earlier renders passed their render_timeout and are still running (they \
                 could not be interrupted); no render starts until one of them ends; dest left \
                 as it is"
            ),
        }
    }
}

/// What one render may still spend, shared by its output and its helpers on
/// the render's thread.
pub(crate) struct Budget {
    limits: RenderLimits,
    /// `None` when the timeout is too far away to be represented.
    deadline: Option<Instant>,
    /// Set from outside (by whoever awaits the render) to stop it.
    cancel: Arc<AtomicBool>,
    until_clock: Cell<u32>,
    exceeded: Cell<Option<LimitExceeded>>,
}

impl Budget {
    /// A budget for a render that started at `started`; `cancel` stops it at
    /// its next check.
    pub(crate) fn new(limits: RenderLimits, started: Instant, cancel: Arc<AtomicBool>) -> Self {
        Budget {
            limits,
            deadline: started.checked_add(limits.timeout),
            cancel,
            until_clock: Cell::new(0),
            exceeded: Cell::new(None),
        }
    }

    /// The limits this budget enforces.
    pub(crate) fn limits(&self) -> RenderLimits {
        self.limits
    }

    /// The limit that stopped the render, if one did.
    pub(crate) fn exceeded(&self) -> Option<LimitExceeded> {
        self.exceeded.get()
    }

    /// Fails once the render was cancelled or its deadline passed; once it
    /// failed it keeps failing, so nothing after the first failure can let
    /// the render carry on.
    pub(crate) fn check(&self) -> Result<(), LimitExceeded> {
        if let Some(exceeded) = self.exceeded.get() {
            return Err(exceeded);
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(self.exceed(LimitExceeded::Timeout(self.limits.timeout)));
        }
        let left = self.until_clock.get();
        if left > 0 {
            self.until_clock.set(left - 1);
            return Ok(());
        }
        self.until_clock.set(CLOCK_EVERY - 1);
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => {
                Err(self.exceed(LimitExceeded::Timeout(self.limits.timeout)))
            }
            _ => Ok(()),
        }
    }

    fn exceed(&self, limit: LimitExceeded) -> LimitExceeded {
        if self.exceeded.get().is_none() {
            self.exceeded.set(Some(limit));
        }
        limit
    }
}

/// The output of a render: a buffer that refuses to grow past
/// `max_output` (the buffer's capacity never exceeds it either) and checks
/// the budget at every write.
pub(crate) struct LimitedOutput {
    buffer: Vec<u8>,
    budget: Rc<Budget>,
}

impl LimitedOutput {
    /// An empty output, with `capacity_hint` bytes reserved (at most the cap).
    pub(crate) fn new(budget: Rc<Budget>, capacity_hint: usize) -> Self {
        let capacity = capacity_hint.min(budget.limits().max_output);
        LimitedOutput {
            buffer: Vec::with_capacity(capacity),
            budget,
        }
    }

    /// The bytes written so far.
    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.buffer
    }

    /// Grows the buffer for `extra` more bytes the way `Vec` would (doubling),
    /// but never past the cap, so a render that hits the cap has allocated at
    /// most the cap.
    fn reserve(&mut self, extra: usize) {
        let needed = self.buffer.len() + extra;
        if needed <= self.buffer.capacity() {
            return;
        }
        let target = needed
            .max(self.buffer.capacity().saturating_mul(2))
            .min(self.budget.limits().max_output)
            .max(needed);
        self.buffer.reserve_exact(target - self.buffer.len());
    }
}

impl io::Write for LimitedOutput {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // The error's text never reaches users: the render reports the limit
        // recorded in the budget instead of Tera's I/O error.
        let stop = |limit: LimitExceeded| io::Error::other(limit.to_string());
        self.budget.check().map_err(stop)?;
        let room = self.budget.limits().max_output - self.buffer.len();
        if data.len() > room {
            let limit = LimitExceeded::Output(self.budget.limits().max_output);
            return Err(stop(self.budget.exceed(limit)));
        }
        self.reserve(data.len());
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn budget(timeout: Duration, max_output: usize) -> (Rc<Budget>, Arc<AtomicBool>) {
        let cancel = Arc::new(AtomicBool::new(false));
        let limits = RenderLimits {
            timeout,
            max_output,
        };
        (
            Rc::new(Budget::new(limits, Instant::now(), cancel.clone())),
            cancel,
        )
    }

    #[test]
    fn defaults_are_documented_values() {
        let limits = RenderLimits::default();
        assert_eq!(limits.timeout, Duration::from_secs(10));
        assert_eq!(limits.max_output, 64 * 1024 * 1024);
    }

    #[test]
    fn output_stops_at_the_cap_without_allocating_past_it() {
        let cap = 1000 * 1000 + 7;
        let (budget, _) = budget(Duration::from_secs(60), cap);
        let mut out = LimitedOutput::new(budget.clone(), 16);
        let chunk = [b'x'; 4096];
        let mut written = 0;
        let error = loop {
            match out.write_all(&chunk) {
                Ok(()) => written += chunk.len(),
                Err(e) => break e,
            }
        };
        assert_eq!(budget.exceeded(), Some(LimitExceeded::Output(cap)));
        assert!(error.to_string().contains("max_output_size"), "{error}");
        assert!(written <= cap && written + chunk.len() > cap);
        assert!(out.buffer.capacity() <= cap, "{}", out.buffer.capacity());
        assert_eq!(out.into_inner().len(), written);
    }

    #[test]
    fn output_up_to_the_cap_exactly_is_fine() {
        let (budget, _) = budget(Duration::from_secs(60), 10);
        let mut out = LimitedOutput::new(budget.clone(), 1024);
        assert!(out.write_all(b"0123456789").is_ok());
        assert!(out.write_all(b"").is_ok());
        assert!(out.write_all(b"x").is_err());
        assert_eq!(out.into_inner(), b"0123456789");
    }

    #[test]
    fn cancel_and_deadline_stop_every_later_check() {
        let (budget, cancel) = budget(Duration::from_secs(60), 10);
        assert_eq!(budget.check(), Ok(()));
        cancel.store(true, Ordering::Relaxed);
        let timeout = LimitExceeded::Timeout(Duration::from_secs(60));
        assert_eq!(budget.check(), Err(timeout));
        cancel.store(false, Ordering::Relaxed);
        assert_eq!(budget.check(), Err(timeout));

        let (budget, _) = self::budget(Duration::ZERO, 10);
        assert_eq!(budget.check(), Err(LimitExceeded::Timeout(Duration::ZERO)));
    }

    #[test]
    fn messages_name_the_limit_and_its_setting() {
        assert_eq!(
            LimitExceeded::Timeout(Duration::from_secs(10)).to_string(),
            "render did not finish within 10s (render_timeout); dest left as it is"
        );
        assert_eq!(
            LimitExceeded::Output(64 * MIB).to_string(),
            "rendered more than 64 MiB (max_output_size); dest left as it is"
        );
        assert!(
            LimitExceeded::StillRunning
                .to_string()
                .contains("render_timeout")
        );
        assert!(
            LimitExceeded::TooManyStuck(2)
                .to_string()
                .starts_with("2 earlier renders")
        );
    }
}
