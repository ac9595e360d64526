//! The command line: confd's flags, accepted both Go-style (`-onetime`,
//! `-node x`, `-node=x`) and GNU-style (`--onetime`, `--node x`), each also
//! settable as `CONFD_<FLAG>` in the environment. Values stay optional here so
//! that [`crate::config`] can apply flag > environment > file > default.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// `confd [FLAGS]` or `confd check [FLAGS]`.
#[derive(Debug, Parser)]
#[command(
    name = "confd",
    version,
    about = "Keeps configuration files in step with a key/value store and reloads their owners",
    disable_help_subcommand = true,
    // As with Go's flag package, a flag given twice takes its last value
    // (wrapper scripts append flags); repeatable flags (-node, -file) still
    // accumulate.
    args_override_self = true
)]
pub struct Cli {
    /// `check`: lint resources and templates for CI.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The flags of a normal run.
    #[command(flatten)]
    pub flags: Flags,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse every resource and compile every template; with -file fixtures,
    /// also render each one to memory. Never touches a destination.
    Check(CheckArgs),
    /// Convert a confd confdir whose templates are Go text/template into one
    /// whose templates are Tera and render the same bytes; conf.d is copied
    /// unchanged.
    Migrate(MigrateArgs),
    /// Register this host under a key with a TTL and keep it alive while its
    /// health check passes; withdraw it on SIGTERM/SIGINT.
    Announce(Box<crate::announce::AnnounceArgs>),
    /// Print a completion script for a shell: bash, zsh or fish (also
    /// elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `confd man > confd.1`.
    Man,
}

/// Flags of `confd completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// The version and the commit it was built from, on one line (the man
/// page's header).
pub const SHORT_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CONFD_COMMIT"),
    ")"
);

/// What `-version` prints: the version, the commit it was built from and
/// the backends built in.
pub fn version_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let backends: Vec<&str> = crate::backend::BackendKind::ALL
            .iter()
            .map(|k| k.name())
            .collect();
        format!("{SHORT_VERSION}\nbackends: {}", backends.join(", "))
    })
}

/// The whole command line definition, as `--help`, completions and the man
/// page show it.
pub fn definition() -> clap::Command {
    Cli::command()
        .version(SHORT_VERSION)
        .long_version(version_text())
}

/// Flags of `confd migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The confd confdir to convert (holds conf.d/ and templates/).
    #[arg(value_name = "SRC_CONFDIR")]
    pub src: PathBuf,
    /// Where to write the converted confdir.
    #[arg(value_name = "DEST_CONFDIR")]
    pub dest: PathBuf,
    /// Print what would be written; write nothing.
    #[arg(long, value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub noop: bool,
    /// Write into a DEST_CONFDIR that is not empty (or into SRC_CONFDIR itself),
    /// replacing files of the same names.
    #[arg(long, value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub force: bool,
}

/// Flags of `confd check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Folder holding conf.d/ and templates/.
    #[arg(long, env = "CONFD_CONFDIR", default_value = "/etc/confd")]
    pub confdir: PathBuf,
    /// Fixture data (YAML or JSON, as for -backend file) to render against; repeatable.
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Prefix prepended to every resource's keys.
    #[arg(long, env = "CONFD_PREFIX")]
    pub prefix: Option<String>,
    /// How problems are printed: text (`path:line:col: message`), github
    /// (workflow annotations) or json (one object per line).
    #[arg(long, env = "CONFD_CHECK_FORMAT", value_enum, default_value = "text")]
    pub format: CheckFormat,
}

/// `confd check -format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// `path:line:col: message`.
    Text,
    /// GitHub Actions workflow commands: `::error file=…,line=…,col=…::message`.
    Github,
    /// One JSON object per problem and line.
    Json,
}

/// Flags of a normal run (SPEC §2).
#[derive(Debug, Clone, Args, Default)]
pub struct Flags {
    /// Where the backend is and how to reach it, and how to log (shared
    /// with `confd announce`).
    #[command(flatten)]
    pub connection: Connection,
    /// Folder holding conf.d/ and templates/ [default: /etc/confd].
    #[arg(long, env = "CONFD_CONFDIR", value_name = "DIR")]
    pub confdir: Option<PathBuf>,
    /// Render once, then exit (0 when every resource is in sync).
    #[arg(long, env = "CONFD_ONETIME", value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub onetime: Option<bool>,
    /// Use the backend's change notification instead of polling.
    #[arg(long, env = "CONFD_WATCH", value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub watch: Option<bool>,
    /// Polling period in seconds [default: 600].
    #[arg(long, env = "CONFD_INTERVAL", value_name = "SECS")]
    pub interval: Option<u64>,
    /// Prepended to every resource's keys.
    #[arg(
        long,
        env = "CONFD_PREFIX",
        value_name = "P",
        allow_hyphen_values = true
    )]
    pub prefix: Option<String>,
    /// Show a diff of what would change; write nothing, run nothing.
    #[arg(long, env = "CONFD_NOOP", value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub noop: Option<bool>,
    /// Write files but run no check_cmd or reload_cmd.
    #[arg(long = "sync-only", env = "CONFD_SYNC_ONLY", value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sync_only: Option<bool>,
    /// Do not delete stage files.
    #[arg(long = "keep-stage-file", env = "CONFD_KEEP_STAGE_FILE", value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub keep_stage_file: Option<bool>,
    /// Input of the file backend (YAML or JSON file, or a folder of them); repeatable.
    #[arg(
        long = "file",
        env = "CONFD_FILE",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub files: Vec<PathBuf>,
    /// Which files of a -file folder are read: a glob on the file name (`*.conf`)
    /// [default: *.yaml, *.yml and *.json].
    #[arg(long, env = "CONFD_FILTER", value_name = "GLOB")]
    pub filter: Option<String>,
    /// Redis: stands for `/` in keys (`-separator :` stores /app/db as app:db) [default: /].
    #[arg(
        long,
        env = "CONFD_SEPARATOR",
        value_name = "SEP",
        allow_hyphen_values = true
    )]
    pub separator: Option<String>,
    /// Accepted for confd's command lines, refused: there is no DynamoDB backend.
    #[arg(long, env = "CONFD_TABLE", value_name = "NAME")]
    pub table: Option<String>,
    /// Accepted for confd's command lines, refused: PGP-encrypted values are
    /// not supported (confd documented them, never implemented them).
    #[arg(
        long = "secret-keyring",
        env = "CONFD_SECRET_KEYRING",
        value_name = "FILE"
    )]
    pub secret_keyring: Option<PathBuf>,
    /// Coalesce bursts: render once data is quiet for MIN, at most MAX after the first change.
    #[arg(long, env = "CONFD_WAIT", value_name = "MIN:MAX")]
    pub wait: Option<String>,
    /// With -onetime: retry while keys are missing or the backend is down, up to this long.
    #[arg(long = "wait-keys", env = "CONFD_WAIT_KEYS", value_name = "DURATION")]
    pub wait_keys: Option<String>,
    // Vault's auth flags, as confd names them. The values of secret-bearing
    // variables stay out of --help.
    /// Vault auth method: token, app-role, userpass, github, kubernetes or cert (vault).
    #[arg(long = "auth-type", env = "CONFD_AUTH_TYPE", value_name = "TYPE")]
    pub auth_type: Option<String>,
    /// Vault AppRole role ID, or the Kubernetes role (vault).
    #[arg(
        long = "role-id",
        env = "CONFD_ROLE_ID",
        hide_env_values = true,
        value_name = "ID"
    )]
    pub role_id: Option<String>,
    /// Vault AppRole secret ID (vault).
    #[arg(
        long = "secret-id",
        env = "CONFD_SECRET_ID",
        hide_env_values = true,
        value_name = "ID"
    )]
    pub secret_id: Option<String>,
    /// Mount path of the Vault auth method [default: the method's name, approle for app-role] (vault).
    #[arg(long, env = "CONFD_PATH", value_name = "PATH")]
    pub path: Option<String>,
    /// Service-account token file for -auth-type kubernetes [default:
    /// /var/run/secrets/kubernetes.io/serviceaccount/token] (vault).
    #[arg(
        long = "kubernetes-token-file",
        env = "CONFD_KUBERNETES_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub kubernetes_token_file: Option<PathBuf>,
    /// Refused: Vault's app-id auth no longer exists (use -auth-type app-role).
    #[arg(long = "app-id", env = "CONFD_APP_ID", hide_env_values = true)]
    pub app_id: Option<String>,
    /// Refused: Vault's app-id auth no longer exists (use -auth-type app-role).
    #[arg(long = "user-id", env = "CONFD_USER_ID", hide_env_values = true)]
    pub user_id: Option<String>,
    /// Consul agent for the `service(...)` template helper [default: the consul
    /// backend's nodes, else 127.0.0.1:8500].
    #[arg(long = "consul-addr", env = "CONFD_CONSUL_ADDR", value_name = "ADDR")]
    pub consul_addr: Option<String>,
    /// Largest answer read from a backend node: bytes, or with a unit (512KiB,
    /// 64MiB, 1GB) [default: 64MiB].
    #[arg(
        long = "max-response-size",
        env = "CONFD_MAX_RESPONSE_SIZE",
        value_name = "SIZE"
    )]
    pub max_response_size: Option<String>,
    /// How long a -watch may go without a word from its node before the node
    /// is taken for silently dead (1s to 10m) [default: 60s].
    #[arg(
        long = "watch-timeout",
        env = "CONFD_WATCH_TIMEOUT",
        value_name = "DURATION"
    )]
    pub watch_timeout: Option<String>,
    /// Serve /metrics, /health and /ready on HOST:PORT (daemon only) [default: off].
    #[arg(
        long = "metrics-addr",
        env = "CONFD_METRICS_ADDR",
        value_name = "HOST:PORT"
    )]
    pub metrics_addr: Option<String>,
}

/// Where the backend is and how to reach it, and how to log: the flags a
/// normal run and `confd announce` share.
#[derive(Debug, Clone, Args, Default)]
pub struct Connection {
    /// Backend: etcd (v2 API), etcdv3, consul, redis, env, file or vault.
    #[arg(long, env = "CONFD_BACKEND", value_name = "NAME")]
    pub backend: Option<String>,
    /// Backend address; repeatable, tried in order.
    // The values of secret-bearing variables stay out of --help (a node URL
    // may hold a password).
    #[arg(
        long = "node",
        env = "CONFD_NODE",
        hide_env_values = true,
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,
    /// etcdv3: grpc (etcd's native API) or gateway (its JSON gateway, for an
    /// HTTP/1.1-only proxy) [default: grpc].
    #[arg(long = "etcdv3-api", env = "CONFD_ETCDV3_API", value_name = "API")]
    pub etcdv3_api: Option<String>,
    /// confd.toml to read [default: /etc/confd/confd.toml, optional].
    #[arg(long = "config-file", env = "CONFD_CONFIG_FILE", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// debug, info, warning or error [default: info].
    #[arg(long = "log-level", env = "CONFD_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// text or json [default: text].
    #[arg(long = "log-format", env = "CONFD_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// HTTP basic auth user (etcd, consul); ACL user (redis); the user of
    /// Vault's userpass.
    #[arg(long, env = "CONFD_USERNAME")]
    pub username: Option<String>,
    /// HTTP basic auth password (etcd, consul); AUTH password (redis); the
    /// password of Vault's userpass.
    // A secret: --help names the variable but never shows its value.
    #[arg(long, env = "CONFD_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Use HTTP basic auth (etcd, consul).
    #[arg(long = "basic-auth", env = "CONFD_BASIC_AUTH", value_parser = BoolishValueParser::new(), num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub basic_auth: Option<bool>,
    /// Consul ACL token (also CONSUL_HTTP_TOKEN); Vault token (also VAULT_TOKEN) or GitHub token.
    // A secret: --help names the variable but never shows its value.
    #[arg(long = "auth-token", env = "CONFD_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// TLS client certificate (PEM).
    #[arg(long = "client-cert", env = "CONFD_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// TLS client key (PEM).
    // confd 0.16 passed this flag to its redis backend as the password, so
    // a redis command line may carry a secret here: --help never shows it.
    #[arg(
        long = "client-key",
        env = "CONFD_CLIENT_KEY",
        hide_env_values = true,
        value_name = "FILE"
    )]
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
    /// Consul datacenter to read from [default: the agent's].
    #[arg(long, env = "CONFD_DATACENTER")]
    pub datacenter: Option<String>,
}

/// The long flags of one command (the top level or a subcommand).
struct FlagNames {
    /// Every long name, plus `help` and `version`.
    all: Vec<String>,
    /// Flags whose value may follow as the next word (`-node x`).
    take_next: Vec<String>,
}

impl FlagNames {
    fn of(command: &clap::Command) -> FlagNames {
        let mut names = FlagNames {
            all: vec!["help".into(), "version".into()],
            take_next: Vec::new(),
        };
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                names.all.push(long.to_string());
                if arg.get_action().takes_values() && !arg.is_require_equals_set() {
                    names.take_next.push(long.to_string());
                }
            }
        }
        names
    }
}

/// Rewrites Go-style `-flag` / `-flag=value` into `--flag` / `--flag=value`
/// for every long flag the command (or the subcommand in use) knows, and
/// `-help`, `-version`, so clap can parse both styles. A flag's value given
/// as the next word is joined to it (`--node=x`): as with Go's flag package,
/// that word is the value even when it starts with '-'. A single-dash word
/// that names no flag is an error naming the whole word (`-bogus`), where
/// clap would read it as short flags and name only its first letter.
pub fn normalize_go_flags<I, T>(args: I) -> Result<Vec<OsString>, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut command = Cli::command();
    let mut scope = FlagNames::of(&command);
    let mut subcommand: Option<String> = None;

    let mut out: Vec<OsString> = Vec::new();
    let mut after_separator = false;
    let mut waiting_for_value: Option<OsString> = None;
    for (position, arg) in args.into_iter().enumerate() {
        let arg: OsString = arg.into();
        if let Some(mut flag) = waiting_for_value.take() {
            flag.push("=");
            flag.push(&arg);
            out.push(flag);
            continue;
        }
        if position == 0 || after_separator {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            after_separator = true;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if subcommand.is_none() && !text.starts_with('-') {
            if let Some(sub) = command.find_subcommand(text) {
                scope = FlagNames::of(sub);
                subcommand = Some(text.to_string());
            }
            out.push(arg);
            continue;
        }
        let long = match text.strip_prefix("--") {
            Some(long) => long.to_string(),
            None => match text.strip_prefix('-') {
                Some(body) => {
                    let name = body.split('=').next().unwrap_or(body);
                    if !scope.all.iter().any(|n| n == name) {
                        // `-h`, `-V` and `-` are clap's to judge; a longer
                        // word is a Go-style flag that does not exist.
                        if name.chars().count() > 1 {
                            return Err(unknown_flag(&mut command, subcommand.as_deref(), name));
                        }
                        out.push(arg);
                        continue;
                    }
                    body.to_string()
                }
                None => {
                    out.push(arg);
                    continue;
                }
            },
        };
        let flag = OsString::from(format!("--{long}"));
        if !long.contains('=') && scope.take_next.contains(&long) {
            waiting_for_value = Some(flag);
        } else {
            out.push(flag);
        }
    }
    // A flag at the very end without its value: clap says it needs one.
    out.extend(waiting_for_value);
    Ok(out)
}

/// clap's "unexpected argument" error, naming the whole Go-style flag.
fn unknown_flag(command: &mut clap::Command, subcommand: Option<&str>, name: &str) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    // Built, so a subcommand's usage line reads `confd check …`.
    command.build();
    let command = match subcommand.and_then(|sub| command.find_subcommand_mut(sub)) {
        Some(sub) => sub,
        None => command,
    };
    let usage = command.render_usage();
    let mut error = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(command);
    error.insert(
        ContextKind::InvalidArg,
        ContextValue::String(format!("-{name}")),
    );
    error.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    error
}

/// Parses process arguments in either style.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let matches = definition().try_get_matches_from(normalize_go_flags(args)?)?;
    Cli::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["confd"];
        all.extend_from_slice(args);
        match parse(all) {
            Ok(cli) => cli.flags,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn go_and_gnu_styles_are_equivalent() {
        let go = flags(&[
            "-onetime", "-backend", "env", "-node=a", "-node", "b", "-confdir", "/c",
        ]);
        let gnu = flags(&[
            "--onetime",
            "--backend=env",
            "--node",
            "a",
            "--node=b",
            "--confdir=/c",
        ]);
        for f in [go, gnu] {
            assert_eq!(f.onetime, Some(true));
            assert_eq!(f.connection.backend.as_deref(), Some("env"));
            assert_eq!(f.connection.nodes, vec!["a", "b"]);
            assert_eq!(f.confdir, Some(PathBuf::from("/c")));
        }
    }

    #[test]
    fn bools_take_explicit_values_and_never_swallow_the_next_word() {
        assert_eq!(flags(&["-onetime=false"]).onetime, Some(false));
        let f = flags(&["-noop", "-prefix", "/x"]);
        assert_eq!(f.noop, Some(true));
        assert_eq!(f.prefix.as_deref(), Some("/x"));
        assert_eq!(
            flags(&["-sync-only", "-keep-stage-file"]).keep_stage_file,
            Some(true)
        );
    }

    #[test]
    fn values_that_look_like_flags_are_not_rewritten() {
        let f = flags(&["-prefix", "-onetime"]);
        assert_eq!(f.prefix.as_deref(), Some("-onetime"));
    }

    #[test]
    fn migrate_takes_go_style_flags_and_two_folders() {
        let cli = parse(["confd", "migrate", "-noop", "-force", "/old", "/new"]).expect("parses");
        match cli.command {
            Some(Command::Migrate(args)) => {
                assert_eq!((args.noop, args.force), (true, true));
                assert_eq!(args.src, PathBuf::from("/old"));
                assert_eq!(args.dest, PathBuf::from("/new"));
            }
            other => panic!("not migrate: {other:?}"),
        }
        assert!(
            parse(["confd", "migrate", "/old"]).is_err(),
            "DEST is required"
        );
    }

    #[test]
    fn check_subcommand_takes_go_style_flags() {
        let cli = parse(["confd", "check", "-confdir", "/c", "-file", "f.yaml"]).expect("parses");
        match cli.command {
            Some(Command::Check(args)) => {
                assert_eq!(args.confdir, PathBuf::from("/c"));
                assert_eq!(args.files, vec![PathBuf::from("f.yaml")]);
            }
            other => panic!("not check: {other:?}"),
        }
    }

    #[test]
    fn help_hides_the_values_of_secret_variables() {
        let command = Cli::command();
        for name in [
            "password",
            "auth_token",
            "client_key",
            "secret_id",
            "role_id",
            "app_id",
            "user_id",
        ] {
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == name)
                .unwrap_or_else(|| panic!("no argument {name}"));
            assert!(arg.is_hide_env_values_set(), "{name}");
        }
    }

    fn error(args: &[&str]) -> String {
        let mut all = vec!["confd"];
        all.extend_from_slice(args);
        match parse(all) {
            Ok(cli) => panic!("parsed {cli:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_flag_is_a_usage_error_naming_the_whole_flag() {
        for (args, named) in [
            (&["-nosuchflag"][..], "'-nosuchflag'"),
            (&["-nosuchflag=1"][..], "'-nosuchflag'"),
            (&["--nosuchflag"][..], "'--nosuchflag'"),
            (&["-onetime", "-bogus"][..], "'-bogus'"),
            (&["check", "-bogus"][..], "'-bogus'"),
            // A flag of the normal run is unknown to `check`.
            (&["check", "-onetime"][..], "'-onetime'"),
        ] {
            let e = error(args);
            assert!(
                e.contains(&format!("unexpected argument {named}")),
                "{args:?}: {e}"
            );
        }
        let e = parse(["confd", "-bogus"]).expect_err("unknown");
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(e.use_stderr());
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value() {
        let go = flags(&[
            "-log-level",
            "info",
            "-log-level",
            "debug",
            "-interval",
            "5",
            "-interval=7",
            "-onetime",
            "-onetime=false",
            "-prefix",
            "/a",
            "-prefix",
            "/b",
        ]);
        let gnu = flags(&[
            "--log-level=info",
            "--log-level",
            "debug",
            "--interval=5",
            "--interval",
            "7",
            "--onetime",
            "--onetime=false",
            "--prefix=/a",
            "--prefix=/b",
        ]);
        for f in [go, gnu] {
            assert_eq!(f.connection.log_level.as_deref(), Some("debug"));
            assert_eq!(f.interval, Some(7));
            assert_eq!(f.onetime, Some(false));
            assert_eq!(f.prefix.as_deref(), Some("/b"));
        }
        let cli = parse(["confd", "check", "-confdir", "/a", "--confdir=/b"]).expect("parses");
        match cli.command {
            Some(Command::Check(args)) => assert_eq!(args.confdir, PathBuf::from("/b")),
            other => panic!("not check: {other:?}"),
        }
    }

    #[test]
    fn repeatable_flags_accumulate() {
        let f = flags(&["-node", "a", "--node=b,c", "-node=d"]);
        assert_eq!(f.connection.nodes, vec!["a", "b", "c", "d"]);
        let f = flags(&["-file", "x.yaml", "--file", "y.yaml"]);
        assert_eq!(
            f.files,
            vec![PathBuf::from("x.yaml"), PathBuf::from("y.yaml")]
        );
    }

    #[test]
    fn the_word_after_a_flag_is_its_value_even_with_a_dash() {
        // Go's flag package takes the next word whatever it looks like.
        assert_eq!(
            flags(&["-backend", "-bogus"]).connection.backend.as_deref(),
            Some("-bogus")
        );
        assert_eq!(
            flags(&["--username", "--x"]).connection.username.as_deref(),
            Some("--x")
        );
        assert_eq!(flags(&["-prefix", ""]).prefix.as_deref(), Some(""));
        assert!(error(&["-backend"]).contains("--backend"));
    }
}
