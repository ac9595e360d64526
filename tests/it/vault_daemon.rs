//! The vault backend under a running daemon, against OpenBao's dev server:
//! `-watch` falls back to polling and says so once, a secret changed under a
//! polling daemon reaches the file, and tokens with leases of a few seconds
//! are renewed before they expire (between passes too) and replaced by a new
//! login once Vault stops renewing them, so the file keeps following changes
//! long after the first token's lease; a server killed under the daemon is
//! one logged outage that leaves the file alone. Every wait is bounded.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::confd::{Confd, START_LIMIT, args};
use crate::common::vault::{Bao, ROOT_TOKEN};
use crate::vault::scenario;

/// How long a change may take to reach the file of a daemon polling every
/// second (a pass, a render, a loaded machine).
const POLL_LIMIT: Duration = Duration::from_secs(6);

/// A daemon reading `/kv/app` into `out` every `interval` seconds.
fn daemon(
    bao: &Bao,
    interval: &str,
    auth: &[&str],
    extra: &[&str],
) -> (crate::common::Scenario, Confd) {
    let s = scenario(&["/kv/app"], "{{ getv(key=\"/kv/app\") }}");
    let mut flags = vec!["-interval", interval, "-log-level", "debug"];
    flags.extend_from_slice(auth);
    flags.extend_from_slice(extra);
    let confd = Confd::spawn(&s, &args(&s, "vault", &[bao.url()], &flags));
    (s, confd)
}

fn app_secret(bao: &Bao, value: &str) {
    bao.write_v1("kv", "app", json!({ "value": value }));
}

fn setup() -> Bao {
    let bao = Bao::start();
    bao.enable_kv("kv", 1);
    bao.read_policy("app", &["kv/*"]);
    app_secret(&bao, "v0");
    bao
}

/// Changes the secret at `at` (from `start`) and waits for the file.
fn change_at(
    bao: &Bao,
    confd: &Confd,
    file: &std::path::Path,
    start: Instant,
    at: Duration,
    value: &str,
) {
    if let Some(wait) = (start + at).checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    app_secret(bao, value);
    confd.expect_file(file, value, POLL_LIMIT);
}

#[test]
fn watch_says_vault_polls_and_a_changed_secret_reaches_the_file() {
    let bao = setup();
    let token = bao.token("app", 600, true);
    let auth = ["-auth-type", "token", "-auth-token", token.as_str()];
    let (s, confd) = daemon(&bao, "1", &auth, &["-watch"]);
    confd.expect_file(&s.out("out"), "v0", START_LIMIT);
    app_secret(&bao, "v1");
    confd.expect_file(&s.out("out"), "v1", POLL_LIMIT);
    app_secret(&bao, "v2");
    confd.expect_file(&s.out("out"), "v2", POLL_LIMIT);
    let notice = "this backend has no change notification; polling instead";
    assert_eq!(confd.lines_with(notice), 1, "{}", confd.stderr());
    assert!(
        confd.stderr().contains("backend=\"vault\" interval=1"),
        "{}",
        confd.stderr()
    );
    assert!(!confd.stderr().contains(&token));
}

#[test]
fn app_role_tokens_are_renewed_then_replaced_once_vault_stops_renewing() {
    let bao = setup();
    bao.enable_auth("approle", "approle");
    // A 2 s lease that renewals may stretch to 4 s at most.
    let (role_id, secret_id) = bao.approle("approle", "confd", "app", 2, 4);
    let auth = [
        "-auth-type",
        "app-role",
        "-role-id",
        &role_id,
        "-secret-id",
        &secret_id,
    ];
    let (s, confd) = daemon(&bao, "1", &auth, &[]);
    let start = Instant::now();
    confd.expect_file(&s.out("out"), "v0", START_LIMIT);
    // Well past the first token's max TTL, several times over.
    for (at, value) in [(5, "v1"), (9, "v2"), (13, "v3")] {
        change_at(
            &bao,
            &confd,
            &s.out("out"),
            start,
            Duration::from_secs(at),
            value,
        );
    }
    let log = confd.stderr();
    assert!(confd.lines_with("token renewed") >= 1, "{log}");
    assert!(confd.lines_with("logged in") >= 3, "{log}");
    assert!(!log.contains("permission denied"), "{log}");
    assert!(!log.contains(&secret_id), "{log}");
}

#[test]
fn a_given_token_is_renewed_between_passes_longer_than_its_lease() {
    let bao = setup();
    // The lease (3 s) is shorter than the polling interval (5 s): only a
    // renewal between passes keeps the token alive for the next pass.
    let token = bao.token("app", 3, true);
    let auth = ["-auth-type", "token", "-auth-token", token.as_str()];
    let (s, confd) = daemon(&bao, "5", &auth, &[]);
    let start = Instant::now();
    confd.expect_file(&s.out("out"), "v0", START_LIMIT);
    for (at, value) in [(7, "v1"), (13, "v2")] {
        if let Some(wait) = (start + Duration::from_secs(at)).checked_duration_since(Instant::now())
        {
            std::thread::sleep(wait);
        }
        app_secret(&bao, value);
        confd.expect_file(&s.out("out"), value, Duration::from_secs(9));
    }
    let log = confd.stderr();
    assert!(confd.lines_with("token renewed") >= 4, "{log}");
    assert!(
        !log.contains("expired") && !log.contains("permission denied"),
        "{log}"
    );
    assert!(!log.contains(&token), "{log}");
}

#[test]
fn a_token_that_can_no_longer_be_renewed_fails_loudly_and_keeps_the_file() {
    let bao = setup();
    let token = bao.token("app", 2, false);
    let auth = ["-auth-type", "token", "-auth-token", token.as_str()];
    let (s, confd) = daemon(&bao, "1", &auth, &[]);
    confd.expect_file(&s.out("out"), "v0", START_LIMIT);
    app_secret(&bao, "v1");
    confd.expect_log(
        "the token expired and cannot be renewed",
        Duration::from_secs(8),
    );
    // Whatever was rendered before it expired, the file is never emptied.
    let content = crate::common::read(&s.out("out"));
    assert!(content == "v0" || content == "v1", "{content:?}");
    assert!(!confd.stderr().contains(&token));
}

#[test]
fn a_server_killed_under_the_daemon_is_one_logged_outage_and_the_file_stays() {
    let mut bao = setup();
    let auth = ["-auth-type", "token", "-auth-token", ROOT_TOKEN];
    let (s, confd) = daemon(&bao, "1", &auth, &[]);
    confd.expect_file(&s.out("out"), "v0", START_LIMIT);
    bao.kill();
    confd.expect_log("cannot read from the backend", POLL_LIMIT);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        crate::common::read(&s.out("out")),
        "v0",
        "kept during the outage"
    );
    assert_eq!(
        confd.lines_with("cannot read from the backend"),
        1,
        "{}",
        confd.stderr()
    );
    // A new (empty) dev server with the same root token and the secret
    // written again: the daemon catches up by itself.
    bao.restart();
    bao.enable_kv("kv", 1);
    app_secret(&bao, "after");
    confd.expect_file(&s.out("out"), "after", POLL_LIMIT);
}
