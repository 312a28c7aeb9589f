-- The overseer steps in (issue 15): messages the human posts, and search
-- over every stored (redacted) body. (As migrations/sqlite/0008_overseer_search.sql.)

-- A message's sender is a seat (`a`..`p`), or `overseer` for a message the
-- human posted through `mcp-bridge post` or the dashboard. No agent path
-- writes anything but the caller's own seat; this guard makes any other
-- value impossible to store, whatever the code above does.
ALTER TABLE messages ADD CONSTRAINT messages_sender_seat_or_overseer
    CHECK (sender ~ '^[a-p]$' OR sender = 'overseer');

-- Search needs no index and no extension here: it is `body ILIKE '%q%'`
-- (wildcards in q escaped) walked newest first along the primary key, which
-- stops after `limit` hits. pg_trgm would index it but is an extension a
-- managed database may not offer, and to_tsvector matches stemmed words,
-- not substrings, so it would answer differently from the SQLite backend.
