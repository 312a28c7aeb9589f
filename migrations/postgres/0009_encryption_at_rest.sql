-- Encryption at rest (issue 16): one random data key per conversation,
-- stored wrapped by the key-encryption key derived from the server key.
-- (As migrations/sqlite/0009_encryption_at_rest.sql.) Deleting this row (a
-- purge) makes the conversation's sealed fields unreadable.
CREATE TABLE conversation_keys (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    wrapped         TEXT NOT NULL
);
