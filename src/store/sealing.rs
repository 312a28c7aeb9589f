//! Sealing the free-text fields of rows on their way into the database and
//! opening them on the way out, the same for both backends (see
//! [`crate::seal`] for the cipher and the key hierarchy).
//!
//! A row mapper reads a row as it is stored (its text fields still sealed)
//! together with its conversation's wrapped data key, as a [`Sealed`];
//! [`open_all`] then unwraps each conversation's key once and opens every
//! field. Keeping the cipher out of the mappers keeps them plain
//! column-to-field code, and lets one failure say which row kind failed.

use std::collections::HashMap;

use crate::seal::{self, DataKey, Keyring, Place};
use crate::store::yolo::Proposal;
use crate::store::{Message, Status};

/// A row as stored, with its conversation's wrapped data key (`None` once
/// the conversation was purged, or for legacy rows of a database not yet
/// migrated).
#[derive(Debug)]
pub(crate) struct Sealed<T> {
    pub value: T,
    pub wrapped: Option<String>,
}

/// A row kind with sealed fields.
pub(crate) trait SealedFields: Sized {
    fn conversation_id(&self) -> &str;
    /// Opens every sealed field in place.
    fn open_with(self, key: Option<&DataKey>) -> Result<Self, seal::Error>;
}

/// Opens every row, unwrapping each conversation's data key once.
pub(crate) fn open_all<T: SealedFields>(ring: &Keyring, rows: Vec<Sealed<T>>) -> Result<Vec<T>, seal::Error> {
    let mut keys: HashMap<String, Option<DataKey>> = HashMap::new();
    rows.into_iter()
        .map(|row| {
            let conversation = row.value.conversation_id().to_owned();
            if !keys.contains_key(&conversation) {
                let key = seal::row_key(ring, row.wrapped.as_deref(), &conversation)?;
                keys.insert(conversation.clone(), key);
            }
            row.value.open_with(keys[&conversation].as_ref())
        })
        .collect()
}

/// Opens one row, if any.
pub(crate) fn open_one<T: SealedFields>(
    ring: &Keyring,
    row: Option<Sealed<T>>,
) -> Result<Option<T>, seal::Error> {
    Ok(open_all(ring, row.into_iter().collect())?.pop())
}

/// A message's `field` (`body`, or `files` as its JSON) sealed for `seq`.
pub(crate) fn seal_message_field(
    key: &DataKey,
    conversation_id: &str,
    sender: &str,
    seq: i64,
    field: &'static str,
    text: &str,
) -> String {
    seal::seal(key, message_place(conversation_id, sender, seq, field), text)
}

/// A stored value as [`crate::store::reseal`] leaves it: sealed by
/// `seal`, unless a batch before it already was (a resumed reseal).
pub(crate) fn reseal_value(stored: String, seal: impl FnOnce(&str) -> String) -> String {
    if seal::is_sealed(&stored) {
        stored
    } else {
        seal(&stored)
    }
}

fn message_place<'a>(conversation_id: &'a str, sender: &'a str, seq: i64, field: &'static str) -> Place<'a> {
    Place::Message {
        conversation_id,
        sender,
        seq,
        field,
    }
}

/// What a sealed files column holds until it is opened: the sealed text as
/// the list's only element (the mapper cannot parse it as JSON yet).
pub(crate) fn files_as_stored(text: String, parse: impl FnOnce(&str) -> Vec<String>) -> Vec<String> {
    if seal::is_sealed(&text) {
        vec![text]
    } else {
        parse(&text)
    }
}

impl SealedFields for Message {
    fn conversation_id(&self) -> &str {
        &self.conversation_id
    }

    fn open_with(mut self, key: Option<&DataKey>) -> Result<Self, seal::Error> {
        let body = std::mem::take(&mut self.body);
        self.body = seal::open(
            key,
            message_place(&self.conversation_id, &self.sender, self.seq, "body"),
            body,
        )?;
        if let [only] = self.files.as_slice()
            && seal::is_sealed(only)
        {
            let sealed = self.files.pop().unwrap_or_default();
            let json = seal::open(
                key,
                message_place(&self.conversation_id, &self.sender, self.seq, "files"),
                sealed,
            )?;
            self.files = serde_json::from_str(&json).map_err(|_| seal::Error::Damaged("message's files"))?;
        }
        Ok(self)
    }
}

/// A status note's place.
fn note_place(s: &Status) -> Place<'_> {
    Place::StatusNote {
        conversation_id: &s.conversation_id,
        session_id: &s.session_id,
    }
}

/// The stored form of a status (its note sealed).
pub(crate) fn seal_status(key: &DataKey, s: &Status) -> Option<String> {
    s.note.as_deref().map(|note| seal::seal(key, note_place(s), note))
}

impl SealedFields for Status {
    fn conversation_id(&self) -> &str {
        &self.conversation_id
    }

    fn open_with(mut self, key: Option<&DataKey>) -> Result<Self, seal::Error> {
        if let Some(note) = self.note.take() {
            self.note = Some(seal::open(key, note_place(&self), note)?);
        }
        Ok(self)
    }
}

/// The fields of a proposal that are sealed: what the agent wrote.
const PROPOSAL_FIELDS: [&str; 4] = ["command", "reason", "cwd", "workspace"];

fn proposal_text<'a>(p: &'a Proposal, field: &str) -> &'a str {
    match field {
        "command" => &p.command,
        "reason" => &p.reason,
        "cwd" => &p.cwd,
        _ => &p.workspace,
    }
}

fn proposal_field<'a>(p: &'a mut Proposal, field: &str) -> &'a mut String {
    match field {
        "command" => &mut p.command,
        "reason" => &mut p.reason,
        "cwd" => &mut p.cwd,
        _ => &mut p.workspace,
    }
}

/// A copy of `p` with its free-text fields sealed, as stored.
pub(crate) fn seal_proposal(key: &DataKey, p: &Proposal) -> Proposal {
    let mut out = p.clone();
    for field in PROPOSAL_FIELDS {
        let place = Place::Proposal {
            conversation_id: &p.conversation_id,
            proposal_id: &p.id,
            field,
        };
        let sealed = seal::seal(key, place, proposal_text(p, field));
        *proposal_field(&mut out, field) = sealed;
    }
    out
}

impl SealedFields for Proposal {
    fn conversation_id(&self) -> &str {
        &self.conversation_id
    }

    fn open_with(mut self, key: Option<&DataKey>) -> Result<Self, seal::Error> {
        for field in PROPOSAL_FIELDS {
            let stored = std::mem::take(proposal_field(&mut self, field));
            let place = Place::Proposal {
                conversation_id: &self.conversation_id,
                proposal_id: &self.id,
                field,
            };
            let opened = seal::open(key, place, stored)?;
            *proposal_field(&mut self, field) = opened;
        }
        Ok(self)
    }
}

/// Whether an opened body contains `needle` (already lowercased): the
/// overseer's search, done in the process since no index sees the bodies.
pub(crate) fn body_matches(needle: &str, body: &str) -> bool {
    body.to_lowercase().contains(needle)
}
