//! `ssb:` URIs, as the JavaScript `ssb-uri2` package reads and writes them.
//!
//! Owns the mapping between sigil ids (`@….ed25519`, `%….sha256`,
//! `&….sha256`), multiserver addresses, and URIs: `ssb:feed/classic/…`
//! (also read: `ssb:feed/ed25519/…`, the `ssb:feed:ed25519:…` and
//! `ssb://feed/…` spellings), `ssb:message/classic/…` (`…/sha256/…`),
//! `ssb:blob/classic/…`, `ssb:address/multiserver?multiserverAddress=…`
//! and the experimental actions (`ssb:experimental?action=…`). Written
//! URIs are the canonical ones `ssb-uri2` composes: `classic` format,
//! URL-safe base64. Parsing follows the WHATWG URL rules (the `url`
//! crate), as `ssb-uri2` does with JavaScript's `URL`.
//!
//! [`parse_feed`], [`parse_msg`] and [`parse_address`] take a sigil or a
//! URI: what every command accepts where an id or an address goes. Pure;
//! imports `crypto` and `net` (addresses), nothing else.

use crate::crypto::{BlobId, FeedId, MsgId, b64_decode, b64_encode};
use crate::net::MultiAddr;

/// What an `ssb:` URI names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Uri {
    /// A classic feed.
    Feed(FeedId),
    /// A classic message.
    Message(MsgId),
    /// A blob (its sha256).
    Blob([u8; 32]),
    /// A multiserver address (as written, not checked).
    Address(String),
    /// An experimental action (`ssb:experimental?action=…`), with its
    /// query parameters in order.
    Experimental {
        /// The action, e.g. `consume-invite` or `claim-http-invite`.
        action: String,
        /// Every parameter, the action's included, decoded.
        params: Vec<(String, String)>,
    },
}

/// Why a URI or id was not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// Not an `ssb:` URI at all.
    #[error("not an ssb: URI: {0}")]
    NotSsb(String),
    /// A type this peer does not read (or one `ssb-uri2` does not know).
    #[error("unsupported ssb: URI type {kind:?}: {uri}")]
    Unsupported {
        /// `type/format` as written.
        kind: String,
        /// The URI.
        uri: String,
    },
    /// The data is not 32 bytes of base64.
    #[error("the data of {0} is not 32 bytes of base64")]
    BadData(String),
    /// An address URI without its address.
    #[error("no multiserverAddress in {0}")]
    NoAddress(String),
    /// An experimental URI without its action.
    #[error("no action in {0}")]
    NoAction(String),
}

/// The 32 bytes of URL-safe (or standard) base64 data.
fn data32(data: &str, uri: &str) -> Result<[u8; 32], UriError> {
    let standard: String = data
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    b64_decode(&standard)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| UriError::BadData(uri.to_string()))
}

fn safe(bytes: &[u8; 32]) -> String {
    b64_encode(bytes).replace('+', "-").replace('/', "_")
}

/// Reads an `ssb:` URI.
pub fn parse(text: &str) -> Result<Uri, UriError> {
    let not = || UriError::NotSsb(text.to_string());
    if !text.starts_with("ssb:") {
        return Err(not());
    }
    let url = url::Url::parse(text).map_err(|_| not())?;
    // `ssb:type/format/data`, `ssb:type:format:data`, `ssb://type/format/data`:
    // the host of the last is the type.
    let mut path = String::new();
    if let Some(host) = url.host_str() {
        path.push_str(host);
    }
    path.push_str(url.path());
    let path = path.trim_start_matches('/');
    let mut parts = path.split(['/', ':']).filter(|p| !p.is_empty());
    let kind = parts.next().unwrap_or("");
    if kind == "experimental" {
        let params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let action = params
            .iter()
            .find(|(k, _)| k == "action")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| UriError::NoAction(text.to_string()))?;
        return Ok(Uri::Experimental { action, params });
    }
    let format = parts.next().unwrap_or("");
    let unsupported = || UriError::Unsupported {
        kind: format!("{kind}/{format}"),
        uri: text.to_string(),
    };
    if (kind, format) == ("address", "multiserver") {
        return url
            .query_pairs()
            .find(|(k, _)| k == "multiserverAddress")
            .map(|(_, v)| Uri::Address(v.into_owned()))
            .filter(|u| !matches!(u, Uri::Address(a) if a.is_empty()))
            .ok_or_else(|| UriError::NoAddress(text.to_string()));
    }
    let data = parts
        .next()
        .ok_or_else(|| UriError::BadData(text.to_string()))?;
    if parts.next().is_some() {
        return Err(unsupported());
    }
    match (kind, format) {
        ("feed", "classic" | "ed25519") => Ok(Uri::Feed(FeedId(data32(data, text)?))),
        ("message", "classic" | "sha256") => Ok(Uri::Message(MsgId(data32(data, text)?))),
        ("blob", "classic" | "sha256") => Ok(Uri::Blob(data32(data, text)?)),
        _ => Err(unsupported()),
    }
}

impl std::fmt::Display for Uri {
    /// The canonical URI, as `ssb-uri2` composes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uri::Feed(id) => write!(f, "ssb:feed/classic/{}", safe(&id.0)),
            Uri::Message(id) => write!(f, "ssb:message/classic/{}", safe(&id.0)),
            Uri::Blob(h) => write!(f, "ssb:blob/classic/{}", safe(h)),
            Uri::Address(a) => write!(
                f,
                "ssb:address/multiserver?multiserverAddress={}",
                encode_component(a)
            ),
            Uri::Experimental { params, .. } => {
                f.write_str("ssb:experimental?")?;
                for (i, (k, v)) in params.iter().enumerate() {
                    if i > 0 {
                        f.write_str("&")?;
                    }
                    write!(f, "{}={}", encode_component(k), encode_component(v))?;
                }
                Ok(())
            }
        }
    }
}

/// JavaScript's `encodeURIComponent`: every byte but ASCII letters,
/// digits and `-_.!~*'()` as `%XX`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A feed id given as a sigil or as an `ssb:` URI.
pub fn parse_feed(text: &str) -> Option<FeedId> {
    FeedId::parse(text).or_else(|| match parse(text) {
        Ok(Uri::Feed(f)) => Some(f),
        _ => None,
    })
}

/// A message id given as a sigil or as an `ssb:` URI.
pub fn parse_msg(text: &str) -> Option<MsgId> {
    MsgId::parse(text).or_else(|| match parse(text) {
        Ok(Uri::Message(m)) => Some(m),
        _ => None,
    })
}

/// A blob id given as a sigil id (`&….sha256`) or an `ssb:` URI.
pub fn parse_blob(text: &str) -> Option<BlobId> {
    BlobId::parse(text).or_else(|| match parse(text) {
        Ok(Uri::Blob(b)) => Some(BlobId(b)),
        _ => None,
    })
}

/// A multiserver address given as such or as an `ssb:address` URI
/// (checked either way).
pub fn parse_address(text: &str) -> Option<String> {
    let address = match parse(text) {
        Ok(Uri::Address(a)) => a,
        Ok(_) => return None,
        Err(_) => text.to_string(),
    };
    address.parse::<MultiAddr>().ok().map(|_| address)
}

/// The URI of an id or address written the usual way: a feed, message or
/// blob sigil, a multiserver address, or an `ssb:` URI (rewritten in its
/// canonical form).
pub fn of(text: &str) -> Result<Uri, UriError> {
    if let Some(f) = FeedId::parse(text) {
        return Ok(Uri::Feed(f));
    }
    if let Some(m) = MsgId::parse(text) {
        return Ok(Uri::Message(m));
    }
    if let Some(b) = text
        .strip_prefix('&')
        .and_then(|r| r.strip_suffix(".sha256"))
        .and_then(b64_decode)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    {
        return Ok(Uri::Blob(b));
    }
    if text.parse::<MultiAddr>().is_ok() {
        return Ok(Uri::Address(text.to_string()));
    }
    parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The fixtures of ssb-uri2's own tests (test/fixtures.js).
    const FEED: &str = "@+oaWWDs8g73EZFUMfW37R/ULtFEjwKN/DczvdYihjbU=.ed25519";
    const FEED_URIS: [&str; 4] = [
        "ssb:feed/classic/-oaWWDs8g73EZFUMfW37R_ULtFEjwKN_DczvdYihjbU=",
        "ssb:feed:ed25519:-oaWWDs8g73EZFUMfW37R_ULtFEjwKN_DczvdYihjbU=",
        "ssb://feed/ed25519/-oaWWDs8g73EZFUMfW37R_ULtFEjwKN_DczvdYihjbU=",
        "ssb:feed/ed25519/-oaWWDs8g73EZFUMfW37R_ULtFEjwKN_DczvdYihjbU=",
    ];
    const MSG: &str = "%g3hPVPDEO1Aj/uPl0+J2NlhFB2bbFLIHlty+YuqFZ3w=.sha256";
    const MSG_URIS: [&str; 4] = [
        "ssb:message/classic/g3hPVPDEO1Aj_uPl0-J2NlhFB2bbFLIHlty-YuqFZ3w=",
        "ssb:message:sha256:g3hPVPDEO1Aj_uPl0-J2NlhFB2bbFLIHlty-YuqFZ3w=",
        "ssb://message/sha256/g3hPVPDEO1Aj_uPl0-J2NlhFB2bbFLIHlty-YuqFZ3w=",
        "ssb:message/sha256/g3hPVPDEO1Aj_uPl0-J2NlhFB2bbFLIHlty-YuqFZ3w=",
    ];
    const BLOB: &str = "&sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n/OJGSC1U=.sha256";
    const BLOB_URI: &str = "ssb:blob/classic/sbBmsB7XWvmIzkBzreYcuzPpLtpeCMDIs6n_OJGSC1U=";
    const ADDR: &str = "net:wx.larpa.net:8008~shs:DTNmX+4SjsgZ7xyDh5xxmNtFqa6pWi5Qtw7cE8aR9TQ=";
    const ADDR_URIS: [&str; 3] = [
        "ssb:address/multiserver?multiserverAddress=net%3Awx.larpa.net%3A8008~shs%3ADTNmX%2B4SjsgZ7xyDh5xxmNtFqa6pWi5Qtw7cE8aR9TQ%3D",
        "ssb:address:multiserver?multiserverAddress=net%3Awx.larpa.net%3A8008~shs%3ADTNmX%2B4SjsgZ7xyDh5xxmNtFqa6pWi5Qtw7cE8aR9TQ%3D",
        "ssb://address/multiserver?multiserverAddress=net%3Awx.larpa.net%3A8008~shs%3ADTNmX%2B4SjsgZ7xyDh5xxmNtFqa6pWi5Qtw7cE8aR9TQ%3D",
    ];

    #[test]
    fn every_spelling_ssb_uri2_reads_is_read_and_written_canonically() {
        let feed = FeedId::parse(FEED).unwrap();
        for u in FEED_URIS {
            assert_eq!(parse(u), Ok(Uri::Feed(feed)), "{u}");
            assert_eq!(parse_feed(u), Some(feed));
        }
        assert_eq!(of(FEED).unwrap().to_string(), FEED_URIS[0]);
        let msg = MsgId::parse(MSG).unwrap();
        for u in MSG_URIS {
            assert_eq!(parse(u), Ok(Uri::Message(msg)), "{u}");
            assert_eq!(parse_msg(u), Some(msg));
        }
        assert_eq!(of(MSG).unwrap().to_string(), MSG_URIS[0]);
        assert_eq!(of(BLOB).unwrap().to_string(), BLOB_URI);
        for u in ADDR_URIS {
            assert_eq!(parse(u), Ok(Uri::Address(ADDR.into())), "{u}");
        }
        assert_eq!(of(ADDR).unwrap().to_string(), ADDR_URIS[0]);
        // A URI given to `of` comes back canonical.
        assert_eq!(of(MSG_URIS[2]).unwrap().to_string(), MSG_URIS[0]);
    }

    #[test]
    fn experimental_actions_keep_their_parameters() {
        let u = "ssb:experimental?action=claim-http-invite&invite=39c0ac1850ec9af14f1bb73&postTo=https%3A%2F%2Fscuttlebutt.eu%2Fclaiminvite";
        let Ok(Uri::Experimental { action, params }) = parse(u) else {
            panic!("{u}")
        };
        assert_eq!(action, "claim-http-invite");
        assert_eq!(params[2].1, "https://scuttlebutt.eu/claiminvite");
        assert_eq!(parse(u).unwrap().to_string(), u);
        let slashed =
            "ssb://experimental/?action=consume-invite&invite=net%3Ahost%3A8008~shs%3Ak%3As";
        let Ok(Uri::Experimental { action, params }) = parse(slashed) else {
            panic!("{slashed}")
        };
        assert_eq!(action, "consume-invite");
        assert_eq!(params[1].1, "net:host:8008~shs:k:s");
    }

    #[test]
    fn malformed_uris_are_errors_never_ids() {
        for bad in [
            "ssb:feed/classic/-oaWWDs8g73EZFUMfW37R_ULtFEjwKN_DczvdYihj=",
            "ssb:feed/classic/",
            "ssb:feed/bendybutt-v1/APaWWDs8g73EZFUMfW37RBULtFEjwKNbDczvdYiRXtA=",
            "ssb:message/cloaked/Z0rMVMDEO1Aj0uPl0_J2NlhFB2bbFLIHlty_YuqArFq=",
            "ssb:thing/classic/-oaWWDs8g73EZFUMfW37R_ULtFEjwKN_DczvdYihjbU=",
            "ssb:address/multiserver",
            "ssb:experimental?invite=x",
            "http://feed/classic/x",
            "ssb:",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
            assert_eq!(parse_feed(bad), None, "{bad}");
            assert_eq!(parse_msg(bad), None, "{bad}");
        }
        // An address URI holding something that is not an address.
        assert_eq!(
            parse_address("ssb:address/multiserver?multiserverAddress=nonsense"),
            None
        );
        assert_eq!(parse_address(ADDR_URIS[1]).as_deref(), Some(ADDR));
        // A feed URI is not a message id, nor the other way round.
        assert_eq!(parse_msg(FEED_URIS[0]), None);
        assert_eq!(parse_feed(MSG_URIS[0]), None);
    }

    #[test]
    fn encode_component_is_javascripts() {
        assert_eq!(
            encode_component("a b+c/d=é~*'()!"),
            "a%20b%2Bc%2Fd%3D%C3%A9~*'()!"
        );
    }
}
