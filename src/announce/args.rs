//! The flags of `confd announce`: what to announce (`-key`, `-value`, `-ttl`),
//! the health check that decides whether to keep announcing it, and the
//! connection flags of the main command (same names, same `CONFD_*`
//! variables), which `confd announce` resolves through
//! [`crate::config::resolve`] so confd.toml, SRV lookups and defaults apply
//! exactly as they do for a normal run.

use std::path::PathBuf;

use clap::Args;
use clap::builder::BoolishValueParser;

use crate::cli::Flags;

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

    /// Backend: etcd (v2 API), etcdv3 or consul [default: etcd].
    #[arg(long, env = "CONFD_BACKEND", value_name = "NAME")]
    pub backend: Option<String>,
    /// Backend address; repeatable, tried in order.
    #[arg(
        long = "node",
        env = "CONFD_NODE",
        hide_env_values = true,
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,
    /// confd.toml to read connection settings from [default: /etc/confd/confd.toml, optional].
    #[arg(long = "config-file", env = "CONFD_CONFIG_FILE", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// debug, info, warning or error [default: info].
    #[arg(long = "log-level", env = "CONFD_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// text or json [default: text].
    #[arg(long = "log-format", env = "CONFD_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// HTTP basic auth user (etcd, consul).
    #[arg(long, env = "CONFD_USERNAME")]
    pub username: Option<String>,
    /// HTTP basic auth password (etcd, consul).
    // A secret: --help names the variable but never shows its value.
    #[arg(long, env = "CONFD_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Use HTTP basic auth (etcd, consul).
    #[arg(long = "basic-auth", env = "CONFD_BASIC_AUTH", value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub basic_auth: Option<bool>,
    /// Consul ACL token (also CONSUL_HTTP_TOKEN).
    // A secret: --help names the variable but never shows its value.
    #[arg(long = "auth-token", env = "CONFD_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// TLS client certificate (PEM).
    #[arg(long = "client-cert", env = "CONFD_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// TLS client key (PEM).
    #[arg(long = "client-key", env = "CONFD_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// CA certificates to trust (PEM).
    #[arg(
        long = "client-ca-keys",
        env = "CONFD_CLIENT_CA_KEYS",
        value_name = "FILE"
    )]
    pub client_ca_keys: Option<PathBuf>,
    /// http or https, for nodes found through DNS SRV [default: http].
    #[arg(long, env = "CONFD_SCHEME")]
    pub scheme: Option<String>,
    /// Domain to look backend nodes up in with DNS SRV.
    #[arg(long = "srv-domain", env = "CONFD_SRV_DOMAIN")]
    pub srv_domain: Option<String>,
    /// Full SRV record name to look backend nodes up with.
    #[arg(long = "srv-record", env = "CONFD_SRV_RECORD")]
    pub srv_record: Option<String>,
    /// Consul datacenter to write to [default: the agent's].
    #[arg(long, env = "CONFD_DATACENTER")]
    pub datacenter: Option<String>,
}

impl AnnounceArgs {
    /// The connection flags as the main command's, for
    /// [`crate::config::resolve`].
    pub fn connection_flags(&self) -> Flags {
        Flags {
            backend: self.backend.clone(),
            nodes: self.nodes.clone(),
            config_file: self.config_file.clone(),
            log_level: self.log_level.clone(),
            log_format: self.log_format.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            basic_auth: self.basic_auth,
            auth_token: self.auth_token.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            client_ca_keys: self.client_ca_keys.clone(),
            scheme: self.scheme.clone(),
            srv_domain: self.srv_domain.clone(),
            srv_record: self.srv_record.clone(),
            datacenter: self.datacenter.clone(),
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
            assert_eq!(flags.backend.as_deref(), Some("etcdv3"));
            assert_eq!(flags.nodes, vec!["a", "b"]);
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
