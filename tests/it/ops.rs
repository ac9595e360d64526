//! Running in production, end to end: the systemd notifications confd sends
//! (to a datagram socket the test binds, as systemd would), and the
//! `-metrics-addr` listener's `/metrics` (parsed strictly as OpenMetrics
//! text), `/health` and `/ready`, against the in-tree Consul API test
//! server (slow answers and an outage on demand).

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT, STOP_LIMIT, args};
use crate::common::consul::{ConsulOptions, ConsulServer};
use crate::common::ops::{
    Notifications, expect_metric, expect_status, get, listening, parse_openmetrics, proc_address,
    scrape, value,
};
use crate::common::{Scenario, free_port, read};

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let good = "# HELP confd_x X.\n# TYPE confd_x counter\nconfd_x_total{a=\"b\\\"c\"} 2\n# EOF\n";
    assert_eq!(
        parse_openmetrics(good).expect("good")["confd_x_total{a=\"b\\\"c\"}"],
        2.0
    );
    for bad in [
        "# TYPE confd_x counter\nconfd_x 2\n# EOF\n",
        "# TYPE confd_x gauge\nconfd_x{a=\"b} 1\n# EOF\n",
        "# TYPE confd_x gauge\nconfd_x one\n# EOF\n",
        "# TYPE confd_x gauge\nconfd_y 1\n# EOF\n",
        "# TYPE confd_x gauge\nconfd_x 1\n",
        "# HELP confd_y Y.\n# TYPE confd_x gauge\nconfd_x 1\n# EOF\n",
    ] {
        assert!(parse_openmetrics(bad).is_err(), "accepted {bad:?}");
    }
}

/// A resource `good` writing `a=<value of /app/a>` to out/good.conf (and
/// the same template for a `checked` resource a test may add).
fn scenario() -> Scenario {
    let s = Scenario::new();
    for name in ["good", "checked"] {
        s.template(&format!("{name}.tmpl"), r#"a={{ getv(key="/app/a") }}"#);
    }
    s.resource("good", "good.conf", &["/app"], "");
    s
}

// ---------------------------------------------------------------------------
// systemd notification

#[test]
fn systemd_hears_ready_only_once_the_files_are_written_then_watchdog_reload_and_stop() {
    let server = ConsulServer::start();
    server.put("app/a", "1");
    // The first read of the pass is slow: READY=1 sent at startup would
    // come long before the file exists.
    let slow = Arc::new(AtomicBool::new(true));
    let armed = slow.clone();
    server.on_request(move |_| {
        if armed.swap(false, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1500));
        }
        Vec::new()
    });
    let mut s = scenario();
    let dest = s.out("good.conf");
    let notify = Notifications::bind(s.path(), dest.clone());
    s.set_env("NOTIFY_SOCKET", &notify.path.display().to_string());
    s.set_env("WATCHDOG_USEC", "400000");
    let started = Instant::now();
    let confd = Confd::spawn(&s, &args(&s, "consul", &[server.address()], &[]));

    let ready = notify.expect("READY=1", 0, START_LIMIT);
    let messages = notify.all();
    assert!(
        messages[ready].dest_existed,
        "READY=1 before the file: {messages:#?}"
    );
    assert!(
        messages[ready].at - started >= Duration::from_millis(1400),
        "{messages:#?}"
    );
    assert!(
        messages[ready]
            .text
            .contains("STATUS=1 resource in sync; backend consul up"),
        "{messages:#?}"
    );
    assert!(
        messages[..ready]
            .iter()
            .all(|m| !m.dest_existed && !m.text.contains("READY"))
    );
    assert!(
        messages[0].text.starts_with("STATUS=first pass"),
        "{messages:#?}"
    );
    // The loop pinged the watchdog while the slow read went on (every
    // 200 ms for WATCHDOG_USEC=400000), and goes on pinging.
    let pings_before = messages[..ready]
        .iter()
        .filter(|m| m.text == "WATCHDOG=1")
        .count();
    assert!(
        pings_before >= 4,
        "{pings_before} pings during the first pass: {messages:#?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let pings_after = notify.all()[ready..]
        .iter()
        .filter(|m| m.text == "WATCHDOG=1")
        .count();
    assert!((3..=7).contains(&pings_after), "{pings_after} pings in 1 s");

    // SIGHUP: RELOADING=1 with the monotonic time, then READY=1.
    let from = notify.all().len();
    confd.signal("HUP");
    let reloading = notify.expect("RELOADING=1\nMONOTONIC_USEC=", from, CHANGE_LIMIT);
    let usec = notify.all()[reloading]
        .text
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        usec.is_some_and(|u| u > 0),
        "{:#?}",
        notify.all()[reloading]
    );
    notify.expect("READY=1", reloading + 1, CHANGE_LIMIT);

    // SIGTERM: STOPPING=1, then a clean exit.
    let from = notify.all().len();
    let status = confd.terminate(STOP_LIMIT).expect("confd stops");
    assert!(status.success(), "{status:?}");
    notify.expect("STOPPING=1", from, CHANGE_LIMIT);
}

#[test]
fn a_one_shot_run_neither_notifies_nor_listens() {
    let server = ConsulServer::start();
    server.put("app/a", "1");
    let mut s = scenario();
    let notify = Notifications::bind(s.path(), s.out("good.conf"));
    s.set_env("NOTIFY_SOCKET", &notify.path.display().to_string());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let run = Confd::spawn(
        &s,
        &args(
            &s,
            "consul",
            &[server.address()],
            &["-onetime", "-metrics-addr", &addr],
        ),
    )
    .finish(START_LIMIT);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("-metrics-addr is ignored with -onetime"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&s.out("good.conf")), "a=1");
    std::thread::sleep(Duration::from_millis(100));
    assert!(notify.all().is_empty(), "{:#?}", notify.all());
}

// ---------------------------------------------------------------------------
// -metrics-addr

#[test]
fn metrics_and_ready_follow_changes_a_failing_check_and_an_outage() {
    let mut server = ConsulServer::start();
    server.put("app/a", "1");
    let consul_port = server.port();
    let s = scenario();
    s.resource(
        "checked",
        "checked.conf",
        &["/app"],
        "check_cmd = \"! grep -q bad {{.src}}\"\n",
    );
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            "consul",
            &[server.address()],
            &["-watch", "-metrics-addr", &addr],
        ),
    );
    expect_status(port, "/ready", 200, &confd, START_LIMIT);
    assert_eq!(get(port, "/health"), (200, "ok\n".to_string()));
    assert_eq!(get(port, "/nope").0, 404);
    assert_eq!(
        listening(confd.pid()),
        vec![proc_address(port)],
        "only the address given"
    );

    let m = scrape(port);
    let good = "resource=\"good.toml\"";
    let checked = "resource=\"checked.toml\"";
    assert_eq!(
        value(&m, &format!("confd_writes_total{{{good}}}")),
        1.0,
        "{m:#?}"
    );
    assert_eq!(
        value(&m, &format!("confd_renders_total{{{checked}}}")),
        1.0,
        "{m:#?}"
    );
    assert_eq!(value(&m, "confd_ready"), 1.0);
    assert_eq!(value(&m, "confd_backend_up{backend=\"consul\"}"), 1.0);
    assert!(value(&m, "confd_backend_reads_total{backend=\"consul\"}") >= 1.0);
    assert!(
        value(&m, "confd_render_duration_seconds_count") >= 1.0,
        "{m:#?}"
    );
    assert_eq!(
        value(&m, "confd_command_duration_seconds_count{kind=\"check\"}"),
        1.0
    );
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        m.iter()
            .any(|(k, v)| k.starts_with("confd_build_info{") && k.contains(&version) && *v == 1.0)
    );
    let synced = value(&m, &format!("confd_last_sync_timestamp_seconds{{{good}}}"));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (now - 60.0..=now + 1.0).contains(&synced),
        "{synced} vs {now}"
    );

    // A change: counters move.
    server.put("app/a", "2");
    confd.expect_file(&s.out("good.conf"), "a=2", CHANGE_LIMIT);
    let m = expect_metric(
        port,
        &format!("confd_writes_total{{{good}}}"),
        |v| v == 2.0,
        &confd,
    );
    assert!(
        value(
            &m,
            "confd_watch_events_total{backend=\"consul\",kind=\"change\"}"
        ) >= 1.0,
        "{m:#?}"
    );
    assert!(value(&m, "confd_passes_total") >= 2.0);

    // A failing check: /ready names the resource and its step.
    server.put("app/a", "bad");
    confd.expect_file(&s.out("good.conf"), "a=bad", CHANGE_LIMIT);
    let body = expect_status(port, "/ready", 503, &confd, CHANGE_LIMIT);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        serde_json::json!({"ready": false, "first_pass_done": true, "failing": {"checked.toml": "check"}})
    );
    let m = scrape(port);
    assert_eq!(
        value(
            &m,
            &format!("confd_failures_total{{{checked},step=\"check\"}}")
        ),
        1.0,
        "{m:#?}"
    );
    assert_eq!(
        value(&m, &format!("confd_resource_failing{{{checked}}}")),
        1.0
    );
    assert_eq!(value(&m, "confd_ready"), 0.0);
    assert_eq!(
        read(&s.out("checked.conf")),
        "a=2",
        "the refused file stays as it was"
    );

    // Fixed: ready again.
    server.put("app/a", "3");
    expect_status(port, "/ready", 200, &confd, CHANGE_LIMIT);
    assert_eq!(
        value(
            &scrape(port),
            &format!("confd_resource_failing{{{checked}}}")
        ),
        0.0
    );

    // An outage: errors counted, the backend down, every resource failing,
    // and the process still healthy.
    server.stop();
    let m = expect_metric(
        port,
        "confd_backend_up{backend=\"consul\"}",
        |v| v == 0.0,
        &confd,
    );
    assert!(
        value(&m, "confd_backend_errors_total{backend=\"consul\"}") >= 1.0,
        "{m:#?}"
    );
    let body = expect_status(port, "/ready", 503, &confd, CHANGE_LIMIT);
    assert!(body.contains("\"good.toml\":\"backend\""), "{body}");
    assert_eq!(get(port, "/health").0, 200);

    // Back: the watch reconnects and everything is in sync again.
    let server = ConsulServer::start_with(ConsulOptions {
        port: Some(consul_port),
        ..ConsulOptions::default()
    });
    server.put("app/a", "4");
    confd.expect_file(&s.out("checked.conf"), "a=4", CHANGE_LIMIT);
    expect_status(port, "/ready", 200, &confd, CHANGE_LIMIT);
    let m = expect_metric(
        port,
        "confd_backend_reconnects_total{backend=\"consul\"}",
        |v| v >= 1.0,
        &confd,
    );
    assert_eq!(value(&m, "confd_backend_up{backend=\"consul\"}"), 1.0);
}

#[test]
fn an_address_in_use_is_refused_with_exit_2_before_anything_is_written() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let mut s = scenario();
    s.write("data.yaml", "app:\n  a: 1\n");
    let data = s.path().join("data.yaml").display().to_string();
    let run = Confd::spawn(
        &s,
        &args(
            &s,
            "file",
            &[] as &[&str],
            &["-file", &data, "-metrics-addr", &addr],
        ),
    )
    .finish(START_LIMIT);
    run.expect_code(2);
    let line = run.line_with("-metrics-addr");
    assert!(line.contains(&addr) && line.contains("in use"), "{line}");
    assert!(!s.out("good.conf").exists());

    let run = Confd::spawn(
        &s,
        &args(
            &s,
            "file",
            &[] as &[&str],
            &["-file", &data, "-metrics-addr", "nowhere"],
        ),
    )
    .finish(START_LIMIT);
    run.expect_code(2);
    assert!(
        run.line_with("-metrics-addr")
            .contains("\"nowhere\": not a HOST:PORT"),
        "{}",
        run.stderr
    );

    // The same from CONFD_METRICS_ADDR.
    s.set_env("CONFD_METRICS_ADDR", &addr);
    let run =
        Confd::spawn(&s, &args(&s, "file", &[] as &[&str], &["-file", &data])).finish(START_LIMIT);
    run.expect_code(2);
    assert!(
        run.line_with("-metrics-addr").contains("in use"),
        "{}",
        run.stderr
    );
    assert!(!s.out("good.conf").exists());
}

#[test]
fn nothing_listens_without_the_flag() {
    let s = scenario();
    s.write("data.yaml", "app:\n  a: 1\n");
    let data = s.path().join("data.yaml").display().to_string();
    let confd = Confd::spawn(&s, &args(&s, "file", &[] as &[&str], &["-file", &data]));
    confd.expect_file(&s.out("good.conf"), "a=1", START_LIMIT);
    assert_eq!(listening(confd.pid()), Vec::<String>::new());
    // The check can see a listener: the same daemon with the flag has one.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let with = Confd::spawn(
        &s,
        &args(
            &s,
            "file",
            &[] as &[&str],
            &["-file", &data, "-metrics-addr", &addr],
        ),
    );
    expect_status(port, "/health", 200, &with, START_LIMIT);
    assert_eq!(listening(with.pid()), vec![proc_address(port)]);
}
