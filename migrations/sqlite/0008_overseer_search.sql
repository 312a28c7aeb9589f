-- The overseer steps in (issue 15): messages the human posts, and search
-- over every stored (redacted) body.

-- A message's sender is a seat (`a`..`p`), or `overseer` for a message the
-- human posted through `mcp-bridge post` or the dashboard. No agent path
-- writes anything but the caller's own seat; this guard makes any other
-- value (a role name, an empty string, a forged marker spelled otherwise)
-- impossible to store, whatever the code above does.
CREATE TRIGGER IF NOT EXISTS messages_sender_insert BEFORE INSERT ON messages
WHEN NEW.sender NOT GLOB '[a-p]' AND NEW.sender <> 'overseer'
BEGIN
    SELECT RAISE(ABORT, 'messages.sender must be a seat a..p or overseer');
END;

CREATE TRIGGER IF NOT EXISTS messages_sender_update BEFORE UPDATE OF sender ON messages
WHEN NEW.sender NOT GLOB '[a-p]' AND NEW.sender <> 'overseer'
BEGIN
    SELECT RAISE(ABORT, 'messages.sender must be a seat a..p or overseer');
END;

-- Case-insensitive substring search of the stored bodies: an external
-- content FTS5 index (no second copy of the text) with the trigram
-- tokenizer, which answers `MATCH '"abc"'` for any substring of three or
-- more characters. Triggers keep it in step with every insert, purge and edit.
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    body,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'trigram'
);

CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages
BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (NEW.seq, NEW.body);
END;

CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', OLD.seq, OLD.body);
END;

CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF body ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', OLD.seq, OLD.body);
    INSERT INTO messages_fts (rowid, body) VALUES (NEW.seq, NEW.body);
END;

-- Index the messages stored before this migration.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
