//! The flags of `confd announce`: what to announce (`-key`, `-value`, `-ttl`),
//! the health check that decides whether to keep announcing it, and the
//! connection flags of the main command (same names, same `CONFD_*`
//! variables), which `confd announce` resolves through
//! [`crate::config::resolve`] so confd.toml, SRV lookups and defaults apply
//! exactly as they do for a normal run.

use clap::Args;

use crate::cli::{Connection, Flags};

/// Flags of `confd announce`.
#[derive(Debug, Clone, Args)]
pub struct AnnounceArgs {
    /// The key to announce, e.g. /members/web1.
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// Its value, e.g. 10.0.0.5:80.
    #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
    pub value: String,
    /// How long the key outlives this process when it stops refreshing it
    /// (whole seconds; Consul needs at least 10s).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub ttl: String,
    /// Keep announcing only while a GET of this URL answers 2xx.
    #[arg(long = "check-http", value_name = "URL", conflicts_with = "check_cmd")]
    pub check_http: Option<String>,
    /// Keep announcing only while this shell command exits 0.
    #[arg(long = "check-cmd", value_name = "CMD", allow_hyphen_values = true)]
    pub check_cmd: Option<String>,
    /// How often the health check runs.
    #[arg(long = "check-interval", value_name = "DURATION", default_value = "2s")]
    pub check_interval: String,

    /// The connection flags of the main command (same names, same
    /// `CONFD_*` variables); only the etcd, etcdv3 and consul backends announce.
    #[command(flatten)]
    pub connection: Connection,
}

impl AnnounceArgs {
    /// The connection flags as the main command's, for
    /// [`crate::config::resolve`].
    pub fn connection_flags(&self) -> Flags {
        Flags {
            connection: self.connection.clone(),
            ..Flags::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Command, parse};

    fn announce(args: &[&str]) -> super::AnnounceArgs {
        let mut all = vec!["confd", "announce"];
        all.extend_from_slice(args);
        match parse(all) {
            Ok(cli) => match cli.command {
                Some(Command::Announce(args)) => *args,
                other => panic!("not announce: {other:?}"),
            },
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn go_and_gnu_styles_are_equivalent_and_values_may_start_with_a_dash() {
        let go = announce(&[
            "-backend",
            "etcdv3",
            "-node",
            "a",
            "-node=b",
            "-key",
            "/members/web1",
            "-value",
            "-x",
            "-ttl",
            "30s",
            "-check-cmd",
            "true",
            "-check-interval=5s",
        ]);
        let gnu = announce(&[
            "--backend=etcdv3",
            "--node",
            "a",
            "--node=b",
            "--key=/members/web1",
            "--value=-x",
            "--ttl",
            "30s",
            "--check-cmd=true",
            "--check-interval",
            "5s",
        ]);
        for a in [go, gnu] {
            assert_eq!(a.key, "/members/web1");
            assert_eq!(a.value, "-x");
            assert_eq!((a.ttl.as_str(), a.check_interval.as_str()), ("30s", "5s"));
            assert_eq!(a.check_cmd.as_deref(), Some("true"));
            let flags = a.connection_flags();
            assert_eq!(flags.connection.backend.as_deref(), Some("etcdv3"));
            assert_eq!(flags.connection.nodes, vec!["a", "b"]);
        }
    }

    #[test]
    fn defaults_and_exclusive_checks() {
        let a = announce(&["-key", "/k", "-value", "v"]);
        assert_eq!((a.ttl.as_str(), a.check_interval.as_str()), ("10s", "2s"));
        assert!(a.check_http.is_none() && a.check_cmd.is_none());
        let both = parse([
            "confd",
            "announce",
            "-key",
            "/k",
            "-value",
            "v",
            "-check-http",
            "http://h/",
            "-check-cmd",
            "true",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn help_hides_the_values_of_secret_variables() {
        use clap::CommandFactory;
        let command = crate::cli::Cli::command();
        let announce = command
            .find_subcommand("announce")
            .expect("the announce subcommand");
        for name in ["password", "auth_token", "nodes"] {
            let arg = announce
                .get_arguments()
                .find(|a| a.get_id() == name)
                .unwrap_or_else(|| panic!("no argument {name}"));
            assert!(arg.is_hide_env_values_set(), "{name}");
        }
    }
}
