//! Event (RFC 6665 §8.2.1, grammar §8.4): the event package a SUBSCRIBE or NOTIFY is about, `refer` for the
//! progress of a REFER (RFC 3515 §2.4.4): `refer;id=93809824`.

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderError;
use crate::sip::message::params::{ParamStyle, Params, parse_params};
use crate::sip::message::scan::{is_token, trim_wsp};

/// An Event value: the event type (a package and its templates, `presence.winfo`) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// `event-package *( "." event-template )`, as received.
    pub ty: Bytes,
    pub params: Params,
}

impl Event {
    pub fn parse(src: &Bytes) -> Result<Event, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<Event, HeaderError> {
        let s = trim_wsp(s);
        let len = s.iter().take_while(|&&b| is_token(b)).count();
        let ty = &s[..len];
        // Each part is a token-nodot: the type can neither start nor end with a dot, nor hold two in a row.
        if ty.is_empty() || ty.split(|&b| b == b'.').any(<[u8]>::is_empty) {
            return Err(HeaderError("must start with an event type (package[.template])"));
        }
        let (params, rest) = parse_params(src, &s[len..], ParamStyle::Header).map_err(HeaderError)?;
        if !rest.is_empty() {
            return Err(HeaderError("unexpected character after the parameters"));
        }
        Ok(Event { ty: src.slice_ref(ty), params })
    }

    /// An Event vocals sends: the package alone.
    pub fn new(package: &str) -> Event {
        Event { ty: Bytes::copy_from_slice(package.as_bytes()), params: Params::new() }
    }

    /// The event package: the type before any template (`presence` of `presence.winfo`).
    pub fn package(&self) -> &[u8] {
        self.ty.split(|&b| b == b'.').next().unwrap_or_default()
    }

    /// Whether this is the event type `ty` (compared case-insensitively, RFC 6665 §8.2.1 gives no case rule;
    /// vocals has always matched `refer` so).
    pub fn is(&self, ty: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty.as_bytes())
    }

    /// `id`: which of several subscriptions in one dialog (RFC 6665 §8.2.1; a REFER's CSeq, RFC 3515 §2.4.6).
    pub fn id(&self) -> Option<&Bytes> {
        self.params.value("id")
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.ty);
        self.params.encode(out);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.ty.len() + 16);
        self.encode(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Event, HeaderError> {
        Event::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_refer_event_with_an_id_parses_and_round_trips() {
        let e = parse(" refer ; id=93809824 ").unwrap();
        assert!(e.is("REFER"));
        assert_eq!(e.package(), b"refer");
        assert_eq!(e.id().unwrap(), "93809824");
        assert_eq!(&e.to_bytes()[..], b"refer;id=93809824");
        assert_eq!(parse(std::str::from_utf8(&e.to_bytes()).unwrap()).unwrap(), e);
        assert_eq!(&Event::new("refer").to_bytes()[..], b"refer");
    }

    #[test]
    fn a_template_is_part_of_the_type_but_not_of_the_package() {
        let e = parse("presence.winfo").unwrap();
        assert_eq!((&e.ty[..], e.package()), (&b"presence.winfo"[..], &b"presence"[..]));
        assert!(!e.is("presence"));
        assert_eq!(Event::parse(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn malformed_events_are_refused() {
        for bad in ["", " ", ";id=1", "refer junk", "refer;", ".refer", "refer.", "a..b", "refer;id=\"open", "refer\0"]
        {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(Event::parse(&Bytes::from_static(b"\xff\xfe")).is_err());
        // Very many parameters are a valid (if silly) header: parsed, never a panic.
        let long = format!("refer{}", ";x=y".repeat(10_000));
        assert_eq!(parse(&long).unwrap().params.len(), 10_000);
    }
}
