//! A real etcd for tests: Debian's `etcd` started with `--enable-v2` on free
//! 127.0.0.1 ports with a temporary data dir, restartable on the same ports
//! and data, stopped when dropped. Keys are written through the API of the
//! backend under test (v2 and v3 are separate key spaces in etcd 3.x).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{await_ready, free_port, kill_child};

/// How long etcd may take to become healthy.
const START_LIMIT: Duration = Duration::from_secs(20);

/// TLS material for an https client listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// How to start etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    /// Serve the v2 API (`--enable-v2`); true for most tests.
    pub disable_v2: bool,
    /// Also listen with https, requiring client certificates.
    pub tls: Option<TlsFiles>,
    /// Listen for plain-http clients on this port instead of a free one
    /// (for tests that point confd at the address before etcd exists).
    pub client_port: Option<u16>,
    /// Serve no JSON gateway (`--enable-grpc-gateway=false`): only gRPC
    /// reaches the v3 API (write with [`Etcd::put_grpc`]).
    pub disable_grpc_gateway: bool,
}

/// A running etcd.
pub struct Etcd {
    child: Option<Child>,
    data: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    tls_port: Option<u16>,
    options: EtcdOptions,
}

impl Etcd {
    /// Starts etcd with the v2 API enabled.
    pub fn start() -> Etcd {
        Etcd::start_with(EtcdOptions::default())
    }

    /// Starts etcd with `options`.
    pub fn start_with(options: EtcdOptions) -> Etcd {
        let mut etcd = Etcd {
            child: None,
            data: tempfile::tempdir().expect("etcd data dir"),
            client_port: options.client_port.unwrap_or_else(free_port),
            peer_port: free_port(),
            tls_port: options.tls.as_ref().map(|_| free_port()),
            options,
        };
        etcd.spawn();
        etcd
    }

    /// The plain-http client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The https client URL, when started with TLS.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port.map(|p| format!("https://127.0.0.1:{p}"))
    }

    fn spawn(&mut self) {
        let name = "test";
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut client_urls = self.url();
        if let Some(port) = self.tls_port {
            client_urls.push_str(&format!(",https://127.0.0.1:{port}"));
        }
        let log = std::fs::File::create(self.data.path().join("etcd.log")).expect("log file");
        let mut command = Command::new("etcd");
        command
            .arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(self.data.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client_urls)
            .arg("--advertise-client-urls")
            .arg(&client_urls)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("{name}={peer}"))
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if !self.options.disable_v2 {
            command.arg("--enable-v2");
        }
        if self.options.disable_grpc_gateway {
            command.arg("--enable-grpc-gateway=false");
        }
        if let Some(tls) = &self.options.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let mut child = command
            .spawn()
            .expect("etcd starts (is etcd-server installed?)");
        let port = self.client_port;
        let healthy = || {
            http(port, "GET", "/health", None, "")
                .is_ok_and(|(s, b)| s == 200 && b.contains("true"))
        };
        let started = await_ready(
            &mut child,
            "etcd",
            START_LIMIT,
            Duration::from_millis(50),
            healthy,
            || self.log(),
        );
        self.child = Some(child);
        if let Err(message) = started {
            panic!("{message}");
        }
    }

    /// etcd's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("etcd.log")).unwrap_or_default()
    }

    /// Kills etcd (SIGKILL) and waits for it to go.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts etcd again on the same ports with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// v2: sets `key` to `value`.
    pub fn put_v2(&self, key: &str, value: &str) {
        let body = format!("value={}", form_encode(value));
        let (status, text) = http(
            self.client_port,
            "PUT",
            &format!("/v2/keys{}", path_encode(key)),
            Some("application/x-www-form-urlencoded"),
            &body,
        )
        .expect("etcd answers");
        assert!(status == 200 || status == 201, "PUT {key}: {status} {text}");
    }

    /// v2: deletes `key` (recursively when it is a directory).
    pub fn delete_v2(&self, key: &str) {
        let (status, text) = http(
            self.client_port,
            "DELETE",
            &format!("/v2/keys{}?recursive=true", path_encode(key)),
            None,
            "",
        )
        .expect("etcd answers");
        assert!(
            status == 200 || status == 404,
            "DELETE {key}: {status} {text}"
        );
    }

    /// v3: puts `key` = `value`.
    /// Writes a key through gRPC (what an etcd without its gateway serves),
    /// bounded by the client's own timeouts.
    pub fn put_grpc(&self, key: &str, value: &str) {
        self.grpc(|mut client| {
            let (key, value) = (key.to_string(), value.to_string());
            async move { client.put(key, value, None).await.map(|_| ()) }
        });
    }

    /// Deletes a key through gRPC.
    pub fn delete_grpc(&self, key: &str) {
        self.grpc(|mut client| {
            let key = key.to_string();
            async move { client.delete(key, None).await.map(|_| ()) }
        });
    }

    fn grpc<F, Fut>(&self, call: F)
    where
        F: FnOnce(etcd_client::Client) -> Fut,
        Fut: std::future::Future<Output = Result<(), etcd_client::Error>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let url = self.url();
        runtime
            .block_on(async move {
                let options = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(10));
                let client = etcd_client::Client::connect([url], Some(options)).await?;
                call(client).await
            })
            .expect("etcd answers over gRPC");
    }

    pub fn put_v3(&self, key: &str, value: &str) {
        let body = serde_json::json!({"key": BASE64.encode(key), "value": BASE64.encode(value)});
        self.post_v3("/v3/kv/put", &body.to_string());
    }

    /// v3: puts raw bytes (which need not be UTF-8) under a raw key.
    pub fn put_v3_bytes(&self, key: &[u8], value: &[u8]) {
        let body = serde_json::json!({"key": BASE64.encode(key), "value": BASE64.encode(value)});
        self.post_v3("/v3/kv/put", &body.to_string());
    }

    /// v3: deletes exactly `key`.
    pub fn delete_v3(&self, key: &str) {
        let body = serde_json::json!({"key": BASE64.encode(key)});
        self.post_v3("/v3/kv/deleterange", &body.to_string());
    }

    /// v3: puts every pair, in transactions of at most 128 operations (etcd's
    /// default `--max-txn-ops`), so thousands of keys take a few requests.
    pub fn put_many_v3(&self, pairs: &[(String, String)]) {
        for chunk in pairs.chunks(128) {
            let success: Vec<serde_json::Value> = chunk
                .iter()
                .map(|(k, v)| {
                    serde_json::json!({"request_put": {"key": BASE64.encode(k), "value": BASE64.encode(v)}})
                })
                .collect();
            let body = serde_json::json!({ "success": success });
            self.post_v3("/v3/kv/txn", &body.to_string());
        }
    }

    /// v3: deletes every key with `prefix`.
    pub fn delete_prefix_v3(&self, prefix: &str) {
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let body =
            serde_json::json!({"key": BASE64.encode(prefix), "range_end": BASE64.encode(&end)});
        self.post_v3("/v3/kv/deleterange", &body.to_string());
    }

    /// v3: POSTs JSON to the gateway and returns the answer.
    pub fn post_v3(&self, path: &str, body: &str) -> String {
        let (status, text) = http(
            self.client_port,
            "POST",
            path,
            Some("application/json"),
            body,
        )
        .expect("etcd answers");
        assert_eq!(status, 200, "POST {path}: {text}");
        text
    }

    /// The client port (for raw requests).
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `etcd grpc-proxy` in front of an [`Etcd`]: the deployment that lets many
/// hosts share one watcher per range at the cluster. It speaks gRPC only.
pub struct GrpcProxy {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl GrpcProxy {
    /// Starts a proxy for `etcd` on a free port and waits until it listens.
    pub fn start(etcd: &Etcd) -> GrpcProxy {
        let dir = tempfile::tempdir().expect("proxy dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("proxy log");
        let mut child = Command::new("etcd")
            .arg("grpc-proxy")
            .arg("start")
            .arg(format!("--endpoints=127.0.0.1:{}", etcd.client_port()))
            .arg(format!("--listen-addr=127.0.0.1:{port}"))
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd grpc-proxy starts");
        let listening = || TcpStream::connect(("127.0.0.1", port)).is_ok();
        let log = || std::fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default();
        let started = await_ready(
            &mut child,
            "etcd grpc-proxy",
            START_LIMIT,
            Duration::from_millis(50),
            listening,
            log,
        );
        let mut proxy = GrpcProxy {
            child: Some(child),
            port,
            dir,
        };
        if let Err(message) = started {
            proxy.kill();
            panic!("{message}");
        }
        proxy
    }

    /// The proxy's address, as a confd node.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        kill_child(&mut self.child);
    }
}

impl Drop for GrpcProxy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Percent-encodes a key for a URL path, keeping its `/` separators.
fn path_encode(key: &str) -> String {
    key.split('/')
        .map(form_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A minimal HTTP/1.1 request to 127.0.0.1:`port`; returns status and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_with_headers(port, method, path, content_type, body, &[])
}

/// `Authorization` for HTTP basic auth as `user`:`password`.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// [`http`] with extra request headers (e.g. `Authorization`).
pub fn http_with_headers(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        request.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// Generates a CA, a server certificate for 127.0.0.1 and a client
/// certificate with openssl, under `dir`.
pub fn make_tls_files(dir: &Path) -> TlsFiles {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for who in ["server", "client"] {
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={who}"),
            "-keyout",
            &format!("{who}.key"),
            "-out",
            &format!("{who}.csr"),
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{who}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{who}.ext"),
            "-out",
            &format!("{who}.pem"),
        ]);
    }
    TlsFiles {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}
