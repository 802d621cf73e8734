-- vocals schema, version 7: the IP access control list vocals made for an account's trunk when the operator has
-- the trunk know vocals' calls by the nodes' addresses ([outbound] termination_auth = "ip", issue 22) instead of
-- a credential list (version 6).

ALTER TABLE twilio_accounts ADD COLUMN ip_acl_sid TEXT;
