//! `E164`: a phone number in E.164 form (`+` and 7 to 15 digits, no leading zero), the key numbers are
//! routed and stored by. `normalize` reads the shapes dialed numbers arrive in; `parse` is the strict form
//! for API input. [`E164::country_code`] reads a number's country code from ITU-T's list of assigned codes.

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

    /// A number as a person types it, in international form or in the national form of the country whose
    /// calling code is `country` (e.g. `1`): `(415) 555-0123` and `415.555.0123` with `1` are `+14155550123`;
    /// `020 7123 4567` with `44` is `+442071234567` (the national trunk prefix 0 dropped). `+…`, `00…` (and
    /// `011…` in North America) are international whatever `country` is.
    pub fn parse_national(s: &str, country: &str) -> Result<E164, E164Error> {
        let compact: String = s.trim().chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' ' | '/')).collect();
        if let Some(digits) = compact.strip_prefix('+').or_else(|| compact.strip_prefix("00")) {
            return Self::from_digits(digits);
        }
        if !compact.bytes().all(|b| b.is_ascii_digit()) || compact.is_empty() || country.is_empty() {
            return Err(E164Error(FORM));
        }
        if country == "1" {
            if let Some(digits) = compact.strip_prefix("011") {
                return Self::from_digits(digits);
            }
            return match compact.len() {
                10 => Self::from_digits(&format!("1{compact}")),
                11 if compact.starts_with('1') => Self::from_digits(&compact),
                _ => Err(E164Error("a North American number has 10 digits, e.g. (415) 555-0123")),
            };
        }
        let national = compact.strip_prefix('0').unwrap_or(&compact);
        Self::from_digits(&format!("{country}{national}"))
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

    /// The country code (1 to 3 digits): `1` for `+14155550123`, `44` for `+442071234567`; `None` when the
    /// number starts with a code ITU-T has not assigned. Country codes are a prefix code (none begins
    /// another), so the first that matches is the one.
    pub fn country_code(&self) -> Option<&str> {
        let digits = self.digits();
        (1..=3)
            .map(|n| &digits[..n])
            .find(|code| code.parse().is_ok_and(|c: u16| COUNTRY_CODES.binary_search(&c).is_ok()))
    }
}

/// Every country code ITU-T has assigned (the list annexed to Recommendation E.164, as amended to 2023), in
/// order: the countries' and the shared codes (1 is the North American Numbering Plan, 7 Russia and
/// Kazakhstan), the reserved ones (379 Vatican, 388 groups of countries, 997 Kazakhstan) and the global
/// services (800 freephone, 808 shared cost, 870 Inmarsat, 878 UPT, 881 satellite, 882/883 international
/// networks, 888 disaster relief, 979 premium rate, 991 trial).
#[rustfmt::skip]
const COUNTRY_CODES: &[u16] = &[
    1, 7,
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58,
    60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    211, 212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235,
    236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255, 256,
    257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298, 299,
    350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 380,
    381, 382, 383, 385, 386, 387, 388, 389,
    420, 421, 423,
    500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599,
    670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692,
    800, 808, 850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888,
    960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 991, 992, 993,
    994, 995, 996, 997, 998,
];

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
    fn national_forms_take_the_country_given_and_international_ones_keep_theirs() {
        let n = |s: &str, cc: &str| E164::parse_national(s, cc).map(|e| e.to_string());
        for typed in ["(415) 555-0123", "415.555.0123", "415 555 0123", "1-415-555-0123", "+1 415 555 0123"] {
            assert_eq!(n(typed, "1").as_deref(), Ok("+14155550123"), "{typed}");
        }
        assert_eq!(n("011 44 20 7123 4567", "1").as_deref(), Ok("+442071234567"));
        assert_eq!(n("020 7123 4567", "44").as_deref(), Ok("+442071234567"));
        assert_eq!(n("0044 20 7123 4567", "1").as_deref(), Ok("+442071234567"));
        assert_eq!(n("030 1234567", "49").as_deref(), Ok("+49301234567"));
        assert_eq!(n("+442071234567", "").as_deref(), Ok("+442071234567"));
        assert!(n("555-0123", "1").unwrap_err().to_string().contains("10 digits"));
        assert!(n("(415) 555-0123", "").is_err(), "no country: only international forms");
        assert!(n("call me", "1").is_err());
    }

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
    fn the_country_code_is_read_from_itus_list() {
        let cc = |n: &str| E164::parse(n).unwrap().country_code().map(str::to_string);
        for (number, code) in [
            ("+14155550123", "1"),
            ("+19005550100", "1"),
            ("+74951234567", "7"),
            ("+442071234567", "44"),
            ("+20212345678", "20"),
            ("+2305551234", "230"),
            ("+35312345678", "353"),
            ("+8613812345678", "86"),
            ("+85212345678", "852"),
            ("+8005551234", "800"),
            ("+97150123456", "971"),
            ("+5999123456", "599"),
        ] {
            assert_eq!(cc(number).as_deref(), Some(code), "{number}");
        }
        // Spare codes: 28x, 42x but 420, 421 and 423, 999.
        for number in ["+2812345678", "+4221234567", "+9991234567", "+8351234567"] {
            assert_eq!(cc(number), None, "{number}");
        }
    }

    #[test]
    fn the_country_code_list_is_sorted_complete_and_a_prefix_code() {
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        assert_eq!(COUNTRY_CODES.len(), 219, "every assigned code");
        for a in COUNTRY_CODES {
            for b in COUNTRY_CODES.iter().filter(|b| *b != a) {
                assert!(!b.to_string().starts_with(&a.to_string()), "{a} begins {b}");
            }
        }
    }

    #[test]
    fn conversion_from_string_uses_the_strict_form() {
        assert_eq!(E164::try_from("+14155550123".to_string()).unwrap().as_str(), "+14155550123");
        assert!(E164::try_from("4155550123x".to_string()).is_err());
        assert_eq!(String::from(E164::parse("+14155550123").unwrap()), "+14155550123");
    }
}
