//! The bodies of the fuzz targets under `fuzz/`, shared with the integration
//! test that replays their corpus and crash inputs on stable Rust.
//!
//! Owns: one function per target ([`TARGETS`], dispatched by [`run`]), each
//! taking arbitrary bytes and panicking only when a property breaks (a
//! parser that panics, overflows or loops, a round trip that does not give
//! back what it was given, two paths of the library that disagree), and
//! [`seeds`], the seed inputs each target starts from, built by the library
//! itself with fixed keys. Every key, nonce and network key here is fixed,
//! so a saved input replays the same way anywhere.
//!
//! Pure and synchronous: imports `crypto`, `feed`, `net` (the handshake
//! state machine and the box-stream coders, read from memory), `rpc` (the
//! packet codec and error bodies) and `private`; never `store`, `node`,
//! `home`, `import`, `replicate` or anything else that does I/O.

use std::collections::BTreeSet;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};
use tokio_util::codec::{Decoder as _, Encoder as _};

use crate::crypto::{
    CurveKeypair, FeedId, Keypair, MsgId, Nonce, b64_decode, b64_encode, ed25519_pk_to_curve25519,
    hmac_sha512_256, scalarmult, secretbox_seal, secretbox_seal_detached, sha256,
};
use crate::feed::json::{self, Object, Value};
use crate::feed::{FeedState, KeyCache, content, msg};
use crate::net::boxstream::{BoxDecoder, BoxEncoder, BoxFrame, BoxReader, HEADER_LEN, MAX_BODY};
use crate::net::shs::{ClientStart, HandshakeError, Outcome, ServerStart};
use crate::private::groups::{
    ControlMsg, GroupContent, GroupState, KeyStore, Position, TagIndex, create, envelope,
};
use crate::private::pbox::{BoxError, Unboxer, box_message, is_boxed};
use crate::rpc::{Body, Frame, Packet, PacketCodec, RemoteError};

/// The fuzz targets, by name (the names of `fuzz/fuzz_targets/*.rs` and of
/// the folders under `fuzz/corpus` and `fuzz/regressions`).
pub const TARGETS: [&str; 7] = [
    "json",
    "validate",
    "shs",
    "boxstream",
    "muxrpc",
    "private_box",
    "groups",
];

/// Runs the target `name` on `data`.
///
/// # Panics
/// On an unknown name, and wherever the target finds a broken property.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "json" => json(data),
        "validate" => validate(data),
        "shs" => shs(data),
        "boxstream" => boxstream(data),
        "muxrpc" => muxrpc(data),
        "private_box" => private_box(data),
        "groups" => groups(data),
        other => panic!("no fuzz target named {other}"),
    }
}

/// Reads fields off the front of a fuzz input; past its end, every field is
/// zeros, so any input is a complete one.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let t = self.take(N);
        a[..t.len()].copy_from_slice(t);
        a
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The parts, one after the other.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// 32 fixed bytes named by `label`.
fn fixed(label: &str) -> [u8; 32] {
    sha256(format!("shoal fuzz {label}").as_bytes())
}

fn fixed_nonce(label: &str) -> Nonce {
    let mut n = [0u8; 24];
    n.copy_from_slice(&fixed(label)[..24]);
    n
}

/// Every identity the targets use, made once.
struct Ids {
    author: Keypair,
    shs_server: Keypair,
    shs_client: Keypair,
    box_me: Keypair,
    box_other: Keypair,
    group: [Keypair; 4],
}

fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| {
        let kp = |label: &str| Keypair::from_seed(&fixed(label));
        Ids {
            author: kp("author"),
            shs_server: kp("shs server"),
            shs_client: kp("shs client"),
            box_me: kp("box me"),
            box_other: kp("box other"),
            group: [kp("group 0"), kp("group 1"), kp("group 2"), kp("group 3")],
        }
    })
}

// ---------------------------------------------------------------- json

/// The value JavaScript gets back from `JSON.parse(JSON.stringify(v))`:
/// numbers that are not finite become `null`.
fn finite(v: &Value) -> Value {
    match v {
        Value::Number(n) if !n.is_finite() => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(finite).collect()),
        Value::Object(o) => {
            let mut out = Object::new();
            for (k, item) in o.iter() {
                out.insert(k.clone(), finite(item));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Checks the UTF-16 views of every string in `v` against each other.
fn check_strings(v: &Value) {
    let check = |s: &json::JsString| {
        let mut latin1 = Vec::new();
        json::latin1_bytes(s.as_wtf8(), &mut latin1);
        assert_eq!(latin1.len(), s.utf16_len(), "latin1 view of {s:?}");
        let _ = s.to_string_lossy();
    };
    match v {
        Value::String(s) => check(s),
        Value::Array(items) => items.iter().for_each(check_strings),
        Value::Object(o) => {
            for (k, item) in o.iter() {
                check(k);
                check_strings(item);
            }
        }
        _ => {}
    }
}

/// `json`: when the bytes parse, the compact and pretty prints parse back
/// to the same value (non-finite numbers as `null`), print again to the same
/// bytes, and minifying the pretty print gives the compact one.
pub fn json(data: &[u8]) {
    let Ok(value) = json::parse(data) else {
        return;
    };
    check_strings(&value);
    let compact = json::to_compact(&value);
    let again = json::parse(&compact)
        .unwrap_or_else(|e| panic!("compact print does not parse: {e}: {compact:?}"));
    assert_eq!(again, finite(&value), "compact print changes the value");
    assert_eq!(
        json::to_compact(&again),
        compact,
        "compact print is unstable"
    );

    let pretty = json::to_pretty(&value);
    let from_pretty = json::parse(&pretty)
        .unwrap_or_else(|e| panic!("pretty print does not parse: {e}: {pretty:?}"));
    assert_eq!(from_pretty, again, "pretty print changes the value");
    assert_eq!(
        json::to_pretty(&from_pretty),
        pretty,
        "pretty print is unstable"
    );

    let mut minified = Vec::new();
    json::minify_pretty(&pretty, &mut minified);
    assert_eq!(
        minified, compact,
        "minified pretty print is not the compact one"
    );
}

// ---------------------------------------------------------------- validate

/// The sign-cap the `validate` target also tries.
pub const FUZZ_HMAC_KEY: [u8; 32] = [0x5a; 32];

/// The feed state a message claims to follow: sequence minus one and its
/// `previous`, when both are usable.
fn claimed_state(value: &Value) -> Option<FeedState> {
    let n = value.get("sequence")?.as_f64()?;
    if n.fract() != 0.0 || !(2.0..=2147483647.0).contains(&n) {
        return None;
    }
    let id = MsgId::parse(value.get("previous")?.as_str()?)?;
    Some(FeedState {
        sequence: n as u64 - 1,
        id,
    })
}

/// `validate`: arbitrary bytes as a message value, validated as a first
/// message, after the state it claims to follow, and under a sign-cap. Single
/// and batch verification agree; a valid message's stored JSON is the compact
/// print of the value, revalidates to the same id, and its id is the hash of
/// its signed text.
pub fn validate(data: &[u8]) {
    let Ok(value) = json::parse(data) else {
        return;
    };
    if let Some(c) = value.get("content") {
        let _ = format!("{:?}", content::parse(c));
        let _ = content::kind(c);
        let _ = content::recps(c);
    }
    let first = msg::validate(None, None, value.clone());
    let keyed = msg::validate(None, Some(&FUZZ_HMAC_KEY), value.clone());
    if let Err(e) = &first {
        let _ = e.to_string();
    }

    let prepared = match msg::prepare(value.clone(), None) {
        Ok(u) => u,
        Err(e) => {
            // Nothing after the format checks ran: every path stops there.
            assert_eq!(
                first.as_ref().err(),
                Some(&e),
                "validate and prepare differ"
            );
            assert_eq!(keyed.err(), Some(e), "a sign-cap changes a format error");
            return;
        }
    };
    let id = prepared.id();
    let again = msg::prepare(value.clone(), None).expect("prepare is deterministic");
    assert_eq!(again.id(), id);
    let batch = msg::verify_many(vec![again], &KeyCache::default())
        .pop()
        .expect("one result per message");
    let single = msg::verify_one(prepared, &KeyCache::default());
    assert_eq!(
        single.as_ref().err(),
        batch.as_ref().err(),
        "batch and single verification differ"
    );

    let mut latin1 = Vec::new();
    json::latin1_bytes(&msg::signed_text(&value), &mut latin1);
    assert_eq!(
        MsgId(sha256(&latin1)),
        id,
        "id is not the hash of the signed text"
    );

    let signed = match single {
        Ok(signed) => signed,
        Err(e) => {
            assert_eq!(first.err(), Some(e), "validate and verify_one differ");
            return;
        }
    };
    assert_eq!(signed.id(), id);
    assert_eq!(
        signed.json(),
        &json::to_compact(&value)[..],
        "stored JSON is not the compact print"
    );
    let reparsed = json::parse(signed.json()).expect("stored JSON parses");
    let re = msg::prepare(reparsed, None).expect("stored JSON is a valid message");
    assert_eq!(re.id(), id, "stored JSON has another id");

    match msg::chain(None, signed.clone()) {
        Ok(m) => {
            let f = first.as_ref().expect("validate agrees with chain");
            assert_eq!(f.id(), m.id());
            assert_eq!(m.sequence(), 1);
            assert_eq!(m.previous(), None);
            let _ = (m.timestamp(), m.content(), m.state());
        }
        Err(e) => assert_eq!(first.err(), Some(e), "validate and chain differ"),
    }
    if let Some(state) = claimed_state(&value) {
        let m = msg::chain(Some(&state), signed).expect("a message follows the state it claims");
        assert_eq!(m.previous(), Some(state.id));
        assert_eq!(m.sequence(), state.sequence + 1);
        let v = msg::validate(Some(&state), None, value).expect("validate agrees with chain");
        assert_eq!(v.id(), id);
    }
}

// ---------------------------------------------------------------- shs

fn shs_net_key() -> [u8; 32] {
    fixed("shs network")
}

fn shs_server_start() -> ServerStart<'static> {
    ServerStart::new(
        &shs_net_key(),
        &ids().shs_server,
        CurveKeypair::from_secret(fixed("shs server ephemeral")),
    )
}

fn shs_client_start() -> ClientStart<'static> {
    ClientStart::new(
        &shs_net_key(),
        &ids().shs_client,
        &ids().shs_server.id(),
        CurveKeypair::from_secret(fixed("shs client ephemeral")),
    )
    .expect("the fixed server key is usable")
}

/// Both sides of a handshake between fresh identities, with one byte of
/// one message changed when `xor` is not zero.
#[allow(clippy::too_many_arguments)]
fn shs_full(
    net: &[u8; 32],
    client: &Keypair,
    server: &Keypair,
    client_eph: [u8; 32],
    server_eph: [u8; 32],
    step: u8,
    at: u8,
    xor: u8,
) -> Result<(Outcome, Outcome), HandshakeError> {
    let tamper = |s: u8, msg: &mut [u8]| {
        if s == step && xor != 0 {
            let i = usize::from(at) % msg.len();
            msg[i] ^= xor;
        }
    };
    let start = ClientStart::new(
        net,
        client,
        &server.id(),
        CurveKeypair::from_secret(client_eph),
    )?;
    let server_start = ServerStart::new(net, server, CurveKeypair::from_secret(server_eph));
    let mut msg1 = start.hello();
    tamper(0, &mut msg1);
    let (server_wait, mut msg2) = server_start.read_client_hello(&msg1)?;
    tamper(1, &mut msg2);
    let (client_wait, mut msg3) = start.read_server_hello(&msg2)?;
    tamper(2, &mut msg3);
    let (server_out, mut msg4) = server_wait.read_client_auth(&msg3)?;
    tamper(3, &mut msg4);
    let client_out = client_wait.read_server_accept(&msg4)?;
    Ok((client_out, server_out))
}

/// `shs`: the first byte picks a mode.
/// - 0: 64 + 112 bytes as msg1 and msg3 to the fixed server;
/// - 1: 64 + 80 bytes as msg2 and msg4 to the fixed client;
/// - 2: a client ephemeral secret, then the 96-byte plaintext of msg3,
///   sealed as a client knowing the network would (so the server reaches
///   the signature and key checks); the fixed client's genuine plaintext
///   must be accepted;
/// - 3: a whole handshake between identities and ephemeral keys from the
///   input, with one byte of one message changed or not: unchanged, it
///   succeeds and both sides derive mirrored keys; changed, it fails.
pub fn shs(data: &[u8]) {
    let mut c = Cursor(data);
    match c.byte() % 4 {
        0 => {
            let msg1 = c.array();
            let msg3 = c.array();
            if let Ok((wait, _msg2)) = shs_server_start().read_client_hello(&msg1) {
                if let Err(e) = wait.read_client_auth(&msg3) {
                    let _ = e.to_string();
                }
            }
        }
        1 => {
            let msg2 = c.array();
            let msg4 = c.array();
            if let Ok((wait, _msg3)) = shs_client_start().read_server_hello(&msg2) {
                if let Err(e) = wait.read_server_accept(&msg4) {
                    let _ = e.to_string();
                }
            }
        }
        2 => shs_forged_auth(&mut c),
        _ => {
            let net = c.array();
            let client = Keypair::from_seed(&c.array());
            let server = Keypair::from_seed(&c.array());
            let (client_eph, server_eph) = (c.array(), c.array());
            let (step, at, xor) = (c.byte() % 4, c.byte(), c.byte());
            let result = shs_full(
                &net, &client, &server, client_eph, server_eph, step, at, xor,
            );
            if xor != 0 {
                assert!(result.is_err(), "a changed handshake message was accepted");
                return;
            }
            let (c_out, s_out) = result.expect("an unchanged handshake succeeds");
            assert_eq!(c_out.peer, server.id());
            assert_eq!(s_out.peer, client.id());
            assert_eq!(c_out.keys.encrypt_key, s_out.keys.decrypt_key);
            assert_eq!(c_out.keys.encrypt_nonce, s_out.keys.decrypt_nonce);
            assert_eq!(c_out.keys.decrypt_key, s_out.keys.encrypt_key);
            assert_eq!(c_out.keys.decrypt_nonce, s_out.keys.encrypt_nonce);
        }
    }
}

/// The auth key of msg3 as a client with ephemeral `eph` computes it.
fn shs_auth_key(eph: &CurveKeypair, server_eph: &[u8; 32]) -> Option<([u8; 32], [u8; 32])> {
    let net = shs_net_key();
    let server_curve = ed25519_pk_to_curve25519(&ids().shs_server.id()).ok()?;
    let ab = scalarmult(&eph.secret, server_eph).ok()?;
    let a_b = scalarmult(&eph.secret, &server_curve).ok()?;
    Some((sha256(&cat(&[&net[..], &ab, &a_b])), sha256(&ab)))
}

fn shs_hello(eph: &CurveKeypair) -> [u8; 64] {
    let mut msg1 = [0u8; 64];
    msg1[..32].copy_from_slice(&hmac_sha512_256(&shs_net_key(), &eph.public));
    msg1[32..].copy_from_slice(&eph.public);
    msg1
}

fn shs_forged_auth(c: &mut Cursor<'_>) {
    let eph = CurveKeypair::from_secret(c.array());
    let plain: [u8; 96] = c.array();
    let Ok((wait, msg2)) = shs_server_start().read_client_hello(&shs_hello(&eph)) else {
        return;
    };
    let mut server_eph = [0u8; 32];
    server_eph.copy_from_slice(&msg2[32..]);
    let Some((auth_key, hash_ab)) = shs_auth_key(&eph, &server_eph) else {
        return;
    };
    let mut msg3 = [0u8; 112];
    msg3.copy_from_slice(&secretbox_seal(&plain, &[0; 24], &auth_key));
    let result = wait.read_client_auth(&msg3);
    let claimed = FeedId(plain[64..].try_into().expect("32 bytes"));
    if let Ok((out, _msg4)) = &result {
        assert_eq!(out.peer, claimed, "the server authenticated someone else");
    }
    if claimed == ids().shs_client.id() {
        let net = shs_net_key();
        let genuine = ids()
            .shs_client
            .sign(&cat(&[&net[..], &ids().shs_server.id().0, &hash_ab]));
        if plain[..64] == genuine[..] {
            assert!(result.is_ok(), "a genuine client was refused");
        }
    }
}

// ---------------------------------------------------------------- boxstream

fn box_key() -> ([u8; 32], Nonce) {
    (fixed("boxstream key"), fixed_nonce("boxstream nonce"))
}

/// The nonce of the header of packet number `packets`.
fn nonce_after(start: &Nonce, packets: u64) -> Nonce {
    let mut n = *start;
    let mut carry = u128::from(packets) * 2;
    for b in n.iter_mut().rev() {
        let sum = u128::from(*b) + (carry & 0xff);
        *b = sum as u8;
        carry = (carry >> 8) + (sum >> 8);
    }
    n
}

/// What a box stream decodes to: the bodies, then `Ok` at the goodbye or the
/// error that ended it.
type BoxOutcome = (Vec<Vec<u8>>, Result<(), String>);

fn decode_box(wire: &[u8], chunk: usize) -> BoxOutcome {
    let (key, nonce) = box_key();
    let mut dec = BoxDecoder::new(key, nonce);
    let mut src = BytesMut::new();
    let mut bodies = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        src.extend_from_slice(piece);
        loop {
            match dec.decode(&mut src) {
                Ok(Some(BoxFrame::Body(b))) => bodies.push(b.to_vec()),
                Ok(Some(BoxFrame::Goodbye)) => return (bodies, Ok(())),
                Ok(None) => break,
                Err(e) => return (bodies, Err(e.to_string())),
            }
        }
    }
    loop {
        match dec.decode_eof(&mut src) {
            Ok(Some(BoxFrame::Body(b))) => bodies.push(b.to_vec()),
            Ok(Some(BoxFrame::Goodbye)) => return (bodies, Ok(())),
            Ok(None) => panic!("decode_eof ended the stream without a goodbye or an error"),
            Err(e) => return (bodies, Err(e.to_string())),
        }
    }
}

/// An in-memory reader handing out at most `chunk` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.chunk.min(this.data.len()).min(buf.remaining());
        buf.put_slice(&this.data[..n]);
        this.data = &this.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// The plaintext a [`BoxReader`] gives, then how it ended.
fn read_box(wire: &[u8], chunk: usize) -> (Vec<u8>, Result<(), String>) {
    let (key, nonce) = box_key();
    let chunk = chunk.max(1);
    let mut reader = BoxReader::new(Trickle { data: wire, chunk }, key, nonce);
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        match futures::executor::block_on(reader.read(&mut buf)) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e.to_string())),
        }
    }
}

/// Builds a wire from a script of operations; returns it with the outcome
/// decoding must have, unless the script wrote something other than
/// packets of the encoder.
fn box_script(c: &mut Cursor<'_>) -> (Vec<u8>, Option<BoxOutcome>) {
    let (key, start) = box_key();
    let mut wire = Vec::new();
    let mut packets = 0u64;
    let mut bodies = Vec::new();
    let mut ended = false;
    let mut clean = true;
    while !c.is_empty() {
        match c.byte() % 4 {
            0 => {
                let n = usize::from(c.u16()) % (MAX_BODY + 1);
                let body = c.take(n);
                let mut out = vec![0u8; HEADER_LEN + body.len()];
                let mut enc = BoxEncoder::new(key, nonce_after(&start, packets));
                if enc.seal_packet(body, &mut out) {
                    wire.extend_from_slice(&out);
                    packets += 1;
                    if !ended {
                        bodies.push(body.to_vec());
                    }
                }
            }
            1 => {
                let mut enc = BoxEncoder::new(key, nonce_after(&start, packets));
                wire.extend_from_slice(&enc.goodbye());
                packets += 1;
                ended = true;
            }
            2 => {
                // A header over any 18 bytes, then any body bytes.
                let mut plain: [u8; 18] = c.array();
                let tag = secretbox_seal_detached(&mut plain, &nonce_after(&start, packets), &key);
                wire.extend_from_slice(&tag);
                wire.extend_from_slice(&plain);
                let n = usize::from(c.byte());
                wire.extend_from_slice(c.take(n));
                packets += 1;
                clean = false;
            }
            _ => {
                let at = usize::from(c.u16());
                let xor = c.byte();
                if !wire.is_empty() && xor != 0 {
                    let i = at % wire.len();
                    wire[i] ^= xor;
                } else {
                    wire.push(xor);
                }
                clean = false;
            }
        }
    }
    let expected = clean.then(|| {
        let end = if ended {
            Ok(())
        } else {
            Err("box stream closed without its goodbye packet".to_owned())
        };
        (bodies, end)
    });
    (wire, expected)
}

/// `boxstream`: the first byte picks raw bytes (even) or a script of
/// packets (odd), the second a read size. The decoder gives the same
/// outcome whole and in pieces, the reader the same plaintext and ending,
/// and a script of genuine packets decodes to exactly what was sealed.
pub fn boxstream(data: &[u8]) {
    let mut c = Cursor(data);
    let mode = c.byte();
    let chunk = usize::from(c.byte()) + 1;
    let (wire, expected) = if mode & 1 == 0 {
        (c.rest().to_vec(), None)
    } else {
        box_script(&mut c)
    };
    let whole = decode_box(&wire, wire.len());
    let pieces = decode_box(&wire, chunk);
    assert_eq!(whole, pieces, "decoding in pieces differs");
    let (plain, end) = read_box(&wire, chunk);
    assert_eq!(
        plain,
        whole.0.concat(),
        "reader and decoder give other bytes"
    );
    assert_eq!(end, whole.1, "reader and decoder end differently");
    if let Some(expected) = expected {
        assert_eq!(whole, expected, "genuine packets decode to something else");
    }
}

// ---------------------------------------------------------------- muxrpc

/// The frames decoded, then how the input ended (`Ok`: at a frame boundary).
type RpcOutcome = (Vec<Frame>, Result<(), String>);

fn decode_rpc(mut codec: PacketCodec, wire: &[u8], chunk: usize) -> RpcOutcome {
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        src.extend_from_slice(piece);
        loop {
            match codec.decode(&mut src) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Err(e.to_string())),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut src) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, Ok(())),
            Err(e) => return (frames, Err(e.to_string())),
        }
    }
}

fn check_body(p: &Packet) {
    assert!(!p.body.is_empty(), "a decoded packet has an empty body");
    let _ = p.body.is_true();
    let _ = p.body.as_str();
    let _ = p.body.parse_json::<serde_json::Value>();
    let e = RemoteError::from_body(p.body.clone());
    assert_eq!(&e.body, &p.body);
}

/// `muxrpc`: the first byte picks a read size, the second a body limit; the
/// rest is the wire. Decoding whole and in pieces agree (under the default
/// limit and the chosen one), and every packet re-encodes to exactly the
/// bytes it came from.
pub fn muxrpc(data: &[u8]) {
    let mut c = Cursor(data);
    let chunk = usize::from(c.byte() % 32) + 1;
    let limit = usize::from(c.byte()) * 16 + 1;
    let wire = c.rest();
    for mut codec in [PacketCodec::default(), PacketCodec::new(limit)] {
        let whole = decode_rpc(codec, wire, wire.len());
        let pieces = decode_rpc(codec, wire, chunk);
        assert_eq!(whole, pieces, "decoding in pieces differs");
        let mut at = 0;
        for frame in whole.0 {
            match frame {
                Frame::Goodbye => {
                    assert_eq!(wire[at + 1..at + 5], [0; 4], "goodbye with a length");
                    at += crate::rpc::HEADER_LEN;
                }
                Frame::Packet(p) => {
                    check_body(&p);
                    let mut out = BytesMut::new();
                    codec
                        .encode(Frame::Packet(p), &mut out)
                        .expect("a decoded packet encodes");
                    assert_eq!(
                        &out[..],
                        &wire[at..at + out.len()],
                        "packet re-encodes differently"
                    );
                    at += out.len();
                }
            }
        }
    }
}

// ---------------------------------------------------------------- private_box

/// Bytes before the first slot, of one slot, and of a tag (the layout of
/// `private::pbox`).
const PBOX_HEADER: usize = 24 + 32;
const PBOX_SLOT: usize = 1 + 32 + 16;
const PBOX_MIN: usize = PBOX_HEADER + PBOX_SLOT + 16;

fn unboxer() -> &'static Unboxer {
    static U: OnceLock<Unboxer> = OnceLock::new();
    U.get_or_init(|| Unboxer::new(&ids().box_me))
}

/// `open` of the content string of `bytes` agrees with `open_raw`.
fn pbox_consistent(bytes: &[u8]) -> Option<Vec<u8>> {
    let raw = unboxer().open_raw(bytes);
    let mut s = b64_encode(bytes);
    s.push_str(".box");
    let opened = unboxer().open(&s);
    if bytes.len() >= PBOX_MIN {
        assert_eq!(opened, Ok(raw.clone()), "open and open_raw differ");
    } else {
        assert_eq!(opened, Err(BoxError::Truncated { len: bytes.len() }));
        assert_eq!(raw, None, "open_raw opened a box shorter than the minimum");
    }
    raw
}

/// A box laid out by hand: `slots` slots sealed over `count || body_key`,
/// the one at `mine` to us, the others to someone else.
fn pbox_build(c: &mut Cursor<'_>) -> (Vec<u8>, Option<Vec<u8>>) {
    let count = c.byte();
    let mine = usize::from(c.byte() % 10);
    let slots = usize::from(c.byte() % 10);
    let body_key: [u8; 32] = c.array();
    let nonce: Nonce = c.array();
    let eph = CurveKeypair::from_secret(c.array());
    let plain = c.rest();
    let ids = ids();
    let pk = |k: &Keypair| ed25519_pk_to_curve25519(&k.id()).expect("a real identity converts");
    let (Ok(to_me), Ok(to_other)) = (
        scalarmult(&eph.secret, &pk(&ids.box_me)),
        scalarmult(&eph.secret, &pk(&ids.box_other)),
    ) else {
        return (Vec::new(), None);
    };
    let mut slot_plain = [0u8; 33];
    slot_plain[0] = count;
    slot_plain[1..].copy_from_slice(&body_key);
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&eph.public);
    for i in 0..slots {
        let key = if i == mine { &to_me } else { &to_other };
        bytes.extend_from_slice(&secretbox_seal(&slot_plain, &nonce, key));
    }
    bytes.extend_from_slice(&secretbox_seal(plain, &nonce, &body_key));
    // A reader tries the first 8 slots, then reads the body after as many
    // slots as the count byte says.
    let opens = mine < slots.min(8) && usize::from(count) == slots;
    (bytes, opens.then(|| plain.to_vec()))
}

/// `private_box`: the first byte picks a mode.
/// - 0: the rest as a content string (lossy UTF-8) to `Unboxer::open`;
/// - 1: the rest as the bytes of a box (`open_raw`, and `open` of their
///   content string, which must agree);
/// - 2: a box laid out from the input (count byte, slot position, number of
///   slots, body key, nonce, ephemeral key, plaintext), which opens exactly
///   when the count is right and our slot is among the first 8;
/// - 3: the rest as plaintext boxed to two recipients, which opens to it.
pub fn private_box(data: &[u8]) {
    let mut c = Cursor(data);
    match c.byte() % 4 {
        0 => {
            let s = String::from_utf8_lossy(c.rest());
            let opened = unboxer().open(&s);
            assert_eq!(is_boxed(&s), s.ends_with(".box"));
            if let Some(bytes) = s.strip_suffix(".box").and_then(b64_decode) {
                if bytes.len() >= PBOX_MIN {
                    assert_eq!(
                        opened,
                        Ok(unboxer().open_raw(&bytes)),
                        "open and open_raw differ"
                    );
                }
            }
            if let Err(e) = opened {
                let _ = e.to_string();
            }
        }
        1 => {
            pbox_consistent(c.rest());
        }
        2 => {
            let (bytes, expected) = pbox_build(&mut c);
            assert_eq!(
                pbox_consistent(&bytes),
                expected,
                "a laid-out box opens wrongly"
            );
        }
        _ => {
            let plain = c.rest();
            let ids = ids();
            let s = box_message(plain, &[ids.box_other.id(), ids.box_me.id()])
                .expect("two real recipients");
            assert_eq!(
                unboxer().open(&s),
                Ok(Some(plain.to_vec())),
                "own box does not open"
            );
        }
    }
}

// ---------------------------------------------------------------- groups

/// The feeds of the four group identities, and the ids of their messages
/// in the `groups` target: a record's id is its index (big-endian, in the
/// first two bytes; the rest zero), standing in for a signed message's id,
/// so an input can name any earlier record in the fields that hold ids.
struct Feeds {
    last: [(u64, Option<MsgId>); 4],
    count: u16,
}

impl Feeds {
    fn new() -> Feeds {
        Feeds {
            last: [(0, None); 4],
            count: 0,
        }
    }

    fn next(&self, who: usize) -> Position {
        let (seq, prev) = self.last[who];
        Position {
            author: ids().group[who].id(),
            sequence: seq + 1,
            previous: prev,
        }
    }

    fn next_id(&self) -> MsgId {
        let mut id = [0u8; 32];
        id[..2].copy_from_slice(&self.count.to_be_bytes());
        MsgId(id)
    }

    fn publish(&mut self, who: usize) -> (Position, MsgId) {
        let pos = self.next(who);
        let id = self.next_id();
        self.count = self.count.wrapping_add(1);
        self.last[who] = (pos.sequence, Some(id));
        (pos, id)
    }
}

/// Reads one record: author (mod 4), u16 length, content bytes.
fn group_record<'a>(c: &mut Cursor<'a>) -> (usize, &'a [u8]) {
    let who = usize::from(c.byte() % 4);
    let n = usize::from(c.u16());
    (who, c.take(n))
}

fn group_facts(s: &GroupState) -> impl PartialEq + std::fmt::Debug {
    (
        s.accepted_len(),
        s.pending_len(),
        s.members(),
        s.heads(),
        s.admins().clone(),
        s.heads_commitment(),
        s.rejected().keys().copied().collect::<BTreeSet<_>>(),
        s.candidate_head_sets(),
    )
}

/// `groups`: the first byte picks a mode.
/// - even: the rest as a content string (lossy UTF-8) read as a sealed
///   group message: decoded, read as a post and as a control message with
///   its entries, and opened with a pairwise key (which must fail cleanly);
/// - odd: the rest as records (author 0..3, u16 length, bytes), each
///   a message of that author's feed, in order, whose id is its index (see
///   `Feeds`): bytes starting with 3 are a post (tag, nonce, sealed), others
///   an opened control message. Every record that parses
///   prints back to its bytes; the control messages make the same group
///   state in either order; identity 1's key store learns the same keys in
///   either order and again; posts open the same way in both; and when
///   identity 1 is a member, a post it seals opens and a refresh it makes is
///   accepted.
pub fn groups(data: &[u8]) {
    let mut c = Cursor(data);
    if c.byte() % 2 == 0 {
        let s = String::from_utf8_lossy(c.rest());
        if let Ok(bytes) = envelope::decode(&s) {
            let _ = envelope::as_post(&bytes);
            let _ = envelope::entry_tags(&bytes).count();
            let me = &ids().group[1];
            let keys = KeyStore::new(me);
            let pos = Position {
                author: ids().group[0].id(),
                sequence: 1,
                previous: None,
            };
            if let Ok(key) = keys.pairwise(&pos.author) {
                for i in 0..envelope::MAX_ENTRIES {
                    if let Err(e) = envelope::open_control(&bytes, &pos, i, &key) {
                        let _ = e.to_string();
                    }
                }
            }
        }
        return;
    }

    let mut feeds = Feeds::new();
    let mut controls = Vec::new();
    let mut posts = Vec::new();
    let mut group = None;
    while !c.is_empty() && feeds.count < u16::MAX {
        let (who, bytes) = group_record(&mut c);
        let (position, id) = feeds.publish(who);
        if bytes.first() == Some(&3) {
            if let Ok(p) = envelope::as_post(&bytes[1..]) {
                posts.push((p, position));
            }
            continue;
        }
        let content = match GroupContent::from_bytes(bytes) {
            Ok(content) => content,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        assert_eq!(
            content.to_bytes().as_deref(),
            Ok(bytes),
            "from_bytes is not exact"
        );
        let body = content.into_control();
        group.get_or_insert(body.group(&id));
        controls.push(ControlMsg { id, position, body });
    }
    let Some(group) = group else {
        return;
    };

    let state = GroupState::from_messages(group, &controls);
    let reversed = GroupState::from_messages(group, controls.iter().rev());
    assert_eq!(
        group_facts(&state),
        group_facts(&reversed),
        "order changes the state"
    );

    let me = &ids().group[1];
    let mut keys = KeyStore::new(me);
    for (_, e) in keys.absorb(&controls) {
        let _ = e.to_string();
    }
    let mut keys_rev = KeyStore::new(me);
    for m in controls.iter().rev() {
        keys_rev.absorb([m]);
    }
    assert_eq!(
        keys.epochs(),
        keys_rev.epochs(),
        "order changes the keys learnt"
    );
    let held = keys.epochs();
    keys.absorb(&controls);
    assert_eq!(keys.epochs(), held, "absorbing again changes the keys");

    let expected =
        (0..4).flat_map(|i| (1..=feeds.last[i].0 + 1).map(move |s| (ids().group[i].id(), s)));
    let index = TagIndex::new(keys.post_keys(&state), expected);
    for (post, pos) in &posts {
        let opened = keys.open_post(&state, post, pos);
        let opened_rev = keys_rev.open_post(&reversed, post, pos);
        assert_eq!(
            opened.as_ref().ok(),
            opened_rev.as_ref().ok(),
            "order changes a post"
        );
        if let Ok(plain) = &opened {
            assert_eq!(
                index.open(post, pos).as_ref(),
                Ok(plain),
                "tag index misses a post"
            );
        }
    }
    let _ = state.open_requests(&me.id());
    let _ = state.asked(&me.id());

    if !state.is_member(&me.id()) {
        return;
    }
    let pos = feeds.next(1);
    if let Ok(sealed) = state.seal_post(&keys, &pos, b"{\"type\":\"post\"}") {
        let Ok(post) = envelope::decode(&sealed).and_then(|b| envelope::as_post(&b)) else {
            panic!("seal_post made something other than a post");
        };
        assert_eq!(
            keys.open_post(&state, &post, &pos).as_deref(),
            Ok(&b"{\"type\":\"post\"}"[..]),
            "own post does not open"
        );
    }
    if let Ok(epoch) = state.rekey(&keys, &pos, &[]) {
        let own = keys.pairwise(&me.id()).expect("own pairwise key");
        let Ok(content) = envelope::open_with(&epoch.content, &pos, &own) else {
            panic!("rekey made content its author cannot open");
        };
        // Not the next record's id: records may name ids not yet given
        // out, which no real message can. A hash of the fresh content cannot
        // be named by the input.
        let id = MsgId(sha256(epoch.content.as_bytes()));
        let body = content.into_control();
        let mut after = state.clone();
        after.apply(ControlMsg {
            id,
            position: pos,
            body,
        });
        assert!(
            !after.rejected().contains_key(&id),
            "own refresh rejected: {:?}",
            after.rejected().get(&id)
        );
        assert_eq!(
            after.heads(),
            BTreeSet::from([id]),
            "own refresh is not the head"
        );
    }
}

// ---------------------------------------------------------------- seeds

/// Seed inputs of the target `name`: valid inputs made by the library with
/// the targets' fixed keys (and some classic edge cases), so fuzzing starts
/// past the first checks. Some hold fresh random nonces, so they differ
/// from run to run; each passes its target.
///
/// # Panics
/// On an unknown name.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "json" => json_seeds(),
        "validate" => validate_seeds(),
        "shs" => shs_seeds(),
        "boxstream" => boxstream_seeds(),
        "muxrpc" => muxrpc_seeds(),
        "private_box" => private_box_seeds(),
        "groups" => groups_seeds(),
        other => panic!("no fuzz target named {other}"),
    }
}

fn json_seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [
        r#"{"b":1,"2":2,"a":3,"1":4,"01":5,"4294967295":6,"4294967294":7,"-1":8,"a":9}"#,
        r#"[1.0,-0,1e21,1e-7,12345678901234567890,5e-324,1.7976931348623157e308,1E400,-1e400,0.1]"#,
        r#""a\u0000\u001f\b\f\n\r\t\"\\\/\u007f\u2028é😀""#,
        r#"["\uD800x\uDFFF","\ud83d\ude00","\ud83d\u0041","\udc00\ud800"]"#,
        r#"{"a":[],"b":{},"c":[1,{"d":null,"e":[true,false]}],"e":"x y"}"#,
        "  \t\n\r[ 1 , \"s p a c e\" ]\n",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "9007199254740993",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    out.extend(validate_seeds().into_iter().take(2));
    out
}

fn post(text: &str) -> Value {
    let mut c = Object::new();
    c.insert("type", Value::from("post"));
    c.insert("text", Value::from(text));
    Value::Object(c)
}

fn validate_seeds() -> Vec<Vec<u8>> {
    let kp = &ids().author;
    let parse = |s: &str| json::parse(s.as_bytes()).expect("seed JSON");
    let m1 = msg::build(kp, None, 1_500_000_000_000.0, post("hello"), None);
    let v1 = msg::validate(None, None, m1.clone()).expect("seed is valid");
    let mut content2 = post("héllo 😀 \u{2028}");
    if let Value::Object(o) = &mut content2 {
        o.insert("root", Value::from(v1.id().to_string()));
        o.insert(
            "mentions",
            parse(r##"[{"link":"@abc","name":"x"},"#ssb"]"##),
        );
    }
    let m2 = msg::build(kp, Some(&v1.state()), 1.5e12, content2, None);
    let v2 = msg::validate(Some(&v1.state()), None, m2.clone()).expect("seed is valid");
    let vote = parse(&format!(
        r#"{{"type":"vote","vote":{{"link":"{}","value":1,"expression":"Like"}}}}"#,
        v1.id()
    ));
    let m3 = msg::build(kp, Some(&v2.state()), 1.6e12, vote, None);
    let contact = parse(&format!(
        r#"{{"type":"contact","contact":"{}","following":true}}"#,
        ids().box_other.id()
    ));
    let boxed = box_message(b"{\"type\":\"post\",\"text\":\"hi\"}", &[kp.id()]).expect("box");
    let odd = parse(r#"{"type":"test","2":1,"1":[-0,1e21,"\ud800"],"about":null}"#);
    let messages = [
        m1,
        m2,
        m3,
        msg::build(kp, None, 1.0, contact, None),
        msg::build(kp, None, -0.0, Value::from(boxed), None),
        msg::build(kp, None, 2.0, odd, None),
        msg::build(kp, None, 3.0, post("keyed"), Some(&FUZZ_HMAC_KEY)),
    ];
    let mut out: Vec<Vec<u8>> = messages.iter().map(json::to_compact).collect();
    out.push(json::to_pretty(&messages[1]));
    out
}

fn shs_seeds() -> Vec<Vec<u8>> {
    let client = shs_client_start();
    let msg1 = client.hello();
    let (server_wait, msg2) = shs_server_start()
        .read_client_hello(&msg1)
        .expect("genuine hello");
    let (_, msg3) = client.read_server_hello(&msg2).expect("genuine hello");
    let (_, msg4) = server_wait.read_client_auth(&msg3).expect("genuine auth");
    let mut out = vec![
        cat(&[&[0u8][..], &msg1, &msg3]),
        cat(&[&[1u8][..], &msg2, &msg4]),
    ];

    let eph_secret = fixed("shs forged ephemeral");
    let eph = CurveKeypair::from_secret(eph_secret);
    let (wait, msg2) = shs_server_start()
        .read_client_hello(&shs_hello(&eph))
        .expect("genuine hello");
    let server_eph: [u8; 32] = msg2[32..].try_into().expect("32 bytes");
    let (_, hash_ab) = shs_auth_key(&eph, &server_eph).expect("usable keys");
    drop(wait);
    let net = shs_net_key();
    let sig = ids()
        .shs_client
        .sign(&cat(&[&net[..], &ids().shs_server.id().0, &hash_ab]));
    out.push(cat(&[
        &[2u8][..],
        &eph_secret,
        &sig,
        &ids().shs_client.id().0,
    ]));

    let full = |tamper: [u8; 3]| {
        cat(&[
            &[3],
            &fixed("net"),
            &fixed("client"),
            &fixed("server"),
            &fixed("client eph"),
            &fixed("server eph"),
            &tamper,
        ])
    };
    out.push(full([0, 0, 0]));
    out.push(full([2, 100, 1]));
    out
}

fn boxstream_seeds() -> Vec<Vec<u8>> {
    let (key, nonce) = box_key();
    let mut enc = BoxEncoder::new(key, nonce);
    let mut wire = Vec::new();
    for body in [&b"hello"[..], &[0u8; 300][..]] {
        let mut out = vec![0u8; HEADER_LEN + body.len()];
        assert!(enc.seal_packet(body, &mut out));
        wire.extend_from_slice(&out);
    }
    wire.extend_from_slice(&enc.goodbye());
    let mut out = vec![cat(&[&[0u8, 7][..], &wire])];
    // Scripts: two bodies and a goodbye; a header announcing an empty body,
    // then one announcing 4097 bytes.
    let mut script = vec![1u8, 3, 0, 0, 5];
    script.extend_from_slice(b"hello");
    script.extend_from_slice(&[0, 0, 3]);
    script.extend_from_slice(b"abc");
    script.push(1);
    out.push(script);
    let mut script = vec![1u8, 0, 2, 0, 0];
    script.extend_from_slice(&[1u8; 16]);
    script.push(0);
    script.extend_from_slice(&[2, 0x10, 0x01]);
    script.extend_from_slice(&[0u8; 16]);
    script.push(0);
    out.push(script);
    out
}

fn muxrpc_seeds() -> Vec<Vec<u8>> {
    let mut codec = PacketCodec::default();
    let frames = [
        Frame::Packet(Packet {
            stream: false,
            end: false,
            body: Body::json_raw(r#"{"name":["whoami"],"args":[]}"#),
            req: 1,
        }),
        Frame::Packet(Packet {
            stream: true,
            end: false,
            body: Body::text("hé"),
            req: -7,
        }),
        Frame::Packet(Packet {
            stream: true,
            end: true,
            body: Body::binary(vec![0u8, 255, 3]),
            req: i32::MAX,
        }),
        Frame::Packet(Packet {
            stream: false,
            end: true,
            body: Body::json_raw(r#"{"name":"Error","message":"no such method: x","stack":""}"#),
            req: i32::MIN,
        }),
        Frame::Packet(Packet {
            stream: true,
            end: true,
            body: Body::json_true(),
            req: 3,
        }),
        Frame::Goodbye,
    ];
    let mut wire = BytesMut::new();
    for f in frames {
        codec.encode(f, &mut wire).expect("seed frame");
    }
    vec![
        cat(&[&[3u8, 2][..], &wire[..]]),
        cat(&[&[0u8, 0][..], &wire[..40]]),
    ]
}

fn private_box_seeds() -> Vec<Vec<u8>> {
    let ids = ids();
    let plain = b"{\"type\":\"post\",\"text\":\"secret\"}";
    let to_me = box_message(plain, &[ids.box_other.id(), ids.box_me.id()]).expect("box");
    let to_other = box_message(plain, &[ids.box_other.id()]).expect("box");
    let raw = b64_decode(to_me.strip_suffix(".box").expect("suffix")).expect("base64");
    let mut laid_out = vec![2u8, 3, 1, 3];
    laid_out.extend_from_slice(&fixed("body key"));
    laid_out.extend_from_slice(&fixed_nonce("nonce"));
    laid_out.extend_from_slice(&fixed("eph"));
    laid_out.extend_from_slice(plain);
    vec![
        cat(&[&[0u8][..], to_me.as_bytes()]),
        cat(&[&[0u8][..], to_other.as_bytes()]),
        cat(&[&[1u8][..], &raw]),
        laid_out,
        cat(&[&[3u8][..], &plain[..]]),
    ]
}

/// Records of group messages as the `groups` target reads them, made by
/// the identities' own key stores.
struct Scenario {
    feeds: Feeds,
    stores: Vec<KeyStore>,
    controls: Vec<ControlMsg>,
    records: Vec<u8>,
}

impl Scenario {
    fn publish(&mut self, who: usize, content: &str) -> MsgId {
        let position = self.feeds.next(who);
        let own = self.stores[who]
            .pairwise(&position.author)
            .expect("own pairwise key");
        let opened = envelope::open_with(content, &position, &own);
        let bytes = match &opened {
            Ok(inner) => inner.to_bytes().expect("opened content encodes"),
            Err(_) => {
                let mut b = vec![3];
                b.extend(envelope::decode(content).expect("group content"));
                b
            }
        };
        self.records.push(who as u8);
        self.records
            .extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        self.records.extend_from_slice(&bytes);
        let (position, id) = self.feeds.publish(who);
        if let Ok(inner) = opened {
            let m = ControlMsg {
                id,
                position,
                body: inner.into_control(),
            };
            for s in &mut self.stores {
                s.absorb([&m]);
            }
            self.controls.push(m);
        }
        id
    }

    fn state(&self, group: MsgId) -> GroupState {
        GroupState::from_messages(group, &self.controls)
    }
}

/// A cut of `feed` at sequence 0 (nothing of it seen).
fn cut(feed: FeedId) -> crate::private::groups::Cut {
    crate::private::groups::Cut { feed, seq: 0 }
}

/// A group's life: identity 0 creates it with 1 and 2, posts, adds 3,
/// removes 2, forwards the new key to 1, and 1 posts.
fn groups_seeds() -> Vec<Vec<u8>> {
    let ids = ids();
    let feed = |i: usize| ids.group[i].id();
    let mut sc = Scenario {
        feeds: Feeds::new(),
        stores: ids.group.iter().map(KeyStore::new).collect(),
        controls: Vec::new(),
        records: vec![1],
    };
    let created =
        create(&sc.stores[0], &sc.feeds.next(0), &[feed(1), feed(2)], &[]).expect("create");
    let gid = sc.publish(0, &created.content);
    sc.stores[0].insert_own(gid, created.key);

    let st = sc.state(gid);
    let post = st.seal_post(&sc.stores[0], &sc.feeds.next(0), b"{\"type\":\"post\"}");
    sc.publish(0, &post.expect("post"));
    let add = st.add(&sc.stores[0], &sc.feeds.next(0), &[feed(3)], &[]);
    sc.publish(0, &add.expect("add"));

    let st = sc.state(gid);
    let epoch = st.rekey(&sc.stores[0], &sc.feeds.next(0), &[cut(feed(2))]);
    let epoch = epoch.expect("rekey");
    let eid = sc.publish(0, &epoch.content);
    sc.stores[0].insert_own(eid, epoch.key);

    let st = sc.state(gid);
    let req = st
        .request(&sc.stores[1], &sc.feeds.next(1), &[eid])
        .expect("request");
    let rid = sc.publish(1, &req);
    let fwd = st
        .forward(&sc.stores[0], &sc.feeds.next(0), &feed(1), rid, &[eid])
        .expect("forward");
    sc.publish(0, &fwd);
    let post = st.seal_post(&sc.stores[1], &sc.feeds.next(1), b"{\"text\":\"yo\"}");
    sc.publish(1, &post.expect("post"));

    vec![
        cat(&[&[0], created.content.as_bytes()]),
        sc.records,
        concurrent_group(),
    ]
}

/// Concurrent operations: identity 0 creates a group with 1 (an admin) and
/// 2; from that view 0 refreshes while 1 removes 2, adds 3 and posts; then
/// 0 merges the two heads and 3 posts.
fn concurrent_group() -> Vec<u8> {
    let ids = ids();
    let feed = |i: usize| ids.group[i].id();
    let mut sc = Scenario {
        feeds: Feeds::new(),
        stores: ids.group.iter().map(KeyStore::new).collect(),
        controls: Vec::new(),
        records: vec![1],
    };
    let created = create(
        &sc.stores[0],
        &sc.feeds.next(0),
        &[feed(1), feed(2)],
        &[feed(1)],
    )
    .expect("create");
    let gid = sc.publish(0, &created.content);
    sc.stores[0].insert_own(gid, created.key);

    let st = sc.state(gid);
    let refresh = st
        .rekey(&sc.stores[0], &sc.feeds.next(0), &[])
        .expect("rekey");
    let id = sc.publish(0, &refresh.content);
    sc.stores[0].insert_own(id, refresh.key);
    let removal = st.rekey(&sc.stores[1], &sc.feeds.next(1), &[cut(feed(2))]);
    let removal = removal.expect("rekey");
    let id = sc.publish(1, &removal.content);
    sc.stores[1].insert_own(id, removal.key);
    let add = st.add(&sc.stores[1], &sc.feeds.next(1), &[feed(3)], &[]);
    sc.publish(1, &add.expect("add"));
    let post = st.seal_post(&sc.stores[1], &sc.feeds.next(1), b"{\"text\":\"a\"}");
    sc.publish(1, &post.expect("post"));

    let st = sc.state(gid);
    let merge = st
        .rekey(&sc.stores[0], &sc.feeds.next(0), &[])
        .expect("merge");
    let id = sc.publish(0, &merge.content);
    sc.stores[0].insert_own(id, merge.key);
    let st = sc.state(gid);
    let post = st.seal_post(&sc.stores[3], &sc.feeds.next(3), b"{\"text\":\"b\"}");
    sc.publish(3, &post.expect("post"));
    sc.records
}
