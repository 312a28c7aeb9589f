//! Whether the trail can be trusted as a whole, not just entry by entry:
//! `audit verify` and the check a backup passes before `restore` installs it.
//!
//! The chain alone proves that the entries present were not edited. It does
//! not prove that the database records everything: a planted trigger could
//! drop inserts, a dropped guard trigger allows edits, a conversation could
//! be inserted behind the bridge's back, and the newest entries could be cut
//! off. So the full check is: the schema is exactly the binary's; the chain
//! verifies under this key; every conversation has an audit entry; and the
//! database still holds the head recorded outside it.

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::{AdminError, AdminResult};
use crate::audit::{self, Head};
use crate::bridge::{AuditReport, Bridge};
use crate::store::Tx;
use crate::store::admin::{AdminStore, AdminTx};

/// What a restore check found in a staged copy.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreCheck {
    /// Audit entries verified.
    pub audit_entries: u64,
    /// The head `(seq, hash)` of the verified chain.
    pub audit_head: Option<(i64, String)>,
    /// Conversations in the copy.
    pub conversations: i64,
    /// Messages in the copy.
    pub messages: i64,
}

/// What `audit verify` found, when nothing is wrong.
#[derive(Debug, Clone)]
pub struct AuditCheck {
    /// Entries verified.
    pub entries: u64,
    /// The newest entry's `(seq, hash)`.
    pub head: Option<(i64, String)>,
    /// How the head kept outside the database compares.
    pub head_file: HeadFileState,
}

/// The head file's part in an [`AuditCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadFileState {
    /// This store keeps no head file.
    NotKept,
    /// There is no head file yet (a database from before head files, or one
    /// with no audited action since); truncation cannot be checked.
    Missing {
        /// Where it would be.
        path: std::path::PathBuf,
    },
    /// The file is not a head record (a power cut while writing it);
    /// rewritten at the next audited action.
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The database holds the recorded head, on the same chain.
    Matches {
        /// The file.
        path: std::path::PathBuf,
        /// The recorded seq (the database may have grown since).
        seq: i64,
    },
}

impl<S: AdminStore> Bridge<S> {
    /// The full check of `audit verify`: chain, schema, every conversation
    /// audited, head file. The head file is read before the database, so an
    /// entry committed meanwhile can only put the database ahead of it.
    pub async fn check_audit(&self) -> AdminResult<AuditCheck> {
        let recorded = self
            .store
            .audit_head_file()
            .map(|f| (f.path().to_owned(), f.read()));
        let report = self.check_trail().await?;
        let head_file = match recorded {
            None => HeadFileState::NotKept,
            Some((path, Ok(None))) => HeadFileState::Missing { path },
            Some((path, Err(audit::head::Error::Malformed { .. }))) => HeadFileState::Unreadable { path },
            Some((_, Err(e))) => return Err(AdminError::HeadFile(e)),
            Some((path, Ok(Some(h)))) => {
                self.compare_head(&report, &h, &path).await?;
                HeadFileState::Matches { path, seq: h.seq }
            }
        };
        Ok(AuditCheck {
            entries: report.entries,
            head: report.head,
            head_file,
        })
    }

    /// Checks a database before it replaces another: the backend's
    /// integrity check, the schema, the audit chain against this bridge's
    /// key (a copy made under another key fails at its first seal), and
    /// that every conversation in it is audited.
    pub async fn restore_check(&self) -> AdminResult<RestoreCheck> {
        let problems = self.store.integrity_check().await?;
        if !problems.is_empty() {
            return Err(AdminError::Integrity(problems.join("; ")));
        }
        let AuditReport { entries, head, .. } = self.check_trail().await?;
        let mut tx = self.store.begin_read().await?;
        let figures = tx.figures(self.now()).await?;
        Ok(RestoreCheck {
            audit_entries: entries,
            audit_head: head,
            conversations: figures.conversations,
            messages: figures.messages,
        })
    }

    /// Records, in the restored database itself, where it came from, and
    /// returns the new head for the head file of the database it replaces.
    pub async fn record_restore(&self, from: &Path, target: &Path) -> AdminResult<Head> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let entry = audit::NewEntry {
            actor: "cli".into(),
            action: "database.restore".into(),
            conversation_id: None,
            detail: json!({ "from": from.display().to_string(), "to": target.display().to_string() }),
        };
        self.append_after_tallies(&mut tx, now, crate::clock::Millis::MAX, entry)
            .await?;
        let (seq, hash) = tx.audit_head().await?.unwrap_or_default();
        let first = tx
            .audit_page(0, 1)
            .await?
            .pop()
            .map(|e| e.hash)
            .unwrap_or_default();
        tx.commit().await?;
        Ok(Head { first, seq, hash })
    }

    /// Chain, schema, and every conversation audited. The chain goes first:
    /// an edited entry is named as such even when its editor also dropped
    /// the guard triggers to make the edit.
    async fn check_trail(&self) -> AdminResult<AuditReport> {
        let report = self.verify_audit().await?;
        if let Some(first) = self.store.schema_problems().await?.into_iter().next() {
            return Err(AdminError::Schema(first));
        }
        let mut tx = self.store.begin_read().await?;
        if let Some(id) = tx.unaudited_conversation().await? {
            return Err(AdminError::Unaudited { id });
        }
        Ok(report)
    }

    async fn compare_head(&self, report: &AuditReport, h: &Head, path: &Path) -> AdminResult<()> {
        let found = report.head.as_ref().map_or(0, |(seq, _)| *seq);
        if found < h.seq {
            return Err(AdminError::Truncated {
                path: path.to_owned(),
                recorded: h.seq,
                found,
            });
        }
        let other = |what: String| AdminError::OtherChain {
            path: path.to_owned(),
            what,
        };
        if report.first.as_deref() != Some(h.first.as_str()) {
            return Err(other("entry 1 differs".into()));
        }
        let mut tx = self.store.begin_read().await?;
        let at = tx.audit_page(h.seq - 1, 1).await?.pop();
        if at.is_none_or(|e| e.seq != h.seq || e.hash != h.hash) {
            return Err(other(format!("entry {} differs", h.seq)));
        }
        Ok(())
    }
}
