//! RESP2, the Redis protocol, as far as confd speaks it: commands go out as
//! arrays of bulk strings; replies are parsed within a byte budget, so an
//! answer larger than `-max-response-size` fails as soon as its announced
//! length (or the bytes read) cross the limit, before anything that large is
//! allocated. Arrays are parsed without recursion and nest at most
//! [`MAX_DEPTH`] deep, so a hostile server cannot exhaust the stack.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// How deep arrays may nest (confd's replies nest two deep at most).
const MAX_DEPTH: usize = 8;
/// The longest status, error or length line accepted: Redis's own are short.
const MAX_LINE: usize = 64 << 10;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(Vec<u8>),
    /// `-ERR …`: the server refused the command.
    Error(Vec<u8>),
    /// `:1`
    Integer(i64),
    /// `$3 abc`, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*2 …`, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum RespError {
    /// The connection failed or closed.
    Io(std::io::Error),
    /// The reply is larger than the budget left; `announced` is the length
    /// the server announced, when it did.
    TooLarge {
        /// The announced length, in bytes.
        announced: Option<u64>,
    },
    /// The bytes are not RESP2.
    Protocol(String),
}

impl From<std::io::Error> for RespError {
    fn from(e: std::io::Error) -> Self {
        RespError::Io(e)
    }
}

impl Reply {
    /// The bytes of a bulk or simple string.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Reply::Bulk(Some(bytes)) | Reply::Simple(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The items of an array (none for a nil array).
    pub fn into_items(self) -> Option<Vec<Reply>> {
        match self {
            Reply::Array(Some(items)) => Some(items),
            Reply::Array(None) => Some(Vec::new()),
            _ => None,
        }
    }

    /// The text of an error reply.
    pub fn error_text(&self) -> Option<&[u8]> {
        match self {
            Reply::Error(text) => Some(text),
            _ => None,
        }
    }

    /// Whether this is an error reply starting with `code` (`WRONGTYPE`).
    pub fn is_error(&self, code: &str) -> bool {
        self.error_text()
            .is_some_and(|t| t.starts_with(code.as_bytes()))
    }
}

/// Appends `args` to `out` as one command.
pub fn encode<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

fn charge(budget: &mut u64, bytes: u64, announced: Option<u64>) -> Result<(), RespError> {
    if bytes > *budget {
        return Err(RespError::TooLarge { announced });
    }
    *budget -= bytes;
    Ok(())
}

/// Reads one line, without its CRLF.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    budget: &mut u64,
) -> Result<Vec<u8>, RespError> {
    let mut line = Vec::new();
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Err(RespError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let (take, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        charge(budget, take as u64, None)?;
        if line.len() + take > MAX_LINE {
            return Err(RespError::Protocol(format!(
                "a reply line longer than {MAX_LINE} bytes"
            )));
        }
        line.extend_from_slice(&buffer[..take]);
        reader.consume(take);
        if done {
            break;
        }
    }
    if !line.ends_with(b"\r\n") {
        return Err(RespError::Protocol("a line not ended by CRLF".to_string()));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_length(text: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| {
            RespError::Protocol(format!(
                "{:?} is not a number",
                String::from_utf8_lossy(text)
            ))
        })
}

/// Reads one reply, charging every byte to `budget`.
pub async fn read_reply<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    budget: &mut u64,
) -> Result<Reply, RespError> {
    // Arrays being filled: their items so far and how many are still due.
    let mut open: Vec<(Vec<Reply>, usize)> = Vec::new();
    loop {
        let line = read_line(reader, budget).await?;
        let Some((&kind, rest)) = line.split_first() else {
            return Err(RespError::Protocol("an empty reply line".to_string()));
        };
        let mut value = match kind {
            b'+' => Reply::Simple(rest.to_vec()),
            b'-' => Reply::Error(rest.to_vec()),
            b':' => Reply::Integer(parse_length(rest)?),
            b'$' => match u64::try_from(parse_length(rest)?) {
                Err(_) => Reply::Bulk(None),
                Ok(length) => {
                    let with_crlf = length.saturating_add(2);
                    charge(budget, with_crlf, Some(length))?;
                    let size = usize::try_from(with_crlf).map_err(|_| RespError::TooLarge {
                        announced: Some(length),
                    })?;
                    let mut bytes = vec![0; size];
                    reader.read_exact(&mut bytes).await?;
                    if !bytes.ends_with(b"\r\n") {
                        return Err(RespError::Protocol(
                            "a bulk string not ended by CRLF".to_string(),
                        ));
                    }
                    bytes.truncate(size - 2);
                    Reply::Bulk(Some(bytes))
                }
            },
            b'*' => match usize::try_from(parse_length(rest)?) {
                Err(_) => Reply::Array(None),
                Ok(0) => Reply::Array(Some(Vec::new())),
                Ok(count) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(RespError::Protocol(format!(
                            "arrays nested more than {MAX_DEPTH} deep"
                        )));
                    }
                    // Each item takes at least 3 bytes (":0\r\n" is 4), so a
                    // count the budget cannot hold is refused before any
                    // memory is set aside for it.
                    if (count as u64).saturating_mul(3) > *budget {
                        return Err(RespError::TooLarge { announced: None });
                    }
                    open.push((Vec::with_capacity(count.min(1024)), count));
                    continue;
                }
            },
            other => {
                return Err(RespError::Protocol(format!(
                    "unexpected reply type byte {other:#04x}"
                )));
            }
        };
        loop {
            let Some((items, due)) = open.last_mut() else {
                return Ok(value);
            };
            items.push(value);
            *due -= 1;
            if *due > 0 {
                break;
            }
            let Some((items, _)) = open.pop() else {
                return Err(RespError::Protocol("array bookkeeping".to_string()));
            };
            value = Reply::Array(Some(items));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8], budget: u64) -> Result<Reply, RespError> {
        let mut reader = tokio::io::BufReader::new(bytes);
        let mut budget = budget;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(read_reply(&mut reader, &mut budget))
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Some(text.as_bytes().to_vec()))
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&["GET", "a b"], &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$3\r\na b\r\n");
    }

    #[test]
    fn every_reply_type_parses() {
        assert_eq!(
            parse(b"+OK\r\n", 100).ok(),
            Some(Reply::Simple(b"OK".to_vec()))
        );
        assert_eq!(
            parse(b"-WRONGTYPE x\r\n", 100).ok(),
            Some(Reply::Error(b"WRONGTYPE x".to_vec()))
        );
        assert_eq!(parse(b":-7\r\n", 100).ok(), Some(Reply::Integer(-7)));
        assert_eq!(parse(b"$-1\r\n", 100).ok(), Some(Reply::Bulk(None)));
        assert_eq!(parse(b"$0\r\n\r\n", 100).ok(), Some(bulk("")));
        assert_eq!(parse(b"$4\r\na\r\nb\r\n", 100).ok(), Some(bulk("a\r\nb")));
        assert_eq!(parse(b"*-1\r\n", 100).ok(), Some(Reply::Array(None)));
        let scan = b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$-1\r\n";
        assert_eq!(
            parse(scan, 100).ok(),
            Some(Reply::Array(Some(vec![
                bulk("0"),
                Reply::Array(Some(vec![bulk("a"), Reply::Bulk(None)]))
            ])))
        );
    }

    #[test]
    fn replies_over_the_budget_fail_before_they_are_read() {
        // The announced length alone is refused: nothing that large is
        // allocated or waited for.
        match parse(b"$1000000000\r\n", 1 << 20) {
            Err(RespError::TooLarge { announced }) => assert_eq!(announced, Some(1_000_000_000)),
            other => panic!("{other:?}"),
        }
        match parse(b"*100000000\r\n", 1 << 20) {
            Err(RespError::TooLarge { .. }) => {}
            other => panic!("{other:?}"),
        }
        // Every byte counts, lines included.
        let two = b"*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n";
        assert!(parse(two, two.len() as u64).is_ok());
        assert!(matches!(
            parse(two, two.len() as u64 - 1),
            Err(RespError::TooLarge { .. })
        ));
    }

    #[test]
    fn broken_replies_are_protocol_errors() {
        for bad in [
            &b"?x\r\n"[..],
            b"$3\r\nabcd\r\n",
            b":x\r\n",
            b"+OK\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        ] {
            assert!(
                matches!(parse(bad, 1000), Err(RespError::Protocol(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(parse(b"$5\r\nab", 1000), Err(RespError::Io(_))));
        assert!(matches!(parse(b"", 1000), Err(RespError::Io(_))));
    }
}
