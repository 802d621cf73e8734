-- vocals schema, version 1. Portable SQL: the same text runs on SQLite and PostgreSQL. Times are RFC 3339 UTC
-- text; JSON documents are text.

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL,
    stream_url     TEXT,
    system_prompt  TEXT NOT NULL DEFAULT '',
    providers      TEXT NOT NULL DEFAULT '{}',
    settings       TEXT NOT NULL DEFAULT '{}',
    signing_secret TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE phone_numbers (
    e164               TEXT PRIMARY KEY,
    agent_id           TEXT REFERENCES agents (id),
    twilio_account_sid TEXT,
    twilio_number_sid  TEXT,
    status             TEXT NOT NULL,
    status_detail      TEXT NOT NULL DEFAULT '',
    twilio_snapshot    TEXT NOT NULL DEFAULT '{}',
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

CREATE INDEX phone_numbers_agent ON phone_numbers (agent_id);

CREATE TABLE calls (
    id           TEXT PRIMARY KEY,
    call_sid     TEXT,
    sip_call_id  TEXT NOT NULL,
    from_number  TEXT NOT NULL,
    to_number    TEXT NOT NULL,
    agent        TEXT,
    node         TEXT NOT NULL,
    invite_at    TEXT NOT NULL,
    answer_at    TEXT,
    end_at       TEXT,
    end_reason   TEXT,
    sip_status   INTEGER,
    codec        TEXT,
    stats        TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX calls_invite_at ON calls (invite_at);
