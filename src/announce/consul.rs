//! `confd announce -backend consul`: a session. `/v1/session/create` makes
//! a session with the TTL, `Behavior=delete` (the key goes when the session
//! is invalidated) and `LockDelay=0s` (so the host can take its key back as
//! soon as its check passes again); `PUT /v1/kv/KEY?acquire=SESSION` writes
//! the key held by it; `/v1/session/renew/SESSION` extends it (404: it
//! expired, so create a new one and acquire again); `/v1/session/destroy`
//! ends it, which deletes the key. A key held by another session is not
//! taken over: the write is retried until that session lets it go.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;

use super::registrar::{Refreshed, Registrar};
use crate::backend::BackendError;
use crate::backend::consul::{ConsulApi, ConsulConfig};
use crate::backend::http::{quote_server, server_text};
use crate::error::ConfigError;

/// Consul's shortest session TTL.
pub const MIN_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct Created {
    #[serde(rename = "ID")]
    id: String,
}

/// Keeps a key alive in Consul with a session.
#[derive(Debug)]
pub struct ConsulRegistrar {
    api: ConsulApi,
    /// The Consul key (no leading '/').
    key: String,
    value: String,
    ttl: Duration,
    session: Option<String>,
}

impl ConsulRegistrar {
    /// Prepares the client (nothing is sent yet).
    pub fn new(
        config: &ConsulConfig,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<ConsulRegistrar, ConfigError> {
        Ok(ConsulRegistrar {
            api: ConsulApi::new(config, "consul")?,
            key: key.trim_start_matches('/').to_string(),
            value: value.to_string(),
            ttl,
            session: None,
        })
    }

    fn kv_path(&self) -> Vec<&str> {
        let mut path = vec!["v1", "kv"];
        path.extend(self.key.split('/'));
        path
    }

    fn error(&self, location: String, message: String, transient: bool) -> BackendError {
        BackendError {
            backend: "consul",
            location,
            message,
            transient,
        }
    }

    async fn create_session(&mut self) -> Result<String, BackendError> {
        let body = serde_json::json!({
            "Name": format!("confd announce {}", self.key),
            "TTL": format!("{}s", self.ttl.as_secs()),
            "Behavior": "delete",
            "LockDelay": "0s",
        });
        let answer = self
            .api
            .put(
                &["v1", "session", "create"],
                &[],
                body.to_string().into_bytes(),
                "session create",
            )
            .await?;
        if answer.status != StatusCode::OK {
            let message = format!("{}: {}", answer.status, server_text(&answer.body));
            return Err(self.error(answer.location, message, false));
        }
        let created: Created = serde_json::from_slice(&answer.body).map_err(|e| {
            self.error(
                answer.location.clone(),
                format!("unexpected answer: {}", quote_server(e)),
                false,
            )
        })?;
        self.session = Some(created.id.clone());
        Ok(created.id)
    }
}

#[async_trait]
impl Registrar for ConsulRegistrar {
    async fn register(&mut self) -> Result<Option<Duration>, BackendError> {
        let session = match self.session.clone() {
            Some(session) => session,
            None => self.create_session().await?,
        };
        let acquired = self
            .api
            .put(
                &self.kv_path(),
                &[("acquire", session.as_str())],
                self.value.clone().into_bytes(),
                &self.key,
            )
            .await;
        let answer = match acquired {
            Ok(answer) => answer,
            Err(e) => {
                // Consul refuses an invalidated session ("invalid session"):
                // the next attempt starts with a new one. One that is still
                // alive expires by itself.
                self.session = None;
                return Err(e);
            }
        };
        match (answer.status, server_text(&answer.body).as_str()) {
            (StatusCode::OK, "true") => Ok(None),
            (StatusCode::OK, "false") => Err(self.error(
                answer.location,
                "held by another session; retrying until it is released".to_string(),
                true,
            )),
            (status, text) => {
                // An invalid session (it expired meanwhile): start over.
                self.session = None;
                Err(self.error(answer.location, format!("{status}: {text}"), false))
            }
        }
    }

    async fn refresh(&mut self) -> Result<Refreshed, BackendError> {
        let Some(session) = self.session.clone() else {
            return Ok(Refreshed::Gone);
        };
        let answer = self
            .api
            .put(
                &["v1", "session", "renew", &session],
                &[],
                Vec::new(),
                "session renew",
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            self.session = None;
            return Ok(Refreshed::Gone);
        }
        Ok(Refreshed::Alive(None))
    }

    async fn withdraw(&mut self) -> Result<(), BackendError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let answer = self
            .api
            .put(
                &["v1", "session", "destroy", &session],
                &[],
                Vec::new(),
                "session destroy",
            )
            .await?;
        // 404: the session expired already, and took the key with it.
        if answer.status == StatusCode::OK || answer.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(self.error(
            answer.location,
            format!("{}: {}", answer.status, server_text(&answer.body)),
            false,
        ))
    }
}
