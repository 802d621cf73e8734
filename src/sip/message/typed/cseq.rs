//! CSeq (RFC 3261 §20.16), Call-ID (§20.8) and Max-Forwards (§20.22).

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderError;
use crate::sip::message::method::Method;
use crate::sip::message::scan::{is_wsp, parse_u64, trim_wsp};
use crate::sip::message::uri::itoa_buf;

/// `CSeq: 4711 INVITE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// Less than 2^31 (§8.1.1.5).
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(src: &Bytes) -> Result<CSeq, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<CSeq, HeaderError> {
        let (seq, method) = Self::check(s)?;
        let method = Method::from_received(src, method).ok_or(HeaderError("method is not a token"))?;
        Ok(CSeq { seq, method })
    }

    /// Checks a CSeq value without allocating; returns the number and the method as written.
    pub(crate) fn check(s: &[u8]) -> Result<(u32, &[u8]), HeaderError> {
        let s = trim_wsp(s);
        let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
        let seq = parse_u64(&s[..digits])
            .filter(|&n| n < 1 << 31)
            .ok_or(HeaderError("sequence number must be a decimal below 2^31"))?;
        let rest = &s[digits..];
        let gap = rest.iter().take_while(|&&b| is_wsp(b)).count();
        if gap == 0 {
            return Err(HeaderError("sequence number must be followed by white space and a method"));
        }
        let method = &rest[gap..];
        if !crate::sip::message::scan::is_token_str(method) {
            return Err(HeaderError("method is not a token"));
        }
        Ok((seq as u32, method))
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(itoa_buf::Buf::new(u64::from(self.seq)).as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.method.as_bytes());
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(24);
        self.encode(&mut out);
        out.freeze()
    }
}

/// `Call-ID: word["@"word]`, kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallId(pub Bytes);

impl CallId {
    pub fn parse(src: &Bytes) -> Result<CallId, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<CallId, HeaderError> {
        Ok(CallId(src.slice_ref(Self::check(s)?)))
    }

    /// Checks a Call-ID without allocating; returns it trimmed.
    pub(crate) fn check(s: &[u8]) -> Result<&[u8], HeaderError> {
        let s = trim_wsp(s);
        let mut ats = 0;
        for &b in s {
            if b == b'@' {
                ats += 1;
            } else if !is_word_char(b) {
                return Err(HeaderError("contains a character not allowed in a Call-ID word"));
            }
        }
        if s.is_empty() || ats > 1 || s.first() == Some(&b'@') || s.last() == Some(&b'@') {
            return Err(HeaderError("must be word or word@word"));
        }
        Ok(s)
    }
}

/// RFC 3261 §25.1 `word`.
fn is_word_char(b: u8) -> bool {
    crate::sip::message::scan::is(b, crate::sip::message::scan::class::WORD)
}

/// `Max-Forwards: 0..=255`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxForwards(pub u8);

impl MaxForwards {
    pub fn parse(src: &[u8]) -> Result<MaxForwards, HeaderError> {
        parse_u64(trim_wsp(src))
            .and_then(|n| u8::try_from(n).ok())
            .map(MaxForwards)
            .ok_or(HeaderError("must be a decimal from 0 to 255"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn cseq_parses_and_round_trips() {
        let c = CSeq::parse(&b(" 48063   INVITE ")).unwrap();
        assert_eq!((c.seq, &c.method), (48063, &Method::Invite));
        assert_eq!(CSeq::parse(&c.to_bytes()).unwrap(), c);
        assert_eq!(&c.to_bytes()[..], b"48063 INVITE");
    }

    #[test]
    fn cseq_refuses_overlarge_missing_or_bad_parts() {
        for bad in ["2147483648 INVITE", "4294967296 INVITE", "-1 INVITE", "1", "1INVITE", "INVITE", "1 IN VITE"] {
            assert!(CSeq::parse(&b(bad)).is_err(), "{bad}");
        }
        assert_eq!(CSeq::parse(&b("2147483647 BYE")).unwrap().seq, 2_147_483_647);
    }

    #[test]
    fn call_id_accepts_words_and_refuses_blanks() {
        assert_eq!(CallId::parse(&b(" 4fcfeac9@0.0.0.0 ")).unwrap().0, "4fcfeac9@0.0.0.0");
        assert!(CallId::parse(&b("a{b}[c]<d>:e")).is_ok());
        for bad in ["", "a b", "a@b@c", "@a", "a@"] {
            assert!(CallId::parse(&b(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn max_forwards_is_one_octet() {
        assert_eq!(MaxForwards::parse(b"70").unwrap(), MaxForwards(70));
        assert_eq!(MaxForwards::parse(b"0").unwrap(), MaxForwards(0));
        assert!(MaxForwards::parse(b"256").is_err());
        assert!(MaxForwards::parse(b"300").is_err());
        assert!(MaxForwards::parse(b"").is_err());
    }
}
