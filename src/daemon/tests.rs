//! The daemon's timing and control rules, run on tokio's paused clock
//! against the in-memory backend: seconds of daemon time take milliseconds,
//! and every assertion is about what the daemon did (its pass reports, the
//! files, the backend's read count), not about how long the machine took.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Control, Rebuild, run};
use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, BackendConfig};
use crate::engine::{Engine, Outcome, PassReport, Step};
use crate::error::ConfigError;
use crate::setup::Setup;
use crate::sync::SyncOptions;

/// A confdir, a backend and the daemon's controls and reports.
pub(super) struct Harness {
    dir: tempfile::TempDir,
    pub(super) backend: Arc<MemoryBackend>,
    pub(super) controls: mpsc::UnboundedSender<Control>,
    reports: mpsc::UnboundedReceiver<PassReport>,
}

/// Longest (virtual) time a test waits for a report it expects.
const EXPECT_WITHIN: Duration = Duration::from_secs(60);

fn confdir(dir: &Path) -> PathBuf {
    dir.join("confdir")
}

impl Harness {
    fn dest(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(super) fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dest(name)).unwrap_or_default()
    }

    /// Adds a resource rendering `getv` of each key of `/app` as `k=v` lines.
    fn add_resource(&self, name: &str, extra: &str) {
        let conf = confdir(self.dir.path());
        let dest = self.dest(name);
        let resource = format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n{extra}",
            dest.display()
        );
        std::fs::write(conf.join("conf.d").join(format!("{name}.toml")), resource)
            .expect("resource");
    }

    /// The next pass report, failing the test after [`EXPECT_WITHIN`].
    pub(super) async fn report(&mut self) -> PassReport {
        match tokio::time::timeout(EXPECT_WITHIN, self.reports.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) => panic!("the daemon stopped"),
            Err(_) => panic!("no pass within {EXPECT_WITHIN:?}"),
        }
    }

    /// Asserts that no pass runs within `quiet`.
    async fn no_report_within(&mut self, quiet: Duration) {
        if let Ok(Some(report)) = tokio::time::timeout(quiet, self.reports.recv()).await {
            panic!("unexpected pass: {report:?}");
        }
    }
}

/// Builds a setup over the in-memory backend, from the confdir as it is now.
fn build(
    dir: &Path,
    backend: &Arc<MemoryBackend>,
    wait: Option<&str>,
) -> Result<Setup, Vec<ConfigError>> {
    let mut args = vec![
        "confd".to_string(),
        "-backend".into(),
        "env".into(),
        "-watch".into(),
        "-confdir".into(),
        confdir(dir).display().to_string(),
        "-config-file".into(),
        dir.join("confd.toml").display().to_string(),
    ];
    if let Some(wait) = wait {
        args.extend(["-wait".to_string(), wait.to_string()]);
    }
    let flags = crate::cli::parse(args)
        .map_err(|e| vec![ConfigError::setting("args", e.to_string())])?
        .flags;
    let settings = crate::config::resolve(flags.clone()).map_err(|e| vec![e])?;
    let (resources, errors) = crate::resource::load_all(&settings.confdir, &settings.prefix);
    if !errors.is_empty() {
        return Err(errors);
    }
    let backend: Arc<dyn Backend> = backend.clone();
    let engine = Engine::new(resources, backend, SyncOptions::default(), None);
    Ok(Setup {
        flags,
        settings,
        backend_config: BackendConfig::Env,
        engine,
    })
}

/// Starts a watching daemon with one resource (`first`, plus `extra` in its
/// TOML) after writing `/app/a = 1`, and waits for its first pass.
async fn start(extra: &str, wait: Option<&'static str>) -> (Harness, tokio::task::JoinHandle<()>) {
    let (mut harness, daemon) = launch(extra, wait, None);
    let first = harness.report().await;
    assert!(first.all_ok(), "{first:?}");
    assert_eq!(harness.read("first"), "/app/a=1\n");
    (harness, daemon)
}

/// Starts the daemon of [`start`], reporting to `ops`, without waiting.
pub(super) fn launch(
    extra: &str,
    wait: Option<&'static str>,
    ops: Option<crate::ops::Ops>,
) -> (Harness, tokio::task::JoinHandle<()>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = confdir(dir.path());
    std::fs::create_dir_all(conf.join("conf.d")).expect("conf.d");
    std::fs::create_dir_all(conf.join("templates")).expect("templates");
    std::fs::write(dir.path().join("confd.toml"), "").expect("confd.toml");
    std::fs::write(
        conf.join("templates/app.tmpl"),
        "{% for p in gets(key=\"/app/*\") %}{{ p.key }}={{ p.value }}\n{% endfor %}",
    )
    .expect("template");
    let backend = Arc::new(MemoryBackend::default());
    backend.put("/app/a", "1");
    let (controls, control_receiver) = mpsc::unbounded_channel();
    let (observer, reports) = mpsc::unbounded_channel();
    let harness = Harness {
        dir,
        backend,
        controls,
        reports,
    };
    harness.add_resource("first", extra);
    let setup = build(harness.dir.path(), &harness.backend, wait).expect("valid setup");
    let (dir_path, backend) = (harness.dir.path().to_path_buf(), harness.backend.clone());
    let rebuild: Rebuild = Box::new(move |_| build(&dir_path, &backend, wait));
    let daemon =
        tokio::task::spawn_local(run(setup, rebuild, control_receiver, Some(observer), ops));
    (harness, daemon)
}

fn outcomes(report: &PassReport) -> Vec<(&str, &Outcome)> {
    report
        .outcomes
        .iter()
        .map(|(n, o)| (n.as_str(), o))
        .collect()
}

/// Runs a test body on a paused clock in a local task set (the daemon is
/// not `Send`: its rebuild closure need not be).
pub(super) fn paused(body: impl std::future::Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    tokio::task::LocalSet::new().block_on(&runtime, body);
}

#[test]
fn a_change_renders_at_once_from_the_watch_without_a_read() {
    paused(async {
        let (mut h, daemon) = start("", None).await;
        // Past the gap after the first pass's render (a change closer to a
        // render waits for quiet: see the schedule).
        tokio::time::sleep(super::schedule::MIN_RENDER_GAP).await;
        let reads = h.backend.reads();
        let before = Instant::now();
        h.backend.put("/app/b", "2");
        let report = h.report().await;
        assert_eq!(outcomes(&report), vec![("first.toml", &Outcome::Updated)]);
        assert!(
            before.elapsed() < Duration::from_millis(10),
            "rendered after {:?}",
            before.elapsed()
        );
        assert_eq!(h.read("first"), "/app/a=1\n/app/b=2\n");
        assert_eq!(
            h.backend.reads(),
            reads,
            "the change came from the watch event"
        );
        h.controls.send(Control::Stop).expect("send");
        assert!(daemon.await.is_ok());
    });
}

#[test]
fn a_change_every_200_ms_renders_each_at_once() {
    paused(async {
        let (mut h, _daemon) = start("", None).await;
        // Well after the first pass, so the first change is not near a render.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for i in 0..10 {
            let before = Instant::now();
            h.backend.put("/app/a", &format!("v{i}"));
            h.report().await;
            let took = before.elapsed();
            assert!(
                took < Duration::from_millis(10),
                "change {i} rendered after {took:?}"
            );
            assert_eq!(h.read("first"), format!("/app/a=v{i}\n"));
            tokio::time::sleep(Duration::from_millis(200) - took).await;
        }
    });
}

#[test]
fn a_write_that_changes_nothing_renders_nothing() {
    paused(async {
        let (mut h, _daemon) = start("", None).await;
        h.backend.put("/app/a", "1");
        h.no_report_within(Duration::from_secs(30)).await;
        h.backend.put("/app/a", "3");
        assert!(h.report().await.all_ok());
        assert_eq!(h.read("first"), "/app/a=3\n");
    });
}

#[test]
fn a_burst_of_500_writes_gives_a_few_renders_and_the_last_value() {
    paused(async {
        let (mut h, _daemon) = start("", None).await;
        let started = Instant::now();
        for i in 0..500 {
            h.backend.put("/app/a", &i.to_string());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut passes = 0;
        while h.read("first") != "/app/a=499\n" {
            h.report().await;
            passes += 1;
        }
        // One at the first change (leading edge), then one per BURST_MAX (2 s)
        // of a 5 s burst, and one once it is quiet.
        assert!(passes <= 5, "{passes} passes for one burst");
        assert!(started.elapsed() < Duration::from_secs(6));
        h.no_report_within(Duration::from_secs(10)).await;
    });
}

#[test]
fn wait_min_max_renders_once_quiet_for_min() {
    paused(async {
        let (mut h, _daemon) = start("", Some("1s:4s")).await;
        let changed = Instant::now();
        h.backend.put("/app/a", "2");
        tokio::time::sleep(Duration::from_millis(600)).await;
        h.backend.put("/app/a", "3");
        h.report().await;
        let waited = changed.elapsed();
        assert!(
            waited >= Duration::from_millis(1600) && waited < Duration::from_millis(1700),
            "rendered {waited:?} after the first change"
        );
        assert_eq!(h.read("first"), "/app/a=3\n");
    });
}

#[test]
fn a_resource_wait_overrides_the_global_one() {
    paused(async {
        let (mut h, _daemon) = start("wait = \"3s:6s\"\n", Some("100ms:1s")).await;
        let changed = Instant::now();
        h.backend.put("/app/a", "2");
        h.report().await;
        assert!(changed.elapsed() >= Duration::from_secs(3));
    });
}

#[test]
fn max_shrink_refuses_a_collapse_and_keeps_the_file() {
    paused(async {
        let (mut h, _daemon) = start("max_shrink = \"50%\"\n", None).await;
        for k in ["b", "c", "d"] {
            h.backend.put(&format!("/app/{k}"), "x");
        }
        while !h.read("first").contains("/app/d") {
            h.report().await;
        }
        let good = h.read("first");
        for k in ["a", "b", "c"] {
            h.backend.delete(&format!("/app/{k}"));
        }
        let report = h.report().await;
        let (_, failure) = report.failures().next().expect("a refusal");
        assert_eq!(failure.step, Step::Guard);
        assert!(
            failure.message.contains("max_shrink"),
            "{}",
            failure.message
        );
        assert_eq!(h.read("first"), good, "dest left as it was");
    });
}

#[test]
fn lost_history_makes_the_daemon_read_the_prefix_again() {
    paused(async {
        let (mut h, _daemon) = start("", None).await;
        let reads = h.backend.reads();
        // The history is compacted before the watch sees the write: it
        // cannot say what changed, and must make the daemon read again.
        h.backend.put("/app/a", "9");
        h.backend.compact();
        while h.read("first") != "/app/a=9\n" {
            h.report().await;
        }
        assert!(h.backend.reads() > reads, "the prefix was read again");
    });
}

#[test]
fn a_backend_outage_is_retried_and_caught_up_after_its_return() {
    paused(async {
        let (mut h, _daemon) = start("", None).await;
        h.backend.set_failing(true);
        let report = h.report().await;
        assert_eq!(
            report.failures().next().map(|(_, f)| f.step),
            Some(Step::Backend)
        );
        h.backend.put("/app/a", "2");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(h.read("first"), "/app/a=1\n", "dest kept during the outage");
        h.backend.set_failing(false);
        let back = Instant::now();
        while h.read("first") != "/app/a=2\n" {
            h.report().await;
        }
        assert!(
            back.elapsed() < Duration::from_millis(1300),
            "caught up after {:?}",
            back.elapsed()
        );
    });
}

#[test]
fn a_watch_worker_that_panics_is_restarted() {
    paused(async {
        let (mut h, _daemon) = start("", None).await;
        h.backend.panic_next_watch();
        tokio::time::sleep(Duration::from_millis(10)).await;
        h.backend.put("/app/a", "2");
        let report = h.report().await;
        assert!(report.all_ok());
        assert_eq!(h.read("first"), "/app/a=2\n");
        // And it keeps working afterwards.
        h.backend.put("/app/a", "3");
        h.report().await;
        assert_eq!(h.read("first"), "/app/a=3\n");
    });
}

#[test]
fn sighup_applies_new_resources_and_keeps_the_running_ones_on_bad_config() {
    paused(async {
        let (mut h, _daemon) = start("", None).await;
        h.add_resource("second", "");
        h.controls.send(Control::Reload).expect("send");
        let report = h.report().await;
        assert_eq!(report.outcomes.len(), 2, "{report:?}");
        assert_eq!(h.read("second"), "/app/a=1\n");

        // A broken resource file: the whole new configuration is refused.
        let conf_d = confdir(h.dir.path()).join("conf.d");
        std::fs::write(conf_d.join("third.toml"), "[template]\nsrc = 1\n").expect("write");
        h.controls.send(Control::Reload).expect("send");
        h.no_report_within(Duration::from_secs(5)).await;
        h.backend.put("/app/a", "2");
        let report = h.report().await;
        assert_eq!(
            report.outcomes.len(),
            2,
            "the running configuration goes on"
        );
        assert_eq!(h.read("first"), "/app/a=2\n");
        assert_eq!(h.read("second"), "/app/a=2\n");
    });
}

#[test]
fn stop_ends_the_daemon() {
    paused(async {
        let (h, daemon) = start("", None).await;
        h.controls.send(Control::Stop).expect("send");
        let status = tokio::time::timeout(Duration::from_secs(5), daemon).await;
        assert!(matches!(status, Ok(Ok(()))), "{status:?}");
    });
}
