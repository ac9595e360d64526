//! DNS SRV end to end: the `lookupSRV` template helper and backend node
//! discovery with `-srv-record` / `-srv-domain`, against a fake DNS server on
//! 127.0.0.1 (selected with CONFD_DNS_SERVER).

use std::fs;

use crate::common::Scenario;
use crate::common::dns::FakeDns;
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
