//! etcd v3 watches over gRPC, with the gateway watch's semantics: one
//! `Watch` stream per prefix from the read's revision + 1, kept open between
//! calls, each message decoded within `-max-response-size`; a compacted
//! revision means resync, a cancel is an error, and a stream silent for the
//! watch timeout is given up as quiet (the caller opens a new one from the
//! same revision, on the next node if this one does not answer).

use etcd_client::{EventType, WatchOptions, WatchStream};

use super::grpc::EtcdV3Grpc;
use super::{WatchBatch, subtree_range};
use crate::backend::http::{answer_limit, quote_server};
use crate::backend::{BackendError, WatchEvent};

/// A watch stream left open after the batch it returned.
pub(super) struct OpenGrpcWatch {
    stream: WatchStream,
    location: String,
}

/// One event of a watch message, as bytes.
#[derive(Debug, Clone, Copy)]
struct RawEvent<'a> {
    delete: bool,
    key: &'a [u8],
    value: &'a [u8],
    mod_revision: i64,
}

impl EtcdV3Grpc {
    /// Waits for the first batch of changes under `root` after `index`,
    /// reusing the prefix's open stream when it has delivered nothing the
    /// caller has not seen.
    pub(super) async fn watch_root(
        &self,
        root: &str,
        index: u64,
    ) -> Result<WatchEvent, BackendError> {
        let mut open = match self.streams.take(root, index) {
            Some(open) => open,
            None => self.open_watch(root, index).await?,
        };
        let outcome = self.next_change(root, index, &mut open).await;
        self.streams.keep(root, open, &outcome);
        outcome
    }

    /// Opens a watch on `root` from `index + 1`, asking for progress
    /// notifications (an etcd with a
    /// `--experimental-watch-progress-notify-interval` shorter than the watch
    /// timeout keeps a quiet stream visibly alive). etcd answers a new
    /// stream at once, so a node that does not within [`answer_limit`] is
    /// given up for the next one.
    async fn open_watch(&self, root: &str, index: u64) -> Result<OpenGrpcWatch, BackendError> {
        let (key, range_end) = subtree_range(root);
        let start = i64::try_from(index.saturating_add(1)).unwrap_or(i64::MAX);
        let options = WatchOptions::new()
            .with_range(range_end)
            .with_start_revision(start)
            .with_progress_notify();
        let limit = self.decoding_limit();
        let (stream, node) = self
            .on_nodes(answer_limit(self.watch_timeout()), |client| {
                let (key, options) = (key.clone(), options.clone());
                async move {
                    let mut watch = client.watch_client().max_decoding_message_size(limit);
                    watch.watch(key, Some(options)).await
                }
            })
            .await?;
        Ok(OpenGrpcWatch {
            stream,
            location: format!("{node} watch {root}"),
        })
    }

    /// Reads the stream until a message holds a change under `root` newer
    /// than `index`.
    async fn next_change(
        &self,
        root: &str,
        index: u64,
        open: &mut OpenGrpcWatch,
    ) -> Result<WatchEvent, BackendError> {
        let location = open.location.clone();
        loop {
            let idle = self.watch_timeout();
            let response = match tokio::time::timeout(idle, open.stream.message()).await {
                Err(_) => {
                    tracing::debug!(
                        location = %location,
                        "watch stream silent for {}; opening it again",
                        humantime::format_duration(idle)
                    );
                    return Ok(WatchEvent::Quiet);
                }
                Ok(Ok(None)) => return Ok(WatchEvent::Quiet),
                Ok(Ok(Some(response))) => response,
                Ok(Err(e)) => return Err(self.stream_error(&e, location)),
            };
            if response.compact_revision() > 0 {
                return Ok(WatchEvent::Resync);
            }
            if response.canceled() {
                return Err(self.error(
                    location,
                    format!("watch canceled: {}", quote_server(response.cancel_reason())),
                ));
            }
            let events = response.events().iter().filter_map(|event| {
                let kv = event.kv()?;
                Some(RawEvent {
                    delete: event.event_type() == EventType::Delete,
                    key: kv.key(),
                    value: kv.value(),
                    mod_revision: kv.mod_revision(),
                })
            });
            if let Some(event) = batch_changes(root, index, events)
                .map_err(|message| self.error(location.clone(), message))?
            {
                return Ok(event);
            }
        }
    }

    /// A stream that failed after it opened: over the decoding limit is the
    /// `-max-response-size` error; a lost connection is transient (the
    /// caller watches again, on the next node if need be).
    fn stream_error(&self, error: &etcd_client::Error, location: String) -> BackendError {
        if let etcd_client::Error::GRpcStatus(status) = error {
            if status
                .message()
                .contains("decoded message length too large")
            {
                return self.too_large(location);
            }
            return BackendError {
                backend: "etcdv3",
                location,
                message: format!(
                    "watch failed: gRPC status {:?}: {}",
                    status.code(),
                    quote_server(status.message())
                ),
                transient: true,
            };
        }
        BackendError {
            backend: "etcdv3",
            location,
            message: format!("watch failed: {}", quote_server(error)),
            transient: true,
        }
    }
}

/// The changes of one watch message that lie under `root` and are newer
/// than `index` (the key range also covers siblings such as `/app-x`), as a
/// [`WatchEvent::Changed`] at the newest revision; `None` when there are
/// none. Keys and values become text as the gateway path's do.
fn batch_changes<'a>(
    root: &str,
    index: u64,
    events: impl IntoIterator<Item = RawEvent<'a>>,
) -> Result<Option<WatchEvent>, String> {
    let mut batch = WatchBatch::new(root, index);
    for event in events {
        let revision = u64::try_from(event.mod_revision).unwrap_or(0);
        batch.add(revision, event.key, event.delete, || Ok(event.value))?;
    }
    Ok(batch.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Change;

    fn event(
        delete: bool,
        key: &'static [u8],
        value: &'static [u8],
        rev: i64,
    ) -> RawEvent<'static> {
        RawEvent {
            delete,
            key,
            value,
            mod_revision: rev,
        }
    }

    #[test]
    fn batches_become_changes_under_the_root_only() {
        let events = [
            event(false, b"/app/a", b"2", 10),
            event(false, b"/app-x", b"1", 11),
            event(true, b"/app/b", b"", 12),
            event(false, b"/app/old", b"0", 9),
        ];
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
        assert_eq!(
            batch_changes("/app", 12, [event(false, b"/app-x", b"1", 13)]),
            Ok(None)
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_an_error_naming_the_key() {
        let error = batch_changes("/app", 9, [event(false, b"/app/bin", b"\xff\xfex", 11)])
            .expect_err("not UTF-8");
        assert!(
            error.contains("key /app/bin") && error.contains("UTF-8"),
            "{error}"
        );
        let error =
            batch_changes("/app", 9, [event(true, b"/app/\xff", b"", 13)]).expect_err("not UTF-8");
        assert!(error.contains("key /app/\u{fffd}"), "{error}");
        assert_eq!(
            batch_changes("/app", 9, [event(false, b"/app-x\xff", b"1", 12)]),
            Ok(None)
        );
    }
}
