-- Registered agents: identities kept in an MCP client's configuration
-- (MCP_BRIDGE_AGENT), stored only as the keyed hash of their credential.
-- A revoked agent keeps its row: its name stays taken, and the audit trail
-- and the seats it held keep naming it.

CREATE TABLE IF NOT EXISTS agents (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('agent', 'observer', 'admin')),
    credential_hash BLOB NOT NULL UNIQUE,  -- HMAC-SHA-256 under the server key
    created_at      INTEGER NOT NULL,
    rotated_at      INTEGER,
    revoked_at      INTEGER
) STRICT;
