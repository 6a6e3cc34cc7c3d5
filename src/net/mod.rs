//! The network edge: the secret handshake ([`shs`]), the box stream
//! ([`boxstream`]), TCP connections over both ([`connect`], [`accept`]),
//! multiserver addresses ([`MultiAddr`]) and which IP addresses are public
//! ([`scope`]).
//!
//! Owns: turning a socket into an authenticated, encrypted byte stream with a
//! known peer, and the text form of peer addresses. What flows over the
//! stream (muxrpc, replication) is for `rpc` and `replicate`, which build on
//! this module. It imports only `crypto`; it must not import `store`, `feed`,
//! `rpc`, `replicate` or `node`, and holds no feed-level logic.

pub mod boxstream;
pub mod scope;
pub mod shs;

use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};

pub use boxstream::{
    BoxDecoder, BoxEncoder, BoxFrame, BoxKeys, BoxReader, BoxStreamError, BoxWriter,
};
pub use shs::{HANDSHAKE_TIMEOUT, HandshakeError, Handshaked};

use crate::crypto::{FeedId, Keypair, b64_decode};

/// How long [`connect`] waits for the TCP connection itself (the handshake
/// then has [`HANDSHAKE_TIMEOUT`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The reading half of a box stream with a peer, over TCP or a tunnel.
pub type PeerReader = BoxReader<Box<dyn AsyncRead + Send + Unpin>>;
/// The writing half of a box stream with a peer, over TCP or a tunnel.
pub type PeerWriter = BoxWriter<Box<dyn AsyncWrite + Send + Unpin>>;

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The TCP connection failed.
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    /// The TCP connection did not complete in time.
    #[error("connecting timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The secret handshake failed.
    #[error("secret handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// Setting up the socket failed.
    #[error("socket error: {0}")]
    Socket(io::Error),
}

/// Splits a handshaked TCP stream into its box-stream halves.
fn box_halves(h: Handshaked<TcpStream>) -> (PeerReader, PeerWriter, FeedId) {
    let (r, w): (OwnedReadHalf, OwnedWriteHalf) = h.stream.into_split();
    (
        BoxReader::new(Box::new(r), h.keys.decrypt_key, h.keys.decrypt_nonce),
        BoxWriter::new(Box::new(w), h.keys.encrypt_key, h.keys.encrypt_nonce),
        h.peer,
    )
}

/// Runs the secret handshake over any byte stream (a tunnel through a
/// room): as the client authenticating `server`, or (`server` none) as
/// the server. Returns the box stream and the peer's id.
pub async fn handshake<S>(
    stream: S,
    net_key: &[u8; 32],
    me: &Keypair,
    server: Option<&FeedId>,
) -> Result<(PeerReader, PeerWriter, FeedId), NetError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let h = match server {
        Some(server) => shs::client(stream, net_key, me, server).await?,
        None => shs::server(stream, net_key, me).await?,
    };
    let (r, w) = tokio::io::split(h.stream);
    Ok((
        BoxReader::new(Box::new(r), h.keys.decrypt_key, h.keys.decrypt_nonce),
        BoxWriter::new(Box::new(w), h.keys.encrypt_key, h.keys.encrypt_nonce),
        h.peer,
    ))
}

/// Dials `addr` over TCP (with `TCP_NODELAY`, within [`CONNECT_TIMEOUT`]) and
/// runs the client handshake authenticating `server` (within
/// [`HANDSHAKE_TIMEOUT`]). Returns the box stream and the peer's id.
pub async fn connect(
    addr: impl ToSocketAddrs,
    net_key: &[u8; 32],
    me: &Keypair,
    server: &FeedId,
) -> Result<(PeerReader, PeerWriter, FeedId), NetError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| NetError::ConnectTimeout(CONNECT_TIMEOUT))?
        .map_err(NetError::Connect)?;
    stream.set_nodelay(true).map_err(NetError::Socket)?;
    let h = shs::client(stream, net_key, me, server).await?;
    Ok(box_halves(h))
}

/// Dials a multiserver address (see [`connect`]).
pub async fn connect_to(
    addr: &MultiAddr,
    net_key: &[u8; 32],
    me: &Keypair,
) -> Result<(PeerReader, PeerWriter, FeedId), NetError> {
    connect((addr.host.as_str(), addr.port), net_key, me, &addr.key).await
}

/// Runs the server handshake on an accepted TCP stream (with `TCP_NODELAY`,
/// within [`HANDSHAKE_TIMEOUT`]). Any client on the network key gets
/// through; whom to serve is the caller's decision, made on the returned id.
pub async fn accept(
    stream: TcpStream,
    net_key: &[u8; 32],
    me: &Keypair,
) -> Result<(PeerReader, PeerWriter, FeedId), NetError> {
    stream.set_nodelay(true).map_err(NetError::Socket)?;
    let h = shs::server(stream, net_key, me).await?;
    Ok(box_halves(h))
}

/// A multiserver address of a TCP peer speaking the secret handshake:
/// `net:HOST:PORT~shs:BASE64KEY`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultiAddr {
    /// Host name or IP address (IPv6 without brackets, as multiserver writes it).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The peer's long-term key.
    pub key: FeedId,
}

/// Why a multiserver address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// None of the `;`-separated alternatives is a `net:` address.
    #[error("no `net:` address")]
    NoNetAddress,
    /// The `net:` part has no `:PORT`.
    #[error("`net:` address without a port")]
    MissingPort,
    /// The host is empty.
    #[error("`net:` address without a host")]
    EmptyHost,
    /// The port is not a number in 1..=65535.
    #[error("bad port {0:?}")]
    BadPort(String),
    /// There is no `~shs:KEY` transform, or something other than exactly one.
    #[error("expected exactly one `~shs:KEY` after the `net:` address")]
    MissingShs,
    /// The key is not canonical base64 of 32 bytes.
    #[error("bad shs key {0:?}")]
    BadKey(String),
}

impl FromStr for MultiAddr {
    type Err = AddrError;

    /// Parses the first `net:` alternative of a multiserver address; other
    /// alternatives (`ws:`, `onion:`, …) are ignored.
    fn from_str(s: &str) -> Result<MultiAddr, AddrError> {
        let alt = s
            .split(';')
            .map(str::trim)
            .find(|a| a.starts_with("net:"))
            .ok_or(AddrError::NoNetAddress)?;
        let mut parts = alt.split('~');
        let net = parts.next().unwrap_or_default();
        let shs = parts.next().ok_or(AddrError::MissingShs)?;
        if parts.next().is_some() {
            return Err(AddrError::MissingShs);
        }
        let net = net.strip_prefix("net:").ok_or(AddrError::NoNetAddress)?;
        let (host, port) = net.rsplit_once(':').ok_or(AddrError::MissingPort)?;
        if host.is_empty() {
            return Err(AddrError::EmptyHost);
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(AddrError::BadPort(port.to_string())),
        };
        let key = shs.strip_prefix("shs:").ok_or(AddrError::MissingShs)?;
        let bytes: [u8; 32] = b64_decode(key)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AddrError::BadKey(key.to_string()))?;
        Ok(MultiAddr {
            host: host.to_string(),
            port,
            key: FeedId(bytes),
        })
    }
}

impl fmt::Display for MultiAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net:{}:{}~shs:{}", self.host, self.port, self.key.b64())
    }
}

/// The shared vectors directory: `SHOAL_VECTORS` (relative to the crate root
/// when relative), else `../shared/vectors`. Panics, failing the test, when
/// it does not exist: a conformance test must never skip.
#[cfg(test)]
pub(crate) fn test_vectors_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("SHOAL_VECTORS") {
        Some(d) => root.join(d),
        None => root.join("../shared/vectors"),
    };
    assert!(
        dir.join("README.md").is_file(),
        "test vectors not found at {} (set SHOAL_VECTORS)",
        dir.display()
    );
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    const KEY: &str = "FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=";

    #[test]
    fn multiaddr_parses_and_prints() {
        let s = format!("net:192.168.1.10:8008~shs:{KEY}");
        let a: MultiAddr = s.parse().unwrap();
        assert_eq!(a.host, "192.168.1.10");
        assert_eq!(a.port, 8008);
        assert_eq!(a.key.b64(), KEY);
        assert_eq!(a.to_string(), s);

        // IPv6 and host names.
        let a: MultiAddr = format!("net:fe80::1:8008~shs:{KEY}").parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("fe80::1", 8008));
        let a: MultiAddr = format!("net:pub.example.com:8009~shs:{KEY}")
            .parse()
            .unwrap();
        assert_eq!(a.host, "pub.example.com");
    }

    #[test]
    fn multiaddr_takes_the_first_net_alternative() {
        let s =
            format!("ws://host:80~shs:{KEY};net:a.example:1~shs:{KEY};net:b.example:2~shs:{KEY}");
        let a: MultiAddr = s.parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("a.example", 1));
        assert_eq!(a.to_string(), format!("net:a.example:1~shs:{KEY}"));
    }

    #[test]
    fn multiaddr_refusals() {
        let bad = |s: String| s.parse::<MultiAddr>().unwrap_err();
        assert_eq!(bad(format!("ws://h:1~shs:{KEY}")), AddrError::NoNetAddress);
        assert_eq!(bad(String::new()), AddrError::NoNetAddress);
        assert_eq!(bad(format!("net:host~shs:{KEY}")), AddrError::MissingPort);
        assert_eq!(bad(format!("net::8008~shs:{KEY}")), AddrError::EmptyHost);
        assert_eq!(
            bad(format!("net:h:80x~shs:{KEY}")),
            AddrError::BadPort("80x".into())
        );
        assert_eq!(
            bad(format!("net:h:+80~shs:{KEY}")),
            AddrError::BadPort("+80".into())
        );
        assert_eq!(
            bad(format!("net:h:0~shs:{KEY}")),
            AddrError::BadPort("0".into())
        );
        assert_eq!(
            bad(format!("net:h:70000~shs:{KEY}")),
            AddrError::BadPort("70000".into())
        );
        assert_eq!(bad("net:h:1".to_string()), AddrError::MissingShs);
        assert_eq!(bad(format!("net:h:1~noauth:{KEY}")), AddrError::MissingShs);
        assert_eq!(bad(format!("net:h:1~shs:{KEY}~x")), AddrError::MissingShs);
        // With sigil and suffix, short, non-canonical.
        for k in [
            format!("@{KEY}"),
            "AAAA".to_string(),
            KEY.replace("WY=", "WZ="),
        ] {
            assert_eq!(bad(format!("net:h:1~shs:{k}")), AddrError::BadKey(k));
        }
    }

    #[tokio::test]
    async fn connect_and_accept_over_tcp() {
        let net = [5u8; 32];
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let addr = MultiAddr {
            host: "127.0.0.1".into(),
            port,
            key: bob.id(),
        };
        let serve = async {
            let (stream, _) = listener.accept().await.unwrap();
            let (mut r, mut w, peer) = accept(stream, &net, &bob).await.unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            w.write_all(&got).await.unwrap();
            w.shutdown().await.unwrap();
            peer
        };
        let dial = async {
            let (mut r, mut w, peer) = connect_to(&addr, &net, &alice).await.unwrap();
            w.write_all(&vec![3u8; 10_000]).await.unwrap();
            w.shutdown().await.unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            (peer, got)
        };
        let (client_seen, (server_seen, echoed)) = tokio::join!(serve, dial);
        assert_eq!(client_seen, alice.id());
        assert_eq!(server_seen, bob.id());
        assert_eq!(echoed, vec![3u8; 10_000]);
    }

    #[tokio::test]
    async fn connect_reports_handshake_failure() {
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serve = async {
            let (stream, _) = listener.accept().await.unwrap();
            accept(stream, &[1; 32], &bob).await.unwrap_err()
        };
        let bob_id = bob.id();
        let dial = connect(addr, &[2; 32], &alice, &bob_id);
        let (server_err, client_err) = tokio::join!(serve, dial);
        assert!(matches!(
            server_err,
            NetError::Handshake(HandshakeError::WrongNetworkKey { .. })
        ));
        assert!(matches!(
            client_err.unwrap_err(),
            NetError::Handshake(HandshakeError::Truncated { .. } | HandshakeError::Io(_))
        ));
    }
}
