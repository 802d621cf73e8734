//! Session-Expires and Min-SE (RFC 4028 §4, §5): `1800;refresher=uac` (compact `x`), and `90`.

use bytes::{Bytes, BytesMut};

use super::HeaderError;
use crate::sip::message::params::{ParamStyle, Params, parse_params};
use crate::sip::message::scan::trim_wsp;

/// Who refreshes the session, named relative to the transaction that negotiated it (RFC 4028 §4): its UAC
/// (who sent the INVITE or UPDATE) or its UAS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// `Session-Expires: delta-seconds *(;se-params)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval, seconds.
    pub delta: u32,
    /// `refresher=uac|uas`, if given (another value is an error).
    pub refresher: Option<Refresher>,
    /// Every parameter as given (unknown ones are kept, §4 allows extensions).
    pub params: Params,
}

/// Most digits a delta-seconds may have: RFC 4028 bounds nothing, but a value past 2^32-1 seconds (136 years)
/// is nonsense, and refusing it keeps the arithmetic small.
const MAX_DIGITS: usize = 10;

fn delta(s: &[u8]) -> Result<(u32, usize), HeaderError> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err(HeaderError("must start with delta-seconds"));
    }
    if digits > MAX_DIGITS {
        return Err(HeaderError("delta-seconds too long"));
    }
    let n: u64 = std::str::from_utf8(&s[..digits]).ok().and_then(|d| d.parse().ok()).unwrap_or(u64::MAX);
    let n = u32::try_from(n).map_err(|_| HeaderError("delta-seconds too large"))?;
    Ok((n, digits))
}

impl SessionExpires {
    pub fn parse(src: &Bytes) -> Result<SessionExpires, HeaderError> {
        let s = trim_wsp(src);
        let (delta, digits) = delta(s)?;
        let (params, rest) = parse_params(src, &s[digits..], ParamStyle::Header).map_err(HeaderError)?;
        if !trim_wsp(rest).is_empty() {
            return Err(HeaderError("unexpected character after the parameters"));
        }
        let refresher = match params.value("refresher") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case(b"uac") => Some(Refresher::Uac),
            Some(v) if v.eq_ignore_ascii_case(b"uas") => Some(Refresher::Uas),
            Some(_) => return Err(HeaderError("refresher must be uac or uas")),
        };
        if params.contains("refresher") && params.value("refresher").is_none() {
            return Err(HeaderError("refresher must be uac or uas"));
        }
        Ok(SessionExpires { delta, refresher, params })
    }

    /// What vocals sends: `delta;refresher=…` (or the delta alone).
    pub fn new(delta: u32, refresher: Option<Refresher>) -> SessionExpires {
        let mut params = Params::new();
        if let Some(r) = refresher {
            params.set("refresher", Some(Bytes::from_static(r.as_str().as_bytes())));
        }
        SessionExpires { delta, refresher, params }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(24);
        out.extend_from_slice(self.delta.to_string().as_bytes());
        self.params.encode(&mut out);
        out.freeze()
    }
}

/// `Min-SE: delta-seconds *(;generic-param)`: the smallest session interval the sender takes.
pub fn parse_min_se(src: &Bytes) -> Result<u32, HeaderError> {
    let s = trim_wsp(src);
    let (delta, digits) = delta(s)?;
    let (_, rest) = parse_params(src, &s[digits..], ParamStyle::Header).map_err(HeaderError)?;
    if !trim_wsp(rest).is_empty() {
        return Err(HeaderError("unexpected character after the parameters"));
    }
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn se(s: &str) -> Result<SessionExpires, HeaderError> {
        SessionExpires::parse(&Bytes::from(s.to_string()))
    }

    #[test]
    fn session_expires_parses_its_interval_and_refresher_and_prints_back() {
        let v = se("1800;refresher=uac").unwrap();
        assert_eq!((v.delta, v.refresher), (1800, Some(Refresher::Uac)));
        assert_eq!(se(" 90 ; REFRESHER=UAS ").unwrap().refresher, Some(Refresher::Uas));
        assert_eq!(se("4000").unwrap().refresher, None);
        let kept = se("600;refresher=uas;x-ext=1").unwrap();
        assert_eq!(SessionExpires::parse(&kept.to_bytes()).unwrap(), kept);
        assert_eq!(&SessionExpires::new(90, Some(Refresher::Uas)).to_bytes()[..], b"90;refresher=uas");
        assert_eq!(&SessionExpires::new(1800, None).to_bytes()[..], b"1800");
    }

    #[test]
    fn hostile_values_are_errors() {
        for bad in ["", "abc", "-1", "90;refresher=both", "90;refresher", "99999999999", "4294967296", "90 x"] {
            assert!(se(bad).is_err(), "{bad:?}");
        }
        assert_eq!(se("4294967295").unwrap().delta, u32::MAX);
        assert_eq!(parse_min_se(&Bytes::from_static(b" 90")).unwrap(), 90);
        assert_eq!(parse_min_se(&Bytes::from_static(b"120;x=y")).unwrap(), 120);
        for bad in ["", "x", "90 90", "123456789012"] {
            assert!(parse_min_se(&Bytes::from(bad)).is_err(), "{bad:?}");
        }
    }
}
