//! `confd announce -backend etcd`: the v2 API's TTL keys. The key is written
//! with `PUT /v2/keys/KEY?value=V&ttl=N`, refreshed with
//! `ttl=N&refresh=true&prevExist=true` (which extends the TTL without a new
//! value, so watchers see no change), and deleted with `prevValue=V`, so a
//! value someone wrote over it is left alone.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::registrar::{Refreshed, Registrar, refused};
use crate::backend::BackendError;
use crate::backend::http::{HttpConfig, Limits, NodeClient, server_text};
use crate::error::ConfigError;

/// etcd v2's "Key not found".
const KEY_NOT_FOUND: u64 = 100;
/// etcd v2's "Compare failed" (another value is there now).
const COMPARE_FAILED: u64 = 101;

/// etcd v2's error body.
#[derive(Debug, Deserialize)]
struct EtcdError {
    #[serde(rename = "errorCode")]
    code: u64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    cause: String,
}

/// Keeps a TTL key alive in etcd's v2 API.
#[derive(Debug)]
pub struct EtcdRegistrar {
    client: NodeClient,
    key: String,
    value: String,
    ttl: String,
}

impl EtcdRegistrar {
    /// Prepares the client (nothing is sent yet).
    pub fn new(
        config: &HttpConfig,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<EtcdRegistrar, ConfigError> {
        Ok(EtcdRegistrar {
            client: NodeClient::new(config)?,
            key: key.to_string(),
            value: value.to_string(),
            ttl: ttl.as_secs().to_string(),
        })
    }

    fn url(&self, node: &Url, query: &[(&str, &str)]) -> Url {
        let mut url = node.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["v2", "keys"]);
            segments.extend(self.key.split('/').filter(|s| !s.is_empty()));
        }
        url.query_pairs_mut().extend_pairs(query);
        url
    }

    /// Sends one request; returns the status, etcd's error code (if it
    /// answered with one) and where, or the error for anything else.
    async fn send(
        &self,
        method: reqwest::Method,
        query: &[(&str, &str)],
        accepted: &[u64],
    ) -> Result<(StatusCode, Option<u64>, String), BackendError> {
        let (response, node) = self
            .client
            .send(Limits::REQUEST, |client, node| {
                client.request(method.clone(), self.url(node, query))
            })
            .await?;
        let location = format!("{node} {}", self.key);
        let status = response.status();
        let body = self.client.read_body(response, &location).await?;
        if status.is_success() {
            return Ok((status, None, location));
        }
        match serde_json::from_slice::<EtcdError>(&body) {
            Ok(e) if accepted.contains(&e.code) => Ok((status, Some(e.code), location)),
            Ok(e) => Err(refused(
                "etcd",
                location,
                status,
                server_text(format!("{} ({})", e.message, e.cause).as_bytes()),
            )),
            Err(_) => Err(refused("etcd", location, status, server_text(&body))),
        }
    }
}

#[async_trait]
impl Registrar for EtcdRegistrar {
    async fn register(&mut self) -> Result<Option<Duration>, BackendError> {
        let query = [("value", self.value.as_str()), ("ttl", self.ttl.as_str())];
        self.send(reqwest::Method::PUT, &query, &[]).await?;
        Ok(None)
    }

    async fn refresh(&mut self) -> Result<Refreshed, BackendError> {
        let query = [
            ("ttl", self.ttl.as_str()),
            ("refresh", "true"),
            ("prevExist", "true"),
        ];
        match self
            .send(reqwest::Method::PUT, &query, &[KEY_NOT_FOUND])
            .await?
        {
            (_, Some(_), _) => Ok(Refreshed::Gone),
            _ => Ok(Refreshed::Alive(None)),
        }
    }

    async fn withdraw(&mut self) -> Result<(), BackendError> {
        let query = [("prevValue", self.value.as_str())];
        self.send(
            reqwest::Method::DELETE,
            &query,
            &[KEY_NOT_FOUND, COMPARE_FAILED],
        )
        .await?;
        Ok(())
    }
}
