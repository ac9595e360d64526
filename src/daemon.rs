//! The long-running mode: when to run passes, and for which resources.
//!
//! Event sources, all feeding one loop: one watch task per distinct prefix
//! (never one per resource) when `-watch` is on and the backend can watch;
//! an `-interval` tick otherwise; SIGHUP (reload confd.toml, conf.d and
//! templates); SIGTERM/SIGINT (finish the pass in progress, exit 0).
//!
//! Every resource renders once at start. A change marks the resources that
//! read the changed prefix as pending; a pending resource renders when its
//! window closes: with `-wait MIN:MAX` (or the resource's own `wait`) once the
//! data has been quiet for MIN, never later than MAX after the first change.
//! Without a wait, an isolated change renders at once; a change that follows
//! the previous one within [`BURST_WINDOW`] is part of a burst, and the burst
//! renders once it has been quiet for [`BURST_QUIET`] (at most [`BURST_MAX`]
//! after it started). All resources that are due share one backend read.
//!
//! With `-watch`, the daemon keeps the data of every watched prefix in
//! memory. Backends whose watch reports what changed (etcd v2 and v3: key,
//! value, deletion) have the change applied to that copy, so a change renders
//! without reading the prefix again; for the others (Consul, files) the
//! changed prefix is read again at the next pass. A prefix is read again
//! also after its watch failed or lost its history.
//!
//! A backend that is down at start or goes away never stops the daemon: the
//! outage is logged once, passes are retried with capped exponential backoff
//! and jitter, and the destinations keep their last good content meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::app::{EXIT_FAILED, EXIT_OK, print_diffs};
use crate::backend::{self, Backend, BackendError, Change, WatchEvent};
use crate::cli::Flags;
use crate::config::{self, Settings};
use crate::engine::{Engine, PassReport};
use crate::resource;
use crate::services::{Instance, ServiceClient, ServiceEvent, ServiceQuery};
use crate::snapshot::{Snapshot, clean_key, is_within};

/// Without `-wait`: a change this soon after the previous one is part of a burst.
pub const BURST_WINDOW: Duration = Duration::from_millis(250);
/// Without `-wait`: the quiet period a burst must end with before rendering.
pub const BURST_QUIET: Duration = Duration::from_millis(100);
/// Without `-wait`: the longest a burst can delay a render.
pub const BURST_MAX: Duration = Duration::from_secs(2);
/// First pause after a failed read or watch.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest pause between retries, so a returning backend is caught up with
/// within about a second.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the watch tasks tell the loop.
#[derive(Debug)]
enum Notice {
    /// Something under `root` changed; the store is at `index`. `changes`
    /// says what, when the backend reports it.
    Changed {
        root: String,
        index: u64,
        changes: Option<Vec<Change>>,
    },
    /// The backend lost the history of `root`: read it again.
    Resync { root: String },
    /// The watch of `root` failed.
    Failed { root: String, error: BackendError },
    /// A service query has a new answer.
    Service {
        query: ServiceQuery,
        instances: Vec<Instance>,
    },
}

/// Changes waiting for a resource's window to close.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    /// Part of a burst: the change came soon after the one before it.
    burst: bool,
}

/// One watch task and the channel that tells it the index of the latest read
/// of its prefix.
struct Watcher {
    task: JoinHandle<()>,
    read_index: watch::Sender<u64>,
}

/// The daemon's state between events.
struct Daemon {
    flags: Flags,
    settings: Settings,
    engine: Engine,
    watchers: HashMap<String, Watcher>,
    /// One blocking query per distinct `service(...)` query of the templates.
    service_watchers: HashMap<ServiceQuery, JoinHandle<()>>,
    notices: mpsc::UnboundedSender<Notice>,
    pending: Vec<Option<Pending>>,
    /// When each resource last saw a change (rendered or not), to tell an
    /// isolated change from a burst.
    last_change: Vec<Option<Instant>>,
    /// The index of the latest read or applied change, per watched prefix.
    root_index: HashMap<String, u64>,
    /// With `-watch`: the data of the watched prefixes, kept current from
    /// watch events between passes.
    kept: Arc<Snapshot>,
    /// The prefixes whose data in `kept` is current; the others are read
    /// at the next pass that needs them.
    fresh: HashSet<String>,
    next_tick: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// Runs the daemon until SIGTERM or SIGINT; returns the exit status.
pub async fn run(engine: Engine, settings: Settings, flags: Flags) -> u8 {
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    );
    let (mut terminate, mut interrupt, mut hangup) = match signals {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return EXIT_FAILED;
        }
    };
    let (sender, mut notices) = mpsc::unbounded_channel();
    let count = engine.resources().count();
    let now = Instant::now();
    let mut daemon = Daemon {
        flags,
        settings,
        engine,
        watchers: HashMap::new(),
        service_watchers: HashMap::new(),
        notices: sender,
        pending: vec![
            Some(Pending {
                first: now,
                last: now,
                burst: false,
            });
            count
        ],
        last_change: vec![None; count],
        root_index: HashMap::new(),
        kept: Arc::default(),
        fresh: HashSet::new(),
        next_tick: None,
        retry_at: None,
        backoff: BACKOFF_START,
    };
    daemon.log_mode();
    daemon.prepare_watch();
    daemon.run_due().await;
    daemon.sync_watchers();

    loop {
        let wake = daemon.next_wake();
        tokio::select! {
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
                // next tick (a millisecond on an isolated change).
                if daemon.next_wake().is_some_and(|wake| wake <= Instant::now()) {
                    daemon.run_due().await;
                }
            }
            _ = sleep_until_opt(wake) => daemon.run_due().await,
            _ = hangup.recv() => daemon.reload().await,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    for watcher in daemon.watchers.values() {
        watcher.task.abort();
    }
    for task in daemon.service_watchers.values() {
        task.abort();
    }
    tracing::info!("stopping");
    EXIT_OK
}

async fn sleep_until_opt(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    fn watching(&self) -> bool {
        self.settings.watch && self.engine.backend().can_watch()
    }

    fn log_mode(&self) {
        let backend = self.engine.backend().name();
        if self.watching() {
            tracing::info!(backend, prefixes = %self.engine.roots().join(","), "watching for changes");
        } else {
            if self.settings.watch {
                tracing::info!(
                    backend,
                    "this backend has no change notification; polling instead"
                );
            }
            tracing::info!(
                backend,
                interval = self.settings.interval.as_secs(),
                "polling"
            );
        }
    }

    /// Starts the backend's change notification before the first read of a
    /// watching daemon; a failure is reported by the watches themselves.
    fn prepare_watch(&self) {
        if self.watching() {
            if let Err(e) = self.engine.backend().prepare_watch() {
                tracing::debug!(error = %e, "cannot start change notification yet");
            }
        }
    }

    /// When the loop must wake up without an event.
    fn next_wake(&self) -> Option<Instant> {
        let due = (0..self.pending.len())
            .filter_map(|i| self.due_time(i))
            .min()
            .map(|due| match self.retry_at {
                Some(retry) => due.max(retry),
                None => due,
            });
        [due, self.next_tick].into_iter().flatten().min()
    }

    /// When pending resource `i` should render.
    fn due_time(&self, i: usize) -> Option<Instant> {
        let pending = self.pending.get(i).copied().flatten()?;
        let wait = self
            .engine
            .resources()
            .nth(i)
            .and_then(|r| r.wait)
            .or(self.settings.wait);
        Some(match wait {
            Some((min, max)) => (pending.last + min).min(pending.first + max),
            None if pending.burst => (pending.last + BURST_QUIET).min(pending.first + BURST_MAX),
            None => pending.first,
        })
    }

    /// Marks resource `i` pending; `data_change` is false for ticks, retries
    /// and reloads, which must not make a later change look like a burst.
    fn mark_pending(&mut self, i: usize, now: Instant, data_change: bool) {
        let previous = self.last_change.get(i).copied().flatten();
        let follows_closely =
            data_change && previous.is_some_and(|p| now.duration_since(p) < BURST_WINDOW);
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
        if data_change {
            if let Some(slot) = self.last_change.get_mut(i) {
                *slot = Some(now);
            }
        }
    }

    fn mark_all(&mut self) {
        let now = Instant::now();
        for i in 0..self.pending.len() {
            self.mark_pending(i, now, false);
        }
    }

    fn on_notice(&mut self, notice: Notice) {
        match notice {
            Notice::Changed {
                root,
                index,
                changes,
            } => {
                if self
                    .root_index
                    .get(&root)
                    .is_some_and(|&known| index <= known)
                {
                    // The latest read (or change applied) covers this one.
                    return;
                }
                let affected = match changes {
                    Some(changes) if self.fresh.contains(&root) => {
                        self.root_index.insert(root.clone(), index);
                        self.apply(&changes)
                    }
                    _ => {
                        // What changed is unknown: read the prefix again.
                        self.fresh.remove(&root);
                        self.resources_reading(&root, true)
                    }
                };
                tracing::debug!(prefix = %root, index, resources = affected.len(), "change");
                let now = Instant::now();
                for i in affected {
                    self.mark_pending(i, now, true);
                }
            }
            Notice::Resync { root } => {
                tracing::info!(prefix = %root, "backend history compacted; reading the prefix again");
                self.fresh.remove(&root);
                self.mark_all();
            }
            Notice::Service { query, instances } => {
                if self.engine.set_service_instances(query.clone(), instances) {
                    let now = Instant::now();
                    let affected = self.engine.resources_asking(&query);
                    tracing::debug!(%query, resources = affected.len(), "service instances changed");
                    for i in affected {
                        self.mark_pending(i, now, true);
                    }
                }
            }
            Notice::Failed { root, error } => {
                // Changes may be missed while the watch is down: read the
                // prefix again once the backend answers.
                self.fresh.remove(&root);
                self.engine.note_backend_error(&error);
                if self.retry_at.is_none() {
                    self.retry_at = Some(Instant::now() + jitter(self.backoff));
                    // Check with a pass too, so catching up does not wait
                    // for the next change once the backend is back.
                    self.mark_all();
                }
            }
        }
    }

    /// Runs one pass for every resource whose window has closed.
    async fn run_due(&mut self) {
        let now = Instant::now();
        if self.next_tick.is_some_and(|tick| tick <= now) {
            self.mark_all();
            self.next_tick = None;
        }
        if self.retry_at.is_some_and(|retry| retry > now) {
            return;
        }
        let due: Vec<usize> = (0..self.pending.len())
            .filter(|&i| self.due_time(i).is_some_and(|t| t <= now))
            .collect();
        if due.is_empty() {
            self.schedule_tick();
            return;
        }
        let report = if self.watching() {
            self.pass_from_kept(&due).await
        } else {
            self.engine.run_pass_for(Some(&due)).await
        };
        print_diffs(&report);
        let read_ok = report.index.is_some();
        drop(report);
        release_free_memory();
        self.sync_service_watchers();
        let finished = Instant::now();
        if read_ok {
            self.retry_at = None;
            self.backoff = BACKOFF_START;
            for &i in &due {
                self.pending[i] = None;
            }
        } else {
            // The read failed: keep the resources pending, retry later.
            self.retry_at = Some(finished + jitter(self.backoff));
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
        self.schedule_tick();
    }

    /// A pass over `due` from the kept data, reading first (in one read)
    /// every watched prefix they need whose data is not current. Each prefix
    /// is recorded at the index it was read at, which its changes follow.
    async fn pass_from_kept(&mut self, due: &[usize]) -> PassReport {
        let due_roots: Vec<String> = self
            .engine
            .resources()
            .enumerate()
            .filter(|(i, _)| due.contains(i))
            .flat_map(|(_, r)| r.roots())
            .collect();
        let needed: Vec<String> = self
            .engine
            .roots()
            .iter()
            .filter(|root| !self.fresh.contains(*root))
            .filter(|root| {
                due_roots
                    .iter()
                    .any(|k| is_within(k, root) || is_within(root, k))
            })
            .cloned()
            .collect();
        let mut restart = false;
        if !needed.is_empty() {
            let fetched = match self.engine.read(&needed).await {
                Ok(fetched) => fetched,
                Err(e) => return self.engine.failed_read_report(due, e),
            };
            Arc::make_mut(&mut self.kept).replace_trees(&needed, &fetched.pairs);
            for (i, root) in needed.iter().enumerate() {
                self.fresh.insert(root.clone());
                restart |= self.note_read(root, fetched.index_of(i));
            }
        }
        if restart {
            self.sync_watchers();
        }
        let index = self.root_index.values().copied().max().unwrap_or(0);
        self.engine
            .sync_from(Some(due), self.kept.clone(), index)
            .await
    }

    /// Records that `root` was read at `index` and tells its watch; returns
    /// true when the watch had to be stopped because the store's index went
    /// backwards (a restored or rebuilt store): it must start over from this
    /// read, not wait for the old, higher index.
    fn note_read(&mut self, root: &str, index: u64) -> bool {
        let previous = self.root_index.insert(root.to_string(), index);
        if previous.is_some_and(|p| index < p) {
            if let Some(watcher) = self.watchers.remove(root) {
                watcher.task.abort();
            }
            return true;
        }
        if let Some(watcher) = self.watchers.get(root) {
            let _ = watcher.read_index.send(index);
        }
        false
    }

    /// Applies a watch's changes to the kept data and returns the resources
    /// that read a key that actually changed.
    fn apply(&mut self, changes: &[Change]) -> Vec<usize> {
        let kept = Arc::make_mut(&mut self.kept);
        let mut changed: Vec<(String, bool)> = Vec::new();
        for change in changes {
            let (key, tree, effective) = match change {
                Change::Put { key, value } => (key, false, kept.insert(key, value)),
                Change::Delete { key } => (key, false, kept.remove(key)),
                Change::DeleteTree { key } => (key, true, kept.remove_tree(key)),
            };
            if effective {
                changed.push((clean_key(key), tree));
            }
        }
        let mut affected: Vec<usize> = Vec::new();
        for (key, tree) in changed {
            for i in self.resources_reading(&key, tree) {
                if !affected.contains(&i) {
                    affected.push(i);
                }
            }
        }
        affected
    }

    /// The resources that read `key`, or (with `tree`) anything at or below it.
    fn resources_reading(&self, key: &str, tree: bool) -> Vec<usize> {
        self.engine
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

    fn schedule_tick(&mut self) {
        if !self.watching() && self.next_tick.is_none() {
            self.next_tick = Some(Instant::now() + self.settings.interval);
        }
    }

    /// Starts a watch task for every prefix that needs one and stops those
    /// no longer needed; watches that stay are left running.
    fn sync_watchers(&mut self) {
        if !self.watching() {
            for (_, watcher) in self.watchers.drain() {
                watcher.task.abort();
            }
            return;
        }
        let roots: Vec<String> = self.engine.roots().to_vec();
        self.watchers.retain(|root, watcher| {
            let keep = roots.contains(root);
            if !keep {
                watcher.task.abort();
            }
            keep
        });
        for root in roots {
            if self.watchers.contains_key(&root) {
                continue;
            }
            let start = self.root_index.get(&root).copied().unwrap_or(0);
            let (read_index, receiver) = watch::channel(start);
            let task = tokio::spawn(watch_prefix(
                self.engine.backend().clone(),
                root.clone(),
                receiver,
                self.notices.clone(),
            ));
            self.watchers.insert(root, Watcher { task, read_index });
        }
    }

    /// Keeps one blocking query per service query the templates made.
    fn sync_service_watchers(&mut self) {
        let Some(client) = self.engine.service_client().cloned() else {
            return;
        };
        let queries = self.engine.service_queries();
        let mut dropped: Vec<ServiceQuery> = Vec::new();
        self.service_watchers.retain(|query, task| {
            let keep = queries.contains(query);
            if !keep {
                task.abort();
                dropped.push(query.clone());
            }
            keep
        });
        // Instances nobody follows any more go stale: forget them, so a
        // template that asks again gets a fresh answer, not an old one.
        for query in &dropped {
            self.engine.forget_service(query);
        }
        for query in queries {
            if self.service_watchers.contains_key(&query) {
                continue;
            }
            let task = tokio::spawn(watch_service(
                client.clone(),
                query.clone(),
                self.notices.clone(),
            ));
            self.service_watchers.insert(query, task);
        }
    }

    /// SIGHUP: re-reads confd.toml, conf.d and the templates. A bad resource
    /// file is reported and skipped; bad settings keep the running ones.
    async fn reload(&mut self) {
        tracing::info!("SIGHUP: reloading configuration");
        let settings = match config::resolve(self.flags.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "reload failed; keeping the running configuration");
                return;
            }
        };
        let (resources, errors) = resource::load_all(&settings.confdir, &settings.prefix);
        for e in &errors {
            tracing::error!(error = %e, "resource skipped");
        }
        if !settings.same_backend(&self.settings) {
            match settings.backend_config().and_then(|c| backend::build(&c)) {
                Ok(new_backend) => {
                    for (_, watcher) in self.watchers.drain() {
                        watcher.task.abort();
                    }
                    self.root_index.clear();
                    self.engine.replace_backend(new_backend);
                }
                Err(e) => {
                    tracing::error!(error = %e, "reload failed; keeping the running configuration");
                    return;
                }
            }
        }
        self.settings = settings;
        // Read every prefix again: the set of prefixes, or their contents
        // while the backend changed, may differ.
        self.fresh.clear();
        self.kept = Arc::default();
        let count = resources.len();
        self.engine.replace_resources(resources);
        self.pending = vec![None; count];
        self.last_change = vec![None; count];
        self.next_tick = None;
        self.mark_all();
        self.log_mode();
        self.prepare_watch();
        self.run_due().await;
        self.sync_watchers();
    }
}

/// One prefix's watch loop: waits for changes after the last index it knows
/// (its own or the latest read's, whichever is newer) and reports them.
async fn watch_prefix(
    backend: Arc<dyn Backend>,
    root: String,
    mut read_index: watch::Receiver<u64>,
    notices: mpsc::UnboundedSender<Notice>,
) {
    let mut index = *read_index.borrow_and_update();
    let mut backoff = BACKOFF_START;
    loop {
        index = index.max(*read_index.borrow_and_update());
        match backend.watch(&root, index).await {
            Ok(WatchEvent::Changed {
                index: changed,
                changes,
            }) => {
                backoff = BACKOFF_START;
                index = index.max(changed);
                if notices
                    .send(Notice::Changed {
                        root: root.clone(),
                        index: changed,
                        changes,
                    })
                    .is_err()
                {
                    return;
                }
            }
            Ok(WatchEvent::Quiet) => backoff = BACKOFF_START,
            Ok(WatchEvent::Resync) => {
                // Forget the old index: after a reset (Consul) it may be
                // higher than anything the store will reach again.
                index = 0;
                if notices.send(Notice::Resync { root: root.clone() }).is_err() {
                    return;
                }
                // Resume from the index of the read the resync causes.
                if read_index.changed().await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let notice = Notice::Failed {
                    root: root.clone(),
                    error,
                };
                if notices.send(notice).is_err() {
                    return;
                }
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One service query's blocking-query loop: reports every new answer (the
/// loop compares it with what is known and re-renders only on a difference).
async fn watch_service(
    client: Arc<ServiceClient>,
    query: ServiceQuery,
    notices: mpsc::UnboundedSender<Notice>,
) {
    let mut index = 0;
    let mut backoff = BACKOFF_START;
    let mut failing = false;
    loop {
        match client.watch(&query, index).await {
            Ok(ServiceEvent::Changed(instances, new_index)) => {
                if failing {
                    tracing::info!(%query, "service catalog reachable again");
                    failing = false;
                }
                backoff = BACKOFF_START;
                index = new_index;
                let notice = Notice::Service {
                    query: query.clone(),
                    instances,
                };
                if notices.send(notice).is_err() {
                    return;
                }
            }
            Ok(ServiceEvent::Quiet) => backoff = BACKOFF_START,
            Ok(ServiceEvent::Reset) => index = 0,
            Err(error) => {
                if !failing {
                    tracing::error!(%query, error = %error, "service catalog unreachable; files keep the last instances seen");
                    failing = true;
                }
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Hands the memory a pass freed (the read's response, the render's buffers)
/// back to the system, so an idle daemon holds what it keeps and little more:
/// glibc keeps freed memory for reuse, and the data kept between passes sits
/// among it, so the heap cannot simply shrink from its top. The crate's one
/// `unsafe` block: glibc has no safe interface for this.
#[allow(unsafe_code)]
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks glibc's own free
    // lists, under glibc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `base` ± 20 %, so many hosts restarting with a backend do not retry in step.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.8 + f64::from(nanos % 400) / 1000.0;
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(800) && j < Duration::from_millis(1200));
        }
    }
}
