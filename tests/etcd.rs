//! The etcd backends against a real etcd (Debian's etcd-server, started by
//! the shared helper on free 127.0.0.1 ports).

mod common;

use std::fs;

use common::Scenario;
use common::etcd::Etcd;

fn seed_scenario() -> Scenario {
    let s = Scenario::new();
    s.template(
        "web.tmpl",
        "{% for d in lsdir(key=\"/services/web\") %}{{ d }}:{% for h in lsdir(key=\"/services/web/\" ~ d) %} {{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/ip\") }}:{{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/port\") }}{% endfor %}\n{% endfor %}",
    );
    s.resource("web", "web.conf", &["/services/web"], "");
    s
}

#[test]
fn v2_onetime_renders_the_seed_layout() {
    let etcd = Etcd::start();
    etcd.put_v2("/services/web/a.com/h1/ip", "10.0.0.1");
    etcd.put_v2("/services/web/a.com/h1/port", "80");
    etcd.put_v2("/services/web/b.com/h2/ip", "10.0.0.2");
    etcd.put_v2("/services/web/b.com/h2/port", "81");
    let s = seed_scenario();
    s.run(&[
        "-onetime",
        "-backend",
        "etcd",
        "-node",
        &etcd.url(),
        "-confdir",
        &s.confdir(),
    ])
    .expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("web.conf")).expect("rendered"),
        "a.com: 10.0.0.1:80\nb.com: 10.0.0.2:81\n"
    );
}

#[test]
fn v3_onetime_renders_the_seed_layout() {
    let etcd = Etcd::start();
    etcd.put_v3("/services/web/a.com/h1/ip", "10.0.0.1");
    etcd.put_v3("/services/web/a.com/h1/port", "80");
    etcd.put_v3("/services/webx/ignored", "x");
    let s = seed_scenario();
    s.run(&[
        "-onetime",
        "-backend",
        "etcdv3",
        "-node",
        &etcd.url(),
        "-confdir",
        &s.confdir(),
    ])
    .expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("web.conf")).expect("rendered"),
        "a.com: 10.0.0.1:80\n"
    );
}
