//! Unit tests of the DNS module: configuration building without the network,
//! and lookups that must not reach any server, or only a silent one on
//! 127.0.0.1.

#![allow(clippy::unwrap_used)]

use std::net::UdpSocket;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use hickory_resolver::proto::rr::Name;
use hickory_resolver::proto::rr::rdata::{A, SRV};

use super::*;

fn names(names: &[Name]) -> Vec<String> {
    names.iter().map(Name::to_ascii).collect()
}

fn servers(config: &ResolverConfig) -> Vec<SocketAddr> {
    let servers = config.name_servers().iter();
    servers
        .flat_map(|s| s.connections.iter().map(|c| SocketAddr::new(s.ip, c.port)))
        .collect()
}

#[test]
fn settings_follow_resolv_conf() {
    let text = "# comment\n\
                search example.test other.test\n\
                nameserver 127.0.0.1\n\
                options ndots:3 timeout:2 attempts:3\n";
    let (config, opts, bound) = settings("f", text, None).unwrap();
    assert_eq!(names(config.search()), ["example.test", "other.test"]);
    let local: SocketAddr = "127.0.0.1:53".parse().unwrap();
    assert_eq!(servers(&config), [local, local], "UDP and TCP");
    assert_eq!(opts.ndots, 3);
    assert_eq!(opts.timeout, Duration::from_secs(2));
    assert_eq!(opts.attempts, 2, "hickory counts the tries after the first");
    assert_eq!(opts.ip_strategy, LookupIpStrategy::Ipv4AndIpv6);
    assert_eq!(bound, Duration::from_secs(6));
}

#[test]
fn settings_default_like_glibc() {
    let (config, opts, bound) = settings("f", "search example.test\n", None).unwrap();
    let ips: Vec<IpAddr> = config.name_servers().iter().map(|s| s.ip).collect();
    assert_eq!(
        ips,
        [
            "127.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    assert_eq!(names(config.search()), ["example.test"]);
    assert_eq!((opts.ndots, opts.timeout), (1, Duration::from_secs(5)));
    assert_eq!(bound, Duration::from_secs(10));
    // Out-of-range options are capped as glibc caps them.
    let (_, opts, bound) = settings("f", "options timeout:0 attempts:0", None).unwrap();
    assert_eq!((opts.timeout, opts.attempts), (Duration::from_secs(1), 0));
    assert_eq!(bound, Duration::from_secs(1));
    let (_, _, bound) = settings("f", "options timeout:99 attempts:9", None).unwrap();
    assert_eq!(bound, Duration::from_secs(150));
}

#[test]
fn server_variable_replaces_name_servers_only() {
    let text = "search example.test\nnameserver 10.0.0.1\noptions ndots:2\n";
    let (config, opts, _) = settings("f", text, Some("127.0.0.1:5353, [::1]:54")).unwrap();
    let expected: Vec<SocketAddr> = ["127.0.0.1:5353", "127.0.0.1:5353", "[::1]:54", "[::1]:54"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(servers(&config), expected);
    assert_eq!(names(config.search()), ["example.test"]);
    assert_eq!(opts.ndots, 2);
}

#[test]
fn server_variable_values() {
    let parsed = parse_servers("10.0.0.2, [fd00::2]:54 ::1 [::2]").unwrap();
    let expected: Vec<SocketAddr> = ["10.0.0.2:53", "[fd00::2]:54", "[::1]:53", "[::2]:53"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(parsed, expected);
    let error = parse_servers("dns.example:53").unwrap_err();
    assert!(matches!(error, DnsError::InvalidServer { .. }));
    assert!(
        error
            .to_string()
            .starts_with("CONFD_DNS_SERVER=\"dns.example:53\": ")
    );
    assert!(parse_servers(" , ").is_err());
    assert!(settings("f", "", Some("nope")).is_err());
}

#[test]
fn srv_answers_are_sorted_deduplicated_and_lose_the_dot() {
    let name = Name::from_str("_http._tcp.example.com.").unwrap();
    let srv = |p, w, port, target: &str| {
        let target = Name::from_str(target).unwrap();
        Record::from_rdata(name.clone(), 60, RData::SRV(SRV::new(p, w, port, target)))
    };
    let answers = [
        srv(20, 5, 8002, "b.example.com."),
        srv(10, 1, 8001, "z.example.com."),
        srv(10, 9, 8003, "a.example.com."),
        srv(10, 9, 8003, "a.example.com."),
        srv(0, 0, 1, "."),
        Record::from_rdata(name.clone(), 60, RData::A(A::new(127, 0, 0, 1))),
    ];
    let got: Vec<(String, u16)> = srv_records(&answers)
        .into_iter()
        .map(|r| (r.target, r.port))
        .collect();
    let expected = [
        ("a.example.com", 8003),
        ("z.example.com", 8001),
        ("b.example.com", 8002),
    ];
    assert_eq!(got, expected.map(|(t, p)| (t.to_string(), p)));
}

/// A name server on 127.0.0.1 that reads every query and never answers.
struct Silent {
    address: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        let (queries, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (counted, stopping) = (queries.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while !stopping.load(Ordering::Relaxed) {
                if socket.recv_from(&mut buffer).is_ok() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Silent {
            address,
            queries,
            stop,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn silent_server_fails_within_the_bound_naming_the_record() {
    let silent = Silent::start();
    let text = "search example.test\noptions timeout:1 attempts:2\n";
    let dns = Dns::new("f", text, Some(&silent.address.to_string())).unwrap();
    let bound = Duration::from_secs(2);
    let timed = |kind: &str, lookup: &dyn Fn() -> Result<(), DnsError>| {
        let started = Instant::now();
        let error = lookup().unwrap_err();
        let took = started.elapsed();
        // The grace past the bound only covers a machine too busy to wake us.
        assert!(took <= bound + GRACE, "{kind}: {took:?}");
        assert!(
            took >= bound - Duration::from_millis(100),
            "{kind}: {took:?}"
        );
        assert!(
            matches!(&error, DnsError::Timeout { kind: k, bound: b, .. } if *k == kind && *b == bound),
            "{error}"
        );
        error.to_string()
    };
    let error = timed("SRV", &|| dns.srv("_http._tcp.example.com").map(|_| ()));
    assert_eq!(
        error,
        "SRV lookup of _http._tcp.example.com: no answer within 2s (timeout × attempts)"
    );
    let error = timed("IP", &|| dns.ip("db.example.com").map(|_| ()));
    assert_eq!(
        error,
        "IP lookup of db.example.com: no answer within 2s (timeout × attempts)"
    );
    assert!(
        silent.queries.load(Ordering::Relaxed) > 0,
        "the silent server was asked"
    );
}

#[test]
fn loopback_and_addresses_need_no_server() {
    // Anything sent to the (silent) server would make these time out.
    let silent = Silent::start();
    let text = "options timeout:1 attempts:1\n";
    let dns = Dns::new("f", text, Some(&silent.address.to_string())).unwrap();
    let started = Instant::now();
    let localhost = dns.ip("localhost").unwrap();
    assert!(
        localhost.contains(&"127.0.0.1".parse::<IpAddr>().unwrap()),
        "{localhost:?}"
    );
    assert!(localhost.is_sorted());
    assert_eq!(
        dns.ip("10.0.0.7").unwrap(),
        ["10.0.0.7".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(dns.ip("::1").unwrap(), ["::1".parse::<IpAddr>().unwrap()]);
    assert!(started.elapsed() < Duration::from_millis(900));
}

#[test]
fn invalid_names_are_errors_naming_them() {
    let dns = Dns::new("f", "options timeout:1 attempts:1\n", Some("127.0.0.1:9")).unwrap();
    let long = format!("{}.example", "a".repeat(64));
    let error = dns.srv(&long).unwrap_err();
    assert!(matches!(error, DnsError::Failed { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("SRV lookup of {long}: ")),
        "{error}"
    );
}

#[test]
fn records_order() {
    let record = |priority, weight, target: &str| SrvRecord {
        target: target.into(),
        port: 1,
        priority,
        weight,
    };
    let mut records = vec![
        record(2, 0, "a"),
        record(1, 1, "a"),
        record(1, 5, "b"),
        record(1, 5, "a"),
    ];
    records.sort();
    assert_eq!(
        records,
        [
            record(1, 5, "a"),
            record(1, 5, "b"),
            record(1, 1, "a"),
            record(2, 0, "a")
        ]
    );
}
