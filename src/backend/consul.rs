//! The `consul` backend: Consul's KV store over its HTTP API. Key `/a/b` is
//! Consul key `a/b`. One recursive GET per distinct prefix; folder entries
//! (keys ending in `/` with a null value) only give structure; a prefix that
//! does not exist (404) is an empty subtree, not an error. Consul matches
//! `?recurse` prefixes as plain strings, so `app` would also return `apple/…`:
//! those keys are filtered out here.
//!
//! `-watch` uses blocking queries (`?index=N&wait=…`), one per prefix, with
//! the watch timeout as `wait` and a deadline of that plus Consul's jitter
//! plus a margin ([`blocking_deadline`]): a node that has not answered by then
//! silently died, and the next one is asked. The index rules of Consul's
//! documentation apply: an index that goes backwards
//! (a restored snapshot, a new cluster) means reading everything again; an
//! index of 0 is treated as 1; answers that come back at once without a change
//! are rate-limited so a misbehaving server cannot spin the daemon.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use serde::Deserialize;

use super::http::{HttpConfig, Limits, NodeClient, REQUEST_TIMEOUT, quote_server, server_text};
use super::{Backend, BackendError, Fetched, WatchEvent};
use crate::error::ConfigError;
use crate::snapshot::{clean_key, is_within};

/// Where `-backend consul` connects when no `-node` is given.
pub const DEFAULT_NODE: &str = "127.0.0.1:8500";
/// The longest margin [`blocking_deadline`] allows for the network and the
/// server's own work on top of the wait.
const BLOCKING_MARGIN_MAX: Duration = REQUEST_TIMEOUT;
/// The shortest such margin.
const BLOCKING_MARGIN_MIN: Duration = Duration::from_secs(1);
/// A blocking query that returns faster than this without a change counts as
/// a tight loop.
const TIGHT_LOOP: Duration = Duration::from_millis(50);
/// The pause after a tight-loop answer.
const TIGHT_LOOP_PAUSE: Duration = Duration::from_secs(1);

/// Consul-specific settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulConfig {
    /// Nodes, TLS and basic auth.
    pub http: HttpConfig,
    /// ACL token (`-auth-token`, `CONSUL_HTTP_TOKEN`).
    pub token: Option<String>,
    /// Datacenter to query (`-datacenter`); the agent's own when unset.
    pub datacenter: Option<String>,
}

/// How long a blocking query that asked Consul to `wait` may take before the
/// node is given up: the wait, plus the up to wait/16 Consul adds to spread
/// answers out, plus a margin of a quarter of the wait, at least 1 s and at
/// most 15 s (78.75 s for the default 60 s wait).
pub fn blocking_deadline(wait: Duration) -> Duration {
    wait + wait / 16 + (wait / 4).clamp(BLOCKING_MARGIN_MIN, BLOCKING_MARGIN_MAX)
}

/// A duration in Go's syntax, as Consul's `wait` takes it.
fn go_duration(wait: Duration) -> String {
    if wait.subsec_millis() == 0 {
        format!("{}s", wait.as_secs())
    } else {
        format!("{}ms", wait.as_millis())
    }
}

/// The part of Consul's HTTP API confd speaks, shared by the KV backend and
/// the service catalog: nodes with failover, the ACL token, the datacenter,
/// `X-Consul-Index`, and the index rules of blocking queries.
#[derive(Debug)]
pub struct ConsulApi {
    name: &'static str,
    client: NodeClient,
    token: Option<String>,
    datacenter: Option<String>,
}

/// One answer of a Consul endpoint (200 or 404).
#[derive(Debug)]
pub struct ApiAnswer {
    /// 200 or 404.
    pub status: StatusCode,
    /// `X-Consul-Index`.
    pub index: u64,
    /// The body.
    pub body: Vec<u8>,
    /// Node and path, for messages.
    pub location: String,
}

/// What a blocking query's answer means, by Consul's index rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// The result changed; its new index.
    Changed(u64),
    /// The wait ended without a change.
    Quiet,
    /// The index went backwards (a restored snapshot, a new cluster): start
    /// over from index 0.
    Reset,
}

impl ConsulApi {
    /// Prepares the client (nothing is sent yet); `name` labels errors.
    pub fn new(config: &ConsulConfig, name: &'static str) -> Result<ConsulApi, ConfigError> {
        Ok(ConsulApi {
            name,
            client: NodeClient::new(&config.http)?,
            token: config.token.clone().filter(|t| !t.is_empty()),
            datacenter: config.datacenter.clone().filter(|d| !d.is_empty()),
        })
    }

    /// An error about `location`.
    pub fn error(&self, location: String, message: String) -> BackendError {
        BackendError {
            backend: self.name,
            location,
            message,
            transient: false,
        }
    }

    fn url(
        &self,
        node: &reqwest::Url,
        path: &[&str],
        query: &[(&str, &str)],
        blocking: Option<u64>,
    ) -> reqwest::Url {
        let mut url = node.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
            if let Some(dc) = &self.datacenter {
                pairs.append_pair("dc", dc);
            }
            if let Some(index) = blocking {
                pairs.append_pair("index", &index.to_string());
                pairs.append_pair("wait", &go_duration(self.client.watch_timeout()));
            }
        }
        url
    }

    /// GETs `path` (segments under the node) with `query`; with `blocking`,
    /// as a blocking query after that index. 200 and 404 are answers; a 403
    /// says how to give a token; anything else is an error.
    pub async fn get(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        blocking: Option<u64>,
        what: &str,
    ) -> Result<ApiAnswer, BackendError> {
        let limits = match blocking {
            // Consul answers a blocking query's headers with its result, so
            // the whole deadline applies to them.
            Some(_) => {
                let deadline = blocking_deadline(self.client.watch_timeout());
                Limits {
                    answer: deadline,
                    total: Some(deadline),
                }
            }
            None => Limits::REQUEST,
        };
        let (response, node) = self
            .client
            .send(limits, |client, node| {
                let request = client.get(self.url(node, path, query, blocking));
                match &self.token {
                    Some(token) => request.header("X-Consul-Token", token),
                    None => request,
                }
            })
            .await?;
        self.answer(response, node, what).await
    }

    /// PUTs `body` to `path` with `query` (sessions, locks: `confd
    /// announce`). The same answers as [`ConsulApi::get`].
    pub async fn put(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        body: Vec<u8>,
        what: &str,
    ) -> Result<ApiAnswer, BackendError> {
        let (response, node) = self
            .client
            .send(Limits::REQUEST, |client, node| {
                let request = client
                    .put(self.url(node, path, query, None))
                    .body(body.clone());
                match &self.token {
                    Some(token) => request.header("X-Consul-Token", token),
                    None => request,
                }
            })
            .await?;
        self.answer(response, node, what).await
    }

    /// Reads an answer: 200 and 404 are answers; a 403 says how to give a
    /// token; anything else is an error.
    async fn answer(
        &self,
        response: reqwest::Response,
        node: String,
        what: &str,
    ) -> Result<ApiAnswer, BackendError> {
        let location = format!("{node} {what}");
        let status = response.status();
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let body = self.client.read_body(response, &location).await?;
        let text = || server_text(&body);
        match status {
            StatusCode::OK | StatusCode::NOT_FOUND => Ok(ApiAnswer {
                status,
                index,
                body,
                location,
            }),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Err(self.error(
                location,
                format!(
                    "{status}: {}; give a token with -auth-token or CONSUL_HTTP_TOKEN",
                    text()
                ),
            )),
            _ => Err(self.error(location, format!("{status}: {}", text()))),
        }
    }

    /// A blocking query after `index`, judged by Consul's advice: ask with at
    /// least index 1 (0 does not block); an index that went backwards means
    /// reset; an answer that came back at once without a change is followed
    /// by a pause, so a misbehaving server cannot spin the daemon.
    pub async fn blocking_get(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        index: u64,
        what: &str,
    ) -> Result<(Blocking, ApiAnswer), BackendError> {
        let asked = index.max(1);
        let started = Instant::now();
        let answer = self.get(path, query, Some(asked), what).await?;
        let outcome = if answer.index < asked && index > 0 {
            Blocking::Reset
        } else if answer.index > asked {
            Blocking::Changed(answer.index)
        } else {
            Blocking::Quiet
        };
        if outcome == Blocking::Quiet && started.elapsed() < TIGHT_LOOP {
            tracing::debug!(
                what,
                index = answer.index,
                "blocking query returned at once; pausing"
            );
            tokio::time::sleep(TIGHT_LOOP_PAUSE).await;
        }
        Ok((outcome, answer))
    }
}

/// Reads Consul's KV store.
#[derive(Debug)]
pub struct ConsulBackend {
    api: ConsulApi,
}

#[derive(Debug, Deserialize)]
struct KvEntry {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: Option<String>,
}

/// The path of a prefix under `/v1/kv` (`/` is the whole store).
fn kv_path(root: &str) -> Vec<&str> {
    let mut path = vec!["v1", "kv"];
    path.extend(root.split('/').filter(|s| !s.is_empty()));
    if path.len() == 2 {
        path.push("");
    }
    path
}

impl ConsulBackend {
    /// Prepares the client (nothing is sent yet).
    pub fn new(config: &ConsulConfig) -> Result<ConsulBackend, ConfigError> {
        Ok(ConsulBackend {
            api: ConsulApi::new(config, "consul")?,
        })
    }

    fn parse_entries(
        &self,
        root: &str,
        answer: &ApiAnswer,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), BackendError> {
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let entries: Vec<KvEntry> = serde_json::from_slice(&answer.body).map_err(|e| {
            self.api.error(
                answer.location.clone(),
                format!("unexpected response: {}", quote_server(e)),
            )
        })?;
        for entry in entries {
            // A folder placeholder ("app/") only gives shape, through its
            // children; any other key with a null value holds "".
            if entry.key.ends_with('/') {
                continue;
            }
            let key = clean_key(&entry.key);
            if !is_within(&key, root) {
                continue;
            }
            let value = match entry.value {
                Some(encoded) => BASE64.decode(encoded.as_bytes()).map_err(|e| {
                    self.api.error(
                        answer.location.clone(),
                        format!("key {}: value is not base64: {e}", quote_server(&key)),
                    )
                })?,
                None => Vec::new(),
            };
            // Replacing bytes that are not UTF-8 would write altered data
            // and report success: refuse the read instead.
            let value = String::from_utf8(value).map_err(|e| {
                self.api.error(
                    answer.location.clone(),
                    format!(
                        "key {}: the value is not valid UTF-8 (byte {} of {}); confd renders text only and never writes altered data",
                        quote_server(&key),
                        e.utf8_error().valid_up_to(),
                        e.as_bytes().len()
                    ),
                )
            })?;
            out.push((key, value));
        }
        Ok(())
    }
}

const RECURSE: [(&str, &str); 1] = [("recurse", "true")];

#[async_trait]
impl Backend for ConsulBackend {
    fn name(&self) -> &'static str {
        "consul"
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        let mut pairs = Vec::new();
        // X-Consul-Index is per prefix; the pass claims the lowest, as a
        // higher one could hide a change made between two of its GETs.
        let mut index = u64::MAX;
        let mut root_indexes = Vec::with_capacity(roots.len());
        for root in roots {
            let answer = self
                .api
                .get(&kv_path(root), &RECURSE, None, &format!("prefix {root}"))
                .await
                .map_err(|e| e.reading(root))?;
            self.parse_entries(root, &answer, &mut pairs)?;
            index = index.min(answer.index);
            root_indexes.push(answer.index);
        }
        Ok(Fetched {
            pairs,
            index: if index == u64::MAX { 0 } else { index },
            root_indexes,
        })
    }

    fn can_watch(&self) -> bool {
        true
    }

    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        let (outcome, _) = self
            .api
            .blocking_get(&kv_path(root), &RECURSE, index, &format!("prefix {root}"))
            .await?;
        Ok(match outcome {
            Blocking::Changed(new_index) => WatchEvent::changed(new_index),
            Blocking::Quiet => WatchEvent::Quiet,
            Blocking::Reset => WatchEvent::Resync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(dc: Option<&str>) -> ConsulApi {
        let config = ConsulConfig {
            http: HttpConfig {
                backend: "consul",
                nodes: vec![DEFAULT_NODE.to_string()],
                scheme: "http".to_string(),
                auth: Default::default(),
                max_response_size: crate::backend::http::DEFAULT_MAX_RESPONSE_SIZE,
                watch_timeout: crate::backend::http::DEFAULT_WATCH_TIMEOUT,
            },
            token: None,
            datacenter: dc.map(str::to_string),
        };
        match ConsulApi::new(&config, "consul") {
            Ok(api) => api,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn kv_urls() {
        let node = reqwest::Url::parse("http://127.0.0.1:8500").expect("url");
        assert_eq!(
            api(None)
                .url(&node, &kv_path("/app/web"), &RECURSE, None)
                .as_str(),
            "http://127.0.0.1:8500/v1/kv/app/web?recurse=true"
        );
        assert_eq!(
            api(Some("eu west"))
                .url(&node, &kv_path("/"), &RECURSE, Some(7))
                .as_str(),
            "http://127.0.0.1:8500/v1/kv/?recurse=true&dc=eu+west&index=7&wait=60s"
        );
    }

    #[test]
    fn blocking_deadlines_outlast_the_wait_and_its_jitter() {
        assert_eq!(
            blocking_deadline(Duration::from_secs(60)),
            Duration::from_millis(78_750)
        );
        assert_eq!(
            blocking_deadline(Duration::from_secs(2)),
            Duration::from_millis(3_125)
        );
        assert_eq!(
            blocking_deadline(Duration::from_secs(600)),
            Duration::from_millis(652_500)
        );
        assert_eq!(go_duration(Duration::from_millis(2500)), "2500ms");
        assert_eq!(go_duration(Duration::from_secs(60)), "60s");
    }

    #[test]
    fn folders_are_skipped_and_siblings_filtered() {
        let b = ConsulBackend { api: api(None) };
        let answer = ApiAnswer {
            status: StatusCode::OK,
            index: 9,
            body: br#"[{"Key":"app/","Value":null},{"Key":"app/x","Value":"MQ=="},{"Key":"apple/y","Value":"Mg=="},{"Key":"app","Value":"Mw=="},{"Key":"app/empty","Value":null}]"#.to_vec(),
            location: "test".to_string(),
        };
        let mut out = Vec::new();
        b.parse_entries("/app", &answer, &mut out).expect("parses");
        assert_eq!(
            out,
            vec![
                ("/app/x".to_string(), "1".to_string()),
                ("/app".to_string(), "3".to_string()),
                ("/app/empty".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn a_value_that_is_not_utf8_is_an_error_naming_the_key() {
        let b = ConsulBackend { api: api(None) };
        let answer = ApiAnswer {
            status: StatusCode::OK,
            index: 9,
            body: br#"[{"Key":"app/ok","Value":"MQ=="},{"Key":"app/bin","Value":"//54"}]"#.to_vec(),
            location: "test".to_string(),
        };
        let mut out = Vec::new();
        let error = b
            .parse_entries("/app", &answer, &mut out)
            .expect_err("not UTF-8");
        assert!(error.message.contains("key /app/bin"), "{error}");
        assert!(error.message.contains("UTF-8"), "{error}");
    }
}
