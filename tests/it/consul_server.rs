//! The in-tree test Consul (tests/it/common/consul.rs) checked against Consul's
//! HTTP API documentation with a small std HTTP client: KV reads (single,
//! `?recurse`, `?keys` with `separator`, `?raw`, 404, folder null, base64),
//! read headers, blocking queries (answer at a change, at the wait with the
//! same index, index going backwards), ACL tokens, datacenters, health of
//! services (`?passing`, `?tag=`, blocking on a check flip), concurrent held
//! requests and keep-alive. Every wait is bounded; every test takes < 5 s.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::common::consul::{
    CheckStatus, ConsulOptions, ConsulServer, DEFAULT_WAIT, MAX_WAIT, ServiceInstance,
    effective_wait, parse_go_duration,
};

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client
// ---------------------------------------------------------------------------

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn index(&self) -> u64 {
        self.header("X-Consul-Index")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no X-Consul-Index in {self:?}"))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The `Key` of every entry of a KV list.
    fn keys(&self) -> Vec<String> {
        self.json()
            .as_array()
            .expect("an array")
            .iter()
            .map(|e| e["Key"].as_str().expect("a Key").to_string())
            .collect()
    }

    fn strings(&self) -> Vec<String> {
        serde_json::from_slice(&self.body).expect("an array of strings")
    }
}

/// One keep-alive connection.
struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    fn connect(server: &ConsulServer) -> Client {
        let stream = TcpStream::connect(server.address()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Client {
            stream,
            buffer: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).expect("send");
    }

    fn receive(&mut self) -> Reply {
        let head_end = loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            self.fill();
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.parse().expect("a length"))
            .expect("every answer has a Content-Length");
        while self.buffer.len() < length {
            self.fill();
        }
        let body = self.buffer.drain(..length).collect();
        Reply {
            status,
            headers,
            body,
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).expect("read an answer");
        assert!(n > 0, "the server closed the connection mid-answer");
        self.buffer.extend_from_slice(&chunk[..n]);
    }

    fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.send(method, target, headers, body);
        self.receive()
    }
}

pub(crate) fn get(server: &ConsulServer, target: &str) -> Reply {
    Client::connect(server).request("GET", target, &[], b"")
}

fn get_with(server: &ConsulServer, target: &str, headers: &[(&str, &str)]) -> Reply {
    Client::connect(server).request("GET", target, headers, b"")
}

pub(crate) fn put(server: &ConsulServer, target: &str, body: &[u8]) -> Reply {
    Client::connect(server).request("PUT", target, &[], body)
}

pub(crate) fn delete(server: &ConsulServer, target: &str) -> Reply {
    Client::connect(server).request("DELETE", target, &[], b"")
}

/// Polls until `server` holds `n` blocking requests (at most 2 s).
fn wait_held(server: &ConsulServer, n: u64) {
    assert!(
        crate::common::wait_until(Duration::from_secs(2), || server.held_requests() >= n),
        "expected {n} held requests, have {}",
        server.held_requests()
    );
}

// ---------------------------------------------------------------------------
// KV reads
// ---------------------------------------------------------------------------

#[test]
fn a_single_key_is_an_array_of_one_entry_with_a_base64_value() {
    let server = ConsulServer::start();
    server.put_bytes("app/name", b"hello \xff world", 42);
    let index = server.index();
    let reply = get(&server, "/v1/kv/app/name");
    assert_eq!(reply.status, 200);
    let body = reply.json();
    let entries = body.as_array().expect("an array");
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["Key"], "app/name");
    assert_eq!(entry["Flags"], 42);
    assert_eq!(entry["LockIndex"], 0);
    assert_eq!(entry["CreateIndex"], index);
    assert_eq!(entry["ModifyIndex"], index);
    assert!(entry.get("Session").is_none(), "no Session without a lock");
    let value = BASE64
        .decode(entry["Value"].as_str().expect("a string"))
        .expect("base64");
    assert_eq!(value, b"hello \xff world");
    // The wire order of Consul's DirEntry.
    let text = reply.text();
    let at = |field: &str| text.find(&format!("\"{field}\"")).expect(field);
    assert!(at("LockIndex") < at("Key") && at("Key") < at("Flags"));
    assert!(at("Flags") < at("Value") && at("Value") < at("CreateIndex"));
    assert!(at("CreateIndex") < at("ModifyIndex"));

    // A second write keeps CreateIndex and moves ModifyIndex.
    server.put("app/name", "again");
    let entry = get(&server, "/v1/kv/app/name").json()[0].clone();
    assert_eq!(entry["CreateIndex"], index);
    assert_eq!(entry["ModifyIndex"], server.index());
}

#[test]
fn reads_carry_the_query_meta_headers() {
    let server = ConsulServer::start();
    server.put("a", "1");
    let a_index = server.index();
    server.put("b", "2");
    let reply = get(&server, "/v1/kv/a");
    assert_eq!(reply.index(), a_index, "a key's index is its ModifyIndex");
    assert_eq!(reply.header("X-Consul-KnownLeader"), Some("true"));
    assert_eq!(reply.header("X-Consul-LastContact"), Some("0"));
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    assert_eq!(reply.header("X-Consul-Default-ACL-Policy"), Some("allow"));

    let health = get(&server, "/v1/health/service/none");
    assert!(health.header("X-Consul-Index").is_some());
    assert_eq!(health.header("X-Consul-KnownLeader"), Some("true"));
    assert_eq!(health.header("Content-Type"), Some("application/json"));
}

#[test]
fn a_missing_key_is_404_with_an_empty_body_and_the_current_index() {
    let server = ConsulServer::start();
    let reply = get(&server, "/v1/kv/nothing");
    assert_eq!(reply.status, 404);
    assert!(reply.body.is_empty());
    assert_eq!(reply.index(), 1, "never 0, even on an empty store");

    server.put("a", "1");
    server.put("b", "2");
    let reply = get(&server, "/v1/kv/nothing");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.index(), server.index());
    assert_eq!(reply.header("X-Consul-KnownLeader"), Some("true"));
    assert_eq!(get(&server, "/v1/kv/nothing?raw").status, 404);
}

#[test]
fn recurse_is_a_plain_string_prefix_sorted_by_key() {
    let server = ConsulServer::start();
    server.put("app/b", "2");
    server.put("apple", "x");
    server.put("app/a", "1");
    server.put("ap", "no");
    server.put("other/z", "no");
    let reply = get(&server, "/v1/kv/app?recurse");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.keys(), ["app/a", "app/b", "apple"]);
    assert_eq!(
        get(&server, "/v1/kv/app/?recurse=true").keys(),
        ["app/a", "app/b"]
    );
    // The whole store.
    assert_eq!(
        get(&server, "/v1/kv/?recurse").keys(),
        ["ap", "app/a", "app/b", "apple", "other/z"]
    );
    // Nothing under a prefix: 404 with an index.
    let missing = get(&server, "/v1/kv/zzz/?recurse");
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_empty());
    assert!(missing.index() >= 1);
}

#[test]
fn a_recursive_index_is_the_highest_modify_index_under_the_prefix() {
    let server = ConsulServer::start();
    server.put("app/a", "1");
    server.put("app/b", "2");
    let app = server.index();
    server.put("other/x", "3");
    assert_eq!(get(&server, "/v1/kv/app/?recurse").index(), app);
    server.put("app/a", "1 again");
    let app = server.index();
    assert_eq!(get(&server, "/v1/kv/app/?recurse").index(), app);
    // A delete under the prefix raises it too (Consul keeps tombstones).
    server.put("other/y", "4");
    assert!(server.delete("app/b"));
    assert_eq!(get(&server, "/v1/kv/app/?recurse").index(), server.index());
    assert_eq!(get(&server, "/v1/kv/app/?recurse").keys(), ["app/a"]);
}

#[test]
fn keys_lists_names_and_separator_rolls_them_up() {
    let server = ConsulServer::start();
    for key in [
        "web/bar",
        "web/foo",
        "web/subdir/x",
        "web/subdir/y",
        "webapp",
    ] {
        server.put(key, "v");
    }
    assert_eq!(
        get(&server, "/v1/kv/web/?keys").strings(),
        ["web/bar", "web/foo", "web/subdir/x", "web/subdir/y"]
    );
    // The documentation's example.
    assert_eq!(
        get(&server, "/v1/kv/web/?keys&separator=/").strings(),
        ["web/bar", "web/foo", "web/subdir/"]
    );
    assert_eq!(
        get(&server, "/v1/kv/web?keys&separator=/").strings(),
        ["web/", "webapp"]
    );
    assert_eq!(
        get(&server, "/v1/kv/?keys&separator=/").strings(),
        ["web/", "webapp"]
    );
    assert_eq!(get(&server, "/v1/kv/nope/?keys").status, 404);
    let empty = ConsulServer::start();
    let root = get(&empty, "/v1/kv/?keys");
    assert_eq!((root.status, root.text().as_str()), (200, "[]"));
}

#[test]
fn a_folder_has_a_null_value_and_raw_gives_the_bare_bytes() {
    let server = ConsulServer::start();
    assert_eq!(put(&server, "/v1/kv/app/folder/", b"").text(), "true");
    server.put("app/folder/key", "v");
    let list = get(&server, "/v1/kv/app/?recurse").json();
    assert_eq!(list[0]["Key"], "app/folder/");
    assert!(list[0]["Value"].is_null(), "{list}");
    assert_eq!(list[1]["Value"], BASE64.encode("v"));

    let raw = get(&server, "/v1/kv/app/folder/key?raw");
    assert_eq!((raw.status, raw.text().as_str()), (200, "v"));
    assert!(raw.header("X-Consul-Index").is_some());
    let raw_folder = get(&server, "/v1/kv/app/folder/?raw");
    assert_eq!(raw_folder.status, 200);
    assert!(raw_folder.body.is_empty());
    // An empty value is no value, for any key.
    server.put("empty", "");
    assert!(get(&server, "/v1/kv/empty").json()[0]["Value"].is_null());
}

// ---------------------------------------------------------------------------
// KV writes
// ---------------------------------------------------------------------------

#[test]
fn put_and_delete_over_http_answer_true_or_false() {
    let server = ConsulServer::start();
    let reply = put(&server, "/v1/kv/app/x?flags=7", b"one");
    assert_eq!((reply.status, reply.text().as_str()), (200, "true"));
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    assert_eq!(server.get("app/x").as_deref(), Some("one"));
    assert_eq!(get(&server, "/v1/kv/app/x").json()[0]["Flags"], 7);
    // Percent-encoded key names.
    put(&server, "/v1/kv/app/with%20space", b"s");
    assert_eq!(server.get("app/with space").as_deref(), Some("s"));

    // Check-and-set: 0 only creates; N must match ModifyIndex.
    assert_eq!(put(&server, "/v1/kv/app/x?cas=0", b"two").text(), "false");
    let modify = get(&server, "/v1/kv/app/x").index();
    assert_eq!(put(&server, "/v1/kv/app/x?cas=1", b"two").text(), "false");
    assert_eq!(
        put(&server, &format!("/v1/kv/app/x?cas={modify}"), b"two").text(),
        "true"
    );
    assert_eq!(server.get("app/x").as_deref(), Some("two"));

    assert_eq!(delete(&server, "/v1/kv/app/x").text(), "true");
    assert_eq!(get(&server, "/v1/kv/app/x").status, 404);
    server.put("app/y", "1");
    server.put("apple", "2");
    assert_eq!(delete(&server, "/v1/kv/app?recurse").text(), "true");
    assert_eq!(get(&server, "/v1/kv/?recurse").status, 404);

    assert_eq!(
        put(&server, "/v1/kv/", b"x").status,
        400,
        "Missing key name"
    );
    assert_eq!(put(&server, "/v1/kv/a?flags=x", b"x").status, 400);
    let too_big = vec![b'x'; 512 * 1024 + 1];
    assert_eq!(put(&server, "/v1/kv/big", &too_big).status, 413);
    let reply = Client::connect(&server).request("POST", "/v1/kv/a", &[], b"x");
    assert_eq!(reply.status, 405);
}

#[test]
fn rust_side_writes_raise_the_index() {
    let server = ConsulServer::start();
    let start = server.index();
    let first = server.put("a", "1");
    assert!(first > start);
    let many = server.put_many(&[("b", "2"), ("c", "3")]);
    assert_eq!(many, first + 1, "a transaction is one index");
    let list = get(&server, "/v1/kv/?recurse").json();
    assert_eq!(list[1]["ModifyIndex"], many);
    assert_eq!(list[2]["ModifyIndex"], many);
    assert_eq!(server.delete_prefix("/b"), 1, "leading slashes are dropped");
    assert_eq!(server.delete_prefix(""), 2);
    assert!(!server.delete("a"));
    assert_eq!(server.put("/lead", "x"), server.index());
    assert_eq!(server.get("lead").as_deref(), Some("x"));
}

// ---------------------------------------------------------------------------
// Blocking queries
// ---------------------------------------------------------------------------

#[test]
fn a_blocking_query_returns_at_a_change_with_the_new_index() {
    let server = Arc::new(ConsulServer::start());
    server.put("app/a", "1");
    let index = get(&server, "/v1/kv/app/?recurse").index();
    // An index below the result's answers at once.
    let started = Instant::now();
    let reply = get(
        &server,
        &format!("/v1/kv/app/?recurse&index={}&wait=3s", index - 1),
    );
    assert_eq!(reply.index(), index);
    assert!(started.elapsed() < Duration::from_millis(500));

    let writer = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            std::thread::sleep(Duration::from_millis(100));
            server.put("app/b", "2");
        })
    };
    let started = Instant::now();
    let reply = get(
        &server,
        &format!("/v1/kv/app/?recurse&index={index}&wait=4s"),
    );
    let elapsed = started.elapsed();
    writer.join().expect("writer");
    assert_eq!(reply.status, 200);
    assert!(reply.index() > index);
    assert_eq!(reply.keys(), ["app/a", "app/b"]);
    assert!(
        elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(server.request_counts().kv_blocking, 2);
}

#[test]
fn a_blocking_query_returns_at_the_wait_with_the_same_index() {
    let server = ConsulServer::start();
    server.put("app/a", "1");
    let index = get(&server, "/v1/kv/app/a").index();
    let started = Instant::now();
    let reply = get(&server, &format!("/v1/kv/app/a?index={index}&wait=400ms"));
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.index(), index);
    // wait plus at most wait/16 of jitter, and some slack.
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(900),
        "{elapsed:?}"
    );
}

#[test]
fn writes_outside_the_result_do_not_wake_a_blocking_query() {
    let server = Arc::new(ConsulServer::start());
    server.put("app/a", "1");
    let index = get(&server, "/v1/kv/app/?recurse").index();
    let writer = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            server.put("other/x", "1");
            server.put("apps", "sibling without the slash");
        })
    };
    let started = Instant::now();
    let reply = get(
        &server,
        &format!("/v1/kv/app/?recurse&index={index}&wait=600ms"),
    );
    writer.join().expect("writer");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(
        reply.index(),
        index,
        "same index: nothing under app/ changed"
    );
}

#[test]
fn deleting_under_a_prefix_wakes_its_blocking_query() {
    let server = Arc::new(ConsulServer::start());
    server.put("app/a", "1");
    server.put("app/b", "2");
    let index = get(&server, "/v1/kv/app/?recurse").index();
    let writer = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            // The key with the highest index goes: tombstones keep the index up.
            server.delete("app/b");
        })
    };
    let started = Instant::now();
    let reply = get(
        &server,
        &format!("/v1/kv/app/?recurse&index={index}&wait=4s"),
    );
    writer.join().expect("writer");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(reply.index() > index);
    assert_eq!(reply.keys(), ["app/a"]);

    // The last key going: 404 with a higher index, at once.
    let index = reply.index();
    let writer = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            server.delete("app/a");
        })
    };
    let reply = get(
        &server,
        &format!("/v1/kv/app/?recurse&index={index}&wait=4s"),
    );
    writer.join().expect("writer");
    assert_eq!(reply.status, 404);
    assert!(reply.index() > index);
}

#[test]
fn a_missing_key_blocks_until_the_kv_store_changes() {
    let server = Arc::new(ConsulServer::start());
    server.put("x", "1");
    let index = get(&server, "/v1/kv/app/a").index();
    let writer = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            server.put("app/a", "now");
        })
    };
    let reply = get(&server, &format!("/v1/kv/app/a?index={index}&wait=4s"));
    writer.join().expect("writer");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.index(), server.index());
}

#[test]
fn an_index_going_backwards_answers_held_queries_and_clients_must_reset() {
    let server = Arc::new(ConsulServer::start());
    for i in 0..10 {
        server.put(&format!("app/k{i}"), "v");
    }
    let index = get(&server, "/v1/kv/app/?recurse").index();
    assert_eq!(index, server.index());
    let restorer = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            server.set_index_backwards(5);
        })
    };
    let started = Instant::now();
    let reply = get(
        &server,
        &format!("/v1/kv/app/?recurse&index={index}&wait=4s"),
    );
    restorer.join().expect("restorer");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at the restore"
    );
    assert_eq!(reply.status, 200);
    assert!(
        reply.index() <= 5 && reply.index() < index,
        "{}",
        reply.index()
    );
    assert_eq!(server.index(), 5);

    // A client that keeps the old index now waits the whole wait ...
    let started = Instant::now();
    let stale = get(
        &server,
        &format!("/v1/kv/app/?recurse&index={index}&wait=300ms"),
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(stale.index() < index);
    // ... and misses writes; one that resets to 0 gets the data at once.
    server.put("app/new", "v");
    assert_eq!(server.index(), 6);
    let fresh = get(&server, "/v1/kv/app/?recurse&index=0");
    assert_eq!(fresh.index(), 6);
    assert!(fresh.keys().contains(&"app/new".to_string()));
}

#[test]
fn wait_and_index_are_parsed_like_consul() {
    assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_go_duration("100ms"), Some(Duration::from_millis(100)));
    assert_eq!(parse_go_duration("1m"), Some(Duration::from_secs(60)));
    assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
    assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
    for bad in ["", "5", "s", "5x", "-5s", "1..5s", "5 s"] {
        assert_eq!(parse_go_duration(bad), None, "{bad:?}");
    }
    assert_eq!(effective_wait(None), DEFAULT_WAIT);
    assert_eq!(effective_wait(Some(Duration::ZERO)), DEFAULT_WAIT);
    assert_eq!(effective_wait(Some(Duration::from_secs(3600))), MAX_WAIT);
    assert_eq!(
        effective_wait(Some(Duration::from_secs(30))),
        Duration::from_secs(30)
    );

    let server = ConsulServer::start();
    let bad_wait = get(&server, "/v1/kv/a?index=1&wait=soon");
    assert_eq!(
        (bad_wait.status, bad_wait.text().as_str()),
        (400, "Invalid wait time")
    );
    let bad_index = get(&server, "/v1/kv/a?index=x");
    assert_eq!(
        (bad_index.status, bad_index.text().as_str()),
        (400, "Invalid index")
    );
    // index=0 never blocks.
    let started = Instant::now();
    assert_eq!(get(&server, "/v1/kv/a?index=0&wait=3s").status, 404);
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn several_blocking_queries_are_held_at_once() {
    let server = Arc::new(ConsulServer::start());
    server.put("a/x", "1");
    server.put("b/x", "1");
    let index = server.index();
    let barrier = Arc::new(Barrier::new(7));
    let mut waiters = Vec::new();
    for i in 0..6 {
        let server = server.clone();
        let barrier = barrier.clone();
        let prefix = if i % 2 == 0 { "a/" } else { "b/" };
        waiters.push(std::thread::spawn(move || {
            barrier.wait();
            let started = Instant::now();
            let reply = get(
                &server,
                &format!("/v1/kv/{prefix}?recurse&index={index}&wait=1500ms"),
            );
            (prefix, reply.index(), started.elapsed())
        }));
    }
    barrier.wait();
    wait_held(&server, 6);
    let started = Instant::now();
    server.put("a/y", "2");
    let changed = server.index();
    for waiter in waiters {
        let (prefix, got, elapsed) = waiter.join().expect("waiter");
        if prefix == "a/" {
            assert_eq!(got, changed);
            assert!(elapsed < Duration::from_millis(1400), "{elapsed:?}");
        } else {
            assert_eq!(got, index);
            assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(server.held_requests(), 0);
}

// ---------------------------------------------------------------------------
// ACL and datacenters
// ---------------------------------------------------------------------------

#[test]
fn a_required_token_is_taken_from_the_three_carriers() {
    let server = ConsulServer::start_with(ConsulOptions {
        token: Some("s3cret".to_string()),
        ..ConsulOptions::default()
    });
    server.put("app/a", "1");
    server.register_service(ServiceInstance::new("web1", "web", "10.0.0.1", 80));

    let missing = get(&server, "/v1/kv/app/a");
    assert_eq!(missing.status, 403);
    assert_eq!(
        missing.text(),
        "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:read' on \"app/a\""
    );
    assert_eq!(missing.header("X-Consul-Default-ACL-Policy"), Some("deny"));
    let wrong = get_with(&server, "/v1/kv/app/a", &[("X-Consul-Token", "nope")]);
    assert_eq!(
        (wrong.status, wrong.text().as_str()),
        (403, "ACL not found")
    );
    assert_eq!(get(&server, "/v1/kv/app/a?token=nope").status, 403);
    let bearer_wrong = get_with(&server, "/v1/kv/app/a", &[("Authorization", "Bearer nope")]);
    assert_eq!(bearer_wrong.text(), "ACL not found");
    assert!(
        get(&server, "/v1/health/service/web")
            .text()
            .starts_with("Permission denied")
    );
    let write = put(&server, "/v1/kv/app/b", b"x");
    assert_eq!(write.status, 403);
    assert!(write.text().contains("'key:write'"));
    assert_eq!(server.get("app/b"), None);

    let header = get_with(&server, "/v1/kv/app/a", &[("X-Consul-Token", "s3cret")]);
    assert_eq!(header.status, 200);
    let bearer = get_with(
        &server,
        "/v1/kv/app/a",
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(bearer.status, 200);
    let query = get(&server, "/v1/kv/app/a?token=s3cret");
    assert_eq!(query.status, 200);
    let health = get_with(
        &server,
        "/v1/health/service/web",
        &[("X-Consul-Token", "s3cret")],
    );
    assert_eq!(health.status, 200);
    assert_eq!(health.json().as_array().map(Vec::len), Some(1));
    let counts = server.request_counts();
    assert_eq!(counts.denied, 6);
    assert!(
        server
            .request_log()
            .contains(&"GET /v1/kv/app/a?token=<hidden>".to_string()),
        "the log hides tokens"
    );
}

#[test]
fn another_datacenter_has_no_path() {
    let server = ConsulServer::start();
    server.put("a", "1");
    let other = get(&server, "/v1/kv/a?dc=dc2");
    assert_eq!(
        (other.status, other.text().as_str()),
        (500, "No path to datacenter")
    );
    assert_eq!(get(&server, "/v1/kv/a?dc=dc1").status, 200);
    assert_eq!(get(&server, "/v1/health/service/x?dc=dc9").status, 500);

    let eu = ConsulServer::start_with(ConsulOptions {
        datacenter: "eu-west".to_string(),
        ..ConsulOptions::default()
    });
    eu.put("a", "1");
    eu.register_service(ServiceInstance::new("web1", "web", "10.0.0.1", 80));
    assert_eq!(get(&eu, "/v1/kv/a?dc=eu-west").status, 200);
    assert_eq!(get(&eu, "/v1/kv/a?dc=dc1").status, 500);
    assert_eq!(
        get(&eu, "/v1/health/service/web").json()[0]["Node"]["Datacenter"],
        "eu-west"
    );
}

// ---------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------

fn three_web_instances(server: &ConsulServer) {
    server.register_service(
        ServiceInstance::new("web2", "web", "10.0.0.2", 8080)
            .tags(&["primary", "v2"])
            .on_node("node-b", "192.168.0.2"),
    );
    server.register_service(
        ServiceInstance::new("web1", "web", "10.0.0.1", 8080)
            .tags(&["primary", "v1"])
            .meta("version", "1")
            .on_node("node-a", "192.168.0.1"),
    );
    server.register_service(
        ServiceInstance::new("web3", "web", "", 9090)
            .tags(&["canary"])
            .on_node("node-c", "192.168.0.3"),
    );
    server.register_service(ServiceInstance::new("db1", "db", "10.0.1.1", 5432));
}

fn service_ids(reply: &Reply) -> Vec<String> {
    reply
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| e["Service"]["ID"].as_str().expect("an ID").to_string())
        .collect()
}

#[test]
fn health_service_answers_nodes_services_and_checks() {
    let server = ConsulServer::start();
    three_web_instances(&server);
    let reply = get(&server, "/v1/health/service/web");
    assert_eq!(reply.status, 200);
    assert_eq!(
        service_ids(&reply),
        ["web1", "web2", "web3"],
        "by node name"
    );
    let first = &reply.json()[0];
    let node = &first["Node"];
    assert_eq!(node["Node"], "node-a");
    assert_eq!(node["Address"], "192.168.0.1");
    assert_eq!(node["Datacenter"], "dc1");
    assert_eq!(node["TaggedAddresses"]["lan"], "192.168.0.1");
    assert!(node["ID"].as_str().is_some_and(|id| id.len() == 36));
    assert!(node["Meta"].is_object());
    let service = &first["Service"];
    assert_eq!(service["Service"], "web");
    assert_eq!(service["Tags"], serde_json::json!(["primary", "v1"]));
    assert_eq!(service["Address"], "10.0.0.1");
    assert_eq!(service["Port"], 8080);
    assert_eq!(service["Meta"]["version"], "1");
    let checks = first["Checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0]["CheckID"], "service:web1");
    assert_eq!(checks[0]["ServiceID"], "web1");
    assert_eq!(checks[0]["ServiceName"], "web");
    assert_eq!(checks[0]["Status"], "passing");
    assert_eq!(checks[0]["Node"], "node-a");
    assert_eq!(checks[1]["CheckID"], "serfHealth");
    assert_eq!(checks[1]["ServiceID"], "");
    // An empty service address stays empty (clients use the node's).
    assert_eq!(reply.json()[2]["Service"]["Address"], "");

    let unknown = get(&server, "/v1/health/service/nothing");
    assert_eq!((unknown.status, unknown.text().as_str()), (200, "[]"));
    assert!(unknown.index() >= 1);
}

#[test]
fn health_filters_passing_and_tags() {
    let server = ConsulServer::start();
    three_web_instances(&server);
    assert!(server.set_check("web2", CheckStatus::Critical));
    assert!(server.set_check("web3", CheckStatus::Warning));
    let passing = get(&server, "/v1/health/service/web?passing");
    assert_eq!(service_ids(&passing), ["web1"]);
    assert_eq!(
        service_ids(&get(&server, "/v1/health/service/web?passing=true")),
        ["web1"]
    );
    assert_eq!(
        service_ids(&get(&server, "/v1/health/service/web?passing=false")),
        ["web1", "web2", "web3"]
    );
    let all = get(&server, "/v1/health/service/web");
    assert_eq!(all.json()[1]["Checks"][0]["Status"], "critical");
    assert_eq!(all.json()[2]["Checks"][0]["Status"], "warning");

    // The node's own check counts too.
    assert!(server.set_node_check("node-a", CheckStatus::Critical));
    assert!(service_ids(&get(&server, "/v1/health/service/web?passing")).is_empty());
    assert!(server.set_node_check("node-a", CheckStatus::Passing));

    assert_eq!(
        service_ids(&get(&server, "/v1/health/service/web?tag=primary")),
        ["web1", "web2"]
    );
    assert_eq!(
        service_ids(&get(&server, "/v1/health/service/web?tag=primary&tag=v2")),
        ["web2"]
    );
    assert!(
        service_ids(&get(
            &server,
            "/v1/health/service/web?tag=primary&tag=canary"
        ))
        .is_empty()
    );
    assert_eq!(
        service_ids(&get(&server, "/v1/health/service/web?tag=primary&passing")),
        ["web1"]
    );
    assert_eq!(
        get(&server, "/v1/health/service/web?passing=maybe").status,
        400
    );
    assert_eq!(
        put(&server, "/v1/health/service/web", b"").status,
        405,
        "health is read-only"
    );
}

#[test]
fn health_blocks_until_a_check_of_the_service_flips() {
    let server = Arc::new(ConsulServer::start());
    three_web_instances(&server);
    let index = get(&server, "/v1/health/service/web?passing").index();
    // A change to another service does not wake it.
    server.set_check("db1", CheckStatus::Critical);
    let quiet = get(
        &server,
        &format!("/v1/health/service/web?passing&index={index}&wait=300ms"),
    );
    assert_eq!(quiet.index(), index);
    // Setting the status a check already has writes nothing.
    server.set_check("web1", CheckStatus::Passing);
    assert_eq!(get(&server, "/v1/health/service/web").index(), index);

    let flipper = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            server.set_check("web1", CheckStatus::Critical);
        })
    };
    let started = Instant::now();
    let reply = get(
        &server,
        &format!("/v1/health/service/web?passing&index={index}&wait=4s"),
    );
    flipper.join().expect("flipper");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(reply.index() > index);
    assert_eq!(service_ids(&reply), ["web2", "web3"]);

    // Deregistering an instance wakes it too.
    let index = reply.index();
    let remover = {
        let server = server.clone();
        std::thread::spawn(move || {
            wait_held(&server, 1);
            server.deregister_service("web2");
        })
    };
    let reply = get(
        &server,
        &format!("/v1/health/service/web?index={index}&wait=4s"),
    );
    remover.join().expect("remover");
    assert!(reply.index() > index);
    assert_eq!(service_ids(&reply), ["web1", "web3"]);
    assert_eq!(server.request_counts().health, 5);
}

// ---------------------------------------------------------------------------
// Connections and control
// ---------------------------------------------------------------------------

#[test]
fn one_connection_carries_several_requests() {
    let server = ConsulServer::start();
    server.put("a", "1");
    let mut client = Client::connect(&server);
    let first = client.request("GET", "/v1/kv/a", &[], b"");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("Connection"), None);
    let second = client.request("PUT", "/v1/kv/b", &[], b"2");
    assert_eq!(second.text(), "true");
    let third = client.request("GET", "/v1/kv/missing", &[], b"");
    assert_eq!(third.status, 404);
    // Pipelined: two requests sent before either answer is read.
    client.send("GET", "/v1/kv/a?raw", &[], b"");
    client.send("GET", "/v1/kv/b?raw", &[], b"");
    assert_eq!(client.receive().text(), "1");
    assert_eq!(client.receive().text(), "2");
    // `Connection: close` is honoured.
    let last = client.request("GET", "/v1/kv/a", &[("Connection", "close")], b"");
    assert_eq!(last.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    let n = client
        .stream
        .read_to_end(&mut rest)
        .expect("read to the end");
    assert_eq!(n, 0, "the server closed the connection");
    assert_eq!(server.requests(), 6);
    let counts = server.request_counts();
    assert_eq!((counts.kv_reads, counts.kv_writes), (5, 1));
    assert_eq!(
        server.request_log(),
        [
            "GET /v1/kv/a",
            "PUT /v1/kv/b",
            "GET /v1/kv/missing",
            "GET /v1/kv/a?raw",
            "GET /v1/kv/b?raw",
            "GET /v1/kv/a",
        ]
    );
}

#[test]
fn unknown_paths_are_404() {
    let server = ConsulServer::start();
    let reply = get(&server, "/v1/agent/self");
    assert_eq!(reply.status, 404);
    assert_eq!(server.request_counts().other, 1);
}

#[test]
fn stopping_drops_held_requests_and_the_port() {
    let mut server = ConsulServer::start();
    server.put("a", "1");
    let index = server.index();
    let mut client = Client::connect(&server);
    client.send("GET", &format!("/v1/kv/a?index={index}&wait=4s"), &[], b"");
    wait_held(&server, 1);
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(1), "stop is prompt");
    let mut rest = Vec::new();
    let read = client.stream.read_to_end(&mut rest);
    assert!(
        read.is_err() || rest.is_empty(),
        "a held request gets no answer"
    );
    assert!(
        TcpStream::connect(server.address()).is_err(),
        "the port is closed"
    );
    // A new server may take the same port.
    let again = ConsulServer::start_with(ConsulOptions {
        port: Some(server.port()),
        ..ConsulOptions::default()
    });
    assert_eq!(get(&again, "/v1/kv/a").status, 404, "a fresh store");
}

#[test]
fn a_client_that_hangs_up_is_no_longer_held() {
    let server = ConsulServer::start();
    server.put("a", "1");
    let index = server.index();
    {
        let mut client = Client::connect(&server);
        client.send("GET", &format!("/v1/kv/a?index={index}&wait=4s"), &[], b"");
        wait_held(&server, 1);
    }
    assert!(
        crate::common::wait_until(Duration::from_secs(2), || server.held_requests() == 0),
        "the held request ends when its client leaves"
    );
}
