//! `message/sipfrag` bodies (RFC 3420): a fragment of a SIP message, here the status line a NOTIFY carries
//! about a REFER's progress (RFC 3515 §2.4.5): `SIP/2.0 200 OK`. Grammar (RFC 3420 §2):
//! `sipfrag = [ start-line ] *message-header [ CRLF [ message-body ] ]`. Lenient on line ends (a bare LF is
//! taken as CRLF, as senders of fragments write both), strict on everything else.

use bytes::{BufMut, Bytes, BytesMut};

use super::BodyError;
use crate::sip::message::header_name::HeaderName;
use crate::sip::message::headers::Headers;
use crate::sip::message::method::{Method, StatusCode};
use crate::sip::message::scan::{has_forbidden_ctl, is_token_str, is_wsp, trim_wsp};
use crate::sip::message::uri::{Uri, UriContext};

/// Longest fragment taken: a status line and a few headers fit in far less.
pub const MAX_SIPFRAG: usize = 8192;
/// Most header lines a fragment may hold.
pub const MAX_SIPFRAG_HEADERS: usize = 32;

/// A parsed `message/sipfrag` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sipfrag {
    pub start: Option<StartLine>,
    pub headers: Headers,
    /// What follows the empty line, if anything.
    pub body: Bytes,
}

/// The start line of a fragment: a status line, or a request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    Status { status: StatusCode, reason: Bytes },
    Request { method: Method, uri: Uri },
}

impl Sipfrag {
    /// A fragment that is a status line alone (what a REFER's NOTIFY reports).
    pub fn status_line(status: StatusCode, reason: &str) -> Sipfrag {
        let reason = Bytes::copy_from_slice(reason.as_bytes());
        Sipfrag { start: Some(StartLine::Status { status, reason }), headers: Headers::new(), body: Bytes::new() }
    }

    pub fn parse(src: &Bytes) -> Result<Sipfrag, BodyError> {
        if src.len() > MAX_SIPFRAG {
            return Err(BodyError("message/sipfrag body too long"));
        }
        let mut lines = Lines { src, pos: 0 };
        let mut frag = Sipfrag { start: None, headers: Headers::new(), body: Bytes::new() };
        let first = lines.next().ok_or(BodyError("message/sipfrag body is empty"))?;
        if first.is_empty() {
            return Err(BodyError("message/sipfrag body starts with an empty line"));
        }
        let mut header = match start_line(src, first)? {
            Some(start) => {
                frag.start = Some(start);
                lines.next()
            }
            None => Some(first),
        };
        let mut count = 0;
        while let Some(line) = header.filter(|l| !l.is_empty()) {
            count += 1;
            if count > MAX_SIPFRAG_HEADERS {
                return Err(BodyError("message/sipfrag body has too many headers"));
            }
            let (name, value, next) = header_line(src, line, &mut lines)?;
            frag.headers.push(name, value);
            header = next;
        }
        frag.body = src.slice(lines.pos..);
        Ok(frag)
    }

    /// The status code of a fragment that starts with a status line.
    pub fn status(&self) -> Option<StatusCode> {
        match &self.start {
            Some(StartLine::Status { status, .. }) => Some(*status),
            _ => None,
        }
    }

    /// Prints with CRLF line ends; the empty line only when a body follows.
    pub fn encode(&self, out: &mut BytesMut) {
        match &self.start {
            Some(StartLine::Status { status, reason }) => {
                out.put_slice(format!("SIP/2.0 {} ", status.as_u16()).as_bytes());
                out.put_slice(reason);
                out.put_slice(b"\r\n");
            }
            Some(StartLine::Request { method, uri }) => {
                out.put_slice(method.as_bytes());
                out.put_u8(b' ');
                uri.encode(out);
                out.put_slice(b" SIP/2.0\r\n");
            }
            None => {}
        }
        for h in self.headers.iter() {
            out.put_slice(h.name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(h.value);
            out.put_slice(b"\r\n");
        }
        if !self.body.is_empty() {
            out.put_slice(b"\r\n");
            out.put_slice(&self.body);
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64 + self.body.len());
        self.encode(&mut out);
        out.freeze()
    }
}

/// The lines of a fragment, without their line ends. A last line with no line end is a line.
struct Lines<'a> {
    src: &'a Bytes,
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let src: &'a [u8] = self.src;
        let rest = src.get(self.pos..).filter(|r| !r.is_empty())?;
        let (line, used) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += used;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// `SIP-Version SP Status-Code [SP Reason-Phrase]` or `Method SP Request-URI SP SIP-Version`; `None` when the
/// line is neither but may be a header (it holds a colon before any space).
fn start_line(src: &Bytes, line: &[u8]) -> Result<Option<StartLine>, BodyError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return status_line(src, line).map(Some);
    }
    let colon = memchr::memchr(b':', line);
    let space = memchr::memchr(b' ', line);
    if colon.is_some() && (space.is_none() || colon < space) {
        return Ok(None);
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BodyError("message/sipfrag start line must be a status or request line"));
    };
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        return Err(BodyError("message/sipfrag request line must end in SIP/2.0"));
    }
    let method = Method::from_received(src, method).ok_or(BodyError("message/sipfrag method is not a token"))?;
    let uri = Uri::parse_in(src, uri, UriContext::RequestLine).map_err(|e| BodyError(e.0))?;
    Ok(Some(StartLine::Request { method, uri }))
}

/// `SIP/2.0 200 OK`. The reason phrase may be missing (`SIP/2.0 200`), as senders of fragments write it.
fn status_line(src: &Bytes, line: &[u8]) -> Result<StartLine, BodyError> {
    let rest = line
        .get(..8)
        .filter(|v| v.eq_ignore_ascii_case(b"SIP/2.0 "))
        .map(|_| &line[8..])
        .ok_or(BodyError("message/sipfrag status line must start with SIP/2.0"))?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(BodyError("message/sipfrag status code must be three digits"));
    }
    let code = rest[..3].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let status = StatusCode::new(code).ok_or(BodyError("message/sipfrag status code must be from 100 to 699"))?;
    let reason = rest.get(4..).unwrap_or_default();
    if has_forbidden_ctl(reason) {
        return Err(BodyError("message/sipfrag reason phrase holds a control character"));
    }
    Ok(StartLine::Status { status, reason: src.slice_ref(reason) })
}

/// `name: value`, with its folded continuation lines (RFC 3261 §7.3.1); the line after it comes back too.
fn header_line<'a>(
    src: &Bytes,
    line: &'a [u8],
    lines: &mut Lines<'a>,
) -> Result<(HeaderName, Bytes, Option<&'a [u8]>), BodyError> {
    if is_wsp(line[0]) {
        return Err(BodyError("message/sipfrag continuation line with no header before it"));
    }
    let colon = memchr::memchr(b':', line).ok_or(BodyError("message/sipfrag header line has no colon"))?;
    let name = line[..colon].trim_ascii_end();
    if !is_token_str(name) {
        return Err(BodyError("message/sipfrag header name is not a token"));
    }
    let mut value = trim_wsp(&line[colon + 1..]).to_vec();
    let mut next = lines.next();
    while let Some(cont) = next.filter(|l| l.first().is_some_and(|&b| is_wsp(b))) {
        let cont = trim_wsp(cont);
        if !value.is_empty() && !cont.is_empty() {
            value.push(b' ');
        }
        value.extend_from_slice(cont);
        next = lines.next();
    }
    if has_forbidden_ctl(&value) {
        return Err(BodyError("message/sipfrag header value holds a control character"));
    }
    Ok((HeaderName::from_received(src, name), Bytes::from(value), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Sipfrag, BodyError> {
        Sipfrag::parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    fn round_trips(f: &Sipfrag) {
        assert_eq!(&Sipfrag::parse(&f.to_bytes()).unwrap(), f, "{:?}", f.to_bytes());
    }

    #[test]
    fn twilios_status_lines_parse_with_or_without_a_line_end() {
        for (text, code) in
            [("SIP/2.0 100 Trying\r\n", 100), ("SIP/2.0 200 OK", 200), ("SIP/2.0 503 Service Unavailable\n", 503)]
        {
            let f = parse(text).unwrap();
            assert_eq!(f.status().map(StatusCode::as_u16), Some(code), "{text:?}");
            assert!(f.headers.is_empty() && f.body.is_empty());
            round_trips(&f);
        }
        let bare = parse("SIP/2.0 180").unwrap();
        assert_eq!(bare.start, Some(StartLine::Status { status: StatusCode::RINGING, reason: Bytes::new() }));
        round_trips(&bare);
        assert_eq!(&Sipfrag::status_line(StatusCode::OK, "OK").to_bytes()[..], b"SIP/2.0 200 OK\r\n");
    }

    #[test]
    fn headers_and_a_body_after_the_status_line_are_kept() {
        let f = parse("SIP/2.0 603 Declined\r\nWarning: 399 x \"busy\"\r\nX-Long: a\r\n b\r\n\r\nbody bytes").unwrap();
        assert_eq!(f.status(), StatusCode::new(603));
        assert_eq!(f.headers.get(&HeaderName::Warning), Some(&b"399 x \"busy\""[..]));
        assert_eq!(f.headers.get(&HeaderName::new("x-long")), Some(&b"a b"[..]), "unfolded");
        let blank = parse("SIP/2.0 200 OK\r\nX: a\r\n \r\n").unwrap();
        assert_eq!(blank.headers.get(&HeaderName::new("X")), Some(&b"a"[..]), "a blank continuation adds nothing");
        assert_eq!(&f.body[..], b"body bytes");
        round_trips(&f);
    }

    #[test]
    fn a_fragment_may_be_a_request_line_or_headers_alone() {
        let f = parse("INVITE sip:alice@example.com SIP/2.0\r\nCSeq: 1 INVITE\r\n").unwrap();
        assert!(matches!(&f.start, Some(StartLine::Request { method: Method::Invite, .. })));
        assert_eq!(f.status(), None);
        round_trips(&f);
        let f = parse("From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n").unwrap();
        assert_eq!((f.start.is_none(), f.headers.len()), (true, 2));
        round_trips(&f);
    }

    #[test]
    fn garbage_missing_parts_and_oversized_fragments_are_errors() {
        for bad in [
            "",
            "\r\n",
            "SIP/2.0",
            "SIP/2.0 ",
            "SIP/2.0 20 OK",
            "SIP/2.0 2000 OK",
            "SIP/2.0 099 Low",
            "SIP/2.0 700 High",
            "SIP/3.0 200 OK",
            "SIP/2.0 200 O\x07K",
            "hello world",
            "INVITE sip:a@b SIP/2.1",
            "SIP/2.0 200 OK\r\nno colon here",
            "SIP/2.0 200 OK\r\n folded first",
            "SIP/2.0 200 OK\r\nBad Name: x",
            "SIP/2.0 200 OK\r\nX: a\x00b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(Sipfrag::parse(&Bytes::from_static(b"\xff\xfe\x00\x01")).is_err());
        let long = format!("SIP/2.0 200 OK\r\nX: {}\r\n", "a".repeat(MAX_SIPFRAG));
        assert_eq!(parse(&long), Err(BodyError("message/sipfrag body too long")));
        let many = format!("SIP/2.0 200 OK\r\n{}", "X: 1\r\n".repeat(MAX_SIPFRAG_HEADERS + 1));
        assert_eq!(parse(&many), Err(BodyError("message/sipfrag body has too many headers")));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking_and_what_parses_round_trips(
            d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)
        ) {
            if let Ok(f) = Sipfrag::parse(&Bytes::from(d)) {
                round_trips(&f);
            }
        }

        #[test]
        fn status_lines_round_trip(code in 100u16..700, reason in proptest::collection::vec(0x20u8..0x7f, 0..40)) {
            let reason = String::from_utf8(reason).unwrap();
            let f = Sipfrag::status_line(StatusCode::new(code).unwrap(), &reason);
            round_trips(&f);
        }
    }
}
