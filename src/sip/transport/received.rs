//! The server transport's stamp on a request received (RFC 3261 §18.2.1, RFC 3581 §4): `received` on the top
//! Via when the source address differs from its sent-by (or `rport` was asked for), `rport=<source port>`
//! when asked for. Only the top Via is touched; a Via that does not parse is left as it is.

use std::net::IpAddr;

use bytes::Bytes;

use super::Peer;
use crate::sip::message::typed::Via;
use crate::sip::message::{HeaderName, Request};

/// A request's top Via as the server transport stamped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampedVia {
    pub via: Via,
    /// The request asked for symmetric response routing (an empty `rport`, RFC 3581 §4), now answered with
    /// the source port.
    pub rport: bool,
}

/// Stamps the top Via of `req`, received from `peer`, and returns it as stamped (`None` when the top Via
/// does not parse: nothing is changed then).
///
/// - RFC 3261 §18.2.1: `received=<source address>` when the sent-by host differs from the source address
///   (a domain name always differs).
/// - RFC 3581 §4: with an empty `rport`, `rport=<source port>`, and `received` even when the address is the
///   same.
///
/// A source reported as an IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) is stamped
/// as the IPv4 address it is.
pub fn stamp_received(req: &mut Request, peer: &Peer) -> Option<StampedVia> {
    let mut via = req.headers.top_via().ok()?;
    let source = unmapped(peer.addr.ip());
    let wants_rport = via.rport() == Some(None);
    let differs = via.host.ip() != Some(source);
    if differs || wants_rport {
        via.params.set("received", Some(Bytes::from(source.to_string())));
    }
    if wants_rport {
        via.params.set("rport", Some(Bytes::from(peer.addr.port().to_string())));
    }
    if differs || wants_rport {
        req.headers.replace_first(&HeaderName::Via, via.to_bytes());
    }
    Some(StampedVia { via, rport: wants_rport })
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; any other address as it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::Transport;
    use crate::sip::transport::test_support::{peer, request_with_via};

    fn stamped(via: &str, from: &str) -> (Via, Request) {
        let mut req = request_with_via(via);
        let stamped = stamp_received(&mut req, &peer(from, Transport::Udp, None)).unwrap();
        (stamped.via, req)
    }

    #[test]
    fn a_source_that_differs_from_the_sent_by_is_stamped_received() {
        let (via, req) = stamped("SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKa", "192.0.2.7:40000");
        assert_eq!(via.received(), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(via.rport(), None, "rport was not asked for");
        assert_eq!(req.headers.top_via().unwrap(), via, "the message carries the stamp");
        assert_eq!(req.headers.vias().count(), 2, "the lower Via is kept");
        assert_eq!(req.headers.vias().nth(1).unwrap().unwrap().received(), None, "and untouched");
    }

    #[test]
    fn a_source_that_matches_the_sent_by_is_left_alone_without_rport() {
        let mut req = request_with_via("SIP/2.0/UDP 54.244.51.1:5060;branch=z9hG4bKa");
        let before = req.to_bytes();
        let stamped = stamp_received(&mut req, &peer("54.244.51.1:5060", Transport::Udp, None)).unwrap();
        assert_eq!((stamped.via.received(), stamped.rport), (None, false));
        assert_eq!(req.to_bytes(), before, "nothing rewritten");
    }

    #[test]
    fn rport_asked_for_gets_the_source_port_and_received_even_from_the_same_address() {
        let (via, _) = stamped("SIP/2.0/UDP 54.244.51.1:5060;rport;branch=z9hG4bKa", "54.244.51.1:40000");
        assert_eq!(via.rport(), Some(Some(40000)));
        assert_eq!(via.received(), Some("54.244.51.1".parse().unwrap()), "RFC 3581 §4: received always");
        let mut req = request_with_via("SIP/2.0/UDP 54.244.51.1:5060;rport;branch=z9hG4bKa");
        assert!(stamp_received(&mut req, &peer("54.244.51.1:40000", Transport::Udp, None)).unwrap().rport);
    }

    #[test]
    fn an_rport_that_already_has_a_value_is_not_a_request_for_one() {
        let (via, _) = stamped("SIP/2.0/UDP 54.244.51.1:5060;rport=7;branch=z9hG4bKa", "54.244.51.1:40000");
        assert_eq!(via.rport(), Some(Some(7)));
        assert_eq!(via.received(), None);
    }

    #[test]
    fn a_sent_by_domain_name_always_differs_from_the_source() {
        let (via, _) = stamped("SIP/2.0/UDP edge.example.com;branch=z9hG4bKa", "192.0.2.7:5060");
        assert_eq!(via.received(), Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn an_ipv6_source_is_stamped_as_an_ipv6_received() {
        let (via, req) = stamped("SIP/2.0/UDP [2001:db8::1]:5060;rport;branch=z9hG4bKa", "[2001:db8::9]:40000");
        assert_eq!(via.received(), Some("2001:db8::9".parse().unwrap()));
        assert_eq!(via.rport(), Some(Some(40000)));
        let printed = String::from_utf8(req.headers.get(&HeaderName::Via).unwrap().to_vec()).unwrap();
        assert!(printed.contains("received=2001:db8::9"), "{printed}");
        let (same, _) = stamped("SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bKa", "[2001:db8::9]:5060");
        assert_eq!(same.received(), None, "the same IPv6 address needs no received");
    }

    #[test]
    fn an_ipv4_mapped_source_is_stamped_as_its_ipv4_address() {
        let (via, _) = stamped("SIP/2.0/UDP 54.244.51.1;rport;branch=z9hG4bKa", "[::ffff:192.0.2.7]:40000");
        assert_eq!(via.received(), Some("192.0.2.7".parse().unwrap()));
        let (same, _) = stamped("SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKa", "[::ffff:192.0.2.7]:5060");
        assert_eq!(same.received(), None, "the mapped address is the sent-by");
    }
}
