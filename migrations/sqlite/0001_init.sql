-- mcp-bridge schema, version 1. Never edit a released migration; add a new one.
-- Timestamps are integer milliseconds since the Unix epoch.
-- IF NOT EXISTS everywhere: several server processes may start on a fresh
-- file at the same moment; the loser of the race retries and finds it done.

CREATE TABLE IF NOT EXISTS conversations (
    id          TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    closed_at   INTEGER
) STRICT;

CREATE TABLE IF NOT EXISTS participants (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    session_id       TEXT NOT NULL,
    role             TEXT NOT NULL,
    token_hash       BLOB NOT NULL,
    token_created_at INTEGER NOT NULL,
    revoked_at       INTEGER,
    PRIMARY KEY (conversation_id, session_id)
) STRICT;

CREATE TABLE IF NOT EXISTS messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    sender          TEXT NOT NULL,
    body            TEXT NOT NULL,
    action_type     TEXT NOT NULL,
    files           TEXT NOT NULL,  -- JSON array of redacted paths
    redactions      TEXT NOT NULL,  -- JSON array of kinds
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, seq);

-- Delivery state per recipient: "read and mark read" touches only these rows.
CREATE TABLE IF NOT EXISTS deliveries (
    message_seq     INTEGER NOT NULL REFERENCES messages(seq) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    delivered_at    INTEGER,
    PRIMARY KEY (message_seq, recipient)
) STRICT;

-- Only pending rows are indexed, so finding unread messages costs the same
-- with ten or ten million delivered ones behind it.
CREATE INDEX IF NOT EXISTS deliveries_pending
    ON deliveries(conversation_id, recipient, message_seq)
    WHERE delivered_at IS NULL;

CREATE TABLE IF NOT EXISTS status (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    session_id      TEXT NOT NULL,
    status          TEXT NOT NULL,
    note            TEXT,
    heartbeat_at    INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, session_id)
) STRICT;

-- Sliding-window rate log: one row per counted event, pruned past the
-- longest window.
CREATE TABLE IF NOT EXISTS rate_events (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS rate_events_by_key ON rate_events(key, at);

CREATE TABLE IF NOT EXISTS audit (
    seq             INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    conversation_id TEXT,
    detail          TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    seal            TEXT NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS audit_by_conversation ON audit(conversation_id, seq);

-- Append-only: refuse edits and deletions outright. The hash chain detects
-- whoever drops these triggers first.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;

CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit is append-only');
END;
