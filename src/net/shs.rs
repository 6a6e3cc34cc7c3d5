//! The secret handshake (SHS): mutual authentication of two long-term ed25519
//! identities on one network key, yielding the box-stream keys
//! (PROTOCOL.md, "Secret handshake (SHS) and box stream").
//!
//! ```text
//! client                                   server
//! msg1 hello   hmac(N, a) || a        ->                     (64 bytes)
//!                                     <-  hmac(N, b) || b    msg2 hello (64)
//! msg3 auth    box(sig_A || A)        ->                     (112)
//!                                     <-  box(sig_B)         msg4 accept (80)
//! ```
//!
//! Shared secrets, named as in the protocol guide (lower case: ephemeral,
//! upper case: long-term, converted to curve25519): `ab` = a·b, `aB` = a·B
//! (`a_b` in the code), `Ab` = A·b (`big_a_b`).
//!
//! The core is a pure state machine, one type per state, each step consuming
//! the state and the peer's message and returning the next state and our
//! reply: [`ClientStart`] -> [`ClientWaitAccept`] -> [`Outcome`] and
//! [`ServerStart`] -> [`ServerWaitAuth`] -> [`Outcome`]. Ephemeral keys are
//! injected, so the published transcripts replay byte for byte. [`client`]
//! and [`server`] drive it over any `AsyncRead + AsyncWrite`, within
//! [`HANDSHAKE_TIMEOUT`]; they read exactly the handshake's bytes, so the
//! stream they hand back holds nothing of the handshake and loses nothing
//! of what follows.
//!
//! Owns: the handshake and its errors. Imports `crypto` and the sibling
//! `boxstream` (for the keys it produces); never the store, feeds, rpc or
//! replication.

use std::fmt;
use std::time::Duration;

use tokio::io::{
    AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadHalf, WriteHalf,
};
use zeroize::Zeroize as _;

use super::boxstream::{BoxKeys, BoxReader, BoxWriter};
use crate::crypto::{
    CurveKeypair, FeedId, Keypair, SigBytes, VerifyKey, ed25519_pk_to_curve25519,
    ed25519_sk_to_curve25519, hmac_sha512_256, hmac_sha512_256_verify, scalarmult, secretbox_open,
    secretbox_seal, sha256, verify,
};

/// Bytes in msg1, the client hello.
pub const CLIENT_HELLO_LEN: usize = 64;
/// Bytes in msg2, the server hello.
pub const SERVER_HELLO_LEN: usize = 64;
/// Bytes in msg3, the client's authentication.
pub const CLIENT_AUTH_LEN: usize = 112;
/// Bytes in msg4, the server's acceptance.
pub const SERVER_ACCEPT_LEN: usize = 80;

/// How long [`client`] and [`server`] wait for the whole handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The messages of the handshake, to say where it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// msg1: the client's hello.
    ClientHello,
    /// msg2: the server's hello.
    ServerHello,
    /// msg3: the client's signature and identity.
    ClientAuth,
    /// msg4: the server's signature.
    ServerAccept,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::ClientHello => "msg1 (client hello)",
            Step::ServerHello => "msg2 (server hello)",
            Step::ClientAuth => "msg3 (client authentication)",
            Step::ServerAccept => "msg4 (server acceptance)",
        })
    }
}

/// Whose key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The server's long-term (ed25519) key.
    ServerLongTerm,
    /// The client's long-term (ed25519) key.
    ClientLongTerm,
    /// The peer's ephemeral (curve25519) key.
    PeerEphemeral,
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::ServerLongTerm => "server long-term",
            KeyRole::ClientLongTerm => "client long-term",
            KeyRole::PeerEphemeral => "peer ephemeral",
        })
    }
}

/// Why a secret handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A hello's HMAC does not match our network key: the peer is on another
    /// network, or sent garbage.
    #[error("{step}: wrong network key (the peer is on another network or sent garbage)")]
    WrongNetworkKey {
        /// The hello that failed.
        step: Step,
    },
    /// msg3 or msg4 does not open, or its signature does not verify: the peer
    /// does not hold the key it claims, or (msg3) the client dialled another
    /// server key than ours.
    #[error("{step} does not authenticate")]
    BadAuth {
        /// The message that failed.
        step: Step,
    },
    /// A key cannot be used: not a valid ed25519 point, no curve25519
    /// counterpart, or a curve25519 point of small order.
    #[error("invalid {0} key")]
    InvalidKey(KeyRole),
    /// The stream ended inside the handshake. A server that refuses our
    /// msg3 (we dialled the wrong key, or it does not let us in) closes the
    /// connection, which shows here as `got: 0` at msg4.
    #[error("connection closed during {step} after {got} of {expected} bytes")]
    Truncated {
        /// The message being read.
        step: Step,
        /// Bytes of it received.
        got: usize,
        /// Its full length.
        expected: usize,
    },
    /// The whole handshake took longer than the limit.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// Reading or writing the stream failed.
    #[error("I/O error during the handshake: {0}")]
    Io(#[from] std::io::Error),
}

/// What a successful handshake establishes.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The peer's long-term identity, now authenticated.
    pub peer: FeedId,
    /// Keys and nonces of both directions of the box stream.
    pub keys: BoxKeys,
}

/// 32 secret bytes, wiped on drop.
struct Secret([u8; 32]);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `hmac(N, eph_pk) || eph_pk`.
fn hello(net_key: &[u8; 32], eph_pk: &[u8; 32]) -> [u8; 64] {
    let mut m = [0u8; 64];
    m[..32].copy_from_slice(&hmac_sha512_256(net_key, eph_pk));
    m[32..].copy_from_slice(eph_pk);
    m
}

/// Checks a hello and returns `(its hmac, its ephemeral key)`.
fn check_hello(
    net_key: &[u8; 32],
    msg: &[u8; 64],
    step: Step,
) -> Result<([u8; 32], [u8; 32]), HandshakeError> {
    let (mac, pk) = split_32_32(msg);
    if !hmac_sha512_256_verify(net_key, &pk, &mac) {
        return Err(HandshakeError::WrongNetworkKey { step });
    }
    Ok((mac, pk))
}

fn split_32_32(msg: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&msg[..32]);
    b.copy_from_slice(&msg[32..]);
    (a, b)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The first 24 bytes of a hello's hmac: that side's box-stream nonce.
fn nonce_of(mac: &[u8; 32]) -> [u8; 24] {
    let mut n = [0u8; 24];
    n.copy_from_slice(&mac[..24]);
    n
}

/// What both sides share once msg3 is known.
struct Shared {
    /// sha256(N || ab || aB || Ab): the key of msg4, and the root of the
    /// box-stream keys.
    accept_key: Secret,
    /// sha256(ab), signed by both sides.
    hash_ab: [u8; 32],
}

impl Shared {
    /// The key of msg3, sha256(N || ab || aB), and sha256(ab).
    fn auth_key(net_key: &[u8; 32], ab: &Secret, a_b: &Secret) -> (Secret, [u8; 32]) {
        let mut m = concat(&[net_key, &ab.0, &a_b.0]);
        let key = Secret(sha256(&m));
        m.zeroize();
        (key, sha256(&ab.0))
    }

    fn accept_key(net_key: &[u8; 32], ab: &Secret, a_b: &Secret, big_a_b: &Secret) -> Secret {
        let mut m = concat(&[net_key, &ab.0, &a_b.0, &big_a_b.0]);
        let key = Secret(sha256(&m));
        m.zeroize();
        key
    }

    /// The box-stream keys: sha256(sha256(accept_key) || receiver's long-term key).
    fn box_keys(
        &self,
        their_pk: &FeedId,
        their_mac: &[u8; 32],
        our_pk: &FeedId,
        our_mac: &[u8; 32],
    ) -> BoxKeys {
        let base = Secret(sha256(&self.accept_key.0));
        let key_for = |pk: &FeedId| {
            let mut m = concat(&[&base.0, &pk.0]);
            let k = sha256(&m);
            m.zeroize();
            k
        };
        BoxKeys {
            encrypt_key: key_for(their_pk),
            encrypt_nonce: nonce_of(their_mac),
            decrypt_key: key_for(our_pk),
            decrypt_nonce: nonce_of(our_mac),
        }
    }
}

/// The client before the handshake: it knows the server's long-term key.
pub struct ClientStart<'a> {
    net_key: [u8; 32],
    me: &'a Keypair,
    server: FeedId,
    server_verify: VerifyKey,
    server_curve: [u8; 32],
    eph: CurveKeypair,
}

impl<'a> ClientStart<'a> {
    /// Prepares to dial `server` with ephemeral key pair `eph` (random in
    /// real use, fixed for test vectors). Fails when `server` is not a usable
    /// ed25519 key.
    pub fn new(
        net_key: &[u8; 32],
        me: &'a Keypair,
        server: &FeedId,
        eph: CurveKeypair,
    ) -> Result<ClientStart<'a>, HandshakeError> {
        let invalid = HandshakeError::InvalidKey(KeyRole::ServerLongTerm);
        let server_verify = VerifyKey::new(server).ok_or(invalid)?;
        let server_curve = ed25519_pk_to_curve25519(server)
            .map_err(|_| HandshakeError::InvalidKey(KeyRole::ServerLongTerm))?;
        Ok(ClientStart {
            net_key: *net_key,
            me,
            server: *server,
            server_verify,
            server_curve,
            eph,
        })
    }

    /// msg1.
    pub fn hello(&self) -> [u8; CLIENT_HELLO_LEN] {
        hello(&self.net_key, &self.eph.public)
    }

    /// Checks msg2 and answers with msg3.
    pub fn read_server_hello(
        self,
        msg2: &[u8; SERVER_HELLO_LEN],
    ) -> Result<(ClientWaitAccept, [u8; CLIENT_AUTH_LEN]), HandshakeError> {
        let (server_mac, server_eph) = check_hello(&self.net_key, msg2, Step::ServerHello)?;
        let ephemeral = |_| HandshakeError::InvalidKey(KeyRole::PeerEphemeral);
        let ab = Secret(scalarmult(&self.eph.secret, &server_eph).map_err(ephemeral)?);
        let a_b = Secret(
            scalarmult(&self.eph.secret, &self.server_curve)
                .map_err(|_| HandshakeError::InvalidKey(KeyRole::ServerLongTerm))?,
        );
        let big_a_b =
            Secret(scalarmult(&ed25519_sk_to_curve25519(self.me), &server_eph).map_err(ephemeral)?);
        let (auth_key, hash_ab) = Shared::auth_key(&self.net_key, &ab, &a_b);
        let accept_key = Shared::accept_key(&self.net_key, &ab, &a_b, &big_a_b);

        let me_pk = self.me.id();
        let sig_a = self
            .me
            .sign(&concat(&[&self.net_key, &self.server.0, &hash_ab]));
        let mut plain = [0u8; 96];
        plain[..64].copy_from_slice(&sig_a);
        plain[64..].copy_from_slice(&me_pk.0);
        let sealed = secretbox_seal(&plain, &[0; 24], &auth_key.0);
        let mut msg3 = [0u8; CLIENT_AUTH_LEN];
        msg3.copy_from_slice(&sealed);

        let next = ClientWaitAccept {
            net_key: self.net_key,
            me_pk,
            my_mac: hmac_sha512_256(&self.net_key, &self.eph.public),
            server: self.server,
            server_verify: self.server_verify,
            server_mac,
            sig_a,
            shared: Shared {
                accept_key,
                hash_ab,
            },
        };
        Ok((next, msg3))
    }
}

/// The client after sending msg3, waiting for msg4.
pub struct ClientWaitAccept {
    net_key: [u8; 32],
    me_pk: FeedId,
    my_mac: [u8; 32],
    server: FeedId,
    server_verify: VerifyKey,
    server_mac: [u8; 32],
    sig_a: SigBytes,
    shared: Shared,
}

impl ClientWaitAccept {
    /// Checks msg4: the server proved it holds its key and saw our msg3.
    pub fn read_server_accept(
        self,
        msg4: &[u8; SERVER_ACCEPT_LEN],
    ) -> Result<Outcome, HandshakeError> {
        let bad = || HandshakeError::BadAuth {
            step: Step::ServerAccept,
        };
        let plain = secretbox_open(msg4, &[0; 24], &self.shared.accept_key.0).map_err(|_| bad())?;
        let sig_b: SigBytes = plain.as_slice().try_into().map_err(|_| bad())?;
        let signed = concat(&[
            &self.net_key,
            &self.sig_a,
            &self.me_pk.0,
            &self.shared.hash_ab,
        ]);
        if !verify(&self.server_verify, &signed, &sig_b) {
            return Err(bad());
        }
        Ok(Outcome {
            peer: self.server,
            keys: self
                .shared
                .box_keys(&self.server, &self.server_mac, &self.me_pk, &self.my_mac),
        })
    }
}

/// The server before the handshake: it accepts any client on its network
/// key (deciding whom to serve is the caller's business, after the handshake).
pub struct ServerStart<'a> {
    net_key: [u8; 32],
    me: &'a Keypair,
    eph: CurveKeypair,
}

impl<'a> ServerStart<'a> {
    /// Prepares to answer a client with ephemeral key pair `eph`.
    pub fn new(net_key: &[u8; 32], me: &'a Keypair, eph: CurveKeypair) -> ServerStart<'a> {
        ServerStart {
            net_key: *net_key,
            me,
            eph,
        }
    }

    /// Checks msg1 and answers with msg2.
    pub fn read_client_hello(
        self,
        msg1: &[u8; CLIENT_HELLO_LEN],
    ) -> Result<(ServerWaitAuth<'a>, [u8; SERVER_HELLO_LEN]), HandshakeError> {
        let (client_mac, client_eph) = check_hello(&self.net_key, msg1, Step::ClientHello)?;
        let ephemeral = |_| HandshakeError::InvalidKey(KeyRole::PeerEphemeral);
        let ab = Secret(scalarmult(&self.eph.secret, &client_eph).map_err(ephemeral)?);
        let a_b =
            Secret(scalarmult(&ed25519_sk_to_curve25519(self.me), &client_eph).map_err(ephemeral)?);
        let msg2 = hello(&self.net_key, &self.eph.public);
        let mut my_mac = [0u8; 32];
        my_mac.copy_from_slice(&msg2[..32]);
        Ok((
            ServerWaitAuth {
                net_key: self.net_key,
                me: self.me,
                eph: self.eph,
                my_mac,
                client_mac,
                ab,
                a_b,
            },
            msg2,
        ))
    }
}

/// The server after sending msg2, waiting for msg3.
pub struct ServerWaitAuth<'a> {
    net_key: [u8; 32],
    me: &'a Keypair,
    eph: CurveKeypair,
    my_mac: [u8; 32],
    client_mac: [u8; 32],
    ab: Secret,
    a_b: Secret,
}

impl ServerWaitAuth<'_> {
    /// Checks msg3 (the client knows our key and holds the key it claims)
    /// and answers with msg4.
    pub fn read_client_auth(
        self,
        msg3: &[u8; CLIENT_AUTH_LEN],
    ) -> Result<(Outcome, [u8; SERVER_ACCEPT_LEN]), HandshakeError> {
        let bad = || HandshakeError::BadAuth {
            step: Step::ClientAuth,
        };
        let (auth_key, hash_ab) = Shared::auth_key(&self.net_key, &self.ab, &self.a_b);
        let plain = secretbox_open(msg3, &[0; 24], &auth_key.0).map_err(|_| bad())?;
        if plain.len() != 96 {
            return Err(bad());
        }
        let mut sig_a: SigBytes = [0u8; 64];
        sig_a.copy_from_slice(&plain[..64]);
        let mut client = FeedId([0u8; 32]);
        client.0.copy_from_slice(&plain[64..]);

        let invalid = || HandshakeError::InvalidKey(KeyRole::ClientLongTerm);
        let client_verify = VerifyKey::new(&client).ok_or_else(invalid)?;
        let me_pk = self.me.id();
        if !verify(
            &client_verify,
            &concat(&[&self.net_key, &me_pk.0, &hash_ab]),
            &sig_a,
        ) {
            return Err(bad());
        }
        let client_curve = ed25519_pk_to_curve25519(&client).map_err(|_| invalid())?;
        let big_a_b = Secret(scalarmult(&self.eph.secret, &client_curve).map_err(|_| invalid())?);
        let accept_key = Shared::accept_key(&self.net_key, &self.ab, &self.a_b, &big_a_b);

        let sig_b = self
            .me
            .sign(&concat(&[&self.net_key, &sig_a, &client.0, &hash_ab]));
        let sealed = secretbox_seal(&sig_b, &[0; 24], &accept_key.0);
        let mut msg4 = [0u8; SERVER_ACCEPT_LEN];
        msg4.copy_from_slice(&sealed);

        let shared = Shared {
            accept_key,
            hash_ab,
        };
        let keys = shared.box_keys(&client, &self.client_mac, &me_pk, &self.my_mac);
        Ok((Outcome { peer: client, keys }, msg4))
    }
}

/// A stream after a successful handshake, before the box stream starts.
pub struct Handshaked<S> {
    /// The stream, positioned just after the handshake.
    pub stream: S,
    /// The peer's authenticated long-term identity.
    pub peer: FeedId,
    /// The box-stream keys of both directions.
    pub keys: BoxKeys,
}

impl<S: AsyncRead + AsyncWrite> Handshaked<S> {
    /// Splits the stream into the two halves of the box stream. (For a
    /// `TcpStream`, `TcpStream::into_split` with [`BoxReader::new`] and
    /// [`BoxWriter::new`] avoids the lock of `tokio::io::split`.)
    pub fn into_box_stream(self) -> (BoxReader<ReadHalf<S>>, BoxWriter<WriteHalf<S>>) {
        let (r, w) = tokio::io::split(self.stream);
        (
            BoxReader::new(r, self.keys.decrypt_key, self.keys.decrypt_nonce),
            BoxWriter::new(w, self.keys.encrypt_key, self.keys.encrypt_nonce),
        )
    }
}

impl<S> fmt::Debug for Handshaked<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshaked")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Reads exactly `N` bytes, reporting how far it got when the stream ends.
async fn read_msg<const N: usize, S: AsyncRead + Unpin>(
    stream: &mut S,
    step: Step,
) -> Result<[u8; N], HandshakeError> {
    let mut buf = [0u8; N];
    let mut got = 0;
    while got < N {
        let n = stream.read(&mut buf[got..]).await?;
        if n == 0 {
            return Err(HandshakeError::Truncated {
                step,
                got,
                expected: N,
            });
        }
        got += n;
    }
    Ok(buf)
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, msg: &[u8]) -> Result<(), HandshakeError> {
    stream.write_all(msg).await?;
    stream.flush().await?;
    Ok(())
}

async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, HandshakeError>>,
) -> Result<T, HandshakeError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| HandshakeError::Timeout(limit))?
}

/// Runs the client side from a prepared state (see [`client`]).
pub async fn run_client<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    start: ClientStart<'_>,
    limit: Duration,
) -> Result<Handshaked<S>, HandshakeError> {
    let outcome = within(limit, async {
        send(&mut stream, &start.hello()).await?;
        let msg2 = read_msg::<SERVER_HELLO_LEN, _>(&mut stream, Step::ServerHello).await?;
        let (wait, msg3) = start.read_server_hello(&msg2)?;
        send(&mut stream, &msg3).await?;
        let msg4 = read_msg::<SERVER_ACCEPT_LEN, _>(&mut stream, Step::ServerAccept).await?;
        wait.read_server_accept(&msg4)
    })
    .await?;
    Ok(Handshaked {
        stream,
        peer: outcome.peer,
        keys: outcome.keys,
    })
}

/// Runs the server side from a prepared state (see [`server`]).
pub async fn run_server<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    start: ServerStart<'_>,
    limit: Duration,
) -> Result<Handshaked<S>, HandshakeError> {
    let outcome = within(limit, async {
        let msg1 = read_msg::<CLIENT_HELLO_LEN, _>(&mut stream, Step::ClientHello).await?;
        let (wait, msg2) = start.read_client_hello(&msg1)?;
        send(&mut stream, &msg2).await?;
        let msg3 = read_msg::<CLIENT_AUTH_LEN, _>(&mut stream, Step::ClientAuth).await?;
        let (outcome, msg4) = wait.read_client_auth(&msg3)?;
        send(&mut stream, &msg4).await?;
        Ok(outcome)
    })
    .await?;
    Ok(Handshaked {
        stream,
        peer: outcome.peer,
        keys: outcome.keys,
    })
}

/// Dials: runs the client side of the handshake on `stream` with a fresh
/// ephemeral key, authenticating `server`, within [`HANDSHAKE_TIMEOUT`]. On
/// error the stream is dropped (closed).
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    net_key: &[u8; 32],
    me: &Keypair,
    server: &FeedId,
) -> Result<Handshaked<S>, HandshakeError> {
    let start = ClientStart::new(net_key, me, server, CurveKeypair::generate())?;
    run_client(stream, start, HANDSHAKE_TIMEOUT).await
}

/// Answers: runs the server side of the handshake on `stream` with a fresh
/// ephemeral key, within [`HANDSHAKE_TIMEOUT`]. On error the stream is
/// dropped (closed).
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    net_key: &[u8; 32],
    me: &Keypair,
) -> Result<Handshaked<S>, HandshakeError> {
    let start = ServerStart::new(net_key, me, CurveKeypair::generate());
    run_server(stream, start, HANDSHAKE_TIMEOUT).await
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::rngs::StdRng;
    use rand::{RngExt as _, SeedableRng as _};
    use serde_json::Value;

    fn vectors() -> Value {
        let path = crate::net::test_vectors_dir().join("shs/handshakes.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("vector JSON")
    }

    fn unhex<const N: usize>(v: &Value) -> [u8; N] {
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("not a hex string: {v}"));
        hex::decode(s)
            .expect("hex")
            .try_into()
            .unwrap_or_else(|_| panic!("not {N} bytes: {s}"))
    }

    fn keypair(sk: &Value, pk: &Value) -> Keypair {
        let kp = Keypair::from_keypair_bytes(&unhex::<64>(sk)).expect("valid secret key");
        assert_eq!(kp.id().0, unhex::<32>(pk));
        kp
    }

    fn eph(sk: &Value, pk: &Value) -> CurveKeypair {
        let kp = CurveKeypair::from_secret(unhex::<32>(sk));
        assert_eq!(kp.public, unhex::<32>(pk));
        kp
    }

    fn expect_keys(keys: &BoxKeys, want: &Value) {
        assert_eq!(keys.encrypt_key, unhex::<32>(&want["encryption_key"]));
        assert_eq!(keys.encrypt_nonce, unhex::<24>(&want["encryption_nonce"]));
        assert_eq!(keys.decrypt_key, unhex::<32>(&want["decryption_key"]));
        assert_eq!(keys.decrypt_nonce, unhex::<24>(&want["decryption_nonce"]));
    }

    #[test]
    fn reproduces_all_transcripts() {
        let v = vectors();
        let cases = v["handshakes"].as_array().expect("handshakes");
        assert_eq!(cases.len(), 6);
        for h in cases {
            let net = unhex::<32>(&h["network_identifier"]);
            let alice = keypair(&h["client_longterm_sk"], &h["client_longterm_pk"]);
            let bob = keypair(&h["server_longterm_sk"], &h["server_longterm_pk"]);
            let client = ClientStart::new(
                &net,
                &alice,
                &bob.id(),
                eph(&h["client_ephemeral_sk"], &h["client_ephemeral_pk"]),
            )
            .unwrap();
            let server = ServerStart::new(
                &net,
                &bob,
                eph(&h["server_ephemeral_sk"], &h["server_ephemeral_pk"]),
            );

            let msg1 = client.hello();
            assert_eq!(msg1, unhex::<64>(&h["msg1_client_hello"]));
            let (server, msg2) = server.read_client_hello(&msg1).unwrap();
            assert_eq!(msg2, unhex::<64>(&h["msg2_server_hello"]));
            let (client, msg3) = client.read_server_hello(&msg2).unwrap();
            assert_eq!(msg3, unhex::<112>(&h["msg3_client_auth"]));
            let (at_server, msg4) = server.read_client_auth(&msg3).unwrap();
            assert_eq!(msg4, unhex::<80>(&h["msg4_server_accept"]));
            let at_client = client.read_server_accept(&msg4).unwrap();

            assert_eq!(at_server.peer, alice.id());
            assert_eq!(at_client.peer, bob.id());
            expect_keys(&at_client.keys, &h["client_outcome"]);
            expect_keys(&at_server.keys, &h["server_outcome"]);
        }
    }

    #[test]
    fn refuses_all_bad_packets() {
        let v = vectors();
        let cases = v["rejections"].as_array().expect("rejections");
        assert_eq!(cases.len(), 7);
        for r in cases {
            assert_eq!(r["expected"], "reject");
            let net = unhex::<32>(&r["verifier_network_identifier"]);
            let local = &r["verifier_local"];
            let me = keypair(&local["secretKey"], &local["publicKey"]);
            let my_eph = eph(&local["kx_sk"], &local["kx_pk"]);
            let remote = &r["verifier_remote_known"];
            let step = r["step"].as_str().unwrap();
            let err = match step {
                // A hello checked by the client, who knows the server's key.
                "verifyChallenge" | "clientVerifyChallenge"
                    if remote.get("publicKey").is_some() =>
                {
                    let server = FeedId(unhex::<32>(&remote["publicKey"]));
                    let c = ClientStart::new(&net, &me, &server, my_eph).unwrap();
                    c.read_server_hello(&unhex::<64>(&r["packet"])).err()
                }
                // A hello checked by the server.
                "verifyChallenge" => ServerStart::new(&net, &me, my_eph)
                    .read_client_hello(&unhex::<64>(&r["packet"]))
                    .err(),
                // msg3, checked by a server that has seen the client's hello.
                "serverVerifyAuth" => {
                    let client_eph = unhex::<32>(&remote["kx_pk"]);
                    let msg1 = hello(&net, &client_eph);
                    assert_eq!(msg1[..32], unhex::<32>(&remote["app_mac"]));
                    let (wait, _) = ServerStart::new(&net, &me, my_eph)
                        .read_client_hello(&msg1)
                        .unwrap();
                    wait.read_client_auth(&unhex::<112>(&r["packet"])).err()
                }
                other => panic!("unknown step {other}"),
            };
            match (step, err) {
                (
                    "serverVerifyAuth",
                    Some(HandshakeError::BadAuth {
                        step: Step::ClientAuth,
                    }),
                ) => {}
                (
                    "verifyChallenge" | "clientVerifyChallenge",
                    Some(HandshakeError::WrongNetworkKey { .. }),
                ) => {}
                (step, other) => panic!("{step}: expected a refusal, got {other:?}"),
            }
        }
    }

    fn net_key(b: u8) -> [u8; 32] {
        [b; 32]
    }

    #[tokio::test]
    async fn round_trip_over_duplex_then_box_stream() {
        let alice = Keypair::generate();
        let bob = Keypair::generate();
        let (a, b) = tokio::io::duplex(256);
        let net = net_key(1);
        let bob_id = bob.id();
        let (c, s) = tokio::join!(client(a, &net, &alice, &bob_id), server(b, &net, &bob));
        let (c, s) = (c.unwrap(), s.unwrap());
        assert_eq!(c.peer, bob.id());
        assert_eq!(s.peer, alice.id());
        assert_eq!(c.keys.encrypt_key, s.keys.decrypt_key);
        assert_eq!(c.keys.encrypt_nonce, s.keys.decrypt_nonce);
        assert_eq!(c.keys.decrypt_key, s.keys.encrypt_key);
        assert_eq!(c.keys.decrypt_nonce, s.keys.encrypt_nonce);
        assert_ne!(c.keys.encrypt_key, c.keys.decrypt_key);

        let (mut cr, mut cw) = c.into_box_stream();
        let (mut sr, mut sw) = s.into_box_stream();
        let talk = async {
            cw.write_all(b"ping").await.unwrap();
            cw.shutdown().await.unwrap();
            let mut got = Vec::new();
            cr.read_to_end(&mut got).await.unwrap();
            got
        };
        let answer = async {
            let mut got = Vec::new();
            sr.read_to_end(&mut got).await.unwrap();
            sw.write_all(&[got.as_slice(), b" pong"].concat())
                .await
                .unwrap();
            sw.shutdown().await.unwrap();
        };
        let (got, ()) = tokio::join!(talk, answer);
        assert_eq!(got, b"ping pong");
    }

    #[tokio::test]
    async fn wrong_network_key() {
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]);
        let (a, b) = tokio::io::duplex(256);
        let bob_id = bob.id();
        let (one, two) = (net_key(1), net_key(2));
        let (c, s) = tokio::join!(client(a, &one, &alice, &bob_id), server(b, &two, &bob));
        assert!(matches!(
            s.unwrap_err(),
            HandshakeError::WrongNetworkKey {
                step: Step::ClientHello
            }
        ));
        // The server hangs up without answering.
        assert!(matches!(
            c.unwrap_err(),
            HandshakeError::Truncated {
                step: Step::ServerHello,
                got: 0,
                expected: 64
            }
        ));
    }

    #[tokio::test]
    async fn client_refuses_a_server_hello_from_another_network() {
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]);
        let (a, mut b) = tokio::io::duplex(256);
        let bob_id = bob.id();
        let fake_server = async {
            let mut msg1 = [0u8; 64];
            b.read_exact(&mut msg1).await.unwrap();
            let other = hello(&net_key(9), &CurveKeypair::generate().public);
            b.write_all(&other).await.unwrap();
            b
        };
        let net = net_key(1);
        let (c, _b) = tokio::join!(client(a, &net, &alice, &bob_id), fake_server);
        assert!(matches!(
            c.unwrap_err(),
            HandshakeError::WrongNetworkKey {
                step: Step::ServerHello
            }
        ));
    }

    #[tokio::test]
    async fn wrong_server_key() {
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]);
        let carol = Keypair::from_seed(&[3; 32]);
        let (a, b) = tokio::io::duplex(256);
        let carol_id = carol.id();
        let net = net_key(1);
        let (c, s) = tokio::join!(client(a, &net, &alice, &carol_id), server(b, &net, &bob));
        assert!(matches!(
            s.unwrap_err(),
            HandshakeError::BadAuth {
                step: Step::ClientAuth
            }
        ));
        assert!(matches!(
            c.unwrap_err(),
            HandshakeError::Truncated {
                step: Step::ServerAccept,
                got: 0,
                expected: 80
            }
        ));
    }

    #[tokio::test]
    async fn client_refuses_a_forged_accept() {
        // A man in the middle who knows the network key but not the server's
        // secret key cannot produce msg4.
        let net = net_key(1);
        let alice = Keypair::from_seed(&[1; 32]);
        let bob = Keypair::from_seed(&[2; 32]);
        let c = ClientStart::new(&net, &alice, &bob.id(), CurveKeypair::generate()).unwrap();
        let s = ServerStart::new(&net, &bob, CurveKeypair::generate());
        let (s, msg2) = s.read_client_hello(&c.hello()).unwrap();
        let (c, msg3) = c.read_server_hello(&msg2).unwrap();
        let (_, mut msg4) = s.read_client_auth(&msg3).unwrap();
        msg4[40] ^= 1;
        assert!(matches!(
            c.read_server_accept(&msg4),
            Err(HandshakeError::BadAuth {
                step: Step::ServerAccept
            })
        ));
    }

    #[tokio::test]
    async fn truncated_handshakes() {
        let bob = Keypair::from_seed(&[2; 32]);
        let net = net_key(1);
        // The client sends 30 bytes of its hello and hangs up.
        let (mut a, b) = tokio::io::duplex(256);
        a.write_all(&[7u8; 30]).await.unwrap();
        drop(a);
        assert!(matches!(
            server(b, &net, &bob).await.unwrap_err(),
            HandshakeError::Truncated {
                step: Step::ClientHello,
                got: 30,
                expected: 64
            }
        ));
        // A valid hello, then half of msg3.
        let (mut a, b) = tokio::io::duplex(256);
        let alice = Keypair::from_seed(&[1; 32]);
        let start = ClientStart::new(&net, &alice, &bob.id(), CurveKeypair::generate()).unwrap();
        a.write_all(&start.hello()).await.unwrap();
        a.write_all(&[0u8; 56]).await.unwrap();
        // Half-close: the client still reads (msg2 must be deliverable).
        a.shutdown().await.unwrap();
        assert!(matches!(
            server(b, &net, &bob).await.unwrap_err(),
            HandshakeError::Truncated {
                step: Step::ClientAuth,
                got: 56,
                expected: 112
            }
        ));
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let bob = Keypair::from_seed(&[2; 32]);
        let (_a, b) = tokio::io::duplex(256);
        let start = ServerStart::new(&net_key(1), &bob, CurveKeypair::generate());
        let limit = Duration::from_millis(20);
        assert!(matches!(
            run_server(b, start, limit).await.unwrap_err(),
            HandshakeError::Timeout(d) if d == limit
        ));
    }

    #[test]
    fn invalid_keys_are_errors() {
        let alice = Keypair::from_seed(&[1; 32]);
        let net = net_key(1);
        // A server key that is not a valid point.
        assert!(matches!(
            ClientStart::new(&net, &alice, &FeedId([0xff; 32]), CurveKeypair::generate()),
            Err(HandshakeError::InvalidKey(KeyRole::ServerLongTerm))
        ));
        // A hello with the right MAC over an ephemeral key of small order.
        let s = ServerStart::new(&net, &alice, CurveKeypair::generate());
        assert!(matches!(
            s.read_client_hello(&hello(&net, &[0; 32])),
            Err(HandshakeError::InvalidKey(KeyRole::PeerEphemeral))
        ));
    }

    #[tokio::test]
    async fn random_bytes_never_panic_the_server() {
        let bob = Keypair::from_seed(&[2; 32]);
        let alice = Keypair::from_seed(&[1; 32]);
        let net = net_key(1);
        let mut rng = StdRng::seed_from_u64(0xdead_beef);
        for round in 0..200 {
            let mut junk = vec![0u8; rng.random_range(0..260)];
            rng.fill(&mut junk[..]);
            if round % 2 == 0 {
                // A valid hello first, so the junk reaches msg3.
                let c =
                    ClientStart::new(&net, &alice, &bob.id(), CurveKeypair::generate()).unwrap();
                junk.splice(0..0, c.hello());
            }
            let (mut a, b) = tokio::io::duplex(1024);
            let feed = async move {
                let _ = a.write_all(&junk).await;
                let _ = a.shutdown().await;
                let mut sink = Vec::new();
                let _ = a.read_to_end(&mut sink).await;
            };
            let (res, ()) = tokio::join!(server(b, &net, &bob), feed);
            assert!(res.is_err(), "round {round}");

            // The pure core, on random msg1 and msg3.
            let mut msg1 = [0u8; 64];
            rng.fill(&mut msg1[..]);
            let s = ServerStart::new(&net, &bob, CurveKeypair::generate());
            assert!(s.read_client_hello(&msg1).is_err());
            let c = ClientStart::new(&net, &alice, &bob.id(), CurveKeypair::generate()).unwrap();
            let s = ServerStart::new(&net, &bob, CurveKeypair::generate());
            let (s, _) = s.read_client_hello(&c.hello()).unwrap();
            let mut msg3 = [0u8; 112];
            rng.fill(&mut msg3[..]);
            assert!(s.read_client_auth(&msg3).is_err());
        }
    }
}
