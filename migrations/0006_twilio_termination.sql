-- vocals schema, version 6: each linked account's termination side, created by vocals when it configures the
-- account's trunk (issue 22): the credential list it attached to the trunk, and the one credential in it. The
-- password is sealed like the auth token (ChaCha20-Poly1305 with the store's secret key, bound to the account
-- SID and its purpose). The trunk's domain name is trunk_domain (version 5).

ALTER TABLE twilio_accounts ADD COLUMN credential_list_sid TEXT;
ALTER TABLE twilio_accounts ADD COLUMN sip_username TEXT;
ALTER TABLE twilio_accounts ADD COLUMN sealed_sip_password TEXT;
