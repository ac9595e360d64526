//! Settings of a run: flags and `CONFD_*` variables (parsed by [`crate::cli`])
//! merged over `confd.toml` over defaults, then validated. Every problem is a
//! [`ConfigError`] (exit status 2) that names the flag or the file and key.

use std::path::PathBuf;
use std::time::Duration;

mod backends;
mod durations;
mod file;
mod validate;

pub use durations::{at_most, parse_duration, parse_wait};

use crate::backend::BackendKind;
use crate::backend::etcdv3::EtcdV3Api;
use crate::backend::http::ClientAuth;
use crate::backend::vault::VaultSettings;
use crate::cli::Flags;
use crate::error::ConfigError;
use file::{SizeSetting, read_file_settings};
use validate::{refuse_unsupported, reject_flags_the_backend_does_not_use};

/// confd.toml read when `-config-file` is not given; its absence is fine.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/confd/confd.toml";
/// Folder holding conf.d/ and templates/ when `-confdir` is not given.
pub const DEFAULT_CONFDIR: &str = "/etc/confd";
/// Polling period when `-interval` is not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// Longest `-interval`, `-wait` (MIN and MAX), `-wait-keys` and resource
/// `wait`: a year as humantime counts it (`1y`, 365.25 days). Anything longer
/// is a typo, and the daemon's deadlines (now + duration) must stay
/// representable: `Instant` panics on overflow.
pub const MAX_WAIT: Duration = Duration::from_secs(31_557_600);
/// [`MAX_WAIT`] as users write it, for messages and the README.
pub const MAX_WAIT_TEXT: &str = "a year (1y = 31557600 seconds)";

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Every pass and every unchanged resource.
    Debug,
    /// Changes, reloads and failures.
    Info,
    /// Warnings and failures.
    Warning,
    /// Failures only.
    Error,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `timestamp LEVEL message key=value …`
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything a run needs to know, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Which backend to read.
    pub backend: BackendKind,
    /// Backend addresses, in failover order.
    pub nodes: Vec<String>,
    /// Folder holding conf.d/ and templates/.
    pub confdir: PathBuf,
    /// One pass, then exit.
    pub onetime: bool,
    /// Use change notification instead of polling.
    pub watch: bool,
    /// Polling period.
    pub interval: Duration,
    /// Prepended to every resource's keys.
    pub prefix: String,
    /// Diff only.
    pub noop: bool,
    /// No check or reload commands.
    pub sync_only: bool,
    /// Keep stage files.
    pub keep_stage_file: bool,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// Log line format.
    pub log_format: LogFormat,
    /// File backend inputs.
    pub files: Vec<PathBuf>,
    /// Which files of a `-file` folder are read (a glob on the file name);
    /// `None`: `.yaml`, `.yml` and `.json` files.
    pub filter: Option<String>,
    /// Redis: what stands for `/` in keys (`None`: `/` itself).
    pub separator: Option<String>,
    /// Quiet period and upper bound for coalescing bursts of changes.
    pub wait: Option<(Duration, Duration)>,
    /// With -onetime, how long to keep retrying for missing data.
    pub wait_keys: Option<Duration>,
    /// Credentials and TLS for networked backends.
    pub auth: ClientAuth,
    /// Scheme for nodes found through DNS SRV.
    pub scheme: String,
    /// SRV discovery domain.
    pub srv_domain: Option<String>,
    /// SRV discovery record.
    pub srv_record: Option<String>,
    /// Consul datacenter to query.
    pub datacenter: Option<String>,
    /// Consul agent for `service(...)`.
    pub consul_addr: Option<String>,
    /// The largest answer read from a backend node, in bytes.
    pub max_response_size: u64,
    /// etcdv3: gRPC or the JSON gateway.
    pub etcdv3_api: EtcdV3Api,
    /// How long a watch may go without a word from its node (confd.toml
    /// only).
    pub watch_timeout: Duration,
    /// Vault's auth settings.
    pub vault: VaultSettings,
    /// Where `/metrics`, `/health` and `/ready` are served (daemon only).
    pub metrics_addr: Option<String>,
}

/// Resolves flag > environment > confd.toml > default and validates the result.
pub fn resolve(flags: Flags) -> Result<Settings, ConfigError> {
    let file = read_file_settings(&flags)?;
    refuse_unsupported(&flags, &file)?;

    let backend_name = flags
        .connection
        .backend
        .clone()
        .or(file.backend)
        .unwrap_or_else(|| BackendKind::Etcd.name().to_string());
    let backend: BackendKind = backend_name
        .parse()
        .map_err(|e: String| ConfigError::setting("-backend", e))?;

    let log_level = match flags
        .connection
        .log_level
        .clone()
        .or(file.log_level)
        .as_deref()
    {
        None | Some("info") => LogLevel::Info,
        Some("debug") => LogLevel::Debug,
        Some("warning" | "warn") => LogLevel::Warning,
        Some("error" | "fatal" | "panic") => LogLevel::Error,
        Some(other) => {
            return Err(ConfigError::setting(
                "-log-level",
                format!("{other:?}: use debug, info, warning or error"),
            ));
        }
    };
    let log_format = match flags
        .connection
        .log_format
        .clone()
        .or(file.log_format)
        .as_deref()
    {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(ConfigError::setting(
                "-log-format",
                format!("{other:?}: use text or json"),
            ));
        }
    };
    let interval_secs = flags.interval.or(file.interval);
    let interval = match interval_secs {
        Some(0) => {
            return Err(ConfigError::setting(
                "-interval",
                "must be at least 1 second",
            ));
        }
        Some(secs) if secs > MAX_WAIT.as_secs() => {
            return Err(ConfigError::setting(
                "-interval",
                format!("{secs} seconds is longer than {MAX_WAIT_TEXT}"),
            ));
        }
        Some(secs) => Duration::from_secs(secs),
        None => DEFAULT_INTERVAL,
    };
    let wait = match flags.wait.clone().or(file.wait) {
        Some(text) => Some(
            parse_wait(&text)
                .map_err(|e| ConfigError::setting("-wait", format!("{text:?}: {e}")))?,
        ),
        None => None,
    };
    let wait_keys = match flags.wait_keys.clone().or(file.wait_keys) {
        Some(text) => Some(
            parse_duration(&text)
                .map_err(|e| format!("{text:?}: {e}"))
                .and_then(|d| {
                    at_most(d, MAX_WAIT, MAX_WAIT_TEXT).map_err(|e| format!("{text:?} is {e}"))
                })
                .map_err(|e| ConfigError::setting("-wait-keys", e))?,
        ),
        None => None,
    };

    let max_response_size = match flags
        .max_response_size
        .clone()
        .map(SizeSetting::Text)
        .or(file.max_response_size)
    {
        None => crate::backend::http::DEFAULT_MAX_RESPONSE_SIZE,
        Some(SizeSetting::Bytes(bytes)) => {
            crate::backend::http::parse_max_response_size(&bytes.to_string())
                .map_err(|e| ConfigError::setting("-max-response-size", e))?
        }
        Some(SizeSetting::Text(text)) => crate::backend::http::parse_max_response_size(&text)
            .map_err(|e| ConfigError::setting("-max-response-size", format!("{text:?}: {e}")))?,
    };

    let watch_timeout = match flags.watch_timeout.clone().or(file.watch_timeout) {
        None => crate::backend::http::DEFAULT_WATCH_TIMEOUT,
        Some(text) => parse_duration(&text)
            .and_then(|d| {
                use crate::backend::http::{MAX_WATCH_TIMEOUT, MIN_WATCH_TIMEOUT};
                if (MIN_WATCH_TIMEOUT..=MAX_WATCH_TIMEOUT).contains(&d) {
                    Ok(d)
                } else {
                    Err("must be between 1s and 10m".to_string())
                }
            })
            .map_err(|e| ConfigError::setting("-watch-timeout", format!("{text:?}: {e}")))?,
    };

    // A bad name in confd.toml is refused as it is parsed (file:line).
    let etcdv3_api = match &flags.connection.etcdv3_api {
        Some(text) => text
            .parse()
            .map_err(|e: String| ConfigError::setting("-etcdv3-api", e))?,
        None => file.etcdv3_api.unwrap_or_default(),
    };

    reject_flags_the_backend_does_not_use(backend, &flags)?;

    let filter = flags.filter.clone().or(file.filter);
    if let Some(glob) = &filter {
        crate::backend::file::check_filter(glob)
            .map_err(|e| ConfigError::setting("-filter", format!("{glob:?}: {e}")))?;
    }

    let files = if flags.files.is_empty() {
        file.files.unwrap_or_default()
    } else {
        flags.files.clone()
    };
    let nodes = if flags.connection.nodes.is_empty() {
        file.nodes.unwrap_or_default()
    } else {
        flags.connection.nodes.clone()
    };

    Ok(Settings {
        backend,
        nodes,
        confdir: flags
            .confdir
            .clone()
            .or(file.confdir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFDIR)),
        onetime: flags.onetime.or(file.onetime).unwrap_or(false),
        watch: flags.watch.or(file.watch).unwrap_or(false),
        interval,
        prefix: flags.prefix.clone().or(file.prefix).unwrap_or_default(),
        noop: flags.noop.or(file.noop).unwrap_or(false),
        sync_only: flags.sync_only.or(file.sync_only).unwrap_or(false),
        keep_stage_file: flags
            .keep_stage_file
            .or(file.keep_stage_file)
            .unwrap_or(false),
        log_level,
        log_format,
        files,
        filter,
        separator: flags.separator.clone().or(file.separator),
        wait,
        wait_keys,
        auth: ClientAuth {
            username: flags.connection.username.clone().or(file.username),
            password: flags.connection.password.clone().or(file.password),
            basic_auth: flags
                .connection
                .basic_auth
                .or(file.basic_auth)
                .unwrap_or(false),
            auth_token: flags
                .connection
                .auth_token
                .clone()
                .or(file.auth_token)
                .or_else(|| {
                    // Each server's own variable, never the other's.
                    let variable = match backend {
                        BackendKind::Vault => "VAULT_TOKEN",
                        _ => "CONSUL_HTTP_TOKEN",
                    };
                    std::env::var(variable).ok()
                }),
            client_cert: flags.connection.client_cert.clone().or(file.client_cert),
            client_key: flags.connection.client_key.clone().or(file.client_key),
            client_ca_keys: flags
                .connection
                .client_ca_keys
                .clone()
                .or(file.client_ca_keys),
        },
        scheme: flags
            .connection
            .scheme
            .clone()
            .or(file.scheme)
            .unwrap_or_else(|| "http".to_string()),
        srv_domain: flags.connection.srv_domain.clone().or(file.srv_domain),
        srv_record: flags.connection.srv_record.clone().or(file.srv_record),
        datacenter: flags.connection.datacenter.clone().or(file.datacenter),
        consul_addr: flags.consul_addr.clone().or(file.consul_addr),
        max_response_size,
        etcdv3_api,
        watch_timeout,
        vault: VaultSettings {
            auth_type: flags.auth_type.clone().or(file.auth_type),
            role_id: flags.role_id.clone().or(file.role_id),
            secret_id: flags.secret_id.clone().or(file.secret_id),
            path: flags.path.clone().or(file.path),
            kubernetes_token_file: flags
                .kubernetes_token_file
                .clone()
                .or(file.kubernetes_token_file),
        },
        metrics_addr: flags.metrics_addr.clone().or(file.metrics_addr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_forms() {
        assert_eq!(
            parse_wait("2s:10s"),
            Ok((Duration::from_secs(2), Duration::from_secs(10)))
        );
        assert_eq!(
            parse_wait("500ms"),
            Ok((Duration::from_millis(500), Duration::from_secs(2)))
        );
        assert!(parse_wait("10s:2s").is_err());
        assert!(parse_wait("soon").is_err());
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
    }

    #[test]
    fn waits_are_at_most_a_year() {
        assert_eq!(parse_wait("1y:1y"), Ok((MAX_WAIT, MAX_WAIT)));
        // MIN alone: the implied MAX (4 × MIN) is capped, not refused.
        assert_eq!(
            parse_wait("100d"),
            Ok((Duration::from_secs(100 * 86_400), MAX_WAIT))
        );
        for text in [
            "18446744073709551615",
            "18446744073709551615s",
            "1s:18446744073709551615s",
            "366d",
            "1s:366d",
            "366d:400d",
        ] {
            let e = parse_wait(text).expect_err(text);
            assert!(e.contains("longer than a year"), "{text}: {e}");
        }
    }

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["confd", "-backend", "env"];
        all.extend_from_slice(args);
        match crate::cli::parse(all) {
            Ok(mut cli) => {
                // No confd.toml of the machine running the tests.
                cli.flags.connection.config_file = Some(PathBuf::from("/dev/null"));
                cli.flags
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn resolve_error(args: &[&str]) -> String {
        match resolve(flags(args)) {
            Ok(s) => panic!("resolved {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn huge_durations_are_errors_naming_the_flag() {
        let huge = "18446744073709551615";
        for (args, flag) in [
            (vec!["-interval", huge], "-interval: "),
            (vec!["-interval", "31557601"], "-interval: "),
            (vec!["-wait-keys", huge], "-wait-keys: "),
            (vec!["-wait-keys", "18446744073709551615s"], "-wait-keys: "),
            (vec!["-wait", "18446744073709551615s"], "-wait: "),
            (vec!["-wait", "0s:400d"], "-wait: "),
        ] {
            let e = resolve_error(&args);
            assert!(
                e.starts_with(flag) && e.contains("longer than a year"),
                "{args:?}: {e}"
            );
            assert!(!e.contains('\n'));
        }
        let s = resolve(flags(&["-interval", "31557600", "-wait-keys", "1y"])).expect("valid");
        assert_eq!((s.interval, s.wait_keys), (MAX_WAIT, Some(MAX_WAIT)));
    }
}

#[cfg(test)]
mod metrics_addr_tests {
    use super::*;

    fn resolve_with(args: &[&str], toml: &str) -> Settings {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("confd.toml");
        std::fs::write(&file, toml).expect("confd.toml");
        let mut all = vec!["confd", "-backend", "env"];
        all.extend_from_slice(args);
        let mut cli = crate::cli::parse(all).unwrap_or_else(|e| panic!("{e}"));
        cli.flags.connection.config_file = Some(file);
        resolve(cli.flags).expect("valid")
    }

    #[test]
    fn metrics_addr_comes_from_the_flag_over_confd_toml_and_is_off_by_default() {
        assert_eq!(resolve_with(&[], "").metrics_addr, None);
        for key in ["metrics_addr", "metrics-addr"] {
            let s = resolve_with(&[], &format!("{key} = \"127.0.0.1:9100\"\n"));
            assert_eq!(s.metrics_addr.as_deref(), Some("127.0.0.1:9100"), "{key}");
        }
        let s = resolve_with(
            &["-metrics-addr", "[::1]:9200"],
            "metrics_addr = \"127.0.0.1:9100\"\n",
        );
        assert_eq!(s.metrics_addr.as_deref(), Some("[::1]:9200"));
    }
}
