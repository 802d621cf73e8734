-- vocals schema, version 11: each call's insight (issue 25). sip: the call's SIP messages, in and out, as a JSON
-- object ({"messages": [...], "total": N, "elided": N}; '{}' when not traced). timeline: one quality sample a
-- second as a JSON object ({"interval_ms": 1000, "fields": [...], "samples": [[...], ...]}; '{}' when none).
-- A trace is matched to its record by the SIP Call-ID, hence the index.
ALTER TABLE calls ADD COLUMN sip TEXT NOT NULL DEFAULT '{}';
ALTER TABLE calls ADD COLUMN timeline TEXT NOT NULL DEFAULT '{}';
CREATE INDEX calls_sip_call_id ON calls (sip_call_id);
