//! The typed settings of the backend and of the service catalog, built
//! from the resolved settings in one match per backend.

use super::Settings;
use crate::backend::consul::ConsulConfig;
use crate::backend::file::FileConfig;
use crate::backend::http::{ClientAuth, HttpConfig};
use crate::backend::redis::RedisConfig;
use crate::backend::vault::VaultConfig;
use crate::backend::{BackendConfig, BackendKind};
use crate::error::ConfigError;

impl Settings {
    /// The backend's typed settings. With `-srv-record` / `-srv-domain` the
    /// nodes are looked up in DNS now (`_<backend>._tcp.<domain>` as confd
    /// builds it), each becoming `-scheme://target:port`.
    pub fn backend_config(&self) -> Result<BackendConfig, ConfigError> {
        Ok(match self.backend {
            BackendKind::Etcd => BackendConfig::Etcd(self.http_config()?),
            BackendKind::EtcdV3 => BackendConfig::EtcdV3(self.http_config()?, self.etcdv3_api),
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
