-- Encryption at rest (issue 16): one random data key per conversation,
-- stored wrapped by the key-encryption key derived from the server key.
-- (As migrations/sqlite/0009_encryption_at_rest.sql.) Deleting this row (a
-- purge) makes the conversation's sealed fields unreadable.
CREATE TABLE conversation_keys (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    wrapped         TEXT NOT NULL
);

-- The KEK that wraps new data keys, by id (never the key): every process
-- wraps under the one the database names, so a process that started
-- before a rotation never wraps a key under a root the rotation retired.
CREATE TABLE IF NOT EXISTS key_state (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    kek_id TEXT NOT NULL
);

-- Set once no plaintext row is left (src/store/reseal.rs), so later starts
-- do not scan the tables again: every row written since is sealed.
CREATE TABLE IF NOT EXISTS reseal_done (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    done_at BIGINT NOT NULL
);
