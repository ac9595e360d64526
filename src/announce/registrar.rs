//! What `confd announce` asks of a backend: write the entry with a TTL,
//! refresh it, withdraw it. One implementation per backend, each in its own
//! file, all over the backends' shared HTTP client
//! ([`crate::backend::http::NodeClient`]: failover, TLS, auth, node names
//! with their passwords masked).

use std::time::Duration;

use async_trait::async_trait;

use crate::backend::BackendError;

/// How a refresh went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// The entry lives on; the TTL the backend granted, when it says.
    Alive(Option<Duration>),
    /// The entry is gone (it expired, or someone deleted it): write it anew.
    Gone,
}

/// One backend's way to keep an entry alive.
#[async_trait]
pub trait Registrar: Send {
    /// Writes the entry with its TTL; returns the TTL the backend granted,
    /// when it says.
    async fn register(&mut self) -> Result<Option<Duration>, BackendError>;
    /// Extends the entry's life by one TTL.
    async fn refresh(&mut self) -> Result<Refreshed, BackendError>;
    /// Removes the entry now (and the lease or session that held it). Never
    /// removes a value another announcer wrote since.
    async fn withdraw(&mut self) -> Result<(), BackendError>;
}

/// An error from `backend` about `location`; 5xx answers may change by
/// themselves, other refusals will not.
pub fn refused(
    backend: &'static str,
    location: String,
    status: reqwest::StatusCode,
    message: String,
) -> BackendError {
    BackendError {
        backend,
        location,
        message: format!("{status}: {message}"),
        transient: status.is_server_error(),
    }
}
