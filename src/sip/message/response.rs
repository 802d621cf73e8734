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
