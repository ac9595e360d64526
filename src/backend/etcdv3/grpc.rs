//! The `etcdv3` backend over etcd's native gRPC API (etcd-client: tonic and
//! prost), the default transport (`-etcdv3-api grpc`); the JSON gateway in
//! the rest of this folder is the fallback (`-etcdv3-api gateway`). gRPC is
//! etcd's own API, served by every etcd 3.x even with
//! `--enable-grpc-gateway=false`, and etcd spends about 9× less CPU on a
//! Range than on the gateway's JSON of the same keys (bench/README.md).
//!
//! Each distinct prefix is read in Ranges of [`PAGE_KEYS`] keys, all at the
//! revision of the first, each decoded within `-max-response-size`: large
//! pages because etcd 3.4 walks the rest of the range for every page, not
//! one Range because its decoded messages would all be in memory at once. Nodes keep confd's `-node` semantics: one
//! client per node, tried in order, the last one that answered first.
//! Credentials (`-username`/`-password`, or a node URL's user information)
//! go to etcd-client's authentication; its `ConnectOptions` derive `Debug`
//! with the password in it, so they are built where they are used and
//! never formatted.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions};
use serde::Deserialize;

use super::grpc_watch::OpenGrpcWatch;
use super::{EtcdV3Backend, OpenStreams, read_roots, subtree_range, text_key, text_value};
use crate::backend::http::{
    CONNECT_TIMEOUT, HttpConfig, Node, REQUEST_TIMEOUT, TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_INTERVAL,
    TCP_KEEPALIVE_PROBES, quote_server,
};
use crate::backend::{Backend, BackendError, Fetched, WatchEvent};
use crate::error::ConfigError;
use crate::size::format_size;
use crate::snapshot::PairList;

/// Keys per Range of a read. etcd 3.4 walks the index from a page's start to
/// the end of the range for every page, so small pages cost it far more CPU
/// (20 pages of 5,000 keys: ≈ 3× one Range, bench/README.md); one Range holds
/// every decoded key at once. A 100,000-key prefix is 4 pages.
const PAGE_KEYS: i64 = 25_000;

/// Which API the etcdv3 backend speaks (`-etcdv3-api`, `etcdv3_api` in
/// confd.toml).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EtcdV3Api {
    /// etcd's native gRPC API over HTTP/2.
    #[default]
    Grpc,
    /// etcd's JSON gateway (`/v3/...` over HTTP/1.1), for nodes reached
    /// through a proxy that passes HTTP/1.1 only.
    Gateway,
}

impl EtcdV3Api {
    /// The name `-etcdv3-api` uses.
    pub fn name(self) -> &'static str {
        match self {
            EtcdV3Api::Grpc => "grpc",
            EtcdV3Api::Gateway => "gateway",
        }
    }
}

impl FromStr for EtcdV3Api {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grpc" => Ok(EtcdV3Api::Grpc),
            "gateway" => Ok(EtcdV3Api::Gateway),
            other => Err(format!("{other:?}: use grpc or gateway")),
        }
    }
}

/// Builds the etcdv3 backend for the chosen API (nothing is sent yet).
pub fn build(config: &HttpConfig, api: EtcdV3Api) -> Result<Arc<dyn Backend>, ConfigError> {
    Ok(match api {
        EtcdV3Api::Grpc => Arc::new(EtcdV3Grpc::new(config)?),
        EtcdV3Api::Gateway => Arc::new(EtcdV3Backend::new(config)?),
    })
}

/// One `-node` as gRPC reaches it.
struct GrpcNode {
    /// `http://host:port` or `https://host:port`, without user information.
    endpoint: String,
    /// The address as messages show it (password masked).
    name: String,
    tls: bool,
}

/// Why a call on one node failed: worth trying the next node (it did not
/// answer), or the node's answer.
enum Failure {
    Next(String),
    Answer(BackendError),
}

/// Reads etcd through its gRPC API. Its `Debug` shows the nodes only.
pub struct EtcdV3Grpc {
    nodes: Vec<GrpcNode>,
    user: Option<(String, String)>,
    tls: Option<TlsOptions>,
    /// One client per node, made at its first use.
    clients: std::sync::Mutex<Vec<Option<Client>>>,
    preferred: AtomicUsize,
    max_response_size: u64,
    watch_timeout: Duration,
    /// One open watch stream per prefix, kept between calls (see the
    /// gateway's `streams` for why).
    pub(super) streams: OpenStreams<OpenGrpcWatch>,
}

impl std::fmt::Debug for EtcdV3Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdV3Grpc")
            .field("nodes", &self.describe_nodes())
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

fn read_pem(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| {
        ConfigError::setting(
            flag,
            format!("{}: {}", path.display(), crate::error::io_reason(&e)),
        )
    })
}

/// The TLS settings of `https://` nodes from `-client-ca-keys` (then only
/// those roots are trusted, as on the gateway path; otherwise the system's),
/// `-client-cert` and `-client-key`.
fn tls_options(config: &HttpConfig) -> Result<TlsOptions, ConfigError> {
    let auth = &config.auth;
    let mut tls = TlsOptions::new();
    tls = match &auth.client_ca_keys {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read_pem("-client-ca-keys", ca)?)),
        None => tls.with_native_roots(),
    };
    match (&auth.client_cert, &auth.client_key) {
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(
                read_pem("-client-cert", cert)?,
                read_pem("-client-key", key)?,
            );
            Ok(tls.identity(identity))
        }
        (Some(_), None) => Err(ConfigError::setting(
            "-client-cert",
            "needs -client-key as well",
        )),
        (None, Some(_)) => Err(ConfigError::setting(
            "-client-key",
            "needs -client-cert as well",
        )),
        (None, None) => Ok(tls),
    }
}

impl EtcdV3Grpc {
    /// Prepares the clients (nothing is sent yet); unreadable TLS files and
    /// bad addresses are configuration errors.
    pub fn new(config: &HttpConfig) -> Result<EtcdV3Grpc, ConfigError> {
        // tonic's rustls uses ring explicitly; reqwest, also in the build,
        // needs the process default, which this keeps the same.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut user = None;
        let mut nodes = Vec::new();
        for address in &config.nodes {
            let node = Node::parse(address, &config.scheme)
                .map_err(|e| ConfigError::setting("-node", e))?;
            // As on the gateway path: the first node URL's user information
            // stands for -username/-password when those are not given.
            if user.is_none() {
                user = node.userinfo.clone();
            }
            let tls = node.url.scheme() == "https";
            let endpoint = node.url.as_str().trim_end_matches('/').to_string();
            nodes.push(GrpcNode {
                endpoint,
                name: node.name,
                tls,
            });
        }
        if let Some(name) = &config.auth.username {
            user = Some((
                name.clone(),
                config.auth.password.clone().unwrap_or_default(),
            ));
        }
        let tls = if nodes.iter().any(|n| n.tls) {
            Some(tls_options(config)?)
        } else {
            // Checked all the same: a bad flag is an error whatever the nodes.
            tls_options(config)?;
            None
        };
        let count = nodes.len();
        Ok(EtcdV3Grpc {
            nodes,
            user,
            tls,
            clients: std::sync::Mutex::new(vec![None; count]),
            preferred: AtomicUsize::new(0),
            max_response_size: config.max_response_size,
            watch_timeout: config.watch_timeout,
            streams: OpenStreams::default(),
        })
    }

    /// The configured nodes, for messages (passwords masked).
    pub fn describe_nodes(&self) -> String {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        names.join(", ")
    }

    /// How long a watch may go without a word from its node.
    pub(super) fn watch_timeout(&self) -> Duration {
        self.watch_timeout
    }

    /// The decoding limit of every answer and watch message.
    pub(super) fn decoding_limit(&self) -> usize {
        usize::try_from(self.max_response_size).unwrap_or(usize::MAX)
    }

    pub(super) fn error(&self, location: String, message: String) -> BackendError {
        BackendError {
            backend: "etcdv3",
            location,
            message,
            transient: false,
        }
    }

    /// An answer or watch message over `-max-response-size` (the words of
    /// the gateway path's message).
    pub(super) fn too_large(&self, location: String) -> BackendError {
        self.error(
            location,
            format!(
                "answer larger than the {} limit of -max-response-size; raise the limit if this much data is expected",
                format_size(self.max_response_size)
            ),
        )
    }

    /// The client of node `index`, connecting it first if need be (with
    /// credentials, connecting authenticates).
    async fn client(&self, index: usize) -> Result<Client, Failure> {
        if let Some(client) = self
            .clients
            .lock()
            .ok()
            .and_then(|clients| clients.get(index).cloned().flatten())
        {
            return Ok(client);
        }
        let node = &self.nodes[index];
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_tcp_keepalive(TCP_KEEPALIVE_IDLE)
            // HTTP/2 pings on a connection with an open watch, the same
            // rhythm as the TCP keepalive: a silently dead node is noticed
            // in about 30 s even while a watch waits. Not while idle: etcd
            // answers pings without a stream with GOAWAY (too many pings).
            .with_keep_alive(
                TCP_KEEPALIVE_IDLE,
                TCP_KEEPALIVE_INTERVAL * TCP_KEEPALIVE_PROBES,
            )
            .with_keep_alive_while_idle(false);
        if let Some((name, password)) = &self.user {
            options = options
                .with_user(name.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        if node.tls
            && let Some(tls) = &self.tls
        {
            options = options.with_tls(tls.clone());
        }
        let connected = tokio::time::timeout(
            REQUEST_TIMEOUT,
            Client::connect([&node.endpoint], Some(options)),
        )
        .await;
        let client = match connected {
            Err(_) => {
                return Err(Failure::Next(format!(
                    "{} timed out: no answer within {}",
                    node.name,
                    humantime::format_duration(REQUEST_TIMEOUT)
                )));
            }
            Ok(Err(e)) => {
                return Err(match self.classify(&e, &node.name) {
                    Failure::Answer(mut error) if self.user.is_some() => {
                        error.message = format!(
                            "authentication as {:?} failed: {}",
                            self.user.as_ref().map_or("", |(name, _)| name.as_str()),
                            error.message
                        );
                        Failure::Answer(error)
                    }
                    other => other,
                });
            }
            Ok(Ok(client)) => client,
        };
        if let Ok(mut clients) = self.clients.lock()
            && let Some(slot) = clients.get_mut(index)
        {
            *slot = Some(client.clone());
        }
        Ok(client)
    }

    /// Sorts a failed call into "try the next node" (no answer: the node is
    /// down, unreachable or overloaded) and the node's answer.
    fn classify(&self, error: &etcd_client::Error, node: &str) -> Failure {
        use tonic::Code;
        let status = match error {
            etcd_client::Error::GRpcStatus(status) => status,
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
                return Failure::Next(format!("{node} cannot connect: {}", innermost(error)));
            }
            other => {
                return Failure::Answer(self.error(node.to_string(), quote_server(other)));
            }
        };
        let message = status.message();
        if status.code() == Code::OutOfRange && message.contains("decoded message length too large")
        {
            return Failure::Answer(self.too_large(node.to_string()));
        }
        let mut text = format!("gRPC status {:?}: {}", status.code(), quote_server(message));
        // A connection failure says why only in its causes ("connection
        // refused", a certificate problem).
        if std::error::Error::source(status).is_some() {
            text = format!("{text}: {}", innermost(status));
        }
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                Failure::Next(format!("{node} {text}"))
            }
            _ => Failure::Answer(self.error(node.to_string(), text)),
        }
    }

    /// Runs `call` on each node in turn (the one that answered last first)
    /// until one answers within `limit`; returns the answer and the node's
    /// name for messages.
    pub(crate) async fn on_nodes<T, F, Fut>(
        &self,
        limit: Duration,
        mut call: F,
    ) -> Result<(T, String), BackendError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let count = self.nodes.len();
        let first = self.preferred.load(Ordering::Relaxed) % count.max(1);
        let mut failures = Vec::new();
        for offset in 0..count {
            let index = (first + offset) % count;
            let name = &self.nodes[index].name;
            let client = match self.client(index).await {
                Ok(client) => client,
                Err(Failure::Next(failure)) => {
                    failures.push(failure);
                    continue;
                }
                Err(Failure::Answer(error)) => return Err(error),
            };
            match tokio::time::timeout(limit, call(client)).await {
                Ok(Ok(answer)) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((answer, name.clone()));
                }
                Ok(Err(e)) => match self.classify(&e, name) {
                    Failure::Next(failure) => failures.push(failure),
                    Failure::Answer(error) => return Err(error),
                },
                Err(_) => failures.push(format!(
                    "{name} timed out: no answer within {}",
                    humantime::format_duration(limit)
                )),
            }
        }
        let message = match failures.as_slice() {
            [only] => only.clone(),
            _ => format!("no node answered: {}", failures.join("; ")),
        };
        Err(BackendError {
            backend: "etcdv3",
            location: "nodes".to_string(),
            message,
            transient: true,
        })
    }

    /// Reads everything under `root` at `revision` (0: the current one)
    /// into `out`, in Ranges of [`PAGE_KEYS`] keys; returns the revision
    /// read at (the first page's, when `revision` is 0).
    async fn read_root(
        &self,
        root: &str,
        revision: u64,
        out: &mut PairList,
    ) -> Result<u64, BackendError> {
        let (mut from, range_end) = subtree_range(root);
        let limit = self.decoding_limit();
        let mut read_at = revision;
        loop {
            let mut options = GetOptions::new()
                .with_range(range_end.clone())
                .with_limit(PAGE_KEYS);
            if read_at > 0 {
                options = options.with_revision(i64::try_from(read_at).unwrap_or(i64::MAX));
            }
            let (answer, node) = self
                .on_nodes(REQUEST_TIMEOUT, |client| {
                    let (from, options) = (from.clone(), options.clone());
                    async move {
                        let mut kv = client.kv_client().max_decoding_message_size(limit);
                        kv.get(from, Some(options)).await
                    }
                })
                .await?;
            let location = format!("{node} prefix {root}");
            for kv in answer.kvs() {
                let refused = |message: String| self.error(location.clone(), message);
                if let Some(key) = text_key(root, kv.key()).map_err(refused)? {
                    let value = text_value(&key, kv.value()).map_err(refused)?;
                    out.push(&key, value);
                }
            }
            // The first page fixes the revision of the later pages and of
            // every later prefix (etcd reports its current revision even for
            // a read pinned to an older one).
            if read_at == 0 {
                let current = answer.header().map_or(0, |h| h.revision());
                read_at = u64::try_from(current).unwrap_or(0);
            }
            match answer.kvs().last() {
                Some(last) if answer.more() => {
                    // The next page starts just after the last key.
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok(read_at),
            }
        }
    }
}

/// An error's innermost cause (tonic's own text only says "transport
/// error"); it names no credentials.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    quote_server(cause)
}

#[async_trait]
impl Backend for EtcdV3Grpc {
    fn name(&self) -> &'static str {
        "etcdv3"
    }

    fn can_watch(&self) -> bool {
        true
    }

    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        self.watch_root(root, index).await
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        read_roots(roots, |root, revision, mut pairs| async move {
            let read_at = self.read_root(root, revision, &mut pairs).await?;
            Ok((read_at, pairs))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(nodes: &[&str], password: Option<&str>) -> HttpConfig {
        HttpConfig {
            backend: "etcdv3",
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            scheme: "http".into(),
            auth: crate::backend::http::ClientAuth {
                username: password.map(|_| "root".to_string()),
                password: password.map(str::to_string),
                ..Default::default()
            },
            max_response_size: crate::backend::http::DEFAULT_MAX_RESPONSE_SIZE,
            watch_timeout: crate::backend::http::DEFAULT_WATCH_TIMEOUT,
        }
    }

    #[test]
    fn the_api_names_parse_and_others_are_refused() {
        assert_eq!("grpc".parse(), Ok(EtcdV3Api::Grpc));
        assert_eq!("gateway".parse(), Ok(EtcdV3Api::Gateway));
        assert_eq!(EtcdV3Api::default(), EtcdV3Api::Grpc);
        let error = "GRPC".parse::<EtcdV3Api>().expect_err("case matters");
        assert_eq!(error, "\"GRPC\": use grpc or gateway");
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let backend = EtcdV3Grpc::new(&config(
            &["http://u:url-s3cret@127.0.0.1:1", "127.0.0.1:2"],
            Some("flag-s3cret"),
        ))
        .expect("backend");
        let shown = format!("{backend:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("http://u:***@127.0.0.1:1, http://127.0.0.1:2"));
        assert_eq!(backend.nodes[1].endpoint, "http://127.0.0.1:2");
        // The flags win over the URL's user information.
        assert_eq!(
            backend.user,
            Some(("root".to_string(), "flag-s3cret".to_string()))
        );
        let from_url = EtcdV3Grpc::new(&config(&["http://u:p%40ss@h:1"], None)).expect("backend");
        assert_eq!(from_url.user, Some(("u".to_string(), "p@ss".to_string())));
    }
}
