//! The `redis` backend, compatible with confd's: string keys are keys, and
//! each field of a hash is a key below the hash's (`HSET /app/db host x` is
//! `/app/db/host`). With `-separator :`, `/` in a key stands for `:` in
//! Redis (`/app/db/host` is `app:db:host`), the leading `/` dropped, as
//! confd does. Other types (lists, sets, sorted sets, streams) are not data
//! and are skipped, as confd skips them.
//!
//! A prefix is read with one `SCAN … MATCH <prefix><sep>*` cursor walk (never
//! `KEYS`, which blocks the server), the values of each batch with one
//! `MGET`, and the batch's hashes with pipelined `HGETALL`s: a few round
//! trips per thousand keys. `/app` never picks up `/apple`. Every answer is
//! capped by `-max-response-size`, and so is the whole read of one prefix.
//!
//! The protocol is spoken by `resp.rs`, a small RESP2 reader of our own: it
//! checks a bulk string's announced length against the cap before reading
//! it, which no client library offers. Connections (`conn.rs`) take TCP with
//! keepalive, TLS (rustls, `rediss://` or the TLS flags) or a Unix socket,
//! and fail over across `-node`s. `-watch` (`watch.rs`) follows keyspace
//! notifications.

mod conn;
pub mod node;
mod resp;
mod tls;
mod watch;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use super::{Backend, BackendError, Fetched, WatchEvent};
use crate::error::ConfigError;
use crate::snapshot::clean_key;
use conn::{Conn, Dialer, Fault, refusal};
use node::RedisNode;
use resp::Reply;

/// Where `-backend redis` connects when no `-node` is given.
pub const DEFAULT_NODE: &str = "127.0.0.1:6379";
/// How many keys one `SCAN` step asks for, and one `MGET` reads.
const BATCH: usize = 1000;

/// Redis-specific settings.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Node addresses, in failover order.
    pub nodes: Vec<String>,
    /// ACL user (`-username`); the password alone authenticates the default
    /// user.
    pub username: Option<String>,
    /// `AUTH` password (`-password`).
    pub password: Option<String>,
    /// TLS client certificate and key (PEM).
    pub client_cert: Option<PathBuf>,
    /// TLS client key (PEM).
    pub client_key: Option<PathBuf>,
    /// CA certificates to trust (PEM); the system's roots otherwise.
    pub client_ca_keys: Option<PathBuf>,
    /// What stands for `/` in keys.
    pub separator: String,
    /// The largest answer, and the largest read of one prefix, in bytes.
    pub max_response_size: u64,
    /// How long a subscription may stay silent before it is checked.
    pub watch_timeout: Duration,
    /// The polling period when the server sends no notifications.
    pub interval: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| crate::backend::http::redact_address(n))
            .collect();
        f.debug_struct("RedisConfig")
            .field("nodes", &nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("client_cert", &self.client_cert)
            .field("client_ca_keys", &self.client_ca_keys)
            .field("separator", &self.separator)
            .finish_non_exhaustive()
    }
}

/// confd keys ↔ Redis keys.
#[derive(Debug, Clone)]
struct KeyMap {
    separator: String,
}

impl KeyMap {
    /// The Redis key of a confd key (`/app/db` → `app:db` with `:`).
    fn to_redis(&self, key: &str) -> String {
        if self.separator == "/" {
            return key.to_string();
        }
        key.strip_prefix('/')
            .unwrap_or(key)
            .replace('/', &self.separator)
    }

    /// The confd key of a Redis key (`app:db` → `/app/db` with `:`).
    fn to_confd(&self, key: &str) -> String {
        clean_key(&format!("/{}", key.replace(&self.separator, "/")))
    }

    /// The `SCAN MATCH` pattern of everything strictly below `root`.
    fn below(&self, root: &str) -> String {
        if root == "/" {
            return "*".to_string();
        }
        format!(
            "{}{}*",
            escape_glob(&self.to_redis(root)),
            escape_glob(&self.separator)
        )
    }

    /// Whether Redis key `key` is `root` or lies below it.
    fn is_under(&self, key: &[u8], root: &str) -> bool {
        if root == "/" {
            return true;
        }
        let exact = self.to_redis(root);
        key == exact.as_bytes()
            || key
                .strip_prefix(exact.as_bytes())
                .is_some_and(|rest| rest.starts_with(self.separator.as_bytes()))
    }
}

/// Escapes Redis's glob characters, so a key is matched literally.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text from Redis that must be UTF-8 (confd renders text and never writes
/// data it had to alter).
fn text(bytes: Vec<u8>, what: &str, key: &[u8]) -> Result<String, Fault> {
    String::from_utf8(bytes).map_err(|e| Fault::Answer {
        message: format!(
            "key {}: the {what} is not valid UTF-8 (byte {} of {}); confd renders text only and never writes altered data",
            crate::backend::http::quote_server(String::from_utf8_lossy(key)),
            e.utf8_error().valid_up_to(),
            e.as_bytes().len()
        ),
        transient: false,
    })
}

/// Reads Redis.
pub struct RedisBackend {
    dialer: Dialer,
    keys: KeyMap,
    max_response_size: u64,
    /// The connection reads use, kept between passes.
    conn: tokio::sync::Mutex<Option<Conn>>,
    /// Redis keys last seen holding a hash: a change to one of them is read
    /// with the whole prefix (its fields are keys of their own).
    hashes: std::sync::Mutex<HashSet<Vec<u8>>>,
    watches: watch::Watches,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("nodes", &self.dialer.describe())
            .field("separator", &self.keys.separator)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Parses the nodes and sets up TLS (nothing is sent yet).
    pub fn new(config: &RedisConfig) -> Result<RedisBackend, ConfigError> {
        let tls_flags = config.client_cert.is_some() || config.client_ca_keys.is_some();
        let mut nodes = Vec::with_capacity(config.nodes.len());
        for text in &config.nodes {
            let mut node = RedisNode::parse(text).map_err(|e| ConfigError::setting("-node", e))?;
            if tls_flags && !node.tls {
                if matches!(node.address, node::Address::Unix(_)) {
                    return Err(ConfigError::setting(
                        "-node",
                        format!(
                            "{}: a Unix socket does not speak TLS; drop the TLS flags",
                            node.name
                        ),
                    ));
                }
                node.tls = true;
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            return Err(ConfigError::setting(
                "-node",
                "the redis backend needs a node",
            ));
        }
        // A key without its certificate would otherwise go unused (a
        // -client-key naming no file was taken as the password already).
        if config.client_key.is_some() && config.client_cert.is_none() {
            return Err(ConfigError::setting(
                "-client-key",
                "needs -client-cert as well",
            ));
        }
        if config.separator.is_empty() {
            return Err(ConfigError::setting("-separator", "must not be empty"));
        }
        if config.username.is_some() && config.password.is_none() {
            return Err(ConfigError::setting(
                "-username",
                "needs -password as well (Redis authenticates a user with both)",
            ));
        }
        let tls = if nodes.iter().any(|n| n.tls) {
            Some(tls::client_config(config)?)
        } else {
            None
        };
        Ok(RedisBackend {
            dialer: Dialer::new(nodes, tls, config.username.clone(), config.password.clone()),
            keys: KeyMap {
                separator: config.separator.clone(),
            },
            max_response_size: config.max_response_size,
            conn: tokio::sync::Mutex::new(None),
            hashes: std::sync::Mutex::new(HashSet::new()),
            watches: watch::Watches::new(config.watch_timeout, config.interval),
        })
    }

    /// Reads `root` and everything below it into `out`; the Redis keys
    /// that hold hashes go to `hashes`.
    async fn read_root(
        &self,
        conn: &mut Conn,
        root: &str,
        out: &mut Vec<(String, String)>,
        hashes: &mut Vec<Vec<u8>>,
    ) -> Result<(), Fault> {
        let mut budget = self.max_response_size;
        let pattern = self.keys.below(root);
        // SCAN may return a key twice; each is read once.
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut batch: Vec<Vec<u8>> = Vec::new();
        if root != "/" {
            // The prefix's own key, read alone: an ACL user granted only the
            // keys below it (`~app:*`) may not read it, and for that user
            // it does not exist.
            let own = self.keys.to_redis(root).into_bytes();
            seen.insert(own.clone());
            let own = [own];
            match self.fetch(conn, &own, out, hashes, &mut budget).await {
                Err(Fault::Answer { message, .. }) if message.starts_with("NOPERM") => {}
                other => other?,
            }
        }
        let mut cursor = b"0".to_vec();
        loop {
            let command = vec![
                b"SCAN".to_vec(),
                cursor.clone(),
                b"MATCH".to_vec(),
                pattern.clone().into_bytes(),
                b"COUNT".to_vec(),
                BATCH.to_string().into_bytes(),
            ];
            let reply = conn.call(command, &mut budget).await?;
            if let Some(text) = reply.error_text() {
                return Err(refusal(text, ""));
            }
            let mut parts = reply.into_items().unwrap_or_default().into_iter();
            let (Some(next), Some(found)) = (
                parts.next().and_then(Reply::into_bytes),
                parts.next().and_then(Reply::into_items),
            ) else {
                return Err(Fault::Node(
                    "SCAN answered in an unexpected shape".to_string(),
                ));
            };
            for key in found.into_iter().filter_map(Reply::into_bytes) {
                if seen.insert(key.clone()) {
                    batch.push(key);
                }
            }
            cursor = next;
            let done = cursor == b"0";
            if batch.len() >= BATCH || done {
                self.fetch(conn, &batch, out, hashes, &mut budget).await?;
                batch.clear();
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Reads the values of `keys`: one `MGET`, then an `HGETALL` for each
    /// key that holds no string (a hash, another type, or gone meanwhile).
    async fn fetch(
        &self,
        conn: &mut Conn,
        keys: &[Vec<u8>],
        out: &mut Vec<(String, String)>,
        hashes: &mut Vec<Vec<u8>>,
        budget: &mut u64,
    ) -> Result<(), Fault> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut mget = vec![b"MGET".to_vec()];
        mget.extend(keys.iter().cloned());
        let reply = conn.call(mget, budget).await?;
        if let Some(text) = reply.error_text() {
            return Err(refusal(text, ""));
        }
        let values = reply.into_items().unwrap_or_default();
        if values.len() != keys.len() {
            return Err(Fault::Node(
                "MGET answered in an unexpected shape".to_string(),
            ));
        }
        let mut others = Vec::new();
        for (key, value) in keys.iter().zip(values) {
            match value.into_bytes() {
                Some(value) => {
                    let name = text(key.clone(), "key", key)?;
                    out.push((self.keys.to_confd(&name), text(value, "value", key)?));
                }
                None => others.push(key.clone()),
            }
        }
        if others.is_empty() {
            return Ok(());
        }
        let commands: Vec<Vec<Vec<u8>>> = others
            .iter()
            .map(|key| vec![b"HGETALL".to_vec(), key.clone()])
            .collect();
        let replies = conn.pipeline(&commands, budget).await?;
        for (key, reply) in others.into_iter().zip(replies) {
            if reply.is_error("WRONGTYPE") {
                continue; // a list, set, sorted set or stream: not data
            }
            if let Some(text) = reply.error_text() {
                return Err(refusal(text, ""));
            }
            let fields = reply.into_items().unwrap_or_default();
            if fields.is_empty() {
                continue; // gone since the SCAN
            }
            let name = text(key.clone(), "key", &key)?;
            let mut fields = fields.into_iter().filter_map(Reply::into_bytes);
            while let (Some(field), Some(value)) = (fields.next(), fields.next()) {
                let field = text(field, "field name", &key)?;
                // confd joins a hash's key and its fields with '/'.
                let full = self.keys.to_confd(&format!("{name}/{field}"));
                out.push((full, text(value, "value", &key)?));
            }
            hashes.push(key);
        }
        Ok(())
    }

    /// One command on the read connection (outside a read), reconnecting
    /// once when a kept connection turns out to be dead.
    async fn call_read(&self, command: Vec<Vec<u8>>) -> Result<Reply, BackendError> {
        let limit = self.max_response_size;
        let mut slot = self.conn.lock().await;
        let mut retries = self.dialer.count() + 1;
        loop {
            let fresh = slot.is_none();
            let conn = match slot.as_mut() {
                Some(conn) => conn,
                None => slot.insert(self.dialer.connect_any(limit).await?),
            };
            let mut budget = limit;
            match conn.call(command.clone(), &mut budget).await {
                Ok(reply) => return Ok(reply),
                Err(fault) => {
                    let (node, name) = (conn.node, conn.name.clone());
                    *slot = None;
                    match fault {
                        Fault::Node(_) if retries > 0 => {
                            retries -= 1;
                            if fresh {
                                self.dialer.skip(node);
                            }
                        }
                        fault => return Err(fault.into_error(&name, limit)),
                    }
                }
            }
        }
    }

    /// Remembers which keys under `root` hold hashes.
    fn note_hashes(&self, root: &str, found: Vec<Vec<u8>>) {
        if let Ok(mut hashes) = self.hashes.lock() {
            hashes.retain(|key| !self.keys.is_under(key, root));
            hashes.extend(found);
        }
    }

    /// Whether Redis key `key` was last seen holding a hash.
    fn is_hash(&self, key: &[u8]) -> bool {
        self.hashes.lock().map(|h| h.contains(key)).unwrap_or(true)
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        // Taken first: a notification that arrives during the read is newer.
        let index = self.watches.index();
        let limit = self.max_response_size;
        let mut slot = self.conn.lock().await;
        let mut pairs = Vec::new();
        // A kept connection may have died since the last pass (a restarted
        // server, an idle timeout): reconnect, and fail over past nodes
        // that break during the read.
        let mut retries = self.dialer.count() + 1;
        for root in roots {
            loop {
                let fresh = slot.is_none();
                let conn = match slot.as_mut() {
                    Some(conn) => conn,
                    None => slot.insert(
                        self.dialer
                            .connect_any(limit)
                            .await
                            .map_err(|e| e.reading(root))?,
                    ),
                };
                let (mut found, mut hashes) = (Vec::new(), Vec::new());
                match self.read_root(conn, root, &mut found, &mut hashes).await {
                    Ok(()) => {
                        pairs.extend(found);
                        self.note_hashes(root, hashes);
                        break;
                    }
                    Err(fault) => {
                        let (node, name) = (conn.node, conn.name.clone());
                        // The stream may have stopped half-way through a
                        // reply: never reuse it.
                        *slot = None;
                        match fault {
                            Fault::Node(_) if retries > 0 => {
                                retries -= 1;
                                if fresh {
                                    self.dialer.skip(node);
                                }
                                tracing::debug!(node = %name, "redis connection failed during a read; trying again");
                            }
                            fault => return Err(fault.into_error(&name, limit).reading(root)),
                        }
                    }
                }
            }
        }
        Ok(Fetched {
            pairs: pairs.into(),
            index,
            root_indexes: Vec::new(),
        })
    }

    fn can_watch(&self) -> bool {
        true
    }

    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        self.watch_root(root, index).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(separator: &str) -> KeyMap {
        KeyMap {
            separator: separator.to_string(),
        }
    }

    #[test]
    fn keys_map_as_confd_maps_them() {
        let colon = map(":");
        assert_eq!(colon.to_redis("/app/db/host"), "app:db:host");
        assert_eq!(colon.to_confd("app:db:host"), "/app/db/host");
        // A hash field joins its key with '/'.
        assert_eq!(colon.to_confd("app:db/user"), "/app/db/user");
        let slash = map("/");
        assert_eq!(slash.to_redis("/app/db"), "/app/db");
        assert_eq!(slash.to_confd("/app/db"), "/app/db");
        assert_eq!(slash.to_confd("app/db"), "/app/db");
    }

    #[test]
    fn patterns_match_below_a_prefix_literally() {
        assert_eq!(map(":").below("/app"), "app:*");
        assert_eq!(map("/").below("/app"), "/app/*");
        assert_eq!(map(":").below("/"), "*");
        assert_eq!(map(":").below("/a*b/[x]"), "a\\*b:\\[x\\]:*");
        assert_eq!(map("?").below("/a"), "a\\?*");
        let colon = map(":");
        assert!(colon.is_under(b"app", "/app"));
        assert!(colon.is_under(b"app:x", "/app"));
        assert!(!colon.is_under(b"apple", "/app"));
        assert!(colon.is_under(b"anything", "/"));
    }

    #[test]
    fn values_that_are_not_utf8_name_their_key() {
        match text(vec![b'o', 0xff], "value", b"app:bin") {
            Err(Fault::Answer { message, transient }) => {
                assert!(message.contains("key app:bin"), "{message}");
                assert!(message.contains("UTF-8"), "{message}");
                assert!(!transient);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn debug_output_masks_the_password() {
        let config = RedisConfig {
            nodes: vec!["redis://u:n0de-secret@h:1".to_string()],
            username: Some("app".to_string()),
            password: Some("s3cret".to_string()),
            client_cert: None,
            client_key: None,
            client_ca_keys: None,
            separator: "/".to_string(),
            max_response_size: 1 << 20,
            watch_timeout: Duration::from_secs(60),
            interval: Duration::from_secs(600),
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("n0de-secret"),
            "{shown}"
        );
        let backend = RedisBackend::new(&config).expect("builds");
        let shown = format!("{backend:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("n0de-secret"),
            "{shown}"
        );
    }
}
