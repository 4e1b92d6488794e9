//! Large answers decoded as their bytes arrive: a bulk page is megabytes
//! (6 MB per 20,000 versions), and reading it whole before decoding held
//! the body beside what it decodes into. The body streams through a
//! blocking task that decodes it (`serde_json::from_reader` over
//! `SyncIoBridge`), so what is held is a few chunks, not the body.

use std::io::Read;

use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;

/// An answer announcing at least this many bytes is decoded as it
/// arrives; a smaller one is read whole and decoded from its bytes.
const LARGE_BODY: u64 = 1 << 20;

/// True when `resp` announces a body of at least [`LARGE_BODY`] bytes.
pub(super) fn large(resp: &reqwest::Response) -> bool {
    resp.content_length().is_some_and(|n| n >= LARGE_BODY)
}

/// How much of a body an undecodable answer's error shows.
const HEAD: usize = 4096;

/// A streamed answer's outcome.
pub(super) enum Streamed<T> {
    Decoded(T),
    /// The body could not be read to its end (the connection failed).
    Broken(std::io::Error),
    /// The body is not the JSON expected; its first bytes.
    Invalid(serde_json::Error, Vec<u8>),
}

/// Decodes `resp`'s body as it arrives.
pub(super) async fn decode<T: DeserializeOwned + Send + 'static>(
    resp: reqwest::Response,
) -> Streamed<T> {
    let body = resp.bytes_stream().map_err(std::io::Error::other);
    let bridge = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = Head {
            inner: std::io::BufReader::with_capacity(64 << 10, bridge),
            head: Vec::new(),
        };
        let decoded = serde_json::from_reader::<_, T>(&mut reader);
        if decoded.as_ref().is_err_and(|e| !e.is_io()) {
            // The decoder stopped at the error: the rest of the head too,
            // for the message.
            let rest = HEAD.saturating_sub(reader.head.len()) as u64;
            let _ = std::io::copy(&mut (&mut reader).take(rest), &mut std::io::sink());
        }
        (decoded, reader.head)
    });
    match task.await {
        Ok((Ok(t), _)) => Streamed::Decoded(t),
        Ok((Err(e), _)) if e.is_io() => Streamed::Broken(e.into()),
        Ok((Err(e), head)) => Streamed::Invalid(e, head),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// A reader that keeps the first [`HEAD`] bytes it hands on.
struct Head<R> {
    inner: R,
    head: Vec<u8>,
}

impl<R: Read> Read for Head<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}
