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

mod api;
mod kv;

use async_trait::async_trait;

pub use api::{ApiAnswer, Blocking, ConsulApi, blocking_deadline};

use super::http::HttpConfig;
use super::{Backend, BackendError, Change, Fetched, WatchEvent};
use crate::error::ConfigError;
use crate::snapshot::PairList;

/// Where `-backend consul` connects when no `-node` is given.
pub const DEFAULT_NODE: &str = "127.0.0.1:8500";

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

/// Reads Consul's KV store.
#[derive(Debug)]
pub struct ConsulBackend {
    api: ConsulApi,
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
}

const RECURSE: [(&str, &str); 1] = [("recurse", "true")];

#[async_trait]
impl Backend for ConsulBackend {
    fn name(&self) -> &'static str {
        "consul"
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        let mut pairs = PairList::new();
        // X-Consul-Index is per prefix; the pass claims the lowest, as a
        // higher one could hide a change made between two of its GETs.
        let mut index = u64::MAX;
        let mut root_indexes = Vec::with_capacity(roots.len());
        for root in roots {
            // The list goes to the parser's thread and comes back with this
            // prefix's pairs added.
            let mut list = std::mem::take(&mut pairs);
            let owned_root = root.clone();
            let (parsed, read_index, location) = self
                .api
                .get_parsed(
                    &kv_path(root),
                    &RECURSE,
                    &format!("prefix {root}"),
                    move |reader| {
                        let parsed = kv::parse_entries(reader, &owned_root, &mut list);
                        (list, parsed)
                    },
                )
                .await
                .map_err(|e| e.reading(root))?;
            if let Some((list, parsed)) = parsed {
                parsed.map_err(|message| self.api.error(location, message))?;
                pairs = list;
            }
            index = index.min(read_index);
            root_indexes.push(read_index);
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
        // A changed result comes with the whole prefix: it replaces the
        // kept copy, so the change costs no second read.
        let owned_root = root.to_string();
        let (outcome, parsed, location) = self
            .api
            .blocking_parsed(
                &kv_path(root),
                &RECURSE,
                index,
                &format!("prefix {root}"),
                move |reader| {
                    let mut list = PairList::new();
                    let parsed = kv::parse_entries(reader, &owned_root, &mut list);
                    (list, parsed)
                },
            )
            .await?;
        Ok(match outcome {
            Blocking::Changed(new_index) => {
                let pairs = match parsed {
                    Some((list, parsed)) => {
                        parsed.map_err(|message| self.api.error(location, message))?;
                        list
                    }
                    // 404: nothing is left under the prefix.
                    None => PairList::new(),
                };
                WatchEvent::Changed {
                    index: new_index,
                    changes: Some(vec![Change::ReplaceTree {
                        key: root.to_string(),
                        pairs,
                    }]),
                }
            }
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
}
