//! The node's perturbation secret: 32 random bytes that key the cell-key noise.
//!
//! It never leaves the node and never prints: `Debug` shows `PerturbationSecret(…)`, and no error
//! carries any of its bytes. Storing it (a file readable by the node only, or the store's meta
//! table) is the caller's job; [`PerturbationSecret::to_hex`] and [`PerturbationSecret::from_hex`]
//! are the storage form. Replacing it changes every cell's noise, which lets an attacker average
//! the old and new releases of the same table: rotate it only with care (see the module docs).

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};

/// Length of the secret in bytes.
pub const SECRET_LEN: usize = 32;

/// The secret that keys cell-key perturbation.
#[derive(Clone)]
pub struct PerturbationSecret([u8; SECRET_LEN]);

/// Why a secret could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The stored form is not hex.
    #[error("the stored perturbation secret is not hex")]
    NotHex,
    /// The stored form has the wrong length.
    #[error("the stored perturbation secret is {0} bytes, {SECRET_LEN} expected")]
    WrongLength(usize),
}

impl PerturbationSecret {
    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> PerturbationSecret {
        PerturbationSecret(bytes)
    }

    /// Draws a fresh secret from ring's `SystemRandom`.
    pub fn generate() -> Result<PerturbationSecret, SecretError> {
        let mut bytes = [0u8; SECRET_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SecretError::Random)?;
        Ok(PerturbationSecret(bytes))
    }

    /// The raw bytes, for storage by the caller.
    pub fn to_bytes(&self) -> [u8; SECRET_LEN] {
        self.0
    }

    /// Lower-case hex, for storage by the caller.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the hex storage form (surrounding whitespace is ignored).
    pub fn from_hex(text: &str) -> Result<PerturbationSecret, SecretError> {
        let raw = hex::decode(text.trim()).map_err(|_| SecretError::NotHex)?;
        let bytes: [u8; SECRET_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::WrongLength(raw.len()))?;
        Ok(PerturbationSecret(bytes))
    }

    /// The bytes, for keying the HMAC inside this module.
    pub(super) fn expose(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

impl fmt::Debug for PerturbationSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PerturbationSecret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_round_trips() {
        let s = PerturbationSecret::generate().unwrap();
        assert_eq!(format!("{s:?}"), "PerturbationSecret(…)");
        assert_eq!(
            format!("{:?}", Some(s.clone())),
            "Some(PerturbationSecret(…))"
        );
        let hex = s.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(
            PerturbationSecret::from_hex(&format!(" {hex}\n"))
                .unwrap()
                .to_bytes(),
            s.to_bytes()
        );
        assert_ne!(
            PerturbationSecret::generate().unwrap().to_bytes(),
            s.to_bytes()
        );
        assert_eq!(
            PerturbationSecret::from_hex("zz").unwrap_err(),
            SecretError::NotHex
        );
        assert_eq!(
            PerturbationSecret::from_hex("abcd").unwrap_err(),
            SecretError::WrongLength(2)
        );
        assert_eq!(
            PerturbationSecret::from_bytes([7; 32]).to_bytes(),
            [7u8; 32]
        );
    }
}
