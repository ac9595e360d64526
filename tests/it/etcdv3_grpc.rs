//! The etcdv3 backend's two APIs against a real etcd: native gRPC (the
//! default) and the JSON gateway (`-etcdv3-api gateway`). An etcd started
//! without its gateway is read and watched over gRPC, and refused with a
//! clear error through the gateway; credentials, the response limit and the
//! setting itself are checked on the gRPC path. (The shared etcd tests in
//! `etcd.rs` run the default, gRPC.)

use std::fs;

use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT, args, onetime};
use crate::common::etcd::{Etcd, EtcdOptions, GrpcProxy};
use crate::common::{Scenario, read};

/// A resource listing the children of `/app` into `out/app.conf`.
fn app_resource(s: &Scenario) -> std::path::PathBuf {
    s.template(
        "app.tmpl",
        "{% for k in ls(key=\"/app\") %}{{ k }}={{ getv(key=\"/app/\" ~ k) }}\n{% endfor %}",
    );
    s.resource("app", "app.conf", &["/app"], "");
    s.out("app.conf")
}

fn without_gateway() -> Etcd {
    Etcd::start_with(EtcdOptions {
        disable_grpc_gateway: true,
        ..EtcdOptions::default()
    })
}

#[test]
fn an_etcd_without_its_gateway_is_read_and_watched_over_grpc() {
    let etcd = without_gateway();
    etcd.put_grpc("/app/a", "1");
    etcd.put_grpc("/app-x", "sibling");
    let s = Scenario::new();
    let dest = app_resource(&s);

    onetime(&s, "etcdv3", &[etcd.url()], &[]).expect_code(0);
    assert_eq!(read(&dest), "a=1\n");

    let confd = Confd::spawn(&s, &args(&s, "etcdv3", &[etcd.url()], &["-watch"]));
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    etcd.put_grpc("/app/b", "2");
    confd.expect_file(&dest, "a=1\nb=2\n", CHANGE_LIMIT);
    etcd.delete_grpc("/app/a");
    confd.expect_file(&dest, "b=2\n", CHANGE_LIMIT);
    let status = confd.terminate(CHANGE_LIMIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit after SIGTERM");
}

#[test]
fn the_gateway_fallback_fails_clearly_where_there_is_no_gateway() {
    let etcd = without_gateway();
    etcd.put_grpc("/app/a", "1");
    let s = Scenario::new();
    let dest = app_resource(&s);
    s.write("out/app.conf", "old\n");
    let run = onetime(&s, "etcdv3", &[etcd.url()], &["-etcdv3-api", "gateway"]);
    run.expect_code(1);
    let line = run.line_with("404");
    assert!(line.contains(&etcd.url()), "{line}");
    assert!(line.contains("use -etcdv3-api grpc"), "{line}");
    assert_eq!(read(&dest), "old\n");
}

#[test]
fn the_gateway_fallback_reads_and_watches() {
    let etcd = Etcd::start();
    etcd.put_v3("/app/a", "1");
    let s = Scenario::new();
    let dest = app_resource(&s);
    let gateway = ["-etcdv3-api", "gateway"];
    onetime(&s, "etcdv3", &[etcd.url()], &gateway).expect_code(0);
    assert_eq!(read(&dest), "a=1\n");
    fs::remove_file(&dest).expect("remove dest");

    let mut extra = gateway.to_vec();
    extra.push("-watch");
    let confd = Confd::spawn(&s, &args(&s, "etcdv3", &[etcd.url()], &extra));
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    etcd.put_v3("/app/b", "2");
    confd.expect_file(&dest, "a=1\nb=2\n", CHANGE_LIMIT);
    // The same setting from the environment and confd.toml.
    drop(confd);
    let mut s = s;
    s.set_env("CONFD_ETCDV3_API", "gateway");
    onetime(&s, "etcdv3", &[etcd.url()], &[]).expect_code(0);
    let toml = s.write("confd.toml", "etcdv3_api = \"gateway\"\n");
    let toml = toml.display().to_string();
    onetime(&s, "etcdv3", &[etcd.url()], &["-config-file", &toml]).expect_code(0);
}

#[test]
fn grpc_authenticates_and_never_shows_the_password() {
    let etcd = Etcd::start();
    etcd.put_v3("/app/a", "private");
    etcd.post_v3("/v3/auth/user/add", r#"{"name":"root","password":"pw"}"#);
    etcd.post_v3("/v3/auth/role/add", r#"{"name":"root"}"#);
    etcd.post_v3("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#);
    etcd.post_v3("/v3/auth/enable", "{}");
    let s = Scenario::new();
    let dest = app_resource(&s);

    let run = onetime(&s, "etcdv3", &[etcd.url()], &[]);
    run.expect_code(1);
    assert!(!dest.exists(), "nothing rendered without credentials");

    let secret = "wr0ng-s3cret";
    let run = onetime(
        &s,
        "etcdv3",
        &[etcd.url()],
        &["-username", "root", "-password", secret],
    );
    run.expect_code(1);
    let line = run.line_with("authentication as \"root\" failed");
    assert!(line.contains(&etcd.url()), "{line}");
    assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
    assert!(!dest.exists(), "nothing rendered with a wrong password");

    onetime(
        &s,
        "etcdv3",
        &[etcd.url()],
        &["-username", "root", "-password", "pw"],
    )
    .expect_code(0);
    assert_eq!(read(&dest), "a=private\n");

    // Credentials in the node URL; a wrong one is shown masked.
    fs::remove_file(&dest).expect("remove dest");
    let port = etcd.client_port();
    let wrong = format!("http://root:{secret}@127.0.0.1:{port}");
    let run = onetime(&s, "etcdv3", &[wrong], &[]);
    run.expect_code(1);
    run.line_with(&format!("http://root:***@127.0.0.1:{port}"));
    assert!(!run.stderr.contains(secret));
    let right = format!("http://root:pw@127.0.0.1:{port}");
    onetime(&s, "etcdv3", &[right], &[]).expect_code(0);
    assert_eq!(read(&dest), "a=private\n");
}

#[test]
fn an_answer_over_the_limit_names_the_node_and_leaves_the_file() {
    let etcd = without_gateway();
    let value = "v".repeat(600);
    etcd.put_grpc("/app/a", &value);
    etcd.put_grpc("/app/b", &value);
    let s = Scenario::new();
    let dest = app_resource(&s);
    s.write("out/app.conf", "old\n");
    let run = onetime(&s, "etcdv3", &[etcd.url()], &["-max-response-size", "1KiB"]);
    run.expect_code(1);
    let line = run.line_with("-max-response-size");
    assert!(
        line.contains(&etcd.url()) && line.contains("1 KiB") && line.contains("raise the limit"),
        "{line}"
    );
    assert_eq!(read(&dest), "old\n");
    onetime(&s, "etcdv3", &[etcd.url()], &["-max-response-size", "4KiB"]).expect_code(0);
    assert_eq!(read(&dest), format!("a={value}\nb={value}\n"));
}

#[test]
fn a_bad_api_name_is_a_usage_error() {
    let s = Scenario::new();
    let dest = app_resource(&s);
    s.write("out/app.conf", "old\n");
    let node = "http://127.0.0.1:1";
    let run = onetime(&s, "etcdv3", &[node], &["-etcdv3-api", "bogus"]);
    run.expect_code(2);
    let line = run.line_with("-etcdv3-api");
    assert!(line.contains("\"bogus\": use grpc or gateway"), "{line}");

    let toml = s.write("confd.toml", "\netcdv3_api = \"bogus\"\n");
    let toml = toml.display().to_string();
    let run = onetime(&s, "etcdv3", &[node], &["-config-file", &toml]);
    run.expect_code(2);
    run.line_with(&format!("{toml}:2:"));

    // Another backend refuses the flag by name.
    let run = onetime(&s, "etcd", &[node], &["-etcdv3-api", "grpc"]);
    run.expect_code(2);
    run.line_with("only the etcdv3 backend uses this flag");
    assert_eq!(read(&dest), "old\n");
}

#[test]
fn announce_keeps_its_lease_through_the_gateway_fallback() {
    use crate::announce::{Store, announce};
    use crate::common::wait_until;
    use std::time::Duration;

    let etcd = Etcd::start();
    let store = Store::V3(&etcd);
    let s = Scenario::new();
    let extra = ["-etcdv3-api", "gateway"];
    let confd = announce(&s, &store, "/members/gw", "10.0.0.7:80", "2s", &extra);
    let held = || store.value("/members/gw").as_deref() == Some("10.0.0.7:80");
    assert!(wait_until(START_LIMIT, held), "{}", confd.stderr());
    // Kept alive past two TTLs.
    std::thread::sleep(Duration::from_secs(5));
    assert!(held(), "lease lost\n{}", confd.stderr());
    let status = confd.terminate(CHANGE_LIMIT).and_then(|s| s.code());
    assert_eq!(status, Some(0));
    assert_eq!(
        store.value("/members/gw"),
        None,
        "still there after SIGTERM"
    );
}

/// TLS with a client certificate on both APIs (the shared etcd tests run
/// gRPC only): refused without the certificate, read with it.
#[test]
fn tls_with_a_client_certificate_on_both_apis() {
    use crate::common::etcd::make_tls_files;

    let certs = tempfile::tempdir().expect("temp dir");
    let tls = make_tls_files(certs.path());
    let etcd = Etcd::start_with(EtcdOptions {
        tls: Some(tls.clone()),
        ..EtcdOptions::default()
    });
    etcd.put_v3("/app/a", "secure");
    let url = etcd.tls_url().expect("https url");
    let (cert, key, ca) = (
        tls.client_cert.display().to_string(),
        tls.client_key.display().to_string(),
        tls.ca.display().to_string(),
    );
    for api in ["grpc", "gateway"] {
        let s = Scenario::new();
        let dest = app_resource(&s);
        let run = onetime(
            &s,
            "etcdv3",
            &[&url],
            &["-etcdv3-api", api, "-client-ca-keys", &ca],
        );
        run.expect_code(1);
        run.line_with(&url);
        assert!(
            !dest.exists(),
            "{api}: rendered without a client certificate"
        );
        let with_cert = [
            "-etcdv3-api",
            api,
            "-client-cert",
            &cert,
            "-client-key",
            &key,
            "-client-ca-keys",
            &ca,
        ];
        onetime(&s, "etcdv3", &[&url], &with_cert).expect_code(0);
        assert_eq!(read(&dest), "a=secure\n", "{api}");
    }
}

#[test]
fn two_daemons_read_and_watch_through_an_etcd_grpc_proxy() {
    let etcd = Etcd::start();
    etcd.put_grpc("/app/a", "1");
    let proxy = GrpcProxy::start(&etcd);
    let s = Scenario::new();
    let dest = app_resource(&s);

    onetime(&s, "etcdv3", &[proxy.url()], &[]).expect_code(0);
    assert_eq!(read(&dest), "a=1\n", "--- proxy log\n{}", proxy.log());

    // Two hosts behind one proxy: the proxy holds one watcher at the cluster.
    let other = Scenario::new();
    let other_dest = app_resource(&other);
    let watch = |s: &Scenario| Confd::spawn(s, &args(s, "etcdv3", &[proxy.url()], &["-watch"]));
    let (first, second) = (watch(&s), watch(&other));
    first.expect_file(&dest, "a=1\n", START_LIMIT);
    second.expect_file(&other_dest, "a=1\n", START_LIMIT);
    etcd.put_grpc("/app/b", "2");
    first.expect_file(&dest, "a=1\nb=2\n", CHANGE_LIMIT);
    second.expect_file(&other_dest, "a=1\nb=2\n", CHANGE_LIMIT);

    // The proxy serves no JSON gateway: the fallback says so.
    let run = onetime(&s, "etcdv3", &[proxy.url()], &["-etcdv3-api", "gateway"]);
    run.expect_code(1);
    assert!(run.line_with("404").contains("use -etcdv3-api grpc"));
    for confd in [first, second] {
        assert!(confd.terminate(CHANGE_LIMIT).is_some_and(|s| s.success()));
    }
}

/// A prefix larger than one page (25,000 keys) is read whole, in pages at
/// one revision, with nothing lost at a page boundary and nothing from the
/// sibling prefix. Each page is decoded on its own: the limit applies per
/// page, so 1 MiB suffices for the ≈ 1.6 MB the whole prefix takes.
#[test]
fn a_prefix_of_several_pages_is_read_whole() {
    const KEYS: usize = 50_001;
    let etcd = Etcd::start();
    let pairs: Vec<(String, String)> = (0..KEYS)
        .map(|i| (format!("/big/k{i:05}"), i.to_string()))
        .collect();
    etcd.put_many_v3(&pairs);
    etcd.put_grpc("/big-sibling", "x");
    let s = Scenario::new();
    s.template(
        "big.tmpl",
        "{{ ls(key=\"/big\") | length }} {{ getv(key=\"/big/k00000\") }} \
         {{ getv(key=\"/big/k25000\") }} {{ getv(key=\"/big/k50000\") }}\n",
    );
    s.resource("big", "big.conf", &["/big"], "");
    onetime(&s, "etcdv3", &[etcd.url()], &["-max-response-size", "1MiB"]).expect_code(0);
    assert_eq!(read(&s.out("big.conf")), "50001 0 25000 50000\n");
}
