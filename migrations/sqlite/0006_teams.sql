-- Teams: conversations of up to 16 seats, messages addressed to some of
-- them, replies, per-conversation quotas, and seats held by registered
-- agents (migration 5) instead of a token.

-- A seat is held either by a token (the original bridge's flow) or by a
-- registered agent, never both and never neither. SQLite cannot relax a
-- NOT NULL in place, so the table is rebuilt; nothing references it.
CREATE TABLE participants_v6 (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    session_id       TEXT NOT NULL,
    role             TEXT NOT NULL,
    token_hash       BLOB,
    agent_id         INTEGER REFERENCES agents(id),
    token_created_at INTEGER NOT NULL,
    revoked_at       INTEGER,
    PRIMARY KEY (conversation_id, session_id),
    CHECK ((token_hash IS NULL) <> (agent_id IS NULL))
) STRICT;

INSERT INTO participants_v6
    (conversation_id, session_id, role, token_hash, agent_id, token_created_at, revoked_at)
SELECT conversation_id, session_id, role, token_hash, NULL, token_created_at, revoked_at
FROM participants;

DROP TABLE participants;
ALTER TABLE participants_v6 RENAME TO participants;

-- An agent's conversations: `my_conversations` and the wait across them.
CREATE INDEX participants_by_agent ON participants(agent_id, conversation_id)
    WHERE agent_id IS NOT NULL;

-- Whom a message was addressed to (a JSON array of seats, in seat order)
-- and which message it answers. The deliveries rows stay the truth of
-- who has read it; the list keeps the address after a cleanup of those.
ALTER TABLE messages ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN reply_to INTEGER;

UPDATE messages SET recipients = coalesce(
    (SELECT json_group_array(recipient) FROM
        (SELECT recipient FROM deliveries WHERE message_seq = messages.seq ORDER BY recipient)),
    '[]');

-- Quotas per conversation, kept as running totals so a send checks them
-- without counting rows.
ALTER TABLE conversations ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;

UPDATE conversations SET
    message_count = (SELECT count(*) FROM messages WHERE conversation_id = conversations.id),
    stored_bytes = (SELECT coalesce(sum(length(CAST(body AS BLOB)) + length(CAST(files AS BLOB))), 0)
                    FROM messages WHERE conversation_id = conversations.id);
