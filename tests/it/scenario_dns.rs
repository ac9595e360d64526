//! HAProxy following a Docker Swarm's DNS, end to end with real traffic: a
//! real DNS server (`dnsmasq`, [`crate::common::dnsmasq`]) → confd polling
//! with `-interval 1` and the shipped example confdir
//! `examples/haproxy-swarm-dns/confd` (`lookupIP` of `tasks.<service>`,
//! `lookupSRV` of `_http._tcp.tasks.<service>`) → a real HAProxy → upstreams
//! that each listen on their own loopback address (127.0.0.2, .3, …) on one
//! port, as a service's replicas do.
//!
//! Checked: replicas added to or removed from DNS show in `haproxy.cfg` and
//! in the traffic; DNS answers in a rotating order (dnsmasq rotates them)
//! cause no write (same inode, same mtime) and no reload (the `reload_cmd`
//! appends a line to a file); a DNS server that stops answering fails the
//! render and leaves the file, HAProxy and the traffic as they were.
//!
//! Each test has its own dnsmasq, HAProxy, confd and upstreams; every wait is
//! bounded and everything is stopped on drop, also when a test fails.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::common::confd::{Confd, STOP_LIMIT};
use crate::common::dnsmasq::Dnsmasq;
use crate::common::haproxy::{Haproxy, Upstream, batch, wait_for_batch};
use crate::common::{free_port, wait_until};

/// How long a change in DNS may take to show in the traffic: a 1 s poll, the
/// render with its lookups, `haproxy -c`, the rename and the reload.
const CHANGE_LIMIT: Duration = Duration::from_secs(15);

/// The web replicas: name and loopback address, all on one port.
const WEB: [(&str, [u8; 4]); 3] = [
    ("web1", [127, 0, 0, 2]),
    ("web2", [127, 0, 0, 3]),
    ("web3", [127, 0, 0, 4]),
];
/// The api replica, found through an SRV record.
const API: (&str, [u8; 4]) = ("api1", [127, 0, 0, 5]);

/// A hosts file naming the web replicas `tasks.web` and the SRV target.
fn hosts(web: &[[u8; 4]]) -> String {
    let mut text: String = web
        .iter()
        .map(|ip| format!("{} tasks.web\n", dotted(*ip)))
        .collect();
    text.push_str(&format!("{} api-1.swarm\n", dotted(API.1)));
    text
}

fn dotted(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// One scenario; fields are dropped in order after confd has been stopped.
struct Stack {
    confd: Option<Confd>,
    haproxy: Haproxy,
    upstreams: Vec<Upstream>,
    dns: Option<Dnsmasq>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Stack {
    /// dnsmasq naming the `web` replicas given (and the api one), the
    /// upstreams, HAProxy on its bootstrap configuration, then confd; returns
    /// once HAProxy routes both services to their replicas.
    fn start(web: &[[u8; 4]]) -> Stack {
        let dir = tempfile::tempdir().expect("scratch dir");
        let (web_port, upstreams) = start_upstreams();
        let api_port = upstreams.last().map(Upstream::port).unwrap_or_default();
        let srv = format!("_http._tcp.tasks.api,api-1.swarm,{api_port}");
        let dns = Dnsmasq::start(dir.path(), &hosts(web), &[&srv]);
        let port = free_port();
        let haproxy = Haproxy::start_bootstrap(dir.path(), port);
        write_confdir(dir.path(), port, web_port);
        let mut stack = Stack {
            confd: None,
            haproxy,
            upstreams,
            dns: Some(dns),
            dir,
            port,
        };
        stack.confd = Some(stack.spawn_confd());
        let names: Vec<&str> = WEB
            .iter()
            .filter(|(_, ip)| web.contains(ip))
            .map(|(name, _)| *name)
            .collect();
        stack.wait_for_names("web.example.com", &names);
        stack.wait_for_names("api.example.com", &[API.0]);
        stack
    }

    fn spawn_confd(&self) -> Confd {
        let dns = self.dns.as_ref().map(Dnsmasq::address).unwrap_or_default();
        let mut command = Command::new(crate::common::confd_bin());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CONFD_") {
                command.env_remove(name);
            }
        }
        command
            .args(["-backend", "file", "-file", "services.yaml", "-confdir"])
            .arg(self.dir.path().join("confd"))
            .args(["-interval", "1", "-log-level", "debug"])
            .env("CONFD_DNS_SERVER", dns)
            // No search list, and a dead server noticed within 2 s.
            .env("CONFD_RESOLV_CONF", self.dir.path().join("resolv.conf"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        Confd::spawn_command(command, self.dir.path())
    }

    fn dns(&self) -> &Dnsmasq {
        self.dns.as_ref().expect("dnsmasq runs")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("haproxy.cfg")
    }

    fn config(&self) -> String {
        fs::read_to_string(self.config_path()).expect("haproxy.cfg")
    }

    /// How many times confd ran the `reload_cmd`.
    fn reloads(&self) -> usize {
        fs::read_to_string(self.dir.path().join("reloads.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn confd_log(&self) -> String {
        self.confd.as_ref().map(Confd::stderr).unwrap_or_default()
    }

    /// How many passes found haproxy.cfg already in sync.
    fn unchanged_passes(&self) -> usize {
        self.confd_log().matches("outcome=unchanged").count()
    }

    fn report(&self) -> String {
        let dns = self.dns.as_ref().map(Dnsmasq::log).unwrap_or_default();
        format!(
            "{}\n--- dnsmasq log\n{dns}",
            self.haproxy.report(&self.confd_log())
        )
    }

    /// Sends batches of 9 requests until one is answered by exactly the
    /// upstreams `names`; panics past [`CHANGE_LIMIT`].
    fn wait_for_names(&self, host: &str, names: &[&str]) {
        let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
        if let Err(batch) = wait_for_batch(self.port, host, CHANGE_LIMIT, |batch| {
            batch.iter().cloned().collect::<BTreeSet<_>>() == want
        }) {
            panic!(
                "Host {host}: not answered by exactly {want:?} within {CHANGE_LIMIT:?}; last batch {batch:?}\n{}",
                self.report()
            );
        }
    }

    /// Waits until confd has made `n` more passes that changed nothing.
    fn wait_for_unchanged_passes(&self, n: usize) {
        let before = self.unchanged_passes();
        assert!(
            wait_until(CHANGE_LIMIT, || self.unchanged_passes() >= before + n),
            "confd did not make {n} more passes within {CHANGE_LIMIT:?}\n{}",
            self.report()
        );
    }

    /// The `server` lines of haproxy.cfg.
    fn servers(&self) -> Vec<String> {
        self.config()
            .lines()
            .filter(|l| l.trim_start().starts_with("server "))
            .map(|l| l.trim().to_string())
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // confd first, so that it reloads nothing that is going away.
        if let Some(confd) = self.confd.take() {
            confd.terminate(STOP_LIMIT);
        }
    }
}

/// The three web replicas on one free port (each on its own address), then
/// the api replica on a port of its own, last.
fn start_upstreams() -> (u16, Vec<Upstream>) {
    for _ in 0..20 {
        let port = free_port();
        let started: Result<Vec<Upstream>, _> = WEB
            .iter()
            .map(|(name, ip)| Upstream::start_at(name, *ip, port))
            .collect();
        let Ok(mut upstreams) = started else {
            continue;
        };
        match Upstream::start_at(API.0, API.1, free_port()) {
            Ok(api) => upstreams.push(api),
            Err(_) => continue,
        }
        return (port, upstreams);
    }
    panic!("no port free on 127.0.0.2-127.0.0.4 after 20 tries");
}

/// The example's template, its resource with a `reload_cmd` that also counts
/// reloads, the data file (file backend) and a resolv.conf of the test's own.
fn write_confdir(dir: &Path, haproxy_port: u16, web_port: u16) {
    let example = crate::common::repo_root().join("examples/haproxy-swarm-dns/confd");
    let confdir = dir.join("confd");
    fs::create_dir_all(confdir.join("conf.d")).expect("conf.d");
    fs::create_dir_all(confdir.join("templates")).expect("templates");
    fs::copy(
        example.join("templates/haproxy.cfg.tmpl"),
        confdir.join("templates/haproxy.cfg.tmpl"),
    )
    .expect("copy the example template");
    let resource = fs::read_to_string(example.join("conf.d/haproxy.toml")).expect("resource");
    let reload = "reload_cmd = 'kill -USR2 \"$(cat haproxy.pid)\"; sleep 0.3'";
    assert!(
        resource.contains(reload),
        "the example's reload_cmd changed"
    );
    let counted =
        "reload_cmd = 'echo reload >> reloads.log; kill -USR2 \"$(cat haproxy.pid)\"; sleep 0.3'";
    fs::write(
        confdir.join("conf.d/haproxy.toml"),
        resource.replace(reload, counted),
    )
    .expect("write the resource");
    fs::write(
        dir.join("services.yaml"),
        format!(
            "haproxy:\n  port: {haproxy_port}\nservices:\n  web:\n    domain: web.example.com\n    port: {web_port}\n  api:\n    domain: api.example.com\n    srv: http\n"
        ),
    )
    .expect("write the data");
    fs::write(dir.join("resolv.conf"), "options timeout:1 attempts:2\n").expect("resolv.conf");
}

#[test]
fn replicas_added_and_removed_in_dns_show_in_the_file_and_the_traffic() {
    let stack = Stack::start(&[WEB[0].1, WEB[1].1]);
    let servers = stack.servers();
    let web_port = stack.upstreams[0].port();
    let api_port = stack.upstreams[3].port();
    assert_eq!(
        servers,
        [
            format!("server api-1.swarm-127-0-0-5-{api_port} 127.0.0.5:{api_port} check"),
            format!("server web-127-0-0-2 127.0.0.2:{web_port} check"),
            format!("server web-127-0-0-3 127.0.0.3:{web_port} check"),
        ],
        "{}",
        stack.config()
    );
    let reloads = stack.reloads();
    assert_eq!(reloads, 1, "the first render reloads once");

    // A third replica appears in DNS: the next poll adds it.
    stack
        .dns()
        .set_hosts(&hosts(&[WEB[0].1, WEB[1].1, WEB[2].1]));
    stack.wait_for_names("web.example.com", &["web1", "web2", "web3"]);
    assert!(
        stack.config().contains(&format!(
            "server web-127-0-0-4 127.0.0.4:{web_port} check\n"
        )),
        "{}",
        stack.config()
    );
    assert_eq!(stack.reloads(), reloads + 1, "one change, one reload");

    // The first one leaves DNS: the next poll drops it, and it gets no more
    // requests.
    stack.dns().set_hosts(&hosts(&[WEB[1].1, WEB[2].1]));
    stack.wait_for_names("web.example.com", &["web2", "web3"]);
    assert!(!stack.config().contains("127.0.0.2"), "{}", stack.config());
    assert_eq!(stack.reloads(), reloads + 2);
    let hits = stack.upstreams[0].hits();
    let answers = batch(stack.port, "web.example.com", 18);
    assert!(
        !answers.iter().any(|a| a == "web1"),
        "web1 still gets requests: {answers:?}"
    );
    assert_eq!(stack.upstreams[0].hits(), hits);
    // The api service, found through SRV, was left alone.
    stack.wait_for_names("api.example.com", &[API.0]);
}

#[test]
fn dns_answers_in_a_new_order_rewrite_nothing_and_reload_nothing() {
    let all: Vec<[u8; 4]> = WEB.iter().map(|(_, ip)| *ip).collect();
    let mut stack = Stack::start(&all);
    let before = fs::read(stack.config_path()).expect("haproxy.cfg");
    let meta = fs::metadata(stack.config_path()).expect("stat haproxy.cfg");
    let (inode, modified) = (meta.ino(), meta.modified().expect("mtime"));
    let (reloads, loads) = (stack.reloads(), stack.haproxy.loads());

    // The server really answers in different orders (it rotates them).
    let orders: BTreeSet<Vec<[u8; 4]>> = (0..3)
        .map(|_| stack.dns().query_a("tasks.web").expect("dnsmasq answers"))
        .collect();
    assert!(orders.len() > 1, "dnsmasq kept one order: {orders:?}");
    for order in &orders {
        let set: BTreeSet<[u8; 4]> = order.iter().copied().collect();
        assert_eq!(set, all.iter().copied().collect(), "{orders:?}");
    }

    // Several polls, each asking DNS again: none writes or reloads.
    stack.wait_for_unchanged_passes(3);
    assert_same_file(&stack, &before, inode, modified);
    assert_eq!(stack.reloads(), reloads, "a reordered answer reloaded");
    assert_eq!(stack.haproxy.loads(), loads);

    // The DNS server goes away: lookups fail, the render fails, and the
    // file, HAProxy and the traffic stay as they were.
    drop(stack.dns.take());
    let log = stack.confd.as_ref().expect("confd runs");
    log.expect_log("step=render", CHANGE_LIMIT);
    let failure = log
        .stderr()
        .lines()
        .find(|l| l.contains("step=render"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        failure.contains("haproxy.cfg.tmpl") && failure.contains("tasks."),
        "the failure names neither the template nor the name asked: {failure}"
    );
    assert_same_file(&stack, &before, inode, modified);
    assert_eq!(stack.reloads(), reloads);
    stack.wait_for_names("web.example.com", &["web1", "web2", "web3"]);
}

fn assert_same_file(stack: &Stack, before: &[u8], inode: u64, modified: SystemTime) {
    let meta = fs::metadata(stack.config_path()).expect("stat haproxy.cfg");
    assert_eq!(meta.ino(), inode, "haproxy.cfg was replaced");
    assert_eq!(
        meta.modified().ok(),
        Some(modified),
        "haproxy.cfg was written"
    );
    assert_eq!(
        fs::read(stack.config_path()).expect("haproxy.cfg"),
        before,
        "{}",
        stack.report()
    );
}
