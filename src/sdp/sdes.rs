//! SDES keying for SRTP (RFC 4568): the `a=crypto` attribute of an `RTP/SAVP` stream. Reads the offer's
//! lines, picks the first one vocals can use (`AES_CM_128_HMAC_SHA1_80`, else `_32`, with a single inline key,
//! no MKI, no session parameters), and prints the answer's line with the offer's tag and suite and our own
//! key. Never makes keys: the caller hands a fresh one in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Master key (16 bytes) followed by master salt (14 bytes), as `inline:` carries them (RFC 4568 §6.1).
pub const KEY_SALT_LEN: usize = 30;

/// The SRTP crypto suites vocals speaks (RFC 4568 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(name: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32].into_iter().find(|s| s.name() == name)
    }

    /// Preference when an offer has several usable lines: the 80-bit tag first.
    fn rank(self) -> u8 {
        match self {
            Suite::AesCm128HmacSha1_80 => 0,
            Suite::AesCm128HmacSha1_32 => 1,
        }
    }
}

/// A master key and salt. Debug never shows the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeySalt(pub [u8; KEY_SALT_LEN]);

impl KeySalt {
    pub fn key(&self) -> &[u8] {
        &self.0[..16]
    }

    pub fn salt(&self) -> &[u8] {
        &self.0[16..]
    }
}

impl std::fmt::Debug for KeySalt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySalt(..)")
    }
}

/// One `a=crypto` line vocals can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    pub key: KeySalt,
}

/// Why an `a=crypto` line cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error("malformed a=crypto: {0}")]
    Malformed(&'static str),
    #[error("crypto suite {0} is not supported")]
    Suite(String),
    #[error("a=crypto with {0} is not supported")]
    Unsupported(&'static str),
}

impl Crypto {
    /// Parses the value of one `a=crypto:` attribute: `<tag> <suite> inline:<key||salt>[|<lifetime>][|<mki>:<len>]`.
    pub fn parse(value: &str) -> Result<Crypto, SdesError> {
        let mut words = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(params)) = (words.next(), words.next(), words.next()) else {
            return Err(SdesError::Malformed("needs a tag, a suite and key parameters"));
        };
        if words.next().is_some() {
            return Err(SdesError::Unsupported("session parameters"));
        }
        let tag = tag.parse::<u32>().ok().filter(|t| *t < 1_000_000_000).ok_or(SdesError::Malformed("bad tag"))?;
        let suite = Suite::from_name(suite).ok_or_else(|| SdesError::Suite(suite.chars().take(40).collect()))?;
        if params.contains(';') {
            return Err(SdesError::Unsupported("more than one key"));
        }
        let inline = params.strip_prefix("inline:").ok_or(SdesError::Malformed("key method is not inline"))?;
        let mut parts = inline.split('|');
        let encoded = parts.next().unwrap_or_default();
        for part in parts {
            if part.contains(':') {
                // MKI:length; an MKI of length 0 is no MKI at all.
                if part.rsplit(':').next() != Some("0") {
                    return Err(SdesError::Unsupported("an MKI"));
                }
            } else if !lifetime_ok(part) {
                return Err(SdesError::Malformed("bad key lifetime"));
            }
        }
        let bytes = STANDARD.decode(encoded).map_err(|_| SdesError::Malformed("key is not base64"))?;
        let key: [u8; KEY_SALT_LEN] =
            bytes.try_into().map_err(|_| SdesError::Malformed("key and salt are not 30 bytes"))?;
        Ok(Crypto { tag, suite, key: KeySalt(key) })
    }

    /// The first usable line of an offer (the 80-bit tag preferred), or why none is.
    pub fn choose(lines: &[String]) -> Result<Crypto, SdesError> {
        let parsed: Vec<Result<Crypto, SdesError>> = lines.iter().map(|l| Crypto::parse(l)).collect();
        let best = parsed.iter().filter_map(|r| r.as_ref().ok()).min_by_key(|c| c.suite.rank()).copied();
        match best {
            Some(c) => Ok(c),
            None => Err(parsed.into_iter().find_map(Result::err).unwrap_or(SdesError::Malformed("no a=crypto line"))),
        }
    }

    /// The attribute value for our side: the same tag and suite, with `key`.
    pub fn answer_line(&self, key: &KeySalt) -> String {
        format!("{} {} inline:{}", self.tag, self.suite.name(), STANDARD.encode(key.0))
    }
}

/// A key lifetime: decimal, or `2^n` (RFC 4568 §6.1). vocals rekeys never, so any lifetime is accepted.
fn lifetime_ok(s: &str) -> bool {
    let digits = s.strip_prefix("2^").unwrap_or(s);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWILIO: &str = "1 AES_CM_128_HMAC_SHA1_80 inline:h77xBx3cFE4uhlQtSlBa4a8veOdxnbd6OBxy2bAy";

    #[test]
    fn twilios_crypto_line_gives_tag_suite_and_a_30_byte_key() {
        let c = Crypto::parse(TWILIO).unwrap();
        assert_eq!((c.tag, c.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(STANDARD.encode(c.key.0), "h77xBx3cFE4uhlQtSlBa4a8veOdxnbd6OBxy2bAy");
        assert_eq!((c.key.key().len(), c.key.salt().len()), (16, 14));
        assert_eq!(format!("{:?}", c.key), "KeySalt(..)", "keys never reach a log");
    }

    #[test]
    fn lifetimes_and_zero_length_mkis_are_accepted_and_real_mkis_refused() {
        assert!(Crypto::parse(&format!("{TWILIO}|2^31")).is_ok());
        assert!(Crypto::parse(&format!("{TWILIO}|2^20|1:0")).is_ok());
        assert_eq!(Crypto::parse(&format!("{TWILIO}|2^20|1:4")), Err(SdesError::Unsupported("an MKI")));
        assert_eq!(Crypto::parse(&format!("{TWILIO}|2^x")), Err(SdesError::Malformed("bad key lifetime")));
    }

    #[test]
    fn unusable_lines_say_why() {
        let cases = [
            ("1 AES_CM_128_HMAC_SHA1_80", SdesError::Malformed("needs a tag, a suite and key parameters")),
            ("1 F8_128_HMAC_SHA1_80 inline:AAAA", SdesError::Suite("F8_128_HMAC_SHA1_80".into())),
            ("x AES_CM_128_HMAC_SHA1_80 inline:AAAA", SdesError::Malformed("bad tag")),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", SdesError::Malformed("key and salt are not 30 bytes")),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!", SdesError::Malformed("key is not base64")),
            ("1 AES_CM_128_HMAC_SHA1_80 uri:x", SdesError::Malformed("key method is not inline")),
            (&format!("{TWILIO} UNENCRYPTED_SRTP"), SdesError::Unsupported("session parameters")),
        ];
        for (line, want) in cases {
            assert_eq!(Crypto::parse(line), Err(want), "{line}");
        }
    }

    #[test]
    fn the_80_bit_tag_is_chosen_over_the_32_bit_one_and_the_answer_keeps_the_tag() {
        let lines = vec![
            "1 AES_CM_128_HMAC_SHA1_32 inline:h77xBx3cFE4uhlQtSlBa4a8veOdxnbd6OBxy2bAy".to_string(),
            "2 AES_256_CM_HMAC_SHA1_80 inline:AAAA".to_string(),
            TWILIO.replace("1 ", "3 "),
        ];
        let c = Crypto::choose(&lines).unwrap();
        assert_eq!((c.tag, c.suite), (3, Suite::AesCm128HmacSha1_80));
        let ours = KeySalt([7; KEY_SALT_LEN]);
        let line = c.answer_line(&ours);
        assert_eq!(Crypto::parse(&line).unwrap(), Crypto { tag: 3, suite: c.suite, key: ours });
        assert!(Crypto::choose(&lines[1..2]).is_err());
        assert_eq!(Crypto::choose(&[]), Err(SdesError::Malformed("no a=crypto line")));
    }
}
