//! Reason (RFC 3326): `Q.850;cause=16;text="Normal call clearing"`.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderError;
use crate::sip::message::params::{ParamStyle, Params, parse_params};
use crate::sip::message::scan::{is_token, trim_wsp, unescape_quoted};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reason {
    /// `SIP`, `Q.850` or another token.
    pub protocol: Bytes,
    pub params: Params,
}

impl Reason {
    pub fn parse(src: &Bytes) -> Result<Reason, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<Reason, HeaderError> {
        let s = trim_wsp(s);
        let len = s.iter().take_while(|&&b| is_token(b)).count();
        if len == 0 {
            return Err(HeaderError("must start with a protocol token"));
        }
        let (params, rest) = parse_params(src, &s[len..], ParamStyle::Header).map_err(HeaderError)?;
        if !rest.is_empty() {
            return Err(HeaderError("unexpected character after the parameters"));
        }
        Ok(Reason { protocol: src.slice_ref(&s[..len]), params })
    }

    /// A Reason vocals sends: `protocol;cause=N;text="..."`. Quotes and backslashes in `text` are escaped.
    pub fn new(protocol: &str, cause: u16, text: &str) -> Reason {
        let mut params = Params::new();
        params.set("cause", Some(Bytes::from(cause.to_string())));
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        params.set("text", Some(Bytes::from(format!("\"{escaped}\""))));
        Reason { protocol: Bytes::copy_from_slice(protocol.as_bytes()), params }
    }

    pub fn cause(&self) -> Option<u16> {
        std::str::from_utf8(self.params.value("cause")?).ok()?.parse().ok()
    }

    /// `text` with its quotes removed.
    pub fn text(&self) -> Option<Cow<'_, [u8]>> {
        let t = self.params.value("text")?;
        Some(match t.strip_prefix(b"\"").and_then(|t| t.strip_suffix(b"\"")) {
            Some(inner) => unescape_quoted(inner),
            None => Cow::Borrowed(&t[..]),
        })
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        out.put_slice(&self.protocol);
        self.params.encode(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_reason_parses() {
        let r = Reason::parse(&Bytes::from_static(b"Q.850;cause=16;text=\"Normal call clearing\"")).unwrap();
        assert_eq!(r.protocol, "Q.850");
        assert_eq!(r.cause(), Some(16));
        assert_eq!(&*r.text().unwrap(), b"Normal call clearing");
        assert_eq!(Reason::parse(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn built_reasons_escape_their_text() {
        let r = Reason::new("SIP", 408, "agent said \"bye\"");
        assert_eq!(&r.to_bytes()[..], br#"SIP;cause=408;text="agent said \"bye\"""#);
        assert_eq!(&*Reason::parse(&r.to_bytes()).unwrap().text().unwrap(), br#"agent said "bye""#);
    }

    #[test]
    fn empty_reason_is_refused() {
        assert!(Reason::parse(&Bytes::from_static(b" ;cause=1")).is_err());
    }
}
