//! SIP message syntax (RFC 3261 §7, §19, §20, §25): requests, responses, headers and URIs; parsing from bytes and
//! printing to bytes. Sans-IO: no sockets, no clocks. Hostile input never panics: it becomes a [`ParseError`] that says
//! what was wrong and which status answers it.
//!
//! Not here: what a request gets ([`crate::sip::endpoint`]), where a message goes ([`crate::sip::transport`]), SDP
//! bodies ([`crate::sdp`]).

mod error;
mod header_name;
mod headers;
mod method;
mod params;
mod parse;
mod print;
mod response;
mod scan;
pub mod typed;
mod uri;

use bytes::Bytes;

pub use error::ParseError;
pub use header_name::HeaderName;
pub use headers::{Header, Headers};
pub use method::{Method, StatusCode};
pub use params::{Param, Params};
pub use parse::{Framing, StreamFrame, frame_stream};
pub use response::{check_error_response, error_response};
pub use uri::{Host, OtherUri, SipUri, TelUri, Uri, UriError, unescape};

/// Size caps applied while parsing. Defaults fit real traffic (a Twilio INVITE with an Identity header runs
/// past 2 KB) with room to spare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whole message, start line to end of body.
    pub max_message: usize,
    /// Header lines (a folded header counts once).
    pub max_headers: usize,
    /// One header line, folded continuations included.
    pub max_header_line: usize,
}

impl Limits {
    /// No caps: for re-reading messages vocals printed itself (the printer writes one element of a list header
    /// per line, so a message that arrived within `max_headers` lines may print to more).
    pub fn unlimited() -> Limits {
        Limits { max_message: usize::MAX, max_headers: usize::MAX, max_header_line: usize::MAX }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message: 65_536, max_headers: 256, max_header_line: 16_384 }
    }
}

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

impl Request {
    /// [`Message::validate`] for a request.
    pub fn validate(&self) -> Result<(), ParseError> {
        parse::validate_all(&self.headers)
    }
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: StatusCode,
    /// The reason phrase as received: may be empty, UTF-8 or not.
    pub reason: Bytes,
    pub headers: Headers,
    pub body: Bytes,
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    /// Parses one datagram (UDP): the body is Content-Length bytes, or the rest of the datagram when that
    /// header is absent; trailing bytes are ignored (§18.3).
    pub fn parse_datagram(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        parse::parse(buf, Framing::Datagram, limits)
    }

    /// Parses one message framed by [`frame_stream`] (TCP/TLS): Content-Length is mandatory.
    pub fn parse_stream(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        parse::parse(buf, Framing::Stream, limits)
    }

    /// Parses a datagram with the default limits.
    pub fn parse(buf: impl Into<Bytes>) -> Result<Message, ParseError> {
        Self::parse_datagram(buf.into(), &Limits::default())
    }

    /// Checks every header vocals has a type for (each Via, Contact, Route, Record-Route, Content-Type), beyond
    /// what parsing checks: the top Via, From, To, Call-ID, CSeq and Max-Forwards that every message is matched
    /// and answered by. Call it before acting on the rest, e.g. before creating a dialog; the typed accessors
    /// report the same errors one header at a time.
    pub fn validate(&self) -> Result<(), ParseError> {
        parse::validate_all(self.headers())
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
