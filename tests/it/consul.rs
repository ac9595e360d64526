//! The consul backend and the `service(...)` helper end to end, against the
//! in-tree Consul API test server (`tests/it/common/consul.rs`; Consul itself is
//! not part of the test suite). Every test starts its own server on a free
//! 127.0.0.1 port, so the tests run in parallel; every confd (and HAProxy) is
//! spawned behind a guard that stops it when the test ends, pass or fail, and
//! every wait is bounded.
//!
//! 1. KV one-shot renders: key `/a/b` ↔ Consul key `a/b`, folders, flat keys,
//!    `app` vs `apple/…`, `-prefix`, a missing prefix, empty values.
//! 2. ACL tokens. 3. `-datacenter`. 4. Failover across `-node`s.
//! 5. `-watch`: changes, one blocking query per prefix, idle traffic.
//! 6. An index that goes backwards (a snapshot restore).
//! 7. Guards (`min_keys`, `max_shrink`) when a prefix disappears.
//! 8. `service(...)`: passing instances, `tag=`, `passing=false`, health flips
//!    under `-watch` with `haproxy -c` as check_cmd, any KV backend with
//!    `-consul-addr`, `-onetime`.
//! 9. Real traffic through HAProxy, with the shipped example confdir
//!    `examples/haproxy-consul/confd`.
//!
//! Tests named after a bug pin the regression (their doc comments say what
//! used to go wrong). Tests that wait out blocking queries shorten them with
//! `watch_timeout` in confd.toml.

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT, STOP_LIMIT, args};
use crate::common::consul::{CheckStatus, ConsulOptions, ConsulServer, ServiceInstance};
use crate::common::haproxy::{Hammer, Haproxy, Upstream, batch, wait_for_batch};
use crate::common::{Run, Scenario, free_port, poll_file, read, wait_until};
use crate::net::{FreezableProxy, short_watch_timeout};

/// How long a change made behind a frozen node may take to reach the file
/// with a 2 s watch timeout: the overdue blocking query (3.125 s), the query
/// to the next node and the render, with room for a loaded machine.
const FROZEN_LIMIT: Duration = Duration::from_secs(15);

/// How long a change may take to show in HAProxy's traffic (watch, render,
/// check, rename, reload).
const TRAFFIC_LIMIT: Duration = Duration::from_secs(15);
/// Changes further apart than the daemon's minimum gap after a render
/// (100 ms), so each one is rendered at once as an isolated change.
const SPACING: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Runs `confd -onetime -backend consul -node <server>` to completion.
fn onetime(s: &Scenario, server: &ConsulServer, extra: &[&str]) -> Run {
    onetime_nodes(s, &[server.address()], extra)
}

fn onetime_nodes(s: &Scenario, nodes: &[String], extra: &[&str]) -> Run {
    crate::common::confd::onetime(s, "consul", nodes, extra)
}

/// Starts `confd -watch -log-level debug -backend consul -node <server>`.
fn watch(s: &Scenario, server: &ConsulServer, extra: &[&str]) -> Confd {
    let mut all = vec!["-watch", "-log-level", "debug"];
    all.extend_from_slice(extra);
    Confd::spawn(s, &args(s, "consul", &[server.address()], &all))
}

/// An address nothing listens on (connections are refused at once).
fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("127.0.0.1:{port}")
}

/// Sorted durations → (median, p95, max).
fn stats(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), at(1.0))
}

/// Waits (bounded) until the server holds exactly `n` blocking queries and
/// keeps holding `n` for 300 ms; panics otherwise.
fn expect_held(server: &ConsulServer, n: u64, confd: &Confd) {
    let settled = wait_until(START_LIMIT, || {
        server.held_requests() == n && {
            std::thread::sleep(Duration::from_millis(300));
            server.held_requests() == n
        }
    });
    assert!(
        settled,
        "the server holds {} blocking queries, not {n}\n--- requests\n{}\n--- stderr\n{}",
        server.held_requests(),
        server.request_log().join("\n"),
        confd.stderr()
    );
}

/// Lines of the request log that are blocking queries (`index=` > 0).
fn blocking_paths(server: &ConsulServer) -> BTreeSet<String> {
    server
        .request_log()
        .iter()
        .filter(|l| l.contains("index=") && !l.contains("index=0"))
        .map(|l| {
            let target = l.split_whitespace().nth(1).unwrap_or_default();
            target.split('?').next().unwrap_or_default().to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. KV one-shot renders
// ---------------------------------------------------------------------------

const STRUCTURE_TEMPLATE: &str = r#"ls={{ ls(key="/app") | join(sep=",") }}
lsdir={{ lsdir(key="/app") | join(sep=",") }}
top={{ ls(key="/") | join(sep=",") }}
name={{ getv(key="/app/name") }}
db={{ getv(key="/app/db/host") }}:{{ getv(key="/app/db/port") }}
hosts={{ lsdir(key="/app/web") | join(sep=",") }}
h2={{ getv(key="/app/web/h2/ip") }}
empty=[{{ getv(key="/app/empty") }}] exists={{ exists(key="/app/empty") }}
app-is-a-key={{ exists(key="/app") }} db-is-a-key={{ exists(key="/app/db") }}
leaves={% for p in gets(key="/app/*") %}{{ p.key }},{% endfor %}
motd={{ getv(key="/app/motd") }}
"#;

#[test]
fn onetime_maps_keys_folders_and_flat_keys() {
    let server = ConsulServer::start();
    // Folder entries ("…/", null value) as the Consul UI creates them…
    server.put("app/", "");
    server.put("app/db/", "");
    server.put("app/db/host", "10.0.0.1");
    server.put("app/db/port", "5432");
    // …and deeper keys written without any folder entry (the CLI's way).
    server.put("app/web/h1/ip", "10.0.1.1");
    server.put("app/web/h2/ip", "10.0.1.2");
    server.put("app/name", "shop");
    // An empty value is stored as no value at all ("Value": null).
    server.put("app/empty", "");
    // Base64 on the wire: multi-byte UTF-8 and a newline come back intact.
    server.put("app/motd", "héllo wörld ✓\nsecond line");
    // An empty folder gives no structure: it has no children.
    server.put("app/cache/", "");
    // Consul's ?recurse=app matches these as plain strings; confd must not.
    server.put("apple", "no");
    server.put("apple/x", "no");
    server.put("app2/y", "no");
    server.put("appendix/", "");

    let s = Scenario::new();
    s.template("app.tmpl", STRUCTURE_TEMPLATE);
    s.resource("app", "app.conf", &["/app"], "");
    onetime(&s, &server, &[]).expect_code(0);
    assert_eq!(
        read(&s.out("app.conf")),
        "ls=db,empty,motd,name,web\n\
         lsdir=db,web\n\
         top=app\n\
         name=shop\n\
         db=10.0.0.1:5432\n\
         hosts=h1,h2\n\
         h2=10.0.1.2\n\
         empty=[] exists=true\n\
         app-is-a-key=false db-is-a-key=false\n\
         leaves=/app/empty,/app/motd,/app/name,\n\
         motd=héllo wörld ✓\nsecond line\n"
    );
    // One recursive read of the one prefix, key a/b for /a/b.
    let log = server.request_log();
    assert_eq!(log, vec!["GET /v1/kv/app?recurse=true"], "{log:?}");
}

#[test]
fn onetime_reads_each_distinct_prefix_once() {
    let server = ConsulServer::start();
    server.put_many(&[("a/x", "1"), ("a/y/z", "2"), ("b/x", "3"), ("c/d/e", "4")]);
    let s = Scenario::new();
    s.template(
        "one.tmpl",
        r#"{{ getv(key="/a/x") }}{{ getv(key="/b/x") }}"#,
    );
    s.resource("one", "one.conf", &["/a", "/b"], "");
    s.template("two.tmpl", r#"{{ getv(key="/a/y/z") }}"#);
    s.resource("two", "two.conf", &["/a/y"], "");
    s.template("three.tmpl", r#"{{ getv(key="/c/d/e") }}"#);
    s.resource("three", "three.conf", &["/c/d", "/b"], "");
    onetime(&s, &server, &[]).expect_code(0);
    assert_eq!(read(&s.out("one.conf")), "13");
    assert_eq!(read(&s.out("two.conf")), "2");
    assert_eq!(read(&s.out("three.conf")), "4");
    let mut log = server.request_log();
    log.sort();
    assert_eq!(
        log,
        vec![
            "GET /v1/kv/a?recurse=true",
            "GET /v1/kv/b?recurse=true",
            "GET /v1/kv/c/d?recurse=true",
        ]
    );
}

#[test]
fn onetime_prefix_flag_and_resource_prefix() {
    let server = ConsulServer::start();
    server.put_many(&[
        ("prod/app/name", "prod-shop"),
        ("staging/app/name", "staging-shop"),
        ("app/name", "bare"),
        ("production/app/name", "wrong: a sibling of prod"),
    ]);
    let s = Scenario::new();
    s.template("app.tmpl", r#"name={{ getv(key="/app/name") }}"#);
    s.resource("app", "app.conf", &["/app"], "");
    onetime(&s, &server, &["-prefix", "/prod"]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "name=prod-shop");
    // Without a leading slash, or with a trailing one: the same prefix.
    fs::remove_file(s.out("app.conf")).expect("remove");
    onetime(&s, &server, &["-prefix", "prod/"]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "name=prod-shop");
    assert!(
        server
            .request_log()
            .iter()
            .all(|l| l == "GET /v1/kv/prod/app?recurse=true"),
        "{:?}",
        server.request_log()
    );

    // A resource's own prefix, joined after the global one.
    let t = Scenario::new();
    t.template("app.tmpl", r#"name={{ getv(key="/app/name") }}"#);
    t.resource("app", "app.conf", &["/app"], "prefix = \"staging\"\n");
    onetime(&t, &server, &[]).expect_code(0);
    assert_eq!(read(&t.out("app.conf")), "name=staging-shop");
}

/// A value that is not UTF-8 fails the read naming its key, and the
/// destination keeps its content, one-shot and under -watch (where the daemon
/// catches up once the value is text again). (Such bytes used to be replaced
/// with U+FFFD and written as if they were the data.)
#[test]
fn a_value_that_is_not_utf8_fails_naming_the_key() {
    let server = ConsulServer::start();
    server.put("app/a", "1");
    server.put_bytes("app/bin", b"\xff\xfex", 0);
    let s = Scenario::new();
    s.template(
        "app.tmpl",
        "{% for k in ls(key=\"/app\") %}{{ k }}={{ getv(key=\"/app/\" ~ k) }}\n{% endfor %}",
    );
    s.resource("app", "app.conf", &["/app"], "");
    let dest = s.out("app.conf");
    s.write("out/app.conf", "old\n");
    let run = onetime(&s, &server, &[]);
    run.expect_code(1);
    run.line_with("key /app/bin: the value is not valid UTF-8");
    assert_eq!(read(&dest), "old\n");

    server.delete("app/bin");
    let confd = watch(&s, &server, &[]);
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    server.put_bytes("app/a", b"\xc3", 0);
    confd.expect_log("key /app/a: the value is not valid UTF-8", CHANGE_LIMIT);
    assert_eq!(read(&dest), "a=1\n");
    server.put("app/a", "é");
    confd.expect_file(&dest, "a=é\n", CHANGE_LIMIT);
}

#[test]
fn onetime_missing_prefix_is_an_empty_subtree() {
    let server = ConsulServer::start();
    server.put("other/x", "1");
    let s = Scenario::new();
    s.template(
        "missing.tmpl",
        r#"v={{ getv(key="/nothing/here/x", default="fallback") }} n={{ ls(key="/nothing/here") | length }} e={{ exists(key="/nothing/here/x") }}"#,
    );
    s.resource("missing", "missing.conf", &["/nothing/here"], "");
    let run = onetime(&s, &server, &[]);
    run.expect_code(0);
    assert_eq!(read(&s.out("missing.conf")), "v=fallback n=0 e=false");
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);

    // Without a default, the missing key is a render error naming it, not a
    // backend error.
    s.template("missing.tmpl", r#"v={{ getv(key="/nothing/here/x") }}"#);
    let run = onetime(&s, &server, &[]);
    run.expect_code(1);
    let line = run.line_with("/nothing/here/x");
    assert!(line.contains("missing.tmpl"), "{line}");
    assert!(!line.contains("404"), "{line}");
    assert_eq!(read(&s.out("missing.conf")), "v=fallback n=0 e=false");
}

#[test]
fn onetime_keys_with_special_characters_render_verbatim() {
    let server = ConsulServer::start();
    server.put_many(&[
        ("my app/ü/a b", "space"),
        ("my app/ü/100%", "percent"),
        ("my app/ü/q?x=1", "question"),
        ("my app/ü/h#1", "hash"),
        ("my app/ü/日本", "kanji"),
        ("my app/üx/no", "sibling"),
    ]);
    let s = Scenario::new();
    s.template(
        "weird.tmpl",
        r#"{% for k in ls(key="/my app/ü") %}{{ k }}={{ getv(key="/my app/ü/" ~ k) }}
{% endfor %}"#,
    );
    s.resource("weird", "weird.conf", &["/my app/ü"], "");
    onetime(&s, &server, &[]).expect_code(0);
    assert_eq!(
        read(&s.out("weird.conf")),
        "100%=percent\na b=space\nh#1=hash\nq?x=1=question\n日本=kanji\n"
    );
}

// ---------------------------------------------------------------------------
// 2. ACL tokens
// ---------------------------------------------------------------------------

const TOKEN: &str = "5e0a7c1e-acl-token";

fn acl_scenario(server: &ConsulServer) -> Scenario {
    server.put("app/name", "shop");
    server.register_service(ServiceInstance::new("web1", "web", "10.0.0.1", 80));
    let s = Scenario::new();
    s.template(
        "app.tmpl",
        r#"name={{ getv(key="/app/name") }} web={% for i in service(name="web") %}{{ i.address }}:{{ i.port }}{% endfor %}"#,
    );
    s.resource("app", "app.conf", &["/app"], "");
    s
}

#[test]
fn acl_without_a_token_fails_with_a_one_line_403_naming_auth_token() {
    let server = ConsulServer::start_with(ConsulOptions {
        token: Some(TOKEN.to_string()),
        ..ConsulOptions::default()
    });
    let s = acl_scenario(&server);
    let run = onetime(&s, &server, &[]);
    run.expect_code(1);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("ERROR")).collect();
    let line = run.line_with("403");
    assert!(line.contains("Permission denied"), "{line}");
    assert!(line.contains("-auth-token"), "{line}");
    assert!(line.contains("CONSUL_HTTP_TOKEN"), "{line}");
    assert!(line.contains(&server.address()), "{line}");
    // Every error is one line: nothing of the server's answer spills over.
    assert!(
        run.stderr.lines().all(|l| l.contains(" ERROR ")
            || l.contains(" INFO ")
            || l.contains(" WARN ")
            || l.contains(" DEBUG ")),
        "{}",
        run.stderr
    );
    assert!(!errors.is_empty() && errors.len() <= 2, "{}", run.stderr);
    assert!(!s.out("app.conf").exists());

    // A wrong token: 403 "ACL not found".
    let run = onetime(&s, &server, &["-auth-token", "wrong"]);
    run.expect_code(1);
    let line = run.line_with("403");
    assert!(line.contains("ACL not found"), "{line}");
    assert!(!s.out("app.conf").exists());
}

#[test]
fn acl_token_from_the_flag_or_from_consul_http_token() {
    let server = ConsulServer::start_with(ConsulOptions {
        token: Some(TOKEN.to_string()),
        ..ConsulOptions::default()
    });
    let mut s = acl_scenario(&server);
    // The token reaches both the KV store and the health endpoint.
    onetime(&s, &server, &["-auth-token", TOKEN]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "name=shop web=10.0.0.1:80");

    fs::remove_file(s.out("app.conf")).expect("remove");
    s.set_env("CONSUL_HTTP_TOKEN", TOKEN);
    onetime(&s, &server, &[]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "name=shop web=10.0.0.1:80");

    // Sent as a header, never in a URL (URLs end up in proxies' logs).
    let counts = server.request_counts();
    assert_eq!(counts.denied, 0, "{counts:?}");
    assert!(
        server.request_log().iter().all(|l| !l.contains(TOKEN)),
        "{:?}",
        server.request_log()
    );
}

// ---------------------------------------------------------------------------
// 3. -datacenter
// ---------------------------------------------------------------------------

#[test]
fn datacenter_matching_renders_and_another_fails_naming_the_error() {
    let server = ConsulServer::start_with(ConsulOptions {
        datacenter: "eu-west-1".to_string(),
        ..ConsulOptions::default()
    });
    server.put("app/name", "shop");
    server.register_service(ServiceInstance::new("web1", "web", "10.0.0.1", 80));
    let s = Scenario::new();
    s.template(
        "app.tmpl",
        r#"name={{ getv(key="/app/name") }} web={% for i in service(name="web") %}{{ i.id }}{% endfor %}"#,
    );
    s.resource("app", "app.conf", &["/app"], "");

    onetime(&s, &server, &["-datacenter", "eu-west-1"]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "name=shop web=web1");
    let log = server.request_log();
    assert!(
        log.iter().all(|l| l.contains("dc=eu-west-1")),
        "every request names the datacenter: {log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /v1/health/service/web?"))
    );

    fs::remove_file(s.out("app.conf")).expect("remove");
    let run = onetime(&s, &server, &["-datacenter", "us-east-1"]);
    run.expect_code(1);
    let line = run.line_with("No path to datacenter");
    assert!(line.contains("500"), "{line}");
    assert!(line.contains("ERROR"), "{line}");
    assert!(!s.out("app.conf").exists());

    // Without -datacenter: the agent's own.
    onetime(&s, &server, &[]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "name=shop web=web1");
}

// ---------------------------------------------------------------------------
// 4. Failover
// ---------------------------------------------------------------------------

#[test]
fn fails_over_from_a_dead_first_node_to_a_live_one() {
    let server = ConsulServer::start();
    server.put("app/name", "shop");
    let s = Scenario::new();
    s.template("app.tmpl", r#"name={{ getv(key="/app/name") }}"#);
    s.resource("app", "app.conf", &["/app"], "");
    let dead = dead_address();
    let nodes = [dead.clone(), server.address()];
    onetime_nodes(&s, &nodes, &[]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "name=shop");

    // Watching too: the watch goes to the live node, and a change arrives.
    let confd = Confd::spawn(&s, &args(&s, "consul", &nodes, &["-watch"]));
    expect_held(&server, 1, &confd);
    server.put("app/name", "shop-2");
    confd.expect_file(&s.out("app.conf"), "name=shop-2", CHANGE_LIMIT);

    // Only dead nodes: exit 1 naming them.
    let other = dead_address();
    let run = onetime_nodes(&s, &[dead.clone(), other.clone()], &[]);
    run.expect_code(1);
    let line = run.line_with("no node answered");
    assert!(line.contains(&dead) && line.contains(&other), "{line}");
    assert_eq!(read(&s.out("app.conf")), "name=shop-2");
}

/// A node that silently dies — it stops answering but keeps its
/// connections open, as behind a partition or on a frozen VM — is given up
/// once a blocking query is overdue (with `watch_timeout = "2s"` in
/// confd.toml: Consul's wait of 2 s, its jitter of up to 1/16, and a 1 s
/// margin), and the KV watch and the `service(...)` watch both move to the
/// next node: changes made while the first is frozen reach the file. (A
/// blocking query used to wait on the dead connection for over a minute.)
#[test]
fn watch_fails_over_from_a_frozen_node() {
    let server = ConsulServer::start();
    server.put("app/name", "shop");
    server.register_service(ServiceInstance::new("web-1", "web", "10.0.0.1", 80));
    let proxy = FreezableProxy::start(server.port());
    let s = Scenario::new();
    s.template(
        "app.tmpl",
        r#"name={{ getv(key="/app/name") }}{% for i in service(name="web") %} {{ i.id }}{% endfor %}"#,
    );
    s.resource("app", "app.conf", &["/app"], "");
    let dest = s.out("app.conf");
    let config = short_watch_timeout(&s, "2s");
    let nodes = [proxy.address(), server.address()];
    let confd = Confd::spawn(
        &s,
        &args(&s, "consul", &nodes, &["-watch", "-config-file", &config]),
    );
    confd.expect_file(&dest, "name=shop web-1", START_LIMIT);
    // Both watches run through the proxy (the node that answered first).
    server.put("app/name", "shop-2");
    confd.expect_file(&dest, "name=shop-2 web-1", CHANGE_LIMIT);
    assert!(
        server.request_log().iter().any(|l| l.contains("wait=2s")),
        "{:?}",
        server.request_log()
    );

    proxy.freeze();
    server.put("app/name", "shop-3");
    let took = confd.expect_file(&dest, "name=shop-3 web-1", FROZEN_LIMIT);
    eprintln!("a KV change behind a frozen node reached the file in {took:?}");
    server.register_service(ServiceInstance::new("web-2", "web", "10.0.0.2", 80));
    let took = confd.expect_file(&dest, "name=shop-3 web-1 web-2", FROZEN_LIMIT);
    eprintln!("a catalog change behind a frozen node reached the file in {took:?}");
    server.put("app/name", "shop-4");
    confd.expect_file(&dest, "name=shop-4 web-1 web-2", CHANGE_LIMIT);
    proxy.thaw();
}

// ---------------------------------------------------------------------------
// 5. -watch
// ---------------------------------------------------------------------------

/// 10 resources over 3 prefixes (/p0, /p1, /p2; one resource reads
/// /p2/deep, inside /p2). Resource `r<i>` renders `<i>:<value of /p<i%3>/v>`.
fn ten_resources_over_three_prefixes(server: &ConsulServer) -> Scenario {
    server.put_many(&[
        ("p0/v", "a"),
        ("p1/v", "b"),
        ("p2/v", "c"),
        ("p2/deep/v", "d"),
    ]);
    let s = Scenario::new();
    for i in 0..9 {
        let p = i % 3;
        s.template(
            &format!("r{i}.tmpl"),
            &format!(r#"{i}:{{{{ getv(key="/p{p}/v", default="-") }}}}"#),
        );
        s.resource(
            &format!("r{i}"),
            &format!("r{i}.conf"),
            &[&format!("/p{p}")],
            "",
        );
    }
    s.template("r9.tmpl", r#"9:{{ getv(key="/p2/deep/v") }}"#);
    s.resource("r9", "r9.conf", &["/p2/deep"], "");
    s
}

#[test]
fn watch_holds_one_blocking_query_per_prefix_and_renders_changes() {
    let server = ConsulServer::start();
    let s = ten_resources_over_three_prefixes(&server);
    let confd = watch(&s, &server, &[]);
    for i in 0..10 {
        let value = ["a", "b", "c"][i % 3];
        let value = if i == 9 { "d" } else { value };
        confd.expect_file(
            &s.out(&format!("r{i}.conf")),
            &format!("{i}:{value}"),
            START_LIMIT,
        );
    }
    // One blocking query per distinct prefix, not per resource.
    expect_held(&server, 3, &confd);
    assert_eq!(
        blocking_paths(&server),
        ["/v1/kv/p0", "/v1/kv/p1", "/v1/kv/p2"]
            .iter()
            .map(|p| p.to_string())
            .collect::<BTreeSet<_>>()
    );
    // The start: one pass, one read per prefix.
    let counts = server.request_counts();
    assert_eq!(counts.kv_reads, 3, "{counts:?}");

    // Idle: the blocking queries just wait (60 s each).
    let before = server.requests();
    std::thread::sleep(Duration::from_secs(3));
    let idle = server.requests() - before;
    eprintln!("idle, 10 resources over 3 prefixes: {idle} requests in 3 s");
    assert!(idle <= 3, "{idle} requests in 3 s while nothing changed");

    // A change under /p1 renders r1, r4, r7 and nothing else.
    let mtimes = |ids: &[usize]| -> Vec<std::time::SystemTime> {
        ids.iter()
            .map(|i| {
                fs::metadata(s.out(&format!("r{i}.conf")))
                    .and_then(|m| m.modified())
                    .expect("mtime")
            })
            .collect()
    };
    let others = [0, 2, 3, 5, 6, 8, 9];
    let untouched = mtimes(&others);
    let before = server.request_counts();
    server.put("p1/v", "B");
    for i in [1, 4, 7] {
        confd.expect_file(
            &s.out(&format!("r{i}.conf")),
            &format!("{i}:B"),
            CHANGE_LIMIT,
        );
    }
    expect_held(&server, 3, &confd);
    let after = server.request_counts();
    assert_eq!(
        mtimes(&others),
        untouched,
        "resources of other prefixes were rewritten"
    );
    assert!(
        after.total - before.total <= 3,
        "one change cost {} requests: {before:?} → {after:?}",
        after.total - before.total
    );
    // The blocking query's answer is the new prefix: no second read.
    assert_eq!(
        after.kv_reads, before.kv_reads,
        "a change read the prefix again: {before:?} → {after:?}"
    );

    // A delete wakes the prefix watch too (Consul keeps tombstones).
    assert!(server.delete("p1/v"));
    for i in [1, 4, 7] {
        confd.expect_file(
            &s.out(&format!("r{i}.conf")),
            &format!("{i}:-"),
            CHANGE_LIMIT,
        );
    }

    // Latency of an isolated change, put → file, over 20 changes.
    let mut samples = Vec::new();
    for n in 0..20 {
        std::thread::sleep(SPACING);
        server.put("p0/v", &format!("v{n}"));
        samples.push(confd.expect_file(&s.out("r0.conf"), &format!("0:v{n}"), CHANGE_LIMIT));
    }
    let (median, p95, max) = stats(samples);
    eprintln!("KV change → file, 20 changes: median {median:?}, p95 {p95:?}, max {max:?}");
    assert!(p95 < Duration::from_secs(2), "p95 {p95:?}");
    assert!(confd.terminate(STOP_LIMIT).is_some_and(|s| s.success()));
}

#[test]
fn watch_coalesces_a_burst_of_writes_into_one_render() {
    let server = ConsulServer::start();
    server.put("app/n", "0");
    let s = Scenario::new();
    let reloads = s.path().join("reloads");
    s.template("app.tmpl", r#"n={{ getv(key="/app/n") }}"#);
    s.resource(
        "app",
        "app.conf",
        &["/app"],
        &format!("reload_cmd = \"echo x >> {}\"\n", reloads.display()),
    );
    let confd = watch(&s, &server, &[]);
    confd.expect_file(&s.out("app.conf"), "n=0", START_LIMIT);
    expect_held(&server, 1, &confd);
    let reloads_before = fs::read_to_string(&reloads)
        .unwrap_or_default()
        .lines()
        .count();
    for n in 1..=200 {
        server.put("app/n", &n.to_string());
    }
    confd.expect_file(&s.out("app.conf"), "n=200", CHANGE_LIMIT);
    std::thread::sleep(Duration::from_millis(500));
    let reloads_after = fs::read_to_string(&reloads)
        .unwrap_or_default()
        .lines()
        .count();
    assert!(
        reloads_after - reloads_before <= 2,
        "200 writes caused {} reloads",
        reloads_after - reloads_before
    );
}

// ---------------------------------------------------------------------------
// 6. An index that goes backwards
// ---------------------------------------------------------------------------

#[test]
fn watch_survives_an_index_that_goes_backwards() {
    let server = ConsulServer::start();
    for n in 0..10 {
        server.put(&format!("app/k{n}"), "x");
    }
    server.put("app/name", "before");
    let s = Scenario::new();
    s.template("app.tmpl", r#"name={{ getv(key="/app/name") }}"#);
    s.resource("app", "app.conf", &["/app"], "");
    let confd = watch(&s, &server, &[]);
    confd.expect_file(&s.out("app.conf"), "name=before", START_LIMIT);
    expect_held(&server, 1, &confd);
    let high = server.index();
    assert!(high > 10, "{high}");

    // A snapshot restore: the index drops far below what confd holds.
    let reads = server.request_counts().kv_reads;
    server.set_index_backwards(3);
    // confd notices the lower index and reads the prefix again.
    assert!(
        wait_until(CHANGE_LIMIT, || server.request_counts().kv_reads > reads),
        "no re-read after the index went backwards\n{}",
        confd.stderr()
    );
    expect_held(&server, 1, &confd);
    // The next write has an index (4) far below the one confd knew (> 10):
    // it is seen only if confd started again from the reset index.
    server.put("app/name", "after");
    assert!(server.index() < high);
    confd.expect_file(&s.out("app.conf"), "name=after", CHANGE_LIMIT);
    // And the watch does not spin: it is held again.
    expect_held(&server, 1, &confd);
    let before = server.requests();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        server.requests() - before <= 1,
        "{:?}",
        server.request_log()
    );
}

/// A prefix's blocking query must start at an index that prefix's own
/// X-Consul-Index can reach: when confd started every prefix at the highest
/// index of the whole read, a quiet prefix's wait ended (60 s by default)
/// with its own, lower, index, which confd took for a snapshot restore,
/// re-reading every resource every minute. With `watch_timeout = "2s"` the
/// waits end every 2 s, so 5 s see at least two of them end quietly.
#[test]
fn watch_a_quiet_prefix_is_not_mistaken_for_a_restore() {
    let server = ConsulServer::start();
    server.put("a/x", "1");
    for n in 0..5 {
        server.put(&format!("b/k{n}"), "x");
    }
    let s = Scenario::new();
    for p in ["a", "b"] {
        s.template(
            &format!("{p}.tmpl"),
            &format!(r#"{{{{ getv(key="/{p}/x", default="-") }}}}"#),
        );
        s.resource(p, &format!("{p}.conf"), &[&format!("/{p}")], "");
    }
    let config = short_watch_timeout(&s, "2s");
    let confd = watch(&s, &server, &["-config-file", &config]);
    confd.expect_file(&s.out("a.conf"), "1", START_LIMIT);
    expect_held(&server, 2, &confd);
    let reads = server.request_counts().kv_reads;
    std::thread::sleep(Duration::from_secs(5));
    // The waits ended quietly and were asked again: no re-read.
    assert_eq!(
        server.request_counts().kv_reads,
        reads,
        "{:?}\n{}",
        server.request_log(),
        confd.stderr()
    );
    expect_held(&server, 2, &confd);
}

/// confd reads a pass's prefixes one after the other. A write under /a that
/// lands after /a was read but before /b was (with a write under /b after
/// it) must still wake /a's blocking query: the pass may not claim /b's
/// higher index for /a (it did, and the change waited for the end of the
/// 60 s wait).
#[test]
fn watch_a_change_between_two_reads_of_one_pass_is_not_lost() {
    let server = ConsulServer::start();
    server.put("a/x", "1");
    server.put("b/y", "1");
    // When confd's first pass reads /b (after /a): a/x changes, then b/y.
    let armed = Arc::new(AtomicBool::new(true));
    let once = armed.clone();
    server.on_request(move |line| {
        if line == "GET /v1/kv/b?recurse=true" && once.swap(false, Ordering::SeqCst) {
            vec![
                ("a/x".to_string(), "2".to_string()),
                ("b/y".to_string(), "2".to_string()),
            ]
        } else {
            Vec::new()
        }
    });
    let s = Scenario::new();
    s.template("a.tmpl", r#"{{ getv(key="/a/x") }}"#);
    s.resource("a", "a.conf", &["/a"], "");
    s.template("b.tmpl", r#"{{ getv(key="/b/y") }}"#);
    s.resource("b", "b.conf", &["/b"], "");
    let confd = watch(&s, &server, &[]);
    confd.expect_file(&s.out("b.conf"), "2", START_LIMIT);
    assert!(!armed.load(Ordering::SeqCst));
    confd.expect_file(&s.out("a.conf"), "2", CHANGE_LIMIT);
}

#[test]
fn watch_waits_out_a_server_outage_and_catches_up() {
    let mut server = ConsulServer::start();
    server.put("app/name", "one");
    let port = server.port();
    let s = Scenario::new();
    s.template("app.tmpl", r#"name={{ getv(key="/app/name") }}"#);
    s.resource("app", "app.conf", &["/app"], "");
    let mut confd = watch(&s, &server, &[]);
    confd.expect_file(&s.out("app.conf"), "name=one", START_LIMIT);
    expect_held(&server, 1, &confd);

    server.stop();
    // One error line for the outage (retries log at debug level only).
    confd.expect_log(" ERROR ", CHANGE_LIMIT);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(confd.running(), "{}", confd.stderr());
    assert_eq!(read(&s.out("app.conf")), "name=one");
    assert_eq!(confd.lines_with(" ERROR "), 1, "{}", confd.stderr());
    assert!(
        confd.lines_with(&format!("127.0.0.1:{port}")) > 0,
        "{}",
        confd.stderr()
    );

    // Back on the same port, further along (as a restarted agent would be).
    let server = ConsulServer::start_with(ConsulOptions {
        port: Some(port),
        ..ConsulOptions::default()
    });
    for n in 0..5 {
        server.put(&format!("other/k{n}"), "x");
    }
    server.put("app/name", "two");
    confd.expect_file(&s.out("app.conf"), "name=two", CHANGE_LIMIT);
    expect_held(&server, 1, &confd);
    server.put("app/name", "three");
    confd.expect_file(&s.out("app.conf"), "name=three", CHANGE_LIMIT);
}

/// While confd could not reach Consul, the cluster came back with a lower
/// index (rebuilt, or restored from a snapshot). confd's catch-up read gets
/// the new data, but its blocking query still asks for the old, higher
/// index, which the server holds for the whole wait (60 s): changes made
/// meanwhile are not seen until it ends.
#[test]
fn watch_after_reconnecting_to_a_lower_index_sees_changes_promptly() {
    let mut server = ConsulServer::start();
    for n in 0..20 {
        server.put(&format!("app/k{n}"), "x");
    }
    server.put("app/name", "one");
    let port = server.port();
    let s = Scenario::new();
    s.template("app.tmpl", r#"name={{ getv(key="/app/name") }}"#);
    s.resource("app", "app.conf", &["/app"], "");
    let confd = watch(&s, &server, &[]);
    confd.expect_file(&s.out("app.conf"), "name=one", START_LIMIT);
    expect_held(&server, 1, &confd);
    server.stop();
    confd.expect_log(" ERROR ", CHANGE_LIMIT);

    let server = ConsulServer::start_with(ConsulOptions {
        port: Some(port),
        ..ConsulOptions::default()
    });
    server.put("app/name", "two");
    confd.expect_file(&s.out("app.conf"), "name=two", CHANGE_LIMIT);
    server.put("app/name", "three");
    confd.expect_file(&s.out("app.conf"), "name=three", CHANGE_LIMIT);
}

// ---------------------------------------------------------------------------
// 7. Guards
// ---------------------------------------------------------------------------

fn listing(dir: &str) -> String {
    format!(
        "{{% for k in ls(key=\"{dir}\") %}}{{{{ k }}}}={{{{ getv(key=\"{dir}/\" ~ k) }}}}\n{{% endfor %}}"
    )
}

#[test]
fn guards_keep_dest_when_a_prefix_disappears_and_render_once_it_is_back() {
    let server = ConsulServer::start();
    let four = [("a", "1"), ("b1", "2"), ("b2", "3"), ("c", "4")];
    let put_all = |dir: &str, suffix: &str| {
        let pairs: Vec<(String, String)> = four
            .iter()
            .map(|(k, v)| (format!("{dir}/{k}"), format!("{v}{suffix}")))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        server.put_many(&refs);
    };
    put_all("pool", "");
    put_all("shrink", "");
    let s = Scenario::new();
    s.template("pool.tmpl", &listing("/pool"));
    s.resource("pool", "pool.conf", &["/pool"], "min_keys = 2\n");
    s.template("shrink.tmpl", &listing("/shrink"));
    s.resource(
        "shrink",
        "shrink.conf",
        &["/shrink"],
        "max_shrink = \"50%\"\n",
    );
    let full = "a=1\nb1=2\nb2=3\nc=4\n";
    let mut confd = watch(&s, &server, &[]);
    confd.expect_file(&s.out("pool.conf"), full, START_LIMIT);
    confd.expect_file(&s.out("shrink.conf"), full, START_LIMIT);
    expect_held(&server, 2, &confd);

    // Both prefixes vanish (a bad script, a restore gone wrong).
    assert_eq!(server.delete_prefix("pool/"), 4);
    assert_eq!(server.delete_prefix("shrink/"), 4);
    confd.expect_log("min_keys", CHANGE_LIMIT);
    confd.expect_log("max_shrink", CHANGE_LIMIT);
    let min_line = confd
        .stderr()
        .lines()
        .find(|l| l.contains("min_keys"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        min_line.contains("ERROR") && min_line.contains("pool.toml"),
        "{min_line}"
    );
    let shrink_line = confd
        .stderr()
        .lines()
        .find(|l| l.contains("max_shrink"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        shrink_line.contains("ERROR") && shrink_line.contains("shrink.toml"),
        "{shrink_line}"
    );
    assert_eq!(read(&s.out("pool.conf")), full);
    assert_eq!(read(&s.out("shrink.conf")), full);
    assert!(confd.running(), "{}", confd.stderr());

    // Back, with new values: both render.
    put_all("pool", "b");
    put_all("shrink", "b");
    let back = "a=1b\nb1=2b\nb2=3b\nc=4b\n";
    confd.expect_file(&s.out("pool.conf"), back, CHANGE_LIMIT);
    confd.expect_file(&s.out("shrink.conf"), back, CHANGE_LIMIT);

    // A shrink within 50% is fine (4 → 3); one beyond it is refused (3 → 1,
    // two keys gone in one write).
    assert!(server.delete("shrink/c"));
    confd.expect_file(&s.out("shrink.conf"), "a=1b\nb1=2b\nb2=3b\n", CHANGE_LIMIT);
    let refusals = confd.lines_with("max_shrink");
    assert_eq!(server.delete_prefix("shrink/b"), 2);
    assert!(
        wait_until(CHANGE_LIMIT, || confd.lines_with("max_shrink") > refusals),
        "{}",
        confd.stderr()
    );
    assert_eq!(read(&s.out("shrink.conf")), "a=1b\nb1=2b\nb2=3b\n");
}

// ---------------------------------------------------------------------------
// 8. service(...)
// ---------------------------------------------------------------------------

/// A valid HAProxy configuration with one backend from `service(name="web")`.
const HAPROXY_TEMPLATE: &str = r#"global
    maxconn 256

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend http-in
    bind 127.0.0.1:{{ getv(key="/haproxy/port") }}
    default_backend web

backend web
    balance roundrobin
{%- for s in service(name="web") %}
    server {{ s.node }}-{{ s.id }} {{ s.address }}:{{ s.port }} check
{%- endfor %}
"#;

/// Every instance, one line each: `node id address:port status [tags] v=…`.
fn instances_template(call: &str) -> String {
    format!(
        "{{% for s in {call} %}}{{{{ s.node }}}} {{{{ s.id }}}} {{{{ s.name }}}} {{{{ s.address }}}}:{{{{ s.port }}}} {{{{ s.status }}}} [{{{{ s.tags | join(sep=\",\") }}}}] v={{{{ s.meta.version | default(value=\"-\") }}}}\n{{% endfor %}}"
    )
}

/// web-b and web-c on node1, web-a on node2 (registered out of order),
/// web-d on node2 tagged v2, and db1 (another service).
fn register_web(server: &ConsulServer) {
    server.register_service(
        ServiceInstance::new("web-a", "web", "", 8001)
            .on_node("node2", "10.0.0.2")
            .tags(&["v1"]),
    );
    server.register_service(
        ServiceInstance::new("web-c", "web", "192.168.0.3", 8003)
            .on_node("node1", "10.0.0.1")
            .tags(&["v1", "canary"])
            .meta("version", "1.1"),
    );
    server.register_service(
        ServiceInstance::new("web-b", "web", "192.168.0.2", 8002)
            .on_node("node1", "10.0.0.1")
            .tags(&["v1"])
            .meta("version", "1.0"),
    );
    server.register_service(
        ServiceInstance::new("web-d", "web", "192.168.0.4", 8004)
            .on_node("node2", "10.0.0.2")
            .tags(&["v2"]),
    );
    server.register_service(ServiceInstance::new("db1", "db", "10.9.9.9", 5432));
}

#[test]
fn service_onetime_lists_passing_instances_sorted_by_node_then_id() {
    let server = ConsulServer::start();
    server.put("app/name", "shop");
    register_web(&server);
    server.set_check("web-c", CheckStatus::Critical);
    let s = Scenario::new();
    s.template("all.tmpl", &instances_template(r#"service(name="web")"#));
    s.resource("all", "all.conf", &["/app"], "");
    s.template(
        "v1.tmpl",
        &instances_template(r#"service(name="web", tag="v1")"#),
    );
    s.resource("v1", "v1.conf", &["/app"], "");
    s.template(
        "any.tmpl",
        &instances_template(r#"service(name="web", passing=false)"#),
    );
    s.resource("any", "any.conf", &["/app"], "");
    s.template(
        "none.tmpl",
        r#"n={{ service(name="nosuch") | length }} db={% for d in service(name="db") %}{{ d.address }}:{{ d.port }}{% endfor %}"#,
    );
    s.resource("none", "none.conf", &["/app"], "");
    onetime(&s, &server, &[]).expect_code(0);
    // Passing only; node1 before node2, then by id; the service address, or
    // the node's when the service has none; tags sorted.
    assert_eq!(
        read(&s.out("all.conf")),
        "node1 web-b web 192.168.0.2:8002 passing [v1] v=1.0\n\
         node2 web-a web 10.0.0.2:8001 passing [v1] v=-\n\
         node2 web-d web 192.168.0.4:8004 passing [v2] v=-\n"
    );
    assert_eq!(
        read(&s.out("v1.conf")),
        "node1 web-b web 192.168.0.2:8002 passing [v1] v=1.0\n\
         node2 web-a web 10.0.0.2:8001 passing [v1] v=-\n"
    );
    assert_eq!(
        read(&s.out("any.conf")),
        "node1 web-b web 192.168.0.2:8002 passing [v1] v=1.0\n\
         node1 web-c web 192.168.0.3:8003 critical [canary,v1] v=1.1\n\
         node2 web-a web 10.0.0.2:8001 passing [v1] v=-\n\
         node2 web-d web 192.168.0.4:8004 passing [v2] v=-\n"
    );
    assert_eq!(read(&s.out("none.conf")), "n=0 db=10.9.9.9:5432");
    // One health query per distinct call, not per render round.
    let health: Vec<String> = server
        .request_log()
        .into_iter()
        .filter(|l| l.contains("/v1/health/"))
        .collect();
    let distinct: BTreeSet<&String> = health.iter().collect();
    assert_eq!(health.len(), distinct.len(), "{health:?}");
    assert_eq!(health.len(), 5, "{health:?}");
}

/// Whether an HAProxy configuration from [`HAPROXY_TEMPLATE`] lists exactly
/// the servers `ids` (instances of [`register_web`]), in that order.
fn backend(ids: &[&str]) -> impl Fn(&str) -> bool + use<> {
    let want: String = ids
        .iter()
        .map(|id| {
            let (node, at) = match *id {
                "web-a" => ("node2", "10.0.0.2:8001"),
                "web-b" => ("node1", "192.168.0.2:8002"),
                "web-c" => ("node1", "192.168.0.3:8003"),
                _ => ("node2", "192.168.0.4:8004"),
            };
            format!("    server {node}-{id} {at} check\n")
        })
        .collect();
    move |t: &str| t.split("balance roundrobin\n").nth(1).unwrap_or_default() == want
}

#[test]
fn service_watch_follows_health_flips_with_haproxy_check() {
    let server = ConsulServer::start();
    server.put("haproxy/port", "8080");
    server.put("other/x", "1");
    register_web(&server);
    let s = Scenario::new();
    let reloads = s.path().join("reloads");
    s.template("haproxy.tmpl", HAPROXY_TEMPLATE);
    s.resource(
        "haproxy",
        "haproxy.cfg",
        &["/haproxy"],
        &format!(
            "check_cmd = \"haproxy -c -f {{{{.src}}}}\"\nreload_cmd = \"echo x >> {}\"\n",
            reloads.display()
        ),
    );
    s.template(
        "v2.tmpl",
        &instances_template(r#"service(name="web", tag="v2")"#),
    );
    s.resource("v2", "v2.conf", &["/haproxy"], "");
    s.template(
        "any.tmpl",
        &instances_template(r#"service(name="web", passing=false)"#),
    );
    s.resource("any", "any.conf", &["/haproxy"], "");
    // Uses no service: a health flip must not render it.
    s.template("kv.tmpl", r#"x={{ getv(key="/other/x") }}"#);
    s.resource("kv", "kv.conf", &["/other"], "");

    let cfg = s.out("haproxy.cfg");
    let confd = watch(&s, &server, &[]);
    confd.expect_file_where(
        &cfg,
        "web-b, web-c, web-a, web-d",
        START_LIMIT,
        backend(&["web-b", "web-c", "web-a", "web-d"]),
    );
    confd.expect_file(&s.out("kv.conf"), "x=1", START_LIMIT);
    // 2 KV prefixes + 3 distinct service queries, whatever the resources.
    expect_held(&server, 5, &confd);
    let before = server.requests();
    std::thread::sleep(Duration::from_secs(2));
    let idle = server.requests() - before;
    eprintln!("idle, 2 KV prefixes + 3 service queries: {idle} requests in 2 s");
    assert!(idle <= 2, "{idle} requests in 2 s while nothing changed");
    assert!(read(&cfg).starts_with("global\n"), "{}", read(&cfg));
    let kv_mtime = fs::metadata(s.out("kv.conf"))
        .and_then(|m| m.modified())
        .expect("mtime");

    // web-c's check turns critical: it leaves haproxy.cfg (but not the
    // passing=false listing, where its status shows).
    server.set_check("web-c", CheckStatus::Critical);
    confd.expect_file_where(
        &cfg,
        "without web-c",
        CHANGE_LIMIT,
        backend(&["web-b", "web-a", "web-d"]),
    );
    confd.expect_file_where(&s.out("any.conf"), "web-c critical", CHANGE_LIMIT, |t| {
        t.contains("web-c web 192.168.0.3:8003 critical")
    });
    // …and comes back when it passes again.
    server.set_check("web-c", CheckStatus::Passing);
    confd.expect_file_where(
        &cfg,
        "with web-c again",
        CHANGE_LIMIT,
        backend(&["web-b", "web-c", "web-a", "web-d"]),
    );
    // Warning is not passing (Consul's ?passing).
    server.set_check("web-b", CheckStatus::Warning);
    confd.expect_file_where(
        &cfg,
        "without web-b",
        CHANGE_LIMIT,
        backend(&["web-c", "web-a", "web-d"]),
    );
    server.set_check("web-b", CheckStatus::Passing);
    confd.expect_file_where(
        &cfg,
        "with web-b again",
        CHANGE_LIMIT,
        backend(&["web-b", "web-c", "web-a", "web-d"]),
    );
    // A node going down takes all of its instances with it.
    server.set_node_check("node2", CheckStatus::Critical);
    confd.expect_file_where(
        &cfg,
        "node1 only",
        CHANGE_LIMIT,
        backend(&["web-b", "web-c"]),
    );
    confd.expect_file(&s.out("v2.conf"), "", CHANGE_LIMIT);
    server.set_node_check("node2", CheckStatus::Passing);
    confd.expect_file_where(
        &cfg,
        "every instance",
        CHANGE_LIMIT,
        backend(&["web-b", "web-c", "web-a", "web-d"]),
    );
    confd.expect_file(
        &s.out("v2.conf"),
        "node2 web-d web 192.168.0.4:8004 passing [v2] v=-\n",
        CHANGE_LIMIT,
    );
    // Registered and deregistered instances come and go.
    server.register_service(
        ServiceInstance::new("web-e", "web", "192.168.0.5", 8005)
            .on_node("node3", "10.0.0.3")
            .tags(&["v2"]),
    );
    confd.expect_file_where(&cfg, "with web-e", CHANGE_LIMIT, |t| {
        t.contains("    server node3-web-e 192.168.0.5:8005 check\n")
    });
    server.deregister_service("web-e");
    confd.expect_file_where(
        &cfg,
        "every instance",
        CHANGE_LIMIT,
        backend(&["web-b", "web-c", "web-a", "web-d"]),
    );
    // Another service changing renders nothing that does not use it.
    server.set_check("db1", CheckStatus::Critical);
    std::thread::sleep(Duration::from_millis(500));

    // The KV-only resource was never rendered again; haproxy -c accepted
    // every configuration (no check failure); one reload per change.
    assert_eq!(
        fs::metadata(s.out("kv.conf"))
            .and_then(|m| m.modified())
            .expect("mtime"),
        kv_mtime
    );
    assert_eq!(confd.lines_with("check_cmd"), 0, "{}", confd.stderr());
    let reload_count = read(&reloads).lines().count();
    assert_eq!(reload_count, 9, "{}", confd.stderr());
    expect_held(&server, 5, &confd);

    // Latency of a health flip, check → file, over 20 flips: any.conf (no
    // check_cmd; rendered first) and haproxy.cfg (after `haproxy -c`).
    let mut plain = Vec::new();
    let mut samples = Vec::new();
    for n in 0..20 {
        std::thread::sleep(SPACING);
        let (status, want): (CheckStatus, &[&str]) = if n % 2 == 0 {
            (CheckStatus::Critical, &["web-b", "web-a", "web-d"])
        } else {
            (CheckStatus::Passing, &["web-b", "web-c", "web-a", "web-d"])
        };
        let line = format!("web-c web 192.168.0.3:8003 {} ", status.as_str());
        let start = Instant::now();
        server.set_check("web-c", status);
        confd.expect_file_where(&s.out("any.conf"), &line, CHANGE_LIMIT, |t| {
            t.contains(&line)
        });
        plain.push(start.elapsed());
        confd.expect_file_where(&cfg, "the flip", CHANGE_LIMIT, backend(want));
        samples.push(start.elapsed());
    }
    let (median, p95, max) = stats(plain);
    eprintln!(
        "health flip → file (no check_cmd), 20 flips: median {median:?}, p95 {p95:?}, max {max:?}"
    );
    let (median, p95, max) = stats(samples);
    eprintln!(
        "health flip → haproxy.cfg (with haproxy -c), 20 flips: median {median:?}, p95 {p95:?}, max {max:?}"
    );
    assert!(p95 < Duration::from_secs(2), "p95 {p95:?}");
    assert!(confd.terminate(STOP_LIMIT).is_some_and(|s| s.success()));
}

#[test]
fn service_with_the_env_backend_and_consul_addr() {
    let server = ConsulServer::start();
    register_web(&server);
    let mut s = Scenario::new();
    s.set_env("APP_NAME", "shop");
    s.template(
        "app.tmpl",
        r#"name={{ getv(key="/app/name") }}
{% for i in service(name="web", tag="v1") %}{{ i.id }} {{ i.address }}:{{ i.port }}
{% endfor %}"#,
    );
    s.resource("app", "app.conf", &["/app"], "");
    let addr = server.address();
    let run = s.onetime_env(&["-consul-addr", &addr]);
    run.expect_code(0);
    let both = "name=shop\nweb-b 192.168.0.2:8002\nweb-c 192.168.0.3:8003\nweb-a 10.0.0.2:8001\n";
    assert_eq!(read(&s.out("app.conf")), both);
    // Only the health endpoint was asked; the KV store is the environment.
    assert!(
        server
            .request_log()
            .iter()
            .all(|l| l.starts_with("GET /v1/health/service/web?")),
        "{:?}",
        server.request_log()
    );

    // The daemon: env has no change notification (it polls), but the
    // service catalog is still followed with blocking queries.
    let confdir = s.confdir();
    let confd = Confd::spawn(
        &s,
        &[
            "-backend",
            "env",
            "-confdir",
            &confdir,
            "-watch",
            "-consul-addr",
            &addr,
        ]
        .map(str::to_string),
    );
    expect_held(&server, 1, &confd);
    server.set_check("web-a", CheckStatus::Critical);
    confd.expect_file(
        &s.out("app.conf"),
        "name=shop\nweb-b 192.168.0.2:8002\nweb-c 192.168.0.3:8003\n",
        CHANGE_LIMIT,
    );
    server.set_check("web-a", CheckStatus::Passing);
    confd.expect_file(&s.out("app.conf"), both, CHANGE_LIMIT);
}

#[test]
fn service_with_the_env_backend_and_an_acl_token() {
    let server = ConsulServer::start_with(ConsulOptions {
        token: Some(TOKEN.to_string()),
        ..ConsulOptions::default()
    });
    register_web(&server);
    let mut s = Scenario::new();
    s.set_env("APP_NAME", "shop");
    s.template(
        "app.tmpl",
        r#"{{ getv(key="/app/name") }}:{% for i in service(name="web", tag="v2") %}{{ i.id }}{% endfor %}"#,
    );
    s.resource("app", "app.conf", &["/app"], "");
    let addr = server.address();
    let run = s.onetime_env(&["-consul-addr", &addr]);
    run.expect_code(1);
    assert!(
        run.line_with("403").contains("Permission denied"),
        "{}",
        run.stderr
    );
    s.set_env("CONSUL_HTTP_TOKEN", TOKEN);
    s.onetime_env(&["-consul-addr", &addr]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "shop:web-d");
}

/// `-auth-token` and `-datacenter` are refused with any backend but etcd,
/// etcdv3 and consul ("-auth-token: only the etcd, etcdv3 and consul backends
/// use this flag, not the env backend", exit 2), although
/// `service(...)` (any backend, `-consul-addr`) sends both to Consul: with an
/// ACL-protected Consul, only CONSUL_HTTP_TOKEN works.
#[test]
fn service_with_the_env_backend_takes_auth_token_and_datacenter_flags() {
    let server = ConsulServer::start_with(ConsulOptions {
        token: Some(TOKEN.to_string()),
        datacenter: "eu-west-1".to_string(),
        ..ConsulOptions::default()
    });
    register_web(&server);
    let mut s = Scenario::new();
    s.set_env("APP_NAME", "shop");
    s.template(
        "app.tmpl",
        r#"{{ getv(key="/app/name") }}:{% for i in service(name="web", tag="v2") %}{{ i.id }}{% endfor %}"#,
    );
    s.resource("app", "app.conf", &["/app"], "");
    let addr = server.address();
    s.onetime_env(&[
        "-consul-addr",
        &addr,
        "-auth-token",
        TOKEN,
        "-datacenter",
        "eu-west-1",
    ])
    .expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "shop:web-d");
}

#[test]
fn service_queries_that_depend_on_kv_data_are_discovered() {
    let server = ConsulServer::start();
    register_web(&server);
    server.put("routes/shop", "web");
    server.put("routes/data", "db");
    let s = Scenario::new();
    s.template(
        "routes.tmpl",
        r#"{% for r in ls(key="/routes") %}{{ r }}:{% for i in service(name=getv(key="/routes/" ~ r)) %} {{ i.id }}{% endfor %}
{% endfor %}"#,
    );
    s.resource("routes", "routes.conf", &["/routes"], "");
    onetime(&s, &server, &[]).expect_code(0);
    assert_eq!(
        read(&s.out("routes.conf")),
        "data: db1\nshop: web-b web-c web-a web-d\n"
    );

    // Under -watch, pointing a route at another service starts following it.
    let confd = watch(&s, &server, &[]);
    expect_held(&server, 3, &confd);
    server.put("routes/data", "web");
    confd.expect_file(
        &s.out("routes.conf"),
        "data: web-b web-c web-a web-d\nshop: web-b web-c web-a web-d\n",
        CHANGE_LIMIT,
    );
    // The db query is no longer used: its blocking query goes away.
    expect_held(&server, 2, &confd);
    server.set_check("web-a", CheckStatus::Critical);
    confd.expect_file(
        &s.out("routes.conf"),
        "data: web-b web-c web-d\nshop: web-b web-c web-d\n",
        CHANGE_LIMIT,
    );
}

/// A service query that the templates stop using loses its blocking query
/// but keeps its cached instances; when a template asks for it again, confd
/// renders (and reloads) those stale instances first, and only corrects the
/// file once the new blocking query answers.
#[test]
fn service_query_used_again_is_not_rendered_from_stale_data() {
    let server = ConsulServer::start();
    register_web(&server);
    server.put("routes/data", "db");
    let s = Scenario::new();
    let reloads = s.path().join("reloads");
    s.template(
        "routes.tmpl",
        r#"{% for r in ls(key="/routes") %}{{ r }}:{% for i in service(name=getv(key="/routes/" ~ r)) %} {{ i.id }}{% endfor %}
{% endfor %}"#,
    );
    s.resource(
        "routes",
        "routes.conf",
        &["/routes"],
        &format!("reload_cmd = \"echo x >> {}\"\n", reloads.display()),
    );
    let confd = watch(&s, &server, &[]);
    confd.expect_file(&s.out("routes.conf"), "data: db1\n", START_LIMIT);
    expect_held(&server, 2, &confd);
    // The route moves to web: the db query is no longer followed…
    server.put("routes/data", "web");
    confd.expect_file(
        &s.out("routes.conf"),
        "data: web-b web-c web-a web-d\n",
        CHANGE_LIMIT,
    );
    expect_held(&server, 2, &confd);
    // …db1 fails meanwhile…
    server.set_check("db1", CheckStatus::Critical);
    std::thread::sleep(Duration::from_millis(500));
    let before = read(&reloads).lines().count();
    // …and the route comes back to db: db1 must not be rendered.
    server.put("routes/data", "db");
    let stale = poll_file(&s.out("routes.conf"), Duration::from_secs(1), |t| {
        t == "data: db1\n"
    });
    confd.expect_file(&s.out("routes.conf"), "data:\n", CHANGE_LIMIT);
    std::thread::sleep(Duration::from_millis(500));
    let reloaded = read(&reloads).lines().count() - before;
    assert!(
        stale.is_none(),
        "the critical db1 was rendered from stale data\n{}",
        confd.stderr()
    );
    assert_eq!(reloaded, 1, "{}", confd.stderr());
}

// ---------------------------------------------------------------------------
// 9. Real traffic through HAProxy
// ---------------------------------------------------------------------------

/// The in-tree Consul API test server with `/haproxy/port` and
/// `/haproxy/domains/shop.example.com = web`, one upstream per instance of
/// service `web`, HAProxy on its bootstrap configuration, then `confd -watch`
/// with `examples/haproxy-consul/confd`. Dropped in field order after confd
/// has been stopped.
struct Stack {
    confd: Option<Confd>,
    haproxy: Haproxy,
    upstreams: Vec<Upstream>,
    server: ConsulServer,
    dir: tempfile::TempDir,
    port: u16,
}

impl Stack {
    fn start(names: &[&str]) -> Stack {
        let dir = tempfile::tempdir().expect("scratch dir");
        let server = ConsulServer::start();
        let port = free_port();
        server.put("haproxy/port", &port.to_string());
        server.put("haproxy/domains/shop.example.com", "web");
        let haproxy = Haproxy::start_bootstrap(dir.path(), port);
        let mut stack = Stack {
            confd: None,
            haproxy,
            upstreams: Vec::new(),
            server,
            dir,
            port,
        };
        for name in names {
            let upstream = Upstream::start(name);
            stack.server.register_service(ServiceInstance::new(
                name,
                "web",
                "127.0.0.1",
                upstream.port(),
            ));
            stack.upstreams.push(upstream);
        }
        let confdir = crate::common::repo_root().join("examples/haproxy-consul/confd");
        let mut command = crate::common::confd_command(
            stack.dir.path(),
            [
                "-backend",
                "consul",
                "-node",
                &stack.server.address(),
                "-confdir",
            ],
        );
        command.arg(confdir).arg("-watch");
        stack.confd = Some(Confd::spawn_command(command, stack.dir.path()));
        stack.wait_for_names(names);
        stack
    }

    fn confd_log(&self) -> String {
        self.confd.as_ref().map(Confd::stderr).unwrap_or_default()
    }

    fn report(&self) -> String {
        self.haproxy.report(&self.confd_log())
    }

    fn upstream(&self, name: &str) -> &Upstream {
        self.upstreams
            .iter()
            .find(|u| u.name() == name)
            .expect("an upstream of that name")
    }

    fn batch(&self, n: usize) -> Vec<String> {
        batch(self.port, "shop.example.com", n)
    }

    /// Sends batches of 9 requests until one is answered by exactly `names`;
    /// panics past [`TRAFFIC_LIMIT`]. Returns how long it took.
    fn wait_for_names(&self, names: &[&str]) -> Duration {
        let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        wait_for_batch(self.port, "shop.example.com", TRAFFIC_LIMIT, |batch| {
            batch.iter().cloned().collect::<BTreeSet<_>>() == want
        })
        .unwrap_or_else(|batch| {
            panic!(
                "not answered by exactly {want:?} within {TRAFFIC_LIMIT:?}; last batch {batch:?}\n{}",
                self.report()
            )
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // confd first, so that it reloads nothing that is going away.
        if let Some(confd) = self.confd.take() {
            confd.terminate(STOP_LIMIT);
        }
    }
}

#[test]
fn haproxy_a_critical_instance_gets_no_traffic_until_it_passes_again() {
    let stack = Stack::start(&["web1", "web2", "web3"]);
    assert_eq!(stack.haproxy.loads(), 2, "{}", stack.report());

    // Requests keep flowing through every change: none may fail.
    let hammer = Hammer::start(stack.port, "shop.example.com", &["web1", "web2", "web3"]);

    stack.server.set_check("web2", CheckStatus::Critical);
    let took = stack.wait_for_names(&["web1", "web3"]);
    eprintln!("web2 critical → no more traffic after {took:?}");
    let hits = stack.upstream("web2").hits();
    for _ in 0..3 {
        let batch = stack.batch(9);
        assert!(!batch.contains(&"web2".to_string()), "{batch:?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        stack.upstream("web2").hits(),
        hits,
        "web2 still got requests"
    );

    stack.server.set_check("web2", CheckStatus::Passing);
    let took = stack.wait_for_names(&["web1", "web2", "web3"]);
    eprintln!("web2 passing → traffic again after {took:?}");
    assert!(stack.upstream("web2").hits() > hits);

    let (sent, failures) = hammer.stop();
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}\n{}",
        failures.len(),
        stack.report()
    );
    assert!(sent > 0);
    let cfg = read(&stack.dir.path().join("haproxy.cfg"));
    assert!(
        cfg.contains("    # service web, passing instances only\n"),
        "{cfg}"
    );
}

#[test]
fn haproxy_a_node_failure_and_a_new_instance() {
    let mut stack = Stack::start(&["web1", "web2"]);
    // web3 runs on node2; node2 fails: only its instances leave.
    let web3 = Upstream::start("web3");
    stack.server.register_service(
        ServiceInstance::new("web3", "web", "127.0.0.1", web3.port()).on_node("node2", "127.0.0.1"),
    );
    stack.upstreams.push(web3);
    stack.wait_for_names(&["web1", "web2", "web3"]);
    stack.server.set_node_check("node2", CheckStatus::Critical);
    stack.wait_for_names(&["web1", "web2"]);
    stack.server.set_node_check("node2", CheckStatus::Passing);
    stack.wait_for_names(&["web1", "web2", "web3"]);
    stack.server.deregister_service("web1");
    stack.wait_for_names(&["web2", "web3"]);

    // Bad KV data: haproxy -c rejects the render, HAProxy keeps serving.
    let loads = stack.haproxy.loads();
    let before = read(&stack.dir.path().join("haproxy.cfg"));
    stack.server.put("haproxy/port", "notaport");
    assert!(
        wait_until(TRAFFIC_LIMIT, || stack
            .confd_log()
            .contains("check_cmd rejected")),
        "{}",
        stack.report()
    );
    assert_eq!(read(&stack.dir.path().join("haproxy.cfg")), before);
    assert_eq!(stack.haproxy.loads(), loads);
    stack.wait_for_names(&["web2", "web3"]);
}
