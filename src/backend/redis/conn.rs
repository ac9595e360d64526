//! Connections to Redis nodes: TCP (with the keepalive and, on Linux, the
//! user timeout the HTTP backends use, so a vanished host is noticed), TLS
//! through rustls, or a Unix socket; then `AUTH` and `SELECT` in one round
//! trip. Every step is bounded: connecting by [`CONNECT_TIMEOUT`], the TLS
//! handshake and each command's answer by [`REQUEST_TIMEOUT`]. [`Dialer`]
//! tries the nodes in order, the one that answered last first (failover).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::node::{Address, RedisNode};
use super::resp::{Reply, RespError, encode, read_reply};
use crate::backend::BackendError;
use crate::backend::http::{
    CONNECT_TIMEOUT, REQUEST_TIMEOUT, TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_INTERVAL,
    TCP_KEEPALIVE_PROBES, server_text,
};
use crate::size::format_size;

/// The budget of the small answers of `AUTH`, `SELECT`, `PING`.
pub const SMALL_ANSWER: u64 = 64 << 10;

/// A connection's byte stream, whatever carries it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why an exchange with a node failed.
#[derive(Debug)]
pub enum Fault {
    /// The node could not be reached, or the connection broke or stalled:
    /// another node (or a new connection) may do better.
    Node(String),
    /// The node answered, and the answer is an error or unusable.
    Answer {
        /// What it said, quoted with care.
        message: String,
        /// Whether waiting may cure it (`LOADING`, `BUSY`).
        transient: bool,
    },
    /// An answer over `-max-response-size`.
    TooLarge {
        /// The length the server announced, when it did.
        announced: Option<u64>,
    },
}

impl From<RespError> for Fault {
    fn from(e: RespError) -> Self {
        match e {
            RespError::Io(e) => {
                Fault::Node(format!("connection lost: {}", crate::error::io_reason(&e)))
            }
            RespError::TooLarge { announced } => Fault::TooLarge { announced },
            RespError::Protocol(what) => {
                Fault::Node(format!("does not answer in the Redis protocol ({what})"))
            }
        }
    }
}

/// A server's error reply as a fault: errors that pass by themselves
/// (`LOADING` a dataset, `BUSY` with a script, a replica `MASTERDOWN`,
/// `TRYAGAIN`) are transient.
pub fn refusal(text: &[u8], hint: &str) -> Fault {
    let hint = match hint {
        "" if text.starts_with(b"NOAUTH") => "; give -password (and -username for an ACL user)",
        "" if text.starts_with(b"NOPERM") => {
            "; the user needs SCAN, MGET and HGETALL on the keys read (+@read)"
        }
        "" if text.starts_with(b"MOVED") || text.starts_with(b"ASK") => {
            "; Redis Cluster is not supported: give the nodes of one shard"
        }
        hint => hint,
    };
    let transient = ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"]
        .iter()
        .any(|code| text.starts_with(code.as_bytes()));
    Fault::Answer {
        message: format!("{}{hint}", server_text(text)),
        transient,
    }
}

impl Fault {
    /// The fault as a backend error about `location`; `limit` is
    /// `-max-response-size`.
    pub fn into_error(self, location: &str, limit: u64) -> BackendError {
        let (message, transient) = match self {
            Fault::Node(message) => (message, true),
            Fault::Answer { message, transient } => (message, transient),
            Fault::TooLarge { announced } => (
                format!(
                    "answer larger than the {} limit of -max-response-size{}; raise the limit if this much data is expected",
                    format_size(limit),
                    announced
                        .map(|b| format!(" ({b} bytes announced)"))
                        .unwrap_or_default()
                ),
                false,
            ),
        };
        BackendError {
            backend: "redis",
            location: location.to_string(),
            message,
            transient,
        }
    }
}

/// One open connection, authenticated and on its database.
pub struct Conn {
    io: BufReader<Box<dyn Io>>,
    /// The node's position in the list.
    pub node: usize,
    /// The node as messages name it.
    pub name: String,
    /// The database selected.
    pub db: u32,
}

impl Conn {
    /// Sends `commands` at once and reads one answer each, within
    /// [`REQUEST_TIMEOUT`]; every byte is charged to `budget`. Error
    /// replies are returned as replies, for the caller to judge.
    pub async fn pipeline<A: AsRef<[u8]>>(
        &mut self,
        commands: &[Vec<A>],
        budget: &mut u64,
    ) -> Result<Vec<Reply>, Fault> {
        let exchange = async {
            self.send(commands).await?;
            let mut replies = Vec::with_capacity(commands.len());
            for _ in commands {
                replies.push(read_reply(&mut self.io, budget).await?);
            }
            Ok::<_, Fault>(replies)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Fault::Node(format!(
                "no answer within {}",
                humantime::format_duration(REQUEST_TIMEOUT)
            ))),
        }
    }

    /// One command and its answer (see [`Conn::pipeline`]).
    pub async fn call<A: AsRef<[u8]>>(
        &mut self,
        args: Vec<A>,
        budget: &mut u64,
    ) -> Result<Reply, Fault> {
        let mut replies = self.pipeline(&[args], budget).await?;
        replies
            .pop()
            .ok_or_else(|| Fault::Node("no answer".to_string()))
    }

    /// Sends `commands` without reading (a subscribed connection's answers
    /// arrive among its messages).
    pub async fn send<A: AsRef<[u8]>>(&mut self, commands: &[Vec<A>]) -> Result<(), Fault> {
        let mut bytes = Vec::new();
        for command in commands {
            encode(command, &mut bytes);
        }
        let write = async {
            let stream = self.io.get_mut();
            stream.write_all(&bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RespError::Io(e).into()),
            Err(_) => Err(Fault::Node(
                "the node does not take what is sent".to_string(),
            )),
        }
    }

    /// Waits until the node sends something. Safe to cancel (nothing is
    /// consumed), so a caller can wait with its own deadline.
    pub async fn readable(&mut self) -> Result<(), Fault> {
        let buffer = self.io.fill_buf().await.map_err(RespError::Io)?;
        if buffer.is_empty() {
            return Err(Fault::Node("the node closed the connection".to_string()));
        }
        Ok(())
    }

    /// Whether bytes of a next reply are already buffered.
    pub fn has_buffered(&self) -> bool {
        !self.io.buffer().is_empty()
    }

    /// Reads one reply (or pushed message), within [`REQUEST_TIMEOUT`]: once
    /// its first byte is there, the rest is due at once.
    pub async fn read(&mut self, budget: &mut u64) -> Result<Reply, Fault> {
        match tokio::time::timeout(REQUEST_TIMEOUT, read_reply(&mut self.io, budget)).await {
            Ok(result) => result.map_err(Fault::from),
            Err(_) => Err(Fault::Node("a reply stalled half-way".to_string())),
        }
    }
}

/// Connects to the nodes, in failover order.
pub struct Dialer {
    nodes: Vec<RedisNode>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `-username`/`-password`, which win over a node URL's.
    username: Option<String>,
    password: Option<String>,
    preferred: AtomicUsize,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn tune(tcp: &tokio::net::TcpStream) {
    // Best effort: a socket without these still works, only slower to
    // notice a vanished peer.
    let _ = tcp.set_nodelay(true);
    let socket = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE_IDLE)
        .with_interval(TCP_KEEPALIVE_INTERVAL)
        .with_retries(TCP_KEEPALIVE_PROBES);
    let _ = socket.set_tcp_keepalive(&keepalive);
    #[cfg(target_os = "linux")]
    let _ = socket.set_tcp_user_timeout(Some(crate::backend::http::TCP_USER_TIMEOUT));
}

fn within<T>(
    limit: Duration,
    what: &str,
    result: Result<std::io::Result<T>, tokio::time::error::Elapsed>,
) -> Result<T, Fault> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Fault::Node(format!(
            "cannot {what}: {}",
            crate::error::io_reason(&e)
        ))),
        Err(_) => Err(Fault::Node(format!(
            "cannot {what}: no answer within {}",
            humantime::format_duration(limit)
        ))),
    }
}

impl Dialer {
    /// A dialer for `nodes`; `tls` is needed when one of them speaks TLS.
    pub fn new(
        nodes: Vec<RedisNode>,
        tls: Option<Arc<rustls::ClientConfig>>,
        username: Option<String>,
        password: Option<String>,
    ) -> Dialer {
        Dialer {
            nodes,
            tls,
            username,
            password,
            preferred: AtomicUsize::new(0),
        }
    }

    /// How many nodes there are.
    pub fn count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes, for messages.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        names.join(", ")
    }

    /// Takes `node` for unusable: the next connection starts with the one
    /// after it.
    pub fn skip(&self, node: usize) {
        let count = self.nodes.len().max(1);
        let _ = self.preferred.compare_exchange(
            node,
            (node + 1) % count,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Connects to the first node that answers, starting with the one that
    /// answered last. A node that refuses the credentials or the database
    /// answered: that error is returned at once.
    pub async fn connect_any(&self, limit: u64) -> Result<Conn, BackendError> {
        let count = self.nodes.len();
        let first = self.preferred.load(Ordering::Relaxed) % count.max(1);
        let mut failures = Vec::new();
        for offset in 0..count {
            let index = (first + offset) % count;
            let name = &self.nodes[index].name;
            match self.connect(index).await {
                Ok(conn) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(Fault::Node(why)) => failures.push(format!("{name} {why}")),
                Err(fault) => return Err(fault.into_error(name, limit)),
            }
        }
        let message = match failures.as_slice() {
            [only] => only.clone(),
            _ => format!("no node answered: {}", failures.join("; ")),
        };
        Err(BackendError {
            backend: "redis",
            location: "nodes".to_string(),
            message,
            transient: true,
        })
    }

    async fn connect(&self, index: usize) -> Result<Conn, Fault> {
        let node = &self.nodes[index];
        let io: Box<dyn Io> = match &node.address {
            Address::Tcp { host, port } => {
                let connecting = tokio::net::TcpStream::connect((host.as_str(), *port));
                let result = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
                let tcp = within(CONNECT_TIMEOUT, "connect", result)?;
                tune(&tcp);
                if node.tls {
                    let config = self.tls.clone().ok_or_else(|| Fault::Answer {
                        message: "TLS is not set up".to_string(),
                        transient: false,
                    })?;
                    let server =
                        rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                            Fault::Answer {
                                message: format!("{host:?} is not a name TLS can check: {e}"),
                                transient: false,
                            }
                        })?;
                    let handshake = tokio_rustls::TlsConnector::from(config).connect(server, tcp);
                    let result = tokio::time::timeout(REQUEST_TIMEOUT, handshake).await;
                    Box::new(within(
                        REQUEST_TIMEOUT,
                        "complete the TLS handshake",
                        result,
                    )?)
                } else {
                    Box::new(tcp)
                }
            }
            Address::Unix(path) => {
                let connecting = tokio::net::UnixStream::connect(path);
                let result = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
                Box::new(within(CONNECT_TIMEOUT, "connect", result)?)
            }
        };
        let mut conn = Conn {
            io: BufReader::with_capacity(64 << 10, io),
            node: index,
            name: node.name.clone(),
            db: node.db,
        };
        let mut hello: Vec<Vec<Vec<u8>>> = Vec::new();
        let password = self.password.clone().or_else(|| {
            node.credentials
                .as_ref()
                .map(|(_, password)| password.clone())
        });
        let username = self
            .username
            .clone()
            .or_else(|| node.credentials.as_ref().and_then(|(user, _)| user.clone()));
        if let Some(password) = password {
            let mut auth = vec![b"AUTH".to_vec()];
            auth.extend(username.map(String::into_bytes));
            auth.push(password.into_bytes());
            hello.push(auth);
        }
        if node.db != 0 {
            hello.push(vec![b"SELECT".to_vec(), node.db.to_string().into_bytes()]);
        }
        let replies = conn.pipeline(&hello, &mut SMALL_ANSWER.clone()).await?;
        for (command, reply) in hello.iter().zip(replies) {
            if let Some(text) = reply.error_text() {
                let hint = if command.first().is_some_and(|c| c == b"AUTH") {
                    "; check -password (and -username for an ACL user)"
                } else {
                    "; check the database number of -node (host:port/DB)"
                };
                return Err(refusal(text, hint));
            }
        }
        Ok(conn)
    }
}
