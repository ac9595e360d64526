//! The networked backends against misbehaving or hostile servers on
//! 127.0.0.1: a tiny HTTP server that answers what each test scripts and
//! records every request ([`TinyServer`]), and a TCP proxy that can be
//! frozen — it stops forwarding bytes but keeps every socket open, as a
//! partitioned node or a frozen VM does ([`FreezableProxy`], used by the
//! etcd and Consul watch tests too). Secrets in node URLs, size caps, server
//! text in messages and redirects are checked here. Every server is the
//! test's own, every wait is bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::common::confd::{Confd, START_LIMIT, args, onetime};
use crate::common::{Scenario, free_port, read};

// ---------------------------------------------------------------------------
// A tiny scripted HTTP server
// ---------------------------------------------------------------------------

/// One request as the tiny server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The request body (a login's JSON, for the Vault tests).
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the tiny server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body chunked, without a Content-Length.
    pub chunked: bool,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            chunked: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// An HTTP/1.1 server on a free 127.0.0.1 port that answers every request
/// with what its handler returns (one request per connection) and records
/// them; stopped when dropped.
pub struct TinyServer {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

impl TinyServer {
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tiny server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log, stopping) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (log, handler) = (log.clone(), handler.clone());
                        std::thread::spawn(move || serve(stream, &log, &*handler));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TinyServer {
            port,
            requests,
            stop,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<Recorded>>, handler: &Handler) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    log.lock().expect("lock").push(request.clone());
    let reply = handler(&request);
    let mut head = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        reply.status
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if reply.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    }
    // The client may hang up early (a size cap): write errors end the reply.
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    if reply.chunked {
        for chunk in reply.body.chunks(64 * 1024) {
            let framed = [
                format!("{:x}\r\n", chunk.len()).as_bytes(),
                chunk,
                b"\r\n".as_slice(),
            ]
            .concat();
            if stream.write_all(&framed).is_err() {
                return;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
    } else {
        for chunk in reply.body.chunks(64 * 1024) {
            if stream.write_all(chunk).is_err() {
                return;
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    // Read the body too, so the client never sees a reset; keep the first
    // 64 KiB of it.
    let mut body = buffer[head_end + 4..].to_vec();
    let mut read = body.len();
    while read < length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                read += n;
                if body.len() < 64 * 1024 {
                    body.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------
// A TCP proxy that can freeze
// ---------------------------------------------------------------------------

/// A TCP proxy on a free 127.0.0.1 port in front of `upstream`. Frozen, it
/// keeps every connection (and accepts new ones) but forwards no byte either
/// way, as a node behind a partition or on a frozen VM: the client sees no
/// error, just silence. Stopped, with every socket closed, when dropped.
pub struct FreezableProxy {
    port: u16,
    frozen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FreezableProxy {
    pub fn start(upstream: u16) -> FreezableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let frozen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (frozen_flag, stopping) = (frozen.clone(), stop.clone());
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
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let (frozen, stop) = (frozen_flag.clone(), stopping.clone());
                    std::thread::spawn(move || pump(from, to, &frozen, &stop));
                }
            }
        });
        FreezableProxy { port, frozen, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops forwarding; sockets stay open.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` while not frozen; frozen, it reads nothing (so the
/// bytes stay in the kernel's buffers, unacknowledged by the application)
/// and holds what it has. Ends at end of stream, on an error or on stop.
fn pump(mut from: TcpStream, mut to: TcpStream, frozen: &AtomicBool, stop: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buffer = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if frozen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let n = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        while frozen.load(Ordering::SeqCst) && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if stop.load(Ordering::Relaxed) || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Writes `confd.toml` with a short `watch_timeout` into the scenario and
/// returns its path, for `-config-file`.
pub fn short_watch_timeout(s: &Scenario, timeout: &str) -> String {
    s.write("confd.toml", &format!("watch_timeout = {timeout:?}\n"))
        .display()
        .to_string()
}

/// An etcd v2 answer holding `/app/a` = `value`.
pub fn etcd_v2_answer(value: &str) -> Reply {
    let body = serde_json::json!({
        "action": "get",
        "node": {"key": "/app", "dir": true, "nodes": [{"key": "/app/a", "value": value}]}
    });
    Reply::new(200, body.to_string())
        .header("Content-Type", "application/json")
        .header("X-Etcd-Index", "7")
}

/// A Consul KV `?recurse` answer holding `app/a` = `value`.
pub fn consul_answer(value: &str) -> Reply {
    let body = serde_json::json!([
        {"Key": "app/a", "Value": BASE64.encode(value), "Flags": 0, "CreateIndex": 5, "ModifyIndex": 5, "LockIndex": 0}
    ]);
    Reply::new(200, body.to_string())
        .header("Content-Type", "application/json")
        .header("X-Consul-Index", "5")
}

/// A scenario with one resource listing `/app` into `out/app.conf`, which
/// holds "old\n" to start with.
fn app_scenario() -> Scenario {
    let s = Scenario::new();
    s.template(
        "app.tmpl",
        "{% for k in ls(key=\"/app\") %}{{ k }}={{ getv(key=\"/app/\" ~ k) }}\n{% endfor %}",
    );
    s.resource("app", "app.conf", &["/app"], "");
    s.write("out/app.conf", "old\n");
    s
}

const BACKENDS: [&str; 3] = ["etcd", "etcdv3", "consul"];

/// `extra` plus, for etcdv3, `-etcdv3-api gateway`: the fake servers here
/// answer HTTP/1.1 with JSON, as etcd's JSON gateway does (the gRPC path's
/// limits and errors are tested against a real etcd in `etcdv3_grpc.rs`).
fn json_api<'a>(backend: &str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = extra.to_vec();
    if backend == "etcdv3" {
        args.extend(["-etcdv3-api", "gateway"]);
    }
    args
}

// ---------------------------------------------------------------------------
// 1. Credentials in node URLs
// ---------------------------------------------------------------------------

/// A password in a `-node` URL never shows: not in the one-shot error, not
/// in the daemon's retry lines, not in a bad-address configuration error.
/// (It used to be printed in clear wherever the node was named.)
#[test]
fn a_password_in_a_node_url_never_shows() {
    for backend in BACKENDS {
        let s = app_scenario();
        let port = free_port();
        let node = format!("http://root:s3cret-pw@127.0.0.1:{port}");
        let run = onetime(&s, backend, &[&node], &[]);
        run.expect_code(1);
        assert!(
            !run.stderr.contains("s3cret-pw"),
            "{backend}: {}",
            run.stderr
        );
        run.line_with(&format!("http://root:***@127.0.0.1:{port}"));
        assert_eq!(read(&s.out("app.conf")), "old\n");

        let confd = Confd::spawn(&s, &args(&s, backend, &[&node], &["-watch"]));
        confd.expect_log("cannot read from the backend", START_LIMIT);
        std::thread::sleep(Duration::from_millis(1500));
        let stderr = confd.stderr();
        assert!(!stderr.contains("s3cret-pw"), "{backend}: {stderr}");
        assert!(stderr.contains("root:***@127.0.0.1"), "{backend}: {stderr}");

        for bad in [
            "http://root:s3cret-pw@[bad",
            "ftp://root:s3cret-pw@127.0.0.1:1",
        ] {
            let run = onetime(&s, backend, &[bad], &[]);
            run.expect_code(2);
            assert!(
                !run.stderr.contains("s3cret-pw"),
                "{backend}: {}",
                run.stderr
            );
            run.line_with("root:***@");
        }
    }
}

/// `--help` names the variables that hold secrets but never their values.
/// (clap used to print `[env: CONFD_PASSWORD=<the password>]`.)
#[test]
fn help_never_shows_secret_values_from_the_environment() {
    let mut s = Scenario::new();
    s.set_env("CONFD_NODE", "http://root:s3cret-node@127.0.0.1:1")
        .set_env("CONFD_PASSWORD", "s3cret-pw")
        .set_env("CONFD_AUTH_TOKEN", "s3cret-token");
    let run = s.run(&["-help"]);
    run.expect_code(0);
    assert!(!run.stdout.contains("s3cret"), "{}", run.stdout);
    for name in ["CONFD_NODE", "CONFD_PASSWORD", "CONFD_AUTH_TOKEN"] {
        assert!(run.stdout.contains(name), "{}", run.stdout);
    }
}

/// The user information of a node URL is that node's basic auth
/// (percent-decoded, as Go's HTTP client sends it), never part of the
/// request; -username/-password win over it.
#[test]
fn node_url_user_information_is_basic_auth() {
    let server = TinyServer::start(|_| etcd_v2_answer("1"));
    let s = app_scenario();
    let node = format!("http://root:s3%20cret@127.0.0.1:{}", server.port());
    onetime(&s, "etcd", &[&node], &[]).expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "a=1\n");
    let expected = format!("Basic {}", BASE64.encode("root:s3 cret"));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].header("authorization"), Some(expected.as_str()));
    assert!(!requests[0].target.contains("s3"), "{:?}", requests[0]);

    onetime(
        &s,
        "etcd",
        &[&node],
        &["-basic-auth", "-username", "other", "-password", "pw"],
    )
    .expect_code(0);
    let expected = format!("Basic {}", BASE64.encode("other:pw"));
    let requests = server.requests();
    assert_eq!(requests[1].header("authorization"), Some(expected.as_str()));
}

// ---------------------------------------------------------------------------
// 2. The size cap on answers
// ---------------------------------------------------------------------------

/// An etcd v3 range answer holding `/app/a` = `value`.
pub fn etcd_v3_answer(value: &str) -> Reply {
    let body = serde_json::json!({
        "header": {"revision": "7"},
        "kvs": [{"key": BASE64.encode("/app/a"), "value": BASE64.encode(value), "mod_revision": "7"}],
        "more": false,
        "count": "1"
    });
    Reply::new(200, body.to_string()).header("Content-Type", "application/json")
}

/// A valid answer of `backend` holding `/app/a` = `value`.
fn answer(backend: &str, value: &str) -> Reply {
    match backend {
        "etcd" => etcd_v2_answer(value),
        "etcdv3" => etcd_v3_answer(value),
        _ => consul_answer(value),
    }
}

/// An answer over `-max-response-size` fails naming the node and the limit,
/// whether the server announces its size or streams it chunked, and the
/// destination stays; the same answer fits the default limit. (Answers used
/// to be read whole, whatever their size.)
#[test]
fn answers_over_the_size_cap_fail_naming_node_and_limit() {
    let value = "v".repeat(2 << 20);
    for backend in BACKENDS {
        for chunked in [false, true] {
            let reply = answer(backend, &value);
            let reply = if chunked { reply.chunked() } else { reply };
            let server = TinyServer::start(move |_| reply.clone());
            let s = app_scenario();
            let node = server.url();
            let run = onetime(
                &s,
                backend,
                &[&node],
                &json_api(backend, &["-max-response-size", "1MiB"]),
            );
            run.expect_code(1);
            let line = run.line_with("-max-response-size");
            assert!(
                line.contains(&node) && line.contains("1 MiB"),
                "{backend} chunked={chunked}: {line}"
            );
            assert_eq!(read(&s.out("app.conf")), "old\n");
            assert_eq!(s.out_entries(), vec!["app.conf"]);

            onetime(&s, backend, &[&node], &json_api(backend, &[])).expect_code(0);
            assert_eq!(read(&s.out("app.conf")), format!("a={value}\n"));
        }
    }
}

/// An answer cut short or malformed, announced or chunked, fails in one
/// log line naming the node and the key read, and the destination stays.
/// (Answers are parsed as they arrive: the parse sees the end of the body
/// like any other byte.)
#[test]
fn a_cut_or_malformed_answer_fails_naming_node_and_key() {
    for backend in BACKENDS {
        let whole = answer(backend, "some value").body;
        let cut = whole[..whole.len() - 7].to_vec();
        let mut garbage = whole.clone();
        garbage.truncate(whole.len() / 2);
        garbage.extend_from_slice(b"]]}}");
        for (what, body) in [("cut", cut), ("garbage", garbage)] {
            for chunked in [false, true] {
                let mut reply = answer(backend, "");
                reply.body = body.clone();
                let reply = if chunked { reply.chunked() } else { reply };
                let server = TinyServer::start(move |_| reply.clone());
                let s = app_scenario();
                let node = server.url();
                let run = onetime(&s, backend, &[&node], &json_api(backend, &[]));
                run.expect_code(1);
                let what = format!("{backend} {what} chunked={chunked}");
                assert_one_short_line_per_event(&run.stderr, &what);
                let line = run.line_with("unexpected response");
                assert!(
                    line.contains(&node) && line.contains("/app"),
                    "{what}: {line}"
                );
                assert_eq!(read(&s.out("app.conf")), "old\n", "{what}");
                assert_eq!(s.out_entries(), vec!["app.conf"], "{what}");
            }
        }
    }
}

/// `-max-response-size` also comes from `CONFD_MAX_RESPONSE_SIZE` and from
/// confd.toml (bytes or text with a unit); nonsense is a usage error naming
/// the flag.
#[test]
fn max_response_size_from_environment_and_confd_toml() {
    let value = "v".repeat(300 << 10);
    let reply = consul_answer(&value);
    let server = TinyServer::start(move |_| reply.clone());
    let node = server.url();

    let mut s = app_scenario();
    s.set_env("CONFD_MAX_RESPONSE_SIZE", "256KiB");
    onetime(&s, "consul", &[&node], &[])
        .expect_code(1)
        .line_with("256 KiB");
    // The flag wins over the environment.
    onetime(&s, "consul", &[&node], &["-max-response-size", "1MB"]).expect_code(0);

    let s = app_scenario();
    let config = s.write("confd.toml", "max_response_size = 262144\n");
    let config = config.display().to_string();
    onetime(&s, "consul", &[&node], &["-config-file", &config])
        .expect_code(1)
        .line_with("256 KiB");
    s.write("confd.toml", "max_response_size = \"2MiB\"\n");
    onetime(&s, "consul", &[&node], &["-config-file", &config]).expect_code(0);

    for bad in ["64", "lots", "12 parsecs"] {
        let run = onetime(&s, "consul", &[&node], &["-max-response-size", bad]);
        run.expect_code(2);
        run.line_with("-max-response-size");
    }
}

// ---------------------------------------------------------------------------
// 3. Server text in messages
// ---------------------------------------------------------------------------

/// Asserts that no stderr line was forged or flooded by the server.
fn assert_one_short_line_per_event(stderr: &str, what: &str) {
    for line in stderr.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00Z") && !line.starts_with("FORGED"),
            "{what}: a server line reached the log on its own: {line:?}"
        );
        assert!(
            line.len() < 4096,
            "{what}: a {} byte log line: {}…",
            line.len(),
            &line[..200]
        );
    }
}

/// What servers send back goes into messages cut to its first 512 bytes
/// (then "… (N bytes)") and with newlines and control characters escaped:
/// a 10 MB error body is not a 10 MB log line, and a newline in it cannot
/// start a log line of the server's making. (Error bodies used to be copied
/// whole and raw into the message.)
#[test]
fn server_text_in_errors_is_cut_and_escaped() {
    let forged = "\n2026-01-01T00:00:00Z  INFO FORGED resource=x outcome=updated\n";
    let mut flood = format!("oops{forged}").repeat((10 << 20) / 70);
    flood.push_str(&"x".repeat((10 << 20) - flood.len()));
    let json_error = |backend: &str| -> Reply {
        let body = match backend {
            "etcd" => {
                serde_json::json!({"errorCode": 300, "message": format!("bad{forged}"), "cause": forged})
            }
            "etcdv3" => {
                serde_json::json!({"error": "e", "message": format!("bad{forged}"), "code": 2})
            }
            _ => serde_json::json!(format!("bad{forged}")),
        };
        Reply::new(500, body.to_string()).header("Content-Type", "application/json")
    };
    for backend in BACKENDS {
        let replies = [
            ("a 10 MiB error body", Reply::new(500, flood.clone())),
            ("a JSON error", json_error(backend)),
            (
                "a control sequence",
                Reply::new(502, format!("\x1b[2J\r{forged}\u{2028}FORGED")),
            ),
        ];
        for (what, reply) in replies {
            let server = TinyServer::start(move |_| reply.clone());
            let s = app_scenario();
            let run = onetime(&s, backend, &[&server.url()], &json_api(backend, &[]));
            run.expect_code(1);
            let what = format!("{backend}, {what}");
            assert_one_short_line_per_event(&run.stderr, &what);
            let line = run.line_with(&server.url());
            assert!(line.contains("FORGED"), "{what}: {line}");
            if what.contains("10 MiB") {
                assert!(line.contains("… (10485760 bytes)"), "{what}: {line}");
            }
            assert_eq!(read(&s.out("app.conf")), "old\n");
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Redirects never carry credentials to another origin
// ---------------------------------------------------------------------------

/// A node that redirects to another origin (here another port of
/// 127.0.0.1) is not followed: the Consul token and basic auth stay with the
/// node they were given for, and the error names both origins. (The token
/// used to be sent along to wherever the redirect pointed.)
#[test]
fn a_redirect_to_another_origin_carries_no_credentials() {
    for (backend, credentials) in [
        ("consul", vec!["-auth-token", "s3cret-token"]),
        (
            "etcd",
            vec!["-basic-auth", "-username", "root", "-password", "s3cret-pw"],
        ),
    ] {
        let elsewhere = TinyServer::start(move |_| answer(backend, "leaked"));
        let target = elsewhere.url();
        let node = TinyServer::start(move |request| {
            Reply::new(307, "").header("Location", &format!("{target}{}", request.target))
        });
        let s = app_scenario();
        let run = onetime(&s, backend, &[&node.url()], &credentials);
        run.expect_code(1);
        assert!(
            elsewhere.requests().is_empty(),
            "{backend}: the redirect was followed: {:?}",
            elsewhere.requests()
        );
        let line = run.line_with("another origin");
        assert!(
            line.contains(&node.url()) && line.contains(&elsewhere.url()),
            "{backend}: {line}"
        );
        assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
        assert_eq!(read(&s.out("app.conf")), "old\n");
    }
}

/// A redirect within the node's origin is still followed, credentials and
/// all.
#[test]
fn a_redirect_within_the_origin_is_followed() {
    let node = TinyServer::start(|request| {
        if request.target.contains("moved") {
            etcd_v2_answer("1")
        } else {
            Reply::new(307, "").header("Location", "/v2/keys/app?recursive=true&moved=1")
        }
    });
    let s = app_scenario();
    onetime(
        &s,
        "etcd",
        &[&node.url()],
        &["-basic-auth", "-username", "root", "-password", "pw"],
    )
    .expect_code(0);
    assert_eq!(read(&s.out("app.conf")), "a=1\n");
    let expected = format!("Basic {}", BASE64.encode("root:pw"));
    let requests = node.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in requests {
        assert_eq!(request.header("authorization"), Some(expected.as_str()));
    }
}

// ---------------------------------------------------------------------------
// 6. watch_timeout
// ---------------------------------------------------------------------------

/// `watch_timeout` in confd.toml takes a duration from 1s to 10m; anything
/// else is a configuration error naming the setting.
#[test]
fn watch_timeout_outside_its_range_is_a_configuration_error() {
    let s = app_scenario();
    let node = format!("http://127.0.0.1:{}", free_port());
    for bad in ["0s", "500ms", "11m", "soon"] {
        let config = short_watch_timeout(&s, bad);
        let run = onetime(&s, "etcd", &[&node], &["-config-file", &config]);
        run.expect_code(2);
        run.line_with("-watch-timeout");
    }
}
