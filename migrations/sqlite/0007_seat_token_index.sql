-- Seat tokens as HTTP bearer credentials (serve --http): a request's token
-- is found by its keyed hash, so that lookup must not scan every seat ever
-- made (an unauthenticated caller chooses how often it runs).

CREATE INDEX IF NOT EXISTS participants_token_hash ON participants (token_hash)
    WHERE token_hash IS NOT NULL;
