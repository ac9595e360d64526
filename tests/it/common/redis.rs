//! A real Redis for tests: Debian's `redis-server` on a free 127.0.0.1 port
//! with a temporary folder and no persistence, optionally with a password,
//! ACL users, keyspace notifications off, and a TLS port requiring client
//! certificates. Stopped by PID when dropped; restartable on the same port
//! (empty, as after a crash without persistence). Tests write data through a
//! small client of their own ([`Redis::cmd`]), as the default user.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::etcd::TlsFiles;
use super::{await_ready, free_port, kill_child};

/// How long redis-server may take to answer PING.
const START_LIMIT: Duration = Duration::from_secs(10);

/// How to start redis-server.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// `requirepass` for the default user.
    pub password: Option<String>,
    /// ACL rules, one user each (`alice on >pw ~* &* +@all`).
    pub users: Vec<String>,
    /// Leave keyspace notifications off (Redis's own default).
    pub notifications_off: bool,
    /// Also listen with TLS on another port, requiring client certificates.
    pub tls: Option<TlsFiles>,
    /// Also listen on a Unix socket in the temporary folder.
    pub unix_socket: bool,
}

/// A running redis-server.
pub struct Redis {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
    options: RedisOptions,
}

/// A reply, as text: simple strings and bulk strings as they are, nil as
/// `(nil)`, integers as numbers, arrays one item a line.
fn read_reply(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_string()),
        "-" => Err(rest.to_string()),
        "$" => {
            let length: i64 = rest.parse().map_err(|_| format!("bad length {rest}"))?;
            if length < 0 {
                return Ok("(nil)".to_string());
            }
            let mut bytes = vec![0; length as usize + 2];
            reader.read_exact(&mut bytes).map_err(|e| e.to_string())?;
            bytes.truncate(length as usize);
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        "*" => {
            let count: i64 = rest.parse().map_err(|_| format!("bad count {rest}"))?;
            let mut items = Vec::new();
            for _ in 0..count.max(0) {
                items.push(read_reply(reader)?);
            }
            Ok(items.join("\n"))
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Redis {
    /// Starts redis-server with keyspace notifications on (`KA`).
    pub fn start() -> Redis {
        Redis::start_with(RedisOptions::default())
    }

    /// Starts redis-server with `options`.
    pub fn start_with(options: RedisOptions) -> Redis {
        let mut redis = Redis {
            child: None,
            dir: tempfile::tempdir().expect("redis dir"),
            port: free_port(),
            tls_port: options.tls.as_ref().map(|_| free_port()),
            options,
        };
        redis.spawn();
        redis
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TLS port, when started with TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The Unix socket, when started with one.
    pub fn socket(&self) -> Option<String> {
        self.options
            .unix_socket
            .then(|| self.dir.path().join("redis.sock").display().to_string())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis-server --version`'s first words, for messages.
    pub fn version() -> String {
        let out = Command::new("redis-server")
            .arg("--version")
            .output()
            .expect("redis-server runs (is redis-server installed?)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .args([
                "--notify-keyspace-events",
                if self.options.notifications_off {
                    ""
                } else {
                    "KA"
                },
            ]);
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password]);
        }
        for user in &self.options.users {
            // One argument per word: redis-server quotes an argument whole.
            command.arg("--user").args(user.split_whitespace());
        }
        if let Some(socket) = self.socket() {
            command.args(["--unixsocket", &socket, "--unixsocketperm", "700"]);
        }
        if let (Some(tls), Some(port)) = (&self.options.tls, self.tls_port) {
            command
                .args(["--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.server_cert)
                .arg("--tls-key-file")
                .arg(&tls.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args(["--tls-auth-clients", "yes"]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .expect("redis-server starts (is redis-server installed?)");
        let started = await_ready(
            &mut child,
            "redis-server",
            START_LIMIT,
            Duration::from_millis(20),
            || self.try_cmd(0, &["PING"]).is_ok_and(|r| r == "PONG"),
            || self.log(),
        );
        self.child = Some(child);
        if let Err(message) = started {
            panic!("{message}");
        }
    }

    /// redis-server's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Kills redis-server (SIGKILL, by PID) and waits for it to go.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts redis-server again on the same port(s), empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs one command in database `db` as the default user.
    pub fn try_cmd(&self, db: u32, args: &[&str]) -> Result<String, String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.try_cmd_bytes(db, &args)
    }

    /// [`Redis::try_cmd`] with raw bytes (values that are not UTF-8).
    pub fn try_cmd_bytes(&self, db: u32, args: &[&[u8]]) -> Result<String, String> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let db_text = db.to_string();
        let mut hello: Vec<Vec<&[u8]>> = Vec::new();
        if let Some(password) = &self.options.password {
            hello.push(vec![b"AUTH", password.as_bytes()]);
        }
        if db != 0 {
            hello.push(vec![b"SELECT", db_text.as_bytes()]);
        }
        for command in &hello {
            writer
                .write_all(&encode(command))
                .map_err(|e| e.to_string())?;
            read_reply(&mut reader)?;
        }
        writer.write_all(&encode(args)).map_err(|e| e.to_string())?;
        read_reply(&mut reader)
    }

    /// Runs one command in database 0; panics on an error reply.
    pub fn cmd(&self, args: &[&str]) -> String {
        self.cmd_db(0, args)
    }

    /// Runs one command in database `db`; panics on an error reply.
    pub fn cmd_db(&self, db: u32, args: &[&str]) -> String {
        self.try_cmd(db, args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// How many times `command` ran since the last `CONFIG RESETSTAT`.
    pub fn calls(&self, command: &str) -> u64 {
        let info = self.cmd(&["INFO", "commandstats"]);
        let needle = format!("cmdstat_{}:calls=", command.to_lowercase());
        info.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
