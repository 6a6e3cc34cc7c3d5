//! Box stream: the encrypted, authenticated framing that follows the secret
//! handshake (PROTOCOL.md, "Secret handshake (SHS) and box stream").
//!
//! Each packet is a 34-byte header, `secretbox(len u16 BE || body_tag, n)`,
//! followed by the body `secretbox(plaintext, n + 1)` without its tag (the tag
//! travels in the header). The nonce is a 24-byte big-endian counter that
//! advances by 2 per packet. Bodies carry 1..=4096 bytes. The stream ends with
//! the goodbye: a header sealed over 18 zero bytes. A stream that stops
//! without its goodbye may have been truncated by an attacker, so the reader
//! reports it as an error, never as a clean end.
//!
//! Owns: [`BoxKeys`], the pure packet sealing and opening ([`BoxEncoder`],
//! [`BoxDecoder`], also usable as `tokio_util::codec` coders), and the
//! [`BoxReader`] / [`BoxWriter`] adapters over any `AsyncRead` /
//! `AsyncWrite`. Imports only `crypto` (secret boxes); never the store, feeds,
//! rpc or replication.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::codec::{Decoder, Encoder};
use zeroize::Zeroize as _;

use crate::crypto::{Nonce, Tag, secretbox_open_detached, secretbox_seal_detached};

/// Largest body of one packet, in bytes.
pub const MAX_BODY: usize = 4096;
/// Bytes in a sealed header: 16-byte tag + 2-byte length + 16-byte body tag.
pub const HEADER_LEN: usize = 34;
/// Largest packet on the wire: one header and one full body.
pub const MAX_PACKET: usize = HEADER_LEN + MAX_BODY;

/// The keys and starting nonces of one box-stream connection, as the secret
/// handshake derives them. Wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct BoxKeys {
    /// Key for what we send.
    pub encrypt_key: [u8; 32],
    /// First nonce of what we send.
    pub encrypt_nonce: Nonce,
    /// Key for what we receive.
    pub decrypt_key: [u8; 32],
    /// First nonce of what we receive.
    pub decrypt_nonce: Nonce,
}

impl fmt::Debug for BoxKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxKeys(..)")
    }
}

impl Drop for BoxKeys {
    fn drop(&mut self) {
        self.encrypt_key.zeroize();
        self.decrypt_key.zeroize();
    }
}

/// Why a box stream could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoxStreamError {
    /// A header did not authenticate: wrong keys, tampering or garbage.
    #[error("box stream header does not authenticate")]
    BadHeader,
    /// A body did not authenticate against the tag in its header.
    #[error("box stream body does not authenticate")]
    BadBody,
    /// An authentic header announced a body longer than [`MAX_BODY`].
    #[error("box stream header announces a {0}-byte body; the limit is 4096")]
    BodyTooLong(usize),
    /// The underlying stream ended between packets without a goodbye.
    #[error("box stream closed without its goodbye packet")]
    NoGoodbye,
    /// The underlying stream ended inside a packet.
    #[error("box stream truncated: closed {got} bytes into a {expected}-byte packet")]
    Truncated {
        /// Bytes of the packet received.
        got: usize,
        /// Bytes the packet needed (34 while its header is incomplete).
        expected: usize,
    },
    /// The underlying stream failed.
    #[error("box stream I/O error: {0}")]
    Io(#[from] io::Error),
}

impl From<BoxStreamError> for io::Error {
    fn from(e: BoxStreamError) -> io::Error {
        match e {
            BoxStreamError::Io(e) => e,
            BoxStreamError::NoGoodbye | BoxStreamError::Truncated { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, e)
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// One decoded item of a box stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoxFrame {
    /// Plaintext. From the decoder: one packet's body (1..=4096 bytes). To the
    /// encoder: any length, split into packets of at most 4096 bytes.
    Body(Bytes),
    /// The end of the stream.
    Goodbye,
}

/// Adds one to a big-endian 24-byte counter, wrapping around.
fn increment(nonce: &mut Nonce) {
    for b in nonce.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            return;
        }
    }
}

/// A key and the nonce of the next packet; the key is wiped on drop.
struct Cipher {
    key: [u8; 32],
    nonce: Nonce,
}

impl Cipher {
    /// The body nonce of the current packet: the header nonce plus one.
    fn body_nonce(&self) -> Nonce {
        let mut n = self.nonce;
        increment(&mut n);
        n
    }

    fn advance(&mut self) {
        increment(&mut self.nonce);
        increment(&mut self.nonce);
    }
}

impl Drop for Cipher {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Seals plaintext into box-stream packets. Pure; also a
/// `tokio_util::codec::Encoder<BoxFrame>`.
pub struct BoxEncoder {
    cipher: Cipher,
}

impl BoxEncoder {
    /// An encoder starting at `nonce`.
    pub fn new(key: [u8; 32], nonce: Nonce) -> BoxEncoder {
        BoxEncoder {
            cipher: Cipher { key, nonce },
        }
    }

    /// Seals one packet into `out`, which must be exactly
    /// `HEADER_LEN + body.len()` bytes, with `body` of 1..=[`MAX_BODY`] bytes.
    /// Returns `false` (writing nothing, using no nonce) when the sizes are wrong.
    pub fn seal_packet(&mut self, body: &[u8], out: &mut [u8]) -> bool {
        if body.is_empty() || body.len() > MAX_BODY || out.len() != HEADER_LEN + body.len() {
            return false;
        }
        let (head, rest) = out.split_at_mut(HEADER_LEN);
        rest.copy_from_slice(body);
        let body_tag = secretbox_seal_detached(rest, &self.cipher.body_nonce(), &self.cipher.key);
        let mut plain = [0u8; 18];
        plain[..2].copy_from_slice(&(body.len() as u16).to_be_bytes());
        plain[2..].copy_from_slice(&body_tag);
        let tag = secretbox_seal_detached(&mut plain, &self.cipher.nonce, &self.cipher.key);
        head[..16].copy_from_slice(&tag);
        head[16..].copy_from_slice(&plain);
        self.cipher.advance();
        true
    }

    /// The goodbye packet: a header sealed over 18 zero bytes.
    pub fn goodbye(&mut self) -> [u8; HEADER_LEN] {
        let mut plain = [0u8; 18];
        let tag = secretbox_seal_detached(&mut plain, &self.cipher.nonce, &self.cipher.key);
        self.cipher.advance();
        let mut out = [0u8; HEADER_LEN];
        out[..16].copy_from_slice(&tag);
        out[16..].copy_from_slice(&plain);
        out
    }
}

impl Encoder<BoxFrame> for BoxEncoder {
    type Error = io::Error;

    fn encode(&mut self, item: BoxFrame, dst: &mut BytesMut) -> io::Result<()> {
        match item {
            BoxFrame::Body(body) => {
                let packets = body.len().div_ceil(MAX_BODY);
                dst.reserve(body.len() + packets * HEADER_LEN);
                for chunk in body.chunks(MAX_BODY) {
                    let start = dst.len();
                    dst.resize(start + HEADER_LEN + chunk.len(), 0);
                    let sealed = self.seal_packet(chunk, &mut dst[start..]);
                    debug_assert!(sealed);
                }
            }
            BoxFrame::Goodbye => dst.extend_from_slice(&self.goodbye()),
        }
        Ok(())
    }
}

impl fmt::Debug for BoxEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxEncoder(..)")
    }
}

/// An authentic header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A body of `len` (0..=4096) bytes follows, authenticated by `tag`.
    Body {
        /// Body length.
        len: usize,
        /// The body's secret-box tag.
        tag: Tag,
    },
    /// The goodbye: the stream ends here.
    Goodbye,
}

/// Opens box-stream packets. Pure; also a `tokio_util::codec::Decoder`
/// yielding [`BoxFrame`]s (it skips empty bodies, which the reference
/// implementation never sends but would accept).
pub struct BoxDecoder {
    cipher: Cipher,
    /// The opened header of the packet whose body has not arrived yet.
    pending: Option<(usize, Tag)>,
    /// The goodbye has been read.
    done: bool,
}

impl BoxDecoder {
    /// A decoder starting at `nonce`.
    pub fn new(key: [u8; 32], nonce: Nonce) -> BoxDecoder {
        BoxDecoder {
            cipher: Cipher { key, nonce },
            pending: None,
            done: false,
        }
    }

    /// Opens the header of the next packet. The nonce does not move until
    /// its body is opened with [`BoxDecoder::open_body`].
    pub fn open_header(&self, sealed: &[u8; HEADER_LEN]) -> Result<Header, BoxStreamError> {
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&sealed[..16]);
        let mut plain = [0u8; 18];
        plain.copy_from_slice(&sealed[16..]);
        secretbox_open_detached(&mut plain, &tag, &self.cipher.nonce, &self.cipher.key)
            .map_err(|_| BoxStreamError::BadHeader)?;
        if plain == [0; 18] {
            return Ok(Header::Goodbye);
        }
        let len = usize::from(u16::from_be_bytes([plain[0], plain[1]]));
        if len > MAX_BODY {
            return Err(BoxStreamError::BodyTooLong(len));
        }
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&plain[2..]);
        Ok(Header::Body { len, tag })
    }

    /// Decrypts a body in place with the tag from its header and moves on to
    /// the next packet. On failure the body is unchanged and the nonce stays.
    pub fn open_body(&mut self, tag: &Tag, body: &mut [u8]) -> Result<(), BoxStreamError> {
        secretbox_open_detached(body, tag, &self.cipher.body_nonce(), &self.cipher.key)
            .map_err(|_| BoxStreamError::BadBody)?;
        self.cipher.advance();
        Ok(())
    }
}

impl Decoder for BoxDecoder {
    type Item = BoxFrame;
    type Error = BoxStreamError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BoxFrame>, BoxStreamError> {
        loop {
            if self.done {
                // Whatever follows the goodbye is not part of the stream.
                src.clear();
                return Ok(None);
            }
            let (len, tag) = match self.pending {
                Some(p) => p,
                None => {
                    let Some(head) = src.get(..HEADER_LEN) else {
                        src.reserve(HEADER_LEN - src.len());
                        return Ok(None);
                    };
                    let mut sealed = [0u8; HEADER_LEN];
                    sealed.copy_from_slice(head);
                    let header = self.open_header(&sealed)?;
                    src.advance(HEADER_LEN);
                    match header {
                        Header::Goodbye => {
                            self.done = true;
                            return Ok(Some(BoxFrame::Goodbye));
                        }
                        Header::Body { len, tag } => {
                            self.pending = Some((len, tag));
                            (len, tag)
                        }
                    }
                }
            };
            if src.len() < len {
                src.reserve(len - src.len());
                return Ok(None);
            }
            let mut body = src.split_to(len);
            self.open_body(&tag, &mut body)?;
            self.pending = None;
            if len > 0 {
                return Ok(Some(BoxFrame::Body(body.freeze())));
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BoxFrame>, BoxStreamError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if self.done {
            return Ok(None);
        }
        Err(match self.pending {
            Some((len, _)) => BoxStreamError::Truncated {
                got: HEADER_LEN + src.len(),
                expected: HEADER_LEN + len,
            },
            None if src.is_empty() => BoxStreamError::NoGoodbye,
            None => BoxStreamError::Truncated {
                got: src.len(),
                expected: HEADER_LEN,
            },
        })
    }
}

impl fmt::Debug for BoxDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxDecoder")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Where a [`BoxReader`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// Reading packets.
    Open,
    /// The goodbye was read: end of stream.
    Done,
    /// An error was reported; the stream cannot continue.
    Failed(io::ErrorKind),
}

/// Bytes a [`BoxReader`] reads ahead at most: room for several packets, so
/// that a peer streaming full packets costs one read call per several of
/// them, not one or two per packet.
pub const READ_AHEAD: usize = 8 * MAX_PACKET;

/// Decrypts a box stream: plaintext out of [`AsyncRead`], end of stream on
/// the goodbye packet, an error on a bad header or body, on a truncated
/// packet, or when the stream stops without a goodbye.
///
/// Memory: one buffer of [`READ_AHEAD`] bytes. It holds ciphertext read
/// ahead and the packets being handed out, whose bodies are decrypted in
/// place and handed out from there; one read fills as much of it as the
/// socket has, and one `poll_read` hands out as many whole packets as the
/// caller has room for. Nothing more is read until the caller has taken
/// all the plaintext opened.
pub struct BoxReader<R> {
    inner: R,
    decoder: BoxDecoder,
    /// `buf[start..filled]` holds bytes read from `inner` and not yet
    /// handed out. When no plaintext is pending, the next packet starts at
    /// `buf[start]`.
    buf: Box<[u8]>,
    start: usize,
    filled: usize,
    /// The opened header of the packet at `buf[start]`, while its body is
    /// incomplete.
    header: Option<(usize, Tag)>,
    /// Decrypted plaintext not yet handed out: `buf[plain_start..plain_end]`.
    plain_start: usize,
    plain_end: usize,
    state: ReadState,
}

impl<R> BoxReader<R> {
    /// Reads the box stream on `inner` sealed with `key` from `nonce` on.
    pub fn new(inner: R, key: [u8; 32], nonce: Nonce) -> BoxReader<R> {
        BoxReader {
            inner,
            decoder: BoxDecoder::new(key, nonce),
            buf: vec![0u8; READ_AHEAD].into_boxed_slice(),
            start: 0,
            filled: 0,
            header: None,
            plain_start: 0,
            plain_end: 0,
            state: ReadState::Open,
        }
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Records a failure and turns it into the error to report.
    fn fail(&mut self, e: BoxStreamError) -> io::Error {
        let e = io::Error::from(e);
        self.state = ReadState::Failed(e.kind());
        e
    }

    /// Drops the packet whose plaintext has been handed out: the next one
    /// starts where it ended.
    fn consume_packet(&mut self) {
        self.start = self.plain_end;
        self.plain_start = 0;
        self.plain_end = 0;
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
        }
    }

    /// Makes room after `filled` for at least the rest of the packet at
    /// `start`, moving what is unread to the front of the buffer when a
    /// whole packet would no longer fit behind it.
    fn make_room(&mut self) {
        if self.buf.len() - self.start < MAX_PACKET {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
    }

    /// Opens the packet at `buf[start]` if all of it is in the buffer:
    /// `Some(Ok(true))` with its plaintext pending (or nothing, for an
    /// empty body), `Some(Ok(false))` at the goodbye, `None` when more
    /// bytes are needed.
    fn open_next(&mut self) -> Option<Result<bool, BoxStreamError>> {
        let have = self.filled - self.start;
        if self.header.is_none() && have >= HEADER_LEN {
            let mut sealed = [0u8; HEADER_LEN];
            sealed.copy_from_slice(&self.buf[self.start..self.start + HEADER_LEN]);
            match self.decoder.open_header(&sealed) {
                Ok(Header::Goodbye) => return Some(Ok(false)),
                Ok(Header::Body { len, tag }) => self.header = Some((len, tag)),
                Err(e) => return Some(Err(e)),
            }
        }
        let (len, tag) = self.header?;
        if have < HEADER_LEN + len {
            return None;
        }
        let body = self.start + HEADER_LEN;
        if let Err(e) = self
            .decoder
            .open_body(&tag, &mut self.buf[body..body + len])
        {
            return Some(Err(e));
        }
        self.header = None;
        self.plain_start = body;
        self.plain_end = body + len;
        if len == 0 {
            self.consume_packet();
        }
        Some(Ok(true))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for BoxReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // Whether this call has handed out plaintext: then it returns
        // rather than wait for more bytes.
        let mut gave = false;
        loop {
            if this.plain_start < this.plain_end {
                let n = out.remaining().min(this.plain_end - this.plain_start);
                out.put_slice(&this.buf[this.plain_start..this.plain_start + n]);
                this.plain_start += n;
                if this.plain_start < this.plain_end {
                    return Poll::Ready(Ok(()));
                }
                this.consume_packet();
                gave = true;
                if out.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            match this.state {
                ReadState::Open => {}
                ReadState::Done => return Poll::Ready(Ok(())),
                ReadState::Failed(kind) => {
                    return Poll::Ready(Err(io::Error::new(kind, "box stream failed earlier")));
                }
            }
            match this.open_next() {
                Some(Ok(true)) => continue,
                Some(Ok(false)) => {
                    this.state = ReadState::Done;
                    return Poll::Ready(Ok(()));
                }
                // What was handed out goes first: opening fails again,
                // the same way, on the next call (a failed open changes
                // nothing).
                Some(Err(_)) | None if gave => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(this.fail(e))),
                None => {}
            }
            // Need more bytes; room is made for the whole current packet.
            this.make_room();
            let mut rb = ReadBuf::new(&mut this.buf[this.filled..]);
            if let Err(e) = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb)) {
                return Poll::Ready(Err(this.fail(BoxStreamError::Io(e))));
            }
            let n = rb.filled().len();
            if n == 0 {
                let got = this.filled - this.start;
                let e = match this.header {
                    Some((len, _)) => BoxStreamError::Truncated {
                        got,
                        expected: HEADER_LEN + len,
                    },
                    None if got == 0 => BoxStreamError::NoGoodbye,
                    None => BoxStreamError::Truncated {
                        got,
                        expected: HEADER_LEN,
                    },
                };
                return Poll::Ready(Err(this.fail(e)));
            }
            this.filled += n;
        }
    }
}

impl<R> fmt::Debug for BoxReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxReader")
            .field("state", &self.state)
            .field("buffered", &self.filled)
            .finish_non_exhaustive()
    }
}

/// Where a [`BoxWriter`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteState {
    /// Accepting writes.
    Open,
    /// The goodbye is sealed into the buffer; shutting down.
    Closing,
}

/// Encrypts into a box stream through [`AsyncWrite`]: each write seals up to
/// [`MAX_BODY`] bytes into one packet; `poll_shutdown` sends the goodbye and
/// then shuts the inner writer down.
///
/// Memory: one packet. A write is accepted once its packet is sealed into the
/// buffer; the writer tries to pass it on at once, and the next write, flush
/// or shutdown finishes the job. As with any buffered writer, call `flush`
/// (or `shutdown`) when a message must reach the peer.
pub struct BoxWriter<W> {
    inner: W,
    encoder: BoxEncoder,
    /// `buf[pos..len]` is sealed and not yet written to `inner`.
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    state: WriteState,
}

impl<W> BoxWriter<W> {
    /// Writes a box stream onto `inner`, sealed with `key` from `nonce` on.
    pub fn new(inner: W, key: [u8; 32], nonce: Nonce) -> BoxWriter<W> {
        BoxWriter {
            inner,
            encoder: BoxEncoder::new(key, nonce),
            buf: vec![0u8; MAX_PACKET].into_boxed_slice(),
            pos: 0,
            len: 0,
            state: WriteState::Open,
        }
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: AsyncWrite + Unpin> BoxWriter<W> {
    /// Writes the sealed bytes in the buffer to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pos < self.len {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.pos..self.len]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pos += n;
        }
        self.pos = 0;
        self.len = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for BoxWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.state != WriteState::Open {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "box stream writer is shut down",
            )));
        }
        ready!(this.poll_drain(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(MAX_BODY);
        let sealed = this
            .encoder
            .seal_packet(&data[..n], &mut this.buf[..HEADER_LEN + n]);
        debug_assert!(sealed);
        this.len = HEADER_LEN + n;
        // Pass it on now if the inner writer takes it; if it is not ready, the
        // packet waits in the buffer for the next call.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state == WriteState::Open {
            ready!(this.poll_drain(cx))?;
            let goodbye = this.encoder.goodbye();
            this.buf[..HEADER_LEN].copy_from_slice(&goodbye);
            this.pos = 0;
            this.len = HEADER_LEN;
            this.state = WriteState::Closing;
        }
        ready!(this.poll_drain(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<W> fmt::Debug for BoxWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxWriter")
            .field("state", &self.state)
            .field("unsent", &(self.len - self.pos))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use futures::StreamExt as _;
    use rand::rngs::StdRng;
    use rand::{RngExt as _, SeedableRng as _};
    use serde_json::Value;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_util::codec::FramedRead;

    fn unhex<const N: usize>(v: &Value) -> [u8; N] {
        let bytes = hex::decode(v.as_str().expect("hex string")).expect("hex");
        bytes.try_into().expect("length")
    }

    fn vectors() -> Value {
        let path = crate::net::test_vectors_dir().join("box-stream/box-stream-vectors.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("vector JSON")
    }

    fn keys() -> ([u8; 32], Nonce) {
        ([0x42; 32], [0xfe; 24])
    }

    /// `n` deterministic random bytes.
    fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rng.fill(&mut v[..]);
        v
    }

    #[test]
    fn nonce_increment_carries_and_wraps() {
        let mut n = [0u8; 24];
        n[23] = 0xff;
        n[22] = 0xff;
        increment(&mut n);
        assert_eq!(n[21..], [1, 0, 0]);
        let mut max = [0xff; 24];
        increment(&mut max);
        assert_eq!(max, [0; 24]);
    }

    #[test]
    fn reproduces_the_vectors() {
        let v = vectors();
        let key = unhex::<32>(&v["key"]);
        let nonce = unhex::<24>(&v["start_nonce"]);
        let mut enc = BoxEncoder::new(key, nonce);
        let mut wire = BytesMut::new();
        let packets = v["packets"].as_array().expect("packets");
        assert_eq!(packets.len(), 2);
        for p in packets {
            let plain = hex::decode(p["plaintext"].as_str().unwrap()).unwrap();
            let mut out = vec![0u8; HEADER_LEN + plain.len()];
            assert!(enc.seal_packet(&plain, &mut out));
            assert_eq!(
                hex::encode(&out[..HEADER_LEN]),
                p["header"].as_str().unwrap()
            );
            assert_eq!(hex::encode(&out[HEADER_LEN..]), p["body"].as_str().unwrap());
            wire.extend_from_slice(&out);
        }
        let bye = enc.goodbye();
        assert_eq!(hex::encode(bye), v["goodbye_header"].as_str().unwrap());
        wire.extend_from_slice(&bye);

        // The encoder as a codec produces the same bytes.
        let mut enc = BoxEncoder::new(key, nonce);
        let mut coded = BytesMut::new();
        for p in packets {
            let plain = hex::decode(p["plaintext"].as_str().unwrap()).unwrap();
            enc.encode(BoxFrame::Body(plain.into()), &mut coded)
                .unwrap();
        }
        enc.encode(BoxFrame::Goodbye, &mut coded).unwrap();
        assert_eq!(coded, wire);

        // And the decoder reads them back.
        let mut dec = BoxDecoder::new(key, nonce);
        let mut src = wire.clone();
        for p in packets {
            let plain = hex::decode(p["plaintext"].as_str().unwrap()).unwrap();
            assert_eq!(
                dec.decode(&mut src).unwrap(),
                Some(BoxFrame::Body(plain.into()))
            );
        }
        assert_eq!(dec.decode(&mut src).unwrap(), Some(BoxFrame::Goodbye));
        assert_eq!(dec.decode_eof(&mut src).unwrap(), None);
    }

    #[tokio::test]
    async fn reader_reads_the_vectors() {
        let v = vectors();
        let key = unhex::<32>(&v["key"]);
        let nonce = unhex::<24>(&v["start_nonce"]);
        let mut wire = Vec::new();
        for p in v["packets"].as_array().unwrap() {
            wire.extend(hex::decode(p["header"].as_str().unwrap()).unwrap());
            wire.extend(hex::decode(p["body"].as_str().unwrap()).unwrap());
        }
        wire.extend(hex::decode(v["goodbye_header"].as_str().unwrap()).unwrap());
        let mut r = BoxReader::new(&wire[..], key, nonce);
        let mut plain = Vec::new();
        r.read_to_end(&mut plain).await.unwrap();
        assert_eq!(plain, [0, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1, 0]);
    }

    #[test]
    fn decoder_waits_for_whole_packets_byte_by_byte() {
        let (key, nonce) = keys();
        let mut enc = BoxEncoder::new(key, nonce);
        let mut wire = BytesMut::new();
        enc.encode(BoxFrame::Body(Bytes::from(vec![9u8; 5000])), &mut wire)
            .unwrap();
        enc.encode(BoxFrame::Goodbye, &mut wire).unwrap();
        assert_eq!(wire.len(), 2 * HEADER_LEN + 5000 + HEADER_LEN);
        let mut dec = BoxDecoder::new(key, nonce);
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        for b in wire {
            src.extend_from_slice(&[b]);
            while let Some(f) = dec.decode(&mut src).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], BoxFrame::Body(vec![9u8; 4096].into()));
        assert_eq!(got[1], BoxFrame::Body(vec![9u8; 904].into()));
        assert_eq!(got[2], BoxFrame::Goodbye);
    }

    #[tokio::test]
    async fn framed_read_over_the_decoder() {
        let (key, nonce) = keys();
        let mut enc = BoxEncoder::new(key, nonce);
        let mut wire = BytesMut::new();
        enc.encode(BoxFrame::Body(Bytes::from_static(b"one")), &mut wire)
            .unwrap();
        enc.encode(BoxFrame::Goodbye, &mut wire).unwrap();
        let mut framed = FramedRead::new(&wire[..], BoxDecoder::new(key, nonce));
        assert_eq!(
            framed.next().await.unwrap().unwrap(),
            BoxFrame::Body(Bytes::from_static(b"one"))
        );
        assert_eq!(framed.next().await.unwrap().unwrap(), BoxFrame::Goodbye);
        assert!(framed.next().await.is_none());

        // Without the goodbye: an error, not a clean end.
        let cut = &wire[..wire.len() - HEADER_LEN];
        let mut framed = FramedRead::new(cut, BoxDecoder::new(key, nonce));
        framed.next().await.unwrap().unwrap();
        assert!(matches!(
            framed.next().await,
            Some(Err(BoxStreamError::NoGoodbye))
        ));
    }

    #[tokio::test]
    async fn round_trip_large_write_through_duplex() {
        let (key, nonce) = keys();
        let (a, b) = tokio::io::duplex(1000);
        let data = random_bytes(&mut StdRng::seed_from_u64(7), 300_000);
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            let mut w = BoxWriter::new(a, key, nonce);
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut r = BoxReader::new(b, key, nonce);
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
    }

    #[tokio::test]
    async fn round_trip_many_small_writes_and_small_reads() {
        let (key, nonce) = keys();
        let (a, b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            let mut w = BoxWriter::new(a, key, nonce);
            for i in 0..2000u32 {
                w.write_all(&i.to_be_bytes()).await.unwrap();
                if i % 100 == 0 {
                    w.flush().await.unwrap();
                }
            }
            w.write_all(&[]).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut r = BoxReader::new(b, key, nonce);
        // An empty buffer reads nothing and consumes nothing.
        assert_eq!(r.read(&mut []).await.unwrap(), 0);
        let mut got = Vec::new();
        let mut small = [0u8; 3];
        loop {
            let n = r.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        writer.await.unwrap();
        let expected: Vec<u8> = (0..2000u32).flat_map(|i| i.to_be_bytes()).collect();
        assert_eq!(got, expected);
        // After the goodbye the reader keeps reporting end of stream.
        assert_eq!(r.read(&mut small).await.unwrap(), 0);
    }

    /// Seals `chunks` (and the goodbye when asked) into wire bytes.
    fn wire(chunks: &[&[u8]], goodbye: bool) -> Vec<u8> {
        let (key, nonce) = keys();
        let mut enc = BoxEncoder::new(key, nonce);
        let mut out = BytesMut::new();
        for c in chunks {
            enc.encode(BoxFrame::Body(Bytes::copy_from_slice(c)), &mut out)
                .unwrap();
        }
        if goodbye {
            enc.encode(BoxFrame::Goodbye, &mut out).unwrap();
        }
        out.to_vec()
    }

    async fn read_all(wire: &[u8]) -> (Vec<u8>, io::Result<()>) {
        let (key, nonce) = keys();
        let mut r = BoxReader::new(wire, key, nonce);
        let mut got = Vec::new();
        let res = r.read_to_end(&mut got).await.map(|_| ());
        (got, res)
    }

    /// An `AsyncRead` over bytes in memory that counts the reads asked of it.
    struct Counted<'a> {
        rest: &'a [u8],
        reads: usize,
    }

    impl AsyncRead for Counted<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.reads += 1;
            let n = out.remaining().min(self.rest.len());
            out.put_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Poll::Ready(Ok(()))
        }
    }

    /// Full packets waiting on the socket are read several at a time, and
    /// one read of the reader hands out as many as the caller has room for:
    /// a peer streaming 64 full packets once cost 64 or more reads of the
    /// socket.
    #[tokio::test]
    async fn packets_are_read_ahead_several_at_a_time() {
        let (key, nonce) = keys();
        let body = [7u8; MAX_BODY];
        let wire = wire(&[&body[..]; 64], true);
        let mut r = BoxReader::new(
            Counted {
                rest: &wire,
                reads: 0,
            },
            key,
            nonce,
        );
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4 * MAX_BODY];
        let mut calls = 0;
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            calls += 1;
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got.len(), 64 * MAX_BODY);
        assert!(got.iter().all(|&b| b == 7));
        let reads = r.get_ref().reads;
        assert!(
            reads <= 64 / (READ_AHEAD / MAX_PACKET - 1) + 2,
            "{reads} reads"
        );
        assert!(calls <= 64 / 4 + 2, "{calls} calls for 64 packets");
    }

    /// What a good packet holds is handed out before the error of a bad
    /// packet read with it, and the error then comes on the next read.
    #[tokio::test]
    async fn plaintext_before_a_bad_packet_comes_out_before_its_error() {
        let (key, nonce) = keys();
        let mut bad = wire(&[b"first", b"second"], true);
        // The second packet's body: after the first packet (34 + 5 bytes)
        // and the second's header.
        bad[HEADER_LEN + 5 + HEADER_LEN] ^= 1;
        let mut r = BoxReader::new(&bad[..], key, nonce);
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).await.unwrap(), 5);
        assert_eq!(&buf[..5], b"first");
        let e = r.read(&mut buf).await.unwrap_err();
        assert!(matches!(inner_error(&e), BoxStreamError::BadBody), "{e}");
    }

    fn inner_error(e: &io::Error) -> &BoxStreamError {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<BoxStreamError>())
            .expect("a BoxStreamError")
    }

    #[tokio::test]
    async fn goodbye_is_a_clean_end_and_missing_goodbye_is_an_error() {
        let (got, res) = read_all(&wire(&[b"abc", b"def"], true)).await;
        res.unwrap();
        assert_eq!(got, b"abcdef");

        // Only the goodbye: an empty stream.
        let (got, res) = read_all(&wire(&[], true)).await;
        res.unwrap();
        assert!(got.is_empty());

        // Whole packets, but no goodbye.
        let (got, res) = read_all(&wire(&[b"abc"], false)).await;
        let e = res.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(matches!(inner_error(&e), BoxStreamError::NoGoodbye));
        assert_eq!(got, b"abc");

        // Cut inside a header and inside a body.
        let full = wire(&[b"abc", b"defgh"], true);
        let second = HEADER_LEN + 3;
        for (cut, expected) in [
            (second + 10, HEADER_LEN),
            (second + HEADER_LEN + 2, HEADER_LEN + 5),
        ] {
            let (got, res) = read_all(&full[..cut]).await;
            let e = res.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            match inner_error(&e) {
                BoxStreamError::Truncated {
                    got,
                    expected: want,
                } => {
                    assert_eq!(*got, cut - second);
                    assert_eq!(*want, expected);
                }
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(got, b"abc");
        }
    }

    #[tokio::test]
    async fn every_tampered_byte_is_an_error() {
        let full = wire(&[b"hello", b"world"], true);
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x01;
            let (got, res) = read_all(&bad).await;
            let e = res.expect_err("tampering must be detected");
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "byte {i}");
            let want_header = i < HEADER_LEN
                || (HEADER_LEN + 5..2 * HEADER_LEN + 5).contains(&i)
                || i >= 2 * HEADER_LEN + 10;
            match inner_error(&e) {
                BoxStreamError::BadHeader => assert!(want_header, "byte {i}"),
                BoxStreamError::BadBody => assert!(!want_header, "byte {i}"),
                other => panic!("byte {i}: unexpected {other:?}"),
            }
            // Exactly the packets before the tampered one are handed out.
            let intact: &[u8] = match i {
                0..39 => b"",
                39..78 => b"hello",
                _ => b"helloworld",
            };
            assert_eq!(got, intact, "byte {i}");
        }
        // A reader that failed keeps failing.
        let mut bad = full.clone();
        bad[0] ^= 1;
        let (key, nonce) = keys();
        let mut r = BoxReader::new(&bad[..], key, nonce);
        let mut buf = [0u8; 16];
        assert!(r.read(&mut buf).await.is_err());
        assert!(r.read(&mut buf).await.is_err());
    }

    #[test]
    fn oversized_and_empty_bodies() {
        let (key, nonce) = keys();
        // A header announcing 4097 bytes, sealed with the right key.
        let mut plain = [0u8; 18];
        plain[..2].copy_from_slice(&4097u16.to_be_bytes());
        let tag = secretbox_seal_detached(&mut plain, &nonce, &key);
        let mut sealed = [0u8; HEADER_LEN];
        sealed[..16].copy_from_slice(&tag);
        sealed[16..].copy_from_slice(&plain);
        let dec = BoxDecoder::new(key, nonce);
        assert!(matches!(
            dec.open_header(&sealed),
            Err(BoxStreamError::BodyTooLong(4097))
        ));

        // An authentic empty body is skipped.
        let mut enc_nonce = nonce;
        increment(&mut enc_nonce);
        let body_tag = secretbox_seal_detached(&mut [], &enc_nonce, &key);
        let mut plain = [0u8; 18];
        plain[2..].copy_from_slice(&body_tag);
        let tag = secretbox_seal_detached(&mut plain, &nonce, &key);
        let mut src = BytesMut::new();
        src.extend_from_slice(&tag);
        src.extend_from_slice(&plain);
        let mut rest = nonce;
        increment(&mut rest);
        increment(&mut rest);
        let mut enc = BoxEncoder::new(key, rest);
        enc.encode(BoxFrame::Body(Bytes::from_static(b"x")), &mut src)
            .unwrap();
        let mut dec = BoxDecoder::new(key, nonce);
        assert_eq!(
            dec.decode(&mut src).unwrap(),
            Some(BoxFrame::Body(Bytes::from_static(b"x")))
        );

        // The encoder refuses sizes it cannot seal.
        let mut enc = BoxEncoder::new(key, nonce);
        assert!(!enc.seal_packet(&[], &mut [0u8; HEADER_LEN]));
        assert!(!enc.seal_packet(&[0; MAX_BODY + 1], &mut [0u8; MAX_PACKET + 1]));
        assert!(!enc.seal_packet(b"ab", &mut [0u8; HEADER_LEN + 3]));
    }

    #[tokio::test]
    async fn writer_refuses_writes_after_shutdown() {
        let (key, nonce) = keys();
        let mut w = BoxWriter::new(Vec::new(), key, nonce);
        w.write_all(b"hi").await.unwrap();
        w.shutdown().await.unwrap();
        assert_eq!(
            w.write(b"more").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(w.get_ref().as_slice(), wire(&[b"hi"], true).as_slice());
    }

    #[tokio::test]
    async fn random_bytes_never_panic() {
        let (key, nonce) = keys();
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for round in 0..300 {
            let len = rng.random_range(0..200);
            let mut junk = random_bytes(&mut rng, len);
            if round % 3 == 0 {
                // A valid first packet, then junk.
                let mut w = wire(&[b"ok"], false);
                w.append(&mut junk);
                junk = w;
            }
            let (_, res) = read_all(&junk).await;
            assert!(res.is_err());
            let mut dec = BoxDecoder::new(key, nonce);
            let mut src = BytesMut::from(&junk[..]);
            loop {
                match dec.decode(&mut src) {
                    Ok(Some(_)) => continue,
                    Ok(None) => {
                        assert!(dec.decode_eof(&mut src).is_err());
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
