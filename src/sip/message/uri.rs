//! URIs: `sip:`/`sips:` (RFC 3261 §19.1, with RFC 5118's IPv6 shapes), `tel:` (RFC 3966), and any other
//! absolute URI kept opaque so the application can answer 416. Parts are zero-copy slices of the received
//! bytes, escapes kept as received (`unescape` decodes on demand). Never panics on any input.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use super::params::{ParamStyle, Params, parse_params};

/// A parsed URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// Any other scheme (`http:`, `urn:`, `soap.beep:` ...): valid syntax, not understood.
    Other(OtherUri),
}

/// `sip:` or `sips:` URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, escapes kept.
    pub user: Option<Bytes>,
    pub password: Option<Bytes>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// The raw `hname=hvalue&...` part after `?`, without the `?`.
    pub headers: Option<Bytes>,
}

/// `tel:` URI (RFC 3966): the number as written (visual separators kept) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TelUri {
    pub number: Bytes,
    pub params: Params,
}

/// An absolute URI of a scheme vocals does not interpret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OtherUri {
    pub scheme: Bytes,
    /// Everything after `scheme:`.
    pub rest: Bytes,
}

/// The host of a SIP URI or Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Name(Bytes),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// Why a URI did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UriError(pub &'static str);

/// Where a URI appears: the Request-URI allows no `?headers` (RFC 3261 §19.1.1, table 1).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriContext {
    RequestLine,
    Header,
}

impl Uri {
    /// Parses a complete URI as it appears inside `<...>` in a header field.
    pub fn parse(src: &Bytes) -> Result<Uri, UriError> {
        Self::parse_in(src, src, UriContext::Header)
    }

    /// Parses `s`, a subslice of `src`, as a URI.
    pub(crate) fn parse_in(src: &Bytes, s: &[u8], ctx: UriContext) -> Result<Uri, UriError> {
        let colon = memchr::memchr(b':', s).ok_or(UriError("URI has no scheme"))?;
        let scheme = &s[..colon];
        if !is_scheme(scheme) {
            return Err(UriError("URI scheme is not valid"));
        }
        let rest = &s[colon + 1..];
        if rest.iter().any(|&b| b <= b' ' || matches!(b, b'<' | b'>' | b'"' | 0x7f)) {
            return Err(UriError("URI contains white space or a character that must be escaped"));
        }
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            let secure = scheme.len() == 4;
            SipUri::parse_rest(src, rest, secure, ctx).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            TelUri::parse_rest(src, rest).map(Uri::Tel)
        } else if rest.is_empty() {
            Err(UriError("URI is empty after its scheme"))
        } else {
            Ok(Uri::Other(OtherUri { scheme: src.slice_ref(scheme), rest: src.slice_ref(rest) }))
        }
    }

    /// The scheme as written.
    pub fn scheme(&self) -> &[u8] {
        match self {
            Uri::Sip(u) if u.secure => b"sips",
            Uri::Sip(_) => b"sip",
            Uri::Tel(_) => b"tel",
            Uri::Other(o) => &o.scheme,
        }
    }

    /// The user part of a SIP URI or the number of a tel URI.
    pub fn user(&self) -> Option<&Bytes> {
        match self {
            Uri::Sip(u) => u.user.as_ref(),
            Uri::Tel(t) => Some(&t.number),
            Uri::Other(_) => None,
        }
    }

    /// URI parameters (empty for opaque URIs).
    pub fn params(&self) -> Option<&Params> {
        match self {
            Uri::Sip(u) => Some(&u.params),
            Uri::Tel(t) => Some(&t.params),
            Uri::Other(_) => None,
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Uri::Sip(u) => u.encode(out),
            Uri::Tel(t) => {
                out.put_slice(b"tel:");
                out.put_slice(&t.number);
                t.params.encode(out);
            }
            Uri::Other(o) => {
                out.put_slice(&o.scheme);
                out.put_u8(b':');
                out.put_slice(&o.rest);
            }
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        self.encode(&mut out);
        out.freeze()
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl SipUri {
    /// `sip:host[:port]` with nothing else.
    pub fn new(host: Host, port: Option<u16>) -> Self {
        SipUri { secure: false, user: None, password: None, host, port, params: Params::new(), headers: None }
    }

    fn parse_rest(src: &Bytes, s: &[u8], secure: bool, ctx: UriContext) -> Result<SipUri, UriError> {
        let (user, password, s) = match memchr::memchr(b'@', s) {
            None => (None, None, s),
            Some(at) => {
                let userinfo = &s[..at];
                let (user, password) = match memchr::memchr(b':', userinfo) {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() || !user.iter().all(|&b| is_user_char(b)) {
                    return Err(UriError("URI user part is empty or has a character that must be escaped"));
                }
                if password.is_some_and(|p| !p.iter().all(|&b| is_password_char(b))) {
                    return Err(UriError("URI password has a character that must be escaped"));
                }
                (Some(src.slice_ref(user)), password.map(|p| src.slice_ref(p)), &s[at + 1..])
            }
        };
        let (host, port, s) = parse_hostport(src, s)?;
        let (params, s) = parse_params(src, s, ParamStyle::Uri).map_err(UriError)?;
        let headers = match s.first() {
            None => None,
            Some(b'?') if ctx == UriContext::RequestLine => {
                return Err(UriError("headers are not allowed in a Request-URI"));
            }
            Some(b'?') => Some(src.slice_ref(&s[1..])),
            Some(_) => return Err(UriError("unexpected character in URI")),
        };
        Ok(SipUri { secure, user, password, host, port, params, headers })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(if self.secure { b"sips:" } else { b"sip:" });
        if let Some(user) = &self.user {
            out.put_slice(user);
            if let Some(pw) = &self.password {
                out.put_u8(b':');
                out.put_slice(pw);
            }
            out.put_u8(b'@');
        }
        self.host.encode(out);
        if let Some(port) = self.port {
            out.put_u8(b':');
            out.put_slice(itoa_u16(port).as_bytes());
        }
        self.params.encode(out);
        if let Some(h) = &self.headers {
            out.put_u8(b'?');
            out.put_slice(h);
        }
    }
}

impl TelUri {
    fn parse_rest(src: &Bytes, s: &[u8]) -> Result<TelUri, UriError> {
        let end = memchr::memchr(b';', s).unwrap_or(s.len());
        let number = &s[..end];
        let digits = number.iter().filter(|b| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#')).count();
        let ok_chars = number.iter().enumerate().all(|(i, &b)| {
            b.is_ascii_hexdigit()
                || matches!(b, b'*' | b'#' | b'-' | b'.' | b'(' | b')' | b'p' | b'w')
                || (b == b'+' && i == 0)
        });
        if digits == 0 || !ok_chars {
            return Err(UriError("tel URI number is not a phone number"));
        }
        let (params, rest) = parse_params(src, &s[end..], ParamStyle::Uri).map_err(UriError)?;
        if !rest.is_empty() {
            return Err(UriError("unexpected character in tel URI"));
        }
        Ok(TelUri { number: src.slice_ref(number), params })
    }
}

impl Host {
    /// Parses a host: a name, an IPv4 address, or an IPv6 reference in brackets.
    pub fn parse(src: &Bytes) -> Result<Host, UriError> {
        match parse_hostport(src, src)? {
            (host, None, []) => Ok(host),
            _ => Err(UriError("not a bare host")),
        }
    }

    /// The address, if the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
            Host::Name(_) => None,
        }
    }

    /// Writes the host; IPv6 in brackets.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Host::Name(n) => out.put_slice(n),
            Host::V4(a) => out.put_slice(a.to_string().as_bytes()),
            Host::V6(a) => {
                out.put_u8(b'[');
                out.put_slice(a.to_string().as_bytes());
                out.put_u8(b']');
            }
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(&String::from_utf8_lossy(n)),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses `host [":" port]` at the start of `s`; returns the rest.
pub(crate) fn parse_hostport<'s>(src: &Bytes, s: &'s [u8]) -> Result<(Host, Option<u16>, &'s [u8]), UriError> {
    let (host, rest) = if s.first() == Some(&b'[') {
        let close = memchr::memchr(b']', s).ok_or(UriError("IPv6 reference has no closing ']'"))?;
        let text = std::str::from_utf8(&s[1..close]).map_err(|_| UriError("bad IPv6 address"))?;
        let ip: Ipv6Addr = text.parse().map_err(|_| UriError("bad IPv6 address"))?;
        (Host::V6(ip), &s[close + 1..])
    } else {
        let len = s.iter().position(|&b| !is_host_char(b)).unwrap_or(s.len());
        let name = &s[..len];
        if name.is_empty() {
            return Err(UriError("URI has no host"));
        }
        (classify_host(src, name)?, &s[len..])
    };
    if rest.first() != Some(&b':') {
        return Ok((host, None, rest));
    }
    let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    let after = &rest[1 + digits..];
    if digits == 0 || digits > 5 || after.first().is_some_and(|&b| b == b':' || b.is_ascii_alphanumeric()) {
        return Err(UriError("bad port (an IPv6 address must be enclosed in brackets)"));
    }
    let port = super::scan::parse_u64(&rest[1..1 + digits])
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(UriError("port is larger than 65535"))?;
    Ok((host, Some(port), after))
}

fn classify_host(src: &Bytes, name: &[u8]) -> Result<Host, UriError> {
    if name.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
        let text = std::str::from_utf8(name).map_err(|_| UriError("bad IPv4 address"))?;
        return text.parse().map(Host::V4).map_err(|_| UriError("bad IPv4 address"));
    }
    if name.starts_with(b".") || name.starts_with(b"-") || name.windows(2).any(|w| w == b"..") {
        return Err(UriError("bad host name"));
    }
    Ok(Host::Name(src.slice_ref(name)))
}

/// Host-name characters (`alphanum / "-" / "."`, plus `_`, which real deployments use).
#[inline]
fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

/// RFC 3261 §25.1 `scheme`.
fn is_scheme(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_alphabetic)
        && s.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `unreserved / escaped / user-unreserved`, plus `#`, which real trunks send unescaped.
#[inline]
fn is_user_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b';'
                | b'?'
                | b'/'
                | b'#'
        )
}

/// `unreserved / escaped / "&" / "=" / "+" / "$" / ","`.
#[inline]
fn is_password_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' | b'%' | b'&' | b'=' | b'+' | b'$' | b','
        )
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as it is.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'%', s).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (s.get(i + 1).and_then(hex), s.get(i + 2).and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

/// Formats a port without allocating through `fmt`.
pub(crate) fn itoa_u16(v: u16) -> itoa_buf::Buf {
    itoa_buf::Buf::new(u64::from(v))
}

/// A tiny stack buffer for printing integers.
pub(crate) mod itoa_buf {
    pub(crate) struct Buf {
        bytes: [u8; 20],
        start: usize,
    }

    impl Buf {
        pub(crate) fn new(mut v: u64) -> Self {
            let mut bytes = [0u8; 20];
            let mut i = 20;
            loop {
                i -= 1;
                bytes[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            Buf { bytes, start: i }
        }

        pub(crate) fn as_bytes(&self) -> &[u8] {
            &self.bytes[self.start..]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Uri, UriError> {
        Uri::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    fn request_line(s: &str) -> Result<Uri, UriError> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        Uri::parse_in(&b, &b, UriContext::RequestLine)
    }

    fn round_trip(s: &str) {
        assert_eq!(parse(s).unwrap().to_string(), s);
    }

    #[test]
    fn sip_uri_parts_are_split() {
        let Uri::Sip(u) = parse("sips:alice:secret@Example.COM:5061;transport=tls;lr?Subject=hi").unwrap() else {
            panic!("not sip")
        };
        assert!(u.secure);
        assert_eq!(u.user.unwrap(), "alice");
        assert_eq!(u.password.unwrap(), "secret");
        assert_eq!(u.host, Host::Name(Bytes::from_static(b"Example.COM")));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.value("transport").unwrap(), "tls");
        assert!(u.params.contains("lr"));
        assert_eq!(u.headers.unwrap(), "Subject=hi");
    }

    #[test]
    fn ipv6_references_parse_with_and_without_port() {
        let Uri::Sip(u) = parse("sip:[2001:db8::10]:5070").unwrap() else { panic!() };
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5070));
        let Uri::Sip(u) = parse("sip:user@[::ffff:192.0.2.1];maddr=[2001:db8::1]").unwrap() else { panic!() };
        assert_eq!(u.host, Host::V6("::ffff:192.0.2.1".parse().unwrap()));
        assert_eq!(u.params.value("maddr").unwrap(), "[2001:db8::1]");
    }

    #[test]
    fn unbracketed_or_malformed_ipv6_is_refused() {
        assert!(parse("sip:user@2001:db8::10").is_err());
        assert!(parse("sip:[2001:db8:::192.0.2.1]").is_err());
        assert!(parse("sip:[2001:db8::10").is_err());
        assert!(parse("sip:host:99999").is_err());
    }

    #[test]
    fn request_uri_refuses_headers_but_header_uri_keeps_them() {
        assert!(request_line("sip:user@example.com?Route=%3Csip:x%3E").is_err());
        assert!(parse("sip:user@example.com?Route=%3Csip:x%3E").is_ok());
    }

    #[test]
    fn escapes_are_kept_and_decoded_on_demand() {
        let u = parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user().unwrap(), "sips%3Auser%40example.com");
        assert_eq!(&*unescape(u.user().unwrap()), b"sips:user@example.com");
        assert_eq!(&*unescape(b"null-%00-null"), b"null-\0-null");
        assert_eq!(&*unescape(b"100%-sure%4"), b"100%-sure%4");
    }

    #[test]
    fn user_part_may_hold_semicolons_and_plus() {
        let u = parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user().unwrap(), "user;par=u%40example.net");
        let u = parse("sip:+14155550123@sip.vocals.example;user=phone").unwrap();
        assert_eq!(u.user().unwrap(), "+14155550123");
    }

    #[test]
    fn tel_and_unknown_schemes() {
        let Uri::Tel(t) = parse("tel:+1-415-555-0123;phone-context=example.com").unwrap() else { panic!() };
        assert_eq!(t.number, "+1-415-555-0123");
        assert!(parse("tel:hello").is_err());
        let Uri::Other(o) = parse("soap.beep://192.0.2.103:3002").unwrap() else { panic!() };
        assert_eq!(o.scheme, "soap.beep");
        assert!(parse("no-scheme").is_err());
        assert!(parse("1bad:x").is_err());
    }

    #[test]
    fn white_space_inside_a_uri_is_refused() {
        assert!(parse("sip:user@exa mple.com").is_err());
        assert!(parse("sip:user@example.com\t").is_err());
    }

    #[test]
    fn printing_gives_back_what_was_parsed() {
        for s in [
            "sip:alice@atlanta.com",
            "sips:alice:pw@[2001:db8::1]:5061;transport=tls?h=v&x=y",
            "sip:192.0.2.4;lr",
            "sip:+14155550123@sip.vocals.example;user=phone",
            "tel:+14155550123",
            "urn:service:sos",
        ] {
            round_trip(s);
        }
    }
}
