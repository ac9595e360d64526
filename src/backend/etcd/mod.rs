//! The `etcd` backend: etcd's v2 keys API, as confd 0.16 and the seed documents
//! use it. One recursive, quorum GET per distinct prefix; leaves become keys and
//! directories give `ls`/`lsdir` their structure. A server with the v2 API
//! disabled is recognised and the error points at `-backend etcdv3`. The
//! answer is parsed while it arrives, straight into the pair list (`tree`).

mod tree;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;

use super::http::{
    BodyError, HttpConfig, Limits, NodeClient, answer_limit, quote_server, read_capped, server_text,
};
use super::{Backend, BackendError, Change, Fetched, WatchEvent};
use crate::error::ConfigError;
use crate::snapshot::PairList;

/// Where `-backend etcd` connects when no `-node` is given.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:2379";

/// etcd v2's error code for "Key not found".
const KEY_NOT_FOUND: u64 = 100;
/// etcd v2's error code for "The event in requested index is outdated and
/// cleared" (the watch history holds the last 1,000 events only).
const EVENT_INDEX_CLEARED: u64 = 401;

/// Reads etcd through the v2 keys API.
#[derive(Debug)]
pub struct EtcdBackend {
    client: NodeClient,
}

#[derive(Debug, Deserialize)]
struct WatchResponse {
    action: String,
    node: ChangedNode,
}

#[derive(Debug, Deserialize)]
struct ChangedNode {
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    dir: bool,
    #[serde(rename = "modifiedIndex")]
    modified_index: u64,
}

impl WatchResponse {
    /// The change this event makes to the leaves, or `None` for an action
    /// this code does not know (the prefix is then read again).
    fn changes(self) -> Option<Vec<Change>> {
        let key = self.node.key?;
        match self.action.as_str() {
            // A directory is created or its TTL refreshed: no leaf changes.
            "set" | "create" | "update" | "compareAndSwap" if self.node.dir => Some(Vec::new()),
            "set" | "create" | "update" | "compareAndSwap" => Some(vec![Change::Put {
                key,
                value: self.node.value.unwrap_or_default(),
            }]),
            "delete" | "expire" | "compareAndDelete" if self.node.dir => {
                Some(vec![Change::DeleteTree { key }])
            }
            "delete" | "expire" | "compareAndDelete" => Some(vec![Change::Delete { key }]),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorResponse {
    #[serde(rename = "errorCode")]
    error_code: u64,
    message: String,
    #[serde(default)]
    cause: String,
}

impl EtcdBackend {
    /// Connects to the nodes in `config` (nothing is sent yet).
    pub fn new(config: &HttpConfig) -> Result<EtcdBackend, ConfigError> {
        Ok(EtcdBackend {
            client: NodeClient::new(config)?,
        })
    }

    fn error(&self, location: String, message: String) -> BackendError {
        BackendError {
            backend: "etcd",
            location,
            message,
            transient: false,
        }
    }

    /// The URL of `key` under `/v2/keys` on `node`.
    fn key_url(node: &reqwest::Url, key: &str) -> reqwest::Url {
        let mut url = node.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["v2", "keys"]);
            segments.extend(key.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    async fn read_root(&self, root: &str, out: &mut PairList) -> Result<u64, BackendError> {
        let (response, node) = self
            .client
            .send(Limits::REQUEST, |client, node| {
                let mut url = Self::key_url(node, root);
                url.set_query(Some("recursive=true&quorum=true"));
                client.get(url)
            })
            .await?;
        let location = format!("{node} key {root}");
        let index = response
            .headers()
            .get("X-Etcd-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let status = response.status();
        if status == StatusCode::OK {
            // The list goes to the parser's thread and comes back with the
            // leaves of this root added.
            let mut list = std::mem::take(out);
            let (list, parsed) = self
                .client
                .parse_body(response, &location, move |reader| {
                    let parsed = tree::parse_get(reader, &mut list);
                    (list, parsed)
                })
                .await?;
            parsed.map_err(|e| {
                self.error(
                    location,
                    format!("unexpected response: {}", quote_server(e)),
                )
            })?;
            *out = list;
            return Ok(index);
        }
        let body = self.client.read_body(response, &location).await?;
        match serde_json::from_slice::<ErrorResponse>(&body) {
                Ok(e) if e.error_code == KEY_NOT_FOUND => Ok(index),
                Ok(e) => Err(self.error(
                    location,
                    format!(
                        "{} (error {}, {})",
                        quote_server(&e.message),
                        e.error_code,
                        quote_server(&e.cause)
                    ),
                )),
                Err(_) if status == StatusCode::NOT_FOUND => Err(self.error(
                    location,
                    "the server does not serve the v2 API (etcd 3.4+ disables it unless started with --enable-v2); use -backend etcdv3".to_string(),
                )),
                Err(_) if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    Err(self.error(
                        location,
                        format!("{status}: check -username/-password/-basic-auth"),
                    ))
                }
                Err(_) => Err(self.error(
                    location,
                    format!("{status}: {}", server_text(&body)),
                )),
        }
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn can_watch(&self) -> bool {
        true
    }

    /// A recursive long poll from `index + 1`, so a change made while the
    /// previous one was being handled is never lost (confd 0.16 re-armed
    /// from "now" and lost such writes).
    ///
    /// etcd's long poll has no timeout of its own and sends nothing while
    /// it waits, so a node that silently died would hold it forever: after
    /// the watch timeout without an answer the poll ends as `Quiet` and the
    /// caller re-issues it from the same index. A live node answers the
    /// re-issued poll's headers at once; one that does not within
    /// [`answer_limit`] is given up for the next node.
    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        let query = format!("wait=true&recursive=true&waitIndex={}", index + 1);
        let timeout = self.client.watch_timeout();
        let limits = Limits {
            answer: answer_limit(timeout),
            total: Some(timeout),
        };
        let sent = self
            .client
            .send(limits, |client, node| {
                let mut url = Self::key_url(node, root);
                url.set_query(Some(&query));
                client.get(url)
            })
            .await;
        // etcd answers a long poll's headers at once; only the body waits.
        let (response, node) = sent?;
        let location = format!("{node} watch {root}");
        let status = response.status();
        let body = match read_capped(response, self.client.max_response_size()).await {
            Ok(body) => body,
            Err(BodyError::Network(e)) if e.is_timeout() => return Ok(WatchEvent::Quiet),
            Err(e) => return Err(self.client.body_error(e, &location)),
        };
        if status == StatusCode::OK {
            // etcd closes an idle long poll with an empty body now and then.
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(WatchEvent::Quiet);
            }
            let event: WatchResponse = serde_json::from_slice(&body).map_err(|e| {
                self.error(
                    location,
                    format!("unexpected watch response: {}", quote_server(e)),
                )
            })?;
            return Ok(WatchEvent::Changed {
                index: event.node.modified_index,
                changes: event.changes(),
            });
        }
        match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) if e.error_code == EVENT_INDEX_CLEARED => Ok(WatchEvent::Resync),
            Ok(e) => Err(self.error(
                location,
                format!("{} (error {})", quote_server(&e.message), e.error_code),
            )),
            Err(_) => Err(self.error(location, format!("{status}: {}", server_text(&body)))),
        }
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        let mut pairs = PairList::new();
        // Each prefix is a separate GET: the pass is only as fresh as its
        // oldest read, so it claims the lowest index (a higher one could hide
        // a change made to an earlier prefix between the GETs).
        let mut index = u64::MAX;
        let mut root_indexes = Vec::with_capacity(roots.len());
        for root in roots {
            let read = self
                .read_root(root, &mut pairs)
                .await
                .map_err(|e| e.reading(root))?;
            index = index.min(read);
            root_indexes.push(read);
        }
        Ok(Fetched {
            pairs,
            index: if index == u64::MAX { 0 } else { index },
            root_indexes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_events_become_changes() {
        let parse = |json: &str| -> WatchResponse { serde_json::from_str(json).expect("parses") };
        let set = parse(
            r#"{"action":"set","node":{"key":"/s/a","value":"1","modifiedIndex":7,"createdIndex":7},
                "prevNode":{"key":"/s/a","value":"0","modifiedIndex":5,"createdIndex":5}}"#,
        );
        assert_eq!(set.node.modified_index, 7);
        assert_eq!(
            set.changes(),
            Some(vec![Change::Put {
                key: "/s/a".into(),
                value: "1".into()
            }])
        );
        let deleted_dir = parse(
            r#"{"action":"delete","node":{"key":"/s/d","dir":true,"modifiedIndex":9,"createdIndex":3}}"#,
        );
        assert_eq!(
            deleted_dir.changes(),
            Some(vec![Change::DeleteTree { key: "/s/d".into() }])
        );
        let expired = parse(r#"{"action":"expire","node":{"key":"/s/t","modifiedIndex":10}}"#);
        assert_eq!(
            expired.changes(),
            Some(vec![Change::Delete { key: "/s/t".into() }])
        );
        let new_dir =
            parse(r#"{"action":"set","node":{"key":"/s/n","dir":true,"modifiedIndex":11}}"#);
        assert_eq!(new_dir.changes(), Some(Vec::new()));
        let unknown = parse(r#"{"action":"rename","node":{"key":"/s/a","modifiedIndex":12}}"#);
        assert_eq!(unknown.changes(), None);
    }

    #[test]
    fn key_urls_are_percent_encoded_segments() {
        let node = reqwest::Url::parse("http://127.0.0.1:2379").expect("url");
        assert_eq!(
            EtcdBackend::key_url(&node, "/a b/c").as_str(),
            "http://127.0.0.1:2379/v2/keys/a%20b/c"
        );
        assert_eq!(
            EtcdBackend::key_url(&node, "/").as_str(),
            "http://127.0.0.1:2379/v2/keys"
        );
    }

    /// JSON strings are UTF-8 by construction, and serde_json checks it:
    /// an answer with bytes that are not UTF-8, or with an escape of half a
    /// surrogate pair, fails to parse instead of being patched up.
    #[test]
    fn answers_that_are_not_utf8_fail_to_parse() {
        let event = b"{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"value\":\"\xc3\",\"modifiedIndex\":3}}";
        assert!(serde_json::from_slice::<WatchResponse>(event).is_err());
        let fine = br#"{"action":"set","node":{"key":"/a","value":"\u00e9","modifiedIndex":3}}"#;
        let parsed: WatchResponse = serde_json::from_slice(fine).expect("parses");
        assert_eq!(parsed.node.value.as_deref(), Some("é"));
    }
}
