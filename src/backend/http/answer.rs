//! Reading what a node answers: bodies capped at `-max-response-size`, and
//! server text cut and escaped before it goes into a message, so no answer
//! can exhaust memory, flood the log or forge a log line.

use reqwest::Response;

use super::{BackendError, MAX_SERVER_TEXT, MIN_RESPONSE_SIZE};
use crate::size::{format_size, parse_size};

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// The connection failed or timed out.
    Network(reqwest::Error),
    /// The body is larger than the limit; `declared` is its Content-Length
    /// when the server sent one.
    TooLarge {
        /// The announced size, if any.
        declared: Option<u64>,
    },
    /// The parser's thread was stopped (the runtime is shutting down).
    Stopped,
}

/// Reads `response`'s body chunk by chunk, stopping as soon as it would
/// exceed `limit` bytes (so a huge or endless answer costs at most `limit`
/// of memory). A Content-Length above the limit fails before any read.
pub async fn read_capped(mut response: Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    let declared = response.content_length();
    if let Some(length) = declared.filter(|&l| l > limit) {
        return Err(BodyError::TooLarge {
            declared: Some(length),
        });
    }
    // Trust a declared length for the first allocation only as far as the
    // limit allows.
    let capacity = usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0);
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Network)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge { declared: None });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses `-max-response-size`: [`parse_size`], at least
/// [`MIN_RESPONSE_SIZE`].
pub fn parse_max_response_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    if size < MIN_RESPONSE_SIZE {
        return Err(format!(
            "{size} bytes is too small to hold an answer; at least {} (write the unit: 64MiB)",
            format_size(MIN_RESPONSE_SIZE)
        ));
    }
    Ok(size)
}

/// Server text made fit for one log line: surrounding whitespace trimmed, the
/// first [`MAX_SERVER_TEXT`] bytes at most (then `… (N bytes)` with the full
/// size), and every control character, line or paragraph separator and bidi
/// override escaped (`\n`, `\u{1b}`), so whatever a server sends can neither
/// flood the log nor forge a line of its own. Bytes that are not UTF-8 show
/// as U+FFFD: this is for messages, never for data.
pub fn server_text(bytes: &[u8]) -> String {
    let trimmed = bytes.trim_ascii();
    let truncated = trimmed.len() > MAX_SERVER_TEXT;
    let mut head = &trimmed[..trimmed.len().min(MAX_SERVER_TEXT)];
    if truncated {
        // Do not cut a character in two: drop its first bytes instead.
        if let Err(e) = std::str::from_utf8(head)
            && e.error_len().is_none()
        {
            head = &head[..e.valid_up_to()];
        }
    }
    let mut out = String::with_capacity(head.len() + 24);
    for c in String::from_utf8_lossy(head).chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    if truncated {
        out.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    out
}

/// [`server_text`] of anything displayable that may quote a server, such as
/// a JSON error (serde quotes the offending string).
pub fn quote_server(value: impl std::fmt::Display) -> String {
    server_text(value.to_string().as_bytes())
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

/// A reqwest error as a short phrase, with its innermost cause. The error's
/// own text (which names the URL) is never used, only its kind and causes.
pub fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_redirect() {
        "redirect not followed"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "bad response body"
    } else {
        "request failed"
    };
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(next) = cause.and_then(|c| c.source()) {
        cause = Some(next);
    }
    // A cause may quote the server (a TLS name, a malformed header).
    match cause {
        Some(cause) => format!("{kind}: {}", quote_server(cause)),
        None => kind.to_string(),
    }
}
