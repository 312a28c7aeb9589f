-- Teams: conversations of up to 16 seats, messages addressed to some of
-- them, replies, per-conversation quotas, and seats held by registered
-- agents instead of a token (the PostgreSQL side of
-- migrations/sqlite/0006_teams.sql; PostgreSQL relaxes NOT NULL in place).

-- A seat is held either by a token (the original bridge's flow) or by a
-- registered agent, never both and never neither.
ALTER TABLE participants ALTER COLUMN token_hash DROP NOT NULL;
ALTER TABLE participants ADD COLUMN agent_id BIGINT REFERENCES agents(id);  -- agents are revoked, never deleted
ALTER TABLE participants ADD CONSTRAINT participants_token_or_agent
    CHECK ((token_hash IS NULL) <> (agent_id IS NULL));

-- An agent's conversations: `my_conversations` and the wait across them.
CREATE INDEX participants_by_agent ON participants(agent_id, conversation_id)
    WHERE agent_id IS NOT NULL;

-- Whom a message was addressed to (a JSON array of seats, in seat order)
-- and which message it answers. The deliveries rows stay the truth of
-- who has read it; the list keeps the address after a cleanup of those.
ALTER TABLE messages ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN reply_to BIGINT;

UPDATE messages SET recipients = coalesce(
    (SELECT to_json(array_agg(recipient ORDER BY recipient))::text
     FROM deliveries WHERE message_seq = messages.seq),
    '[]');

-- Quotas per conversation, kept as running totals so a send checks them
-- without counting rows.
ALTER TABLE conversations ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;

UPDATE conversations SET
    message_count = (SELECT count(*) FROM messages WHERE conversation_id = conversations.id),
    stored_bytes = (SELECT coalesce(sum(octet_length(body) + octet_length(files)), 0)
                    FROM messages WHERE conversation_id = conversations.id);
