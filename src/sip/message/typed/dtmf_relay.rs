//! `application/dtmf-relay` bodies (SIP INFO DTMF as Cisco and most gateways send it, referred to by RFC 6086
//! §1 as a legacy usage): `Signal=5` and `Duration=160` lines, `key=value` each.

use bytes::Bytes;

use super::BodyError;
use super::dtmf::dtmf_digit;

/// Longest body taken: two short lines fit in far less.
pub const MAX_DTMF_RELAY: usize = 1024;

/// One DTMF digit relayed in an INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DtmfRelay {
    /// `0`–`9`, `*`, `#`, `A`–`D` (a lower-case letter is taken as its upper case).
    pub signal: char,
    /// `Duration=`, in milliseconds, when given.
    pub duration_ms: Option<u32>,
}

impl DtmfRelay {
    /// Parses the body: line ends CRLF or LF, white space around keys and values ignored, keys in any case,
    /// other keys (`Volume=` ...) ignored. `Signal` is required and must be one digit; each key at most once.
    pub fn parse(body: &[u8]) -> Result<DtmfRelay, BodyError> {
        if body.len() > MAX_DTMF_RELAY {
            return Err(BodyError("application/dtmf-relay body too long"));
        }
        let text = std::str::from_utf8(body).map_err(|_| BodyError("application/dtmf-relay body is not UTF-8"))?;
        let (mut signal, mut duration) = (None, None);
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once('=').ok_or(BodyError("application/dtmf-relay line is not key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("Signal") {
                let digit = single(value).and_then(dtmf_digit).ok_or(BodyError("Signal is not a DTMF digit"))?;
                if signal.replace(digit).is_some() {
                    return Err(BodyError("Signal given twice"));
                }
            } else if key.eq_ignore_ascii_case("Duration") {
                let ms = value.parse().map_err(|_| BodyError("Duration is not a number of milliseconds"))?;
                if duration.replace(ms).is_some() {
                    return Err(BodyError("Duration given twice"));
                }
            }
        }
        let signal = signal.ok_or(BodyError("application/dtmf-relay body has no Signal"))?;
        Ok(DtmfRelay { signal, duration_ms: duration })
    }

    /// `Signal=5\r\nDuration=160\r\n` (the Duration line only when there is one).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = format!("Signal={}\r\n", self.signal);
        if let Some(ms) = self.duration_ms {
            out.push_str(&format!("Duration={ms}\r\n"));
        }
        Bytes::from(out)
    }
}

/// The one character of `s`, if it has exactly one.
fn single(s: &str) -> Option<char> {
    let mut chars = s.chars();
    chars.next().filter(|_| chars.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DtmfRelay, BodyError> {
        DtmfRelay::parse(s.as_bytes())
    }

    #[test]
    fn a_digit_and_its_duration_parse_and_round_trip() {
        let r = parse("Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(r, DtmfRelay { signal: '5', duration_ms: Some(160) });
        assert_eq!(&r.to_bytes()[..], b"Signal=5\r\nDuration=160\r\n");
        assert_eq!(DtmfRelay::parse(&r.to_bytes()).unwrap(), r);
        let bare = DtmfRelay { signal: '#', duration_ms: None };
        assert_eq!(DtmfRelay::parse(&bare.to_bytes()).unwrap(), bare);
    }

    #[test]
    fn gateways_spellings_are_taken() {
        assert_eq!(parse(" signal = * \nDURATION= 250\n").unwrap(), DtmfRelay { signal: '*', duration_ms: Some(250) });
        assert_eq!(parse("Signal=d").unwrap().signal, 'D', "a letter in lower case");
        assert_eq!(parse("Signal=1\r\nVolume=10\r\n\r\n").unwrap().duration_ms, None, "other keys ignored");
    }

    #[test]
    fn missing_repeated_or_garbage_fields_are_errors() {
        for bad in [
            "",
            "Duration=160",
            "Signal=",
            "Signal=10",
            "Signal=E",
            "Signal=5\r\nSignal=6",
            "Signal=5\r\nDuration=160\r\nDuration=100",
            "Signal=5\r\nDuration=-1",
            "Signal=5\r\nDuration=99999999999",
            "Signal=5\r\nDuration=fast",
            "Signal 5",
            "\u{0}\u{1}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(DtmfRelay::parse(b"Signal=\xff").is_err());
        let long = format!("Signal=5\r\n{}", "Volume=1\r\n".repeat(200));
        assert_eq!(parse(&long), Err(BodyError("application/dtmf-relay body too long")));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking_and_what_parses_round_trips(
            d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)
        ) {
            if let Ok(r) = DtmfRelay::parse(&d) {
                proptest::prop_assert_eq!(DtmfRelay::parse(&r.to_bytes()), Ok(r));
            }
        }
    }
}
