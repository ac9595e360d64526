//! confd.toml: the same settings as the flags (snake_case, and confd's
//! kebab-case spellings), read strictly so an unknown key names the file,
//! line and key.

use std::path::PathBuf;

use serde::Deserialize;

use super::DEFAULT_CONFIG_FILE;
use crate::cli::Flags;
use crate::error::ConfigError;

/// confd.toml: the same settings as the flags, snake_case (confd's
/// kebab-case spellings are accepted too).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSettings {
    pub(super) backend: Option<String>,
    pub(super) nodes: Option<Vec<String>>,
    pub(super) confdir: Option<PathBuf>,
    pub(super) onetime: Option<bool>,
    pub(super) watch: Option<bool>,
    pub(super) interval: Option<u64>,
    pub(super) prefix: Option<String>,
    pub(super) noop: Option<bool>,
    #[serde(alias = "sync-only")]
    pub(super) sync_only: Option<bool>,
    #[serde(alias = "keep-stage-file")]
    pub(super) keep_stage_file: Option<bool>,
    #[serde(rename = "log-level", alias = "log_level")]
    pub(super) log_level: Option<String>,
    #[serde(alias = "log-format")]
    pub(super) log_format: Option<String>,
    #[serde(alias = "file")]
    pub(super) files: Option<Vec<PathBuf>>,
    pub(super) wait: Option<String>,
    #[serde(alias = "wait-keys")]
    pub(super) wait_keys: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    #[serde(alias = "basic-auth")]
    pub(super) basic_auth: Option<bool>,
    #[serde(alias = "auth-token")]
    pub(super) auth_token: Option<String>,
    #[serde(alias = "client-cert")]
    pub(super) client_cert: Option<PathBuf>,
    #[serde(alias = "client-key")]
    pub(super) client_key: Option<PathBuf>,
    #[serde(alias = "client_cakeys", alias = "client-ca-keys")]
    pub(super) client_ca_keys: Option<PathBuf>,
    pub(super) scheme: Option<String>,
    #[serde(alias = "srv-domain")]
    pub(super) srv_domain: Option<String>,
    #[serde(alias = "srv-record")]
    pub(super) srv_record: Option<String>,
    pub(super) datacenter: Option<String>,
    #[serde(alias = "consul-addr")]
    pub(super) consul_addr: Option<String>,
    #[serde(alias = "max-response-size")]
    pub(super) max_response_size: Option<SizeSetting>,
    #[serde(alias = "etcdv3-api")]
    pub(super) etcdv3_api: Option<crate::backend::etcdv3::EtcdV3Api>,
    #[serde(alias = "watch-timeout")]
    pub(super) watch_timeout: Option<String>,
    // Vault, with confd's spellings.
    #[serde(alias = "auth-type")]
    pub(super) auth_type: Option<String>,
    #[serde(alias = "role-id")]
    pub(super) role_id: Option<String>,
    #[serde(alias = "secret-id")]
    pub(super) secret_id: Option<String>,
    pub(super) path: Option<String>,
    #[serde(alias = "kubernetes-token-file")]
    pub(super) kubernetes_token_file: Option<PathBuf>,
    // app-id auth is gone from Vault: confd.toml files that still name its
    // settings parse, and `auth_type = "app-id"` says why it is refused.
    #[serde(rename = "app_id", alias = "app-id")]
    pub(super) _app_id: Option<String>,
    #[serde(rename = "user_id", alias = "user-id")]
    pub(super) _user_id: Option<String>,
    pub(super) filter: Option<String>,
    pub(super) separator: Option<String>,
    pub(super) table: Option<String>,
    #[serde(alias = "secret-keyring")]
    pub(super) secret_keyring: Option<PathBuf>,
    #[serde(alias = "metrics-addr")]
    pub(super) metrics_addr: Option<String>,
}

/// A size in confd.toml: a number of bytes or a string with a unit.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum SizeSetting {
    Bytes(u64),
    Text(String),
}

pub(super) fn read_file_settings(flags: &Flags) -> Result<FileSettings, ConfigError> {
    let (path, named) = match &flags.connection.config_file {
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
