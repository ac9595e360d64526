//! The redis backend against a real Redis (Debian's `redis-server`, started
//! by `common/redis.rs` on a free 127.0.0.1 port): strings and hashes, the
//! separator, database numbers, passwords and ACL users, TLS, failover, the
//! response cap, one SCAN per prefix, and `-watch` on keyspace notifications
//! (changes applied, notifications off → polling, a server killed and
//! restarted under the daemon).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT, args, onetime};
use crate::common::etcd::make_tls_files;
use crate::common::redis::{Redis, RedisOptions};
use crate::common::{Scenario, read, wait_until};

/// A resource listing every key under `/app` as `key=value` lines.
fn listing(s: &Scenario) -> PathBuf {
    s.template(
        "app.tmpl",
        "{% for kv in gets(key=\"/app/*\") %}{{ kv.key }}={{ kv.value }}\n{% endfor %}{% for kv in gets(key=\"/app/*/*\") %}{{ kv.key }}={{ kv.value }}\n{% endfor %}",
    );
    s.resource("app", "app.txt", &["/app"], "");
    s.out("app.txt")
}

#[test]
fn onetime_renders_strings_and_hashes_with_a_separator() {
    let redis = Redis::start();
    redis.cmd(&["SET", "app:name", "shop"]);
    redis.cmd(&["SET", "app:db:host", "db1"]);
    redis.cmd(&["HSET", "app:cache", "host", "c1", "port", "6380"]);
    // Not data: a sibling that shares the prefix's bytes, and a list.
    redis.cmd(&["SET", "apple:x", "no"]);
    redis.cmd(&["RPUSH", "app:queue", "a"]);
    let s = Scenario::new();
    let dest = listing(&s);
    onetime(&s, "redis", &[redis.addr()], &["-separator", ":"]).expect_code(0);
    assert_eq!(
        read(&dest),
        "/app/name=shop\n/app/cache/host=c1\n/app/cache/port=6380\n/app/db/host=db1\n"
    );
}

#[test]
fn keys_with_slashes_need_no_separator() {
    let redis = Redis::start();
    redis.cmd(&["SET", "/app/name", "shop"]);
    redis.cmd(&["HSET", "/app/db", "user", "bob"]);
    redis.cmd(&["SET", "/apple/x", "no"]);
    let s = Scenario::new();
    let dest = listing(&s);
    onetime(&s, "redis", &[redis.addr()], &[]).expect_code(0);
    assert_eq!(read(&dest), "/app/name=shop\n/app/db/user=bob\n");
}

#[test]
fn the_database_number_of_a_node_is_selected() {
    let redis = Redis::start();
    redis.cmd(&["SET", "app:name", "in-db-0"]);
    redis.cmd_db(3, &["SET", "app:name", "in-db-3"]);
    let s = Scenario::new();
    let dest = listing(&s);
    let node = format!("{}/3", redis.addr());
    onetime(&s, "redis", &[&node], &["-separator", ":"]).expect_code(0);
    assert_eq!(read(&dest), "/app/name=in-db-3\n");
    let url = format!("redis://{}/0", redis.addr());
    onetime(&s, "redis", &[&url], &["-separator", ":"]).expect_code(0);
    assert_eq!(read(&dest), "/app/name=in-db-0\n");
}

#[test]
fn unix_socket_nodes_as_confd_takes_them_and_with_a_database() {
    let redis = Redis::start_with(RedisOptions {
        unix_socket: true,
        ..RedisOptions::default()
    });
    redis.cmd(&["SET", "app:name", "in-db-0"]);
    redis.cmd_db(2, &["SET", "app:name", "in-db-2"]);
    let socket = redis.socket().expect("a socket");
    let s = Scenario::new();
    let dest = listing(&s);
    onetime(&s, "redis", &[&socket], &["-separator", ":"]).expect_code(0);
    assert_eq!(read(&dest), "/app/name=in-db-0\n");
    let url = format!("unix://{socket}?db=2");
    onetime(&s, "redis", &[&url], &["-separator", ":"]).expect_code(0);
    assert_eq!(read(&dest), "/app/name=in-db-2\n");
}

#[test]
fn password_and_acl_users_authenticate_and_never_show() {
    let redis = Redis::start_with(RedisOptions {
        password: Some("def-s3cret".to_string()),
        users: vec!["app on >app-s3cret ~app:* &* +@read +@connection".to_string()],
        ..RedisOptions::default()
    });
    redis.cmd(&["SET", "app:name", "shop"]);
    let s = Scenario::new();
    let dest = listing(&s);
    let node = redis.addr();
    let sep = ["-separator", ":"];
    // No password: the server's NOAUTH, and a hint.
    let run = onetime(&s, "redis", &[&node], &sep);
    run.expect_code(1);
    assert!(
        run.line_with("NOAUTH").contains("-password"),
        "{}",
        run.stderr
    );
    // The default user's password; an ACL user with its own.
    onetime(
        &s,
        "redis",
        &[&node],
        &["-separator", ":", "-password", "def-s3cret"],
    )
    .expect_code(0);
    assert_eq!(read(&dest), "/app/name=shop\n");
    fs::remove_file(&dest).expect("rm");
    let acl = [
        "-separator",
        ":",
        "-username",
        "app",
        "-password",
        "app-s3cret",
    ];
    onetime(&s, "redis", &[&node], &acl).expect_code(0);
    assert_eq!(read(&dest), "/app/name=shop\n");
    // Credentials in the node URL, percent-encoded.
    let url = format!("redis://app:app-s3cret@{node}");
    onetime(&s, "redis", &[&url], &sep).expect_code(0);
    // A wrong password fails, leaves the file, and is shown nowhere.
    let wrong = format!("redis://app:wr0ng-pw@{node}");
    for run in [
        onetime(&s, "redis", &[&wrong], &sep),
        onetime(
            &s,
            "redis",
            &[&node],
            &[
                "-separator",
                ":",
                "-username",
                "app",
                "-password",
                "wr0ng-pw",
            ],
        ),
    ] {
        run.expect_code(1);
        assert!(run.stderr.contains("WRONGPASS"), "{}", run.stderr);
        assert!(!run.stderr.contains("wr0ng-pw"), "{}", run.stderr);
        assert!(!run.stdout.contains("wr0ng-pw"));
    }
    assert_eq!(read(&dest), "/app/name=shop\n");
}

#[test]
fn client_key_is_the_password_as_in_confd_0_16() {
    let redis = Redis::start_with(RedisOptions {
        password: Some("k3y-pw".to_string()),
        ..RedisOptions::default()
    });
    redis.cmd(&["SET", "/app/name", "shop"]);
    let s = Scenario::new();
    let dest = listing(&s);
    let run = onetime(&s, "redis", &[redis.addr()], &["-client-key", "k3y-pw"]);
    run.expect_code(0);
    assert_eq!(read(&dest), "/app/name=shop\n");
    assert!(
        run.line_with("-client-key taken as the Redis password")
            .contains("WARN")
    );
    assert!(!run.stderr.contains("k3y-pw"), "{}", run.stderr);
    // A -client-key that names a file is a TLS key, and needs its certificate.
    let key = s.write("client.key", "not used");
    let run = onetime(
        &s,
        "redis",
        &[redis.addr()],
        &["-client-key", &key.display().to_string()],
    );
    run.expect_code(2);
    run.line_with("-client-key: needs -client-cert as well");
}

#[test]
fn tls_with_a_client_certificate() {
    let certs = tempfile::tempdir().expect("dir");
    let tls = make_tls_files(certs.path());
    let redis = Redis::start_with(RedisOptions {
        tls: Some(tls.clone()),
        ..RedisOptions::default()
    });
    redis.cmd(&["SET", "/app/name", "over-tls"]);
    let port = redis.tls_port().expect("a TLS port");
    let s = Scenario::new();
    let dest = listing(&s);
    let (ca, cert, key) = (
        tls.ca.display().to_string(),
        tls.client_cert.display().to_string(),
        tls.client_key.display().to_string(),
    );
    let files = [
        "-client-ca-keys",
        &ca,
        "-client-cert",
        &cert,
        "-client-key",
        &key,
    ];
    // rediss:// and host:port with the TLS flags alike.
    for node in [
        format!("rediss://127.0.0.1:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        onetime(&s, "redis", &[&node], &files).expect_code(0);
        assert_eq!(read(&dest), "/app/name=over-tls\n");
        fs::remove_file(&dest).expect("rm");
    }
    // The server wants a client certificate; without one the handshake or
    // the first command fails, and no file is written.
    let node = format!("rediss://127.0.0.1:{port}");
    let run = onetime(&s, "redis", &[&node], &["-client-ca-keys", &ca]);
    run.expect_code(1);
    assert!(!dest.exists());
}

#[test]
fn fails_over_to_a_live_node_and_names_dead_ones() {
    let redis = Redis::start();
    redis.cmd(&["SET", "/app/name", "live"]);
    let dead = format!("127.0.0.1:{}", crate::common::free_port());
    let s = Scenario::new();
    let dest = listing(&s);
    onetime(&s, "redis", &[dead.as_str(), &redis.addr()], &[]).expect_code(0);
    assert_eq!(read(&dest), "/app/name=live\n");
    let run = onetime(&s, "redis", &[&dead], &[]);
    run.expect_code(1);
    assert!(
        run.line_with(&dead).contains("cannot connect"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&dest), "/app/name=live\n");
}

#[test]
fn answers_over_max_response_size_fail_and_leave_the_file() {
    let redis = Redis::start();
    redis.cmd(&["SET", "/app/name", "small"]);
    let s = Scenario::new();
    let dest = listing(&s);
    onetime(
        &s,
        "redis",
        &[redis.addr()],
        &["-max-response-size", "1MiB"],
    )
    .expect_code(0);
    let big = "x".repeat(2 << 20);
    redis.cmd(&["SET", "/app/big", &big]);
    let run = onetime(
        &s,
        "redis",
        &[redis.addr()],
        &["-max-response-size", "1MiB"],
    );
    run.expect_code(1);
    assert!(
        run.line_with("-max-response-size").contains("1 MiB"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&dest), "/app/name=small\n");
}

#[test]
fn values_that_are_not_utf8_fail_naming_the_key() {
    let redis = Redis::start();
    redis.cmd(&["SET", "/app/name", "fine"]);
    redis
        .try_cmd_bytes(0, &[b"SET", b"/app/bin", b"\xff\xfe"])
        .expect("set");
    let s = Scenario::new();
    let dest = listing(&s);
    let run = onetime(&s, "redis", &[redis.addr()], &[]);
    run.expect_code(1);
    assert!(
        run.line_with("UTF-8").contains("/app/bin"),
        "{}",
        run.stderr
    );
    assert!(!dest.exists());
}

#[test]
fn one_scan_per_distinct_prefix_and_never_keys() {
    let redis = Redis::start();
    for i in 0..50 {
        redis.cmd(&["SET", &format!("app:k{i}"), "v"]);
    }
    redis.cmd(&["SET", "web:a", "1"]);
    let s = Scenario::new();
    // Two resources, two distinct prefixes (/app/k1 lies in /app).
    for name in ["a", "b"] {
        s.template(
            &format!("{name}.tmpl"),
            "{{ gets(key=\"/*/*\") | length }}\n",
        );
    }
    s.resource("a", "a.txt", &["/app"], "");
    s.resource("b", "b.txt", &["/app/k1", "/web"], "");
    redis.cmd(&["CONFIG", "RESETSTAT"]);
    onetime(&s, "redis", &[redis.addr()], &["-separator", ":"]).expect_code(0);
    assert_eq!(read(&s.out("a.txt")), "50\n");
    assert_eq!(read(&s.out("b.txt")), "2\n");
    assert_eq!(redis.calls("scan"), 2, "one SCAN per distinct prefix");
    assert_eq!(redis.calls("keys"), 0, "KEYS blocks the server");
}

/// A daemon on `redis` with `-watch` and debug logs.
fn watch(s: &Scenario, redis: &Redis, extra: &[&str]) -> Confd {
    let mut all = vec!["-watch", "-log-level", "debug", "-separator", ":"];
    all.extend_from_slice(extra);
    Confd::spawn(s, &args(s, "redis", &[redis.addr()], &all))
}

#[test]
fn watch_applies_string_changes_and_rereads_hashes() {
    let redis = Redis::start();
    redis.cmd(&["SET", "app:a", "1"]);
    redis.cmd(&["HSET", "app:h", "f", "x"]);
    let s = Scenario::new();
    let dest = listing(&s);
    let confd = watch(&s, &redis, &[]);
    confd.expect_file(&dest, "/app/a=1\n/app/h/f=x\n", START_LIMIT);
    // At start the subscription is made after the first read, so the
    // prefix is read once more (nothing written before it is missed).
    assert!(wait_until(START_LIMIT, || confd
        .lines_with("read snapshot")
        >= 2));
    std::thread::sleep(Duration::from_millis(200));
    let reads = confd.lines_with("read snapshot");

    // Strings: applied from the notification, no read of the prefix.
    redis.cmd(&["SET", "app:b", "2"]);
    confd.expect_file(&dest, "/app/a=1\n/app/b=2\n/app/h/f=x\n", CHANGE_LIMIT);
    redis.cmd(&["DEL", "app:a"]);
    confd.expect_file(&dest, "/app/b=2\n/app/h/f=x\n", CHANGE_LIMIT);
    redis.cmd(&["SET", "app:t", "short-lived", "PX", "300"]);
    confd.expect_file(
        &dest,
        "/app/b=2\n/app/t=short-lived\n/app/h/f=x\n",
        CHANGE_LIMIT,
    );
    confd.expect_file(&dest, "/app/b=2\n/app/h/f=x\n", CHANGE_LIMIT);
    assert_eq!(
        confd.lines_with("read snapshot"),
        reads,
        "{}",
        confd.stderr()
    );

    // A sibling sharing the prefix's bytes is not followed.
    redis.cmd(&["SET", "apple:x", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        confd.lines_with("read snapshot"),
        reads,
        "{}",
        confd.stderr()
    );

    // Hash fields are keys of their own: the prefix is read again.
    redis.cmd(&["HSET", "app:h", "g", "y"]);
    confd.expect_file(&dest, "/app/b=2\n/app/h/f=x\n/app/h/g=y\n", CHANGE_LIMIT);
    redis.cmd(&["HDEL", "app:h", "f"]);
    confd.expect_file(&dest, "/app/b=2\n/app/h/g=y\n", CHANGE_LIMIT);
    redis.cmd(&["DEL", "app:h"]);
    confd.expect_file(&dest, "/app/b=2\n", CHANGE_LIMIT);
    assert!(confd.lines_with("read snapshot") > reads);
    let status = confd.terminate(CHANGE_LIMIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[test]
fn notifications_off_means_polling_said_once() {
    let redis = Redis::start_with(RedisOptions {
        notifications_off: true,
        ..RedisOptions::default()
    });
    redis.cmd(&["SET", "app:a", "1"]);
    let s = Scenario::new();
    let dest = listing(&s);
    let confd = watch(&s, &redis, &["-interval", "1"]);
    confd.expect_file(&dest, "/app/a=1\n", START_LIMIT);
    redis.cmd(&["SET", "app:a", "2"]);
    confd.expect_file(&dest, "/app/a=2\n", Duration::from_secs(5));
    redis.cmd(&["SET", "app:a", "3"]);
    confd.expect_file(&dest, "/app/a=3\n", Duration::from_secs(5));
    let said = "cannot follow keyspace notifications (notify-keyspace-events is \"\")";
    assert_eq!(confd.lines_with(said), 1, "{}", confd.stderr());
    // Turned on at run time: watching again, said once.
    redis.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KA"]);
    confd.expect_log(
        "keyspace notifications available again",
        Duration::from_secs(5),
    );
    redis.cmd(&["SET", "app:a", "4"]);
    confd.expect_file(&dest, "/app/a=4\n", CHANGE_LIMIT);
}

#[test]
fn an_acl_user_without_config_is_polled() {
    let redis = Redis::start_with(RedisOptions {
        users: vec!["ro on >ro-pw ~* &* +@read +@connection".to_string()],
        ..RedisOptions::default()
    });
    redis.cmd(&["SET", "app:a", "1"]);
    let s = Scenario::new();
    let dest = listing(&s);
    let confd = watch(
        &s,
        &redis,
        &["-interval", "1", "-username", "ro", "-password", "ro-pw"],
    );
    confd.expect_file(&dest, "/app/a=1\n", START_LIMIT);
    confd.expect_log(
        "CONFIG GET notify-keyspace-events was refused: NOPERM",
        START_LIMIT,
    );
    redis.cmd(&["SET", "app:a", "2"]);
    confd.expect_file(&dest, "/app/a=2\n", Duration::from_secs(5));
    assert!(!confd.stderr().contains("ro-pw"));
}

#[test]
fn a_killed_and_restarted_server_is_caught_up() {
    let mut redis = Redis::start();
    redis.cmd(&["SET", "app:a", "1"]);
    let s = Scenario::new();
    let dest = listing(&s);
    let confd = watch(&s, &redis, &[]);
    confd.expect_file(&dest, "/app/a=1\n", START_LIMIT);
    assert!(wait_until(START_LIMIT, || confd
        .lines_with("read snapshot")
        >= 2));

    redis.kill();
    confd.expect_log("cannot read from the backend", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1_500));
    // One line for the outage, and the file as it was.
    assert_eq!(
        confd.lines_with("cannot read from the backend"),
        1,
        "{}",
        confd.stderr()
    );
    assert_eq!(read(&dest), "/app/a=1\n");

    // Back on the same port, empty (no persistence): new data flows.
    redis.restart();
    redis.cmd(&["SET", "app:a", "2"]);
    redis.cmd(&["SET", "app:b", "3"]);
    confd.expect_file(&dest, "/app/a=2\n/app/b=3\n", Duration::from_secs(10));
    confd.expect_log("backend answers again", CHANGE_LIMIT);
    redis.cmd(&["SET", "app:b", "4"]);
    confd.expect_file(&dest, "/app/a=2\n/app/b=4\n", CHANGE_LIMIT);
}

#[test]
fn a_watch_fails_over_when_its_node_dies() {
    // Two independent servers standing in for a primary and its replica.
    let mut first = Redis::start();
    let second = Redis::start();
    for redis in [&first, &second] {
        redis.cmd(&["SET", "app:a", "1"]);
    }
    let s = Scenario::new();
    let dest = listing(&s);
    let nodes = [first.addr(), second.addr()];
    let all = ["-watch", "-separator", ":", "-log-level", "debug"];
    let confd = Confd::spawn(&s, &args(&s, "redis", &nodes, &all));
    confd.expect_file(&dest, "/app/a=1\n", START_LIMIT);
    first.kill();
    second.cmd(&["SET", "app:a", "2"]);
    confd.expect_file(&dest, "/app/a=2\n", Duration::from_secs(10));
    // The subscription is on the second node now: its changes flow.
    std::thread::sleep(Duration::from_millis(300));
    second.cmd(&["SET", "app:a", "3"]);
    confd.expect_file(&dest, "/app/a=3\n", CHANGE_LIMIT);
}
