//! Password hashes, session tokens and service-account keys.
//!
//! Formats follow Grafana so that a user table or a key can come over from it: passwords
//! are PBKDF2-HMAC-SHA256 (10 000 iterations, 50-byte key, hex) with a 10-character salt;
//! session tokens are 32 random bytes in hex, stored as `hex(sha256(token + secret_key))`;
//! service-account keys are `glsa_<32 alphanumerics>_<crc32 of the rest, little-endian hex>`.

use rand::RngExt;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PBKDF2_ITERATIONS: u32 = 10_000;
const PBKDF2_KEY_LEN: usize = 50;
const SA_PREFIX: &str = "glsa_";
const SA_SECRET_LEN: usize = 32;

/// Grafana's password hash of `password` with `salt`. CPU-heavy (a few milliseconds): call
/// it from a blocking thread.
pub fn hash_password(password: &str, salt: &str) -> String {
    let mut key = [0u8; PBKDF2_KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        PBKDF2_ITERATIONS,
        &mut key,
    );
    hex(&key)
}

/// Whether `password` hashes to `expected` with `salt`, compared in constant time.
pub fn verify_password(password: &str, salt: &str, expected: &str) -> bool {
    constant_time_eq(&hash_password(password, salt), expected)
}

/// A fresh 10-character salt.
pub fn new_salt() -> String {
    random_alphanumeric(10)
}

/// A fresh session token: 32 random bytes, hex.
pub fn new_session_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

/// What the database stores for a session token: `hex(sha256(token + secret_key))`.
pub fn hash_session_token(token: &str, secret_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    hasher.update(secret_key.as_bytes());
    hex(&hasher.finalize())
}

/// Whether `token` looks like a session token at all (64 hex digits); anything else is
/// refused before the database is asked.
pub(crate) fn is_session_token_shaped(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new service-account key: the key to show once, and the hash to store.
pub fn new_service_account_key() -> (String, String) {
    let secret = random_alphanumeric(SA_SECRET_LEN);
    let sum = checksum(&secret);
    let hash = hash_service_account_secret(&secret, &sum);
    (format!("{SA_PREFIX}{secret}_{sum}"), hash)
}

/// The stored hash of a service-account key, if `key` is well-formed (prefix, length,
/// alphabet and checksum); `None` for anything else.
pub fn service_account_key_hash(key: &str) -> Option<String> {
    let rest = key.strip_prefix(SA_PREFIX)?;
    let (secret, sum) = rest.split_once('_')?;
    if secret.len() != SA_SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if !constant_time_eq(sum, &checksum(secret)) {
        return None;
    }
    Some(hash_service_account_secret(secret, sum))
}

/// Grafana stores the secret's password hash salted with the key's checksum, which makes
/// the hash deterministic, so a presented key is looked up by it.
fn hash_service_account_secret(secret: &str, checksum: &str) -> String {
    hash_password(secret, checksum)
}

fn checksum(secret: &str) -> String {
    let sum = crc32fast::hash(format!("{SA_PREFIX}{secret}").as_bytes());
    hex(&sum.to_le_bytes())
}

/// Compares two secrets without leaking, through timing, where they first differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `len` random ASCII letters and digits.
pub(crate) fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    let digit = |nibble: u8| char::from_digit(u32::from(nibble), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(digit(byte >> 4));
        out.push(digit(byte & 0xf));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values computed independently (Python's hashlib.pbkdf2_hmac and zlib.crc32).
    #[test]
    fn password_hash_matches_pbkdf2_sha256_10000_iterations_50_bytes() {
        assert_eq!(hash_password("admin", "F3FAxVm33R"), REFERENCE_ADMIN_HASH,);
        assert!(verify_password("admin", "F3FAxVm33R", REFERENCE_ADMIN_HASH));
        assert!(!verify_password(
            "Admin",
            "F3FAxVm33R",
            REFERENCE_ADMIN_HASH
        ));
    }

    const REFERENCE_ADMIN_HASH: &str = include_str!("../tests/data/admin_hash.txt");

    #[test]
    fn session_tokens_are_64_hex_digits_and_hash_with_the_secret() {
        let token = new_session_token();
        assert!(is_session_token_shaped(&token));
        assert_ne!(token, new_session_token());
        let hash = hash_session_token(&token, "secret");
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, hash_session_token(&token, "other secret"));
        assert!(!is_session_token_shaped("zz"));
        assert!(!is_session_token_shaped(&format!("{}g", &token[..63])));
    }

    #[test]
    fn service_account_keys_carry_a_checksum() {
        let (key, hash) = new_service_account_key();
        assert!(key.starts_with("glsa_"));
        assert_eq!(key.len(), 5 + 32 + 1 + 8);
        assert_eq!(
            service_account_key_hash(&key).as_deref(),
            Some(hash.as_str())
        );
        // One changed character in the secret breaks the checksum.
        let mut forged = key.clone().into_bytes();
        forged[10] = if forged[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            service_account_key_hash(&String::from_utf8(forged).unwrap()),
            None
        );
        for bad in ["", "glsa_", "glsa_short_00000000", &key[..key.len() - 1]] {
            assert_eq!(service_account_key_hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_checksum_is_crc32_ieee_little_endian() {
        // Python: zlib.crc32(b"glsa_" + b"A" * 32) == 0xf38adcd8, little-endian "d8dc8af3".
        assert_eq!(checksum(&"A".repeat(32)), "d8dc8af3");
    }

    #[test]
    fn constant_time_comparison_is_still_a_comparison() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
