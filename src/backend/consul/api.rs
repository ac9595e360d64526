//! The part of Consul's HTTP API confd speaks, shared by the KV backend, the
//! service catalog (`service(...)`) and `confd announce`: nodes with failover,
//! the ACL token, the datacenter, `X-Consul-Index`, and the index rules of
//! blocking queries.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::ConsulConfig;
use crate::backend::BackendError;
use crate::backend::http::{BodyReader, Limits, NodeClient, REQUEST_TIMEOUT, server_text};
use crate::error::ConfigError;

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

    pub(super) fn url(
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
        let (response, node) = self.send_get(path, query, blocking).await?;
        self.answer(response, node, what, true).await
    }

    /// GETs `path` with `query` like [`ConsulApi::get`], handing a 200
    /// answer's body to `parse` as it arrives (never held whole); `None`
    /// for a 404. Returns the parse, `X-Consul-Index` and the location.
    pub async fn get_parsed<T, P>(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        what: &str,
        parse: P,
    ) -> Result<(Option<T>, u64, String), BackendError>
    where
        T: Send + 'static,
        P: FnOnce(BodyReader) -> T + Send + 'static,
    {
        let (response, node) = self.send_get(path, query, None).await?;
        if response.status() != StatusCode::OK {
            let answer = self.answer(response, node, what, true).await?;
            return Ok((None, answer.index, answer.location));
        }
        let location = format!("{node} {what}");
        let index = consul_index(&response);
        let parsed = self.client.parse_body(response, &location, parse).await?;
        Ok((Some(parsed), index, location))
    }

    async fn send_get(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        blocking: Option<u64>,
    ) -> Result<(reqwest::Response, String), BackendError> {
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
        self.client
            .send(limits, |client, node| {
                let request = client.get(self.url(node, path, query, blocking));
                match &self.token {
                    Some(token) => request.header("X-Consul-Token", token),
                    None => request,
                }
            })
            .await
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
        self.answer(response, node, what, true).await
    }

    /// Reads an answer: 200 and 404 are answers; a 403 says how to give a
    /// token; anything else is an error. Without `keep_body`, a 200 answer's
    /// body is read (within `-max-response-size`) and dropped as it arrives:
    /// a watch only needs the index.
    async fn answer(
        &self,
        response: reqwest::Response,
        node: String,
        what: &str,
        keep_body: bool,
    ) -> Result<ApiAnswer, BackendError> {
        let location = format!("{node} {what}");
        let status = response.status();
        let index = consul_index(&response);
        let body = if keep_body || status != StatusCode::OK {
            self.client.read_body(response, &location).await?
        } else {
            self.client.discard_body(response, &location).await?;
            Vec::new()
        };
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
        self.blocking(path, query, index, what).await
    }

    /// A blocking query after `index` whose answer, when the result
    /// changed, is handed to `parse` as it arrives (never held whole): the
    /// answer already is the new result, so no second read is needed. The
    /// parse is `None` for an unchanged result and for a 404 (nothing under
    /// the prefix). Also returns the node and path, for messages.
    pub async fn blocking_parsed<T, P>(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        index: u64,
        what: &str,
        parse: P,
    ) -> Result<(Blocking, Option<T>, String), BackendError>
    where
        T: Send + 'static,
        P: FnOnce(BodyReader) -> T + Send + 'static,
    {
        let asked = index.max(1);
        let started = Instant::now();
        let (response, node) = self.send_get(path, query, Some(asked)).await?;
        let outcome = judge(index, asked, consul_index(&response));
        let location = format!("{node} {what}");
        let parsed =
            if matches!(outcome, Blocking::Changed(_)) && response.status() == StatusCode::OK {
                Some(self.client.parse_body(response, &location, parse).await?)
            } else {
                // Errors are reported as for any answer; the body is dropped.
                self.answer(response, node, what, false).await?;
                None
            };
        pause_if_tight(outcome, started, what, index).await;
        Ok((outcome, parsed, location))
    }

    async fn blocking(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        index: u64,
        what: &str,
    ) -> Result<(Blocking, ApiAnswer), BackendError> {
        let asked = index.max(1);
        let started = Instant::now();
        let (response, node) = self.send_get(path, query, Some(asked)).await?;
        let answer = self.answer(response, node, what, true).await?;
        let outcome = judge(index, asked, answer.index);
        pause_if_tight(outcome, started, what, answer.index).await;
        Ok((outcome, answer))
    }
}

/// What a blocking query's answer at `answered` means, for a query after
/// `index` sent as `asked` (Consul's index rules).
fn judge(index: u64, asked: u64, answered: u64) -> Blocking {
    if answered < asked && index > 0 {
        Blocking::Reset
    } else if answered > asked {
        Blocking::Changed(answered)
    } else {
        Blocking::Quiet
    }
}

/// Pauses after an unchanged answer that came back at once, so a
/// misbehaving server cannot spin the daemon.
async fn pause_if_tight(outcome: Blocking, started: Instant, what: &str, index: u64) {
    if outcome == Blocking::Quiet && started.elapsed() < TIGHT_LOOP {
        tracing::debug!(what, index, "blocking query returned at once; pausing");
        tokio::time::sleep(TIGHT_LOOP_PAUSE).await;
    }
}

/// A response's `X-Consul-Index` (0 when absent).
fn consul_index(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
