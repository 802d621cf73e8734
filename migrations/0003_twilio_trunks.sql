-- vocals schema, version 3: each linked account's vocals trunk (created on the first number added).

ALTER TABLE twilio_accounts ADD COLUMN trunk_sid TEXT;
