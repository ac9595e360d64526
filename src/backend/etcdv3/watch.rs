//! etcd v3 watches through the gateway's `/v3/watch` stream: one stream per
//! prefix, kept open between calls, read message by message (each capped at
//! `-max-response-size`), with an idle deadline so a node that silently died
//! is left for the next one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use serde::Deserialize;

use super::{
    EtcdV3Backend, GatewayError, WatchBatch, gateway_message, number_or_string, subtree_range,
};
use crate::backend::http::{Limits, answer_limit, network_error, quote_server};
use crate::backend::{BackendError, WatchEvent};

/// A watch stream left open after the batch it returned.
#[derive(Debug)]
pub(super) struct OpenWatch {
    response: reqwest::Response,
    buffer: Vec<u8>,
    location: String,
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

impl EtcdV3Backend {
    /// Opens a watch stream on `root` from `index + 1`. It asks for
    /// progress notifications: an etcd started with a
    /// `--experimental-watch-progress-notify-interval` shorter than the watch
    /// timeout then keeps a quiet stream visibly alive. The gateway sends the
    /// headers and a "created" message at once, so a node that does not
    /// answer within [`answer_limit`] is given up for the next one.
    pub(super) async fn open_watch(
        &self,
        root: &str,
        index: u64,
    ) -> Result<OpenWatch, BackendError> {
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
            location,
        })
    }

    /// Reads the stream until a batch holds an event under `root` newer than
    /// `index` (the range also covers siblings such as `/app-x`, skipped).
    pub(super) async fn next_change(
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
    let mut batch = WatchBatch::new(root, index);
    for event in events {
        let Some(kv) = event.kv else { continue };
        let raw_key = BASE64
            .decode(&kv.key)
            .map_err(|e| format!("bad key encoding in a watch event: {e}"))?;
        batch.add(kv.mod_revision, &raw_key, event.kind == "DELETE", || {
            BASE64
                .decode(&kv.value)
                .map_err(|e| format!("bad value encoding in a watch event: {e}"))
        })?;
    }
    Ok(batch.finish())
}

#[cfg(test)]
mod tests {
    use super::super::text_value;
    use super::*;
    use crate::backend::Change;

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
        assert_eq!(text_value("/k", "é".as_bytes()), Ok("é"));
    }
}
