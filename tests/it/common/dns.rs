//! Fake DNS servers for tests, on a 127.0.0.1 UDP port until dropped: one
//! that answers every SRV question with fixed records, one that knows only
//! some names (NXDOMAIN for the rest), and one that reads every query and
//! never answers. Point confd at one with `CONFD_DNS_SERVER=127.0.0.1:<port>`.

#![allow(dead_code)]

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One SRV answer: (priority, weight, port, target).
pub type Srv = (u16, u16, u16, &'static str);

/// A record of a name the server knows.
#[derive(Clone, Debug)]
pub enum Rr {
    Srv(Srv),
    A([u8; 4]),
}

const TYPE_A: u16 = 1;
const TYPE_SRV: u16 = 33;

/// What the server does with a question.
enum Mode {
    /// Every SRV question gets these records, whatever the name.
    AnySrv(Vec<Srv>),
    /// Only these names (lower case, no trailing dot) exist.
    Names(Vec<(String, Vec<Rr>)>),
    /// Reads and drops every query.
    Silent,
}

/// A running fake DNS server.
pub struct FakeDns {
    pub port: u16,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeDns {
    /// Answers every SRV question, whatever the name, with `records`.
    pub fn start(records: Vec<Srv>) -> FakeDns {
        FakeDns::run(Mode::AnySrv(records))
    }

    /// Knows only `names` (NXDOMAIN for the others); a known name without
    /// records of the type asked gets an empty answer.
    pub fn with_names(names: Vec<(&str, Vec<Rr>)>) -> FakeDns {
        let names = names
            .into_iter()
            .map(|(name, records)| (name.trim_end_matches('.').to_lowercase(), records))
            .collect();
        FakeDns::run(Mode::Names(names))
    }

    /// Reads every query and never answers.
    pub fn silent() -> FakeDns {
        FakeDns::run(Mode::Silent)
    }

    fn run(mode: Mode) -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (stopping, asking) = (stop.clone(), asked.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                let Some((name, qtype, end)) = question(&buffer[..len]) else {
                    continue;
                };
                asking
                    .lock()
                    .expect("asked list")
                    .push(format!("{name} {qtype}"));
                if let Some(answer) = answer(&buffer[..end], &name, qtype, &mode) {
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        FakeDns { port, asked, stop }
    }

    /// The value for `CONFD_DNS_SERVER`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The questions received so far, as `name type` (e.g. `a.example 33`),
    /// names in lower case without the trailing dot.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("asked list").clone()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The question's name, type, and where the question ends.
fn question(query: &[u8]) -> Option<(String, u16, usize)> {
    let mut labels = Vec::new();
    let mut at = 12;
    while *query.get(at)? != 0 {
        let len = usize::from(query[at]);
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).to_lowercase());
        at += 1 + len;
    }
    let qtype = u16::from_be_bytes([*query.get(at + 1)?, *query.get(at + 2)?]);
    query.get(at + 4)?;
    Some((labels.join("."), qtype, at + 5))
}

/// The response to `query` (header and question only), or `None` to stay
/// silent.
fn answer(query: &[u8], name: &str, qtype: u16, mode: &Mode) -> Option<Vec<u8>> {
    let (rcode, records): (u8, Vec<Rr>) = match mode {
        Mode::Silent => return None,
        Mode::AnySrv(records) if qtype == TYPE_SRV => {
            (0, records.iter().map(|r| Rr::Srv(*r)).collect())
        }
        Mode::AnySrv(_) => (0, Vec::new()),
        Mode::Names(names) => match names.iter().find(|(n, _)| n == name) {
            Some((_, records)) => (0, records.clone()),
            None => (3, Vec::new()),
        },
    };
    let records: Vec<Rr> = records
        .into_iter()
        .filter(|r| matches!((r, qtype), (Rr::Srv(_), TYPE_SRV) | (Rr::A(_), TYPE_A)))
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(&query[..2]);
    out.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1]);
    out.extend_from_slice(&u16::try_from(records.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..]);
    for record in records {
        let (rtype, rdata) = match record {
            Rr::A(ip) => (TYPE_A, ip.to_vec()),
            Rr::Srv((priority, weight, port, target)) => {
                let mut rdata = Vec::new();
                rdata.extend_from_slice(&priority.to_be_bytes());
                rdata.extend_from_slice(&weight.to_be_bytes());
                rdata.extend_from_slice(&port.to_be_bytes());
                for label in target.split('.').filter(|l| !l.is_empty()) {
                    rdata.push(u8::try_from(label.len()).ok()?);
                    rdata.extend_from_slice(label.as_bytes());
                }
                rdata.push(0);
                (TYPE_SRV, rdata)
            }
        };
        // The owner is a pointer to the question's name.
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        out.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}
