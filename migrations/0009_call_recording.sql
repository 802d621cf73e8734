-- vocals schema, version 9: each call's recording (issue 24): a JSON object with its status (recording,
-- complete, incomplete, deleted, expired), duration in seconds, bytes, channels, format, the API path that
-- serves it and its file relative to STATE_DIR/recordings; '{}' when the call was not recorded.
ALTER TABLE calls ADD COLUMN recording TEXT NOT NULL DEFAULT '{}';
