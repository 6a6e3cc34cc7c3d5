//! Symmetric primitives of sealed-epoch groups: XChaCha20-Poly1305 AEAD,
//! BLAKE2b (unkeyed and keyed) and BLAKE2b key derivation.
//!
//! Owns: thin, safe wrappers over libsodium's `aead::xchacha20poly1305_ietf`,
//! `generichash` and `kdf` (blake2b), over fixed-size arrays. Pure; imports
//! only the parent `crypto` module, never anything else from shoal.

use sodiumoxide::crypto::aead::xchacha20poly1305_ietf as aead;
use sodiumoxide::crypto::generichash;
use sodiumoxide::crypto::kdf::blake2b as kdf;

use super::boxes::OpenError;
use super::init;

/// Bytes in an XChaCha20-Poly1305 nonce (random nonces are safe at this size).
pub const AEAD_NONCE_LEN: usize = 24;
/// Bytes an AEAD ciphertext adds to its plaintext (the poly1305 tag).
pub const AEAD_TAG_LEN: usize = 16;

/// XChaCha20-Poly1305-IETF encryption of `plain` with additional data `ad`:
/// the ciphertext followed by its 16-byte tag.
pub fn aead_seal(plain: &[u8], ad: &[u8], nonce: &[u8; AEAD_NONCE_LEN], key: &[u8; 32]) -> Vec<u8> {
    init();
    aead::seal(plain, Some(ad), &aead::Nonce(*nonce), &aead::Key(*key))
}

/// Opens what [`aead_seal`] made; fails unless key, nonce and additional data
/// are all the same.
pub fn aead_open(
    sealed: &[u8],
    ad: &[u8],
    nonce: &[u8; AEAD_NONCE_LEN],
    key: &[u8; 32],
) -> Result<Vec<u8>, OpenError> {
    init();
    aead::open(sealed, Some(ad), &aead::Nonce(*nonce), &aead::Key(*key)).map_err(|()| OpenError)
}

/// Unkeyed BLAKE2b with an `N`-byte output (16..=64) over the concatenation
/// of `parts`.
pub fn blake2b<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    hash(None, parts)
}

/// Keyed BLAKE2b (a MAC / PRF) with an `N`-byte output (16..=64) over the
/// concatenation of `parts`.
pub fn blake2b_keyed<const N: usize>(key: &[u8; 32], parts: &[&[u8]]) -> [u8; N] {
    hash(Some(key), parts)
}

fn hash<const N: usize>(key: Option<&[u8; 32]>, parts: &[&[u8]]) -> [u8; N] {
    const {
        assert!(N >= generichash::DIGEST_MIN && N <= generichash::DIGEST_MAX);
    }
    init();
    // Short inputs (tags, commitments) in one call, without a hash state
    // on the heap: readers compute a tag for every post of a co-member.
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= 128 {
        let mut buf = [0u8; 128];
        let mut at = 0;
        for part in parts {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        let digest = generichash::hash(&buf[..at], Some(N), key.map(|k| &k[..]))
            .expect("BLAKE2b output and key lengths are in range");
        // The parts may be key material (key derivation): no copy of them
        // stays on the stack.
        zeroize::Zeroize::zeroize(&mut buf);
        let mut out = [0u8; N];
        out.copy_from_slice(digest.as_ref());
        return out;
    }
    // Both calls fail only on lengths out of range, which the assertion above
    // and the 32-byte key rule out.
    let mut state = generichash::State::new(Some(N), key.map(|k| &k[..]))
        .expect("BLAKE2b output and key lengths are in range");
    for part in parts {
        state.update(part).expect("BLAKE2b update cannot fail");
    }
    let digest = state.finalize().expect("BLAKE2b finalize cannot fail");
    let mut out = [0u8; N];
    out.copy_from_slice(digest.as_ref());
    out
}

/// libsodium `crypto_kdf_derive_from_key` (BLAKE2b): the 32-byte subkey
/// number `id` of `key` in the 8-byte `context`. Distinct ids or contexts
/// give independent keys.
pub fn kdf_subkey(key: &[u8; 32], id: u64, context: &[u8; 8]) -> [u8; 32] {
    init();
    let mut out = [0u8; 32];
    // Fails only for subkey lengths out of 16..=64.
    kdf::derive_from_key(&mut out, id, *context, &kdf::Key(*key))
        .expect("a 32-byte subkey is in range");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aead_binds_key_nonce_and_additional_data() {
        let key = [1u8; 32];
        let nonce = [2u8; AEAD_NONCE_LEN];
        let sealed = aead_seal(b"body", b"ad", &nonce, &key);
        assert_eq!(sealed.len(), 4 + AEAD_TAG_LEN);
        assert_eq!(aead_open(&sealed, b"ad", &nonce, &key).unwrap(), b"body");
        assert_eq!(aead_open(&sealed, b"ae", &nonce, &key), Err(OpenError));
        assert_eq!(aead_open(&sealed, b"ad", &[3; 24], &key), Err(OpenError));
        assert_eq!(aead_open(&sealed, b"ad", &nonce, &[4; 32]), Err(OpenError));
        assert_eq!(
            aead_open(&sealed[..10], b"ad", &nonce, &key),
            Err(OpenError)
        );
    }

    #[test]
    fn blake2b_matches_known_vectors_and_splits_freely() {
        // BLAKE2b-512("abc"), RFC 7693 appendix A.
        let h: [u8; 64] = blake2b(&[b"abc"]);
        assert_eq!(hex::encode(&h[..16]), "ba80a53f981c4d0d6a2797b69f12f6e9");
        assert_eq!(blake2b::<32>(&[b"ab", b"c"]), blake2b::<32>(&[b"abc"]));
        assert_ne!(
            blake2b::<32>(&[b"abc"]),
            blake2b_keyed::<32>(&[0; 32], &[b"abc"])
        );
        assert_ne!(
            blake2b_keyed::<16>(&[0; 32], &[b"abc"]),
            blake2b_keyed::<16>(&[1; 32], &[b"abc"])
        );
    }

    #[test]
    fn kdf_subkeys_differ_by_id_and_context() {
        let k = [7u8; 32];
        assert_eq!(
            kdf_subkey(&k, 1, b"context1"),
            kdf_subkey(&k, 1, b"context1")
        );
        assert_ne!(
            kdf_subkey(&k, 1, b"context1"),
            kdf_subkey(&k, 2, b"context1")
        );
        assert_ne!(
            kdf_subkey(&k, 1, b"context1"),
            kdf_subkey(&k, 1, b"context2")
        );
        assert_ne!(kdf_subkey(&k, 1, b"context1"), k);
    }
}
