//! The SIP transport layer, sans-IO (RFC 3261 §18, RFC 3581): what a message's transport decides, as values.
//! It stamps a received request's top Via (§18.2.1) and says where its responses go (§18.2.2), names us in
//! the Via and Contact of what we send (§18.1.1), picks where a request in a dialog goes and over which
//! connection (connection reuse), and keeps the table of open connections with its admission limits. It
//! never touches a socket, a clock or a task: the driver (`io::sip`) moves the bytes it routes.
//!
//! One file per duty:
//! - [`received`]: the Via stamping of a request received (`received`, `rport`).
//! - [`response`]: where a response goes.
//! - [`request`]: where a request in a dialog goes.
//! - [`local`]: how vocals names itself (our Via, our Contact).
//! - [`connections`]: the connection table: admission, reuse, which connection a message leaves on.

pub mod connections;
pub mod local;
pub mod received;
pub mod request;
pub mod response;

use std::net::SocketAddr;

use crate::sip::message::Framing;

pub use connections::{ConnectionLimits, Connections, Route};
pub use local::{our_contact, our_host, our_via};
pub use received::{StampedVia, stamp_received};
pub use request::request_destination;
pub use response::response_destination;

/// How a message travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS (over TCP), RFC 3261 §26.2; `;transport=tls`, Twilio's Secure Trunking.
    Tls,
}

impl Transport {
    /// TCP and TLS: a connection carries the message, and the transaction layer does not retransmit over it
    /// (§17.1.1.2, §17.2.1).
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// How a message is delimited on this transport (§18.3): a datagram holds one message; on a stream,
    /// Content-Length says where it ends.
    pub fn framing(self) -> Framing {
        if self.is_reliable() { Framing::Stream } else { Framing::Datagram }
    }
}

/// The other end of a message: its address, the transport and our listener's address it arrived on. For
/// TCP, `conn` names the connection, so responses and in-dialog requests go back over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub local: SocketAddr,
    pub transport: Transport,
    pub conn: Option<u64>,
}

/// What one request received means to the transport layer (§18.2.1, §18.2.2): its top Via stamped with
/// `received`/`rport`, and where its responses go. The endpoint keeps the returned peer with the transaction.
pub fn receive_request(req: &mut crate::sip::message::Request, peer: Peer) -> Peer {
    match stamp_received(req, &peer) {
        Some(stamped) => response_destination(&stamped, peer),
        None => peer,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::{Peer, Transport};
    use crate::sip::message::{Message, Request};

    /// A peer at `addr` that reached our listener at 203.0.113.10:5060 (or :5061 for TLS).
    pub(crate) fn peer(addr: &str, transport: Transport, conn: Option<u64>) -> Peer {
        let local = if transport == Transport::Tls { "203.0.113.10:5061" } else { "203.0.113.10:5060" };
        Peer { addr: addr.parse().unwrap(), local: local.parse().unwrap(), transport, conn }
    }

    /// An OPTIONS whose top Via is `via`.
    pub(crate) fn request_with_via(via: &str) -> Request {
        let text = format!(
            "OPTIONS sip:203.0.113.10 SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKlower\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(text.into_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!("a request was written"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{peer, request_with_via};
    use super::*;

    #[test]
    fn a_request_is_stamped_and_its_responses_routed_in_one_step() {
        let mut req = request_with_via("SIP/2.0/UDP 54.244.51.1:5060;rport;branch=z9hG4bKa");
        let to = receive_request(&mut req, peer("192.0.2.7:40000", Transport::Udp, None));
        assert_eq!(to.addr, "192.0.2.7:40000".parse().unwrap());
        let via = req.headers.top_via().unwrap();
        assert_eq!((via.received(), via.rport()), (Some("192.0.2.7".parse().unwrap()), Some(Some(40000))));
    }

    #[test]
    fn a_request_whose_top_via_does_not_parse_is_answered_where_it_came_from() {
        let mut req = request_with_via("SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKa");
        req.headers.replace_first(&crate::sip::message::HeaderName::Via, "garbage");
        let from = peer("192.0.2.7:40000", Transport::Udp, None);
        assert_eq!(receive_request(&mut req, from), from);
        assert_eq!(req.headers.get(&crate::sip::message::HeaderName::Via), Some(&b"garbage"[..]), "left as it was");
    }

    #[test]
    fn reliable_transports_frame_by_content_length() {
        assert_eq!(Transport::Udp.framing(), Framing::Datagram);
        assert_eq!(Transport::Tcp.framing(), Framing::Stream);
        assert_eq!(Transport::Tls.framing(), Framing::Stream);
    }
}
