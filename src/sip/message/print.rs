//! The printer: canonical messages (CRLF line ends, full header names, one element per line of a list header)
//! with a Content-Length that always matches the body.

use bytes::{BufMut, Bytes, BytesMut};

use super::headers::Headers;
use super::uri::itoa_buf;
use super::{Message, Request, Response};

impl Request {
    /// Appends the printed request to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(estimate(&self.headers, &self.body) + 64);
        out.put_slice(self.method.as_bytes());
        out.put_u8(b' ');
        self.uri.encode(out);
        out.put_slice(b" SIP/2.0\r\n");
        encode_tail(&self.headers, &self.body, out);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

impl Response {
    /// Appends the printed response to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(estimate(&self.headers, &self.body) + 16 + self.reason.len());
        out.put_slice(b"SIP/2.0 ");
        out.put_slice(itoa_buf::Buf::new(u64::from(self.status.as_u16())).as_bytes());
        out.put_u8(b' ');
        out.put_slice(&self.reason);
        out.put_slice(b"\r\n");
        encode_tail(&self.headers, &self.body, out);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

impl Message {
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::Request(r) => r.encode(out),
            Message::Response(r) => r.encode(out),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn estimate(headers: &Headers, body: &Bytes) -> usize {
    headers.iter().map(|h| h.name.as_bytes().len() + h.value.len() + 4).sum::<usize>() + body.len() + 24
}

fn encode_tail(headers: &Headers, body: &Bytes, out: &mut BytesMut) {
    for h in headers.iter() {
        out.put_slice(h.name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(h.value);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"Content-Length: ");
    out.put_slice(itoa_buf::Buf::new(body.len() as u64).as_bytes());
    out.put_slice(b"\r\n\r\n");
    out.put_slice(body);
}
