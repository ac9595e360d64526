//! `confd announce` end to end: against a real etcd (v2 TTL keys, v3 leases)
//! and the in-tree Consul API test server (sessions). The key appears with
//! its value, outlives its TTL while refreshed, goes at once on SIGTERM,
//! goes within about one TTL after SIGKILL or while the health check fails
//! (a command testing a file, or a GET of a small HTTP server here), and
//! comes back when the check passes. Bad flags are usage errors (2); a
//! backend that refuses the first write is exit status 1.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::common::confd::Confd;
use crate::common::consul::ConsulServer;
use crate::common::etcd::{Etcd, http};
use crate::common::{Scenario, wait_until};

/// Where an announcement lands, read the way a watcher would.
pub enum Store<'a> {
    V2(&'a Etcd),
    V3(&'a Etcd),
    Consul(&'a ConsulServer),
}

impl Store<'_> {
    fn backend(&self) -> &'static str {
        match self {
            Store::V2(_) => "etcd",
            Store::V3(_) => "etcdv3",
            Store::Consul(_) => "consul",
        }
    }

    fn node(&self) -> String {
        match self {
            Store::V2(e) | Store::V3(e) => e.url(),
            Store::Consul(c) => c.url(),
        }
    }

    /// The value of `key`, if it exists.
    pub fn value(&self, key: &str) -> Option<String> {
        match self {
            Store::V2(etcd) => {
                let (status, text) = http(
                    etcd.client_port(),
                    "GET",
                    &format!("/v2/keys{key}"),
                    None,
                    "",
                )
                .expect("etcd answers");
                if status != 200 {
                    return None;
                }
                let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                json["node"]["value"].as_str().map(str::to_string)
            }
            Store::V3(etcd) => {
                let body = serde_json::json!({ "key": BASE64.encode(key) });
                let text = etcd.post_v3("/v3/kv/range", &body.to_string());
                let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                let value = json["kvs"][0]["value"].as_str()?;
                let bytes = BASE64.decode(value).expect("base64");
                Some(String::from_utf8(bytes).expect("UTF-8"))
            }
            Store::Consul(server) => server.get(key),
        }
    }
}

/// Starts `confd announce` for `key`=`value` with `ttl` and `extra` flags.
pub fn announce(
    s: &Scenario,
    store: &Store,
    key: &str,
    value: &str,
    ttl: &str,
    extra: &[&str],
) -> Confd {
    let node = store.node();
    let mut args = vec![
        "announce",
        "-backend",
        store.backend(),
        "-node",
        &node,
        "-key",
        key,
        "-value",
        value,
        "-ttl",
        ttl,
        "-log-level",
        "debug",
    ];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Confd::spawn(s, &args)
}

/// Waits until `key` holds `value` (or is gone, for `None`); returns how
/// long that took, or panics with the log.
fn expect(
    store: &Store,
    key: &str,
    value: Option<&str>,
    limit: Duration,
    confd: &Confd,
) -> Duration {
    let start = Instant::now();
    if !wait_until(limit, || store.value(key).as_deref() == value) {
        panic!(
            "{key} is {:?}, not {value:?}, after {limit:?}\n--- stderr\n{}",
            store.value(key),
            confd.stderr()
        );
    }
    start.elapsed()
}

/// Asserts `key` keeps `value` for `period` (sampled).
fn stays(store: &Store, key: &str, value: &str, period: Duration, confd: &Confd) {
    let start = Instant::now();
    while start.elapsed() < period {
        assert_eq!(
            store.value(key).as_deref(),
            Some(value),
            "{key} lost after {:?}\n--- stderr\n{}",
            start.elapsed(),
            confd.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The life of one announcement: written, kept past its TTL, deleted at
/// once on SIGTERM (exit 0); a second one killed with SIGKILL expires
/// within about its TTL.
fn lifecycle(store: &Store, ttl: Duration) {
    let s = Scenario::new();
    let ttl_text = format!("{}s", ttl.as_secs());
    let confd = announce(&s, store, "/members/web1", "10.0.0.5:80", &ttl_text, &[]);
    expect(
        store,
        "/members/web1",
        Some("10.0.0.5:80"),
        Duration::from_secs(10),
        &confd,
    );
    // Refreshed: still there two TTLs later.
    stays(
        store,
        "/members/web1",
        "10.0.0.5:80",
        ttl * 2 + Duration::from_secs(1),
        &confd,
    );
    let log = confd.stderr();
    let status = confd
        .terminate(Duration::from_secs(10))
        .expect("announce stops on SIGTERM");
    assert_eq!(status.code(), Some(0), "{log}");
    // Gone at once (checked right after the exit).
    assert_eq!(
        store.value("/members/web1"),
        None,
        "still there after SIGTERM"
    );

    let confd = announce(&s, store, "/members/web2", "10.0.0.6:80", &ttl_text, &[]);
    expect(
        store,
        "/members/web2",
        Some("10.0.0.6:80"),
        Duration::from_secs(10),
        &confd,
    );
    confd.signal("KILL");
    let killed = Instant::now();
    // It lives on until the TTL runs out…
    std::thread::sleep(ttl / 3);
    assert_eq!(store.value("/members/web2").as_deref(), Some("10.0.0.6:80"));
    // …and no longer.
    let limit = ttl + Duration::from_secs(3);
    expect(store, "/members/web2", None, limit, &confd);
    eprintln!(
        "{}: gone {:?} after SIGKILL (TTL {ttl:?})",
        store.backend(),
        killed.elapsed()
    );
}

#[test]
fn etcd_v2_key_lives_while_refreshed_and_goes_on_sigterm_or_expires_after_sigkill() {
    let etcd = Etcd::start();
    lifecycle(&Store::V2(&etcd), Duration::from_secs(2));
}

#[test]
fn etcd_v3_lease_lives_while_kept_alive_and_goes_on_sigterm_or_expires_after_sigkill() {
    let etcd = Etcd::start();
    lifecycle(&Store::V3(&etcd), Duration::from_secs(2));
}

#[test]
fn consul_session_lives_while_renewed_and_goes_on_sigterm_or_expires_after_sigkill() {
    let server = ConsulServer::start();
    lifecycle(&Store::Consul(&server), Duration::from_secs(10));
    assert_eq!(
        server.session_count(),
        0,
        "a session outlived its announcer"
    );
}

/// The check toggled by a file: failing, the key expires within about a
/// TTL; passing again, it is back within a check interval.
fn check_cmd_toggles_membership(store: &Store, ttl: Duration) {
    let s = Scenario::new();
    let healthy = s.path().join("healthy");
    std::fs::write(&healthy, "").expect("write");
    let command = format!("test -e '{}'", healthy.display());
    let ttl_text = format!("{}s", ttl.as_secs());
    let confd = announce(
        &s,
        store,
        "/members/web3",
        "10.0.0.7:80",
        &ttl_text,
        &["-check-cmd", &command, "-check-interval", "500ms"],
    );
    expect(
        store,
        "/members/web3",
        Some("10.0.0.7:80"),
        Duration::from_secs(10),
        &confd,
    );
    std::fs::remove_file(&healthy).expect("remove");
    let took = expect(
        store,
        "/members/web3",
        None,
        ttl + Duration::from_secs(3),
        &confd,
    );
    assert!(
        took >= ttl / 2,
        "gone after {took:?}: deleted rather than expired?"
    );
    confd.expect_log("health check fails", Duration::from_secs(1));
    std::fs::write(&healthy, "").expect("write");
    let back = expect(
        store,
        "/members/web3",
        Some("10.0.0.7:80"),
        Duration::from_secs(5),
        &confd,
    );
    assert!(back < Duration::from_secs(3), "back after {back:?}");
    // And kept again.
    stays(
        store,
        "/members/web3",
        "10.0.0.7:80",
        ttl + Duration::from_secs(1),
        &confd,
    );
    // SIGINT (Ctrl-C) withdraws it too.
    confd.signal("INT");
    confd.finish(Duration::from_secs(10)).expect_code(0);
    assert_eq!(store.value("/members/web3"), None);
}

#[test]
fn etcd_v2_check_cmd_failing_lets_the_key_expire_and_passing_brings_it_back() {
    let etcd = Etcd::start();
    check_cmd_toggles_membership(&Store::V2(&etcd), Duration::from_secs(2));
}

#[test]
fn etcd_v3_check_cmd_failing_lets_the_lease_expire_and_passing_brings_it_back() {
    let etcd = Etcd::start();
    check_cmd_toggles_membership(&Store::V3(&etcd), Duration::from_secs(2));
}

#[test]
fn consul_check_cmd_failing_lets_the_session_expire_and_passing_brings_it_back() {
    let server = ConsulServer::start();
    check_cmd_toggles_membership(&Store::Consul(&server), Duration::from_secs(10));
}

/// A tiny HTTP server on 127.0.0.1 answering 200 or 503 as `up` says.
pub struct HealthServer {
    pub port: u16,
    pub up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl HealthServer {
    pub fn start() -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (serving, stopping) = (up.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buffer = [0u8; 2048];
                let _ = stream.read(&mut buffer);
                let status = if serving.load(Ordering::SeqCst) {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        HealthServer { port, up, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn check_http_answering_503_lets_the_key_expire_and_200_brings_it_back() {
    let etcd = Etcd::start();
    let store = Store::V2(&etcd);
    let health = HealthServer::start();
    let s = Scenario::new();
    let url = health.url();
    let confd = announce(
        &s,
        &store,
        "/members/web4",
        "10.0.0.8:80",
        "2s",
        &["-check-http", &url, "-check-interval", "500ms"],
    );
    expect(
        &store,
        "/members/web4",
        Some("10.0.0.8:80"),
        Duration::from_secs(10),
        &confd,
    );
    health.up.store(false, Ordering::SeqCst);
    expect(
        &store,
        "/members/web4",
        None,
        Duration::from_secs(5),
        &confd,
    );
    confd.expect_log("answered 503", Duration::from_secs(1));
    health.up.store(true, Ordering::SeqCst);
    expect(
        &store,
        "/members/web4",
        Some("10.0.0.8:80"),
        Duration::from_secs(3),
        &confd,
    );
    let status = confd.terminate(Duration::from_secs(10)).expect("stops");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_failing_check_at_start_writes_nothing() {
    let etcd = Etcd::start();
    let store = Store::V2(&etcd);
    let s = Scenario::new();
    let confd = announce(
        &s,
        &store,
        "/members/never",
        "x",
        "2s",
        &["-check-cmd", "exit 3", "-check-interval", "200ms"],
    );
    confd.expect_log("health check fails", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(store.value("/members/never"), None);
    let status = confd.terminate(Duration::from_secs(10)).expect("stops");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_backend_that_refuses_the_first_write_is_exit_1() {
    let etcd = Etcd::start();
    // A directory where the key should be: etcd answers "Not a file".
    etcd.put_v2("/members/dir/x", "1");
    let s = Scenario::new();
    let run = announce(&s, &Store::V2(&etcd), "/members/dir", "v", "2s", &[])
        .finish(Duration::from_secs(20));
    run.expect_code(1);
    let line = run.line_with("could not announce");
    assert!(line.contains("/members/dir"), "{line}");
    assert!(line.contains(&etcd.url()), "{line}");
}

#[test]
fn bad_flags_are_usage_errors_naming_the_flag() {
    let s = Scenario::new();
    for (args, named) in [
        (
            &["-backend", "env", "-key", "/k", "-value", "v"][..],
            "-backend",
        ),
        (&["-key", "/k", "-value", "v", "-ttl", "1.5s"][..], "-ttl"),
        (&["-key", "/k", "-value", "v", "-ttl", "0s"][..], "-ttl"),
        (
            &[
                "-backend", "consul", "-key", "/k", "-value", "v", "-ttl", "5s",
            ][..],
            "-ttl",
        ),
        (&["-key", "/", "-value", "v"][..], "-key"),
        (
            &["-key", "/k", "-value", "v", "-check-interval", "soon"][..],
            "-check-interval",
        ),
        (
            &["-key", "/k", "-value", "v", "-check-http", "ftp://x/"][..],
            "-check-http",
        ),
        (
            &[
                "-key",
                "/k",
                "-value",
                "v",
                "-check-http",
                "http://a/",
                "-check-cmd",
                "true",
            ][..],
            "--check-cmd",
        ),
        (&["-value", "v"][..], "--key"),
        (&["-key", "/k", "-value", "v", "-onetime"][..], "-onetime"),
    ] {
        let mut all = vec!["announce"];
        all.extend_from_slice(args);
        let run = s.run(&all);
        run.expect_code(2);
        assert!(run.stderr.contains(named), "{args:?}: {}", run.stderr);
    }
}
