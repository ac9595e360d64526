//! DNS end to end: the `lookupSRV` and `lookupIP` template helpers and backend
//! node discovery with `-srv-record` / `-srv-domain`, against fake DNS servers
//! on 127.0.0.1 (selected with CONFD_DNS_SERVER), with resolv.conf options and
//! search lists from a file of the test's own (CONFD_RESOLV_CONF).

use std::fs;
use std::time::{Duration, Instant};

use crate::common::Scenario;
use crate::common::confd::Confd;
use crate::common::dns::{FakeDns, Rr};
use crate::common::etcd::Etcd;

#[test]
fn lookup_srv_renders_records_in_a_stable_order() {
    let dns = FakeDns::start(vec![
        (20, 5, 8002, "b.example.com"),
        (10, 1, 8001, "z.example.com"),
        (10, 9, 8003, "a.example.com"),
    ]);
    let mut s = Scenario::new();
    s.set_env("CONFD_DNS_SERVER", &dns.address())
        .set_env("X", "1");
    s.template(
        "srv.tmpl",
        "{% for r in lookupSRV(service=\"http\", proto=\"tcp\", name=\"example.com\") %}{{ r.priority }} {{ r.weight }} {{ r.target }}:{{ r.port }}\n{% endfor %}",
    );
    s.resource("srv", "srv.txt", &["/x"], "");
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("srv.txt")).expect("rendered"),
        "10 9 a.example.com:8003\n10 1 z.example.com:8001\n20 5 b.example.com:8002\n"
    );
}

fn etcd_scenario() -> Scenario {
    let s = Scenario::new();
    s.template("v.tmpl", "{{ getv(key=\"/app/value\") }}\n");
    s.resource("v", "v.txt", &["/app"], "");
    s
}

#[test]
fn srv_record_finds_the_etcd_nodes() {
    let etcd = Etcd::start();
    etcd.put_v2("/app/value", "found-by-srv");
    let port = etcd.client_port();
    // A dead node first: confd fails over to the live one.
    let dead = crate::common::free_port();
    let dns = FakeDns::start(vec![(0, 0, dead, "127.0.0.1"), (1, 0, port, "127.0.0.1")]);
    let mut s = etcd_scenario();
    s.set_env("CONFD_DNS_SERVER", &dns.address());
    let confdir = s.confdir();
    s.run(&[
        "-onetime",
        "-backend",
        "etcd",
        "-srv-record",
        "_etcd._tcp.test.",
        "-confdir",
        &confdir,
    ])
    .expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("v.txt")).expect("out"),
        "found-by-srv\n"
    );
    fs::remove_file(s.out("v.txt")).expect("rm");
    s.run(&[
        "-onetime",
        "-backend",
        "etcd",
        "-srv-domain",
        "test",
        "-scheme",
        "http",
        "-confdir",
        &confdir,
    ])
    .expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("v.txt")).expect("out"),
        "found-by-srv\n"
    );
}

#[test]
fn srv_record_without_answers_is_a_configuration_error() {
    let dns = FakeDns::start(vec![]);
    let mut s = etcd_scenario();
    s.set_env("CONFD_DNS_SERVER", &dns.address());
    let run = s.run(&[
        "-onetime",
        "-backend",
        "etcd",
        "-srv-domain",
        "test",
        "-confdir",
        &s.confdir(),
    ]);
    run.expect_code(2);
    assert!(
        run.line_with("_etcd._tcp.test").contains("no SRV records"),
        "{}",
        run.stderr
    );
}

/// A resolv.conf of the scenario's own, named by CONFD_RESOLV_CONF.
fn resolv_conf(s: &mut Scenario, text: &str) {
    let path = s.write("resolv.conf", text).display().to_string();
    s.set_env("CONFD_RESOLV_CONF", &path);
}

#[test]
fn silent_name_server_fails_lookup_srv_within_the_bound() {
    let dns = FakeDns::silent();
    let mut s = Scenario::new();
    s.set_env("CONFD_DNS_SERVER", &dns.address())
        .set_env("X", "1");
    // The bound is timeout × attempts: 2 s here.
    resolv_conf(&mut s, "options timeout:1 attempts:2\n");
    s.template(
        "srv.tmpl",
        "{% for r in lookupSRV(service=\"http\", proto=\"tcp\", name=\"example.com\") %}{{ r.target }}\n{% endfor %}",
    );
    s.resource("srv", "srv.txt", &["/x"], "");
    let confdir = s.confdir();
    let args: Vec<String> = ["-onetime", "-backend", "env", "-confdir", &confdir]
        .map(String::from)
        .to_vec();
    let started = Instant::now();
    let run = Confd::spawn(&s, &args).finish(Duration::from_secs(20));
    let took = started.elapsed();
    run.expect_code(1);
    let line = run.line_with("_http._tcp.example.com");
    assert!(
        line.contains("lookupSRV: SRV lookup of _http._tcp.example.com: no answer within 2s"),
        "{line}"
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(!dns.asked().is_empty(), "the silent server was asked");
    assert!(!s.out("srv.txt").exists());
}

#[test]
fn silent_name_server_makes_srv_discovery_a_bounded_configuration_error() {
    let dns = FakeDns::silent();
    let mut s = etcd_scenario();
    s.set_env("CONFD_DNS_SERVER", &dns.address());
    resolv_conf(&mut s, "options timeout:1 attempts:1\n");
    let confdir = s.confdir();
    let args: Vec<String> = [
        "-onetime",
        "-backend",
        "etcd",
        "-srv-domain",
        "test",
        "-confdir",
        &confdir,
    ]
    .map(String::from)
    .to_vec();
    let started = Instant::now();
    let run = Confd::spawn(&s, &args).finish(Duration::from_secs(20));
    run.expect_code(2);
    let line = run.line_with("_etcd._tcp.test");
    assert!(line.contains("no answer within 1s"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn search_list_and_ndots_of_resolv_conf_apply_to_both_helpers() {
    let dns = FakeDns::with_names(vec![
        (
            "_http._tcp.web.example.test",
            vec![
                Rr::Srv((10, 1, 8001, "b.example.test.")),
                Rr::Srv((10, 5, 8002, "a.example.test.")),
            ],
        ),
        (
            "db.example.test",
            vec![
                Rr::A([10, 0, 0, 2]),
                Rr::A([10, 0, 0, 1]),
                Rr::A([10, 0, 0, 2]),
            ],
        ),
    ]);
    let mut s = Scenario::new();
    s.set_env("CONFD_DNS_SERVER", &dns.address())
        .set_env("X", "1");
    // `_http._tcp.web` has 3 labels: with ndots:5 the search list comes first.
    resolv_conf(
        &mut s,
        "search other.test example.test\noptions ndots:5 timeout:1 attempts:2\nnameserver 127.0.0.1\n",
    );
    s.template(
        "dns.tmpl",
        "{% for r in lookupSRV(service=\"http\", proto=\"tcp\", name=\"web\") %}{{ r.target }}:{{ r.port }}\n{% endfor %}\
         db {{ lookupIP(name=\"db\") | join(sep=\",\") }}\n\
         none [{{ lookupIP(name=\"nothere.example.test.\") | join(sep=\",\") }}]\n\
         srv none [{{ lookupSRV(service=\"x\", proto=\"tcp\", name=\"example.test.\") | length }}]\n\
         local {{ lookupIP(name=\"localhost\") | first }}\n",
    );
    s.resource("dns", "dns.txt", &["/x"], "");
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("dns.txt")).expect("rendered"),
        "a.example.test:8002\nb.example.test:8001\n\
         db 10.0.0.1,10.0.0.2\n\
         none []\n\
         srv none [0]\n\
         local 127.0.0.1\n"
    );
    let asked = dns.asked();
    let position = |q: &str| asked.iter().position(|a| a == q);
    let other = position("_http._tcp.web.other.test 33").expect("other.test asked");
    let found = position("_http._tcp.web.example.test 33").expect("example.test asked");
    assert!(other < found, "{asked:?}");
    assert_eq!(position("_http._tcp.web 33"), None, "{asked:?}");
    assert!(
        !asked.iter().any(|a| a.starts_with("localhost")),
        "{asked:?}"
    );
}
