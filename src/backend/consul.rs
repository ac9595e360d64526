//! The `consul` backend: Consul's KV store over its HTTP API. Key `/a/b` is
//! Consul key `a/b`. One recursive GET per distinct prefix; folder entries
//! (keys ending in `/` with a null value) only give structure; a prefix that
//! does not exist (404) is an empty subtree, not an error. Consul matches
//! `?recurse` prefixes as plain strings, so `app` would also return `apple/…`:
//! those keys are filtered out here.
//!
//! `-watch` uses blocking queries (`?index=N&wait=…`), one per prefix, with
//! the index rules of Consul's documentation: an index that goes backwards
//! (a restored snapshot, a new cluster) means reading everything again; an
//! index of 0 is treated as 1; answers that come back at once without a change
//! are rate-limited so a misbehaving server cannot spin the daemon.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use serde::Deserialize;

use super::http::{HttpConfig, NodeClient, REQUEST_TIMEOUT, network_error};
use super::{Backend, BackendError, Fetched, WatchEvent};
use crate::resource::ConfigError;
use crate::snapshot::{clean_key, is_within};

/// Where `-backend consul` connects when no `-node` is given.
pub const DEFAULT_NODE: &str = "127.0.0.1:8500";
/// How long one blocking query may wait on the server (Consul caps it at 10m
/// and adds up to wait/16 of jitter).
pub const BLOCKING_WAIT: Duration = Duration::from_secs(60);
/// A blocking query that returns faster than this without a change counts as
/// a tight loop.
const TIGHT_LOOP: Duration = Duration::from_millis(50);
/// The pause after a tight-loop answer.
const TIGHT_LOOP_PAUSE: Duration = Duration::from_secs(1);

/// Consul-specific settings.
#[derive(Debug, Clone)]
pub struct ConsulConfig {
    /// Nodes, TLS and basic auth.
    pub http: HttpConfig,
    /// ACL token (`-auth-token`, `CONSUL_HTTP_TOKEN`).
    pub token: Option<String>,
    /// Datacenter to query (`-datacenter`); the agent's own when unset.
    pub datacenter: Option<String>,
}

/// Reads Consul's KV store.
#[derive(Debug)]
pub struct ConsulBackend {
    client: NodeClient,
    token: Option<String>,
    datacenter: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KvEntry {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: Option<String>,
}

/// One answer of the KV endpoint.
struct KvAnswer {
    status: StatusCode,
    index: u64,
    body: Vec<u8>,
    location: String,
}

impl ConsulBackend {
    /// Prepares the client (nothing is sent yet).
    pub fn new(config: &ConsulConfig) -> Result<ConsulBackend, ConfigError> {
        Ok(ConsulBackend {
            client: NodeClient::new(&config.http)?,
            token: config.token.clone().filter(|t| !t.is_empty()),
            datacenter: config.datacenter.clone().filter(|d| !d.is_empty()),
        })
    }

    fn error(&self, location: String, message: String) -> BackendError {
        BackendError {
            backend: "consul",
            location,
            message,
            transient: false,
        }
    }

    /// `/v1/kv/<root without its leading slash>?recurse[&dc][&index&wait]`.
    fn kv_url(&self, node: &reqwest::Url, root: &str, blocking: Option<u64>) -> reqwest::Url {
        let mut url = node.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["v1", "kv"]);
            let parts: Vec<&str> = root.split('/').filter(|s| !s.is_empty()).collect();
            if parts.is_empty() {
                segments.push("");
            } else {
                segments.extend(parts);
            }
        }
        let mut query = String::from("recurse=true");
        if let Some(dc) = &self.datacenter {
            query.push_str("&dc=");
            query.push_str(&percent_encode(dc));
        }
        if let Some(index) = blocking {
            query.push_str(&format!("&index={index}&wait={}s", BLOCKING_WAIT.as_secs()));
        }
        url.set_query(Some(&query));
        url
    }

    async fn get_kv(
        &self,
        root: &str,
        blocking: Option<u64>,
        timeout: Duration,
    ) -> Result<KvAnswer, BackendError> {
        let (response, node) = self
            .client
            .send(timeout, |client, node| {
                let request = client.get(self.kv_url(node, root, blocking));
                match &self.token {
                    Some(token) => request.header("X-Consul-Token", token),
                    None => request,
                }
            })
            .await?;
        let location = format!("{} prefix {root}", node.as_str().trim_end_matches('/'));
        let status = response.status();
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let body = response
            .bytes()
            .await
            .map_err(|e| network_error("consul", location.clone(), &e))?
            .to_vec();
        match status {
            StatusCode::OK | StatusCode::NOT_FOUND => Ok(KvAnswer {
                status,
                index,
                body,
                location,
            }),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Err(self.error(
                location,
                format!(
                    "{status}: {}; give a token with -auth-token or CONSUL_HTTP_TOKEN",
                    String::from_utf8_lossy(&body).trim()
                ),
            )),
            _ => Err(self.error(
                location,
                format!("{status}: {}", String::from_utf8_lossy(&body).trim()),
            )),
        }
    }

    fn parse_entries(
        &self,
        root: &str,
        answer: &KvAnswer,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), BackendError> {
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let entries: Vec<KvEntry> = serde_json::from_slice(&answer.body).map_err(|e| {
            self.error(answer.location.clone(), format!("unexpected response: {e}"))
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
                    self.error(
                        answer.location.clone(),
                        format!("key {key}: value is not base64: {e}"),
                    )
                })?,
                None => Vec::new(),
            };
            out.push((key, String::from_utf8_lossy(&value).into_owned()));
        }
        Ok(())
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[async_trait]
impl Backend for ConsulBackend {
    fn name(&self) -> &'static str {
        "consul"
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        let mut pairs = Vec::new();
        let mut index = 0;
        for root in roots {
            let answer = self
                .get_kv(root, None, REQUEST_TIMEOUT)
                .await
                .map_err(|e| e.reading(root))?;
            self.parse_entries(root, &answer, &mut pairs)?;
            index = index.max(answer.index);
        }
        Ok(Fetched { pairs, index })
    }

    fn can_watch(&self) -> bool {
        true
    }

    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        // Consul's advice: an index must be at least 1, or the query does not block.
        let asked = index.max(1);
        let limit = BLOCKING_WAIT + BLOCKING_WAIT / 16 + REQUEST_TIMEOUT;
        let started = Instant::now();
        let answer = self.get_kv(root, Some(asked), limit).await?;
        let event = if answer.index < asked && index > 0 {
            // The index went backwards: Consul says reset and start over.
            WatchEvent::Resync
        } else if answer.index > asked {
            WatchEvent::Changed(answer.index)
        } else {
            WatchEvent::Quiet
        };
        if event == WatchEvent::Quiet && started.elapsed() < TIGHT_LOOP {
            tracing::debug!(prefix = %root, index = answer.index, "blocking query returned at once; pausing");
            tokio::time::sleep(TIGHT_LOOP_PAUSE).await;
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(dc: Option<&str>) -> ConsulBackend {
        let config = ConsulConfig {
            http: HttpConfig {
                backend: "consul",
                nodes: vec![DEFAULT_NODE.to_string()],
                scheme: "http".to_string(),
                auth: Default::default(),
            },
            token: None,
            datacenter: dc.map(str::to_string),
        };
        match ConsulBackend::new(&config) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn kv_urls() {
        let node = reqwest::Url::parse("http://127.0.0.1:8500").expect("url");
        assert_eq!(
            backend(None).kv_url(&node, "/app/web", None).as_str(),
            "http://127.0.0.1:8500/v1/kv/app/web?recurse=true"
        );
        assert_eq!(
            backend(Some("eu west"))
                .kv_url(&node, "/", Some(7))
                .as_str(),
            "http://127.0.0.1:8500/v1/kv/?recurse=true&dc=eu%20west&index=7&wait=60s"
        );
    }

    #[test]
    fn folders_are_skipped_and_siblings_filtered() {
        let b = backend(None);
        let answer = KvAnswer {
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
}
