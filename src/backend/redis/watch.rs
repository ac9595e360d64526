//! `-watch` for Redis: keyspace notifications. Each watched prefix holds a
//! connection subscribed (`PSUBSCRIBE`) to `__keyspace@<db>__:<prefix>` and
//! `…:<prefix><sep>*`; each notification names a key, which is read at once
//! (one `MGET` for a batch) and reported as a [`Change::Put`] or
//! [`Change::Delete`], so the daemon applies it without reading the prefix
//! again. A change involving a hash (an `h…` event, or a key last seen
//! holding one) or a key whose type is unclear reports no changes instead:
//! the prefix is read again, since a hash's fields are keys of their own.
//!
//! Redis keeps no history, so the index is a counter of our own, moved by
//! every batch of notifications and every new subscription. A read returns
//! the counter as it was when the read started; a watch asked from an index
//! older than its subscription reports "read again", so a change made before
//! the subscription existed (between the daemon's first read and its first
//! watch, or while a lost connection was down) is never missed.
//!
//! A server with notifications off (`notify-keyspace-events` without `K`
//! and the `g$hx` classes), or that refuses `CONFIG GET` or `PSUBSCRIBE`,
//! is said so once and polled every `-interval` instead. A subscription
//! silent for the watch timeout is sent a `PING`; no answer within
//! [`answer_limit`] means the node silently died: the watch fails, and the
//! prefix is read again once it is back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::conn::{Conn, Fault, SMALL_ANSWER, refusal};
use super::resp::Reply;
use super::{RedisBackend, escape_glob, text};
use crate::backend::http::{answer_limit, server_text};
use crate::backend::{BackendError, Change, WatchEvent};

/// Most notifications taken in one batch.
const MAX_BATCH: usize = 10_000;

/// The state of every watched prefix.
pub(super) struct Watches {
    index: AtomicU64,
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    watch_timeout: Duration,
    interval: Duration,
    /// Polling ticks fall on this instant plus multiples of the interval,
    /// so every prefix's poll comes due together and one read serves all.
    epoch: Instant,
    /// Whether the last thing said was "polling" (`Some(true)`) or
    /// "watching" (`Some(false)`): each is said once per change.
    polling: std::sync::Mutex<Option<bool>>,
}

/// One prefix's subscription, when it has one.
struct Slot {
    sub: Option<Sub>,
    last_used: Instant,
}

struct Sub {
    conn: Conn,
    /// The index the subscription started at.
    since: u64,
    /// `__keyspace@<db>__:`, stripped from channels to get keys.
    channel_prefix: Vec<u8>,
    /// A reply was being read when the last call was cancelled: the stream
    /// cannot be trusted.
    busy: bool,
}

/// What a subscription brought.
enum Heard {
    /// Keys with the event of their last notification.
    Keys(Vec<(Vec<u8>, Vec<u8>)>),
    /// Nothing within the watch timeout, and the node answered a PING.
    Quiet,
}

/// Why a prefix cannot be watched.
struct Unwatchable(String);

/// What a pushed message is.
enum Push {
    Event(Vec<u8>, Vec<u8>),
    Pong,
    Subscribed,
    Other,
}

fn classify(reply: Reply, channel_prefix: &[u8]) -> Push {
    let Some(items) = reply.into_items() else {
        return Push::Other;
    };
    let mut items = items.into_iter().map(Reply::into_bytes);
    match items.next().flatten().as_deref() {
        Some(b"pmessage") => match (items.next(), items.next(), items.next()) {
            (Some(_), Some(Some(channel)), Some(Some(event))) => {
                match channel.strip_prefix(channel_prefix) {
                    Some(key) => Push::Event(key.to_vec(), event),
                    None => Push::Other,
                }
            }
            _ => Push::Other,
        },
        Some(b"pong") => Push::Pong,
        Some(b"psubscribe") => Push::Subscribed,
        _ => Push::Other,
    }
}

/// Whether `notify-keyspace-events` sends what confd needs: keyspace
/// channels (`K`) for generic (`g`), string (`$`), hash (`h`) and expiry
/// (`x`) events; `A` stands for all classes.
pub(super) fn notifications_suffice(flags: &str) -> bool {
    flags.contains('K')
        && (flags.contains('A') || ['g', '$', 'h', 'x'].iter().all(|c| flags.contains(*c)))
}

/// Events after which a key that holds no string is gone (rather than
/// holding a type a string read cannot see).
fn removes(event: &[u8]) -> bool {
    matches!(
        event,
        b"del" | b"expired" | b"evicted" | b"rename_from" | b"move_from" | b"unlink"
    )
}

impl Watches {
    pub(super) fn new(watch_timeout: Duration, interval: Duration) -> Watches {
        Watches {
            index: AtomicU64::new(0),
            slots: std::sync::Mutex::new(HashMap::new()),
            watch_timeout,
            interval,
            epoch: Instant::now(),
            polling: std::sync::Mutex::new(None),
        }
    }

    /// The current index (what a read started now covers).
    pub(super) fn index(&self) -> u64 {
        self.index.load(Ordering::SeqCst)
    }

    fn bump(&self) -> u64 {
        self.index.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The slot of `root`; slots nobody used for a while (a prefix a
    /// reload dropped) are closed on the way.
    fn slot(&self, root: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let idle = self.watch_timeout * 3 + self.interval;
        let mut slots = match self.slots.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots.retain(|r, slot| {
            r == root
                || slot
                    .try_lock()
                    .map(|s| s.last_used.elapsed() < idle)
                    .unwrap_or(true)
        });
        slots
            .entry(root.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Slot {
                    sub: None,
                    last_used: Instant::now(),
                }))
            })
            .clone()
    }

    /// Says, once per change, whether prefixes are watched or polled.
    fn say(&self, polling: bool, node: &str, why: &str) {
        let mut said = match self.polling.lock() {
            Ok(said) => said,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *said == Some(polling) {
            return;
        }
        let first = said.is_none();
        *said = Some(polling);
        if polling {
            tracing::warn!(
                backend = "redis",
                node,
                interval = self.interval.as_secs(),
                "cannot follow keyspace notifications ({why}); polling every -interval instead (set notify-keyspace-events to KA, or at least Kg$hx, to watch)"
            );
        } else if !first {
            tracing::info!(
                backend = "redis",
                node,
                "keyspace notifications available again; watching"
            );
        }
    }

    /// Sleeps until the next polling tick.
    async fn next_tick(&self) {
        let period = self.interval.max(Duration::from_secs(1));
        let elapsed = self.epoch.elapsed();
        let ticks = elapsed.as_nanos() / period.as_nanos() + 1;
        let wait = period
            .saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
            .saturating_sub(elapsed);
        tokio::time::sleep(wait).await;
    }
}

impl RedisBackend {
    /// One call of [`crate::backend::Backend::watch`].
    pub(super) async fn watch_root(
        &self,
        root: &str,
        index: u64,
    ) -> Result<WatchEvent, BackendError> {
        let limit = self.max_response_size;
        let slot = self.watches.slot(root);
        let mut slot = slot.lock().await;
        slot.last_used = Instant::now();
        if slot.sub.as_ref().is_some_and(|s| s.busy) {
            slot.sub = None;
        }
        if slot.sub.is_none() {
            match self.subscribe(root).await? {
                Ok(sub) => {
                    self.watches.say(false, &sub.conn.name, "");
                    slot.sub = Some(sub);
                }
                Err((node, Unwatchable(why))) => {
                    self.watches.say(true, &node, &why);
                    drop(slot);
                    self.watches.next_tick().await;
                    return Ok(WatchEvent::changed(self.watches.bump()));
                }
            }
        }
        let Some(sub) = slot.sub.as_mut() else {
            return Ok(WatchEvent::Quiet);
        };
        if index < sub.since {
            return Ok(WatchEvent::changed(sub.since));
        }
        match self.listen(sub).await {
            Ok(Heard::Keys(events)) => {
                let index = self.watches.bump();
                drop(slot);
                let changes = self.changes_for(events).await?;
                Ok(WatchEvent::Changed { index, changes })
            }
            Ok(Heard::Quiet) => {
                let name = sub.conn.name.clone();
                // Notifications turned off at run time: poll from now on.
                if let Err(Unwatchable(why)) = self.check_notifications_on_read().await? {
                    slot.sub = None;
                    self.watches.say(true, &name, &why);
                    return Ok(WatchEvent::changed(self.watches.bump()));
                }
                Ok(WatchEvent::Quiet)
            }
            Err(fault) => {
                let name = sub.conn.name.clone();
                slot.sub = None;
                let mut error = fault.into_error(&name, limit);
                error.message = format!("subscription for {root}: {}", error.message);
                Err(error)
            }
        }
    }

    /// Connects a subscription for `root`, or says why it cannot be had.
    async fn subscribe(
        &self,
        root: &str,
    ) -> Result<Result<Sub, (String, Unwatchable)>, BackendError> {
        let limit = self.max_response_size;
        let mut conn = self.dialer.connect_any(limit).await?;
        let name = conn.name.clone();
        let fail = |fault: Fault| fault.into_error(&name, limit);
        if let Err(why) = notifications_on(&mut conn).await.map_err(fail)? {
            return Ok(Err((name, why)));
        }
        let channel_prefix = format!("__keyspace@{}__:", conn.db);
        let mut command = vec![b"PSUBSCRIBE".to_vec()];
        if root == "/" {
            command.push(format!("{channel_prefix}*").into_bytes());
        } else {
            let own = escape_glob(&self.keys.to_redis(root));
            let below = escape_glob(&self.keys.separator);
            command.push(format!("{channel_prefix}{own}").into_bytes());
            command.push(format!("{channel_prefix}{own}{below}*").into_bytes());
        }
        let patterns = command.len() - 1;
        conn.send(&[command]).await.map_err(fail)?;
        for _ in 0..patterns {
            let reply = conn.read(&mut SMALL_ANSWER.clone()).await.map_err(fail)?;
            if let Some(text) = reply.error_text() {
                let why = format!(
                    "PSUBSCRIBE was refused: {}; an ACL user needs +psubscribe and &__keyspace@*",
                    server_text(text)
                );
                return Ok(Err((name, Unwatchable(why))));
            }
            if !matches!(classify(reply, b""), Push::Subscribed) {
                return Err(fail(Fault::Node(
                    "PSUBSCRIBE answered in an unexpected shape".to_string(),
                )));
            }
        }
        Ok(Ok(Sub {
            conn,
            since: self.watches.bump(),
            channel_prefix: channel_prefix.into_bytes(),
            busy: false,
        }))
    }

    /// Waits for notifications; after the watch timeout without any, checks
    /// with a PING that the node is still there.
    async fn listen(&self, sub: &mut Sub) -> Result<Heard, Fault> {
        let mut events: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut pinged = false;
        loop {
            let wait = if pinged {
                answer_limit(self.watches.watch_timeout)
            } else {
                self.watches.watch_timeout
            };
            match tokio::time::timeout(wait, sub.conn.readable()).await {
                Ok(ready) => ready?,
                Err(_) if pinged => {
                    return Err(Fault::Node(format!(
                        "no answer to PING within {}",
                        humantime::format_duration(wait)
                    )));
                }
                Err(_) => {
                    sub.busy = true;
                    sub.conn.send(&[vec!["PING"]]).await?;
                    sub.busy = false;
                    pinged = true;
                    continue;
                }
            }
            let mut ponged = false;
            // Everything already buffered is one batch.
            loop {
                sub.busy = true;
                let mut budget = self.max_response_size;
                let reply = sub.conn.read(&mut budget).await?;
                sub.busy = false;
                match classify(reply, &sub.channel_prefix) {
                    Push::Event(key, event) => {
                        events.retain(|(k, _)| *k != key);
                        events.push((key, event));
                    }
                    Push::Pong => ponged = true,
                    Push::Subscribed => {}
                    Push::Other => {
                        return Err(Fault::Node(
                            "an unexpected message on the subscription".to_string(),
                        ));
                    }
                }
                if !sub.conn.has_buffered() || events.len() >= MAX_BATCH {
                    break;
                }
            }
            if !events.is_empty() {
                return Ok(Heard::Keys(events));
            }
            if ponged {
                return Ok(Heard::Quiet);
            }
        }
    }

    /// `notify-keyspace-events` asked on the read connection.
    async fn check_notifications_on_read(&self) -> Result<Result<(), Unwatchable>, BackendError> {
        let reply = self
            .call_read(vec![
                b"CONFIG".to_vec(),
                b"GET".to_vec(),
                b"notify-keyspace-events".to_vec(),
            ])
            .await?;
        Ok(judge_config(reply))
    }

    /// What the notified keys hold now, as changes; `None` when the prefix
    /// must be read again (a hash is involved, or a key's type is unclear).
    async fn changes_for(
        &self,
        events: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Option<Vec<Change>>, BackendError> {
        if events
            .iter()
            .any(|(key, event)| event.starts_with(b"h") || self.is_hash(key))
        {
            return Ok(None);
        }
        let mut mget = vec![b"MGET".to_vec()];
        mget.extend(events.iter().map(|(key, _)| key.clone()));
        let reply = self.call_read(mget).await?;
        let location = self.dialer.describe();
        let limit = self.max_response_size;
        if let Some(text) = reply.error_text() {
            return Err(refusal(text, "").into_error(&location, limit));
        }
        let values = reply.into_items().unwrap_or_default();
        if values.len() != events.len() {
            return Ok(None);
        }
        let mut changes = Vec::with_capacity(events.len());
        for ((key, event), value) in events.into_iter().zip(values) {
            let name =
                text(key.clone(), "key", &key).map_err(|f| f.into_error(&location, limit))?;
            let key_name = self.keys.to_confd(&name);
            match value.into_bytes() {
                Some(value) => changes.push(Change::Put {
                    key: key_name,
                    value: text(value, "value", &key)
                        .map_err(|f| f.into_error(&location, limit))?,
                }),
                None if removes(&event) => changes.push(Change::Delete { key: key_name }),
                // Set, then gone or turned into another type: read again.
                None => return Ok(None),
            }
        }
        Ok(Some(changes))
    }
}

/// Asks a connection not yet subscribed whether notifications are on.
async fn notifications_on(conn: &mut Conn) -> Result<Result<(), Unwatchable>, Fault> {
    let command = vec!["CONFIG", "GET", "notify-keyspace-events"];
    let reply = conn.call(command, &mut SMALL_ANSWER.clone()).await?;
    Ok(judge_config(reply))
}

fn judge_config(reply: Reply) -> Result<(), Unwatchable> {
    if let Some(text) = reply.error_text() {
        return Err(Unwatchable(format!(
            "CONFIG GET notify-keyspace-events was refused: {}",
            server_text(text)
        )));
    }
    let flags = reply
        .into_items()
        .and_then(|items| items.into_iter().nth(1))
        .and_then(Reply::into_bytes)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if notifications_suffice(&flags) {
        Ok(())
    } else {
        Err(Unwatchable(format!("notify-keyspace-events is {flags:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Some(text.as_bytes().to_vec()))
    }

    #[test]
    fn notification_settings_are_judged_by_their_classes() {
        for on in ["AK", "KEA", "Kg$hx", "xhg$KE", "AKEn", "KEg$lshzxe"] {
            assert!(notifications_suffice(on), "{on}");
        }
        for off in ["", "E", "AE", "K$", "Kg$h", "Eg$hx"] {
            assert!(!notifications_suffice(off), "{off}");
        }
        let answer =
            |flags: &str| Reply::Array(Some(vec![bulk("notify-keyspace-events"), bulk(flags)]));
        assert!(judge_config(answer("AKE")).is_ok());
        match judge_config(answer("")) {
            Err(Unwatchable(why)) => assert_eq!(why, "notify-keyspace-events is \"\""),
            Ok(()) => panic!("off is not on"),
        }
        match judge_config(Reply::Error(b"NOPERM no permissions".to_vec())) {
            Err(Unwatchable(why)) => assert!(why.contains("refused: NOPERM"), "{why}"),
            Ok(()) => panic!("refused is not on"),
        }
    }

    #[test]
    fn pushed_messages_are_told_apart() {
        let message = Reply::Array(Some(vec![
            bulk("pmessage"),
            bulk("__keyspace@2__:app:*"),
            bulk("__keyspace@2__:app:x"),
            bulk("set"),
        ]));
        match classify(message, b"__keyspace@2__:") {
            Push::Event(key, event) => {
                assert_eq!((key, event), (b"app:x".to_vec(), b"set".to_vec()))
            }
            _ => panic!("not an event"),
        }
        let pong = Reply::Array(Some(vec![bulk("pong"), bulk("")]));
        assert!(matches!(classify(pong, b""), Push::Pong));
        let confirmed = Reply::Array(Some(vec![bulk("psubscribe"), bulk("p"), Reply::Integer(1)]));
        assert!(matches!(classify(confirmed, b""), Push::Subscribed));
        assert!(matches!(classify(Reply::Integer(1), b""), Push::Other));
        assert!(removes(b"expired") && removes(b"del") && !removes(b"set"));
    }
}
