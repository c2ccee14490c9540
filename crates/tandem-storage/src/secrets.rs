//! Secrets at rest: an AEAD "sealer" keyed from `[security] secret_key`.
//!
//! Every instance of a cluster shares `secret_key`, so every instance can open what another
//! sealed. The AES-256-GCM key is not `secret_key` itself but derived from it with
//! HKDF-SHA256 and a *purpose* label (`"datasources"`, `"alerting.contact_points"`, …), so a
//! value sealed for one purpose cannot be opened as another's, and a leaked derived key
//! does not reveal `secret_key`.
//!
//! A sealed value is text: `v1.` followed by the URL-safe base64 (no padding) of a random
//! 96-bit nonce and the ciphertext with its tag. The version prefix names the key scheme,
//! so a later key rotation can add `v2.` and still open `v1.` values.
//!
//! [`Secret`] holds a plaintext secret in memory; its `Debug` never shows the value, so a
//! secret that reaches a log line through a `{:?}` stays hidden.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;

/// The prefix of values sealed with the first key scheme (HKDF-SHA256 → AES-256-GCM).
const V1_PREFIX: &str = "v1.";
/// The salt of the key derivation: fixed, so every instance derives the same key.
const HKDF_SALT: &[u8] = b"tandem-secrets-v1";
/// AES-GCM's standard nonce length.
const NONCE_LEN: usize = 12;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The value does not start with a known version prefix or is not valid base64.
    #[error("the sealed value is malformed")]
    Malformed,
    /// Authentication failed: another `secret_key` or purpose sealed it, or it was altered.
    #[error("the sealed value cannot be opened with this secret key")]
    WrongKey,
}

/// Seals and opens secrets for one purpose with a key derived from `secret_key`.
///
/// Cloning is cheap. The key never appears in `Debug` output.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    purpose: String,
}

impl Sealer {
    /// A sealer whose key is derived from `secret_key` for `purpose`.
    ///
    /// The purpose is also bound into every sealed value (as associated data), so values
    /// cannot be moved between purposes even under one key.
    pub fn new(secret_key: &str, purpose: &str) -> Sealer {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret_key.as_bytes());
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expansion cannot fail;
        // the fallback keeps the code panic-free all the same.
        if hkdf
            .expand(format!("tandem:{purpose}").as_bytes(), &mut key)
            .is_err()
        {
            key = [0u8; 32];
        }
        let cipher = Aes256Gcm::new(&key.into());
        Sealer {
            cipher,
            purpose: purpose.to_owned(),
        }
    }

    /// The purpose this sealer was made for.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// Seals `plaintext` under a fresh random nonce; two seals of one value differ.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: plaintext,
                    aad: self.purpose.as_bytes(),
                },
            )
            // AES-GCM encryption fails only for inputs over 64 GiB; an empty ciphertext
            // then fails to open rather than leaking anything.
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce_bytes);
        bytes.extend_from_slice(&sealed);
        format!("{V1_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Opens a value sealed by [`Sealer::seal`] with the same `secret_key` and purpose.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let encoded = sealed.strip_prefix(V1_PREFIX).ok_or(SealError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: self.purpose.as_bytes(),
                },
            )
            .map_err(|_| SealError::WrongKey)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// A secret in plain text, kept out of `Debug` output and logs.
///
/// Read it with [`Secret::expose`] where it is really needed (an outgoing request header).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a plaintext secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The plaintext.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_purpose_only() {
        let sealer = Sealer::new("SW2YcwTIb9zpOOhoPsMm", "datasources");
        let sealed = sealer.seal(b"hunter2");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(sealer.open(&sealed).unwrap(), b"hunter2");
        // Another instance with the same key opens it.
        let peer = Sealer::new("SW2YcwTIb9zpOOhoPsMm", "datasources");
        assert_eq!(peer.open(&sealed).unwrap(), b"hunter2");
        assert_eq!(
            Sealer::new("another key", "datasources").open(&sealed),
            Err(SealError::WrongKey)
        );
        assert_eq!(
            Sealer::new("SW2YcwTIb9zpOOhoPsMm", "alerting").open(&sealed),
            Err(SealError::WrongKey)
        );
    }

    #[test]
    fn nonces_are_fresh_and_tampering_is_detected() {
        let sealer = Sealer::new("k", "p");
        let (a, b) = (sealer.seal(b"same"), sealer.seal(b"same"));
        assert_ne!(a, b);
        let mut bytes = URL_SAFE_NO_PAD.decode(&a[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("v1.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(sealer.open(&tampered), Err(SealError::WrongKey));
        for malformed in ["", "v1.", "v1.!!!", "v2.AAAA", "plaintext"] {
            assert!(sealer.open(malformed).is_err(), "{malformed:?}");
        }
        assert_eq!(sealer.open(&sealer.seal(b"")).unwrap(), b"");
    }

    #[test]
    fn debug_output_hides_keys_and_secrets() {
        let sealer = Sealer::new("topsecretkey", "datasources");
        assert!(!format!("{sealer:?}").contains("topsecretkey"));
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
        assert_eq!(secret.expose(), "hunter2");
    }
}
