//! `E164`: a phone number in E.164 form (`+` and 7 to 15 digits, no leading zero), the key numbers are
//! routed and stored by. `normalize` reads the shapes dialed numbers arrive in; `parse` is the strict form
//! for API input.

use std::fmt;

use crate::sip::message::{Uri, unescape};

/// A phone number in E.164 form, e.g. `+14155550123`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

/// Why a string is not a phone number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct E164Error(&'static str);

const FORM: &str = "phone number must be E.164, e.g. +14155550123";

impl E164 {
    /// Strict: exactly `+` followed by 7 to 15 digits, the first not zero.
    pub fn parse(s: &str) -> Result<E164, E164Error> {
        let digits = s.strip_prefix('+').ok_or(E164Error(FORM))?;
        Self::from_digits(digits)
    }

    /// Lenient, for dialed numbers: accepts `+14155550123`, `14155550123` (taken as already international),
    /// `0014155550123` (international prefix), visual separators (`-`, `.`, `(`, `)`, space),
    /// `tel:+1-415-555-0123` and `sip:+14155550123@host;user=phone`. Refuses anything that is not a number
    /// (`anonymous`, `vocals-t123`, local short codes).
    pub fn normalize(s: &str) -> Result<E164, E164Error> {
        let s = s.trim();
        let lower = s.get(..5).map(str::to_ascii_lowercase).unwrap_or_default();
        if lower.starts_with("sip:") || lower.starts_with("sips:") || lower.starts_with("tel:") {
            let uri = Uri::parse(&bytes::Bytes::copy_from_slice(s.as_bytes()))
                .map_err(|_| E164Error("not a valid sip: or tel: URI"))?;
            return Self::from_uri(&uri);
        }
        Self::from_dialed(s)
    }

    /// The number in a URI's user part (sip/sips) or number (tel).
    pub fn from_uri(uri: &Uri) -> Result<E164, E164Error> {
        let user = uri.user().ok_or(E164Error("URI has no user part"))?;
        let user = unescape(user);
        let user = std::str::from_utf8(&user).map_err(|_| E164Error(FORM))?;
        // A user part may carry tel parameters (`+1415...;npdi`, RFC 3261 §19.1.6).
        Self::from_dialed(user.split(';').next().unwrap_or_default())
    }

    fn from_dialed(s: &str) -> Result<E164, E164Error> {
        let compact: String = s.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' ')).collect();
        let digits = match compact.strip_prefix('+') {
            Some(d) => d,
            None => compact.strip_prefix("00").unwrap_or(&compact),
        };
        Self::from_digits(digits)
    }

    fn from_digits(digits: &str) -> Result<E164, E164Error> {
        if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
            return Err(E164Error(FORM));
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(E164Error("phone number must have 7 to 15 digits after the +"));
        }
        if digits.starts_with('0') {
            return Err(E164Error("country code cannot start with 0"));
        }
        Ok(E164(format!("+{digits}")))
    }

    /// `+14155550123`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `14155550123`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for E164 {
    type Err = E164Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        E164::parse(s)
    }
}

impl TryFrom<String> for E164 {
    type Error = E164Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        E164::parse(&s)
    }
}

impl From<E164> for String {
    fn from(e: E164) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialed_shapes_normalize_to_one_number() {
        for s in [
            "+14155550123",
            "14155550123",
            "001-415-555-0123",
            "0014155550123",
            "tel:+1-415-555-0123",
            "sip:+14155550123@sip.vocals.example;user=phone",
            "SIP:+14155550123@host",
            "sip:%2B14155550123@host",
            "+1 (415) 555.0123",
            "sip:+14155550123;npdi@host",
        ] {
            assert_eq!(E164::normalize(s).unwrap().as_str(), "+14155550123", "{s}");
        }
    }

    #[test]
    fn what_is_not_a_phone_number_is_refused() {
        for s in [
            "anonymous",
            "vocals-t123",
            "sip:vocals-t123@host",
            "+0123456789",
            "+123",
            "+1234567890123456",
            "",
            "+",
            "tel:",
            "http://x",
        ] {
            assert!(E164::normalize(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn strict_parse_wants_the_plus_and_says_so() {
        assert!(E164::parse("+14155550123").is_ok());
        assert_eq!(E164::parse("14155550123").unwrap_err().to_string(), FORM);
        assert_eq!(E164::parse("+14155550123").unwrap().digits(), "14155550123");
    }

    #[test]
    fn conversion_from_string_uses_the_strict_form() {
        assert_eq!(E164::try_from("+14155550123".to_string()).unwrap().as_str(), "+14155550123");
        assert!(E164::try_from("4155550123x".to_string()).is_err());
        assert_eq!(String::from(E164::parse("+14155550123").unwrap()), "+14155550123");
    }
}
