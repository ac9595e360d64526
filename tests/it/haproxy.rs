//! The seed scenario end to end, with real traffic: etcd (v2 API) → `confd
//! -watch` → a real HAProxy in master-worker mode → HTTP upstreams, every
//! request sent through HAProxy with a `Host` header.
//!
//! confd runs the shipped example confdir `examples/haproxy-etcd/confd` in a
//! scratch directory: dest `haproxy.cfg`, `check_cmd = "haproxy -c -f
//! {{.src}}"`, `reload_cmd = 'kill -USR2 "$(cat haproxy.pid)"'` (a graceful
//! master-worker reload). HAProxy starts first on a bootstrap configuration
//! (503 for everything) and confd takes over at its first render.
//!
//! Each test has its own etcd, HAProxy, confd and upstreams on free 127.0.0.1
//! ports; every wait is bounded, and everything is stopped on drop, also when
//! a test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::confd::{Confd, STOP_LIMIT};
use crate::common::etcd::Etcd;
use crate::common::free_port;
use crate::common::haproxy::{Hammer, Haproxy, Upstream, batch, wait_for_batch};

/// How long a change in etcd may take to show in the traffic (watch, render,
/// check, rename, reload).
const CHANGE_LIMIT: Duration = Duration::from_secs(15);

/// One scenario: dropped in field order after confd has been stopped.
struct Stack {
    confd: Option<Confd>,
    haproxy: Haproxy,
    upstreams: BTreeMap<String, Upstream>,
    etcd: Etcd,
    dir: tempfile::TempDir,
    port: u16,
}

impl Stack {
    /// etcd holding `/haproxy/port` and one upstream per `(domain, host)`,
    /// HAProxy on its bootstrap configuration, then `confd -watch`; returns
    /// once HAProxy routes every domain to all of its hosts.
    fn start(servers: &[(&str, &[&str])]) -> Stack {
        let dir = tempfile::tempdir().expect("scratch dir");
        let etcd = Etcd::start();
        let port = free_port();
        etcd.put_v2("/haproxy/port", &port.to_string());
        let haproxy = Haproxy::start_bootstrap(dir.path(), port);
        let mut stack = Stack {
            confd: None,
            haproxy,
            upstreams: BTreeMap::new(),
            etcd,
            dir,
            port,
        };
        for (domain, hosts) in servers {
            for host in *hosts {
                stack.add_host(domain, host);
            }
        }
        stack.confd = Some(stack.spawn_confd());
        for (domain, hosts) in servers {
            stack.wait_for_names(domain, hosts);
        }
        stack
    }

    fn spawn_confd(&self) -> Confd {
        let mut command = Command::new(crate::common::confd_bin());
        command
            .args(["-backend", "etcd", "-node", &self.etcd.url(), "-confdir"])
            .arg(confdir())
            .arg("-watch")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CONFD_") {
                command.env_remove(name);
            }
        }
        Confd::spawn_command(command, self.dir.path())
    }

    /// Everything confd logged so far.
    fn confd_log(&self) -> String {
        self.confd.as_ref().map(Confd::stderr).unwrap_or_default()
    }

    fn config(&self) -> Vec<u8> {
        fs::read(self.dir.path().join("haproxy.cfg")).expect("haproxy.cfg")
    }

    /// Everything needed to understand a failure.
    fn report(&self) -> String {
        self.haproxy.report(&self.confd_log())
    }

    /// Starts an upstream named `host` and registers it in etcd under
    /// `/services/web/<domain>/<host>/{ip,port}`.
    fn add_host(&mut self, domain: &str, host: &str) {
        let upstream = Upstream::start(host);
        let at = format!("/services/web/{domain}/{host}");
        self.etcd.put_v2(&format!("{at}/ip"), "127.0.0.1");
        self.etcd
            .put_v2(&format!("{at}/port"), &upstream.port().to_string());
        self.upstreams.insert(host.to_string(), upstream);
    }

    /// Removes `host` from etcd; its upstream keeps running (and would answer
    /// if HAProxy still sent it anything).
    fn remove_host(&self, domain: &str, host: &str) {
        self.etcd
            .delete_v2(&format!("/services/web/{domain}/{host}"));
    }

    /// `n` requests through HAProxy with `Host: host`: the upstream names that
    /// answered, or `HTTP <status>` / `error: …` for anything else.
    fn batch(&self, host: &str, n: usize) -> Vec<String> {
        batch(self.port, host, n)
    }

    /// Sends batches of 9 requests until one is answered by exactly the
    /// upstreams `names`, all of them; panics past [`CHANGE_LIMIT`]. Returns
    /// how long it took.
    fn wait_for_names(&self, host: &str, names: &[&str]) -> Duration {
        let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        self.wait_for(host, &format!("exactly {want:?}"), |batch| {
            seen(batch) == want
        })
    }

    /// Sends batches of 9 requests with `Host: host` until `done` accepts
    /// one; panics past [`CHANGE_LIMIT`]. Returns how long it took.
    fn wait_for(&self, host: &str, what: &str, done: impl FnMut(&[String]) -> bool) -> Duration {
        wait_for_batch(self.port, host, CHANGE_LIMIT, done).unwrap_or_else(|batch| {
            panic!(
                "Host {host}: not answered by {what} within {CHANGE_LIMIT:?}; last batch {batch:?}\n{}",
                self.report()
            )
        })
    }

    /// Polls the confd log until it contains `needle`; panics past
    /// [`CHANGE_LIMIT`].
    fn wait_for_log(&self, needle: &str) -> String {
        let found = crate::common::wait_until(CHANGE_LIMIT, || self.confd_log().contains(needle));
        assert!(
            found,
            "confd did not log {needle:?} within {CHANGE_LIMIT:?}\n{}",
            self.report()
        );
        self.confd_log()
    }

    fn upstream(&self, name: &str) -> &Upstream {
        &self.upstreams[name]
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // confd first, so that it reloads nothing that is going away.
        if let Some(confd) = self.confd.take() {
            confd.terminate(STOP_LIMIT);
        }
        // Then haproxy, the upstreams, etcd and the directory, in field order.
    }
}

/// The example confdir the tests run.
fn confdir() -> PathBuf {
    crate::common::repo_root().join("examples/haproxy-etcd/confd")
}

fn seen(batch: &[String]) -> BTreeSet<String> {
    batch.iter().cloned().collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn round_robin_spreads_requests_over_every_registered_server() {
    let stack = Stack::start(&[("a.example.com", &["h1", "h2", "h3"])]);
    // Steady state: 9 requests in a row reach all three servers.
    for _ in 0..3 {
        let batch = stack.batch("a.example.com", 9);
        assert_eq!(seen(&batch), names(&["h1", "h2", "h3"]), "{batch:?}");
    }
    let config = String::from_utf8(stack.config()).expect("utf-8");
    assert!(config.contains("    balance roundrobin\n"), "{config}");
    for name in ["h1", "h2", "h3"] {
        let port = stack.upstream(name).port();
        assert!(
            config.contains(&format!("    server {name} 127.0.0.1:{port} check\n")),
            "{config}"
        );
    }
    // The bootstrap load plus exactly one reload by confd's first render.
    assert_eq!(stack.haproxy.loads(), 2, "{}", stack.report());
}

#[test]
fn a_server_added_in_etcd_starts_receiving_requests() {
    let mut stack = Stack::start(&[("a.example.com", &["h1", "h2"])]);
    let loads = stack.haproxy.loads();

    // Requests keep flowing while the change is applied: the reload must not
    // drop the listener nor fail a request.
    let hammer = Hammer::start(stack.port, "a.example.com", &["h1", "h2", "h3"]);

    stack.add_host("a.example.com", "h3");
    let took = stack.wait_for("a.example.com", "h3 among others", |b| {
        b.iter().any(|n| n == "h3")
    });
    eprintln!("h3 received requests {took:?} after it was written to etcd");
    stack.wait_for_names("a.example.com", &["h1", "h2", "h3"]);
    let (sent, failures) = hammer.stop();

    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed during the reload: {failures:?}\n{}",
        failures.len(),
        stack.report()
    );
    assert!(sent > 0, "no request was sent during the reload");
    assert!(stack.haproxy.loads() > loads, "{}", stack.report());
    assert!(stack.upstream("h3").hits() > 0);
    eprintln!("{sent} requests during the change, none failed");
}

#[test]
fn a_server_removed_from_etcd_stops_receiving_requests() {
    let stack = Stack::start(&[("a.example.com", &["h1", "h2", "h3"])]);

    stack.remove_host("a.example.com", "h2");
    let took = stack.wait_for("a.example.com", "h1 and h3 only", |b| {
        seen(b) == names(&["h1", "h3"])
    });
    eprintln!("h2 stopped receiving requests {took:?} after it was deleted from etcd");

    // h2 is still up and would answer: it simply gets nothing any more.
    let hits = stack.upstream("h2").hits();
    for _ in 0..3 {
        let batch = stack.batch("a.example.com", 9);
        assert_eq!(seen(&batch), names(&["h1", "h3"]), "{batch:?}");
    }
    assert_eq!(stack.upstream("h2").hits(), hits, "h2 still got requests");
    let config = String::from_utf8(stack.config()).expect("utf-8");
    assert!(!config.contains("server h2 "), "{config}");
    assert!(config.contains("server h1 ") && config.contains("server h3 "));
}

#[test]
fn a_rejected_configuration_leaves_haproxy_serving_the_previous_one() {
    let mut stack = Stack::start(&[("a.example.com", &["h1", "h2", "h3"])]);
    let before = stack.config();
    let loads = stack.haproxy.loads();

    // Renders `server h1 127.0.0.1:notaport check`, which `haproxy -c` rejects.
    stack
        .etcd
        .put_v2("/services/web/a.example.com/h1/port", "notaport");
    let log = stack.wait_for_log("check_cmd rejected");
    let line = log
        .lines()
        .find(|l| l.contains("check_cmd rejected"))
        .expect("the line");
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("haproxy.toml"), "{line}");
    // HAProxy's own complaint is in the log.
    assert!(
        line.contains("invalid character 'n' in port number 'notaport'"),
        "{line}"
    );

    assert_eq!(
        stack.config(),
        before,
        "haproxy.cfg changed\n{}",
        stack.report()
    );
    let leftovers: Vec<String> = fs::read_dir(stack.dir.path())
        .expect("scratch dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".stage"))
        .collect();
    assert!(leftovers.is_empty(), "stage files left: {leftovers:?}");
    assert!(stack.haproxy.is_running(), "{}", stack.report());
    assert_eq!(stack.haproxy.loads(), loads, "HAProxy was reloaded");
    for _ in 0..2 {
        let batch = stack.batch("a.example.com", 9);
        assert_eq!(seen(&batch), names(&["h1", "h2", "h3"]), "{batch:?}");
    }

    // Once the data is good again, changes flow as before.
    let h1 = stack.upstream("h1").port().to_string();
    stack
        .etcd
        .put_v2("/services/web/a.example.com/h1/port", &h1);
    stack.add_host("a.example.com", "h4");
    stack.wait_for_names("a.example.com", &["h1", "h2", "h3", "h4"]);
}

#[test]
fn each_domain_routes_by_host_header_to_its_own_backend() {
    let mut stack = Stack::start(&[("a.example.com", &["h1", "h2"]), ("b.example.com", &["b1"])]);
    for _ in 0..2 {
        let a = stack.batch("a.example.com", 9);
        assert_eq!(seen(&a), names(&["h1", "h2"]), "{a:?}");
        let b = stack.batch("b.example.com", 9);
        assert_eq!(seen(&b), names(&["b1"]), "{b:?}");
    }
    // `hdr(host) -i`: the Host header matches whatever its case.
    let b = stack.batch("B.Example.COM", 3);
    assert_eq!(seen(&b), names(&["b1"]), "{b:?}");
    // No domain, no backend: HAProxy answers 503.
    let other = stack.batch("c.example.com", 3);
    assert_eq!(seen(&other), names(&["HTTP 503"]), "{other:?}");

    // A domain added at run time gets its own backend too.
    stack.add_host("c.example.com", "c1");
    let took = stack.wait_for_names("c.example.com", &["c1"]);
    eprintln!("c.example.com routed {took:?} after it was written to etcd");
    let a = stack.batch("a.example.com", 9);
    assert_eq!(seen(&a), names(&["h1", "h2"]), "{a:?}");
    let b = stack.batch("b.example.com", 9);
    assert_eq!(seen(&b), names(&["b1"]), "{b:?}");
}
