//! Parsing an answer while it arrives: the body's chunks go through a small
//! bounded channel to a parser on a blocking thread, which reads them as one
//! `std::io::Read`. Only a few chunks are in memory at a time, never the
//! whole body, and the parse overlaps the transfer. `-max-response-size` is
//! counted as the chunks arrive, so an oversized answer (announced or
//! chunked) is refused before it is all read.

use std::io::Read;

use bytes::Bytes;
use reqwest::Response;
use tokio::sync::mpsc;

use super::BodyError;

/// Chunks queued between the network and the parser: enough to keep both
/// busy, few enough that a slow parser holds back the transfer instead of
/// buffering the answer.
const QUEUED_CHUNKS: usize = 8;
/// The parser's read buffer: serde_json reads byte by byte, which a
/// `BufReader` turns into slice reads.
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
    P: FnOnce(&mut dyn Read) -> T + Send + 'static,
{
    let declared = response.content_length();
    if let Some(length) = declared.filter(|&l| l > limit) {
        return Err(BodyError::TooLarge {
            declared: Some(length),
        });
    }
    let (sender, receiver) = mpsc::channel(QUEUED_CHUNKS);
    let parser = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::with_capacity(
            READ_BUFFER,
            ChunkReader {
                receiver,
                chunk: Bytes::new(),
            },
        );
        parse(&mut reader)
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
                // A closed channel: the parser stopped (malformed data), and
                // it has the error to tell.
                if sender.send(chunk).await.is_err() {
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

/// The receiving end of the channel as a `Read`: the end of the body is the
/// channel's end.
struct ChunkReader {
    receiver: mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}
