-- Encryption at rest (issue 16): one random data key per conversation,
-- stored wrapped by the key-encryption key derived from the server key.
-- Deleting this row (a purge) makes the conversation's sealed fields
-- unreadable: crypto-shredding. The sealed fields keep their TEXT columns
-- (`mcpb-sealed:v1:` + base64), so no table is rebuilt; rows written
-- before this version are sealed in batches at start (src/store/reseal.rs).
CREATE TABLE IF NOT EXISTS conversation_keys (
    conversation_id TEXT PRIMARY KEY NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    wrapped         TEXT NOT NULL
) STRICT;

-- The KEK that wraps new data keys, by id (never the key): every process
-- wraps under the one the database names, so a process that started
-- before a rotation never wraps a key under a root the rotation retired.
CREATE TABLE IF NOT EXISTS key_state (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    kek_id TEXT NOT NULL
) STRICT;

-- Set once no plaintext row is left (src/store/reseal.rs), so later starts
-- do not scan the tables again: every row written since is sealed.
CREATE TABLE IF NOT EXISTS reseal_done (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    done_at INTEGER NOT NULL
) STRICT;

-- The search index of version 8 kept a second, plaintext copy of every
-- body (and its trigram index leaks it in the file); search now opens the
-- bodies in the process instead.
DROP TRIGGER IF EXISTS messages_fts_insert;
DROP TRIGGER IF EXISTS messages_fts_delete;
DROP TRIGGER IF EXISTS messages_fts_update;
DROP TABLE IF EXISTS messages_fts;
