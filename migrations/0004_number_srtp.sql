-- vocals schema, version 4: a number's own SRTP policy ('off', 'allowed', 'required'); NULL follows the
-- server's media.srtp.

ALTER TABLE phone_numbers ADD COLUMN srtp TEXT;
