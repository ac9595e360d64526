//! Helpers for the production-facing tests (tests/it/ops.rs): a datagram
//! socket standing in for systemd's `NOTIFY_SOCKET`, a plain HTTP GET, a
//! strict parser of the OpenMetrics text `/metrics` serves, and the TCP
//! sockets a process listens on (read from /proc). Every wait is bounded.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::confd::{CHANGE_LIMIT, Confd};
use super::wait_until;

/// One datagram: when it arrived, its text, and whether `dest` existed then.
#[derive(Debug, Clone)]
pub struct Message {
    pub at: Instant,
    pub text: String,
    pub dest_existed: bool,
}

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`.
pub struct Notifications {
    pub path: PathBuf,
    messages: Arc<Mutex<Vec<Message>>>,
    stop: Arc<AtomicBool>,
}

impl Notifications {
    /// Binds `notify` in `dir`; each message notes whether `dest` existed
    /// when it arrived.
    pub fn bind(dir: &Path, dest: PathBuf) -> Notifications {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (into, stopping) = (messages.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stopping.load(Ordering::SeqCst) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let message = Message {
                        at: Instant::now(),
                        text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                        dest_existed: dest.exists(),
                    };
                    into.lock().expect("lock").push(message);
                }
            }
        });
        Notifications {
            path,
            messages,
            stop,
        }
    }

    pub fn all(&self) -> Vec<Message> {
        self.messages.lock().expect("lock").clone()
    }

    /// Waits (bounded) for a message starting with `start` at or after
    /// position `from`; returns its position.
    pub fn expect(&self, start: &str, from: usize, limit: Duration) -> usize {
        let found = || {
            self.all()
                .iter()
                .skip(from)
                .position(|m| m.text.starts_with(start))
        };
        if !wait_until(limit, || found().is_some()) {
            panic!(
                "no {start:?} after message {from} within {limit:?}: {:#?}",
                self.all()
            );
        }
        from + found().expect("found")
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// `GET path` on 127.0.0.1:`port`: the status code and the body.
pub fn get(port: u16, path: &str) -> (u16, String) {
    try_get(port, path).unwrap_or_else(|e| panic!("GET {path} on port {port}: {e}"))
}

/// `GET path`, or why there was no answer (nothing listening yet).
pub fn try_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

/// Waits (bounded) until `GET path` answers `status`; returns the body.
pub fn expect_status(port: u16, path: &str, status: u16, confd: &Confd, limit: Duration) -> String {
    let mut last = (0, String::new());
    let ok = wait_until(limit, || {
        last = try_get(port, path).unwrap_or_else(|e| (0, e.to_string()));
        last.0 == status
    });
    assert!(
        ok,
        "{path} did not answer {status} within {limit:?}: {last:?}\n{}",
        confd.stderr()
    );
    last.1
}

/// Parses the OpenMetrics text format strictly: every sample belongs to the
/// family its `# TYPE` line announced, with the suffixes that type allows,
/// well-formed labels and a number, and the text ends with `# EOF`. Returns
/// the samples keyed `name{label="value",…}` with labels sorted.
pub fn parse_openmetrics(text: &str) -> Result<BTreeMap<String, f64>, String> {
    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut samples = BTreeMap::new();
    let mut family: Option<(String, String)> = None;
    let mut help: Option<String> = None;
    let lines = text.lines().enumerate();
    let mut ended = false;
    for (n, line) in lines {
        let at = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if ended {
            return Err(at("text after # EOF"));
        }
        if line == "# EOF" {
            ended = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| at("bad TYPE"))?;
            if !is_name(name)
                || !["counter", "gauge", "histogram", "info", "unknown"].contains(&kind)
            {
                return Err(at("bad TYPE"));
            }
            if help.take().is_some_and(|h| h != name) {
                return Err(at("HELP for another family than the TYPE"));
            }
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        // HELP comes before TYPE in OpenMetrics; both name one family.
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !is_name(name) {
                return Err(at("bad HELP"));
            }
            help = Some(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(at("unexpected line"));
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| at("value is not a number"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .ok_or_else(|| at("unclosed labels"))?,
            ),
            None => (series, ""),
        };
        let (family_name, kind) = family
            .as_ref()
            .ok_or_else(|| at("sample before any TYPE"))?;
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_count", "_sum", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        if !suffixes.iter().any(|s| name == format!("{family_name}{s}")) {
            return Err(at(&format!(
                "sample not of the {kind} family {family_name}"
            )));
        }
        let mut pairs: Vec<String> = Vec::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").ok_or_else(|| at("bad label"))?;
            if !is_name(key) {
                return Err(at("bad label name"));
            }
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match (escaped, c) {
                    (true, '\\' | '"' | 'n') => escaped = false,
                    (true, _) => return Err(at("bad escape in a label value")),
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    (false, _) => {}
                }
            }
            let end = end.ok_or_else(|| at("unterminated label value"))?;
            pairs.push(format!("{key}=\"{}\"", &after[..end]));
            rest = after[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&after[end + 1..]);
        }
        if kind == "histogram"
            && name.ends_with("_bucket")
            && !pairs.iter().any(|p| p.starts_with("le="))
        {
            return Err(at("bucket without le"));
        }
        pairs.sort();
        let key = if pairs.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", pairs.join(","))
        };
        if samples.insert(key, value).is_some() {
            return Err(at("duplicate sample"));
        }
    }
    if !ended {
        return Err("no # EOF at the end".to_string());
    }
    Ok(samples)
}

/// Scrapes `/metrics` and parses it.
pub fn scrape(port: u16) -> BTreeMap<String, f64> {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    parse_openmetrics(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

/// A sample's value (0 when the series does not exist yet).
pub fn value(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    metrics.get(series).copied().unwrap_or(0.0)
}

/// Waits (bounded) until `series` satisfies `what`; returns the scrape.
pub fn expect_metric(
    port: u16,
    series: &str,
    what: impl Fn(f64) -> bool,
    confd: &Confd,
) -> BTreeMap<String, f64> {
    let mut last = BTreeMap::new();
    let ok = wait_until(CHANGE_LIMIT, || {
        last = scrape(port);
        what(value(&last, series))
    });
    assert!(
        ok,
        "{series} stayed at {}\n{last:#?}\n{}",
        value(&last, series),
        confd.stderr()
    );
    last
}

/// The TCP addresses `pid` listens on (from /proc: its socket inodes
/// matched against the listening sockets of its network namespace).
pub fn listening(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    l.to_string_lossy()
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local address, state 0A (LISTEN), inode.
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                found.push(fields[1].to_string());
            }
        }
    }
    found
}

/// 127.0.0.1:`port` as /proc/net/tcp writes it.
pub fn proc_address(port: u16) -> String {
    format!("0100007F:{port:04X}")
}
