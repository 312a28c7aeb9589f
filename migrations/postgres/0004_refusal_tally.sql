-- Repeated refusals, coalesced (see migrations/sqlite/0004_refusal_tally.sql
-- for the story). Mutable on purpose and not part of the hash chain.
-- conversation_id is '' for none, so the primary key is plain.

CREATE TABLE refusal_tally (
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    code            TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    window_start    BIGINT NOT NULL,  -- when the audited first refusal happened
    repeats         BIGINT NOT NULL,  -- refusals since then, not yet audited
    first_at        BIGINT,           -- the first of those repeats
    last_at         BIGINT,           -- the last of those repeats
    PRIMARY KEY (actor, action, code, conversation_id)
);

CREATE INDEX refusal_tally_by_window ON refusal_tally(window_start);
