//! `application/dtmf` bodies (SIP INFO DTMF as some gateways send it): the digit alone, `5`. Some of them
//! write `application/dtmf-relay` lines under this type instead; the endpoint reads those with
//! [`super::DtmfRelay`].

use bytes::Bytes;

use super::BodyError;

/// One DTMF digit in an `application/dtmf` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dtmf {
    /// `0`–`9`, `*`, `#`, `A`–`D` (a lower-case letter is taken as its upper case).
    pub digit: char,
}

impl Dtmf {
    /// The body is one digit, with white space (a line end) around it allowed.
    pub fn parse(body: &[u8]) -> Result<Dtmf, BodyError> {
        match body.trim_ascii() {
            [b] => dtmf_digit(char::from(*b)).map(|digit| Dtmf { digit }).ok_or(BodyError("not a DTMF digit")),
            [] => Err(BodyError("application/dtmf body is empty")),
            _ => Err(BodyError("application/dtmf body is not one digit")),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.digit.to_string())
    }
}

/// A DTMF digit (RFC 4733 §3.2's events 0–15): `0`–`9`, `*`, `#`, `A`–`D`, a lower-case letter as its upper
/// case.
pub(crate) fn dtmf_digit(c: char) -> Option<char> {
    let c = c.to_ascii_uppercase();
    (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_alone_parses_and_round_trips() {
        for (body, digit) in [("5", '5'), ("#\r\n", '#'), (" * ", '*'), ("a", 'A'), ("D", 'D')] {
            let d = Dtmf::parse(body.as_bytes()).unwrap();
            assert_eq!(d.digit, digit);
            assert_eq!(Dtmf::parse(&d.to_bytes()).unwrap(), d);
        }
    }

    #[test]
    fn anything_but_one_digit_is_an_error() {
        for bad in ["", "  ", "x", "E", "55", "5 6", "Signal=5", "\0", "é"] {
            assert!(Dtmf::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(Dtmf::parse(b"\xff").is_err());
        assert!(Dtmf::parse(&[b'1'; 5000]).is_err(), "oversized");
    }

    #[test]
    fn dtmf_digits_are_the_sixteen_events() {
        let all: String = (0u8..=127).map(char::from).filter_map(dtmf_digit).collect();
        assert_eq!(all, "#*0123456789ABCDABCD");
    }
}
