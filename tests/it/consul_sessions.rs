//! Sessions and locks of the in-tree test Consul (tests/it/common/consul/
//! session.rs) checked against Consul's HTTP API documentation, with the
//! small client of `consul_server`: create (TTL bounds, behaviors), renew,
//! destroy, info, `?acquire`/`?release`, and invalidation, which deletes or
//! releases the held keys. Every wait is bounded.

use std::time::{Duration, Instant};

use crate::common::consul::ConsulServer;
use crate::common::wait_until;
use crate::consul_server::{get, put};

fn create(server: &ConsulServer, body: &str) -> String {
    let reply = put(server, "/v1/session/create", body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["ID"]
        .as_str()
        .unwrap_or_else(|| panic!("no ID in {}", reply.text()))
        .to_string()
}

#[test]
fn a_session_ttl_must_be_between_10s_and_24h() {
    let server = ConsulServer::start();
    for ttl in ["5s", "25h", "nonsense"] {
        let body = format!(r#"{{"TTL":"{ttl}"}}"#);
        let reply = put(&server, "/v1/session/create", body.as_bytes());
        assert_eq!(reply.status, 400, "{ttl}: {}", reply.text());
    }
    let reply = put(&server, "/v1/session/create", br#"{"Behavior":"explode"}"#);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(server.session_count(), 0);
    let id = create(
        &server,
        r#"{"TTL":"10s","Behavior":"delete","LockDelay":"0s"}"#,
    );
    assert_eq!(id.len(), 36, "{id}");
    let info = get(&server, &format!("/v1/session/info/{id}")).json();
    assert_eq!(info[0]["Behavior"], "delete", "{info}");
    assert_eq!(info[0]["TTL"], "10s", "{info}");
}

#[test]
fn acquire_takes_the_lock_once_and_release_lets_it_go() {
    let server = ConsulServer::start();
    let a = create(&server, r#"{"TTL":"30s"}"#);
    let b = create(&server, r#"{"TTL":"30s"}"#);
    let reply = put(
        &server,
        &format!("/v1/kv/members/web1?acquire={a}"),
        b"10.0.0.5:80",
    );
    assert_eq!(reply.text(), "true");
    assert_eq!(server.get("members/web1").as_deref(), Some("10.0.0.5:80"));
    assert_eq!(server.lock_holder("members/web1"), Some(a.clone()));
    let entry = get(&server, "/v1/kv/members/web1").json();
    assert_eq!(entry[0]["Session"], a.as_str(), "{entry}");
    assert_eq!(entry[0]["LockIndex"], 1, "{entry}");
    // Another session cannot take it, nor release it.
    let reply = put(&server, &format!("/v1/kv/members/web1?acquire={b}"), b"x");
    assert_eq!(reply.text(), "false");
    let reply = put(&server, &format!("/v1/kv/members/web1?release={b}"), b"x");
    assert_eq!(reply.text(), "false");
    assert_eq!(server.get("members/web1").as_deref(), Some("10.0.0.5:80"));
    // The holder may write again; then release.
    let reply = put(
        &server,
        &format!("/v1/kv/members/web1?acquire={a}"),
        b"10.0.0.6:80",
    );
    assert_eq!(reply.text(), "true");
    let reply = put(
        &server,
        &format!("/v1/kv/members/web1?release={a}"),
        b"10.0.0.6:80",
    );
    assert_eq!(reply.text(), "true");
    assert_eq!(server.lock_holder("members/web1"), None);
    let entry = get(&server, "/v1/kv/members/web1").json();
    assert!(entry[0].get("Session").is_none(), "{entry}");
    // An unknown session is an error.
    let reply = put(&server, "/v1/kv/members/web1?acquire=nope", b"x");
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(reply.text().contains("invalid session"), "{}", reply.text());
}

#[test]
fn destroying_a_session_deletes_or_releases_its_keys_by_behavior() {
    let server = ConsulServer::start();
    let deleting = create(&server, r#"{"TTL":"30s","Behavior":"delete"}"#);
    let releasing = create(&server, r#"{"TTL":"30s"}"#);
    put(&server, &format!("/v1/kv/a?acquire={deleting}"), b"1");
    put(&server, &format!("/v1/kv/b?acquire={releasing}"), b"2");
    for id in [&deleting, &releasing] {
        let reply = put(&server, &format!("/v1/session/destroy/{id}"), b"");
        assert_eq!(reply.text(), "true");
    }
    assert_eq!(server.get("a"), None);
    assert_eq!(server.get("b").as_deref(), Some("2"));
    assert_eq!(server.lock_holder("b"), None);
    let reply = put(&server, &format!("/v1/session/renew/{deleting}"), b"");
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert!(reply.text().contains("not found"), "{}", reply.text());
    assert_eq!(
        get(&server, &format!("/v1/session/info/{deleting}")).text(),
        "[]"
    );
}

#[test]
fn a_session_not_renewed_within_its_ttl_is_invalidated_and_renewing_extends_it() {
    let server = ConsulServer::start();
    let kept = create(&server, r#"{"TTL":"10s","Behavior":"delete"}"#);
    let left = create(&server, r#"{"TTL":"10s","Behavior":"delete"}"#);
    put(&server, &format!("/v1/kv/kept?acquire={kept}"), b"k");
    put(&server, &format!("/v1/kv/left?acquire={left}"), b"l");
    let start = Instant::now();
    // Renew one every 2 s; the other expires at 10 s.
    let gone = wait_until(Duration::from_secs(14), || {
        let reply = put(&server, &format!("/v1/session/renew/{kept}"), b"");
        assert_eq!(reply.status, 200, "{}", reply.text());
        if server.get("left").is_none() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
        false
    });
    let took = start.elapsed();
    assert!(gone, "left was not invalidated");
    assert!(
        took >= Duration::from_secs(9),
        "invalidated early: {took:?}"
    );
    assert_eq!(server.get("kept").as_deref(), Some("k"));
    assert_eq!(server.session_count(), 1);
}
