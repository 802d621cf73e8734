//! URIs: `sip:`/`sips:` (RFC 3261 §19.1, with RFC 5118's IPv6 shapes), `tel:` (RFC 3966), and any other
//! absolute URI kept opaque so the application can answer 416. Parts are zero-copy slices of the received
//! bytes, escapes kept as received (`unescape` decodes on demand). Never panics on any input.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use super::params::{ParamStyle, Params, parse_params, split_params};
use super::scan::{class, host_run, is, run};

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
        UriView::parse(s, ctx)?.to_owned(src)
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

impl Host {
    /// Parses a host: a name, an IPv4 address, or an IPv6 reference in brackets.
    pub fn parse(src: &Bytes) -> Result<Host, UriError> {
        match parse_hostport(src)? {
            (host, None, []) => Ok(host.to_owned(src)),
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

/// A URI checked against the grammar, its parts borrowed from the input. Building one allocates nothing;
/// [`UriView::to_owned`] makes the owned [`Uri`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UriView<'a> {
    Sip {
        secure: bool,
        user: Option<&'a [u8]>,
        password: Option<&'a [u8]>,
        host: HostView<'a>,
        port: Option<u16>,
        /// `;a=b;c` as received (checked).
        params: &'a [u8],
        headers: Option<&'a [u8]>,
    },
    Tel {
        number: &'a [u8],
        params: &'a [u8],
    },
    Other {
        scheme: &'a [u8],
        rest: &'a [u8],
    },
}

/// A host borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostView<'a> {
    Name(&'a [u8]),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl<'a> UriView<'a> {
    pub(crate) fn parse(s: &'a [u8], ctx: UriContext) -> Result<UriView<'a>, UriError> {
        let scheme_len = if s.first().is_some_and(u8::is_ascii_alphabetic) { run(s, class::SCHEME) } else { 0 };
        if s.get(scheme_len) != Some(&b':') {
            return Err(UriError(if s.contains(&b':') { "URI scheme is not valid" } else { "URI has no scheme" }));
        }
        let (scheme, rest) = (&s[..scheme_len], &s[scheme_len + 1..]);
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            Self::parse_sip(rest, scheme.len() == 4, ctx)
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            Self::parse_tel(rest)
        } else if rest.is_empty() {
            Err(UriError("URI is empty after its scheme"))
        } else if rest.iter().any(|&b| is(b, class::NOT_IN_URI)) {
            Err(UriError(ESCAPE))
        } else {
            Ok(UriView::Other { scheme, rest })
        }
    }

    /// `[userinfo "@"] hostport uri-parameters [headers]`; every byte is checked by the class of its part.
    fn parse_sip(s: &'a [u8], secure: bool, ctx: UriContext) -> Result<UriView<'a>, UriError> {
        let userinfo_len = s.iter().position(|&b| !(is(b, class::USER | class::PASSWORD) || b == b':'));
        let (user, password, s) = match userinfo_len {
            Some(at) if s[at] == b'@' => {
                let userinfo = &s[..at];
                let (user, password) = match userinfo.iter().position(|&b| b == b':') {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(UriError("URI user part is empty"));
                }
                if password.is_some_and(|p| !p.iter().all(|&b| is(b, class::PASSWORD))) {
                    return Err(UriError("URI password has a character that must be escaped"));
                }
                (Some(user), password, &s[at + 1..])
            }
            _ => (None, None, s),
        };
        let (host, port, s) = parse_hostport(s)?;
        let (params, s) = split_params(s, ParamStyle::Uri).map_err(UriError)?;
        let headers = match s.first() {
            None => None,
            Some(b'?') if ctx == UriContext::RequestLine => {
                return Err(UriError("headers are not allowed in a Request-URI"));
            }
            Some(b'?') if s.iter().any(|&b| is(b, class::NOT_IN_URI)) => return Err(UriError(ESCAPE)),
            Some(b'?') => Some(&s[1..]),
            Some(b'@') => return Err(UriError("URI user part has a character that must be escaped")),
            Some(_) => return Err(UriError(ESCAPE)),
        };
        Ok(UriView::Sip { secure, user, password, host, port, params, headers })
    }

    fn parse_tel(s: &'a [u8]) -> Result<UriView<'a>, UriError> {
        let end = s.iter().position(|&b| b == b';').unwrap_or(s.len());
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
        let (params, rest) = split_params(&s[end..], ParamStyle::Uri).map_err(UriError)?;
        if !rest.is_empty() {
            return Err(UriError("unexpected character in tel URI"));
        }
        Ok(UriView::Tel { number, params })
    }

    /// The owned URI; `src` is the buffer the view borrows from.
    pub(crate) fn to_owned(self, src: &Bytes) -> Result<Uri, UriError> {
        let params = |p: &[u8]| parse_params(src, p, ParamStyle::Uri).map(|(p, _)| p).map_err(UriError);
        Ok(match self {
            UriView::Sip { secure, user, password, host, port, params: p, headers } => Uri::Sip(SipUri {
                secure,
                user: user.map(|u| src.slice_ref(u)),
                password: password.map(|p| src.slice_ref(p)),
                host: host.to_owned(src),
                port,
                params: params(p)?,
                headers: headers.map(|h| src.slice_ref(h)),
            }),
            UriView::Tel { number, params: p } => {
                Uri::Tel(TelUri { number: src.slice_ref(number), params: params(p)? })
            }
            UriView::Other { scheme, rest } => {
                Uri::Other(OtherUri { scheme: src.slice_ref(scheme), rest: src.slice_ref(rest) })
            }
        })
    }
}

impl HostView<'_> {
    pub(crate) fn to_owned(self, src: &Bytes) -> Host {
        match self {
            HostView::Name(n) => Host::Name(src.slice_ref(n)),
            HostView::V4(a) => Host::V4(a),
            HostView::V6(a) => Host::V6(a),
        }
    }
}

/// Parses `host [":" port]` at the start of `s`; returns the rest.
pub(crate) fn parse_hostport(s: &[u8]) -> Result<(HostView<'_>, Option<u16>, &[u8]), UriError> {
    let (host, rest) = if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']').ok_or(UriError("IPv6 reference has no closing ']'"))?;
        let text = std::str::from_utf8(&s[1..close]).map_err(|_| UriError("bad IPv6 address"))?;
        let ip: Ipv6Addr = text.parse().map_err(|_| UriError("bad IPv6 address"))?;
        (HostView::V6(ip), &s[close + 1..])
    } else {
        let (host, len) = scan_host(s)?;
        (host, &s[len..])
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

/// Reads a host name or IPv4 address at the start of `s` in one pass: no empty label, no leading hyphen; all
/// digits and dots makes it a dotted quad. Returns the host and its length.
fn scan_host(s: &[u8]) -> Result<(HostView<'_>, usize), UriError> {
    let (len, empty_label) = host_run(s);
    let name = &s[..len];
    match name.first() {
        None => Err(UriError("URI has no host")),
        Some(b'-' | b'.') => Err(UriError("bad host name (leading hyphen or dot)")),
        Some(_) if empty_label => Err(UriError("bad host name (empty label)")),
        Some(b) if b.is_ascii_digit() && name.iter().all(|&b| b.is_ascii_digit() || b == b'.') => {
            parse_ipv4(name).map(|a| (HostView::V4(a), len)).ok_or(UriError("bad IPv4 address"))
        }
        Some(_) => Ok((HostView::Name(name), len)),
    }
}

/// Dotted-quad IPv4: four decimal octets of at most three digits, no leading zero.
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for octet in &mut octets {
        let p = parts.next()?;
        let ok = matches!(p.len(), 1..=3) && p.iter().all(u8::is_ascii_digit) && (p.len() == 1 || p[0] != b'0');
        if !ok {
            return None;
        }
        let v = p.iter().fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
        *octet = u8::try_from(v).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

const ESCAPE: &str = "URI contains white space or a character that must be escaped";

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
    fn ipv4_hosts_are_dotted_quads() {
        assert_eq!(parse_ipv4(b"192.0.2.1"), Some(Ipv4Addr::new(192, 0, 2, 1)));
        for bad in [&b"256.0.0.1"[..], b"1.2.3", b"1.2.3.4.5", b"01.2.3.4", b"1..2.3", b""] {
            assert_eq!(parse_ipv4(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse("sip:999.1.1.1").is_err());
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
