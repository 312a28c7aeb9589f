-- Repeated refusals, coalesced. The first refusal of a kind is audited at
-- once; repeats within the window only bump this row, and the row becomes
-- one counted audit entry when the window closes (the next audited write or
-- refusal after it, an overseer's read of the trail, or a server's exit).
-- This table is mutable on purpose and is not part of the hash chain: it
-- holds counts not yet written to the chain, never rewrites an entry.
-- conversation_id is '' for none, so the primary key is plain.

CREATE TABLE IF NOT EXISTS refusal_tally (
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    code            TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    window_start    INTEGER NOT NULL,  -- when the audited first refusal happened
    repeats         INTEGER NOT NULL,  -- refusals since then, not yet audited
    first_at        INTEGER,           -- the first of those repeats
    last_at         INTEGER,           -- the last of those repeats
    PRIMARY KEY (actor, action, code, conversation_id)
) STRICT;

CREATE INDEX IF NOT EXISTS refusal_tally_by_window ON refusal_tally(window_start);
