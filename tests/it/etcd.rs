//! The etcd backends against a real etcd (Debian's etcd-server, started by
//! the shared helper on free 127.0.0.1 ports). Every test starts its own etcd,
//! so the tests run in parallel; every confd is spawned behind a guard that
//! kills it when the test ends, pass or fail, and every wait is bounded.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::common::confd::{CHANGE_LIMIT, Confd, RUN_LIMIT, START_LIMIT, args};
use crate::common::etcd::{
    Etcd, EtcdOptions, basic_auth_header, http_with_headers, make_tls_files,
};
use crate::common::{Run, Scenario, free_port, read, wait_until};
use crate::net::{FreezableProxy, short_watch_timeout};

/// How long a change made behind a frozen node may take to reach the file
/// with a 2 s watch timeout: the timeout, 2 s for the re-issued request to
/// go unanswered, the request to the next node and the render, with room
/// for a loaded machine.
const FROZEN_LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Which etcd API (and so which confd backend) a test uses. etcd keeps the
/// v2 and v3 key spaces apart, so data is written through the same API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    V2,
    V3,
}

impl Api {
    fn backend(self) -> &'static str {
        match self {
            Api::V2 => "etcd",
            Api::V3 => "etcdv3",
        }
    }

    fn put(self, etcd: &Etcd, key: &str, value: &str) {
        match self {
            Api::V2 => etcd.put_v2(key, value),
            Api::V3 => etcd.put_v3(key, value),
        }
    }

    /// Deletes one key.
    fn delete(self, etcd: &Etcd, key: &str) {
        match self {
            Api::V2 => etcd.delete_v2(key),
            Api::V3 => etcd.delete_v3(key),
        }
    }

    /// Deletes `dir` and everything below it in one atomic operation.
    fn delete_tree(self, etcd: &Etcd, dir: &str) {
        match self {
            Api::V2 => etcd.delete_v2(dir),
            Api::V3 => etcd.delete_prefix_v3(&format!("{dir}/")),
        }
    }
}

/// Runs a one-shot confd to completion, bounded by [`RUN_LIMIT`].
fn onetime(s: &Scenario, api: Api, nodes: &[&str], extra: &[&str]) -> Run {
    crate::common::confd::onetime(s, api.backend(), nodes, extra)
}

/// Starts `confd -watch` against `node`.
fn watch(s: &Scenario, api: Api, node: &str) -> Confd {
    Confd::spawn(s, &args(s, api.backend(), &[node], &["-watch"]))
}

/// Starts `confd -watch -log-level debug` (so reads can be counted).
fn watch_debug(s: &Scenario, api: Api, node: &str) -> Confd {
    Confd::spawn(
        s,
        &args(
            s,
            api.backend(),
            &[node],
            &["-watch", "-log-level", "debug"],
        ),
    )
}

/// The "key=value" listing of the direct children of `dir`.
fn listing_template(dir: &str) -> String {
    format!(
        "{{% for k in ls(key=\"{dir}\") %}}{{{{ k }}}}={{{{ getv(key=\"{dir}/\" ~ k) }}}}\n{{% endfor %}}"
    )
}

/// A resource `name` listing `dir` into `out/<name>.conf`, with `extra` TOML.
fn listing_resource(s: &Scenario, name: &str, dir: &str, extra: &str) -> PathBuf {
    s.template(&format!("{name}.tmpl"), &listing_template(dir));
    s.resource(name, &format!("{name}.conf"), &[dir], extra);
    s.out(&format!("{name}.conf"))
}

/// A reload_cmd that appends a line to `<scenario>/<file>`, and that file's
/// path.
fn counting_reload(s: &Scenario, file: &str) -> (String, PathBuf) {
    let path = s.path().join(file);
    (
        format!("reload_cmd = \"echo x >> {}\"\n", path.display()),
        path,
    )
}

fn line_count(path: &Path) -> usize {
    fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn seed_scenario() -> Scenario {
    let s = Scenario::new();
    s.template(
        "web.tmpl",
        "{% for d in lsdir(key=\"/services/web\") %}{{ d }}:{% for h in lsdir(key=\"/services/web/\" ~ d) %} {{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/ip\") }}:{{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/port\") }}{% endfor %}\n{% endfor %}",
    );
    s.resource("web", "web.conf", &["/services/web"], "");
    s
}

/// A deterministic, hard-to-corrupt-silently value of `len` bytes.
fn big_value(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. One-shot renders
// ---------------------------------------------------------------------------

/// The seed layout rendered one-shot; `/services/webx` (inside etcd's key
/// range for `/services/web`) must not leak in.
fn onetime_renders_the_seed_layout(api: Api) {
    let etcd = Etcd::start();
    for (key, value) in [
        ("/services/web/a.com/h1/ip", "10.0.0.1"),
        ("/services/web/a.com/h1/port", "80"),
        ("/services/web/b.com/h2/ip", "10.0.0.2"),
        ("/services/web/b.com/h2/port", "81"),
        ("/services/webx/ignored", "x"),
    ] {
        api.put(&etcd, key, value);
    }
    let s = seed_scenario();
    onetime(&s, api, &[&etcd.url()], &[]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("web.conf")).expect("rendered"),
        "a.com: 10.0.0.1:80\nb.com: 10.0.0.2:81\n"
    );
}

#[test]
fn v2_onetime_renders_the_seed_layout() {
    onetime_renders_the_seed_layout(Api::V2);
}

#[test]
fn v3_onetime_renders_the_seed_layout() {
    onetime_renders_the_seed_layout(Api::V3);
}

fn one_mebibyte_value_renders_intact(api: Api) {
    let etcd = Etcd::start();
    let value = big_value(1 << 20);
    api.put(&etcd, "/big/value", &value);
    let s = Scenario::new();
    s.template("big.tmpl", "{{ getv(key=\"/big/value\") }}");
    s.resource("big", "big.conf", &["/big"], "");
    onetime(&s, api, &[&etcd.url()], &[]).expect_code(0);
    let rendered = read(&s.out("big.conf"));
    assert_eq!(rendered.len(), value.len(), "rendered length");
    assert!(rendered == value, "the 1 MiB value came back altered");
}

#[test]
fn v2_one_mebibyte_value_renders_intact() {
    one_mebibyte_value_renders_intact(Api::V2);
}

#[test]
fn v3_one_mebibyte_value_renders_intact() {
    one_mebibyte_value_renders_intact(Api::V3);
}

/// Key names and values that need escaping somewhere on the way, under a
/// root that has a space in it.
fn special_keys_render_verbatim(api: Api) {
    const ROOT: &str = "/special chars";
    let pairs: &[(&str, &str)] = &[
        ("with space", "a value with spaces"),
        ("ünïcödé", "ünïcödé ✓"),
        ("a+b=c&d", "<tag> & \"quotes\" 'single'"),
        ("100%", "%41 is not A"),
        ("q?x", "question?mark"),
        ("hash#1", "{{ not a template }}"),
        ("colon:x", "tab\there"),
        ("semi;colon", "line1\nline2"),
        ("back\\slash", "back\\slash"),
        ("tilde~dash-dot.under_score", "ok"),
        ("empty", ""),
    ];
    let etcd = Etcd::start();
    for (k, v) in pairs {
        api.put(&etcd, &format!("{ROOT}/{k}"), v);
    }
    // A sibling whose name starts with the root's must stay out.
    api.put(&etcd, "/special charsX/no", "no");
    let s = Scenario::new();
    let dest = listing_resource(&s, "special", ROOT, "");
    onetime(&s, api, &[&etcd.url()], &[]).expect_code(0);
    let mut sorted: Vec<&(&str, &str)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let expected: String = sorted.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    assert_eq!(read(&dest), expected);
}

#[test]
fn v2_keys_with_special_characters_render_verbatim() {
    special_keys_render_verbatim(Api::V2);
}

#[test]
fn v3_keys_with_special_characters_render_verbatim() {
    special_keys_render_verbatim(Api::V3);
}

/// More keys than one range page (5,000) under the prefix, behind a full
/// page of keys that fall inside the byte range but outside the subtree
/// (`/many-x/…` sorts before `/many/…`).
#[test]
fn v3_pages_through_more_than_five_thousand_keys() {
    let etcd = Etcd::start();
    let siblings: Vec<(String, String)> = (0..5_001)
        .map(|i| (format!("/many-x/k{i:05}"), "sibling".to_string()))
        .collect();
    let keys: Vec<(String, String)> = (0..10_001)
        .map(|i| (format!("/many/k{i:05}"), format!("v{i}")))
        .collect();
    etcd.put_many_v3(&siblings);
    etcd.put_many_v3(&keys);
    etcd.put_v3("/many.x", "sibling");
    let s = Scenario::new();
    s.template(
        "many.tmpl",
        &format!(
            "{{{{ ls(key=\"/many\") | length }}}}\n{}",
            listing_template("/many")
        ),
    );
    s.resource("many", "many.conf", &["/many"], "");
    onetime(&s, Api::V3, &[&etcd.url()], &[]).expect_code(0);
    let mut expected = format!("{}\n", keys.len());
    for (k, v) in &keys {
        expected.push_str(&format!("{}={v}\n", k.trim_start_matches("/many/")));
    }
    let rendered = read(&s.out("many.conf"));
    assert_eq!(rendered.lines().next(), Some("10001"), "key count");
    assert!(
        rendered == expected,
        "the 10,001 keys did not render as written"
    );
}

// ---------------------------------------------------------------------------
// 2. v2 API disabled
// ---------------------------------------------------------------------------

#[test]
fn backend_etcd_without_the_v2_api_names_etcdv3() {
    let etcd = Etcd::start_with(EtcdOptions {
        disable_v2: true,
        ..EtcdOptions::default()
    });
    etcd.put_v3("/services/web/a.com/h1/ip", "10.0.0.1");
    let s = seed_scenario();
    s.write("out/web.conf", "old\n");
    let run = onetime(&s, Api::V2, &[&etcd.url()], &[]);
    run.expect_code(1);
    let mentions: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("etcdv3"))
        .collect();
    assert_eq!(
        mentions.len(),
        1,
        "one error line names etcdv3\n--- stderr\n{}",
        run.stderr
    );
    assert!(
        mentions[0].contains("v2"),
        "the error says the v2 API is off: {}",
        mentions[0]
    );
    assert_eq!(read(&s.out("web.conf")), "old\n");
    assert_eq!(s.out_entries(), vec!["web.conf"]);
    // Waiting cannot cure a disabled API: -wait-keys fails at once.
    let started = std::time::Instant::now();
    onetime(&s, Api::V2, &[&etcd.url()], &["-wait-keys", "20s"]).expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "-wait-keys waited for an error that cannot go away"
    );
}

// ---------------------------------------------------------------------------
// 3. Node failover
// ---------------------------------------------------------------------------

fn fails_over_to_a_live_node(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let dead = format!("http://127.0.0.1:{}", free_port());
    onetime(&s, api, &[&dead, &etcd.url()], &[]).expect_code(0);
    assert_eq!(read(&dest), "a=1\n");
    // The same with the live node given as host:port (scheme from -scheme).
    fs::remove_file(&dest).expect("remove dest");
    let bare = format!("127.0.0.1:{}", etcd.client_port());
    onetime(&s, api, &[&dead, &bare], &[]).expect_code(0);
    assert_eq!(read(&dest), "a=1\n");
}

fn only_dead_nodes_fail_naming_them(api: Api) {
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    s.write("out/app.conf", "old\n");
    let first = free_port();
    let second = free_port();
    let run = onetime(
        &s,
        api,
        &[
            &format!("http://127.0.0.1:{first}"),
            &format!("http://127.0.0.1:{second}"),
        ],
        &[],
    );
    run.expect_code(1);
    for port in [first, second] {
        run.line_with(&format!("127.0.0.1:{port}"));
    }
    assert_eq!(read(&dest), "old\n");
    assert_eq!(s.out_entries(), vec!["app.conf"]);
}

#[test]
fn v2_fails_over_to_a_live_node() {
    fails_over_to_a_live_node(Api::V2);
}

#[test]
fn v3_fails_over_to_a_live_node() {
    fails_over_to_a_live_node(Api::V3);
}

#[test]
fn v2_only_dead_nodes_fail_naming_them() {
    only_dead_nodes_fail_naming_them(Api::V2);
}

#[test]
fn v3_only_dead_nodes_fail_naming_them() {
    only_dead_nodes_fail_naming_them(Api::V3);
}

// ---------------------------------------------------------------------------
// 4. TLS with client certificates
// ---------------------------------------------------------------------------

fn tls_with_client_certificate(api: Api) {
    let certs = tempfile::tempdir().expect("temp dir");
    let tls = make_tls_files(certs.path());
    let etcd = Etcd::start_with(EtcdOptions {
        tls: Some(tls.clone()),
        ..EtcdOptions::default()
    });
    api.put(&etcd, "/app/a", "secure");
    let url = etcd.tls_url().expect("https url");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let (cert, key, ca) = (
        tls.client_cert.display().to_string(),
        tls.client_key.display().to_string(),
        tls.ca.display().to_string(),
    );

    // Without a client certificate the server refuses the handshake.
    let run = onetime(&s, api, &[&url], &["-client-ca-keys", &ca]);
    run.expect_code(1);
    run.line_with(&url);
    assert!(!dest.exists(), "nothing rendered without a client cert");

    onetime(
        &s,
        api,
        &[&url],
        &[
            "-client-cert",
            &cert,
            "-client-key",
            &key,
            "-client-ca-keys",
            &ca,
        ],
    )
    .expect_code(0);
    assert_eq!(read(&dest), "a=secure\n");

    // host:port with -scheme https reaches the same listener.
    api.put(&etcd, "/app/a", "secure2");
    let bare = url.trim_start_matches("https://").to_string();
    onetime(
        &s,
        api,
        &[&bare],
        &[
            "-scheme",
            "https",
            "-client-cert",
            &cert,
            "-client-key",
            &key,
            "-client-ca-keys",
            &ca,
        ],
    )
    .expect_code(0);
    assert_eq!(read(&dest), "a=secure2\n");
}

#[test]
fn v2_tls_with_client_certificate() {
    tls_with_client_certificate(Api::V2);
}

#[test]
fn v3_tls_with_client_certificate() {
    tls_with_client_certificate(Api::V3);
}

// ---------------------------------------------------------------------------
// 5. Authentication
// ---------------------------------------------------------------------------

/// Sends a request with basic-auth credentials and insists on 2xx.
fn request_as(
    etcd: &Etcd,
    method: &str,
    path: &str,
    body: &str,
    authorization: Option<&str>,
) -> String {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let (status, text) = http_with_headers(
        etcd.client_port(),
        method,
        path,
        Some("application/json"),
        body,
        &headers,
    )
    .expect("etcd answers");
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    text
}

/// v2 auth: a root user, auth on, and the guest role stripped of its default
/// access, so only requests with credentials can read.
fn enable_v2_auth(etcd: &Etcd) {
    request_as(
        etcd,
        "PUT",
        "/v2/auth/users/root",
        r#"{"user":"root","password":"pw"}"#,
        None,
    );
    request_as(etcd, "PUT", "/v2/auth/enable", "", None);
    request_as(
        etcd,
        "PUT",
        "/v2/auth/roles/guest",
        r#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#,
        Some(&basic_auth_header("root", "pw")),
    );
}

/// v3 auth: a root user with the root role, then auth on.
fn enable_v3_auth(etcd: &Etcd) {
    etcd.post_v3("/v3/auth/user/add", r#"{"name":"root","password":"pw"}"#);
    etcd.post_v3("/v3/auth/role/add", r#"{"name":"root"}"#);
    etcd.post_v3("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#);
    etcd.post_v3("/v3/auth/enable", "{}");
}

fn basic_auth(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "private");
    match api {
        Api::V2 => enable_v2_auth(&etcd),
        Api::V3 => enable_v3_auth(&etcd),
    }
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let url = etcd.url();

    let run = onetime(&s, api, &[&url], &[]);
    run.expect_code(1);
    assert!(!dest.exists(), "nothing rendered without credentials");

    let run = onetime(
        &s,
        api,
        &[&url],
        &["-basic-auth", "-username", "root", "-password", "wrong"],
    );
    run.expect_code(1);
    let problem = match api {
        Api::V2 => "authentication",
        Api::V3 => "authentication as \"root\" failed",
    };
    run.line_with(problem);
    assert!(!dest.exists(), "nothing rendered with a wrong password");

    onetime(
        &s,
        api,
        &[&url],
        &["-basic-auth", "-username", "root", "-password", "pw"],
    )
    .expect_code(0);
    assert_eq!(read(&dest), "a=private\n");
}

#[test]
fn v2_basic_auth() {
    basic_auth(Api::V2);
}

#[test]
fn v3_basic_auth() {
    basic_auth(Api::V3);
}

/// The v3 watch stream authenticates too: with auth on, a daemon sees a
/// change written (with a token) after it started.
#[test]
fn v3_watch_with_auth_sees_changes() {
    let etcd = Etcd::start();
    etcd.put_v3("/app/a", "1");
    enable_v3_auth(&etcd);
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            Api::V3.backend(),
            &[&etcd.url()],
            &["-watch", "-username", "root", "-password", "pw"],
        ),
    );
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    let answer = request_as(
        &etcd,
        "POST",
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"pw"}"#,
        None,
    );
    let token = serde_json::from_str::<serde_json::Value>(&answer).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let put = serde_json::json!({"key": "L2FwcC9h", "value": "Mg=="}); // /app/a = 2
    request_as(&etcd, "POST", "/v3/kv/put", &put.to_string(), Some(&token));
    confd.expect_file(&dest, "a=2\n", CHANGE_LIMIT);
}

// ---------------------------------------------------------------------------
// 6. -watch picks up changes, and only relevant ones
// ---------------------------------------------------------------------------

/// The daemon has read nothing since it had logged `reads` reads: the changes
/// since then came from the watch events alone.
fn assert_no_read_since(confd: &Confd, reads: usize) {
    assert_eq!(
        confd.lines_with("read snapshot"),
        reads,
        "a change was read again instead of applied\n--- stderr\n{}",
        confd.stderr()
    );
}

fn watch_picks_up_puts_and_deletes(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    api.put(&etcd, "/app/b", "2");
    let s = Scenario::new();
    let (reload, reloads) = counting_reload(&s, "reloads");
    let dest = listing_resource(&s, "app", "/app", &reload);
    let confd = watch_debug(&s, api, &etcd.url());
    confd.expect_file(&dest, "a=1\nb=2\n", START_LIMIT);
    assert!(wait_until(CHANGE_LIMIT, || line_count(&reloads) == 1));

    // The changes come from the watch's events: no read of the prefix.
    let reads = confd.lines_with("read snapshot");
    api.put(&etcd, "/app/c", "3");
    confd.expect_file(&dest, "a=1\nb=2\nc=3\n", CHANGE_LIMIT);
    api.delete(&etcd, "/app/a");
    confd.expect_file(&dest, "b=2\nc=3\n", CHANGE_LIMIT);
    assert!(wait_until(CHANGE_LIMIT, || line_count(&reloads) == 3));
    assert_no_read_since(&confd, reads);

    // A write that leaves a value as it was renders nothing.
    api.put(&etcd, "/app/b", "2");
    confd.expect_log("resources=0", CHANGE_LIMIT);

    // Changes elsewhere, including a sibling that shares the prefix's bytes,
    // cause neither a read nor a reload.
    api.put(&etcd, "/other/x", "1");
    api.put(&etcd, "/appx/y", "1");
    api.put(&etcd, "/ap", "1");
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(
        confd.lines_with("read snapshot"),
        reads,
        "an unrelated change caused a read\n--- stderr\n{}",
        confd.stderr()
    );
    assert_eq!(line_count(&reloads), 3, "an unrelated change reloaded");

    // …and the watch still works after them.
    api.put(&etcd, "/app/d", "4");
    confd.expect_file(&dest, "b=2\nc=3\nd=4\n", CHANGE_LIMIT);
    assert!(wait_until(CHANGE_LIMIT, || line_count(&reloads) == 4));

    // SIGTERM with a watch open: a prompt, clean exit.
    let status = confd.terminate(CHANGE_LIMIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit after SIGTERM");
}

#[test]
fn v2_watch_picks_up_puts_and_deletes() {
    watch_picks_up_puts_and_deletes(Api::V2);
}

#[test]
fn v3_watch_picks_up_puts_and_deletes() {
    watch_picks_up_puts_and_deletes(Api::V3);
}

/// Deleting a whole directory (v2: one recursive delete event; v3: one event
/// per key of a prefix delete) takes its keys out of the daemon's data, and
/// the daemon renders it, and a new key in it, without reading again.
fn watch_applies_directory_deletes(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    api.put(&etcd, "/app/d/x", "1");
    api.put(&etcd, "/app/d/y", "2");
    let s = Scenario::new();
    s.template(
        "tree.tmpl",
        "{% for k in ls(key=\"/app\") %}{{ k }} {% endfor %}|\
         {% for p in gets(key=\"/app/d/*\") %}{{ p.key }}={{ p.value }} {% endfor %}\n",
    );
    s.resource("tree", "tree.conf", &["/app"], "");
    let dest = s.out("tree.conf");
    let confd = watch_debug(&s, api, &etcd.url());
    confd.expect_file(&dest, "a d |/app/d/x=1 /app/d/y=2 \n", START_LIMIT);
    let reads = confd.lines_with("read snapshot");

    api.delete_tree(&etcd, "/app/d");
    confd.expect_file(&dest, "a |\n", CHANGE_LIMIT);
    api.put(&etcd, "/app/d/z", "3");
    confd.expect_file(&dest, "a d |/app/d/z=3 \n", CHANGE_LIMIT);
    assert_no_read_since(&confd, reads);
}

#[test]
fn v2_watch_applies_directory_deletes() {
    watch_applies_directory_deletes(Api::V2);
}

#[test]
fn v3_watch_applies_directory_deletes() {
    watch_applies_directory_deletes(Api::V3);
}

// ---------------------------------------------------------------------------
// 7. etcd restarted under a watching daemon
// ---------------------------------------------------------------------------

fn survives_an_etcd_restart(api: Api) {
    let mut etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let mut confd = watch(&s, api, &etcd.url());
    confd.expect_file(&dest, "a=1\n", START_LIMIT);

    etcd.kill();
    confd.expect_log("cannot read from the backend", CHANGE_LIMIT);
    // Down for a few retry periods: the file keeps its last good content.
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(confd.running(), "confd exited while etcd was down");
    assert_eq!(read(&dest), "a=1\n");

    etcd.restart();
    api.put(&etcd, "/app/a", "2");
    let took = confd.expect_file(&dest, "a=2\n", Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(5),
        "a change after the restart took {took:?}"
    );
    assert!(confd.running(), "confd exited");
    assert_eq!(
        confd.lines_with("cannot read from the backend"),
        1,
        "the outage is logged once\n--- stderr\n{}",
        confd.stderr()
    );
    // The change after that is picked up as usual.
    api.put(&etcd, "/app/a", "3");
    confd.expect_file(&dest, "a=3\n", CHANGE_LIMIT);
}

#[test]
fn v2_watch_survives_an_etcd_restart() {
    survives_an_etcd_restart(Api::V2);
}

#[test]
fn v3_watch_survives_an_etcd_restart() {
    survives_an_etcd_restart(Api::V3);
}

// ---------------------------------------------------------------------------
// 8. etcd not there yet when the daemon starts
// ---------------------------------------------------------------------------

fn waits_for_a_backend_down_at_start(api: Api) {
    let port = free_port();
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let mut confd = watch(&s, api, &format!("http://127.0.0.1:{port}"));
    confd.expect_log("cannot read from the backend", START_LIMIT);
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(confd.running(), "confd exited while etcd was down");
    assert!(!dest.exists(), "nothing to render yet");

    let etcd = Etcd::start_with(EtcdOptions {
        client_port: Some(port),
        ..EtcdOptions::default()
    });
    api.put(&etcd, "/app/a", "1");
    confd.expect_file(&dest, "a=1\n", CHANGE_LIMIT);
    api.put(&etcd, "/app/a", "2");
    confd.expect_file(&dest, "a=2\n", CHANGE_LIMIT);
    assert!(confd.running(), "confd exited");
    assert_eq!(
        confd.lines_with("cannot read from the backend"),
        1,
        "the outage is logged once\n--- stderr\n{}",
        confd.stderr()
    );
}

#[test]
fn v2_watch_waits_for_a_backend_down_at_start() {
    waits_for_a_backend_down_at_start(Api::V2);
}

#[test]
fn v3_watch_waits_for_a_backend_down_at_start() {
    waits_for_a_backend_down_at_start(Api::V3);
}

// ---------------------------------------------------------------------------
// 9. Bursts are coalesced
// ---------------------------------------------------------------------------

fn coalesces_a_burst(api: Api) {
    const WRITES: usize = 500;
    const WRITERS: usize = 8;
    let etcd = Etcd::start();
    api.put(&etcd, "/burst/k000", "x");
    let s = Scenario::new();
    let (reload, reloads) = counting_reload(&s, "reloads");
    s.template(
        "burst.tmpl",
        "{% for k in ls(key=\"/burst\") %}{{ k }}\n{% endfor %}",
    );
    s.resource("burst", "burst.conf", &["/burst"], &reload);
    let dest = s.out("burst.conf");
    let confd = watch(&s, api, &etcd.url());
    confd.expect_file(&dest, "k000\n", START_LIMIT);
    assert!(wait_until(CHANGE_LIMIT, || line_count(&reloads) == 1));

    let started = Instant::now();
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let etcd = &etcd;
            scope.spawn(move || {
                for i in (1..=WRITES).filter(|i| i % WRITERS == writer) {
                    api.put(etcd, &format!("/burst/k{i:03}"), "x");
                }
            });
        }
    });
    let writing = started.elapsed();
    let expected: String = (0..=WRITES).map(|i| format!("k{i:03}\n")).collect();
    confd.expect_file(&dest, &expected, Duration::from_secs(15));
    // Let a trailing render (if any) finish before counting.
    std::thread::sleep(Duration::from_millis(1_500));
    let burst_reloads = line_count(&reloads) - 1;
    assert!(
        burst_reloads <= 5,
        "{WRITES} writes in {writing:?} caused {burst_reloads} reloads\n--- stderr\n{}",
        confd.stderr()
    );
}

#[test]
fn v2_watch_coalesces_a_burst() {
    coalesces_a_burst(Api::V2);
}

#[test]
fn v3_watch_coalesces_a_burst() {
    coalesces_a_burst(Api::V3);
}

// ---------------------------------------------------------------------------
// 10. SIGHUP re-reads conf.d
// ---------------------------------------------------------------------------

/// A SIGHUP applies a new resource; a new configuration with a broken
/// resource file is refused whole (the valid new resource beside it is not
/// taken either), and the running configuration goes on.
#[test]
fn sighup_adds_a_resource_and_refuses_a_broken_configuration_whole() {
    let api = Api::V2;
    let etcd = Etcd::start();
    api.put(&etcd, "/a/x", "1");
    api.put(&etcd, "/b/x", "1");
    let s = Scenario::new();
    let first = listing_resource(&s, "first", "/a", "");
    let mut confd = watch_debug(&s, api, &etcd.url());
    confd.expect_file(&first, "x=1\n", START_LIMIT);

    let second = listing_resource(&s, "second", "/b", "");
    assert!(!second.exists());
    confd.signal("HUP");
    confd.expect_file(&second, "x=1\n", CHANGE_LIMIT);

    let never = s.out("never.conf");
    s.write(
        "conf.d/broken.toml",
        &format!(
            "[template]\nsrc = \"first.tmpl\"\ndest = {:?}\nkeys = [\"/a\"]\nbogus_key = 1\n",
            never.display().to_string()
        ),
    );
    let third = listing_resource(&s, "third", "/a", "");
    confd.signal("HUP");
    confd.expect_log("keeping the running configuration", CHANGE_LIMIT);
    assert!(
        confd.lines_with("broken.toml") > 0,
        "the error names the file"
    );
    assert!(confd.running(), "a broken resource file stopped the daemon");

    api.put(&etcd, "/a/x", "2");
    confd.expect_file(&first, "x=2\n", CHANGE_LIMIT);
    api.put(&etcd, "/b/x", "2");
    confd.expect_file(&second, "x=2\n", CHANGE_LIMIT);
    assert!(!never.exists(), "the broken resource was not used");
    assert!(
        !third.exists(),
        "nothing of the refused configuration was used"
    );
    assert!(confd.running());
}

// ---------------------------------------------------------------------------
// 11. SIGTERM waits for the reload in progress
// ---------------------------------------------------------------------------

#[test]
fn sigterm_during_a_slow_reload_lets_it_finish() {
    let api = Api::V2;
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    let s = Scenario::new();
    let marker = s.path().join("marker");
    let dest = listing_resource(
        &s,
        "app",
        "/app",
        &format!(
            "reload_cmd = \"sleep 2; echo done >> {}\"\n",
            marker.display()
        ),
    );
    let confd = watch(&s, api, &etcd.url());
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    assert!(
        wait_until(START_LIMIT, || line_count(&marker) == 1),
        "the first reload finished"
    );

    api.put(&etcd, "/app/a", "2");
    confd.expect_file(&dest, "a=2\n", CHANGE_LIMIT);
    // The file is renamed into place just before the 2 s reload starts.
    let status = confd.terminate(Duration::from_secs(15));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "confd exits 0 after SIGTERM"
    );
    assert_eq!(
        line_count(&marker),
        2,
        "the reload in progress finished before the exit"
    );
}

// ---------------------------------------------------------------------------
// 12. max_shrink
// ---------------------------------------------------------------------------

fn max_shrink_refuses_a_collapse(api: Api) {
    let etcd = Etcd::start();
    let gone: Vec<String> = (0..8).map(|i| format!("/shrink/gone/k{i}")).collect();
    for key in &gone {
        api.put(&etcd, key, "v");
    }
    api.put(&etcd, "/shrink/keep/k8", "v");
    api.put(&etcd, "/shrink/keep/k9", "v");
    let s = Scenario::new();
    s.template(
        "shrink.tmpl",
        "{% for d in ls(key=\"/shrink\") %}{% for k in ls(key=\"/shrink/\" ~ d) %}{{ d }}/{{ k }}\n{% endfor %}{% endfor %}",
    );
    s.resource(
        "shrink",
        "shrink.conf",
        &["/shrink"],
        "max_shrink = \"50%\"\n",
    );
    let dest = s.out("shrink.conf");
    let full: String = (0..8)
        .map(|i| format!("gone/k{i}\n"))
        .chain((8..10).map(|i| format!("keep/k{i}\n")))
        .collect();
    let confd = watch(&s, api, &etcd.url());
    confd.expect_file(&dest, &full, START_LIMIT);

    // 8 of the 10 keys vanish at once.
    api.delete_tree(&etcd, "/shrink/gone");
    confd.expect_log("max_shrink", CHANGE_LIMIT);
    assert_eq!(read(&dest), full, "dest kept its content");

    match api {
        Api::V2 => {
            for key in &gone {
                api.put(&etcd, key, "v");
            }
        }
        Api::V3 => {
            let pairs: Vec<(String, String)> =
                gone.iter().map(|k| (k.clone(), "v".to_string())).collect();
            etcd.put_many_v3(&pairs);
        }
    }
    api.put(&etcd, "/shrink/keep/kz", "v");
    confd.expect_file(&dest, &format!("{full}keep/kz\n"), CHANGE_LIMIT);
}

#[test]
fn v2_max_shrink_refuses_a_collapse() {
    max_shrink_refuses_a_collapse(Api::V2);
}

#[test]
fn v3_max_shrink_refuses_a_collapse() {
    max_shrink_refuses_a_collapse(Api::V3);
}

// ---------------------------------------------------------------------------
// 13. -onetime -wait-keys
// ---------------------------------------------------------------------------

fn wait_keys_waits_for_late_keys(api: Api) {
    let etcd = Etcd::start();
    let s = Scenario::new();
    s.template("wk.tmpl", "{{ getv(key=\"/wk/a\") }}\n");
    s.resource("wk", "wk.conf", &["/wk"], "");
    let started = Instant::now();
    let run = std::thread::scope(|scope| {
        let etcd = &etcd;
        scope.spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            api.put(etcd, "/wk/a", "ready");
        });
        onetime(&s, api, &[&etcd.url()], &["-wait-keys", "10s"])
    });
    run.expect_code(0);
    assert_eq!(read(&s.out("wk.conf")), "ready\n");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn v2_onetime_wait_keys_waits_for_late_keys() {
    wait_keys_waits_for_late_keys(Api::V2);
}

#[test]
fn v3_onetime_wait_keys_waits_for_late_keys() {
    wait_keys_waits_for_late_keys(Api::V3);
}

/// `-wait-keys` also covers a backend that is not up yet.
#[test]
fn onetime_wait_keys_waits_for_a_late_backend() {
    let api = Api::V3;
    let port = free_port();
    let s = Scenario::new();
    // getv: an empty store is a missing key (retried), not an empty file.
    s.template("app.tmpl", "{{ getv(key=\"/app/a\") }}\n");
    s.resource("app", "app.conf", &["/app"], "");
    let dest = s.out("app.conf");
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            api.backend(),
            &[&format!("http://127.0.0.1:{port}")],
            &["-onetime", "-wait-keys", "15s"],
        ),
    );
    std::thread::sleep(Duration::from_secs(1));
    let etcd = Etcd::start_with(EtcdOptions {
        client_port: Some(port),
        ..EtcdOptions::default()
    });
    api.put(&etcd, "/app/a", "1");
    confd.finish(RUN_LIMIT).expect_code(0);
    assert_eq!(read(&dest), "1\n");
}

#[test]
fn wait_keys_without_the_keys_fails_at_the_deadline() {
    let etcd = Etcd::start();
    let s = Scenario::new();
    s.template("wk.tmpl", "{{ getv(key=\"/wk/a\") }}\n");
    s.resource("wk", "wk.conf", &["/wk"], "");
    let started = Instant::now();
    let run = onetime(&s, Api::V2, &[&etcd.url()], &["-wait-keys", "2s"]);
    run.expect_code(1);
    run.line_with("/wk/a");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "gave up after {took:?}"
    );
    assert!(!s.out("wk.conf").exists());
}

// ---------------------------------------------------------------------------
// More: watches per prefix, lost history, the root, SIGTERM while down
// ---------------------------------------------------------------------------

/// The value of an unlabelled gauge in etcd's `/metrics`.
fn etcd_metric(etcd: &Etcd, name: &str) -> Option<f64> {
    let (_, text) =
        crate::common::etcd::http(etcd.client_port(), "GET", "/metrics", None, "").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Five resources over two distinct subtrees (`/app/sub` lies within
/// `/app`): etcd sees exactly two watchers.
fn one_watch_per_distinct_prefix(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/sub/x", "1");
    api.put(&etcd, "/other/y", "2");
    let s = Scenario::new();
    s.template("w.tmpl", "{{ ls(key=\"/\") | join(sep=\",\") }}\n");
    for (name, key) in [
        ("a", "/app"),
        ("b", "/app/sub"),
        ("c", "/app"),
        ("d", "/other"),
        ("e", "/other"),
    ] {
        s.write(
            &format!("conf.d/{name}.toml"),
            &format!(
                "[template]\nsrc = \"w.tmpl\"\ndest = {:?}\nkeys = [{key:?}]\n",
                s.out(name).display().to_string()
            ),
        );
    }
    let metric = match api {
        Api::V2 => "etcd_debugging_store_watchers",
        Api::V3 => "etcd_debugging_mvcc_watcher_total",
    };
    let confd = watch(&s, api, &etcd.url());
    for name in ["a", "b", "c", "d", "e"] {
        confd.expect_file(
            &s.out(name),
            &format!("{}\n", if name < "d" { "app" } else { "other" }),
            START_LIMIT,
        );
    }
    assert!(
        wait_until(CHANGE_LIMIT, || etcd_metric(&etcd, metric) == Some(2.0)),
        "{metric} = {:?}, want 2",
        etcd_metric(&etcd, metric)
    );
    // Still two a while later (no watch leaks per change either).
    api.put(&etcd, "/app/sub/x", "3");
    api.put(&etcd, "/other/y", "4");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(etcd_metric(&etcd, metric), Some(2.0), "{metric}");
}

#[test]
fn v2_one_watch_per_distinct_prefix() {
    one_watch_per_distinct_prefix(Api::V2);
}

#[test]
fn v3_one_watch_per_distinct_prefix() {
    one_watch_per_distinct_prefix(Api::V3);
}

/// While confd is stopped (SIGSTOP), its prefix changes and then so much
/// else happens that etcd forgets the history confd would resume from (v2:
/// more than the 1,000 events the store keeps; v3: a compaction). After
/// SIGCONT the daemon reads everything again and keeps watching.
fn watch_recovers_from_lost_history(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let confd = watch(&s, api, &etcd.url());
    confd.expect_file(&dest, "a=1\n", START_LIMIT);

    confd.signal("STOP");
    api.put(&etcd, "/app/a", "2");
    api.put(&etcd, "/app/b", "1");
    match api {
        Api::V2 => std::thread::scope(|scope| {
            for writer in 0..4 {
                let etcd = &etcd;
                scope.spawn(move || {
                    for i in 0..300 {
                        etcd.put_v2(&format!("/noise/w{writer}/k{i}"), "x");
                    }
                });
            }
        }),
        Api::V3 => {
            for i in 0..10 {
                etcd.put_v3(&format!("/noise/k{i}"), "x");
            }
            let answer = etcd.post_v3("/v3/kv/range", r#"{"key":"L25vaXNl"}"#);
            let revision = serde_json::from_str::<serde_json::Value>(&answer).expect("json")
                ["header"]["revision"]
                .as_str()
                .expect("revision")
                .parse::<u64>()
                .expect("number");
            etcd.post_v3(
                "/v3/kv/compaction",
                &serde_json::json!({"revision": revision, "physical": true}).to_string(),
            );
        }
    }
    confd.signal("CONT");
    confd.expect_file(&dest, "a=2\nb=1\n", CHANGE_LIMIT);
    api.put(&etcd, "/app/c", "1");
    confd.expect_file(&dest, "a=2\nb=1\nc=1\n", CHANGE_LIMIT);
    api.delete(&etcd, "/app/a");
    confd.expect_file(&dest, "b=1\nc=1\n", CHANGE_LIMIT);
}

#[test]
fn v2_watch_recovers_from_a_cleared_event_index() {
    watch_recovers_from_lost_history(Api::V2);
}

#[test]
fn v3_watch_recovers_from_a_compaction() {
    watch_recovers_from_lost_history(Api::V3);
}

/// `keys = ["/"]` reads the whole store; `ls`/`lsdir` at `/` list the top.
fn whole_store_from_the_root(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/a/x", "1");
    api.put(&etcd, "/b", "2");
    api.put(&etcd, "/c/d/e", "3");
    let s = Scenario::new();
    s.template(
        "root.tmpl",
        "{{ ls(key=\"/\") | join(sep=\",\") }}|{{ lsdir(key=\"/\") | join(sep=\",\") }}|{{ getv(key=\"/c/d/e\") }}\n",
    );
    s.resource("root", "root.conf", &["/"], "");
    onetime(&s, api, &[&etcd.url()], &[]).expect_code(0);
    assert_eq!(read(&s.out("root.conf")), "a,b,c|a,c|3\n");
}

#[test]
fn v2_whole_store_from_the_root() {
    whole_store_from_the_root(Api::V2);
}

#[test]
fn v3_whole_store_from_the_root() {
    whole_store_from_the_root(Api::V3);
}

/// SIGTERM while the backend is down and passes are being retried: a
/// prompt exit 0, dest untouched.
#[test]
fn sigterm_while_the_backend_is_down_exits_promptly() {
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    s.write("out/app.conf", "old\n");
    let confd = watch(&s, Api::V2, &format!("http://127.0.0.1:{}", free_port()));
    confd.expect_log("cannot read from the backend", START_LIMIT);
    std::thread::sleep(Duration::from_millis(500));
    let status = confd.terminate(CHANGE_LIMIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exit after SIGTERM");
    assert_eq!(read(&dest), "old\n");
}

/// `-prefix` and a resource's own `prefix` are joined in front of its keys,
/// and stripped again inside the template; a single leaf works as a key.
fn prefixes_and_leaf_keys(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/prod/eu/app/a", "1");
    api.put(&etcd, "/prod/eu/app/b", "2");
    api.put(&etcd, "/prod/us/app/a", "other region");
    api.put(&etcd, "/prod/eu/leaf", "L");
    api.put(&etcd, "/prod/eu/leafy", "not me");
    let s = Scenario::new();
    s.template(
        "app.tmpl",
        "{{ getv(key=\"/app/a\") }} {{ getv(key=\"/app/b\") }} {{ getv(key=\"/leaf\") }} {{ exists(key=\"/leafy\") }}\n",
    );
    s.resource("app", "app.conf", &["/app", "/leaf"], "prefix = \"eu\"\n");
    let dest = s.out("app.conf");
    onetime(&s, api, &[&etcd.url()], &["-prefix", "/prod"]).expect_code(0);
    assert_eq!(read(&dest), "1 2 L false\n");

    // The same under -watch: a change to the leaf is seen. (The first pass
    // must be over before the change: a write during a pass that reads two
    // prefixes is the race v*_multi_prefix_pass_never_hides_a_change pins.)
    fs::remove_file(&dest).expect("remove dest");
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            api.backend(),
            &[&etcd.url()],
            &["-watch", "-prefix", "/prod"],
        ),
    );
    confd.expect_file(&dest, "1 2 L false\n", START_LIMIT);
    api.put(&etcd, "/prod/eu/leaf", "M");
    confd.expect_file(&dest, "1 2 M false\n", CHANGE_LIMIT);
    api.put(&etcd, "/prod/eu/app/b", "3");
    confd.expect_file(&dest, "1 3 M false\n", CHANGE_LIMIT);
}

#[test]
fn v2_prefixes_and_leaf_keys() {
    prefixes_and_leaf_keys(Api::V2);
}

#[test]
fn v3_prefixes_and_leaf_keys() {
    prefixes_and_leaf_keys(Api::V3);
}

/// SIGHUP re-reads confd.toml: new nodes there move the daemon (and its
/// watch) to the other etcd.
#[test]
fn sighup_follows_new_nodes_in_confd_toml() {
    let api = Api::V2;
    let first = Etcd::start();
    let second = Etcd::start();
    api.put(&first, "/app/a", "from first");
    api.put(&second, "/app/a", "from second");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let config = s.path().join("confd.toml");
    let write_config = |etcd: &Etcd| {
        fs::write(
            &config,
            format!("backend = \"etcd\"\nnodes = [{:?}]\n", etcd.url()),
        )
        .expect("write confd.toml");
    };
    write_config(&first);
    let confd = Confd::spawn(
        &s,
        &[
            "-config-file".to_string(),
            config.display().to_string(),
            "-confdir".to_string(),
            s.confdir(),
            "-watch".to_string(),
        ],
    );
    confd.expect_file(&dest, "a=from first\n", START_LIMIT);

    write_config(&second);
    confd.signal("HUP");
    confd.expect_file(&dest, "a=from second\n", CHANGE_LIMIT);
    api.put(&second, "/app/a", "second again");
    confd.expect_file(&dest, "a=second again\n", CHANGE_LIMIT);
    // The first etcd is no longer watched.
    api.put(&first, "/app/a", "stale");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(read(&dest), "a=second again\n");
}

/// Without -watch the daemon polls every -interval seconds, and an outage
/// between polls changes nothing on disk.
#[test]
fn polling_without_watch_picks_up_changes() {
    let api = Api::V3;
    let mut etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let confd = Confd::spawn(
        &s,
        &args(&s, api.backend(), &[&etcd.url()], &["-interval", "1"]),
    );
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    api.put(&etcd, "/app/a", "2");
    confd.expect_file(&dest, "a=2\n", CHANGE_LIMIT);

    etcd.kill();
    confd.expect_log("cannot read from the backend", CHANGE_LIMIT);
    assert_eq!(read(&dest), "a=2\n");
    etcd.restart();
    api.put(&etcd, "/app/a", "3");
    confd.expect_file(&dest, "a=3\n", CHANGE_LIMIT);
    assert_eq!(
        confd.lines_with("cannot read from the backend"),
        1,
        "{}",
        confd.stderr()
    );
}

/// A TCP proxy in front of etcd that, once armed, holds the first request
/// whose bytes contain a marker until the test releases it: a way to make
/// a write land at an exact point inside a pass.
struct GateProxy {
    port: u16,
    marker: Arc<Mutex<Option<String>>>,
    held: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
}

impl GateProxy {
    fn start(upstream: u16) -> GateProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let marker: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (held_tx, held) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let stop = Arc::new(AtomicBool::new(false));
        let (gate, stopping) = (marker.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut client_in, mut server_out) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (mut server_in, mut client_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(std::net::Shutdown::Write);
                });
                let (gate, held_tx, release_rx) =
                    (gate.clone(), held_tx.clone(), release_rx.clone());
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    loop {
                        let n = match client_in.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let text = String::from_utf8_lossy(&buffer[..n]);
                        let hold = {
                            let mut armed = gate.lock().expect("lock");
                            let hit = armed.as_deref().is_some_and(|m| text.contains(m));
                            if hit {
                                *armed = None;
                            }
                            hit
                        };
                        if hold {
                            let _ = held_tx.send(());
                            let _ = release_rx
                                .lock()
                                .expect("lock")
                                .recv_timeout(Duration::from_secs(10));
                        }
                        if server_out.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        GateProxy {
            port,
            marker,
            held,
            release,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Holds the next request containing `marker`.
    fn arm(&self, marker: &str) {
        *self.marker.lock().expect("lock") = Some(marker.to_string());
    }

    /// Waits (bounded) until the armed request is being held.
    fn wait_held(&self, limit: Duration) -> bool {
        self.held.recv_timeout(limit).is_ok()
    }

    fn open(&self) {
        let _ = self.release.send(());
    }
}

impl Drop for GateProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.release.send(());
    }
}

/// A read of several prefixes must not claim a change it did not see. One
/// resource reads `/a` and `/z`; the proxy holds the daemon's first read of
/// `/z` (after `/a` was read) while the test changes `/a`, then lets it
/// through. The daemon must still render the new `/a`: its watch of `/a`
/// starts from `/a`'s own read. Later changes come from the watch events
/// alone: the daemon renders them without reading either prefix again.
fn multi_prefix_pass_never_hides_a_change(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/a/x", "0");
    api.put(&etcd, "/z/x", "0");
    let proxy = GateProxy::start(etcd.client_port());
    let s = Scenario::new();
    s.template(
        "multi.tmpl",
        "{{ getv(key=\"/a/x\") }} {{ getv(key=\"/z/x\") }}\n",
    );
    s.resource("multi", "multi.conf", &["/a", "/z"], "");
    let dest = s.out("multi.conf");
    // The read of /z: v2 `GET /v2/keys/z?recursive…` (not the watch, which
    // asks `?wait=true`); v3 a range whose key is base64("/z").
    let read_of_z = match api {
        Api::V2 => "GET /v2/keys/z?recursive",
        Api::V3 => "\"key\":\"L3o=\",\"limit\"",
    };
    proxy.arm(read_of_z);
    // The proxy recognises the read by its JSON, so etcd v3 goes through
    // the gateway here (the gRPC read keeps the same order of prefixes).
    let mut extra = vec!["-watch", "-log-level", "debug"];
    if api == Api::V3 {
        extra.extend(["-etcdv3-api", "gateway"]);
    }
    let confd = Confd::spawn(&s, &args(&s, api.backend(), &[proxy.url()], &extra));
    assert!(
        proxy.wait_held(START_LIMIT),
        "the daemon never read /z\n--- stderr\n{}",
        confd.stderr()
    );
    api.put(&etcd, "/a/x", "1");
    proxy.open();
    confd.expect_file(&dest, "1 0\n", START_LIMIT);

    let reads = confd.lines_with("read snapshot");
    proxy.arm(read_of_z);
    api.put(&etcd, "/z/x", "1");
    api.put(&etcd, "/a/x", "2");
    confd.expect_file(&dest, "2 1\n", CHANGE_LIMIT);
    assert!(
        !proxy.wait_held(Duration::from_millis(300)),
        "a change made the daemon read /z again\n--- stderr\n{}",
        confd.stderr()
    );
    assert_eq!(
        confd.lines_with("read snapshot"),
        reads,
        "{}",
        confd.stderr()
    );
}

#[test]
fn v2_multi_prefix_pass_never_hides_a_change() {
    multi_prefix_pass_never_hides_a_change(Api::V2);
}

#[test]
fn v3_multi_prefix_pass_never_hides_a_change() {
    multi_prefix_pass_never_hides_a_change(Api::V3);
}

// ---------------------------------------------------------------------------
// Limits on what a server can make confd do
// ---------------------------------------------------------------------------

/// A watch event over `-max-response-size` (a v2 long-poll answer, one v3
/// stream message) fails naming the limit and leaves the file as it was; once
/// the key is small again the daemon catches up.
fn watch_event_over_the_size_cap_keeps_the_file(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            api.backend(),
            &[&etcd.url()],
            &["-watch", "-max-response-size", "64KiB"],
        ),
    );
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    api.put(&etcd, "/app/a", &big_value(100 << 10));
    confd.expect_log("limit of -max-response-size", CHANGE_LIMIT);
    assert_eq!(read(&dest), "a=1\n");
    api.put(&etcd, "/app/a", "2");
    confd.expect_file(&dest, "a=2\n", CHANGE_LIMIT);
}

#[test]
fn v2_watch_event_over_the_size_cap_keeps_the_file() {
    watch_event_over_the_size_cap_keeps_the_file(Api::V2);
}

#[test]
fn v3_watch_event_over_the_size_cap_keeps_the_file() {
    watch_event_over_the_size_cap_keeps_the_file(Api::V3);
}

/// A v3 value or key that is not UTF-8 fails the read naming the key, and
/// the destination keeps its content: one-shot, and under -watch, where the
/// daemon catches up once the value is text again. (Such bytes used to be
/// replaced with U+FFFD and the result written as if it were the data.)
#[test]
fn v3_text_that_is_not_utf8_fails_naming_the_key() {
    let etcd = Etcd::start();
    etcd.put_v3("/app/a", "1");
    etcd.put_v3_bytes(b"/app/bin", b"\xff\xfex");
    // A sibling inside etcd's key range for /app, never read: no error.
    etcd.put_v3_bytes(b"/app-x\xff", b"\xff");
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    s.write("out/app.conf", "old\n");
    let run = onetime(&s, Api::V3, &[&etcd.url()], &[]);
    run.expect_code(1);
    let line = run.line_with("UTF-8");
    assert!(line.contains("key /app/bin"), "{line}");
    assert_eq!(read(&dest), "old\n");

    // A key that is not UTF-8 is named too, with the bytes shown as U+FFFD.
    etcd.delete_v3("/app/bin");
    etcd.put_v3_bytes(b"/app/\xffkey", b"v");
    let run = onetime(&s, Api::V3, &[&etcd.url()], &[]);
    run.expect_code(1);
    run.line_with("key /app/\u{fffd}key is not valid UTF-8");
    assert_eq!(read(&dest), "old\n");

    let body = serde_json::json!({"key": "L2FwcC//a2V5"}); // /app/\xffkey
    etcd.post_v3("/v3/kv/deleterange", &body.to_string());
    let confd = watch(&s, Api::V3, &etcd.url());
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    etcd.put_v3_bytes(b"/app/a", b"\xc3");
    confd.expect_log("key /app/a: the value is not valid UTF-8", CHANGE_LIMIT);
    assert_eq!(read(&dest), "a=1\n");
    etcd.put_v3("/app/a", "é");
    confd.expect_file(&dest, "a=é\n", CHANGE_LIMIT);
}

/// A watch whose node silently died — it stops answering but keeps the
/// connection open, as behind a partition or on a frozen VM — is noticed
/// within the watch timeout plus the time to answer (2 s + 2 s here, set in
/// confd.toml), and the daemon moves to the next node: a change made while
/// the first node is frozen reaches the file. (The v2 long poll and the v3
/// stream used to wait on the dead connection for 5 minutes.)
fn watch_fails_over_from_a_frozen_node(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "1");
    let proxy = FreezableProxy::start(etcd.client_port());
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let config = short_watch_timeout(&s, "2s");
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            api.backend(),
            &[&proxy.url(), &etcd.url()],
            &["-watch", "-config-file", &config],
        ),
    );
    confd.expect_file(&dest, "a=1\n", START_LIMIT);
    // The watch runs through the proxy (the node that answered the read).
    api.put(&etcd, "/app/a", "2");
    confd.expect_file(&dest, "a=2\n", CHANGE_LIMIT);

    proxy.freeze();
    api.put(&etcd, "/app/a", "3");
    let took = confd.expect_file(&dest, "a=3\n", FROZEN_LIMIT);
    eprintln!("{api:?}: a change behind a frozen node reached the file in {took:?}");
    api.put(&etcd, "/app/a", "4");
    confd.expect_file(&dest, "a=4\n", CHANGE_LIMIT);
    proxy.thaw();
}

#[test]
fn v2_watch_fails_over_from_a_frozen_node() {
    watch_fails_over_from_a_frozen_node(Api::V2);
}

#[test]
fn v3_watch_fails_over_from_a_frozen_node() {
    watch_fails_over_from_a_frozen_node(Api::V3);
}

/// Credentials in the node URL authenticate: v2 as basic auth, v3 through
/// the gateway's token authentication; messages mask the password.
fn node_url_credentials_authenticate(api: Api) {
    let etcd = Etcd::start();
    api.put(&etcd, "/app/a", "private");
    match api {
        Api::V2 => enable_v2_auth(&etcd),
        Api::V3 => enable_v3_auth(&etcd),
    }
    let s = Scenario::new();
    let dest = listing_resource(&s, "app", "/app", "");
    let port = etcd.client_port();
    let wrong = format!("http://root:wrong-pw@127.0.0.1:{port}");
    let run = onetime(&s, api, &[&wrong], &[]);
    run.expect_code(1);
    assert!(!run.stderr.contains("wrong-pw"), "{}", run.stderr);
    run.line_with(&format!("http://root:***@127.0.0.1:{port}"));
    assert!(!dest.exists(), "nothing rendered with a wrong password");

    onetime(&s, api, &[&format!("http://root:pw@127.0.0.1:{port}")], &[]).expect_code(0);
    assert_eq!(read(&dest), "a=private\n");
}

#[test]
fn v2_node_url_credentials_authenticate() {
    node_url_credentials_authenticate(Api::V2);
}

#[test]
fn v3_node_url_credentials_authenticate() {
    node_url_credentials_authenticate(Api::V3);
}
