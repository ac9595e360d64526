//! The HTTP client shared by the networked backends (etcd v2, etcd v3, Consul):
//! TLS with client certificates, basic auth, bounded timeouts, and failover
//! across `-node` addresses in the order given, remembering the last node that
//! answered so a dead first node costs one failed connect, not one per request.
//!
//! A node that silently dies (a partition, a frozen VM) is noticed in bounded
//! time: every connection has TCP keepalive, and watches get deadlines built
//! on [`DEFAULT_WATCH_TIMEOUT`] (`watch_timeout` in confd.toml), past which
//! the watch is asked again and, without an answer, the next node is tried.
//!
//! Redirects are followed within a node's origin only: one to another scheme,
//! host or port is refused with an error naming both, so the token, basic
//! auth and client certificate given for a node never go anywhere else.
//!
//! Secrets never reach a message: a node is always named with the password of
//! its URL masked (`http://user:***@host:2379`), and credentials in a node URL
//! are sent as basic auth for that node only, never left in the URL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, Url};

mod answer;
mod node;
mod stream;

pub use answer::{
    BodyError, describe_reqwest_error, network_error, parse_max_response_size, quote_server,
    read_capped, server_text,
};
pub use node::{Node, node_url, percent_decode, redact_address};
pub use stream::{BodyReader, OptionalText, discard_capped, parse_streamed};

use super::BackendError;
use crate::error::ConfigError;
use crate::size::format_size;

/// Time allowed to open a connection to one node before trying the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for an ordinary (non-watch) request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a watch may go without a word from its node before confd
/// suspects it silently died (a partition, a frozen VM): the etcd v2 long poll
/// is re-issued, the etcd v3 stream re-opened, and Consul is asked to wait at
/// most this long in a blocking query. The node is given up for the next one
/// when the re-issued request gets no answer within [`answer_limit`]
/// (Consul: [`crate::backend::consul::blocking_deadline`]). Settable with
/// `watch_timeout` in confd.toml.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The shortest `watch_timeout` accepted (each idle watch costs one request
/// per timeout).
pub const MIN_WATCH_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest `watch_timeout` accepted (Consul caps a blocking query's wait
/// at 10 minutes).
pub const MAX_WATCH_TIMEOUT: Duration = Duration::from_secs(600);
/// TCP keepalive: after this long without traffic the kernel starts probing
/// the peer…
pub const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
/// …every this often…
pub const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// …and closes the connection after this many unanswered probes: a node
/// whose host vanished (no RST will ever come) is noticed after about 30 s of
/// silence, even in the middle of a long poll.
pub const TCP_KEEPALIVE_PROBES: u32 = 3;
/// Sent data unacknowledged this long closes the connection (Linux), so a
/// request written into a partition fails instead of waiting on
/// retransmissions for minutes.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read from a node unless `-max-response-size` says
/// otherwise: far above any sane configuration store, far below what would
/// hurt the host (an uncapped 1 GB answer used to take 3 GB of memory).
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 64 << 20;
/// How much of a server's own text (an error body, a message in its JSON) a
/// message quotes; the rest is summarised as its size.
pub const MAX_SERVER_TEXT: usize = 512;
/// The smallest `-max-response-size` accepted: anything less is a typo for
/// a unit (`64` meant as 64 MiB), not a useful limit.
pub const MIN_RESPONSE_SIZE: u64 = 1 << 10;

/// How many redirects within one origin a request may follow (reqwest's
/// own default).
const MAX_REDIRECTS: usize = 10;

/// A redirect to another origin, refused.
#[derive(Debug)]
struct CrossOriginRedirect {
    from: String,
    to: String,
}

impl std::fmt::Display for CrossOriginRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} redirected to {}, another origin; confd follows redirects within a node's origin only, so credentials never leave it",
            self.from, self.to
        )
    }
}

impl std::error::Error for CrossOriginRedirect {}

/// Follows a redirect only when it stays on the origin (scheme, host, port)
/// the request was sent to. reqwest strips `Authorization` across hosts but
/// not `X-Consul-Token`, and a client certificate would be presented to any
/// host: refusing is the only way to keep every credential with its node.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        let (from, to) = (first.origin(), attempt.url().origin());
        if from != to {
            let refused = CrossOriginRedirect {
                from: from.ascii_serialization(),
                to: to.ascii_serialization(),
            };
            attempt.error(refused)
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Credentials and TLS material for networked backends. Its `Debug` masks the
/// password and the token, so printing settings never leaks them.
#[derive(Clone, Default, PartialEq, Eq)]
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

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |secret: &Option<String>| secret.as_ref().map(|_| "***");
        f.debug_struct("ClientAuth")
            .field("username", &self.username)
            .field("password", &masked(&self.password))
            .field("basic_auth", &self.basic_auth)
            .field("auth_token", &masked(&self.auth_token))
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("client_ca_keys", &self.client_ca_keys)
            .finish()
    }
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
    /// The largest answer body read from a node, in bytes
    /// (`-max-response-size`).
    pub max_response_size: u64,
    /// How long a watch may go without a word from its node
    /// (`watch_timeout` in confd.toml; [`DEFAULT_WATCH_TIMEOUT`]).
    pub watch_timeout: Duration,
}

/// How long one request may take on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Until the status line and headers have arrived; past it the node is
    /// given up and the next one is tried.
    pub answer: Duration,
    /// Until the whole body has arrived; `None` for a stream, which the
    /// caller reads with its own idle deadline.
    pub total: Option<Duration>,
}

impl Limits {
    /// An ordinary request: [`REQUEST_TIMEOUT`] for the whole of it.
    pub const REQUEST: Limits = Limits {
        answer: REQUEST_TIMEOUT,
        total: Some(REQUEST_TIMEOUT),
    };
}

/// How long a watch request may wait for its status line: a server answers
/// the headers of an etcd long poll or watch stream at once, so a node that
/// does not within the watch timeout (or [`REQUEST_TIMEOUT`], if shorter) is
/// not answering at all.
pub fn answer_limit(watch_timeout: Duration) -> Duration {
    watch_timeout.min(REQUEST_TIMEOUT)
}

/// An HTTP client bound to a list of nodes. Its `Debug` leaves out every
/// credential.
pub struct NodeClient {
    backend: &'static str,
    client: Client,
    nodes: Vec<Node>,
    preferred: AtomicUsize,
    basic_auth: Option<(String, String)>,
    max_response_size: u64,
    watch_timeout: Duration,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("backend", &self.backend)
            .field("nodes", &self.describe_nodes())
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(user, _)| user),
            )
            .finish_non_exhaustive()
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
        // Answers are parsed into buffers that grow to the size of the data:
        // keep such buffers out of the heap so their old copies do not stay
        // resident (see map_large_blocks).
        crate::daemon::memory::map_large_blocks();

        let nodes = config
            .nodes
            .iter()
            .map(|n| Node::parse(n, &config.scheme).map_err(|e| ConfigError::setting("-node", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut builder = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(redirect_policy())
            .tcp_keepalive(TCP_KEEPALIVE_IDLE)
            .tcp_keepalive_interval(TCP_KEEPALIVE_INTERVAL)
            .tcp_keepalive_retries(TCP_KEEPALIVE_PROBES)
            .no_proxy();
        #[cfg(target_os = "linux")]
        {
            builder = builder.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        let auth = &config.auth;
        if let Some(ca) = &auth.client_ca_keys {
            // The backend's own CA, as confd uses it: trust exactly these roots.
            let pem = read_pem("-client-ca-keys", ca)?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ConfigError::setting("-client-ca-keys", format!("{}: {e}", ca.display()))
            })?;
            builder = builder.tls_certs_only(certificates);
        } else if nodes.iter().all(|n| n.url.scheme() == "http") {
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
            max_response_size: config.max_response_size,
            watch_timeout: config.watch_timeout,
        })
    }

    /// How long a watch may go without a word from its node.
    pub fn watch_timeout(&self) -> Duration {
        self.watch_timeout
    }

    /// The largest answer body this client reads (`-max-response-size`).
    pub fn max_response_size(&self) -> u64 {
        self.max_response_size
    }

    /// Reads an answer's body, up to `-max-response-size` bytes; a larger
    /// one is an error naming `location` (the node) and the limit.
    pub async fn read_body(
        &self,
        response: Response,
        location: &str,
    ) -> Result<Vec<u8>, BackendError> {
        read_capped(response, self.max_response_size)
            .await
            .map_err(|e| self.body_error(e, location))
    }

    /// Reads an answer's body to its end without keeping it, within the
    /// same `-max-response-size` as [`NodeClient::read_body`].
    pub async fn discard_body(
        &self,
        response: Response,
        location: &str,
    ) -> Result<(), BackendError> {
        discard_capped(response, self.max_response_size)
            .await
            .map_err(|e| self.body_error(e, location))
    }

    /// A failed body read as a backend error about `location`.
    pub fn body_error(&self, error: BodyError, location: &str) -> BackendError {
        match error {
            BodyError::Network(e) => network_error(self.backend, location.to_string(), &e),
            BodyError::TooLarge { declared } => self.too_large(location, declared),
            BodyError::Stopped => BackendError {
                backend: self.backend,
                location: location.to_string(),
                message: "reading the answer stopped: confd is shutting down".to_string(),
                transient: true,
            },
        }
    }

    /// Parses an answer's body with `parse` as it arrives (see
    /// [`parse_streamed`]), up to `-max-response-size` bytes; a larger one is
    /// an error naming `location` (the node) and the limit.
    pub async fn parse_body<T, P>(
        &self,
        response: Response,
        location: &str,
        parse: P,
    ) -> Result<T, BackendError>
    where
        T: Send + 'static,
        P: FnOnce(BodyReader) -> T + Send + 'static,
    {
        parse_streamed(response, self.max_response_size, parse)
            .await
            .map_err(|e| self.body_error(e, location))
    }

    /// An answer (or one watch message) over `-max-response-size`. Not
    /// transient: the same data gives the same answer until the data or the
    /// limit changes.
    pub fn too_large(&self, location: &str, declared: Option<u64>) -> BackendError {
        let announced = match declared {
            Some(bytes) => format!(" ({bytes} bytes announced)"),
            None => String::new(),
        };
        BackendError {
            backend: self.backend,
            location: location.to_string(),
            message: format!(
                "answer larger than the {} limit of -max-response-size{announced}; raise the limit if this much data is expected",
                format_size(self.max_response_size)
            ),
            transient: false,
        }
    }

    /// The configured nodes, for messages (passwords masked).
    pub fn describe_nodes(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The user and password of the first node whose URL carries them (for
    /// etcd v3, whose gateway takes them for token authentication).
    pub fn userinfo_credentials(&self) -> Option<(String, String)> {
        self.nodes.iter().find_map(|n| n.userinfo.clone())
    }

    /// Stops sending the nodes' user information as basic auth (etcd v3
    /// turns it into a token instead: its gateway would take a basic
    /// `Authorization` header for a bad token).
    pub fn without_userinfo_auth(mut self) -> NodeClient {
        for node in &mut self.nodes {
            node.userinfo = None;
        }
        self
    }

    /// Sends a request built for each node in turn (the one that answered
    /// last first) until one answers; any HTTP status counts as an answer.
    /// `limits` bound the request on one node: a node that has not answered
    /// within `limits.answer` is given up for the next one. Returns the
    /// answer and the node's name for messages (password masked).
    pub async fn send(
        &self,
        limits: Limits,
        build: impl Fn(&Client, &Url) -> RequestBuilder,
    ) -> Result<(Response, String), BackendError> {
        let count = self.nodes.len();
        let first = self.preferred.load(Ordering::Relaxed) % count.max(1);
        let mut failures: Vec<String> = Vec::new();
        // A refused redirect is the node's answer, and it will not change by
        // itself: not worth waiting for when every node gave one.
        let mut all_refused = true;
        for offset in 0..count {
            let index = (first + offset) % count;
            let node = &self.nodes[index];
            let mut request = build(&self.client, &node.url);
            if let Some(total) = limits.total {
                request = request.timeout(total);
            }
            // -username/-password win over the URL's user information, as
            // an explicit Authorization header does in Go's HTTP client.
            if let Some((user, password)) = self.basic_auth.as_ref().or(node.userinfo.as_ref()) {
                request = request.basic_auth(user, Some(password));
            }
            // Dropping the request on the deadline closes its connection,
            // so a node that went silent holds nothing back.
            match tokio::time::timeout(limits.answer, request.send()).await {
                Ok(Ok(response)) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((response, node.name.clone()));
                }
                Ok(Err(e)) => {
                    all_refused &= e.is_redirect();
                    failures.push(format!("{} {}", node.name, describe_reqwest_error(&e)));
                }
                Err(_) => {
                    all_refused = false;
                    failures.push(format!(
                        "{} timed out: no answer within {}",
                        node.name,
                        humantime::format_duration(limits.answer)
                    ));
                }
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
            transient: !all_refused || failures.is_empty(),
        })
    }
}

#[cfg(test)]
mod tests;
