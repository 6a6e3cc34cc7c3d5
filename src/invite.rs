//! Pub invites: their codes, redeeming one at a pub, and what a
//! connection that authenticated with an invite's key may call.
//!
//! An invite is a random 32-byte seed a pub made and kept the public key
//! of. Whoever holds the code dials the pub with the ed25519 keypair of
//! the seed (the secret handshake then proves the seed) and calls
//! `invite.use({feed})`, as ssb-invite's `invite.accept` does; the pub
//! follows `feed` and answers with that follow, `{key, value, timestamp}`.
//!
//! Owns: the two text forms of a code ([`Code`]), the multiserver form
//! `net:HOST:PORT~shs:KEY:SEED` this node prints and the legacy form
//! `HOST:PORT:@KEY.ed25519~SEED` older pubs print (ssb-server's
//! `invite.create`); the `--external HOST[:PORT]` a code names
//! ([`External`]); the client side of redeeming ([`redeem`]); and the pub's
//! side of such a connection ([`serve`]): `invite.use` and `getAddress`
//! are answered, every other method is refused with muxrpc's words for a
//! method not allowed, and nothing else happens on it (no replication).
//! Taking a use and publishing the follow is the store's and the node's
//! (through [`serve`]'s `redeem`).
//!
//! Imports `crypto`, `net` and `rpc`; never `store`, `replicate`, `node`
//! or above.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::crypto::{FeedId, Keypair, b64_decode, b64_encode};
use crate::net::{self, AddrError, MultiAddr, NetError};
use crate::rpc::{self, Body, Incoming, Responder, RpcError};

/// How long the pub may take to answer `invite.use`.
pub const USE_TIMEOUT: Duration = Duration::from_secs(30);

/// The source of a peer-table record of a pub whose invite we redeemed:
/// kept connected like the peers the user added.
pub const PEER_SOURCE: &str = "invite";

/// An invite code: the pub's address and key, and the seed whose keypair
/// redeems it. Printed in the multiserver form; its `Debug` hides the seed.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    /// Where the pub listens, and its key.
    pub pub_addr: MultiAddr,
    seed: Zeroizing<[u8; 32]>,
}

/// Why a text is not an invite code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// Nothing was given.
    #[error("the invite code is empty")]
    Empty,
    /// Neither form.
    #[error(
        "not an invite code: expected net:HOST:PORT~shs:KEY:SEED or HOST:PORT:@KEY.ed25519~SEED"
    )]
    Form,
    /// A multiserver code without a `net:` alternative.
    #[error("the invite code has no net: address (only net: invites are supported)")]
    NoNetAddress,
    /// A multiserver address without the seed: an address, not an invite.
    #[error("the invite code has no seed after the pub's key (shs:KEY:SEED)")]
    MissingSeed,
    /// The pub's address is not valid.
    #[error("bad pub address in the invite code: {0}")]
    Address(AddrError),
    /// The legacy form's key is not a feed id.
    #[error("bad pub key {0:?} in the invite code: expected @<base64 of 32 bytes>.ed25519")]
    Key(String),
    /// The seed is not base64 of 32 bytes.
    #[error("bad seed in the invite code: expected base64 of 32 bytes")]
    Seed,
}

impl Code {
    /// A code for the pub at `pub_addr` and `seed`.
    pub fn new(pub_addr: MultiAddr, seed: [u8; 32]) -> Code {
        Code {
            pub_addr,
            seed: Zeroizing::new(seed),
        }
    }

    /// The keypair that redeems the code.
    pub fn keys(&self) -> Keypair {
        Keypair::from_seed(&self.seed)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Code")
            .field("pub_addr", &self.pub_addr)
            .field("seed", &"<hidden>")
            .finish()
    }
}

impl fmt::Display for Code {
    /// `net:HOST:PORT~shs:KEY:SEED`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pub_addr, b64_encode(&self.seed[..]))
    }
}

fn seed_of(s: &str) -> Result<[u8; 32], CodeError> {
    b64_decode(s)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(CodeError::Seed)
}

impl FromStr for Code {
    type Err = CodeError;

    /// Parses either form. Surrounding white space and double quotes are
    /// dropped (codes are often pasted quoted, and ssb-invite drops them
    /// too), and so is a `#…` suffix (ssb-ref's redirect).
    fn from_str(s: &str) -> Result<Code, CodeError> {
        let s = s.trim();
        let s = s
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(s);
        let s = s.split('#').next().unwrap_or_default().trim();
        if s.is_empty() {
            return Err(CodeError::Empty);
        }
        if s.contains("~shs:") {
            let alt = s
                .split(';')
                .map(str::trim)
                .find(|a| a.starts_with("net:"))
                .ok_or(CodeError::NoNetAddress)?;
            let (net, shs) = alt.split_once("~shs:").ok_or(CodeError::Form)?;
            let (key, seed) = shs.split_once(':').ok_or(CodeError::MissingSeed)?;
            let pub_addr: MultiAddr = format!("{net}~shs:{key}")
                .parse()
                .map_err(CodeError::Address)?;
            return Ok(Code::new(pub_addr, seed_of(seed)?));
        }
        // HOST:PORT:@KEY.ed25519~SEED, the host possibly an IPv6 address.
        let (addr, seed) = s.rsplit_once('~').ok_or(CodeError::Form)?;
        let (host_port, key) = addr.rsplit_once(':').ok_or(CodeError::Form)?;
        if !key.starts_with('@') {
            return Err(CodeError::Form);
        }
        let key = FeedId::parse(key).ok_or_else(|| CodeError::Key(key.to_string()))?;
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or(CodeError::Address(AddrError::MissingPort))?;
        let pub_addr: MultiAddr = format!("net:{host}:{port}~shs:{}", key.b64())
            .parse()
            .map_err(CodeError::Address)?;
        Ok(Code::new(pub_addr, seed_of(seed)?))
    }
}

/// Where peers reach a pub, when not where it listens: `HOST`, `HOST:PORT`,
/// `[IPV6]` or `[IPV6]:PORT` (an IPv6 address without brackets is a host
/// without a port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// The host name or IP address.
    pub host: String,
    /// The port, when not the one the node listens on.
    pub port: Option<u16>,
}

/// Why a `--external` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalError {
    /// No host.
    #[error("--external needs a host")]
    EmptyHost,
    /// A character no host has.
    #[error("--external host {0:?} is not a host name or IP address")]
    BadHost(String),
    /// The port is not a number in 1..=65535.
    #[error("--external port {0:?} is not a port (1 to 65535)")]
    BadPort(String),
}

impl FromStr for External {
    type Err = ExternalError;

    fn from_str(s: &str) -> Result<External, ExternalError> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| ExternalError::BadHost(s.to_string()))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(ExternalError::BadHost(s.to_string())),
                },
            }
        } else {
            match s.matches(':').count() {
                0 => (s, None),
                1 => s
                    .split_once(':')
                    .map(|(h, p)| (h, Some(p)))
                    .unwrap_or((s, None)),
                _ => (s, None),
            }
        };
        if host.is_empty() {
            return Err(ExternalError::EmptyHost);
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~;[]/@#\"".contains(c))
        {
            return Err(ExternalError::BadHost(host.to_string()));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => return Err(ExternalError::BadPort(p.to_string())),
            },
        };
        Ok(External {
            host: host.to_string(),
            port,
        })
    }
}

/// Why an invite was not redeemed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// The pub could not be dialled or refused the handshake.
    #[error("cannot reach the pub at {addr}: {source}")]
    Unreachable {
        /// Its address.
        addr: String,
        /// Why.
        source: NetError,
    },
    /// The pub answered `invite.use` with an error.
    #[error("the pub refused the invite: {0}")]
    Refused(String),
    /// The pub did not answer in time.
    #[error("the pub did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed before the answer.
    #[error("the connection to the pub failed: {0}")]
    Rpc(RpcError),
}

/// Redeems `code` for `feed` (our id): dials the pub as the seed's keypair
/// on the network `net_key`, calls `invite.use({feed})` and closes the
/// connection. Returns the pub's answer (ssb-invite answers with its
/// follow of `feed`, `{key, value, timestamp}`; null when not JSON).
pub async fn redeem(code: &Code, net_key: &[u8; 32], feed: &FeedId) -> Result<Json, RedeemError> {
    let keys = code.keys();
    let (reader, writer, _) = net::connect_to(&code.pub_addr, net_key, &keys)
        .await
        .map_err(|source| RedeemError::Unreachable {
            addr: code.pub_addr.to_string(),
            source,
        })?;
    // The pub has nothing to ask of an invite's connection: its requests,
    // should any come, are answered with an error (the receiver is gone).
    let (handle, incoming, _task) = rpc::start(reader, writer, rpc::Options::default());
    drop(incoming);
    let args = serde_json::json!([{ "feed": feed.to_string() }]);
    let answer = tokio::time::timeout(USE_TIMEOUT, handle.call_async(&["invite", "use"], args))
        .await
        .map_err(|_| RedeemError::Timeout(USE_TIMEOUT));
    handle.goodbye().await;
    match answer? {
        Ok(body) => Ok(body.parse_json().unwrap_or(Json::Null)),
        Err(RpcError::Remote(e)) => Err(RedeemError::Refused(e.message)),
        Err(e) => Err(RedeemError::Rpc(e)),
    }
}

/// Why the arguments of `invite.use` were refused (the first as
/// ssb-invite words it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UseError {
    /// No `feed`.
    #[error("feed to follow is missing")]
    Missing,
    /// `feed` is not a feed id.
    #[error("feed to follow is not a feed id: {0}")]
    NotAFeed(String),
}

/// The feed an `invite.use` call asks to be followed: `[{feed}]`.
pub fn use_args(args: &Json) -> Result<FeedId, UseError> {
    let feed = args.get(0).and_then(|o| o.get("feed"));
    match feed {
        None | Some(Json::Null) => Err(UseError::Missing),
        Some(Json::String(s)) => FeedId::parse(s).ok_or_else(|| UseError::NotAFeed(s.clone())),
        Some(other) => Err(UseError::NotAFeed(other.to_string())),
    }
}

/// The error muxrpc answers for a method a connection may not call:
/// `method:NAME is not in list of allowed methods`, the name's parts
/// joined by commas as JavaScript prints an array.
pub fn not_allowed(name: &[String]) -> String {
    format!(
        "method:{} is not in list of allowed methods",
        name.join(",")
    )
}

/// Hands on every request of `incoming` but `invite.use`, which is
/// answered with the error `message` (a connection whose key holds no
/// invite: the code is unknown here). The returned receiver holds one
/// request at a time, so the connection's backpressure is kept.
pub fn refuse_use(
    mut incoming: mpsc::Receiver<Incoming>,
    message: String,
) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(req) = incoming.recv().await {
            if req.is(&["invite", "use"]) {
                let _ = req.responder.error(&message).await;
                continue;
            }
            if tx.send(req).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// Answers the requests of a connection authenticated with an invite's
/// key until it ends: `invite.use` through `redeem` (the feed to follow;
/// its answer or the error message to send), `getAddress` with `address`,
/// anything else refused with [`not_allowed`]. Requests are answered one
/// at a time.
pub async fn serve<F, Fut>(
    mut incoming: mpsc::Receiver<Incoming>,
    address: Option<String>,
    redeem: F,
) where
    F: Fn(FeedId) -> Fut,
    Fut: Future<Output = Result<Body, String>>,
{
    while let Some(req) = incoming.recv().await {
        let name: Vec<&str> = req.name.iter().map(String::as_str).collect();
        let _ = match (name.as_slice(), req.responder) {
            (["invite", "use"], Responder::Async(a)) => match use_args(&req.args) {
                Ok(feed) => match redeem(feed).await {
                    Ok(body) => a.ok(body).await,
                    Err(message) => a.err(&message).await,
                },
                Err(e) => a.err(&e.to_string()).await,
            },
            (["getAddress"], Responder::Async(a)) => {
                let body = Body::json(&address).unwrap_or_else(|_| Body::json_raw("null"));
                a.ok(body).await
            }
            (_, responder) => {
                tracing::debug!("invite key: refused {}", req.name.join("."));
                responder.error(&not_allowed(&req.name)).await
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "FCX/tsDLpubCPKKfIrw4gc+SQkHcaD17s7GI6i/ziWY=";
    const SEED: &str = "xZ2JqNzwDeVWBi1Ucyd0l9UQr1Iq3AZLJQqjJ79dj7A=";

    #[test]
    fn both_forms_parse_to_one_code_printed_in_the_multiserver_form() {
        let ms = format!("net:pub.example.com:8008~shs:{KEY}:{SEED}");
        let legacy = format!("pub.example.com:8008:@{KEY}.ed25519~{SEED}");
        let a: Code = ms.parse().unwrap();
        let b: Code = legacy.parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), ms);
        assert_eq!(a.pub_addr.host, "pub.example.com");
        assert_eq!(a.pub_addr.port, 8008);
        assert_eq!(a.pub_addr.key.b64(), KEY);
        let seed: [u8; 32] = b64_decode(SEED).unwrap().try_into().unwrap();
        assert_eq!(a.keys().id(), Keypair::from_seed(&seed).id());
        // Pasted with quotes, spaces or a redirect.
        for s in [
            format!("\"{ms}\""),
            format!("  {legacy}\n"),
            format!("{legacy}#/home"),
        ] {
            assert_eq!(s.parse::<Code>().unwrap(), a, "{s}");
        }
        // IPv6 hosts, and the first net: alternative of several.
        let v6: Code = format!("fe80::1:8008:@{KEY}.ed25519~{SEED}")
            .parse()
            .unwrap();
        assert_eq!(
            (v6.pub_addr.host.as_str(), v6.pub_addr.port),
            ("fe80::1", 8008)
        );
        let several: Code = format!("ws://h:80~shs:{KEY}:{SEED};net:h2:9~shs:{KEY}:{SEED}")
            .parse()
            .unwrap();
        assert_eq!(several.pub_addr.host, "h2");
        assert!(!format!("{a:?}").contains(SEED), "Debug hides the seed");
    }

    #[test]
    fn malformed_codes_are_refused_with_their_reason() {
        let bad = |s: String| s.parse::<Code>().unwrap_err();
        let short_seed = &SEED[..SEED.len() - 4];
        assert_eq!(bad(String::new()), CodeError::Empty);
        assert_eq!(bad("\"\"".into()), CodeError::Empty);
        assert_eq!(bad("hello".into()), CodeError::Form);
        assert_eq!(bad(format!("net:h:8008~shs:{KEY}")), CodeError::MissingSeed);
        assert_eq!(
            bad(format!("net:h:8008~shs:{KEY}:{short_seed}")),
            CodeError::Seed
        );
        assert_eq!(
            bad(format!("h:8008:@{KEY}.ed25519~{short_seed}")),
            CodeError::Seed
        );
        assert_eq!(
            bad(format!("net:h:8008~shs:{KEY}:{}", b64_encode(&[1; 31]))),
            CodeError::Seed
        );
        assert_eq!(
            bad(format!("net:h:70000~shs:{KEY}:{SEED}")),
            CodeError::Address(AddrError::BadPort("70000".into()))
        );
        assert_eq!(
            bad(format!("h:0:@{KEY}.ed25519~{SEED}")),
            CodeError::Address(AddrError::BadPort("0".into()))
        );
        let short_key = b64_encode(&[7; 31]);
        assert_eq!(
            bad(format!("net:h:8008~shs:{short_key}:{SEED}")),
            CodeError::Address(AddrError::BadKey(short_key.clone()))
        );
        assert_eq!(
            bad(format!("h:8008:@{short_key}.ed25519~{SEED}")),
            CodeError::Key(format!("@{short_key}.ed25519"))
        );
        assert_eq!(
            bad(format!("h:@{KEY}.ed25519~{SEED}")),
            CodeError::Address(AddrError::MissingPort)
        );
        assert_eq!(
            bad(format!("ws://h:80~shs:{KEY}:{SEED}")),
            CodeError::NoNetAddress
        );
    }

    #[test]
    fn external_addresses() {
        let e = |s: &str| s.parse::<External>();
        let ok = |h: &str, p: Option<u16>| {
            Ok(External {
                host: h.into(),
                port: p,
            })
        };
        assert_eq!(e("pub.example.com"), ok("pub.example.com", None));
        assert_eq!(e("pub.example.com:8009"), ok("pub.example.com", Some(8009)));
        assert_eq!(e("203.0.113.5:1"), ok("203.0.113.5", Some(1)));
        assert_eq!(e("2001:db8::1"), ok("2001:db8::1", None));
        assert_eq!(e("[2001:db8::1]:8008"), ok("2001:db8::1", Some(8008)));
        assert_eq!(e("[2001:db8::1]"), ok("2001:db8::1", None));
        assert_eq!(e(""), Err(ExternalError::EmptyHost));
        assert_eq!(e(":8008"), Err(ExternalError::EmptyHost));
        assert_eq!(e("h:0"), Err(ExternalError::BadPort("0".into())));
        assert_eq!(e("h:65536"), Err(ExternalError::BadPort("65536".into())));
        assert_eq!(e("h:+1"), Err(ExternalError::BadPort("+1".into())));
        assert_eq!(e("a b"), Err(ExternalError::BadHost("a b".into())));
        assert_eq!(e("h~x"), Err(ExternalError::BadHost("h~x".into())));
        assert!(matches!(e("[::1]x"), Err(ExternalError::BadHost(_))));
    }

    #[test]
    fn use_arguments_and_refusals() {
        let feed = Keypair::from_seed(&[3; 32]).id();
        let args = serde_json::json!([{ "feed": feed.to_string() }]);
        assert_eq!(use_args(&args), Ok(feed));
        assert_eq!(use_args(&serde_json::json!([])), Err(UseError::Missing));
        assert_eq!(use_args(&serde_json::json!([{}])), Err(UseError::Missing));
        assert_eq!(
            use_args(&serde_json::json!([{ "feed": "@x" }])),
            Err(UseError::NotAFeed("@x".into()))
        );
        assert_eq!(
            not_allowed(&["ebt".into(), "replicate".into()]),
            "method:ebt,replicate is not in list of allowed methods"
        );
    }
}
