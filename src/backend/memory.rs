//! An in-memory backend for the daemon's tests: the test writes keys,
//! deletes them, compacts the history, makes reads fail or a watch panic,
//! and the daemon's watch receives each change as etcd would report it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Backend, BackendError, Change, Fetched, WatchEvent, within_roots};

#[derive(Default)]
struct State {
    data: BTreeMap<String, String>,
    index: u64,
    /// Every change with the index it happened at.
    log: Vec<(u64, Change)>,
    /// Changes at or below this index are forgotten (etcd's compaction).
    compacted: u64,
    failing: bool,
    panic_next_watch: bool,
    reads: usize,
}

/// Keys held in memory, with a change log its watch reports from.
pub struct MemoryBackend {
    state: Mutex<State>,
    index: watch::Sender<u64>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend {
            state: Mutex::default(),
            index: watch::channel(0).0,
        }
    }
}

impl MemoryBackend {
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut state)
    }

    fn record(&self, change: Change) {
        let index = self.with_state(|s| {
            s.index += 1;
            match &change {
                Change::Put { key, value } => {
                    s.data.insert(key.clone(), value.clone());
                }
                Change::Delete { key } | Change::DeleteTree { key } => {
                    s.data.remove(key);
                }
                Change::ReplaceTree { key, pairs } => {
                    let below = format!("{}/", key.trim_end_matches('/'));
                    s.data.retain(|k, _| k != key && !k.starts_with(&below));
                    for (k, v) in pairs.iter() {
                        s.data.insert(k.to_string(), v.to_string());
                    }
                }
            }
            let index = s.index;
            s.log.push((index, change));
            index
        });
        self.index.send_replace(index);
    }

    /// Sets a key.
    pub fn put(&self, key: &str, value: &str) {
        self.record(Change::Put {
            key: key.to_string(),
            value: value.to_string(),
        });
    }

    /// Deletes a key.
    pub fn delete(&self, key: &str) {
        self.record(Change::Delete {
            key: key.to_string(),
        });
    }

    /// Forgets the history so far: a watch behind it must resync.
    pub fn compact(&self) {
        self.with_state(|s| s.compacted = s.index);
    }

    /// Makes reads and watches fail (or work again).
    pub fn set_failing(&self, failing: bool) {
        self.with_state(|s| s.failing = failing);
        self.index.send_modify(|_| {});
    }

    /// Makes the next watch call panic.
    pub fn panic_next_watch(&self) {
        self.with_state(|s| s.panic_next_watch = true);
        self.index.send_modify(|_| {});
    }

    /// How many reads were served.
    pub fn reads(&self) -> usize {
        self.with_state(|s| s.reads)
    }

    fn down() -> BackendError {
        BackendError {
            backend: "memory",
            location: "memory".to_string(),
            message: "down (as the test asked)".to_string(),
            transient: true,
        }
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        self.with_state(|s| {
            if s.failing {
                return Err(Self::down());
            }
            s.reads += 1;
            Ok(Fetched {
                pairs: s
                    .data
                    .iter()
                    .filter(|(k, _)| within_roots(k, roots))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                index: s.index,
                root_indexes: Vec::new(),
            })
        })
    }

    fn can_watch(&self) -> bool {
        true
    }

    async fn watch(&self, root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        let roots = [root.to_string()];
        let mut changed = self.index.subscribe();
        loop {
            let event = self.with_state(|s| {
                if std::mem::take(&mut s.panic_next_watch) {
                    panic!("the test asked this watch to panic");
                }
                if s.failing {
                    return Some(Err(Self::down()));
                }
                if index < s.compacted {
                    return Some(Ok(WatchEvent::Resync));
                }
                let changes: Vec<(u64, Change)> = s
                    .log
                    .iter()
                    .filter(|(i, c)| *i > index && within_roots(change_key(c), &roots))
                    .cloned()
                    .collect();
                let last = changes.last().map(|(i, _)| *i)?;
                Some(Ok(WatchEvent::Changed {
                    index: last,
                    changes: Some(changes.into_iter().map(|(_, c)| c).collect()),
                }))
            });
            if let Some(event) = event {
                return event;
            }
            if changed.changed().await.is_err() {
                return Ok(WatchEvent::Quiet);
            }
        }
    }
}

fn change_key(change: &Change) -> &str {
    match change {
        Change::Put { key, .. }
        | Change::Delete { key }
        | Change::DeleteTree { key }
        | Change::ReplaceTree { key, .. } => key,
    }
}
