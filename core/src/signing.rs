//! Ed25519 signatures (ring) over domain-separated messages: the coordinator's query signatures,
//! and the node's audit receipts ([`crate::audit_chain`]).
//!
//! The coordinator signs `CONTEXT || envelope`, where `envelope` is the exact byte string it sends
//! (the prost encoding of a `QueryEnvelope`). The node verifies over the bytes it received and only
//! then decodes them, so there is no canonicalisation step for an attacker to play with. The
//! context string keeps these signatures from being valid for any other purpose.

use std::fmt;
use std::path::Path;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// Domain separation prefix of every query signature.
pub const CONTEXT: &[u8] = b"vrs.federation.v2.query\0";

/// A signing key or signature that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file cannot be read.
    #[error("cannot read signing key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The key is not a valid Ed25519 PKCS#8 document.
    #[error("signing key {0} is not an Ed25519 PKCS#8 key")]
    BadKey(String),
    /// A public key is not 32 bytes of hex.
    #[error("public key is not 64 hex characters")]
    BadPublicKey,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

/// An Ed25519 signing key: the coordinator's query key, or a node's audit key. `Debug` never
/// shows key material.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(key_id={})", self.key_id())
    }
}

impl SigningKey {
    /// Loads a PKCS#8 Ed25519 key file.
    pub fn load(path: &Path) -> Result<SigningKey, SigningError> {
        let bytes = std::fs::read(path).map_err(|source| SigningError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pkcs8(&bytes).map_err(|_| SigningError::BadKey(path.display().to_string()))
    }

    /// From PKCS#8 bytes.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<SigningKey, SigningError> {
        Ed25519KeyPair::from_pkcs8(bytes)
            .map(|pair| SigningKey { pair })
            .map_err(|_| SigningError::BadKey("(bytes)".into()))
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> PublicKey {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(b)
    }

    /// Key id: hex SHA-256 of the public key.
    pub fn key_id(&self) -> String {
        self.public_key().key_id()
    }

    /// Signs an envelope.
    pub fn sign(&self, envelope: &[u8]) -> Vec<u8> {
        self.sign_with_context(CONTEXT, envelope)
    }

    /// Signs `context || message`: each use of a key has its own context, so a signature made
    /// for one purpose is never valid for another.
    pub fn sign_with_context(&self, context: &[u8], message: &[u8]) -> Vec<u8> {
        let mut msg = Vec::with_capacity(context.len() + message.len());
        msg.extend_from_slice(context);
        msg.extend_from_slice(message);
        self.pair.sign(&msg).as_ref().to_vec()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl PublicKey {
    /// From 64 hex characters.
    pub fn from_hex(s: &str) -> Result<PublicKey, SigningError> {
        let bytes = hex::decode(s.trim()).map_err(|_| SigningError::BadPublicKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SigningError::BadPublicKey)?;
        Ok(PublicKey(arr))
    }

    /// Hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Key id: hex SHA-256 of the key.
    pub fn key_id(&self) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &self.0))
    }

    /// Verifies a signature over an envelope.
    pub fn verify(&self, envelope: &[u8], signature: &[u8]) -> Result<(), SigningError> {
        self.verify_with_context(CONTEXT, envelope, signature)
    }

    /// Verifies a signature over `context || message`.
    pub fn verify_with_context(
        &self,
        context: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SigningError> {
        let mut msg = Vec::with_capacity(context.len() + message.len());
        msg.extend_from_slice(context);
        msg.extend_from_slice(message);
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&msg, signature)
            .map_err(|_| SigningError::BadSignature)
    }
}

/// Makes a fresh PKCS#8 Ed25519 key (for development tools and tests).
pub fn generate_pkcs8() -> Result<Vec<u8>, SigningError> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| SigningError::BadKey("(generated)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_refuses_tampering() {
        let key = SigningKey::from_pkcs8(&generate_pkcs8().unwrap()).unwrap();
        let sig = key.sign(b"envelope");
        let pk = PublicKey::from_hex(&key.public_key().to_hex()).unwrap();
        assert!(pk.verify(b"envelope", &sig).is_ok());
        assert!(pk.verify(b"envelopf", &sig).is_err());
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert!(pk.verify(b"envelope", &bad).is_err());
        let other = SigningKey::from_pkcs8(&generate_pkcs8().unwrap()).unwrap();
        assert!(other.public_key().verify(b"envelope", &sig).is_err());
        assert_eq!(key.key_id().len(), 64);
        assert!(!format!("{key:?}").contains(&hex::encode(generate_pkcs8().unwrap())));
    }
}
