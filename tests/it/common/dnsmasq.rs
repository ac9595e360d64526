//! A real DNS server for tests: Debian's `dnsmasq` on a free 127.0.0.1 port,
//! answering only from a hosts file the test owns (and fixed SRV records),
//! never forwarding anything (`--no-resolv`, `--local=/#/`: a name it does not
//! know is NXDOMAIN, a known name without records of the type asked is an
//! empty answer). [`Dnsmasq::set_hosts`] rewrites the hosts file and sends
//! SIGHUP, which makes dnsmasq read it again, as replicas come and go. Like a
//! Docker Swarm's DNS, it hands out several A records of one name in a
//! rotating order; [`Dnsmasq::query_a`] shows the order of one answer.
//! `--local-ttl=0` keeps answers out of every cache, so each lookup sees the
//! current file. Dropping it stops the process (by its pid).

#![allow(dead_code)]

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, send_signal, wait_for_exit, wait_until};

/// How long dnsmasq may take to start, or to read its hosts file again.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// A running dnsmasq.
pub struct Dnsmasq {
    child: Child,
    port: u16,
    hosts: PathBuf,
    log: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq in `dir` with `hosts` as its hosts file (`IP name…` per
    /// line) and `srv` as fixed SRV records (`_http._tcp.tasks.api,target,port`,
    /// dnsmasq's `--srv-host` syntax), and waits until it answers.
    pub fn start(dir: &Path, hosts: &str, srv: &[&str]) -> Dnsmasq {
        let hosts_file = dir.join("dns.hosts");
        let log = dir.join("dnsmasq.log");
        fs::write(&hosts_file, hosts).expect("write the hosts file");
        // A free port was free a moment ago; retry when someone took it since.
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new("dnsmasq");
            command
                .arg("--keep-in-foreground")
                .arg("--conf-file=/dev/null")
                .arg("--no-resolv")
                .arg("--no-hosts")
                .arg("--local=/#/")
                .arg("--local-ttl=0")
                .arg(format!("--port={port}"))
                .arg("--listen-address=127.0.0.1")
                .arg("--bind-interfaces")
                .arg(format!("--addn-hosts={}", hosts_file.display()))
                .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
                .arg(format!("--log-facility={}", log.display()));
            for record in srv {
                command.arg(format!("--srv-host={record}"));
            }
            // As root, dnsmasq would switch to an unprivileged user that
            // cannot read the test's private directory after a SIGHUP.
            if is_root() {
                command.arg("--user=root");
            }
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dnsmasq starts (is dnsmasq installed?)");
            let mut dns = Dnsmasq {
                child,
                port,
                hosts: hosts_file.clone(),
                log: log.clone(),
            };
            if wait_until(READY_LIMIT, || dns.answers() || dns.exited()) && dns.answers() {
                return dns;
            }
            if !dns.exited() {
                panic!(
                    "dnsmasq did not answer within {READY_LIMIT:?}\n{}",
                    dns.log()
                );
            }
        }
        panic!("dnsmasq did not start; last log:\n{}", read(&log));
    }

    /// The value for `CONFD_DNS_SERVER`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// dnsmasq's log, for failure messages.
    pub fn log(&self) -> String {
        read(&self.log)
    }

    /// Replaces the hosts file and makes dnsmasq read it again (SIGHUP);
    /// returns once it has.
    pub fn set_hosts(&self, hosts: &str) {
        // dnsmasq logs "read FILE - N names" each time it reads the file.
        let line = format!("read {}", self.hosts.display());
        let reads = |d: &Dnsmasq| d.log().matches(&line).count();
        let before = reads(self);
        fs::write(&self.hosts, hosts).expect("write the hosts file");
        send_signal(&self.child, "HUP");
        assert!(
            wait_until(READY_LIMIT, || reads(self) > before),
            "dnsmasq did not read its hosts file again within {READY_LIMIT:?}\n{}",
            self.log()
        );
    }

    /// The A records of `name` in the order of one answer; `None` when no
    /// answer came within a second.
    pub fn query_a(&self, name: &str) -> Option<Vec<[u8; 4]>> {
        let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
        socket.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        // Any id will do: the socket is ours and asks one question.
        let mut query = vec![0x43, 0x21];
        // Recursion desired, one question, no other sections.
        query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.').filter(|l| !l.is_empty()) {
            query.push(u8::try_from(label.len()).ok()?);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        socket.send_to(&query, ("127.0.0.1", self.port)).ok()?;
        let mut buffer = [0u8; 1500];
        let len = socket.recv(&mut buffer).ok()?;
        parse_a_records(&buffer[..len], query.len())
    }

    /// Whether dnsmasq answers a question about its own hosts file.
    fn answers(&self) -> bool {
        self.query_a("ready.invalid").is_some()
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        send_signal_quietly(&self.child);
        if wait_for_exit(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// SIGTERM, ignoring a process that is already gone.
fn send_signal_quietly(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The A records of a response whose question section ends at `question_end`
/// (answers only: dnsmasq compresses each owner to a 2-byte pointer).
fn parse_a_records(response: &[u8], question_end: usize) -> Option<Vec<[u8; 4]>> {
    let count = u16::from_be_bytes([*response.get(6)?, *response.get(7)?]);
    let mut at = question_end;
    let mut records = Vec::new();
    for _ in 0..count {
        // Owner (pointer), type, class, TTL, data length, data.
        let rtype = u16::from_be_bytes([*response.get(at + 2)?, *response.get(at + 3)?]);
        let len = usize::from(u16::from_be_bytes([
            *response.get(at + 10)?,
            *response.get(at + 11)?,
        ]));
        let data = response.get(at + 12..at + 12 + len)?;
        if rtype == 1 && len == 4 {
            records.push([data[0], data[1], data[2], data[3]]);
        }
        at += 12 + len;
    }
    Some(records)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}
