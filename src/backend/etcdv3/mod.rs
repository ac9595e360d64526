//! The `etcdv3` backend: etcd's v3 API natively over gRPC (`grpc.rs`,
//! `grpc_watch.rs`; the default), or through its JSON gateway
//! (`/v3/kv/range`, this file, `range.rs` and `watch.rs`; `-etcdv3-api
//! gateway`). Each distinct prefix is one range read
//! at one revision, paged for large ranges; keys and values travel base64
//! encoded. With -username/-password (or a node URL's `user:password@`) the
//! gateway's token authentication is used (basic auth is a v2 notion).

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Mutex;

mod grpc;
mod grpc_watch;
mod range;
mod watch;

pub use grpc::{EtcdV3Api, EtcdV3Grpc, build};

use watch::OpenWatch;

use super::http::{BodyReader, HttpConfig, Limits, NodeClient, quote_server, server_text};
use super::{Backend, BackendError, Change, Fetched, WatchEvent};
use crate::error::ConfigError;
use crate::snapshot::{PairList, clean_key, is_within};

/// Keys asked for per range request; larger ranges are paged.
const PAGE_SIZE: u64 = 5_000;

/// Reads etcd through the v3 JSON gateway.
#[derive(Debug)]
pub struct EtcdV3Backend {
    client: NodeClient,
    credentials: Option<(String, String)>,
    token: Mutex<Option<String>>,
    /// One open watch stream per prefix, kept between calls: re-opening a
    /// watch in the past makes etcd treat it as a slow watcher, which it
    /// only catches up every 100 ms (enough to split a burst in two).
    streams: OpenStreams<OpenWatch>,
}

#[derive(Debug, Deserialize)]
struct Header {
    #[serde(default, deserialize_with = "number_or_string")]
    revision: u64,
}

#[derive(Debug, Deserialize)]
struct GatewayError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
}

#[derive(Debug, Deserialize)]
struct AuthResponse {
    token: String,
}

/// The gateway prints int64 fields as strings; accept both forms.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(t) => t.parse().map_err(serde::de::Error::custom),
    }
}

/// The `[key, range_end)` covering `root` and everything below it: from the
/// root itself up to `root + "0"` ('0' follows '/'). Siblings such as
/// `/app-x` fall inside and are filtered out afterwards.
pub fn subtree_range(root: &str) -> (Vec<u8>, Vec<u8>) {
    if root == "/" {
        return (b"/".to_vec(), b"0".to_vec());
    }
    (root.as_bytes().to_vec(), format!("{root}0").into_bytes())
}

impl EtcdV3Backend {
    /// Prepares the client (nothing is sent yet).
    pub fn new(config: &HttpConfig) -> Result<EtcdV3Backend, ConfigError> {
        let mut config = config.clone();
        let flagged = config
            .auth
            .username
            .take()
            .map(|user| (user, config.auth.password.take().unwrap_or_default()));
        config.auth.basic_auth = false;
        let client = NodeClient::new(&config)?;
        // A node URL's user information stands for -username/-password when
        // those are not given; either way it becomes a token, never a basic
        // Authorization header (the gateway would read that as a bad token).
        let credentials = flagged.or_else(|| client.userinfo_credentials());
        Ok(EtcdV3Backend {
            client: client.without_userinfo_auth(),
            credentials,
            token: Mutex::new(None),
            streams: OpenStreams::default(),
        })
    }

    fn error(&self, location: String, message: String) -> BackendError {
        BackendError {
            backend: "etcdv3",
            location,
            message,
            transient: false,
        }
    }

    fn endpoint(node: &reqwest::Url, path: &str) -> reqwest::Url {
        let mut url = node.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path.split('/'));
        }
        url
    }

    async fn authenticate(&self) -> Result<Option<String>, BackendError> {
        let Some((user, password)) = &self.credentials else {
            return Ok(None);
        };
        let body = serde_json::json!({ "name": user, "password": password });
        let (response, node) = self
            .send_json(
                "v3/auth/authenticate",
                body.to_string(),
                Limits::REQUEST,
                &None,
            )
            .await?;
        let location = node;
        let status = response.status();
        let bytes = self.client.read_body(response, &location).await?;
        if status != StatusCode::OK {
            return Err(self.error(
                location,
                format!(
                    "authentication as {user:?} failed: {}",
                    gateway_message(status, &bytes)
                ),
            ));
        }
        let parsed: AuthResponse = serde_json::from_slice(&bytes).map_err(|e| {
            self.error(
                location,
                format!("unexpected authentication response: {}", quote_server(e)),
            )
        })?;
        Ok(Some(parsed.token))
    }

    /// The authentication token, fetched on first use (`None` without
    /// credentials).
    async fn current_token(&self) -> Result<Option<String>, BackendError> {
        let mut cached = self.token.lock().await;
        if cached.is_none() {
            *cached = self.authenticate().await?;
        }
        Ok(cached.clone())
    }

    /// Sends one JSON POST to `path` on the first node that answers.
    async fn send_json(
        &self,
        path: &str,
        body: String,
        limits: Limits,
        token: &Option<String>,
    ) -> Result<(reqwest::Response, String), BackendError> {
        self.client
            .send(limits, |client, node| {
                let request = client
                    .post(Self::endpoint(node, path))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                match token {
                    Some(t) => request.header("Authorization", t),
                    None => request,
                }
            })
            .await
    }

    /// POSTs `body` to `path`, authenticating first (and once more when the
    /// token has expired); `confd announce` uses it for leases too.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(StatusCode, Vec<u8>, String), BackendError> {
        for attempt in 0..2 {
            let token = self.current_token().await?;
            let (response, node) = self
                .send_json(path, body.to_string(), Limits::REQUEST, &token)
                .await?;
            let location = node;
            let status = response.status();
            let bytes = self.client.read_body(response, &location).await?;
            if status == StatusCode::UNAUTHORIZED && token.is_some() && attempt == 0 {
                *self.token.lock().await = None;
                continue;
            }
            return Ok((status, bytes, location));
        }
        Err(self.error(
            self.client.describe_nodes(),
            "authentication kept failing".to_string(),
        ))
    }

    /// POSTs `body` to `path` like [`EtcdV3Backend::post`], handing a 200
    /// answer's body to `parse` as it arrives (never held whole); another
    /// status comes back with its body, read whole for the message.
    async fn post_parsed<T, P>(
        &self,
        path: &str,
        body: &serde_json::Value,
        parse: P,
    ) -> Result<(Result<T, (StatusCode, Vec<u8>)>, String), BackendError>
    where
        T: Send + 'static,
        P: FnOnce(BodyReader) -> T + Send + 'static,
    {
        for attempt in 0..2 {
            let token = self.current_token().await?;
            let (response, location) = self
                .send_json(path, body.to_string(), Limits::REQUEST, &token)
                .await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && token.is_some() && attempt == 0 {
                *self.token.lock().await = None;
                continue;
            }
            if status == StatusCode::OK {
                let parsed = self.client.parse_body(response, &location, parse).await?;
                return Ok((Ok(parsed), location));
            }
            let bytes = self.client.read_body(response, &location).await?;
            return Ok((Err((status, bytes)), location));
        }
        Err(self.error(
            self.client.describe_nodes(),
            "authentication kept failing".to_string(),
        ))
    }

    async fn read_root(
        &self,
        root: &str,
        revision: u64,
        out: &mut PairList,
    ) -> Result<u64, BackendError> {
        let (mut key, range_end) = subtree_range(root);
        let mut revision = revision;
        loop {
            let mut body = serde_json::json!({
                "key": BASE64.encode(&key),
                "range_end": BASE64.encode(&range_end),
                "limit": PAGE_SIZE,
            });
            if revision > 0 {
                body["revision"] = serde_json::json!(revision);
            }
            // The list goes to the parser's thread and comes back with the
            // page's pairs added.
            let mut list = std::mem::take(out);
            let owned_root = root.to_string();
            let (answer, location) = self
                .post_parsed("v3/kv/range", &body, move |reader| {
                    let page = range::parse_page(reader, &owned_root, &mut list);
                    (list, page)
                })
                .await?;
            let location = format!("{location} prefix {root}");
            let (list, page) = match answer {
                Ok(parsed) => parsed,
                Err((status, bytes)) => {
                    return Err(self.error(location, gateway_message(status, &bytes)));
                }
            };
            let page = page.map_err(|message| self.error(location, message))?;
            *out = list;
            // The first page fixes the revision every later page and prefix
            // is read at (etcd reports its current revision in every header,
            // even for a read pinned to an older one).
            if revision == 0 {
                revision = page.revision;
            }
            match (page.more, page.last) {
                (true, Some(mut next)) => {
                    next.push(0);
                    key = next;
                }
                _ => return Ok(revision),
            }
        }
    }
}

/// A key as text when it lies under `root` (`None` for a sibling such as
/// `/app-x`, which the key range also covers). A key under `root` that is not
/// UTF-8 is an error naming it: templates work on text, and replacing its
/// bytes would render a key that does not exist.
fn text_key(root: &str, raw_key: &[u8]) -> Result<Option<String>, String> {
    match std::str::from_utf8(raw_key) {
        Ok(key) => Ok(is_within(&clean_key(key), root).then(|| key.to_string())),
        Err(_) => {
            // Whether it lies under the root does not depend on the bytes
            // that are not UTF-8: the root itself is text.
            let shown = String::from_utf8_lossy(raw_key);
            if is_within(&clean_key(&shown), root) {
                Err(format!(
                    "key {} is not valid UTF-8; confd renders text only and never writes altered data",
                    server_text(raw_key)
                ))
            } else {
                Ok(None)
            }
        }
    }
}

/// A value as text; one that is not UTF-8 is an error naming its key, never
/// a value with replacement characters written as if it were the data.
fn text_value<'a>(key: &str, value: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(value).map_err(|e| {
        format!(
            "key {}: the value is not valid UTF-8 (byte {} of {}); confd renders text only and never writes altered data",
            quote_server(key),
            e.valid_up_to(),
            value.len()
        )
    })
}

/// The changes of one watch message (either transport) that lie under
/// `root` and are newer than `index` (the key range also covers siblings
/// such as `/app-x`), collected event by event.
pub(super) struct WatchBatch<'a> {
    root: &'a str,
    index: u64,
    newest: u64,
    changes: Vec<Change>,
}

impl<'a> WatchBatch<'a> {
    pub(super) fn new(root: &'a str, index: u64) -> Self {
        WatchBatch {
            root,
            index,
            newest: 0,
            changes: Vec::new(),
        }
    }

    /// Adds one event at `revision` of `raw_key`: a delete, or a put whose
    /// value `value` gives (asked only for a put that is kept).
    pub(super) fn add<V: AsRef<[u8]>>(
        &mut self,
        revision: u64,
        raw_key: &[u8],
        delete: bool,
        value: impl FnOnce() -> Result<V, String>,
    ) -> Result<(), String> {
        if revision <= self.index {
            return Ok(());
        }
        let Some(key) = text_key(self.root, raw_key)? else {
            return Ok(());
        };
        self.newest = self.newest.max(revision);
        if delete {
            self.changes.push(Change::Delete { key });
        } else {
            let value = value()?;
            let value = text_value(&key, value.as_ref())?.to_string();
            self.changes.push(Change::Put { key, value });
        }
        Ok(())
    }

    /// A [`WatchEvent::Changed`] at the newest revision; `None` when no
    /// event was kept.
    pub(super) fn finish(self) -> Option<WatchEvent> {
        (self.newest > 0).then_some(WatchEvent::Changed {
            index: self.newest,
            changes: Some(self.changes),
        })
    }
}

fn gateway_message(status: StatusCode, body: &[u8]) -> String {
    let message = match serde_json::from_slice::<GatewayError>(body) {
        Ok(e) if !e.message.is_empty() => format!("{status}: {}", quote_server(&e.message)),
        Ok(e) if !e.error.is_empty() => format!("{status}: {}", quote_server(&e.error)),
        _ => format!("{status}: {}", server_text(body)),
    };
    // An etcd started with --enable-grpc-gateway=false (or before 3.4)
    // serves no /v3/ paths at all; gRPC reaches it.
    if status == StatusCode::NOT_FOUND {
        return format!("{message}; this node serves no JSON gateway: use -etcdv3-api grpc");
    }
    message
}

#[async_trait]
impl Backend for EtcdV3Backend {
    fn name(&self) -> &'static str {
        "etcdv3"
    }

    fn can_watch(&self) -> bool {
        true
    }

    /// Opens a watch stream from `index + 1` and returns at the first batch
    /// of events under `root` (siblings such as `/app-x`, which the key range
    /// also covers, are skipped). A compacted revision means resync.
    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        let mut open = match self.streams.take(root, index) {
            Some(open) => open,
            None => self.open_watch(root, index).await?,
        };
        let outcome = self.next_change(root, index, &mut open).await;
        self.streams.keep(root, open, &outcome);
        outcome
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        read_roots(roots, |root, revision, mut pairs| async move {
            let read_at = self.read_root(root, revision, &mut pairs).await?;
            Ok((read_at, pairs))
        })
        .await
    }
}

/// The watch streams a transport keeps open between calls, one per prefix,
/// each with the revision up to which it delivered events: re-opening a
/// watch in the past makes etcd treat it as a slow watcher, which it only
/// catches up every 100 ms (enough to split a burst in two).
pub(super) struct OpenStreams<S> {
    open: std::sync::Mutex<std::collections::HashMap<String, (S, u64)>>,
}

impl<S> Default for OpenStreams<S> {
    fn default() -> Self {
        OpenStreams {
            open: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl<S> std::fmt::Debug for OpenStreams<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.open.lock().map_or(0, |open| open.len());
        f.debug_struct("OpenStreams").field("open", &count).finish()
    }
}

impl<S> OpenStreams<S> {
    /// The open stream of `root`, when it delivered nothing the caller (at
    /// `index`) has not seen; otherwise a new one must start at `index + 1`.
    pub(super) fn take(&self, root: &str, index: u64) -> Option<S> {
        let (stream, delivered) = self.open.lock().ok()?.remove(root)?;
        (delivered <= index).then_some(stream)
    }

    /// Keeps `stream` for the next call when it delivered a change.
    pub(super) fn keep(&self, root: &str, stream: S, outcome: &Result<WatchEvent, BackendError>) {
        if let Ok(WatchEvent::Changed { index, .. }) = outcome
            && let Ok(mut open) = self.open.lock()
        {
            open.insert(root.to_string(), (stream, *index));
        }
    }
}

/// Reads every root through `read_root(root, revision, pairs)`, each at the
/// revision of the first read (0 asks for the current one), so the snapshot
/// is one consistent point in time.
pub(super) async fn read_roots<'a, F, R>(
    roots: &'a [String],
    mut read_root: F,
) -> Result<Fetched, BackendError>
where
    F: FnMut(&'a str, u64, PairList) -> R,
    R: std::future::Future<Output = Result<(u64, PairList), BackendError>>,
{
    let mut pairs = PairList::new();
    let mut revision = 0;
    for root in roots {
        (revision, pairs) = read_root(root, revision, pairs)
            .await
            .map_err(|e| e.reading(root))?;
    }
    Ok(Fetched {
        pairs,
        index: revision,
        root_indexes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_range_covers_root_and_children_only_after_filtering() {
        let (start, end) = subtree_range("/app");
        assert_eq!(start, b"/app");
        assert_eq!(end, b"/app0");
        for inside in ["/app", "/app/x", "/app-x"] {
            assert!(inside.as_bytes() >= &start[..] && inside.as_bytes() < &end[..]);
        }
        assert!(b"/apple".as_slice() >= end.as_slice());
        assert_eq!(subtree_range("/"), (b"/".to_vec(), b"0".to_vec()));
    }
}
