//! The seed scenario: one HAProxy configuration from two stores, each kept by
//! a confd of its own (one backend per process). The shipped example
//! `examples/haproxy-redis-vault` is run as it is: `confd -backend redis
//! -separator : -watch` renders `haproxy.cfg` (frontend and servers) from a
//! real redis-server, `confd -backend vault -interval 1` renders `stats.cfg`
//! (the stats listener and its `stats auth` credentials) and `site.pem` (the
//! listener's TLS certificate and key) from an OpenBao dev server, and a real
//! HAProxy runs on `-f haproxy.cfg -f stats.cfg`, reloaded by both.
//!
//! Each part's check_cmd is `haproxy -c` on the whole configuration with the
//! staged part in place, so bad data in either store (a port `notaport` in
//! Redis, a certificate that is not one in Vault) is refused and leaves every
//! file, and the running HAProxy, as it was.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT};
use crate::common::etcd::{basic_auth_header, http_with_headers, make_tls_files};
use crate::common::haproxy::{Haproxy, Upstream, wait_for_batch};
use crate::common::redis::Redis;
use crate::common::vault::{Bao, ROOT_TOKEN};
use crate::common::{Scenario, free_port, read, repo_root, wait_until};

/// How long a change may take to reach the running HAProxy: confd's pass
/// (Vault is polled every second), the check, the reload.
const SERVE_LIMIT: Duration = Duration::from_secs(15);

/// The status of `GET /` on the stats listener with HTTP basic auth.
fn stats_status(port: u16, user: &str, password: &str) -> u16 {
    let auth = basic_auth_header(user, password);
    http_with_headers(port, "GET", "/", None, "", &[("Authorization", &auth)])
        .map(|(status, _)| status)
        .unwrap_or(0)
}

/// The stats page's body (with the right credentials), "" when unreachable.
fn stats_page(port: u16, password: &str) -> String {
    let auth = basic_auth_header("admin", password);
    http_with_headers(port, "GET", "/", None, "", &[("Authorization", &auth)])
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// `sh -c script` in `dir`: its stdout, trimmed, when it succeeds.
fn shell(dir: &Path, script: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The SHA-256 fingerprint of the certificate served on `port` (TLS).
fn served_fingerprint(dir: &Path, port: u16) -> String {
    shell(
        dir,
        &format!(
            "timeout 10 openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256"
        ),
    )
    .unwrap_or_else(|e| panic!("no certificate served on {port}: {e}"))
}

/// The SHA-256 fingerprint of the (first) certificate in `file`.
fn file_fingerprint(dir: &Path, file: &Path) -> String {
    shell(
        dir,
        &format!(
            "openssl x509 -noout -fingerprint -sha256 -in '{}'",
            file.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A batch of answers that came from exactly the upstreams in `want`.
fn settled(want: &'static [&'static str]) -> impl FnMut(&[String]) -> bool {
    move |b: &[String]| {
        b.iter().all(|a| want.contains(&a.as_str()))
            && want.iter().all(|w| b.iter().any(|a| a == w))
    }
}

#[test]
fn haproxy_servers_from_redis_credentials_from_vault() {
    let example = repo_root().join("examples/haproxy-redis-vault");
    let mut s = Scenario::new();
    let root = s.path().to_path_buf();
    let (stats_port, tls_port, http_port) = (free_port(), free_port(), free_port());
    s.set_env("STATS_PORT", &stats_port.to_string())
        .set_env("STATS_TLS_PORT", &tls_port.to_string());
    let (web1, web2) = (Upstream::start("web1"), Upstream::start("web2"));

    // The stores: servers in Redis, credentials and certificate in Vault.
    let redis = Redis::start();
    redis.cmd(&["SET", "haproxy:port", &http_port.to_string()]);
    let web1_port = web1.port().to_string();
    redis.cmd(&[
        "HSET",
        "services:web:web1",
        "ip",
        "127.0.0.1",
        "port",
        &web1_port,
    ]);
    let bao = Bao::start();
    let tls = make_tls_files(&root.join("out"));
    let (cert, key) = (read(&tls.server_cert), read(&tls.server_key));
    bao.write_v2("secret", "haproxy/tls", json!({"cert": cert, "key": key}));
    let stats = |password: &str| json!({"user": "admin", "password": password});
    bao.write_v2("secret", "haproxy/stats", stats("pw-1"));

    // The Redis part first: the Vault part's check needs it.
    let redis_args: Vec<String> = [
        "-backend",
        "redis",
        "-node",
        &redis.addr(),
        "-separator",
        ":",
        "-watch",
        "-confdir",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([example.join("confd-redis").display().to_string()])
    .collect();
    let from_redis = Confd::spawn(&s, &redis_args);
    let (haproxy_cfg, stats_cfg, site_pem) = (
        root.join("haproxy.cfg"),
        root.join("stats.cfg"),
        root.join("site.pem"),
    );
    from_redis.expect_file_where(&haproxy_cfg, "web1", START_LIMIT, |t| {
        t.contains(&format!("server web1 127.0.0.1:{web1_port} check"))
    });
    let vault_args: Vec<String> = [
        "-backend",
        "vault",
        "-node",
        &bao.url(),
        "-auth-type",
        "token",
        "-auth-token",
        ROOT_TOKEN,
        "-interval",
        "1",
        "-confdir",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([example.join("confd-vault").display().to_string()])
    .collect();
    let from_vault = Confd::spawn(&s, &vault_args);
    from_vault.expect_file_where(&stats_cfg, "the pw-1 credentials", START_LIMIT, |t| {
        t.contains("stats auth admin:pw-1")
    });
    assert_eq!(
        file_fingerprint(&root, &site_pem),
        file_fingerprint(&root, &tls.server_cert),
        "site.pem holds the certificate stored in Vault"
    );
    let mode = fs::metadata(&stats_cfg).map(|m| m.permissions()).ok();
    assert!(
        mode.is_some_and(|m| std::os::unix::fs::PermissionsExt::mode(&m) & 0o077 == 0),
        "stats.cfg holds a password: mode 0600"
    );
    shell(&root, "haproxy -c -f haproxy.cfg -f stats.cfg")
        .unwrap_or_else(|e| panic!("haproxy -c rejects the combined configuration: {e}"));

    // HAProxy on both parts: traffic through the server from Redis, the stats
    // page behind the credentials from Vault, TLS with Vault's certificate.
    let mut haproxy = Haproxy::start_files(&[&haproxy_cfg, &stats_cfg], &root);
    if let Err(last) = wait_for_batch(http_port, "shop", SERVE_LIMIT, settled(&["web1"])) {
        panic!(
            "traffic did not reach web1: {last:?}\n{}",
            haproxy.report(&from_redis.stderr())
        );
    }
    assert_eq!(stats_status(stats_port, "admin", "pw-1"), 200);
    assert_eq!(stats_status(stats_port, "admin", "wrong"), 401);
    assert_eq!(
        served_fingerprint(&root, tls_port),
        file_fingerprint(&root, &tls.server_cert),
        "the stats listener serves the certificate from Vault"
    );

    // A server added in Redis reaches the file, HAProxy and the traffic.
    let web2_port = web2.port().to_string();
    redis.cmd(&[
        "HSET",
        "services:web:web2",
        "ip",
        "127.0.0.1",
        "port",
        &web2_port,
    ]);
    from_redis.expect_file_where(&haproxy_cfg, "web2", CHANGE_LIMIT, |t| {
        t.contains(&format!("server web2 127.0.0.1:{web2_port} check"))
    });
    if let Err(last) = wait_for_batch(http_port, "shop", SERVE_LIMIT, settled(&["web1", "web2"])) {
        panic!(
            "web2 did not take traffic: {last:?}\n{}",
            haproxy.report(&from_redis.stderr())
        );
    }

    // A password rotated in Vault reaches the file and the stats page.
    bao.write_v2("secret", "haproxy/stats", stats("pw-2"));
    from_vault.expect_file_where(&stats_cfg, "the pw-2 credentials", SERVE_LIMIT, |t| {
        t.contains("stats auth admin:pw-2")
    });
    assert!(
        wait_until(SERVE_LIMIT, || stats_status(stats_port, "admin", "pw-2")
            == 200),
        "the rotated password is not accepted\n{}",
        haproxy.report(&from_vault.stderr())
    );
    assert_eq!(stats_status(stats_port, "admin", "pw-1"), 401);
    assert!(stats_page(stats_port, "pw-2").contains("web2"));

    // Bad data in Redis: haproxy -c refuses the render; nothing changes.
    let before = (read(&haproxy_cfg), read(&stats_cfg), read(&site_pem));
    let loads = haproxy.loads();
    redis.cmd(&["HSET", "services:web:web2", "port", "notaport"]);
    from_redis.expect_log("check_cmd rejected the new content", CHANGE_LIMIT);
    assert_eq!(read(&haproxy_cfg), before.0, "haproxy.cfg changed");

    // Bad data in Vault: a certificate that is not one is refused.
    bao.write_v2(
        "secret",
        "haproxy/tls",
        json!({"cert": "not a certificate", "key": key}),
    );
    from_vault.expect_log("check_cmd rejected the new content", SERVE_LIMIT);
    assert_eq!(read(&site_pem), before.2, "site.pem changed");
    assert_eq!(read(&stats_cfg), before.1, "stats.cfg changed");
    assert!(
        !from_vault.stderr().contains("pw-2"),
        "a password reached the log:\n{}",
        from_vault.stderr()
    );

    // HAProxy was not reloaded onto anything and still serves as before.
    assert_eq!(haproxy.loads(), loads, "HAProxy was reloaded");
    assert!(haproxy.is_running());
    if let Err(last) = wait_for_batch(http_port, "shop", SERVE_LIMIT, settled(&["web1", "web2"])) {
        panic!("traffic changed after refused data: {last:?}");
    }
    assert_eq!(stats_status(stats_port, "admin", "pw-2"), 200);
    assert_eq!(
        served_fingerprint(&root, tls_port),
        file_fingerprint(&root, &tls.server_cert)
    );
}
