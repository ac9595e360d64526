//! When resources render: a pure state machine over `(state, event, now)`,
//! so every timing rule is tested with plain instants.
//!
//! A change marks the resources that read it as pending; a pending resource
//! is due when its window closes. With `-wait MIN:MAX` (or the resource's own
//! `wait`) that is once its data has been quiet for MIN, never later than MAX
//! after the first change (trailing edge only: the user asked for quiet).
//! Without a wait, a change is due at once (leading edge) unless the resource
//! rendered less than [`MIN_RENDER_GAP`] ago: then it starts a burst, due once
//! quiet for [`BURST_QUIET`], at most [`BURST_MAX`] after it started, and every
//! change inside an active burst joins it. So a steady stream of changes a
//! little slower than the gap renders each at once, while a flood of writes
//! costs one render at its start and about one per `BURST_MAX` after.
//! Polling marks every resource at each `-interval` tick. A failed pass keeps
//! its resources pending and retries after a backoff.

use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;

/// Without `-wait`: a change this soon after the resource's last render
/// starts a burst instead of rendering at once.
pub const MIN_RENDER_GAP: Duration = Duration::from_millis(100);
/// Without `-wait`: the quiet period a burst must end with before rendering.
pub const BURST_QUIET: Duration = Duration::from_millis(100);
/// Without `-wait`: the longest a burst can delay a render.
pub const BURST_MAX: Duration = Duration::from_secs(2);
/// First pause after a failed pass.
pub const RETRY_START: Duration = Duration::from_millis(100);
/// Longest pause between retries, so a returning backend is caught up with
/// within about a second.
pub const RETRY_MAX: Duration = Duration::from_secs(1);

/// Changes waiting for a resource's window to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    first: Instant,
    last: Instant,
    /// Part of a burst: the first change came less than [`MIN_RENDER_GAP`]
    /// after the resource's last render.
    burst: bool,
}

/// The schedule of every resource of a daemon.
#[derive(Debug)]
pub struct Schedule {
    /// Each resource's coalescing window (its own `wait`, else `-wait`).
    waits: Vec<Option<(Duration, Duration)>>,
    pending: Vec<Option<Pending>>,
    /// When each resource's last successful pass ended, to tell a change
    /// that may render at once from one that starts a burst.
    last_render: Vec<Option<Instant>>,
    /// The polling period; `None` when watching.
    interval: Option<Duration>,
    next_tick: Option<Instant>,
    retry_at: Option<Instant>,
    retry: Backoff,
}

impl Schedule {
    /// A schedule where every resource is due now (the first pass).
    pub fn new(
        waits: Vec<Option<(Duration, Duration)>>,
        interval: Option<Duration>,
        now: Instant,
    ) -> Self {
        let count = waits.len();
        let mut schedule = Schedule {
            waits,
            pending: vec![None; count],
            last_render: vec![None; count],
            interval,
            next_tick: None,
            retry_at: None,
            retry: Backoff::new(RETRY_START, RETRY_MAX),
        };
        schedule.mark_all(now);
        schedule
    }

    /// Resource `i`'s data changed at `now`.
    pub fn changed(&mut self, i: usize, now: Instant) {
        self.mark(i, now, true);
    }

    /// Every resource should render (a tick, a resync, a retry): not a data
    /// change, so it is due at once whenever the resource last rendered.
    pub fn mark_all(&mut self, now: Instant) {
        for i in 0..self.pending.len() {
            self.mark(i, now, false);
        }
    }

    fn mark(&mut self, i: usize, now: Instant, data_change: bool) {
        let rendered = self.last_render.get(i).copied().flatten();
        let follows_closely = data_change
            && rendered.is_some_and(|r| now.saturating_duration_since(r) < MIN_RENDER_GAP);
        if let Some(slot) = self.pending.get_mut(i) {
            *slot = Some(match *slot {
                Some(p) => Pending {
                    first: p.first,
                    last: now,
                    burst: p.burst || follows_closely,
                },
                None => Pending {
                    first: now,
                    last: now,
                    burst: follows_closely,
                },
            });
        }
    }

    /// When pending resource `i` is due.
    fn due_time(&self, i: usize) -> Option<Instant> {
        let pending = self.pending.get(i).copied().flatten()?;
        let wait = self.waits.get(i).copied().flatten();
        Some(match wait {
            Some((min, max)) => later(pending.last, min).min(later(pending.first, max)),
            None if pending.burst => (pending.last + BURST_QUIET).min(pending.first + BURST_MAX),
            None => pending.first,
        })
    }

    /// When the daemon must wake without an event.
    pub fn next_wake(&self) -> Option<Instant> {
        let due = (0..self.pending.len())
            .filter_map(|i| self.due_time(i))
            .min()
            .map(|due| self.retry_at.map_or(due, |retry| due.max(retry)));
        [due, self.next_tick].into_iter().flatten().min()
    }

    /// The resources to render now (a polling tick marks all of them);
    /// empty while a retry pause runs.
    pub fn take_due(&mut self, now: Instant) -> Vec<usize> {
        if self.next_tick.is_some_and(|tick| tick <= now) {
            self.next_tick = None;
            self.mark_all(now);
        }
        if self.retry_at.is_some_and(|retry| retry > now) {
            return Vec::new();
        }
        let due: Vec<usize> = (0..self.pending.len())
            .filter(|&i| self.due_time(i).is_some_and(|t| t <= now))
            .collect();
        if due.is_empty() {
            self.schedule_tick(now);
        }
        due
    }

    /// The pass over `due` ended at `now`. A pass whose read failed keeps
    /// them pending and retries after a growing pause.
    pub fn pass_done(&mut self, due: &[usize], read_ok: bool, now: Instant) {
        if read_ok {
            self.retry_at = None;
            self.retry.reset();
            for &i in due {
                if let Some(slot) = self.pending.get_mut(i) {
                    *slot = None;
                }
                if let Some(slot) = self.last_render.get_mut(i) {
                    *slot = Some(now);
                }
            }
        } else {
            self.retry_at = Some(now + self.retry.next_delay());
        }
        self.schedule_tick(now);
    }

    /// The backend failed outside a pass (a watch): check with a pass after
    /// a pause, so catching up does not wait for the next change.
    pub fn backend_failed(&mut self, now: Instant) {
        if self.retry_at.is_none() {
            self.retry_at = Some(now + self.retry.next_delay());
            self.mark_all(now);
        }
    }

    fn schedule_tick(&mut self, now: Instant) {
        if let (Some(interval), None) = (self.interval, self.next_tick) {
            self.next_tick = Some(later(now, interval));
        }
    }
}

/// `t + d`, or far in the future when that does not fit in an instant.
fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A schedule whose first pass is done (every window closed), and when.
    fn settled(
        waits: Vec<Option<(Duration, Duration)>>,
        interval: Option<Duration>,
    ) -> (Schedule, Instant) {
        let start = Instant::now();
        let mut s = Schedule::new(waits, interval, start);
        let settled = start + Duration::from_secs(5);
        let due = s.take_due(settled);
        s.pass_done(&due, true, settled);
        (s, settled)
    }

    #[test]
    fn every_resource_is_due_at_start() {
        let now = Instant::now();
        let mut s = Schedule::new(vec![None, None, None], None, now);
        assert_eq!(s.take_due(now), vec![0, 1, 2]);
    }

    #[test]
    fn an_isolated_change_is_due_at_once() {
        let (mut s, start) = settled(vec![None, None], None);
        let t = start + Duration::from_secs(10);
        s.changed(1, t);
        assert_eq!(s.next_wake(), Some(t));
        assert_eq!(s.take_due(t), vec![1]);
        s.pass_done(&[1], true, t);
        assert_eq!(s.next_wake(), None, "nothing pending, no polling");
    }

    #[test]
    fn a_burst_waits_for_quiet_and_never_longer_than_its_cap() {
        let (mut s, start) = settled(vec![None], None);
        let t0 = start + Duration::from_secs(10);
        s.changed(0, t0);
        assert_eq!(s.take_due(t0), vec![0]);
        s.pass_done(&[0], true, t0);
        // Changes every 50 ms from now on: a burst.
        let mut t = t0;
        for _ in 0..10 {
            t += 50 * MS;
            s.changed(0, t);
            assert!(s.take_due(t).is_empty(), "not due inside the burst");
        }
        assert_eq!(s.next_wake(), Some(t + BURST_QUIET));
        assert_eq!(s.take_due(t + BURST_QUIET), vec![0]);

        // A burst that never goes quiet renders at BURST_MAX after its start.
        let (mut s, start) = settled(vec![None], None);
        let first = start + Duration::from_secs(10);
        s.changed(0, first);
        let due = s.take_due(first);
        s.pass_done(&due, true, first);
        let burst_start = first + 10 * MS;
        s.changed(0, burst_start);
        let mut t = burst_start;
        let mut rendered_at = None;
        while t < burst_start + Duration::from_secs(5) {
            t += 50 * MS;
            s.changed(0, t);
            if !s.take_due(t).is_empty() {
                rendered_at = Some(t);
                break;
            }
        }
        let rendered_at = rendered_at.expect("a burst renders by its cap");
        assert!(
            rendered_at >= burst_start + BURST_MAX
                && rendered_at < burst_start + BURST_MAX + 50 * MS
        );
    }

    #[test]
    fn wait_min_max_coalesces_per_resource() {
        let wait = Some((Duration::from_secs(1), Duration::from_secs(3)));
        let (mut s, start) = settled(vec![wait, None], None);
        let t0 = start + Duration::from_secs(10);
        s.changed(0, t0);
        s.changed(1, t0);
        assert_eq!(
            s.take_due(t0),
            vec![1],
            "the resource without a wait renders now"
        );
        s.pass_done(&[1], true, t0);
        assert_eq!(s.next_wake(), Some(t0 + Duration::from_secs(1)));
        // Changes every 500 ms keep it waiting until MAX.
        for k in 1..=5u32 {
            let t = t0 + 500 * MS * k;
            s.changed(0, t);
            assert!(s.take_due(t).is_empty());
        }
        assert_eq!(s.next_wake(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(s.take_due(t0 + Duration::from_secs(3)), vec![0]);
    }

    #[test]
    fn ticks_render_every_resource_and_count_as_renders() {
        let (mut s, start) = settled(vec![None], Some(Duration::from_secs(60)));
        assert_eq!(s.next_wake(), Some(start + Duration::from_secs(60)));
        let tick = start + Duration::from_secs(60);
        assert_eq!(s.take_due(tick), vec![0]);
        s.pass_done(&[0], true, tick);
        assert_eq!(s.next_wake(), Some(tick + Duration::from_secs(60)));
        // A change right after the tick's render waits for quiet, like any
        // change that closely follows a render; one after the gap is due at once.
        s.changed(0, tick + 10 * MS);
        assert!(s.take_due(tick + 10 * MS).is_empty());
        assert_eq!(s.take_due(tick + 10 * MS + BURST_QUIET), vec![0]);
        let later = tick + 10 * MS + BURST_QUIET;
        s.pass_done(&[0], true, later);
        s.changed(0, later + MIN_RENDER_GAP);
        assert_eq!(s.take_due(later + MIN_RENDER_GAP), vec![0]);
    }

    /// Drives one resource through `changes` (instants, in order), rendering
    /// whenever it is due and each render taking `render`; returns the
    /// instants at which the renders started.
    fn renders_for(changes: &[Instant], render: Duration) -> Vec<Instant> {
        let (mut s, _) = settled(vec![None], None);
        let mut renders = Vec::new();
        let mut busy_until = changes[0];
        let mut next = 0;
        loop {
            // The next moment something happens: a change or a due render
            // (not before the running render ends).
            let wake = s.next_wake().map(|w| w.max(busy_until));
            let change = changes.get(next).copied();
            let now = match (change, wake) {
                (Some(c), Some(w)) if w < c => w,
                (Some(c), _) => c,
                (None, Some(w)) => w,
                (None, None) => return renders,
            };
            if change == Some(now) {
                s.changed(0, now);
                next += 1;
            }
            if now >= busy_until {
                let due = s.take_due(now);
                if !due.is_empty() {
                    renders.push(now);
                    busy_until = now + render;
                    s.pass_done(&due, true, busy_until);
                }
            }
        }
    }

    #[test]
    fn a_steady_stream_slower_than_the_gap_renders_each_change_at_once() {
        let start = Instant::now() + Duration::from_secs(10);
        let changes: Vec<Instant> = (0..20u32).map(|k| start + 200 * MS * k).collect();
        // Also with renders that take most of the gap (a large file).
        for render in [MS, 90 * MS] {
            let renders = renders_for(&changes, render);
            assert_eq!(renders, changes, "render time {render:?}");
        }
    }

    #[test]
    fn a_flood_renders_at_its_leading_edge_then_a_few_times() {
        let start = Instant::now() + Duration::from_secs(10);
        // 500 writes 2 ms apart (about etcd's commit time), then 500 at 10 ms.
        for gap in [2 * MS, 10 * MS] {
            let changes: Vec<Instant> = (0..500u32).map(|k| start + gap * k).collect();
            let renders = renders_for(&changes, 3 * MS);
            assert_eq!(renders[0], start, "the first write renders at once");
            assert!(renders.len() <= 5, "{} renders for {gap:?}", renders.len());
            let last_change = *changes.last().unwrap_or(&start);
            let last_render = *renders.last().unwrap_or(&start);
            assert!(last_render >= last_change, "the last write is rendered");
            assert!(last_render <= last_change + BURST_QUIET);
        }
    }

    #[test]
    fn a_change_inside_a_burst_waits_even_long_after_the_last_render() {
        let (mut s, start) = settled(vec![None], None);
        let t0 = start + Duration::from_secs(10);
        s.changed(0, t0);
        assert_eq!(s.take_due(t0), vec![0]);
        s.pass_done(&[0], true, t0);
        // A burst starts 50 ms after the render; its changes keep coming
        // every 80 ms, each more than the gap after that render.
        let mut t = t0 + 50 * MS;
        for _ in 0..5 {
            s.changed(0, t);
            assert!(s.take_due(t).is_empty(), "inside the burst at {:?}", t - t0);
            t += 80 * MS;
        }
    }

    #[test]
    fn a_configured_wait_has_no_leading_edge() {
        let wait = Some((Duration::from_secs(1), Duration::from_secs(3)));
        let (mut s, start) = settled(vec![wait], None);
        // Long after the last render, a change still waits for MIN of quiet.
        let t0 = start + Duration::from_secs(60);
        s.changed(0, t0);
        assert!(s.take_due(t0).is_empty());
        assert_eq!(s.next_wake(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn a_failed_pass_keeps_resources_pending_and_backs_off() {
        let start = Instant::now();
        let mut s = Schedule::new(vec![None], None, start);
        let mut t = start;
        let mut pauses = Vec::new();
        for _ in 0..6 {
            let due = s.take_due(t);
            assert_eq!(due, vec![0]);
            s.pass_done(&due, false, t);
            let wake = s.next_wake().expect("a retry is scheduled");
            assert!(s.take_due(t).is_empty(), "nothing runs during the pause");
            pauses.push(wake - t);
            t = wake;
        }
        assert!(pauses[0] < 130 * MS && pauses[1] > pauses[0]);
        assert!(pauses.iter().all(|p| *p <= RETRY_MAX + RETRY_MAX / 5));
        let due = s.take_due(t);
        s.pass_done(&due, true, t);
        assert_eq!(s.next_wake(), None);
    }

    #[test]
    fn huge_intervals_and_waits_never_overflow() {
        let (mut s, start) = settled(
            vec![Some((Duration::MAX, Duration::MAX))],
            Some(Duration::MAX),
        );
        assert!(s.next_wake().is_some_and(|w| w > start));
        s.changed(0, start);
        assert!(s.take_due(start).is_empty());
    }
}
