//! The HTTP client shared by the networked backends (etcd v2, etcd v3, Consul):
//! TLS with client certificates, basic auth, bounded timeouts, and failover
//! across `-node` addresses in the order given, remembering the last node that
//! answered so a dead first node costs one failed connect, not one per request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, Url};

use super::BackendError;
use crate::error::ConfigError;

/// Time allowed to open a connection to one node before trying the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for an ordinary (non-watch) request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Credentials and TLS material for networked backends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAuth {
    /// Basic auth user.
    pub username: Option<String>,
    /// Basic auth password.
    pub password: Option<String>,
    /// Whether to send basic auth.
    pub basic_auth: bool,
    /// Consul ACL token.
    pub auth_token: Option<String>,
    /// TLS client certificate.
    pub client_cert: Option<PathBuf>,
    /// TLS client key.
    pub client_key: Option<PathBuf>,
    /// CA bundle to trust.
    pub client_ca_keys: Option<PathBuf>,
}

/// Where and how a networked backend connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The backend's name, for messages.
    pub backend: &'static str,
    /// Node addresses, with or without scheme, in failover order.
    pub nodes: Vec<String>,
    /// Scheme for addresses given without one.
    pub scheme: String,
    /// Credentials and TLS material.
    pub auth: ClientAuth,
}

/// An HTTP client bound to a list of nodes.
#[derive(Debug)]
pub struct NodeClient {
    backend: &'static str,
    client: Client,
    nodes: Vec<Url>,
    preferred: AtomicUsize,
    basic_auth: Option<(String, String)>,
}

/// Parses a node address; `host:port` gets `scheme://` in front.
pub fn node_url(address: &str, scheme: &str) -> Result<Url, String> {
    let text = if address.contains("://") {
        address.to_string()
    } else {
        format!("{scheme}://{address}")
    };
    let url = Url::parse(&text).map_err(|e| format!("{address:?} is not a valid address: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("{address:?}: scheme {other} is not http or https")),
    }
}

fn read_pem(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| {
        ConfigError::setting(
            flag,
            format!("{}: {}", path.display(), crate::error::io_reason(&e)),
        )
    })
}

impl NodeClient {
    /// Builds the client; bad addresses and unreadable or invalid TLS files
    /// are configuration errors.
    pub fn new(config: &HttpConfig) -> Result<NodeClient, ConfigError> {
        // reqwest is built without a default crypto provider; pick ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let nodes = config
            .nodes
            .iter()
            .map(|n| node_url(n, &config.scheme).map_err(|e| ConfigError::setting("-node", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut builder = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .no_proxy();
        let auth = &config.auth;
        if let Some(ca) = &auth.client_ca_keys {
            // The backend's own CA, as confd uses it: trust exactly these roots.
            let pem = read_pem("-client-ca-keys", ca)?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ConfigError::setting("-client-ca-keys", format!("{}: {e}", ca.display()))
            })?;
            builder = builder.tls_certs_only(certificates);
        } else if nodes.iter().all(|n| n.scheme() == "http") {
            // No TLS at all: skip loading the system's root store (tens of ms).
            builder = builder.tls_certs_only(Vec::new());
        }
        match (&auth.client_cert, &auth.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = read_pem("-client-cert", cert)?;
                pem.push(b'\n');
                pem.extend(read_pem("-client-key", key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ConfigError::setting(
                        "-client-cert/-client-key",
                        format!("{} / {}: {e}", cert.display(), key.display()),
                    )
                })?;
                builder = builder.identity(identity);
            }
            (Some(_), None) => {
                return Err(ConfigError::setting(
                    "-client-cert",
                    "needs -client-key as well",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::setting(
                    "-client-key",
                    "needs -client-cert as well",
                ));
            }
            (None, None) => {}
        }
        let client = builder.build().map_err(|e| {
            ConfigError::setting("-node", format!("cannot set up the HTTP client: {e}"))
        })?;
        let basic_auth = match (&auth.username, &auth.password) {
            (Some(user), password) if auth.basic_auth || password.is_some() => {
                Some((user.clone(), password.clone().unwrap_or_default()))
            }
            _ => None,
        };
        if auth.basic_auth && auth.username.is_none() {
            return Err(ConfigError::setting(
                "-basic-auth",
                "needs -username (and -password)",
            ));
        }
        Ok(NodeClient {
            backend: config.backend,
            client,
            nodes,
            preferred: AtomicUsize::new(0),
            basic_auth,
        })
    }

    /// The configured nodes, for messages.
    pub fn describe_nodes(&self) -> String {
        self.nodes
            .iter()
            .map(|u| u.as_str().trim_end_matches('/'))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Sends a request built for each node in turn (the one that answered
    /// last first) until one answers; any HTTP status counts as an answer.
    /// `timeout` bounds the whole request on one node.
    pub async fn send(
        &self,
        timeout: Duration,
        build: impl Fn(&Client, &Url) -> RequestBuilder,
    ) -> Result<(Response, Url), BackendError> {
        let count = self.nodes.len();
        let first = self.preferred.load(Ordering::Relaxed) % count.max(1);
        let mut failures: Vec<String> = Vec::new();
        for offset in 0..count {
            let index = (first + offset) % count;
            let node = &self.nodes[index];
            let mut request = build(&self.client, node).timeout(timeout);
            if let Some((user, password)) = &self.basic_auth {
                request = request.basic_auth(user, Some(password));
            }
            match request.send().await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((response, node.clone()));
                }
                Err(e) => failures.push(format!(
                    "{} {}",
                    node.as_str().trim_end_matches('/'),
                    describe_reqwest_error(&e)
                )),
            }
        }
        let message = match failures.as_slice() {
            [only] => only.clone(),
            _ => format!("no node answered: {}", failures.join("; ")),
        };
        Err(BackendError {
            backend: self.backend,
            location: "nodes".to_string(),
            message,
            transient: true,
        })
    }
}

/// A network failure while talking to `location` (worth waiting for).
pub fn network_error(
    backend: &'static str,
    location: String,
    error: &reqwest::Error,
) -> BackendError {
    BackendError {
        backend,
        location,
        message: describe_reqwest_error(error),
        transient: true,
    }
}

/// A reqwest error as a short phrase, with its innermost cause.
pub fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "bad response body"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("{kind}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_get_a_scheme() {
        assert_eq!(
            node_url("127.0.0.1:2379", "http").map(|u| u.to_string()),
            Ok("http://127.0.0.1:2379/".to_string())
        );
        assert_eq!(
            node_url("https://etcd:2379", "http").map(|u| u.scheme().to_string()),
            Ok("https".to_string())
        );
        assert!(node_url("ftp://x", "http").is_err());
        assert!(node_url("http://[bad", "http").is_err());
    }
}
