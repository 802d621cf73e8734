//! `name-addr / addr-spec` header values: From, To (§20.20, §20.39), Contact (§20.10), Route and
//! Record-Route (§20.34, §20.30), P-Asserted-Identity (RFC 3325), Diversion (RFC 5806), Refer-To (RFC 3515).

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::HeaderError;
use crate::sip::message::params::{ParamStyle, Params, header_params, parse_params};
use crate::sip::message::scan::{find_any, is_token, is_wsp, quoted_string, trim_wsp, unescape_quoted};
use crate::sip::message::uri::{Uri, UriContext, UriView};

/// A URI with an optional display name and header parameters. Always printed in `name-addr` form (`<...>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameAddr {
    pub display: Option<DisplayName>,
    pub uri: Uri,
    pub params: Params,
}

/// A display name as received: a quoted string (inner bytes, escapes kept) or a run of tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DisplayName {
    Quoted(Bytes),
    Tokens(Bytes),
}

/// A Contact value: `*` (REGISTER only) or an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Contact {
    Star,
    Addr(Box<NameAddr>),
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display: None, uri, params: Params::new() }
    }

    pub fn parse(src: &Bytes) -> Result<NameAddr, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<NameAddr, HeaderError> {
        NameAddrView::parse(s)?.to_owned(src)
    }

    /// The `tag` parameter (From/To, §19.3).
    pub fn tag(&self) -> Option<&Bytes> {
        self.params.value("tag")
    }

    /// The display name with quoting removed.
    pub fn display_name(&self) -> Option<Cow<'_, [u8]>> {
        self.display.as_ref().map(|d| match d {
            DisplayName::Quoted(q) => unescape_quoted(q),
            DisplayName::Tokens(t) => Cow::Borrowed(&t[..]),
        })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        match &self.display {
            Some(DisplayName::Quoted(q)) => {
                out.put_u8(b'"');
                out.put_slice(q);
                out.put_slice(b"\" ");
            }
            Some(DisplayName::Tokens(t)) => {
                out.put_slice(t);
                out.put_u8(b' ');
            }
            None => {}
        }
        out.put_u8(b'<');
        self.uri.encode(out);
        out.put_u8(b'>');
        self.params.encode(out);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(96);
        self.encode(&mut out);
        out.freeze()
    }
}

/// A name-addr checked against the grammar, borrowed from the input; allocates nothing.
pub(crate) struct NameAddrView<'a> {
    /// `(quoted, raw)`: the inner bytes of a quoted string, or the token run.
    display: Option<(bool, &'a [u8])>,
    uri: UriView<'a>,
    params: &'a [u8],
}

impl<'a> NameAddrView<'a> {
    pub(crate) fn parse(s: &'a [u8]) -> Result<NameAddrView<'a>, HeaderError> {
        let s = trim_wsp(s);
        if s.first() == Some(&b'"') {
            let (inner, rest) = quoted_string(s).ok_or(HeaderError("unterminated quoted display name"))?;
            let rest = trim_wsp(rest);
            if rest.first() != Some(&b'<') {
                return Err(HeaderError("a quoted display name must be followed by <URI>"));
            }
            return Self::bracketed(Some((true, inner)), rest);
        }
        let run = s.iter().position(|&b| !(is_token(b) || is_wsp(b))).unwrap_or(s.len());
        if s.get(run) == Some(&b'<') {
            let name = trim_wsp(&s[..run]);
            return Self::bracketed((!name.is_empty()).then_some((false, name)), &s[run..]);
        }
        if s.contains(&b'<') {
            return Err(HeaderError("display name has characters that must be quoted"));
        }
        Self::addr_spec(s)
    }

    /// `<URI> *(;param)`, `s` starting at `<`.
    fn bracketed(display: Option<(bool, &'a [u8])>, s: &'a [u8]) -> Result<NameAddrView<'a>, HeaderError> {
        let close = find_any(s, [b'>']).ok_or(HeaderError("'<' without a closing '>'"))?;
        let inner = &s[1..close];
        let uri = UriView::parse(inner, UriContext::Header).map_err(|e| {
            if inner.iter().any(|&b| is_wsp(b)) { HeaderError("white space inside <URI>") } else { e.into() }
        })?;
        let params = header_params(&s[close + 1..]).map_err(HeaderError)?;
        Ok(NameAddrView { display, uri, params })
    }

    /// A bare URI: everything up to the first `;` is the URI, the rest header parameters (§20: a URI holding
    /// `,` `?` or `;` must be enclosed in `<>`).
    fn addr_spec(s: &'a [u8]) -> Result<NameAddrView<'a>, HeaderError> {
        let end = s.iter().position(|&b| b == b';').unwrap_or(s.len());
        let uri_part = trim_wsp(&s[..end]);
        if uri_part.iter().any(|&b| b == b'?' || b == b',') {
            return Err(HeaderError("a URI with headers or commas must be enclosed in <>"));
        }
        let uri = UriView::parse(uri_part, UriContext::Header)?;
        let params = header_params(&s[end..]).map_err(HeaderError)?;
        Ok(NameAddrView { display: None, uri, params })
    }

    fn to_owned(&self, src: &Bytes) -> Result<NameAddr, HeaderError> {
        let display = self.display.map(|(quoted, raw)| {
            if quoted { DisplayName::Quoted(src.slice_ref(raw)) } else { DisplayName::Tokens(src.slice_ref(raw)) }
        });
        let (params, _) = parse_params(src, self.params, ParamStyle::Header).map_err(HeaderError)?;
        Ok(NameAddr { display, uri: self.uri.to_owned(src)?, params })
    }
}

/// Checks a Contact value (`*` or a name-addr) without allocating.
pub(crate) fn check_contact(s: &[u8]) -> Result<(), HeaderError> {
    if trim_wsp(s) == b"*" { Ok(()) } else { NameAddrView::parse(s).map(drop) }
}

impl Contact {
    pub fn parse(src: &Bytes) -> Result<Contact, HeaderError> {
        Self::parse_in(src, src)
    }

    /// Parses `s`, a subslice of `src`.
    pub fn parse_in(src: &Bytes, s: &[u8]) -> Result<Contact, HeaderError> {
        if trim_wsp(s) == b"*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse_in(src, s).map(|a| Contact::Addr(Box::new(a)))
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            Contact::Star => Bytes::from_static(b"*"),
            Contact::Addr(a) => a.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn twilio_from_with_cnam_parses() {
        let a =
            parse(r#""WIRELESS CALLER" <sip:+12125550100@vocals-acme.pstn.twilio.com:5060>;tag=58670300_c3"#).unwrap();
        assert_eq!(&*a.display_name().unwrap(), b"WIRELESS CALLER");
        assert_eq!(a.uri.user().unwrap(), "+12125550100");
        assert_eq!(a.tag().unwrap(), "58670300_c3");
    }

    #[test]
    fn token_display_names_may_touch_the_bracket() {
        let a = parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(&*a.display_name().unwrap(), b"caller");
        let a = parse("Bob  Smith   <sip:b@x>").unwrap();
        assert_eq!(&*a.display_name().unwrap(), b"Bob  Smith");
    }

    #[test]
    fn quoted_display_names_unescape() {
        let a = parse(r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#).unwrap();
        assert_eq!(&*a.display_name().unwrap(), br#"J Rosenberg \""#);
        let a = NameAddr::parse(&Bytes::from_static("\"你好\" <sip:x@y>".as_bytes())).unwrap();
        assert_eq!(&*a.display_name().unwrap(), "你好".as_bytes());
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let a = parse("sip:+14155550123@sip.vocals.example;tag=abc").unwrap();
        assert_eq!(a.tag().unwrap(), "abc");
        assert!(a.uri.params().unwrap().is_empty());
        let a = parse("<sip:x@y;transport=tcp>;tag=abc").unwrap();
        assert_eq!(a.uri.params().unwrap().value("transport").unwrap(), "tcp");
        assert_eq!(a.tag().unwrap(), "abc");
    }

    #[test]
    fn malformed_name_addrs_are_refused() {
        for bad in [
            r#""Unterminated <sip:a@b>"#,
            "Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "<sip:a@b",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"name\" sip:a@b",
            "<sip:a@b> junk",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_schemes_parse_opaquely() {
        let a = parse("<nobodyknowsthisscheme:totallyopaquecontent>;tag=384").unwrap();
        assert_eq!(a.uri.scheme(), b"nobodyknowsthisscheme");
    }

    #[test]
    fn contact_star_and_round_trip() {
        assert_eq!(Contact::parse(&Bytes::from_static(b" * ")).unwrap(), Contact::Star);
        for s in [
            r#""A \"q\"" <sip:a@[2001:db8::1]:5060;transport=tcp>;expires=30;q=0.7"#,
            "Caller <tel:+14155550123>;tag=1",
            "<sip:54.244.51.1;lr>",
        ] {
            let a = parse(s).unwrap();
            assert_eq!(&a.to_bytes()[..], s.as_bytes());
            assert_eq!(NameAddr::parse(&a.to_bytes()).unwrap(), a);
        }
        let a = parse("sip:a@b;tag=1").unwrap();
        assert_eq!(&a.to_bytes()[..], b"<sip:a@b>;tag=1");
    }
}
