//! A small, synchronous DNS client for SRV lookups, used by the
//! `lookupSRV(service, proto, name)` template helper and by SRV-based
//! discovery of backend nodes.
//!
//! It sends one standard query (RFC 1035, QTYPE SRV, QCLASS IN, recursion
//! desired) over UDP to each name server in turn, two rounds, with a two-second
//! limit per try, and repeats a truncated answer over TCP. Name servers come
//! from the `nameserver` lines of `/etc/resolv.conf` (IPv4 and IPv6, port 53;
//! `127.0.0.1` and `::1` when there are none, as glibc and Go do), unless
//! [`SERVER_ENV`] (`CONFD_DNS_SERVER`) names others.
//!
//! Names are queried exactly as given: the resolv.conf `search` and `ndots`
//! options are not applied, and a trailing dot is optional. Names must be
//! ASCII (IDNs in punycode) and are not unescaped.
//!
//! Calls block the calling thread for up to 2 s × 2 tries × the number of
//! servers; from async code, call them through `tokio::task::spawn_blocking`
//! or `block_in_place`.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::io_reason;

/// Environment variable that, when set and not empty, replaces the name
/// servers of `/etc/resolv.conf`: one or more IP addresses, each with an
/// optional port (53 otherwise), separated by commas or spaces, e.g.
/// `127.0.0.1:5353` or `10.0.0.2, [fd00::2]:53`.
pub const SERVER_ENV: &str = "CONFD_DNS_SERVER";

/// Where name servers are read from when [`SERVER_ENV`] is not set.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The DNS port, used when an address gives none.
const DNS_PORT: u16 = 53;
/// How long one try at one server may take (UDP, plus TCP if truncated).
const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// How many rounds over the server list.
const TRIES: usize = 2;
/// RR type SRV (RFC 2782).
const TYPE_SRV: u16 = 33;
/// RR class IN.
const CLASS_IN: u16 = 1;
/// Longest name on the wire, length bytes and final zero included.
const MAX_NAME_LEN: usize = 255;
/// Longest label.
const MAX_LABEL_LEN: usize = 63;
/// Most compression pointers followed while reading one name; a guard
/// against pointer loops.
const MAX_POINTER_HOPS: usize = 64;
/// Receive buffer for UDP answers (servers may exceed 512 bytes).
const UDP_BUFFER_LEN: usize = 65_535;
/// Size of the fixed message header.
const HEADER_LEN: usize = 12;
/// Header flag: this is a response.
const FLAG_QR: u16 = 0x8000;
/// Header flag: the answer was truncated.
const FLAG_TC: u16 = 0x0200;
/// Header flag: recursion desired.
const FLAG_RD: u16 = 0x0100;
/// Response code for "no such name".
const RCODE_NXDOMAIN: u8 = 3;

/// One SRV answer (RFC 2782).
///
/// Lookups return records sorted by priority (lowest first), then weight
/// (highest first), then target, then port, so that the order in which a
/// server shuffles its answers never changes a rendered file. The same order
/// is [`SrvRecord`]'s [`Ord`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SrvRecord {
    /// Host offering the service, without the trailing dot.
    pub target: String,
    /// Port of the service on `target`.
    pub port: u16,
    /// Lower is preferred.
    pub priority: u16,
    /// Share of the load among records of equal priority.
    pub weight: u16,
}

impl Ord for SrvRecord {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.weight.cmp(&self.weight))
            .then_with(|| self.target.cmp(&other.target))
            .then_with(|| self.port.cmp(&other.port))
    }
}

impl PartialOrd for SrvRecord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Why an SRV lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name cannot be put in a query.
    #[error("SRV lookup of {name:?}: invalid name: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `CONFD_DNS_SERVER` does not hold IP addresses.
    #[error("CONFD_DNS_SERVER={value:?}: {reason}")]
    InvalidServer {
        /// The variable's value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A server answered with an error code other than NXDOMAIN, and no
    /// other server answered successfully.
    #[error("SRV lookup of {name}: {server} answered {} (rcode {rcode})", rcode_name(*.rcode))]
    Rcode {
        /// The name queried.
        name: String,
        /// The server that answered.
        server: SocketAddr,
        /// The response code.
        rcode: u8,
    },
    /// No server gave a usable answer: timeouts, refused connections,
    /// malformed responses.
    #[error("SRV lookup of {name}: no usable answer: {}", .failures.join("; "))]
    NoAnswer {
        /// The name queried.
        name: String,
        /// The last failure of each server, as `server: reason`.
        failures: Vec<String>,
    },
}

/// The mnemonic of a response code (RFC 1035, RFC 2136).
fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "an unknown error",
    }
}

/// Looks up the SRV records of `_service._proto.name`, or of `name` itself
/// when `service` and `proto` are both empty (as Go's `net.LookupSRV` does).
///
/// A name that does not exist (NXDOMAIN) or has no SRV records gives an
/// empty list. Records are sorted as described on [`SrvRecord`], duplicates
/// are dropped, and so are records whose target is `.` ("service decidedly
/// not available", RFC 2782).
///
/// # Errors
///
/// [`DnsError`] when the name is not a valid DNS name, `CONFD_DNS_SERVER` is
/// malformed, a server answers with an error code other than NXDOMAIN, or no
/// server gives a usable answer in time.
pub fn lookup_srv(service: &str, proto: &str, name: &str) -> Result<Vec<SrvRecord>, DnsError> {
    lookup_srv_record(&srv_name(service, proto, name))
}

/// Looks up the SRV records of exactly `record` (e.g. `_etcd._tcp.example.com`),
/// with the same results and errors as [`lookup_srv`].
///
/// # Errors
///
/// As for [`lookup_srv`].
pub fn lookup_srv_record(record: &str) -> Result<Vec<SrvRecord>, DnsError> {
    let servers = configured_servers()?;
    lookup_with_servers(&servers, record, &Policy::DEFAULT)
}

/// The name `lookup_srv` queries.
fn srv_name(service: &str, proto: &str, name: &str) -> String {
    if service.is_empty() && proto.is_empty() {
        name.to_string()
    } else {
        format!("_{service}._{proto}.{name}")
    }
}

/// Time limit and number of rounds; tests shorten them.
#[derive(Debug, Clone, Copy)]
struct Policy {
    timeout: Duration,
    tries: usize,
}

impl Policy {
    const DEFAULT: Policy = Policy {
        timeout: TRY_TIMEOUT,
        tries: TRIES,
    };
}

/// Name servers from [`SERVER_ENV`], else from [`RESOLV_CONF`].
fn configured_servers() -> Result<Vec<SocketAddr>, DnsError> {
    match std::env::var(SERVER_ENV) {
        Ok(value) if !value.trim().is_empty() => parse_server_list(&value),
        Err(std::env::VarError::NotUnicode(value)) => Err(DnsError::InvalidServer {
            value: value.to_string_lossy().into_owned(),
            reason: "not valid UTF-8".to_string(),
        }),
        _ => {
            // An unreadable resolv.conf means the defaults, as in glibc and Go.
            let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
            Ok(resolv_conf_servers(&text))
        }
    }
}

/// Parses the value of [`SERVER_ENV`].
fn parse_server_list(value: &str) -> Result<Vec<SocketAddr>, DnsError> {
    let servers = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(|item| {
            parse_server(item).ok_or_else(|| DnsError::InvalidServer {
                value: value.to_string(),
                reason: format!(
                    "{item:?} is not an IP address with an optional port \
                     (127.0.0.1:5353, [::1]:53)"
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(DnsError::InvalidServer {
            value: value.to_string(),
            reason: "no address given".to_string(),
        });
    }
    Ok(servers)
}

/// `1.2.3.4`, `1.2.3.4:53`, `::1`, `[::1]` or `[::1]:53`.
fn parse_server(item: &str) -> Option<SocketAddr> {
    if let Ok(addr) = item.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = item
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(item);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
}

/// The `nameserver` addresses of a resolv.conf, port 53, in file order;
/// `127.0.0.1` and `::1` when there are none. Entries that are not plain IP
/// addresses (e.g. IPv6 with a `%zone`) are skipped.
fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    let mut servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            let ip = words.next()?.parse::<IpAddr>().ok()?;
            Some(SocketAddr::new(ip, DNS_PORT))
        })
        .collect();
    if servers.is_empty() {
        servers.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DNS_PORT));
        servers.push(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), DNS_PORT));
    }
    servers
}

/// Why one try at one server failed.
#[derive(Debug, Clone)]
enum Failure {
    /// The server answered with this error code.
    Rcode(u8),
    /// No answer, or an unusable one.
    Other(String),
}

/// What a server answered.
enum Answer {
    /// NOERROR, with these SRV records (maybe none).
    Records(Vec<SrvRecord>),
    /// NXDOMAIN.
    NoSuchName,
}

/// Queries `servers` in turn, `policy.tries` rounds, for the SRV records of
/// `name`. The first server to answer NOERROR or NXDOMAIN decides; a server
/// that answered another error code is not asked again.
fn lookup_with_servers(
    servers: &[SocketAddr],
    name: &str,
    policy: &Policy,
) -> Result<Vec<SrvRecord>, DnsError> {
    let qname = encode_name(name).map_err(|reason| DnsError::InvalidName {
        name: name.to_string(),
        reason,
    })?;
    let display = name.strip_suffix('.').unwrap_or(name).to_string();
    let mut last: Vec<Option<Failure>> = vec![None; servers.len()];
    for _ in 0..policy.tries {
        for (server, last) in servers.iter().zip(last.iter_mut()) {
            if matches!(last, Some(Failure::Rcode(_))) {
                continue;
            }
            match exchange(*server, &qname, policy.timeout) {
                Ok(Answer::Records(mut records)) => {
                    records.sort();
                    records.dedup();
                    return Ok(records);
                }
                Ok(Answer::NoSuchName) => return Ok(Vec::new()),
                Err(failure) => *last = Some(failure),
            }
        }
    }
    let rcode = servers
        .iter()
        .zip(&last)
        .find_map(|(server, failure)| match failure {
            Some(Failure::Rcode(rcode)) => Some((*server, *rcode)),
            _ => None,
        });
    if let Some((server, rcode)) = rcode {
        return Err(DnsError::Rcode {
            name: display,
            server,
            rcode,
        });
    }
    let failures = if servers.is_empty() {
        vec!["no name server to ask".to_string()]
    } else {
        servers
            .iter()
            .zip(&last)
            .map(|(server, failure)| match failure {
                Some(Failure::Other(reason)) => format!("{server}: {reason}"),
                _ => format!("{server}: not asked"),
            })
            .collect()
    };
    Err(DnsError::NoAnswer {
        name: display,
        failures,
    })
}

/// One try at one server: UDP, then TCP if the UDP answer was truncated.
fn exchange(server: SocketAddr, qname: &[u8], timeout: Duration) -> Result<Answer, Failure> {
    let deadline = Instant::now() + timeout;
    let id = query_id();
    let query = build_query(id, qname);
    let mut message = udp_exchange(server, &query, id, qname, deadline).map_err(Failure::Other)?;
    if header_flags(&message) & FLAG_TC != 0 {
        message = tcp_exchange(server, &query, id, qname, deadline)
            .map_err(|reason| Failure::Other(format!("over TCP: {reason}")))?;
    }
    let rcode = (header_flags(&message) & 0x000F) as u8;
    match rcode {
        0 => parse_srv_answers(&message)
            .map(Answer::Records)
            .map_err(|reason| Failure::Other(format!("malformed response: {reason}"))),
        RCODE_NXDOMAIN => Ok(Answer::NoSuchName),
        other => Err(Failure::Rcode(other)),
    }
}

/// A query ID that is hard to guess: process-random hashing of the time, the
/// process ID and a counter.
fn query_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() & 0xFFFF) as u16
}

/// `name` in wire form: length-prefixed labels and a final zero.
fn encode_name(name: &str) -> Result<Vec<u8>, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("the name is empty".to_string());
    }
    let mut wire = Vec::with_capacity(trimmed.len() + 2);
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err("it has an empty label".to_string());
        }
        let length = u8::try_from(label.len())
            .ok()
            .filter(|&n| usize::from(n) <= MAX_LABEL_LEN)
            .ok_or_else(|| format!("label {label:?} is longer than {MAX_LABEL_LEN} bytes"))?;
        if !label.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "label {label:?} holds spaces, control or non-ASCII characters"
            ));
        }
        wire.push(length);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    if wire.len() > MAX_NAME_LEN {
        return Err(format!("it is longer than {MAX_NAME_LEN} bytes"));
    }
    Ok(wire)
}

/// A query for the SRV records of `qname` (wire form), recursion desired.
fn build_query(id: u16, qname: &[u8]) -> Vec<u8> {
    let mut query = Vec::with_capacity(HEADER_LEN + qname.len() + 4);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&FLAG_RD.to_be_bytes());
    query.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    query.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    query.extend_from_slice(qname);
    query.extend_from_slice(&TYPE_SRV.to_be_bytes());
    query.extend_from_slice(&CLASS_IN.to_be_bytes());
    query
}

/// The header flags of a message, 0 if it is too short to have them.
fn header_flags(message: &[u8]) -> u16 {
    read_u16(message, 2).unwrap_or(0)
}

/// Whether `message` is a response to our query: same ID, QR set, and, if it
/// repeats a question, the same question (names compared without regard to
/// ASCII case). Anything else is ignored on UDP, as stray or spoofed.
fn answers_query(message: &[u8], id: u16, qname: &[u8]) -> bool {
    if message.len() < HEADER_LEN
        || read_u16(message, 0) != Ok(id)
        || header_flags(message) & FLAG_QR == 0
    {
        return false;
    }
    if read_u16(message, 4) == Ok(0) {
        return true;
    }
    let end = HEADER_LEN + qname.len();
    match (message.get(HEADER_LEN..end), message.get(end..end + 4)) {
        (Some(name), Some(rest)) => {
            name.eq_ignore_ascii_case(qname)
                && rest[..2] == TYPE_SRV.to_be_bytes()
                && rest[2..] == CLASS_IN.to_be_bytes()
        }
        _ => false,
    }
}

/// Sends `query` over UDP and waits until `deadline` for a datagram that
/// answers it; others are dropped.
fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    qname: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        SocketAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    let socket = UdpSocket::bind(local)
        .map_err(|e| format!("cannot open a UDP socket: {}", io_reason(&e)))?;
    socket
        .connect(server)
        .map_err(|e| format!("cannot reach: {}", io_reason(&e)))?;
    socket
        .send(query)
        .map_err(|e| format!("cannot send: {}", io_reason(&e)))?;
    let mut buffer = vec![0u8; UDP_BUFFER_LEN];
    loop {
        let left = time_left(deadline)?;
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| io_reason(&e))?;
        match socket.recv(&mut buffer) {
            Ok(n) => {
                let message = buffer.get(..n).unwrap_or_default();
                if answers_query(message, id, qname) {
                    return Ok(message.to_vec());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(timed_out());
            }
            Err(e) => return Err(io_reason(&e)),
        }
    }
}

/// Sends `query` over TCP (two-byte length prefix) and reads one response,
/// all before `deadline`.
fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    qname: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&server, time_left(deadline)?).map_err(|e| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            timed_out()
        } else {
            io_reason(&e)
        }
    })?;
    let length = u16::try_from(query.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = Vec::with_capacity(2 + query.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(query);
    stream
        .set_write_timeout(Some(time_left(deadline)?))
        .map_err(|e| io_reason(&e))?;
    stream
        .write_all(&framed)
        .map_err(|e| format!("cannot send: {}", io_reason(&e)))?;
    let mut prefix = [0u8; 2];
    read_full(&mut stream, &mut prefix, deadline)?;
    let length = usize::from(u16::from_be_bytes(prefix));
    if length == 0 {
        return Err("empty response".to_string());
    }
    let mut message = vec![0u8; length];
    read_full(&mut stream, &mut message, deadline)?;
    if !answers_query(&message, id, qname) {
        return Err("the response does not answer the query".to_string());
    }
    Ok(message)
}

/// Fills `buffer` from `stream`, giving up at `deadline`.
fn read_full(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> Result<(), String> {
    let mut filled = 0;
    while filled < buffer.len() {
        stream
            .set_read_timeout(Some(time_left(deadline)?))
            .map_err(|e| io_reason(&e))?;
        let rest = buffer.get_mut(filled..).unwrap_or_default();
        match stream.read(rest) {
            Ok(0) => return Err("connection closed before the whole response".to_string()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(timed_out());
            }
            Err(e) => return Err(io_reason(&e)),
        }
    }
    Ok(())
}

/// Time until `deadline`, or the "timed out" reason once it has passed.
fn time_left(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out())
    } else {
        Ok(left)
    }
}

fn timed_out() -> String {
    "timed out".to_string()
}

/// The big-endian u16 at `at`.
fn read_u16(message: &[u8], at: usize) -> Result<u16, String> {
    match message.get(at..at.saturating_add(2)) {
        Some(&[high, low]) => Ok(u16::from_be_bytes([high, low])),
        _ => Err(format!(
            "message ends at byte {} inside a field",
            message.len()
        )),
    }
}

/// The SRV records (class IN) of the answer section; other answers (CNAMEs,
/// stray types) are skipped, and so are targets of `.`.
fn parse_srv_answers(message: &[u8]) -> Result<Vec<SrvRecord>, String> {
    let questions = read_u16(message, 4)?;
    let answers = read_u16(message, 6)?;
    let mut at = HEADER_LEN;
    for _ in 0..questions {
        let (_, end) = read_name(message, at)?;
        at = end + 4;
    }
    let mut records = Vec::new();
    for index in 1..=answers {
        let (_, end) = read_name(message, at)?;
        let rtype = read_u16(message, end)?;
        let class = read_u16(message, end + 2)?;
        let rdlength = usize::from(read_u16(message, end + 8)?);
        let rdata = end + 10;
        let rdata_end = rdata + rdlength;
        if rdata_end > message.len() {
            return Err(format!("answer {index} runs past the end of the message"));
        }
        if rtype == TYPE_SRV && class == CLASS_IN {
            let priority = read_u16(message, rdata)?;
            let weight = read_u16(message, rdata + 2)?;
            let port = read_u16(message, rdata + 4)?;
            let (target, target_end) = read_name(message, rdata + 6)?;
            if target_end > rdata_end {
                return Err(format!("the target of answer {index} runs past its record"));
            }
            if !target.is_empty() {
                records.push(SrvRecord {
                    target,
                    port,
                    priority,
                    weight,
                });
            }
        }
        at = rdata_end;
    }
    Ok(records)
}

/// Reads the name at `start`, following compression pointers. Returns it in
/// text form without the trailing dot (`""` for the root), with `.`, `\` and
/// unprintable bytes inside labels escaped as Go does (`\.`, `\\`, `\DDD`),
/// and the offset just past the name's bytes at `start`.
fn read_name(message: &[u8], start: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut at = start;
    let mut end = None;
    let mut hops = 0;
    let mut wire_len = 1;
    loop {
        let past_end = || format!("the name at byte {start} runs past the end of the message");
        let length = *message.get(at).ok_or_else(past_end)?;
        match length & 0xC0 {
            0x00 if length == 0 => return Ok((name, end.unwrap_or(at + 1))),
            0x00 => {
                let length = usize::from(length);
                let label = message.get(at + 1..at + 1 + length).ok_or_else(past_end)?;
                wire_len += length + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(format!(
                        "the name at byte {start} is longer than {MAX_NAME_LEN} bytes"
                    ));
                }
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(&mut name, label);
                at += 1 + length;
            }
            0xC0 => {
                let low = *message.get(at + 1).ok_or_else(past_end)?;
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(format!(
                        "the name at byte {start} has a compression pointer loop"
                    ));
                }
                end.get_or_insert(at + 2);
                at = usize::from(length & 0x3F) << 8 | usize::from(low);
            }
            _ => {
                return Err(format!(
                    "the name at byte {start} has an unknown label type at byte {at}"
                ));
            }
        }
    }
}

/// Appends one label, escaping what would be ambiguous or unprintable.
fn push_label(name: &mut String, label: &[u8]) {
    for &byte in label {
        match byte {
            b'.' | b'\\' => {
                name.push('\\');
                name.push(char::from(byte));
            }
            0x21..=0x7E => name.push(char::from(byte)),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(name, "\\{byte:03}");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// Short limits so that tests of timeouts stay quick.
    const QUICK: Policy = Policy {
        timeout: Duration::from_millis(300),
        tries: 2,
    };
    /// How long fake servers wait for queries before giving up.
    const SERVER_LIFETIME: Duration = Duration::from_secs(10);

    // ---- building responses -------------------------------------------

    /// Offset just past the question of a query we built.
    fn question_end(query: &[u8]) -> usize {
        let mut at = HEADER_LEN;
        while query[at] != 0 {
            at += 1 + usize::from(query[at]);
        }
        at + 1 + 4
    }

    /// A response to `query`: header and question copied, QR/RD/RA and
    /// `rcode` set, the given flags added, and `answers` (already encoded)
    /// appended.
    fn response(query: &[u8], rcode: u8, extra_flags: u16, answers: &[Vec<u8>]) -> Vec<u8> {
        let end = question_end(query);
        let mut out = query[..end].to_vec();
        let flags = FLAG_QR | FLAG_RD | 0x0080 | extra_flags | u16::from(rcode);
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        out[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for answer in answers {
            out.extend_from_slice(answer);
        }
        out
    }

    /// An answer record: owner `owner` (wire form, may be a pointer), type,
    /// class IN, TTL 60, and `rdata`.
    fn record(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut out = owner.to_vec();
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        out
    }

    /// SRV rdata with a target given in wire form (may end in a pointer).
    fn srv(priority: u16, weight: u16, port: u16, target: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&priority.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&port.to_be_bytes());
        out.extend_from_slice(target);
        out
    }

    fn wire(name: &str) -> Vec<u8> {
        encode_name(name).unwrap()
    }

    /// Pointer to the question name, which always starts at byte 12.
    const TO_QNAME: [u8; 2] = [0xC0, 0x0C];

    /// Answers for `_http._tcp.example.com`, shuffled, compressed, with an A
    /// record and a root target mixed in.
    fn shuffled_answers(query: &[u8]) -> Vec<u8> {
        // Offset of "example.com" inside the question: 12 + "\x05_http" (6)
        // + "\x04_tcp" (5) = 23.
        let mut node_b = vec![5];
        node_b.extend_from_slice(b"nodeb");
        node_b.extend_from_slice(&[0xC0, 23]);
        let answers = vec![
            record(&TO_QNAME, TYPE_SRV, &srv(10, 5, 8080, &node_b)),
            record(&TO_QNAME, 1, &[192, 0, 2, 1]),
            record(
                &TO_QNAME,
                TYPE_SRV,
                &srv(20, 0, 80, &wire("nodec.example.com.")),
            ),
            record(
                &TO_QNAME,
                TYPE_SRV,
                &srv(10, 5, 8080, &wire("nodea.example.com")),
            ),
            record(&TO_QNAME, TYPE_SRV, &srv(30, 0, 0, &[0])),
            record(
                &TO_QNAME,
                TYPE_SRV,
                &srv(10, 50, 9090, &wire("nodez.example.com")),
            ),
        ];
        response(query, 0, 0, &answers)
    }

    fn expected_sorted() -> Vec<SrvRecord> {
        let r = |target: &str, port, priority, weight| SrvRecord {
            target: target.to_string(),
            port,
            priority,
            weight,
        };
        vec![
            r("nodez.example.com", 9090, 10, 50),
            r("nodea.example.com", 8080, 10, 5),
            r("nodeb.example.com", 8080, 10, 5),
            r("nodec.example.com", 80, 20, 0),
        ]
    }

    // ---- fake servers ---------------------------------------------------

    /// A UDP server on 127.0.0.1 that answers each query with the datagrams
    /// `reply` returns, until no query came for `SERVER_LIFETIME`.
    fn udp_server<F>(reply: F) -> SocketAddr
    where
        F: Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        serve_udp(socket, reply);
        addr
    }

    fn serve_udp<F>(socket: UdpSocket, reply: F)
    where
        F: Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    {
        socket.set_read_timeout(Some(SERVER_LIFETIME)).unwrap();
        thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buffer) {
                for datagram in reply(&buffer[..n]) {
                    let _ = socket.send_to(&datagram, peer);
                }
            }
        });
    }

    /// A TCP listener on 127.0.0.1 at the same port as a UDP socket, as a
    /// name server has.
    fn udp_and_tcp_sockets() -> (UdpSocket, TcpListener) {
        for _ in 0..50 {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                return (udp, tcp);
            }
        }
        panic!("no port free for both UDP and TCP");
    }

    /// Serves DNS over TCP: answers each framed query with `reply`'s
    /// message, until no connection came for `SERVER_LIFETIME`.
    fn serve_tcp<F>(listener: TcpListener, reply: F)
    where
        F: Fn(&[u8]) -> Vec<u8> + Send + 'static,
    {
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            let give_up = Instant::now() + SERVER_LIFETIME;
            while Instant::now() < give_up {
                let Ok((mut stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let mut prefix = [0u8; 2];
                if stream.read_exact(&mut prefix).is_err() {
                    continue;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                if stream.read_exact(&mut query).is_err() {
                    continue;
                }
                let message = reply(&query);
                let mut framed = (message.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&message);
                let _ = stream.write_all(&framed);
            }
        });
    }

    // ---- lookups over the network (127.0.0.1 only) ----------------------

    #[test]
    fn sorts_shuffled_compressed_answers() {
        let server = udp_server(|q| vec![shuffled_answers(q)]);
        let records = lookup_with_servers(&[server], "_http._tcp.example.com", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn trailing_dot_in_query_is_optional() {
        let server = udp_server(|q| vec![shuffled_answers(q)]);
        let records = lookup_with_servers(&[server], "_http._tcp.example.com.", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn query_is_a_standard_srv_query() {
        let (tx, rx) = std::sync::mpsc::channel();
        let server = udp_server(move |q| {
            let _ = tx.send(q.to_vec());
            vec![response(q, 0, 0, &[])]
        });
        let records = lookup_with_servers(&[server], "_x._udp.Example.org", &QUICK).unwrap();
        assert!(records.is_empty());
        let query = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(read_u16(&query, 2), Ok(FLAG_RD));
        assert_eq!(read_u16(&query, 4), Ok(1));
        assert_eq!(&query[6..12], &[0; 6]);
        let mut tail = wire("_x._udp.Example.org");
        tail.extend_from_slice(&[0, 33, 0, 1]);
        assert_eq!(&query[12..], &tail[..]);
    }

    #[test]
    fn nxdomain_is_an_empty_list() {
        let server = udp_server(|q| vec![response(q, 3, 0, &[])]);
        let records = lookup_with_servers(&[server], "_none._tcp.example.com", &QUICK).unwrap();
        assert!(records.is_empty());
    }

    #[test]
    fn other_rcodes_are_errors_naming_rcode_and_name() {
        let server = udp_server(|q| vec![response(q, 2, 0, &[])]);
        let error = lookup_with_servers(&[server], "_x._tcp.example.com.", &QUICK).unwrap_err();
        assert_eq!(
            error,
            DnsError::Rcode {
                name: "_x._tcp.example.com".to_string(),
                server,
                rcode: 2
            }
        );
        assert_eq!(
            error.to_string(),
            format!("SRV lookup of _x._tcp.example.com: {server} answered SERVFAIL (rcode 2)")
        );
    }

    #[test]
    fn refusing_server_is_skipped_for_the_next() {
        let refusing = udp_server(|q| vec![response(q, 5, 0, &[])]);
        let good = udp_server(|q| vec![shuffled_answers(q)]);
        let records =
            lookup_with_servers(&[refusing, good], "_http._tcp.example.com", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn truncated_answer_is_repeated_over_tcp() {
        let (udp, tcp) = udp_and_tcp_sockets();
        let server = udp.local_addr().unwrap();
        // Over UDP: TC set and only one (bogus) record, which must not be used.
        serve_udp(udp, |q| {
            let partial = record(&TO_QNAME, TYPE_SRV, &srv(0, 0, 1, &wire("partial.example")));
            vec![response(q, 0, FLAG_TC, &[partial])]
        });
        serve_tcp(tcp, shuffled_answers);
        let records = lookup_with_servers(&[server], "_http._tcp.example.com", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn truncated_answer_without_tcp_server_fails() {
        let server = udp_server(|q| vec![response(q, 0, FLAG_TC, &[])]);
        let error = lookup_with_servers(&[server], "_http._tcp.example.com", &QUICK).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, DnsError::NoAnswer { .. }), "{text}");
        assert!(text.contains(&format!("{server}: over TCP: ")), "{text}");
    }

    #[test]
    fn stray_datagrams_are_ignored() {
        let server = udp_server(|q| {
            let mut wrong_id = shuffled_answers(q);
            wrong_id[0] ^= 0xFF;
            let mut wrong_question = shuffled_answers(q);
            wrong_question[14] = b'X';
            vec![
                b"garbage".to_vec(),
                Vec::new(),
                wrong_id,
                wrong_question,
                q.to_vec(), // the query itself: QR not set
                shuffled_answers(q),
            ]
        });
        let records = lookup_with_servers(&[server], "_http._tcp.example.com", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn question_case_may_differ() {
        let server = udp_server(|q| {
            let mut answer = shuffled_answers(q);
            answer[13..18].make_ascii_uppercase();
            vec![answer]
        });
        let records = lookup_with_servers(&[server], "_http._tcp.example.com", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn only_garbage_times_out() {
        let server = udp_server(|_| vec![vec![0xFF; 40]]);
        let started = Instant::now();
        let error = lookup_with_servers(&[server], "_x._tcp.example.com", &QUICK).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            error.to_string(),
            format!("SRV lookup of _x._tcp.example.com: no usable answer: {server}: timed out")
        );
    }

    #[test]
    fn garbage_after_a_matching_header_is_malformed() {
        let server = udp_server(|q| {
            let mut answer = response(q, 0, 0, &[]);
            answer[6..8].copy_from_slice(&1u16.to_be_bytes());
            answer.extend_from_slice(&[0xC0, 0xFF, 0x00, 0x21]);
            vec![answer]
        });
        let error = lookup_with_servers(&[server], "_x._tcp.example.com", &QUICK).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(&format!("{server}: malformed response: ")),
            "{text}"
        );
    }

    #[test]
    fn silent_server_is_followed_by_the_next() {
        // Bound but never read: queries to it go unanswered.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let good = udp_server(|q| vec![shuffled_answers(q)]);
        let started = Instant::now();
        let records =
            lookup_with_servers(&[silent_addr, good], "_http._tcp.example.com", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(silent);
    }

    #[test]
    fn second_try_succeeds_after_a_lost_answer() {
        let count = std::sync::atomic::AtomicUsize::new(0);
        let server = udp_server(move |q| {
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                Vec::new()
            } else {
                vec![shuffled_answers(q)]
            }
        });
        let records = lookup_with_servers(&[server], "_http._tcp.example.com", &QUICK).unwrap();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn every_failure_is_listed() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = silent.local_addr().unwrap();
        let b = udp_server(|_| vec![b"junk".to_vec()]);
        let error = lookup_with_servers(&[a, b], "_x._tcp.example.com", &QUICK).unwrap_err();
        assert_eq!(
            error,
            DnsError::NoAnswer {
                name: "_x._tcp.example.com".to_string(),
                failures: vec![format!("{a}: timed out"), format!("{b}: timed out")],
            }
        );
        drop(silent);
    }

    #[test]
    fn invalid_names_are_rejected_before_sending() {
        for name in ["", ".", "a..b", "has space.example", "é.example"] {
            let error = lookup_with_servers(&[], name, &QUICK).unwrap_err();
            assert!(
                matches!(error, DnsError::InvalidName { .. }),
                "{name:?}: {error}"
            );
        }
        let long_label = format!("{}.example", "a".repeat(64));
        let error = lookup_with_servers(&[], &long_label, &QUICK).unwrap_err();
        assert!(
            error.to_string().contains("longer than 63 bytes"),
            "{error}"
        );
    }

    #[test]
    fn no_servers_is_an_error() {
        let error = lookup_with_servers(&[], "_x._tcp.example.com", &QUICK).unwrap_err();
        assert_eq!(
            error.to_string(),
            "SRV lookup of _x._tcp.example.com: no usable answer: no name server to ask"
        );
    }

    // ---- parsing without the network -------------------------------------

    fn sample_query() -> Vec<u8> {
        build_query(0x1234, &wire("_http._tcp.example.com"))
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(wire("a.bc."), b"\x01a\x02bc\x00".to_vec());
        assert_eq!(wire("a.bc"), b"\x01a\x02bc\x00".to_vec());
        let longest = vec!["a".repeat(63); 3].join(".") + "." + &"b".repeat(61);
        assert_eq!(wire(&longest).len(), 255);
        assert!(encode_name(&(longest + "b")).is_err());
        let message = wire("_etcd-server._tcp.example.com");
        assert_eq!(
            read_name(&message, 0),
            Ok(("_etcd-server._tcp.example.com".to_string(), message.len()))
        );
    }

    #[test]
    fn label_bytes_are_escaped() {
        let message = b"\x03a.b\x02\\\x01\x01\x00\x00";
        assert_eq!(
            read_name(message, 0),
            Ok(("a\\.b.\\\\\\001.\\000".to_string(), message.len()))
        );
    }

    #[test]
    fn pointer_loops_are_errors() {
        // A pointer to itself, and two pointing at each other.
        let mut message = vec![0u8; HEADER_LEN];
        message.extend_from_slice(&[0xC0, 12]);
        assert!(read_name(&message, 12).unwrap_err().contains("loop"));
        let mut message = vec![0u8; HEADER_LEN];
        message.extend_from_slice(&[0xC0, 14, 0xC0, 12]);
        assert!(read_name(&message, 12).unwrap_err().contains("loop"));
        // A label followed by a pointer back to it grows until too long.
        let mut message = vec![0u8; HEADER_LEN];
        message.push(10);
        message.extend_from_slice(b"abcdefghij");
        message.extend_from_slice(&[0xC0, 12]);
        assert!(read_name(&message, 12).unwrap_err().contains("longer than"));
        // A short label and a pointer back: stopped by the pointer limit.
        let mut message = vec![0u8; HEADER_LEN];
        message.extend_from_slice(&[1, b'a', 0xC0, 12]);
        assert!(read_name(&message, 12).unwrap_err().contains("loop"));
    }

    #[test]
    fn out_of_bounds_reads_are_errors() {
        assert!(read_name(&[0xC0], 0).is_err());
        assert!(read_name(&[0xC0, 0x50], 0).is_err());
        assert!(read_name(&[5, b'a'], 0).is_err());
        assert!(read_name(&[], 0).is_err());
        assert!(
            read_name(&[0x40], 0)
                .unwrap_err()
                .contains("unknown label type")
        );
        assert!(read_u16(&[1], 0).is_err());
        assert!(read_u16(&[1, 2], usize::MAX).is_err());
    }

    #[test]
    fn srv_target_must_stay_inside_its_record() {
        let query = sample_query();
        // rdlength says 7 but the target is longer.
        let mut rdata = srv(1, 1, 1, &wire("long.example"));
        let mut answer = record(&TO_QNAME, TYPE_SRV, &rdata);
        let rdlength_at = answer.len() - rdata.len() - 2;
        answer[rdlength_at..rdlength_at + 2].copy_from_slice(&7u16.to_be_bytes());
        let message = response(&query, 0, 0, &[answer]);
        assert!(
            parse_srv_answers(&message)
                .unwrap_err()
                .contains("runs past its record")
        );
        // rdlength beyond the end of the message.
        rdata.truncate(6);
        let mut answer = record(&TO_QNAME, TYPE_SRV, &rdata);
        let rdlength_at = answer.len() - rdata.len() - 2;
        answer[rdlength_at..rdlength_at + 2].copy_from_slice(&100u16.to_be_bytes());
        let message = response(&query, 0, 0, &[answer]);
        assert!(
            parse_srv_answers(&message)
                .unwrap_err()
                .contains("past the end")
        );
    }

    #[test]
    fn malformed_input_never_panics() {
        let full = shuffled_answers(&sample_query());
        assert_eq!(parse_srv_answers(&full).unwrap().len(), 4);
        // Every prefix.
        for len in 0..full.len() {
            let _ = parse_srv_answers(&full[..len]);
            let _ = answers_query(&full[..len], 0x1234, &wire("_http._tcp.example.com"));
        }
        // Pseudo-random corruption (xorshift, fixed seed).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut message = full.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % message.len() as u64) as usize;
                message[at] = next() as u8;
            }
            let _ = parse_srv_answers(&message);
        }
        for _ in 0..5_000 {
            let len = (next() % 300) as usize;
            let message: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse_srv_answers(&message);
            for start in 0..len.min(20) {
                let _ = read_name(&message, start);
            }
        }
    }

    // ---- configuration ----------------------------------------------------

    #[test]
    fn srv_name_is_composed_like_go() {
        assert_eq!(
            srv_name("etcd", "tcp", "example.com"),
            "_etcd._tcp.example.com"
        );
        assert_eq!(
            srv_name("", "", "_x._udp.example.com"),
            "_x._udp.example.com"
        );
    }

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# comment\n\
                    search example.com\n\
                    nameserver 10.0.0.1\n\
                    ; nameserver 10.0.0.9\n\
                    nameserver   fd00::53 # trailing comment\n\
                    nameserver fe80::1%eth0\n\
                    nameserver not-an-ip\n\
                    options ndots:2\n";
        assert_eq!(
            resolv_conf_servers(text),
            vec![
                "10.0.0.1:53".parse::<SocketAddr>().unwrap(),
                "[fd00::53]:53".parse().unwrap(),
            ]
        );
    }

    #[test]
    fn resolv_conf_without_nameservers_means_localhost() {
        assert_eq!(
            resolv_conf_servers("search example.com\n"),
            vec![
                "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap(),
            ]
        );
    }

    #[test]
    fn server_variable_values() {
        assert_eq!(
            parse_server_list("127.0.0.1:5353").unwrap(),
            vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            parse_server_list("10.0.0.2, [fd00::2]:54 ::1 [::2]").unwrap(),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[fd00::2]:54".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "[::2]:53".parse().unwrap(),
            ]
        );
        let error = parse_server_list("dns.example:53").unwrap_err();
        assert!(matches!(error, DnsError::InvalidServer { .. }));
        assert!(
            error
                .to_string()
                .starts_with("CONFD_DNS_SERVER=\"dns.example:53\": ")
        );
        assert!(parse_server_list(" , ").is_err());
    }

    #[test]
    fn records_order() {
        let mut records = expected_sorted();
        records.reverse();
        records.sort();
        assert_eq!(records, expected_sorted());
    }

    #[test]
    fn query_ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| query_id()).collect();
        assert!(ids.len() > 32);
    }
}
