//! etcd's native gRPC API through etcd-client (tonic over HTTP/2, prost
//! messages): a Range of the subtree, paged like confd's gateway reads or in
//! one response, and a Watch stream.

use std::time::Instant;

use etcd_client::{Client, GetOptions, WatchOptions};
use tokio::sync::mpsc::UnboundedSender;

use crate::{Error, Event, PAGE_SIZE, Pairs, Watcher, is_within, subtree_range};

/// How much one gRPC answer may hold when read in one piece. tonic's default
/// is 4 MiB; 100,000 keys of the seed layout are ≈ 7 MB (etcd's Go client
/// allows 2 GiB by default).
const SINGLE_RANGE_LIMIT: usize = 256 << 20;

/// Reads everything under `root`. `paged`: 5,000 keys a request at the first
/// page's revision (as confd pages the gateway); otherwise one Range, with
/// the decoding limit raised (`raise_limit`) or left at tonic's default.
/// Returns the pairs and the size of the protobuf messages received.
pub async fn read(
    endpoint: &str,
    root: &str,
    paged: bool,
    raise_limit: bool,
) -> Result<(Pairs, u64), Error> {
    let client = Client::connect([endpoint], None).await?;
    let mut kv = client.kv_client();
    if raise_limit {
        kv = kv.max_decoding_message_size(SINGLE_RANGE_LIMIT);
    }
    let (mut key, range_end) = subtree_range(root);
    let mut revision = 0;
    let mut received = 0;
    let mut out = Vec::new();
    loop {
        let mut options = GetOptions::new().with_range(range_end.clone());
        if paged {
            options = options.with_limit(PAGE_SIZE as i64);
        }
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let mut page = kv.get(key.clone(), Some(options)).await?;
        received += encoded_len(&page);
        if revision == 0 {
            revision = page.header().map_or(0, |h| h.revision());
        }
        let more = page.more();
        let mut last = None;
        for item in page.take_kvs() {
            let (raw_key, value) = item.into_key_value();
            let text = std::str::from_utf8(&raw_key)?;
            if is_within(text, root) {
                let value = String::from_utf8(value)?;
                out.push((text.to_string(), value));
            }
            last = Some(raw_key);
        }
        match (more, last) {
            (true, Some(mut next)) => {
                next.push(0);
                key = next;
            }
            _ => return Ok((out, received)),
        }
    }
}

/// The size of a Range answer on the wire (without HTTP/2 framing).
fn encoded_len(page: &etcd_client::GetResponse) -> u64 {
    // etcd-client keeps the prost message private; rebuild its size from
    // the fields: each KeyValue is a length-delimited field of key, value
    // and four varints.
    fn varint(n: u64) -> u64 {
        u64::from((64 - (n | 1).leading_zeros()).div_ceil(7))
    }
    fn bytes_field(len: u64) -> u64 {
        if len == 0 { 0 } else { 1 + varint(len) + len }
    }
    fn int_field(n: i64) -> u64 {
        if n == 0 { 0 } else { 1 + varint(n as u64) }
    }
    let mut total = 40; // the header and `more`/`count`, near enough
    for kv in page.kvs() {
        let inner = bytes_field(kv.key().len() as u64)
            + bytes_field(kv.value().len() as u64)
            + int_field(kv.create_revision())
            + int_field(kv.mod_revision())
            + int_field(kv.version())
            + int_field(kv.lease());
        total += 1 + varint(inner) + inner;
    }
    total
}

/// Opens a Watch on `root` from revision `start` (0: from now) and returns
/// once etcd confirmed it; a task then sends every put under `root`, stamped
/// on arrival, to `events`. With `one_batch` the task ends after the first
/// message with events and returns its newest revision.
pub async fn watch(
    endpoint: &str,
    root: &str,
    start: u64,
    one_batch: bool,
    events: UnboundedSender<Event>,
) -> Result<Watcher, Error> {
    let mut client = Client::connect([endpoint], None).await?;
    let (key, range_end) = subtree_range(root);
    let mut options = WatchOptions::new()
        .with_range(range_end)
        .with_progress_notify();
    if start > 0 {
        options = options.with_start_revision(start as i64);
    }
    let mut stream = client.watch(key, Some(options)).await?;
    loop {
        match stream.message().await? {
            Some(response) if response.created() => break,
            Some(_) => continue,
            None => return Err("watch stream ended before it was created".into()),
        }
    }
    let root = root.to_string();
    Ok(tokio::spawn(async move {
        // The client must live as long as the stream it opened.
        let _client = client;
        let mut message_number = 0u64;
        let mut newest = 0;
        while let Some(response) = stream.message().await? {
            let at = Instant::now();
            if response.canceled() {
                return Err("watch canceled".into());
            }
            message_number += 1;
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                newest = newest.max(kv.mod_revision() as u64);
                if event.event_type() == etcd_client::EventType::Delete {
                    continue;
                }
                let key = kv.key_str()?;
                if !is_within(key, &root) {
                    continue;
                }
                let sent = events.send(Event {
                    key: key.to_string(),
                    value: kv.value_str()?.to_string(),
                    at,
                    message: message_number,
                });
                if sent.is_err() {
                    return Ok(newest);
                }
            }
            if one_batch && !response.events().is_empty() {
                return Ok(newest);
            }
        }
        Ok(newest)
    }))
}
