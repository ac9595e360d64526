//! The membership scenario (Serf members → HAProxy, done with confd) end to
//! end, with real traffic: web hosts keep `/members/<host>` alive in a real
//! etcd (v2 API) with `confd announce`; `confd -watch` renders HAProxy's
//! pool from `/members` with the shipped confdir
//! `examples/membership-etcd/confd`, which `examples/membership-etcd/run.sh`
//! also runs. A host that joins gets traffic; one that stops cleanly leaves
//! at once; one that dies, or whose health check fails, leaves when its TTL
//! expires; one whose check passes again is back at once.
//!
//! Everything runs on free 127.0.0.1 ports in a scratch directory; every wait
//! is bounded, and everything is stopped on drop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::confd::{Confd, STOP_LIMIT};
use crate::common::etcd::Etcd;
use crate::common::haproxy::{Haproxy, Upstream, wait_for_batch};
use crate::common::{free_port, poll_file, repo_root};

/// The hosts' TTL.
const TTL: Duration = Duration::from_secs(3);
/// How long a membership change may take to show in the traffic (announce,
/// watch, render, check, rename, reload).
const CHANGE_LIMIT: Duration = Duration::from_secs(15);

/// One web host: its server and its announcer.
struct Host {
    announcer: Option<Confd>,
    upstream: Upstream,
}

/// The whole scenario; confd and the announcers stop first.
struct Cluster {
    confd: Option<Confd>,
    hosts: BTreeMap<String, Host>,
    haproxy: Haproxy,
    etcd: Etcd,
    dir: tempfile::TempDir,
    port: u16,
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(crate::common::confd_bin());
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CONFD_") {
            command.env_remove(name);
        }
    }
    command
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("scratch dir");
        let etcd = Etcd::start();
        let port = free_port();
        etcd.put_v2("/haproxy/port", &port.to_string());
        let haproxy = Haproxy::start_bootstrap(dir.path(), port);
        let confdir: PathBuf = repo_root().join("examples/membership-etcd/confd");
        let confdir = confdir.display().to_string();
        let node = etcd.url();
        let args = [
            "-backend", "etcd", "-node", &node, "-confdir", &confdir, "-watch",
        ];
        let confd = Confd::spawn_command(command(dir.path(), &args), dir.path());
        Cluster {
            confd: Some(confd),
            hosts: BTreeMap::new(),
            haproxy,
            etcd,
            dir,
            port,
        }
    }

    fn health_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.up"))
    }

    /// Starts host `name`: its server, and `confd announce` with a check
    /// that passes while `<name>.up` exists.
    fn join(&mut self, name: &str) {
        let upstream = Upstream::start(name);
        std::fs::write(self.health_file(name), "").expect("health file");
        let check = format!("test -e '{}'", self.health_file(name).display());
        let (key, value) = (
            format!("/members/{name}"),
            format!("127.0.0.1:{}", upstream.port()),
        );
        let (node, ttl) = (self.etcd.url(), format!("{}s", TTL.as_secs()));
        let args = [
            "announce",
            "-backend",
            "etcd",
            "-node",
            &node,
            "-key",
            &key,
            "-value",
            &value,
            "-ttl",
            &ttl,
            "-check-cmd",
            &check,
            "-check-interval",
            "500ms",
        ];
        let announcer = Confd::spawn_command(command(self.dir.path(), &args), self.dir.path());
        let host = Host {
            announcer: Some(announcer),
            upstream,
        };
        self.hosts.insert(name.to_string(), host);
    }

    fn report(&self) -> String {
        let mut report = self
            .haproxy
            .report(&self.confd.as_ref().map(Confd::stderr).unwrap_or_default());
        for (name, host) in &self.hosts {
            if let Some(announcer) = &host.announcer {
                report.push_str(&format!("\n--- {name} announce\n{}", announcer.stderr()));
            }
        }
        report
    }

    /// Waits until the traffic is answered by exactly `names`.
    fn expect_pool(&self, names: &[&str]) -> Duration {
        let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        wait_for_batch(self.port, "members.example", CHANGE_LIMIT, |batch| {
            batch.iter().cloned().collect::<BTreeSet<_>>() == want
        })
        .unwrap_or_else(|batch| {
            panic!(
                "the pool is not {want:?} within {CHANGE_LIMIT:?}: {batch:?}\n{}",
                self.report()
            )
        })
    }

    /// Waits until haproxy.cfg has no `server <name>` line; returns when.
    fn expect_left(&self, name: &str, limit: Duration) -> Duration {
        let line = format!("    server {name} ");
        poll_file(&self.dir.path().join("haproxy.cfg"), limit, |t| {
            !t.contains(&line)
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} still in haproxy.cfg after {limit:?}\n{}",
                self.report()
            )
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(confd) = self.confd.take() {
            confd.terminate(STOP_LIMIT);
        }
        for host in self.hosts.values_mut() {
            if let Some(announcer) = host.announcer.take() {
                announcer.terminate(STOP_LIMIT);
            }
        }
    }
}

#[test]
fn hosts_join_leave_cleanly_die_and_fail_their_checks_under_real_traffic() {
    let mut cluster = Cluster::start();
    for name in ["web1", "web2", "web3"] {
        cluster.join(name);
    }
    cluster.expect_pool(&["web1", "web2", "web3"]);

    // A host that joins gets traffic.
    cluster.join("web4");
    let took = cluster.expect_pool(&["web1", "web2", "web3", "web4"]);
    eprintln!("web4 joined in {took:?}");

    // A clean stop leaves at once: well within the TTL.
    let stopping = Instant::now();
    let announcer = cluster
        .hosts
        .get_mut("web1")
        .and_then(|h| h.announcer.take());
    let status = announcer.expect("web1's announcer").terminate(STOP_LIMIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let left = cluster.expect_left("web1", CHANGE_LIMIT);
    assert!(
        stopping.elapsed() < TTL,
        "web1 left after {:?}",
        stopping.elapsed()
    );
    cluster.expect_pool(&["web2", "web3", "web4"]);
    eprintln!("web1 (SIGTERM) left after {left:?}");

    // A host that dies leaves when its TTL expires: not before the last
    // refresh's TTL (at least two thirds of it), not much after.
    let killed = Instant::now();
    if let Some(host) = cluster.hosts.get_mut("web2") {
        if let Some(announcer) = host.announcer.as_ref() {
            announcer.signal("KILL");
        }
        host.upstream.stop();
    }
    cluster.expect_left("web2", TTL + Duration::from_secs(5));
    let after = killed.elapsed();
    assert!(
        after >= TTL * 2 / 3 - Duration::from_millis(300),
        "web2 left after {after:?}: before its TTL"
    );
    cluster.expect_pool(&["web3", "web4"]);
    eprintln!("web2 (SIGKILL) left after {after:?} (TTL {TTL:?})");

    // A failing check: it stops refreshing and leaves within its TTL.
    let failing = Instant::now();
    std::fs::remove_file(cluster.health_file("web3")).expect("remove");
    cluster.expect_left("web3", TTL + Duration::from_secs(5));
    let after = failing.elapsed();
    assert!(
        after >= Duration::from_secs(1),
        "web3 left after {after:?}: deleted, not expired"
    );
    cluster.expect_pool(&["web4"]);
    eprintln!("web3 (check failing) left after {after:?}");

    // Passing again: back at once.
    std::fs::write(cluster.health_file("web3"), "").expect("write");
    let took = cluster.expect_pool(&["web3", "web4"]);
    assert!(took < TTL, "web3 came back after {took:?}");
    eprintln!("web3 (check passing) back after {took:?}");
}
