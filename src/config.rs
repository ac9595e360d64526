//! Settings of a run: flags and `CONFD_*` variables (parsed by [`crate::cli`])
//! merged over `confd.toml` over defaults, then validated. Every problem is a
//! [`ConfigError`] (exit status 2) that names the flag or the file and key.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::backend::consul::ConsulConfig;
use crate::backend::file::FileConfig;
use crate::backend::http::{ClientAuth, HttpConfig};
use crate::backend::redis::RedisConfig;
use crate::backend::vault::{VaultConfig, VaultSettings};
use crate::backend::{BackendConfig, BackendKind};
use crate::cli::Flags;
use crate::error::ConfigError;

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
    /// How long a watch may go without a word from its node (confd.toml
    /// only).
    pub watch_timeout: Duration,
    /// Vault's auth settings.
    pub vault: VaultSettings,
    /// Where `/metrics`, `/health` and `/ready` are served (daemon only).
    pub metrics_addr: Option<String>,
}

/// confd.toml: the same settings as the flags, snake_case (confd's
/// kebab-case spellings are accepted too).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    backend: Option<String>,
    nodes: Option<Vec<String>>,
    confdir: Option<PathBuf>,
    onetime: Option<bool>,
    watch: Option<bool>,
    interval: Option<u64>,
    prefix: Option<String>,
    noop: Option<bool>,
    #[serde(alias = "sync-only")]
    sync_only: Option<bool>,
    #[serde(alias = "keep-stage-file")]
    keep_stage_file: Option<bool>,
    #[serde(rename = "log-level", alias = "log_level")]
    log_level: Option<String>,
    #[serde(alias = "log-format")]
    log_format: Option<String>,
    #[serde(alias = "file")]
    files: Option<Vec<PathBuf>>,
    wait: Option<String>,
    #[serde(alias = "wait-keys")]
    wait_keys: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(alias = "basic-auth")]
    basic_auth: Option<bool>,
    #[serde(alias = "auth-token")]
    auth_token: Option<String>,
    #[serde(alias = "client-cert")]
    client_cert: Option<PathBuf>,
    #[serde(alias = "client-key")]
    client_key: Option<PathBuf>,
    #[serde(alias = "client_cakeys", alias = "client-ca-keys")]
    client_ca_keys: Option<PathBuf>,
    scheme: Option<String>,
    #[serde(alias = "srv-domain")]
    srv_domain: Option<String>,
    #[serde(alias = "srv-record")]
    srv_record: Option<String>,
    datacenter: Option<String>,
    #[serde(alias = "consul-addr")]
    consul_addr: Option<String>,
    #[serde(alias = "max-response-size")]
    max_response_size: Option<SizeSetting>,
    #[serde(alias = "watch-timeout")]
    watch_timeout: Option<String>,
    // Vault, with confd's spellings.
    #[serde(alias = "auth-type")]
    auth_type: Option<String>,
    #[serde(alias = "role-id")]
    role_id: Option<String>,
    #[serde(alias = "secret-id")]
    secret_id: Option<String>,
    path: Option<String>,
    #[serde(alias = "kubernetes-token-file")]
    kubernetes_token_file: Option<PathBuf>,
    // app-id auth is gone from Vault: confd.toml files that still name its
    // settings parse, and `auth_type = "app-id"` says why it is refused.
    #[serde(rename = "app_id", alias = "app-id")]
    _app_id: Option<String>,
    #[serde(rename = "user_id", alias = "user-id")]
    _user_id: Option<String>,
    filter: Option<String>,
    separator: Option<String>,
    table: Option<String>,
    #[serde(alias = "secret-keyring")]
    secret_keyring: Option<PathBuf>,
    #[serde(alias = "metrics-addr")]
    metrics_addr: Option<String>,
}

/// A size in confd.toml: a number of bytes or a string with a unit.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeSetting {
    Bytes(u64),
    Text(String),
}

fn read_file_settings(flags: &Flags) -> Result<FileSettings, ConfigError> {
    let (path, named) = match &flags.config_file {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
            return Ok(FileSettings::default());
        }
        Err(e) => {
            return Err(ConfigError::file(
                &path,
                format!("cannot read config file: {}", crate::error::io_reason(&e)),
            ));
        }
    };
    toml::from_str(&text).map_err(|e| ConfigError::toml(&path, &text, &e))
}

/// Resolves flag > environment > confd.toml > default and validates the result.
pub fn resolve(flags: Flags) -> Result<Settings, ConfigError> {
    let file = read_file_settings(&flags)?;
    refuse_unsupported(&flags, &file)?;

    let backend_name = flags
        .backend
        .clone()
        .or(file.backend)
        .unwrap_or_else(|| BackendKind::Etcd.name().to_string());
    let backend: BackendKind = backend_name
        .parse()
        .map_err(|e: String| ConfigError::setting("-backend", e))?;

    let log_level = match flags.log_level.clone().or(file.log_level).as_deref() {
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
    let log_format = match flags.log_format.clone().or(file.log_format).as_deref() {
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
    let nodes = if flags.nodes.is_empty() {
        file.nodes.unwrap_or_default()
    } else {
        flags.nodes.clone()
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
            username: flags.username.clone().or(file.username),
            password: flags.password.clone().or(file.password),
            basic_auth: flags.basic_auth.or(file.basic_auth).unwrap_or(false),
            auth_token: flags.auth_token.clone().or(file.auth_token).or_else(|| {
                // Each server's own variable, never the other's.
                let variable = match backend {
                    BackendKind::Vault => "VAULT_TOKEN",
                    _ => "CONSUL_HTTP_TOKEN",
                };
                std::env::var(variable).ok()
            }),
            client_cert: flags.client_cert.clone().or(file.client_cert),
            client_key: flags.client_key.clone().or(file.client_key),
            client_ca_keys: flags.client_ca_keys.clone().or(file.client_ca_keys),
        },
        scheme: flags
            .scheme
            .clone()
            .or(file.scheme)
            .unwrap_or_else(|| "http".to_string()),
        srv_domain: flags.srv_domain.clone().or(file.srv_domain),
        srv_record: flags.srv_record.clone().or(file.srv_record),
        datacenter: flags.datacenter.clone().or(file.datacenter),
        consul_addr: flags.consul_addr.clone().or(file.consul_addr),
        max_response_size,
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

/// A flag given on the command line (or as `CONFD_*`) that the chosen backend
/// would silently ignore is an error: the user meant something by it. The same
/// setting in confd.toml is tolerated, so one file can serve several backends.
fn reject_flags_the_backend_does_not_use(
    backend: BackendKind,
    flags: &Flags,
) -> Result<(), ConfigError> {
    // -auth-token and -datacenter also serve service(...) with any backend.
    let network_flags: [(&str, bool); 10] = [
        ("-node", !flags.nodes.is_empty()),
        ("-username", flags.username.is_some()),
        ("-password", flags.password.is_some()),
        ("-basic-auth", flags.basic_auth.is_some()),
        ("-client-cert", flags.client_cert.is_some()),
        ("-client-key", flags.client_key.is_some()),
        ("-client-ca-keys", flags.client_ca_keys.is_some()),
        ("-scheme", flags.scheme.is_some()),
        ("-srv-domain", flags.srv_domain.is_some()),
        ("-srv-record", flags.srv_record.is_some()),
    ];
    if !backend.is_networked()
        && let Some((flag, _)) = network_flags.iter().find(|(_, given)| *given)
    {
        let networked: Vec<&str> = BackendKind::ALL
            .iter()
            .filter(|k| k.is_networked())
            .map(|k| k.name())
            .collect();
        return Err(ConfigError::setting(
            *flag,
            format!(
                "only the {} backends use this flag, not the {backend} backend",
                networked.join(", ")
            ),
        ));
    }
    reject_vault_flags(backend, flags)?;
    if backend == BackendKind::Redis {
        if flags.basic_auth.is_some() {
            return Err(ConfigError::setting(
                "-basic-auth",
                "Redis has no HTTP basic auth: -password (and -username for an ACL user) authenticate with AUTH",
            ));
        }
        if flags.scheme.is_some() {
            return Err(ConfigError::setting(
                "-scheme",
                "the redis backend speaks TLS with rediss:// nodes or the TLS flags (-client-ca-keys, -client-cert)",
            ));
        }
    }
    let file_flags = [
        ("-file", !flags.files.is_empty()),
        ("-filter", flags.filter.is_some()),
    ];
    if backend != BackendKind::File
        && let Some((flag, _)) = file_flags.iter().find(|(_, given)| *given)
    {
        return Err(ConfigError::setting(
            *flag,
            format!("only the file backend uses this flag, not the {backend} backend"),
        ));
    }
    if backend != BackendKind::Redis && flags.separator.is_some() {
        return Err(ConfigError::setting(
            "-separator",
            format!("only the redis backend uses this flag, not the {backend} backend"),
        ));
    }
    Ok(())
}

/// Flags of confd's command line that name something this confd does not
/// have: accepted by the parser, so a confd unit file gets a message saying
/// what is missing instead of "unexpected argument", and then refused, since
/// ignoring them would render without what the user asked for. An empty
/// value counts as not given, as in confd.
fn refuse_unsupported(flags: &Flags, file: &FileSettings) -> Result<(), ConfigError> {
    let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if given(&flags.table) || given(&file.table) {
        return Err(ConfigError::setting(
            "-table",
            "names a DynamoDB table, and this confd has no dynamodb backend; remove -table (confd.toml: table)",
        ));
    }
    let keyring = flags
        .secret_keyring
        .as_ref()
        .or(file.secret_keyring.as_ref());
    if keyring.is_some_and(|k| !k.as_os_str().is_empty()) {
        return Err(ConfigError::setting(
            "-secret-keyring",
            "PGP-encrypted values (confd's crypt functions) are not supported: confd documented them but never implemented them; remove -secret-keyring (confd.toml: secret_keyring)",
        ));
    }
    Ok(())
}

/// Vault's own flags with another backend, `-basic-auth` with Vault (which
/// has no basic auth), and app-id's flags (that method no longer exists).
fn reject_vault_flags(backend: BackendKind, flags: &Flags) -> Result<(), ConfigError> {
    let app_id = [
        ("-app-id", flags.app_id.is_some()),
        ("-user-id", flags.user_id.is_some()),
    ];
    if let Some((flag, _)) = app_id.iter().find(|(_, given)| *given) {
        return Err(ConfigError::setting(
            *flag,
            "Vault's app-id auth no longer exists (removed in Vault 1.12, never in OpenBao); use -auth-type app-role with -role-id and -secret-id",
        ));
    }
    let vault_flags = [
        ("-auth-type", flags.auth_type.is_some()),
        ("-role-id", flags.role_id.is_some()),
        ("-secret-id", flags.secret_id.is_some()),
        ("-path", flags.path.is_some()),
        (
            "-kubernetes-token-file",
            flags.kubernetes_token_file.is_some(),
        ),
    ];
    if backend != BackendKind::Vault
        && let Some((flag, _)) = vault_flags.iter().find(|(_, given)| *given)
    {
        return Err(ConfigError::setting(
            *flag,
            format!("only the vault backend uses this flag, not the {backend} backend"),
        ));
    }
    if backend == BackendKind::Vault && flags.basic_auth.is_some() {
        return Err(ConfigError::setting(
            "-basic-auth",
            "the vault backend has no basic auth; -username and -password are userpass's (-auth-type userpass)",
        ));
    }
    Ok(())
}

impl Settings {
    /// The backend's typed settings. With `-srv-record` / `-srv-domain` the
    /// nodes are looked up in DNS now (`_<backend>._tcp.<domain>` as confd
    /// builds it), each becoming `-scheme://target:port`.
    pub fn backend_config(&self) -> Result<BackendConfig, ConfigError> {
        Ok(match self.backend {
            BackendKind::Etcd => BackendConfig::Etcd(self.http_config()?),
            BackendKind::EtcdV3 => BackendConfig::EtcdV3(self.http_config()?),
            BackendKind::Consul => BackendConfig::Consul(ConsulConfig {
                http: self.http_config()?,
                token: self.auth.auth_token.clone(),
                datacenter: self.datacenter.clone(),
            }),
            BackendKind::Redis => BackendConfig::Redis(self.redis_config()?),
            BackendKind::Env => BackendConfig::Env,
            BackendKind::File => BackendConfig::File(FileConfig {
                paths: self.files.clone(),
                filter: self.filter.clone(),
            }),
            BackendKind::Vault => BackendConfig::Vault(VaultConfig::new(
                self.http_config()?,
                &self.auth,
                &self.vault,
            )?),
        })
    }

    /// The Consul agent `service(...)` asks: `-consul-addr`, or the consul
    /// backend's own nodes and credentials, or 127.0.0.1:8500.
    pub fn services_config(&self) -> ConsulConfig {
        let consul_backend = self.backend == BackendKind::Consul;
        let nodes = match (&self.consul_addr, consul_backend) {
            (Some(addr), _) => vec![addr.clone()],
            (None, true) if !self.nodes.is_empty() => self.nodes.clone(),
            _ => vec![crate::backend::consul::DEFAULT_NODE.to_string()],
        };
        // Credentials and TLS files given for another backend are not Consul's.
        let auth = if consul_backend {
            self.auth.clone()
        } else {
            ClientAuth::default()
        };
        ConsulConfig {
            http: HttpConfig {
                backend: "consul",
                nodes,
                scheme: self.scheme.clone(),
                auth,
                max_response_size: self.max_response_size,
                watch_timeout: self.watch_timeout,
            },
            token: self.auth.auth_token.clone(),
            datacenter: self.datacenter.clone(),
        }
    }

    /// The redis backend's settings. confd 0.16 handed `-client-key` to its
    /// redis backend as the password, so a confd command line may carry the
    /// password there: without `-password` and `-client-cert`, a
    /// `-client-key` that names no file is taken as the password, as confd
    /// did, and a warning (without the value) says to use `-password`.
    fn redis_config(&self) -> Result<RedisConfig, ConfigError> {
        let auth = &self.auth;
        let mut client_key = auth.client_key.clone();
        let mut password = auth.password.clone();
        if password.is_none()
            && auth.client_cert.is_none()
            && let Some(key) = client_key.take_if(|k| !k.is_file())
        {
            tracing::warn!(
                backend = "redis",
                "-client-key taken as the Redis password, as confd 0.16 did; give it with -password instead"
            );
            password = Some(key.to_string_lossy().into_owned());
        }
        Ok(RedisConfig {
            nodes: self.nodes_or_srv(false)?,
            username: auth.username.clone(),
            password,
            client_cert: auth.client_cert.clone(),
            client_key,
            client_ca_keys: auth.client_ca_keys.clone(),
            separator: self
                .separator
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/".to_string()),
            max_response_size: self.max_response_size,
            watch_timeout: self.watch_timeout,
            interval: self.interval,
        })
    }

    /// The connection settings of a networked backend.
    fn http_config(&self) -> Result<HttpConfig, ConfigError> {
        Ok(HttpConfig {
            backend: self.backend.name(),
            nodes: self.nodes_or_srv(true)?,
            scheme: self.scheme.clone(),
            auth: self.auth.clone(),
            max_response_size: self.max_response_size,
            watch_timeout: self.watch_timeout,
        })
    }

    /// `-node`s, or nodes found through DNS SRV (`-scheme://target:port`
    /// with `with_scheme`, else `target:port` as confd gives redis), or the
    /// backend's usual address.
    fn nodes_or_srv(&self, with_scheme: bool) -> Result<Vec<String>, ConfigError> {
        let srv_record = match (&self.srv_record, &self.srv_domain) {
            (Some(record), _) => Some(record.clone()),
            (None, Some(domain)) => Some(format!("_{}._tcp.{domain}", self.backend.name())),
            (None, None) => None,
        };
        let nodes = if let Some(record) = srv_record {
            let found = crate::dns::lookup_srv_record(&record)
                .map_err(|e| ConfigError::setting("-srv-record/-srv-domain", e.to_string()))?;
            if found.is_empty() {
                return Err(ConfigError::setting(
                    "-srv-record/-srv-domain",
                    format!("{record} has no SRV records"),
                ));
            }
            found
                .into_iter()
                .map(|r| match with_scheme {
                    true => format!("{}://{}:{}", self.scheme, r.target, r.port),
                    false => format!("{}:{}", r.target, r.port),
                })
                .collect()
        } else if self.nodes.is_empty() {
            self.backend
                .default_node()
                .map(|n| vec![n.to_string()])
                .unwrap_or_default()
        } else {
            self.nodes.clone()
        };
        Ok(nodes)
    }
}

/// Parses a duration: `30s`, `1m30s`, `500ms`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. \"30s\" or \"500ms\")"))
}

/// `duration` when it is at most `limit`; otherwise "longer than
/// `limit_text`", for the caller to say what is.
pub fn at_most(duration: Duration, limit: Duration, limit_text: &str) -> Result<Duration, String> {
    if duration > limit {
        return Err(format!("longer than {limit_text}"));
    }
    Ok(duration)
}

/// Parses `MIN:MAX` (or `MIN` alone, meaning MAX = 4 × MIN, as
/// consul-template does, capped at [`MAX_WAIT`]). Both are at most
/// [`MAX_WAIT`].
pub fn parse_wait(text: &str) -> Result<(Duration, Duration), String> {
    let bounded = |part: &str, name: &str| {
        let duration = parse_duration(part)?;
        at_most(duration, MAX_WAIT, MAX_WAIT_TEXT).map_err(|e| format!("{name} is {e}"))
    };
    let (min, max) = match text.split_once(':') {
        Some((min, max)) => (bounded(min, "MIN")?, bounded(max, "MAX")?),
        None => {
            let min = bounded(text, "MIN")?;
            (min, min.saturating_mul(4).min(MAX_WAIT))
        }
    };
    if max < min {
        return Err("MAX must not be shorter than MIN".to_string());
    }
    Ok((min, max))
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
            Ok(cli) => Flags {
                // No confd.toml of the machine running the tests.
                config_file: Some(PathBuf::from("/dev/null")),
                ..cli.flags
            },
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
        let cli = crate::cli::parse(all).unwrap_or_else(|e| panic!("{e}"));
        resolve(Flags {
            config_file: Some(file),
            ..cli.flags
        })
        .expect("valid")
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
