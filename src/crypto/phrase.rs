//! Recovery phrases: an identity's 32-byte ed25519 seed as 24 English
//! BIP39 words (256 bits and an 8-bit checksum), and back.
//!
//! Owns only the conversion; the `bip39` crate does the word list and the
//! checksum. A phrase is read case-insensitively with any whitespace
//! between words; a word not in the list, a count other than 24 or a
//! checksum that does not match is refused, naming what is wrong. Imports
//! nothing of shoal but [`Keypair`].

use zeroize::Zeroizing;

use super::Keypair;

/// Words in a phrase.
pub const PHRASE_WORDS: usize = 24;

/// Why a phrase was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhraseError {
    /// Not 24 words.
    #[error("a recovery phrase has {PHRASE_WORDS} words, this one has {0}")]
    WordCount(usize),
    /// A word not in the BIP39 English list.
    #[error("word {position} of the phrase, {word:?}, is not a recovery phrase word")]
    UnknownWord {
        /// Its position, from 1.
        position: usize,
        /// The word.
        word: String,
    },
    /// Every word is in the list but the checksum does not match: a word
    /// is wrong or out of place.
    #[error(
        "the phrase's checksum does not match: one of its words is wrong or out of place (each is in the word list)"
    )]
    Checksum,
}

/// `keys`'s seed as a 24-word phrase (wiped when dropped).
pub fn phrase_of(keys: &Keypair) -> Zeroizing<String> {
    let pair = keys.to_keypair_bytes();
    let mnemonic =
        bip39::Mnemonic::from_entropy(&pair[..32]).expect("32 bytes is a valid entropy length");
    Zeroizing::new(mnemonic.words().collect::<Vec<_>>().join(" "))
}

/// The identity whose seed `phrase` spells.
pub fn keys_from_phrase(phrase: &str) -> Result<Keypair, PhraseError> {
    let normal = Zeroizing::new(
        phrase
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let words: Vec<&str> = normal.split(' ').filter(|w| !w.is_empty()).collect();
    if words.len() != PHRASE_WORDS {
        return Err(PhraseError::WordCount(words.len()));
    }
    let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normal)
        .map_err(|e| match e {
            bip39::Error::UnknownWord(i) => PhraseError::UnknownWord {
                position: i + 1,
                word: words.get(i).copied().unwrap_or_default().to_string(),
            },
            bip39::Error::BadWordCount(n) => PhraseError::WordCount(n),
            _ => PhraseError::Checksum,
        })?;
    let (entropy, len) = mnemonic.to_entropy_array();
    let entropy = Zeroizing::new(entropy);
    let seed: [u8; 32] = entropy[..len]
        .try_into()
        .map_err(|_| PhraseError::WordCount(words.len()))?;
    let seed = Zeroizing::new(seed);
    Ok(Keypair::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phrase_gives_back_the_same_identity() {
        for seed in [[0u8; 32], [0x7f; 32], [0xff; 32]] {
            let keys = Keypair::from_seed(&seed);
            let phrase = phrase_of(&keys);
            assert_eq!(phrase.split(' ').count(), 24);
            assert_eq!(keys_from_phrase(&phrase).unwrap().id(), keys.id());
            // Case and spacing do not matter.
            let loose = format!("  {}\n", phrase.to_uppercase().replace(' ', "  \t"));
            assert_eq!(keys_from_phrase(&loose).unwrap().id(), keys.id());
        }
    }

    #[test]
    fn the_bip39_vector_of_all_zero_entropy() {
        // BIP39's English test vector for 32 zero bytes.
        let keys = Keypair::from_seed(&[0; 32]);
        let phrase = phrase_of(&keys);
        let mut want = vec!["abandon"; 23];
        want.push("art");
        assert_eq!(*phrase, want.join(" "));
    }

    #[test]
    fn a_wrong_word_count_or_checksum_is_refused_naming_what_is_wrong() {
        let keys = Keypair::from_seed(&[0x42; 32]);
        let phrase = phrase_of(&keys);
        let words: Vec<&str> = phrase.split(' ').collect();
        assert_eq!(
            keys_from_phrase(&words[..23].join(" ")).map(|k| k.id()),
            Err(PhraseError::WordCount(23))
        );
        let mut typo = words.clone();
        typo[6] = "abandom";
        assert_eq!(
            keys_from_phrase(&typo.join(" ")).map(|k| k.id()),
            Err(PhraseError::UnknownWord {
                position: 7,
                word: "abandom".into()
            })
        );
        let mut swapped = words.clone();
        swapped.swap(0, 1);
        if swapped != words {
            let got = keys_from_phrase(&swapped.join(" ")).map(|k| k.id());
            assert!(
                got == Err(PhraseError::Checksum) || got.as_ref().is_ok_and(|id| *id != keys.id()),
                "{got:?}"
            );
        }
        // The last word carries the checksum: another list word there is
        // refused unless it happens to match (1 in 256).
        let mut refused = 0;
        for w in ["zoo", "abandon", "ability", "able", "about"] {
            let mut last = words.clone();
            last[23] = w;
            if last != words && keys_from_phrase(&last.join(" ")).is_err() {
                refused += 1;
            }
        }
        assert!(refused >= 4, "{refused}");
    }
}
