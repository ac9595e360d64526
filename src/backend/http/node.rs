//! A `-node` address: parsed once into where requests go, how messages name
//! it (its password masked) and the credentials its URL carried, so a secret
//! in a node URL never reaches a message or a request line.

use reqwest::Url;

/// One `-node`: where requests go, how messages name it, and the credentials
/// its URL carried.
#[derive(Clone, PartialEq, Eq)]
pub struct Node {
    /// The address without user information (requests never carry it in
    /// the URL).
    pub url: Url,
    /// The address as messages show it: the password masked.
    pub name: String,
    /// User and password from the URL's user information, percent-decoded.
    pub userinfo: Option<(String, String)>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Node {
    /// Parses a node address; `host:port` gets `scheme://` in front. User
    /// information (`http://user:pass@host`) is taken out of the URL and
    /// kept as credentials. Errors show the address with its password masked.
    pub fn parse(address: &str, scheme: &str) -> Result<Node, String> {
        let text = if address.contains("://") {
            address.to_string()
        } else {
            format!("{scheme}://{address}")
        };
        let shown = redact_address(address);
        let mut url =
            Url::parse(&text).map_err(|e| format!("{shown:?} is not a valid address: {e}"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("{shown:?}: scheme {other} is not http or https")),
        }
        let userinfo = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or_default());
            match (user, password) {
                (Some(user), Some(password)) => Some((user, password)),
                _ => {
                    return Err(format!(
                        "{shown:?}: the user name or password is not valid percent-encoded UTF-8"
                    ));
                }
            }
        };
        let user_as_written = url.username().to_string();
        // Both calls only fail for URLs that cannot have user information
        // (no host), which http and https URLs always have.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let bare = url.as_str().trim_end_matches('/');
        let name = match &userinfo {
            Some((_, password)) => {
                let masked = if password.is_empty() {
                    format!("{user_as_written}@")
                } else {
                    format!("{user_as_written}:***@")
                };
                match bare.split_once("://") {
                    Some((scheme, rest)) => format!("{scheme}://{masked}{rest}"),
                    None => bare.to_string(),
                }
            }
            None => bare.to_string(),
        };
        Ok(Node {
            url,
            name,
            userinfo,
        })
    }
}

/// Parses a node address; `host:port` gets `scheme://` in front. The URL
/// keeps no user information (see [`Node::parse`]).
pub fn node_url(address: &str, scheme: &str) -> Result<Url, String> {
    Node::parse(address, scheme).map(|node| node.url)
}

/// An address as it may be shown: the password of its user information (if
/// any) replaced by `***`, as Go's `URL.Redacted` does. Works on text that
/// does not parse as a URL, so a typo never puts a password in an error; it
/// takes the last `@` as the end of the user information, so a password that
/// itself holds `@`, `/` or `?` is masked whole.
pub fn redact_address(address: &str) -> String {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), address),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{host}"),
            None => format!("{scheme}{userinfo}@{host}"),
        },
        None => address.to_string(),
    }
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is
/// not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
