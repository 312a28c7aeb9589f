-- YOLO mode: proposals of commands and the human's single-use approvals.
-- (Version 0003, as in migrations/sqlite; 0002 is unused on both backends.)

CREATE TABLE proposals (
    id              TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    proposer        TEXT NOT NULL,
    command         TEXT NOT NULL,
    mode            TEXT NOT NULL,
    workspace       TEXT NOT NULL,
    cwd             TEXT NOT NULL,
    reason          TEXT NOT NULL,
    allowed         BOOLEAN NOT NULL,
    verdict         TEXT NOT NULL,
    plan_hash       TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    decided_at      BIGINT
);

CREATE INDEX proposals_by_state ON proposals(state, created_at);

-- One approval per proposal, bound to the proposal's hash, sealed with the
-- server key, valid until expires_at, usable once.
CREATE TABLE approvals (
    proposal_id TEXT PRIMARY KEY NOT NULL REFERENCES proposals(id) ON DELETE CASCADE,
    bound_hash  TEXT NOT NULL,
    seal        TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
