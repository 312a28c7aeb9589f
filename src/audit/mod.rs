//! The audit trail: an append-only, hash-chained log of every action.
//!
//! Each entry's `hash` is SHA-256 over the previous entry's hash and the
//! entry's canonical bytes, so editing or deleting any row breaks the chain
//! from that row on. Because anyone with write access to the database could
//! recompute a plain SHA-256 chain after an edit, each hash is also sealed
//! with an HMAC under the server key (kept outside the database): a forger
//! needs the key too. Entries are appended in the same store transaction as
//! the change they record, so the trail never claims a change that was
//! rolled back, nor misses one that was committed. Details never hold a
//! token or an unredacted body: the use cases put only ids, kinds, sizes and
//! codes in them, and a refused call records only values whose exact shape
//! was checked. The newest entry is also kept outside the database
//! ([`head`]), so cutting off the newest entries is detected too.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::ServerKey;
use crate::clock::Millis;

pub mod head;

pub use head::{Head, HeadFile};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An action to record, before it is placed in the chain.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Who acted: `conv_.../a` for a session, `cli` for the overseer,
    /// `anonymous` when authentication failed.
    pub actor: String,
    /// What happened, e.g. `message.send` or `message.send.refused`.
    pub action: String,
    /// The conversation concerned, if any.
    pub conversation_id: Option<String>,
    /// Ids, counts, kinds and codes; never a secret or a message body.
    pub detail: Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it was appended.
    pub at: Millis,
    /// See [`NewEntry::actor`].
    pub actor: String,
    /// See [`NewEntry::action`].
    pub action: String,
    /// See [`NewEntry::conversation_id`].
    pub conversation_id: Option<String>,
    /// The detail as stored: canonical JSON text (sorted keys).
    pub detail: String,
    /// The previous entry's hash, hex.
    pub prev_hash: String,
    /// SHA-256(prev_hash || canonical entry), hex.
    pub hash: String,
    /// HMAC-SHA-256(server key, hash), hex.
    pub seal: String,
}

impl Entry {
    /// Every column as one JSON object (`detail` parsed, times as RFC 3339
    /// and milliseconds): the shape `audit --json`, `audit export` and the
    /// HTTP API share.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "seq": self.seq,
            "at": crate::clock::rfc3339(self.at),
            "at_ms": self.at,
            "actor": self.actor,
            "action": self.action,
            "conversation_id": self.conversation_id,
            "detail": serde_json::from_str::<Value>(&self.detail).unwrap_or_else(|_| self.detail.clone().into()),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "seal": self.seal,
        })
    }
}

/// Places `new` in the chain after `prev` (`None` for the first entry).
pub fn chain(prev: Option<(i64, String)>, at: Millis, new: NewEntry, key: &ServerKey) -> Entry {
    let (seq, prev_hash) = match prev {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    // serde_json's default map is ordered, so this text is canonical.
    let detail = new.detail.to_string();
    let hash = entry_hash(
        &prev_hash,
        seq,
        at,
        &new.actor,
        &new.action,
        new.conversation_id.as_deref(),
        &detail,
    );
    let seal = hex::encode(key.mac(hash.as_bytes()));
    Entry {
        seq,
        at,
        actor: new.actor,
        action: new.action,
        conversation_id: new.conversation_id,
        detail,
        prev_hash,
        hash,
        seal,
    }
}

fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: Millis,
    actor: &str,
    action: &str,
    conversation_id: Option<&str>,
    detail: &str,
) -> String {
    let canonical = serde_json::json!([seq, at, actor, action, conversation_id, detail]).to_string();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    /// One or more entries before `seq` are missing.
    #[error("audit entry {expected} is missing (the chain jumps to entry {found})")]
    Missing {
        /// The seq that should have come next.
        expected: i64,
        /// The seq found instead.
        found: i64,
    },
    /// The entry's `prev_hash` is not the previous entry's hash.
    #[error("audit entry {seq} does not link to the entry before it (prev_hash mismatch)")]
    Link {
        /// The entry.
        seq: i64,
    },
    /// The entry's content no longer matches its hash: it was edited.
    #[error("audit entry {seq} was modified (its content does not match its hash)")]
    Content {
        /// The entry.
        seq: i64,
    },
    /// The hash is consistent but was not sealed with this server's key:
    /// the chain was recomputed by someone without the key.
    #[error("audit entry {seq} has an invalid seal (the chain was rewritten without the server key)")]
    Seal {
        /// The entry.
        seq: i64,
    },
}

/// Checks entries one by one, in seq order, remembering only the last one.
#[derive(Debug)]
pub struct Verifier<'k> {
    key: Option<&'k ServerKey>,
    last: Option<(i64, String)>,
    checked: u64,
}

impl<'k> Verifier<'k> {
    /// A verifier for a chain starting at the genesis; seals are checked
    /// when `key` is given.
    pub fn new(key: Option<&'k ServerKey>) -> Self {
        Self {
            key,
            last: None,
            checked: 0,
        }
    }

    /// Checks the next entry.
    pub fn push(&mut self, e: &Entry) -> Result<(), Break> {
        let (expected_seq, expected_prev) = match &self.last {
            Some((seq, hash)) => (seq + 1, hash.as_str()),
            None => (1, GENESIS),
        };
        if e.seq != expected_seq {
            return Err(Break::Missing {
                expected: expected_seq,
                found: e.seq,
            });
        }
        if e.prev_hash != expected_prev {
            return Err(Break::Link { seq: e.seq });
        }
        let recomputed = entry_hash(
            &e.prev_hash,
            e.seq,
            e.at,
            &e.actor,
            &e.action,
            e.conversation_id.as_deref(),
            &e.detail,
        );
        if recomputed != e.hash {
            return Err(Break::Content { seq: e.seq });
        }
        if let Some(key) = self.key {
            let ok = hex::decode(&e.seal)
                .map(|tag| key.verify_mac(e.hash.as_bytes(), &tag))
                .unwrap_or(false);
            if !ok {
                return Err(Break::Seal { seq: e.seq });
            }
        }
        self.last = Some((e.seq, e.hash.clone()));
        self.checked += 1;
        Ok(())
    }

    /// How many entries verified, and the head `(seq, hash)`: publish the
    /// head elsewhere to make truncation of the tail evident too.
    pub fn finish(self) -> (u64, Option<(i64, String)>) {
        (self.checked, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(n: usize, key: &ServerKey) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|e| (e.seq, e.hash.clone()));
            out.push(chain(
                prev,
                1000 + i as i64,
                NewEntry {
                    actor: "cli".into(),
                    action: "test".into(),
                    conversation_id: Some("conv_1".into()),
                    detail: json!({"i": i, "b": "x"}),
                },
                key,
            ));
        }
        out
    }

    fn verify(entries: &[Entry], key: &ServerKey) -> Result<(), Break> {
        let mut v = Verifier::new(Some(key));
        for e in entries {
            v.push(e)?;
        }
        Ok(())
    }

    #[test]
    fn an_intact_chain_verifies() {
        let key = ServerKey::from_bytes([1; 32]);
        assert_eq!(verify(&sample(5, &key), &key), Ok(()));
    }

    #[test]
    fn detects_an_edited_entry() {
        let key = ServerKey::from_bytes([1; 32]);
        let mut es = sample(5, &key);
        es[2].detail = r#"{"b":"y","i":2}"#.into();
        assert_eq!(verify(&es, &key), Err(Break::Content { seq: 3 }));
    }

    #[test]
    fn detects_a_deleted_entry() {
        let key = ServerKey::from_bytes([1; 32]);
        let mut es = sample(5, &key);
        es.remove(2);
        assert_eq!(
            verify(&es, &key),
            Err(Break::Missing {
                expected: 3,
                found: 4
            })
        );
    }

    #[test]
    fn detects_a_chain_recomputed_without_the_key() {
        let key = ServerKey::from_bytes([1; 32]);
        let forger = ServerKey::from_bytes([2; 32]);
        let mut es = sample(3, &key);
        // The forger edits entry 2 and recomputes hashes from there on.
        let forged = sample(3, &forger);
        es[1] = forged[1].clone();
        es[2] = forged[2].clone();
        assert_eq!(verify(&es, &key), Err(Break::Seal { seq: 2 }));
    }

    #[test]
    fn detail_text_is_canonical() {
        let key = ServerKey::from_bytes([1; 32]);
        let e = chain(
            None,
            0,
            NewEntry {
                actor: "a".into(),
                action: "b".into(),
                conversation_id: None,
                detail: json!({"z": 1, "a": 2}),
            },
            &key,
        );
        assert_eq!(e.detail, r#"{"a":2,"z":1}"#);
    }
}
