//! Building responses to a received request (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq copied, a To
//! tag added for everything but 100 Trying, Record-Route copied into dialog-creating responses (§12.1.1).

use bytes::{BufMut, Bytes, BytesMut};

use super::header_name::HeaderName;
use super::headers::Headers;
use super::method::{Method, StatusCode};
use super::{Request, Response};

impl Response {
    /// A response with no headers, an empty body and the canonical reason phrase.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            reason: Bytes::from_static(status.canonical_reason().as_bytes()),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// The response to `req` per §8.2.6.2. `to_tag` is added to To when To has none and the status is not
    /// 100 (a 100 Trying comes from the transaction layer and carries no tag, §8.2.6.1, which also copies
    /// Timestamp into it).
    pub fn to_request(req: &Request, status: StatusCode, to_tag: Option<&str>) -> Response {
        let mut res = Response::new(status);
        let from = &req.headers;
        let h = &mut res.headers;
        *h = Headers::sharing(from);
        h.copy_from(from, &HeaderName::Via);
        h.copy_from(from, &HeaderName::From);
        let tag = to_tag.filter(|_| status != StatusCode::TRYING);
        match tag {
            Some(tag) if from.to().is_ok_and(|to| to.tag().is_none()) => {
                for to in from.get_all(&HeaderName::To) {
                    h.push(HeaderName::To, with_tag(to, tag));
                }
            }
            _ => h.copy_from(from, &HeaderName::To),
        }
        h.copy_from(from, &HeaderName::CallId);
        h.copy_from(from, &HeaderName::CSeq);
        if status == StatusCode::TRYING {
            h.copy_from(from, &HeaderName::Timestamp);
        }
        let creates_dialog = req.method == Method::Invite && status.as_u16() > 100 && status.as_u16() < 300;
        if creates_dialog {
            h.copy_from(from, &HeaderName::RecordRoute);
        }
        res
    }

    /// Replaces the reason phrase (e.g. a 400 saying what was wrong).
    pub fn with_reason(mut self, reason: &str) -> Response {
        let clean: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        self.reason = Bytes::from(clean);
        self
    }
}

/// `to` with `;tag=...` appended.
fn with_tag(to: &[u8], tag: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(to.len() + 5 + tag.len());
    out.put_slice(to);
    out.put_slice(b";tag=");
    out.put_slice(tag.as_bytes());
    out.freeze()
}

/// The answer to a request that failed to parse: the status the error calls for (400, 505, 513) with a reason
/// phrase saying what was wrong, and the request's Via, From, To, Call-ID and CSeq lines copied as received
/// (§8.2.6) — those that are well-formed: a missing or malformed one is left out rather than reflected (all
/// the Vias go when one of them is malformed), as RFC 4475 §3.1.2 asks a 400 even of a request missing them.
/// The response goes back to where the request came from (the source address, or the connection). `None` for
/// responses, ACKs (never answered), stream data still incomplete, and bytes whose start line is not shaped
/// like a request (`method SP Request-URI SP SIP/version`): noise gets no answer.
pub fn error_response(buf: &[u8], error: &super::ParseError) -> Option<Bytes> {
    use super::HeaderName as H;
    if matches!(error, super::ParseError::Incomplete) {
        return None;
    }
    let head_end = memchr::memmem::find(buf, b"\r\n\r\n").unwrap_or(buf.len());
    let mut lines = buf[..head_end].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.by_ref().find(|l| !l.is_empty())?;
    if !looks_like_request_line(start) {
        return None;
    }
    let (mut vias, mut from, mut to, mut call_id, mut cseq) = (Vec::new(), None, None, None, None);
    for line in lines {
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = H::new(&String::from_utf8_lossy(line[..colon].trim_ascii()));
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || super::scan::has_forbidden_ctl(value) {
            continue;
        }
        match name {
            H::Via => vias.push(value),
            H::From => from = from.or(Some(value)),
            H::To => to = to.or(Some(value)),
            H::CallId => call_id = call_id.or(Some(value)),
            H::CSeq => cseq = cseq.or(Some(value)),
            _ => {}
        }
    }
    // Echo only what is well-formed: a malformed value would make the response as broken as the request.
    if !vias.iter().all(|v| super::typed::ViaView::parse(v).is_ok()) {
        vias.clear();
    }
    let from = from.filter(|v| super::typed::NameAddrView::parse(v).is_ok());
    let to = to.filter(|v| super::typed::NameAddrView::parse(v).is_ok());
    let call_id = call_id.filter(|v| super::typed::CallId::check(v).is_ok());
    let cseq = cseq.filter(|v| super::typed::CSeq::check(v).is_ok());
    let status = error.status();
    let reason: String =
        error.to_string().chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(120).collect();
    let mut out = BytesMut::with_capacity(256 + head_end.min(2048));
    out.put_slice(format!("SIP/2.0 {} {reason}\r\n", status.as_u16()).as_bytes());
    let singles = [("From", from), ("To", to), ("Call-ID", call_id), ("CSeq", cseq)];
    let echoed = vias.iter().map(|v| ("Via", *v)).chain(singles.into_iter().filter_map(|(n, v)| Some((n, v?))));
    for (name, value) in echoed {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"Content-Length: 0\r\n\r\n");
    Some(out.freeze())
}

/// Panics unless `answer` is what [`error_response`] owes: one well-framed message with a status line, that
/// parses as a response whenever it echoes Via, From, To, Call-ID and CSeq. For tests and fuzz targets.
pub fn check_error_response(answer: &[u8]) {
    let limits = super::Limits::unlimited();
    assert!(answer.starts_with(b"SIP/2.0 "), "not a status line: {:?}", String::from_utf8_lossy(answer));
    let framed = super::frame_stream(answer, &limits);
    assert_eq!(framed, Ok(super::StreamFrame::Message(answer.len())), "{:?}", String::from_utf8_lossy(answer));
    let text = String::from_utf8_lossy(answer);
    if ["\r\nVia: ", "\r\nFrom: ", "\r\nTo: ", "\r\nCall-ID: ", "\r\nCSeq: "].iter().all(|h| text.contains(h)) {
        let parsed = super::Message::parse_datagram(Bytes::copy_from_slice(answer), &limits);
        assert!(matches!(parsed, Ok(super::Message::Response(_))), "error response does not parse: {parsed:?}");
    }
}

/// `method SP Request-URI SP SIP/version`, loosely: a method (not ACK: an ACK is never answered, §17.2.1) and
/// a Request-URI, then words of which the last starts `SIP/`; or just the two, when the second has a scheme
/// (a start line missing its version). Other bytes (another protocol, noise) are not taken for a request.
fn looks_like_request_line(start: &[u8]) -> bool {
    let mut words = start.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(method), Some(uri)) = (words.next(), words.next()) else { return false };
    let sip = |w: &[u8]| w.len() >= 4 && w[..4].eq_ignore_ascii_case(b"SIP/");
    let versioned = match words.next_back() {
        Some(version) => sip(version),
        None => memchr::memchr(b':', uri).is_some(),
    };
    !sip(method) && method != b"ACK" && versioned
}
