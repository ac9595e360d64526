//! An HAProxy pair behind keepalived's floating address, rendered and
//! validated (nothing configures an address on this machine): the shipped
//! example confdir `examples/haproxy-keepalived/confd` renders `haproxy.cfg`
//! and `keepalived.conf` from one set of keys, each host choosing its own
//! entry under `/lb/hosts` by `HOSTNAME`. Each file is validated by its real
//! program as the resource's `check_cmd` (`haproxy -c -f`, `keepalived -t
//! -f`), and the two hosts' files differ only in the VRRP state and priority.
//! Data a program rejects, and a host missing from the data, leave the files
//! as they were and reload nothing.
//!
//! `keepalived -t` needs what keepalived itself needs: the VRRP interface must
//! exist (the tests use this machine's first one that is not loopback) and,
//! with `script_user root`, it must run as root (as keepalived does; CI runs
//! the tests as root). Without root or without keepalived, its check is left
//! out and the test says so; the rest still runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{confd_command, repo_root};

/// The example's data, with the interface replaced by one that exists here.
fn data(interface: &str, lb1_priority: u32) -> String {
    let text = fs::read_to_string(repo_root().join("examples/haproxy-keepalived/data.yaml"))
        .expect("the example's data");
    assert!(text.contains("interface: eth0\n") && text.contains("priority: 150\n"));
    text.replace("interface: eth0\n", &format!("interface: {interface}\n"))
        .replace("priority: 150\n", &format!("priority: {lb1_priority}\n"))
}

/// A network interface of this machine that VRRP could use (not loopback).
fn interface() -> Option<String> {
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().next()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One host: a scratch directory holding a copy of the example confdir (its
/// reload commands replaced by a line appended to `reloads.log`), the data
/// and the rendered files.
struct Host {
    name: &'static str,
    dir: tempfile::TempDir,
}

impl Host {
    fn new(name: &'static str) -> Host {
        let dir = tempfile::tempdir().expect("scratch dir");
        let example = repo_root().join("examples/haproxy-keepalived/confd");
        let confdir = dir.path().join("confd");
        fs::create_dir_all(confdir.join("conf.d")).expect("conf.d");
        fs::create_dir_all(confdir.join("templates")).expect("templates");
        let keepalived_check = on_path("keepalived") && is_root() && interface().is_some();
        if !keepalived_check {
            eprintln!(
                "scenario_ha: keepalived, root or a network interface missing; keepalived -t left out"
            );
        }
        for file in ["haproxy.cfg.tmpl", "keepalived.conf.tmpl"] {
            fs::copy(
                example.join("templates").join(file),
                confdir.join("templates").join(file),
            )
            .expect("copy a template");
        }
        for (file, program) in [
            ("haproxy.toml", "haproxy"),
            ("keepalived.toml", "keepalived"),
        ] {
            let text = fs::read_to_string(example.join("conf.d").join(file)).expect("resource");
            let reload = format!("reload_cmd = \"systemctl reload {program}\"");
            assert!(text.contains(&reload), "{file}: its reload_cmd changed");
            // Never reload a service of this machine from a test.
            let mut text = text.replace(
                &reload,
                &format!("reload_cmd = \"echo {program} >> reloads.log\""),
            );
            if program == "keepalived" && !keepalived_check {
                text = text.replace("check_cmd = \"keepalived -t -f {{.src}}\"", "");
            }
            fs::write(confdir.join("conf.d").join(file), text).expect("write a resource");
        }
        Host { name, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `HOSTNAME=<name> confd -onetime -backend file -file data.yaml`.
    fn render(&self, data: &str) -> Output {
        fs::write(self.path("data.yaml"), data).expect("write the data");
        let confdir = self.path("confd").display().to_string();
        confd_command(
            self.dir.path(),
            [
                "-onetime",
                "-backend",
                "file",
                "-file",
                "data.yaml",
                "-confdir",
                &confdir,
            ],
        )
        .env("HOSTNAME", self.name)
        .output()
        .expect("confd runs")
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn reloads(&self) -> Vec<String> {
        fs::read_to_string(self.path("reloads.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn expect_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The lines of `a` and `b` that differ, pairwise (same line count assumed).
fn differing_lines(a: &str, b: &str) -> Vec<(String, String)> {
    assert_eq!(a.lines().count(), b.lines().count(), "{a}\n---\n{b}");
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.trim().to_string(), y.trim().to_string()))
        .collect()
}

#[test]
fn both_hosts_render_valid_files_that_differ_only_in_state_and_priority() {
    let interface = interface().unwrap_or_else(|| "eth0".to_string());
    let data = data(&interface, 150);
    let (lb1, lb2) = (Host::new("lb1"), Host::new("lb2"));
    for host in [&lb1, &lb2] {
        expect_success(&host.render(&data), host.name);
        // Both files were written, each after its check, and each reloaded.
        assert_eq!(host.reloads(), ["haproxy", "keepalived"], "{}", host.name);
    }
    assert_eq!(lb1.read("haproxy.cfg"), lb2.read("haproxy.cfg"));
    let haproxy = lb1.read("haproxy.cfg");
    assert!(haproxy.contains("    bind 192.0.2.10:80\n"), "{haproxy}");
    assert!(
        haproxy.contains("    server app1 10.0.0.11:8080 check\n"),
        "{haproxy}"
    );

    let (k1, k2) = (lb1.read("keepalived.conf"), lb2.read("keepalived.conf"));
    assert_eq!(
        differing_lines(&k1, &k2),
        [
            ("state MASTER".to_string(), "state BACKUP".to_string()),
            ("priority 150".to_string(), "priority 100".to_string()),
        ]
    );
    for line in [
        format!("    interface {interface}\n"),
        "        192.0.2.10/24\n".to_string(),
        "    script \"/usr/bin/pidof haproxy\"\n".to_string(),
        "        chk_haproxy\n".to_string(),
    ] {
        assert!(k1.contains(&line), "no {line:?} in\n{k1}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(lb1.path("keepalived.conf"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "keepalived.conf holds the VRRP password"
    );

    // Priorities swapped in the data: the other host becomes MASTER.
    let swapped = self::data(&interface, 90);
    expect_success(&lb1.render(&swapped), "lb1 with priority 90");
    assert!(lb1.read("keepalived.conf").contains("    state BACKUP\n"));
    assert_eq!(lb1.reloads(), ["haproxy", "keepalived", "keepalived"]);
}

#[test]
fn data_a_program_rejects_leaves_the_files_and_reloads_nothing() {
    let Some(interface) = interface() else {
        eprintln!("scenario_ha: no network interface; skipping");
        return;
    };
    if !(on_path("keepalived") && on_path("haproxy") && is_root()) {
        eprintln!("scenario_ha: needs keepalived, haproxy and root; skipping");
        return;
    }
    let lb1 = Host::new("lb1");
    expect_success(&lb1.render(&data(&interface, 150)), "lb1");
    let (haproxy, keepalived) = (lb1.read("haproxy.cfg"), lb1.read("keepalived.conf"));

    // keepalived takes priorities from 1 to 255.
    let out = lb1.render(&data(&interface, 300));
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("keepalived.toml") && l.contains("step=check"))
        .unwrap_or_else(|| panic!("no check failure for keepalived.toml:\n{log}"));
    assert!(line.contains("outside range [1, 255]"), "{line}");
    assert_eq!(lb1.read("keepalived.conf"), keepalived);

    // HAProxy does not take a server without a port.
    let bad = data(&interface, 150).replace("10.0.0.12:8080", "10.0.0.12:notaport");
    let out = lb1.render(&bad);
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("haproxy.toml") && l.contains("step=check")),
        "{log}"
    );
    assert_eq!(lb1.read("haproxy.cfg"), haproxy);
    assert_eq!(
        lb1.reloads(),
        ["haproxy", "keepalived"],
        "a rejected file reloaded"
    );
    assert_no_stage_files(lb1.dir.path());
}

#[test]
fn a_host_missing_from_the_data_writes_no_keepalived_conf() {
    let interface = interface().unwrap_or_else(|| "eth0".to_string());
    let lb3 = Host::new("lb3");
    let out = lb3.render(&data(&interface, 150));
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("keepalived.toml") && l.contains("step=render"))
        .unwrap_or_else(|| panic!("no render failure for keepalived.toml:\n{log}"));
    assert!(
        line.contains("keepalived.conf.tmpl:") && line.contains("/lb/hosts/lb3/priority"),
        "{line}"
    );
    assert!(!lb3.path("keepalived.conf").exists());
    assert_eq!(lb3.reloads(), ["haproxy"]);
    assert_no_stage_files(lb3.dir.path());
}

/// Only the files confd owns, the data, the confdir and the reload log.
fn assert_no_stage_files(dir: &Path) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list scratch")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !matches!(n.as_str(), "confd" | "data.yaml" | "reloads.log"))
        .collect();
    names.sort();
    names.retain(|n| n != "haproxy.cfg" && n != "keepalived.conf");
    assert!(names.is_empty(), "left behind: {names:?}");
}
