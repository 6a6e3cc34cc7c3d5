//! Helpers shared by the integration tests.

use std::path::PathBuf;

use shoal::crypto::Keypair;

/// The shared vectors directory: `SHOAL_VECTORS`, else `../shared/vectors`
/// beside the checkout. Panics (fails the test) when it does not exist.
pub fn vectors_dir() -> PathBuf {
    let dir = match std::env::var_os("SHOAL_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"),
    };
    let dir = if dir.is_relative() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir)
    } else {
        dir
    };
    assert!(
        dir.join("README.md").is_file(),
        "test vectors not found at {} (set SHOAL_VECTORS)",
        dir.display()
    );
    dir
}

/// Reads a vector file, failing the test when it is missing.
pub fn read_vector(rel: &str) -> Vec<u8> {
    let path = vectors_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A current-thread tokio runtime, for a client on the wire written with
/// the library.
#[allow(dead_code)]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A deterministic identity from a small seed number.
#[allow(dead_code)]
pub fn test_key(n: u8) -> Keypair {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[31] = 0x5e;
    Keypair::from_seed(&seed)
}
