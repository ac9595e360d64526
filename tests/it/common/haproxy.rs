//! A real HAProxy for tests, and the little servers behind it.
//!
//! [`Haproxy`] runs Debian's `haproxy` in master-worker mode (`-W`) in the
//! foreground, as a child of the test in its own process group, with its pid
//! file and log in a given directory (no user/group, nothing privileged). A
//! graceful reload is SIGUSR2 to the master — what `systemctl reload haproxy`
//! does — so a confd `reload_cmd` can be [`Haproxy::reload_command`]. The master
//! then re-reads the configuration and forks new workers, which take the
//! listening sockets over from the old ones (no listener is dropped). Dropping
//! it stops the master and its workers.
//!
//! [`Upstream`] is an HTTP server on `127.0.0.1:0` answering every request with
//! its own name; [`get`] is an HTTP/1.1 client with time limits that sets the
//! `Host` header, [`batch`] and [`wait_for_batch`] send requests through
//! HAProxy until the answers settle, and [`Hammer`] keeps requests flowing
//! from a thread of its own while a test changes things.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long HAProxy may take to start or to finish a reload.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How long HAProxy may take to stop after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(5);
/// What the master logs once a (re)load is complete and the new workers run.
const LOADED: &str = "Loading success.";

/// A minimal valid configuration: listens on `127.0.0.1:port` and answers
/// every request with 503 and the body `bootstrap`. For starting HAProxy
/// before confd has rendered the real configuration.
pub fn bootstrap_config(port: u16) -> String {
    format!(
        "global\n    maxconn 256\n\ndefaults\n    mode http\n    timeout connect 2s\n    \
         timeout client 10s\n    timeout server 10s\n\nfrontend http-in\n    \
         bind 127.0.0.1:{port}\n    \
         http-request return status 503 content-type text/plain string bootstrap\n"
    )
}

/// A running HAProxy master (and its workers).
pub struct Haproxy {
    child: Option<Child>,
    config: PathBuf,
    pidfile: PathBuf,
    log: PathBuf,
}

impl Haproxy {
    /// Starts `haproxy -W -f CONFIG -p DIR/haproxy.pid` with its output in
    /// `DIR/haproxy.log`, and waits until it has loaded the configuration.
    /// Panics (showing the log) when it does not start.
    pub fn start(config: &Path, dir: &Path) -> Haproxy {
        Haproxy::start_files(&[config], dir)
    }

    /// [`Haproxy::start`] on several files (`-f A -f B …`), which HAProxy
    /// reads as one configuration, in order, on start and on every reload.
    pub fn start_files(configs: &[&Path], dir: &Path) -> Haproxy {
        let config = configs.first().expect("at least one configuration file");
        let pidfile = dir.join("haproxy.pid");
        let log = dir.join("haproxy.log");
        let out = std::fs::File::create(&log).expect("haproxy log file");
        let err = out.try_clone().expect("haproxy log file");
        let mut command = Command::new("haproxy");
        command.arg("-W");
        for file in configs {
            command.arg("-f").arg(file);
        }
        let child = command
            .arg("-p")
            .arg(&pidfile)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("haproxy starts (is haproxy installed?)");
        let mut haproxy = Haproxy {
            child: Some(child),
            config: config.to_path_buf(),
            pidfile,
            log,
        };
        haproxy.wait_for_loads(1);
        haproxy
    }

    /// Writes the [`bootstrap_config`] for `port` to `DIR/haproxy.cfg` and
    /// starts HAProxy on it (see [`Haproxy::start`]), for confd to take over.
    pub fn start_bootstrap(dir: &Path, port: u16) -> Haproxy {
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, bootstrap_config(port)).expect("bootstrap config");
        Haproxy::start(&config, dir)
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The pid file the master writes (its own pid).
    pub fn pidfile(&self) -> &Path {
        &self.pidfile
    }

    /// The configuration file it reads (again on every reload).
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// A shell command that reloads this HAProxy gracefully: SIGUSR2 to the
    /// master named in the pid file.
    pub fn reload_command(&self) -> String {
        format!("kill -USR2 \"$(cat '{}')\"", self.pidfile.display())
    }

    /// HAProxy's own output (master and workers), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Everything needed to understand a failure of HAProxy driven by confd:
    /// the configuration file, confd's log and HAProxy's own output.
    pub fn report(&self, confd_log: &str) -> String {
        format!(
            "--- haproxy.cfg\n{}\n--- confd log\n{confd_log}\n--- haproxy log\n{}",
            std::fs::read_to_string(&self.config).unwrap_or_default(),
            self.log()
        )
    }

    /// How many times the master has loaded a configuration successfully:
    /// 1 after the start, one more per completed reload.
    pub fn loads(&self) -> usize {
        self.log().matches(LOADED).count()
    }

    /// Whether the master is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Reloads gracefully (SIGUSR2 to the master) and waits until the new
    /// workers run.
    pub fn reload(&mut self) {
        let before = self.loads();
        signal(self.pid(), "USR2");
        self.wait_for_loads(before + 1);
    }

    /// Waits until the master has logged `count` successful loads; panics
    /// with the log when it exits or takes longer than [`START_LIMIT`].
    pub fn wait_for_loads(&mut self, count: usize) {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if self.loads() >= count && self.pidfile.is_file() {
                return;
            }
            if !self.is_running() {
                panic!("haproxy exited\n--- haproxy log\n{}", self.log());
            }
            if Instant::now() >= deadline {
                panic!(
                    "haproxy did not load its configuration within {START_LIMIT:?}\n--- haproxy log\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops HAProxy: SIGTERM to the master (which stops its workers), then
    /// SIGKILL to the whole process group past [`STOP_LIMIT`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id();
        if matches!(child.try_wait(), Ok(None)) {
            signal(pgid, "TERM");
            let deadline = Instant::now() + STOP_LIMIT;
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Workers that outlived their master, or a master that ignored TERM.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{pgid}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// An HTTP server on `127.0.0.1` that answers every request with `200` and
/// its own name as the body, until stopped (or dropped).
pub struct Upstream {
    name: String,
    port: u16,
    address: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Starts serving on a free port.
    pub fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an upstream");
        Upstream::serve(name, listener)
    }

    /// Starts serving on `ip:port`: several upstreams on one port, each on
    /// its own loopback address (127.0.0.2, 127.0.0.3, … are loopback on
    /// Linux), as replicas behind one DNS name are. Fails when it is taken.
    pub fn start_at(name: &str, ip: [u8; 4], port: u16) -> std::io::Result<Upstream> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::from(ip), port))?;
        Ok(Upstream::serve(name, listener))
    }

    fn serve(name: &str, listener: TcpListener) -> Upstream {
        let address = listener.local_addr().expect("upstream address");
        let port = address.port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let name = name.to_string();
            let hits = Arc::clone(&hits);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let name = name.clone();
                    let hits = Arc::clone(&hits);
                    std::thread::spawn(move || answer(stream, &name, &hits));
                }
            })
        };
        Upstream {
            name: name.to_string(),
            port,
            address,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many HTTP requests it has answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes the listener (connections are refused from
    /// then on).
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        let _ = thread.join();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one request head (health checks send nothing and close) and answers
/// it with the server's name; one request per connection.
fn answer(mut stream: TcpStream, name: &str, hits: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
        name.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// An HTTP response: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET /` to `127.0.0.1:port` with `Host: host`, one request per connection,
/// at most 2 s to connect and 5 s for each read or write.
pub fn get(port: u16, host: &str) -> std::io::Result<Response> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: confd-tests\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no HTTP response head in {text:?}"),
        )
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no status in {head:?}"),
            )
        })?;
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

/// One answer in words: the body (the upstream's name) of a 200, `HTTP
/// <status>` for any other status, `error: …` when the request failed.
pub fn describe(answer: std::io::Result<Response>) -> String {
    match answer {
        Ok(r) if r.status == 200 => r.body,
        Ok(r) => format!("HTTP {}", r.status),
        Err(e) => format!("error: {e}"),
    }
}

/// `n` requests to `127.0.0.1:port` with `Host: host`, each [`describe`]d.
pub fn batch(port: u16, host: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| describe(get(port, host))).collect()
}

/// Sends batches of 9 requests with `Host: host` every 50 ms until `done`
/// accepts one and returns how long that took, or the last batch once `limit`
/// has passed.
pub fn wait_for_batch(
    port: u16,
    host: &str,
    limit: Duration,
    mut done: impl FnMut(&[String]) -> bool,
) -> Result<Duration, Vec<String>> {
    let start = Instant::now();
    loop {
        let batch = batch(port, host, 9);
        if done(&batch) {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= limit {
            return Err(batch);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Requests with `Host: host` to `127.0.0.1:port`, back to back from a thread
/// of its own until [`Hammer::stop`]; every answer that is not one of the
/// expected upstream names is kept as a failure. Dropping it stops the thread.
pub struct Hammer {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Hammer {
    pub fn start(port: u16, host: &str, expected: &[&str]) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, sent, failures) = (stop.clone(), sent.clone(), failures.clone());
            let host = host.to_string();
            let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let answer = describe(get(port, &host));
                    sent.fetch_add(1, Ordering::SeqCst);
                    if !expected.contains(&answer) {
                        failures.lock().expect("lock").push(answer);
                    }
                }
            })
        };
        Hammer {
            stop,
            sent,
            failures,
            thread: Some(thread),
        }
    }

    /// Stops the requests; returns how many were sent and the failures.
    pub fn stop(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("request thread");
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.sent.load(Ordering::SeqCst), failures)
    }
}

impl Drop for Hammer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
