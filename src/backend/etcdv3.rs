//! The `etcdv3` backend: etcd's v3 API through its JSON gateway (`/v3/kv/range`),
//! so no gRPC code generation is needed. Each distinct prefix is one range read
//! at one revision, paged for large ranges; keys and values travel base64
//! encoded. With -username/-password (or a node URL's `user:password@`) the
//! gateway's token authentication is used (basic auth is a v2 notion).

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::http::{
    HttpConfig, Limits, NodeClient, answer_limit, network_error, quote_server, server_text,
};
use super::{Backend, BackendError, Change, Fetched, WatchEvent};
use crate::error::ConfigError;
use crate::snapshot::{clean_key, is_within};

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
    streams: std::sync::Mutex<std::collections::HashMap<String, OpenWatch>>,
}

/// A watch stream left open after the batch it returned.
#[derive(Debug)]
struct OpenWatch {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// Events up to this revision were delivered already.
    delivered: u64,
    location: String,
}

#[derive(Debug, Deserialize)]
struct Header {
    #[serde(default, deserialize_with = "number_or_string")]
    revision: u64,
}

#[derive(Debug, Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct RangeResponse {
    header: Header,
    #[serde(default)]
    kvs: Vec<KeyValue>,
    #[serde(default)]
    more: bool,
}

#[derive(Debug, Deserialize)]
struct GatewayError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
}

#[derive(Debug, Deserialize)]
struct WatchMessage {
    result: Option<WatchResult>,
    error: Option<GatewayError>,
}

#[derive(Debug, Deserialize)]
struct WatchResult {
    #[serde(default)]
    events: Vec<WatchedEvent>,
    #[serde(default, deserialize_with = "number_or_string")]
    compact_revision: u64,
    #[serde(default)]
    canceled: bool,
    #[serde(default)]
    cancel_reason: String,
}

#[derive(Debug, Deserialize)]
struct WatchedEvent {
    /// "DELETE", or absent for a put (the gateway leaves out default values).
    #[serde(rename = "type", default)]
    kind: String,
    kv: Option<WatchedKey>,
}

#[derive(Debug, Deserialize)]
struct WatchedKey {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "number_or_string")]
    mod_revision: u64,
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
            streams: std::sync::Mutex::new(std::collections::HashMap::new()),
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

    async fn read_root(
        &self,
        root: &str,
        revision: u64,
        out: &mut Vec<(String, String)>,
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
            let (status, bytes, location) = self.post("v3/kv/range", &body).await?;
            let location = format!("{location} prefix {root}");
            if status != StatusCode::OK {
                return Err(self.error(location, gateway_message(status, &bytes)));
            }
            let page: RangeResponse = serde_json::from_slice(&bytes).map_err(|e| {
                self.error(
                    location.clone(),
                    format!("unexpected response: {}", quote_server(e)),
                )
            })?;
            // The first page fixes the revision every later page and prefix
            // is read at (etcd reports its current revision in every header,
            // even for a read pinned to an older one).
            if revision == 0 {
                revision = page.header.revision;
            }
            let mut last: Option<Vec<u8>> = None;
            for kv in page.kvs {
                let raw_key = BASE64
                    .decode(&kv.key)
                    .map_err(|e| self.error(location.clone(), format!("bad key encoding: {e}")))?;
                let value = BASE64.decode(&kv.value).map_err(|e| {
                    self.error(location.clone(), format!("bad value encoding: {e}"))
                })?;
                let within = text_key(root, &raw_key)
                    .map_err(|message| self.error(location.clone(), message))?;
                if let Some(key) = within {
                    let value = text_value(&key, value)
                        .map_err(|message| self.error(location.clone(), message))?;
                    out.push((key, value));
                }
                last = Some(raw_key);
            }
            match (page.more, last) {
                (true, Some(mut next)) => {
                    next.push(0);
                    key = next;
                }
                _ => return Ok(revision),
            }
        }
    }
}

impl EtcdV3Backend {
    /// Opens a watch stream on `root` from `index + 1`. It asks for
    /// progress notifications: an etcd started with a
    /// `--experimental-watch-progress-notify-interval` shorter than the watch
    /// timeout then keeps a quiet stream visibly alive. The gateway sends the
    /// headers and a "created" message at once, so a node that does not
    /// answer within [`answer_limit`] is given up for the next one.
    async fn open_watch(&self, root: &str, index: u64) -> Result<OpenWatch, BackendError> {
        let (key, range_end) = subtree_range(root);
        let body = serde_json::json!({
            "create_request": {
                "key": BASE64.encode(&key),
                "range_end": BASE64.encode(&range_end),
                "start_revision": index + 1,
                "progress_notify": true,
            }
        })
        .to_string();
        let token = self.current_token().await?;
        // No limit on the whole stream: it lives as long as it keeps
        // talking; next_change puts an idle deadline on every read.
        let limits = Limits {
            answer: answer_limit(self.client.watch_timeout()),
            total: None,
        };
        let (response, node) = self.send_json("v3/watch", body, limits, &token).await?;
        let location = format!("{node} watch {root}");
        if response.status() != StatusCode::OK {
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                *self.token.lock().await = None;
            }
            let bytes = self.client.read_body(response, &location).await?;
            return Err(self.error(location, gateway_message(status, &bytes)));
        }
        Ok(OpenWatch {
            response,
            buffer: Vec::new(),
            delivered: index,
            location,
        })
    }

    /// Reads the stream until a batch holds an event under `root` newer than
    /// `index` (the range also covers siblings such as `/app-x`, skipped).
    async fn next_change(
        &self,
        root: &str,
        index: u64,
        open: &mut OpenWatch,
    ) -> Result<WatchEvent, BackendError> {
        let location = open.location.clone();
        loop {
            while let Some(end) = open.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = open.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let message: WatchMessage = serde_json::from_slice(&line).map_err(|e| {
                    self.error(
                        location.clone(),
                        format!("unexpected watch message: {}", quote_server(e)),
                    )
                })?;
                if let Some(error) = message.error {
                    return Err(self.error(
                        location,
                        format!(
                            "watch failed: {} {}",
                            quote_server(&error.message),
                            quote_server(&error.error)
                        ),
                    ));
                }
                let Some(result) = message.result else {
                    continue;
                };
                if result.compact_revision > 0 {
                    return Ok(WatchEvent::Resync);
                }
                if result.canceled {
                    return Err(self.error(
                        location,
                        format!("watch canceled: {}", quote_server(&result.cancel_reason)),
                    ));
                }
                if let Some(event) = batch_changes(root, index, result.events)
                    .map_err(|message| self.error(location.clone(), message))?
                {
                    return Ok(event);
                }
            }
            // The stream itself is endless; each message is capped, so a
            // line that never ends cannot take the host's memory.
            if open.buffer.len() as u64 > self.client.max_response_size() {
                return Err(self.client.too_large(&location, None));
            }
            // A stream that says nothing for the watch timeout may sit on a
            // connection that silently died: end it as Quiet, and the caller
            // opens a new one from the same revision (on the next node if
            // this one does not answer).
            let idle = self.client.watch_timeout();
            match tokio::time::timeout(idle, open.response.chunk()).await {
                Err(_) => {
                    tracing::debug!(
                        location = %location,
                        "watch stream silent for {}; opening it again",
                        humantime::format_duration(idle)
                    );
                    return Ok(WatchEvent::Quiet);
                }
                Ok(Ok(Some(chunk))) => open.buffer.extend_from_slice(&chunk),
                Ok(Ok(None)) => return Ok(WatchEvent::Quiet),
                Ok(Err(e)) if e.is_timeout() => return Ok(WatchEvent::Quiet),
                Ok(Err(e)) => return Err(network_error("etcdv3", location, &e)),
            }
        }
    }
}

/// The changes of one watch batch that lie under `root` and are newer than
/// `index` (the key range also covers siblings such as `/app-x`), as a
/// [`WatchEvent::Changed`] at the newest revision; `None` when there are none.
fn batch_changes(
    root: &str,
    index: u64,
    events: Vec<WatchedEvent>,
) -> Result<Option<WatchEvent>, String> {
    let mut newest = 0;
    let mut changes = Vec::new();
    for event in events {
        let Some(kv) = event.kv else { continue };
        let raw_key = BASE64
            .decode(&kv.key)
            .map_err(|e| format!("bad key encoding in a watch event: {e}"))?;
        if kv.mod_revision <= index {
            continue;
        }
        let Some(key) = text_key(root, &raw_key)? else {
            continue;
        };
        newest = newest.max(kv.mod_revision);
        if event.kind == "DELETE" {
            changes.push(Change::Delete { key });
        } else {
            let value = BASE64
                .decode(&kv.value)
                .map_err(|e| format!("bad value encoding in a watch event: {e}"))?;
            let value = text_value(&key, value)?;
            changes.push(Change::Put { key, value });
        }
    }
    Ok((newest > 0).then_some(WatchEvent::Changed {
        index: newest,
        changes: Some(changes),
    }))
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
fn text_value(key: &str, value: Vec<u8>) -> Result<String, String> {
    String::from_utf8(value).map_err(|e| {
        format!(
            "key {}: the value is not valid UTF-8 (byte {} of {}); confd renders text only and never writes altered data",
            quote_server(key),
            e.utf8_error().valid_up_to(),
            e.as_bytes().len()
        )
    })
}

fn gateway_message(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<GatewayError>(body) {
        Ok(e) if !e.message.is_empty() => format!("{status}: {}", quote_server(&e.message)),
        Ok(e) if !e.error.is_empty() => format!("{status}: {}", quote_server(&e.error)),
        _ => format!("{status}: {}", server_text(body)),
    }
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
        // Reuse the prefix's open stream when it has delivered nothing the
        // caller has not seen; otherwise open one from `index + 1`.
        let reusable = self
            .streams
            .lock()
            .ok()
            .and_then(|mut streams| streams.remove(root))
            .filter(|open| open.delivered <= index);
        let mut open = match reusable {
            Some(open) => open,
            None => self.open_watch(root, index).await?,
        };
        let outcome = self.next_change(root, index, &mut open).await;
        if let Ok(WatchEvent::Changed {
            index: revision, ..
        }) = outcome
        {
            open.delivered = revision;
            if let Ok(mut streams) = self.streams.lock() {
                streams.insert(root.to_string(), open);
            }
        }
        outcome
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        let mut pairs = Vec::new();
        // Every prefix is read at the revision of the first read, so the
        // snapshot is one consistent point in time.
        let mut revision = 0;
        for root in roots {
            revision = self
                .read_root(root, revision, &mut pairs)
                .await
                .map_err(|e| e.reading(root))?;
        }
        Ok(Fetched {
            pairs,
            index: revision,
            root_indexes: Vec::new(),
        })
    }
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

    #[test]
    fn watch_batches_become_changes_under_the_root_only() {
        // /app/a = 2 (put, type left out), /app-x = 1 (a sibling inside the
        // key range), /app/b deleted, /app/old at an already seen revision.
        let message: WatchMessage = serde_json::from_str(
            r#"{"result":{"header":{"revision":"12"},"events":[
                {"kv":{"key":"L2FwcC9h","value":"Mg==","mod_revision":"10"}},
                {"kv":{"key":"L2FwcC14","value":"MQ==","mod_revision":"11"}},
                {"type":"DELETE","kv":{"key":"L2FwcC9i","mod_revision":"12"}},
                {"kv":{"key":"L2FwcC9vbGQ=","value":"MA==","mod_revision":"9"}}]}}"#,
        )
        .expect("parses");
        let events = message.result.expect("a result").events;
        assert_eq!(
            batch_changes("/app", 9, events),
            Ok(Some(WatchEvent::Changed {
                index: 12,
                changes: Some(vec![
                    Change::Put {
                        key: "/app/a".into(),
                        value: "2".into()
                    },
                    Change::Delete {
                        key: "/app/b".into()
                    },
                ]),
            }))
        );
        let sibling_only: WatchMessage = serde_json::from_str(
            r#"{"result":{"events":[{"kv":{"key":"L2FwcC14","value":"MQ==","mod_revision":"13"}}]}}"#,
        )
        .expect("parses");
        let events = sibling_only.result.expect("a result").events;
        assert_eq!(batch_changes("/app", 12, events), Ok(None));
    }

    #[test]
    fn revisions_parse_from_strings_or_numbers() {
        let page: RangeResponse = serde_json::from_str(
            r#"{"header":{"revision":"42"},"kvs":[{"key":"L2E=","value":"MQ=="}],"more":false}"#,
        )
        .expect("parses");
        assert_eq!(page.header.revision, 42);
        let page: RangeResponse =
            serde_json::from_str(r#"{"header":{"revision":7}}"#).expect("parses");
        assert_eq!(page.header.revision, 7);
        assert!(page.kvs.is_empty());
    }

    #[test]
    fn text_that_is_not_utf8_is_an_error_naming_the_key() {
        // /app/bin = ff fe 78 (put), /app/a = 1, /app-x\xff (a sibling: ignored).
        let events = |json: &str| -> Vec<WatchedEvent> {
            let message: WatchMessage = serde_json::from_str(json).expect("parses");
            message.result.expect("a result").events
        };
        let bad_value = events(
            r#"{"result":{"events":[
                {"kv":{"key":"L2FwcC9h","value":"MQ==","mod_revision":"10"}},
                {"kv":{"key":"L2FwcC9iaW4=","value":"//54","mod_revision":"11"}}]}}"#,
        );
        let error = batch_changes("/app", 9, bad_value).expect_err("not UTF-8");
        assert!(
            error.contains("key /app/bin") && error.contains("UTF-8"),
            "{error}"
        );
        let sibling = events(
            r#"{"result":{"events":[{"kv":{"key":"L2FwcC14/w==","value":"MQ==","mod_revision":"12"}}]}}"#,
        );
        assert_eq!(batch_changes("/app", 9, sibling), Ok(None));
        let bad_key = events(
            r#"{"result":{"events":[{"type":"DELETE","kv":{"key":"L2FwcC//","mod_revision":"13"}}]}}"#,
        );
        let error = batch_changes("/app", 9, bad_key).expect_err("not UTF-8");
        assert!(error.contains("key /app/\u{fffd}"), "{error}");
        assert_eq!(text_value("/k", "é".into()), Ok("é".to_string()));
    }
}
