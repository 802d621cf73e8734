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

/// The answer to a request that failed to parse, when enough of it can still be read: the status the error
/// calls for (400, 505, 513) with a reason phrase saying what was wrong, and the request's Via, From, To,
/// Call-ID and CSeq lines copied as received (§8.2.6). `None` for responses, ACKs (never answered), stream
/// data still incomplete, and requests where one of those headers is missing or not well-formed itself.
pub fn error_response(buf: &[u8], error: &super::ParseError) -> Option<Bytes> {
    use super::HeaderName as H;
    if matches!(error, super::ParseError::Incomplete) {
        return None;
    }
    let head_end = memchr::memmem::find(buf, b"\r\n\r\n").unwrap_or(buf.len());
    let mut lines = buf[..head_end].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next()?;
    let method = start.split(|&b| b == b' ').next()?;
    if start.len() >= 4 && start[..4].eq_ignore_ascii_case(b"SIP/") || method == b"ACK" || method.is_empty() {
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
    let (from, to, call_id, cseq) = (from?, to?, call_id?, cseq?);
    // Echo only what is well-formed: a response that does not parse helps nobody and reflects garbage.
    let well_formed = !vias.is_empty()
        && vias.iter().all(|v| super::typed::ViaView::parse(v).is_ok())
        && super::typed::NameAddrView::parse(from).is_ok()
        && super::typed::NameAddrView::parse(to).is_ok()
        && super::typed::CallId::check(call_id).is_ok()
        && super::typed::CSeq::check(cseq).is_ok();
    if !well_formed {
        return None;
    }
    let status = error.status();
    let reason: String =
        error.to_string().chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(120).collect();
    let mut out = BytesMut::with_capacity(256 + head_end.min(2048));
    out.put_slice(format!("SIP/2.0 {} {reason}\r\n", status.as_u16()).as_bytes());
    for (name, value) in
        vias.iter().map(|v| ("Via", *v)).chain([("From", from), ("To", to), ("Call-ID", call_id), ("CSeq", cseq)])
    {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"Content-Length: 0\r\n\r\n");
    Some(out.freeze())
}
