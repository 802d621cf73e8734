//! Secrets at rest: Twilio auth tokens are sealed with ChaCha20-Poly1305 under the store's secret key (from
//! `[store] secret_key` / `VOCALS_STORE_SECRET_KEY`, or generated into the state directory), with the row's key
//! (the account SID) as associated data, so a sealed value cannot be moved to another row. Stored as
//! `v1:` + base64(nonce || ciphertext || tag).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The store's secret key.
pub struct SecretKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the secret key must be 32 bytes, base64-encoded (e.g. from `openssl rand -base64 32`)")]
    BadKey,
    #[error("a stored secret cannot be opened: wrong secret key, or the value was changed")]
    Open,
    #[error("no randomness available")]
    Random,
}

impl SecretKey {
    /// From 32 bytes in base64.
    pub fn from_base64(text: &str) -> Result<SecretKey, SecretError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| SecretError::BadKey)?;
        Ok(SecretKey { key: LessSafeKey::new(key) })
    }

    /// A fresh random key, in base64.
    pub fn generate() -> Result<String, SecretError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| SecretError::Random)?;
        Ok(STANDARD.encode(bytes))
    }

    pub fn seal(&self, context: &str, plaintext: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut data = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("v1:{}", STANDARD.encode(out)))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SecretError> {
        let bytes = sealed.strip_prefix("v1:").and_then(|b| STANDARD.decode(b).ok()).ok_or(SecretError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut data = rest.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut data).map_err(|_| SecretError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_row() {
        let key = SecretKey::from_base64(&SecretKey::generate().unwrap()).unwrap();
        let sealed = key.seal("AC1", "token-1").unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("token-1"));
        assert_ne!(sealed, key.seal("AC1", "token-1").unwrap(), "a fresh nonce each time");
        assert_eq!(key.open("AC1", &sealed).unwrap(), "token-1");
        assert_eq!(key.open("AC2", &sealed), Err(SecretError::Open), "bound to its row");
        let other = SecretKey::from_base64(&SecretKey::generate().unwrap()).unwrap();
        assert_eq!(other.open("AC1", &sealed), Err(SecretError::Open));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert_eq!(key.open("AC1", &tampered), Err(SecretError::Open));
        assert_eq!(SecretKey::from_base64("c2hvcnQ=").unwrap_err(), SecretError::BadKey);
    }
}
