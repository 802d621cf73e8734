-- vocals schema, version 2: linked Twilio accounts. The auth token is sealed (ChaCha20-Poly1305 with the
-- store's secret key, the account SID as associated data): `v1:` + base64(nonce || ciphertext).

CREATE TABLE twilio_accounts (
    account_sid   TEXT PRIMARY KEY,
    friendly_name TEXT NOT NULL DEFAULT '',
    sealed_token  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
