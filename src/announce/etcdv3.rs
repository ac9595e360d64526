//! `confd announce -backend etcdv3 -etcdv3-api gateway`: a lease, through etcd's JSON gateway.
//! `/v3/lease/grant` makes a lease of the TTL, `/v3/kv/put` writes the key
//! attached to it, `/v3/lease/keepalive` extends it (an answer without a TTL
//! means the lease expired: grant a new one and write again), and
//! `/v3/lease/revoke` ends it, which deletes the key with it, but never a
//! value someone else wrote over it with their own lease. Authentication is
//! the etcdv3 backend's (a token from -username/-password).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::registrar::{Refreshed, Registrar, refused};
use crate::backend::BackendError;
use crate::backend::etcdv3::EtcdV3Backend;
use crate::backend::http::{HttpConfig, quote_server, server_text};
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
struct Granted {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "TTL", default)]
    ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KeepAlive {
    #[serde(default)]
    result: Option<Granted>,
}

/// Keeps a key alive in etcd's v3 API with a lease.
#[derive(Debug)]
pub struct EtcdV3Registrar {
    api: EtcdV3Backend,
    key: String,
    value: String,
    ttl: Duration,
    lease: Option<String>,
}

fn seconds(text: Option<&str>) -> Option<Duration> {
    text.and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl EtcdV3Registrar {
    /// Prepares the client (nothing is sent yet).
    pub fn new(
        config: &HttpConfig,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<EtcdV3Registrar, ConfigError> {
        Ok(EtcdV3Registrar {
            api: EtcdV3Backend::new(config)?,
            key: key.to_string(),
            value: value.to_string(),
            ttl,
            lease: None,
        })
    }

    /// POSTs to the gateway; anything but 200 is an error about `what`.
    async fn call(
        &self,
        path: &str,
        body: serde_json::Value,
        what: &str,
    ) -> Result<(Vec<u8>, String), BackendError> {
        let (status, bytes, node) = self.api.post(path, &body).await?;
        let location = format!("{node} {what}");
        if status != reqwest::StatusCode::OK {
            return Err(refused("etcdv3", location, status, server_text(&bytes)));
        }
        Ok((bytes, location))
    }

    fn malformed(location: String, error: serde_json::Error) -> BackendError {
        BackendError {
            backend: "etcdv3",
            location,
            message: format!("unexpected answer: {}", quote_server(error)),
            transient: false,
        }
    }
}

#[async_trait]
impl Registrar for EtcdV3Registrar {
    async fn register(&mut self) -> Result<Option<Duration>, BackendError> {
        let lease = match self.lease.clone() {
            Some(lease) => lease,
            None => {
                let body = serde_json::json!({ "TTL": self.ttl.as_secs() });
                let (bytes, location) = self.call("v3/lease/grant", body, "lease grant").await?;
                let granted: Granted =
                    serde_json::from_slice(&bytes).map_err(|e| Self::malformed(location, e))?;
                self.lease = Some(granted.id.clone());
                granted.id
            }
        };
        let body = serde_json::json!({
            "key": BASE64.encode(&self.key),
            "value": BASE64.encode(&self.value),
            "lease": lease,
        });
        match self.call("v3/kv/put", body, &self.key).await {
            Ok(_) => Ok(Some(self.ttl)),
            Err(e) => {
                // The lease may have expired between grant and put.
                self.lease = None;
                Err(e)
            }
        }
    }

    async fn refresh(&mut self) -> Result<Refreshed, BackendError> {
        let Some(lease) = self.lease.clone() else {
            return Ok(Refreshed::Gone);
        };
        let body = serde_json::json!({ "ID": lease });
        let (bytes, location) = self
            .call("v3/lease/keepalive", body, "lease keepalive")
            .await?;
        // A stream: one JSON object per line; the first answers ours.
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let answer: KeepAlive =
            serde_json::from_slice(first).map_err(|e| Self::malformed(location, e))?;
        let ttl = answer.result.and_then(|r| seconds(r.ttl.as_deref()));
        match ttl {
            Some(ttl) if !ttl.is_zero() => Ok(Refreshed::Alive(Some(ttl))),
            _ => {
                self.lease = None;
                Ok(Refreshed::Gone)
            }
        }
    }

    async fn withdraw(&mut self) -> Result<(), BackendError> {
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        let body = serde_json::json!({ "ID": lease });
        let (status, bytes, node) = self.api.post("v3/lease/revoke", &body).await?;
        // A lease that expired already took the key with it.
        if status == reqwest::StatusCode::OK || server_text(&bytes).contains("lease not found") {
            return Ok(());
        }
        Err(refused(
            "etcdv3",
            format!("{node} lease revoke"),
            status,
            server_text(&bytes),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_answers_parse_and_a_missing_ttl_means_expired() {
        let alive: KeepAlive = serde_json::from_slice(
            br#"{"result":{"header":{"revision":"5"},"ID":"7587","TTL":"10"}}"#,
        )
        .expect("parses");
        let ttl = alive.result.and_then(|r| seconds(r.ttl.as_deref()));
        assert_eq!(ttl, Some(Duration::from_secs(10)));
        let expired: KeepAlive =
            serde_json::from_slice(br#"{"result":{"header":{"revision":"5"},"ID":"7587"}}"#)
                .expect("parses");
        assert_eq!(expired.result.and_then(|r| seconds(r.ttl.as_deref())), None);
    }
}
