//! Vault's HTTP API as the vault backend uses it: requests through the
//! shared [`NodeClient`] (failover, TLS, capped answers, masked node names),
//! Vault's status codes turned into typed outcomes, and the token: the first
//! login, renewals before it expires (also between passes, from a background
//! task, so a token given with `-auth-token` outlives a long `-interval`), and
//! a new login when a renewal is refused.
//!
//! The token travels in the `X-Vault-Token` header only; no message, log line
//! or `Debug` output ever holds it, nor any login body.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::auth::{self, AuthMethod, Grant, Secret, Session, Step};
use crate::backend::BackendError;
use crate::backend::http::{Limits, NodeClient, quote_server, server_text};

/// How long the background renewer sleeps when nothing is due (a token
/// without expiry may be replaced by one with an expiry at the next login).
const IDLE_CHECK: Duration = Duration::from_secs(60);

/// What a data request found.
#[derive(Debug)]
pub enum Fetch {
    /// The answer's JSON.
    Found(Value),
    /// Nothing there (404, or 204 without a body).
    Absent,
}

/// A failed request: refused for want of permission (403: a missing policy,
/// an expired or revoked token, a path without a mount), or anything else.
#[derive(Debug)]
pub enum CallError {
    /// 403 Forbidden.
    Denied(BackendError),
    /// Any other failure.
    Failed(BackendError),
}

impl From<BackendError> for CallError {
    fn from(e: BackendError) -> Self {
        CallError::Failed(e)
    }
}

impl CallError {
    /// The error, whatever its kind.
    pub fn into_error(self) -> BackendError {
        match self {
            CallError::Denied(e) | CallError::Failed(e) => e,
        }
    }
}

/// A Vault client with its token.
#[derive(Debug)]
pub struct Client {
    http: NodeClient,
    method: AuthMethod,
    /// The auth method's mount (`-path`), without surrounding `/`.
    mount: String,
    session: Mutex<Option<Session>>,
    renewer_started: AtomicBool,
    /// A refresh failed and its recovery has not been logged yet.
    refresh_failing: AtomicBool,
}

fn error(location: String, message: String, transient: bool) -> BackendError {
    BackendError {
        backend: "vault",
        location,
        message,
        transient,
    }
}

/// Vault's `{"errors": [...]}`, or the body itself, as one short line.
fn vault_errors(body: &[u8]) -> String {
    let listed = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .map(|errors| {
            errors
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        });
    match listed {
        Some(text) if !text.is_empty() => server_text(text.as_bytes()),
        Some(_) => String::new(),
        None => server_text(body),
    }
}

impl Client {
    /// A client for `method` at auth mount `mount`; nothing is sent yet.
    pub fn new(http: NodeClient, method: AuthMethod, mount: String) -> Client {
        Client {
            http,
            method,
            mount,
            session: Mutex::new(None),
            renewer_started: AtomicBool::new(false),
            refresh_failing: AtomicBool::new(false),
        }
    }

    /// Sends one request to `path` (under `/v1/`, segments split on `/` and
    /// percent-encoded), as a LIST when `list`. Returns the status, body and
    /// the node and path for messages.
    async fn call(
        &self,
        method: Method,
        path: &[&str],
        list: bool,
        token: Option<&Secret>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>, String), BackendError> {
        let segments: Vec<&str> = path
            .iter()
            .flat_map(|p| p.split('/'))
            .filter(|s| !s.is_empty())
            .collect();
        let (response, node) = self
            .http
            .send(Limits::REQUEST, |client, node| {
                let mut url = node.clone();
                if let Ok(mut parts) = url.path_segments_mut() {
                    parts.pop_if_empty().push("v1").extend(&segments);
                }
                if list {
                    url.query_pairs_mut().append_pair("list", "true");
                }
                let mut request = client.request(method.clone(), url);
                if let Some(token) = token {
                    request = request.header("X-Vault-Token", token.expose());
                }
                if let Some(body) = body {
                    request = request
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.to_string());
                }
                request
            })
            .await?;
        let verb = if list { "listing" } else { "at" };
        let location = format!("{node} {verb} {}", segments.join("/"));
        let status = response.status();
        let body = self.http.read_body(response, &location).await?;
        Ok((status, body, location))
    }

    /// GETs (or LISTs) `path` with `token`: 404 is [`Fetch::Absent`], 403
    /// is [`CallError::Denied`].
    pub async fn get(&self, path: &str, list: bool, token: &Secret) -> Result<Fetch, CallError> {
        let (status, body, location) = self
            .call(Method::GET, &[path], list, Some(token), None)
            .await?;
        match status {
            StatusCode::NOT_FOUND | StatusCode::NO_CONTENT => Ok(Fetch::Absent),
            s if s.is_success() => Ok(Fetch::Found(parse(&body, location)?)),
            _ => Err(status_error(status, &body, location)),
        }
    }

    /// The method's name and mount, for messages.
    pub fn describe_auth(&self) -> String {
        match self.method {
            AuthMethod::Token(_) => "token".to_string(),
            _ => format!("{} at auth/{}", self.method.name(), self.mount),
        }
    }

    /// Whether a new token can be had by logging in again.
    pub fn can_login(&self) -> bool {
        self.method.can_login()
    }

    /// A valid token: the first login, or a refresh when one is due. A
    /// refresh that fails while the token is still valid keeps it (and is
    /// tried again later); only a token that is gone is an error.
    pub async fn token(self: &Arc<Self>) -> Result<Secret, BackendError> {
        let mut guard = self.session.lock().await;
        let now = Instant::now();
        let (session, failure) = match guard.take() {
            None => (self.obtain().await?, None),
            Some(session) if session.due(now) => self.refresh(session, now).await,
            Some(session) => (session, None),
        };
        let result = if session.expired(Instant::now()) {
            Err(failure.unwrap_or_else(|| {
                error(
                    self.describe_auth(),
                    "the token expired and cannot be renewed; give a new one (auth_token in confd.toml and SIGHUP, or a restart with a new -auth-token or VAULT_TOKEN), or use an auth method that can log in again".to_string(),
                    false,
                )
            }))
        } else {
            Ok(session.token.clone())
        };
        *guard = Some(session);
        drop(guard);
        self.start_renewer();
        result
    }

    /// Whether Vault still takes `token` (`lookup-self` answers); a node
    /// that does not answer says nothing against it.
    pub async fn alive(&self, token: &Secret) -> bool {
        let path = ["auth/token/lookup-self"];
        match self
            .call(Method::GET, &path, false, Some(token), None)
            .await
        {
            Ok((status, _, _)) => status.is_success(),
            Err(_) => true,
        }
    }

    /// Logs in again (after a read was refused with a dead token).
    pub async fn login_again(&self) -> Result<Secret, BackendError> {
        let mut guard = self.session.lock().await;
        let session = self.obtain().await?;
        tracing::info!(backend = "vault", auth = %self.describe_auth(), "permission denied with the current token; logged in again");
        let token = session.token.clone();
        *guard = Some(session);
        Ok(token)
    }

    /// A new session: a login, or for a given token a lookup of its lease.
    async fn obtain(&self) -> Result<Session, BackendError> {
        let login = auth::login_request(&self.method, &self.mount)
            .map_err(|message| error(self.describe_auth(), message, true))?;
        let now = Instant::now();
        let Some(login) = login else {
            let AuthMethod::Token(token) = &self.method else {
                return Err(error(
                    self.describe_auth(),
                    "no login request for this method".to_string(),
                    false,
                ));
            };
            let path = ["auth/token/lookup-self"];
            let (status, body, location) = self
                .call(Method::GET, &path, false, Some(token), None)
                .await?;
            if !status.is_success() {
                return Err(login_error(
                    status,
                    &body,
                    location,
                    "the token given with -auth-token or VAULT_TOKEN was refused",
                ));
            }
            let grant =
                auth::grant_from_lookup(&parse(&body, location.clone())?).ok_or_else(|| {
                    error(location, "lookup-self answered without data".into(), false)
                })?;
            return Ok(Session::new(token.clone(), &grant, now));
        };
        let path: Vec<&str> = login.path.iter().map(String::as_str).collect();
        let (status, body, location) = self
            .call(Method::POST, &path, false, None, Some(&login.body))
            .await?;
        if !status.is_success() {
            let what = format!("login with {} was refused", self.describe_auth());
            return Err(login_error(status, &body, location, &what));
        }
        let answer = parse(&body, location.clone())?;
        let grant = auth::grant_from_auth(&answer).ok_or_else(|| {
            error(
                location,
                "the login answer holds no token".to_string(),
                false,
            )
        })?;
        let token = grant.token.clone().unwrap_or_else(|| Secret::new(""));
        tracing::info!(
            backend = "vault",
            auth = %self.describe_auth(),
            ttl = grant.ttl.as_secs(),
            renewable = grant.renewable,
            "logged in"
        );
        Ok(Session::new(token, &grant, now))
    }

    /// Renews or replaces a due session. Returns the session to keep, and
    /// the error when the refresh failed.
    async fn refresh(&self, mut session: Session, now: Instant) -> (Session, Option<BackendError>) {
        let outcome = match session.next_step(self.can_login(), now) {
            Step::Nothing => {
                session.refresh_at = None;
                return (session, None);
            }
            Step::Renew => match self.renew(&session).await {
                Ok(grant) => {
                    session.renewed(grant.ttl, now);
                    tracing::debug!(
                        backend = "vault",
                        ttl = grant.ttl.as_secs(),
                        capped = session.capped,
                        "token renewed"
                    );
                    Ok(())
                }
                Err(CallError::Denied(e)) if !self.can_login() => {
                    // Nothing else to try: the token works until it expires.
                    tracing::warn!(backend = "vault", error = %e, "the token cannot be renewed; it stops working when its lease ends");
                    session.renewable = false;
                    session.refresh_at = None;
                    return (session, Some(e));
                }
                Err(CallError::Denied(_)) => match self.obtain().await {
                    Ok(fresh) => {
                        session = fresh;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Err(CallError::Failed(e)) => Err(e),
            },
            Step::Login => match self.obtain().await {
                Ok(fresh) => {
                    session = fresh;
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(()) => {
                if self.refresh_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(backend = "vault", "token refreshed again");
                }
                (session, None)
            }
            Err(e) => {
                if !self.refresh_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(backend = "vault", error = %e, "cannot refresh the token; retrying");
                }
                session.failed(now);
                (session, Some(e))
            }
        }
    }

    /// `auth/token/renew-self` asking for the token's original lease.
    async fn renew(&self, session: &Session) -> Result<Grant, CallError> {
        let body = json!({"increment": format!("{}s", session.increment.as_secs())});
        let path = ["auth/token/renew-self"];
        let (status, body, location) = self
            .call(
                Method::POST,
                &path,
                false,
                Some(&session.token),
                Some(&body),
            )
            .await?;
        if !status.is_success() {
            return Err(match status_error(status, &body, location) {
                // A renewal refused for any reason of Vault's (expired,
                // past its max TTL, not renewable) calls for a new login.
                CallError::Failed(e) if status.is_client_error() => CallError::Denied(e),
                other => other,
            });
        }
        let answer = parse(&body, location.clone())?;
        auth::grant_from_auth(&answer).ok_or_else(|| {
            CallError::Failed(error(
                location,
                "the renewal answer holds no lease".into(),
                false,
            ))
        })
    }

    /// Starts the background renewer once, inside the running runtime. It
    /// holds the client weakly, so it ends with the backend.
    fn start_renewer(self: &Arc<Self>) {
        if self.renewer_started.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        runtime.spawn(renew_in_background(weak));
    }

    async fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let session = self.session.lock().await;
        session
            .as_ref()
            .and_then(|s| s.refresh_at)
            .unwrap_or(now + IDLE_CHECK)
            .max(now + Duration::from_millis(10))
    }
}

/// Refreshes the token whenever it is due, between passes too.
async fn renew_in_background(client: Weak<Client>) {
    loop {
        let wake = match client.upgrade() {
            Some(client) => client.next_wake().await,
            None => return,
        };
        tokio::time::sleep_until(wake).await;
        let Some(client) = client.upgrade() else {
            return;
        };
        // Failures are logged by the refresh itself and retried later.
        let _ = client.token().await;
    }
}

fn parse(body: &[u8], location: String) -> Result<Value, BackendError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            location,
            format!("unexpected answer: {}", quote_server(e)),
            false,
        )
    })
}

/// A status that is not success, as an error: 403 denied; 429 and 5xx
/// (sealed, standby, overloaded) worth waiting for; the rest not.
fn status_error(status: StatusCode, body: &[u8], location: String) -> CallError {
    let text = vault_errors(body);
    let message = if text.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {text}")
    };
    if status == StatusCode::FORBIDDEN {
        return CallError::Denied(error(
            location,
            format!(
                "{message} (the token lacks a policy for this path, or it expired or was revoked)"
            ),
            false,
        ));
    }
    let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    CallError::Failed(error(location, message, transient))
}

fn login_error(status: StatusCode, body: &[u8], location: String, what: &str) -> BackendError {
    let text = vault_errors(body);
    let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    error(location, format!("{what}: {status}: {text}"), transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_errors_are_one_escaped_line() {
        assert_eq!(
            vault_errors(br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#),
            "1 error occurred:\\n\\t* permission denied"
        );
        assert_eq!(vault_errors(br#"{"errors":["a","b"]}"#), "a; b");
        assert_eq!(vault_errors(br#"{"errors":[]}"#), "");
        assert_eq!(
            vault_errors(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }

    #[test]
    fn statuses_become_typed_errors() {
        let denied = status_error(
            StatusCode::FORBIDDEN,
            br#"{"errors":["permission denied"]}"#,
            "n".into(),
        );
        assert!(
            matches!(&denied, CallError::Denied(e) if e.message.contains("permission denied") && !e.transient)
        );
        let sealed = status_error(
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"errors":["Vault is sealed"]}"#,
            "n".into(),
        );
        assert!(
            matches!(&sealed, CallError::Failed(e) if e.transient && e.message.contains("sealed"))
        );
        let bad = status_error(StatusCode::BAD_REQUEST, b"", "n".into());
        assert!(
            matches!(&bad, CallError::Failed(e) if !e.transient && e.message == "400 Bad Request")
        );
    }
}
