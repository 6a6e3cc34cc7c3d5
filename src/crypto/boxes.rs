//! Key exchange and secret boxes: the primitives under the secret handshake,
//! the box stream and private-box.
//!
//! Owns: curve25519 key pairs (ephemeral keys), `scalarmult`, the ed25519 ->
//! curve25519 conversions, xsalsa20poly1305 secret boxes (combined and
//! detached), sealed boxes (anonymous sender, to a curve25519 key) and
//! constant-time HMAC verification. Small, safe functions over
//! fixed-size arrays; pure (no I/O apart from libsodium's random source in
//! [`CurveKeypair::generate`]). Imports only the parent `crypto` module, never
//! anything else from shoal.

use std::fmt;

use sha2::Digest as _;
use sodiumoxide::crypto::auth::hmacsha512256 as auth;
use sodiumoxide::crypto::box_::curve25519xsalsa20poly1305 as box_;
use sodiumoxide::crypto::scalarmult::curve25519 as x25519;
use sodiumoxide::crypto::sealedbox::curve25519blake2bxsalsa20poly1305 as sealedbox;
use sodiumoxide::crypto::secretbox::xsalsa20poly1305 as secretbox;
use sodiumoxide::crypto::sign::ed25519;
use zeroize::Zeroize as _;

use super::{FeedId, Keypair, init};

/// Bytes in a secret-box key.
pub const SECRETBOX_KEY_LEN: usize = 32;
/// Bytes in a secret-box nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes in a secret-box authentication tag (its MAC).
pub const TAG_LEN: usize = 16;

/// A 24-byte xsalsa20 nonce.
pub type Nonce = [u8; NONCE_LEN];
/// A 16-byte poly1305 tag.
pub type Tag = [u8; TAG_LEN];

/// Why a curve25519 operation refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CurveError {
    /// The ed25519 public key is not a canonical point of the main subgroup
    /// (or is of small order), so it has no curve25519 counterpart.
    #[error("ed25519 public key cannot be converted to curve25519")]
    InvalidEd25519Key,
    /// The Diffie-Hellman result is all zeros: the peer's curve25519 key is a
    /// point of small order.
    #[error("curve25519 public key of small order")]
    SmallOrder,
}

/// A secret box (or detached tag) did not authenticate under its key and nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("secret box does not authenticate")]
pub struct OpenError;

/// A curve25519 secret scalar, wiped from memory when dropped.
pub struct CurveSecret([u8; 32]);

impl CurveSecret {
    /// Wraps raw secret bytes (libsodium clamps them when used).
    pub fn from_bytes(bytes: [u8; 32]) -> CurveSecret {
        CurveSecret(bytes)
    }

    /// The public key `scalarmult_base(self)`.
    pub fn public(&self) -> [u8; 32] {
        init();
        x25519::scalarmult_base(&x25519::Scalar(self.0)).0
    }
}

impl Drop for CurveSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for CurveSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurveSecret(..)")
    }
}

/// A curve25519 key pair, as the secret handshake uses for its ephemeral keys.
#[derive(Debug)]
pub struct CurveKeypair {
    /// The public key, sent to the peer.
    pub public: [u8; 32],
    /// The secret scalar.
    pub secret: CurveSecret,
}

impl CurveKeypair {
    /// A fresh random key pair (libsodium `crypto_box_keypair`).
    pub fn generate() -> CurveKeypair {
        init();
        let mut bytes = [0u8; 32];
        sodiumoxide::randombytes::randombytes_into(&mut bytes);
        let kp = CurveKeypair::from_secret(bytes);
        bytes.zeroize();
        kp
    }

    /// The key pair of a given secret (deterministic keys for tests and vectors).
    pub fn from_secret(secret: [u8; 32]) -> CurveKeypair {
        let secret = CurveSecret(secret);
        CurveKeypair {
            public: secret.public(),
            secret,
        }
    }
}

impl CurveKeypair {
    /// The curve25519 key pair of an ed25519 identity: the converted secret
    /// and the public key it gives (equal to [`ed25519_pk_to_curve25519`] of
    /// the identity's public key).
    pub fn of_identity(me: &Keypair) -> CurveKeypair {
        let secret = ed25519_sk_to_curve25519(me);
        CurveKeypair {
            public: secret.public(),
            secret,
        }
    }
}

/// Bytes a sealed box adds to its plaintext: an ephemeral public key (32)
/// and a poly1305 tag (16).
pub const SEAL_OVERHEAD: usize = 48;

/// libsodium `crypto_box_seal`: encrypts `plain` to a curve25519 public key
/// with a fresh ephemeral key pair, so the box does not reveal its sender.
pub fn sealed_box_seal(plain: &[u8], recipient: &[u8; 32]) -> Vec<u8> {
    init();
    sealedbox::seal(plain, &box_::PublicKey(*recipient))
}

/// libsodium `crypto_box_seal_open`: opens what [`sealed_box_seal`] made for
/// `me`.
pub fn sealed_box_open(sealed: &[u8], me: &CurveKeypair) -> Result<Vec<u8>, OpenError> {
    init();
    let secret = box_::SecretKey(me.secret.0);
    sealedbox::open(sealed, &box_::PublicKey(me.public), &secret).map_err(|()| OpenError)
}

/// Diffie-Hellman: `secret * public` on curve25519. Fails, like libsodium,
/// when the result is all zeros (a public key of small order).
pub fn scalarmult(secret: &CurveSecret, public: &[u8; 32]) -> Result<[u8; 32], CurveError> {
    init();
    x25519::scalarmult(&x25519::Scalar(secret.0), &x25519::GroupElement(*public))
        .map(|q| q.0)
        .map_err(|()| CurveError::SmallOrder)
}

/// The curve25519 secret of an ed25519 identity, as libsodium's
/// `crypto_sign_ed25519_sk_to_curve25519`: the first half of sha512(seed),
/// clamped. Infallible.
pub fn ed25519_sk_to_curve25519(me: &Keypair) -> CurveSecret {
    let kp = me.to_keypair_bytes();
    let mut h: [u8; 64] = sha2::Sha512::digest(&kp[..32]).into();
    drop(kp);
    let mut s = [0u8; 32];
    s.copy_from_slice(&h[..32]);
    h.zeroize();
    s[0] &= 248;
    s[31] &= 127;
    s[31] |= 64;
    CurveSecret(s)
}

/// The curve25519 public key of an ed25519 public key (libsodium
/// `crypto_sign_ed25519_pk_to_curve25519`). Refuses, never panics on, keys
/// that are not canonical points of the main subgroup.
pub fn ed25519_pk_to_curve25519(id: &FeedId) -> Result<[u8; 32], CurveError> {
    init();
    ed25519::to_curve25519_pk(&ed25519::PublicKey(id.0))
        .map(|pk| pk.0)
        .map_err(|()| CurveError::InvalidEd25519Key)
}

/// xsalsa20poly1305 `crypto_secretbox_easy`: the 16-byte tag followed by the
/// ciphertext.
pub fn secretbox_seal(plain: &[u8], nonce: &Nonce, key: &[u8; 32]) -> Vec<u8> {
    init();
    secretbox::seal(plain, &secretbox::Nonce(*nonce), &secretbox::Key(*key))
}

/// Opens what [`secretbox_seal`] made.
pub fn secretbox_open(sealed: &[u8], nonce: &Nonce, key: &[u8; 32]) -> Result<Vec<u8>, OpenError> {
    init();
    secretbox::open(sealed, &secretbox::Nonce(*nonce), &secretbox::Key(*key))
        .map_err(|()| OpenError)
}

/// Encrypts `buf` in place and returns its tag (`crypto_secretbox_detached`).
pub fn secretbox_seal_detached(buf: &mut [u8], nonce: &Nonce, key: &[u8; 32]) -> Tag {
    init();
    secretbox::seal_detached(buf, &secretbox::Nonce(*nonce), &secretbox::Key(*key)).0
}

/// Checks `tag` and decrypts `buf` in place (`crypto_secretbox_open_detached`).
/// On failure `buf` is left unchanged.
pub fn secretbox_open_detached(
    buf: &mut [u8],
    tag: &Tag,
    nonce: &Nonce,
    key: &[u8; 32],
) -> Result<(), OpenError> {
    init();
    secretbox::open_detached(
        buf,
        &secretbox::Tag(*tag),
        &secretbox::Nonce(*nonce),
        &secretbox::Key(*key),
    )
    .map_err(|()| OpenError)
}

/// Whether `mac` is HMAC-SHA-512-256(key, data), compared in constant time.
pub fn hmac_sha512_256_verify(key: &[u8; 32], data: &[u8], mac: &[u8; 32]) -> bool {
    init();
    auth::verify(&auth::Tag(*mac), data, &auth::Key(*key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dh_agrees_and_small_order_is_refused() {
        let a = CurveKeypair::from_secret([1; 32]);
        let b = CurveKeypair::generate();
        assert_eq!(
            scalarmult(&a.secret, &b.public).unwrap(),
            scalarmult(&b.secret, &a.public).unwrap()
        );
        assert_eq!(scalarmult(&a.secret, &[0; 32]), Err(CurveError::SmallOrder));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(scalarmult(&a.secret, &one), Err(CurveError::SmallOrder));
    }

    #[test]
    fn ed25519_conversions_match_libsodium_and_agree() {
        init();
        for seed in [[3u8; 32], [200; 32], [0; 32]] {
            let me = Keypair::from_seed(&seed);
            let ours = ed25519_sk_to_curve25519(&me);
            let sodium =
                ed25519::to_curve25519_sk(&ed25519::SecretKey(*me.to_keypair_bytes())).unwrap();
            assert_eq!(ours.0, sodium.0);
            // The converted secret and public key form a curve25519 pair.
            assert_eq!(ours.public(), ed25519_pk_to_curve25519(&me.id()).unwrap());
        }
    }

    #[test]
    fn invalid_ed25519_keys_are_refused() {
        // Small order, and a y coordinate that is not on the curve.
        assert!(ed25519_pk_to_curve25519(&FeedId([0; 32])).is_err());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(ed25519_pk_to_curve25519(&FeedId(one)).is_err());
        assert_eq!(
            ed25519_pk_to_curve25519(&FeedId([0xff; 32])),
            Err(CurveError::InvalidEd25519Key)
        );
        // Random bytes: never a panic, whichever the answer.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            let mut k = [0u8; 32];
            for b in &mut k {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let _ = ed25519_pk_to_curve25519(&FeedId(k));
        }
    }

    #[test]
    fn secretbox_combined_and_detached_agree() {
        let key = [9u8; 32];
        let nonce = [4u8; 24];
        let sealed = secretbox_seal(b"hello box", &nonce, &key);
        assert_eq!(sealed.len(), 9 + TAG_LEN);
        let mut buf = *b"hello box";
        let tag = secretbox_seal_detached(&mut buf, &nonce, &key);
        assert_eq!(&sealed[..TAG_LEN], &tag);
        assert_eq!(&sealed[TAG_LEN..], &buf);
        assert_eq!(secretbox_open(&sealed, &nonce, &key).unwrap(), b"hello box");
        secretbox_open_detached(&mut buf, &tag, &nonce, &key).unwrap();
        assert_eq!(&buf, b"hello box");

        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert_eq!(secretbox_open(&bad, &nonce, &key), Err(OpenError));
        assert_eq!(secretbox_open(&sealed[..10], &nonce, &key), Err(OpenError));
        assert_eq!(secretbox_open(&sealed, &[5; 24], &key), Err(OpenError));
    }

    #[test]
    fn sealed_boxes_open_only_for_their_recipient() {
        let me = CurveKeypair::of_identity(&Keypair::from_seed(&[5; 32]));
        assert_eq!(
            me.public,
            ed25519_pk_to_curve25519(&Keypair::from_seed(&[5; 32]).id()).unwrap()
        );
        let other = CurveKeypair::from_secret([6; 32]);
        let sealed = sealed_box_seal(b"key", &me.public);
        assert_eq!(sealed.len(), 3 + SEAL_OVERHEAD);
        assert_eq!(sealed_box_open(&sealed, &me).unwrap(), b"key");
        assert_eq!(sealed_box_open(&sealed, &other), Err(OpenError));
        let mut bad = sealed.clone();
        bad[40] ^= 1;
        assert_eq!(sealed_box_open(&bad, &me), Err(OpenError));
        assert_eq!(sealed_box_open(&sealed[..47], &me), Err(OpenError));
    }

    #[test]
    fn hmac_verify() {
        let key = [7u8; 32];
        let mac = super::super::hmac_sha512_256(&key, b"data");
        assert!(hmac_sha512_256_verify(&key, b"data", &mac));
        assert!(!hmac_sha512_256_verify(&key, b"datb", &mac));
    }
}
