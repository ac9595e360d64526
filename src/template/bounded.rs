//! Renders that cannot hold up their caller: [`render_bounded`] runs a render
//! on a render thread and awaits it for at most the render's timeout, so the
//! daemon's event loop, its signal handling and the other resources never
//! wait on a runaway template.
//!
//! Render threads form a small pool: a thread that finished a render waits a
//! few seconds for the next one before it ends, so a pass does not pay for a
//! new thread per render, and an idle daemon keeps no thread. These are plain
//! OS threads rather than Tokio's blocking pool because a thread that cannot
//! be stopped must not hold up anything: a Tokio runtime waits for its
//! blocking tasks when it shuts down, whereas the process exits without
//! waiting for these.
//!
//! When the timeout passes, the render's cancel flag is set and the render
//! stops at its next output write or helper call (see `limits`). A render
//! that never reaches one — a loop that writes nothing and calls nothing —
//! cannot be stopped from outside a process: its thread is left to finish on
//! its own (detached) and counted as stuck. While a render of a template is
//! stuck, that template is not rendered again (another render would most
//! likely get stuck beside it), and once [`max_stuck`] renders are stuck no
//! render starts at all, so stuck templates cannot take every core. Both
//! refusals are [`TemplateError::Limit`] errors that say why; they end when
//! the stuck thread ends.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use std::sync::mpsc::{self, RecvTimeoutError};

use super::limits::{Budget, LimitExceeded, RenderLimits};
use super::{Rendered, Template, TemplateError};
use crate::services::ServiceData;
use crate::snapshot::View;

/// How long a render that passed its timeout gets to notice its cancel flag
/// before it counts as stuck. One that can be stopped stops within
/// microseconds; the margin is for a loaded host.
const GRACE: Duration = Duration::from_millis(50);

/// How long an idle render thread waits for another render before it ends.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Renders `template` against `view` and `services` on a render thread, within
/// `limits`, without ever blocking the caller's thread.
///
/// Returns as soon as the render finishes, or once `limits.timeout` has
/// passed (plus at most 50 ms for the render to acknowledge it was stopped)
/// with a [`TemplateError::Limit`] error: `templates/x.tmpl: render did not
/// finish within 10s (render_timeout); dest left as it is`. Output past
/// `limits.max_output` fails the same way (`… rendered more than 64 MiB
/// (max_output_size) …`). The render is refused at once, with the same kind
/// of error, while an earlier render of the same template (same name, same
/// text) is stuck, or while [`max_stuck`] renders are stuck.
///
/// Dropping the returned future stops the render as a timeout does. Must be
/// awaited inside a Tokio runtime with its time driver enabled.
pub async fn render_bounded(
    template: Template,
    view: View,
    services: Arc<ServiceData>,
    limits: RenderLimits,
) -> Rendered {
    renderer().render(template, view, services, limits).await
}

/// How many renders may be stuck (past their timeouts and still running) at
/// once before confd starts no more renders: one less than the cores this
/// process may use, between 1 and 4, so a stuck template always leaves a core
/// to the rest of the host where there is more than one.
pub fn max_stuck() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .clamp(1, 4)
    })
}

fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| Renderer::new(max_stuck(), KEEP_ALIVE))
}

/// Render threads and the record of stuck renders. One serves the process;
/// tests make their own so that their stuck renders stay apart.
struct Renderer {
    pool: Arc<Pool>,
    stuck: Arc<Stuck>,
}

impl Renderer {
    fn new(max_stuck: usize, keep_alive: Duration) -> Self {
        Renderer {
            pool: Arc::new(Pool {
                state: Mutex::new(PoolState::default()),
                wake: Condvar::new(),
                keep_alive,
            }),
            stuck: Arc::new(Stuck {
                max: max_stuck,
                jobs: Mutex::new(Vec::new()),
            }),
        }
    }

    async fn render(
        &self,
        template: Template,
        view: View,
        services: Arc<ServiceData>,
        limits: RenderLimits,
    ) -> Rendered {
        let name = template.name().to_string();
        if let Err(exceeded) = self.stuck.admit(&template) {
            return failed(template.limit_error(exceeded));
        }
        let started = Instant::now();
        let job = Arc::new(Job {
            template: name.clone(),
            fingerprint: template.fingerprint(),
            cancel: Arc::new(AtomicBool::new(false)),
            finished: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
        });
        let (sender, receiver) = mpsc::sync_channel(1);
        let work = {
            let job = job.clone();
            let stuck = self.stuck.clone();
            let name = name.clone();
            move || {
                let budget = Budget::new(limits, started, job.cancel.clone());
                // A panic in Tera or a helper fails this render, not the
                // render thread (or, through a lost result, the pass).
                let rendered = panic::catch_unwind(AssertUnwindSafe(|| {
                    template.render_budgeted(view, services, budget)
                }))
                .unwrap_or_else(|_| {
                    failed(TemplateError::Render(
                        format!("{name}: the render panicked").into(),
                    ))
                });
                // The caller may have given up; then nobody needs the result.
                let _ = sender.send(rendered);
                stuck.finish(&job);
            }
        };
        if let Err(e) = self.pool.run(Box::new(work)) {
            return failed(TemplateError::Render(
                format!(
                    "{name}: cannot start a render thread: {}",
                    crate::error::io_reason(&e)
                )
                .into(),
            ));
        }

        // From here on, leaving early (the future dropped) stops the render.
        let mut abandon = Abandon {
            stuck: &self.stuck,
            job: &job,
            armed: true,
        };
        // The wait is measured on the wall clock, on the blocking pool: the
        // render runs on a thread of its own, in real time, whatever the
        // runtime's clock says (a paused test clock would otherwise jump
        // straight past the timeout while the render runs).
        let timeout = limits.timeout.saturating_sub(started.elapsed());
        let cancel = job.cancel.clone();
        let waited = tokio::task::spawn_blocking(move || match receiver.recv_timeout(timeout) {
            Ok(rendered) => Waited::Done(rendered),
            Err(RecvTimeoutError::Disconnected) => Waited::Lost,
            Err(RecvTimeoutError::Timeout) => {
                cancel.store(true, Ordering::Relaxed);
                // Only a render that does not stop now counts as stuck.
                match receiver.recv_timeout(GRACE) {
                    Ok(_) | Err(RecvTimeoutError::Disconnected) => Waited::Stopped,
                    Err(RecvTimeoutError::Timeout) => Waited::Stuck,
                }
            }
        })
        .await
        .unwrap_or(Waited::Lost);
        match waited {
            Waited::Done(rendered) => {
                abandon.armed = false;
                rendered
            }
            Waited::Lost => {
                abandon.armed = false;
                failed(TemplateError::Render(
                    format!("{name}: the render thread ended without a result").into(),
                ))
            }
            Waited::Stopped | Waited::Stuck => {
                abandon.armed = matches!(waited, Waited::Stuck);
                drop(abandon);
                failed(TemplateError::Limit {
                    template: name,
                    exceeded: LimitExceeded::Timeout(limits.timeout),
                })
            }
        }
    }
}

/// How the wait for a render ended.
enum Waited {
    /// It finished in time.
    Done(Rendered),
    /// Its thread ended without a result.
    Lost,
    /// It passed its timeout and stopped when told to.
    Stopped,
    /// It passed its timeout and is still running.
    Stuck,
}

fn failed(error: TemplateError) -> Rendered {
    Rendered {
        text: Err(error),
        services_asked: Vec::new(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; should it happen, the data
    // (counts and lists) is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One render handed to a render thread.
struct Job {
    template: String,
    fingerprint: u64,
    cancel: Arc<AtomicBool>,
    /// Set by the render thread when the render is over.
    finished: AtomicBool,
    /// Set by the caller when it stopped waiting.
    abandoned: AtomicBool,
}

/// Renders whose callers stopped waiting and that are still running. The
/// `finished` and `abandoned` flags of a job change only under `jobs`' lock,
/// so a job is listed exactly while it is abandoned and not finished.
struct Stuck {
    max: usize,
    jobs: Mutex<Vec<Arc<Job>>>,
}

impl Stuck {
    /// Refuses a render of a template that is stuck, or any render while the
    /// most allowed are stuck.
    fn admit(&self, template: &Template) -> Result<(), LimitExceeded> {
        let jobs = lock(&self.jobs);
        let same = |job: &Arc<Job>| {
            job.template == template.name() && job.fingerprint == template.fingerprint()
        };
        if jobs.iter().any(same) {
            Err(LimitExceeded::StillRunning)
        } else if jobs.len() >= self.max {
            Err(LimitExceeded::TooManyStuck(jobs.len()))
        } else {
            Ok(())
        }
    }

    /// The caller stopped waiting: stop the render, and count it as stuck
    /// until its thread says it finished.
    fn abandon(&self, job: &Arc<Job>) {
        job.cancel.store(true, Ordering::Relaxed);
        let mut jobs = lock(&self.jobs);
        if !job.finished.load(Ordering::Relaxed) && !job.abandoned.load(Ordering::Relaxed) {
            job.abandoned.store(true, Ordering::Relaxed);
            jobs.push(job.clone());
        }
    }

    /// The render thread is done with `job`.
    fn finish(&self, job: &Arc<Job>) {
        let mut jobs = lock(&self.jobs);
        job.finished.store(true, Ordering::Relaxed);
        if job.abandoned.load(Ordering::Relaxed) {
            jobs.retain(|j| !Arc::ptr_eq(j, job));
        }
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        lock(&self.jobs).len()
    }
}

/// Abandons its job when dropped while armed: the caller left before the
/// render was over (timeout, or the future dropped).
struct Abandon<'a> {
    stuck: &'a Stuck,
    job: &'a Arc<Job>,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.stuck.abandon(self.job);
        }
    }
}

type Work = Box<dyn FnOnce() + Send + 'static>;

/// Render threads: as many as renders run at once (the engine bounds that),
/// each ending after `keep_alive` without work.
struct Pool {
    state: Mutex<PoolState>,
    wake: Condvar,
    keep_alive: Duration,
}

/// `idle` counts threads waiting for work minus the work queued for them,
/// so each queued render has a thread of its own and never waits behind
/// another (possibly stuck) one.
#[derive(Default)]
struct PoolState {
    queue: VecDeque<Work>,
    idle: usize,
}

impl Pool {
    /// Hands `work` to an idle thread, or to a new one when none is idle.
    fn run(self: &Arc<Self>, work: Work) -> std::io::Result<()> {
        let mut state = lock(&self.state);
        if state.idle > 0 {
            state.idle -= 1;
            state.queue.push_back(work);
            drop(state);
            self.wake.notify_one();
            return Ok(());
        }
        drop(state);
        let pool = self.clone();
        std::thread::Builder::new()
            .name("confd-render".to_string())
            .spawn(move || {
                work();
                pool.serve();
            })
            .map(drop)
    }

    /// Runs queued work until none comes for `keep_alive`.
    fn serve(&self) {
        loop {
            let work = {
                let mut state = lock(&self.state);
                state.idle += 1;
                loop {
                    if let Some(work) = state.queue.pop_front() {
                        break Some(work);
                    }
                    let (guard, waited) = self
                        .wake
                        .wait_timeout(state, self.keep_alive)
                        .unwrap_or_else(PoisonError::into_inner);
                    state = guard;
                    if waited.timed_out() && state.queue.is_empty() {
                        state.idle -= 1;
                        break None;
                    }
                }
            };
            match work {
                Some(work) => work(),
                None => return,
            }
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        lock(&self.state).idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{Instance, ServiceQuery};
    use crate::snapshot::Snapshot;
    use crate::template::TemplateCompiler;

    const SHORT: Duration = Duration::from_millis(200);

    /// Generous, for a host shared with other builds: what the tests prove is
    /// that the wait ends near the limit, not after the render.
    const MARGIN: Duration = Duration::from_millis(800);

    fn limits(timeout: Duration, max_output: usize) -> RenderLimits {
        RenderLimits {
            timeout,
            max_output,
        }
    }

    /// A compiler with two helpers that only tests have: `block_for(ms=N)`
    /// sleeps without checking any limit, standing in for a loop that calls
    /// nothing, and `boom()` panics.
    fn compiler() -> TemplateCompiler {
        let mut compiler = TemplateCompiler::new();
        compiler.prototype.register_function(
            "block_for",
            |kwargs: tera::Kwargs, _: &tera::State| {
                let ms = kwargs.must_get::<u64>("ms")?;
                std::thread::sleep(Duration::from_millis(ms));
                Ok::<_, tera::Error>(String::new())
            },
        );
        compiler
            .prototype
            .register_function("boom", |_: tera::Kwargs, _: &tera::State| -> String {
                panic!("boom")
            });
        compiler
    }

    fn template(source: &str) -> Template {
        match compiler().compile("templates/x.tmpl", source) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn view(pairs: &[(&str, &str)]) -> View {
        let snapshot = Arc::new(Snapshot::from_pairs(pairs.iter().copied()));
        View::new(snapshot, "/", &["/".to_string()])
    }

    fn limit_of(rendered: &Rendered) -> Option<LimitExceeded> {
        match &rendered.text {
            Err(TemplateError::Limit { exceeded, .. }) => Some(*exceeded),
            _ => None,
        }
    }

    async fn wait_until_none_stuck(renderer: &Renderer, within: Duration) {
        let until = Instant::now() + within;
        while renderer.stuck.count() > 0 {
            assert!(Instant::now() < until, "a render is still stuck");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    const NESTED: &str = "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{{ j }},{% endfor %}{% endfor %}";

    #[test]
    fn what_moves_to_a_render_thread_is_send() {
        fn send<T: Send + 'static>(_: &T) {}
        let t = template("x");
        let future = render_bounded(t.clone(), view(&[]), Arc::default(), limits(SHORT, 10));
        // The engine may spawn the future itself onto its runtime.
        send(&future);
        send(&t);
        send(&view(&[]));
        send(&Arc::<ServiceData>::default());
    }

    #[tokio::test]
    async fn nested_loops_time_out_while_the_runtime_stays_responsive() {
        let renderer = Renderer::new(2, KEEP_ALIVE);
        let start = Instant::now();
        // One runtime thread: were the render on it, the timer could not fire
        // before the render returned.
        let (rendered, timer_fired) = tokio::join!(
            async {
                let r = renderer
                    .render(
                        template(NESTED),
                        view(&[]),
                        Arc::default(),
                        limits(SHORT, 1 << 30),
                    )
                    .await;
                (r, start.elapsed())
            },
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                start.elapsed()
            }
        );
        let (rendered, returned) = rendered;
        assert_eq!(limit_of(&rendered), Some(LimitExceeded::Timeout(SHORT)));
        let message = rendered
            .text
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            message,
            "templates/x.tmpl: render did not finish within 200ms (render_timeout); dest left as it is"
        );
        assert!(returned >= SHORT, "{returned:?}");
        assert!(returned < SHORT + MARGIN, "{returned:?}");
        assert!(timer_fired < returned, "{timer_fired:?} {returned:?}");
        assert!(timer_fired < SHORT, "{timer_fired:?}");
        // The loop calls range and writes: it stopped, nothing is stuck.
        assert_eq!(renderer.stuck.count(), 0);
    }

    #[tokio::test]
    async fn huge_output_fails_at_the_cap() {
        let renderer = Renderer::new(2, KEEP_ALIVE);
        let cap = 1 << 20;
        let source = "{% for i in range(end=100000) %}{% for j in range(end=100000) %}0123456789abcdef{% endfor %}{% endfor %}";
        let start = Instant::now();
        let rendered = renderer
            .render(
                template(source),
                view(&[]),
                Arc::default(),
                limits(Duration::from_secs(30), cap),
            )
            .await;
        assert_eq!(limit_of(&rendered), Some(LimitExceeded::Output(cap)));
        let message = rendered
            .text
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            message,
            "templates/x.tmpl: rendered more than 1 MiB (max_output_size); dest left as it is"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_normal_render_gives_the_bytes_of_render_with() {
        let renderer = Renderer::new(2, KEEP_ALIVE);
        let source = "{% for d in lsdir(key=\"/services/web\") %}\nbackend {{ d }}_cluster\n{% for h in lsdir(key=\"/services/web/\" ~ d) %}\n    server {{ h | base }} {{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/ip\") }}:{{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/port\") }} check\n{% endfor %}{% endfor %}\n{% for s in service(name=\"web\") %}{{ s.address }}:{{ s.port }}\n{% endfor %}é{{ range(end=3) | join(sep=\",\") }}";
        let pairs = [
            ("/services/web/a.com/h1/ip", "10.0.0.1"),
            ("/services/web/a.com/h1/port", "80"),
            ("/services/web/b.com/h2/ip", "10.0.0.2"),
            ("/services/web/b.com/h2/port", "81"),
        ];
        let query = ServiceQuery {
            name: "web".to_string(),
            tag: None,
            passing: true,
        };
        let mut services = ServiceData::default();
        services.insert(
            query.clone(),
            vec![Instance {
                id: "web-1".to_string(),
                name: "web".to_string(),
                node: "n1".to_string(),
                address: "10.1.1.1".to_string(),
                port: 8080,
                tags: Vec::new(),
                meta: Default::default(),
                status: "passing".to_string(),
            }],
        );
        let services = Arc::new(services);
        let t = template(source);
        let expected = t.render_with(view(&pairs), services.clone());
        let bounded = renderer
            .render(
                t.clone(),
                view(&pairs),
                services.clone(),
                RenderLimits::default(),
            )
            .await;
        let limited = t.render_limited(view(&pairs), services, RenderLimits::default());
        let text = |r: &Rendered| match &r.text {
            Ok(text) => text.clone(),
            Err(e) => panic!("{e}"),
        };
        assert!(
            text(&expected).contains("10.1.1.1:8080\né0,1,2"),
            "{}",
            text(&expected)
        );
        assert_eq!(text(&bounded).as_bytes(), text(&expected).as_bytes());
        assert_eq!(text(&limited).as_bytes(), text(&expected).as_bytes());
        assert_eq!(bounded.services_asked, vec![query.clone()]);
        assert_eq!(limited.services_asked, vec![query]);
        // Errors other than limits read as before.
        let missing = template("{{ getv(key=\"/nope\") }}");
        let a = missing.render_with(view(&[]), Arc::default());
        let b = renderer
            .render(missing, view(&[]), Arc::default(), RenderLimits::default())
            .await;
        assert_eq!(
            a.text.err().map(|e| e.to_string()),
            b.text.err().map(|e| e.to_string())
        );
    }

    #[tokio::test]
    async fn a_render_that_cannot_be_stopped_is_counted_and_refused_again() {
        let renderer = Renderer::new(1, KEEP_ALIVE);
        let blocked = template("{{ block_for(ms=700) }}done");
        let start = Instant::now();
        let rendered = renderer
            .render(
                blocked.clone(),
                view(&[]),
                Arc::default(),
                limits(Duration::from_millis(100), 1024),
            )
            .await;
        let returned = start.elapsed();
        assert_eq!(
            limit_of(&rendered),
            Some(LimitExceeded::Timeout(Duration::from_millis(100)))
        );
        assert!(
            returned < Duration::from_millis(100) + MARGIN,
            "{returned:?}"
        );
        assert_eq!(renderer.stuck.count(), 1);

        // The same template is refused at once while its render is stuck…
        let again = renderer
            .render(
                blocked.clone(),
                view(&[]),
                Arc::default(),
                RenderLimits::default(),
            )
            .await;
        assert_eq!(limit_of(&again), Some(LimitExceeded::StillRunning));
        let message = again.text.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("templates/x.tmpl: an earlier render"),
            "{message}"
        );
        // …and, with one stuck render the most allowed here, so is any other.
        let other = renderer
            .render(
                template("fine"),
                view(&[]),
                Arc::default(),
                RenderLimits::default(),
            )
            .await;
        assert_eq!(limit_of(&other), Some(LimitExceeded::TooManyStuck(1)));

        // Once the stuck thread ends, renders start again.
        wait_until_none_stuck(&renderer, Duration::from_secs(5)).await;
        let later = renderer
            .render(
                blocked,
                view(&[]),
                Arc::default(),
                limits(Duration::from_secs(10), 1024),
            )
            .await;
        assert_eq!(later.text.ok().as_deref(), Some("done"));
    }

    #[tokio::test]
    async fn other_templates_render_beside_a_stuck_one() {
        let renderer = Renderer::new(2, KEEP_ALIVE);
        let blocked = template("{{ block_for(ms=500) }}");
        let rendered = renderer
            .render(
                blocked,
                view(&[]),
                Arc::default(),
                limits(Duration::from_millis(50), 1024),
            )
            .await;
        assert!(limit_of(&rendered).is_some());
        assert_eq!(renderer.stuck.count(), 1);
        let other = renderer
            .render(
                template("fine"),
                view(&[]),
                Arc::default(),
                RenderLimits::default(),
            )
            .await;
        assert_eq!(other.text.ok().as_deref(), Some("fine"));
        wait_until_none_stuck(&renderer, Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn dropping_the_future_stops_the_render() {
        let renderer = Renderer::new(2, KEEP_ALIVE);
        let waited = tokio::time::timeout(
            Duration::from_millis(50),
            renderer.render(
                template(NESTED),
                view(&[]),
                Arc::default(),
                limits(Duration::from_secs(60), 1 << 30),
            ),
        )
        .await;
        assert!(waited.is_err());
        // Abandoned when dropped, then gone at its next check.
        wait_until_none_stuck(&renderer, Duration::from_secs(2)).await;
    }

    #[tokio::test]
    async fn a_panicking_render_fails_alone() {
        let renderer = Renderer::new(2, KEEP_ALIVE);
        let rendered = renderer
            .render(
                template("{{ boom() }}"),
                view(&[]),
                Arc::default(),
                RenderLimits::default(),
            )
            .await;
        let message = rendered
            .text
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(message, "templates/x.tmpl: the render panicked");
        let next = renderer
            .render(
                template("ok"),
                view(&[]),
                Arc::default(),
                RenderLimits::default(),
            )
            .await;
        assert_eq!(next.text.ok().as_deref(), Some("ok"));
    }

    #[test]
    fn limited_render_on_the_calling_thread_stops_itself() {
        let start = Instant::now();
        let rendered =
            template(NESTED).render_limited(view(&[]), Arc::default(), limits(SHORT, 1 << 30));
        assert_eq!(limit_of(&rendered), Some(LimitExceeded::Timeout(SHORT)));
        assert!(start.elapsed() < SHORT + MARGIN, "{:?}", start.elapsed());

        let rendered = template(NESTED).render_limited(
            view(&[]),
            Arc::default(),
            limits(Duration::from_secs(30), 4096),
        );
        assert_eq!(limit_of(&rendered), Some(LimitExceeded::Output(4096)));
    }

    #[test]
    fn a_loop_calling_only_helpers_stops_too() {
        // Nothing is written inside the loop: only the helper calls check.
        let source = "{% set r = range(end=100000) %}{% for i in r %}{% for j in r %}{% set x = \"a\" | base %}{% endfor %}{% endfor %}";
        let start = Instant::now();
        let rendered =
            template(source).render_limited(view(&[]), Arc::default(), limits(SHORT, 1024));
        assert_eq!(limit_of(&rendered), Some(LimitExceeded::Timeout(SHORT)));
        assert!(start.elapsed() < SHORT + MARGIN, "{:?}", start.elapsed());
    }

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < until, "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn render_threads_are_reused_then_end_when_idle() {
        let pool = Renderer::new(1, Duration::from_millis(300)).pool;
        let (sender, receiver) = std::sync::mpsc::channel();
        let send = |sender: std::sync::mpsc::Sender<std::thread::ThreadId>| {
            Box::new(move || {
                let _ = sender.send(std::thread::current().id());
            })
        };
        assert!(pool.run(send(sender.clone())).is_ok());
        let first = receiver.recv_timeout(Duration::from_secs(5));
        wait_for("the thread did not go idle", || pool.idle() == 1);
        // Idle, the thread takes the next render instead of a new thread.
        assert!(pool.run(send(sender)).is_ok());
        let second = receiver.recv_timeout(Duration::from_secs(5));
        assert!(first.is_ok());
        assert_eq!(first, second);
        // Without work it ends: its pool loses its only other owner.
        wait_for("the idle thread did not end", || {
            Arc::strong_count(&pool) == 1 && pool.idle() == 0
        });
    }
}
