//! A Redis `-node` address: `host:port` and `host:port/DB` as confd takes
//! them, `redis://[user:password@]host[:port][/DB]` and `rediss://…` (TLS)
//! URLs, and Unix sockets (`/run/redis.sock`, as confd, or
//! `unix:///run/redis.sock?db=N`). Parsed once into where to connect and how
//! messages name the node: with its password masked, always, even when the
//! address does not parse.

use std::path::PathBuf;

use crate::backend::http::{percent_decode, redact_address};

/// Redis's usual port.
pub const DEFAULT_PORT: u16 = 6379;

/// Where a node listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP host (name or IP, without brackets) and port.
    Tcp {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix socket.
    Unix(PathBuf),
}

/// One parsed `-node`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisNode {
    /// Where it listens.
    pub address: Address,
    /// Whether to speak TLS (`rediss://`, or any TLS flag).
    pub tls: bool,
    /// The database to `SELECT`.
    pub db: u32,
    /// The user (for an ACL user) and password of the URL, percent-decoded.
    pub credentials: Option<(Option<String>, String)>,
    /// The node as messages show it: the password masked.
    pub name: String,
}

impl std::fmt::Debug for RedisNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

fn parse_db(text: &str, shown: &str) -> Result<u32, String> {
    text.parse::<u32>().map_err(|_| {
        format!("{shown:?}: the database after '/' must be a number (host:port/DB), not {text:?}")
    })
}

impl RedisNode {
    /// Parses one node address; errors show it with its password masked.
    pub fn parse(text: &str) -> Result<RedisNode, String> {
        let shown = redact_address(text);
        if let Some(rest) = text.strip_prefix("unix://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let db = match query {
                "" => 0,
                q => match q.strip_prefix("db=") {
                    Some(n) => parse_db(n, &shown)?,
                    None => return Err(format!("{shown:?}: only ?db=N may follow a socket path")),
                },
            };
            return RedisNode::unix(path, db, &shown);
        }
        if text.starts_with('/') {
            return RedisNode::unix(text, 0, &shown);
        }
        let (tls, url_text) = if text.starts_with("redis://") {
            (false, text.to_string())
        } else if text.starts_with("rediss://") {
            (true, text.to_string())
        } else if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "{shown:?}: scheme {scheme} is not redis, rediss or unix"
            ));
        } else {
            (false, format!("redis://{text}"))
        };
        let url = reqwest::Url::parse(&url_text)
            .map_err(|e| format!("{shown:?} is not a valid address: {e}"))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{shown:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let db = match url.path().trim_start_matches('/') {
            "" => 0,
            n => parse_db(n, &shown)?,
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{shown:?}: nothing may follow the database number"));
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or_default());
            match (user, password) {
                (Some(user), Some(password)) => {
                    Some((Some(user).filter(|u| !u.is_empty()), password))
                }
                _ => {
                    return Err(format!(
                        "{shown:?}: the user name or password is not valid percent-encoded UTF-8"
                    ));
                }
            }
        };
        let host_shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let scheme = match text.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://"),
            None => String::new(),
        };
        let userinfo = match &credentials {
            Some((user, _)) => format!("{}:***@", user.as_deref().unwrap_or_default()),
            None => String::new(),
        };
        let db_shown = if db == 0 && url.path().trim_start_matches('/').is_empty() {
            String::new()
        } else {
            format!("/{db}")
        };
        Ok(RedisNode {
            address: Address::Tcp { host, port },
            tls,
            db,
            credentials,
            name: format!("{scheme}{userinfo}{host_shown}:{port}{db_shown}"),
        })
    }

    fn unix(path: &str, db: u32, shown: &str) -> Result<RedisNode, String> {
        if path.is_empty() {
            return Err(format!("{shown:?}: no socket path"));
        }
        Ok(RedisNode {
            address: Address::Unix(PathBuf::from(path)),
            tls: false,
            db,
            credentials: None,
            name: if db == 0 {
                path.to_string()
            } else {
                format!("{path}?db={db}")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn confds_forms_and_urls() {
        let n = RedisNode::parse("127.0.0.1:6380/2").expect("parses");
        assert_eq!((n.address, n.db, n.tls), (tcp("127.0.0.1", 6380), 2, false));
        assert_eq!(n.name, "127.0.0.1:6380/2");
        let n = RedisNode::parse("redis.local").expect("parses");
        assert_eq!(
            (n.address, n.db, n.name.as_str()),
            (tcp("redis.local", 6379), 0, "redis.local:6379")
        );
        let n = RedisNode::parse("rediss://app:s3%40cret@[::1]:7000/3").expect("parses");
        assert_eq!((n.address, n.db, n.tls), (tcp("::1", 7000), 3, true));
        assert_eq!(
            n.credentials,
            Some((Some("app".to_string()), "s3@cret".to_string()))
        );
        assert_eq!(n.name, "rediss://app:***@[::1]:7000/3");
        let n = RedisNode::parse("redis://:pw@h:1").expect("parses");
        assert_eq!(n.credentials, Some((None, "pw".to_string())));
        assert_eq!(n.name, "redis://:***@h:1");
        assert!(!format!("{n:?}").contains("pw"));
        let n = RedisNode::parse("/run/redis.sock").expect("parses");
        assert_eq!(n.address, Address::Unix(PathBuf::from("/run/redis.sock")));
        let n = RedisNode::parse("unix:///run/r.sock?db=4").expect("parses");
        assert_eq!((n.db, n.name.as_str()), (4, "/run/r.sock?db=4"));
    }

    #[test]
    fn bad_addresses_never_show_their_password() {
        for (bad, why) in [
            ("redis://u:s3cret@h:1/x", "must be a number"),
            ("redis://u:s3cret@h:99999", "not a valid address"),
            ("http://u:s3cret@h:1", "not redis, rediss or unix"),
            ("redis://u:s3cret@h:1/0?x=1", "nothing may follow"),
            ("h:1/db0", "must be a number"),
            ("unix://", "no socket path"),
        ] {
            let e = RedisNode::parse(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("s3cret"), "{bad}: {e}");
        }
    }
}
