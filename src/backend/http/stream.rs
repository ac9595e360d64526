//! Parsing an answer while it arrives: the body's chunks go through a small
//! bounded channel to a parser on a blocking thread, which reads them as one
//! `std::io::Read`. Only a few chunks are in memory at a time, never the
//! whole body, and the parse overlaps the transfer. `-max-response-size` is
//! counted as the chunks arrive, so an oversized answer (announced or
//! chunked) is refused before it is all read.

use std::fmt;
use std::io::{BufReader, Read};

use reqwest::Response;
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use tokio::sync::mpsc;

use super::BodyError;

/// Chunks queued between the network and the parser: enough to keep both
/// busy, few enough that a slow parser holds back the transfer instead of
/// buffering the answer.
const QUEUED_CHUNKS: usize = 4;
/// The largest piece queued: at most `QUEUED_CHUNKS` × 64 KiB wait for the
/// parser.
const PIECE: usize = 64 << 10;
/// The parser's read buffer.
const READ_BUFFER: usize = 64 << 10;

/// Hands `response`'s body to `parse` on a blocking thread as it arrives
/// and returns what `parse` returned. A body over `limit` bytes, or one the
/// network cuts, is an error whatever `parse` made of it (it sees the body
/// end early). `parse` may stop reading early (malformed data): the rest of
/// the body is then not read.
pub async fn parse_streamed<T, P>(
    mut response: Response,
    limit: u64,
    parse: P,
) -> Result<T, BodyError>
where
    T: Send + 'static,
    P: FnOnce(BodyReader) -> T + Send + 'static,
{
    let declared = response.content_length();
    if let Some(length) = declared.filter(|&l| l > limit) {
        return Err(BodyError::TooLarge {
            declared: Some(length),
        });
    }
    let (sender, receiver) = mpsc::channel(QUEUED_CHUNKS);
    let parser = tokio::task::spawn_blocking(move || {
        parse(BufReader::with_capacity(
            READ_BUFFER,
            ChunkReader {
                receiver,
                chunk: Vec::new(),
                read: 0,
            },
        ))
    });
    let mut received: u64 = 0;
    let mut failure = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                if received > limit {
                    failure = Some(BodyError::TooLarge { declared: None });
                    break;
                }
                // Copies, not the chunk itself: a chunk is a slice of the
                // HTTP client's read buffer (up to 400 KiB) and would keep
                // that whole buffer alive while queued; and in pieces, as
                // an announced body comes in chunks of hundreds of KiB.
                // A closed channel: the parser stopped (malformed data), and
                // it has the error to tell.
                let mut stopped = false;
                for piece in chunk.chunks(PIECE) {
                    if sender.send(piece.to_vec()).await.is_err() {
                        stopped = true;
                        break;
                    }
                }
                if stopped {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(BodyError::Network(e));
                break;
            }
        }
    }
    // The parser sees the end of the body.
    drop(sender);
    let parsed = parser.await;
    if let Some(failure) = failure {
        return Err(failure);
    }
    match parsed {
        Ok(parsed) => Ok(parsed),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(BodyError::Stopped),
    }
}

/// Reads `response`'s body to its end and drops each chunk as it arrives,
/// failing as soon as more than `limit` bytes came (or were announced).
pub async fn discard_capped(mut response: Response, limit: u64) -> Result<(), BodyError> {
    if let Some(length) = response.content_length().filter(|&l| l > limit) {
        return Err(BodyError::TooLarge {
            declared: Some(length),
        });
    }
    let mut received: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Network)? {
        received += chunk.len() as u64;
        if received > limit {
            return Err(BodyError::TooLarge { declared: None });
        }
    }
    Ok(())
}

/// What a parser reads the body from. A concrete `BufReader`, not a
/// `dyn Read`: serde_json reads byte by byte, which std turns into plain
/// buffer reads for a `BufReader` taken by value (through a `dyn Read`, each
/// byte was a call: twice the time of the whole transfer).
pub type BodyReader = BufReader<ChunkReader>;

/// The receiving end of the channel as a `Read`: the end of the body is the
/// channel's end.
pub struct ChunkReader {
    receiver: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    /// How much of `chunk` was read.
    read: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.read == self.chunk.len() {
            match self.receiver.blocking_recv() {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.read = 0;
                }
                None => return Ok(0),
            }
        }
        let rest = &self.chunk[self.read..];
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.read += n;
        Ok(n)
    }
}

/// A string or null, appended to a buffer the caller reuses from entry to
/// entry (the parsers of answers allocate nothing per key); the seed yields
/// true for a string, false for null.
pub struct OptionalText<'a>(pub &'a mut String);

impl<'de> DeserializeSeed<'de> for OptionalText<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalText<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
        self.0.push_str(text);
        Ok(true)
    }
}
