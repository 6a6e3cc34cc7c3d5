//! The ssb-keys secret file: `#` comment lines around one JSON object
//! `{"curve":"ed25519","public":…,"private":…,"id":…}`, mode 0600.
//!
//! Owns reading, checking and writing that file. Imports only the parent
//! `crypto` module, serde_json (the file is ordinary JSON, not a message)
//! and zeroize.
//!
//! Every buffer that holds the secret key on the way (the file's bytes, the
//! JSON text and its parsed value, the decoded key, the text written) is
//! wiped when it is dropped, whether the secret was good or not.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize as _, Zeroizing};

use super::{FeedId, Keypair, b64_decode, b64_encode};

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read or written.
    #[error("cannot access secret file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error(
        "secret file {path} is accessible by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It is not an ssb-keys secret.
    #[error("secret file {path} is not a valid ssb-keys secret: {why}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Refusing to replace an identity.
    #[error("secret file {0} already exists; refusing to overwrite an identity")]
    Exists(PathBuf),
}

/// Reads and checks an ssb-keys secret file. Refuses files that group or
/// others can access, and keys whose public half does not match.
pub fn read_secret_file(path: &Path) -> Result<Keypair, SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let text = Zeroizing::new(fs::read(path).map_err(io)?);
    parse_secret(&text).map_err(|why| SecretError::Malformed {
        path: path.to_owned(),
        why,
    })
}

/// A parsed secret file, its strings wiped when dropped.
struct WipedJson(serde_json::Value);

impl Drop for WipedJson {
    fn drop(&mut self) {
        wipe_json(&mut self.0);
    }
}

/// Overwrites every string in a JSON value with zeros (the key is a string
/// of the secret file; any other field may be a copy of it).
fn wipe_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_json),
        Value::Object(map) => map.values_mut().for_each(wipe_json),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Parses the text of an ssb-keys secret.
pub fn parse_secret(text: &[u8]) -> Result<Keypair, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text".to_string())?;
    let json: Zeroizing<String> = Zeroizing::new(
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let v = WipedJson(serde_json::from_str(&json).map_err(|e| format!("not JSON ({e})"))?);
    let v = &v.0;
    let field = |name: &str| {
        v.get(name)
            .and_then(|x| x.as_str())
            .ok_or_else(|| format!("missing string field \"{name}\""))
    };
    if let Some(curve) = v.get("curve")
        && curve.as_str() != Some("ed25519")
    {
        return Err(format!("unsupported curve {curve}"));
    }
    let private = field("private")?;
    let private_b64 = private.strip_suffix(".ed25519").unwrap_or(private);
    let decoded = Zeroizing::new(b64_decode(private_b64).unwrap_or_default());
    let mut sk = Zeroizing::new([0u8; 64]);
    if decoded.len() != sk.len() {
        return Err("\"private\" is not the base64 of a 64-byte ed25519 secret key".into());
    }
    sk.copy_from_slice(&decoded);
    let kp = Keypair::from_keypair_bytes(&sk)
        .ok_or("\"private\" does not hold a matching seed and public key")?;
    let public = field("public")?;
    let public_b64 = public.strip_suffix(".ed25519").unwrap_or(public);
    if public_b64 != kp.id().b64() {
        return Err("\"public\" does not match \"private\"".into());
    }
    if let Some(id) = v.get("id") {
        let ok = id.as_str().and_then(FeedId::parse) == Some(kp.id());
        if !ok {
            return Err("\"id\" does not match \"private\"".into());
        }
    }
    Ok(kp)
}

/// Room for the whole secret file text: written into one allocation, it
/// leaves no copy of the key behind in memory freed by growing.
const SECRET_TEXT_CAPACITY: usize = 1024;

/// The ssb-keys text for a keypair, wiped when dropped.
pub fn format_secret(kp: &Keypair) -> Zeroizing<String> {
    let id = kp.id();
    let private = Zeroizing::new(b64_encode(&*kp.to_keypair_bytes()));
    let mut text = Zeroizing::new(String::with_capacity(SECRET_TEXT_CAPACITY));
    write!(
        text,
        "# this is your SECRET name.\n\
         # this name gives you magical powers.\n\
         # with it you can mark your messages so that your friends can verify\n\
         # that they really did come from you.\n\
         #\n\
         # if any one learns this name, they can use it to destroy your identity\n\
         # NEVER show this to anyone!!!\n\
         \n\
         {{\n  \"curve\": \"ed25519\",\n  \"public\": \"{pubk}.ed25519\",\n  \"private\": \"{private}.ed25519\",\n  \"id\": \"{id}\"\n}}\n\
         \n\
         # WARNING: It's vital that you DO NOT edit OR share your secret name\n\
         # instead, share your public name\n\
         # your public name: {id}\n",
        pubk = id.b64(),
        private = &*private,
    )
    .expect("writing to a String cannot fail");
    debug_assert_eq!(
        text.capacity(),
        SECRET_TEXT_CAPACITY,
        "the text outgrew its buffer"
    );
    text
}

/// Writes a new secret file with mode 0600; never replaces an existing one.
pub fn write_secret_file(path: &Path, kp: &Keypair) -> Result<(), SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SecretError::Exists(path.to_owned())
            } else {
                io(e)
            }
        })?;
    f.write_all(format_secret(kp).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let kp = Keypair::from_seed(&[3; 32]);
        write_secret_file(&path, &kp).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_secret_file(&path).unwrap().id(), kp.id());
        assert!(matches!(
            write_secret_file(&path, &kp),
            Err(SecretError::Exists(_))
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_secret_file(&path),
            Err(SecretError::Permissions { mode: 0o644, .. })
        ));
    }

    /// The text of the secret file is built in one buffer, so wiping it on
    /// drop wipes the only copy: growing a `String` would leave the key in
    /// the memory it moved out of.
    #[test]
    fn the_secret_text_is_one_wiped_buffer() {
        let kp = Keypair::from_seed(&[6; 32]);
        let text: Zeroizing<String> = format_secret(&kp);
        assert_eq!(text.capacity(), SECRET_TEXT_CAPACITY);
        assert!(text.len() < SECRET_TEXT_CAPACITY);
        assert_eq!(parse_secret(text.as_bytes()).unwrap().id(), kp.id());
    }

    #[test]
    fn parsed_secrets_are_wiped() {
        let mut v: serde_json::Value =
            serde_json::from_str(r#"{"private":"c2VjcmV0","nested":[{"x":"abc"}],"n":1,"b":true}"#)
                .unwrap();
        wipe_json(&mut v);
        assert_eq!(v["private"], "");
        assert_eq!(v["nested"][0]["x"], "");
        assert_eq!(v["n"], 1);
        assert_eq!(v["b"], true);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        let kp = Keypair::from_seed(&[4; 32]);
        let good = format_secret(&kp);
        assert!(parse_secret(good.as_bytes()).is_ok());
        let other = Keypair::from_seed(&[5; 32]).id().to_string();
        let wrong_id = good.replace(
            &format!("\"id\": \"{}\"", kp.id()),
            &format!("\"id\": \"{other}\""),
        );
        assert!(parse_secret(wrong_id.as_bytes()).is_err());
        assert!(parse_secret(b"{}").is_err());
        assert!(parse_secret(b"# only comments\n").is_err());
        assert!(parse_secret(b"\xff\xfe").is_err());
    }
}
