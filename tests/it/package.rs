//! What the Debian package ships beside the binary, generated from the
//! binary itself: completions and the man page must name every flag the
//! command line has (the same clap definition as `--help`), and `-version`
//! says the version, the commit and the backends.

use crate::common::Scenario;

/// Every `--long` flag of the command and of its subcommands, read from
/// `--help` of each, so the test follows the flags as they change.
fn all_long_flags(s: &Scenario) -> Vec<String> {
    let mut flags = Vec::new();
    for sub in [vec![], vec!["check"], vec!["migrate"]] {
        let mut args = sub.clone();
        args.push("--help");
        let run = s.run(&args);
        run.expect_code(0);
        for word in run
            .stdout
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        {
            let flag = word.split('=').next().unwrap_or(word);
            if let Some(name) = flag.strip_prefix("--")
                && !name.is_empty()
                && name != "help"
                && name != "version"
                && !flags.contains(&name.to_string())
            {
                flags.push(name.to_string());
            }
        }
    }
    assert!(flags.len() > 25, "too few flags found: {flags:?}");
    flags
}

#[test]
fn completions_and_the_man_page_name_every_flag() {
    let s = Scenario::new();
    let flags = all_long_flags(&s);
    for shell in ["bash", "zsh", "fish"] {
        let run = s.run(&["completions", shell]);
        run.expect_code(0);
        for flag in &flags {
            let named = match shell {
                "fish" => run.stdout.contains(&format!("-l {flag}")),
                _ => run.stdout.contains(&format!("--{flag}")),
            };
            assert!(named, "{shell} completion lacks --{flag}");
        }
    }
    let man = s.run(&["man"]);
    man.expect_code(0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH confd 1"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    for flag in &flags {
        let roff = format!("\\-\\-{}", flag.replace('-', "\\-"));
        assert!(man.stdout.contains(&roff), "the man page lacks --{flag}");
    }
    let bad = s.run(&["completions", "tcsh"]);
    bad.expect_code(2);
}

#[test]
fn version_names_the_commit_and_the_backends() {
    let s = Scenario::new();
    for flag in ["-version", "--version"] {
        let run = s.run(&[flag]);
        run.expect_code(0);
        let first = run.stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("confd {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("backends: etcd, etcdv3, consul, redis, env, file, vault"),
            "{}",
            run.stdout
        );
    }
}
