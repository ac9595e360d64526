//! End-to-end tests of the `confd` binary with the env and file backends:
//! confd's classic integration cases, every flag that needs no network
//! backend, every bad input (one-line message, destination untouched, no
//! stage file left), `confd check`, and the polling daemon.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use crate::common::{Scenario, repo_root, wait_until};

// ---------------------------------------------------------------------------
// confd's classic integration cases (integration/confdir in the Go confd),
// rendered from the environment, byte for byte as confd renders them.

const NGINX_TAIL: &str = "\nserver {\n    server_name  www.example.com;\n    location / {\n        proxy_pass        http://app;\n        proxy_redirect    off;\n        proxy_set_header  Host             $host;\n        proxy_set_header  X-Real-IP        $remote_addr;\n        proxy_set_header  X-Forwarded-For  $proxy_add_x_forwarded_for;\n   }\n}\n";

fn classic_scenario() -> Scenario {
    let mut s = Scenario::new();
    for (name, value) in [
        ("HOSTNAME", "localhost"),
        ("KEY", "foobar"),
        ("DATABASE_HOST", "127.0.0.1"),
        ("DATABASE_PASSWORD", "p@sSw0rd"),
        ("DATABASE_PORT", "3306"),
        ("DATABASE_USERNAME", "confd"),
        ("UPSTREAM_APP1", "10.0.1.10:8080"),
        ("UPSTREAM_APP2", "10.0.1.11:8080"),
        ("NESTED_EAST_APP1", "10.0.1.10:8080"),
        ("NESTED_WEST_APP2", "10.0.1.11:8080"),
        ("PREFIX_DATABASE_HOST", "127.0.0.1"),
        ("PREFIX_DATABASE_PASSWORD", "p@sSw0rd"),
        ("PREFIX_DATABASE_PORT", "3306"),
        ("PREFIX_DATABASE_USERNAME", "confd"),
    ] {
        s.set_env(name, value);
    }
    s.template(
        "basic.tmpl",
        "hostname: {{ getenv(key=\"HOSTNAME\") }}\n[database]\nhost={{ getv(key=\"/database/host\") }}\npassword={{ getv(key=\"/database/password\") }}\nport={{ getv(key=\"/database/port\") }}\nusername={{ getv(key=\"/database/username\") }}\n",
    );
    s.resource("basic", "basic.conf", &["/database"], "mode = \"0644\"\n");
    s.template(
        "exists.tmpl",
        "{% if exists(key=\"/key\") %}\n    value: {{ getv(key=\"/key\") }}\n{% endif %}\n\n{% if exists(key=\"/doesnotexist\") %}\n    This line will not be printed\n    value: {{ getv(key=\"/key\") }}\n{% endif %}\n",
    );
    s.resource("exists", "exists.conf", &["/key", "/doesnotexist"], "");
    s.template(
        "iteration.tmpl",
        &format!(
            "upstream app {{\n{{% for upstream in gets(key=\"/upstream/*\") %}}  server {{{{ upstream.value }}}};\n{{% endfor %}}}}\n{NGINX_TAIL}"
        ),
    );
    s.resource("iteration", "iteration.conf", &["/upstream"], "");
    s.template(
        "nested.tmpl",
        &format!(
            "upstream app {{\n{{% for dir in lsdir(key=\"/nested\") %}}{{% for server in gets(key=\"/nested/\" ~ dir ~ \"/*\") %}}  server {{{{ server.value }}}};\n{{% endfor %}}{{% endfor %}}}}\n{NGINX_TAIL}"
        ),
    );
    s.resource("nested", "nested.conf", &["/nested"], "");
    s
}

const EXPECTED_BASIC: &str = "hostname: localhost\n[database]\nhost=127.0.0.1\npassword=p@sSw0rd\nport=3306\nusername=confd\n";

#[test]
fn classic_confd_integration_cases_render_byte_for_byte() {
    let s = classic_scenario();
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("basic.conf")).expect("basic"),
        EXPECTED_BASIC
    );
    // confd's integration/expect/iteration.conf.
    let iteration = format!(
        "upstream app {{\n  server 10.0.1.10:8080;\n  server 10.0.1.11:8080;\n}}\n{NGINX_TAIL}"
    );
    assert_eq!(
        fs::read_to_string(s.out("iteration.conf")).expect("iteration"),
        iteration
    );
    assert_eq!(
        fs::read_to_string(s.out("nested.conf")).expect("nested"),
        iteration
    );
    // What Go's text/template prints for confd's exists-test.conf.tmpl.
    assert_eq!(
        fs::read_to_string(s.out("exists.conf")).expect("exists"),
        "\n    value: foobar\n\n\n\n"
    );
    assert_eq!(
        fs::metadata(s.out("basic.conf")).expect("meta").mode() & 0o777,
        0o644
    );
}

#[test]
fn global_prefix_is_stripped_inside_templates() {
    let s = classic_scenario();
    fs::remove_file(s.path().join("conf.d/exists.toml")).expect("rm");
    fs::remove_file(s.path().join("conf.d/iteration.toml")).expect("rm");
    fs::remove_file(s.path().join("conf.d/nested.toml")).expect("rm");
    s.onetime_env(&["-prefix", "/prefix"]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("basic.conf")).expect("basic"),
        EXPECTED_BASIC
    );
}

#[test]
fn env_prefix_does_not_overmatch_and_double_underscore_is_literal() {
    let mut s = Scenario::new();
    s.set_env("APP", "root")
        .set_env("APP_PORT", "80")
        .set_env("APPLE_PIE", "no")
        .set_env("DB_MAX__CONNS", "100");
    s.template(
        "app.tmpl",
        "{{ getv(key=\"/app\") }} {{ ls(key=\"/app\") | join(sep=\",\") }} {{ exists(key=\"/apple/pie\") }} {{ getv(key=\"/db/max_conns\") }}\n",
    );
    s.resource("app", "app.conf", &["/app", "/db"], "");
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("app.conf")).expect("app"),
        "root port false 100\n"
    );
}

// ---------------------------------------------------------------------------
// The README's quick start, as a new user runs it.

#[test]
fn quick_start_renders_the_sample_haproxy_config() {
    let work = tempfile::tempdir().expect("tempdir");
    fs::create_dir(work.path().join("out")).expect("out");
    let root = repo_root();
    let run = std::process::Command::new(crate::common::confd_bin())
        .args(["-onetime", "-backend", "file", "-file"])
        .arg(root.join("confd/services.yaml"))
        .arg("-confdir")
        .arg(root.join("confd"))
        .current_dir(work.path())
        .output()
        .expect("runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let cfg = fs::read_to_string(work.path().join("out/haproxy.cfg")).expect("rendered");
    assert!(cfg.contains("acl host_shop_example_com hdr(host) -i shop.example.com"));
    assert!(cfg.contains("backend shop_example_com_cluster"));
    assert!(cfg.contains("    server web2 127.0.0.1:8082 check\n"));
    assert!(cfg.ends_with("check\n"));
}

// ---------------------------------------------------------------------------
// Flags, environment and confd.toml.

fn hello_scenario() -> Scenario {
    let mut s = Scenario::new();
    s.set_env("GREETING", "hello");
    s.template("hello.tmpl", "{{ getv(key=\"/greeting\") }}\n");
    s.resource("hello", "hello.txt", &["/greeting"], "");
    s
}

#[test]
fn go_style_gnu_style_and_environment_are_equivalent() {
    for args in [
        vec!["-onetime", "-backend", "env"],
        vec!["--onetime", "--backend=env"],
        vec!["-onetime=true", "-backend=env"],
    ] {
        let s = hello_scenario();
        let confdir = s.confdir();
        let mut all = args.clone();
        all.extend(["-confdir", confdir.as_str()]);
        s.run(&all).expect_code(0);
        assert_eq!(
            fs::read_to_string(s.out("hello.txt")).expect("out"),
            "hello\n"
        );
    }
    let mut s = hello_scenario();
    let confdir = s.confdir();
    s.set_env("CONFD_ONETIME", "true")
        .set_env("CONFD_BACKEND", "env")
        .set_env("CONFD_CONFDIR", &confdir);
    s.run(&[]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("hello.txt")).expect("out"),
        "hello\n"
    );
}

#[test]
fn precedence_is_flag_then_environment_then_config_file() {
    let mut s = hello_scenario();
    let confdir = s.confdir();
    // The file says backend file with a data file that does not exist; the
    // environment overrides it with env; a flag would override both.
    let config = s.write(
        "confd.toml",
        &format!(
            "backend = \"file\"\nfile = [\"/nonexistent.yaml\"]\nconfdir = {confdir:?}\nonetime = true\nlog-level = \"debug\"\n"
        ),
    );
    let config = config.display().to_string();
    s.set_env("CONFD_BACKEND", "env");
    // -file in the file is tolerated for the env backend (one file can serve
    // several backends); the flag value wins over the environment's.
    s.run(&["-config-file", &config]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("hello.txt")).expect("out"),
        "hello\n"
    );
    let run = s.run(&["-config-file", &config, "-backend", "file"]);
    run.expect_code(1);
    assert!(run.line_with("/nonexistent.yaml").contains("file backend"));
}

#[test]
fn missing_named_config_file_is_an_error_but_default_is_not() {
    let s = hello_scenario();
    let run = s.onetime_env(&["-config-file", "/nonexistent/confd.toml"]);
    run.expect_code(2);
    assert!(run.stderr.contains("/nonexistent/confd.toml"));
    s.onetime_env(&[]).expect_code(0);
}

#[test]
fn config_file_unknown_key_is_named() {
    let s = hello_scenario();
    let config = s.write("confd.toml", "backend = \"env\"\nbakend = \"x\"\n");
    let run = s.onetime_env(&["-config-file", &config.display().to_string()]);
    run.expect_code(2);
    let line = run.line_with("confd.toml");
    assert!(line.contains(":2:1:") && line.contains("bakend"), "{line}");
}

#[test]
fn version_and_help_exit_zero() {
    let s = Scenario::new();
    let run = s.run(&["-version"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("confd "), "{}", run.stdout);
    s.run(&["--version"]).expect_code(0);
    let help = s.run(&["-help"]);
    help.expect_code(0);
    assert!(help.stdout.contains("-onetime") || help.stdout.contains("--onetime"));
}

#[test]
fn bad_usage_exits_2() {
    let s = hello_scenario();
    s.run(&["-nosuchflag"]).expect_code(2);
    s.onetime_env(&["-interval", "soon"]).expect_code(2);
    let run = s.onetime_env(&["-interval", "0"]);
    run.expect_code(2);
    assert!(run.stderr.contains("-interval"));
    let run = s.onetime_env(&["-log-level", "loud"]);
    run.expect_code(2);
    assert!(run.stderr.contains("-log-level"));
}

#[test]
fn unknown_backend_lists_the_valid_ones() {
    let s = hello_scenario();
    let run = s.run(&[
        "-onetime",
        "-backend",
        "zookeeper",
        "-confdir",
        &s.confdir(),
    ]);
    run.expect_code(2);
    let line = run.line_with("zookeeper");
    assert!(
        line.contains("etcd, etcdv3, consul, redis, env, file"),
        "{line}"
    );
    assert_eq!(run.stderr.lines().count(), 1);
}

#[test]
fn network_flags_are_rejected_for_local_backends() {
    let s = hello_scenario();
    for args in [
        vec!["-node", "http://127.0.0.1:2379"],
        vec!["-username", "u"],
        vec!["-client-cert", "/c.pem"],
        vec!["-srv-domain", "example.com"],
        vec!["-basic-auth"],
    ] {
        let run = s.onetime_env(&args);
        run.expect_code(2);
        assert!(run.line_with(args[0]).contains("not the env backend"));
    }
    let run = s.onetime_env(&["-file", "x.yaml"]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("-file: only the file backend uses this flag")
    );
    let run = s.run(&["-onetime", "-backend", "file", "-confdir", &s.confdir()]);
    run.expect_code(2);
    assert!(run.stderr.contains("needs at least one -file"));
}

// ---------------------------------------------------------------------------
// Sync rules.

#[test]
fn second_pass_is_unchanged_and_runs_no_reload() {
    let s = hello_scenario();
    let marker = s.out("reloads");
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        &format!("reload_cmd = \"echo reload >> {}\"\n", marker.display()),
    );
    s.onetime_env(&[]).expect_code(0);
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(fs::read_to_string(&marker).expect("reloaded"), "reload\n");
}

#[test]
fn resources_sharing_a_reload_command_reload_once() {
    let mut s = Scenario::new();
    s.set_env("A", "1").set_env("B", "2");
    let marker = s.out("reloads");
    let reload = format!("reload_cmd = \"echo r >> {}\"\n", marker.display());
    s.template("a.tmpl", "{{ getv(key=\"/a\") }}\n");
    s.template("b.tmpl", "{{ getv(key=\"/b\") }}\n");
    s.resource("a", "a.txt", &["/a"], &reload);
    s.resource("b", "b.txt", &["/b"], &reload);
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(fs::read_to_string(&marker).expect("reloaded"), "r\n");
}

#[test]
fn reload_sees_dest_and_check_sees_the_staged_file() {
    let s = hello_scenario();
    let log = s.out("log");
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        &format!(
            "check_cmd = \"grep -q hello {{{{.src}}}} && echo checked {{{{ src }}}} >> {log}\"\nreload_cmd = \"cat {{{{.dest}}}} >> {log}\"\n",
            log = log.display()
        ),
    );
    s.onetime_env(&[]).expect_code(0);
    let text = fs::read_to_string(&log).expect("log");
    let mut lines = text.lines();
    let checked = lines.next().expect("check line");
    assert!(
        checked.starts_with("checked ") && checked.contains("/out/.hello.txt."),
        "{checked}"
    );
    assert_eq!(lines.next(), Some("hello"));
}

#[test]
fn mode_644_means_octal_and_owner_by_name() {
    let s = hello_scenario();
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        "mode = \"640\"\nowner = \"root\"\ngroup = \"root\"\n",
    );
    s.onetime_env(&[]).expect_code(0);
    let meta = fs::metadata(s.out("hello.txt")).expect("meta");
    assert_eq!(meta.mode() & 0o7777, 0o640);
    // Changing only the mode is a change too.
    s.resource("hello", "hello.txt", &["/greeting"], "mode = \"0600\"\n");
    let run = s.onetime_env(&["-log-level", "info"]);
    run.expect_code(0);
    assert!(run.stderr.contains("updated"));
    assert_eq!(
        fs::metadata(s.out("hello.txt")).expect("meta").mode() & 0o7777,
        0o600
    );
}

#[test]
fn noop_prints_a_diff_and_writes_and_runs_nothing() {
    let s = hello_scenario();
    let marker = s.out("ran");
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        &format!(
            "check_cmd = \"touch {m}\"\nreload_cmd = \"touch {m}\"\n",
            m = marker.display()
        ),
    );
    fs::write(s.out("hello.txt"), "goodbye\n").expect("write");
    let run = s.onetime_env(&["-noop"]);
    run.expect_code(0);
    assert!(run.stdout.contains("-goodbye\n+hello\n"), "{}", run.stdout);
    assert_eq!(
        fs::read_to_string(s.out("hello.txt")).expect("kept"),
        "goodbye\n"
    );
    assert!(!marker.exists());
    assert_eq!(s.out_entries(), vec!["hello.txt"]);
}

#[test]
fn sync_only_writes_but_runs_no_commands() {
    let s = hello_scenario();
    let marker = s.out("ran");
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        &format!(
            "check_cmd = \"false\"\nreload_cmd = \"touch {}\"\n",
            marker.display()
        ),
    );
    s.onetime_env(&["-sync-only"]).expect_code(0);
    assert_eq!(
        fs::read_to_string(s.out("hello.txt")).expect("out"),
        "hello\n"
    );
    assert!(!marker.exists());
}

#[test]
fn keep_stage_file_keeps_the_rejected_stage() {
    let s = hello_scenario();
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        "check_cmd = \"false\"\n",
    );
    s.onetime_env(&["-keep-stage-file"]).expect_code(1);
    let entries = s.out_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with(".hello.txt."));
    assert_eq!(
        fs::read_to_string(s.out(&entries[0])).expect("stage"),
        "hello\n"
    );
}

#[test]
fn one_failing_resource_does_not_stop_the_others() {
    let mut s = Scenario::new();
    s.set_env("A", "1");
    s.template("a.tmpl", "{{ getv(key=\"/a\") }}\n");
    s.template("b.tmpl", "{{ getv(key=\"/b\") }}\n");
    s.resource("a", "a.txt", &["/a"], "");
    s.resource("b", "b.txt", &["/b"], "");
    let run = s.onetime_env(&[]);
    run.expect_code(1);
    assert_eq!(fs::read_to_string(s.out("a.txt")).expect("a"), "1\n");
    assert!(!s.out("b.txt").exists());
}

#[test]
fn wait_keys_retries_until_the_data_appears() {
    let s = hello_scenario();
    let data = s.path().join("data.yaml");
    let confdir = s.confdir();
    let data_arg = data.display().to_string();
    let args = [
        "-onetime",
        "-backend",
        "file",
        "-file",
        &data_arg,
        "-confdir",
        &confdir,
        "-wait-keys",
        "20s",
    ];
    let mut child = s.command(&args).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(600));
    fs::write(&data, "greeting: late\n").expect("write data");
    let Some(status) = crate::common::wait_for_exit(&mut child, Duration::from_secs(20)) else {
        panic!("confd -wait-keys did not finish");
    };
    assert!(status.success());
    assert_eq!(
        fs::read_to_string(s.out("hello.txt")).expect("out"),
        "late\n"
    );
    // Without -wait-keys the same missing file fails at once.
    fs::remove_file(&data).expect("rm");
    fs::remove_file(s.out("hello.txt")).expect("rm");
    let run = s.run(&args[..7]);
    run.expect_code(1);
}

#[test]
fn wait_keys_gives_up_at_the_deadline() {
    let s = hello_scenario();
    let started = Instant::now();
    let run = s.run(&[
        "-onetime",
        "-backend",
        "file",
        "-file",
        "/nonexistent.yaml",
        "-confdir",
        &s.confdir(),
        "-wait-keys",
        "1s",
    ]);
    run.expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(10));
}

// ---------------------------------------------------------------------------
// Bad input: a clear one-line message naming the file/key, the destination
// byte-for-byte unchanged, no stage file left behind.

const GOOD: &str = "the last good file\n";

fn broken(setup: impl FnOnce(&Scenario)) -> (Scenario, crate::common::Run) {
    let s = hello_scenario();
    fs::write(s.out("hello.txt"), GOOD).expect("seed dest");
    setup(&s);
    let run = s.onetime_env(&[]);
    (s, run)
}

fn assert_untouched(s: &Scenario) {
    assert_eq!(fs::read_to_string(s.out("hello.txt")).expect("dest"), GOOD);
    assert_eq!(s.out_entries(), vec!["hello.txt"]);
}

#[test]
fn malformed_toml() {
    let (s, run) = broken(|s| {
        s.write("conf.d/hello.toml", "[template\nsrc = \"hello.tmpl\"\n");
    });
    run.expect_code(2);
    let line = run.line_with("hello.toml");
    assert!(line.contains("conf.d/hello.toml:1:"), "{line}");
    assert_untouched(&s);
}

#[test]
fn unknown_resource_key() {
    let (s, run) = broken(|s| {
        s.resource(
            "hello",
            "hello.txt",
            &["/greeting"],
            "reload_command = \"x\"\n",
        );
    });
    run.expect_code(2);
    let line = run.line_with("reload_command");
    assert!(line.contains("conf.d/hello.toml:5:1:"), "{line}");
    assert_untouched(&s);
}

#[test]
fn bad_mode_and_unknown_owner() {
    let (s, run) = broken(|s| {
        s.resource("hello", "hello.txt", &["/greeting"], "mode = \"0999\"\n");
    });
    run.expect_code(2);
    assert!(run.line_with("hello.toml:5:8:").contains("octal"));
    assert_untouched(&s);
    let (s, run) = broken(|s| {
        s.resource(
            "hello",
            "hello.txt",
            &["/greeting"],
            "owner = \"no-such-user-here\"\n",
        );
    });
    run.expect_code(2);
    assert!(run.line_with("no-such-user-here").contains("no such user"));
    assert_untouched(&s);
}

#[test]
fn missing_template_file() {
    let (s, run) = broken(|s| {
        fs::remove_file(s.path().join("templates/hello.tmpl")).expect("rm");
    });
    run.expect_code(1);
    let line = run.line_with("hello.tmpl");
    assert!(
        line.contains("cannot read template: no such file"),
        "{line}"
    );
    assert_untouched(&s);
}

#[test]
fn template_syntax_error() {
    let (s, run) = broken(|s| {
        s.template("hello.tmpl", "line one\n{% for x in %}\n");
    });
    run.expect_code(1);
    let line = run.line_with("hello.tmpl:2:");
    assert!(line.contains("resource=hello.toml"), "{line}");
    assert_untouched(&s);
}

#[test]
fn missing_key() {
    let (s, run) = broken(|s| {
        s.template(
            "hello.tmpl",
            "{{ getv(key=\"/greeting\") }}\n{{ getv(key=\"/greeting/missing\") }}\n",
        );
    });
    run.expect_code(1);
    let line = run.line_with("/greeting/missing");
    assert!(line.contains("hello.tmpl:2:"), "{line}");
    assert_untouched(&s);
}

#[test]
fn bad_helper_argument() {
    let (s, run) = broken(|s| {
        s.template("hello.tmpl", "{{ getv(key=\"/greeting\") | atoi }}\n");
    });
    run.expect_code(1);
    assert!(
        run.line_with("atoi")
            .contains("\"hello\" is not an integer")
    );
    assert_untouched(&s);
    let (s, run) = broken(|s| {
        s.template("hello.tmpl", "{{ div(a=1, b=0) }}\n");
    });
    run.expect_code(1);
    assert!(run.line_with("division by zero").contains("hello.tmpl:1:"));
    assert_untouched(&s);
}

#[test]
fn failing_check_cmd_shows_its_output() {
    let (s, run) = broken(|s| {
        s.resource(
            "hello",
            "hello.txt",
            &["/greeting"],
            "check_cmd = \"echo 'line 3: unknown keyword' >&2; exit 1\"\n",
        );
    });
    run.expect_code(1);
    let line = run.line_with("check_cmd rejected");
    assert!(
        line.contains("unknown keyword") && line.contains("exit status 1"),
        "{line}"
    );
    assert_untouched(&s);
}

#[test]
fn failing_reload_cmd_is_a_failure_with_its_output() {
    let (s, run) = broken(|s| {
        s.resource(
            "hello",
            "hello.txt",
            &["/greeting"],
            "reload_cmd = \"echo 'service not running'; exit 7\"\n",
        );
    });
    run.expect_code(1);
    let line = run.line_with("reload_cmd failed");
    assert!(
        line.contains("service not running") && line.contains("exit status 7"),
        "{line}"
    );
    // The swap happens before the reload (SPEC §6.5): the new file is in place.
    assert_eq!(
        fs::read_to_string(s.out("hello.txt")).expect("dest"),
        "hello\n"
    );
    assert_eq!(s.out_entries(), vec!["hello.txt"]);
}

#[test]
fn reload_that_hangs_is_killed_at_its_timeout() {
    let started = Instant::now();
    let (_s, run) = broken(|s| {
        s.resource(
            "hello",
            "hello.txt",
            &["/greeting"],
            "reload_cmd = \"sleep 60\"\ncommand_timeout = \"500ms\"\n",
        );
    });
    run.expect_code(1);
    assert!(
        run.line_with("did not finish within 500ms")
            .contains("sleep 60")
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn check_that_hangs_is_killed_and_dest_kept() {
    let (s, run) = broken(|s| {
        s.resource(
            "hello",
            "hello.txt",
            &["/greeting"],
            "check_cmd = \"sleep 60\"\ncommand_timeout = \"300ms\"\n",
        );
    });
    run.expect_code(1);
    assert!(run.line_with("did not finish").contains("check_cmd"));
    assert_untouched(&s);
}

#[test]
fn unwritable_destination_directory() {
    let (s, _) = broken(|_| {});
    fs::write(s.out("hello.txt"), GOOD).expect("reset dest");
    s.open_to_everyone();
    let mut command = s.command(&["-onetime", "-backend", "env", "-confdir", &s.confdir()]);
    if nix_is_root() {
        // Root ignores directory permissions: run as nobody instead.
        use std::os::unix::process::CommandExt;
        command.uid(65534).gid(65534);
    } else {
        fs::set_permissions(s.path().join("out"), fs::Permissions::from_mode(0o555))
            .expect("chmod");
    }
    let output = command.output().expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("cannot stage"))
        .unwrap_or_else(|| panic!("no stage error in {stderr}"));
    assert!(
        line.contains("permission denied") && line.contains("hello.txt"),
        "{line}"
    );
    fs::set_permissions(s.path().join("out"), fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_untouched(&s);
}

fn nix_is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn min_keys_refuses_to_write_from_too_little_data() {
    let (s, run) = broken(|s| {
        s.resource("hello", "hello.txt", &["/greeting"], "min_keys = 2\n");
    });
    run.expect_code(1);
    let line = run.line_with("min_keys");
    assert!(
        line.contains("sees 1 keys under /greeting") && line.contains("hello.toml"),
        "{line}"
    );
    assert_untouched(&s);
}

#[test]
fn unreadable_data_file_leaves_every_destination() {
    let s = hello_scenario();
    fs::write(s.out("hello.txt"), GOOD).expect("seed");
    s.write("data.yaml", "greeting: [unclosed\n");
    let run = s.run(&[
        "-onetime",
        "-backend",
        "file",
        "-file",
        "data.yaml",
        "-confdir",
        &s.confdir(),
    ]);
    run.expect_code(1);
    assert!(run.line_with("data.yaml").contains("file backend"));
    assert_untouched(&s);
}

#[test]
fn missing_conf_d_is_a_configuration_error() {
    let s = Scenario::new();
    let run = s.run(&["-onetime", "-backend", "env", "-confdir", "/nonexistent"]);
    run.expect_code(2);
    assert!(
        run.line_with("/nonexistent/conf.d")
            .contains("no such directory")
    );
}

// ---------------------------------------------------------------------------
// `confd check`.

#[test]
fn check_passes_a_clean_confdir() {
    let s = hello_scenario();
    let fixtures = s.write("fixtures.yaml", "greeting: hi\n");
    let run = s.run(&[
        "check",
        "-confdir",
        &s.confdir(),
        "-file",
        &fixtures.display().to_string(),
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "");
    assert!(!s.out("hello.txt").exists());
}

#[test]
fn check_reports_every_problem_as_path_line_col() {
    let s = hello_scenario();
    s.write(
        "conf.d/broken.toml",
        "[template]\nsrc = \"x.tmpl\"\ndest = \"/x\"\nkeys = [\"/a\"]\nbogus = 1\n",
    );
    s.template("syntax.tmpl", "ok\n{% if %}\n");
    s.resource("syntax", "syntax.txt", &["/a"], "");
    s.template("missing.tmpl", "{{ getv(key=\"/a/b\") }}\n");
    s.resource("missing", "missing.txt", &["/a"], "");
    let fixtures = s.write("fixtures.yaml", "greeting: hi\n");
    let run = s.run(&[
        "check",
        "-confdir",
        &s.confdir(),
        "-file",
        &fixtures.display().to_string(),
    ]);
    run.expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("conf.d/broken.toml:5:1:") && l.contains("bogus"))
    );
    assert!(lines.iter().any(|l| l.contains("syntax.tmpl:2:")));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("missing.tmpl:1:") && l.contains("/a/b"))
    );
    // Without fixtures only parsing and compiling are checked.
    let run = s.run(&["check", "-confdir", &s.confdir()]);
    run.expect_code(1);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
}

#[test]
fn check_the_shipped_confdir() {
    let root = repo_root();
    let s = Scenario::new();
    let run = s.run(&[
        "check",
        "--confdir",
        &root.join("confd").display().to_string(),
        "--file",
        &root.join("confd/services.yaml").display().to_string(),
    ]);
    run.expect_code(0);
}

// ---------------------------------------------------------------------------
// The daemon (polling).

#[test]
fn daemon_polls_picks_up_changes_and_stops_on_sigterm() {
    let s = hello_scenario();
    let data = s.write("data.yaml", "greeting: one\n");
    let mut child = s
        .command(&[
            "-backend",
            "file",
            "-file",
            &data.display().to_string(),
            "-confdir",
            &s.confdir(),
            "-interval",
            "1",
        ])
        .spawn()
        .expect("spawn");
    let out = s.out("hello.txt");
    let read = |expected: &str| {
        fs::read_to_string(&out)
            .map(|t| t == expected)
            .unwrap_or(false)
    };
    let first = wait_until(Duration::from_secs(10), || read("one\n"));
    fs::write(&data, "greeting: two\n").expect("update data");
    let second = first && wait_until(Duration::from_secs(10), || read("two\n"));
    crate::common::send_signal(&child, "TERM");
    let status = crate::common::wait_for_exit(&mut child, Duration::from_secs(10));
    assert!(first, "first render never happened");
    assert!(second, "change never picked up");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "daemon ignored SIGTERM"
    );
}

#[test]
fn daemon_watch_mode_follows_file_edits_at_once() {
    let s = hello_scenario();
    let data = s.write("data.yaml", "greeting: one\n");
    let mut child = s
        .command(&[
            "-backend",
            "file",
            "-file",
            &data.display().to_string(),
            "-confdir",
            &s.confdir(),
            "-watch",
        ])
        .spawn()
        .expect("spawn");
    let out = s.out("hello.txt");
    let read = |expected: &str| {
        fs::read_to_string(&out)
            .map(|t| t == expected)
            .unwrap_or(false)
    };
    let first = wait_until(Duration::from_secs(10), || read("one\n"));
    // An in-place write, then a replace-by-rename as editors do; the default
    // interval (600 s) rules polling out.
    fs::write(&data, "greeting: two\n").expect("write");
    let second = first && wait_until(Duration::from_secs(5), || read("two\n"));
    let replacement = s.write("data.yaml.new", "greeting: three\n");
    fs::rename(&replacement, &data).expect("rename");
    let third = second && wait_until(Duration::from_secs(5), || read("three\n"));
    crate::common::send_signal(&child, "TERM");
    let status = crate::common::wait_for_exit(&mut child, Duration::from_secs(10));
    assert!(
        first && second && third,
        "edits not followed: {first} {second} {third}"
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[test]
fn identical_templates_share_a_render_but_keep_their_own_errors() {
    let mut s = Scenario::new();
    s.set_env("P_A_X", "1").set_env("Q_A_X", "2");
    let text = "{{ getv(key=\"/a/x\") }}\n";
    for name in ["one", "two", "three"] {
        s.template(&format!("{name}.tmpl"), text);
    }
    s.resource("one", "one.txt", &["/a"], "prefix = \"/p\"\n");
    s.resource("two", "two.txt", &["/a"], "prefix = \"/p\"\n");
    s.resource("three", "three.txt", &["/a"], "prefix = \"/q\"\n");
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(fs::read_to_string(s.out("one.txt")).expect("one"), "1\n");
    assert_eq!(fs::read_to_string(s.out("two.txt")).expect("two"), "1\n");
    assert_eq!(
        fs::read_to_string(s.out("three.txt")).expect("three"),
        "2\n"
    );
    // The same failing render: each error names its own template file.
    for name in ["one", "two", "three"] {
        s.template(&format!("{name}.tmpl"), "{{ getv(key=\"/a/missing\") }}\n");
    }
    let run = s.onetime_env(&[]);
    run.expect_code(1);
    for name in ["one", "two", "three"] {
        let line = run.line_with(&format!("resource={name}.toml"));
        assert!(line.contains(&format!("{name}.tmpl:1:")), "{line}");
    }
}

/// With -watch, an edit to the data file is one read for every prefix that
/// needs it, not one read per prefix (each read parses every file).
#[test]
fn daemon_watch_reads_all_changed_prefixes_of_a_file_at_once() {
    use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT, args};
    let s = Scenario::new();
    s.template("a.tmpl", "{{ getv(key=\"/a/x\") }}\n");
    s.template("b.tmpl", "{{ getv(key=\"/b/x\") }}\n");
    s.resource("a", "a.txt", &["/a"], "");
    s.resource("b", "b.txt", &["/b"], "");
    let data = s.write("data.yaml", "a: {x: '1'}\nb: {x: '1'}\n");
    let file = data.display().to_string();
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            "file",
            &[] as &[&str],
            &["-file", &file, "-watch", "-log-level", "debug"],
        ),
    );
    confd.expect_file(&s.out("a.txt"), "1\n", START_LIMIT);
    confd.expect_file(&s.out("b.txt"), "1\n", START_LIMIT);
    let reads = confd.lines_with("read snapshot");
    fs::write(&data, "a: {x: '2'}\nb: {x: '2'}\n").expect("edit");
    confd.expect_file(&s.out("a.txt"), "2\n", CHANGE_LIMIT);
    confd.expect_file(&s.out("b.txt"), "2\n", CHANGE_LIMIT);
    // One edit may come as more than one notification (a write in several
    // steps), but each read covers both prefixes.
    let after = confd.lines_with("read snapshot");
    assert!(after > reads, "{}", confd.stderr());
    let stderr = confd.stderr();
    let single_prefix_reads = stderr
        .lines()
        .skip_while(|l| !l.contains("read snapshot"))
        .filter(|l| l.contains("read snapshot") && !l.contains("prefixes=/a,/b"))
        .count();
    assert_eq!(single_prefix_reads, 0, "{stderr}");
}

// ---------------------------------------------------------------------------
// SIGHUP applies every setting a restart would.

/// Before the one setup path, a SIGHUP re-read the resources but kept the
/// sync switches (and the log level) of the start.
#[test]
fn sighup_applies_sync_only_and_the_log_level_from_confd_toml() {
    use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT};
    let s = Scenario::new();
    s.template("hello.tmpl", "{{ getv(key=\"/greeting\") }}\n");
    // The check always fails: nothing is written until -sync-only skips it.
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        "check_cmd = \"false\"\n",
    );
    let data = s.write("data.yaml", "greeting: one\n");
    let config = s.write("confd.toml", "log-level = \"info\"\n");
    let confd = Confd::spawn(
        &s,
        &[
            "-backend".to_string(),
            "file".to_string(),
            "-file".to_string(),
            data.display().to_string(),
            "-confdir".to_string(),
            s.confdir(),
            "-config-file".to_string(),
            config.display().to_string(),
            "-watch".to_string(),
        ],
    );
    confd.expect_log("check_cmd rejected", START_LIMIT);
    assert!(!s.out("hello.txt").exists());
    assert_eq!(confd.lines_with("DEBUG"), 0);

    s.write("confd.toml", "log-level = \"debug\"\nsync_only = true\n");
    confd.signal("HUP");
    confd.expect_file(&s.out("hello.txt"), "one\n", CHANGE_LIMIT);
    confd.expect_log("DEBUG", CHANGE_LIMIT);
}

// ---------------------------------------------------------------------------
// -onetime interrupted.

/// SIGTERM while a check_cmd runs used to leave the stage file behind and
/// the command running: the run must stop at once, kill the command's whole
/// process group, remove its stage file and exit non-zero.
#[test]
fn onetime_interrupted_during_check_cmd_kills_it_and_removes_the_stage_file() {
    use crate::common::confd::{Confd, STOP_LIMIT};
    let s = Scenario::new();
    s.template("hello.tmpl", "{{ getv(key=\"/greeting\") }}\n");
    let marker = s.path().join("check-started");
    let pid_file = s.path().join("sleep.pid");
    s.resource(
        "hello",
        "hello.txt",
        &["/greeting"],
        &format!(
            "check_cmd = \"touch {}; sleep 60 & echo $! > {}; wait\"\n",
            marker.display(),
            pid_file.display()
        ),
    );
    let data = s.write("data.yaml", "greeting: one\n");
    let confd = Confd::spawn(
        &s,
        &[
            "-onetime".to_string(),
            "-backend".to_string(),
            "file".to_string(),
            "-file".to_string(),
            data.display().to_string(),
            "-confdir".to_string(),
            s.confdir(),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(10), || pid_file.exists()
            && fs::read_to_string(&pid_file)
                .is_ok_and(|p| !p.trim().is_empty())),
        "check_cmd never started\n{}",
        confd.stderr()
    );
    assert!(
        !s.out_entries().is_empty(),
        "a stage file exists while the check runs"
    );
    confd.signal("TERM");
    let run = confd.finish(STOP_LIMIT);
    assert_ne!(run.code, 0, "an interrupted run is not a success");
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    assert!(
        s.out_entries().is_empty(),
        "left behind: {:?}",
        s.out_entries()
    );
    let pid = fs::read_to_string(&pid_file).expect("pid");
    let stat = format!("/proc/{}/stat", pid.trim());
    assert!(
        wait_until(Duration::from_secs(5), || fs::read_to_string(&stat)
            .map_or(true, |s| s.contains(") Z "))),
        "the check command's child still runs"
    );
}

/// An idle `-backend file -watch` daemon does nothing: its own reads of the
/// data file (open, read, close) are not changes, only edits are.
#[test]
fn idle_file_watch_daemon_reads_nothing_until_an_edit() {
    use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT, args};
    let s = hello_scenario();
    let data = s.write("data.yaml", "greeting: one\n");
    let file = data.display().to_string();
    let confd = Confd::spawn(
        &s,
        &args(
            &s,
            "file",
            &[] as &[&str],
            &["-file", &file, "-watch", "-log-level", "debug"],
        ),
    );
    confd.expect_file(&s.out("hello.txt"), "one\n", START_LIMIT);
    // Notifications of the first pass, if any, arrive within milliseconds.
    std::thread::sleep(Duration::from_millis(300));
    let reads = confd.lines_with("read snapshot");
    let outcomes = confd.lines_with("outcome=");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        (
            confd.lines_with("read snapshot"),
            confd.lines_with("outcome=")
        ),
        (reads, outcomes),
        "the idle daemon kept reading\n{}",
        confd.stderr()
    );
    fs::write(&data, "greeting: two\n").expect("edit");
    confd.expect_file(&s.out("hello.txt"), "two\n", CHANGE_LIMIT);
    assert!(confd.lines_with("read snapshot") > reads);
}

// ---------------------------------------------------------------------------
// Command-line hygiene.

#[test]
fn help_never_prints_secret_environment_values() {
    let mut s = Scenario::new();
    s.set_env("CONFD_PASSWORD", "hunter2-password")
        .set_env("CONFD_AUTH_TOKEN", "s3cr3t-token");
    for flag in ["-help", "--help", "-h"] {
        let run = s.run(&[flag]);
        run.expect_code(0);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            !all.contains("hunter2-password") && !all.contains("s3cr3t-token"),
            "{flag} printed a secret:\n{all}"
        );
        assert!(all.contains("CONFD_PASSWORD"), "{all}");
    }
}

#[test]
fn unknown_flag_is_named_whole() {
    let s = hello_scenario();
    for (args, named) in [
        (vec!["-bogus"], "'-bogus'"),
        (vec!["-bogus=1"], "'-bogus'"),
        (vec!["--bogus"], "'--bogus'"),
        (vec!["-onetime", "-bogus", "-backend", "env"], "'-bogus'"),
        (vec!["check", "-bogus"], "'-bogus'"),
        (vec!["check", "-onetime"], "'-onetime'"),
    ] {
        let run = s.run(&args);
        run.expect_code(2);
        assert!(
            run.stderr.contains(named) && !run.stderr.contains("'-b'"),
            "{args:?}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_repeated_flag_takes_its_last_value() {
    let s = hello_scenario();
    let confdir = s.confdir();
    // Go style, as a wrapper script appends flags: debug wins over info.
    let run = s.run(&[
        "-onetime",
        "-backend",
        "file",
        "-backend",
        "env",
        "-confdir",
        "/nonexistent",
        "-confdir",
        &confdir,
        "-log-level",
        "info",
        "-log-level",
        "debug",
    ]);
    run.expect_code(0);
    run.line_with("read snapshot");
    assert_eq!(read_out(&s, "hello.txt"), "hello\n");
    // GNU style, and a boolean given twice: info wins over debug.
    let run = s.run(&[
        "--onetime=false",
        "--onetime",
        "--backend=env",
        "--confdir",
        &confdir,
        "--log-level=debug",
        "--log-level=info",
    ]);
    run.expect_code(0);
    assert!(!run.stderr.contains("read snapshot"), "{}", run.stderr);
}

fn read_out(s: &Scenario, name: &str) -> String {
    fs::read_to_string(s.out(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn huge_durations_are_usage_errors_naming_the_flag() {
    use crate::common::confd::{Confd, RUN_LIMIT};
    let s = hello_scenario();
    let confdir = s.confdir();
    let huge = "18446744073709551615";
    let huge_s = "18446744073709551615s";
    for (args, flag) in [
        (vec!["-interval", huge], "-interval"),
        (vec!["-interval", "31557601"], "-interval"),
        (vec!["-onetime", "-wait-keys", huge_s], "-wait-keys"),
        (vec!["-onetime", "-wait-keys", huge], "-wait-keys"),
        (vec!["-wait", huge_s], "-wait"),
        (vec!["-wait", &format!("1s:{huge_s}")], "-wait"),
        (vec!["-wait", "366d:366d"], "-wait"),
    ] {
        let mut all = vec!["-backend", "env", "-confdir", confdir.as_str()];
        all.extend_from_slice(&args);
        let all: Vec<String> = all.iter().map(|a| a.to_string()).collect();
        // Bounded: before the limits, some of these ran a daemon (or panicked).
        let run = Confd::spawn(&s, &all).finish(RUN_LIMIT);
        run.expect_code(2);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("{flag}:")),
            "{args:?}: {}",
            run.stderr
        );
    }
    // A long -wait MIN alone caps its implied MAX (4 × MIN) at the limit.
    let run = s.onetime_env(&["-wait", "100d"]);
    run.expect_code(0);
}

#[test]
fn resource_wait_and_command_timeout_are_bounded() {
    for (extra, what) in [
        ("wait = \"18446744073709551615s\"\n", "wait"),
        ("wait = \"1s:400d\"\n", "wait"),
        ("command_timeout = \"0s\"\n", "command_timeout"),
        ("command_timeout = \"25h\"\n", "command_timeout"),
        (
            "command_timeout = \"18446744073709551615s\"\n",
            "command_timeout",
        ),
    ] {
        let (s, run) = broken(|s| {
            s.resource(
                "hello",
                "hello.txt",
                &["/greeting"],
                &format!("reload_cmd = \"true\"\n{extra}"),
            );
        });
        run.expect_code(2);
        assert_eq!(run.stderr.lines().count(), 1, "{extra}: {}", run.stderr);
        let line = run.line_with("hello.toml:6:");
        assert!(line.contains(what), "{line}");
        assert_untouched(&s);
    }
}

#[test]
fn two_resources_with_one_dest_are_refused() {
    let (s, run) = broken(|s| {
        s.template("other.tmpl", "other\n");
        // The same file, spelled differently.
        let dest = format!("{}/out//./hello.txt", s.confdir());
        s.write(
            "conf.d/other.toml",
            &format!("[template]\nsrc = \"other.tmpl\"\ndest = {dest:?}\nkeys = [\"/greeting\"]\n"),
        );
    });
    run.expect_code(2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let line = run.line_with("hello.txt");
    assert!(
        line.contains("conf.d/hello.toml") && line.contains("conf.d/other.toml"),
        "{line}"
    );
    assert_untouched(&s);

    let run = s.run(&["check", "-confdir", &s.confdir()]);
    run.expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    assert!(
        lines[0].contains("hello.toml")
            && lines[0].contains("other.toml")
            && lines[0].contains("hello.txt"),
        "{}",
        lines[0]
    );
}

#[test]
fn split_follows_go_strings_split() {
    let mut s = Scenario::new();
    s.set_env("WORD", "héllo");
    s.template(
        "split.tmpl",
        "{{ getv(key=\"/word\") | split(on=\"\") | join(sep=\",\") }}|{{ \"\" | split(on=\"\") | length }}|{{ \"\" | split(on=\",\") | length }}|{{ \"a,b\" | split(pat=\",\") | join(sep=\"+\") }}\n",
    );
    s.resource("split", "split.txt", &["/word"], "");
    s.onetime_env(&[]).expect_code(0);
    assert_eq!(read_out(&s, "split.txt"), "h,é,l,l,o|0|1|a+b\n");
}

/// Text a command, a server or an error brings into a log line cannot start a
/// line of its own or send terminal escapes: control characters are escaped
/// in the text format, and JSON escapes them anyway.
#[test]
fn logged_text_cannot_forge_log_lines() {
    for format in ["text", "json"] {
        let s = hello_scenario();
        // A reload command's output is logged as it printed it.
        let script = s.write(
            "reload.sh",
            "printf 'first\\nERROR forged=1\\n\\033[31mred\\rX\\n'\n",
        );
        s.resource(
            "hello",
            "hello.txt",
            &["/greeting"],
            &format!("reload_cmd = \"sh {}\"\n", script.display()),
        );
        let run = s.onetime_env(&["-log-format", format]);
        run.expect_code(0);
        assert!(
            !run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'),
            "{:?}",
            run.stderr
        );
        assert!(
            !run.stderr.lines().any(|l| l.starts_with("ERROR forged")),
            "{}",
            run.stderr
        );
        let line = run.line_with("reloaded");
        if format == "text" {
            assert!(
                line.contains("output=first\\nERROR forged=1\\n\\u{1b}[31mred\\rX"),
                "{line}"
            );
        } else {
            for l in run.stderr.lines() {
                let event: serde_json::Value = serde_json::from_str(l).expect("one JSON object");
                assert!(event.is_object(), "{l}");
            }
            let event: serde_json::Value = serde_json::from_str(&line).expect("json");
            let output = event["output"].as_str().expect("output field");
            assert_eq!(output, "first\nERROR forged=1\n\u{1b}[31mred\rX");
        }
    }
}

// ---------------------------------------------------------------------------
// A runaway template.

/// Nested `range` loops used to block every other resource and SIGTERM:
/// the render now runs off the event loop within `render_timeout`.
#[test]
fn a_runaway_template_fails_alone_and_never_blocks_sigterm() {
    use crate::common::confd::{CHANGE_LIMIT, Confd, START_LIMIT, STOP_LIMIT};
    let s = Scenario::new();
    s.template("hello.tmpl", "{{ getv(key=\"/greeting\") }}\n");
    s.resource("hello", "hello.txt", &["/greeting"], "");
    s.template(
        "runaway.tmpl",
        "{% for i in range(end=100000) %}{% for j in range(end=100000) %}x{% endfor %}{% endfor %}",
    );
    s.resource(
        "runaway",
        "runaway.txt",
        &["/greeting"],
        "render_timeout = \"500ms\"\n",
    );
    let data = s.write("data.yaml", "greeting: one\n");
    let mut confd = Confd::spawn(
        &s,
        &[
            "-backend".to_string(),
            "file".to_string(),
            "-file".to_string(),
            data.display().to_string(),
            "-confdir".to_string(),
            s.confdir(),
            "-watch".to_string(),
        ],
    );
    confd.expect_file(&s.out("hello.txt"), "one\n", START_LIMIT);
    confd.expect_log("render_timeout", START_LIMIT);
    fs::write(&data, "greeting: two\n").expect("edit");
    confd.expect_file(&s.out("hello.txt"), "two\n", CHANGE_LIMIT);
    assert!(!s.out("runaway.txt").exists());
    assert!(confd.running());
    let stopped = Instant::now();
    confd.signal("TERM");
    let run = confd.finish(STOP_LIMIT);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(stopped.elapsed() < STOP_LIMIT);

    // One-shot: the same template fails that resource with exit 1.
    let run = s.run(&[
        "-onetime",
        "-backend",
        "file",
        "-file",
        &data.display().to_string(),
        "-confdir",
        &s.confdir(),
    ]);
    run.expect_code(1);
    assert!(run.stderr.contains("render_timeout"), "{}", run.stderr);
    assert!(!s.out("runaway.txt").exists());
}

/// `confd check` renders with each resource's limits, so a runaway template
/// fails the lint instead of hanging CI.
#[test]
fn check_reports_a_runaway_template_within_its_render_timeout() {
    let s = Scenario::new();
    s.template(
        "runaway.tmpl",
        "{% for i in range(end=100000) %}{% for j in range(end=100000) %}x{% endfor %}{% endfor %}",
    );
    s.resource(
        "runaway",
        "runaway.txt",
        &["/greeting"],
        "render_timeout = \"300ms\"\n",
    );
    let fixtures = s.write("fixtures.yaml", "greeting: one\n");
    let started = Instant::now();
    let run = s.run(&[
        "check",
        "-confdir",
        &s.confdir(),
        "-file",
        &fixtures.display().to_string(),
    ]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("render_timeout") || run.stderr.contains("render_timeout"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
