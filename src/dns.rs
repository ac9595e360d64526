//! DNS lookups for the `lookupIP` and `lookupSRV` template helpers and for SRV
//! discovery of backend nodes (`-srv-record`, `-srv-domain`), through one
//! shared [hickory-resolver](hickory_resolver) built at the first lookup.
//!
//! Configuration, read once: `/etc/resolv.conf` (or the file named by
//! [`RESOLV_CONF_ENV`]) for the name servers, `search`/`domain`, and
//! `options ndots:N timeout:N attempts:N` (glibc's defaults 1, 5 s and 2;
//! `timeout` is capped at 30 s and `attempts` at 5, as glibc does); with no
//! `nameserver` line, 127.0.0.1 and ::1, as glibc. [`SERVER_ENV`] replaces
//! the name servers. `/etc/hosts` (read once too) is honoured for addresses,
//! and `localhost` always means the loopback addresses.
//!
//! Time bound: each try waits up to `timeout` for the name servers (two asked
//! at once), and a lookup — search-list names and both address families
//! included — gives up after `timeout` × `attempts` (10 s with the defaults)
//! with [`DnsError::Timeout`] naming the name asked.
//!
//! The calls are synchronous, because Tera functions are and templates render
//! on plain threads. Each runs its lookup on a current-thread tokio runtime of
//! this module, driven by a thread of its own (`confd-dns`), and waits on a
//! channel: it never needs, nor blocks on, a runtime of the caller's.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, Record};
use hickory_resolver::system_conf::parse_resolv_conf;
use tokio::runtime::Handle;

/// Names the name servers to ask instead of resolv.conf's: IP addresses with
/// an optional port (53 otherwise), separated by commas or spaces, e.g.
/// `127.0.0.1:5353` or `10.0.0.2, [fd00::2]:53`.
pub const SERVER_ENV: &str = "CONFD_DNS_SERVER";
/// Names a file to read instead of `/etc/resolv.conf` (same format), e.g. to
/// give confd its own `search` list or `options timeout:1`.
pub const RESOLV_CONF_ENV: &str = "CONFD_RESOLV_CONF";
/// The system's resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Extra wait for the lookup task's own answer, past its deadline, before the
/// caller stops waiting anyway.
const GRACE: Duration = Duration::from_secs(1);

/// One SRV answer (RFC 2782). [`Ord`] sorts by priority (lowest first), then
/// weight (highest first), then target and port, so that the order in which a
/// server shuffles its answers never changes a rendered file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
        (self.priority, other.weight, &self.target, self.port).cmp(&(
            other.priority,
            self.weight,
            &other.target,
            other.port,
        ))
    }
}

impl PartialOrd for SrvRecord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a lookup failed; every message is one line naming what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// [`SERVER_ENV`] does not hold IP addresses.
    #[error("{SERVER_ENV}={value:?}: {reason}")]
    InvalidServer {
        /// The variable's value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The resolver configuration cannot be read or used.
    #[error("{path}: {reason}")]
    Config {
        /// The resolv.conf file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the bound.
    #[error("{kind} lookup of {name}: no answer within {} (timeout × attempts)", humantime::format_duration(*.bound))]
    Timeout {
        /// `SRV` or `IP`.
        kind: &'static str,
        /// The name asked.
        name: String,
        /// The bound that passed.
        bound: Duration,
    },
    /// The lookup runtime or its thread cannot start.
    #[error("cannot start the DNS lookup runtime: {0}")]
    Runtime(String),
    /// A server error, an invalid name, or a resolver failure.
    #[error("{kind} lookup of {name}: {reason}")]
    Failed {
        /// `SRV` or `IP`.
        kind: &'static str,
        /// The name asked.
        name: String,
        /// The resolver's reason.
        reason: String,
    },
}

/// The SRV records of `_service._proto.name`, or of `name` itself when
/// `service` and `proto` are both empty (as Go's `net.LookupSRV` does).
///
/// # Errors
///
/// As for [`lookup_srv_record`].
pub fn lookup_srv(service: &str, proto: &str, name: &str) -> Result<Vec<SrvRecord>, DnsError> {
    if service.is_empty() && proto.is_empty() {
        lookup_srv_record(name)
    } else {
        lookup_srv_record(&format!("_{service}._{proto}.{name}"))
    }
}

/// The SRV records of `record`, sorted (see [`SrvRecord`]) and de-duplicated,
/// without those whose target is `.` ("decidedly not available", RFC 2782).
/// A name that does not exist or has no SRV records gives an empty list.
///
/// # Errors
///
/// [`DnsError`]: a bad configuration, no answer within the bound, a server
/// error (SERVFAIL, REFUSED, …), or an invalid name.
pub fn lookup_srv_record(record: &str) -> Result<Vec<SrvRecord>, DnsError> {
    shared()?.srv(record)
}

/// The IPv4 and IPv6 addresses of `name` (`/etc/hosts` first), sorted and
/// de-duplicated; an IP address gives itself. A name that does not exist or
/// has no addresses gives an empty list, as in confd.
///
/// # Errors
///
/// As for [`lookup_srv_record`].
pub fn lookup_ip(name: &str) -> Result<Vec<IpAddr>, DnsError> {
    shared()?.ip(name)
}

/// A resolver and the bound on one lookup.
struct Dns {
    resolver: TokioResolver,
    bound: Duration,
}

/// The resolver of the process: resolv.conf (or [`RESOLV_CONF_ENV`]'s file)
/// and [`SERVER_ENV`], read at the first call; a failure is kept and repeated.
fn shared() -> Result<&'static Dns, DnsError> {
    static SHARED: OnceLock<Result<Dns, DnsError>> = OnceLock::new();
    let env = |name| {
        std::env::var(name)
            .ok()
            .filter(|v: &String| !v.trim().is_empty())
    };
    let build = || {
        let (label, text) = match env(RESOLV_CONF_ENV) {
            Some(path) => {
                let label = format!("{RESOLV_CONF_ENV}={path}");
                match std::fs::read_to_string(&path) {
                    Ok(text) => (label, text),
                    Err(e) => return Err(config_error(&label, crate::error::io_reason(&e))),
                }
            }
            // Unreadable or missing means the defaults, as in glibc.
            None => (
                RESOLV_CONF.into(),
                std::fs::read_to_string(RESOLV_CONF).unwrap_or_default(),
            ),
        };
        Dns::new(&label, &text, env(SERVER_ENV).as_deref())
    };
    SHARED.get_or_init(build).as_ref().map_err(Clone::clone)
}

/// The runtime the lookups run on, started at the first call.
fn runtime() -> Result<&'static Handle, DnsError> {
    static HANDLE: OnceLock<Result<Handle, DnsError>> = OnceLock::new();
    let start = || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("confd-dns".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(handle)
    };
    HANDLE
        .get_or_init(|| start().map_err(|e: std::io::Error| DnsError::Runtime(e.to_string())))
        .as_ref()
        .map_err(Clone::clone)
}

fn config_error(path: &str, reason: impl std::fmt::Display) -> DnsError {
    DnsError::Config {
        path: path.into(),
        reason: reason.to_string(),
    }
}

/// Resolver settings from a resolv.conf text (`path` names it in errors) and
/// an optional [`SERVER_ENV`] value, with the bound on one lookup.
fn settings(
    path: &str,
    text: &str,
    servers: Option<&str>,
) -> Result<(ResolverConfig, ResolverOpts, Duration), DnsError> {
    // hickory refuses a file without name servers; glibc then asks localhost.
    let (mut config, mut opts) = parse_resolv_conf(text)
        .or_else(|_| parse_resolv_conf(format!("{text}\nnameserver 127.0.0.1\nnameserver ::1")))
        .map_err(|e| config_error(path, e))?;
    if let Some(value) = servers {
        let servers = parse_servers(value)?.into_iter().map(|addr| {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            server
                .connections
                .iter_mut()
                .for_each(|c| c.port = addr.port());
            server
        });
        let search = config.search().to_vec();
        config = ResolverConfig::from_parts(config.domain().cloned(), search, servers.collect());
    }
    opts.timeout = opts
        .timeout
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    let attempts = opts.attempts.clamp(1, 5);
    // hickory's `attempts` counts the tries after the first one.
    opts.attempts = attempts - 1;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    let bound = opts.timeout * u32::try_from(attempts).unwrap_or(1);
    Ok((config, opts, bound))
}

/// [`SERVER_ENV`]'s value as socket addresses.
fn parse_servers(value: &str) -> Result<Vec<SocketAddr>, DnsError> {
    let invalid = |reason: String| DnsError::InvalidServer {
        value: value.into(),
        reason,
    };
    let parse = |item: &str| {
        let bare = item.trim_start_matches('[').trim_end_matches(']');
        item.parse::<SocketAddr>()
            .or_else(|_| bare.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| {
                invalid(format!(
                    "{item:?} is not an IP address with an optional port"
                ))
            })
    };
    let items = value.split(|c: char| c == ',' || c.is_whitespace());
    let servers = items.filter(|item| !item.is_empty()).map(parse);
    match servers.collect::<Result<Vec<_>, _>>()? {
        servers if servers.is_empty() => Err(invalid("no address given".into())),
        servers => Ok(servers),
    }
}

/// The SRV answers among `answers`, sorted and de-duplicated, without those
/// whose target is `.`; targets lose their trailing dot.
fn srv_records(answers: &[Record]) -> Vec<SrvRecord> {
    let mut records: Vec<SrvRecord> = answers
        .iter()
        .filter_map(|answer| match &answer.data {
            RData::SRV(srv) => Some(SrvRecord {
                target: srv.target.to_ascii().trim_end_matches('.').to_string(),
                port: srv.port,
                priority: srv.priority,
                weight: srv.weight,
            }),
            _ => None,
        })
        .filter(|record| !record.target.is_empty())
        .collect();
    records.sort();
    records.dedup();
    records
}

impl Dns {
    fn new(path: &str, text: &str, servers: Option<&str>) -> Result<Dns, DnsError> {
        let (config, opts, bound) = settings(path, text, servers)?;
        let _context = runtime()?.enter();
        let provider = TokioRuntimeProvider::default();
        let builder = TokioResolver::builder_with_config(config, provider).with_options(opts);
        let resolver = builder.build().map_err(|e| config_error(path, e))?;
        Ok(Dns { resolver, bound })
    }

    fn srv(&self, record: &str) -> Result<Vec<SrvRecord>, DnsError> {
        let (resolver, query) = (self.resolver.clone(), record.to_string());
        let found = self.run(
            "SRV",
            record,
            async move { resolver.srv_lookup(query).await },
        )?;
        Ok(found.map_or_else(Vec::new, |lookup| srv_records(lookup.answers())))
    }

    fn ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let (resolver, query) = (self.resolver.clone(), name.to_string());
        let found = self.run("IP", name, async move { resolver.lookup_ip(query).await })?;
        let mut addresses: Vec<IpAddr> = found.iter().flat_map(|lookup| lookup.iter()).collect();
        addresses.sort();
        addresses.dedup();
        Ok(addresses)
    }

    /// Runs `lookup` on the module's runtime within the bound; `None` when
    /// the name does not exist or has no records of the type.
    fn run<T: Send + 'static>(
        &self,
        kind: &'static str,
        name: &str,
        lookup: impl Future<Output = Result<T, NetError>> + Send + 'static,
    ) -> Result<Option<T>, DnsError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let bound = self.bound;
        runtime()?.spawn(async move {
            // The caller may have stopped waiting; then nobody needs the answer.
            let _ = sender.send(tokio::time::timeout(bound, lookup).await);
        });
        // The task ends within `bound`; the grace only guards a stalled runtime.
        let reason = match receiver.recv_timeout(bound + GRACE) {
            Ok(Ok(Ok(found))) => return Ok(Some(found)),
            Ok(Ok(Err(e))) if e.is_no_records_found() => return Ok(None),
            Ok(Ok(Err(NetError::Timeout)) | Err(_)) | Err(RecvTimeoutError::Timeout) => {
                return Err(DnsError::Timeout {
                    kind,
                    name: name.into(),
                    bound,
                });
            }
            Ok(Ok(Err(e))) => e.to_string(),
            Err(RecvTimeoutError::Disconnected) => "the lookup task ended early".into(),
        };
        Err(DnsError::Failed {
            kind,
            name: name.into(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests;
