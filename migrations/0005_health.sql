-- vocals schema, version 5: what number health is computed from.
-- The trunk as last read from Twilio (its domain and origination URLs, a JSON array), so the numbers list shows
-- where calls go without asking Twilio on every page load.
ALTER TABLE twilio_accounts ADD COLUMN trunk_domain TEXT;
ALTER TABLE twilio_accounts ADD COLUMN trunk_origination TEXT NOT NULL DEFAULT '[]';
ALTER TABLE twilio_accounts ADD COLUMN trunk_read_at TEXT;

-- What Twilio had for the number when it was last read (a JSON object: trunk_sid, voice_url,
-- voice_application_sid, read_at), so a drift is described without another request.
ALTER TABLE phone_numbers ADD COLUMN twilio_now TEXT NOT NULL DEFAULT '{}';

-- The last check of each agent's stream URL (a WebSocket handshake when the agent is saved).
CREATE TABLE agent_checks (
    agent_id   TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    ok         INTEGER NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    checked_at TEXT NOT NULL
);
