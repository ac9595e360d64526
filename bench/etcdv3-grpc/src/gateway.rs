//! etcd's v3 JSON gateway, taken the way confd's etcdv3 backend takes it:
//! reqwest POSTs of base64 keys, serde_json parsing, base64 decoding into
//! `(String, String)` pairs; range reads paged at 5,000 keys at one revision;
//! a watch as one streaming POST /v3/watch answered with JSON lines.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::{Error, Event, PAGE_SIZE, Pairs, Watcher, is_within, subtree_range};

/// One HTTP/1.1 client as confd builds it for a plain-http node: no proxy,
/// no root store, keep-alive.
pub fn client() -> Result<reqwest::Client, Error> {
    // confd installs the same provider before building its client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .no_proxy()
        .tls_certs_only(Vec::new())
        .build()?)
}

#[derive(Deserialize)]
struct Header {
    #[serde(default, deserialize_with = "number_or_string")]
    revision: u64,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct RangeResponse {
    header: Header,
    #[serde(default)]
    kvs: Vec<KeyValue>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct WatchMessage {
    result: Option<WatchResult>,
}

#[derive(Deserialize)]
struct WatchResult {
    #[serde(default)]
    created: bool,
    #[serde(default)]
    canceled: bool,
    #[serde(default)]
    events: Vec<WatchedEvent>,
}

#[derive(Deserialize)]
struct WatchedEvent {
    #[serde(rename = "type", default)]
    kind: String,
    kv: Option<WatchedKey>,
}

#[derive(Deserialize)]
struct WatchedKey {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "number_or_string")]
    mod_revision: u64,
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

async fn post(
    client: &reqwest::Client,
    endpoint: &str,
    path: &str,
    body: String,
) -> Result<Vec<u8>, Error> {
    let response = client
        .post(format!("{endpoint}{path}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?.to_vec();
    if !status.is_success() {
        return Err(format!("{path}: {status}: {}", String::from_utf8_lossy(&bytes)).into());
    }
    Ok(bytes)
}

/// Reads everything under `root`, 5,000 keys a request, at the first page's
/// revision. Returns the pairs and the bytes of JSON the gateway sent.
pub async fn read(endpoint: &str, root: &str) -> Result<(Pairs, u64), Error> {
    let client = client()?;
    let (mut key, range_end) = subtree_range(root);
    let mut revision = 0;
    let mut received = 0;
    let mut out = Vec::new();
    loop {
        let mut body = serde_json::json!({
            "key": BASE64.encode(&key),
            "range_end": BASE64.encode(&range_end),
            "limit": PAGE_SIZE,
        });
        if revision > 0 {
            body["revision"] = serde_json::json!(revision);
        }
        let bytes = post(&client, endpoint, "/v3/kv/range", body.to_string()).await?;
        received += bytes.len() as u64;
        let page: RangeResponse = serde_json::from_slice(&bytes)?;
        if revision == 0 {
            revision = page.header.revision;
        }
        let mut last = None;
        for kv in page.kvs {
            let raw_key = BASE64.decode(&kv.key)?;
            let value = String::from_utf8(BASE64.decode(&kv.value)?)?;
            let text = std::str::from_utf8(&raw_key)?;
            if is_within(text, root) {
                out.push((text.to_string(), value));
            }
            last = Some(raw_key);
        }
        match (page.more, last) {
            (true, Some(mut next)) => {
                next.push(0);
                key = next;
            }
            _ => return Ok((out, received)),
        }
    }
}

/// Writes one key through the gateway (the writer of the watch measurements,
/// the same for both paths).
pub async fn put(
    client: &reqwest::Client,
    endpoint: &str,
    key: &str,
    value: &str,
) -> Result<(), Error> {
    let body = serde_json::json!({ "key": BASE64.encode(key), "value": BASE64.encode(value) });
    post(client, endpoint, "/v3/kv/put", body.to_string()).await?;
    Ok(())
}

/// Deletes everything under `root` (the burst's keys, afterwards).
pub async fn delete_under(
    client: &reqwest::Client,
    endpoint: &str,
    root: &str,
) -> Result<(), Error> {
    let (key, range_end) = subtree_range(root);
    let body = serde_json::json!({
        "key": BASE64.encode(&key),
        "range_end": BASE64.encode(&range_end),
    });
    post(client, endpoint, "/v3/kv/deleterange", body.to_string()).await?;
    Ok(())
}

/// Opens a watch stream on `root` from revision `start` (0: from now) and
/// returns once etcd confirmed it; the stream is then read by a task that
/// sends every put under `root`, stamped on arrival, to `events`. With
/// `one_batch` the task ends after the first message with events and
/// returns its newest revision.
pub async fn watch(
    endpoint: &str,
    root: &str,
    start: u64,
    one_batch: bool,
    events: UnboundedSender<Event>,
) -> Result<Watcher, Error> {
    let client = client()?;
    let (key, range_end) = subtree_range(root);
    let mut body = serde_json::json!({
        "create_request": {
            "key": BASE64.encode(&key),
            "range_end": BASE64.encode(&range_end),
            "progress_notify": true,
        }
    });
    if start > 0 {
        body["create_request"]["start_revision"] = serde_json::json!(start);
    }
    let mut response = client
        .post(format!("{endpoint}/v3/watch"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("/v3/watch: {}", response.status()).into());
    }
    let mut buffer = Vec::new();
    // The "created" message comes first; writes start only after it.
    loop {
        if let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let message: WatchMessage = serde_json::from_slice(&line)?;
            if message.result.is_some_and(|r| r.created) {
                break;
            }
            continue;
        }
        match response.chunk().await? {
            Some(chunk) => buffer.extend_from_slice(&chunk),
            None => return Err("watch stream ended before it was created".into()),
        }
    }
    let root = root.to_string();
    Ok(tokio::spawn(async move {
        let mut message_number = 0u64;
        let mut newest = 0;
        loop {
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let message: WatchMessage = serde_json::from_slice(&line)?;
                // Stamped once the message is decoded, as the gRPC side is.
                let at = Instant::now();
                let Some(result) = message.result else {
                    continue;
                };
                if result.canceled {
                    return Err("watch canceled".into());
                }
                message_number += 1;
                let batch = !result.events.is_empty();
                for event in result.events {
                    let Some(kv) = event.kv else { continue };
                    newest = newest.max(kv.mod_revision);
                    if event.kind == "DELETE" {
                        continue;
                    }
                    let key = String::from_utf8(BASE64.decode(&kv.key)?)?;
                    if !is_within(&key, &root) {
                        continue;
                    }
                    let value = String::from_utf8(BASE64.decode(&kv.value)?)?;
                    let sent = events.send(Event {
                        key,
                        value,
                        at,
                        message: message_number,
                    });
                    if sent.is_err() {
                        return Ok(newest);
                    }
                }
                if batch && one_batch {
                    return Ok(newest);
                }
            }
            match response.chunk().await? {
                Some(chunk) => buffer.extend_from_slice(&chunk),
                None => return Ok(newest),
            }
        }
    }))
}
