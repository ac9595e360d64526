//! Every flag of confd 0.16's `confd -h`, run through the binary: a confd
//! unit file must start, so each flag either works or is refused with a
//! message naming it and what is missing (exit 2), never as an unknown flag.

use std::fs;
use std::path::Path;

use crate::common::dns::FakeDns;
use crate::common::etcd::make_tls_files;
use crate::common::{Run, Scenario, free_port};

/// The flags `confd -h` of confd 0.16.0 lists, in its order.
const CONFD_0_16_FLAGS: [&str; 34] = [
    "app-id",
    "auth-token",
    "auth-type",
    "backend",
    "basic-auth",
    "client-ca-keys",
    "client-cert",
    "client-key",
    "confdir",
    "config-file",
    "file",
    "filter",
    "interval",
    "keep-stage-file",
    "log-level",
    "node",
    "noop",
    "onetime",
    "password",
    "path",
    "prefix",
    "role-id",
    "scheme",
    "secret-id",
    "secret-keyring",
    "separator",
    "srv-domain",
    "srv-record",
    "sync-only",
    "table",
    "user-id",
    "username",
    "version",
    "watch",
];

/// The flags of confd's vault backend, which the vault backend brings.
const VAULT_FLAGS: [&str; 6] = [
    "app-id",
    "auth-type",
    "path",
    "role-id",
    "secret-id",
    "user-id",
];

/// What a flag's run must show.
enum Expect {
    /// Rendered: exit 0 and the file written.
    Renders,
    /// Accepted and used: the run went on to the backend at this dead
    /// address, which failed (exit 1, naming it).
    ReachesBackend(String),
    /// Refused: exit 2 with one line starting with this text.
    Refused(&'static str),
    /// `-version`: exit 0, the version on stdout.
    PrintsVersion,
}

fn run(s: &Scenario, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run(&args)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn every_flag_of_confd_0_16_works_or_is_refused_by_name() {
    let mut s = Scenario::new();
    s.template("app.tmpl", "{{ getv(key=\"/app/name\") }}\n");
    s.resource("app", "app.txt", &["/app"], "");
    let data = s.write("data/data.yaml", "app:\n  name: shop\n");
    s.write("data/other.conf", "app:\n  name: from-conf\n");
    let data = data.display().to_string();
    let data_dir = s.path().join("data").display().to_string();
    let tls_dir = tempfile::tempdir().expect("dir");
    let tls = make_tls_files(tls_dir.path());
    let (ca, cert, key) = (
        tls.ca.display().to_string(),
        tls.client_cert.display().to_string(),
        tls.client_key.display().to_string(),
    );
    let dead_port = free_port();
    let dead = format!("127.0.0.1:{dead_port}");
    let dead_http = format!("http://{dead}");
    let dns = FakeDns::start(vec![(0, 0, dead_port, "127.0.0.1")]);
    s.set_env("CONFD_DNS_SERVER", &dns.address());

    let file = |extra: &[&str]| {
        let mut all = strings(&["-backend", "file", "-file", &data]);
        all.extend(strings(extra));
        all
    };
    let etcd = |extra: &[&str]| {
        let mut all = strings(&["-backend", "etcd", "-node", &dead_http]);
        all.extend(strings(extra));
        all
    };
    let https = format!("https://{dead}");
    let tls_etcd = |extra: &[&str]| {
        let mut all = strings(&["-backend", "etcd", "-node", &https]);
        all.extend(strings(extra));
        all
    };
    let reaches = Expect::ReachesBackend(dead.clone());
    let cases: Vec<(&str, Vec<String>, Expect)> = vec![
        (
            "auth-token",
            file(&["-auth-token", "t0ken"]),
            Expect::Renders,
        ),
        ("backend", file(&[]), Expect::Renders),
        (
            "basic-auth",
            etcd(&["-basic-auth", "-username", "u", "-password", "p"]),
            Expect::ReachesBackend(dead.clone()),
        ),
        (
            "client-ca-keys",
            tls_etcd(&["-client-ca-keys", &ca]),
            Expect::ReachesBackend(dead.clone()),
        ),
        (
            "client-cert",
            tls_etcd(&["-client-cert", &cert, "-client-key", &key]),
            Expect::ReachesBackend(dead.clone()),
        ),
        (
            "client-key",
            tls_etcd(&["-client-key", &key, "-client-cert", &cert]),
            Expect::ReachesBackend(dead.clone()),
        ),
        ("confdir", file(&[]), Expect::Renders),
        (
            "config-file",
            file(&["-config-file", "/dev/null"]),
            Expect::Renders,
        ),
        ("file", file(&[]), Expect::Renders),
        (
            "filter",
            strings(&["-backend", "file", "-file", &data_dir, "-filter", "*.conf"]),
            Expect::Renders,
        ),
        ("interval", file(&["-interval", "5"]), Expect::Renders),
        (
            "keep-stage-file",
            file(&["-keep-stage-file"]),
            Expect::Renders,
        ),
        ("log-level", file(&["-log-level", "debug"]), Expect::Renders),
        ("node", etcd(&[]), Expect::ReachesBackend(dead.clone())),
        ("noop", file(&["-noop"]), Expect::Renders),
        ("onetime", file(&[]), Expect::Renders),
        (
            "password",
            etcd(&["-username", "u", "-password", "p"]),
            Expect::ReachesBackend(dead.clone()),
        ),
        ("prefix", file(&["-prefix", "/"]), Expect::Renders),
        (
            "scheme",
            strings(&["-backend", "etcd", "-node", &dead, "-scheme", "http"]),
            Expect::ReachesBackend(dead.clone()),
        ),
        (
            "secret-keyring",
            file(&["-secret-keyring", "/etc/confd/keyring.asc"]),
            Expect::Refused("-secret-keyring: PGP-encrypted values"),
        ),
        (
            "separator",
            strings(&["-backend", "redis", "-node", &dead, "-separator", ":"]),
            Expect::ReachesBackend(dead.clone()),
        ),
        (
            "srv-domain",
            strings(&["-backend", "etcd", "-srv-domain", "example.com"]),
            Expect::ReachesBackend(dead.clone()),
        ),
        (
            "srv-record",
            strings(&["-backend", "etcd", "-srv-record", "_etcd._tcp.example.com"]),
            Expect::ReachesBackend(dead.clone()),
        ),
        ("sync-only", file(&["-sync-only"]), Expect::Renders),
        (
            "table",
            file(&["-table", "confd"]),
            Expect::Refused("-table: names a DynamoDB table"),
        ),
        (
            "username",
            etcd(&["-username", "u", "-password", "p"]),
            reaches,
        ),
        ("version", strings(&["-version"]), Expect::PrintsVersion),
        ("watch", file(&["-watch"]), Expect::Renders),
    ];

    let dest = s.out("app.txt");
    let confdir = s.confdir();
    for flag in CONFD_0_16_FLAGS {
        if VAULT_FLAGS.contains(&flag) {
            continue;
        }
        let Some((_, args, expect)) = cases.iter().find(|(name, _, _)| *name == flag) else {
            panic!("no case for -{flag}");
        };
        let mut all = strings(&["-onetime", "-confdir", &confdir]);
        all.extend(args.iter().cloned());
        let named = format!("-{flag}");
        assert!(all.contains(&named), "{named} is not in its case");
        let _ = fs::remove_file(&dest);
        let out = run(&s, &all);
        assert!(
            !out.stderr.contains("unexpected argument"),
            "-{flag}: {}",
            out.stderr
        );
        match expect {
            Expect::Renders => {
                out.expect_code(0);
                let want = if flag == "filter" {
                    "from-conf\n"
                } else {
                    "shop\n"
                };
                let got = fs::read_to_string(&dest).unwrap_or_default();
                // -noop writes nothing and prints the diff instead.
                if flag == "noop" {
                    assert!(out.stdout.contains("+shop"), "-noop: {}", out.stdout);
                } else {
                    assert_eq!(got, want, "-{flag}: {}", out.stderr);
                }
            }
            Expect::ReachesBackend(address) => {
                out.expect_code(1);
                assert!(
                    out.stderr.contains(address.as_str()),
                    "-{flag}: {}",
                    out.stderr
                );
            }
            Expect::Refused(start) => {
                out.expect_code(2);
                assert!(
                    out.line_with(start).contains("confd"),
                    "-{flag}: {}",
                    out.stderr
                );
                assert!(!Path::new(&dest).exists());
            }
            Expect::PrintsVersion => {
                out.expect_code(0);
                assert!(out.stdout.starts_with("confd "), "-version: {}", out.stdout);
            }
        }
    }

    // The vault backend's flags are checked once it exists.
    let probe = run(
        &s,
        &strings(&[
            "-onetime", "-confdir", &confdir, "-backend", "vault", "-node", &dead_http,
        ]),
    );
    if probe.stderr.contains("unknown backend \"vault\"") {
        eprintln!("no vault backend in this build: its flags ({VAULT_FLAGS:?}) are not checked");
        return;
    }
    for flag in VAULT_FLAGS {
        let args = strings(&[
            "-onetime",
            "-confdir",
            &confdir,
            "-backend",
            "vault",
            "-node",
            &dead_http,
            // A complete login first, so each flag is judged on its own
            // (given twice, the last value wins).
            "-auth-type",
            "app-role",
            "-role-id",
            "r",
            "-secret-id",
            "s",
            &format!("-{flag}"),
            "x",
        ]);
        let out = run(&s, &args);
        assert!(
            !out.stderr.contains("unexpected argument"),
            "-{flag}: {}",
            out.stderr
        );
        assert!(
            out.code == 1 || out.stderr.contains(&format!("-{flag}")),
            "-{flag}: {}",
            out.stderr
        );
    }
}

#[test]
fn confd_toml_takes_filter_and_separator_and_refuses_table_and_keyring() {
    let s = Scenario::new();
    s.template("app.tmpl", "{{ getv(key=\"/app/name\") }}\n");
    s.resource("app", "app.txt", &["/app"], "");
    s.write("data/a.yaml", "app:\n  name: yaml\n");
    s.write("data/b.conf", "app:\n  name: conf\n");
    let data = s.path().join("data").display().to_string();
    let config = |extra: &str| {
        let text = format!("backend = \"file\"\nfile = [{data:?}]\n{extra}");
        s.write("confd.toml", &text).display().to_string()
    };
    let confdir = s.confdir();
    // A separator in confd.toml is a redis setting, ignored by the file
    // backend (one file can serve several backends).
    let file = config("filter = \"*.conf\"\nseparator = \":\"\n");
    s.run(&["-onetime", "-confdir", &confdir, "-config-file", &file])
        .expect_code(0);
    assert_eq!(fs::read_to_string(s.out("app.txt")).expect("out"), "conf\n");
    for (setting, says) in [
        ("table = \"confd\"", "-table: names a DynamoDB table"),
        (
            "secret_keyring = \"/k.asc\"",
            "-secret-keyring: PGP-encrypted values",
        ),
        (
            "filter = \"[a-\"",
            "-filter: \"[a-\": a '[' class has no closing ']'",
        ),
    ] {
        let file = config(setting);
        let out = s.run(&["-onetime", "-confdir", &confdir, "-config-file", &file]);
        out.expect_code(2);
        out.line_with(says);
    }
    // On the command line, a redis flag with another backend is refused.
    let out = s.run(&[
        "-onetime",
        "-confdir",
        &confdir,
        "-backend",
        "env",
        "-separator",
        ":",
    ]);
    out.expect_code(2);
    out.line_with("-separator: only the redis backend uses this flag");
}
