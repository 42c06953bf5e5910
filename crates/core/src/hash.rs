//! Content hashing: lowercase hex SHA-256, the one hash every component agrees on.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes` (text is hashed as its UTF-8 bytes).
///
/// SQL computes the same value with `encode(sha256(convert_to(content, 'UTF8')), 'hex')`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(content_digest(bytes))
}

/// The raw SHA-256 of `bytes`: [`content_hash`] before hex encoding.
pub fn content_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Incremental form of [`content_hash`] for data that arrives in pieces.
#[derive(Clone, Default)]
pub struct ContentHasher(Sha256);

impl ContentHasher {
    /// A hasher that has seen no bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The lowercase hex digest of everything fed so far.
    pub fn finish(self) -> String {
        hex::encode(self.digest())
    }

    /// The raw digest of everything fed so far: [`ContentHasher::finish`] before hex encoding.
    pub fn digest(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// True when `s` looks like a content hash: 64 lowercase hex digits.
pub fn is_content_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    // Reference values from `printf %s '<input>' | sha256sum`.
    #[test]
    fn known_vectors() {
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            content_hash("héllo wörld ✓".as_bytes()),
            "c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d"
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = ContentHasher::new();
        for chunk in data.chunks(333) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), content_hash(&data));
    }

    #[test]
    fn recognises_hashes() {
        assert!(is_content_hash(&content_hash(b"x")));
        assert!(!is_content_hash(&content_hash(b"x").to_uppercase()));
        assert!(!is_content_hash("abc"));
    }
}
