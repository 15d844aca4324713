//! The audit chain both sides can check: how a node hashes its audit entries, how it signs the
//! head of its log (an *audit receipt*), and how anyone holding receipts checks an exported log
//! against them.
//!
//! A node's log is a hash chain: entry `n`'s hash covers entry `n − 1`'s hash and every field of
//! entry `n`. That alone only shows a log is self-consistent: someone with write access to the
//! file can truncate it, edit an answer into a refusal and recompute the chain, or delete it. So
//! the node also signs `(country, entries, head, signed_at)` with its own Ed25519 *audit key* in
//! every answer and in `Describe`, and the coordinator keeps those receipts. A receipt is a
//! commitment: the entry at position `entries` of the node's log has hash `head`, and so every
//! entry before it is fixed too. A later log (or export) that does not contain that entry at that
//! position, with that hash, was rewritten — the same idea as a transparency log's signed tree
//! head, with a chain instead of a Merkle tree (a proof is the exported entries themselves).
//!
//! Nothing here does I/O; [`crate::signing`] holds the Ed25519 keys (ring).

use serde::{Deserialize, Serialize};

use crate::signing::{PublicKey, SigningError, SigningKey};

/// Hash of the (absent) entry before the first.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation of audit-head signatures (never valid as a query signature, nor the reverse).
pub const RECEIPT_CONTEXT: &[u8] = b"vrs.federation.v2.audit-head\0";

/// One audit entry's fields, as hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry<'a> {
    /// When, in ms since the Unix epoch.
    pub at_ms: i64,
    /// The caller's certificate identity ("" when there was none).
    pub caller: &'a str,
    /// The query id ("" when the envelope could not be read).
    pub query_id: &'a str,
    /// The signed envelope as received (empty if none; its digest and length when it was
    /// refused before its signature verified).
    pub envelope: &'a [u8],
    /// The signature as received.
    pub signature: &'a [u8],
    /// The key id as received.
    pub key_id: &'a str,
    /// `answered`, `pending_approval`, `cancelled`, or `refused:<REASON>`.
    pub outcome: &'a str,
    /// Hex SHA-256 of the released answer ("" when nothing was released).
    pub answer_digest: &'a str,
    /// zCDP: what the release charged (release id, ρ, quarters, replayed) as compact JSON;
    /// "" when nothing was charged. Part of the hash when present, so the privacy-loss ledger
    /// is chained with the log.
    pub privacy: &'a str,
}

/// The chain hash of entry `seq` whose predecessor's hash is `prev` (hex SHA-256).
pub fn entry_hash(prev: &str, seq: i64, e: &NewEntry<'_>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |b: &[u8]| {
        ctx.update(&(b.len() as u64).to_be_bytes());
        ctx.update(b);
    };
    field(b"vrs.audit.v1");
    field(prev.as_bytes());
    field(&seq.to_be_bytes());
    field(&e.at_ms.to_be_bytes());
    field(e.caller.as_bytes());
    field(e.query_id.as_bytes());
    field(e.envelope);
    field(e.signature);
    field(e.key_id.as_bytes());
    field(e.outcome.as_bytes());
    field(e.answer_digest.as_bytes());
    // Entries written before the ledger existed have no privacy field and hash as they did.
    if !e.privacy.is_empty() {
        field(b"privacy");
        field(e.privacy.as_bytes());
    }
    hex::encode(ctx.finish())
}

/// A node's signed statement that its audit log holds `entries` entries, the last with hash
/// `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReceipt {
    /// The node's country code.
    pub country: String,
    /// Position of the entry signed (the log's length when it was signed).
    pub entries: u64,
    /// Hex SHA-256 chain hash of that entry ([`GENESIS`] for an empty log).
    pub head: String,
    /// When the node signed it, ms since the Unix epoch.
    pub signed_at_ms: i64,
    /// Ed25519 signature, hex.
    pub signature: String,
}

/// Why a receipt cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The head is not 64 hex characters.
    #[error("the receipt's head is not a SHA-256 hash")]
    BadHead,
    /// The signature is not 64 bytes.
    #[error("the receipt's signature is not an Ed25519 signature")]
    BadSignatureFormat,
    /// The signature does not verify under the key.
    #[error("the receipt's signature does not verify under the node's audit key")]
    BadSignature,
}

fn message(country: &str, entries: u64, head: &[u8; 32], signed_at_ms: i64) -> Vec<u8> {
    // Every field after the country has a fixed length, so the country is unambiguous.
    let mut m = Vec::with_capacity(country.len() + 48);
    m.extend_from_slice(country.as_bytes());
    m.extend_from_slice(&entries.to_be_bytes());
    m.extend_from_slice(head);
    m.extend_from_slice(&signed_at_ms.to_be_bytes());
    m
}

fn head_bytes(head: &str) -> Result<[u8; 32], ReceiptError> {
    hex::decode(head)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(ReceiptError::BadHead)
}

impl AuditReceipt {
    /// Signs the head `(entries, head)` of `country`'s log with the node's audit key.
    pub fn sign(
        key: &SigningKey,
        country: &str,
        entries: u64,
        head: &str,
        signed_at_ms: i64,
    ) -> Result<AuditReceipt, ReceiptError> {
        let h = head_bytes(head)?;
        let sig = key.sign_with_context(
            RECEIPT_CONTEXT,
            &message(country, entries, &h, signed_at_ms),
        );
        Ok(AuditReceipt {
            country: country.to_string(),
            entries,
            head: head.to_string(),
            signed_at_ms,
            signature: hex::encode(sig),
        })
    }

    /// Checks the signature under the node's audit key.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ReceiptError> {
        let h = head_bytes(&self.head)?;
        let sig = hex::decode(&self.signature).map_err(|_| ReceiptError::BadSignatureFormat)?;
        if sig.len() != 64 {
            return Err(ReceiptError::BadSignatureFormat);
        }
        let m = message(&self.country, self.entries, &h, self.signed_at_ms);
        key.verify_with_context(RECEIPT_CONTEXT, &m, &sig)
            .map_err(|e| match e {
                SigningError::BadSignature => ReceiptError::BadSignature,
                _ => ReceiptError::BadSignatureFormat,
            })
    }
}

/// One line of `vrs-node audit export` (JSON Lines), as an auditor reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// Caller identity.
    pub caller: String,
    /// Query id.
    pub query_id: String,
    /// Envelope bytes, hex.
    pub envelope_hex: String,
    /// Signature, hex.
    pub signature_hex: String,
    /// Key id.
    pub key_id: String,
    /// Outcome.
    pub outcome: String,
    /// Digest of the released answer.
    pub answer_digest: String,
    /// What the release charged ("" when nothing).
    #[serde(default)]
    pub privacy: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Where an exported chain stops holding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {problem}")]
pub struct ChainBreak {
    /// The entry (1-based position in the export) at which the chain breaks.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

/// Recomputes an exported chain from the genesis hash: every entry in order, numbered from 1,
/// linked to the one before, with the hash its fields give. Returns the hash of each entry, in
/// order.
pub fn verify_export(entries: &[ExportedEntry]) -> Result<Vec<String>, ChainBreak> {
    let mut prev = GENESIS.to_string();
    let mut hashes = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let seq = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
        let broken = |problem: String| ChainBreak { seq, problem };
        if e.seq != seq {
            return Err(broken(format!("numbered {}, expected {seq}", e.seq)));
        }
        if e.prev_hash != prev {
            return Err(broken("does not link to the entry before".into()));
        }
        let envelope =
            hex::decode(&e.envelope_hex).map_err(|_| broken("envelope is not hex".into()))?;
        let signature =
            hex::decode(&e.signature_hex).map_err(|_| broken("signature is not hex".into()))?;
        let fields = NewEntry {
            at_ms: e.at_ms,
            caller: &e.caller,
            query_id: &e.query_id,
            envelope: &envelope,
            signature: &signature,
            key_id: &e.key_id,
            outcome: &e.outcome,
            answer_digest: &e.answer_digest,
            privacy: &e.privacy,
        };
        let hash = entry_hash(&prev, seq, &fields);
        if hash != e.hash {
            return Err(broken("its fields do not give its hash (edited)".into()));
        }
        prev = hash.clone();
        hashes.push(hash);
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::generate_pkcs8;

    fn key() -> SigningKey {
        SigningKey::from_pkcs8(&generate_pkcs8().unwrap()).unwrap()
    }

    #[test]
    fn a_receipt_verifies_under_its_key_only_and_not_once_changed() {
        let k = key();
        let r = AuditReceipt::sign(&k, "IDN", 7, &"ab".repeat(32), 1_700_000_000_000).unwrap();
        assert_eq!(r.verify(&k.public_key()), Ok(()));
        assert_eq!(
            r.verify(&key().public_key()),
            Err(ReceiptError::BadSignature)
        );
        for changed in [
            AuditReceipt {
                entries: 6,
                ..r.clone()
            },
            AuditReceipt {
                head: "ac".repeat(32),
                ..r.clone()
            },
            AuditReceipt {
                country: "IDM".into(),
                ..r.clone()
            },
            AuditReceipt {
                signed_at_ms: r.signed_at_ms + 1,
                ..r.clone()
            },
        ] {
            assert_eq!(
                changed.verify(&k.public_key()),
                Err(ReceiptError::BadSignature)
            );
        }
        let short = AuditReceipt {
            signature: "00".into(),
            ..r.clone()
        };
        assert_eq!(
            short.verify(&k.public_key()),
            Err(ReceiptError::BadSignatureFormat)
        );
        assert_eq!(
            AuditReceipt::sign(&k, "IDN", 7, "not hex", 0),
            Err(ReceiptError::BadHead)
        );
    }

    #[test]
    fn a_receipt_signature_is_not_a_query_signature() {
        let k = key();
        let r = AuditReceipt::sign(&k, "IDN", 1, &"00".repeat(32), 5).unwrap();
        let sig = hex::decode(&r.signature).unwrap();
        let h = head_bytes(&r.head).unwrap();
        let m = message("IDN", 1, &h, 5);
        assert!(k.public_key().verify(&m, &sig).is_err());
    }

    fn export(n: i64) -> Vec<ExportedEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let outcome = format!("answered{seq}");
                let e = NewEntry {
                    at_ms: seq * 10,
                    caller: "coordinator.test",
                    query_id: "q",
                    envelope: b"env",
                    signature: b"sig",
                    key_id: "k",
                    outcome: &outcome,
                    answer_digest: "d",
                    privacy: "",
                };
                let hash = entry_hash(&prev, seq, &e);
                let out = ExportedEntry {
                    seq,
                    at_ms: e.at_ms,
                    caller: e.caller.into(),
                    query_id: e.query_id.into(),
                    envelope_hex: hex::encode(e.envelope),
                    signature_hex: hex::encode(e.signature),
                    key_id: e.key_id.into(),
                    outcome: outcome.clone(),
                    answer_digest: e.answer_digest.into(),
                    privacy: String::new(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                out
            })
            .collect()
    }

    #[test]
    fn an_export_verifies_and_an_edit_removal_or_reorder_is_named() {
        let log = export(5);
        assert_eq!(verify_export(&log).unwrap().len(), 5);
        let mut edited = log.clone();
        edited[2].outcome = "refused:X".into();
        assert_eq!(verify_export(&edited).unwrap_err().seq, 3);
        let mut removed = log.clone();
        removed.remove(1);
        assert_eq!(verify_export(&removed).unwrap_err().seq, 2);
        let mut swapped = log.clone();
        swapped.swap(3, 4);
        assert_eq!(verify_export(&swapped).unwrap_err().seq, 4);
    }
}
