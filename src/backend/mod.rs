//! Backends: where the key/value data comes from. Each backend lives in its own
//! file behind the one [`Backend`] trait; the sync engine never knows which
//! one it talks to.
//!
//! # Adding a backend
//!
//! 1. Write `backend/<name>.rs` with a typed config struct and a type that
//!    implements [`Backend`]: `read` returns every key under the given roots,
//!    as clean absolute keys (`/a/b`), with the index the store was read at.
//! 2. Name it: a variant of [`BackendKind`] (its `-backend` name, whether it
//!    uses the network flags, its default node).
//! 3. Configure it: a variant of [`BackendConfig`] holding the typed config,
//!    one arm in `Settings::backend_config` (crate::config) that fills it from
//!    the flags, and one arm in [`build`].
//! 4. Test it: unit tests beside the code for parsing the server's answers;
//!    end-to-end tests in `tests/it/` against the real server, started by a
//!    helper in `tests/it/common/` on a free 127.0.0.1 port.
//!
//! Change notification (`-watch`) is a separate, optional capability that
//! backends with a native one override; polling is the default.

pub mod consul;
pub mod env;
pub mod etcd;
pub mod etcdv3;
pub mod file;
pub mod http;
#[cfg(test)]
pub mod memory;
pub mod redis;
pub mod vault;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::ConfigError;
use crate::snapshot::PairList;

/// A failed read, with what was being read from where.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{backend} backend: {location}: {message}")]
pub struct BackendError {
    /// The backend's name.
    pub backend: &'static str,
    /// The node, file or key involved.
    pub location: String,
    /// What went wrong.
    pub message: String,
    /// True when waiting may cure it (no node answered, a file is missing);
    /// false for answers that will not change by themselves (bad credentials,
    /// a disabled API, malformed data).
    pub transient: bool,
}

impl BackendError {
    /// Adds the key or prefix being read to the location.
    pub fn reading(mut self, key: &str) -> Self {
        if !self.location.contains(key) {
            self.location = format!("{} (reading {key})", self.location);
        }
        self
    }
}

/// The result of one read: the pairs, and the backend's change index at the
/// time of the read (etcd's X-Etcd-Index or revision, Consul's X-Consul-Index;
/// 0 for backends without one). Watches resume after this index.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Clean absolute keys with their values, in one buffer: the networked
    /// backends push each pair as they parse the answer, and the snapshot
    /// is built from this storage without copying the text again.
    pub pairs: PairList,
    /// The store's index when read (the lowest, when the roots were read
    /// one by one at different indexes).
    pub index: u64,
    /// The index each root was read at, in the order the roots were asked
    /// for, from backends that read roots one by one (etcd v2, Consul);
    /// empty when every root was read at `index`.
    pub root_indexes: Vec<u64>,
}

impl Fetched {
    /// The index the `i`th root asked for was read at.
    pub fn index_of(&self, i: usize) -> u64 {
        self.root_indexes.get(i).copied().unwrap_or(self.index)
    }
}

/// One key change a watch reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The key now holds this value.
    Put {
        /// The key, as the backend spells it (cleaned when applied).
        key: String,
        /// Its new value.
        value: String,
    },
    /// The key is gone (keys below it, if any, stay: etcd v3's keys are
    /// flat).
    Delete {
        /// The key, as the backend spells it.
        key: String,
    },
    /// The key is gone with everything below it (etcd v2 deletes a
    /// directory with its contents).
    DeleteTree {
        /// The key or directory, as the backend spells it.
        key: String,
    },
    /// Everything at or below the key is now exactly these pairs (Consul's
    /// blocking query answers with the whole prefix).
    ReplaceTree {
        /// The key or directory, as the backend spells it.
        key: String,
        /// The pairs now under it.
        pairs: PairList,
    },
}

/// What one call to [`Backend::watch`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Something at or below the root changed.
    Changed {
        /// The store's index after the change.
        index: u64,
        /// What changed, in order, when the backend says so (etcd's events
        /// carry keys and values): the daemon applies them to the data it
        /// keeps instead of reading the root again. `None` when the backend
        /// only knows that something changed: the root must be read again.
        changes: Option<Vec<Change>>,
    },
    /// Nothing changed within the watch's time limit: watch again from the
    /// same index.
    Quiet,
    /// The store no longer knows what changed since the index (history
    /// compacted or cleared): read everything again, watch from the new index.
    Resync,
}

impl WatchEvent {
    /// A change whose details the backend does not report.
    pub fn changed(index: u64) -> WatchEvent {
        WatchEvent::Changed {
            index,
            changes: None,
        }
    }
}

/// A source of key/value data.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The backend's name as given to `-backend`.
    fn name(&self) -> &'static str;

    /// Reads every key that is one of `roots` or lies below one. Roots are
    /// clean, absolute and do not overlap. Keys come back clean and absolute.
    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError>;

    /// Whether [`Backend::watch`] is implemented; backends without change
    /// notification are polled every `-interval`.
    fn can_watch(&self) -> bool {
        false
    }

    /// Starts change notification ahead of the daemon's first read, for
    /// backends whose notification only covers what happens after it starts
    /// (inotify), so a change made during or just after that read is seen.
    fn prepare_watch(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Waits for the first change at or below `root` after `index` (the index
    /// of a read or of an earlier change) and reports it.
    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        let _ = (root, index);
        Ok(WatchEvent::Quiet)
    }
}

/// The backends `-backend` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// etcd through its v2 keys API.
    Etcd,
    /// etcd through its v3 JSON gateway.
    EtcdV3,
    /// Consul's KV store.
    Consul,
    /// Redis strings and hashes.
    Redis,
    /// The process environment.
    Env,
    /// YAML or JSON files.
    File,
    /// Secrets in Vault or OpenBao.
    Vault,
}

impl BackendKind {
    /// Every backend, in the order error messages list them.
    pub const ALL: [BackendKind; 7] = [
        BackendKind::Etcd,
        BackendKind::EtcdV3,
        BackendKind::Consul,
        BackendKind::Redis,
        BackendKind::Env,
        BackendKind::File,
        BackendKind::Vault,
    ];

    /// The name `-backend` uses.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Etcd => "etcd",
            BackendKind::EtcdV3 => "etcdv3",
            BackendKind::Consul => "consul",
            BackendKind::Redis => "redis",
            BackendKind::Env => "env",
            BackendKind::File => "file",
            BackendKind::Vault => "vault",
        }
    }

    /// Whether this backend talks to a server over the network (and so uses
    /// -node, authentication and TLS flags).
    pub fn is_networked(self) -> bool {
        matches!(
            self,
            BackendKind::Etcd
                | BackendKind::EtcdV3
                | BackendKind::Consul
                | BackendKind::Redis
                | BackendKind::Vault
        )
    }

    /// Where the backend connects when no `-node` is given.
    pub fn default_node(self) -> Option<&'static str> {
        match self {
            BackendKind::Etcd | BackendKind::EtcdV3 => Some(etcd::DEFAULT_NODE),
            BackendKind::Consul => Some(consul::DEFAULT_NODE),
            BackendKind::Redis => Some(redis::DEFAULT_NODE),
            BackendKind::Vault => Some(vault::DEFAULT_NODE),
            BackendKind::Env | BackendKind::File => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let valid: Vec<&str> = BackendKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown backend {s:?}; valid backends: {}",
                    valid.join(", ")
                )
            })
    }
}

/// A backend's typed settings: which backend, and everything it needs to
/// connect. Built from the run's settings by `Settings::backend_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// etcd's v2 keys API.
    Etcd(http::HttpConfig),
    /// etcd's v3 API, over gRPC or its JSON gateway.
    EtcdV3(http::HttpConfig, etcdv3::EtcdV3Api),
    /// Consul's KV store.
    Consul(consul::ConsulConfig),
    /// Redis.
    Redis(redis::RedisConfig),
    /// The process environment.
    Env,
    /// YAML or JSON files.
    File(file::FileConfig),
    /// Vault or OpenBao.
    Vault(vault::VaultConfig),
}

impl BackendConfig {
    /// Which backend this configures.
    pub fn kind(&self) -> BackendKind {
        match self {
            BackendConfig::Etcd(_) => BackendKind::Etcd,
            BackendConfig::EtcdV3(..) => BackendKind::EtcdV3,
            BackendConfig::Consul(_) => BackendKind::Consul,
            BackendConfig::Redis(_) => BackendKind::Redis,
            BackendConfig::Env => BackendKind::Env,
            BackendConfig::File(_) => BackendKind::File,
            BackendConfig::Vault(_) => BackendKind::Vault,
        }
    }
}

/// Builds the configured backend. Nothing is sent yet: a backend that is
/// down shows at the first read, not here.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, ConfigError> {
    Ok(match config {
        BackendConfig::Etcd(http) => Arc::new(etcd::EtcdBackend::new(http)?),
        BackendConfig::EtcdV3(http, api) => etcdv3::build(http, *api)?,
        BackendConfig::Consul(consul) => Arc::new(consul::ConsulBackend::new(consul)?),
        BackendConfig::Redis(redis) => Arc::new(redis::RedisBackend::new(redis)?),
        BackendConfig::Env => Arc::new(env::EnvBackend::new()),
        BackendConfig::File(files) => Arc::new(file::FileBackend::new(files.clone())?),
        BackendConfig::Vault(vault) => Arc::new(vault::VaultBackend::new(vault)?),
    })
}

/// Keeps the pairs whose key lies within one of `roots`.
pub(crate) fn within_roots(key: &str, roots: &[String]) -> bool {
    roots.iter().any(|r| crate::snapshot::is_within(key, r))
}
