//! Secrets: random tokens, link ids, session cookies and CSRF values; their hashes (what the
//! store keeps) and their public keys (what lists show and revocation names).

use base64::Engine;
use sha2::{Digest, Sha256};

use super::AccessError;

/// A new secret: `prefix` and 32 random bytes from the OS, base64url without padding (43
/// characters, 256 bits: not guessable, so a plain hash is enough to store it).
pub fn fresh(prefix: &str) -> Result<String, AccessError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}

/// SHA-256 of a presented secret: the store's key for it.
pub fn hash(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// The hash in hex.
pub fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The public name of a credential: the first 16 hex digits of its hash. It names the
/// credential in lists, in `DELETE` paths and in logs, and says nothing of the secret.
pub fn key_of(hash: &[u8; 32]) -> String {
    hex(hash)[..16].to_owned()
}

/// Constant-time comparison, so the time a wrong value takes says nothing of the right one.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `s` can be a secret this module made (so that anything else, however long, is
/// refused before it is hashed or looked up).
pub fn plausible(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_long_and_their_keys_stable() {
        let a = fresh("pbt_").expect("random");
        let b = fresh("pbt_").expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert!(plausible(&a));
        assert!(!plausible("short"));
        assert!(!plausible("has space in it......"));
        let h = hash(a.as_bytes());
        assert_eq!(key_of(&h), key_of(&hash(a.as_bytes())));
        assert_eq!(key_of(&h).len(), 16);
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
