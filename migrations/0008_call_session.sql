-- vocals schema, version 8: each call's session timer (RFC 4028, issue 23), written when the call ends: a JSON
-- object with the session interval, who refreshed (vocals or the peer), how many refreshes kept the session,
-- and how many offers crossed (glare); '{}' when no timer ran.
ALTER TABLE calls ADD COLUMN session TEXT NOT NULL DEFAULT '{}';
